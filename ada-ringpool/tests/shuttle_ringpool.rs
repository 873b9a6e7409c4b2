//! shuttle: many threads, each with its own lane, write sequence-numbered events while one drain
//! thread round-robins over the lanes taking and returning rings. Every event is delivered
//! exactly once or counted as dropped.
#![cfg(shuttle)]

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};
use ada_shm::sync::{Arc, AtomicU32, Ordering, thread};
use ada_testkit::workload::{SeqLedger, tag};

const PRODUCERS: u32 = 6;
const EVENTS: u32 = 40;

#[test]
fn many_producers_one_drain() {
    ada_testkit::model::check(|| {
        let lanes: Arc<Vec<(Lane, HeapStore)>> = Arc::new(
            (0..PRODUCERS)
                .map(|_| {
                    let lane = Lane::default();
                    lane.initialize(3);
                    (lane, HeapStore::new(3, 128 + 4 * 32))
                })
                .collect(),
        );
        let done = Arc::new(AtomicU32::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (lanes, done) = (lanes.clone(), done.clone());
                thread::spawn(move || {
                    let (lane, store) = &lanes[p as usize];
                    let mut w = LaneWriter::new(lane, store, LaneKind::Index, DropOldest);
                    for seq in 0..EVENTS {
                        let id = tag(p, seq);
                        w.write_index(&IndexRecord {
                            timestamp_ns: 0,
                            function_id: id,
                            thread_id: p,
                            kind: EventKind::Call as u32,
                            call_depth: 0,
                            reserved: 0,
                        });
                        if seq % 8 == 0 {
                            thread::yield_now();
                        }
                    }
                    w.flush_counters();
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let mut ledger = SeqLedger::new(PRODUCERS as usize);
        let mut drains: Vec<_> = lanes
            .iter()
            .map(|(l, s)| LaneDrain::new(l, s, LaneKind::Index))
            .collect();
        let take = |d: &mut LaneDrain<'_, &HeapStore>, ledger: &mut SeqLedger, active: bool| {
            let mut visit = |c: ada_ringpool::RingChunk<'_>| {
                for r in index_records(c.bytes) {
                    assert!(ledger.record(r.unwrap().function_id), "duplicate delivery");
                }
            };
            if active {
                d.drain_active(&mut visit);
            } else {
                d.drain_submitted(0, &mut visit);
            }
        };
        while done.load(Ordering::SeqCst) < PRODUCERS {
            for d in drains.iter_mut() {
                take(d, &mut ledger, false);
            }
            thread::yield_now();
        }
        for p in producers {
            p.join().unwrap();
        }
        for d in drains.iter_mut() {
            take(d, &mut ledger, false);
            take(d, &mut ledger, true);
        }
        for (p, (lane, _)) in lanes.iter().enumerate() {
            let c = lane.counters();
            assert_eq!(c.events_written, u64::from(EVENTS));
            assert_eq!(
                ledger.distinct(p) + c.events_dropped,
                c.events_written,
                "producer {p}: {c:?}"
            );
        }
    });
}
