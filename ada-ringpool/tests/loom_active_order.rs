//! loom: `LaneDrain::drain_active_in_order` racing a thread that fills and swaps rings. Whatever
//! the interleaving, the drain hands records over in the order the thread wrote them (a ring
//! the thread submitted between the drain's take of the submitted rings and its copy of the
//! active one is taken first), none twice, and every record is delivered or counted as dropped.
#![cfg(loom)]

use ada_registry::{Lane, LaneConsumer, LaneKind, LaneProducer};
use ada_ringpool::{
    DropNewest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};
use ada_shm::sync::thread;

/// Records written before the race (both rings go through the drain once) and in it.
const PRELUDE: u64 = 5;
const RACED: u64 = 4;

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
fn active_copies_racing_swaps_keep_the_threads_order() {
    ada_testkit::model::check(|| {
        // 2 rings of 2 records, leaked so the writer can move to its thread after the prelude
        // (a few hundred bytes per explored execution).
        let lane: &'static Lane = Box::leak(Box::default());
        // SAFETY: no end of the lane exists yet.
        unsafe { lane.initialize(2) };
        let store: &'static HeapStore = Box::leak(Box::new(HeapStore::new(lane, 2, 128 + 2 * 32)));
        // SAFETY: the model makes exactly one pair of ends of this lane: these two.
        let thread_ends = unsafe { LaneProducer::new_unchecked(lane, LaneKind::Index, 0) };
        // SAFETY: as above.
        let drain_ends = unsafe { LaneConsumer::new_unchecked(lane, LaneKind::Index, 0) };
        let mut w = LaneWriter::new(thread_ends, store, DropNewest);
        let mut d = LaneDrain::new(drain_ends, store);
        let mut got = Vec::new();
        let mut visit = |c: ada_ringpool::RingChunk<'_>| {
            for r in index_records(c.bytes) {
                let r = r.expect("a whole record");
                assert_eq!(r.timestamp_ns, !r.function_id, "torn record: {r:?}");
                got.push(r.function_id);
            }
        };
        // Prelude, one side at a time: both rings are filled, taken and returned once, so
        // their generations are those of a running session (a ring never drained is never
        // copied live).
        for seq in 0..PRELUDE {
            w.write_index(&rec(seq));
            d.drain_submitted(0, &mut visit);
        }
        d.drain_active_in_order(&mut visit);
        let owner = thread::spawn(move || {
            for seq in PRELUDE..PRELUDE + RACED {
                w.write_index(&rec(seq));
            }
            w.counters()
        });
        // One pass racing the owner, as the controller's drain makes it.
        d.drain_submitted(2, &mut visit);
        d.drain_active_in_order(&mut visit);
        let counters = owner.join().unwrap();
        d.drain_submitted(0, &mut visit);
        d.drain_active_in_order(&mut visit);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "out of the thread's order (or twice): {got:?}"
        );
        assert_eq!(
            got.len() as u64 + counters.events_dropped,
            PRELUDE + RACED,
            "delivered {got:?}, {counters:?}"
        );
    });
}
