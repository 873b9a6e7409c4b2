//! The producer side of the registry against a peer that rewrites the shared words: slot state
//! and generation words, the claim hint, the symbol table's claim counters. Registration,
//! unregistration and symbol registration must return promptly (their loops are bounded by the
//! capacity, not by shared values), without a panic and without touching memory outside the
//! table.

use ada_registry::symbols::{HeapSymbolTable, SymbolError, SymbolTableConfig};
use ada_registry::{HeapRegistry, RegistryError, RingGeometry, SlotOwner, SlotState};
use ada_shm::sync::{AtomicU64, Ordering};

fn owner() -> SlotOwner {
    SlotOwner {
        thread_id: 7,
        pid: 7,
        generation: 0,
        registered_ns: 0,
    }
}

/// The `u64` at byte `offset` of `value`.
///
/// # Safety
/// `T` must hold an atomic at `offset..offset + 8` (interior mutability), 8-aligned.
unsafe fn word_at<T>(value: &T, offset: usize) -> &AtomicU64 {
    assert!(offset + 8 <= size_of::<T>() && offset.is_multiple_of(8));
    let base: *const T = value;
    // SAFETY: the caller promises an 8-aligned atomic word at `offset`, in bounds (checked).
    unsafe { &*base.cast::<u8>().add(offset).cast::<AtomicU64>() }
}

/// Every slot's state word holds something no slot state is, and the claim hint is huge: a
/// registration scans each slot once and reports the registry full.
#[test]
fn impossible_slot_states_make_registration_report_full() {
    let registry = HeapRegistry::new(8, RingGeometry::default());
    let view = registry.view();
    for i in 0..8 {
        let slot = view.slot(i).unwrap();
        // SAFETY: the slot's state word (generation << 32 | state) is its first field.
        unsafe { word_at(slot, 0) }.store(u64::MAX - u64::from(i), Ordering::Relaxed);
    }
    // SAFETY: `claim_hint` and `reclaim_epoch` share the word at 128 (the stats line).
    unsafe { word_at(view.header(), 128) }.store(u64::MAX, Ordering::Relaxed);
    assert!(matches!(
        view.register(owner()),
        Err(RegistryError::Full { capacity: 8 })
    ));
}

/// A peer frees a slot its thread still holds (and bumps generations): a second thread may
/// claim it, and each handle's unregistration either moves its own generation or reports a
/// stale handle; nothing panics.
#[test]
fn a_slot_freed_under_its_owner_is_handed_out_again_without_harm() {
    let registry = HeapRegistry::new(1, RingGeometry::default());
    let view = registry.view();
    let first = view.register(owner()).unwrap();
    let slot = view.slot(0).unwrap();
    // SAFETY: the state word, as above.
    let state = unsafe { word_at(slot, 0) };
    // Generation + 5, state FREE.
    let generation = u64::from(first.slot.generation()) + 5;
    state.store(generation << 32, Ordering::Relaxed);
    let second = view.register(owner()).unwrap();
    assert_eq!(second.slot.index(), 0);
    assert!(matches!(
        first.slot.unregister(),
        Err(RegistryError::StaleSlot {
            slot: 0,
            generation: 1
        })
    ));
    // The peer rewrites the state again: the rightful owner's unregistration is refused too.
    state.store(3, Ordering::Relaxed);
    assert!(matches!(
        second.slot.unregister(),
        Err(RegistryError::StaleSlot { .. })
    ));
    assert_eq!(slot.state(), Ok(SlotState::Exited));
}

/// The symbol table's claim counters at the edge of their range: the entry counter at its
/// maximum (wraps around), the word counter so close to its maximum that the claim overflows,
/// or just short of the end of the names area. Every registration returns an id inside the
/// table or `Full`.
#[test]
fn symbol_claim_counters_at_their_limits_give_full_or_an_id_in_range() {
    let table = HeapSymbolTable::new(SymbolTableConfig {
        entries: 16,
        name_bytes: 256,
    });
    let view = table.view();
    let header = view.header();
    // SAFETY: `next_entry` is the word at 128, `next_word` at 136 (the claims line).
    let (next_entry, next_word) = unsafe { (word_at(header, 128), word_at(header, 136)) };
    let name = "a_name_of_more_than_one_word";
    for (entry, word) in [
        (u64::MAX, 0),
        (u64::MAX - 1, 0),
        (3, u64::MAX),
        (3, u64::MAX - 2),
        (4, 256 / 8 - 1),
        (5, 1 << 40),
    ] {
        next_entry.store(entry, Ordering::Relaxed);
        next_word.store(word, Ordering::Relaxed);
        for _ in 0..3 {
            match view.register(name, 0) {
                Ok(id) => assert!((1..=16).contains(&id), "id {id} outside the table"),
                Err(e) => assert_eq!(e, SymbolError::Full),
            }
        }
    }
    assert!(view.refused() > 0);
}
