//! [`DrainHook`]: a test and diagnostics hook the drain thread calls around every pass.
//!
//! Set with [`ControllerBuilder::drain_hook`](crate::ControllerBuilder::drain_hook). The drain
//! thread calls it with [`DrainPoint::BeforeReady`] once, right before it publishes
//! `registry_ready`, with [`DrainPoint::BeforePass`] right before each [`Drainer::pass`] and with
//! [`DrainPoint::AfterPass`] right after it (not around the final drain of
//! [`Running::stop`](crate::Running::stop)). Whatever the hook does, the drain waits for it:
//! a hook that blocks pauses the drain (which is what stall tests want: `ada-testkit`'s
//! `PauseGate::checkpoint` at `BeforePass` makes a pausable drain), so a production controller
//! leaves it unset. Unset, it costs one branch per pass.
//!
//! [`Drainer::pass`]: crate::Drainer::pass

use std::sync::Arc;

/// Where the drain thread is when it calls the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DrainPoint {
    /// The drain is claimed and about to publish `registry_ready` (once, at the start of the
    /// standby; [`Controller::standby`](crate::Controller::standby) returns after it): a hook
    /// that blocks here delays readiness, so agents record in their startup mode meanwhile.
    BeforeReady,
    /// About to make a pass.
    BeforePass,
    /// A pass just ended.
    AfterPass,
}

/// The hook: any shared function of the [`DrainPoint`].
#[derive(Clone)]
pub struct DrainHook(Arc<dyn Fn(DrainPoint) + Send + Sync>);

impl DrainHook {
    /// Wraps `hook`.
    pub fn new(hook: Arc<dyn Fn(DrainPoint) + Send + Sync>) -> Self {
        DrainHook(hook)
    }

    /// Calls the hook.
    #[inline]
    pub fn call(&self, point: DrainPoint) {
        (self.0)(point)
    }
}

impl std::fmt::Debug for DrainHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrainHook(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn calls_the_wrapped_function_with_the_point() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = {
            let seen = Arc::clone(&seen);
            DrainHook::new(Arc::new(move |p| seen.lock().unwrap().push(p)))
        };
        hook.clone().call(DrainPoint::BeforePass);
        hook.call(DrainPoint::AfterPass);
        assert_eq!(
            *seen.lock().unwrap(),
            [DrainPoint::BeforePass, DrainPoint::AfterPass]
        );
        assert_eq!(format!("{hook:?}"), "DrainHook(..)");
    }
}
