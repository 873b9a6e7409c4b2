//! The session clock: which clock agents stamp events with, and the drain's conversion of those
//! stamps to `CLOCK_MONOTONIC` nanoseconds.
//!
//! [`ClockChoice`] is what the user asks for (`--clock auto|tsc|monotonic`);
//! [`ClockChoice::resolve`] turns it into the segment's [`ClockId`] given a [`TscSource`] (the
//! real counter, or a fake one in tests). For a [`ClockId::Tsc`] session the controller owns a
//! [`StampConverter`]: it records (ticks, `CLOCK_MONOTONIC`) pairs from the source when the
//! session is created (two, a few milliseconds apart, before `registry_ready`), then from the
//! drain loop at growing intervals up to [`SAMPLE_EVERY`] (10 ms, 20 ms, ... so the first
//! seconds are calibrated as tightly as the rest), and once more right before the final drain.
//! The drain converts every agent-written time it reads (index and detail records, loss
//! markers' first and last times, fallback records) before windows, marks and the sink see
//! it, so the trace stays in `CLOCK_MONOTONIC` nanoseconds.
//!
//! **Between and past the points.** A stamp between two calibration points converts
//! piecewise linearly ([`Calibration::to_mono_ns`]); one past the last point converts on from
//! it at the rate measured over at least [`EXTRAPOLATION_BASELINE_NS`] (since the first point,
//! early on): one sample's error (half its `clock_gettime` bracket, tens of ns) spread over a
//! long baseline keeps the extrapolation within tens of ns over the second until the next
//! point.
//!
//! **Never backwards.** A new point changes the mapping past the old last point (the
//! extrapolation). So that a thread's times never go back across an update, a new point is
//! *anchored*: the converter first adds the point (highest ticks converted so far, the
//! nanoseconds they converted to), so every stamp up to there keeps the value it had, and the
//! new segment starts from it. A sample that the conversion has already passed (its
//! nanoseconds at or below the anchor's — `CLOCK_MONOTONIC` slowed by NTP while the drain
//! converted ahead, say — or its ticks at or below the anchor) is not thrown away, which would
//! leave the line and its error as they are for every later sample too: the converter aims at
//! the sample carried [`SLEW_NS`] past the anchor at the calibration's rate, so the line rises
//! more slowly than the counter and meets the clock a second later ([`StampConverter::slewed`]
//! counts these). A sample not after the last point is skipped. Stamps far beyond the last
//! point (more than [`TRUSTED_AHEAD_NS`] of ticks: an agent's garbage, the segment being
//! writable by every traced process) convert, saturating, but never move the anchor.
//!
//! **Several drain workers** each convert their own threads' records with a converter of
//! their own, fed the same samples: the drain loop takes the points on the schedule and hands
//! each to every worker ([`StampConverter::without_source`]), so all convert along the same
//! calibration; each anchors at what it converted (a thread belongs to one worker, so its
//! times never go back), and the report shows the loop's samples.
//!
//! **Bounded.** The converter keeps the first point and the last [`KEPT_POINTS`]; the manifest
//! shows the first and last few and the count.

use ada_shm::clock::{ClockId, MonotonicClock};
use ada_shm::tsc::{Calibration, Invariance, Point};
use std::sync::Arc;

/// The longest interval between two calibration points while the drain runs.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The first interval after the session's two opening points (it doubles up to
/// [`SAMPLE_EVERY`]).
pub const FIRST_SAMPLE_AFTER_NS: u64 = 10_000_000;

/// Calibration points the converter keeps (the first one plus the most recent).
pub const KEPT_POINTS: usize = 256;

/// How far past the last calibration point (in the counter's time) a stamp may be and still
/// count as a real one for anchoring.
pub const TRUSTED_AHEAD_NS: u64 = 5_000_000_000;

/// Stamps past the last point convert at the rate measured over at least this long (or since
/// the first point, early in the session): the last segment alone may be short (an anchor a
/// drain interval before its point), and a short baseline's rate is noisy.
pub const EXTRAPOLATION_BASELINE_NS: u64 = 1_000_000_000;

/// How far past a sample the conversion already passed the converter aims (see
/// [`StampConverter::add`]): the line slews back to the clock over this much of the counter's
/// time.
pub const SLEW_NS: u64 = 1_000_000_000;

/// Real samples the converter keeps for its extrapolation rate (a few seconds' worth at
/// [`SAMPLE_EVERY`]).
const SAMPLES_FOR_RATE: usize = 8;

/// The real samples among a calibration's points (all of them: it has no anchors yet).
fn calibration_samples(calibration: &Calibration) -> std::collections::VecDeque<Point> {
    let points = calibration.points();
    points[points.len().saturating_sub(SAMPLES_FOR_RATE)..]
        .iter()
        .copied()
        .collect()
}

/// How far apart the session's two opening points are.
const OPENING_SPAN: std::time::Duration = std::time::Duration::from_millis(2);

/// What the user asks for: `auto`, `tsc` or `monotonic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockChoice {
    /// The counter where it is invariant, else `CLOCK_MONOTONIC` (the default).
    #[default]
    Auto,
    /// The counter; an error where it is not invariant.
    Tsc,
    /// `CLOCK_MONOTONIC`.
    Monotonic,
}

impl ClockChoice {
    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            ClockChoice::Auto => "auto",
            ClockChoice::Tsc => "tsc",
            ClockChoice::Monotonic => "monotonic",
        }
    }

    /// The segment's clock for this choice on a machine whose counter is as `source` says.
    pub fn resolve(self, source: &TscSource) -> Result<ClockId, ClockUnavailable> {
        match self {
            ClockChoice::Monotonic => Ok(ClockId::Monotonic),
            ClockChoice::Auto if source.invariance().is_invariant() => Ok(ClockId::Tsc),
            ClockChoice::Auto => Ok(ClockId::Monotonic),
            ClockChoice::Tsc if source.invariance().is_invariant() => Ok(ClockId::Tsc),
            ClockChoice::Tsc => Err(ClockUnavailable::NotInvariant),
        }
    }
}

impl std::fmt::Display for ClockChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ClockChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ClockChoice::Auto),
            "tsc" => Ok(ClockChoice::Tsc),
            "monotonic" => Ok(ClockChoice::Monotonic),
            other => Err(format!(
                "unknown clock {other:?}: expected auto, tsc or monotonic"
            )),
        }
    }
}

/// Why the counter cannot be the session clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockUnavailable {
    /// The machine has no invariant counter.
    #[error(
        "this machine has no invariant time-stamp counter (x86_64 needs CPUID's invariant-TSC \
         bit or the kernel's constant_tsc and nonstop_tsc flags; aarch64 always has one): use \
         --clock monotonic or auto"
    )]
    NotInvariant,
    /// The counter gave no two increasing calibration points.
    #[error("the time-stamp counter gave no usable calibration points (it did not advance)")]
    NoCalibration,
}

/// Where the converter's (ticks, `CLOCK_MONOTONIC`) pairs come from: the real counter
/// ([`TscSource::real`]), or a fake one in tests (a known rate, an injected "not invariant").
#[derive(Clone)]
pub struct TscSource {
    invariance: Invariance,
    sample: Arc<dyn Fn() -> Option<Point> + Send + Sync>,
}

impl TscSource {
    /// This machine's counter: [`ada_shm::tsc::invariance`] and [`ada_shm::tsc::sample`].
    pub fn real() -> Self {
        TscSource {
            invariance: ada_shm::tsc::invariance(),
            sample: Arc::new(ada_shm::tsc::sample),
        }
    }

    /// A source that says `invariance` and samples with `sample`.
    pub fn new(
        invariance: Invariance,
        sample: impl Fn() -> Option<Point> + Send + Sync + 'static,
    ) -> Self {
        TscSource {
            invariance,
            sample: Arc::new(sample),
        }
    }

    /// Whether the counter is invariant.
    pub fn invariance(&self) -> Invariance {
        self.invariance
    }

    /// One (ticks, `CLOCK_MONOTONIC`) pair taken now.
    pub fn sample(&self) -> Option<Point> {
        (self.sample)()
    }
}

impl Default for TscSource {
    fn default() -> Self {
        TscSource::real()
    }
}

impl std::fmt::Debug for TscSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TscSource")
            .field("invariance", &self.invariance)
            .finish_non_exhaustive()
    }
}

/// Converts the stamps agents wrote to `CLOCK_MONOTONIC` nanoseconds (see the
/// [module docs](self)): the identity for a `CLOCK_MONOTONIC` session; for a TSC session, the
/// calibration, anchored so that conversion never goes back.
#[derive(Debug, Clone)]
pub struct StampConverter {
    clock: ClockId,
    calibration: Calibration,
    /// `None`: no more points are taken (a `CLOCK_MONOTONIC` session).
    source: Option<TscSource>,
    /// The highest trusted stamp converted so far (0: none).
    max_converted: u64,
    /// When (drain clock, `CLOCK_MONOTONIC` ns) the next point is due, and the interval after it.
    next_sample_ns: u64,
    interval_ns: u64,
    /// The schedule's first and longest intervals.
    schedule: (u64, u64),
    /// Samples refused (not after the last point, or passed by the extrapolation).
    skipped: u64,
    /// Samples carried forward to slew back to the clock (see [`StampConverter::slewed`]).
    slewed: u64,
    /// The most recent real samples (never an anchor): the extrapolation's rate comes from
    /// them alone.
    samples: std::collections::VecDeque<Point>,
    /// How stamps past the last point convert (see [`EXTRAPOLATION_BASELINE_NS`]).
    past: Extrapolation,
}

/// The conversion past the last point, precomputed when a point is added so that the drain's
/// per-record work is a multiply and a shift (a 128-bit division costs tens of ns a record).
#[derive(Debug, Clone, Copy, Default)]
struct Extrapolation {
    /// The last point.
    last: Point,
    /// The long-baseline rate as (ns, ticks); `ticks == 0`: none (fewer than two points).
    rate: (u64, u64),
    /// `ceil(ns * 2^64 / ticks)`: `(delta * mult) >> 64` is exactly `delta * ns / ticks`
    /// (floored) for every `delta < max_delta`.
    mult: u128,
    /// `2^64 / ticks`: below it, `delta * ticks < 2^64`, which makes the multiply exact.
    max_delta: u64,
    /// Stamps above this are not counted as real readings for anchoring (see
    /// [`TRUSTED_AHEAD_NS`]).
    trusted_below: u64,
}

impl Extrapolation {
    fn new(last: Point, rate: (u64, u64)) -> Self {
        let (dn, dt) = rate;
        if dt == 0 {
            return Extrapolation {
                last,
                ..Extrapolation::default()
            };
        }
        let (dn, dt) = (u128::from(dn), u128::from(dt));
        let mult = (dn << 64).div_ceil(dt);
        let max_delta = u64::try_from((1u128 << 64) / dt).unwrap_or(u64::MAX);
        let ahead = u128::from(TRUSTED_AHEAD_NS) * dt / dn.max(1);
        let trusted_below = u64::try_from(u128::from(last.ticks) + ahead).unwrap_or(u64::MAX);
        Extrapolation {
            last,
            rate,
            mult,
            max_delta,
            trusted_below,
        }
    }

    /// Nanoseconds for `stamp > last.ticks` (saturating).
    #[inline]
    fn convert(&self, stamp: u64) -> u64 {
        let delta = stamp - self.last.ticks;
        let ns = if delta < self.max_delta
            && let Some(product) = u128::from(delta).checked_mul(self.mult)
        {
            product >> 64
        } else {
            u128::from(delta) * u128::from(self.rate.0) / u128::from(self.rate.1)
        };
        u64::try_from(u128::from(self.last.mono_ns) + ns).unwrap_or(u64::MAX)
    }
}

impl StampConverter {
    /// The identity: agents stamp `CLOCK_MONOTONIC` nanoseconds.
    pub fn monotonic() -> Self {
        StampConverter {
            clock: ClockId::Monotonic,
            calibration: Calibration::new(),
            source: None,
            max_converted: 0,
            next_sample_ns: u64::MAX,
            interval_ns: 0,
            schedule: (FIRST_SAMPLE_AFTER_NS, SAMPLE_EVERY.as_nanos() as u64),
            skipped: 0,
            slewed: 0,
            samples: std::collections::VecDeque::new(),
            past: Extrapolation::default(),
        }
    }

    /// A TSC session's converter: takes two points from `source`, a few milliseconds apart.
    pub fn tsc(source: TscSource) -> Result<Self, ClockUnavailable> {
        let mut calibration = Calibration::new();
        let first = source.sample().ok_or(ClockUnavailable::NoCalibration)?;
        calibration
            .add(first)
            .map_err(|_| ClockUnavailable::NoCalibration)?;
        std::thread::sleep(OPENING_SPAN);
        let second = source.sample().ok_or(ClockUnavailable::NoCalibration)?;
        calibration
            .add(second)
            .map_err(|_| ClockUnavailable::NoCalibration)?;
        Ok(Self::from_calibration(calibration, Some(source)))
    }

    /// A TSC session's converter over `calibration` (at least two points, else every stamp
    /// converts to 0), taking further points from `source` when given.
    pub fn from_calibration(calibration: Calibration, source: Option<TscSource>) -> Self {
        let last_ns = calibration.points().last().map_or(0, |p| p.mono_ns);
        let samples = calibration_samples(&calibration);
        let mut converter = StampConverter {
            clock: ClockId::Tsc,
            calibration,
            source,
            max_converted: 0,
            next_sample_ns: last_ns.saturating_add(FIRST_SAMPLE_AFTER_NS),
            interval_ns: FIRST_SAMPLE_AFTER_NS,
            schedule: (FIRST_SAMPLE_AFTER_NS, SAMPLE_EVERY.as_nanos() as u64),
            skipped: 0,
            slewed: 0,
            samples,
            past: Extrapolation::default(),
        };
        converter.update_rate();
        converter
    }

    /// The extrapolation past the last point: at the rate of the real samples (never the
    /// anchors, which lie on the converted line), from the latest one at least
    /// [`EXTRAPOLATION_BASELINE_NS`] before the newest (else the oldest kept) to the newest.
    fn update_rate(&mut self) {
        let Some(&last) = self.calibration.points().last() else {
            return;
        };
        let (Some(&first), Some(&newest)) = (self.samples.front(), self.samples.back()) else {
            return;
        };
        let horizon = newest.mono_ns.saturating_sub(EXTRAPOLATION_BASELINE_NS);
        let base = self
            .samples
            .iter()
            .rev()
            .find(|p| p.mono_ns <= horizon)
            .copied()
            .unwrap_or(first);
        let rate = if newest.ticks > base.ticks && newest.mono_ns > base.mono_ns {
            (newest.mono_ns - base.mono_ns, newest.ticks - base.ticks)
        } else {
            (0, 0)
        };
        self.past = Extrapolation::new(last, rate);
    }

    /// Keeps `sample` among the recent real ones.
    fn note_sample(&mut self, sample: Point) {
        if self.samples.len() == SAMPLES_FOR_RATE {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// For `choice` on a machine whose counter is as `source` says: the session clock's
    /// converter.
    pub fn for_choice(choice: ClockChoice, source: &TscSource) -> Result<Self, ClockUnavailable> {
        match choice.resolve(source)? {
            ClockId::Monotonic => Ok(Self::monotonic()),
            ClockId::Tsc => match Self::tsc(source.clone()) {
                Ok(c) => Ok(c),
                // `auto` settles for CLOCK_MONOTONIC; `tsc` says why it cannot.
                Err(_) if choice == ClockChoice::Auto => Ok(Self::monotonic()),
                Err(e) => Err(e),
            },
        }
    }

    /// Takes points on another schedule: `first_ns` after the last one, doubling up to
    /// `longest_ns` (default [`FIRST_SAMPLE_AFTER_NS`] and [`SAMPLE_EVERY`]; 0 and 0: at every
    /// drain pass, for tests driving a fake counter pass by pass).
    pub fn with_schedule(mut self, first_ns: u64, longest_ns: u64) -> Self {
        self.schedule = (first_ns, longest_ns);
        self.interval_ns = first_ns;
        let last_ns = self.calibration.points().last().map_or(0, |p| p.mono_ns);
        self.next_sample_ns = last_ns.saturating_add(first_ns);
        self
    }

    /// The clock agents stamp with.
    pub fn clock(&self) -> ClockId {
        self.clock
    }

    /// The calibration so far (empty for `CLOCK_MONOTONIC`).
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Samples refused so far (see the [module docs](self)).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The clock's rate in stamps per second (0 for `CLOCK_MONOTONIC`), for the control block.
    pub fn stamps_per_second(&self) -> u64 {
        match self.clock {
            ClockId::Tsc => self.calibration.ticks_per_second().unwrap_or(0),
            ClockId::Monotonic => 0,
        }
    }

    /// `CLOCK_MONOTONIC` nanoseconds for an agent's stamp (saturating; never panics).
    #[inline(always)]
    pub fn convert(&mut self, stamp: u64) -> u64 {
        if self.clock == ClockId::Monotonic {
            return stamp;
        }
        self.convert_ticks(stamp)
    }

    /// [`convert`](Self::convert) for a TSC session.
    #[inline]
    fn convert_ticks(&mut self, stamp: u64) -> u64 {
        let past = &self.past;
        let ns = if stamp > past.last.ticks && past.rate.1 != 0 {
            // Past the last point: on from it at the long-baseline rate (a straight line from
            // the last point, so an anchor added on it later keeps every value emitted).
            past.convert(stamp)
        } else {
            self.calibration.to_mono_ns(stamp).unwrap_or(0)
        };
        if stamp > self.max_converted && stamp <= past.trusted_below {
            self.max_converted = stamp;
        }
        ns
    }

    /// A loss marker's time: 0 stays 0 (unknown).
    #[inline]
    pub fn convert_known(&mut self, stamp: u64) -> u64 {
        if stamp == 0 { 0 } else { self.convert(stamp) }
    }

    /// Takes a point when one is due at `now_ns` (`CLOCK_MONOTONIC`).
    pub fn tick(&mut self, now_ns: u64) {
        if now_ns >= self.next_sample_ns {
            self.sample_now(now_ns);
        }
    }

    /// Takes a point now (the drain's final one), whatever the schedule.
    pub fn sample_now(&mut self, now_ns: u64) {
        let Some(source) = &self.source else {
            return;
        };
        let (first, longest) = self.schedule;
        self.interval_ns = (self.interval_ns.saturating_mul(2)).clamp(first, longest.max(first));
        self.next_sample_ns = now_ns.saturating_add(self.interval_ns);
        match source.sample() {
            Some(point) => self.add(point),
            None => self.skipped += 1,
        }
    }

    /// Adds `point`, anchored at the highest stamp converted so far (see the
    /// [module docs](self)).
    pub fn add(&mut self, point: Point) {
        let Some(&last) = self.calibration.points().last() else {
            if self.calibration.add(point).is_err() {
                self.skipped += 1;
            }
            self.update_rate();
            return;
        };
        if point.ticks <= last.ticks || point.mono_ns <= last.mono_ns {
            self.skipped += 1;
            return;
        }
        let anchor = self.max_converted;
        // What the anchor was converted to (and every stamp before it, on the same line).
        let anchor_ns = (anchor > last.ticks).then(|| self.convert_untracked(anchor));
        let mut slew = None;
        if anchor >= point.ticks || anchor_ns.is_some_and(|ns| ns >= point.mono_ns) {
            // The conversion already went past this sample (the clock's rate changed — NTP
            // slewing CLOCK_MONOTONIC, say — or a stamp from the near future anchored): aim at
            // the sample carried a second past the anchor instead, so the line slews back to
            // the clock without going back. Skipping it would leave the line, and its error,
            // as they are for every later sample too.
            match self.slew_target(point, anchor, anchor_ns.unwrap_or(last.mono_ns)) {
                Some(target) => {
                    slew = Some(target);
                    self.slewed += 1;
                }
                None => {
                    self.skipped += 1;
                    return;
                }
            }
        }
        if let Some(anchor_ns) = anchor_ns {
            // Fails only when the anchor converts to the last point's nanoseconds (a rate
            // below a tick per ns over a few ticks): then what was converted up to it is that
            // value, and the new segment starts no lower.
            let _ = self.calibration.add(Point {
                ticks: anchor,
                mono_ns: anchor_ns,
            });
        }
        let sample = point;
        match slew {
            // On from the anchor towards the target, not through a point in the future: the
            // next sample lands inside this stretch and is taken as usual.
            Some(target) => {
                self.note_sample(sample);
                self.update_rate();
                let from = self.past.last;
                if target.ticks > from.ticks && target.mono_ns > from.mono_ns {
                    let rate = (target.mono_ns - from.mono_ns, target.ticks - from.ticks);
                    self.past = Extrapolation::new(from, rate);
                }
            }
            None => {
                if self.calibration.add(sample).is_err() {
                    self.skipped += 1;
                    return;
                }
                self.note_sample(sample);
                self.update_rate();
            }
        }
        self.calibration.keep_recent(KEPT_POINTS);
    }

    /// Where a sample the conversion already passed is carried: [`SLEW_NS`] of the counter
    /// past the later of the sample and the anchor, at the long-baseline rate, so the segment
    /// from the anchor rises (more slowly than the counter when the line ran ahead) and meets
    /// the clock there. `None` when there is no rate yet or the target would not rise.
    fn slew_target(&self, sample: Point, anchor: u64, anchor_ns: u64) -> Option<Point> {
        // The long-baseline rate (ns, ticks): the recent one, not the whole session's, which
        // still holds whatever the clock did long ago.
        let (dn, dt) = self.past.rate;
        if dn == 0 || dt == 0 {
            return None;
        }
        let span = u64::try_from(u128::from(SLEW_NS) * u128::from(dt) / u128::from(dn)).ok()?;
        let ticks = sample.ticks.max(anchor).checked_add(span.max(1))?;
        let ahead = u128::from(ticks - sample.ticks) * u128::from(dn) / u128::from(dt);
        let mono_ns = u64::try_from(u128::from(sample.mono_ns) + ahead).ok()?;
        (ticks > anchor && mono_ns > anchor_ns).then_some(Point { ticks, mono_ns })
    }

    /// Samples the conversion had passed, carried forward to slew back to the clock (see
    /// [`add`](Self::add)).
    pub fn slewed(&self) -> u64 {
        self.slewed
    }

    /// The newest real sample taken (not an anchor).
    pub fn latest_sample(&self) -> Option<Point> {
        self.samples.back().copied()
    }

    /// This converter without a source of points of its own: a drain worker's, whose points
    /// the drain loop hands it (every worker adds the same samples; see
    /// `ada_controller::Drainer::add_stamp_point`).
    pub fn without_source(&self) -> StampConverter {
        StampConverter {
            source: None,
            ..self.clone()
        }
    }

    /// The session clock as the report and the manifest describe it.
    pub fn session_clock(&self) -> SessionClock {
        SessionClock {
            source: self.clock,
            calibration: self.calibration.clone(),
            skipped_points: self.skipped,
        }
    }

    /// [`convert`](Self::convert) without moving the anchor.
    fn convert_untracked(&mut self, stamp: u64) -> u64 {
        let max = self.max_converted;
        let ns = self.convert(stamp);
        self.max_converted = max;
        ns
    }
}

impl Default for StampConverter {
    fn default() -> Self {
        StampConverter::monotonic()
    }
}

/// The session clock as the drain used it, for the report and the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClock {
    /// The clock agents stamped events with (the trace itself is always `CLOCK_MONOTONIC`
    /// nanoseconds).
    pub source: ClockId,
    /// The calibration that converted them (empty for `CLOCK_MONOTONIC`; bounded: see
    /// [`KEPT_POINTS`]).
    pub calibration: Calibration,
    /// Calibration samples refused (see the [module docs](self)).
    pub skipped_points: u64,
}

impl Default for SessionClock {
    fn default() -> Self {
        SessionClock {
            source: ClockId::Monotonic,
            calibration: Calibration::new(),
            skipped_points: 0,
        }
    }
}

/// `CLOCK_MONOTONIC` now, as the drain's schedule reads it.
pub(crate) fn now_ns() -> u64 {
    MonotonicClock::read()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ticks: u64, mono_ns: u64) -> Point {
        Point { ticks, mono_ns }
    }

    fn converter(points: &[(u64, u64)]) -> StampConverter {
        let mut c = Calibration::new();
        for &(t, n) in points {
            c.add(point(t, n)).unwrap();
        }
        StampConverter::from_calibration(c, None)
    }

    #[test]
    fn choices_resolve_by_invariance_and_tsc_says_why_it_cannot() {
        let invariant = TscSource::new(Invariance::Cpuid, || None);
        let not = TscSource::new(Invariance::No, || None);
        assert_eq!(ClockChoice::Auto.resolve(&invariant), Ok(ClockId::Tsc));
        assert_eq!(ClockChoice::Auto.resolve(&not), Ok(ClockId::Monotonic));
        assert_eq!(
            ClockChoice::Monotonic.resolve(&invariant),
            Ok(ClockId::Monotonic)
        );
        assert_eq!(ClockChoice::Tsc.resolve(&invariant), Ok(ClockId::Tsc));
        let e = ClockChoice::Tsc.resolve(&not).unwrap_err();
        assert!(
            e.to_string().contains("no invariant time-stamp counter"),
            "{e}"
        );
        // A counter that never advances: `auto` falls back, `tsc` fails.
        let stuck = TscSource::new(Invariance::Cpuid, || Some(point(5, 5)));
        let auto = StampConverter::for_choice(ClockChoice::Auto, &stuck).unwrap();
        assert_eq!(auto.clock(), ClockId::Monotonic);
        let e = StampConverter::for_choice(ClockChoice::Tsc, &stuck).unwrap_err();
        assert_eq!(e, ClockUnavailable::NoCalibration);
        for c in [ClockChoice::Auto, ClockChoice::Tsc, ClockChoice::Monotonic] {
            assert_eq!(c.name().parse::<ClockChoice>(), Ok(c));
        }
        assert!(
            "rdtsc"
                .parse::<ClockChoice>()
                .unwrap_err()
                .contains("auto, tsc")
        );
    }

    #[test]
    fn a_fake_counter_converts_exactly_and_monotonic_is_the_identity() {
        let mut c = converter(&[(7, 1_000), (3_000_007, 1_001_000)]);
        assert_eq!(c.stamps_per_second(), 3_000_000_000);
        assert_eq!(c.convert(7 + 3 * 12_345), 1_000 + 12_345);
        assert_eq!(c.convert_known(0), 0);
        let mut m = StampConverter::monotonic();
        assert_eq!((m.convert(42), m.stamps_per_second()), (42, 0));
    }

    /// The extrapolation jumps: stamps converted past the last point at the old rate, then a
    /// point says the counter ran faster. Without the anchor, the next stamps would convert
    /// below what was already emitted.
    #[test]
    fn a_new_point_never_takes_converted_times_back() {
        let mut c = converter(&[(0, 1_000), (1_000, 2_000)]);
        let before = c.convert(2_000);
        assert_eq!(before, 3_000);
        // The counter really ran at 2 ticks per ns from 1000 on: (4000 ticks, 2000 + 1500 ns).
        c.add(point(4_000, 3_500));
        let mut last = before;
        for t in (2_001..=4_000).step_by(7) {
            let ns = c.convert(t);
            assert!(ns >= last, "{t} ticks: {ns} < {last}");
            last = ns;
        }
        // Stamps already converted keep their value; the new point is honoured.
        assert_eq!(c.convert(2_000), before);
        assert_eq!(c.convert(4_000), 3_500);
        assert_eq!(c.skipped(), 0);
        // Without anchoring, the plain calibration goes back: the mutation this test catches.
        let mut plain = Calibration::new();
        for p in [point(0, 1_000), point(1_000, 2_000), point(4_000, 3_500)] {
            plain.add(p).unwrap();
        }
        assert!(plain.to_mono_ns(2_100).unwrap() < before);
    }

    #[test]
    fn a_sample_the_conversion_passed_is_slewed_to_and_garbage_does_not_anchor() {
        let mut c = converter(&[(0, 1_000), (1_000, 2_000)]);
        assert_eq!(c.convert(5_000), 6_000);
        // The counter ran slower: at 6000 ticks only 5900 ns, below what 5000 ticks converted
        // to. The line goes on from the anchor to the sample carried a second on (1 tick per
        // ns): up more slowly than the counter, meeting the clock there.
        c.add(point(6_000, 5_900));
        assert_eq!((c.skipped(), c.slewed()), (0, 1));
        let target = point(6_000 + 1_000_000_000, 5_900 + 1_000_000_000);
        // The anchor is the last point; the line runs on from it towards the target.
        assert_eq!(c.calibration().points().last(), Some(&point(5_000, 6_000)));
        assert_eq!(
            c.convert(5_000),
            6_000,
            "what was converted keeps its value"
        );
        let mut last = 6_000;
        for t in (5_001..target.ticks).step_by(999_983) {
            let ns = c.convert(t);
            assert!(ns >= last, "{t} ticks: {ns} < {last}");
            last = ns;
        }
        assert_eq!(c.convert(target.ticks), target.mono_ns, "back on the clock");
        // A sample not after the last point: skipped.
        c.add(point(5_000, 5_500));
        assert_eq!(c.skipped(), 1);
        // A stamp far in the future converts (saturating) but moves no anchor.
        assert!(c.convert(u64::MAX) > target.mono_ns);
        let later = point(target.ticks + 1_000, target.mono_ns + 1_000);
        c.add(later);
        assert_eq!(
            (c.skipped(), c.slewed()),
            (1, 1),
            "anchored below, not at u64::MAX"
        );
        assert_eq!(c.convert(later.ticks), later.mono_ns);
    }

    /// CLOCK_MONOTONIC slewed 500 ppm slow for 2 s (NTP) while a busy drain converts stamps
    /// 20 µs old every 50 µs: the conversion runs ahead of each sample during the slew. It
    /// must come back to within a microsecond of the clock once the slew is over, never going
    /// back on the way (before the slew fix every later sample was skipped and the error
    /// stayed at a millisecond).
    #[test]
    fn a_slewed_clock_under_a_busy_drain_is_caught_up_with() {
        // Counter ticks are real nanoseconds; the clock loses 500 ppm from 0.5 s to 2.5 s.
        let clock = |t: u64| -> u64 {
            let slow = t.clamp(500_000_000, 2_500_000_000) - 500_000_000;
            1_000 + t - slow / 2_000
        };
        let mut c = converter(&[(0, clock(0)), (2_000_000, clock(2_000_000))]);
        let mut samples: Vec<u64> = [10, 30, 70, 150, 310, 630]
            .iter()
            .map(|ms| ms * 1_000_000)
            .collect();
        samples.extend((1..=20).map(|s| s * 1_000_000_000));
        let mut next = samples.iter().copied().peekable();
        let mut last = 0;
        let mut worst_late = 0u64;
        for now in (2_000_000..20_000_000_000u64).step_by(50_000) {
            if next.next_if(|&at| at <= now).is_some() {
                c.add(point(now, clock(now)));
            }
            let stamp = now - 20_000;
            let ns = c.convert(stamp);
            assert!(ns >= last, "at {now}: {ns} < {last}");
            last = ns;
            if now >= 6_000_000_000 {
                worst_late = worst_late.max(ns.abs_diff(clock(stamp)));
            }
        }
        assert!(c.slewed() > 0, "the slew was met");
        assert!(
            worst_late < 1_000,
            "{worst_late} ns off the clock after the slew"
        );
    }

    proptest::proptest! {
        /// The multiply-and-shift past the last point is exactly the 128-bit division.
        #[test]
        fn the_fast_extrapolation_is_exact(
            dn in 1u64..1 << 40,
            dt in 1u64..1 << 40,
            delta in proptest::prelude::any::<u64>(),
            small in 0u64..1 << 34,
        ) {
            let last = point(1 << 20, 1 << 30);
            let e = Extrapolation::new(last, (dn, dt));
            for d in [delta, small, 1, e.max_delta.saturating_sub(1)] {
                let Some(stamp) = last.ticks.checked_add(d.max(1)) else { continue };
                let exact = u128::from(last.mono_ns)
                    + u128::from(stamp - last.ticks) * u128::from(dn) / u128::from(dt);
                let exact = u64::try_from(exact).unwrap_or(u64::MAX);
                proptest::prop_assert_eq!(e.convert(stamp), exact, "d {}", d);
            }
        }
    }

    #[test]
    fn points_are_taken_on_a_growing_schedule_and_kept_bounded() {
        let clock = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let source = {
            let clock = clock.clone();
            // Relaxed (both): a test counter read by one thread.
            TscSource::new(Invariance::Cpuid, move || {
                let ns = clock.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed);
                Some(point(ns * 3, ns))
            })
        };
        let mut c = StampConverter::tsc(source).unwrap();
        assert_eq!(c.calibration().points().len(), 2);
        let start = c.next_sample_ns;
        c.tick(start - 1);
        assert_eq!(c.calibration().points().len(), 2, "not due yet");
        c.tick(start);
        assert_eq!(c.calibration().points().len(), 3);
        assert_eq!(c.next_sample_ns, start + 2 * FIRST_SAMPLE_AFTER_NS);
        for i in 0..1_000u64 {
            c.sample_now(start + i);
        }
        assert_eq!(c.calibration().points().len(), KEPT_POINTS);
        assert_eq!(c.calibration().total_points(), 1_003);
        assert_eq!(c.interval_ns, SAMPLE_EVERY.as_nanos() as u64);
        assert_eq!(c.stamps_per_second(), 3_000_000_000);
    }
}
