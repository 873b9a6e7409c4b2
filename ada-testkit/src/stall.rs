//! [`StallInjector`]: makes one side of a test stall for a chosen time at a chosen step.
//!
//! The side under test calls [`checkpoint(step)`](StallInjector::checkpoint) at numbered points
//! of its work (a drain pass number, an event's sequence number...). A test arms stalls with
//! [`stall_at(step, duration)`](StallInjector::stall_at); the checkpoint of that step stalls
//! once, then the stall is spent.
//!
//! A stall either sleeps (real time: [`StallInjector::sleeping`]) or advances a [`FakeClock`]
//! by the duration without sleeping ([`StallInjector::on_clock`]): the stalled side's clock
//! jumps as if it had been held that long, and the test stays fast and deterministic.
//!
//! Built on `std::sync::Mutex` only.

use crate::FakeClock;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
struct Armed {
    /// Step → total stall armed at it.
    at: BTreeMap<u64, Duration>,
    /// Stalls applied so far.
    applied: u64,
    /// Their total duration.
    total: Duration,
}

/// Stalls armed at numbered steps (shared in an `Arc` between the test and the stalled side).
///
/// ```
/// use ada_shm::clock::Clock;
/// use ada_testkit::{FakeClock, StallInjector};
/// use std::time::Duration;
///
/// let clock = FakeClock::new(0);
/// let stalls = StallInjector::on_clock(clock.clone());
/// stalls.stall_at(2, Duration::from_micros(5));
/// for step in 0..4 {
///     stalls.checkpoint(step);
/// }
/// assert_eq!(clock.now_ns(), 5_000); // only step 2 stalled, once
/// assert_eq!(stalls.applied(), 1);
/// ```
#[derive(Debug)]
pub struct StallInjector {
    armed: Mutex<Armed>,
    /// `None`: stalls sleep; `Some`: stalls advance this clock.
    clock: Option<FakeClock>,
}

impl StallInjector {
    /// Stalls sleep the calling thread for their duration.
    pub fn sleeping() -> Self {
        StallInjector {
            armed: Mutex::default(),
            clock: None,
        }
    }

    /// Stalls advance `clock` by their duration (clones share its time) instead of sleeping.
    pub fn on_clock(clock: FakeClock) -> Self {
        StallInjector {
            armed: Mutex::default(),
            clock: Some(clock),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Armed> {
        // Plain counters, updated together under the lock: a poisoned lock is still consistent.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a stall of `duration` at `step` (added to one already armed there).
    pub fn stall_at(&self, step: u64, duration: Duration) {
        let mut a = self.lock();
        let d = a.at.entry(step).or_default();
        *d = d.saturating_add(duration);
    }

    /// The stalled side reached `step`: stalls if a stall is armed there (and disarms it).
    /// Returns the stall applied, if any.
    pub fn checkpoint(&self, step: u64) -> Option<Duration> {
        let d = {
            let mut a = self.lock();
            let d = a.at.remove(&step)?;
            a.applied += 1;
            a.total = a.total.saturating_add(d);
            d
        };
        match &self.clock {
            Some(clock) => {
                clock.advance(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            }
            None => std::thread::sleep(d),
        }
        Some(d)
    }

    /// Stalls armed and not yet reached.
    pub fn pending(&self) -> usize {
        self.lock().at.len()
    }

    /// Stalls applied so far.
    pub fn applied(&self) -> u64 {
        self.lock().applied
    }

    /// Total duration of the stalls applied so far.
    pub fn total(&self) -> Duration {
        self.lock().total
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use ada_shm::clock::Clock;
    use std::time::Instant;

    #[test]
    fn on_clock_advances_exactly_at_the_armed_steps_once() {
        let clock = FakeClock::new(100);
        let s = StallInjector::on_clock(clock.clone());
        s.stall_at(3, Duration::from_nanos(40));
        s.stall_at(3, Duration::from_nanos(2));
        s.stall_at(7, Duration::from_nanos(1000));
        assert_eq!(s.pending(), 2);
        let mut seen = Vec::new();
        for step in 0..10 {
            if let Some(d) = s.checkpoint(step) {
                seen.push((step, d, clock.now_ns()));
            }
        }
        assert_eq!(
            seen,
            [
                (3, Duration::from_nanos(42), 142),
                (7, Duration::from_nanos(1000), 1142)
            ]
        );
        // Spent: the same step again does nothing.
        assert_eq!(s.checkpoint(3), None);
        assert_eq!(
            (s.applied(), s.total(), s.pending()),
            (2, Duration::from_nanos(1042), 0)
        );
    }

    #[test]
    fn sleeping_stall_holds_the_caller_at_least_that_long() {
        let s = StallInjector::sleeping();
        s.stall_at(1, Duration::from_millis(5));
        assert_eq!(s.checkpoint(0), None);
        let t = Instant::now();
        assert_eq!(s.checkpoint(1), Some(Duration::from_millis(5)));
        // A lower bound only: sleep never returns early.
        assert!(t.elapsed() >= Duration::from_millis(5));
        assert_eq!(s.applied(), 1);
    }
}
