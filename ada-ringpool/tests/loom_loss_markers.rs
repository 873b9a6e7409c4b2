//! loom: drop-newest with loss markers and the backpressure check racing the drain. The thread
//! fills a two-ring pool of two-record rings, is refused while the drain holds its rings, reads
//! the free queue for its state checks (`available_now`, Acquire) and places its loss marker
//! when a ring comes back; the drain takes and returns rings concurrently. Every event arrives
//! once and intact or is counted as refused, a marker never announces more than was lost, and
//! markers are whole records (a torn marker would not decode).
//!
//! The lane, the writer and the drain are all built before the drain thread is spawned: a
//! thread that builds a queue end itself reads its own position word before it writes it,
//! which hides the race from loom (see `ada_testkit::model`).
#![cfg(loom)]

mod model_kit;

use ada_backpressure::DropPolicy;
use ada_registry::{Lane, LaneKind};
use ada_ringpool::{HeapStore, LaneDrain, LaneWriter, LossCause};
use ada_shm::sync::thread;
use ada_testkit::model::{Witness, leak};
use model_kit::{Received, rec};

const EVENTS: u64 = 6;

#[test]
fn drop_newest_markers_racing_the_drain() {
    let (took_ring, marked) = (Witness::new(), Witness::new());
    let (saw_ring, saw_marker) = (took_ring.clone(), marked.clone());
    ada_testkit::model::check(move || {
        // Two rings of two records each.
        let lane = leak(Lane::default());
        let store = &*leak(HeapStore::new(lane, 2, 128 + 64));
        let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
        let mut w = LaneWriter::new(thread_ends, store, DropPolicy::DropNewest);
        let mut d = LaneDrain::new(drain_ends, store);
        // One drain pass takes and returns rings while the thread writes.
        let saw_ring = saw_ring.clone();
        let drain = thread::spawn(move || {
            let mut got = Received::expecting(LossCause::Refused);
            if d.drain_submitted(0, |c| got.take(c)).rings > 0 {
                saw_ring.hit();
            }
            (d, got)
        });
        for seq in 0..EVENTS {
            w.write_index(&rec(seq));
        }
        w.settle();
        let counters = w.counters();
        let (mut d, mut got) = drain.join().unwrap();
        d.drain_submitted(0, |c| got.take(c));
        d.drain_active(|c| got.take(c));
        let mut sorted = got.ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            got.ids.len(),
            "delivered twice: {:?}",
            got.ids
        );
        assert_eq!(counters.refused, counters.events_dropped);
        assert_eq!(
            got.ids.len() as u64 + counters.refused,
            EVENTS,
            "{:?} {counters:?}",
            got.ids
        );
        assert!(
            got.marked <= counters.refused,
            "{} > {counters:?}",
            got.marked
        );
        // Drop-newest keeps the oldest: what arrived is a prefix of each stretch.
        assert_eq!(got.ids.first(), Some(&1));
        if got.marked > 0 {
            saw_marker.hit();
        }
    });
    took_ring.expect_reached("the drain took and returned a ring while the writer wrote");
    marked.expect_reached("a loss marker reached the drain");
}
