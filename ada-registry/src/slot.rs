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
//! never loses or misattributes events (the original reused slots without draining or resetting
//! them). `generation` increments on every claim so the drain can tell a new owner from the old.

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
    state: AtomicU32,
    generation: AtomicU32,
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
};

/// Who owns a slot, as read by the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOwner {
    /// OS thread id (Linux `gettid`).
    pub thread_id: u64,
    /// Process id of the owner.
    pub pid: u32,
    /// Claim generation.
    pub generation: u32,
    /// Session-clock time of registration.
    pub registered_ns: u64,
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
        SlotState::try_from(self.header.state.load(Ordering::Acquire))
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
            generation: h.generation.load(Ordering::Relaxed),
            registered_ns: h.registered_ns.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_slot_index(&self, index: u32) {
        // Relaxed: written at creation, published by the segment header's magic.
        self.header.slot_index.store(index, Ordering::Relaxed);
    }

    /// FREE → CLAIMED. Acquire on success: the claimer must see everything the drain did to the
    /// slot (ring resets) before its Release store of FREE.
    pub(crate) fn try_claim(&self) -> bool {
        let h = &self.header;
        // Relaxed pre-check: cheap skip of taken slots; the CAS below is the real test.
        h.state.load(Ordering::Relaxed) == SlotState::Free as u32
            && h.state
                .compare_exchange(
                    SlotState::Free as u32,
                    SlotState::Claimed as u32,
                    // Acquire: see above. Relaxed on failure: we just move on to another slot.
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// CLAIMED → ACTIVE after writing the owner and initialising both lanes.
    pub(crate) fn activate(&self, owner: SlotOwner, index_rings: u32, detail_rings: u32) -> u32 {
        let h = &self.header;
        // Relaxed (all): the slot is private (CLAIMED) until the Release store below.
        let generation = h.generation.load(Ordering::Relaxed).wrapping_add(1);
        h.generation.store(generation, Ordering::Relaxed);
        h.thread_id.store(owner.thread_id, Ordering::Relaxed);
        h.pid.store(owner.pid, Ordering::Relaxed);
        h.registered_ns
            .store(owner.registered_ns, Ordering::Relaxed);
        self.index.initialize(index_rings);
        self.detail.initialize(detail_rings);
        // Release: publishes the owner and both initialised lanes to the drain.
        h.state.store(SlotState::Active as u32, Ordering::Release);
        generation
    }

    /// ACTIVE → EXITED, by the owning thread.
    pub(crate) fn mark_exited(&self) {
        // Release: the drain that acquires EXITED sees every record and counter the thread wrote.
        self.header
            .state
            .store(SlotState::Exited as u32, Ordering::Release);
    }

    /// ACTIVE → EXITED for a slot whose owner process died (controller side). Returns whether
    /// this call made the transition.
    pub(crate) fn mark_owner_dead(&self) -> bool {
        // AcqRel: Acquire so the drain sees what the dead owner wrote before it died (as far as
        // it got); Release so later readers of EXITED see it too. Relaxed on failure.
        self.header
            .state
            .compare_exchange(
                SlotState::Active as u32,
                SlotState::Exited as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// EXITED → FREE, by the drain, after it persisted and reset everything the slot held.
    pub(crate) fn release_exited(&self) -> bool {
        // AcqRel: Release publishes the drain's ring resets to the next claimer (which acquires
        // in `try_claim`); Acquire keeps the check-then-free in order. Relaxed on failure.
        self.header
            .state
            .compare_exchange(
                SlotState::Exited as u32,
                SlotState::Free as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }
}
