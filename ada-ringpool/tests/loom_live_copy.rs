//! loom: the drain copies a live thread's active ring (`LaneDrain::drain_active`) while the
//! thread keeps writing into it and, with its pool exhausted, recycles it (drop-oldest). The copy
//! is made of atomic word loads and kept only if the `consumed` compare-and-swap says the thread
//! did not recycle the ring meanwhile. Whatever the interleaving: no record handed to the drain
//! is torn (every record checks out: `timestamp == !function_id`), none is delivered twice, and
//! every record written is delivered or counted as dropped, never both. The loss markers the
//! thread writes after a recycle are whole records of cause "overwritten" and never announce
//! more than was overwritten.
//!
//! The lane, the writer and the drain are all built before the drain thread is spawned: a
//! thread that builds a queue end itself reads its own position word before it writes it,
//! which hides the race from loom (see `ada_testkit::model`).
#![cfg(loom)]

mod model_kit;

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{DropOldest, HeapStore, LaneDrain, LaneWriter, LossCause};
use ada_shm::sync::thread;
use ada_testkit::model::{Witness, leak};
use model_kit::{Received, rec};

const EVENTS: u64 = 5;

#[test]
fn live_copy_racing_writes_and_recycle_is_never_torn_or_double_counted() {
    let (copied, raced) = (Witness::new(), Witness::new());
    let (saw_copy, saw_race) = (copied.clone(), raced.clone());
    ada_testkit::model::check(move || {
        // 2 rings of 2 records: records 0-1 fill ring 0, record 2 swaps to ring 1, record 4
        // finds no free ring (the drain does not return rings while the thread runs) and
        // recycles ring 1 under the drain's live copies.
        let lane = leak(Lane::default());
        let store = &*leak(HeapStore::new(lane, 2, 128 + 2 * 32));
        let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
        let mut w = LaneWriter::new(thread_ends, store, DropOldest);
        let mut d = LaneDrain::new(drain_ends, store);
        // Live copies racing the owner.
        let (saw_copy, saw_race) = (saw_copy.clone(), saw_race.clone());
        let drain = thread::spawn(move || {
            let mut got = Received::expecting(LossCause::Overwritten);
            let mut stats = d.drain_active(|c| got.take(c));
            stats.add(&d.drain_active(|c| got.take(c)));
            if stats.bytes > 0 {
                saw_copy.hit();
            }
            if stats.raced_copies > 0 {
                saw_race.hit();
            }
            (d, got)
        });
        for seq in 0..EVENTS {
            w.write_index(&rec(seq));
        }
        let counters = w.counters();
        let (mut d, mut got) = drain.join().unwrap();
        // The thread is done: take everything left.
        d.drain_submitted(0, |c| got.take(c));
        d.drain_active(|c| got.take(c));
        let mut unique = got.ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            got.ids.len(),
            "delivered twice: {:?}",
            got.ids
        );
        assert_eq!(
            got.ids.len() as u64 + counters.events_dropped,
            EVENTS,
            "delivered {:?}, {counters:?}",
            got.ids
        );
        assert_eq!(
            counters.overwritten, counters.events_dropped,
            "{counters:?}"
        );
        assert!(
            got.marked <= counters.overwritten,
            "markers announce {} > {counters:?}",
            got.marked
        );
    });
    copied.expect_reached("a live copy took records while the owner wrote");
    raced.expect_reached("a live copy was abandoned because the owner recycled the ring");
}
