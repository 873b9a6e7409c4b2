//! Fixed cache-line padding for cross-process layouts.
//!
//! `crossbeam_utils::CachePadded` picks its alignment per target (128 on x86_64 and aarch64,
//! 32, 64 or 256 elsewhere), so a layout that used it could differ between two builds that share
//! one segment. [`CacheLine`] is always 128 bytes aligned: on x86_64 the spatial prefetcher pulls
//! cache lines in pairs (so 64-byte padding still false-shares), and aarch64 big cores use
//! 128-byte lines. A compile-time check below keeps it at least as large as crossbeam's choice
//! for the target being built.

use core::ops::Deref;

/// A value alone on its own 128-byte cache line, with a layout that does not depend on the
/// target. Used for every field that one process writes and another polls.
#[derive(Debug, Default)]
#[repr(C, align(128))]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct CacheLine<T> {
    value: T,
}

impl<T> CacheLine<T> {
    /// Wraps `value` on its own cache line.
    pub const fn new(value: T) -> Self {
        Self { value }
    }
}

impl<T> Deref for CacheLine<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

// Our padding must never be smaller than what crossbeam considers a cache line on this target.
const _: () = assert!(
    core::mem::align_of::<CacheLine<u8>>()
        >= core::mem::align_of::<crossbeam_utils::CachePadded<u8>>()
);
const _: () = assert!(core::mem::size_of::<CacheLine<u64>>() == 128);
