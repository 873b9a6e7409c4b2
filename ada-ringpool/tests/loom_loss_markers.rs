//! loom: drop-newest with loss markers and the backpressure check racing the drain. The thread
//! fills a two-ring pool of two-record rings, is refused while the drain holds its rings, reads
//! the free queue for its state checks (`available_now`, Acquire) and places its loss marker
//! when a ring comes back; the drain takes and returns rings concurrently. Every event arrives
//! once and intact or is counted as refused, a marker never announces more than was lost, and
//! markers are whole records (a torn marker would not decode).
#![cfg(loom)]

use ada_backpressure::DropPolicy;
use ada_registry::{Lane, LaneConsumer, LaneKind, LaneProducer};
use ada_ringpool::{
    EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, LossCause, LossMarker, index_records,
};
use ada_shm::sync::{Arc, thread};

const EVENTS: u64 = 6;

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
fn drop_newest_markers_racing_the_drain() {
    ada_testkit::model::check(|| {
        let lane = Arc::new(Lane::default());
        // SAFETY: no end of the lane exists yet.
        unsafe { lane.initialize(2) };
        // Two rings of two records each.
        let store = Arc::new(HeapStore::new(&lane, 2, 128 + 64));
        let (wl, ws) = (lane.clone(), store.clone());
        let producer = thread::spawn(move || {
            // SAFETY: the model makes exactly one pair of ends of this lane: these thread ends
            // and the drain ends below.
            let ends = unsafe { LaneProducer::new_unchecked(&wl, LaneKind::Index, 0) };
            let mut w = LaneWriter::new(ends, &*ws, DropPolicy::DropNewest);
            for seq in 0..EVENTS {
                w.write_index(&rec(seq));
            }
            w.settle();
            w.counters()
        });
        // SAFETY: see the producer: the one drain end pair.
        let ends = unsafe { LaneConsumer::new_unchecked(&lane, LaneKind::Index, 0) };
        let mut d = LaneDrain::new(ends, &*store);
        let (mut got, mut marked) = (Vec::new(), 0u64);
        let mut visit = |c: ada_ringpool::RingChunk<'_>| {
            for r in index_records(c.bytes) {
                let r = r.unwrap();
                if let Some(m) = LossMarker::from_index(&r) {
                    assert_eq!(m.cause, LossCause::Refused, "torn marker {r:?}");
                    assert!(m.count >= 1 && m.first_ns != 0, "torn marker {r:?}");
                    marked += m.count;
                    continue;
                }
                assert_eq!(r.timestamp_ns, !r.function_id, "torn or stale record {r:?}");
                assert_eq!(r.kind, EventKind::Call as u32, "torn or stale record {r:?}");
                got.push(r.function_id);
            }
        };
        d.drain_submitted(0, &mut visit);
        let counters = producer.join().unwrap();
        d.drain_submitted(0, &mut visit);
        d.drain_active(&mut visit);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "delivered twice: {got:?}");
        assert_eq!(counters.refused, counters.events_dropped);
        assert_eq!(
            got.len() as u64 + counters.refused,
            EVENTS,
            "{got:?} {counters:?}"
        );
        assert!(marked <= counters.refused, "{marked} > {counters:?}");
        // Drop-newest keeps the oldest: what arrived is a prefix of each stretch.
        assert_eq!(got.first(), Some(&1));
    });
}
