//! The CPU's time-stamp counter, and its conversion to `CLOCK_MONOTONIC` nanoseconds: the
//! session clock [`ClockId::Tsc`](crate::clock::ClockId::Tsc).
//!
//! Reading the counter costs a few nanoseconds (`rdtsc` on x86_64, `CNTVCT_EL0` on aarch64:
//! [`ticks`] on the hot path, [`read`] elsewhere) against ~20 for `clock_gettime`, but it
//! counts in ticks of its own rate from an origin of its own. The trace stays in
//! `CLOCK_MONOTONIC` nanoseconds (so heartbeats, marks and other processes' traces line up):
//! agents stamp raw ticks and the controller, which records (ticks, nanoseconds) pairs at the
//! start, periodically and at the end ([`sample`]), converts them
//! ([`Calibration::to_mono_ns`]) as it drains.
//!
//! A counter is only usable as a clock when it is **invariant**: the same rate on every core
//! and in every power state, never stopping ([`invariance`]: CPUID's invariant-TSC bit, or the
//! kernel's `constant_tsc` and `nonstop_tsc` flags). Elsewhere the session clock stays
//! `CLOCK_MONOTONIC`.

use crate::clock::MonotonicClock;

/// One calibration point: a counter reading and the `CLOCK_MONOTONIC` nanoseconds it stands
/// for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Point {
    /// Counter ticks.
    pub ticks: u64,
    /// `CLOCK_MONOTONIC` nanoseconds at the same instant.
    pub mono_ns: u64,
}

/// Why a calibration point was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CalibrationError {
    /// The point does not come after the last one in both ticks and nanoseconds (a counter that
    /// went back, is not invariant, or points given out of order).
    #[error(
        "calibration point ({ticks} ticks, {mono_ns} ns) does not follow the last one \
         ({last_ticks} ticks, {last_ns} ns)"
    )]
    NotIncreasing {
        /// The refused point's ticks.
        ticks: u64,
        /// The refused point's nanoseconds.
        mono_ns: u64,
        /// The last accepted point's ticks.
        last_ticks: u64,
        /// The last accepted point's nanoseconds.
        last_ns: u64,
    },
}

/// (ticks, nanoseconds) pairs in increasing order; converts ticks to nanoseconds piecewise
/// linearly between them, and beyond the first and last with the rate of the nearest segment.
/// Every step is integer arithmetic in 128 bits (no overflow, no float rounding drift over a
/// long trace), and the conversion never goes back: more ticks never give fewer nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calibration {
    points: Vec<Point>,
    /// Points added and later let go by [`keep_recent`](Calibration::keep_recent).
    dropped: u64,
}

impl Calibration {
    /// An empty calibration (it converts nothing until it has two points).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a point, which must come after the last one in both ticks and nanoseconds.
    pub fn add(&mut self, point: Point) -> Result<(), CalibrationError> {
        if let Some(last) = self.points.last()
            && (point.ticks <= last.ticks || point.mono_ns <= last.mono_ns)
        {
            return Err(CalibrationError::NotIncreasing {
                ticks: point.ticks,
                mono_ns: point.mono_ns,
                last_ticks: last.ticks,
                last_ns: last.mono_ns,
            });
        }
        self.points.push(point);
        Ok(())
    }

    /// The points, in order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Points ever accepted (those held plus those let go).
    pub fn total_points(&self) -> u64 {
        (self.points.len() as u64).saturating_add(self.dropped)
    }

    /// Bounds the memory of a long run: keeps the first point and the `recent - 1` last ones
    /// (at least two in all), letting go of those in between. Only readings older than the
    /// oldest recent point convert differently afterwards (through one long segment from the
    /// first point), and a drain has converted those already.
    pub fn keep_recent(&mut self, recent: usize) {
        let keep = recent.max(2);
        if self.points.len() > keep {
            let cut = self.points.len() - (keep - 1);
            self.dropped = self.dropped.saturating_add((cut - 1) as u64);
            self.points.drain(1..cut);
        }
    }

    /// The counter's rate over the whole calibration, in ticks per second (`None` before two
    /// points).
    pub fn ticks_per_second(&self) -> Option<u64> {
        let (first, last) = (self.points.first()?, self.points.last()?);
        let ticks = u128::from(last.ticks - first.ticks);
        let ns = u128::from(last.mono_ns - first.mono_ns);
        (ns != 0).then(|| u64::try_from(ticks * 1_000_000_000 / ns).unwrap_or(u64::MAX))
    }

    /// `CLOCK_MONOTONIC` nanoseconds for a counter reading (`None` before two points).
    pub fn to_mono_ns(&self, ticks: u64) -> Option<u64> {
        if self.points.len() < 2 {
            return None;
        }
        // The segment holding `ticks`: the last whose start is at or before it (the first
        // segment for readings before the first point, the last for readings after the last).
        let after = self.points.partition_point(|p| p.ticks <= ticks);
        let i = after.clamp(1, self.points.len() - 1);
        let (a, b) = (self.points[i - 1], self.points[i]);
        let dt = u128::from(b.ticks - a.ticks);
        let dn = u128::from(b.mono_ns - a.mono_ns);
        let ns = if ticks >= a.ticks {
            u128::from(a.mono_ns) + u128::from(ticks - a.ticks) * dn / dt
        } else {
            // Before the first point: back from it at the first segment's rate (saturating at
            // the clock's origin).
            u128::from(a.mono_ns).saturating_sub(u128::from(a.ticks - ticks) * dn / dt)
        };
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// Reads the counter on the hot path: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64 (compiled
/// only there). Not serialising: the read may be reordered with nearby instructions by a few
/// cycles, far below what the trace resolves.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64 (every x86_64 CPU has it); it reads a
    // register and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads the counter on the hot path: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64 (compiled
/// only there).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn ticks() -> u64 {
    let ticks: u64;
    // SAFETY: reading CNTVCT_EL0 is allowed at EL0 on Linux (the kernel enables it for the
    // vDSO); the instruction reads a system register into `ticks` and touches no memory.
    unsafe { core::arch::asm!("mrs {t}, cntvct_el0", t = out(reg) ticks, options(nomem, nostack)) };
    ticks
}

/// Reads the counter: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64; `None` elsewhere.
#[inline]
pub fn read() -> Option<u64> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        Some(ticks())
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// Whether the counter can serve as the session clock, and how that was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariance {
    /// Invariant: CPUID leaf `0x8000_0007` says so (EDX bit 8).
    Cpuid,
    /// Invariant: the kernel flags `constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`.
    KernelFlags,
    /// aarch64's generic timer: constant-rate by the architecture.
    GenericTimer,
    /// Not invariant, or not known to be (the session clock stays `CLOCK_MONOTONIC`).
    No,
}

impl Invariance {
    /// Whether the counter is usable as a clock.
    pub fn is_invariant(self) -> bool {
        self != Invariance::No
    }
}

/// Whether this machine's counter is invariant (see [`Invariance`]).
pub fn invariance() -> Invariance {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // Leaf 0x8000_0000 reports the highest extended leaf; 0x8000_0007 is read only if it
        // exists.
        let max_extended = __cpuid(0x8000_0000).eax;
        if max_extended >= 0x8000_0007 {
            let edx = __cpuid(0x8000_0007).edx;
            if edx & (1 << 8) != 0 {
                return Invariance::Cpuid;
            }
        }
        cpuinfo_flags()
    }
    #[cfg(target_arch = "aarch64")]
    {
        Invariance::GenericTimer
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Invariance::No
    }
}

/// `constant_tsc` and `nonstop_tsc` in the first processor's flags of `/proc/cpuinfo`.
#[cfg(target_arch = "x86_64")]
fn cpuinfo_flags() -> Invariance {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return Invariance::No;
    };
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags").and_then(|r| r.split_once(':')))
        .map(|(_, f)| f.split_ascii_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    if flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc") {
        Invariance::KernelFlags
    } else {
        Invariance::No
    }
}

/// One calibration point taken now: the counter read between two `CLOCK_MONOTONIC` reads, the
/// tightest of a few tries (a preemption between the reads widens the bracket), stamped with
/// the bracket's midpoint. `None` where there is no counter.
pub fn sample() -> Option<Point> {
    let mut best: Option<(u64, Point)> = None;
    for _ in 0..8 {
        let before = MonotonicClock::read();
        let ticks = read()?;
        let after = MonotonicClock::read();
        let width = after.saturating_sub(before);
        let point = Point {
            ticks,
            mono_ns: before + width / 2,
        };
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, point));
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A fake counter at exactly 3 GHz from an origin of its own: tick t is ns `t / 3 + base`.
    fn fake(points_ns: &[u64]) -> Calibration {
        let mut c = Calibration::new();
        for &ns in points_ns {
            c.add(Point {
                ticks: (ns - 1_000) * 3 + 7,
                mono_ns: ns,
            })
            .unwrap();
        }
        c
    }

    #[test]
    fn a_fake_counter_of_known_rate_converts_exactly_inside_and_beyond_the_points() {
        let c = fake(&[1_000_000, 5_000_000, 9_000_000]);
        assert_eq!(c.ticks_per_second(), Some(3_000_000_000));
        for ns in [
            999_700u64, 1_000_000, 2_345_678, 5_000_000, 8_999_999, 20_000_000,
        ] {
            let ticks = (ns - 1_000) * 3 + 7;
            assert_eq!(c.to_mono_ns(ticks), Some(ns), "{ns}");
        }
    }

    #[test]
    fn too_few_points_convert_nothing_and_out_of_order_points_are_refused() {
        let mut c = Calibration::new();
        assert_eq!(c.to_mono_ns(5), None);
        c.add(Point {
            ticks: 10,
            mono_ns: 100,
        })
        .unwrap();
        assert_eq!((c.to_mono_ns(10), c.ticks_per_second()), (None, None));
        for bad in [(10, 200), (20, 100), (5, 50)] {
            let e = c
                .add(Point {
                    ticks: bad.0,
                    mono_ns: bad.1,
                })
                .unwrap_err();
            assert!(e.to_string().contains("does not follow"), "{e}");
        }
        assert_eq!(c.points().len(), 1);
    }

    #[test]
    fn extremes_neither_overflow_nor_underflow() {
        let mut c = Calibration::new();
        c.add(Point {
            ticks: 1,
            mono_ns: 1,
        })
        .unwrap();
        c.add(Point {
            ticks: 2,
            mono_ns: u64::MAX / 2,
        })
        .unwrap();
        assert_eq!(c.to_mono_ns(u64::MAX), Some(u64::MAX), "saturates");
        assert_eq!(c.to_mono_ns(0), Some(0), "saturates at the origin");
    }

    #[test]
    fn keeping_recent_points_keeps_the_first_and_the_last() {
        let mut c = fake(&[1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]);
        c.keep_recent(3);
        let ns: Vec<u64> = c.points().iter().map(|p| p.mono_ns).collect();
        assert_eq!(ns, [1_000_000, 4_000_000, 5_000_000]);
        assert_eq!(c.total_points(), 5);
        // Still exact for a counter of constant rate.
        assert_eq!(c.to_mono_ns((2_500_000 - 1_000) * 3 + 7), Some(2_500_000));
        c.keep_recent(0);
        assert_eq!(c.points().len(), 2);
        assert_eq!(c.total_points(), 5);
    }

    proptest! {
        /// Monotonic: more ticks never give fewer nanoseconds, whatever the (increasing)
        /// points.
        #[test]
        fn conversion_never_goes_back(
            steps in prop::collection::vec((1u64..1 << 40, 1u64..1 << 40), 2..20),
            probes in prop::collection::vec(any::<u64>(), 2..50),
        ) {
            let mut c = Calibration::new();
            let (mut t, mut n) = (0u64, 0u64);
            for (dt, dn) in steps {
                t += dt;
                n += dn;
                c.add(Point { ticks: t, mono_ns: n }).unwrap();
            }
            let mut probes = probes;
            probes.sort_unstable();
            let ns: Vec<u64> = probes.iter().map(|&p| c.to_mono_ns(p).unwrap()).collect();
            prop_assert!(ns.windows(2).all(|w| w[0] <= w[1]), "{ns:?}");
        }
    }

    /// The real counter, where it is invariant: calibrated over 200 ms, a fresh sample converts
    /// to within 1 µs of `CLOCK_MONOTONIC`.
    #[test]
    fn the_real_counter_converts_to_within_a_microsecond_where_it_is_invariant() {
        if !invariance().is_invariant() {
            eprintln!("skipped: this machine's counter is not invariant");
            return;
        }
        let mut c = Calibration::new();
        for _ in 0..5 {
            c.add(sample().unwrap()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let probe = sample().unwrap();
        let converted = c.to_mono_ns(probe.ticks).unwrap();
        let error = converted.abs_diff(probe.mono_ns);
        assert!(error < 1_000, "conversion error {error} ns");
        assert!(c.ticks_per_second().unwrap() > 100_000_000, "a real rate");
    }
}
