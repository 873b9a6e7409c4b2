//! The swap protocol on heap rings: free queue right from registration, swap order, marking,
//! exhaustion under both policies with exact counts, active-ring salvage without double counts,
//! and a proptest that random detail records survive many trips around the pool byte-exact.

mod common;

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DetailRecord, DetailRecords, DropNewest, DropOldest, EventKind, HeapStore, IndexRecord,
    LaneDrain, LaneWriter, LossCause, LossMarker, PoolPolicy, Written, index_records,
};
use common::drain_index;
use proptest::prelude::*;

fn rec(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: seq,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

/// `rings` rings of 128 data bytes = 4 index records each (the lane is boxed: the store knows
/// it by address). Writer and drain share the store through references.
fn small_lane(rings: u32) -> (Box<Lane>, HeapStore) {
    let lane = Box::new(Lane::default());
    let store = HeapStore::new(&lane, rings, 256);
    (lane, store)
}

/// Splits `lane` into its one writer and its one drain (and a shared view of the lane).
fn pair<'a, P: PoolPolicy>(
    lane: &'a mut Lane,
    store: &'a HeapStore,
    rings: u32,
    kind: LaneKind,
    policy: P,
) -> (
    LaneWriter<'a, &'a HeapStore, P>,
    LaneDrain<'a, &'a HeapStore>,
    &'a Lane,
) {
    let (thread, drain) = lane.split(rings, kind, 0);
    let lane = thread.lane();
    (
        LaneWriter::new(thread, store, policy),
        LaneDrain::new(drain, store),
        lane,
    )
}

fn drained_seqs(d: &mut LaneDrain<'_, &HeapStore>) -> Vec<u64> {
    let mut out = Vec::new();
    d.drain_submitted(0, |c| {
        out.extend(index_records(c.bytes).map(|r| r.unwrap().function_id))
    });
    out
}

fn loss(cause: LossCause, count: u64, first_ns: u64, last_ns: u64) -> LossMarker {
    LossMarker {
        cause,
        count,
        first_ns,
        last_ns,
    }
}

#[test]
fn swap_submits_full_rings_in_order_and_recycles_them() {
    let (mut lane, store) = small_lane(4);
    let (mut w, mut d, lane) = pair(&mut lane, &store, 4, LaneKind::Index, DropOldest);
    assert_eq!(
        lane.free_queue().len(),
        3,
        "free queue initialised at registration"
    );
    let mut seen = Vec::new();
    for seq in 0..100u64 {
        let out = w.write_index(&rec(seq));
        assert_ne!(out, Written::DroppedNewest);
        assert!(
            !matches!(out, Written::DroppedOldest { .. }),
            "drain keeps up: no drops"
        );
        if seq % 7 == 0 {
            seen.extend(drained_seqs(&mut d));
        }
    }
    seen.extend(drained_seqs(&mut d));
    d.drain_active(|c| seen.extend(index_records(c.bytes).map(|r| r.unwrap().function_id)));
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    let c = w.counters();
    assert_eq!(
        (c.events_written, c.events_dropped, c.pool_exhaustions),
        (100, 0, 0)
    );
    assert_eq!(c.ring_swaps, 24);
}

#[test]
fn marking_travels_with_the_submitted_ring_then_resets() {
    let (mut lane, store) = small_lane(4);
    let (mut w, mut d, lane) = pair(&mut lane, &store, 4, LaneKind::Index, DropOldest);
    for seq in 0..4 {
        w.write_index(&rec(seq));
    }
    w.mark();
    assert!(lane.marked());
    for seq in 4..12 {
        w.write_index(&rec(seq));
    }
    assert!(!lane.marked(), "flag resets for the next ring");
    let mut marks = Vec::new();
    d.drain_submitted(0, |c| marks.push((c.seq, c.marked)));
    assert_eq!(marks, vec![(0, true), (1, false)]);
}

#[test]
fn exhaustion_drop_oldest_counts_every_lost_event() {
    let (mut lane, store) = small_lane(2);
    let (mut w, mut d, _) = pair(&mut lane, &store, 2, LaneKind::Index, DropOldest);
    // 2 rings x 4 records, no drain: ring 0 submitted after 4, ring 1 fills at 8, then exhaustion.
    let outcomes: Vec<_> = (0..20u64).map(|s| w.write_index(&rec(s))).collect();
    assert_eq!(outcomes[4], Written::Swapped);
    assert_eq!(outcomes[8], Written::DroppedOldest { dropped: 4 });
    // Each recycle puts the loss marker first in the ring: later recycles hold 3 events.
    assert_eq!(outcomes[11], Written::DroppedOldest { dropped: 3 });
    let c = w.counters();
    assert_eq!(c.events_written, 20);
    assert_eq!(c.pool_exhaustions, 4);
    assert_eq!(c.events_dropped, 13);
    assert_eq!(c.overwritten, 13);
    let (got, markers) = drain_index(&mut d, true);
    // The submitted ring (oldest) and the newest events survive: 0..4 and 17..20, with one
    // marker for the hole (the unread markers of earlier recycles were merged into it).
    assert_eq!(got, vec![0, 1, 2, 3, 17, 18, 19]);
    assert_eq!(markers, vec![loss(LossCause::Overwritten, 13, 4, 16)]);
    assert_eq!(got.len() as u64 + c.events_dropped, c.events_written);
    // After the drain returns the ring, swapping works again.
    assert_eq!(w.write_index(&rec(20)), Written::Swapped);
}

/// `without_backpressure` (A/B benchmarks only): the same losses, counted and marked, but the
/// state is never evaluated or published.
#[test]
fn without_backpressure_the_state_is_never_evaluated_and_losses_are_unchanged() {
    let run = |with: bool| {
        let (mut lane, store) = small_lane(4);
        let (w, mut d, lane) = pair(&mut lane, &store, 4, LaneKind::Index, DropOldest);
        let mut w = if with { w } else { w.without_backpressure() };
        let outcomes: Vec<_> = (0..40u64).map(|s| w.write_index(&rec(s))).collect();
        let (seqs, markers) = drain_index(&mut d, true);
        (
            outcomes,
            w.counters(),
            seqs,
            markers,
            w.state(),
            lane.state_word(),
        )
    };
    let (o1, c1, s1, m1, state, word) = run(true);
    assert_eq!(state, ada_backpressure::LaneState::Dropping);
    assert_eq!(word.entries, [0, 1, 1, 0]);
    let (o2, c2, s2, m2, state, word) = run(false);
    assert_eq!(state, ada_backpressure::LaneState::Normal);
    assert_eq!((word.state, word.since_ns, word.entries), (0, 0, [0; 4]));
    assert_eq!((o1, c1, s1, m1), (o2, c2, s2, m2));
    assert!(c2.overwritten > 0);
}

#[test]
fn exhaustion_drop_newest_keeps_the_full_ring() {
    let (mut lane, store) = small_lane(2);
    let (mut w, mut d, _) = pair(&mut lane, &store, 2, LaneKind::Index, DropNewest);
    let outcomes: Vec<_> = (0..12u64).map(|s| w.write_index(&rec(s))).collect();
    assert_eq!(&outcomes[8..], &[Written::DroppedNewest; 4]);
    assert_eq!(w.counters().events_dropped, 4);
    assert_eq!(w.counters().refused, 4);
    let got = drained_seqs(&mut d);
    assert_eq!(got, vec![0, 1, 2, 3]);
    // Recovery: the ring came back, the next event goes through, after the marker of the hole.
    assert_eq!(w.write_index(&rec(12)), Written::Swapped);
    let (rest, markers) = drain_index(&mut d, true);
    assert_eq!(rest, vec![4, 5, 6, 7, 12]);
    assert_eq!(markers, vec![loss(LossCause::Refused, 4, 8, 11)]);
}

#[test]
fn active_ring_salvage_then_recycle_never_double_counts() {
    let (mut lane, store) = small_lane(2);
    let (mut w, mut d, _) = pair(&mut lane, &store, 2, LaneKind::Index, DropOldest);
    for s in 0..6 {
        w.write_index(&rec(s));
    }
    let mut got = Vec::new();
    d.drain_active(|c| got.extend(index_records(c.bytes).map(|r| r.unwrap().function_id)));
    assert_eq!(got, vec![4, 5]);
    // Fill ring 1 and exhaust: only the two records the drain did not take count as dropped.
    for s in 6..9 {
        w.write_index(&rec(s));
    }
    assert_eq!(w.counters().events_dropped, 2);
    let (rest, markers) = drain_index(&mut d, true);
    got.extend(rest);
    assert_eq!(got, vec![4, 5, 0, 1, 2, 3, 8]);
    // The marker names exactly the two the drain had not copied.
    assert_eq!(markers, vec![loss(LossCause::Overwritten, 2, 6, 7)]);
    assert_eq!(
        got.len() as u64 + w.counters().events_dropped,
        w.counters().events_written
    );
}

#[test]
fn corrupt_free_entries_are_skipped_and_bounded() {
    let (mut lane, store) = small_lane(2);
    let (thread, mut drain) = lane.split(2, LaneKind::Index, 0);
    let mut w = LaneWriter::new(thread, &store, DropOldest);
    // Ring 0 fills and is submitted; ring 1 (the only free one) becomes active and fills.
    for s in 0..8 {
        w.write_index(&rec(s));
    }
    // A broken drain fills the free queue with impossible ring indices.
    let mut pushed = 0;
    while drain.free().push(99).is_ok() {
        pushed += 1;
    }
    assert_eq!(pushed, 8);
    // The swap finds no usable ring within its bound and falls back to the drop policy.
    assert_eq!(
        w.write_index(&rec(8)),
        Written::DroppedOldest { dropped: 4 }
    );
}

#[test]
fn corrupt_submit_entries_are_skipped_not_trusted() {
    let (mut lane, store) = small_lane(2);
    let (thread, drain) = lane.split(2, LaneKind::Index, 0);
    // A broken thread submits a ring index its lane does not have.
    let (_, mut submit, _) = thread.into_parts();
    submit.push(77).unwrap();
    let mut d = LaneDrain::new(drain, &store);
    let stats = d.drain_submitted(0, |_| panic!("nothing valid to visit"));
    assert_eq!(stats.bad_ring_indices, 1);
}

/// (function id, registers, stack, message) of one detail record.
type Detail = (u64, Vec<u64>, Vec<u8>, Vec<u8>);

fn detail(seq: u64, regs: usize, stack: usize, msg: usize) -> (Vec<u64>, Vec<u8>, Vec<u8>) {
    (
        (0..regs as u64).map(|r| seq * 100 + r).collect(),
        (0..stack).map(|i| (seq as usize + i) as u8).collect(),
        (0..msg).map(|i| (seq as usize * 3 + i) as u8).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random record sizes and drain timings: every record comes back byte-exact, in order,
    /// across many trips around a 3-ring pool; with drops (drain too slow) the counts add up.
    #[test]
    fn random_detail_records_survive_wraparound(
        shapes in proptest::collection::vec((0usize..=16, 0usize..=256, 0usize..=300, any::<bool>()), 1..300),
        drain_every in 1usize..20,
    ) {
        let mut lane = Box::new(Lane::default());
        let store = HeapStore::new(&lane, 3, 128 + 4096);
        let (mut w, mut d, _) = pair(&mut lane, &store, 3, LaneKind::Detail, DropOldest);
        let mut expected = Vec::new();
        let mut got: Vec<Detail> = Vec::new();
        // Events announced lost by the EventsLost markers in the stream (not events).
        let mut marked = 0u64;
        let mut take = |d: &mut LaneDrain<'_, &HeapStore>, active: bool| {
            let mut visit = |c: ada_ringpool::RingChunk<'_>| {
                for r in DetailRecords::new(c.bytes) {
                    let r = r.unwrap();
                    if r.kind == EventKind::EventsLost {
                        marked += LossMarker::from_detail(&r).unwrap().count;
                        continue;
                    }
                    got.push((r.header.function_id, r.registers().to_vec(), r.stack.to_vec(), r.message.to_vec()));
                }
            };
            if active { d.drain_active(&mut visit); } else { d.drain_submitted(0, &mut visit); }
        };
        for (seq, &(regs, stack, msg, marked)) in shapes.iter().enumerate() {
            let seq = seq as u64;
            let (r, s, m) = detail(seq, regs, stack, msg);
            w.write_detail(&DetailRecord {
                kind: EventKind::Call, marked, timestamp_ns: seq, function_id: seq, thread_id: 1,
                call_depth: 0, registers: &r, stack: &s, message: &m,
            }).unwrap();
            expected.push((seq, r, s, m));
            if (seq as usize).is_multiple_of(drain_every) {
                take(&mut d, false);
            }
        }
        take(&mut d, false);
        take(&mut d, true);
        let c = w.counters();
        prop_assert_eq!(c.events_written, shapes.len() as u64);
        prop_assert_eq!(got.len() as u64 + c.events_dropped, c.events_written);
        // Drop-oldest marks each loss in the recycled ring at once: every lost event is marked.
        prop_assert_eq!(marked, c.events_dropped);
        // What arrived is a subsequence of what was written, byte-exact, without duplicates.
        let mut it = expected.iter();
        for g in &got {
            prop_assert!(it.any(|e| e == g), "record {} missing, reordered or altered", g.0);
        }
        if c.events_dropped == 0 {
            prop_assert_eq!(&got, &expected);
        }
    }
}
