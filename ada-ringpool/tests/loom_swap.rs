//! loom: the ring pool swap protocol. A thread fills and swaps rings while the drain takes
//! submitted rings and returns them. Ring bytes live in loom-tracked cells, so if a ring were
//! ever owned by both sides at once (the producer writing a ring the drain reads, or a ring
//! handed out twice) loom reports the race; every event arrives exactly once or is counted.
#![cfg(loom)]

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropNewest, DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};
use ada_shm::sync::{Arc, thread};

fn rec(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: seq,
        function_id: seq,
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
        lane.initialize(2);
        let store = Arc::new(HeapStore::new(2, 128 + 32));
        let (wl, ws) = (lane.clone(), store.clone());
        let producer = thread::spawn(move || {
            let mut w = LaneWriter::new(&*wl, &*ws, LaneKind::Index, P::default());
            for seq in 0..events {
                w.write_index(&rec(seq));
            }
            w.counters()
        });
        let mut d = LaneDrain::new(&*lane, &*store, LaneKind::Index);
        let mut got = Vec::new();
        // One concurrent drain pass races the producer's swaps.
        d.drain_submitted(0, |c| {
            got.extend(index_records(c.bytes).map(|r| r.unwrap().function_id))
        });
        let counters = producer.join().unwrap();
        d.drain_submitted(0, |c| {
            got.extend(index_records(c.bytes).map(|r| r.unwrap().function_id))
        });
        d.drain_active(|c| got.extend(index_records(c.bytes).map(|r| r.unwrap().function_id)));
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
