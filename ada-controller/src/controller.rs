//! [`ControllerBuilder`] → [`Controller`] (the segment exists) → [`Running`] (the drain thread
//! runs) → [`Report`] (final drain done, sink finished).
//!
//! [`Running::stop`] ends the session and returns the report; dropping a [`Running`] without
//! stopping it ends the session the same way (final drain, sink finished) and discards the
//! report.
//!
//! The drain thread, every loop: stamps `drain_heartbeat_ns` with the session clock (the one
//! agents stamp events with), makes one [`Drainer::pass`], and sleeps for the drain interval
//! when the pass found nothing. `registry_ready` is published once the thread has made its
//! first heartbeat. Every 100 ms it also checks whether the processes owning slots are still
//! alive, and hands the slots of dead ones to the drain (a killed process never unregisters).
//! A [`DrainHook`] (tests, diagnostics) is called right before and right after each pass.

use crate::atf_sink::AtfSink;
use crate::drain::Drainer;
use crate::hook::{DrainHook, DrainPoint};
use crate::persist::Persistence;
use crate::pipelined::Pipelined;
use crate::report::Report;
use crate::sink::{SessionInfo, Sink, SinkError};
use ada_backpressure::{EnvOverrideError, LanePolicies};
use ada_persist::TriggerSet;
use ada_registry::{
    Registry, RegistryConfig, RegistryError, RegistryMode, RingGeometry, SymbolTableConfig,
};
use ada_shm::clock::MonotonicClock;
use ada_shm::{RegionKind, RegionSpec, TRIGGERS_REGION_VERSION};
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
    /// The registry settings (capacity, ring geometry, symbol table) are out of range.
    #[error("invalid controller configuration: {0}")]
    Config(#[source] RegistryError),
    /// The segment could not be created.
    #[error("cannot create the shared-memory segment: {0}")]
    Segment(#[source] RegistryError),
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
    output_dir: PathBuf,
    persistence: Persistence,
    triggers: Option<TriggerSet>,
    drain_hook: Option<DrainHook>,
}

impl Default for ControllerBuilder {
    fn default() -> Self {
        ControllerBuilder {
            registry: RegistryConfig::default(),
            drain_interval: Duration::from_millis(1),
            output_dir: PathBuf::from("."),
            persistence: Persistence::default(),
            triggers: None,
            drain_hook: None,
        }
    }
}

impl ControllerBuilder {
    /// The longest drain interval [`create`](ControllerBuilder::create) accepts.
    pub const MAX_DRAIN_INTERVAL: Duration = Duration::from_secs(1);

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

    /// A test and diagnostics hook the drain thread calls right before
    /// ([`DrainPoint::BeforePass`]) and right after ([`DrainPoint::AfterPass`]) every pass,
    /// not around the final drain (see [`DrainHook`]). The drain waits for it: a blocking hook
    /// pauses the drain (a stall test's pausable drain), so leave it unset in production
    /// (the default; then it costs one branch per pass).
    pub fn drain_hook(mut self, hook: Arc<dyn Fn(DrainPoint) + Send + Sync>) -> Self {
        self.drain_hook = Some(DrainHook::new(hook));
        self
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
        if self.drain_interval > Self::MAX_DRAIN_INTERVAL {
            return Err(ControllerError::DrainInterval(self.drain_interval));
        }
        let env = std::env::var_os(ada_backpressure::ENV_VAR);
        if let Some(policies) = LanePolicies::from_env_override(env.as_deref())
            .map_err(ControllerError::DropPolicyEnv)?
        {
            self.registry.backpressure.policies = policies;
        }
        self.registry.validate().map_err(ControllerError::Config)?;
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
        Ok(Controller {
            registry,
            drain_interval: self.drain_interval,
            output_dir: self.output_dir,
            persistence: self.persistence,
            triggers: self.triggers,
            drain_hook: self.drain_hook,
        })
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

/// A created segment, not yet drained. Agents may attach and record as soon as it exists:
/// their events wait in their rings until the drain starts.
#[derive(Debug)]
pub struct Controller {
    registry: Registry,
    drain_interval: Duration,
    output_dir: PathBuf,
    persistence: Persistence,
    /// The published triggers, named in the default sink's manifest.
    triggers: Option<TriggerSet>,
    drain_hook: Option<DrainHook>,
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

    /// Starts the drain thread with the default sink: an ATF v4 trace of process
    /// `session.pid` under the builder's output directory, written on a thread of its own
    /// ([`Pipelined`]) so the drain never waits for the disk; its manifest names the builder's
    /// triggers ([`AtfSink::set_triggers`]). See [`start`](Controller::start) for `session`.
    pub fn start_default(
        self,
        session: SessionInfo,
    ) -> Result<Running<Pipelined<AtfSink>>, ControllerError> {
        let mut sink = AtfSink::create(&self.output_dir, session.pid)?;
        if let Some(triggers) = &self.triggers {
            sink.set_triggers(triggers.specs().iter().map(ToString::to_string).collect());
        }
        let sink = Pipelined::start(sink).map_err(|source| ControllerError::Spawn {
            thread: "ada-sink",
            source,
        })?;
        self.start(sink, session)
    }

    /// Starts the drain thread, feeding `sink` (a custom controller's own [`Sink`]).
    ///
    /// `session` says what the caller knows about the traced process (pid, executable,
    /// arguments: [`SessionInfo::new`] and its `with_*` methods); the controller fills in the
    /// segment name before [`Sink::begin`] sees it. Its [`trust`](SessionInfo::trust) says
    /// whose threads count as verified: by default the session's pid and its descendants (a
    /// controller that did not spawn the traced program names the pids with
    /// [`SessionInfo::with_trust`], or trusts any process by choosing
    /// [`ProcessTrust::AnyProcess`](crate::ProcessTrust::AnyProcess)).
    ///
    /// The drain thread first claims the segment's drain (a segment has one drain: a second is
    /// refused with [`ControllerError::DrainClaim`], before the sink is begun), then begins the
    /// sink; this returns once both are done, with the sink's error if `begin` failed.
    pub fn start<S: Sink + 'static>(
        self,
        sink: S,
        mut session: SessionInfo,
    ) -> Result<Running<S>, ControllerError> {
        session.segment = self.segment_name().to_owned();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            dead: Mutex::new(Vec::new()),
            live: LiveStats::default(),
        });
        let registry = self.registry.clone();
        let thread_shared = Arc::clone(&shared);
        let interval = self.drain_interval;
        let persistence = self.persistence;
        let hook = self.drain_hook;
        // The drain thread claims the segment's drain and begins the sink, then reports here.
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("ada-drain".into())
            .spawn(move || {
                let start = DrainStart {
                    session: &session,
                    shared: &thread_shared,
                    interval,
                    persistence,
                    hook,
                    started: started_tx,
                };
                drain_thread(&registry, sink, start)
            })
            .map_err(|source| ControllerError::Spawn {
                thread: "ada-drain",
                source,
            })?;
        if let Err(e) = started
            .recv()
            .unwrap_or(Err(ControllerError::DrainNotStarted))
        {
            let _ = handle.join();
            return Err(e);
        }
        Ok(Running {
            registry: self.registry,
            shared,
            handle: Some(handle),
        })
    }
}

/// The drain thread is running.
///
/// End it with [`stop`](Running::stop), which returns the [`Report`]. Dropping it without
/// stopping ends the session the same way — final drain, segment unlinked, sink finished — but
/// the report (and any error) is lost, so a panic or an early return between
/// [`Controller::start`] and `stop` still leaves a finished trace.
#[must_use = "the drain stops when this is dropped; call `stop` for the report"]
pub struct Running<S: Sink + 'static> {
    registry: Registry,
    shared: Arc<Shared>,
    /// `None` once stopped.
    handle: Option<JoinHandle<(Report, S)>>,
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
        let (mut report, mut sink) =
            joined.map_err(|panic| ControllerError::DrainPanicked(panic_message(&*panic)))?;
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

/// What the drain thread starts with, besides the registry and the sink.
struct DrainStart<'s> {
    session: &'s SessionInfo,
    shared: &'s Shared,
    interval: Duration,
    persistence: Persistence,
    hook: Option<DrainHook>,
    /// Told once: the drain is claimed and the sink begun, or why not.
    started: std::sync::mpsc::SyncSender<Result<(), ControllerError>>,
}

fn drain_thread<S: Sink>(registry: &Registry, mut sink: S, start: DrainStart<'_>) -> (Report, S) {
    let DrainStart {
        session,
        shared,
        interval,
        persistence,
        hook,
        started,
    } = start;
    let control = registry.control();
    let start = Instant::now();
    let claim = match registry.claim_drain() {
        Ok(claim) => claim,
        Err(e) => {
            let _ = started.send(Err(ControllerError::DrainClaim(e)));
            return (Report::default(), sink);
        }
    };
    if let Err(e) = sink.begin(session) {
        let _ = started.send(Err(e.into()));
        return (Report::default(), sink);
    }
    let _ = started.send(Ok(()));
    let mut drainer = Drainer::with_claim(registry, claim, sink);
    drainer.fallback_abandon_passes(fallback_abandon_passes(interval));
    drainer.trust(&session.trust, session.pid);
    drainer.persistence(persistence);
    control.tick_heartbeat(MonotonicClock::read());
    control.publish_ready(RegistryMode::PerThreadOnly);
    let mut last_liveness = Instant::now();
    let mut dead: Vec<u32> = Vec::new();
    let mut longest = Duration::ZERO;
    // Acquire: pairs with `stop`'s Release store.
    while !shared.stop.load(Ordering::Acquire) {
        control.tick_heartbeat(MonotonicClock::read());
        take_dead(shared, &mut drainer, &mut dead);
        if last_liveness.elapsed() >= Duration::from_millis(100) {
            last_liveness = Instant::now();
            for pid in drainer.active_pids() {
                if !process_alive(pid) {
                    drainer.process_died(pid);
                    dead.push(pid);
                }
            }
        }
        if let Some(hook) = &hook {
            hook.call(DrainPoint::BeforePass);
        }
        let t = Instant::now();
        let pass = drainer.pass();
        longest = longest.max(t.elapsed());
        if let Some(hook) = &hook {
            hook.call(DrainPoint::AfterPass);
        }
        publish(&shared.live, &pass);
        if pass.bytes == 0 {
            std::thread::sleep(interval);
        }
    }
    control.request_shutdown();
    take_dead(shared, &mut drainer, &mut dead);
    let mut gone: Vec<u32> = drainer
        .active_pids()
        .into_iter()
        .filter(|&p| !process_alive(p))
        .collect();
    gone.extend(dead);
    let (mut report, sink) = drainer.finish(&gone, Report::default());
    control.withdraw_ready();
    report.duration = start.elapsed();
    report.longest_pass = longest;
    (report, sink)
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

fn take_dead<S: Sink>(shared: &Shared, drainer: &mut Drainer<'_, S>, dead: &mut Vec<u32>) {
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

/// Whether `pid` exists (a zombie counts as alive until reaped; callers reap their children).
pub(crate) fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // EPERM: it exists but is not ours.
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
