//! The shared fallback ring: a bounded multi-producer, single-consumer ring of fixed 64-byte
//! records in the segment's `Fallback` region, for events that have no thread ring to go to
//! (written before the registry is ready, by a thread refused a slot, or spilled when a thread's
//! own pool is exhausted). Any thread of any attached process may push; the drain (the holder of
//! the [`DrainClaim`](crate::DrainClaim)) is its one consumer ([`FallbackConsumer`]).
//!
//! # Layout (version [`FALLBACK_VERSION`])
//! ```text
//! offset 0    params line (128 B): records: u32 (a power of two), reserved: u32
//! offset 128  tail line   (128 B): tail: u64     next position to reserve (producers, CAS)
//! offset 256  drain line  (128 B): head: u64     next position the consumer reads
//!                                  refused: u64  records refused (ring full / contention)
//!                                  late: u64     commits that found their slot abandoned
//! offset 384  slot[0..records], 64 B each:
//!   0 stamp: u64   2·pos = free for position pos, 2·pos + 1 = record of pos committed
//!   8 pid: u32    12 lane: u32 (LaneKind)    16 tid: u64 (OS thread id)
//!  24 payload: [u64; 4]  (one 32-byte index record, `ada_ringpool::IndexRecord`'s layout)
//!  56 check: u64  a hash of (pos, pid, tid, lane, payload) written by the producer
//! ```
//! Positions are free-running `u64`s; slot `pos & (records - 1)` holds position `pos`. Slot `i`
//! starts free for position `i`.
//!
//! # Protocol (Vyukov's bounded queue, with individual commits and a single consumer)
//! - **Reserve**: a producer reads `tail` as a guess, then the stamp of that position's slot
//!   (Acquire). Free for exactly that position: it compare-and-swaps `tail` one further, and the
//!   slot is its own. Lower: the slot still holds a record of the previous lap, the ring is
//!   full: the record is **refused** (counted in `refused`, never waited for). Higher: another
//!   producer got there first; it moves on to the current `tail` (and if `tail` still names
//!   that position, which only damage can cause, it moves `tail` one further itself, so a peer
//!   that set `tail` back is walked past). Attempts are bounded
//!   ([`MAX_PUSH_ATTEMPTS`]); a producer that exhausts them refuses and counts its record too,
//!   so a push never loops unbounded, even against a peer scribbling `tail`.
//! - **Write and commit**: it writes the fields (Relaxed), then compare-and-swaps the stamp from
//!   free to committed for its position (Release). Each record is committed on its own; a
//!   stalled producer holds up only the records behind it, and only until it is abandoned.
//! - **Consume**: the consumer reads the stamp at `head` (Acquire). Committed for `head`: it
//!   copies the record out, checks it ([`check`](FallbackRecord) hash, lane kind), frees the
//!   slot for the next lap (stamp `2·(head + records)`, Release) and moves on. Free for `head`
//!   and `tail <= head`: the ring is empty. Anything else (reserved but not yet committed, or
//!   a stamp no protocol step writes): the consumer **stops there for this pass** (reported as
//!   `blocked`). A slot that still blocks `head` after [`ABANDON_PASSES`] consecutive passes
//!   (settable per consumer) is abandoned: if its position is reserved (`tail > head`) the
//!   consumer compare-and-swaps its stamp to free-for-the-next-lap and goes on, so a producer
//!   that died mid-write never wedges the ring; if not (a damaged stamp on a slot nobody
//!   owns), it stamps the slot free for `head` again. Either way it counts one `skipped`.
//! - **A producer that was abandoned** finds its commit's compare-and-swap failing: the record
//!   is counted in `late` and refused. Its field writes may already have landed in the slot's
//!   next owner's record; the check hash covers every field and the position, so such a mixed
//!   record is counted as `torn` by the consumer, never delivered. (All fields are atomics:
//!   a late or hostile writer can corrupt values, never cause a data race.)
//!
//! Everything read from the region is untrusted: slot indices are masked into range, stamps
//! and records are checked, every loop is bounded by the ring's capacity or a fixed attempt
//! count. A hostile peer can still deny service (a `tail` moved far ahead makes every push
//! refuse, counted, until the consumer has abandoned its way there), but it cannot make a push
//! or a drain panic, loop unbounded or touch memory outside the ring.

use crate::drain_claim::ClaimGuard;
use crate::lane::LaneKind;
use ada_shm::CacheLine;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Layout version of the `Fallback` region (see the module docs).
pub const FALLBACK_VERSION: u32 = 1;
/// Default number of records in the ring.
pub const DEFAULT_FALLBACK_RECORDS: u32 = 4096;
/// Most records a ring may have.
pub const MAX_FALLBACK_RECORDS: u32 = 1 << 20;
/// Bytes per slot (a power of two).
pub const FALLBACK_SLOT_BYTES: u64 = 64;
/// Consecutive drain passes a slot may block the consumer (reserved but uncommitted, or
/// unreadable) before it is abandoned.
pub const ABANDON_PASSES: u32 = 8;
/// Reservation attempts a push makes before it refuses its record.
pub const MAX_PUSH_ATTEMPTS: u32 = 1024;

/// Immutable sizes written by the creator.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct FallbackParams {
    records: AtomicU32,
    reserved: AtomicU32,
}

/// The consumer's position and the shared loss counters.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct FallbackDrainWords {
    head: AtomicU64,
    refused: AtomicU64,
    late: AtomicU64,
}

/// The header at the start of the `Fallback` region.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct FallbackHeader {
    params: CacheLine<FallbackParams>,
    tail: CacheLine<AtomicU64>,
    drain: CacheLine<FallbackDrainWords>,
}

/// One record slot (see the module docs for its layout).
#[repr(C, align(64))]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct FallbackSlot {
    stamp: AtomicU64,
    pid: AtomicU32,
    lane: AtomicU32,
    tid: AtomicU64,
    payload: [AtomicU64; 4],
    check: AtomicU64,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic inside padding; any bit pattern is a valid value.
unsafe impl ada_shm::ShmSafe for FallbackHeader {}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: atomics only, no padding (u64, 2 × u32, 6 × u64 = 64 bytes); any bit pattern is valid.
unsafe impl ada_shm::ShmSafe for FallbackSlot {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<FallbackHeader>() == 384);
    assert!(core::mem::offset_of!(FallbackHeader, tail) == 128);
    assert!(core::mem::offset_of!(FallbackHeader, drain) == 256);
    assert!(core::mem::size_of::<FallbackSlot>() as u64 == FALLBACK_SLOT_BYTES);
    assert!(core::mem::offset_of!(FallbackSlot, tid) == 16);
    assert!(core::mem::offset_of!(FallbackSlot, payload) == 24);
    assert!(core::mem::offset_of!(FallbackSlot, check) == 56);
};

/// Bytes of the header that precedes the slots.
pub const FALLBACK_HEADER_BYTES: u64 = 384;

impl FallbackHeader {
    /// The record count as written (untrusted until validated with [`validate_records`]).
    pub fn records(&self) -> u32 {
        // Relaxed: immutable after creation; validated by the caller.
        self.params.records.load(Ordering::Relaxed)
    }
}

/// Checks a record count: 0 (no ring) is not valid here; a power of two from 2 to
/// [`MAX_FALLBACK_RECORDS`].
pub fn validate_records(records: u32) -> Result<(), &'static str> {
    if !(2..=MAX_FALLBACK_RECORDS).contains(&records) || !records.is_power_of_two() {
        return Err("fallback ring records must be a power of two between 2 and 2^20");
    }
    Ok(())
}

/// Size of a `Fallback` region of `records` slots.
pub fn region_size(records: u32) -> u64 {
    FALLBACK_HEADER_BYTES + u64::from(records) * FALLBACK_SLOT_BYTES
}

/// One record: who wrote it and the 32-byte index record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackRecord {
    /// Producer's process id.
    pub pid: u32,
    /// Producer's OS thread id (as in `SlotOwner::thread_id`).
    pub tid: u64,
    /// The lane the record belongs to.
    pub lane: LaneKind,
    /// An `ada_ringpool::IndexRecord` as four native-endian words.
    pub payload: [u64; 4],
}

/// Why a push did not store its record. Every refusal is counted in the shared counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FallbackRefused {
    /// Every slot holds a record the drain has not taken yet (counted in `refused`).
    #[error("the fallback ring is full")]
    Full,
    /// No reservation succeeded within [`MAX_PUSH_ATTEMPTS`] (counted in `refused`).
    #[error("the fallback ring stayed contended (or its tail is damaged)")]
    Contended,
    /// The slot was abandoned by the drain before the record was committed (counted in `late`).
    #[error("the fallback ring's drain abandoned this record's slot before it was committed")]
    Abandoned,
}

/// What one [`FallbackConsumer::drain`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FallbackDrained {
    /// Records handed to the callback.
    pub taken: u64,
    /// Committed records whose fields did not check out (torn by a late writer, or damaged).
    pub torn: u64,
    /// Slots abandoned after blocking [`ABANDON_PASSES`] passes (uncommitted or unreadable).
    pub skipped: u64,
    /// Records refused by producers so far (ring full or contended), a running total.
    pub refused: u64,
    /// Records whose producers found their slot abandoned, so far, a running total.
    pub late: u64,
    /// The pass stopped at a slot that was reserved but not committed (or unreadable), which
    /// it will abandon if it still blocks after the consumer's abandon-pass limit.
    pub blocked: bool,
}

const fn free_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2)
}

const fn committed_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2) | 1
}

/// The hash a producer stores with its record (a cheap 64-bit mix, not cryptographic): a record
/// with any field from another write, or stored for another position, does not match.
fn record_check(pos: u64, pid: u32, tid: u64, lane: u32, payload: &[u64; 4]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ pos;
    let mut mix = |v: u64| {
        h = (h ^ v).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    };
    mix(u64::from(pid) << 32 | u64::from(lane));
    mix(tid);
    for &w in payload {
        mix(w);
    }
    h
}

/// A borrowed view of a fallback ring: the producers' side (cheap to copy, shareable).
#[derive(Debug, Clone, Copy)]
pub struct FallbackRef<'a> {
    header: &'a FallbackHeader,
    slots: &'a [FallbackSlot],
    mask: u64,
}

impl<'a> FallbackRef<'a> {
    /// A view over `slots`; `None` unless their count is a valid record count
    /// ([`validate_records`]). The slice length is what the algorithm trusts, never the header.
    pub fn new(header: &'a FallbackHeader, slots: &'a [FallbackSlot]) -> Option<Self> {
        let records = u32::try_from(slots.len()).ok()?;
        validate_records(records).ok()?;
        Some(FallbackRef {
            header,
            slots,
            mask: u64::from(records) - 1,
        })
    }

    /// Writes the record count and stamps every slot free for its first position (creator only,
    /// before anyone else can see the ring).
    pub fn initialize(&self) {
        // Relaxed (all): nobody else knows the ring yet; handing the segment's name over (or
        // spawning the model's threads) orders these stores before any other access.
        self.header
            .params
            .records
            .store(self.capacity(), Ordering::Relaxed);
        for (i, slot) in self.slots.iter().enumerate() {
            // Relaxed: as above.
            slot.stamp.store(free_stamp(i as u64), Ordering::Relaxed);
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.mask as u32 + 1
    }

    /// Records refused so far (full or contended).
    pub fn refused(&self) -> u64 {
        // Relaxed: a statistic.
        self.header.drain.refused.load(Ordering::Relaxed)
    }

    /// Records whose slot was abandoned before their producer committed them, so far.
    pub fn late(&self) -> u64 {
        // Relaxed: a statistic.
        self.header.drain.late.load(Ordering::Relaxed)
    }

    /// The consumer's head and the producers' tail as they are now (for `ada status`): the ring
    /// holds about `tail - head` records (reserved or committed). Untrusted values, read
    /// independently: a reader computes the fill with a wrapping, clamped difference.
    pub fn positions(&self) -> (u64, u64) {
        // Relaxed (both): a statistic; nothing is read because of these values.
        let head = self.header.drain.head.load(Ordering::Relaxed);
        // Relaxed: as above.
        let tail = self.header.tail.load(Ordering::Relaxed);
        (head, tail)
    }

    /// Records in the ring now, by its positions: `tail - head`, clamped to the capacity (the
    /// words are another process's to write; the consumer publishes its head once per pass).
    pub fn fill(&self) -> u64 {
        let (head, tail) = self.positions();
        tail.wrapping_sub(head).min(u64::from(self.capacity()))
    }

    fn slot(&self, pos: u64) -> &'a FallbackSlot {
        let slots: &'a [FallbackSlot] = self.slots;
        // `mask + 1 == slots.len()` (checked in `new`), so the masked index is in range.
        &slots[(pos & self.mask) as usize]
    }

    fn refuse(&self, why: FallbackRefused) -> FallbackRefused {
        let counter = match why {
            FallbackRefused::Abandoned => &self.header.drain.late,
            FallbackRefused::Full | FallbackRefused::Contended => &self.header.drain.refused,
        };
        // Relaxed: a statistic; nothing is published through it.
        counter.fetch_add(1, Ordering::Relaxed);
        why
    }

    /// Stores `record`, tagged with its producer, and commits it; lock-free and never blocking.
    /// A refused record is counted (see [`FallbackRefused`]).
    ///
    /// ```
    /// use ada_registry::fallback::{FallbackRecord, FallbackRefused, HeapFallback};
    /// use ada_registry::LaneKind;
    ///
    /// let mut ring = HeapFallback::new(2);
    /// let (ring, mut consumer) = ring.split();
    /// let rec = |n| FallbackRecord { pid: 1, tid: 2, lane: LaneKind::Index, payload: [n; 4] };
    /// ring.push(&rec(1))?;
    /// ring.push(&rec(2))?;
    /// assert_eq!(ring.push(&rec(3)), Err(FallbackRefused::Full));
    /// let mut got = Vec::new();
    /// let counts = consumer.drain(|r| got.push(r.payload[0]));
    /// assert_eq!((got, counts.taken, counts.refused), (vec![1, 2], 2, 1));
    /// # Ok::<(), FallbackRefused>(())
    /// ```
    pub fn push(&self, record: &FallbackRecord) -> Result<(), FallbackRefused> {
        // Relaxed: only a guess; the slot's stamp (Acquire, below) decides what is free.
        let mut pos = self.header.tail.load(Ordering::Relaxed);
        for _ in 0..MAX_PUSH_ATTEMPTS {
            let slot = self.slot(pos);
            // Acquire: pairs with the consumer's Release that freed the slot for this lap: its
            // reads of the previous record happen before the writes below.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(free_stamp(pos)) as i64;
            if diff == 0 {
                // Relaxed: the reservation publishes nothing; the stamp's Acquire above ordered
                // the slot's reuse and the commit's Release below publishes the record.
                match self.header.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return self.write_and_commit(slot, pos, record),
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // The slot still holds a record of an earlier lap: the ring is full.
                return Err(self.refuse(FallbackRefused::Full));
            } else {
                // The slot is past `pos` (committed for it, or freed for a later lap): `tail`
                // has moved on, unless it is damaged (no protocol step leaves `tail` at a
                // position whose slot is past it). Move it on ourselves if it still says
                // `pos`, else take the fresher value: a peer that set `tail` back is walked
                // past, never looped on.
                // Relaxed: as for the reservation above; nothing is published by moving it.
                pos = match self.header.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => pos.wrapping_add(1),
                    Err(now) => now,
                };
            }
        }
        Err(self.refuse(FallbackRefused::Contended))
    }

    fn write_and_commit(
        &self,
        slot: &FallbackSlot,
        pos: u64,
        r: &FallbackRecord,
    ) -> Result<(), FallbackRefused> {
        let lane = r.lane as u32;
        // Relaxed (all field stores): published by the Release commit below.
        slot.pid.store(r.pid, Ordering::Relaxed);
        slot.tid.store(r.tid, Ordering::Relaxed);
        slot.lane.store(lane, Ordering::Relaxed);
        for (word, &v) in slot.payload.iter().zip(&r.payload) {
            // Relaxed: as above.
            word.store(v, Ordering::Relaxed);
        }
        let check = record_check(pos, r.pid, r.tid, lane, &r.payload);
        // Relaxed: as above.
        slot.check.store(check, Ordering::Relaxed);
        // Release: the consumer that acquires the committed stamp sees every field above.
        // Relaxed on failure: the slot was abandoned; nothing of it is read.
        match slot.stamp.compare_exchange(
            free_stamp(pos),
            committed_stamp(pos),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(()),
            Err(_) => Err(self.refuse(FallbackRefused::Abandoned)),
        }
    }

    /// The consumer end, without checking that it is the only one.
    ///
    /// # Safety
    /// No other [`FallbackConsumer`] of this ring may exist while the returned one is used, in
    /// this process or another: two consumers would free each other's slots under the
    /// producers' feet and hand records out twice.
    pub unsafe fn consumer(self) -> FallbackConsumer<'a> {
        FallbackConsumer::new(self, None)
    }
}

/// The one consuming end of a fallback ring (the drain's). From a segment it comes from
/// [`DrainClaim::fallback`](crate::DrainClaim::fallback), once per claim; on the heap from
/// [`HeapFallback::split`].
#[derive(Debug)]
pub struct FallbackConsumer<'a> {
    ring: FallbackRef<'a>,
    head: u64,
    /// The position that blocked the last pass, and for how many consecutive passes.
    stuck_at: u64,
    stuck_passes: u32,
    abandon_after: u32,
    _claim: Option<Arc<ClaimGuard<'a>>>,
}

impl<'a> FallbackConsumer<'a> {
    pub(crate) fn new(ring: FallbackRef<'a>, claim: Option<Arc<ClaimGuard<'a>>>) -> Self {
        // Relaxed (both): the head word is written only by the consumer (a predecessor that has
        // gone, whose claim release ordered its stores before ours); `tail` is only a bound.
        let head = ring.header.drain.head.load(Ordering::Relaxed);
        let tail = ring.header.tail.load(Ordering::Relaxed);
        // An impossible head (ahead of the tail, or more than a ring behind it) is damage: start
        // where the producers are; stamps that disagree are abandoned like stalled slots.
        let head = if tail.wrapping_sub(head) > u64::from(ring.capacity()) {
            tail
        } else {
            head
        };
        FallbackConsumer {
            ring,
            head,
            stuck_at: head,
            stuck_passes: 0,
            abandon_after: ABANDON_PASSES,
            _claim: claim,
        }
    }

    /// Sets how many consecutive passes a slot may block before it is abandoned (default
    /// [`ABANDON_PASSES`]; at least 1). A drain that passes often should allow more passes, so
    /// that a producer preempted mid-write is not taken for a dead one.
    pub fn set_abandon_passes(&mut self, passes: u32) {
        self.abandon_after = passes.max(1);
    }

    /// The ring (its producers' view).
    pub fn ring(&self) -> FallbackRef<'a> {
        self.ring
    }

    /// Takes every committed record in position order up to the first slot that is empty or
    /// blocked, handing each to `visit`, and frees their slots. At most one ring's worth of slots
    /// per call. See the module docs for blocked and abandoned slots.
    pub fn drain(&mut self, mut visit: impl FnMut(FallbackRecord)) -> FallbackDrained {
        let mut out = FallbackDrained::default();
        let cap = u64::from(self.ring.capacity());
        let mut steps = 0u64;
        while steps < cap {
            steps += 1;
            let pos = self.head;
            let slot = self.ring.slot(pos);
            // Acquire: pairs with the producer's Release commit: the fields are written.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == committed_stamp(pos) {
                match read_record(slot, pos) {
                    Some(r) => {
                        visit(r);
                        out.taken += 1;
                    }
                    None => out.torn += 1,
                }
                self.free(slot, pos);
                continue;
            }
            if stamp == free_stamp(pos) {
                // Relaxed: only tells empty from reserved-but-uncommitted; no data is read
                // because of it (a stale value just waits for the next pass).
                let tail = self.ring.header.tail.load(Ordering::Relaxed);
                if tail.wrapping_sub(pos) as i64 <= 0 {
                    self.stuck_passes = 0;
                    break;
                }
            }
            // Blocked: reserved but uncommitted, or a stamp no protocol step writes.
            // Relaxed: as above; it only decides between abandoning and repairing below.
            let reserved = self
                .ring
                .header
                .tail
                .load(Ordering::Relaxed)
                .wrapping_sub(pos) as i64
                > 0;
            if self.stuck_at != pos {
                self.stuck_at = pos;
                self.stuck_passes = 0;
            }
            self.stuck_passes += 1;
            if self.stuck_passes <= self.abandon_after {
                out.blocked = true;
                break;
            }
            // Reserved (by a producer that stalled or died): abandon the position, freeing
            // the slot for the next lap. Not reserved (a damaged stamp on a slot nobody owns):
            // stamp it free for this position again, so producers can use it.
            let repaired = if reserved {
                free_stamp(pos.wrapping_add(cap))
            } else {
                free_stamp(pos)
            };
            // Release: orders this pass's reads of the slot before its next owner's writes.
            // Relaxed on failure: the stamp moved (a commit landed); the next step re-reads it
            // with Acquire.
            if slot
                .stamp
                .compare_exchange(stamp, repaired, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                out.skipped += 1;
                if reserved {
                    self.advance(pos);
                } else {
                    self.stuck_passes = 0;
                    break;
                }
            }
        }
        // Relaxed: only a later consumer of this ring reads it (see `new`).
        self.ring
            .header
            .drain
            .head
            .store(self.head, Ordering::Relaxed);
        out.refused = self.ring.refused();
        out.late = self.ring.late();
        out
    }

    fn free(&mut self, slot: &FallbackSlot, pos: u64) {
        let next_lap = free_stamp(pos.wrapping_add(u64::from(self.ring.capacity())));
        // Release: the producer that acquires this stamp reuses the slot after our reads.
        slot.stamp.store(next_lap, Ordering::Release);
        self.advance(pos);
    }

    fn advance(&mut self, pos: u64) {
        self.head = pos.wrapping_add(1);
        self.stuck_passes = 0;
    }
}

/// Copies a committed slot's record out; `None` if it does not check out.
fn read_record(slot: &FallbackSlot, pos: u64) -> Option<FallbackRecord> {
    // Relaxed (all field loads): ordered after the caller's Acquire load of the stamp.
    let pid = slot.pid.load(Ordering::Relaxed);
    let tid = slot.tid.load(Ordering::Relaxed);
    let lane = slot.lane.load(Ordering::Relaxed);
    // Relaxed: as above.
    let payload = [0, 1, 2, 3].map(|i| slot.payload[i].load(Ordering::Relaxed));
    // Relaxed: as above.
    let check = slot.check.load(Ordering::Relaxed);
    if check != record_check(pos, pid, tid, lane, &payload) {
        return None;
    }
    let lane = match lane {
        0 => LaneKind::Index,
        1 => LaneKind::Detail,
        _ => return None,
    };
    Some(FallbackRecord {
        pid,
        tid,
        lane,
        payload,
    })
}

/// A fallback ring on the heap, for model checking, tests and benchmarks.
#[derive(Debug)]
pub struct HeapFallback {
    header: FallbackHeader,
    slots: Box<[FallbackSlot]>,
}

impl HeapFallback {
    /// A fresh ring of `records` slots.
    ///
    /// # Panics
    /// If `records` is not a power of two between 2 and [`MAX_FALLBACK_RECORDS`].
    pub fn new(records: u32) -> Self {
        if let Err(e) = validate_records(records) {
            panic!("invalid fallback ring size {records}: {e}");
        }
        let ring = HeapFallback {
            header: FallbackHeader::default(),
            slots: (0..records).map(|_| FallbackSlot::default()).collect(),
        };
        ring.view().initialize();
        ring
    }

    /// The producers' view.
    pub fn view(&self) -> FallbackRef<'_> {
        FallbackRef::new(&self.header, &self.slots).expect("size validated in `new`")
    }

    /// The producers' view and the ring's one consumer; the exclusive borrow keeps a second
    /// consumer from existing while this one lives.
    pub fn split(&mut self) -> (FallbackRef<'_>, FallbackConsumer<'_>) {
        let ring = self.view();
        (ring, FallbackConsumer::new(ring, None))
    }

    /// Overwrites a slot's stamp, or with `slot == None` the tail, to simulate a hostile peer.
    #[doc(hidden)]
    pub fn scribble(&self, slot: Option<usize>, value: u64) {
        let word = match slot {
            Some(i) => &self.slots[i % self.slots.len()].stamp,
            None => &*self.header.tail,
        };
        // Relaxed: test-only corruption.
        word.store(value, Ordering::Relaxed);
    }

    /// Overwrites payload word 0 of a slot, to simulate a hostile peer or a late writer.
    #[doc(hidden)]
    pub fn scribble_payload(&self, slot: usize, value: u64) {
        // Relaxed: test-only corruption.
        self.slots[slot % self.slots.len()].payload[0].store(value, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    fn rec(n: u64) -> FallbackRecord {
        FallbackRecord {
            pid: 7,
            tid: n,
            lane: if n.is_multiple_of(2) {
                LaneKind::Index
            } else {
                LaneKind::Detail
            },
            payload: [n, !n, n.wrapping_mul(3), 42],
        }
    }

    fn take(c: &mut FallbackConsumer<'_>) -> (Vec<FallbackRecord>, FallbackDrained) {
        let mut got = Vec::new();
        let d = c.drain(|r| got.push(r));
        (got, d)
    }

    #[test]
    fn fifo_full_refused_and_laps() {
        let mut ring = HeapFallback::new(4);
        let (p, mut c) = ring.split();
        for lap in 0..5u64 {
            for i in 0..4 {
                p.push(&rec(lap * 10 + i)).unwrap();
            }
            assert_eq!(p.push(&rec(99)), Err(FallbackRefused::Full));
            let (got, d) = take(&mut c);
            assert_eq!(got, (0..4).map(|i| rec(lap * 10 + i)).collect::<Vec<_>>());
            assert_eq!((d.taken, d.torn, d.skipped, d.refused), (4, 0, 0, lap + 1));
        }
        assert_eq!(take(&mut c).1.taken, 0);
    }

    /// A reserved slot whose producer never commits blocks the consumer for `ABANDON_PASSES`
    /// passes, then is skipped and counted; the records behind it arrive; the late commit is
    /// refused and counted.
    #[test]
    fn a_stalled_reservation_is_abandoned_after_bounded_passes() {
        let mut ring = HeapFallback::new(4);
        let (p, mut c) = ring.split();
        // Simulate a producer that reserved position 0 and stalled: advance the tail only.
        ring_tail_reserve(&p);
        p.push(&rec(1)).unwrap();
        for _ in 0..ABANDON_PASSES {
            let (got, d) = take(&mut c);
            assert!(got.is_empty());
            assert_eq!(d.skipped, 0);
        }
        let (got, d) = take(&mut c);
        assert_eq!((got, d.skipped), (vec![rec(1)], 1));
        // The stalled producer wakes up and commits position 0: refused as late.
        assert_eq!(
            p.write_and_commit(p.slot(0), 0, &rec(5)),
            Err(FallbackRefused::Abandoned)
        );
        assert_eq!(p.late(), 1);
        // The ring keeps working: its full capacity is available again.
        for i in 0..4 {
            p.push(&rec(10 + i)).unwrap();
        }
        let (got, d) = take(&mut c);
        assert_eq!((got.len(), d.late), (4, 1));
    }

    fn ring_tail_reserve(p: &FallbackRef<'_>) {
        // Relaxed: single-threaded test.
        p.header.tail.fetch_add(1, Ordering::Relaxed);
    }

    /// A late writer's fields landing in the next owner's committed record: counted torn, not
    /// delivered.
    #[test]
    fn a_mixed_record_is_counted_torn() {
        let mut ring = HeapFallback::new(2);
        let (p, mut c) = ring.split();
        p.push(&rec(1)).unwrap();
        p.push(&rec(2)).unwrap();
        let slots = p.slots;
        // Relaxed: single-threaded test.
        slots[1].payload[2].store(12345, Ordering::Relaxed);
        let (got, d) = take(&mut c);
        assert_eq!((got, d.taken, d.torn), (vec![rec(1)], 1, 1));
    }

    #[test]
    fn record_count_limits() {
        assert!(validate_records(0).is_err());
        assert!(validate_records(1).is_err());
        assert!(validate_records(3).is_err());
        assert!(validate_records(2).is_ok());
        assert!(validate_records(MAX_FALLBACK_RECORDS).is_ok());
        assert!(validate_records(MAX_FALLBACK_RECORDS * 2).is_err());
        assert_eq!(region_size(4), 384 + 256);
    }
}
