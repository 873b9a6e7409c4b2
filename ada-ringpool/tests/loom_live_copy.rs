//! loom: the drain copies a live thread's active ring (`LaneDrain::drain_active`) while the
//! thread keeps writing into it and, with its pool exhausted, recycles it (drop-oldest). The copy
//! is made of atomic word loads and kept only if the `consumed` compare-and-swap says the thread
//! did not recycle the ring meanwhile. Whatever the interleaving: no record handed to the drain
//! is torn (every record checks out: `timestamp == !function_id`), none is delivered twice, and
//! every record written is delivered or counted as dropped, never both.
#![cfg(loom)]

use ada_registry::{Lane, LaneConsumer, LaneKind, LaneProducer};
use ada_ringpool::{
    DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};
use ada_shm::sync::{Arc, thread};

const EVENTS: u64 = 5;

fn rec(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: !(seq + 1),
        function_id: seq + 1,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

#[test]
fn live_copy_racing_writes_and_recycle_is_never_torn_or_double_counted() {
    ada_testkit::model::check(|| {
        // 2 rings of 2 records: records 0-1 fill ring 0, record 2 swaps to ring 1, record 4
        // finds no free ring (the drain does not return rings while the thread runs) and
        // recycles ring 1 under the drain's live copies.
        let lane = Arc::new(Lane::default());
        // SAFETY: no end of the lane exists yet.
        unsafe { lane.initialize(2) };
        let store = Arc::new(HeapStore::new(&lane, 2, 128 + 2 * 32));
        let (wl, ws) = (lane.clone(), store.clone());
        let owner = thread::spawn(move || {
            // SAFETY: the model makes exactly one pair of ends of this lane: these and the
            // drain's below.
            let ends = unsafe { LaneProducer::new_unchecked(&wl, LaneKind::Index, 0) };
            let mut w = LaneWriter::new(ends, &*ws, DropOldest);
            for seq in 0..EVENTS {
                w.write_index(&rec(seq));
            }
            w.counters()
        });
        // SAFETY: see the owner.
        let ends = unsafe { LaneConsumer::new_unchecked(&lane, LaneKind::Index, 0) };
        let mut d = LaneDrain::new(ends, &*store);
        let mut got = Vec::new();
        let mut visit = |c: ada_ringpool::RingChunk<'_>| {
            for r in index_records(c.bytes) {
                let r = r.expect("a whole record");
                assert_eq!(
                    r.timestamp_ns, !r.function_id,
                    "torn record persisted: {r:?}"
                );
                assert_eq!(
                    r.kind,
                    EventKind::Call as u32,
                    "torn record persisted: {r:?}"
                );
                got.push(r.function_id);
            }
        };
        // Live copies racing the owner.
        d.drain_active(&mut visit);
        d.drain_active(&mut visit);
        let counters = owner.join().unwrap();
        // The thread is done: take everything left.
        d.drain_submitted(0, &mut visit);
        d.drain_active(&mut visit);
        let mut unique = got.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "delivered twice: {got:?}");
        assert_eq!(
            got.len() as u64 + counters.events_dropped,
            EVENTS,
            "delivered {got:?}, {counters:?}"
        );
    });
}
