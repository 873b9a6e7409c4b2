//! `ada-controller`: the controller side of the ADA tracer, as a library.
//!
//! What it is:
//! - [`ControllerBuilder`] → [`Controller`]: creates the shared-memory segment (thread
//!   registry, rings, symbol table, control block) with the chosen capacity and ring sizes.
//!   Agents attach to it by name (`ADA_SHM`) and can record as soon as it exists.
//! - [`Controller::standby`] → [`Standby`]: the drain thread claims the segment's drain,
//!   publishes `registry_ready` (warm-up mode, a new epoch) and ticks the heartbeat before any
//!   session exists, so a traced command spawned after it finds the registry ready;
//!   [`ControllerBuilder::attach`] opens a dead controller's segment instead, to continue its
//!   session ([`Report::continuation`]).
//! - [`Standby::start`] (or [`Controller::start`], both steps at once) → [`Running`]: a drain
//!   thread that round-robins over every
//!   registered thread (lanes under backpressure first and again at the end of each pass),
//!   takes its submitted rings and (at most every [`ControllerBuilder::live_copy_every`],
//!   1 ms by default) what it committed to its active ring, validates every record (the
//!   segment is written by another process and treated as untrusted), hands records to a
//!   [`Sink`] and returns the rings; it ticks `drain_heartbeat_ns` every loop with its clock
//!   ([`ControllerBuilder::clock`], `CLOCK_MONOTONIC` by default), moves `registry_mode` from
//!   warm-up to steady once the drain has been healthy for [`ControllerBuilder::warm_up`]
//!   ([`Report::readiness`]), notices processes that died
//!   without unregistering, and on [`Running::stop`] (or when the `Running` is dropped) makes
//!   a final drain before the sink finishes.
//! - [`Sink`]: where drained events go, one ring's worth at a time ([`ChunkInfo`]: which
//!   ring, whether it is MARKED) as typed [`Record`]s ([`EventKind`], [`LaneKind`]).
//!   [`AtfSink`] writes an ATF v4 trace; the default sink, [`TraceSink`], runs it behind
//!   [`Pipelined`] with one drain worker, or writes the blocks that several drain workers
//!   ([`ControllerBuilder::drain_threads`]) encode; a custom controller supplies its own sink,
//!   written against this crate alone (drained by one worker).
//! - Selective persistence ([`Persistence`]): by default the detail lane is a flight recorder
//!   — only the detail records in windows around marked events (pre-roll, post-roll) reach
//!   the sink, the rest are counted as discarded, and each window is announced
//!   ([`Sink::window`], [`WindowInfo`]); [`Persistence::All`] persists everything.
//! - Backpressure settings: each lane's drop policy ([`ControllerBuilder::drop_policies`];
//!   default `index=newest` — the always-persisted timeline keeps what it buffered and loses
//!   one contiguous stretch where the stall was — and `detail=oldest` — the flight recorder
//!   keeps the newest events, what a trigger wants) and the stability period
//!   ([`ControllerBuilder::stability`]) are published in the segment, and every agent applies
//!   them. [`ControllerBuilder::create`] reads the [`ENV_DROP_POLICY`] (`ADA_DROP_POLICY`)
//!   start-up override once, which beats the builder's value (so every controller honours it;
//!   `ada trace` layers `--drop-policy` over its config file's `drop_policy` below it). Lost
//!   events reach the sink at the gap in the thread's stream ([`Sink::events_lost`],
//!   [`LossInfo`]) and are counted by cause ([`LaneReport::lost`]).
//! - [`Report`]: the accounting — per thread and lane, `written = persisted + spilled +
//!   dropped + discarded` (`spilled`: events a thread sent to the segment's shared fallback
//!   ring when its pool was exhausted, delivered from there: [`LaneReport::via_fallback`];
//!   the ring's own accounting is [`FallbackReport`]) — which
//!   also lands in the trace's manifest and the `ada trace` summary. Every thread the drain
//!   saw is in it, one by one up to [`drain::DETAILED_THREADS`] and summed beyond
//!   ([`FoldedThreads`]), so the controller's memory does not grow with every thread a program
//!   ever starts; what the drain found wrong in the segment is in [`Corruption`].
//! - Thread identity: the drain numbers threads itself ([`ThreadInfo::number`], the trace's
//!   `thread_id`) and treats the pid and OS thread id a slot claims as claims: a thread is
//!   verified only when its pid is a traced process (see [`ProcessTrust`]) and the task exists;
//!   only then is its name read from `/proc`.
//! - Loaded modules ([`modules`]): the file-backed executable mappings of each traced process
//!   the session trusts (path, address range, file offset, ELF build id), read from
//!   `/proc/<pid>/maps` by an `ada-modules` thread when the drain first sees the process,
//!   while it runs and before the final drain, and handed to the sink ([`Sink::modules`]; the
//!   manifest's `loadedModules`), so addresses in the trace can be named after the run
//!   (`ada-symbols`). Nothing is symbolized here.
//! - [`DrainHook`] ([`ControllerBuilder::drain_hook`]): a test and diagnostics hook the drain
//!   thread calls at each [`DrainPoint`] (before and after every pass).
//! - [`ENV_SEGMENT`]: the environment variable (`ADA_SHM`) that names the segment to the
//!   traced program.
//!
//! ```no_run
//! use ada_controller::{ControllerBuilder, ENV_SEGMENT, SessionInfo};
//!
//! let controller = ControllerBuilder::new().capacity(16).output_dir("/tmp").create()?;
//! let mut traced = std::process::Command::new("./my_program")
//!     .env(ENV_SEGMENT, controller.segment_name()) // ADA_SHM: the agent attaches to it
//!     .spawn()?;
//! let pid = traced.id();
//! let running = controller.start_default(SessionInfo::new(pid))?; // ATF v4 under /tmp/ada_traces/
//! // ... the traced program runs ...
//! let status = traced.wait()?;
//! running.process_exited(pid); // its slots are drained and freed even if it was killed
//! let report = running.stop(status.code())?;
//! println!("{} events persisted, {} dropped", report.persisted(), report.dropped());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **A custom controller** implements [`Sink`] and calls [`Controller::start`] with it. The
//! example `examples/call_counts/` (`cargo run -p ada-controller --example call_counts`) is
//! a whole one: it traces a child process and prints per-function call counts and total
//! inclusive time, using nothing but this crate on the controller side.
//!
//! What it is not: it never blocks or slows the traced program (a slow sink only makes threads
//! drop, and count, events); it does not match trigger patterns itself (the agent marks
//! records, with `ada-persist`'s policy) and does not encode protobuf itself (`ada-atf`).
//! It is not the `ada` command-line tool (running a command traced, signals, progress, the
//! summary, reading traces back and exporting them live in `ada-cli`), and it does not depend
//! on the agent: it speaks to traced programs only through the segment.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod atf_sink;
mod controller;
pub mod drain;
mod hook;
mod identity;
mod merged;
pub mod modules;
mod persist;
mod pipelined;
mod report;
mod sink;
pub mod stamps;

pub use ada_shm::ENV_SEGMENT;
pub use atf_sink::{
    AtfSink, MANIFEST_CALIBRATION_POINTS, MAX_LOADED_MODULES, session_clock, session_clock_with,
};
pub use controller::{
    Controller, ControllerBuilder, ControllerError, HEARTBEAT_EVERY, LiveSnapshot, LiveStats,
    Running, Standby,
};
pub use drain::{Drainer, FALLBACK_THREADS, PassStats};
pub use hook::{DrainHook, DrainPoint};
pub use merged::{BLOCK_BYTES, BlockSink, MAX_QUEUED_BYTES, TraceSink};
pub use modules::{Module, ModuleReader};
pub use persist::{Persistence, PreRoll, WindowConfig};
pub use pipelined::Pipelined;
pub use report::{
    Continuation, Corruption, FallbackReport, FoldedThreads, LaneReport, Readiness, Report,
    ThreadEnd, ThreadReport,
};
pub use stamps::{ClockChoice, ClockUnavailable, SessionClock, StampConverter, TscSource};

/// The agents' statistics from the control block (re-exported from `ada-registry`), as
/// [`Report::agent_stats`] carries them.
pub use ada_registry::AgentStatsSnapshot;
pub use sink::{
    ChunkInfo, CountingSink, LossInfo, ProcessTrust, Record, SessionInfo, Sink, SinkError,
    SinkOutput, ThreadInfo, WindowInfo,
};

/// Why events were lost (re-exported from `ada-backpressure`), as [`LossInfo::cause`] carries
/// it.
pub use ada_ringpool::LossCause;

/// Each lane's drop policy (re-exported from `ada-backpressure`), for
/// [`ControllerBuilder::drop_policies`]; [`Report::drop_policies`] says which were in force.
pub use ada_backpressure::{DropPolicy, LanePolicies};

/// The environment variable (`ADA_DROP_POLICY`) whose value [`ControllerBuilder::create`] reads
/// once as a start-up override of the drop policies (re-exported from `ada-backpressure`).
pub use ada_backpressure::ENV_VAR as ENV_DROP_POLICY;

/// What an event records: the ring format's one event-kind vocabulary (re-exported from
/// `ada-ringpool`), as [`Record::kind`] carries it.
pub use ada_ringpool::EventKind;

/// Which lane of a thread (re-exported from `ada-registry`), as [`Record::lane`] and
/// [`ChunkInfo::lane`] carry it and [`ThreadReport::lane`] reads it.
pub use ada_registry::LaneKind;

/// Ring pool sizes per thread, for [`ControllerBuilder::geometry`] (re-exported from
/// `ada-registry`).
pub use ada_registry::RingGeometry;

/// Symbol table size, for [`ControllerBuilder::symbols`] (re-exported from `ada-registry`).
pub use ada_registry::SymbolTableConfig;

/// A symbol's source location, as [`Sink::symbol_at`] receives it (re-exported from
/// `ada-registry`).
pub use ada_registry::SymbolSource;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
