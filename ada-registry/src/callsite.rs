//! The cached callsite word: a callsite's function id and its trigger verdict packed into one
//! `u64`, so an agent's record hot path learns both with one load and tests the verdict with one
//! branch.
//!
//! ```text
//! bit  63       TRIGGERED: a symbol trigger fires for this callsite
//! bits 47..=62  the trigger's index in its set (16 bits; 0 when not triggered)
//! bits 0..=46   the function id (47 bits; see CALLSITE_ID_MASK)
//! ```
//!
//! A word of 0 means "not registered yet". Symbol-table ids are small (the table holds at most
//! `u32::MAX` entries and numbers them from 1), so they always fit; an agent's fallback ids for
//! names the table refused must be made to fit too (`ada-agent` hashes into the low 47 bits
//! with bit 46 set). [`pack`] masks any id to 47 bits, so an id can never set the verdict bits.
//!
//! The cell is filled once per process by whichever thread registers the callsite first:
//! [`publish`] compare-exchanges it from 0, and every racer adopts the winner's word, so all
//! threads see the same id and the same verdict. The word is a plain number for this process
//! (the name reaches the controller through the symbol table's own publication), so `Relaxed`
//! suffices everywhere. Written against `ada_shm::sync` so loom checks the race.

use ada_shm::sync::{AtomicU64, Ordering};

/// Bits of the function id in a callsite word.
pub const CALLSITE_ID_BITS: u32 = 47;
/// Mask of the function id in a callsite word.
pub const CALLSITE_ID_MASK: u64 = (1 << CALLSITE_ID_BITS) - 1;
/// The TRIGGERED flag of a callsite word.
pub const CALLSITE_TRIGGERED: u64 = 1 << 63;
const TRIGGER_SHIFT: u32 = CALLSITE_ID_BITS;

/// Packs function `id` (masked to [`CALLSITE_ID_MASK`]) and the index of the symbol trigger
/// that fires for it, if any.
#[inline]
pub const fn pack(id: u64, trigger: Option<u16>) -> u64 {
    let id = id & CALLSITE_ID_MASK;
    match trigger {
        Some(index) => CALLSITE_TRIGGERED | ((index as u64) << TRIGGER_SHIFT) | id,
        None => id,
    }
}

/// The function id of a callsite word.
#[inline(always)]
pub const fn unpack_id(word: u64) -> u64 {
    word & CALLSITE_ID_MASK
}

/// The trigger index of a callsite word, if it is TRIGGERED.
#[inline(always)]
pub const fn unpack_trigger(word: u64) -> Option<u16> {
    if word & CALLSITE_TRIGGERED != 0 {
        Some((word >> TRIGGER_SHIFT) as u16)
    } else {
        None
    }
}

/// Stores `word` in the empty `cell` unless another thread filled it first; returns the word the
/// cell holds now (ours or the winner's), which every caller then uses.
pub fn publish(cell: &AtomicU64, word: u64) -> u64 {
    // Relaxed (both): the word is a self-contained number for this process; the compare-exchange
    // only has to pick one winner, and a failed one returns the winner's word.
    match cell.compare_exchange(0, word, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => word,
        Err(winner) => winner,
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_ids_never_reach_the_verdict_bits() {
        for id in [1, 7, u64::from(u32::MAX), CALLSITE_ID_MASK, u64::MAX] {
            for trigger in [None, Some(0), Some(5), Some(1023), Some(u16::MAX)] {
                let word = pack(id, trigger);
                assert_eq!(unpack_id(word), id & CALLSITE_ID_MASK);
                assert_eq!(unpack_trigger(word), trigger, "id {id:#x}");
            }
        }
        assert_eq!(pack(u64::MAX, None) & CALLSITE_TRIGGERED, 0);
        assert_ne!(pack(1, None), 0);
    }

    #[test]
    fn publish_keeps_the_first_word() {
        let cell = AtomicU64::new(0);
        assert_eq!(publish(&cell, pack(3, Some(2))), pack(3, Some(2)));
        assert_eq!(publish(&cell, pack(4, Some(2))), pack(3, Some(2)));
    }
}
