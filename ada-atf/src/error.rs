//! Typed errors: [`EncodeError`] (an event breaks a limit), [`WriteError`] (creating or
//! writing a trace), [`ManifestError`] (a `trace.json` that cannot be used) and [`ReadError`]
//! (reading a trace; every way `events.bin` can be corrupt has its own variant).

use std::io;
use std::path::PathBuf;

/// An event that cannot be encoded. Nothing is written when this is returned.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// More registers than [`MAX_REGISTERS`](crate::MAX_REGISTERS).
    #[error("{count} registers in one event; at most {max} are allowed")]
    TooManyRegisters {
        /// Registers given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A stack copy longer than [`MAX_STACK_BYTES`](crate::MAX_STACK_BYTES).
    #[error("stack copy of {len} bytes; at most {max} are allowed")]
    StackTooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More arguments than [`MAX_ARGS`](crate::MAX_ARGS) in a `TraceStart`.
    #[error("{count} arguments in TraceStart; at most {max} are allowed")]
    TooManyArgs {
        /// Arguments given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded event would be longer than the record limit, so readers would reject it.
    #[error("encoded event is {len} bytes; the record limit is {max}")]
    RecordTooLarge {
        /// Encoded body length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Creating, writing or finalizing a trace failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"create"`, `"write"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The event breaks a limit; nothing was written and no event id was used.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The session label cannot be used as a directory name.
    #[error("invalid session label {0:?}: it must be a non-empty single path component")]
    InvalidSessionLabel(String),
    /// The `pid_<pid>` directory already exists (the same pid in the same session name), or
    /// already holds an `events.bin`; the path names that `events.bin`. Nothing is written into
    /// a directory the writer did not create, and the existing trace is left untouched.
    #[error("a trace already exists at {0}")]
    TraceExists(PathBuf),
    /// A directory the writer would write into (`ada_traces` or a labelled session directory)
    /// exists but is a symbolic link or not a directory. Links are never followed there, so a
    /// link planted in a shared output directory cannot redirect the trace.
    #[error("refusing to use {0}: it is a symbolic link or not a directory")]
    NotARealDirectory(PathBuf),
    /// An encoded block handed to
    /// [`TraceWriter::append_block`](crate::TraceWriter::append_block) is not a sequence of
    /// records with the placeholder id; nothing of it was written and no id was used.
    #[error(transparent)]
    Block(#[from] crate::BlockError),
    /// An earlier write to `events.bin` failed, so this writer accepts no more events. The file
    /// was cut back to its last whole record where possible; finalize still writes a manifest
    /// with `complete: false`.
    #[error("the writer failed earlier and accepts no more events: {0}")]
    Poisoned(String),
}

/// A `trace.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// There is no `trace.json` (the writer has not finalized, or crashed).
    #[error("no manifest at {0}")]
    Missing(PathBuf),
    /// Reading it failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The path names something other than a regular file (a FIFO, a device, a directory).
    /// It is refused without blocking and without being read.
    #[error("{path} is a {kind}, not a regular file")]
    NotARegularFile {
        /// The manifest path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// It is longer than [`MAX_MANIFEST_LEN`](crate::MAX_MANIFEST_LEN); nothing was read.
    #[error("{path} is {len} bytes; a manifest may have at most {max}")]
    TooLarge {
        /// The manifest path.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// It is not JSON.
    #[error("manifest is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// It is JSON but not an object.
    #[error("manifest is not a JSON object")]
    NotAnObject,
    /// A required key is absent.
    #[error("manifest lacks the required key {0:?}")]
    MissingKey(&'static str),
    /// A key holds a value of the wrong type or range.
    #[error("manifest key {key:?} must be {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

/// Reading a trace failed, or `events.bin` is corrupt at `offset`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A trace file (`events.bin`, `window_metadata.jsonl`) is not a regular file (a FIFO, a
    /// device, a directory). It is refused without blocking and without being read.
    #[error("{path} is a {kind}, not a regular file")]
    NotARegularFile {
        /// The file involved.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A trace file is longer than its limit (for `window_metadata.jsonl`,
    /// [`MAX_WINDOWS_FILE_LEN`](crate::MAX_WINDOWS_FILE_LEN)); nothing was read.
    #[error("{path} is {len} bytes; the limit is {max}")]
    FileTooLarge {
        /// The file involved.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The manifest cannot be used.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A complete manifest names a different `events.bin` size than the file has.
    #[error("manifest says events.bin has {manifest} bytes but it has {actual}")]
    SizeMismatch {
        /// `bytesWritten` from the manifest.
        manifest: u64,
        /// The file's length.
        actual: u64,
    },
    /// A length prefix is cut off by the end of the file (only in strict mode; otherwise this is
    /// a torn tail).
    #[error("length prefix at offset {offset} is cut off by the end of the file")]
    TruncatedVarint {
        /// Where the record starts.
        offset: u64,
    },
    /// A length prefix longer than 10 bytes or above `u64::MAX`.
    #[error("length prefix at offset {offset} overflows a 64-bit varint")]
    VarintOverflow {
        /// Where the record starts.
        offset: u64,
    },
    /// A length prefix above the reader's record limit.
    #[error("record at offset {offset} claims {len} bytes; the limit is {max}")]
    RecordTooLarge {
        /// Where the record starts.
        offset: u64,
        /// The claimed length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A record body is cut off by the end of the file (only in strict mode; otherwise this is a
    /// torn tail).
    #[error("record at offset {offset} needs {len} bytes but only {available} remain")]
    TruncatedRecord {
        /// Where the record starts.
        offset: u64,
        /// The claimed body length.
        len: u64,
        /// Bytes left after the prefix.
        available: u64,
    },
    /// The file ends in zero bytes where a record should be (a zero-filled tail left by a
    /// crash; only in strict mode, otherwise a torn tail).
    #[error("zero-filled tail of {bytes} bytes at offset {offset}")]
    ZeroFilledTail {
        /// Where the zeros start.
        offset: u64,
        /// How many there are.
        bytes: u64,
    },
    /// A record body is not a valid `Event` message.
    #[error("record at offset {offset} is not a valid Event: {source}")]
    Malformed {
        /// Where the record starts.
        offset: u64,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// A line of `window_metadata.jsonl` is not a window record.
    #[error("window_metadata.jsonl line {line}: {source}")]
    WindowMetadata {
        /// 1-based line number.
        line: usize,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
}
