//! `ada-shm`: the shared-memory floor of ADA.
//!
//! What it is:
//! - [`Segment`]: a named POSIX shared-memory segment, created exclusively (`O_CREAT|O_EXCL`,
//!   mode `0600`, a name that embeds the creator pid and a random session id), mapped with
//!   `memmap2`, and started by a [`SegmentHeader`] (magic, layout version, total size, creator
//!   pid, session id, clock, and a table of regions). Attaching validates all of it and reports
//!   each failure as a typed [`ShmError`].
//! - [`Off<T>`]: typed offsets. Nothing stored in a segment is a pointer; an offset resolves
//!   against one mapping, with a bounds and alignment check, through the one audited function
//!   [`Segment::view`].
//! - [`SegmentName`]: validated segment names, and [`ENV_SEGMENT`] (`ADA_SHM`), the environment
//!   variable through which a traced program learns the name.
//! - [`CacheLine`]: the fixed 128-byte padding used inside cross-process layouts.
//! - [`clock`]: the session's timebases: [`clock::ClockId`], the clock agents stamp events with
//!   (`CLOCK_MONOTONIC` nanoseconds, or the CPU's counter in ticks), named by the segment header;
//!   everything else (heartbeats, the trace itself) is `CLOCK_MONOTONIC` nanoseconds.
//! - [`tsc`]: the CPU's time-stamp counter (`rdtsc`, `CNTVCT_EL0`), its invariance check and the
//!   calibration that converts its ticks to `CLOCK_MONOTONIC` nanoseconds.
//! - [`sync`]: the atomics facade. Under `--cfg loom` or `--cfg shuttle` the same names come from
//!   the model checkers, so the lock-free algorithms above this crate can be model-checked on heap
//!   memory and placed in the mapping only in the normal build.
//!
//! What it is not: it knows nothing about threads, rings or trace events; the crates above it
//! (`ada-registry`, `ada-ringpool`) define what the regions hold. It never blocks and never
//! spawns threads.
//!
//! **Architecture invariant:** only this crate maps memory, and every reference into a mapping
//! is produced by [`Segment::view`] / [`Segment::view_slice`] after a bounds and alignment check.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_has_atomic = "64"))]
compile_error!("ada-shm needs lock-free 64-bit atomics: cross-process layouts cannot use a lock");

pub mod clock;
mod error;
mod header;
mod name;
mod offset;
mod pad;
pub mod process;
#[cfg(not(any(loom, shuttle)))]
mod segment;
pub mod sync;
pub mod tsc;
mod wire_enum;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use error::ShmError;
pub use header::{
    HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_REGIONS, REGION_ALIGN, RegionEntry, RegionKind,
    RegionSpec, SegmentHeader, TRIGGERS_REGION_VERSION,
};
pub use name::{ENV_SEGMENT, SegmentName};
pub use offset::Off;
pub use pad::CacheLine;
#[cfg(not(any(loom, shuttle)))]
pub use segment::{
    AttachOptions, Region, Segment, SegmentState, ShmSafe, StaleSegment, list_segments,
    remove_stale_segments, remove_stale_segments_where,
};
