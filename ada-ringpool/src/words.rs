//! Ring data as 64-bit atomic words: byte-slice stores and loads over a ring's `AtomicU64` data
//! area. Why the data is atomic is explained in [`crate::store`].

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
