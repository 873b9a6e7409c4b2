//! A hostile peer rewrites the shared words of a lane while its thread writes: the ring bytes
//! (detail length fields huge, zero, odd, wrapping the writer's cursor), the free and submit
//! queues' positions and slots, the ring headers and the lane counters. The writer must return
//! from every call within a bounded number of steps, never panic, never touch memory outside
//! its rings, and count what it drops from what it wrote itself.
//!
//! Each case runs the writer on its own thread and waits for it with a deadline, so a writer
//! that spins fails the test instead of hanging it.

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DetailRecord, DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, RingStore,
    Written,
};
use ada_shm::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a writer may take for what every case asks of it (microseconds of work).
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `f` on a thread and returns its result, failing the test if it does not finish by
/// [`DEADLINE`] (the thread is left spinning; the test process ends with the failure).
fn within_deadline<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: the writer hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the writer panicked"),
    }
}

/// The `u32` at byte `offset` of `lane` (its layout: `ada_registry::lane`'s module docs).
fn lane_u32(lane: &Lane, offset: usize) -> &AtomicU32 {
    assert!(offset.is_multiple_of(4) && offset + 4 <= size_of::<Lane>());
    let base: *const Lane = lane;
    // Every byte of `Lane` at the offsets used here belongs to an atomic field (interior
    // mutability: writing through a shared reference is allowed).
    // SAFETY: in bounds and 4-aligned (asserted above); the reference lives no longer than `lane`.
    unsafe { &*base.cast::<u8>().add(offset).cast::<AtomicU32>() }
}

/// The `u64` at byte `offset` of ring `ring`'s header in `store`.
fn header_u64(store: &HeapStore, ring: u32, offset: usize) -> &AtomicU64 {
    assert!(offset.is_multiple_of(8) && offset + 8 <= 128);
    let base: *const _ = store.header(ring);
    // SAFETY: a ring header is 128 bytes of atomics (`ada_ringpool::header`); the offset is in
    // bounds and 8-aligned, and the reference lives no longer than `store`.
    unsafe { &*base.cast::<u8>().add(offset).cast::<AtomicU64>() }
}

// Byte offsets in a lane (see `ada_registry::lane`).
const ACTIVE_RING: usize = 0;
const SUBMIT_TAIL: usize = 8;
const FREE_HEAD: usize = 12;
const EVENTS_WRITTEN: usize = 16;
const SUBMIT_HEAD: usize = 128;
const FREE_TAIL: usize = 132;
const SUBMIT_SLOTS: usize = 256;
const FREE_SLOTS: usize = 288;

/// A detail record of exactly 48 bytes (32-byte header, sizes word, 8 message bytes).
fn detail48(seq: u64) -> DetailRecord<'static> {
    DetailRecord {
        kind: EventKind::Message,
        marked: false,
        timestamp_ns: seq,
        function_id: seq,
        thread_id: 1,
        call_depth: 0,
        registers: &[],
        stack: &[],
        message: b"12345678",
    }
}

fn index(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: seq,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        ..Default::default()
    }
}

/// A leaked lane and store (the writer thread and the scribbler both borrow them for the rest
/// of the test process).
fn leaked(rings: u32, ring_bytes: u32) -> (&'static mut Lane, &'static HeapStore) {
    let lane: &'static mut Lane = Box::leak(Box::default());
    let store: &'static HeapStore = Box::leak(Box::new(HeapStore::new(lane, rings, ring_bytes)));
    (lane, store)
}

/// The hang: with no drain running, a detail record's length field in the thread's
/// own active ring is rewritten so that stepping over it wraps the 32-bit cursor back to the
/// start of the ring. Recycling that ring (pool exhausted, drop-oldest) walked the records by
/// their lengths and spun forever. The recycle must return, and drop exactly the records the
/// thread wrote into the ring: the count is the thread's own, not read from shared memory.
#[test]
fn a_wrapping_detail_length_in_the_active_ring_neither_traps_nor_miscounts() {
    // 2 rings of 896 data bytes: 18 records of 48 bytes each.
    let (lane, store) = leaked(2, 1024);
    let (thread, _drain) = lane.split(2, LaneKind::Detail, 0);
    let outcome = within_deadline("wrapping length", move || {
        let mut writer = LaneWriter::new(thread, store, DropOldest);
        // Ring 0: records 0..18; record 18 swaps to ring 1 (ring 0 waits in the submit queue,
        // nobody drains it, the free queue is now empty).
        for seq in 0..19 {
            writer.write_detail(&detail48(seq)).unwrap();
        }
        assert_eq!(writer.active_ring(), 1);
        writer.write_detail(&detail48(19)).unwrap();
        // A peer rewrites the length of ring 1's second record: 48 + (2^32 - 48) wraps to 0.
        let word = &store.data(1)[48 / 8];
        let old = word.load(Ordering::Relaxed);
        word.store(
            (old & !0xffff_ffff) | u64::from(0u32.wrapping_sub(48)),
            Ordering::Relaxed,
        );
        // Fill ring 1 (18 records in all), then one more: no free ring, so ring 1 is recycled.
        for seq in 20..36 {
            assert_eq!(writer.write_detail(&detail48(seq)), Ok(Written::Stored));
        }
        let recycled = writer.write_detail(&detail48(36)).unwrap();
        (recycled, writer.counters())
    });
    assert_eq!(outcome.0, Written::DroppedOldest { dropped: 18 });
    assert_eq!(outcome.1.events_written, 37);
    assert_eq!(outcome.1.events_dropped, 18);
}

/// The same with a drain that took part of the active ring before the peer struck: the walk
/// to the drain's read position meets the rewritten length and stops; the split is then
/// unknowable and the ring's records count as dropped (never more than the ring held).
/// Zero, odd and huge lengths at every record boundary, one after the other.
#[test]
fn rewritten_lengths_below_the_drains_position_are_bounded() {
    for (case, bad_len) in [0u32, 7, 44, u32::MAX - 7, 0u32.wrapping_sub(48)]
        .into_iter()
        .enumerate()
    {
        let (lane, store) = leaked(2, 1024);
        let (thread, drain) = lane.split(2, LaneKind::Detail, 0);
        let outcome = within_deadline("lengths below the read position", move || {
            let mut writer = LaneWriter::new(thread, store, DropOldest);
            let mut drain = LaneDrain::new(drain, store);
            for seq in 0..19 {
                writer.write_detail(&detail48(seq)).unwrap();
            }
            for seq in 19..25 {
                writer.write_detail(&detail48(seq)).unwrap();
            }
            // The drain copies ring 1's 7 records so far (read position 336).
            let stats = drain.drain_active(|_| {});
            let at = 48 * (case % 6);
            let word = &store.data(1)[at / 8];
            let old = word.load(Ordering::Relaxed);
            word.store((old & !0xffff_ffff) | u64::from(bad_len), Ordering::Relaxed);
            for seq in 25..36 {
                writer.write_detail(&detail48(seq)).unwrap();
            }
            (
                stats,
                writer.write_detail(&detail48(36)).unwrap(),
                writer.counters(),
            )
        });
        let Written::DroppedOldest { dropped } = outcome.1 else {
            panic!("case {case}: expected a recycle, got {:?}", outcome.1);
        };
        assert!(
            (11..=18).contains(&dropped),
            "case {case}: at least the 11 records the drain never saw, at most the ring's 18: {dropped}"
        );
        assert_eq!(outcome.2.events_written, 37, "case {case}");
    }
}

/// Without a peer, a drain that took part of the active ring still splits it exactly: the
/// records from its read position on are the dropped ones.
#[test]
fn an_untouched_ring_splits_exactly_at_the_drains_position() {
    let (lane, store) = leaked(2, 1024);
    let (thread, drain) = lane.split(2, LaneKind::Detail, 0);
    let dropped = within_deadline("untouched", move || {
        let mut writer = LaneWriter::new(thread, store, DropOldest);
        let mut drain = LaneDrain::new(drain, store);
        for seq in 0..25 {
            writer.write_detail(&detail48(seq)).unwrap();
        }
        drain.drain_active(|_| {});
        for seq in 25..36 {
            writer.write_detail(&detail48(seq)).unwrap();
        }
        writer.write_detail(&detail48(36)).unwrap()
    });
    assert_eq!(dropped, Written::DroppedOldest { dropped: 11 });
}

/// The free queue claims values no ring has (out of range, the active ring itself) or
/// impossible positions; the submit queue's head is moved anywhere. The writer takes no such
/// ring, keeps writing (dropping the oldest when it cannot swap), and counts every event.
#[test]
fn impossible_queue_words_neither_trap_nor_misdirect_the_writer() {
    let (lane, store) = leaked(4, 256);
    let (thread, _drain) = lane.split(4, LaneKind::Index, 0);
    let lane: &'static Lane = thread.lane();
    let counters = within_deadline("queue words", move || {
        let mut writer = LaneWriter::new(thread, store, DropOldest);
        let mut seq = 0;
        let mut write = |writer: &mut LaneWriter<'_, _, _>, n: u64| {
            for _ in 0..n {
                writer.write_index(&index(seq));
                seq += 1;
                assert!(writer.active_ring() < 4);
            }
        };
        write(&mut writer, 3);
        // A full queue's worth of values naming no usable ring.
        let head = lane_u32(lane, FREE_HEAD).load(Ordering::Relaxed);
        for i in 0..8 {
            let value = if i % 2 == 0 {
                99 + i
            } else {
                writer.active_ring()
            };
            lane_u32(lane, FREE_SLOTS + 4 * i as usize).store(value, Ordering::Relaxed);
        }
        lane_u32(lane, FREE_TAIL).store(head.wrapping_add(8), Ordering::Relaxed);
        write(&mut writer, 40);
        // Positions no queue can have.
        for (tail, submit_head) in [(u32::MAX, 0), (7, u32::MAX / 2), (0, 1)] {
            lane_u32(lane, FREE_TAIL).store(tail, Ordering::Relaxed);
            lane_u32(lane, SUBMIT_HEAD).store(submit_head, Ordering::Relaxed);
            write(&mut writer, 40);
        }
        // The lane's own words, which only the thread writes: the writer never reads them back.
        lane_u32(lane, ACTIVE_RING).store(u32::MAX, Ordering::Relaxed);
        lane_u32(lane, SUBMIT_TAIL).store(12345, Ordering::Relaxed);
        lane_u32(lane, EVENTS_WRITTEN).store(u32::MAX, Ordering::Relaxed);
        for i in 0..8 {
            lane_u32(lane, SUBMIT_SLOTS + 4 * i).store(u32::MAX, Ordering::Relaxed);
        }
        write(&mut writer, 40);
        writer.flush_counters();
        writer.counters()
    });
    assert_eq!(counters.events_written, 3 + 40 * 5);
    assert_eq!(
        lane.counters(),
        counters,
        "published from the private totals"
    );
}

/// Between registration (which zeroes the lane's counters) and the writer's construction, a
/// peer sets the counters to their maximum. The writer counts from zero, its own totals: it
/// neither overflows (a panic in a debug build) nor publishes the peer's numbers as its own.
#[test]
fn counters_a_peer_planted_before_the_writer_was_built_are_not_adopted() {
    let (lane, store) = leaked(2, 256);
    let (thread, _drain) = lane.split(2, LaneKind::Index, 0);
    let shared: &'static Lane = thread.lane();
    for offset in (EVENTS_WRITTEN..EVENTS_WRITTEN + 32).step_by(4) {
        lane_u32(shared, offset).store(u32::MAX, Ordering::Relaxed);
    }
    let counters = within_deadline("planted counters", move || {
        let mut writer = LaneWriter::new(thread, store, DropOldest);
        for seq in 0..20 {
            writer.write_index(&index(seq));
        }
        writer.flush_counters();
        writer.counters()
    });
    assert_eq!(counters.events_written, 20);
    assert_eq!(
        counters.events_dropped,
        20 - 7,
        "two rings of 4 records kept, no drain: 4 events, then the loss marker and 3 events"
    );
    assert_eq!(counters.overwritten, counters.events_dropped);
    assert_eq!(shared.counters(), counters);
}

/// A peer keeps rewriting every shared word of a lane and its rings (random values, and the
/// `consumed` words especially, which the writer's recycle compare-and-swaps) while the thread
/// writes index and detail records with no drain: every call returns and every event is
/// counted.
#[test]
fn a_peer_scribbling_everything_cannot_hold_the_writer() {
    for kind in LaneKind::ALL {
        let (lane, store) = leaked(3, 512);
        let (thread, _drain) = lane.split(3, kind, 0);
        let shared: &'static Lane = thread.lane();
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let scribbler = std::thread::spawn(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ kind as u64;
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
                let ring = (r % 3) as u32;
                match (r >> 8) % 4 {
                    0 => lane_u32(shared, ((r >> 16) as usize % 96) * 4)
                        .store((r >> 32) as u32, Ordering::Relaxed),
                    1 => header_u64(store, ring, 64).store(r, Ordering::Relaxed),
                    2 => header_u64(store, ring, ((r >> 16) as usize % 16) * 8)
                        .store(r.rotate_left(17), Ordering::Relaxed),
                    _ => {
                        let data = store.data(ring);
                        data[(r >> 16) as usize % data.len()].store(r, Ordering::Relaxed);
                    }
                }
                writes += 1;
            }
            writes
        });
        const EVENTS: u64 = 200_000;
        let counters = within_deadline("scribbled lane", move || {
            let mut writer = LaneWriter::new(thread, store, DropOldest);
            for seq in 0..EVENTS {
                match kind {
                    LaneKind::Index => {
                        writer.write_index(&index(seq));
                    }
                    LaneKind::Detail => {
                        writer.write_detail(&detail48(seq)).unwrap();
                    }
                }
                assert!(writer.active_ring() < 3);
            }
            writer.counters()
        });
        stop.store(true, Ordering::Relaxed);
        assert!(scribbler.join().unwrap() > 0);
        assert_eq!(counters.events_written, EVENTS, "{kind:?}");
        assert!(counters.events_dropped <= EVENTS, "{kind:?}: {counters:?}");
    }
}
