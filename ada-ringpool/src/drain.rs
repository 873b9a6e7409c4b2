//! The drain side of one lane: take submitted rings, copy out what they hold, reset them and
//! hand them back; salvage what a thread committed to its active ring.
//!
//! The drain never trusts the segment: a ring index from the submit queue must be below the
//! lane's ring count, a `write_pos` must fit the ring, and the bytes are copied into a private
//! buffer before anyone parses them (record validation is in [`crate::record`]). Bad input is
//! counted in [`DrainStats`] and skipped; it never panics or reads out of bounds.
//!
//! A `LaneDrain` is built from the lane's [`LaneConsumer`] (the drain's queue ends, handed out
//! once by the segment's drain claim) and that same lane's rings, so safe code cannot make a
//! second drain of a lane.

use crate::header::{Consumed, FLAG_MARKED, Position};
use crate::store::RingStore;
use crate::words;
use ada_registry::{LaneConsumer, LaneKind};

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
    ends: LaneConsumer<'a>,
    store: S,
    buf: Vec<u8>,
}

impl<'a, S: RingStore> LaneDrain<'a, S> {
    /// The drain of the lane whose drain ends are `ends`, with that lane's rings in `store`.
    ///
    /// # Panics
    /// If `store` holds the rings of another lane.
    ///
    /// ```
    /// use ada_registry::{Lane, LaneKind};
    /// use ada_ringpool::{
    ///     DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
    /// };
    ///
    /// let mut lane = Lane::default();
    /// let store = HeapStore::new(&lane, 2, 128 + 64); // 2 rings of 2 records
    /// let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
    /// let mut writer = LaneWriter::new(thread_ends, &store, DropOldest);
    /// let mut drain = LaneDrain::new(drain_ends, &store);
    /// for id in 1..=3 {
    ///     let kind = EventKind::Call as u32;
    ///     writer.write_index(&IndexRecord { function_id: id, kind, ..Default::default() });
    /// }
    /// let mut ids = Vec::new();
    /// // Ring 0 (ids 1 and 2) was submitted when it filled; id 3 is in the active ring.
    /// let stats = drain.drain_submitted(0, |chunk| {
    ///     ids.extend(index_records(chunk.bytes).map(|r| r.unwrap().function_id))
    /// });
    /// assert_eq!((stats.rings, ids.clone()), (1, vec![1, 2]));
    /// drain.drain_active(|chunk| {
    ///     ids.extend(index_records(chunk.bytes).map(|r| r.unwrap().function_id))
    /// });
    /// assert_eq!(ids, [1, 2, 3]);
    /// ```
    ///
    /// A second drain of the lane cannot be built: its ends exist once.
    ///
    /// ```compile_fail
    /// use ada_registry::{Lane, LaneKind};
    /// use ada_ringpool::{HeapStore, LaneDrain};
    ///
    /// let mut lane = Lane::default();
    /// let store = HeapStore::new(&lane, 4, 4096);
    /// let (_thread_ends, drain_ends) = lane.split(4, LaneKind::Index, 0);
    /// let first = LaneDrain::new(drain_ends, &store);
    /// let second = LaneDrain::new(drain_ends, &store); // error[E0382]: use of moved value
    /// ```
    pub fn new(ends: LaneConsumer<'a>, store: S) -> Self {
        assert!(
            core::ptr::eq(store.lane(), ends.lane()),
            "LaneDrain: the ring store belongs to another lane"
        );
        let buf = vec![0u8; store.data_capacity() as usize];
        LaneDrain { ends, store, buf }
    }

    /// Which lane.
    pub fn kind(&self) -> LaneKind {
        self.ends.kind()
    }

    /// The slot this lane belongs to.
    pub fn slot(&self) -> u32 {
        self.ends.slot()
    }

    /// Re-reads the lane's queue positions: call it when the slot has a new owner (a new
    /// generation), whose registration reset the queues.
    pub fn resync(&mut self) {
        self.ends.resync();
    }

    /// Takes up to `max_rings` submitted rings (0 = all), hands each one's unread bytes to
    /// `visit`, resets the rings and returns them to the free queue.
    pub fn drain_submitted(
        &mut self,
        max_rings: u32,
        mut visit: impl FnMut(RingChunk<'_>),
    ) -> DrainStats {
        let mut stats = DrainStats::default();
        let (submitted, free) = self.ends.queues();
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
            let position = header.position();
            let write_pos = position.write_pos;
            let seen = header.consumed();
            if write_pos > cap || position.generation != seen.generation {
                // Beyond the ring, or not this fill's position: neither can come from a thread
                // that followed the protocol.
                stats.bad_write_pos += 1;
            } else if seen.read_pos < write_pos {
                let len = (write_pos - seen.read_pos) as usize;
                // The ring is ours (popped with Acquire): the owner's stores are all visible.
                if words::load(self.store.data(ring), seen.read_pos, &mut self.buf[..len]) {
                    stats.bytes += len as u64;
                    visit(RingChunk {
                        ring,
                        marked: header.flags() & FLAG_MARKED != 0,
                        seq: header.submit_seq(),
                        from_active: false,
                        bytes: &self.buf[..len],
                    });
                } else {
                    // A read position no record can start at (not 8-byte aligned).
                    stats.bad_write_pos += 1;
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
    /// the ring. Sound while the thread keeps writing: the copy is made of atomic word loads
    /// (see [`crate::store`]) and handed to `visit` only if the thread did not recycle the ring
    /// meanwhile (a seqlock-style check, see [`crate::header`]), so every record is delivered
    /// at most once, never torn, and never also counted as dropped.
    pub fn drain_active(&mut self, visit: impl FnMut(RingChunk<'_>)) -> DrainStats {
        let ring = self.ends.lane().active_ring();
        match self.active_header(ring) {
            Some((seen, position)) => self.copy_active(ring, seen, position, visit),
            None => DrainStats {
                bad_ring_indices: 1,
                ..DrainStats::default()
            },
        }
    }

    /// The `consumed` and `position` words of ring `ring` (`None`: no ring of this lane).
    fn active_header(&self, ring: u32) -> Option<(Consumed, Position)> {
        if ring >= self.store.ring_count() {
            return None;
        }
        let header = self.store.header(ring);
        let seen: Consumed = header.consumed();
        Some((seen, header.position()))
    }

    /// Copies ring `ring`, read as the lane's active one, from `seen` up to `position` (its
    /// header words, read in that order): see [`drain_active`](Self::drain_active).
    fn copy_active(
        &mut self,
        ring: u32,
        seen: Consumed,
        position: Position,
        mut visit: impl FnMut(RingChunk<'_>),
    ) -> DrainStats {
        let mut stats = DrainStats::default();
        let header = self.store.header(ring);
        if position.generation != seen.generation {
            // The thread is between fills (or we read one word before and one after its
            // recycle): this position may be the previous fill's. Try again next pass.
            stats.raced_copies += 1;
            return stats;
        }
        let write_pos = position.write_pos;
        if write_pos > self.store.data_capacity() {
            stats.bad_write_pos += 1;
            return stats;
        }
        if write_pos <= seen.read_pos {
            return stats;
        }
        let len = (write_pos - seen.read_pos) as usize;
        if !words::load(self.store.data(ring), seen.read_pos, &mut self.buf[..len]) {
            stats.bad_write_pos += 1;
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

    /// [`drain_active`](Self::drain_active), keeping the thread's order: a ring the thread
    /// submitted after the caller's [`drain_submitted`](Self::drain_submitted) and before it
    /// made the ring now active holds older records, so it is taken (as by `drain_submitted`)
    /// before the active ring is copied. Plain `drain_active` would hand over the new active
    /// ring's records (and a loss marker at its start) ahead of the older ones. A thread that
    /// keeps swapping meanwhile leaves the copy to the next call (counted in
    /// [`DrainStats::raced_copies`]).
    pub fn drain_active_in_order(&mut self, mut visit: impl FnMut(RingChunk<'_>)) -> DrainStats {
        let mut stats = DrainStats::default();
        let count = self.store.ring_count();
        // Bounded: a thread that keeps swapping cannot hold the drain here.
        for _ in 0..=count {
            let ring = self.ends.lane().active_ring();
            let Some((seen, position)) = self.active_header(ring) else {
                stats.bad_ring_indices += 1;
                return stats;
            };
            // Acquire (in `available_now`), after the Acquire loads of the ring's header: the
            // thread pushes its full ring to the submit queue (Release of the tail) before it
            // resets, publishes and fills the next one (each `position` store a Release), so
            // if the position read above is of that later fill, the pushed ring is seen here.
            // Checking before reading the header would not do: `ring` may be a stale index, of
            // a ring taken, returned and made active again since, whose new fill would then be
            // copied ahead of the ring submitted in between.
            match self.ends.submit().available_now() {
                Ok(0) => {
                    stats.add(&self.copy_active(ring, seen, position, &mut visit));
                    return stats;
                }
                Ok(_) => stats.add(&self.drain_submitted(count, &mut visit)),
                Err(_) => {
                    stats.corrupt_queue += 1;
                    return stats;
                }
            }
        }
        stats.raced_copies += 1;
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
