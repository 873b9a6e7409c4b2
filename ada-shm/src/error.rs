//! Typed errors for creating, attaching and reading segments.

use std::io;

/// Everything that can go wrong with a segment. Every malformed header field has its own
/// variant, so a caller (and a user reading the message) knows exactly what was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The segment name is not a valid POSIX shared-memory name.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// No segment with that name exists.
    #[error("shared-memory segment {name:?} not found (is the controller running?)")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The segment exists but this process may not open it.
    #[error("permission denied opening shared-memory segment {name:?}")]
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// Exclusive creation found a segment with the same name.
    #[error("shared-memory segment {name:?} already exists")]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// The creator has not finished writing the header yet (magic still zero).
    #[error("segment {name:?} is not initialised yet (header magic is zero); retry shortly")]
    NotReady {
        /// The segment name.
        name: String,
    },
    /// The first bytes are not an ADA segment header.
    #[error("segment {name:?} is not an ADA segment (bad magic {found:#018x})")]
    BadMagic {
        /// The segment name.
        name: String,
        /// The magic that was found, as a little-endian u64.
        found: u64,
    },
    /// The segment was written with another layout version.
    #[error(
        "segment layout version {found} is not supported (this build reads version {expected})"
    )]
    VersionMismatch {
        /// Version found in the header.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },
    /// A size in the header disagrees with the mapping or is impossible.
    #[error("segment size is out of bounds: {what} (header says {claimed}, actual {actual})")]
    SizeOutOfBounds {
        /// Which size was wrong.
        what: &'static str,
        /// The value the header claims.
        claimed: u64,
        /// The value that was measured or allowed.
        actual: u64,
    },
    /// A header field holds an impossible value.
    #[error("segment header field {field} holds an impossible value {value}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The region table is malformed.
    #[error("segment layout table is invalid: region {index}: {reason}")]
    LayoutOutOfBounds {
        /// Index of the offending region entry.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A required region is missing from the layout table.
    #[error("segment has no region of kind {kind}")]
    MissingRegion {
        /// The region kind that was looked for.
        kind: u32,
    },
    /// A region exists but is too small for what the caller needs to place in it.
    #[error("region of kind {kind} holds {size} bytes, {needed} needed")]
    RegionTooSmall {
        /// The region kind.
        kind: u32,
        /// Its size.
        size: u64,
        /// What the caller needed.
        needed: u64,
    },
    /// The header names a clock this build does not know.
    #[error("segment uses unknown clock id {0}")]
    UnknownClock(u32),
    /// The header says the segment was created by a pid that is no longer alive.
    #[error("segment {name:?} was left behind by process {pid}, which is no longer running")]
    CreatorDead {
        /// The segment name.
        name: String,
        /// The creator's pid.
        pid: u32,
    },
    /// An offset (and length) does not fit inside the mapping, or is misaligned for its type.
    #[error(
        "offset {offset:#x} (+{len} bytes, align {align}) is outside the {size}-byte mapping or misaligned"
    )]
    OutOfBounds {
        /// The offset.
        offset: u64,
        /// Bytes needed at that offset.
        len: u64,
        /// Required alignment.
        align: u64,
        /// Size of the mapping.
        size: u64,
    },
    /// Any other operating-system error.
    #[error("{op} failed for segment {name:?}: {source}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The segment name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ShmError {
    #[cfg_attr(any(loom, shuttle), allow(dead_code))]
    pub(crate) fn from_errno(op: &'static str, name: &str, err: rustix::io::Errno) -> Self {
        use rustix::io::Errno;
        let name = name.to_owned();
        match err {
            Errno::NOENT => ShmError::NotFound { name },
            Errno::ACCESS | Errno::PERM => ShmError::PermissionDenied { name },
            Errno::EXIST => ShmError::AlreadyExists { name },
            other => ShmError::Os {
                op,
                name,
                source: io::Error::from_raw_os_error(other.raw_os_error()),
            },
        }
    }
}
