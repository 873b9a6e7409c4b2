//! The 128-byte header at the start of every ring.
//!
//! ```text
//! offset  field        writer             meaning
//!      0  write_pos    owner (thread)     bytes committed in the data area (Release per record)
//!      4  flags        owner              bit 0 MARKED: a marked event is in this ring
//!      8  submit_seq   owner              lane-local sequence number of this fill, set at submit
//!     64  consumed     drain / owner      (generation << 32) | bytes the drain has consumed
//! ```
//!
//! `consumed` is the one word both sides may change while the thread owns the ring. It exists so
//! the drain can copy committed records out of a ring the thread is still filling (a thread that
//! exited or died, or a final drain) and the thread can still recycle that ring on pool
//! exhaustion, with every record counted exactly once:
//! - the drain loads `consumed` = (g, r), loads `write_pos` = w (Acquire), copies `[r, w)`, then
//!   CASes `consumed` (g, r) → (g, w). Only a successful CAS makes the copy count as persisted;
//!   on failure the copy is discarded (it may be torn).
//! - the thread, to recycle its full ring, CASes `consumed` (g, r) → (g + 1, 0) *before* it
//!   resets `write_pos` and overwrites anything, and counts the records in `[r, write_pos)` as
//!   dropped.
//!
//! Whichever CAS lands first decides who owns the records in `[r, w)`; the other side sees the
//! changed word and backs off. When the drain owns the whole ring (popped from the submit queue)
//! it resets the header with plain `Relaxed` stores; its Release push onto the free queue
//! publishes the reset to the thread.

use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

/// Size of the ring header; the data area follows it.
pub const RING_HEADER_SIZE: u32 = 128;
/// `flags` bit: the ring holds a marked event.
pub const FLAG_MARKED: u32 = 1;

/// Fields the owning thread writes.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct OwnerSide {
    write_pos: AtomicU32,
    flags: AtomicU32,
    submit_seq: AtomicU64,
}

/// The ring header (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct RingHeader {
    owner: OwnerSide,
    _pad: [AtomicU64; 6],
    consumed: AtomicU64,
    _pad2: [AtomicU64; 7],
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic or an array of atomics; no padding bytes are read.
unsafe impl ada_shm::ShmSafe for RingHeader {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<RingHeader>() == RING_HEADER_SIZE as usize);
    assert!(core::mem::offset_of!(RingHeader, consumed) == 64);
};

/// A decoded `consumed` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    /// Incremented every time the ring's contents are recycled.
    pub generation: u32,
    /// Bytes of the current generation the drain has taken.
    pub read_pos: u32,
}

impl Consumed {
    fn pack(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.read_pos)
    }
    fn unpack(raw: u64) -> Consumed {
        Consumed {
            generation: (raw >> 32) as u32,
            read_pos: raw as u32,
        }
    }
}

impl RingHeader {
    /// Owner: bytes committed so far.
    #[inline(always)]
    pub fn publish_write_pos(&self, pos: u32) {
        // Release: a drain that acquires this position sees every record byte below it.
        self.owner.write_pos.store(pos, Ordering::Release);
    }

    /// Committed bytes (untrusted on the drain side: check against the capacity).
    pub fn write_pos(&self) -> u32 {
        // Acquire: pairs with `publish_write_pos`; the bytes below the value are written.
        self.owner.write_pos.load(Ordering::Acquire)
    }

    /// Owner: mark the ring as holding a marked event.
    pub fn set_marked(&self) {
        // Relaxed: published with the ring by the Release push onto the submit queue.
        self.owner.flags.fetch_or(FLAG_MARKED, Ordering::Relaxed);
    }

    /// The `flags` word.
    pub fn flags(&self) -> u32 {
        // Relaxed: read after the Acquire pop of the ring from the submit queue (or of write_pos).
        self.owner.flags.load(Ordering::Relaxed)
    }

    /// Owner: the sequence number of this fill, set just before submitting.
    pub fn set_submit_seq(&self, seq: u64) {
        // Relaxed: published by the submit queue's Release push.
        self.owner.submit_seq.store(seq, Ordering::Relaxed);
    }

    /// The fill's sequence number.
    pub fn submit_seq(&self) -> u64 {
        // Relaxed: see `set_submit_seq`.
        self.owner.submit_seq.load(Ordering::Relaxed)
    }

    /// The `consumed` word.
    pub fn consumed(&self) -> Consumed {
        // Acquire: pairs with the Release of the other side's CAS, so a reader that sees a new
        // generation also sees that side's reset.
        Consumed::unpack(self.consumed.load(Ordering::Acquire))
    }

    /// Drain: claim `[seen.read_pos, upto)` as persisted. Fails if the owner recycled the ring
    /// (or anything else moved the word) since `seen` was read.
    pub fn commit_read(&self, seen: Consumed, upto: u32) -> bool {
        let new = Consumed {
            generation: seen.generation,
            read_pos: upto,
        };
        self.consumed
            // AcqRel: Acquire orders the copy before the check; Release tells a recycling owner
            // the bytes are taken. Relaxed on failure: the caller just discards its copy.
            .compare_exchange(seen.pack(), new.pack(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Owner: recycle the ring's contents. Returns the drain's read position at that moment;
    /// the records from there to `write_pos` are the owner's to count as dropped.
    pub fn begin_recycle(&self) -> u32 {
        // Relaxed first read: the CAS below validates it.
        let mut cur = Consumed::unpack(self.consumed.load(Ordering::Relaxed));
        loop {
            let new = Consumed {
                generation: cur.generation.wrapping_add(1),
                read_pos: 0,
            };
            match self.consumed.compare_exchange_weak(
                cur.pack(),
                new.pack(),
                // AcqRel: Acquire sees the drain's claimed position; Release (with the write_pos
                // reset that follows) makes an in-flight drain copy fail its CAS.
                Ordering::AcqRel,
                // Relaxed on failure: retried with the fresh value.
                Ordering::Relaxed,
            ) {
                Ok(_) => return cur.read_pos,
                Err(now) => cur = Consumed::unpack(now),
            }
        }
    }

    /// Whoever owns the whole ring (drain before recycling it, or the owner after
    /// `begin_recycle`): empty it for the next fill.
    pub fn reset_contents(&self) {
        // Relaxed (both): the new owner learns of the reset through the queue push (Release) or
        // the owner itself continues; `consumed` already moved to a new generation.
        self.owner.write_pos.store(0, Ordering::Relaxed);
        self.owner.flags.store(0, Ordering::Relaxed);
    }

    /// Drain, owning the ring: move to a new generation and empty it.
    pub fn recycle_owned(&self) {
        let cur = Consumed::unpack(self.consumed.load(Ordering::Relaxed));
        let new = Consumed {
            generation: cur.generation.wrapping_add(1),
            read_pos: 0,
        };
        // Relaxed: the drain owns the ring; the free queue's Release push publishes this.
        self.consumed.store(new.pack(), Ordering::Relaxed);
        self.reset_contents();
    }
}
