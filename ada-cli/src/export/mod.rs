//! Trace exporters: ATF v4 traces to formats other tools open.
//!
//! - [`chrome`]: Chrome trace-event JSON ([`export_chrome`]), for the Perfetto UI and
//!   `chrome://tracing`.
//! - [`perfetto`]: Perfetto's protobuf trace format ([`export_perfetto`]), which the Perfetto
//!   UI and `trace_processor` open natively.
//! - [`nesting`]: each thread's open calls, for exporters that write balanced slices whatever
//!   the trace lost.
//! - [`select`]: the part of the trace to export (`--from`, `--to`, `--threads`).
//! - [`size`]: how large the export will be, and a warning when viewers will not load it.
//! - [`progress`]: a progress line on the terminal for long exports.
//! - [`stream`]: a trace read from its files a chunk at a time, so exports run in bounded memory.
//!
//! Exporters stream: they decode one event, write it, and move on, so a trace of any size
//! exports in constant memory. A damaged or incomplete trace (no manifest, a torn tail, a
//! corrupt record, fewer bytes or events than the manifest says: [`crate::damage`]) exports what
//! is readable and says what was lost, in the exporter's statistics and in the exported file's
//! own metadata; only a path where no trace is found, a trace that cannot be opened, or a
//! failing output is an [`ExportError`]. `ada export` prints the damage on stderr and exits
//! [`EXIT_DAMAGED`](crate::damage::EXIT_DAMAGED) after writing such an export.

use std::io;
use std::path::PathBuf;

use ada_atf::{LocateError, ReadError};

pub mod chrome;
pub mod nesting;
mod order;
pub mod perfetto;
pub mod progress;
pub mod select;
pub mod size;
pub mod stream;

pub use chrome::{ChromeStats, export_chrome};
pub use perfetto::{PerfettoStats, export_perfetto};

/// An export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The path is not a trace directory, nor a session directory holding exactly one.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// `events.bin` or `trace.json` cannot be opened or read.
    #[error("cannot read the trace at {}: {source}", .path.display())]
    Read {
        /// The trace directory.
        path: PathBuf,
        /// What the reader reported.
        #[source]
        source: ReadError,
    },
    /// Writing the export to the output failed.
    #[error("writing the export failed: {0}")]
    Output(#[source] io::Error),
}
