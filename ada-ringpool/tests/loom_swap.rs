//! loom: the ring pool swap protocol. A thread fills and swaps rings while the drain takes
//! submitted rings and returns them. Ring bytes are loom-tracked atomic words: if a ring were
//! ever owned by both sides at once (the drain reading a ring the producer still writes, or a
//! ring handed out twice), loom would let the drain read stale or mixed words, which the
//! per-record check (`timestamp == !function_id`) catches; every event arrives exactly once,
//! intact, or is counted as dropped.
//!
//! The lane, the writer and the drain are all built before the drain thread is spawned: a
//! thread that builds a queue end itself reads its own position word before it writes it,
//! which hides the race from loom (see `ada_testkit::model`).
#![cfg(loom)]

mod model_kit;

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropNewest, DropOldest, HeapStore, LaneDrain, LaneWriter, RingChunk, index_records,
};
use ada_shm::sync::thread;
use ada_testkit::model::{Witness, leak};
use model_kit::{check_event, rec};

/// Checks every record of `chunk` and collects its id.
fn collect(chunk: RingChunk<'_>, got: &mut Vec<u64>) {
    for r in index_records(chunk.bytes) {
        got.push(check_event(&r.unwrap()));
    }
}

fn run<P: ada_ringpool::PoolPolicy + Default + 'static>(events: u64) {
    let took_ring = Witness::new();
    let witness = took_ring.clone();
    ada_testkit::model::check(move || {
        // 2 rings of one record each: every write after the first swaps.
        let lane = leak(Lane::default());
        let store = &*leak(HeapStore::new(lane, 2, 128 + 32));
        let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
        let mut w = LaneWriter::new(thread_ends, store, P::default());
        let mut d = LaneDrain::new(drain_ends, store);
        // One concurrent drain pass races the writer's swaps.
        let witness = witness.clone();
        let drain = thread::spawn(move || {
            let mut got = Vec::new();
            if d.drain_submitted(0, |c| collect(c, &mut got)).rings > 0 {
                witness.hit();
            }
            (d, got)
        });
        for seq in 0..events {
            w.write_index(&rec(seq));
        }
        let counters = w.counters();
        let (mut d, mut got) = drain.join().unwrap();
        d.drain_submitted(0, |c| collect(c, &mut got));
        d.drain_active(|c| collect(c, &mut got));
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
    took_ring.expect_reached("the drain took and returned a ring while the writer swapped");
}

#[test]
fn swap_racing_drain_return_drop_oldest() {
    run::<DropOldest>(3);
}

#[test]
fn swap_racing_drain_return_drop_newest() {
    run::<DropNewest>(3);
}
