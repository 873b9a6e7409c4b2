//! Integration on a real shared-memory segment: 8 registered threads write sequence-numbered
//! index events while a drain thread consumes their lanes. Every event is drained exactly once or
//! counted as dropped; exited threads' slots are drained (active ring included), reset and freed.
//! Every dropped event is also announced by a loss marker in the stream.

use ada_registry::{LaneKind, Registry, RegistryConfig, SlotOwner, SlotState};
use ada_ringpool::{
    DropOldest, EventKind, IndexRecord, LaneDrain, LaneWriter, LossCause, LossMarker, SegmentStore,
    index_records,
};
use ada_shm::sync::{AtomicBool, Ordering};
use ada_testkit::workload::{SeqLedger, tag, untag};

const PRODUCERS: u32 = 8;
const EVENTS: u32 = 100_000;

/// The drain's state: one `LaneDrain` per slot (made once from the drain claim) and the slot
/// generation its queue positions were read for.
type Drains<'r> = Vec<(LaneDrain<'r, SegmentStore<'r>>, u32)>;

fn drain_once(
    reg: &Registry,
    drains: &mut Drains<'_>,
    ledger: &mut SeqLedger,
    marked: &mut u64,
) -> usize {
    let mut live = 0;
    for slot in reg.view().live_slots() {
        live += 1;
        let (d, synced) = &mut drains[slot.index as usize];
        if *synced != slot.owner.generation {
            // A new owner reset the lane's queues when it registered.
            d.resync();
            *synced = slot.owner.generation;
        }
        let mut visit = |c: ada_ringpool::RingChunk<'_>| {
            for r in index_records(c.bytes) {
                let r = r.unwrap();
                if let Some(m) = LossMarker::from_index(&r) {
                    assert_eq!(m.cause, LossCause::Overwritten, "drop-oldest overwrites");
                    assert!(m.count > 0 && m.first_ns <= m.last_ns, "{m:?}");
                    *marked += m.count;
                    continue;
                }
                assert_eq!(
                    untag(r.function_id).0,
                    r.thread_id,
                    "record in the wrong lane"
                );
                assert!(
                    ledger.record(r.function_id),
                    "delivered twice: {:?}",
                    untag(r.function_id)
                );
            }
        };
        d.drain_submitted(0, &mut visit);
        if slot.state == SlotState::Exited {
            // The thread is gone: take its active ring too, reset everything, free the slot.
            d.drain_submitted(0, &mut visit);
            d.drain_active(&mut visit);
            d.reset_all();
            assert!(reg.view().reclaim(slot.index));
        }
    }
    live
}

#[test]
fn eight_producers_every_event_drained_once_or_counted() {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 8,
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let ((ledger, marked), counters) = std::thread::scope(|s| {
        let drain = s.spawn(|| {
            let mut claim = reg.claim_drain().unwrap();
            let mut drains: Drains<'_> = (0..reg.capacity())
                .map(|slot| {
                    let ends = claim.lane(slot, LaneKind::Index).unwrap();
                    let store = SegmentStore::new(&reg, slot, LaneKind::Index).unwrap();
                    (LaneDrain::new(ends, store), 0)
                })
                .collect();
            let mut ledger = SeqLedger::new(PRODUCERS as usize);
            let mut marked = 0;
            while !stop.load(Ordering::Acquire) {
                drain_once(&reg, &mut drains, &mut ledger, &mut marked);
                std::thread::yield_now();
            }
            // Final drain: until every slot is reclaimed.
            while drain_once(&reg, &mut drains, &mut ledger, &mut marked) > 0 {}
            (ledger, marked)
        });
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let reg = &reg;
                s.spawn(move || {
                    let registration = reg.view().register(SlotOwner::current_thread()).unwrap();
                    let slot = registration.slot.index();
                    let store = SegmentStore::new(reg, slot, LaneKind::Index).unwrap();
                    let mut w = LaneWriter::new(registration.index, store, DropOldest);
                    for seq in 0..EVENTS {
                        w.write_index(&IndexRecord {
                            timestamp_ns: u64::from(seq),
                            function_id: tag(p, seq),
                            thread_id: p,
                            kind: EventKind::Call as u32,
                            call_depth: 0,
                            reserved: 0,
                        });
                    }
                    w.settle();
                    let counters = w.counters();
                    // Unregisters: the slot becomes EXITED for the drain.
                    drop(registration.slot);
                    counters
                })
            })
            .collect();
        let counters: Vec<_> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Release);
        (drain.join().unwrap(), counters)
    });
    let mut dropped_total = 0;
    for (p, c) in counters.iter().enumerate() {
        assert_eq!(c.events_written, u64::from(EVENTS));
        assert_eq!(
            ledger.distinct(p) + c.events_dropped,
            c.events_written,
            "producer {p}: {c:?}"
        );
        assert_eq!(
            c.events_dropped, c.overwritten,
            "producer {p}: only overwrites"
        );
        dropped_total += c.events_dropped;
    }
    assert_eq!(marked, dropped_total, "every loss is marked in the stream");
    assert_eq!(ledger.duplicates(), 0);
    assert_eq!(
        reg.view().census()[SlotState::Free as usize],
        8,
        "every slot freed"
    );
    eprintln!(
        "dropped {dropped_total} of {} events",
        u64::from(EVENTS) * u64::from(PRODUCERS)
    );
}

#[test]
fn memory_per_thread_at_default_sizes_meets_the_goal() {
    let per_thread = ada_ringpool::memory_per_thread(&RegistryConfig::default().geometry);
    assert!(per_thread <= 256 * 1024, "{per_thread} bytes per thread");
    assert_eq!(per_thread, RegistryConfig::default().bytes_per_thread());
}
