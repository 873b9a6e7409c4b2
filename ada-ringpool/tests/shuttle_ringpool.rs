//! shuttle: many threads register in one registry, each writing sequence-numbered events into
//! its own index lane, while one drain (holding the registry's drain claim) round-robins over
//! the lanes taking and returning rings. Every event is delivered exactly once or counted as
//! dropped; the loss markers the writers put where drop-oldest overwrote events are whole.
#![cfg(shuttle)]

use ada_registry::{HeapRegistry, LaneKind, RingGeometry, SlotOwner, SlotState};
use ada_ringpool::{
    DropOldest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, LossCause, LossMarker,
    index_records,
};
use ada_shm::sync::{Arc, AtomicU32, Ordering, thread};
use ada_testkit::workload::{SeqLedger, tag};

const PRODUCERS: u32 = 6;
const EVENTS: u32 = 40;

#[test]
fn many_producers_one_drain() {
    ada_testkit::model::check(|| {
        let geometry = RingGeometry {
            index_rings: 3,
            index_ring_bytes: 128 + 4 * 32,
            detail_rings: 2,
            detail_ring_bytes: 256,
        };
        let registry = Arc::new(HeapRegistry::new(PRODUCERS, geometry));
        // Each slot's index rings, named by the slot's lane.
        let stores: Arc<Vec<HeapStore>> = Arc::new(
            (0..PRODUCERS)
                .map(|i| {
                    let lane = registry.view().lane(i, LaneKind::Index).unwrap();
                    HeapStore::new(lane, 3, geometry.index_ring_bytes)
                })
                .collect(),
        );
        let done = Arc::new(AtomicU32::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (registry, stores, done) = (registry.clone(), stores.clone(), done.clone());
                thread::spawn(move || {
                    let owner = SlotOwner {
                        thread_id: u64::from(p),
                        pid: 1,
                        generation: 0,
                        registered_ns: 0,
                    };
                    let registration = registry.view().register(owner).expect("a slot each");
                    let slot = registration.slot.index();
                    let mut w =
                        LaneWriter::new(registration.index, &stores[slot as usize], DropOldest);
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
                    // Keep the slot registered: the drain reads the counters afterwards.
                    std::mem::forget(registration.slot);
                    done.fetch_add(1, Ordering::SeqCst);
                    slot
                })
            })
            .collect();
        let mut ledger = SeqLedger::new(PRODUCERS as usize);
        let mut claim = registry.claim_drain(1).unwrap();
        let mut drains: Vec<_> = (0..PRODUCERS)
            .map(|i| LaneDrain::new(claim.lane(i, LaneKind::Index).unwrap(), &stores[i as usize]))
            .collect();
        // The generation each drain's queue positions were read for: a slot's new owner resets
        // its queues when it registers, so the drain re-reads them (as `Drainer` does).
        let mut synced = vec![0u32; PRODUCERS as usize];
        let take = |d: &mut LaneDrain<'_, &HeapStore>, ledger: &mut SeqLedger, active: bool| {
            let mut visit = |c: ada_ringpool::RingChunk<'_>| {
                for r in index_records(c.bytes) {
                    let r = r.unwrap();
                    // A loss marker (drop-oldest overwrote events) is not an event.
                    if let Some(m) = LossMarker::from_index(&r) {
                        assert_eq!(m.cause, LossCause::Overwritten, "torn marker {r:?}");
                        continue;
                    }
                    assert!(ledger.record(r.function_id), "duplicate delivery");
                }
            };
            if active {
                d.drain_active(&mut visit);
            } else {
                d.drain_submitted(0, &mut visit);
            }
        };
        let mut pass = |drains: &mut Vec<LaneDrain<'_, &HeapStore>>, ledger: &mut SeqLedger| {
            for (i, d) in drains.iter_mut().enumerate() {
                let (state, generation) = registry
                    .view()
                    .slot(i as u32)
                    .unwrap()
                    .state_and_generation();
                if !matches!(state, Ok(SlotState::Active | SlotState::Exited)) {
                    continue;
                }
                if synced[i] != generation {
                    d.resync();
                    synced[i] = generation;
                }
                take(d, ledger, false);
            }
        };
        while done.load(Ordering::SeqCst) < PRODUCERS {
            pass(&mut drains, &mut ledger);
            thread::yield_now();
        }
        pass(&mut drains, &mut ledger);
        let slots: Vec<u32> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        for d in drains.iter_mut() {
            take(d, &mut ledger, false);
            take(d, &mut ledger, true);
        }
        for (p, slot) in slots.into_iter().enumerate() {
            let c = registry
                .view()
                .lane(slot, LaneKind::Index)
                .unwrap()
                .counters();
            assert_eq!(c.events_written, u64::from(EVENTS));
            assert_eq!(
                ledger.distinct(p) + c.events_dropped,
                c.events_written,
                "producer {p}: {c:?}"
            );
        }
    });
}
