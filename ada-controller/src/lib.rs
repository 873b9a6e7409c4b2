//! `ada-controller`: the controller side of the ADA tracer, as a library.
//!
//! What it is:
//! - [`ControllerBuilder`] → [`Controller`]: creates the shared-memory segment (thread
//!   registry, rings, symbol table, control block) with the chosen capacity and ring sizes.
//!   Agents attach to it by name (`ADA_SHM`) and can record as soon as it exists.
//! - [`Controller::start`] → [`Running`]: a drain thread that round-robins over every
//!   registered thread, takes its submitted and active rings, validates every record (the
//!   segment is written by another process and treated as untrusted), hands records to a
//!   [`Sink`] and returns the rings; it publishes `registry_ready`, ticks
//!   `drain_heartbeat_ns` every loop with the session clock, notices processes that died
//!   without unregistering, and on [`Running::stop`] makes a final drain before the sink
//!   finishes.
//! - [`Sink`]: where drained events go. [`AtfSink`] (the default) writes an ATF v4 trace; a
//!   custom controller supplies its own.
//! - [`Report`]: the accounting — per thread and lane, `written = persisted + dropped` — which
//!   also lands in the trace's manifest and the `ada trace` summary.
//! - [`ENV_SEGMENT`]: the environment variable (`ADA_SHM`) that names the segment to the
//!   traced program.
//!
//! ```no_run
//! use ada_controller::{ControllerBuilder, SessionInfo};
//!
//! let controller = ControllerBuilder::new().capacity(16).output_dir("/tmp").create()?;
//! println!("ADA_SHM={}", controller.segment_name()); // start the traced program with this
//! let traced = std::process::Command::new("./my_program")
//!     .env(ada_controller::ENV_SEGMENT, controller.segment_name())
//!     .spawn()?;
//! let session = SessionInfo { pid: traced.id(), ..SessionInfo::default() };
//! let running = controller.start_default(session)?; // ATF v4 under /tmp/ada_traces/
//! // ... wait for the program; `running.process_exited(pid)` if it may have been killed ...
//! // ... the traced program runs ...
//! let report = running.stop()?;
//! println!("{} events persisted, {} dropped", report.persisted(), report.dropped());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is not: it never blocks or slows the traced program (a slow sink only makes threads
//! drop, and count, events); it does not decide selective persistence yet (every detail record
//! is persisted until `ada-persist` arrives) and does not encode protobuf itself (`ada-atf`).
//! It is not the `ada` command-line tool (running a command traced, signals, progress, the
//! summary, reading traces back and exporting them live in `ada-cli`), and it does not depend
//! on the agent: it speaks to traced programs only through the segment.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod atf_sink;
mod controller;
pub mod drain;
mod pipelined;
mod report;
mod sink;

pub use ada_shm::ENV_SEGMENT;
pub use atf_sink::{AtfSink, session_clock};
pub use controller::{
    Controller, ControllerBuilder, ControllerError, LiveSnapshot, LiveStats, Running,
};
pub use drain::{Drainer, PassStats};
pub use pipelined::Pipelined;
pub use report::{Corruption, LaneReport, Report, ThreadEnd, ThreadReport};
pub use sink::{CountingSink, SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo};
