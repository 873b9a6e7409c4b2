//! Spill before drop: when a lane's pool is exhausted the writer first offers the event to its
//! policy's [`PoolPolicy::spill`] (the agent's shared fallback ring); what it takes is counted as
//! `spilled`, never lost and never marked as a gap; what it refuses meets the drop policy as
//! before. The accounting balances: `written = in rings + spilled + dropped`.

mod common;

use ada_backpressure::DropPolicy;
use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropAction, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, PoolPolicy, Written,
};
use common::drain_index;

/// Spills up to `room` index records into `taken` (as decoded sequence numbers), then refuses.
struct SpillInto {
    drop: DropPolicy,
    room: usize,
    taken: Vec<u64>,
}

impl PoolPolicy for SpillInto {
    fn spill(&mut self, lane: LaneKind, record: &[u8]) -> bool {
        if lane != LaneKind::Index || self.taken.len() == self.room {
            return false;
        }
        let r = ada_ringpool::index_records(record).next().unwrap().unwrap();
        self.taken.push(r.function_id);
        true
    }
    fn on_exhaustion(&mut self, lane: LaneKind) -> DropAction {
        self.drop.on_exhaustion(lane)
    }
}

fn rec(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: seq + 1,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

type Writer = LaneWriter<'static, &'static HeapStore, SpillInto>;

fn lane(drop: DropPolicy, room: usize) -> (Writer, LaneDrain<'static, &'static HeapStore>) {
    let lane: &'static mut Lane = Box::leak(Box::default());
    let store: &'static HeapStore = Box::leak(Box::new(HeapStore::new(lane, 2, 256)));
    let (thread, drain) = lane.split(2, LaneKind::Index, 0);
    let policy = SpillInto {
        drop,
        room,
        taken: Vec::new(),
    };
    (
        LaneWriter::new(thread, store, policy),
        LaneDrain::new(drain, store),
    )
}

#[test]
fn an_exhausted_pool_spills_first_then_drops_by_policy_and_every_event_is_accounted_once() {
    for drop in [DropPolicy::DropNewest, DropPolicy::DropOldest] {
        // Two rings of four records: 8 fit, the next 3 spill, the rest meet the drop policy.
        let (mut w, mut d) = lane(drop, 3);
        let outcomes: Vec<Written> = (0..14).map(|s| w.write_index(&rec(s))).collect();
        assert_eq!(outcomes[8..11], [Written::Spilled; 3], "{drop:?}");
        assert!(
            outcomes[11..].iter().all(|o| *o != Written::Spilled),
            "{drop:?}"
        );
        let c = w.counters();
        assert_eq!((c.events_written, c.spilled), (14, 3), "{drop:?}");
        assert_eq!(w.policy_mut().taken, [8, 9, 10], "{drop:?}");
        // Nothing was lost to the spill: the loss counts only what the policy then dropped
        // (drop-newest: events 11..14; drop-oldest: the full active ring, events 4..8).
        let dropped = match drop {
            DropPolicy::DropNewest => 3,
            DropPolicy::DropOldest => 4,
        };
        assert_eq!(c.events_dropped, dropped, "{drop:?}");
        // The drain returns the submitted ring; the writer then marks its gap there.
        let (mut seqs, mut markers) = drain_index(&mut d, false);
        w.settle();
        let (more, more_markers) = drain_index(&mut d, true);
        seqs.extend(more);
        markers.extend(more_markers);
        let lost: u64 = markers.iter().map(|m| m.count).sum();
        assert_eq!(lost, dropped, "one gap, marked once: {drop:?} {markers:?}");
        let in_rings = seqs.len() as u64;
        assert_eq!(
            c.events_written,
            in_rings + c.spilled + c.events_dropped,
            "{drop:?}"
        );
        // No event is both in a ring and spilled.
        assert!(
            seqs.iter().all(|s| !(8..11).contains(s)),
            "{drop:?} {seqs:?}"
        );
    }
}

#[test]
fn a_lane_whose_pool_returns_stops_spilling() {
    let (mut w, mut d) = lane(DropPolicy::DropNewest, usize::MAX);
    for s in 0..10 {
        w.write_index(&rec(s));
    }
    assert_eq!(w.counters().spilled, 2);
    let (seqs, _) = drain_index(&mut d, false);
    assert_eq!(seqs, (0..4).collect::<Vec<_>>(), "the submitted ring");
    assert_eq!(w.write_index(&rec(10)), Written::Swapped);
    assert_eq!(w.counters().spilled, 2, "back in its own rings");
    assert_eq!(w.counters().events_dropped, 0);
}

/// Room for 2 spills, then none, then room again: drop-newest, having refused, refuses until a
/// ring returns (no spill into the room that came back), so the kept events have no hole and
/// the loss is one stretch.
#[test]
fn drop_newest_does_not_spill_again_until_a_ring_returns() {
    let (mut w, mut d) = lane(DropPolicy::DropNewest, 2);
    for s in 0..12 {
        w.write_index(&rec(s));
    }
    // 8 in rings, 8 and 9 spilled, 10 and 11 refused.
    assert_eq!((w.counters().spilled, w.counters().refused), (2, 2));
    w.policy_mut().room = usize::MAX;
    assert_eq!(w.write_index(&rec(12)), Written::DroppedNewest);
    assert_eq!(w.counters().spilled, 2, "still refusing");
    let (seqs, _) = drain_index(&mut d, false);
    assert_eq!(seqs, (0..4).collect::<Vec<_>>());
    assert_eq!(w.write_index(&rec(13)), Written::Swapped);
    let c = w.counters();
    assert_eq!((c.spilled, c.refused, c.events_written), (2, 3, 14));
}
