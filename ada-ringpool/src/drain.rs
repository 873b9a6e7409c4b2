//! The drain side of one lane: take submitted rings, copy out what they hold, reset them and
//! hand them back; salvage what a thread committed to its active ring.
//!
//! The drain never trusts the segment: a ring index from the submit queue must be below the
//! lane's ring count, a `write_pos` must fit the ring, and the bytes are copied into a private
//! buffer before anyone parses them (record validation is in [`crate::record`]). Bad input is
//! counted in [`DrainStats`] and skipped; it never panics or reads out of bounds.

use crate::header::{Consumed, FLAG_MARKED};
use crate::store::RingStore;
use ada_registry::{Lane, LaneKind};

/// One ring's worth of bytes handed to the visitor.
#[derive(Debug)]
pub struct RingChunk<'b> {
    /// The ring it came from.
    pub ring: u32,
    /// The ring held a marked event (detail lane).
    pub marked: bool,
    /// Lane-local fill sequence number (submitted rings only).
    pub seq: u64,
    /// Copied from the thread's active ring rather than a submitted one.
    pub from_active: bool,
    /// The record bytes (a private copy).
    pub bytes: &'b [u8],
}

/// What a drain pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Submitted rings taken and returned.
    pub rings: u64,
    /// Bytes handed to the visitor.
    pub bytes: u64,
    /// Submit-queue entries that named no ring of this lane (skipped).
    pub bad_ring_indices: u64,
    /// Rings whose `write_pos` exceeded their capacity (contents discarded).
    pub bad_write_pos: u64,
    /// The queue positions themselves were inconsistent.
    pub corrupt_queue: u64,
    /// Rings that could not be returned because the free queue was full (corruption).
    pub lost_rings: u64,
    /// Active-ring copies abandoned because the thread recycled the ring meanwhile.
    pub raced_copies: u64,
}

impl DrainStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &DrainStats) {
        self.rings += other.rings;
        self.bytes += other.bytes;
        self.bad_ring_indices += other.bad_ring_indices;
        self.bad_write_pos += other.bad_write_pos;
        self.corrupt_queue += other.corrupt_queue;
        self.lost_rings += other.lost_rings;
        self.raced_copies += other.raced_copies;
    }
}

/// The drain's handle on one lane.
#[derive(Debug)]
pub struct LaneDrain<'a, S: RingStore> {
    lane: &'a Lane,
    store: S,
    kind: LaneKind,
    buf: Vec<u8>,
}

impl<'a, S: RingStore> LaneDrain<'a, S> {
    /// A drain handle for `lane` with rings in `store`.
    pub fn new(lane: &'a Lane, store: S, kind: LaneKind) -> Self {
        let buf = vec![0u8; store.data_capacity() as usize];
        LaneDrain {
            lane,
            store,
            kind,
            buf,
        }
    }

    /// Which lane.
    pub fn kind(&self) -> LaneKind {
        self.kind
    }

    /// Takes up to `max_rings` submitted rings (0 = all), hands each one's unread bytes to
    /// `visit`, resets the rings and returns them to the free queue.
    pub fn drain_submitted(
        &mut self,
        max_rings: u32,
        mut visit: impl FnMut(RingChunk<'_>),
    ) -> DrainStats {
        let mut stats = DrainStats::default();
        let mut submitted = self.lane.submit_queue().consumer();
        let mut free = self.lane.free_queue().producer();
        let count = self.store.ring_count();
        let cap = self.store.data_capacity();
        let mut taken = 0;
        while max_rings == 0 || taken < max_rings {
            let ring = match submitted.pop() {
                Ok(Some(ring)) => ring,
                Ok(None) => break,
                Err(_) => {
                    stats.corrupt_queue += 1;
                    break;
                }
            };
            taken += 1;
            if ring >= count {
                stats.bad_ring_indices += 1;
                continue;
            }
            let header = self.store.header(ring);
            let write_pos = header.write_pos();
            let seen = header.consumed();
            if write_pos > cap {
                stats.bad_write_pos += 1;
            } else if seen.read_pos < write_pos {
                let len = (write_pos - seen.read_pos) as usize;
                if self.store.read(ring, seen.read_pos, &mut self.buf[..len]) {
                    stats.bytes += len as u64;
                    visit(RingChunk {
                        ring,
                        marked: header.flags() & FLAG_MARKED != 0,
                        seq: header.submit_seq(),
                        from_active: false,
                        bytes: &self.buf[..len],
                    });
                }
            }
            header.recycle_owned();
            stats.rings += 1;
            if free.push(ring).is_err() {
                stats.lost_rings += 1;
            }
        }
        stats
    }

    /// Copies what the thread committed to its active ring since the last copy, without taking
    /// the ring. Safe while the thread keeps writing: a copy is handed to `visit` only if the
    /// thread did not recycle the ring meanwhile (see [`crate::header`]), so every record is
    /// delivered at most once and never also counted as dropped.
    pub fn drain_active(&mut self, mut visit: impl FnMut(RingChunk<'_>)) -> DrainStats {
        let mut stats = DrainStats::default();
        let ring = self.lane.active_ring();
        if ring >= self.store.ring_count() {
            stats.bad_ring_indices += 1;
            return stats;
        }
        let header = self.store.header(ring);
        let seen: Consumed = header.consumed();
        let write_pos = header.write_pos();
        if write_pos > self.store.data_capacity() {
            stats.bad_write_pos += 1;
            return stats;
        }
        if write_pos <= seen.read_pos {
            return stats;
        }
        let len = (write_pos - seen.read_pos) as usize;
        if !self.store.read(ring, seen.read_pos, &mut self.buf[..len]) {
            return stats;
        }
        if header.commit_read(seen, write_pos) {
            stats.bytes += len as u64;
            visit(RingChunk {
                ring,
                marked: header.flags() & FLAG_MARKED != 0,
                seq: u64::MAX,
                from_active: true,
                bytes: &self.buf[..len],
            });
        } else {
            stats.raced_copies += 1;
        }
        stats
    }

    /// For a slot whose thread is gone (`EXITED`): reset every ring so the slot can be freed.
    /// Call after `drain_submitted(0, ..)` and `drain_active(..)`.
    pub fn reset_all(&mut self) {
        for ring in 0..self.store.ring_count() {
            self.store.header(ring).recycle_owned();
        }
    }
}
