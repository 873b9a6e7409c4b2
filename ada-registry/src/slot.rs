//! `ThreadLaneSet`: one registry slot, owned by one thread at a time.
//!
//! Slot states (the `state` word; only the transitions below exist):
//!
//! ```text
//!   FREE ──claim (CAS, thread)──► CLAIMED ──initialised (Release, thread)──► ACTIVE
//!    ▲                                                                          │
//!    │                                                       thread exit (Release, thread)
//!    │                                                      or owner died (CAS, controller)
//!    │                                                                          ▼
//!    └──────────────── reclaim after final drain (Release, drain) ────────── EXITED
//! ```
//!
//! The drain reads only `ACTIVE` and `EXITED` slots (Acquire). An `EXITED` slot still holds the
//! thread's undrained rings; the drain persists them and only then frees the slot, so slot reuse
//! never loses or misattributes events. `generation` increments on every claim so the drain can
//! tell a new owner from the old.
//!
//! The state and the generation share one 64-bit word (state in the low half, generation in
//! the high half: the same bytes as two little-endian `u32`s), so every transition is a
//! compare-and-swap of *(generation, state)*: a stale handle of an earlier owner (or a
//! controller acting on an owner it saw earlier) can never move a later owner's slot.

use crate::lane::{Lane, LaneKind};
use ada_shm::CacheLine;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

ada_shm::wire_enum! {
    /// The lifecycle state of a slot, stored as `u32`.
    pub enum SlotState {
        /// Unowned; may be claimed.
        Free = 0,
        /// A thread is initialising it.
        Claimed = 1,
        /// Owned by a live thread.
        Active = 2,
        /// The owner is gone; the drain must drain and reclaim it.
        Exited = 3,
    }
}

/// Identity of the owner.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct SlotHeader {
    /// `(generation << 32) | state`.
    state: AtomicU64,
    slot_index: AtomicU32,
    pid: AtomicU32,
    thread_id: AtomicU64,
    registered_ns: AtomicU64,
}

/// One slot: owner identity, an index lane and a detail lane; 128-byte aligned, so no two
/// threads' control words share a cache line.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct ThreadLaneSet {
    header: CacheLine<SlotHeader>,
    index: Lane,
    detail: Lane,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic, an array of atomics or a Lane (ShmSafe), inside padding.
unsafe impl ada_shm::ShmSafe for ThreadLaneSet {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<ThreadLaneSet>() == 896);
    assert!(core::mem::align_of::<ThreadLaneSet>() == 128);
    assert!(core::mem::offset_of!(ThreadLaneSet, index) == 128);
    assert!(core::mem::offset_of!(ThreadLaneSet, detail) == 512);
    assert!(core::mem::offset_of!(SlotHeader, slot_index) == 8);
    assert!(core::mem::offset_of!(SlotHeader, thread_id) == 16);
};

/// Packs a state word.
const fn word(generation: u32, state: SlotState) -> u64 {
    ((generation as u64) << 32) | state as u64
}

/// `(generation, raw state)` of a state word.
const fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// Who owns a slot, as read by the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOwner {
    /// OS thread id (Linux `gettid`).
    pub thread_id: u64,
    /// Process id of the owner.
    pub pid: u32,
    /// Claim generation.
    pub generation: u32,
    /// `CLOCK_MONOTONIC` time of registration (not an event stamp).
    pub registered_ns: u64,
}

#[cfg(not(any(loom, shuttle)))]
impl SlotOwner {
    /// The calling thread, registering now (its generation is assigned by the registration).
    pub fn current_thread() -> SlotOwner {
        SlotOwner {
            thread_id: rustix::thread::gettid().as_raw_nonzero().get() as u64,
            pid: rustix::process::getpid().as_raw_nonzero().get() as u32,
            generation: 0,
            registered_ns: ada_shm::clock::MonotonicClock::read(),
        }
    }
}

impl ThreadLaneSet {
    /// The lane of `kind`.
    pub fn lane(&self, kind: LaneKind) -> &Lane {
        match kind {
            LaneKind::Index => &self.index,
            LaneKind::Detail => &self.detail,
        }
    }

    /// The index lane.
    pub fn index_lane(&self) -> &Lane {
        &self.index
    }

    /// The detail lane.
    pub fn detail_lane(&self) -> &Lane {
        &self.detail
    }

    /// Current state (Acquire: pairs with the Release stores of every transition, so a reader
    /// that sees `ACTIVE` or `EXITED` also sees the lane state the writer left).
    pub fn state(&self) -> Result<SlotState, u32> {
        self.state_and_generation().0
    }

    /// State and generation, read together (Acquire, as [`state`](Self::state)).
    pub fn state_and_generation(&self) -> (Result<SlotState, u32>, u32) {
        // Acquire: see `state`.
        let (generation, raw) = unpack(self.header.state.load(Ordering::Acquire));
        (SlotState::try_from(raw), generation)
    }

    /// The slot's index as written at creation (untrusted; compare with the position).
    pub fn slot_index(&self) -> u32 {
        // Relaxed: immutable after segment creation.
        self.header.slot_index.load(Ordering::Relaxed)
    }

    /// Owner identity. Read after an Acquire of [`state`](Self::state) returned `ACTIVE`/`EXITED`.
    pub fn owner(&self) -> SlotOwner {
        let h = &self.header;
        // Relaxed (all): written before the Release store of ACTIVE that the caller acquired.
        SlotOwner {
            thread_id: h.thread_id.load(Ordering::Relaxed),
            pid: h.pid.load(Ordering::Relaxed),
            generation: unpack(h.state.load(Ordering::Relaxed)).0,
            registered_ns: h.registered_ns.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_slot_index(&self, index: u32) {
        // Relaxed: written at creation, published by the segment header's magic.
        self.header.slot_index.store(index, Ordering::Relaxed);
    }

    /// FREE → CLAIMED (the generation is kept). Acquire on success: the claimer must see
    /// everything the drain did to the slot (ring resets) before its Release store of FREE.
    pub(crate) fn try_claim(&self) -> bool {
        let h = &self.header;
        // Relaxed pre-check: cheap skip of taken slots; the CAS below is the real test.
        let current = h.state.load(Ordering::Relaxed);
        let (generation, raw) = unpack(current);
        raw == SlotState::Free as u32
            && h.state
                .compare_exchange(
                    current,
                    word(generation, SlotState::Claimed),
                    // Acquire: see above. Relaxed on failure: we just move on to another slot.
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// CLAIMED → ACTIVE under the next generation, after writing the owner and initialising
    /// both lanes. Returns the new generation.
    pub(crate) fn activate(&self, owner: SlotOwner, index_rings: u32, detail_rings: u32) -> u32 {
        let h = &self.header;
        // Relaxed (all): the slot is private (CLAIMED) until the Release store below.
        let generation = unpack(h.state.load(Ordering::Relaxed)).0.wrapping_add(1);
        h.thread_id.store(owner.thread_id, Ordering::Relaxed);
        h.pid.store(owner.pid, Ordering::Relaxed);
        h.registered_ns
            .store(owner.registered_ns, Ordering::Relaxed);
        // The drain uses its ends only on ACTIVE/EXITED slots and resyncs them on a new
        // generation.
        // SAFETY: the slot is CLAIMED by this thread: no end of the new generation is in use.
        unsafe {
            self.index.initialize(index_rings);
            self.detail.initialize(detail_rings);
        }
        // Release: publishes the owner and both initialised lanes to the drain.
        h.state
            .store(word(generation, SlotState::Active), Ordering::Release);
        generation
    }

    /// ACTIVE → EXITED for the owner of `generation`. Returns whether this call made the
    /// transition; `false` means the slot no longer belongs to that owner (already exited, or
    /// reclaimed and claimed by a later thread), and nothing was changed.
    pub(crate) fn exit_generation(&self, generation: u32) -> bool {
        self.header
            .state
            .compare_exchange(
                word(generation, SlotState::Active),
                word(generation, SlotState::Exited),
                // Release: the drain that acquires EXITED sees every record and counter the
                // thread wrote. Relaxed on failure: a refused stale handle touches nothing.
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// ACTIVE → EXITED for a slot whose owner process died (controller side), only if the slot
    /// still belongs to the owner of `generation`. Returns whether this call made the transition.
    pub(crate) fn mark_owner_dead(&self, generation: u32) -> bool {
        // AcqRel: Acquire so the drain sees what the dead owner wrote before it died (as far as
        // it got); Release so later readers of EXITED see it too. Relaxed on failure.
        self.header
            .state
            .compare_exchange(
                word(generation, SlotState::Active),
                word(generation, SlotState::Exited),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// EXITED → FREE (generation kept), by the drain, after it persisted and reset everything
    /// the slot held.
    pub(crate) fn release_exited(&self) -> bool {
        // Relaxed: the CAS below validates the value.
        let current = self.header.state.load(Ordering::Relaxed);
        let (generation, raw) = unpack(current);
        raw == SlotState::Exited as u32
            && self
                .header
                .state
                .compare_exchange(
                    current,
                    word(generation, SlotState::Free),
                    // AcqRel: Release publishes the drain's ring resets to the next claimer
                    // (which acquires in `try_claim`); Acquire keeps the check-then-free in
                    // order. Relaxed on failure.
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}
