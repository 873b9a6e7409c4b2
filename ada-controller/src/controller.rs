//! [`ControllerBuilder`] → [`Controller`] (the segment exists) → [`Running`] (the drain thread
//! runs) → [`Report`] (final drain done, sink finished).
//!
//! The drain thread, every loop: stamps `drain_heartbeat_ns` with the session clock (the one
//! agents stamp events with), makes one [`Drainer::pass`], and sleeps for the drain interval
//! when the pass found nothing. `registry_ready` is published once the thread has made its
//! first heartbeat. Every 100 ms it also checks whether the processes owning slots are still
//! alive, and hands the slots of dead ones to the drain (a killed process never unregisters).

use crate::atf_sink::AtfSink;
use crate::drain::Drainer;
use crate::pipelined::Pipelined;
use crate::report::Report;
use crate::sink::{SessionInfo, Sink, SinkError};
use ada_registry::{
    Registry, RegistryConfig, RegistryError, RegistryMode, RingGeometry, SymbolTableConfig,
};
use ada_shm::clock::MonotonicClock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the controller failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// The configuration is out of range.
    #[error("invalid controller configuration: {0}")]
    Config(String),
    /// The segment could not be created.
    #[error("cannot create the shared-memory segment: {0}")]
    Segment(#[from] RegistryError),
    /// The drain thread could not be started or panicked.
    #[error("drain thread: {0}")]
    Thread(String),
    /// The segment's drain could not be claimed (another drain is running on it).
    #[error("cannot drain the segment: {0}")]
    DrainClaim(#[source] RegistryError),
    /// The sink failed to start or finish.
    #[error("trace output: {0}")]
    Sink(#[from] crate::sink::SinkError),
}

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerBuilder {
    registry: RegistryConfig,
    drain_interval: Duration,
    output_dir: PathBuf,
}

impl Default for ControllerBuilder {
    fn default() -> Self {
        ControllerBuilder {
            registry: RegistryConfig::default(),
            drain_interval: Duration::from_millis(1),
            output_dir: PathBuf::from("."),
        }
    }
}

impl ControllerBuilder {
    /// Defaults: 64 thread slots, 4 × 32 KiB index rings and 2 × 48 KiB detail rings per
    /// thread, the default symbol table, a 1 ms drain interval.
    pub fn new() -> Self {
        Self::default()
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

    /// How long the drain thread sleeps after a pass that found nothing (at most 1 s).
    pub fn drain_interval(mut self, interval: Duration) -> Self {
        self.drain_interval = interval;
        self
    }

    /// The registry settings.
    pub fn registry_config(&self) -> &RegistryConfig {
        &self.registry
    }

    /// Validates the settings and creates the segment.
    pub fn create(self) -> Result<Controller, ControllerError> {
        if self.drain_interval > Duration::from_secs(1) {
            return Err(ControllerError::Config(format!(
                "drain interval {:?} is longer than 1 s: threads would drop events while it sleeps",
                self.drain_interval
            )));
        }
        self.registry
            .validate()
            .map_err(|e| ControllerError::Config(e.to_string()))?;
        let registry = Registry::create(&self.registry, &[])?;
        Ok(Controller {
            registry,
            drain_interval: self.drain_interval,
            output_dir: self.output_dir,
        })
    }
}

/// A created segment, not yet drained. Agents may attach and record as soon as it exists:
/// their events wait in their rings until the drain starts.
#[derive(Debug)]
pub struct Controller {
    registry: Registry,
    drain_interval: Duration,
    output_dir: PathBuf,
}

/// Numbers the drain thread publishes while it runs (for progress displays).
#[derive(Debug, Default)]
pub struct LiveStats {
    records: AtomicU64,
    bytes: AtomicU64,
    live_threads: AtomicU64,
    passes: AtomicU64,
}

/// A snapshot of [`LiveStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    /// ([`Pipelined`]) so the drain never waits for the disk.
    pub fn start_default(
        self,
        session: SessionInfo,
    ) -> Result<Running<Pipelined<AtfSink>>, ControllerError> {
        let sink = AtfSink::create(&self.output_dir, session.pid)
            .map_err(|e| ControllerError::Sink(SinkError::new(e)))?;
        let sink = Pipelined::start(sink).map_err(|e| ControllerError::Thread(e.to_string()))?;
        self.start(sink, session)
    }

    /// Starts the drain thread, feeding `sink` (a custom controller's own [`Sink`]). Fails
    /// with [`ControllerError::DrainClaim`] if the segment already has a drain (the sink is then
    /// not begun), or with the sink's own error from [`Sink::begin`].
    pub fn start<S: Sink + 'static>(
        self,
        sink: S,
        session: SessionInfo,
    ) -> Result<Running<S>, ControllerError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            dead: Mutex::new(Vec::new()),
            live: LiveStats::default(),
        });
        let registry = self.registry.clone();
        let thread_shared = Arc::clone(&shared);
        let interval = self.drain_interval;
        // The drain thread claims the segment's drain and begins the sink, then reports here.
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("ada-drain".into())
            .spawn(move || {
                drain_thread(
                    &registry,
                    sink,
                    &session,
                    &thread_shared,
                    interval,
                    started_tx,
                )
            })
            .map_err(|e| ControllerError::Thread(e.to_string()))?;
        let outcome = started.recv().unwrap_or_else(|_| {
            Err(ControllerError::Thread(
                "the drain thread ended before it started".into(),
            ))
        });
        if let Err(e) = outcome {
            let _ = handle.join();
            return Err(e);
        }
        Ok(Running {
            registry: self.registry,
            shared,
            handle,
            exit_code: None,
        })
    }
}

/// The drain thread is running.
#[derive(Debug)]
pub struct Running<S: Sink> {
    registry: Registry,
    shared: Arc<Shared>,
    handle: JoinHandle<(Report, S)>,
    exit_code: Option<i32>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("live", &self.live).finish()
    }
}

impl<S: Sink> Running<S> {
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

    /// The traced command's exit code, for the report and the trace's `TraceEnd`.
    pub fn set_exit_code(&mut self, code: i32) {
        self.exit_code = Some(code);
    }

    /// Stops draining: a final drain of every submitted and active ring, then the sink
    /// finishes. Returns the accounting (with the sink's output in [`Report::output`]).
    pub fn stop(self) -> Result<Report, ControllerError> {
        // Release: pairs with the drain thread's Acquire load; nothing else is published.
        self.shared.stop.store(true, Ordering::Release);
        let (mut report, mut sink) = self
            .handle
            .join()
            .map_err(|_| ControllerError::Thread("the drain thread panicked".into()))?;
        report.exit_code = self.exit_code;
        // The session is over: no new agent may attach. (Attached ones keep their mapping; a
        // registry installed in this process as its own agent would otherwise keep the name.)
        let _ = self.registry.segment().unlink();
        let output = sink.finish(&report)?;
        report.output = Some(output);
        Ok(report)
    }
}

fn drain_thread<S: Sink>(
    registry: &Registry,
    mut sink: S,
    session: &SessionInfo,
    shared: &Shared,
    interval: Duration,
    started: std::sync::mpsc::SyncSender<Result<(), ControllerError>>,
) -> (Report, S) {
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
        let t = Instant::now();
        let pass = drainer.pass();
        longest = longest.max(t.elapsed());
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
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // EPERM: it exists but is not ours.
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}
