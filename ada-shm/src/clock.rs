//! One timebase for every process of a session.
//!
//! A heartbeat and event stamps taken from different clocks cannot be compared, so the segment
//! header records which clock the session uses ([`ClockId`]), the controller stamps its
//! heartbeat with it, and agents stamp events with the same one. `CLOCK_MONOTONIC` is
//! system-wide on Linux, so two processes reading it agree; a per-process calibration (as in
//! `quanta`) would not.
//!
//! Two clocks are in play, and each value says which it is in:
//!
//! - **Event stamps** (index and detail records, loss markers' first and last times, fallback
//!   records) are taken with the segment's [`ClockId`] through [`ClockId::stamp`]: raw counter
//!   ticks for [`ClockId::Tsc`], nanoseconds for [`ClockId::Monotonic`]. The agent reads the id
//!   once when it attaches and never mixes clocks with its controller. For a `Tsc` session the
//!   controller records (ticks, `CLOCK_MONOTONIC`) pairs ([`crate::tsc::sample`]) at the start,
//!   periodically and at the end, and converts every stamp it drains, so the **trace is always
//!   in `CLOCK_MONOTONIC` nanoseconds**; the manifest names the source clock and the
//!   calibration.
//! - **Everything else** is `CLOCK_MONOTONIC` nanoseconds whatever the session clock: the
//!   controller's heartbeat and the agents' mode watcher that compares it, a slot's
//!   `registered_ns`, persistence windows' closing times, marks and the manifest's times.
//!
//! The agent, the registry and the controller read `CLOCK_MONOTONIC` directly with
//! [`MonotonicClock::read`]; nothing in ADA takes a [`Clock`] value today. The [`Clock`] trait is
//! the interface for clock-driven logic that wants its time source swapped in tests:
//! [`MonotonicClock`] implements it, and so does `ada_testkit::FakeClock`, a clock that moves
//! only when a test moves it.
//!
//! Both clocks are read through libc's `clock_gettime`, never through rustix's own vDSO parser:
//! glibc's `clock_gettime` takes the same vDSO fast path (no syscall), and it is what valgrind and
//! the sanitizers understand. rustix's `linux_raw` backend finds the vDSO by reading the
//! process's auxiliary vector itself, and under valgrind that vector names the real kernel vDSO,
//! which valgrind does not map into the program: the first clock read dies with SIGSEGV
//! (rustix issue 1559). A program that works under valgrind must keep working when it is traced.

crate::wire_enum! {
    /// Which clock a segment's timestamps come from. Stored as a `u32` in the segment header and the
    /// control block; decode with [`ClockId::try_from`], which rejects unknown values.
    pub enum ClockId {
        /// `CLOCK_MONOTONIC`, in nanoseconds: system-wide, never jumps, stops during suspend.
        Monotonic = 1,
        /// The CPU's invariant counter ([`crate::tsc`]), in raw ticks: agents stamp events with
        /// it and the controller converts them to `CLOCK_MONOTONIC` nanoseconds as it drains.
        Tsc = 2,
    }
}

impl ClockId {
    /// The name users see in manifests and summaries.
    pub const fn name(self) -> &'static str {
        match self {
            ClockId::Monotonic => "CLOCK_MONOTONIC",
            ClockId::Tsc => "TSC",
        }
    }

    /// Reads this clock as an event stamp: `CLOCK_MONOTONIC` nanoseconds, or raw counter
    /// ticks ([`crate::tsc::ticks`]). The agents' hot path: a copy of the id kept by the writer
    /// makes this one well-predicted branch. Where the build has no counter, `Tsc` reads
    /// `CLOCK_MONOTONIC` (no controller names that clock there: it checks invariance first).
    #[inline(always)]
    pub fn stamp(self) -> u64 {
        match self {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            ClockId::Tsc => crate::tsc::ticks(),
            _ => MonotonicClock::read(),
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

/// Reads `clock` with libc's `clock_gettime` (the vDSO on Linux, no syscall; a syscall where
/// valgrind runs the program). Returns `None` if the call fails, which it cannot for the two
/// clocks ADA reads: both exist on every Linux and the out-pointer is valid.
#[inline]
fn clock_gettime(clock: libc::clockid_t) -> Option<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the whole call, and `clock_gettime` writes
    // nothing else; an unknown clock id makes it fail with EINVAL, never misbehave.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then_some(ts)
}

/// Nanoseconds in `ts`, clamping a negative time (no clock ADA reads has one) to 0.
#[inline]
fn timespec_ns(ts: libc::timespec) -> u64 {
    // u64 nanoseconds last 584 years from either clock's origin.
    (ts.tv_sec.max(0) as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec.max(0) as u64)
}

/// The real clock: `CLOCK_MONOTONIC` through libc's `clock_gettime` (the vDSO on Linux, no
/// syscall).
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    /// Reads `CLOCK_MONOTONIC` in nanoseconds. `#[inline]` so the hot path pays only the libc
    /// call into the vDSO. Returns 0 if the clock cannot be read (never on Linux).
    #[inline]
    pub fn read() -> u64 {
        clock_gettime(libc::CLOCK_MONOTONIC).map_or(0, timespec_ns)
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
/// Returns 0 if the clock cannot be read (never on Linux).
pub fn realtime_ns() -> u64 {
    clock_gettime(libc::CLOCK_REALTIME).map_or(0, timespec_ns)
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
    fn realtime_is_the_wall_clock_and_monotonic_is_not() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let ours = realtime_ns();
        assert!(ours.abs_diff(wall) < 1_000_000_000, "{ours} vs {wall}");
        // The monotonic clock counts from boot, not from 1970: the two clocks are not swapped.
        let mono = MonotonicClock::read();
        assert!(mono > 0 && mono < ours / 2, "{mono} vs {ours}");
    }

    #[test]
    fn clock_id_round_trips_and_rejects_unknown() {
        assert_eq!(
            ClockId::try_from(ClockId::Monotonic as u32),
            Ok(ClockId::Monotonic)
        );
        assert_eq!(ClockId::try_from(0), Err(0));
        assert_eq!(ClockId::try_from(7), Err(7));
        assert_eq!(ClockId::try_from(2), Ok(ClockId::Tsc));
        assert_eq!(ClockId::Monotonic.name(), "CLOCK_MONOTONIC");
        assert_eq!(ClockId::Tsc.name(), "TSC");
    }

    #[test]
    fn stamps_come_from_the_named_clock() {
        let before = MonotonicClock::read();
        let mono = ClockId::Monotonic.stamp();
        assert!(
            mono >= before && mono - before < 1_000_000_000,
            "{mono} vs {before}"
        );
        if crate::tsc::read().is_some() {
            let a = ClockId::Tsc.stamp();
            let t = crate::tsc::read().unwrap();
            let b = ClockId::Tsc.stamp();
            assert!(a <= t && t <= b, "counter ticks: {a} {t} {b}");
        }
    }
}
