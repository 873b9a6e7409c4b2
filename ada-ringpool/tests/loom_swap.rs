//! loom: the ring pool swap protocol. A thread fills and swaps rings while the drain takes
//! submitted rings and returns them. Ring bytes are loom-tracked atomic words: if a ring were
//! ever owned by both sides at once (the drain reading a ring the producer still writes, or a
//! ring handed out twice), loom would let the drain read stale or mixed words, which the
//! per-record check (`timestamp == !function_id`) catches; every event arrives exactly once,
//! intact, or is counted as dropped.
#![cfg(loom)]

use ada_registry::{Lane, LaneConsumer, LaneKind, LaneProducer};
use ada_ringpool::{
    DropNewest, DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};
use ada_shm::sync::{Arc, thread};

/// Record `seq`: its id is `seq + 1` (never the 0 of an empty ring) and its timestamp the id's
/// complement, so a record made of words from different writes does not check out.
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

fn run<P: ada_ringpool::PoolPolicy + Default + Send + 'static>(events: u64) {
    ada_testkit::model::check(move || {
        // 2 rings of one record each: every write after the first swaps.
        let lane = Arc::new(Lane::default());
        // SAFETY: no end of the lane exists yet.
        unsafe { lane.initialize(2) };
        let store = Arc::new(HeapStore::new(&lane, 2, 128 + 32));
        let (wl, ws) = (lane.clone(), store.clone());
        let producer = thread::spawn(move || {
            // SAFETY: the model makes exactly one pair of ends of this lane: these thread ends
            // and the drain ends below.
            let ends = unsafe { LaneProducer::new_unchecked(&wl, LaneKind::Index, 0) };
            let mut w = LaneWriter::new(ends, &*ws, P::default());
            for seq in 0..events {
                w.write_index(&rec(seq));
            }
            w.counters()
        });
        // SAFETY: see the producer: the one drain end pair.
        let ends = unsafe { LaneConsumer::new_unchecked(&lane, LaneKind::Index, 0) };
        let mut d = LaneDrain::new(ends, &*store);
        let mut got = Vec::new();
        let mut visit = |c: ada_ringpool::RingChunk<'_>| {
            for r in index_records(c.bytes) {
                let r = r.unwrap();
                assert_eq!(r.timestamp_ns, !r.function_id, "torn or stale record {r:?}");
                assert_eq!(r.kind, EventKind::Call as u32, "torn or stale record {r:?}");
                got.push(r.function_id);
            }
        };
        // One concurrent drain pass races the producer's swaps.
        d.drain_submitted(0, &mut visit);
        let counters = producer.join().unwrap();
        d.drain_submitted(0, &mut visit);
        d.drain_active(&mut visit);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            got.len(),
            "an event was delivered twice: {got:?}"
        );
        assert_eq!(
            got.len() as u64 + counters.events_dropped,
            events,
            "{got:?} {counters:?}"
        );
    });
}

#[test]
fn swap_racing_drain_return_drop_oldest() {
    run::<DropOldest>(3);
}

#[test]
fn swap_racing_drain_return_drop_newest() {
    run::<DropNewest>(3);
}
