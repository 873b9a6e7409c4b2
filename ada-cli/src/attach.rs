//! `ada attach SEGMENT`: a new controller for a session whose controller died.
//!
//! A SIGKILLed `ada trace` leaves its command running, still recording into the shared-memory
//! segment: its threads keep filling their rings and, once those are full, count what they
//! lose. `ada attach` opens that segment by name (validated as untrusted, as agents do), takes
//! the dead controller's drain over ([`ada_controller::ControllerBuilder::attach`]; a drain
//! that is still alive is refused, naming its pid), publishes the registry ready under the next
//! epoch and writes a new trace — a continuation: its manifest's `continuation` names the
//! segment, the new epoch and the previous controller's pid. It drains what the existing
//! threads' rings still hold and everything they write afterwards; the threads' loss counters
//! and markers record what they lost while no controller ran, and each thread it inherited
//! reports `beforeAttach`: what it had counted before the take-over, which is not in this
//! trace (see [`ada_controller::LaneReport::before_attach`]).
//!
//! Decisions:
//! - **Which pid names the trace directory** (`pid_<pid>`): the first `--pid`, else the lowest
//!   pid among the slots registered at attach time (claims of the traced side), else 0.
//! - **Whose threads are verified**: with `--pid`, those processes and their descendants;
//!   without, every process is accepted (its `/proc` entry must exist) — `ada attach` did not
//!   spawn anything, and the binary says so on stderr.
//! - **When it ends**: on SIGINT, after `--duration`, or once every watched process has
//!   exited — the `--pid` processes, else every process seen owning a slot (at attach and while
//!   it runs); a zombie counts as exited. With nothing to watch it runs until SIGINT or
//!   `--duration`. It never signals the traced processes.
//! - **The segment**: removed at the end, as `ada trace` removes its own (processes still
//!   attached keep their mapping, and stay untraced).
//! - **Detail events**: all persisted (`Persistence::All`): the flight recorder's windows are
//!   not reconstructed for a continuation.
//!
//! Run it before anything removes the segment as stale: its creator is dead, so `ada status
//! --clean` and every `ada trace` start (unless `ADA_KEEP_STALE_SEGMENTS` is set) remove it.

use crate::trace::{Progress, TraceError, prepare_output_dir};
use ada_controller::{ControllerBuilder, Persistence, ProcessTrust, Report, SessionInfo};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to attach to and how.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// The segment name (`ADA_SHM` of the traced processes).
    pub segment: String,
    /// Where `ada_traces/` goes.
    pub output: PathBuf,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// The traced processes (trusted, with their descendants; watched for the end). Empty:
    /// every process is accepted and every slot owner watched.
    pub pids: Vec<u32>,
    /// Drain settings (the registry settings are the segment's).
    pub controller: ControllerBuilder,
}

/// How the attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnding {
    /// Every watched process exited.
    ProcessesExited,
    /// `duration` elapsed.
    DurationElapsed,
    /// Interrupted (SIGINT).
    Interrupted,
}

/// The result of an attached session.
#[derive(Debug)]
pub struct AttachOutcome {
    /// The accounting and the sink's output.
    pub report: Report,
    /// How it ended.
    pub ending: AttachEnding,
    /// The pid naming the trace directory.
    pub trace_pid: u32,
    /// Whether every process was accepted as verified (no `--pid`).
    pub any_process: bool,
}

/// Attaches to `options.segment` and drains it into a new trace until it ends (see the module
/// docs). `progress` is told when the registry is ready again and then about once a second.
pub fn run(
    options: &AttachOptions,
    interrupt: &AtomicBool,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<AttachOutcome, TraceError> {
    let controller = options
        .controller
        .clone()
        .output_dir(&options.output)
        .persistence(Persistence::All)
        .attach(&options.segment)?;
    let created = prepare_output_dir(&options.output)?;
    let standby = controller.standby()?;
    let registry = standby.registry().clone();
    progress(Progress::Ready {
        segment: standby.segment_name(),
        epoch: standby.epoch(),
    });
    let mut watched: BTreeSet<u32> = options.pids.iter().copied().collect();
    let owners = slot_pids(&registry);
    if options.pids.is_empty() {
        watched.extend(&owners);
    }
    let trace_pid = options
        .pids
        .first()
        .copied()
        .or_else(|| owners.first().copied())
        .unwrap_or(0);
    let any_process = options.pids.is_empty();
    let trust = if any_process {
        ProcessTrust::AnyProcess
    } else {
        ProcessTrust::Processes(options.pids.clone())
    };
    let running = standby.start_default(SessionInfo::new(trace_pid).with_trust(trust))?;
    created.keep();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let ending = loop {
        // Relaxed: a flag set by the signal handler; it publishes nothing else.
        if interrupt.load(Ordering::Relaxed) {
            break AttachEnding::Interrupted;
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break AttachEnding::DurationElapsed;
        }
        if any_process {
            watched.extend(slot_pids(&registry));
        }
        if !watched.is_empty() && watched.iter().all(|&pid| exited(pid)) {
            break AttachEnding::ProcessesExited;
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(Progress::Live(started.elapsed(), running.live()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let report = running.stop(None)?;
    Ok(AttachOutcome {
        report,
        ending,
        trace_pid,
        any_process,
    })
}

/// The pids the registered slots claim, lowest first (written by the traced side: used only to
/// name the trace and to know when to stop, never trusted for identity).
fn slot_pids(registry: &ada_registry::Registry) -> Vec<u32> {
    let pids: BTreeSet<u32> = registry
        .view()
        .live_slots()
        .map(|s| s.owner.pid)
        .filter(|&p| p != 0)
        .collect();
    pids.into_iter().collect()
}

/// Whether `pid` is gone: no such process, or a zombie (it exited; its parent has not reaped
/// it yet).
fn exited(pid: u32) -> bool {
    !ada_shm::process::running(pid)
}
