//! The 128-byte header at the start of every ring.
//!
//! ```text
//! offset  field        writer             meaning
//!      0  position     owner (thread)     (generation << 32) | write_pos: bytes committed in
//!                                         the data area under the current generation
//!                                         (Release per record)
//!      8  flags        owner              bit 0 MARKED: a marked event is in this ring
//!     16  submit_seq   owner              lane-local sequence number of this fill, set at submit
//!     64  consumed     drain / owner      (generation << 32) | bytes the drain has consumed
//! ```
//!
//! `consumed` is the one word both sides may change while the thread owns the ring. It exists so
//! the drain can copy committed records out of a ring the thread is still filling (a thread that
//! exited or died, or a final drain) and the thread can still recycle that ring on pool
//! exhaustion, with every record counted exactly once:
//! - the drain loads `consumed` = (g, r) and `position` = (g', w) (Acquire both) and goes on
//!   only if g' = g (otherwise the thread is between generations: the `position` it saw may
//!   belong to the previous fill, and the drain retries on its next pass); it copies `[r, w)`
//!   with `Relaxed` word loads, issues an Acquire fence, then CASes `consumed` (g, r) → (g, w).
//!   Only a successful CAS makes the copy count as persisted; on failure it is discarded.
//! - the thread, to recycle its full ring, CASes `consumed` (g, r) → (g + 1, 0) and issues a
//!   Release fence *before* it resets `position` to (g + 1, 0) and overwrites anything, and
//!   counts the records in `[r, write_pos)` as dropped.
//!
//! Whichever CAS lands first decides who owns the records in `[r, w)`; the other side sees the
//! changed word and backs off. Why a copy that succeeded is never torn (this is a seqlock read;
//! all ring bytes are atomic words, see [`crate::store`], so the race itself is defined): if any
//! word the drain loaded was written after the thread's recycle, the thread's Release fence
//! (before that store) synchronises with the drain's Acquire fence (after that load), so the
//! recycle CAS happens before the drain's CAS, which therefore reads generation g + 1 and fails.
//! The generation in `position` keeps the drain from pairing a `consumed` of the new fill with a
//! `write_pos` left over from the previous one (loom found exactly that: the drain claimed the
//! old records, which the thread had counted as dropped, and skipped the new ones). Within one
//! generation the thread only writes at or beyond `write_pos`, outside `[r, w)`.
//! `tests/loom_live_copy.rs` model-checks this protocol with the real writer and drain.
//!
//! When the drain owns the whole ring (popped from the submit queue) it resets the header with
//! plain `Relaxed` stores; its Release push onto the free queue publishes the reset to the thread.

use ada_shm::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// Size of the ring header; the data area follows it.
pub const RING_HEADER_SIZE: u32 = 128;
/// `flags` bit: the ring holds a marked event.
pub const FLAG_MARKED: u32 = 1;
/// Compare-and-swap attempts [`RingHeader::begin_recycle`] makes before it takes the `consumed`
/// word unconditionally.
const RECYCLE_ATTEMPTS: u32 = 64;

/// Fields the owning thread writes.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct OwnerSide {
    position: AtomicU64,
    flags: AtomicU32,
    _reserved: AtomicU32,
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
    _pad: [AtomicU64; 5],
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
    assert!(core::mem::offset_of!(OwnerSide, flags) == 8);
    assert!(core::mem::offset_of!(OwnerSide, submit_seq) == 16);
};

/// A decoded `consumed` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    /// Incremented every time the ring's contents are recycled.
    pub generation: u32,
    /// Bytes of the current generation the drain has taken.
    pub read_pos: u32,
}

/// A decoded `position` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The generation (fill) the position belongs to.
    pub generation: u32,
    /// Bytes committed in that generation.
    pub write_pos: u32,
}

/// `(high << 32) | low`.
#[inline(always)]
const fn pack(high: u32, low: u32) -> u64 {
    ((high as u64) << 32) | low as u64
}

impl Consumed {
    fn pack(self) -> u64 {
        pack(self.generation, self.read_pos)
    }
    fn unpack(raw: u64) -> Consumed {
        Consumed {
            generation: (raw >> 32) as u32,
            read_pos: raw as u32,
        }
    }
}

impl RingHeader {
    /// Owner: `write_pos` bytes are committed in generation `generation` (this fill's: the
    /// one in [`position`](Self::position) when the owner took the ring, or the one its own
    /// recycle started).
    #[inline(always)]
    pub fn publish_position(&self, generation: u32, write_pos: u32) {
        // Release: a drain that acquires this position sees every record byte below it.
        self.owner
            .position
            .store(pack(generation, write_pos), Ordering::Release);
    }

    /// The committed position (untrusted on the drain side: check against the capacity).
    pub fn position(&self) -> Position {
        // Acquire: pairs with `publish_position`; the bytes below the value are written.
        let raw = self.owner.position.load(Ordering::Acquire);
        Position {
            generation: (raw >> 32) as u32,
            write_pos: raw as u32,
        }
    }

    /// Committed bytes, whatever the generation (see [`position`](Self::position)).
    pub fn write_pos(&self) -> u32 {
        self.position().write_pos
    }

    /// Owner: mark the ring as holding a marked event.
    pub fn set_marked(&self) {
        // Relaxed: published with the ring by the Release push onto the submit queue.
        self.owner.flags.fetch_or(FLAG_MARKED, Ordering::Relaxed);
    }

    /// The `flags` word.
    pub fn flags(&self) -> u32 {
        // Relaxed: read after the Acquire pop of the ring from the submit queue (or of the
        // position).
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
        // Acquire fence: pairs with the Release fence in `begin_recycle` through any ring word
        // the caller's copy loaded that the owner wrote after recycling (see the module docs).
        fence(Ordering::Acquire);
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

    /// Owner: recycle the ring's contents. Returns the `consumed` word it replaced: the drain's
    /// read position at that moment (the records from there to `write_pos` are the owner's to
    /// count as dropped) and the generation that ended (the new fill's is the next one). Ends
    /// with a Release fence, so a drain that sees any byte the owner writes afterwards fails
    /// its [`commit_read`](Self::commit_read) (see the module docs). Follow it with
    /// [`reset_contents`](Self::reset_contents) for the new generation. Bounded: after
    /// 64 failed compare-and-swaps (only a peer that keeps rewriting the word
    /// causes that) it swaps the word unconditionally.
    pub fn begin_recycle(&self) -> Consumed {
        // Relaxed first read: the CAS below validates it.
        let mut cur = Consumed::unpack(self.consumed.load(Ordering::Relaxed));
        // Bounded: an honest drain moves the word at most once per pass, so a handful of tries
        // always suffices; a word that keeps changing is another process writing it, which must
        // not hold the thread here.
        for _ in 0..RECYCLE_ATTEMPTS {
            let new = Consumed {
                generation: cur.generation.wrapping_add(1),
                read_pos: 0,
            };
            match self.consumed.compare_exchange_weak(
                cur.pack(),
                new.pack(),
                // AcqRel: Acquire sees the drain's claimed position; Release (with the fence
                // below) makes an in-flight drain copy fail its CAS.
                Ordering::AcqRel,
                // Relaxed on failure: retried with the fresh value.
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Release fence: orders the new generation before every later store of ring
                    // bytes or of the position; a drain whose copy read any of them (and then
                    // its Acquire fence) is guaranteed to see g + 1 in its CAS.
                    fence(Ordering::Release);
                    return cur;
                }
                Err(now) => cur = Consumed::unpack(now),
            }
        }
        // Still moving: take the word unconditionally. The generation still changes, so an
        // in-flight drain copy fails its CAS as above; what the drain had claimed is whatever
        // the replaced word says, if it belongs to the generation that ends.
        let new = Consumed {
            generation: cur.generation.wrapping_add(1),
            read_pos: 0,
        };
        // AcqRel and the Release fence: as for the CAS above.
        let replaced = Consumed::unpack(self.consumed.swap(new.pack(), Ordering::AcqRel));
        fence(Ordering::Release);
        Consumed {
            generation: cur.generation,
            read_pos: if replaced.generation == cur.generation {
                replaced.read_pos
            } else {
                0
            },
        }
    }

    /// Whoever owns the whole ring (drain before recycling it, or the owner after
    /// `begin_recycle`): empty it for a fill of `generation`.
    pub fn reset_contents(&self, generation: u32) {
        // Relaxed (both): the new owner learns of the reset through the queue push (Release) or
        // the owner itself continues; `consumed` already moved to the new generation.
        self.owner
            .position
            .store(pack(generation, 0), Ordering::Relaxed);
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
        // The position carries the generation too, so a thread taking the ring reads it from
        // the line it writes anyway (the `consumed` line stays with the drain).
        self.reset_contents(new.generation);
    }
}
