//! `ada-atf`: ATF v4 trace files for the ADA tracer — the writer and the reader.
//!
//! What it is:
//! - [`schema`]: the ATF v4 protobuf messages (`Event` and its payloads) as `prost` structs
//!   with the field numbers of the ATF v4 schema (fixed, so existing ATF v4 readers and writers
//!   stay compatible), plus additive extensions. The schema is also shipped as
//!   `proto/trace_schema.proto` for other languages; no code generator runs.
//! - [`encode`]: a hand-written encoder that appends `varint(len) ++ Event` for a borrowed
//!   [`EventRef`] to a reusable buffer, with no heap allocation per event, enforcing
//!   ATF v4's limits with typed [`EncodeError`]s; and a one-pass fast path for index-shaped
//!   events ([`IndexEventRef`]: a call or return carrying a symbol and an address, with the
//!   payload pre-encoded per function in a [`FunctionPayload`]) that writes the very same
//!   bytes ([`encode_index_delimited`], [`TraceWriter::write_index`]).
//! - [`TraceWriter`]: creates `<out>/ada_traces/session_YYYYMMDD_HHMMSS/pid_<pid>/`, streams
//!   events to `events.bin` (ids from 1), appends persistence windows to
//!   `window_metadata.jsonl`, and at finalize writes the `trace.json` [`Manifest`] atomically.
//!   Its buffering and `fsync` policy (what survives which crash) is documented on
//!   [`writer`].
//! - [`mapping`]: ring records (as plain values) to events, with the agent's symbol table and
//!   per-architecture register names. (The controller bypasses it for index-shaped records,
//!   going straight to an [`IndexEventRef`]; its tests prove the bytes are the same.)
//! - [`TraceReader`] / [`Events`]: open a trace (finalized, or not yet — a crashed writer),
//!   validate the manifest, and stream events from the memory-mapped `events.bin`, reporting
//!   every kind of corruption as a typed [`ReadError`], never panicking, and reading a trace
//!   whose writer was killed up to its last whole event ([`TornTail`]).
//! - [`TraceDir::find`] ([`locate`]): the one place that decides whether a path is a trace
//!   directory, or a session directory holding exactly one, with a typed [`LocateError`]
//!   saying what is wrong otherwise.
//!
//! What it is not: it knows protobuf and files and nothing about shared memory, rings, lanes'
//! internals or threads. Callers hand it plain values — borrowed strings, register slices,
//! counters in a [`TraceSummary`] — and it never blocks on anything but the file system. It is
//! meant for the controller's drain thread, never for the traced process.
//!
//! **Format compatibility.** `events.bin` is a sequence of protobuf `Event` messages, each
//! prefixed by its varint length: the framing of every ATF v4 writer. Extensions use only numbers
//! the plain ATF v4 schema leaves unused, so a reader of the plain schema decodes every event:
//!
//! | where | number | extension |
//! |---|---|---|
//! | `Event` | 4 | `uint64 function_id` |
//! | `Event` | 5 | `uint32 call_depth` |
//! | `Event` | 6 | `uint32 lane` (0 index, 1 detail) |
//! | `Event.payload` | 15 | `EventsLost { uint32 lane = 1; uint64 count = 2; string cause = 3; uint64 first_lost_ns = 4; uint64 last_lost_ns = 5; }` (`cause`: a `LossCause` name; times 0 = unknown) |
//! | `Event.payload` | 16 | `Custom { string name = 1; bytes data = 2; }` |
//! | `Event.payload` | 17 | `WindowMark { uint64 window_id = 1; … bool mark_seen = 8; int32 thread_id = 9; uint64 last_mark_ns = 10; optional uint32 trigger = 11; uint64 pre_roll_events = 12; uint64 discarded_events = 13; uint64 over_budget_events = 14; }` |
//! | `Event.payload` | 18 | `SymbolDef { uint64 function_id = 1; string symbol = 2; uint64 address = 3; string module = 4; string file = 5; uint32 line = 6; }` |
//! | `Event.payload` | 19 | `ThreadDef { int32 thread_id = 1; uint32 pid = 2; uint64 os_tid = 3; string name = 4; bool verified = 5; }` |
//!
//! A plain reader skips fields 4–6 and sees members 15–19 as an event without payload.
//! Definitions (18, 19) are events of thread 0 with no function id, and come before the first
//! event that uses them, so a trace whose writer
//! died before the manifest still names its functions and threads ([`StreamNames`]). The
//! manifest keeps the nine keys of every ATF v4 manifest (`os`, `arch`, `pid`, `sessionId`,
//! `timeStartNs`, `timeEndNs`, `eventCount`, `bytesWritten`, `modules`) and adds new ones; see
//! [`manifest`].
//!
//! ```
//! use ada_atf::{EventRef, PayloadRef, TraceReader, TraceSummary, TraceWriter, WriterOptions};
//!
//! let out = tempfile::tempdir()?;
//! let mut writer = TraceWriter::create(out.path(), WriterOptions::default())?;
//! let call = PayloadRef::FunctionCall {
//!     symbol: "main",
//!     address: 0x1000,
//!     argument_registers: &[("rdi", 1)],
//!     stack_shallow_copy: &[],
//! };
//! let id = writer.write(&EventRef::new(7, 1_500_000_000, call).with_function(42, 1))?;
//! assert_eq!(id, 1);
//! let stats = writer.finalize(TraceSummary::default())?;
//!
//! let reader = TraceReader::open(&stats.dir)?;
//! let events: Vec<_> = reader.events().collect::<Result<_, _>>()?;
//! assert_eq!(events[0].function_id, 42);
//! assert_eq!(reader.manifest().unwrap().event_count, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod block;
pub mod encode;
mod error;
mod fsread;
pub mod locate;
pub mod manifest;
pub mod mapping;
pub mod names;
pub mod reader;
pub mod schema;
pub mod window;
pub mod writer;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use block::{BlockEncoder, BlockError, EncodedBlock};
pub use encode::{
    DEFAULT_MAX_RECORD_LEN, EventRef, FunctionPayload, IndexEventRef, IndexKind, MAX_ARGS,
    MAX_REGISTERS, MAX_STACK_BYTES, PayloadRef, Register, encode_delimited,
    encode_delimited_with_limit, encode_index_delimited, encode_index_delimited_with_limit,
    encoded_len,
};
pub use error::{EncodeError, ManifestError, ReadError, WriteError};
pub use locate::{LocateError, TraceDir};
pub use manifest::{
    AgentStatsSummary, ClockCalibration, ClockDescription, ContinuationSummary, FORMAT_VERSION,
    FallbackSummary, FoldedThreadsSummary, LaneCounters, LostByCause, MAX_MANIFEST_LEN, Manifest,
    ModeEntries, ModuleEntry, PerLane, ReadinessSummary, StateEntries, SymbolEntry, ThreadSummary,
    TraceSummary,
};
pub use mapping::{RecordKind, RecordMapper, RegisterNames, RingRecord, SymbolLookup};
pub use names::{SourceLocation, StreamNames, SymbolName, ThreadIdentity};
pub use reader::{Events, ReaderOptions, TornTail, TraceReader};
pub use schema::{Event, Lane, Timestamp};
pub use window::{MAX_WINDOWS_FILE_LEN, PersistenceWindow};
pub use writer::{FinalStats, SyncPolicy, TraceWriter, WriterOptions};
