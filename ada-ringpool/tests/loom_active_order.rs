//! loom: `LaneDrain::drain_active_in_order` racing a thread that fills and swaps rings. Whatever
//! the interleaving, the drain hands records over in the order the thread wrote them (a ring
//! the thread submitted between the drain's take of the submitted rings and its copy of the
//! active one is taken first), none twice, and every record is delivered or counted as dropped.
//! (With the plain `drain_active` in its place, loom finds `[1, 2, 3, 4, 5, 7, 8, 6]`; checking
//! the submit queue before reading the active ring's header instead of after it, loom finds
//! `[.., 6, 9, 7, 8]`: a stale active-ring index, of a ring returned and active again since.)
//!
//! The lane, the writer and the drain are built before the drain thread is spawned, and both
//! rings go through the drain once first (a ring never drained is never copied live: its
//! generations are those of a fresh lane), see `ada_testkit::model`.
#![cfg(loom)]

mod model_kit;

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropNewest, HeapStore, LaneDrain, LaneWriter, LossMarker, RingChunk, index_records,
};
use ada_shm::sync::thread;
use ada_testkit::model::{Witness, leak};
use model_kit::{check_event, rec};

/// Records written before the race (both rings go through the drain once) and in it.
const PRELUDE: u64 = 5;
const RACED: u64 = 4;

/// Event ids in the order the drain handed them over (loss markers, not events, are skipped).
fn take(ids: &mut Vec<u64>, chunk: RingChunk<'_>) {
    for r in index_records(chunk.bytes) {
        let r = r.expect("a whole record");
        if LossMarker::from_index(&r).is_some() {
            continue;
        }
        ids.push(check_event(&r));
    }
}

#[test]
fn active_copies_racing_swaps_keep_the_threads_order() {
    let (overtaken, copied) = (Witness::new(), Witness::new());
    let (saw_overtake, saw_copy) = (overtaken.clone(), copied.clone());
    ada_testkit::model::check(move || {
        // 2 rings of 2 records.
        let lane = leak(Lane::default());
        let store = &*leak(HeapStore::new(lane, 2, 128 + 2 * 32));
        let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
        let mut w = LaneWriter::new(thread_ends, store, DropNewest);
        let mut d = LaneDrain::new(drain_ends, store);
        let mut ids = Vec::new();
        // Prelude, one side at a time: both rings filled, taken and returned once.
        for seq in 0..PRELUDE {
            w.write_index(&rec(seq));
            d.drain_submitted(0, |c| take(&mut ids, c));
        }
        d.drain_active_in_order(|c| take(&mut ids, c));
        // One pass racing the owner, as the controller's drain makes it.
        let (saw_overtake, saw_copy) = (saw_overtake.clone(), saw_copy.clone());
        let drain = thread::spawn(move || {
            let mut ids = ids;
            d.drain_submitted(2, |c| take(&mut ids, c));
            let stats = d.drain_active_in_order(|c| take(&mut ids, c));
            if stats.rings > 0 {
                // A ring was submitted after `drain_submitted` looked: taken first.
                saw_overtake.hit();
            }
            if stats.bytes > 0 {
                saw_copy.hit();
            }
            (d, ids)
        });
        for seq in PRELUDE..PRELUDE + RACED {
            w.write_index(&rec(seq));
        }
        let counters = w.counters();
        let (mut d, mut ids) = drain.join().unwrap();
        d.drain_submitted(0, |c| take(&mut ids, c));
        d.drain_active_in_order(|c| take(&mut ids, c));
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "out of the thread's order (or twice): {ids:?}"
        );
        assert_eq!(
            ids.len() as u64 + counters.events_dropped,
            PRELUDE + RACED,
            "delivered {ids:?}, {counters:?}"
        );
    });
    overtaken.expect_reached("the owner submitted a ring between the drain's two takes");
    copied.expect_reached("the racing pass copied records from the active ring");
}
