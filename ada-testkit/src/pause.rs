//! [`PauseGate`]: a point in a loop (a drain pass, say) that a test can hold shut.
//!
//! The paused side calls [`PauseGate::checkpoint`] once per iteration; while the gate is
//! paused, that call blocks. The test side calls [`pause`](PauseGate::pause), waits with
//! [`wait_until_paused`](PauseGate::wait_until_paused) until the other side is actually held
//! (so it knows nothing runs past the checkpoint from then on), does its work,
//! [`resume`](PauseGate::resume)s, and can wait for "N more iterations completed" with
//! [`wait_for_passes`](PauseGate::wait_for_passes).
//!
//! Built on `std::sync::{Mutex, Condvar}` only; no timing in the protocol itself (timeouts
//! only bound how long a test waits for the other side before it gives up).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct GateState {
    /// The test asked the paused side to stop at its next checkpoint.
    paused: bool,
    /// The paused side is blocked in `checkpoint` right now.
    held: bool,
    /// Checkpoints passed (returned from) so far.
    passed: u64,
}

/// A pausable checkpoint shared (in an `Arc`) by the side that runs and the test that holds it.
///
/// ```
/// use ada_testkit::PauseGate;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let gate = Arc::new(PauseGate::new());
/// gate.pause();
/// let worker = {
///     let gate = Arc::clone(&gate);
///     std::thread::spawn(move || {
///         for _ in 0..3 {
///             gate.checkpoint(); // blocks while paused
///         }
///     })
/// };
/// assert!(gate.wait_until_paused(Duration::from_secs(10)));
/// assert_eq!(gate.passed(), 0); // held at the first checkpoint
/// gate.resume();
/// assert!(gate.wait_for_passes(3, Duration::from_secs(10)));
/// worker.join().unwrap();
/// ```
#[derive(Debug, Default)]
pub struct PauseGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl PauseGate {
    /// An open gate: checkpoints pass straight through.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // A panic while holding the lock cannot leave the state inconsistent (plain fields
        // set one at a time), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the gate: the next [`checkpoint`](Self::checkpoint) (or the one in progress, if
    /// the other side is between checks) blocks until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.lock().paused = true;
        self.changed.notify_all();
    }

    /// Opens the gate and releases a blocked checkpoint.
    pub fn resume(&self) {
        self.lock().paused = false;
        self.changed.notify_all();
    }

    /// Whether the gate is closed.
    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Waits until the other side is blocked in [`checkpoint`](Self::checkpoint) (the gate
    /// closed and actually holding it). `false` if that did not happen within `timeout` (the
    /// other side never reached a checkpoint, or the gate was reopened).
    pub fn wait_until_paused(&self, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.held)
    }

    /// Checkpoints passed so far (a blocked one counts once it returns).
    pub fn passed(&self) -> u64 {
        self.lock().passed
    }

    /// Waits until at least `n` checkpoints have passed in total (pair it with
    /// [`passed`](Self::passed): `wait_for_passes(gate.passed() + 2, ..)` waits for two more).
    /// `false` on timeout.
    pub fn wait_for_passes(&self, n: u64, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.passed >= n)
    }

    /// The paused side's checkpoint: returns at once while the gate is open; blocks while it
    /// is closed. Counts one pass when it returns.
    pub fn checkpoint(&self) {
        let mut s = self.lock();
        if s.paused {
            s.held = true;
            self.changed.notify_all();
            while s.paused {
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.held = false;
        }
        s.passed += 1;
        self.changed.notify_all();
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&GateState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while !done(&s) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn open_gate_counts_passes() {
        let gate = PauseGate::new();
        assert!(!gate.is_paused());
        gate.checkpoint();
        gate.checkpoint();
        assert_eq!(gate.passed(), 2);
        assert!(gate.wait_for_passes(2, Duration::ZERO));
    }

    #[test]
    fn a_paused_gate_holds_the_other_side_until_resumed() {
        let gate = Arc::new(PauseGate::new());
        gate.pause();
        let (tx, rx) = mpsc::channel();
        let worker = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                for i in 0..5u32 {
                    gate.checkpoint();
                    tx.send(i).unwrap();
                }
            })
        };
        assert!(gate.wait_until_paused(LONG));
        // Held: nothing got past the first checkpoint.
        assert_eq!(gate.passed(), 0);
        assert!(rx.try_recv().is_err());
        gate.resume();
        assert!(gate.wait_for_passes(5, LONG));
        worker.join().unwrap();
        assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn pause_again_mid_run_and_wait_for_more_passes() {
        let gate = Arc::new(PauseGate::new());
        let (stop, stopped) = mpsc::channel::<()>();
        let worker = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                while stopped.try_recv().is_err() {
                    gate.checkpoint();
                }
            })
        };
        gate.pause();
        assert!(gate.wait_until_paused(LONG));
        let at = gate.passed();
        // Still held: the count cannot move while paused.
        assert!(!gate.wait_for_passes(at + 1, Duration::from_millis(20)));
        gate.resume();
        assert!(gate.wait_for_passes(at + 3, LONG));
        stop.send(()).unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn waiting_times_out_when_nobody_checks_in() {
        let gate = PauseGate::new();
        gate.pause();
        assert!(!gate.wait_until_paused(Duration::from_millis(1)));
        assert!(!gate.wait_for_passes(1, Duration::from_millis(1)));
    }
}
