//! A lane: the control words for one stream of records of one thread (the index lane or the
//! detail lane).
//!
//! ```text
//! line  bytes  written by      fields
//!    0     64  traced thread   events_written, events_dropped, ring_swaps, pool_exhaustions,
//!                              overwritten, refused, too_large (loss by cause), spilled
//!   64     64  traced thread   active_ring, marked, submit_tail, free_head,
//!                              state_since_ns, state, entries[4] (backpressure state machine)
//!  128    128  drain           submit_head, free_tail
//!  256    128  both (rarely)   submit slots [u32; 8] (thread writes), free slots [u32; 8] (drain)
//! ```
//!
//! Ring ownership moves only through the two queues: the thread owns its active ring and the
//! rings it popped from the free queue; the drain owns the rings it popped from the submit queue
//! until it pushes them back on the free queue. At registration the registering thread owns the
//! whole lane: it empties both queues, makes ring 0 active and queues rings `1..n` as free,
//! before the slot's Release store of `ACTIVE` publishes that state to the drain.
//!
//! Counters are written only by the traced thread, with `Relaxed` stores of its private running
//! totals (no read-modify-write on the hot path); the drain reads them `Relaxed` after an Acquire
//! on the slot state or a queue position. They have a cache line of their own: the thread
//! stores `events_written` with every record, and the words the drain polls on every pass
//! (`submit_tail`, `active_ring`, `marked`, `state`) sit on the next line, so a drain polling
//! its queues does not take the counter line away from the thread at each look.
//!
//! The backpressure state (an `ada_backpressure::LaneState` byte, the time it was entered, and
//! how many times each state was entered) is likewise written only by the traced thread, which
//! runs the lane's state machine, and read by the drain and `ada status` as information: the
//! raw byte is returned as is, for the reader to decode as untrusted.

use crate::endpoints::{LaneConsumer, LaneProducer};
use crate::spsc::QueueRef;
use ada_shm::CacheLine;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

/// Slots of each lane queue; also the most rings a lane can have.
pub const QUEUE_SLOTS: usize = 8;

/// Which lane of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum LaneKind {
    /// Small fixed records, always persisted.
    Index = 0,
    /// Variable-length rich records (registers, a stack window, message bytes); a ring holding a
    /// marked event carries a flag to the drain.
    Detail = 1,
}

impl LaneKind {
    /// Both lanes, index first.
    pub const ALL: [LaneKind; 2] = [LaneKind::Index, LaneKind::Detail];

    /// `"index"` or `"detail"`.
    pub const fn name(self) -> &'static str {
        match self {
            LaneKind::Index => "index",
            LaneKind::Detail => "detail",
        }
    }
}

/// Fields the traced thread writes.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct ProducerSide {
    // The counter line (see the module docs).
    events_written: AtomicU64,
    events_dropped: AtomicU64,
    ring_swaps: AtomicU64,
    pool_exhaustions: AtomicU64,
    overwritten: AtomicU64,
    refused: AtomicU64,
    too_large: AtomicU64,
    spilled: AtomicU64,
    // The line the drain polls.
    active_ring: AtomicU32,
    marked: AtomicU32,
    submit_tail: AtomicU32,
    free_head: AtomicU32,
    state_since_ns: AtomicU64,
    state: AtomicU32,
    /// Times each state was entered, indexed by its byte.
    entries: [AtomicU32; 4],
}

/// Fields the drain writes.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct ConsumerSide {
    submit_head: AtomicU32,
    free_tail: AtomicU32,
}

/// The two queues' slots.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct QueueSlots {
    submit: [AtomicU32; QUEUE_SLOTS],
    free: [AtomicU32; QUEUE_SLOTS],
}

/// One lane's control words (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct Lane {
    producer: CacheLine<ProducerSide>,
    consumer: CacheLine<ConsumerSide>,
    slots: CacheLine<QueueSlots>,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic or an array of atomics inside padding.
unsafe impl ada_shm::ShmSafe for Lane {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<Lane>() == 384);
    // The counters fill the producer's first line; what the drain polls starts the second.
    assert!(core::mem::offset_of!(ProducerSide, spilled) == 56);
    assert!(core::mem::offset_of!(ProducerSide, active_ring) == 64);
};

/// A lane's backpressure state as its thread last published it (raw: decode `state` with
/// `ada_backpressure::LaneState::from_u8`, which refuses bytes it does not know).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStateWord {
    /// The state byte.
    pub state: u8,
    /// When the state was entered (in event-stamp units: nanoseconds, or counter ticks in a
    /// TSC session; 0 before the first change).
    pub since_ns: u64,
    /// Times each state was entered, indexed by its byte (NORMAL, PRESSURE, DROPPING,
    /// RECOVERY).
    pub entries: [u32; 4],
}

/// A copy of a lane's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneCounters {
    /// Events the thread recorded into this lane (kept or not).
    pub events_written: u64,
    /// Events the thread lost: `overwritten + refused + too_large`.
    pub events_dropped: u64,
    /// Of `events_dropped`: overwritten under drop-oldest (the thread recycled its own ring).
    pub overwritten: u64,
    /// Of `events_dropped`: refused under drop-newest (no ring was free).
    pub refused: u64,
    /// Of `events_dropped`: larger than the lane's limits or a whole ring.
    pub too_large: u64,
    /// Rings the thread submitted.
    pub ring_swaps: u64,
    /// Times the thread found no free ring.
    pub pool_exhaustions: u64,
    /// Events that found the pool exhausted and went to the shared fallback ring instead
    /// (spill before drop). Not lost: the drain persists them from the fallback ring. So
    /// `events_written = (events in the lane's rings) + spilled + events_dropped`.
    pub spilled: u64,
}

impl LaneCounters {
    /// The lost events by cause (`no_slot` is never a lane's: a thread refused a slot has no
    /// lane). Their total is what `events_dropped` should be.
    pub fn lost(&self) -> ada_backpressure::LossCounters {
        ada_backpressure::LossCounters {
            overwritten: self.overwritten,
            refused: self.refused,
            too_large: self.too_large,
            no_slot: 0,
        }
    }

    /// Whether `events_dropped` disagrees with the sum of its causes: a read that raced the
    /// thread's stores, or words another process rewrote.
    pub fn contradicts(&self) -> bool {
        self.lost().total() != self.events_dropped
    }
}

impl Lane {
    /// The submit queue (thread → drain: full rings).
    pub fn submit_queue(&self) -> QueueRef<'_> {
        QueueRef::new(
            &self.consumer.submit_head,
            &self.producer.submit_tail,
            &self.slots.submit,
        )
    }

    /// The free queue (drain → thread: empty rings).
    pub fn free_queue(&self) -> QueueRef<'_> {
        QueueRef::new(
            &self.producer.free_head,
            &self.consumer.free_tail,
            &self.slots.free,
        )
    }

    /// Registering thread only, while it owns the whole lane: empty queues, ring 0 active,
    /// rings `1..ring_count` free, counters zero. Published by the slot's `ACTIVE` store.
    /// ([`split`](Self::split) is the safe way for a lane this code owns outright.)
    ///
    /// # Safety
    /// No end of this lane's queues ([`LaneProducer`], [`LaneConsumer`], or a queue endpoint)
    /// may be in use while it runs, and every end that outlives it must be
    /// [`resync`](LaneConsumer::resync)ed before its next use: the reset hands ring ownership
    /// out afresh, which only the party owning the whole lane (a thread that just claimed the
    /// slot) may do.
    pub unsafe fn initialize(&self, ring_count: u32) {
        debug_assert!((1..=QUEUE_SLOTS as u32).contains(&ring_count));
        let p = &self.producer;
        // Relaxed (all stores here): the lane is private to the registering thread until the
        // Release store of the slot state publishes it.
        p.active_ring.store(0, Ordering::Relaxed);
        p.marked.store(0, Ordering::Relaxed);
        p.events_written.store(0, Ordering::Relaxed);
        p.events_dropped.store(0, Ordering::Relaxed);
        p.ring_swaps.store(0, Ordering::Relaxed);
        p.pool_exhaustions.store(0, Ordering::Relaxed);
        p.overwritten.store(0, Ordering::Relaxed);
        p.refused.store(0, Ordering::Relaxed);
        p.too_large.store(0, Ordering::Relaxed);
        p.spilled.store(0, Ordering::Relaxed);
        p.state_since_ns.store(0, Ordering::Relaxed);
        p.state.store(0, Ordering::Relaxed);
        for entry in &p.entries {
            entry.store(0, Ordering::Relaxed);
        }
        self.submit_queue().reset();
        let free = self.free_queue();
        free.reset();
        for (i, slot) in self
            .slots
            .free
            .iter()
            .enumerate()
            .take(ring_count as usize - 1)
        {
            // Relaxed: as above.
            slot.store(i as u32 + 1, Ordering::Relaxed);
        }
        // Relaxed: as above.
        self.consumer
            .free_tail
            .store(ring_count - 1, Ordering::Relaxed);
    }

    /// Initialises a lane this code owns outright (on the heap: tests, models, benchmarks) with
    /// `ring_count` rings and returns its one pair of ends: the thread's and the drain's. The
    /// exclusive borrow keeps any other end from being made while they live. (A lane in shared
    /// memory is only ever borrowed shared; its ends come from registration and the drain
    /// claim.) `kind` and `slot` only label the ends.
    ///
    /// ```
    /// use ada_registry::{Lane, LaneKind};
    ///
    /// let mut lane = Lane::default();
    /// let (thread, mut drain) = lane.split(4, LaneKind::Index, 0);
    /// let (_lane, mut submit, mut free) = thread.into_parts();
    /// assert_eq!(free.pop(), Ok(Some(1)), "rings 1..4 start free");
    /// submit.push(0).unwrap();
    /// assert_eq!(drain.submit().pop(), Ok(Some(0)));
    /// ```
    pub fn split(
        &mut self,
        ring_count: u32,
        kind: LaneKind,
        slot: u32,
    ) -> (LaneProducer<'_>, LaneConsumer<'_>) {
        // SAFETY: `&mut self`: no end of this lane exists while we hold it.
        unsafe { self.initialize(ring_count) };
        let lane: &Lane = self;
        // SAFETY: `&mut self` is held by the returned ends, so no other end of this lane can be
        // made while they live, and this is the one pair made from this borrow.
        unsafe {
            (
                LaneProducer::new_unchecked(lane, kind, slot),
                LaneConsumer::new_unchecked(lane, kind, slot),
            )
        }
    }

    /// The ring the thread writes into now. The drain reads it (Acquire) only to salvage the
    /// active ring of a thread that exited or died.
    pub fn active_ring(&self) -> u32 {
        // Acquire: pairs with `set_active_ring`'s Release: the ring's reset state is visible.
        self.producer.active_ring.load(Ordering::Acquire)
    }

    /// Thread only: make `ring` the active ring.
    pub fn set_active_ring(&self, ring: u32) {
        // Release: a drain salvaging this lane sees the ring's header as the thread left it.
        self.producer.active_ring.store(ring, Ordering::Release);
    }

    /// Thread only: publish the running counters (private totals, no read-modify-write).
    #[inline]
    pub fn store_counters(&self, c: &LaneCounters) {
        let p = &self.producer;
        // Relaxed (all): statistics; the drain reads them after an Acquire on a queue position
        // or the slot state, which orders what it needs.
        p.events_written.store(c.events_written, Ordering::Relaxed);
        p.events_dropped.store(c.events_dropped, Ordering::Relaxed);
        p.ring_swaps.store(c.ring_swaps, Ordering::Relaxed);
        p.pool_exhaustions
            .store(c.pool_exhaustions, Ordering::Relaxed);
        p.overwritten.store(c.overwritten, Ordering::Relaxed);
        p.refused.store(c.refused, Ordering::Relaxed);
        p.too_large.store(c.too_large, Ordering::Relaxed);
        p.spilled.store(c.spilled, Ordering::Relaxed);
    }

    /// Thread only: publish the three counters a drop-newest refusal moves (the others are
    /// unchanged since the last [`store_counters`](Self::store_counters)).
    #[inline(always)]
    pub fn store_refusal(&self, events_written: u64, events_dropped: u64, refused: u64) {
        let p = &self.producer;
        // Relaxed (all): statistics, as in `store_counters`.
        p.events_written.store(events_written, Ordering::Relaxed);
        p.events_dropped.store(events_dropped, Ordering::Relaxed);
        p.refused.store(refused, Ordering::Relaxed);
    }

    /// Thread only: publish the lane's backpressure state (the thread runs the state machine;
    /// private values, no read-modify-write).
    pub fn store_state(&self, word: &LaneStateWord) {
        let p = &self.producer;
        // Relaxed (all): information for the drain and `ada status`; nothing else is published
        // through these words and readers accept any value.
        p.state_since_ns.store(word.since_ns, Ordering::Relaxed);
        p.state.store(u32::from(word.state), Ordering::Relaxed);
        for (cell, &n) in p.entries.iter().zip(&word.entries) {
            cell.store(n, Ordering::Relaxed);
        }
    }

    /// The lane's backpressure state as the thread last published it (a byte no state has,
    /// e.g. from a rewritten segment, is returned as is, truncated to 8 bits: decode it).
    pub fn state_word(&self) -> LaneStateWord {
        let p = &self.producer;
        // Relaxed (all): see `store_state`.
        let raw = p.state.load(Ordering::Relaxed);
        LaneStateWord {
            state: u8::try_from(raw).unwrap_or(u8::MAX),
            since_ns: p.state_since_ns.load(Ordering::Relaxed),
            entries: [0, 1, 2, 3].map(|i| p.entries[i].load(Ordering::Relaxed)),
        }
    }

    /// Thread only: publish just `events_written` (the one counter that moves per event).
    #[inline(always)]
    pub fn store_events_written(&self, total: u64) {
        // Relaxed: a statistic, see `store_counters`.
        self.producer.events_written.store(total, Ordering::Relaxed);
    }

    /// Reads the counters.
    pub fn counters(&self) -> LaneCounters {
        let p = &self.producer;
        // Relaxed (all): see `store_counters`.
        LaneCounters {
            events_written: p.events_written.load(Ordering::Relaxed),
            events_dropped: p.events_dropped.load(Ordering::Relaxed),
            ring_swaps: p.ring_swaps.load(Ordering::Relaxed),
            pool_exhaustions: p.pool_exhaustions.load(Ordering::Relaxed),
            overwritten: p.overwritten.load(Ordering::Relaxed),
            refused: p.refused.load(Ordering::Relaxed),
            too_large: p.too_large.load(Ordering::Relaxed),
            spilled: p.spilled.load(Ordering::Relaxed),
        }
    }

    /// Thread only: set or clear the lane's "marked event seen" flag (detail lane).
    pub fn set_marked(&self, marked: bool) {
        // Relaxed: the flag travels with the submitted ring (its header), whose queue push is
        // the Release that publishes it; this copy is informational.
        self.producer.marked.store(marked as u32, Ordering::Relaxed);
    }

    /// Whether the thread has seen a marked event in its current detail ring.
    pub fn marked(&self) -> bool {
        // Relaxed: informational, see `set_marked`.
        self.producer.marked.load(Ordering::Relaxed) != 0
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn initialize_queues_every_ring_but_the_active_one() {
        let lane = Lane::default();
        // SAFETY: the test owns the lane; no end exists yet.
        unsafe { lane.initialize(4) };
        assert_eq!(lane.active_ring(), 0);
        assert!(lane.submit_queue().is_empty());
        // SAFETY: this test is the only user of the lane's queues; each end is made once.
        let mut c = unsafe { lane.free_queue().consumer() };
        let got: Vec<u32> = std::iter::from_fn(|| c.pop().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        // Re-initialisation on slot reuse starts clean even after traffic.
        // SAFETY: as above.
        unsafe { lane.submit_queue().producer() }.push(2).unwrap();
        lane.store_counters(&LaneCounters {
            events_written: 5,
            ..Default::default()
        });
        // SAFETY: the ends made above are not used again.
        unsafe { lane.initialize(2) };
        assert!(lane.submit_queue().is_empty());
        assert_eq!(lane.free_queue().len(), 1);
        assert_eq!(lane.counters(), LaneCounters::default());
    }
}
