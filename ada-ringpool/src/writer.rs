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
use crate::loss::{DETAIL_MARKER_LEN, LossMarker};
use crate::policy::{DropAction, DropOldest, PoolPolicy};
use crate::record::{DetailRecord, INDEX_RECORD_SIZE, IndexRecord, MAX_DETAIL_RECORD, RecordError};
use crate::store::RingStore;
use crate::words;
use ada_backpressure::{BackpressureConfig, Input, LaneState, LossCause, needs_attention, next};
use ada_registry::spsc::{Consumer, Producer};
use ada_registry::{Lane, LaneCounters, LaneKind, LaneProducer, LaneStateWord};
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
    /// The event is larger than a whole ring (or the record limits); it was dropped.
    TooLarge,
    /// The pool was exhausted; the policy took the event elsewhere
    /// ([`PoolPolicy::spill`]): counted as `spilled`, not lost.
    Spilled,
}

/// Marker records one ring generation tracks (offsets, to take back losses a recycle
/// overwrites before the drain read them); further losses wait for the next ring.
const RING_MARKERS: usize = 8;

/// The lane's backpressure state machine, run by the writer (see [`ada_backpressure`]).
#[derive(Debug, Clone, Copy)]
struct Backpressure {
    /// `false` after [`LaneWriter::without_backpressure`]: the state is never evaluated.
    enabled: bool,
    config: BackpressureConfig,
    state: LaneState,
    since_ns: u64,
    entries: [u32; 4],
}

/// Loss markers written into the active ring in its current generation.
#[derive(Debug, Clone, Copy)]
struct RingMarkers {
    len: usize,
    at: [u32; RING_MARKERS],
    size: [u32; RING_MARKERS],
    marker: [Option<LossMarker>; RING_MARKERS],
}

impl RingMarkers {
    const EMPTY: RingMarkers = RingMarkers {
        len: 0,
        at: [0; RING_MARKERS],
        size: [0; RING_MARKERS],
        marker: [None; RING_MARKERS],
    };

    /// The marker record starting at `offset`, if one does (its size).
    fn size_at(&self, offset: u32) -> Option<u32> {
        (0..self.len)
            .find(|&i| self.at[i] == offset)
            .map(|i| self.size[i])
    }
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
    /// The fast path's bound: `cap`, or lower when the slow path must look at the lane (a loss
    /// marker is pending: 0; the lane is not NORMAL: a state check every quarter ring). One
    /// compare either way, so a NORMAL lane's record path is unchanged.
    limit: u32,
    counters: LaneCounters,
    marked: bool,
    next_seq: u64,
    policy: P,
    scratch: Box<[u8]>,
    backpressure: Backpressure,
    /// Losses not yet marked in the ring, by [`LossCause`] byte (overwritten, refused, too
    /// large).
    pending: [Option<LossMarker>; 3],
    /// Markers in the active ring's current generation.
    markers: RingMarkers,
    /// Timestamp of the last event written into the active ring's current generation.
    last_ts: u64,
    /// A state check is due a quarter ring after the last swap (not at the swap itself: the
    /// thread has just taken a spare, and the drain gets that long to return the one it was
    /// handed, so a healthy two-ring pool does not look pressed at every swap).
    check_due: bool,
    /// Drop-newest refused an event and no ring has come back since: every event is refused
    /// until one does (a smaller detail record that would still fit is refused too, so what
    /// survives is the oldest events, without holes).
    refusing: bool,
    /// While `refusing`: refusals left before the next look for a returned ring (see
    /// [`REFUSALS_BETWEEN_LOOKS`]).
    quiet_refusals: u32,
    /// The stamp of the last quiet refusal since the last full look (with `quiet_first_ns`,
    /// the span the fold gives the refused marker).
    quiet_last_ns: u64,
    /// The stamp of the first quiet refusal since the last full look.
    quiet_first_ns: u64,
    /// The stamp of the last full look that refused: the lower bound of the quiet refusals
    /// after it that read no clock ([`write_index_lazily`](Self::write_index_lazily)).
    look_ns: u64,
    /// A quiet refusal since the last full look read no clock: the fold bounds the stretch by
    /// the stamp it is given (the next event's) instead of `quiet_last_ns`.
    quiet_unstamped: bool,
}

/// While drop-newest refuses and the free queue stays empty, only every
/// `REFUSALS_BETWEEN_LOOKS + 1`-th event takes the full look (the submit queue, the active
/// ring's consumed position, the state machine); the others, inline on the record path, load
/// the free queue's producer position only, count themselves and publish the counters to the
/// lane's own counter line like every loss (their marker, count and time span, is brought up
/// to date at the next full look, and the policy hears of them then). The full look touches
/// cache lines a busy drain keeps
/// writing, which made a refused event cost more than a stored one — the regime of a producer
/// faster than its drain. A returned ring is still taken at the next event; a drain that
/// copied the whole active ring (see `reuse_consumed_active`) is noticed at most this many
/// events later. Nothing is lost uncounted.
pub const REFUSALS_BETWEEN_LOOKS: u32 = 15;

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
        let backpressure = Backpressure {
            enabled: true,
            config: BackpressureConfig::for_pool(store.ring_count()),
            state: LaneState::Normal,
            since_ns: 0,
            entries: [0; 4],
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
            limit: cap,
            backpressure,
            pending: [None; 3],
            markers: RingMarkers::EMPTY,
            last_ts: 0,
            check_due: false,
            refusing: false,
            quiet_refusals: 0,
            quiet_last_ns: 0,
            quiet_first_ns: 0,
            look_ns: 0,
            quiet_unstamped: false,
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
        let now = record.timestamp_ns;
        self.write_index_with(Some(now), || now, *record)
    }

    /// [`write_index`](Self::write_index) for a writer that reads its clock per event: the
    /// record is stamped by `stamp` (its own `timestamp_ns` is ignored), which is called for
    /// every event that is stored or takes the slow path, and not for a quiet refusal (see
    /// [`REFUSALS_BETWEEN_LOOKS`]). A producer faster than its drain refuses most of its events
    /// quietly, and where reading the clock is the costliest part of a record (`rdtsc` in a
    /// virtual machine) the refusal then costs a fraction of a stored event.
    ///
    /// What the stretch's refused marker says of time is unchanged in kind, a span that holds
    /// every refused event, but is bounded rather than exact at its end: from the stamp of the
    /// full look that refused (the first refused event's) to the stamp of the event that folds
    /// the quiet refusals into the marker (the next full look, or the event that takes a
    /// returned ring), or to the time given to [`settle_at`](Self::settle_at). A writer using
    /// this settles with `settle_at`.
    #[inline(always)]
    pub fn write_index_lazily(
        &mut self,
        stamp: impl FnOnce() -> u64,
        record: IndexRecord,
    ) -> Written {
        self.write_index_with(None, stamp, record)
    }

    /// Both index writes: `known` is the event's stamp when the caller has one (a quiet
    /// refusal then keeps its exact time), `stamp` is called for an event stored or taking the
    /// slow path.
    #[inline(always)]
    fn write_index_with(
        &mut self,
        known: Option<u64>,
        stamp: impl FnOnce() -> u64,
        record: IndexRecord,
    ) -> Written {
        if self.pos + INDEX_RECORD_SIZE > self.limit {
            // Inline, like the store: under a live drain that the producer outruns, most events
            // are refusals, and a call out of line cost more than the store (see
            // `refuse_quietly`).
            if self.refuse_quietly(known) {
                return Written::DroppedNewest;
            }
            return self.write_index_slow(IndexRecord {
                timestamp_ns: stamp(),
                ..record
            });
        }
        let record = IndexRecord {
            timestamp_ns: stamp(),
            ..record
        };
        // `active_data` is the active ring's `data_capacity / 8` words (RingStore contract) and
        // `pos` is a multiple of 32.
        // SAFETY: `pos + 32 <= limit <= cap <= data_capacity` (checked above), so words
        // `pos / 8` to `pos / 8 + 3` exist.
        unsafe {
            store_index(
                self.active_data.as_ptr().add(self.pos as usize / 8),
                &record,
            )
        };
        self.commit(INDEX_RECORD_SIZE);
        Written::Stored
    }

    /// After a write that returned [`Written::DroppedNewest`]: whether it was a quiet refusal
    /// (no look at the pool or the lane's state, see [`REFUSALS_BETWEEN_LOOKS`]), so a caller
    /// that does its own checks after a slow path can leave them to the next full look.
    #[inline(always)]
    pub fn refused_quietly(&self) -> bool {
        // A full look that refuses sets the budget to `REFUSALS_BETWEEN_LOOKS`; each quiet
        // refusal takes one from it.
        self.quiet_refusals < REFUSALS_BETWEEN_LOOKS
    }

    /// Records one detail event. A record over the limits is refused (and counted as dropped).
    pub fn write_detail(&mut self, record: &DetailRecord<'_>) -> Result<Written, RecordError> {
        if let Err(e) = record.check() {
            self.counters.events_written += 1;
            self.too_large(record.timestamp_ns);
            return Err(e);
        }
        if record.marked {
            self.mark();
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = record.encode_into(&mut scratch);
        let written = self.write_bytes(&scratch[..n], record.timestamp_ns);
        self.scratch = scratch;
        Ok(written)
    }

    /// Records pre-encoded bytes stamped `now` (one whole record, a multiple of 8 bytes).
    fn write_bytes(&mut self, bytes: &[u8], now: u64) -> Written {
        let n = bytes.len() as u32;
        if self.pos + n > self.limit {
            return self.write_slow(bytes, now);
        }
        let stored = words::store(self.store.data(self.active), self.pos, bytes);
        debug_assert!(stored, "pos + n <= cap <= data_capacity");
        self.commit(n);
        self.ring_records += 1;
        self.last_ts = now;
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
        self.write_slow(record.as_bytes(), record.timestamp_ns)
    }

    /// While drop-newest refuses and no ring came back (one load of the free queue's producer
    /// position, a line the drain writes only when it returns a ring): refuses the event
    /// without the full look (see [`REFUSALS_BETWEEN_LOOKS`]) and says so. Only the counters
    /// move (and are published); the refusal joins the pending loss marker at the next full
    /// look ([`fold_quiet`](Self::fold_quiet)). `now` is the event's stamp, `None` for an event
    /// not stamped: its time is then bounded by the last full look's stamp before it and by
    /// the stamp the fold is given after it.
    #[inline(always)]
    fn refuse_quietly(&mut self, now: Option<u64>) -> bool {
        // `quiet_refusals` is non-zero only while `refusing` (set with it, cleared with it).
        if self.quiet_refusals == 0 || !self.free.looks_empty() {
            return false;
        }
        if self.quiet_refusals == REFUSALS_BETWEEN_LOOKS {
            self.quiet_first_ns = now.unwrap_or(self.look_ns);
        }
        match now {
            Some(now) => self.quiet_last_ns = now,
            None => self.quiet_unstamped = true,
        }
        self.quiet_refusals -= 1;
        let c = &mut self.counters;
        // Plain adds: a lane does not write 2^64 events.
        c.events_written += 1;
        c.events_dropped += 1;
        c.refused += 1;
        // Published at once, as every other loss (a process killed now leaves none of them
        // uncounted): the lane's own counter line, which the fast path writes anyway.
        self.lane
            .store_refusal(c.events_written, c.events_dropped, c.refused);
        true
    }

    /// Adds the quiet refusals since the last full look to the pending refused marker (its
    /// count and end) and tells the policy; the next quiet stretch starts from here. Called
    /// before anything reads the pending markers, with `now`: no earlier than every refusal
    /// folded (the stamp of the event that folds them), the end of refusals that read no clock.
    fn fold_quiet(&mut self, now: u64) {
        if !self.refusing {
            return;
        }
        let taken = u64::from(REFUSALS_BETWEEN_LOOKS - self.quiet_refusals);
        self.quiet_refusals = REFUSALS_BETWEEN_LOOKS;
        if taken == 0 {
            return;
        }
        let last_ns = if self.quiet_unstamped {
            self.quiet_last_ns.max(now)
        } else {
            self.quiet_last_ns
        };
        self.quiet_unstamped = false;
        // Not `lose`: the counters already hold these events.
        self.pend(LossMarker {
            cause: LossCause::Refused,
            count: taken,
            first_ns: self.quiet_first_ns,
            last_ns,
        });
        self.policy
            .on_drop(self.kind, DropAction::DropNewest, taken);
    }

    /// Everything but a plain store into the active ring: a full ring (swap, or the drop policy
    /// when the pool is exhausted), a pending loss marker, a backpressure state check. `now` is
    /// the event's timestamp: the state machine's clock (so an injected clock drives it).
    #[cold]
    #[inline(never)]
    fn write_slow(&mut self, bytes: &[u8], now: u64) -> Written {
        let n = bytes.len() as u32;
        if n > self.cap {
            // Cannot fit even an empty ring (only possible for a detail ring smaller than the
            // largest record): counted, never written out of bounds.
            self.counters.events_written += 1;
            self.too_large(now);
            return Written::TooLarge;
        }
        // Detail records come here directly (index records looked in `write_index`).
        if self.refuse_quietly(Some(now)) {
            return Written::DroppedNewest;
        }
        self.fold_quiet(now);
        let mut outcome = Written::Stored;
        if self.refusing || self.pos + self.pending_bytes() + n > self.cap {
            if self.backpressure.state != LaneState::Normal {
                // What the drain returned, before this swap takes a ring: the one moment a
                // busy lane can show every spare ring free (DROPPING → RECOVERY).
                self.check_state(false, now);
            }
            if self.swap() || self.reuse_consumed_active() {
                outcome = Written::Swapped;
                self.refusing = false;
                self.quiet_refusals = 0;
                // Looked at a quarter ring from now (see `check_due`).
                self.check_due = true;
            } else if !self.refusing && self.policy.spill(self.kind, bytes) {
                // Spill before drop: kept elsewhere, so nothing is lost and no marker is due.
                // Not once drop-newest has refused an event: it refuses until a ring returns,
                // so what is kept stays the oldest, without holes, and its gap is one stretch.
                self.counters.pool_exhaustions += 1;
                self.counters.events_written += 1;
                self.counters.spilled += 1;
                // The pool ran dry all the same: DROPPING says so (its events spill, then drop).
                self.check_state(true, now);
                self.refresh_limit();
                self.lane.store_counters(&self.counters);
                return Written::Spilled;
            } else {
                self.counters.pool_exhaustions += 1;
                match self.policy.on_exhaustion(self.kind) {
                    DropAction::DropOldest => {
                        let dropped = self.recycle_active();
                        self.policy
                            .on_drop(self.kind, DropAction::DropOldest, dropped);
                        self.check_state(dropped > 0, now);
                        outcome = Written::DroppedOldest { dropped };
                    }
                    DropAction::DropNewest => {
                        self.refusing = true;
                        self.quiet_refusals = REFUSALS_BETWEEN_LOOKS;
                        self.look_ns = now;
                        self.refuse(now);
                        self.check_state(true, now);
                        self.refresh_limit();
                        self.lane.store_counters(&self.counters);
                        return Written::DroppedNewest;
                    }
                }
            }
        } else {
            // A state check (due after a swap, or the lane is not NORMAL) or a marker to
            // place, with room.
            self.check_state(false, now);
            self.check_due = false;
        }
        // Markers before the event when both fit (always in a fresh ring, but for a detail
        // record of nearly a ring's size), else right after it.
        self.place_markers(n);
        let stored = words::store(self.store.data(self.active), self.pos, bytes);
        debug_assert!(stored, "pos + n <= cap <= data_capacity");
        self.commit(n);
        self.ring_records += 1;
        self.last_ts = now;
        self.place_markers(0);
        self.refresh_limit();
        self.lane.store_counters(&self.counters);
        outcome
    }

    /// Drop-newest refuses the event stamped `now`: counted, merged into the pending marker.
    #[inline(always)]
    fn refuse(&mut self, now: u64) {
        self.counters.events_written += 1;
        self.lose(LossMarker {
            cause: LossCause::Refused,
            count: 1,
            first_ns: now,
            last_ns: now,
        });
        self.policy.on_drop(self.kind, DropAction::DropNewest, 1);
    }

    /// A record over the limits (or larger than a ring) was refused: counted, and marked in
    /// the ring now if there is room (otherwise at the next write).
    fn too_large(&mut self, now: u64) {
        self.fold_quiet(now);
        self.lose(LossMarker {
            cause: LossCause::TooLarge,
            count: 1,
            first_ns: now,
            last_ns: now,
        });
        self.place_markers(0);
        self.refresh_limit();
        self.lane.store_counters(&self.counters);
    }

    /// Counts lost events and queues their marker.
    fn lose(&mut self, loss: LossMarker) {
        let c = &mut self.counters;
        c.events_dropped = c.events_dropped.saturating_add(loss.count);
        let by_cause = match loss.cause {
            LossCause::Overwritten => &mut c.overwritten,
            LossCause::Refused => &mut c.refused,
            // `NoSlot` never happens to a lane that has a writer.
            LossCause::TooLarge | LossCause::NoSlot => &mut c.too_large,
        };
        *by_cause = by_cause.saturating_add(loss.count);
        self.pend(loss);
    }

    /// Queues a marker (merged with a pending one of the same cause).
    fn pend(&mut self, loss: LossMarker) {
        let slot = &mut self.pending[usize::from(loss.cause.as_u8()).min(2)];
        match slot {
            Some(p) => p.merge(&loss),
            None => *slot = Some(loss),
        }
    }

    /// Size of one marker record in this lane.
    fn marker_len(&self) -> u32 {
        match self.kind {
            LaneKind::Index => INDEX_RECORD_SIZE,
            LaneKind::Detail => DETAIL_MARKER_LEN,
        }
    }

    /// Bytes the pending markers need.
    fn pending_bytes(&self) -> u32 {
        self.pending.iter().flatten().count() as u32 * self.marker_len()
    }

    /// Writes pending markers into the active ring while each fits with `reserve` bytes left
    /// over (and the ring generation can track it); the rest stay pending.
    fn place_markers(&mut self, reserve: u32) {
        let len = self.marker_len();
        if self.pending.iter().any(Option::is_some) {
            // The counts first: a reader that sees a marker (published with the ring position)
            // never finds the counters short of what it announces.
            self.lane.store_counters(&self.counters);
        }
        for i in 0..self.pending.len() {
            let Some(mut loss) = self.pending[i] else {
                continue;
            };
            if self.pos + len + reserve > self.cap || self.markers.len == RING_MARKERS {
                return;
            }
            let at = self.pos;
            let placed = match self.kind {
                LaneKind::Index => {
                    let part = loss.split().next().unwrap_or(loss);
                    loss.count -= part.count;
                    // SAFETY: `pos + 32 <= cap <= data_capacity` (checked above).
                    unsafe {
                        store_index(
                            self.active_data.as_ptr().add(self.pos as usize / 8),
                            &part.to_index(0),
                        );
                    }
                    part
                }
                LaneKind::Detail => {
                    let mut buf = [0u8; DETAIL_MARKER_LEN as usize];
                    let n = loss.encode_detail(0, &mut buf);
                    let stored = words::store(self.store.data(self.active), self.pos, &buf[..n]);
                    debug_assert!(stored, "pos + 56 <= cap <= data_capacity");
                    let all = loss;
                    loss.count = 0;
                    all
                }
            };
            self.pos += len;
            self.header().publish_position(self.generation, self.pos);
            self.ring_records += 1;
            let m = &mut self.markers;
            m.at[m.len] = at;
            m.size[m.len] = len;
            m.marker[m.len] = Some(placed);
            m.len += 1;
            self.pending[i] = (loss.count > 0).then_some(loss);
        }
    }

    /// Runs the lane's state machine (on the slow path only); publishes a change.
    fn check_state(&mut self, exhausted: bool, now: u64) {
        let bp = &mut self.backpressure;
        if !bp.enabled {
            return;
        }
        let free_rings = self.free.available_now().unwrap_or(0);
        if bp.state == LaneState::Normal && !needs_attention(free_rings, exhausted, &bp.config) {
            return;
        }
        let t = next(
            bp.state,
            Input {
                free_rings,
                exhausted,
                now_ns: now,
                since_ns: bp.since_ns,
            },
            &bp.config,
        );
        let changed = t.state != bp.state;
        bp.state = t.state;
        bp.since_ns = t.since_ns;
        if changed {
            let e = &mut bp.entries[usize::from(t.state.as_u8())];
            *e = e.saturating_add(1);
            self.lane.store_state(&LaneStateWord {
                state: t.state.as_u8(),
                since_ns: t.since_ns,
                entries: bp.entries,
            });
        }
    }

    /// Sets the fast path's bound (see the `limit` field).
    fn refresh_limit(&mut self) {
        let placeable = self.markers.len < RING_MARKERS;
        self.limit = if placeable && self.pending.iter().any(Option::is_some) {
            0
        } else if self.backpressure.state == LaneState::Normal && !self.check_due {
            self.cap
        } else {
            // The record that would end past a quarter ring (at least one record) from here
            // goes to the slow path: `pos + len > limit` for any `len >= 1` once
            // `pos >= here + quarter`, and for 32-byte records one record earlier, so an
            // index lane is checked every `quarter / 32` records.
            let quarter = (self.cap / 4).max(INDEX_RECORD_SIZE);
            (self.pos + quarter - 1).min(self.cap)
        };
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
        self.markers = RingMarkers::EMPTY;
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

    /// With no free ring: if the drain has already copied everything in the active ring (its
    /// live copy reached `pos`), recycling it loses nothing, so the thread goes on in it
    /// instead of refusing (drop-newest) or overwriting (drop-oldest). `true` if it did.
    fn reuse_consumed_active(&mut self) -> bool {
        let seen = self.header().consumed();
        if seen.generation != self.generation || seen.read_pos < self.pos {
            return false;
        }
        // The drain may still claim more (it cannot: it read up to `pos`, all there is), so
        // the recycle counts what lies past its final read position: nothing, or whatever a
        // concurrent claim left, which is then counted as overwritten like any recycle.
        self.recycle_active();
        true
    }

    /// Drop-oldest: recycle the thread's own active ring. Returns the events dropped (counted
    /// as overwritten, their marker queued). Markers in the ring that the drain had not read go
    /// back to the pending ones: their losses are marked again in the recycled ring.
    fn recycle_active(&mut self) -> u64 {
        let ended = self.store.header(self.active).begin_recycle();
        let mut read = ended.read_pos.min(self.pos);
        let records = match self.kind {
            LaneKind::Index => u64::from((self.pos - read) / INDEX_RECORD_SIZE),
            LaneKind::Detail => self.count_detail_from(read).unwrap_or_else(|| {
                // Tampered: which records the drain took is unknowable; all of this ring's
                // records count as not taken (its markers among them, re-announced).
                read = 0;
                u64::from(self.ring_records)
            }),
        };
        let mut unread_markers = 0u64;
        let markers = self.markers;
        for i in 0..markers.len {
            if markers.at[i] >= read
                && let Some(m) = markers.marker[i]
            {
                self.pend(m);
                unread_markers += 1;
            }
        }
        // Markers are records but not events.
        let dropped = records.saturating_sub(unread_markers);
        let first_ns = if dropped > 0 {
            self.first_event_ts_from(read)
        } else {
            0
        };
        let last_ns = self.last_event_ts();
        self.generation = ended.generation.wrapping_add(1);
        self.store
            .header(self.active)
            .reset_contents(self.generation);
        self.pos = 0;
        self.ring_records = 0;
        self.markers = RingMarkers::EMPTY;
        self.marked = false;
        self.lane.set_marked(false);
        if dropped > 0 {
            self.lose(LossMarker {
                cause: LossCause::Overwritten,
                count: dropped,
                first_ns,
                last_ns,
            });
        }
        dropped
    }

    /// Timestamp of the first event record at or after `from` in the active ring, skipping
    /// markers (0 when unknown). Read from the ring, which another process could have
    /// rewritten: a wrong value can only mislabel the marker, and the walk is bounded.
    fn first_event_ts_from(&self, from: u32) -> u64 {
        let data = self.store.data(self.active);
        let ts_offset = match self.kind {
            LaneKind::Index => 0,
            LaneKind::Detail => 8,
        };
        let mut at = from;
        for _ in 0..=self.markers.len {
            if at >= self.pos {
                return 0;
            }
            match self.markers.size_at(at) {
                Some(size) => at += size,
                None => {
                    let mut word = [0u8; 8];
                    return if words::load(data, at + ts_offset, &mut word) {
                        u64::from_le_bytes(word)
                    } else {
                        0
                    };
                }
            }
        }
        0
    }

    /// Timestamp of the last event record in the active ring (0 when unknown): the slow path
    /// keeps it; an index ring filled on the fast path has its last record at `pos - 32`.
    fn last_event_ts(&self) -> u64 {
        match self.kind {
            LaneKind::Detail => self.last_ts,
            LaneKind::Index => {
                let mut at = self.pos;
                for _ in 0..=self.markers.len {
                    if at < INDEX_RECORD_SIZE {
                        return 0;
                    }
                    at -= INDEX_RECORD_SIZE;
                    if self.markers.size_at(at).is_none() {
                        let mut word = [0u8; 8];
                        return if words::load(self.store.data(self.active), at, &mut word) {
                            u64::from_le_bytes(word)
                        } else {
                            0
                        };
                    }
                }
                0
            }
        }
    }

    /// Detail records of the active ring starting at or after `from` (the drain's read
    /// position). The number of records is the writer's own count; only the split at `from`
    /// needs the records' length fields, and that walk takes at most `ring_records` steps, each
    /// checked against `pos`, so a length another process rewrote (huge, zero, odd, wrapping
    /// the cursor) can neither hold the thread nor step outside the ring. A walk that does not
    /// fit what this thread wrote means the ring was tampered with: which of its records the
    /// drain took is then unknowable (`None`; the caller counts all of them as not taken).
    fn count_detail_from(&self, from: u32) -> Option<u64> {
        let all = self.ring_records;
        if from == 0 {
            return Some(u64::from(all));
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
                return None;
            }
            at += len;
            below += 1;
        }
        Some(u64::from(all - below))
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

    /// Before the thread lets go of the lane (exit, unregistration): places pending loss
    /// markers where the ring has room (swapping to a free ring if the active one is full),
    /// then publishes the counters. A marker that finds no room at all is not in the stream;
    /// its events are still counted.
    ///
    /// For a writer that stamps every event itself ([`write_index`](Self::write_index),
    /// [`write_detail`](Self::write_detail)); one that uses
    /// [`write_index_lazily`](Self::write_index_lazily) settles with
    /// [`settle_at`](Self::settle_at), or a refused stretch's marker may end at the last
    /// stamp the writer saw, before its last quiet refusals (still counted).
    pub fn settle(&mut self) {
        self.settle_at(self.quiet_last_ns.max(self.look_ns));
    }

    /// [`settle`](Self::settle) at time `now`: no earlier than any event written so far (the
    /// end of a refused stretch whose last refusals read no clock).
    pub fn settle_at(&mut self, now: u64) {
        self.fold_quiet(now);
        if self.pending.iter().any(Option::is_some) {
            self.place_markers(0);
            if self.pending.iter().any(Option::is_some)
                && (self.swap() || self.reuse_consumed_active())
            {
                self.place_markers(0);
            }
            self.refresh_limit();
        }
        self.flush_counters();
    }

    /// The lane's backpressure state as this thread last evaluated it.
    pub fn state(&self) -> LaneState {
        self.backpressure.state
    }

    /// This writer without the lane state machine: the state is never evaluated or published
    /// (the lane stays NORMAL, as the drain and `ada status` see it) and nothing about losses
    /// changes (they are still counted and marked). **For A/B measurement only** (the benchmark
    /// of the state machine's cost on the record path): a traced thread always runs it.
    #[must_use]
    pub fn without_backpressure(mut self) -> Self {
        self.backpressure.enabled = false;
        self
    }

    /// Replaces the lane's state-machine thresholds (default:
    /// [`BackpressureConfig::for_pool`] of the pool size). Call right after [`new`](Self::new).
    pub fn set_backpressure(&mut self, config: BackpressureConfig) {
        self.backpressure.config = config;
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
