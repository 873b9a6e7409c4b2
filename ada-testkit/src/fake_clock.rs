//! A clock that only moves when a test moves it.

use ada_shm::clock::{Clock, ClockId};
use ada_shm::sync::{Arc, AtomicU64, Ordering};

/// A hand-driven [`Clock`]. Clones share the same time: a test advances one handle and every
/// clone reads the new time.
///
/// ```
/// use ada_shm::clock::Clock;
/// use ada_testkit::FakeClock;
///
/// let clock = FakeClock::new(100);
/// let reader = clock.clone();
/// assert_eq!(clock.advance(50), 150);
/// assert_eq!(reader.now_ns(), 150);
/// ```
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<AtomicU64>,
}

impl FakeClock {
    /// A clock that reads `start_ns` until advanced.
    pub fn new(start_ns: u64) -> Self {
        FakeClock {
            now: Arc::new(AtomicU64::new(start_ns)),
        }
    }

    /// Moves time forward by `delta_ns` and returns the new time.
    pub fn advance(&self, delta_ns: u64) -> u64 {
        // Relaxed: the clock value is the only datum; readers need no other memory ordered by it.
        self.now.fetch_add(delta_ns, Ordering::Relaxed) + delta_ns
    }

    /// Sets the time. Going backwards is allowed so tests can feed a broken clock to the code
    /// under test and check it copes.
    pub fn set(&self, now_ns: u64) {
        // Relaxed: as in `advance`.
        self.now.store(now_ns, Ordering::Relaxed);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new(1_000_000_000)
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        // Relaxed: see `advance`.
        self.now.load(Ordering::Relaxed)
    }
    fn id(&self) -> ClockId {
        ClockId::Monotonic
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn advances_only_by_hand_and_clones_share_time() {
        let clock = FakeClock::new(5);
        let shared = clock.clone();
        assert_eq!(shared.now_ns(), 5);
        assert_eq!(clock.advance(10), 15);
        assert_eq!(shared.now_ns(), 15);
        clock.set(3);
        assert_eq!(shared.now_ns(), 3);
    }
}
