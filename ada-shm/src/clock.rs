//! One timebase for every process of a session.
//!
//! A heartbeat and event stamps taken from different clocks cannot be compared, so the segment
//! header records which clock the session uses ([`ClockId`]), the controller stamps its
//! heartbeat with it, and agents stamp events with the same one. `CLOCK_MONOTONIC` is
//! system-wide on Linux, so two processes reading it agree; a per-process calibration (as in
//! `quanta`) would not.
//!
//! The agent, the registry and the controller read the session clock directly with
//! [`MonotonicClock::read`]; nothing in ADA takes a [`Clock`] value today. The [`Clock`] trait is
//! the interface for clock-driven logic that wants its time source swapped in tests:
//! [`MonotonicClock`] implements it, and so does `ada_testkit::FakeClock`, a clock that moves
//! only when a test moves it.

crate::wire_enum! {
    /// Which clock a segment's timestamps come from. Stored as a `u32` in the segment header and the
    /// control block; decode with [`ClockId::try_from`], which rejects unknown values.
    pub enum ClockId {
        /// `CLOCK_MONOTONIC`, in nanoseconds: system-wide, never jumps, stops during suspend.
        Monotonic = 1,
    }
}

impl ClockId {
    /// The name users see in manifests and summaries.
    pub const fn name(self) -> &'static str {
        match self {
            ClockId::Monotonic => "CLOCK_MONOTONIC",
        }
    }
}

/// A source of monotonic nanoseconds in the session's timebase.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary, fixed origin shared by every process of the session.
    fn now_ns(&self) -> u64;
    /// Which timebase the values come from.
    fn id(&self) -> ClockId;
}

/// The real clock: `CLOCK_MONOTONIC` through the vDSO (no syscall on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    /// Reads `CLOCK_MONOTONIC` in nanoseconds. `#[inline]` so the hot path pays only the vDSO call.
    #[inline]
    pub fn read() -> u64 {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        // CLOCK_MONOTONIC is never negative; u64 nanoseconds last 584 years of uptime.
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        Self::read()
    }
    fn id(&self) -> ClockId {
        ClockId::Monotonic
    }
}

/// `CLOCK_REALTIME` in nanoseconds since the Unix epoch, for converting monotonic stamps to wall
/// time in manifests (never used to order events).
pub fn realtime_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (ts.tv_sec.max(0) as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_never_goes_back() {
        let mut last = MonotonicClock.now_ns();
        for _ in 0..10_000 {
            let now = MonotonicClock.now_ns();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
    }

    #[test]
    fn clock_id_round_trips_and_rejects_unknown() {
        assert_eq!(
            ClockId::try_from(ClockId::Monotonic as u32),
            Ok(ClockId::Monotonic)
        );
        assert_eq!(ClockId::try_from(0), Err(0));
        assert_eq!(ClockId::try_from(7), Err(7));
        assert_eq!(ClockId::Monotonic.name(), "CLOCK_MONOTONIC");
    }
}
