//! Opening and reading trace files without trusting what is at their paths.
//!
//! Every file of a trace is opened with `O_NONBLOCK`, so a FIFO or a device at `trace.json`,
//! `events.bin` or `window_metadata.jsonl` cannot block the open, and the opened handle is then
//! checked with `fstat`: anything that is not a regular file is refused. The check is on the
//! handle that is read, so nothing can swap the file between the check and the read.
//!
//! Reads are bounded: at most the length `fstat` reported (a file that grows meanwhile is read
//! up to that length; one that shrinks ends early), and a caller's size limit is checked against
//! that length before any byte is read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a trace file could not be opened or read.
#[derive(Debug)]
pub(crate) enum FileFailure {
    /// An OS call failed; `op` says which.
    Io {
        /// `"open"`, `"stat"` or `"read"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The path names something other than a regular file.
    NotRegular {
        /// What it is instead (`"FIFO"`, `"directory"`, ...).
        kind: &'static str,
    },
    /// The file is longer than the caller's limit.
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
}

impl FileFailure {
    /// Whether the file does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, FileFailure::Io { op: "open", source } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Opens `path` read-only without blocking and returns it with its length, or refuses it if
/// the opened handle is not a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), FileFailure> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| FileFailure::Io { op: "open", source })?;
    let meta = file
        .metadata()
        .map_err(|source| FileFailure::Io { op: "stat", source })?;
    if !meta.file_type().is_file() {
        return Err(FileFailure::NotRegular {
            kind: kind_of(meta.file_type()),
        });
    }
    Ok((file, meta.len()))
}

/// Reads at most `len` bytes (the length `fstat` reported) from the start of `file`, in
/// bounded chunks. Fewer come back if the file shrank meanwhile.
pub(crate) fn read_up_to(file: &File, len: u64) -> Result<Vec<u8>, FileFailure> {
    // Reserve no more than a modest amount up front: the length is only what fstat said.
    let reserve = usize::try_from(len.min(1 << 24)).unwrap_or(0);
    let mut buf = Vec::with_capacity(reserve);
    file.take(len)
        .read_to_end(&mut buf)
        .map_err(|source| FileFailure::Io { op: "read", source })?;
    Ok(buf)
}

/// Opens `path` as a regular file and reads it whole, refusing one longer than `max` bytes
/// before reading any of it.
pub(crate) fn read_regular_limited(path: &Path, max: u64) -> Result<Vec<u8>, FileFailure> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(FileFailure::TooLarge { len, max });
    }
    // The file may grow after fstat: `take(max + 1)` bounds the read and catches that.
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&file)
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| FileFailure::Io { op: "read", source })?;
    if buf.len() as u64 > max {
        return Err(FileFailure::TooLarge {
            len: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}
