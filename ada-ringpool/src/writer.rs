//! The producer side: a thread writing into its lane.
//!
//! Hot path (index lane): bounds check against the active ring, four 8-byte stores into the
//! mapping (`Relaxed` atomic words, the same instructions as plain stores; see
//! [`crate::store`]), publish `write_pos` (Release) and the running `events_written` (Relaxed
//! store; no read-modify-write). No lock, no syscall, no allocation.
//!
//! A writer is built from the lane's [`LaneProducer`] (the thread's queue ends, which exist
//! once: they come with the registration) and the store of that same lane's rings, so safe
//! code cannot make a second writer of a lane.
//!
//! Slow path, once per ring: the **swap**. The thread stamps the full ring (marked flag,
//! sequence number), pops a free ring (Acquire), pushes the full ring on the submit queue
//! (Release: the drain that pops it sees every byte), and continues in the new ring. With no free
//! ring it asks its [`PoolPolicy`]: drop-oldest recycles its own active ring (the drain never
//! owns an active ring, so no ownership is violated; records the drain already copied out are
//! not counted twice, see [`crate::header`]), drop-newest drops the event. Every loss is counted.
//!
//! Untrusted memory: the lane words, queue slots, ring headers and ring bytes lie in a segment
//! that other processes can write. The writer keeps its own position, generation, counters and
//! record count privately and only *reads* shared values it can check: a ring index popped from
//! the free queue must name another ring of this pool (at most one queue's worth of bad values
//! is skipped), queue positions are checked by the queue ends, and the one walk over ring bytes
//! (splitting a recycled detail ring at the drain's read position) is bounded by the writer's
//! own record count and position. Whatever a peer writes, every call returns after a bounded
//! number of steps, without a panic or an access outside the ring.

use crate::header::RingHeader;
use crate::policy::{DropAction, DropOldest, PoolPolicy};
use crate::record::{DetailRecord, INDEX_RECORD_SIZE, IndexRecord, MAX_DETAIL_RECORD, RecordError};
use crate::store::RingStore;
use crate::words;
use ada_registry::spsc::{Consumer, Producer};
use ada_registry::{Lane, LaneCounters, LaneKind, LaneProducer};
use ada_shm::sync::{AtomicU64, Ordering};
use core::ptr::NonNull;
use zerocopy::IntoBytes;

/// The smallest detail record: its 32-byte header and the 8-byte sizes word.
const MIN_DETAIL_RECORD: u32 = 40;

/// The start of ring `ring`'s data words.
fn data_ptr<S: RingStore>(store: &S, ring: u32) -> NonNull<AtomicU64> {
    NonNull::from(store.data(ring)).cast()
}

/// Stores `record` at `dst` field by field, as four words. Copying the struct whole makes the
/// compiler build it on the stack and reload it with 16-byte loads that straddle two 8-byte
/// stores, which defeats store-to-load forwarding (a ~4 ns stall per event, measured); field
/// stores go straight from registers to the ring.
///
/// # Safety
/// `dst` must point at 4 consecutive valid words.
#[inline(always)]
unsafe fn store_index(dst: *const AtomicU64, record: &IndexRecord) {
    let words = [
        record.timestamp_ns,
        record.function_id,
        u64::from(record.thread_id) | (u64::from(record.kind) << 32),
        u64::from(record.call_depth) | (u64::from(record.reserved) << 32),
    ];
    for (i, value) in words.into_iter().enumerate() {
        // SAFETY: `i < 4` and the caller guarantees 4 valid words at `dst`; the little-endian
        // words reproduce the `repr(C)` layout of `IndexRecord` exactly.
        let word = unsafe { &*dst.add(i) };
        // Relaxed: published by the Release store of the position in `commit`.
        word.store(value.to_le(), Ordering::Relaxed);
    }
}

/// What happened to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored in the active ring.
    Stored,
    /// The ring was full; it was submitted and the event went into a fresh ring.
    Swapped,
    /// The pool was exhausted; `dropped` older events were recycled to make room.
    DroppedOldest {
        /// Events lost.
        dropped: u64,
    },
    /// The pool was exhausted; this event was dropped.
    DroppedNewest,
}

/// A thread's writer for one lane. Create it right after registering the slot (the lane is then
/// in its initial state: ring 0 active, the others free).
pub struct LaneWriter<'a, S: RingStore, P: PoolPolicy = DropOldest> {
    lane: &'a Lane,
    store: S,
    kind: LaneKind,
    submit: Producer<'a>,
    free: Consumer<'a>,
    active: u32,
    /// The active ring's data words (points into `store`, which the writer owns; the
    /// `RingStore` contract keeps the address stable).
    active_data: NonNull<AtomicU64>,
    /// The active ring's header (points into `store`, which the writer owns).
    active_header: NonNull<RingHeader>,
    pos: u32,
    /// Records committed to the active ring in its current generation, counted here: the ring's
    /// bytes lie in memory another process can write, so what a recycle drops is never counted
    /// from them alone.
    ring_records: u32,
    /// The active ring's generation (fill), stamped on every position the writer publishes.
    generation: u32,
    cap: u32,
    counters: LaneCounters,
    marked: bool,
    next_seq: u64,
    policy: P,
    scratch: Box<[u8]>,
}

impl<S: RingStore, P: PoolPolicy> std::fmt::Debug for LaneWriter<'_, S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneWriter")
            .field("kind", &self.kind)
            .field("active", &self.active)
            .field("pos", &self.pos)
            .field("counters", &self.counters)
            .finish()
    }
}

impl<'a, S: RingStore, P: PoolPolicy> LaneWriter<'a, S, P> {
    /// The writer of the lane whose thread ends are `ends`, with that lane's rings in `store`.
    /// Build it right after registering (the lane is then in its initial state: ring 0 active,
    /// the others free).
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
    /// let store = HeapStore::new(&lane, 4, 4096);
    /// let (thread_ends, drain_ends) = lane.split(4, LaneKind::Index, 0);
    /// let mut writer = LaneWriter::new(thread_ends, &store, DropOldest);
    /// let kind = EventKind::Call as u32;
    /// writer.write_index(&IndexRecord { timestamp_ns: 1, function_id: 7, kind, ..Default::default() });
    /// let mut drain = LaneDrain::new(drain_ends, &store);
    /// let mut ids = Vec::new();
    /// drain.drain_active(|chunk| ids.extend(index_records(chunk.bytes).map(|r| r.unwrap().function_id)));
    /// assert_eq!(ids, [7]);
    /// ```
    ///
    /// The lane's thread ends exist once, so a second writer of the lane cannot be built:
    ///
    /// ```compile_fail
    /// use ada_registry::{Lane, LaneKind};
    /// use ada_ringpool::{DropOldest, HeapStore, LaneWriter};
    ///
    /// let mut lane = Lane::default();
    /// let store = HeapStore::new(&lane, 4, 4096);
    /// let (thread_ends, _drain_ends) = lane.split(4, LaneKind::Index, 0);
    /// let first = LaneWriter::new(thread_ends, &store, DropOldest);
    /// let second = LaneWriter::new(thread_ends, &store, DropOldest); // error[E0382]: moved
    /// ```
    pub fn new(ends: LaneProducer<'a>, store: S, policy: P) -> Self {
        assert!(
            core::ptr::eq(store.lane(), ends.lane()),
            "LaneWriter: the ring store belongs to another lane"
        );
        let kind = ends.kind();
        let (lane, submit, free) = ends.into_parts();
        let cap = match kind {
            LaneKind::Index => store.data_capacity() / INDEX_RECORD_SIZE * INDEX_RECORD_SIZE,
            LaneKind::Detail => store.data_capacity() / 8 * 8,
        };
        let active = lane.active_ring().min(store.ring_count() - 1);
        // A freed slot's rings are empty (the drain reset them); resetting the active one again
        // is free insurance. Once per registration, so the generation comes from `consumed`,
        // the authority (on the swap path the position's copy saves a cache miss).
        let header = store.header(active);
        let generation = header.consumed().generation;
        header.reset_contents(generation);
        let scratch = match kind {
            LaneKind::Index => Box::default(),
            LaneKind::Detail => vec![0u8; MAX_DETAIL_RECORD].into_boxed_slice(),
        };
        LaneWriter {
            lane,
            kind,
            submit,
            free,
            active,
            active_data: data_ptr(&store, active),
            active_header: NonNull::from(store.header(active)),
            pos: 0,
            ring_records: 0,
            generation,
            cap,
            // The registration zeroed the lane's counters; they are never read back from
            // shared memory, where another process may have changed them since.
            counters: LaneCounters::default(),
            marked: false,
            next_seq: 0,
            policy,
            scratch,
            store,
        }
    }

    /// Records one index event.
    #[inline(always)]
    pub fn write_index(&mut self, record: &IndexRecord) -> Written {
        if self.pos + INDEX_RECORD_SIZE > self.cap {
            return self.write_index_slow(*record);
        }
        // `active_data` is the active ring's `data_capacity / 8` words (RingStore contract) and
        // `pos` is a multiple of 32.
        // SAFETY: `pos + 32 <= cap <= data_capacity` (checked above), so words `pos / 8` to
        // `pos / 8 + 3` exist.
        unsafe { store_index(self.active_data.as_ptr().add(self.pos as usize / 8), record) };
        self.commit(INDEX_RECORD_SIZE);
        Written::Stored
    }

    /// Records one detail event. A record over the limits is refused (and counted as dropped).
    pub fn write_detail(&mut self, record: &DetailRecord<'_>) -> Result<Written, RecordError> {
        if let Err(e) = record.check() {
            self.counters.events_written += 1;
            self.counters.events_dropped += 1;
            self.lane.store_counters(&self.counters);
            return Err(e);
        }
        if record.marked {
            self.mark();
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = record.encode_into(&mut scratch);
        let written = self.write_bytes(&scratch[..n]);
        self.scratch = scratch;
        Ok(written)
    }

    /// Records pre-encoded bytes (one whole record, a multiple of 8 bytes, at most the ring's
    /// capacity).
    fn write_bytes(&mut self, bytes: &[u8]) -> Written {
        let n = bytes.len() as u32;
        if self.pos + n > self.cap {
            return self.write_slow(bytes);
        }
        let stored = words::store(self.store.data(self.active), self.pos, bytes);
        debug_assert!(stored, "pos + n <= cap <= data_capacity");
        self.commit(n);
        self.ring_records += 1;
        Written::Stored
    }

    #[inline(always)]
    fn header(&self) -> &RingHeader {
        // `active_header` was taken from `self.store.header(self.active)`; `self` owns the store.
        // SAFETY: the `RingStore` contract keeps headers at a stable address while it exists.
        unsafe { self.active_header.as_ref() }
    }

    fn set_active(&mut self, ring: u32) {
        self.active = ring;
        self.active_data = data_ptr(&self.store, ring);
        self.active_header = NonNull::from(self.store.header(ring));
    }

    #[inline(always)]
    fn commit(&mut self, n: u32) {
        self.pos += n;
        self.header().publish_position(self.generation, self.pos);
        self.counters.events_written += 1;
        self.lane.store_events_written(self.counters.events_written);
    }

    /// Takes the record by value so the fast path never has to spill it to memory.
    #[cold]
    #[inline(never)]
    fn write_index_slow(&mut self, record: IndexRecord) -> Written {
        self.write_slow(record.as_bytes())
    }

    #[cold]
    #[inline(never)]
    fn write_slow(&mut self, bytes: &[u8]) -> Written {
        let n = bytes.len() as u32;
        if n > self.cap {
            // Cannot fit even an empty ring (only possible for a detail ring smaller than the
            // largest record): counted, never written out of bounds.
            self.drop_newest();
            return Written::DroppedNewest;
        }
        let outcome = if self.swap() {
            Written::Swapped
        } else {
            self.counters.pool_exhaustions += 1;
            match self.policy.on_exhaustion(self.kind) {
                DropAction::DropOldest => {
                    let dropped = self.recycle_active();
                    self.policy
                        .on_drop(self.kind, DropAction::DropOldest, dropped);
                    Written::DroppedOldest { dropped }
                }
                DropAction::DropNewest => {
                    self.drop_newest();
                    self.policy.on_drop(self.kind, DropAction::DropNewest, 1);
                    return Written::DroppedNewest;
                }
            }
        };
        // After a swap or recycle `pos == 0` and `n <= cap`.
        let stored = words::store(self.store.data(self.active), self.pos, bytes);
        debug_assert!(stored, "n <= cap <= data_capacity");
        self.commit(n);
        self.ring_records = 1;
        self.lane.store_counters(&self.counters);
        outcome
    }

    fn drop_newest(&mut self) {
        self.counters.events_written += 1;
        self.counters.events_dropped += 1;
        self.lane.store_counters(&self.counters);
    }

    /// Submits the full active ring and takes a free one. `false` if no free ring (or no room to
    /// submit, which only a corrupted drain can cause).
    fn swap(&mut self) -> bool {
        if self.submit.free_slots() == 0 {
            return false;
        }
        let count = self.store.ring_count();
        // Bounded: a corrupt peer feeding impossible ring indices cannot keep the thread here.
        let mut next = None;
        for _ in 0..ada_registry::lane::QUEUE_SLOTS {
            match self.free.pop() {
                Ok(Some(ring)) if ring < count && ring != self.active => {
                    next = Some(ring);
                    break;
                }
                // A value no ring has: a corrupt peer; skip it.
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
        let Some(next) = next else { return false };
        let full = self.store.header(self.active);
        if self.marked {
            full.set_marked();
        }
        full.set_submit_seq(self.next_seq);
        self.next_seq += 1;
        let pushed = self.submit.push(self.active).is_ok();
        debug_assert!(pushed, "free_slots() said there was room");
        self.set_active(next);
        self.pos = 0;
        self.ring_records = 0;
        let fresh: &RingHeader = self.store.header(next);
        // The drain reset it, stamping its new generation in the position, before freeing it;
        // resetting again costs nothing and protects the writer from a drain that did not.
        self.generation = fresh.position().generation;
        fresh.reset_contents(self.generation);
        self.lane.set_active_ring(next);
        self.marked = false;
        self.lane.set_marked(false);
        self.counters.ring_swaps += 1;
        let free_left = self.free.available().unwrap_or(0);
        self.policy.on_swap(self.kind, free_left);
        true
    }

    /// Drop-oldest: recycle the thread's own active ring. Returns the events dropped.
    fn recycle_active(&mut self) -> u64 {
        let header = self.store.header(self.active);
        let ended = header.begin_recycle();
        let read = ended.read_pos.min(self.pos);
        let dropped = match self.kind {
            LaneKind::Index => u64::from((self.pos - read) / INDEX_RECORD_SIZE),
            LaneKind::Detail => self.count_detail_from(read),
        };
        self.generation = ended.generation.wrapping_add(1);
        header.reset_contents(self.generation);
        self.pos = 0;
        self.ring_records = 0;
        self.marked = false;
        self.lane.set_marked(false);
        self.counters.events_dropped += dropped;
        dropped
    }

    /// Detail records of the active ring starting at or after `from` (the drain's read
    /// position). The number of records is the writer's own count; only the split at `from`
    /// needs the records' length fields, and that walk takes at most `ring_records` steps, each
    /// checked against `pos`, so a length another process rewrote (huge, zero, odd, wrapping
    /// the cursor) can neither hold the thread nor step outside the ring. A walk that does not
    /// fit what this thread wrote means the ring was tampered with: which of its records the
    /// drain took is then unknowable, and all of them are counted as dropped.
    fn count_detail_from(&self, from: u32) -> u64 {
        let all = self.ring_records;
        if from == 0 {
            return u64::from(all);
        }
        let data = self.store.data(self.active);
        let (mut at, mut below) = (0u32, 0u32);
        while at < from {
            let mut first = [0u8; 8];
            let len = if below < all && words::load(data, at, &mut first) {
                u32::from_le_bytes([first[0], first[1], first[2], first[3]])
            } else {
                0
            };
            if len < MIN_DETAIL_RECORD || !len.is_multiple_of(8) || len > self.pos - at {
                return u64::from(all);
            }
            at += len;
            below += 1;
        }
        u64::from(all - below)
    }

    /// Flags the current ring as holding a marked event; the flag travels with the ring when it
    /// is submitted and resets for the next ring.
    pub fn mark(&mut self) {
        self.marked = true;
        self.lane.set_marked(true);
        self.store.header(self.active).set_marked();
    }

    /// Publishes the running counters (done at every swap; call before exit for exact totals).
    pub fn flush_counters(&self) {
        self.lane.store_counters(&self.counters);
    }

    /// The counters as this thread knows them.
    pub fn counters(&self) -> LaneCounters {
        self.counters
    }

    /// Bytes still free in the active ring (the next record that does not fit swaps).
    pub fn active_free_bytes(&self) -> u32 {
        self.cap - self.pos
    }

    /// Index of the active ring.
    pub fn active_ring(&self) -> u32 {
        self.active
    }

    /// The policy.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }
}
