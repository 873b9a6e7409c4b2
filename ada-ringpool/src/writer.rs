//! The producer side: a thread writing into its lane.
//!
//! Hot path (index lane): bounds check against the active ring, copy 32 bytes into the mapping,
//! publish `write_pos` (Release) and the running `events_written` (Relaxed store; no
//! read-modify-write). No lock, no syscall, no allocation.
//!
//! Slow path, once per ring: the **swap**. The thread stamps the full ring (marked flag,
//! sequence number), pops a free ring (Acquire), pushes the full ring on the submit queue
//! (Release: the drain that pops it sees every byte), and continues in the new ring. With no free
//! ring it asks its [`PoolPolicy`]: drop-oldest recycles its own active ring (the drain never
//! owns an active ring, so no ownership is violated; records the drain already copied out are
//! not counted twice, see [`crate::header`]), drop-newest drops the event. Every loss is counted.

use crate::header::RingHeader;
use crate::policy::{DropAction, DropOldest, PoolPolicy};
use crate::record::{DetailRecord, INDEX_RECORD_SIZE, IndexRecord, MAX_DETAIL_RECORD, RecordError};
use crate::store::RingStore;
use ada_registry::spsc::{Consumer, Producer};
use ada_registry::{Lane, LaneCounters, LaneKind};
use core::ptr::NonNull;
use zerocopy::IntoBytes;

/// Stores `record` at `dst` field by field. Copying the struct whole makes the compiler build it
/// on the stack and reload it with 16-byte loads that straddle two 8-byte stores, which defeats
/// store-to-load forwarding (a ~4 ns stall per event, measured); field stores go straight from
/// registers to the ring.
///
/// # Safety
/// `dst` must be valid for writes of 32 bytes.
#[inline(always)]
unsafe fn write_fields(dst: *mut u8, record: &IndexRecord) {
    let pairs = [
        (0, record.timestamp_ns),
        (8, record.function_id),
        (
            16,
            u64::from(record.thread_id) | (u64::from(record.kind) << 32),
        ),
        (
            24,
            u64::from(record.call_depth) | (u64::from(record.reserved) << 32),
        ),
    ];
    for (offset, value) in pairs {
        // SAFETY: `offset + 8 <= 32` and the caller guarantees 32 writable bytes; the little-
        // endian u64 pairs reproduce the `repr(C)` layout of `IndexRecord` exactly.
        unsafe { dst.add(offset).cast::<u64>().write_unaligned(value.to_le()) };
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
    /// The active ring's data area when the store allows direct writes (the mapping).
    active_data: Option<NonNull<u8>>,
    /// The active ring's header (points into `store`, which the writer owns).
    active_header: NonNull<RingHeader>,
    pos: u32,
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
    /// A writer for `lane`, whose rings are in `store`.
    pub fn new(lane: &'a Lane, store: S, kind: LaneKind, policy: P) -> Self {
        let cap = match kind {
            LaneKind::Index => store.data_capacity() / INDEX_RECORD_SIZE * INDEX_RECORD_SIZE,
            LaneKind::Detail => store.data_capacity() / 8 * 8,
        };
        let active = lane.active_ring().min(store.ring_count() - 1);
        // A freed slot's rings are empty; resetting the active one again is free insurance.
        store.header(active).reset_contents();
        let scratch = match kind {
            LaneKind::Index => Box::default(),
            LaneKind::Detail => vec![0u8; MAX_DETAIL_RECORD].into_boxed_slice(),
        };
        LaneWriter {
            lane,
            kind,
            submit: lane.submit_queue().producer(),
            free: lane.free_queue().consumer(),
            active,
            active_data: store.data_ptr(active),
            active_header: NonNull::from(store.header(active)),
            pos: 0,
            cap,
            counters: lane.counters(),
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
        match self.active_data {
            // `data` is the active ring's data area (`data_capacity` bytes, ours while active);
            // records may sit at any 8-byte offset, so the store is unaligned-safe.
            // SAFETY: `pos + 32 <= cap <= data_capacity` (checked above), the ring is ours.
            Some(data) => unsafe { write_fields(data.as_ptr().add(self.pos as usize), record) },
            // SAFETY: the active ring is ours, `active < ring_count` (maintained by `swap`), and
            // `pos + 32 <= cap <= data_capacity` (checked above).
            None => unsafe { self.store.write(self.active, self.pos, record.as_bytes()) },
        }
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
        // SAFETY: as in `write_index`, for `n` bytes.
        unsafe { self.store.write(self.active, self.pos, bytes) };
        self.commit(n);
        Written::Stored
    }

    #[inline(always)]
    fn header(&self) -> &RingHeader {
        // SAFETY: `active_header` was taken from `self.store.header(self.active)`; the store is
        // owned by `self` and its headers live as long as it does.
        unsafe { self.active_header.as_ref() }
    }

    fn set_active(&mut self, ring: u32) {
        self.active = ring;
        self.active_data = self.store.data_ptr(ring);
        self.active_header = NonNull::from(self.store.header(ring));
    }

    #[inline(always)]
    fn commit(&mut self, n: u32) {
        self.pos += n;
        self.header().publish_write_pos(self.pos);
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
        // SAFETY: after a swap or recycle `pos == 0` and `n <= cap`; the ring is ours.
        unsafe { self.store.write(self.active, self.pos, bytes) };
        self.commit(n);
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
        let fresh: &RingHeader = self.store.header(next);
        // The drain reset it before freeing it; resetting again costs nothing and protects the
        // writer from a drain that did not.
        fresh.reset_contents();
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
        let read = header.begin_recycle().min(self.pos);
        let dropped = match self.kind {
            LaneKind::Index => u64::from((self.pos - read) / INDEX_RECORD_SIZE),
            LaneKind::Detail => self.count_detail_from(read),
        };
        header.reset_contents();
        self.pos = 0;
        self.marked = false;
        self.lane.set_marked(false);
        self.counters.events_dropped += dropped;
        dropped
    }

    /// Detail records of the active ring starting at or after `from` (our own, valid, writes).
    fn count_detail_from(&self, from: u32) -> u64 {
        let (mut at, mut n) = (0u32, 0u64);
        while at < self.pos {
            let mut len = [0u8; 4];
            if !self.store.read(self.active, at, &mut len) {
                break;
            }
            let len = u32::from_le_bytes(len);
            if len == 0 || !len.is_multiple_of(8) {
                break;
            }
            if at >= from {
                n += 1;
            }
            at += len;
        }
        n
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
