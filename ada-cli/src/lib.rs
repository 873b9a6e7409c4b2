//! `ada-cli`: the `ada` command-line tool of the ADA tracer.
//!
//! What it is: the binary `ada` (`cargo install --path ada-cli`) and the code behind its
//! subcommands, kept in this library so the integration tests can drive it directly:
//!
//! - [`trace`]: `ada trace` (and `ada demo`) — check the output directory, create a controller,
//!   spawn the command with `ADA_SHM` naming the segment, stop it on `--duration` or SIGINT,
//!   report progress, and finalize the trace;
//! - [`attach`]: `ada attach` — a new controller for a session whose controller died: attach
//!   to its segment, take the drain over, write a continuation trace;
//! - [`summary`]: the accounting `ada trace` prints at the end, rendered from the controller's
//!   [`Report`](ada_controller::Report);
//! - [`inspect`]: `ada inspect`, a human-readable summary of an ATF v4 trace, with
//!   `--top N` ([`top`]) the functions called most and those with the most inclusive time;
//! - [`symbolize`]: names for function ids that are code addresses, from the modules the
//!   trace recorded (`loadedModules`), with `ada-symbols`, after the run;
//! - [`live_lanes`]: what `ada status` shows of a live thread's lanes (backpressure state,
//!   loss by cause);
//! - [`export`]: `ada export --chrome`, Chrome trace-event JSON for the Perfetto UI, and
//!   `ada export --perfetto`, Perfetto's protobuf trace format;
//! - [`damage`]: what a readable trace lost (no manifest, a torn or corrupt stream, counts that
//!   disagree with the manifest), which `inspect` and `export` report and turn into exit code
//!   [`damage::EXIT_DAMAGED`];
//! - [`escape`]: how every string from a traced process or a trace file is made safe before
//!   it reaches a terminal (control characters, ESC sequences and bidi controls shown escaped).
//!
//! The binary adds the command line itself (clap), `ada status` and the hidden `ada workload`
//! subcommand: the bundled multi-threaded program that `ada demo` traces and that the tests
//! and benchmarks drive, recording through `ada-agent`.
//!
//! What it is not: it is not the tracer. Creating the segment, draining the rings and writing
//! ATF v4 belong to `ada-controller` (a library without CLI dependencies, which a custom
//! controller uses directly); reading traces belongs to `ada-atf`, which also decides what
//! counts as a trace directory ([`ada_atf::TraceDir::find`]). This library's API serves the
//! `ada` tool and its tests and makes no stability promise beyond them.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod attach;
pub mod damage;
pub mod escape;
pub mod export;
pub mod inspect;
pub mod live_lanes;
pub mod summary;
pub mod symbolize;
pub mod top;
pub mod trace;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
