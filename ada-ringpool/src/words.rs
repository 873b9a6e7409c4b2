//! Ring data as 64-bit atomic words.
//!
//! A ring's data area is read by the drain while its owner may still be writing it (the
//! salvage of a live thread's active ring), and it sits in memory another process writes. In
//! Rust's memory model a plain copy that races a write is undefined behaviour even if the copy
//! is thrown away afterwards, so both sides access ring bytes only as `AtomicU64` words with
//! `Relaxed` loads and stores: on x86-64 and AArch64 these are the same `mov`/`ldr`/`str`
//! instructions a plain copy uses, every record is a multiple of 8 bytes at an 8-byte aligned
//! offset, and a racing reader can at worst see a mix of old and new words, which the
//! `consumed` protocol ([`crate::header`]) detects and discards.

use ada_shm::sync::{AtomicU64, Ordering};

/// Stores `src` (a multiple of 8 bytes) at byte `offset` (a multiple of 8) of `words`, one
/// little-endian word at a time. Returns `false` (storing nothing) if the range does not fit.
pub(crate) fn store(words: &[AtomicU64], offset: u32, src: &[u8]) -> bool {
    debug_assert!(offset.is_multiple_of(8) && src.len().is_multiple_of(8));
    let first = offset as usize / 8;
    let Some(dst) = words.get(first..first + src.len() / 8) else {
        return false;
    };
    for (word, bytes) in dst.iter().zip(src.chunks_exact(8)) {
        let value = u64::from_le_bytes(bytes.try_into().expect("chunks of 8"));
        // Relaxed: published by the owner's Release store of `write_pos` (or the queue push).
        word.store(value, Ordering::Relaxed);
    }
    true
}

/// Loads `dst.len()` bytes (a multiple of 8) at byte `offset` (a multiple of 8) of `words`.
/// Returns `false` (loading nothing) if the range does not fit.
pub(crate) fn load(words: &[AtomicU64], offset: u32, dst: &mut [u8]) -> bool {
    if !offset.is_multiple_of(8) || !dst.len().is_multiple_of(8) {
        return false;
    }
    let first = offset as usize / 8;
    let Some(src) = words.get(first..first + dst.len() / 8) else {
        return false;
    };
    for (word, bytes) in src.iter().zip(dst.chunks_exact_mut(8)) {
        // Relaxed: ordered by the caller's Acquire of `write_pos` or of the submit queue, and
        // for a live ring validated afterwards by the `consumed` compare-and-swap.
        bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    true
}
