//! [`ControllerBuilder`] → [`Controller`] (the segment exists, or was attached to) →
//! [`Standby`] (the drain is claimed and `registry_ready` published; no session yet) →
//! [`Running`] (the drain thread drains into a sink) → [`Report`] (final drain done, sink
//! finished). [`Controller::start`] and [`Controller::start_default`] go through the standby
//! in one call; `ada trace` stops there in between to spawn its command, so the registry is
//! ready before the traced program runs its first instruction.
//!
//! [`Running::stop`] ends the session and returns the report; dropping a [`Running`] without
//! stopping it ends the session the same way (final drain, sink finished) and discards the
//! report. Dropping a [`Standby`] withdraws readiness and gives the drain claim back.
//!
//! **Standby.** [`Controller::standby`] starts the drain thread, which claims the segment's
//! drain, stamps `drain_heartbeat_ns` with the controller's clock, publishes `registry_ready`
//! in the warm-up mode ([`RegistryMode::DualWrite`]) under a new epoch, and then ticks the
//! heartbeat every drain interval while it waits for the sink and the [`SessionInfo`]
//! ([`Standby::start`]), so agents never see a stalled controller. Agents may register and
//! record meanwhile: their events wait in their rings.
//!
//! **Running.** Every loop the drain thread stamps the heartbeat, makes one [`Drainer::pass`],
//! and sleeps for the drain interval when the pass found nothing, stamping the heartbeat at
//! least every [`HEARTBEAT_EVERY`] meanwhile (so a drain interval of up to a second never looks
//! like a stalled drain to the agents, whose threshold is 250 ms). Every 100 ms it also checks
//! whether the processes owning slots are still alive, and hands the slots of dead ones to the
//! drain (a killed process never unregisters). A [`DrainHook`] (tests, diagnostics) is called
//! right before and right after each pass.
//!
//! **Warm-up → steady.** The controller owns `registry_mode`: warm-up from ready on, then
//! steady ([`RegistryMode::PerThreadOnly`]) once the drain has been *healthy* for
//! [`ControllerBuilder::warm_up`] of the controller's clock. Healthy means: every drain loop
//! iteration in that period came at most [`ControllerBuilder::healthy_gap`] (the drain
//! interval + 100 ms) after the previous one. The period starts at the first loop iteration after
//! [`Standby::start`] (the standby drains nothing, so it does not count), and an iteration that
//! comes later than that (a pass that took too long, a paused drain, a clock that went back)
//! starts it again. It is measured in time, never in loop ticks. Steady is final for the
//! session: a drain that falls behind afterwards is what the agents' own stall detection (the
//! heartbeat's age) is for. When each happened is in [`Report::readiness`].
//!
//! **The clock.** Everything the controller decides by time (the heartbeat, the warm-up) reads
//! the clock given to [`ControllerBuilder::clock`]: [`MonotonicClock`] (`CLOCK_MONOTONIC`, the
//! trace's timebase and what agents compare the heartbeat with) by default, a fake clock
//! (`ada_testkit::FakeClock`) in tests. What agents stamp *events* with is another choice,
//! [`ControllerBuilder::session_clock`] (the CPU's counter where it is invariant): the drain
//! converts those stamps to `CLOCK_MONOTONIC` nanoseconds ([`crate::stamps`]).
//!
//! **Attach (controller restart).** [`ControllerBuilder::attach`] opens an existing segment
//! whose controller died (validated as untrusted, as agents do) instead of creating one. Its
//! standby takes the drain over from the dead holder (a live holder is refused with
//! [`ControllerError::DrainClaim`], naming its pid), publishes ready under the next epoch, and
//! the session it starts is a continuation ([`Report::continuation`]): it drains what the
//! existing slots still hold and what their threads keep writing. Threads already registered
//! when it took over are *inherited*: what their counters said then was the previous
//! controller's business, so each of their lanes reports `before_attach`, the events not in
//! this trace because they were counted before the take-over (at most `inherited`: see
//! [`LaneReport::before_attach`](crate::LaneReport::before_attach)). The events the agents lost
//! while no controller ran are in their loss counters (`dropped`) and loss markers, as ever.

use crate::atf_sink::AtfSink;
use crate::drain::{Drainer, PassStats};
use crate::hook::{DrainHook, DrainPoint};
use crate::identity::Verifier;
use crate::merged::{BlockSink, TraceSink};
use crate::modules::{Module, ModuleWatch};
use crate::persist::Persistence;
#[cfg(doc)]
use crate::pipelined::Pipelined;
use crate::report::{Continuation, Readiness, Report};
use crate::sink::{SessionInfo, Sink, SinkError};
use crate::stamps::{ClockChoice, ClockUnavailable, StampConverter, TscSource};
use ada_backpressure::{EnvOverrideError, LanePolicies};
use ada_persist::TriggerSet;
use ada_registry::{
    ControlBlock, DrainClaim, LaneKind, Registry, RegistryConfig, RegistryError, RegistryMode,
    RingGeometry, SymbolTableConfig,
};
use ada_shm::clock::{Clock, ClockId, MonotonicClock};
use ada_shm::{AttachOptions, RegionKind, RegionSpec, SegmentName, TRIGGERS_REGION_VERSION};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the controller failed. Each message includes its cause's; [`source`] is the typed
/// cause.
///
/// [`source`]: std::error::Error::source
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// The drain interval is longer than [`ControllerBuilder::MAX_DRAIN_INTERVAL`].
    #[error(
        "invalid controller configuration: drain interval {0:?} is longer than 1 s: threads would drop events while it sleeps"
    )]
    DrainInterval(Duration),
    /// The warm-up period is longer than [`ControllerBuilder::MAX_WARM_UP`].
    #[error(
        "invalid controller configuration: warm-up {0:?} is longer than the longest warm-up, 1 min"
    )]
    WarmUp(Duration),
    /// The registry settings (capacity, ring geometry, symbol table) are out of range.
    #[error("invalid controller configuration: {0}")]
    Config(#[source] RegistryError),
    /// The segment could not be created.
    #[error("cannot create the shared-memory segment: {0}")]
    Segment(#[source] RegistryError),
    /// The segment named to [`ControllerBuilder::attach`] could not be opened: no such segment,
    /// a bad name, or not a valid ADA registry (it is validated as untrusted).
    #[error("cannot attach to the segment {name}: {source}")]
    Attach {
        /// The name as given.
        name: String,
        /// Why.
        source: RegistryError,
    },
    /// A thread of the controller could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        /// Which thread (`ada-drain`, `ada-sink`).
        thread: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The segment's drain could not be claimed: another drain (in this process or a live
    /// other one) is running on it, and two drains would take the same rings.
    #[error("cannot drain the segment: {0}")]
    DrainClaim(#[source] RegistryError),
    /// The drain thread ended before it reported that it started.
    #[error("the drain thread ended before it started")]
    DrainNotStarted,
    /// The drain thread panicked (the report is lost; the sink was not finished).
    #[error("the drain thread panicked: {0}")]
    DrainPanicked(String),
    /// The [`ADA_DROP_POLICY`](ada_backpressure::ENV_VAR) start-up override is set to a value
    /// that is not a drop policy (the variable's name, the part and its byte position are in
    /// the message).
    #[error("invalid controller configuration: {0}")]
    DropPolicyEnv(#[source] EnvOverrideError),
    /// The default sink could not create the trace.
    #[error("cannot create the trace: {0}")]
    Trace(#[from] ada_atf::WriteError),
    /// The sink failed to start or finish.
    #[error("trace output: {0}")]
    Sink(#[from] SinkError),
    /// The session clock asked for cannot be used (`tsc` where the counter is not invariant),
    /// or an attached segment's TSC clock cannot be calibrated here.
    #[error("invalid controller configuration: {0}")]
    Clock(#[source] ClockUnavailable),
}

/// Controller settings.
///
/// ```
/// use ada_controller::{ControllerBuilder, CountingSink, RingGeometry, SessionInfo};
///
/// let controller = ControllerBuilder::new()
///     .capacity(8)
///     .geometry(RingGeometry { index_ring_bytes: 64 << 10, ..RingGeometry::default() })
///     .create()?;
/// // Traced programs attach with `ADA_SHM` set to this name.
/// assert!(controller.segment_name().starts_with("/ada_"));
/// let running = controller.start(CountingSink::default(), SessionInfo::new(0))?;
/// // ... traced threads record; the drain hands their records to the sink ...
/// let report = running.stop(Some(0))?;
/// assert_eq!((report.persisted(), report.exit_code), (0, Some(0)));
/// # Ok::<(), ada_controller::ControllerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ControllerBuilder {
    registry: RegistryConfig,
    drain_interval: Duration,
    live_copy_every: Duration,
    output_dir: PathBuf,
    persistence: Persistence,
    triggers: Option<TriggerSet>,
    drain_hook: Option<DrainHook>,
    warm_up: Duration,
    clock: ControllerClock,
    drain_threads: Option<usize>,
    session_clock: ClockChoice,
    tsc_source: TscSource,
}

impl Default for ControllerBuilder {
    fn default() -> Self {
        ControllerBuilder {
            registry: RegistryConfig::default(),
            drain_interval: Duration::from_millis(1),
            live_copy_every: Duration::from_nanos(crate::drain::LIVE_COPY_EVERY_NS),
            output_dir: PathBuf::from("."),
            persistence: Persistence::default(),
            triggers: None,
            drain_hook: None,
            warm_up: ControllerBuilder::DEFAULT_WARM_UP,
            clock: ControllerClock::default(),
            drain_threads: None,
            session_clock: ClockChoice::Auto,
            tsc_source: TscSource::real(),
        }
    }
}

/// The clock the controller reads for its heartbeat and its warm-up decision (shared, so the
/// builder stays `Clone`).
#[derive(Clone)]
struct ControllerClock(Arc<dyn Clock>);

impl ControllerClock {
    fn now_ns(&self) -> u64 {
        self.0.now_ns()
    }
}

impl Default for ControllerClock {
    fn default() -> Self {
        ControllerClock(Arc::new(MonotonicClock))
    }
}

impl std::fmt::Debug for ControllerClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControllerClock({:?})", self.0.id())
    }
}

impl ControllerBuilder {
    /// The longest drain interval [`create`](ControllerBuilder::create) accepts.
    pub const MAX_DRAIN_INTERVAL: Duration = Duration::from_secs(1);

    /// The default [`warm_up`](ControllerBuilder::warm_up): 50 ms, fifty drain intervals at the
    /// default interval.
    pub const DEFAULT_WARM_UP: Duration = Duration::from_millis(50);

    /// The longest [`warm_up`](ControllerBuilder::warm_up) [`create`](ControllerBuilder::create)
    /// accepts.
    pub const MAX_WARM_UP: Duration = Duration::from_secs(60);

    /// How much later than the drain interval a drain loop iteration may stamp its heartbeat
    /// and still count as healthy (see [`healthy_gap`](ControllerBuilder::healthy_gap)).
    pub const HEALTHY_SLACK: Duration = Duration::from_millis(100);

    /// Defaults: 64 thread slots, 4 × 32 KiB index rings and 2 × 48 KiB detail rings per
    /// thread, the default symbol table, a 1 ms drain interval.
    pub fn new() -> Self {
        Self::default()
    }

    /// The triggers agents mark with (selective persistence): published in the segment's
    /// [`RegionKind::Triggers`](ada_shm::RegionKind::Triggers) region by
    /// [`create`](ControllerBuilder::create), before anything can attach, and never changed
    /// after. An empty set publishes no region (the default: no triggers).
    pub fn triggers(mut self, triggers: TriggerSet) -> Self {
        self.triggers = (!triggers.is_empty()).then_some(triggers);
        self
    }

    /// Where the default sink writes `ada_traces/…` (default: the current directory).
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = dir.into();
        self
    }

    /// Thread slots (threads registered at once), 1..=4096.
    pub fn capacity(mut self, slots: u32) -> Self {
        self.registry.capacity = slots;
        self
    }

    /// Ring pool sizes per thread.
    pub fn geometry(mut self, geometry: RingGeometry) -> Self {
        self.registry.geometry = geometry;
        self
    }

    /// Symbol table size.
    pub fn symbols(mut self, symbols: SymbolTableConfig) -> Self {
        self.registry.symbols = symbols;
        self
    }

    /// How long the drain thread sleeps after a pass that found nothing (at most
    /// [`MAX_DRAIN_INTERVAL`](ControllerBuilder::MAX_DRAIN_INTERVAL)).
    pub fn drain_interval(mut self, interval: Duration) -> Self {
        self.drain_interval = interval;
        self
    }

    /// The least time between two copies of a running thread's active ring that no window asks
    /// for (default [`LIVE_COPY_EVERY_NS`](crate::drain::LIVE_COPY_EVERY_NS), 1 ms): how
    /// stale a slow thread's records may be in the sink. `Duration::ZERO` copies on every pass
    /// (tests that count what each pass delivers), at the price of the drain reading the
    /// cache lines a busy thread is writing.
    pub fn live_copy_every(mut self, every: Duration) -> Self {
        self.live_copy_every = every;
        self
    }

    /// What the drain persists of the detail lane: [`Persistence::Windows`] (the default: a
    /// flight recorder, only windows around marked events) or [`Persistence::All`].
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Each lane's drop policy (default `index=newest,detail=oldest`: see
    /// [`ada_backpressure::LanePolicies`] for why), published in the segment for every agent.
    /// The [`ADA_DROP_POLICY`](ada_backpressure::ENV_VAR) start-up override, read once by
    /// [`create`](ControllerBuilder::create), takes precedence over this.
    pub fn drop_policies(mut self, policies: LanePolicies) -> Self {
        self.registry.backpressure.policies = policies;
        self
    }

    /// Records in the segment's shared fallback ring (a power of two from 2 to 2^20; default
    /// 4096; 0: no fallback ring, so events written before ready, by threads refused a slot or
    /// beyond an exhausted pool are counted as lost instead). Out of range:
    /// [`create`](ControllerBuilder::create) refuses it with [`ControllerError::Config`].
    pub fn fallback_records(mut self, records: u32) -> Self {
        self.registry.fallback_records = records;
        self
    }

    /// How long a lane stays in RECOVERY before it is NORMAL again, unless its free rings fall
    /// to the low watermark meanwhile (default [`DEFAULT_STABILITY_NS`]; at most [`MAX_STABILITY_NS`], else
    /// [`create`](ControllerBuilder::create) refuses it with [`ControllerError::Config`]).
    ///
    /// [`DEFAULT_STABILITY_NS`]: ada_backpressure::BackpressureConfig::DEFAULT_STABILITY_NS
    /// [`MAX_STABILITY_NS`]: ada_backpressure::BackpressureConfig::MAX_STABILITY_NS
    pub fn stability(mut self, period: Duration) -> Self {
        // Saturating: anything beyond u64 ns is beyond the maximum and refused by `create`.
        self.registry.backpressure.stability_ns =
            u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// A test and diagnostics hook the drain thread calls once before it publishes
    /// `registry_ready` ([`DrainPoint::BeforeReady`]), then right before
    /// ([`DrainPoint::BeforePass`]) and right after ([`DrainPoint::AfterPass`]) every pass,
    /// not around the final drain (see [`DrainHook`]). The drain waits for it: a blocking hook
    /// pauses the drain (a stall test's pausable drain), so leave it unset in production
    /// (the default; then it costs one branch per pass).
    pub fn drain_hook(mut self, hook: Arc<dyn Fn(DrainPoint) + Send + Sync>) -> Self {
        self.drain_hook = Some(DrainHook::new(hook));
        self
    }

    /// How long the drain must have been healthy before the controller moves `registry_mode`
    /// from warm-up ([`RegistryMode::DualWrite`]) to steady ([`RegistryMode::PerThreadOnly`])
    /// (default [`DEFAULT_WARM_UP`](ControllerBuilder::DEFAULT_WARM_UP); at most
    /// [`MAX_WARM_UP`](ControllerBuilder::MAX_WARM_UP), else `create` and `attach` refuse it
    /// with [`ControllerError::WarmUp`]; zero: steady at the first healthy iteration). Healthy
    /// is defined in the [module docs](crate::Controller#warm-up--steady) and
    /// [`healthy_gap`](ControllerBuilder::healthy_gap).
    pub fn warm_up(mut self, period: Duration) -> Self {
        self.warm_up = period;
        self
    }

    /// The clock the controller stamps the heartbeat with and measures the warm-up by
    /// (default: [`MonotonicClock`], `CLOCK_MONOTONIC`, which agents compare the heartbeat
    /// with whatever they stamp events with). Tests inject a fake one
    /// (`ada_testkit::FakeClock`); it must read `CLOCK_MONOTONIC`'s timebase ([`Clock::id`])
    /// for agents to make sense of the heartbeat.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ControllerClock(clock);
        self
    }

    /// The most drain workers [`drain_threads`](ControllerBuilder::drain_threads) gives.
    pub const MAX_DRAIN_THREADS: usize = 64;

    /// How many drain workers the default sink ([`Standby::start_default`]) drains with
    /// (default [`default_drain_threads`](ControllerBuilder::default_drain_threads); at least 1,
    /// at most [`MAX_DRAIN_THREADS`](ControllerBuilder::MAX_DRAIN_THREADS) and the slot
    /// capacity). With one, a drain thread hands records to the `ada-sink` thread, which maps,
    /// encodes and writes them ([`Pipelined`]`<`[`AtfSink`]`>`); with `n > 1`, threads
    /// `ada-drain-0` … `ada-drain-<n-1>` each drain the slots `slot % n == w` and map and
    /// encode their events themselves, and the `ada-sink` thread writes them into the one
    /// `events.bin` (see [`TraceSink`](crate::TraceSink)). A custom sink
    /// ([`Standby::start`]) is always drained by one worker. The workers make their passes in
    /// lock step (a pass ends when every worker's has), so more workers than free cores slow
    /// the drain down rather than up.
    pub fn drain_threads(mut self, workers: usize) -> Self {
        self.drain_threads = Some(workers);
        self
    }

    /// The default number of drain workers: a quarter of the cores the process may use
    /// (`std::thread::available_parallelism`), at least 1 — so 1 up to 7 cores, 4 on 16.
    pub fn default_drain_threads() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (cores / 4).max(1)
    }

    /// The clock agents stamp events with (default [`ClockChoice::Auto`]: the CPU's counter
    /// where it is invariant, else `CLOCK_MONOTONIC`); `create` refuses [`ClockChoice::Tsc`]
    /// with [`ControllerError::Clock`] where there is no invariant counter. Whatever agents
    /// stamp with, the drain converts to `CLOCK_MONOTONIC` nanoseconds (see
    /// [`crate::stamps`]); [`attach`](ControllerBuilder::attach) follows the segment's clock
    /// instead. (Not to be confused with [`clock`](ControllerBuilder::clock), the controller's
    /// own `CLOCK_MONOTONIC` for its heartbeat and warm-up.)
    pub fn session_clock(mut self, choice: ClockChoice) -> Self {
        self.session_clock = choice;
        self
    }

    /// Where a TSC session's calibration points come from, and whether the counter is
    /// invariant (default [`TscSource::real`]). Tests inject a fake counter of known rate, or
    /// a "not invariant" machine.
    pub fn tsc_source(mut self, source: TscSource) -> Self {
        self.tsc_source = source;
        self
    }

    /// The longest gap between two drain loop iterations' heartbeats (on the controller's
    /// clock) that still counts as healthy for the warm-up: the drain interval (an idle loop
    /// sleeps that long) plus [`HEALTHY_SLACK`](ControllerBuilder::HEALTHY_SLACK).
    pub fn healthy_gap(&self) -> Duration {
        self.drain_interval.saturating_add(Self::HEALTHY_SLACK)
    }

    /// The registry settings.
    pub fn registry_config(&self) -> &RegistryConfig {
        &self.registry
    }

    /// Validates the settings and creates the segment.
    ///
    /// The [`ADA_DROP_POLICY`](ada_backpressure::ENV_VAR) start-up override is read here, once:
    /// when set, its lanes replace those of [`drop_policies`](ControllerBuilder::drop_policies)
    /// (a lane it does not name takes its default, as in
    /// [`LanePolicies::from_env_override`]); a value that does not parse is
    /// [`ControllerError::DropPolicyEnv`]. What `create` applied is in the segment for the
    /// whole session ([`Controller::registry`]`().backpressure()`, the report, the manifest);
    /// the variable is not read again.
    pub fn create(mut self) -> Result<Controller, ControllerError> {
        self.check_timing()?;
        let env = std::env::var_os(ada_backpressure::ENV_VAR);
        if let Some(policies) = LanePolicies::from_env_override(env.as_deref())
            .map_err(ControllerError::DropPolicyEnv)?
        {
            self.registry.backpressure.policies = policies;
        }
        self.registry.validate().map_err(ControllerError::Config)?;
        // Before the segment exists: its header names the clock, and the two opening
        // calibration points are taken before anything can attach.
        let stamps = StampConverter::for_choice(self.session_clock, &self.tsc_source)
            .map_err(ControllerError::Clock)?;
        self.registry.clock = stamps.clock();
        self.registry.stamps_per_second = stamps.stamps_per_second();
        let encoded = self.triggers.as_ref().map(TriggerSet::encode);
        let extra: Vec<RegionSpec> = encoded
            .as_deref()
            .map(triggers_region)
            .into_iter()
            .collect();
        let registry =
            Registry::create(&self.registry, &extra).map_err(ControllerError::Segment)?;
        if let Some(bytes) = &encoded {
            write_triggers(&registry, bytes).map_err(ControllerError::Segment)?;
        }
        Ok(self.controller(registry, None, stamps))
    }

    /// Opens the existing segment `name` (as `ADA_SHM` names it) whose controller died, to
    /// continue its session: see [Attach](crate::Controller#attach-controller-restart). The
    /// segment is validated as untrusted, exactly as an agent validates it, and it is opened
    /// even though its creator is gone. Its registry settings (capacity, rings, symbol table,
    /// drop policies, triggers) are the segment's: the builder's are not used, nor is the
    /// `ADA_DROP_POLICY` override. The drain interval, output directory, persistence, hook,
    /// warm-up and clock are the builder's.
    ///
    /// Nothing is claimed yet: [`Controller::standby`] claims the drain (taking it over from a
    /// dead holder, refusing a live one).
    pub fn attach(self, name: &str) -> Result<Controller, ControllerError> {
        self.check_timing()?;
        let err = |source: RegistryError| ControllerError::Attach {
            name: name.to_owned(),
            source,
        };
        let parsed = SegmentName::parse(name).map_err(|e| err(e.into()))?;
        let registry =
            Registry::attach(&parsed, AttachOptions { allow_stale: true }).map_err(err)?;
        let control = registry.control();
        // The drain's holder is the controller that died (0 if it had let go); else the
        // segment's creator.
        let previous_controller_pid = match control.drain_owner() {
            0 => control.controller_pid(),
            holder => holder,
        };
        let continuation = Continuation {
            segment: parsed.as_str().to_owned(),
            epoch: 0,
            previous_controller_pid,
        };
        // The segment's clock, whatever the builder asked for: its agents stamp with it.
        let stamps = match registry.clock() {
            ClockId::Monotonic => StampConverter::monotonic(),
            ClockId::Tsc => {
                StampConverter::tsc(self.tsc_source.clone()).map_err(ControllerError::Clock)?
            }
        };
        Ok(self.controller(registry, Some(continuation), stamps))
    }

    fn check_timing(&self) -> Result<(), ControllerError> {
        if self.drain_interval > Self::MAX_DRAIN_INTERVAL {
            return Err(ControllerError::DrainInterval(self.drain_interval));
        }
        if self.warm_up > Self::MAX_WARM_UP {
            return Err(ControllerError::WarmUp(self.warm_up));
        }
        Ok(())
    }

    fn controller(
        self,
        registry: Registry,
        continuation: Option<Continuation>,
        stamps: StampConverter,
    ) -> Controller {
        let healthy_gap = self.healthy_gap();
        let capacity = usize::try_from(registry.capacity()).unwrap_or(usize::MAX);
        let drain_threads = self
            .drain_threads
            .unwrap_or_else(ControllerBuilder::default_drain_threads)
            .clamp(1, ControllerBuilder::MAX_DRAIN_THREADS.min(capacity.max(1)));
        Controller {
            registry,
            settings: Settings {
                drain_interval: self.drain_interval,
                live_copy_every: self.live_copy_every,
                output_dir: self.output_dir,
                persistence: self.persistence,
                triggers: self.triggers,
                drain_hook: self.drain_hook,
                warm_up: self.warm_up,
                healthy_gap,
                clock: self.clock,
                continuation,
                drain_threads,
                stamps,
            },
        }
    }
}

/// The [`RegionKind::Triggers`] region for `encoded` trigger bytes: a `u64` length, then the
/// bytes, rounded up to whole words.
fn triggers_region(encoded: &[u8]) -> RegionSpec {
    RegionSpec {
        kind: RegionKind::Triggers,
        version: TRIGGERS_REGION_VERSION,
        size: 8 + (encoded.len() as u64).next_multiple_of(8),
    }
}

/// Writes `u64 LE length ++ encoded` into the segment's triggers region (made by
/// [`triggers_region`]), as words whose bytes in memory are exactly those bytes on any host.
fn write_triggers(registry: &Registry, encoded: &[u8]) -> Result<(), RegistryError> {
    let segment = registry.segment();
    let region = segment.region(RegionKind::Triggers)?;
    let words = segment.view_slice(region.at::<AtomicU64>(0)?, region.size / 8)?;
    let len = u64::from_ne_bytes((encoded.len() as u64).to_le_bytes());
    let chunks = encoded.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        u64::from_ne_bytes(word)
    });
    for (cell, value) in words.iter().zip(core::iter::once(len).chain(chunks)) {
        // Relaxed: nobody else knows the segment yet; handing its name over (or spawning the
        // traced program) happens after `create` returns and orders these stores before any
        // agent's reads.
        cell.store(value, Ordering::Relaxed);
    }
    Ok(())
}

/// A created (or attached) segment, not yet drained. Agents may attach and record as soon as
/// it exists: their events wait in their rings until the drain starts.
#[derive(Debug)]
pub struct Controller {
    registry: Registry,
    settings: Settings,
}

/// What the builder decided, carried to the drain thread.
#[derive(Debug)]
struct Settings {
    drain_interval: Duration,
    live_copy_every: Duration,
    output_dir: PathBuf,
    persistence: Persistence,
    /// The published triggers, named in the default sink's manifest.
    triggers: Option<TriggerSet>,
    drain_hook: Option<DrainHook>,
    warm_up: Duration,
    healthy_gap: Duration,
    clock: ControllerClock,
    /// `Some` when attached to a dead controller's segment (its epoch filled in at ready).
    continuation: Option<Continuation>,
    /// Drain workers of the default sink.
    drain_threads: usize,
    /// The session clock's converter (its opening calibration points taken).
    stamps: StampConverter,
}

/// Numbers the drain thread publishes while it runs (for progress displays).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LiveStats {
    records: AtomicU64,
    bytes: AtomicU64,
    live_threads: AtomicU64,
    passes: AtomicU64,
}

/// A snapshot of [`LiveStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveSnapshot {
    /// Records handed to the sink so far.
    pub records: u64,
    /// Bytes drained so far.
    pub bytes: u64,
    /// Threads registered at the last pass.
    pub live_threads: u64,
    /// Drain passes so far.
    pub passes: u64,
}

impl LiveStats {
    /// The current numbers.
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            // Relaxed (all four): statistics for progress displays; nothing else is published
            // through them and a slightly stale value is fine.
            records: self.records.load(Ordering::Relaxed),
            // Relaxed: as above.
            bytes: self.bytes.load(Ordering::Relaxed),
            // Relaxed: as above.
            live_threads: self.live_threads.load(Ordering::Relaxed),
            // Relaxed: as above.
            passes: self.passes.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    stop: AtomicBool,
    dead: Mutex<Vec<u32>>,
    live: LiveStats,
}

impl Controller {
    /// The segment name agents attach to (the value of `ADA_SHM`).
    pub fn segment_name(&self) -> &str {
        self.registry.segment().name().as_str()
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether this controller continues the session of a dead one
    /// ([`ControllerBuilder::attach`]).
    pub fn is_continuation(&self) -> bool {
        self.settings.continuation.is_some()
    }

    /// Starts the drain thread without a session: it claims the segment's drain, stamps the
    /// heartbeat, publishes `registry_ready` (warm-up mode, a new epoch) and keeps the
    /// heartbeat ticking every drain interval; this returns once ready is published. The
    /// session (and the sink) come later, with [`Standby::start`] or
    /// [`Standby::start_default`] — after the traced command was spawned, say, so that its pid
    /// can name the trace.
    ///
    /// A segment has one drain: a second is refused with [`ControllerError::DrainClaim`]
    /// (naming the holder's pid), and nothing is published then. A holder that died (a killed
    /// controller) is taken over.
    pub fn standby(self) -> Result<Standby, ControllerError> {
        let Controller { registry, settings } = self;
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread_registry = registry.clone();
        let interval = settings.drain_interval;
        let clock = settings.clock.clone();
        let inherit = settings.continuation.is_some();
        let hook = settings.drain_hook.clone();
        let handle = std::thread::Builder::new()
            .name("ada-drain".into())
            .spawn(move || {
                let standby = StandbyRun {
                    clock: &clock,
                    interval,
                    inherit,
                    hook,
                };
                standby_thread(&thread_registry, standby, ready_tx, job_rx)
            })
            .map_err(|source| ControllerError::Spawn {
                thread: "ada-drain",
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(ready)) => {
                let mut settings = settings;
                if let Some(c) = &mut settings.continuation {
                    c.epoch = ready.epoch;
                }
                Ok(Standby {
                    registry,
                    settings,
                    ready,
                    jobs: Some(jobs),
                    handle: Some(handle),
                })
            }
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(ControllerError::DrainNotStarted)
            }
        }
    }

    /// Starts the drain thread with the default sink: [`standby`](Controller::standby), then
    /// [`Standby::start_default`].
    pub fn start_default(
        self,
        session: SessionInfo,
    ) -> Result<Running<TraceSink>, ControllerError> {
        self.standby()?.start_default(session)
    }

    /// Starts the drain thread, feeding `sink` (a custom controller's own [`Sink`]):
    /// [`standby`](Controller::standby), then [`Standby::start`].
    pub fn start<S: Sink + 'static>(
        self,
        sink: S,
        session: SessionInfo,
    ) -> Result<Running<S>, ControllerError> {
        self.standby()?.start(sink, session)
    }
}

/// What the standby published.
#[derive(Debug, Clone, Copy)]
struct Ready {
    epoch: u32,
    ready_at_ns: u64,
}

/// What a [`Standby`]'s drain thread hands the session's drain: the claim it holds and what it
/// saw when it published ready.
struct Claimed<'r> {
    claim: DrainClaim<'r>,
    ready: Ready,
    /// Inherited threads' lanes (continuations only): see [`Inherited`].
    inherited: Inherited,
}

/// The session's drain, sent to the standby's thread: generic over the sink on the sending
/// side, erased here so that the standby thread could start before the sink's type was known.
type Job = Box<dyn for<'r> FnOnce(&'r Registry, Claimed<'r>) + Send>;

/// The drain is claimed and `registry_ready` published; the drain thread ticks the heartbeat
/// and waits for the session ([`start`](Standby::start)).
///
/// Dropping it (without starting) withdraws readiness and releases the drain claim; the
/// segment goes away with the last handle of the controller that created it.
#[must_use = "the standby ends when this is dropped; call `start` to drain"]
pub struct Standby {
    registry: Registry,
    settings: Settings,
    ready: Ready,
    /// `None` once started.
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    /// `None` once started or ended.
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Standby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standby")
            .field("segment", &self.segment_name())
            .field("epoch", &self.ready.epoch)
            .finish_non_exhaustive()
    }
}

impl Standby {
    /// The segment name agents attach to (the value of `ADA_SHM`).
    pub fn segment_name(&self) -> &str {
        self.registry.segment().name().as_str()
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The epoch the standby published ready under (1 for a new segment; one more than the
    /// dead controller's for an attached one).
    pub fn epoch(&self) -> u32 {
        self.ready.epoch
    }

    /// When ready was published, on the controller's clock.
    pub fn ready_at_ns(&self) -> u64 {
        self.ready.ready_at_ns
    }

    /// Starts draining into the default sink: an ATF v4 trace of process `session.pid` under
    /// the builder's output directory, written on a thread of its own (`ada-sink`) so the
    /// drain never waits for the disk; its manifest names the builder's triggers
    /// ([`AtfSink::set_triggers`]) and, for an attached controller, the session it continues.
    /// It is drained by [`ControllerBuilder::drain_threads`] workers (see [`TraceSink`]).
    /// See [`start`](Standby::start) for `session`.
    pub fn start_default(
        self,
        session: SessionInfo,
    ) -> Result<Running<TraceSink>, ControllerError> {
        let mut sink = AtfSink::create(&self.settings.output_dir, session.pid)?;
        if let Some(triggers) = &self.settings.triggers {
            sink.set_triggers(triggers.specs().iter().map(ToString::to_string).collect());
        }
        let workers = self.settings.drain_threads;
        let sink = if workers > 1 {
            TraceSink::merged(sink, workers)
        } else {
            TraceSink::single(sink)
        }
        .map_err(|source| ControllerError::Spawn {
            thread: "ada-sink",
            source,
        })?;
        self.start(sink, session)
    }

    /// Starts draining into `sink` (a custom controller's own [`Sink`]).
    ///
    /// `session` says what the caller knows about the traced process (pid, executable,
    /// arguments: [`SessionInfo::new`] and its `with_*` methods); the controller fills in the
    /// segment name before [`Sink::begin`] sees it. Its [`trust`](SessionInfo::trust) says
    /// whose threads count as verified: by default the session's pid and its descendants (a
    /// controller that did not spawn the traced program names the pids with
    /// [`SessionInfo::with_trust`], or trusts any process by choosing
    /// [`ProcessTrust::AnyProcess`](crate::ProcessTrust::AnyProcess)).
    ///
    /// The drain thread begins the sink (its error is returned here, and the standby ends:
    /// readiness withdrawn, claim released), then drains until [`Running::stop`]. One drain
    /// thread drains every slot into `sink` whatever
    /// [`ControllerBuilder::drain_threads`] says (a [`Sink`] is one object, called from one
    /// thread); a [`TraceSink`] made with [`TraceSink::merged`] is drained by its workers.
    pub fn start<S: Sink + 'static>(
        mut self,
        sink: S,
        mut session: SessionInfo,
    ) -> Result<Running<S>, ControllerError> {
        session.segment = self.segment_name().to_owned();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            dead: Mutex::new(Vec::new()),
            live: LiveStats::default(),
        });
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let (result_tx, result) = std::sync::mpsc::sync_channel(1);
        let run = DrainRun {
            shared: Arc::clone(&shared),
            interval: self.settings.drain_interval,
            live_copy_every: self.settings.live_copy_every,
            persistence: self.settings.persistence,
            hook: self.settings.drain_hook.clone(),
            warm_up: self.settings.warm_up,
            healthy_gap: self.settings.healthy_gap,
            clock: self.settings.clock.clone(),
            continuation: self.settings.continuation.clone(),
            stamps: self.settings.stamps.clone(),
        };
        let job: Job = Box::new(move |registry, claimed| {
            let out = drain_session(registry, claimed, sink, &session, run, started_tx);
            let _ = result_tx.send(out);
        });
        let (Some(jobs), Some(handle)) = (self.jobs.take(), self.handle.take()) else {
            unreachable!("a Standby is started once");
        };
        // A send fails only if the standby thread ended (panicked): joined below.
        let sent = jobs.send(job).is_ok();
        let began = if sent {
            started
                .recv()
                .unwrap_or(Err(ControllerError::DrainNotStarted))
        } else {
            Err(ControllerError::DrainNotStarted)
        };
        if let Err(e) = began {
            return Err(match handle.join() {
                Err(panic) => ControllerError::DrainPanicked(panic_message(&*panic)),
                Ok(()) => e,
            });
        }
        Ok(Running {
            registry: self.registry.clone(),
            shared,
            handle: Some(handle),
            result,
        })
    }
}

impl Drop for Standby {
    /// Not started: the thread withdraws readiness and releases the claim.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The drain thread is running.
///
/// End it with [`stop`](Running::stop), which returns the [`Report`]. Dropping it without
/// stopping ends the session the same way — final drain, segment unlinked, sink finished — but
/// the report (and any error) is lost, so a panic or an early return between
/// [`Standby::start`] and `stop` still leaves a finished trace.
#[must_use = "the drain stops when this is dropped; call `stop` for the report"]
pub struct Running<S: Sink + 'static> {
    registry: Registry,
    shared: Arc<Shared>,
    /// `None` once stopped.
    handle: Option<JoinHandle<()>>,
    /// What the drain thread ends with.
    result: std::sync::mpsc::Receiver<(Report, S)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("live", &self.live).finish()
    }
}

impl<S: Sink + 'static> std::fmt::Debug for Running<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("segment", &self.segment_name())
            .field("live", &self.shared.live)
            .finish_non_exhaustive()
    }
}

impl<S: Sink + 'static> Running<S> {
    /// The segment name agents attach to.
    pub fn segment_name(&self) -> &str {
        self.registry.segment().name().as_str()
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Live numbers.
    pub fn live(&self) -> LiveSnapshot {
        self.shared.live.snapshot()
    }

    /// Tells the drain that process `pid` is gone (reaped by the caller): its threads' slots
    /// are drained and freed even though they never unregistered.
    pub fn process_exited(&self, pid: u32) {
        if let Ok(mut dead) = self.shared.dead.lock() {
            dead.push(pid);
        }
    }

    /// Stops draining: a final drain of every submitted and active ring, then the sink
    /// finishes. `exit_code` is the traced command's exit code (128 + signal when killed), if
    /// known: it goes to [`Report::exit_code`] and the trace's `TraceEnd`. Returns the
    /// accounting (with the sink's output in [`Report::output`]).
    pub fn stop(mut self, exit_code: Option<i32>) -> Result<Report, ControllerError> {
        self.shutdown(exit_code)
    }

    fn shutdown(&mut self, exit_code: Option<i32>) -> Result<Report, ControllerError> {
        let Some(handle) = self.handle.take() else {
            unreachable!("a Running is shut down once: by stop or by drop");
        };
        // Release: pairs with the drain thread's Acquire load; nothing else is published.
        self.shared.stop.store(true, Ordering::Release);
        let joined = handle.join();
        // The session is over: no new agent may attach. (Attached ones keep their mapping; a
        // registry installed in this process as its own agent would otherwise keep the name.)
        let _ = self.registry.segment().unlink();
        joined.map_err(|panic| ControllerError::DrainPanicked(panic_message(&*panic)))?;
        let (mut report, mut sink) = self.result.try_recv().map_err(|_| {
            ControllerError::DrainPanicked("the drain thread ended without a report".into())
        })?;
        report.exit_code = exit_code;
        let output = sink.finish(&report)?;
        report.output = Some(output);
        Ok(report)
    }
}

impl<S: Sink + 'static> Drop for Running<S> {
    /// Not stopped: stop now (final drain, sink finished), discarding the report.
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.shutdown(None);
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// What the standby needs besides the registry and its channels.
struct StandbyRun<'c> {
    clock: &'c ControllerClock,
    interval: Duration,
    /// Attaching to a running session: note the threads it inherits.
    inherit: bool,
    hook: Option<DrainHook>,
}

/// The standby: claims the drain, publishes ready, ticks the heartbeat every `interval` until
/// the session's drain arrives (then runs it on this thread) or the [`Standby`] is dropped.
fn standby_thread(
    registry: &Registry,
    run: StandbyRun<'_>,
    ready_tx: std::sync::mpsc::SyncSender<Result<Ready, ControllerError>>,
    jobs: std::sync::mpsc::Receiver<Job>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let StandbyRun {
        clock,
        interval,
        inherit,
        hook,
    } = run;
    let control = registry.control();
    let claim = match registry.claim_drain() {
        Ok(claim) => claim,
        Err(e) => {
            let _ = ready_tx.send(Err(ControllerError::DrainClaim(e)));
            return;
        }
    };
    // After the claim (so whatever the threads count from now on is this drain's to account
    // for), before ready is published again.
    let inherited = if inherit {
        Inherited::take(registry)
    } else {
        Inherited::default()
    };
    if let Some(hook) = &hook {
        hook.call(DrainPoint::BeforeReady);
    }
    let ready_at_ns = clock.now_ns();
    control.tick_heartbeat(ready_at_ns);
    let epoch = control.publish_ready(RegistryMode::DualWrite);
    let ready = Ready { epoch, ready_at_ns };
    let _ = ready_tx.send(Ok(ready));
    loop {
        match jobs.recv_timeout(interval.min(HEARTBEAT_EVERY)) {
            Ok(job) => {
                job(
                    registry,
                    Claimed {
                        claim,
                        ready,
                        inherited,
                    },
                );
                break;
            }
            Err(RecvTimeoutError::Timeout) => control.tick_heartbeat(clock.now_ns()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Nobody drains from here on (the claim, if not already, is released as this returns).
    control.withdraw_ready();
}

/// What a session's drain needs besides the registry, the claim and the sink.
struct DrainRun {
    shared: Arc<Shared>,
    interval: Duration,
    live_copy_every: Duration,
    persistence: Persistence,
    hook: Option<DrainHook>,
    warm_up: Duration,
    healthy_gap: Duration,
    clock: ControllerClock,
    continuation: Option<Continuation>,
    stamps: StampConverter,
}

/// The session's drain, on the standby's thread: begins the sink (telling `started` how that
/// went), drains until stopped, and makes the report. A [`TraceSink`] made for several workers
/// is drained by them ([`Workers`]); any other sink by one [`Drainer`] on this thread.
fn drain_session<S: Sink + 'static>(
    registry: &Registry,
    claimed: Claimed<'_>,
    mut sink: S,
    session: &SessionInfo,
    run: DrainRun,
    started: std::sync::mpsc::SyncSender<Result<(), ControllerError>>,
) -> (Report, S) {
    let start = Instant::now();
    if let Err(e) = sink.begin(session) {
        let _ = started.send(Err(e.into()));
        return (Report::default(), sink);
    }
    let _ = started.send(Ok(()));
    let Claimed {
        claim,
        ready,
        inherited,
    } = claimed;
    let control = registry.control();
    let worker_sinks = (&mut sink as &mut dyn std::any::Any)
        .downcast_mut::<TraceSink>()
        .and_then(TraceSink::worker_sinks);
    let (mut report, ended, sink) = match worker_sinks {
        None => {
            let mut drainer = Drainer::with_claim(registry, claim, sink);
            configure(&mut drainer, &run, session);
            let ended = drain_loop(registry, &mut drainer, &run, watch_modules(session));
            let (report, sink) = drainer.finish(&ended.gone, Report::default());
            (report, ended, sink)
        }
        Some(sinks) => {
            let workers = sinks.len();
            let (report, ended, sinks) = std::thread::scope(|scope| {
                let mut drainers = Drainer::workers(registry, claim, sinks);
                for d in &mut drainers {
                    configure(d, &run, session);
                    // Points come from the loop (see `Workers::stamps`).
                    d.set_stamps(run.stamps.without_source());
                    // Each keeps up to its share, so the merged report keeps at most the bound.
                    d.detailed_threads(crate::drain::DETAILED_THREADS.div_ceil(workers));
                }
                let mut pool = Workers::spawn(scope, registry, drainers, run.stamps.clone());
                let ended = drain_loop(registry, &mut pool, &run, watch_modules(session));
                let (report, sinks) = pool.finish(&ended.gone);
                (report, ended, sinks)
            });
            let mut report = report;
            if let Some(merged) = (&mut sink as &mut dyn std::any::Any).downcast_mut::<TraceSink>()
                && let Err(e) = merged.collect(sinks)
            {
                report.sink_failures += 1;
                report.sink_error = Some(e.to_string());
            }
            (report, ended, sink)
        }
    };
    control.withdraw_ready();
    report.duration = start.elapsed();
    report.longest_pass = ended.longest;
    report.readiness = Readiness {
        epoch: ready.epoch,
        ready_at_ns: ready.ready_at_ns,
        steady_at_ns: ended.warm.steady_at_ns,
        warm_up: run.warm_up,
        warm_up_restarts: ended.warm.restarts,
    };
    // Written by the agents: information only.
    report.agent_stats = control.agent_stats();
    report.continuation = run.continuation.clone();
    inherited.settle(&mut report);
    (report, sink)
}

/// Applies the session's settings to a drainer.
fn configure<S: Sink>(d: &mut Drainer<'_, S>, run: &DrainRun, session: &SessionInfo) {
    // Several workers each convert their own records with a converter of their own, fed the
    // same points by the loop (see `Workers::stamps`).
    d.set_stamps(run.stamps.clone());
    d.live_copy_every(run.live_copy_every);
    d.fallback_abandon_passes(fallback_abandon_passes(run.interval));
    d.trust(&session.trust, session.pid);
    d.persistence(run.persistence);
}

/// The session's module watcher (see [`crate::modules`]), following the session's process
/// from the start; `None` when its thread cannot start.
fn watch_modules(session: &SessionInfo) -> Option<ModuleWatch> {
    let watch = ModuleWatch::start(Verifier::new(&session.trust, session.pid))?;
    if session.pid != 0 {
        watch.watch(session.pid);
    }
    Some(watch)
}

/// How long the drain waits for the module watcher's final read before the final drain.
const FINAL_MODULES_PATIENCE: Duration = Duration::from_secs(2);

/// What the drain loop drives: one [`Drainer`], or the [`Workers`] of a merged trace.
trait SessionDrain {
    /// See [`Drainer::modules`].
    fn modules(&mut self, pid: u32, modules: Vec<Module>);
    /// See [`Drainer::process_died`].
    fn process_died(&mut self, pid: u32);
    /// See [`Drainer::end_exited_fallback_threads`].
    fn end_exited_fallback_threads(&mut self) -> PassStats;
    /// One pass over every slot (see [`Drainer::pass`]).
    fn pass(&mut self) -> PassStats;
}

impl<S: Sink> SessionDrain for Drainer<'_, S> {
    fn modules(&mut self, pid: u32, modules: Vec<Module>) {
        Drainer::modules(self, pid, &modules);
    }
    fn process_died(&mut self, pid: u32) {
        Drainer::process_died(self, pid);
    }
    fn end_exited_fallback_threads(&mut self) -> PassStats {
        Drainer::end_exited_fallback_threads(self)
    }
    fn pass(&mut self) -> PassStats {
        Drainer::pass(self)
    }
}

/// How the drain loop ended.
struct LoopEnd {
    /// Processes found dead (or reported gone), whose slots the final drain frees.
    gone: Vec<u32>,
    longest: Duration,
    warm: WarmUp,
}

/// The drain loop (see the [module docs](self)): heartbeat, warm-up, dead processes,
/// fallback-only threads, hook, pass, until stopped.
fn drain_loop<D: SessionDrain>(
    registry: &Registry,
    drain: &mut D,
    run: &DrainRun,
    modules: Option<ModuleWatch>,
) -> LoopEnd {
    let DrainRun {
        shared,
        interval,
        live_copy_every,
        hook,
        warm_up,
        healthy_gap,
        clock,
        ..
    } = run;
    let interval = *interval;
    let control = registry.control();
    let mut warm = WarmUp::new(*warm_up, *healthy_gap);
    let mut last_liveness = Instant::now();
    let mut last_orphan_check = Instant::now();
    let mut dead: Vec<u32> = Vec::new();
    let mut longest = Duration::ZERO;
    let mut last_full_ring = Instant::now();
    // Acquire: pairs with `stop`'s Release store.
    while !shared.stop.load(Ordering::Acquire) {
        let now = clock.now_ns();
        control.tick_heartbeat(now);
        if warm.iteration(now) {
            control.set_mode(RegistryMode::PerThreadOnly);
        }
        take_dead(shared, drain, &mut dead);
        if last_liveness.elapsed() >= Duration::from_millis(100) {
            last_liveness = Instant::now();
            for pid in active_pids(registry) {
                if !ada_shm::process::exists(pid) {
                    drain.process_died(pid);
                    dead.push(pid);
                } else if let Some(watch) = &modules {
                    // Once per pid: the watcher ignores pids it was told about.
                    watch.watch(pid);
                }
            }
        }
        if let Some(watch) = &modules {
            watch.take(|pid, found| drain.modules(pid, found));
        }
        if last_orphan_check.elapsed() >= FALLBACK_THREAD_CHECK {
            last_orphan_check = Instant::now();
            let taken = drain.end_exited_fallback_threads();
            // Relaxed (both): statistics for progress displays, as in `publish`.
            shared
                .live
                .records
                .fetch_add(taken.records, Ordering::Relaxed);
            shared.live.bytes.fetch_add(taken.bytes, Ordering::Relaxed);
        }
        if let Some(hook) = hook {
            hook.call(DrainPoint::BeforePass);
        }
        let t = Instant::now();
        let pass = drain.pass();
        longest = longest.max(t.elapsed());
        if let Some(hook) = hook {
            hook.call(DrainPoint::AfterPass);
        }
        publish(&shared.live, &pass);
        if pass.submitted_rings > 0 {
            last_full_ring = Instant::now();
        }
        // A pass that found records looks again at once.
        if pass.bytes == 0 {
            if last_full_ring.elapsed() < *live_copy_every {
                // Threads filled rings a moment ago: their next full rings are due any time,
                // and their active rings are copied only every `live_copy_every`, so a pass
                // finding nothing is no sign of idleness. Look again after a short nap rather
                // than the interval (a spinning drain would take the CPU its own sink and the
                // traced threads need: measured, passes of 25 ms and drops at 2 M events/s on
                // two cores). A thread writing a trickle fills no ring: the drain then sleeps
                // the interval, and its live copies come every period.
                std::thread::sleep(interval.min(BUSY_NAP));
            } else {
                idle(interval, control, clock);
            }
        }
    }
    control.request_shutdown();
    // The live processes' modules once more, before the final drain (and the sink's end);
    // the drain keeps passing while the read runs, so threads still writing get their rings.
    if let Some(watch) = modules {
        watch.finish(FINAL_MODULES_PATIENCE, |found| match found {
            Some((pid, found)) => drain.modules(pid, found),
            None => {
                let pass = drain.pass();
                publish(&shared.live, &pass);
            }
        });
    }
    take_dead(shared, drain, &mut dead);
    let mut gone: Vec<u32> = active_pids(registry)
        .into_iter()
        .filter(|&p| !ada_shm::process::exists(p))
        .collect();
    gone.extend(dead);
    LoopEnd {
        gone,
        longest,
        warm,
    }
}

/// Pids owning `ACTIVE` slots right now.
fn active_pids(registry: &Registry) -> Vec<u32> {
    let mut pids: Vec<u32> = registry
        .view()
        .live_slots()
        .filter(|s| s.state == ada_registry::SlotState::Active)
        .map(|s| s.owner.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// A command for one drain worker.
enum Command {
    /// A pass, after adding the calibration point the loop took for it, if any.
    Pass(Option<ada_shm::tsc::Point>),
    NoteDied(u32),
    EndExitedFallbackThreads,
    /// Modules for the worker's sink (worker 0's: they go to the manifest).
    Modules(u32, Vec<Module>),
    /// The final look at the lanes, after adding the session's last calibration point.
    FinalLanes(Option<ada_shm::tsc::Point>),
    FinalFallback,
    DeliverMailbox,
    Finish,
}

/// A worker's answer.
enum Answer {
    Stats(PassStats),
    Done,
    Finished(Box<(Report, BlockSink)>),
    /// The worker panicked (sent by its [`PanicAlarm`] while it unwinds).
    Panicked,
}

/// Tells the drain loop that worker `w` panicked: without it the loop would wait for the
/// worker's answer for ever (the other workers hold clones of the answer channel's sender, so
/// it never disconnects).
struct PanicAlarm<'a> {
    w: usize,
    answers: &'a std::sync::mpsc::Sender<(usize, Answer)>,
}

impl Drop for PanicAlarm<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.answers.send((self.w, Answer::Panicked));
        }
    }
}

/// The drain workers of a merged trace (see [`TraceSink`]), each on a thread of its own
/// (`ada-drain-<w>`) with its [`Drainer`]. They work in lock step: the drain loop hands every
/// worker the same command (a pass, a dead process, the steps of the final drain) and waits
/// for all of them, so a pass is one pass of every worker, a hook around it pauses them all,
/// and the shared fallback ring's final read comes after every worker's final look at its
/// lanes.
struct Workers<'r> {
    registry: &'r Registry,
    /// The session's calibration: the loop takes the points (on the converter's schedule)
    /// and hands each to every worker, so all convert with the same samples, and the report
    /// shows these.
    stamps: StampConverter,
    commands: Vec<std::sync::mpsc::Sender<Command>>,
    answers: std::sync::mpsc::Receiver<(usize, Answer)>,
}

impl<'r> Workers<'r> {
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        registry: &'r Registry,
        drainers: Vec<Drainer<'r, BlockSink>>,
        stamps: StampConverter,
    ) -> Workers<'r>
    where
        'r: 'scope,
    {
        let (answer_tx, answers) = std::sync::mpsc::channel();
        let mut commands = Vec::with_capacity(drainers.len());
        for (w, drainer) in drainers.into_iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel::<Command>();
            let answer = answer_tx.clone();
            std::thread::Builder::new()
                .name(format!("ada-drain-{w}"))
                .spawn_scoped(scope, move || worker(w, drainer, &rx, &answer))
                .unwrap_or_else(|e| panic!("cannot start the drain worker ada-drain-{w}: {e}"));
            commands.push(tx);
        }
        Workers {
            registry,
            stamps,
            commands,
            answers,
        }
    }

    /// Gives `command` to the workers `to` selects and waits for their answers (in worker
    /// order).
    fn all(&self, command: impl Fn() -> Command, to: impl Fn(usize) -> bool) -> Vec<Answer> {
        let mut asked = 0;
        for (w, tx) in self.commands.iter().enumerate() {
            if to(w) {
                if tx.send(command()).is_err() {
                    panic!("the drain worker ada-drain-{w} stopped");
                }
                asked += 1;
            }
        }
        let mut answers: Vec<(usize, Answer)> = (0..asked)
            .map(|_| {
                let answer = self
                    .answers
                    .recv()
                    .unwrap_or_else(|_| panic!("a drain worker stopped"));
                // The drain ends as a single drain thread's panic ends it: the session's
                // report says the drain panicked (dropping `self` on the way out stops the
                // other workers, so the scope's join does not wait for ever).
                if let (w, Answer::Panicked) = answer {
                    panic!("the drain worker ada-drain-{w} panicked");
                }
                answer
            })
            .collect();
        answers.sort_by_key(|(w, _)| *w);
        answers.into_iter().map(|(_, a)| a).collect()
    }

    /// A calibration point for the workers: when one is due (`now`: whatever the schedule),
    /// the new sample.
    fn sample(&mut self, now: bool) -> Option<ada_shm::tsc::Point> {
        let before = self.stamps.latest_sample();
        let at = crate::stamps::now_ns();
        if now {
            self.stamps.sample_now(at);
        } else {
            self.stamps.tick(at);
        }
        let after = self.stamps.latest_sample();
        (after != before).then_some(after).flatten()
    }

    fn stats(answers: Vec<Answer>) -> PassStats {
        let mut total = PassStats::default();
        for a in answers {
            if let Answer::Stats(p) = a {
                total.add(&p);
            }
        }
        total
    }

    /// The final drain (see [`Drainer::finish`]): every worker's final look at its lanes, then
    /// one final read of the fallback ring, every worker's mailbox, and the workers' reports
    /// merged (one after the other: the last has the fallback ring's final accounting).
    fn finish(mut self, dead_pids: &[u32]) -> (Report, Vec<BlockSink>) {
        for &pid in dead_pids {
            SessionDrain::process_died(&mut self, pid);
        }
        let everyone = |_| true;
        let last = self.sample(true);
        self.all(|| Command::FinalLanes(last), everyone);
        self.all(|| Command::FinalFallback, |w| w == 0);
        self.all(|| Command::DeliverMailbox, everyone);
        let mut report: Option<Report> = None;
        let mut sinks = Vec::with_capacity(self.commands.len());
        for w in 0..self.commands.len() {
            for answer in self.all(|| Command::Finish, |v| v == w) {
                if let Answer::Finished(finished) = answer {
                    let (r, sink) = *finished;
                    match &mut report {
                        None => report = Some(r),
                        Some(merged) => merged.merge_worker(r, crate::drain::DETAILED_THREADS),
                    }
                    sinks.push(sink);
                }
            }
        }
        let mut report = report.unwrap_or_default();
        // The samples every worker converted with (not worker 0's anchors).
        report.clock = self.stamps.session_clock();
        (report, sinks)
    }
}

impl SessionDrain for Workers<'_> {
    fn modules(&mut self, pid: u32, modules: Vec<Module>) {
        // Asked of one worker: the command is made once.
        self.all(|| Command::Modules(pid, modules.clone()), |w| w == 0);
    }
    fn process_died(&mut self, pid: u32) {
        // Every worker notes it on its accounts before the slots are marked (EXITED).
        self.all(|| Command::NoteDied(pid), |_| true);
        self.registry.view().mark_process_dead(pid);
    }
    fn end_exited_fallback_threads(&mut self) -> PassStats {
        // The fallback-only threads are shared: one worker ends them.
        Workers::stats(self.all(|| Command::EndExitedFallbackThreads, |w| w == 0))
    }
    fn pass(&mut self) -> PassStats {
        let point = self.sample(false);
        Workers::stats(self.all(|| Command::Pass(point), |_| true))
    }
}

/// A drain worker's thread: runs the commands it is given until the final one.
fn worker(
    w: usize,
    mut drainer: Drainer<'_, BlockSink>,
    commands: &std::sync::mpsc::Receiver<Command>,
    answers: &std::sync::mpsc::Sender<(usize, Answer)>,
) {
    let _alarm = PanicAlarm { w, answers };
    let mut spilled_before = Vec::new();
    while let Ok(command) = commands.recv() {
        let answer = match command {
            Command::Pass(point) => {
                if let Some(point) = point {
                    drainer.add_stamp_point(point);
                }
                Answer::Stats(drainer.pass())
            }
            Command::Modules(pid, modules) => {
                drainer.modules(pid, &modules);
                Answer::Done
            }
            Command::NoteDied(pid) => {
                drainer.note_died(pid);
                Answer::Done
            }
            Command::EndExitedFallbackThreads => {
                Answer::Stats(drainer.end_exited_fallback_threads())
            }
            Command::FinalLanes(point) => {
                if let Some(point) = point {
                    drainer.add_stamp_point(point);
                }
                spilled_before = drainer.final_lanes();
                Answer::Done
            }
            Command::FinalFallback => {
                drainer.final_fallback_drain();
                Answer::Done
            }
            Command::DeliverMailbox => Answer::Stats(drainer.deliver_mailbox()),
            Command::Finish => {
                let (report, sink) = drainer.finish_accounts(&spilled_before, Report::default());
                let _ = answers.send((w, Answer::Finished(Box::new((report, sink)))));
                return;
            }
        };
        if answers.send((w, answer)).is_err() {
            return;
        }
    }
}

/// How long a reserved slot of the shared fallback ring may block the drain before it is
/// abandoned: a producer preempted between reserving and committing (a loaded machine can keep
/// a thread off the CPU for tens of milliseconds) must not be taken for a dead one.
const FALLBACK_PATIENCE: Duration = Duration::from_millis(100);

/// The fallback ring's abandon limit in passes for a drain that passes every `interval` (at
/// least [`ada_registry::fallback::ABANDON_PASSES`]): a pass takes at least the interval, so
/// the limit is at least [`FALLBACK_PATIENCE`].
fn fallback_abandon_passes(interval: Duration) -> u32 {
    let per = interval.as_nanos().max(1);
    let passes = FALLBACK_PATIENCE.as_nanos().div_ceil(per);
    u32::try_from(passes)
        .unwrap_or(u32::MAX)
        .max(ada_registry::fallback::ABANDON_PASSES)
}

/// The controller's warm-up decision, fed one drain loop iteration at a time with the
/// controller's clock (a pure state machine: the drain thread feeds it, tests too).
///
/// The healthy period starts at the first iteration; an iteration whose time is more than
/// `max_gap` after the previous one's (or before it: a clock that went back) starts it again
/// (counted in `restarts`). The first iteration at least `period` after the period's start
/// makes the mode steady, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WarmUp {
    period_ns: u64,
    max_gap_ns: u64,
    last_ns: Option<u64>,
    healthy_since_ns: u64,
    steady_at_ns: Option<u64>,
    restarts: u64,
}

impl WarmUp {
    fn new(period: Duration, max_gap: Duration) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        WarmUp {
            period_ns: ns(period),
            max_gap_ns: ns(max_gap),
            last_ns: None,
            healthy_since_ns: 0,
            steady_at_ns: None,
            restarts: 0,
        }
    }

    /// One drain loop iteration at `now_ns`. Returns `true` when this iteration made the mode
    /// steady.
    fn iteration(&mut self, now_ns: u64) -> bool {
        if self.steady_at_ns.is_some() {
            return false;
        }
        match self.last_ns.map(|last| now_ns.checked_sub(last)) {
            None => self.healthy_since_ns = now_ns,
            Some(Some(gap)) if gap <= self.max_gap_ns => {}
            Some(_) => {
                self.healthy_since_ns = now_ns;
                self.restarts += 1;
            }
        }
        self.last_ns = Some(now_ns);
        if now_ns - self.healthy_since_ns >= self.period_ns {
            self.steady_at_ns = Some(now_ns);
            return true;
        }
        false
    }
}

/// Who a slot's owner fields say its thread is: (slot, generation, pid, OS thread id).
type SlotKey = (u32, u32, u32, u64);

/// The threads an attached controller found registered when it took the drain over, with, per
/// lane, what their counters said then: events written less events lost (the most the
/// previous controller can have received of them). Empty for a new segment.
#[derive(Debug, Default)]
struct Inherited(HashMap<SlotKey, [u64; 2]>);

impl Inherited {
    /// Reads every live slot's counters (untrusted: only ever an upper bound, see
    /// [`settle`](Inherited::settle)).
    fn take(registry: &Registry) -> Self {
        let mut map = HashMap::new();
        for slot in registry.view().live_slots() {
            let o = slot.owner;
            let bound = LaneKind::ALL.map(|kind| {
                let c = slot.lanes.lane(kind).counters();
                c.events_written.saturating_sub(c.lost().total())
            });
            map.insert((slot.index, o.generation, o.pid, o.thread_id), bound);
        }
        Inherited(map)
    }

    /// Works out each inherited lane's `before_attach`: what the thread counted and this trace
    /// does not hold, beyond what the drain already explains (for a thread still running at
    /// the end, taken first from its `after_end`: its earliest events are the ones missing).
    /// `inherited` is the bound it must stay within for the lane to balance.
    fn settle(&self, report: &mut Report) {
        if self.0.is_empty() {
            return;
        }
        for t in &mut report.threads {
            let i = t.info;
            let Some(bounds) = self.0.get(&(i.slot, i.generation, i.pid, i.os_tid)) else {
                continue;
            };
            let running = t.end == crate::ThreadEnd::StillRunning;
            for (lane, &bound) in t.lanes.iter_mut().zip(bounds) {
                lane.inherited = bound;
                let rest = lane
                    .written
                    .saturating_sub(lane.taken().saturating_add(lane.after_end));
                if running {
                    let pool = rest.saturating_add(lane.after_end);
                    lane.before_attach = pool.min(bound);
                    lane.after_end = pool - lane.before_attach;
                } else {
                    lane.before_attach = rest;
                }
            }
        }
    }
}

/// How long the drain sleeps after a pass that found nothing while threads filled rings a
/// moment ago (within the live-copy period): short against a pool's worth of events at any
/// rate one drain persists (4 rings of 1024 index events fill in 400 µs at 10 M events/s).
const BUSY_NAP: Duration = Duration::from_micros(50);

/// How often the drain ends the fallback-only threads that no longer exist
/// ([`Drainer::end_exited_fallback_threads`]): often enough that a program starting thousands
/// of short-lived slotless threads a second does not hold an account for each for long, rarely
/// enough that an idle slotless thread costs one `/proc` lookup per period, not per pass.
const FALLBACK_THREAD_CHECK: Duration = Duration::from_millis(10);

/// The most time between two heartbeats while the drain idles, whatever the drain interval:
/// well under the agents' 250 ms stall threshold
/// (`ada_agent::mode::ModeConfig::stall_after_ns`).
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(50);

/// Sleeps for `interval`, stamping the heartbeat every [`HEARTBEAT_EVERY`] meanwhile.
fn idle(interval: Duration, control: &ControlBlock, clock: &ControllerClock) {
    let mut left = interval;
    while left > HEARTBEAT_EVERY {
        std::thread::sleep(HEARTBEAT_EVERY);
        control.tick_heartbeat(clock.now_ns());
        left -= HEARTBEAT_EVERY;
    }
    std::thread::sleep(left);
}

fn take_dead<D: SessionDrain>(shared: &Shared, drainer: &mut D, dead: &mut Vec<u32>) {
    let pids: Vec<u32> = match shared.dead.lock() {
        Ok(mut d) => std::mem::take(&mut *d),
        Err(_) => return,
    };
    for pid in pids {
        drainer.process_died(pid);
        dead.push(pid);
    }
}

fn publish(live: &LiveStats, pass: &crate::drain::PassStats) {
    // Relaxed: statistics for progress displays.
    live.records.fetch_add(pass.records, Ordering::Relaxed);
    // Relaxed: as above.
    live.bytes.fetch_add(pass.bytes, Ordering::Relaxed);
    // Relaxed: as above.
    live.live_threads
        .store(u64::from(pass.live_slots), Ordering::Relaxed);
    // Relaxed: as above.
    live.passes.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_drain_worker_answers_panicked_instead_of_leaving_the_loop_waiting() {
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = tx.clone(); // as the other workers do: the channel stays connected
        let died = std::thread::spawn(move || {
            let _alarm = PanicAlarm { w: 3, answers: &tx };
            panic!("a bug in a drain worker");
        })
        .join();
        assert!(died.is_err());
        let answer = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("an answer, not a wait");
        assert!(matches!(answer, (3, Answer::Panicked)));
        // A worker that returns normally sends nothing.
        std::thread::spawn(move || {
            let _alarm = PanicAlarm {
                w: 1,
                answers: &keep,
            };
        })
        .join()
        .unwrap();
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn the_fallback_abandon_limit_spans_the_patience_whatever_the_interval() {
        assert_eq!(fallback_abandon_passes(Duration::from_millis(1)), 100);
        assert_eq!(fallback_abandon_passes(Duration::from_micros(300)), 334);
        assert_eq!(
            fallback_abandon_passes(Duration::from_millis(50)),
            ada_registry::fallback::ABANDON_PASSES
        );
        assert!(fallback_abandon_passes(Duration::ZERO) >= 100);
    }
    use crate::sink::{Record, SinkOutput, ThreadInfo};
    use std::error::Error as _;

    #[test]
    fn warm_up_counts_healthy_time_never_iterations() {
        const MS: u64 = 1_000_000;
        let mut w = WarmUp::new(Duration::from_millis(50), Duration::from_millis(10));
        // A million iterations at one instant are no time at all.
        for _ in 0..1_000_000 {
            assert!(!w.iteration(7 * MS));
        }
        // 10 ms steps are healthy; the 50th ms makes it steady, once.
        for t in [17, 27, 37, 47] {
            assert!(!w.iteration(t * MS));
        }
        assert!(w.iteration(57 * MS));
        assert!(!w.iteration(58 * MS), "steady is final");
        assert_eq!((w.steady_at_ns, w.restarts), (Some(57 * MS), 0));

        // A gap over the bound, or a clock that went back, starts the period again.
        let mut w = WarmUp::new(Duration::from_millis(50), Duration::from_millis(10));
        assert!(!w.iteration(100 * MS));
        assert!(
            !w.iteration(140 * MS + 1),
            "40 ms + 1 ns since the last: unhealthy"
        );
        assert!(!w.iteration(139 * MS), "backwards: unhealthy");
        assert_eq!(w.restarts, 2);
        for t in [149, 159, 169, 179] {
            assert!(!w.iteration(t * MS));
        }
        assert!(w.iteration(189 * MS));
        // A zero period: steady at the first iteration.
        let mut w = WarmUp::new(Duration::ZERO, Duration::from_millis(10));
        assert!(w.iteration(5));
    }

    #[test]
    fn configuration_errors_are_typed_and_say_what_is_wrong() {
        let e = ControllerBuilder::new()
            .drain_interval(Duration::from_secs(2))
            .create()
            .unwrap_err();
        assert!(matches!(e, ControllerError::DrainInterval(d) if d == Duration::from_secs(2)));
        assert!(e.to_string().contains("longer than 1 s"), "{e}");

        let e = ControllerBuilder::new().capacity(0).create().unwrap_err();
        assert!(matches!(e, ControllerError::Config(_)), "{e:?}");
        let source = e.source().and_then(|s| s.downcast_ref::<RegistryError>());
        assert!(matches!(source, Some(RegistryError::BadHeader(_))), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("invalid controller configuration: registry header is invalid"),
            "{e}"
        );
    }

    /// Refuses to begin.
    struct NoStart;

    impl Sink for NoStart {
        fn begin(&mut self, _: &SessionInfo) -> Result<(), SinkError> {
            Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no way").into())
        }
        fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
            Ok(())
        }
        fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
            Ok(SinkOutput::default())
        }
    }

    #[test]
    fn a_sink_that_cannot_begin_is_a_typed_error_down_to_the_io_error() {
        let controller = ControllerBuilder::new().capacity(1).create().unwrap();
        let e = controller.start(NoStart, SessionInfo::new(0)).unwrap_err();
        assert_eq!(e.to_string(), "trace output: no way");
        let ControllerError::Sink(sink) = &e else {
            panic!("{e:?}")
        };
        let io = sink.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        let chain = e.source().and_then(|s| s.source());
        assert!(
            chain
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some()
        );
    }

    /// Counts `begin` calls.
    #[derive(Default)]
    struct Begun(std::sync::Arc<std::sync::atomic::AtomicU32>);

    impl Sink for Begun {
        fn begin(&mut self, _: &SessionInfo) -> Result<(), SinkError> {
            // Relaxed: a test counter read after the drain thread was joined.
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
            Ok(())
        }
        fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
            Ok(SinkOutput::default())
        }
    }

    #[test]
    fn a_segment_that_already_has_a_drain_is_refused_before_the_sink_begins() {
        let controller = ControllerBuilder::new().capacity(1).create().unwrap();
        let registry = controller.registry().clone();
        let other_drain = registry.claim_drain().unwrap();
        let sink = Begun::default();
        let begun = std::sync::Arc::clone(&sink.0);
        let e = controller.start(sink, SessionInfo::new(0)).unwrap_err();
        assert!(matches!(e, ControllerError::DrainClaim(_)), "{e:?}");
        assert!(e.to_string().contains("already being drained"), "{e}");
        // Relaxed: see `Begun`.
        assert_eq!(begun.load(Ordering::Relaxed), 0, "the sink was not begun");
        // The refused start left nothing claimed behind it.
        drop(other_drain);
        assert_eq!(registry.control().drain_owner(), 0);
        assert!(registry.claim_drain().is_ok());
    }

    #[test]
    fn a_started_controller_holds_the_drain_until_it_stops() {
        let controller = ControllerBuilder::new().capacity(1).create().unwrap();
        let registry = controller.registry().clone();
        let sink = Begun::default();
        let begun = std::sync::Arc::clone(&sink.0);
        let running = controller.start(sink, SessionInfo::new(0)).unwrap();
        // Relaxed: see `Begun`.
        assert_eq!(begun.load(Ordering::Relaxed), 1);
        let second = registry.claim_drain().unwrap_err();
        assert!(
            matches!(second, RegistryError::DrainClaimed { .. }),
            "{second}"
        );
        running.stop(None).unwrap();
        assert_eq!(registry.control().drain_owner(), 0);
    }

    #[test]
    fn the_default_sink_reports_a_trace_it_cannot_create() {
        let dir = std::env::temp_dir().join(format!("ada-no-such-dir-{}", std::process::id()));
        let file = dir.with_extension("file");
        std::fs::write(&file, b"not a directory").unwrap();
        let controller = ControllerBuilder::new()
            .capacity(1)
            .output_dir(&file)
            .create()
            .unwrap();
        let e = controller.start_default(SessionInfo::new(1)).unwrap_err();
        let _ = std::fs::remove_file(&file);
        assert!(matches!(e, ControllerError::Trace(_)), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot create the trace: "),
            "{e}"
        );
        assert!(e.source().is_some());
    }
}
