//! Loads against a drain that stalls between passes: one flooding thread loses events while the
//! others in the same session lose none (isolation); bursts of every size and alternating
//! fast/slow phases, under both drop policies, with the counts balancing exactly after every
//! pass and the lane states following the load.
//!
//! The drain thread is held by the test kit's pause gate and makes one pass at a time, so what
//! fits between two passes, and so each loss, is known exactly.

mod stall_kit;

use ada_backpressure::{BackpressureConfig, DropPolicy, LaneState};
use ada_controller::LaneKind;
use stall_kit::{STEP, Session, Writer, assert_balanced};

/// Events lost by writing `n` events between two passes into a lane whose three spare rings
/// are free (the last pass returned them) and whose active ring has room for `room` more, with
/// `pending` loss markers still waiting for room (drop-newest places its marker at the next
/// write). Rings hold `r` events.
fn expected_loss(policy: DropPolicy, n: u64, room: u64, pending: u64, r: u64) -> u64 {
    let fits = 3 * r + room - pending;
    if n <= fits {
        return 0;
    }
    match policy {
        // Everything past what fits is refused.
        DropPolicy::DropNewest => n - fits,
        // The last fresh ring (r events) is recycled at the first exhaustion, and again every
        // time it fills (a marker first, r - 1 events); its last fill survives.
        DropPolicy::DropOldest => {
            let survivors_in_active = (n - fits - 1) % (r - 1) + 1;
            n - (fits - r) - survivors_in_active
        }
    }
}

/// One burst of `n` events while the drain is held, then a pass; checks the loss against
/// [`expected_loss`] and that everything written is accounted for.
fn burst(session: &Session, w: &mut Writer<'_, DropPolicy>, policy: DropPolicy, n: u64) -> u64 {
    let before = w.lane.counters();
    let pending = u64::from(session.seen().marked(w.index()) < before.events_dropped);
    let expect = expected_loss(policy, n, w.active_room(), pending, w.ring_events());
    w.write_n(n);
    let after = w.lane.counters();
    let lost = after.events_dropped - before.events_dropped;
    assert_eq!(lost, expect, "{policy:?}: burst of {n}");
    if lost > 0 {
        assert_eq!(w.lane.state(), LaneState::Dropping);
    }
    session.drain_once();
    assert_counts(session, w);
    lost
}

/// After a pass: every event written so far reached the sink or is counted as lost, and every
/// marker that reached the sink announced lost events.
fn assert_counts(session: &Session, w: &Writer<'_, DropPolicy>) {
    let seen = session.seen();
    let c = w.lane.counters();
    let seqs = seen.seqs(w.index());
    assert_eq!(seqs.len() as u64 + c.events_dropped, c.events_written);
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "in order, no duplicate"
    );
    assert!(seen.marked(w.index()) <= c.events_dropped);
}

#[test]
fn one_flooding_thread_loses_events_the_others_lose_none() {
    let session = Session::start();
    let reg = session.registry.clone();
    let mut flood = Writer::new(&reg, DropPolicy::DropOldest);
    let mut modest: Vec<_> = (0..3)
        .map(|_| Writer::new(&reg, DropPolicy::DropOldest))
        .collect();
    let r = flood.ring_events();
    for _ in 0..10 {
        // Between two passes the flood writes six rings' worth, the others half a ring each.
        flood.write_n(6 * r);
        for w in &mut modest {
            w.write_n(r / 2);
        }
        session.drain_once();
        for w in &modest {
            assert_eq!(w.lane.counters().events_dropped, 0);
            assert_eq!(w.lane.state(), LaneState::Normal);
        }
    }
    let flood_lost = flood.lane.counters().events_dropped;
    assert!(flood_lost > 0);
    let (flood_slot, modest_slots): (u32, Vec<u32>) =
        (flood.index(), modest.iter().map(Writer::index).collect());
    flood.finish();
    for w in modest {
        w.finish();
    }
    let (report, seen) = session.stop();
    assert_balanced(&report);
    assert_eq!(report.threads.len(), 4);
    for t in &report.threads {
        let l = t.lane(LaneKind::Index);
        if t.info.slot == flood_slot {
            assert_eq!(l.dropped, flood_lost);
            assert_eq!(seen.marked(flood_slot), flood_lost);
        } else {
            assert!(modest_slots.contains(&t.info.slot));
            assert_eq!(
                (l.written, l.persisted, l.dropped),
                (10 * (r / 2), 10 * (r / 2), 0)
            );
            assert_eq!(l.entries, [0; 4], "never even under pressure");
            assert!(seen.losses(t.info.slot).is_empty());
            assert_eq!(
                seen.seqs(t.info.slot),
                (0..10 * (r / 2)).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn bursts_of_every_size_balance_exactly_under_both_policies() {
    for policy in [DropPolicy::DropOldest, DropPolicy::DropNewest] {
        let session = Session::start();
        let reg = session.registry.clone();
        let mut w = Writer::new(&reg, policy);
        let r = w.ring_events();
        let sizes = [
            r / 2,
            3 * r,
            4 * r,
            4 * r + 1,
            10 * r + 7,
            1,
            r - 1,
            7 * r + 3,
            2 * r,
            5 * r,
            4 * r - 3,
        ];
        let mut lost = 0;
        for n in sizes {
            lost += burst(&session, &mut w, policy, n);
        }
        assert!(lost > 0);
        // One more event places a marker drop-newest still holds.
        w.write();
        let written = w.seq;
        w.finish();
        let (report, seen) = session.stop();
        assert_balanced(&report);
        let l = report.threads[0].lane(LaneKind::Index);
        assert_eq!((l.written, l.dropped), (written, lost), "{policy:?}");
        assert_eq!(seen.marked(w_slot(&report)), lost);
    }
}

fn w_slot(report: &ada_controller::Report) -> u32 {
    report.threads[0].info.slot
}

#[test]
fn oscillating_load_loses_in_fast_phases_and_recovers_in_slow_ones() {
    for policy in [DropPolicy::DropOldest, DropPolicy::DropNewest] {
        let session = Session::start();
        let reg = session.registry.clone();
        let mut w = Writer::new(&reg, policy);
        let r = w.ring_events();
        let stability_ns = 2 * (r / 4) * STEP;
        w.lane.set_backpressure(BackpressureConfig {
            stability_ns,
            ..BackpressureConfig::for_pool(4)
        });
        let lane = w.slot.lanes().lane(LaneKind::Index);
        for cycle in 1..=4u32 {
            // Fast: six rings' worth between two passes.
            let lost = burst(&session, &mut w, policy, 6 * r);
            assert!(lost > 0);
            assert_eq!(lane.state_word().entries[..3], [cycle - 1, cycle, cycle]);
            // Slow: a quarter ring between passes, until the lane is NORMAL again.
            let mut slow = 0;
            while w.lane.state() != LaneState::Normal {
                assert_eq!(
                    burst(&session, &mut w, policy, r / 4),
                    0,
                    "slow phases lose nothing"
                );
                slow += 1;
                assert!(slow <= 40, "{policy:?}: NORMAL again within the slow phase");
            }
            let word = lane.state_word();
            assert_eq!(word.state, LaneState::Normal.as_u8());
            assert_eq!(
                word.entries, [cycle; 4],
                "{policy:?}: every state once per cycle"
            );
        }
        let written = w.seq;
        let dropped = w.lane.counters().events_dropped;
        w.finish();
        let (report, _) = session.stop();
        assert_balanced(&report);
        let l = report.threads[0].lane(LaneKind::Index);
        assert_eq!(
            (l.written, l.dropped, l.entries),
            (written, dropped, [4; 4])
        );
    }
}
