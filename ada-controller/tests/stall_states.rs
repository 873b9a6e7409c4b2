//! A stalled drain: a busy lane goes NORMAL → PRESSURE → DROPPING while the drain is held,
//! its losses are counted exactly (and marked where they happened), and once the drain is back
//! it returns to NORMAL within the stability period. Each drop policy keeps the events it
//! promises (sequence numbers show which).
//!
//! The drain thread is held by the test kit's pause gate and makes one pass at a time; the
//! writer stamps its events with a fake clock, the state machine's clock, advanced [`STEP`] per
//! event: the drain stalls for a known (fake) time while the thread writes at a known rate.

mod stall_kit;

use ada_backpressure::{BackpressureConfig, DropPolicy, LaneState, LossCause};
use ada_controller::LaneKind;
use stall_kit::{STEP, Session, Writer, assert_balanced};

/// The stability period: long enough to span a few state checks (one every quarter ring).
const STABILITY_NS: u64 = 40 * STEP;

/// The drain is held for `stall_ns` of fake time while `w` writes one event every `STEP`.
fn stall<P: ada_ringpool::PoolPolicy>(w: &mut Writer<'_, P>, stall_ns: u64) {
    w.lane.set_backpressure(BackpressureConfig {
        stability_ns: STABILITY_NS,
        ..BackpressureConfig::for_pool(4)
    });
    w.write_n(stall_ns / STEP);
}

/// Survivors of drop-oldest after `n` events into an empty lane of 4 rings of `r` events with
/// the drain held: the three submitted rings (`3r`), and in the active ring (recycled at every
/// exhaustion, a loss marker first) the last `((n - 4r - 1) mod (r - 1)) + 1` events.
fn drop_oldest_active_survivors(n: u64, r: u64) -> u64 {
    assert!(n > 4 * r);
    (n - 4 * r - 1) % (r - 1) + 1
}

#[test]
fn a_stalled_drain_drives_a_busy_lane_to_dropping_counts_exactly_and_it_recovers() {
    let session = Session::start();
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropPolicy::DropOldest);
    let slot = w.index();
    let r = w.ring_events();
    w.lane.set_backpressure(BackpressureConfig {
        stability_ns: STABILITY_NS,
        ..BackpressureConfig::for_pool(4)
    });
    let lane = w.slot.lanes().lane(LaneKind::Index);
    let published = || lane.state_word();

    // The drain is held. Two rings full, the third not begun: one swap, two free rings left.
    w.write_n(2 * r);
    assert_eq!(w.lane.state(), LaneState::Normal);
    assert_eq!(published().state, LaneState::Normal.as_u8());
    // The second swap leaves one free ring: the low watermark. The writer looks at the lane a
    // quarter ring after a swap (not at it: the drain gets that long to return a ring), so
    // PRESSURE shows within a quarter ring of the swap.
    w.write();
    let quarter = r / 4 + 1;
    let mut after_swap = 0;
    while w.lane.state() == LaneState::Normal {
        w.write();
        after_swap += 1;
        assert!(
            after_swap <= quarter,
            "PRESSURE within a quarter ring of the swap"
        );
    }
    assert_eq!(w.lane.state(), LaneState::Pressure);
    let word = published();
    assert_eq!(word.state, LaneState::Pressure.as_u8());
    assert_eq!(word.since_ns, w.ts_of(w.seq - 1));
    assert_eq!(word.entries, [0, 1, 0, 0]);
    // The last free ring, then the first event that finds none: DROPPING.
    w.write_n(3 * r - w.seq);
    w.write_n(r);
    assert_eq!(w.lane.state(), LaneState::Pressure);
    assert_eq!(w.lane.counters().overwritten, 0, "4 rings hold 4r events");
    w.write();
    let word = published();
    assert_eq!(
        (w.lane.state(), word.state),
        (LaneState::Dropping, LaneState::Dropping.as_u8())
    );
    assert_eq!(word.since_ns, w.ts_of(4 * r));
    assert_eq!(word.entries, [0, 1, 1, 0]);

    // The drain stays held for the rest of a known stall: n events in all.
    let n = 4 * r + 2 * (r - 1) + 5;
    w.write_n(n - w.seq);
    let a = drop_oldest_active_survivors(n, r);
    let lost = n - 3 * r - a;
    let c = w.lane.counters();
    assert_eq!(
        (c.events_written, c.overwritten, c.events_dropped),
        (n, lost, lost)
    );
    assert_eq!((c.refused, c.too_large), (0, 0));
    assert_eq!(
        lane.counters().overwritten,
        lost,
        "published at the swap path"
    );

    // The drain comes back: one pass takes what survived.
    session.drain_once();
    {
        let seen = session.seen();
        let expect: Vec<u64> = (0..3 * r).chain(n - a..n).collect();
        assert_eq!(
            seen.seqs(slot),
            expect,
            "the oldest rings and the newest events"
        );
        let losses = seen.losses(slot);
        assert_eq!(seen.marked(slot), lost, "{losses:?}");
        assert!(losses.iter().all(|l| l.cause == LossCause::Overwritten));
        // One gap, marked with the first and last lost events' timestamps.
        assert_eq!(losses.len(), 1, "{losses:?}");
        assert_eq!(
            (losses[0].first_ns, losses[0].last_ns),
            (w.ts_of(3 * r), w.ts_of(n - a - 1))
        );
    }

    // Free rings are back above the high watermark: the next state check (within a quarter
    // ring) finds RECOVERY.
    let swaps = w.lane.counters().ring_swaps;
    let mut writes = 0;
    while w.lane.state() == LaneState::Dropping {
        w.write();
        writes += 1;
        assert!(writes <= quarter, "RECOVERY at the first check");
    }
    assert_eq!(w.lane.state(), LaneState::Recovery);
    let recovery = published();
    assert_eq!(recovery.state, LaneState::Recovery.as_u8());
    assert_eq!(recovery.since_ns, w.ts_of(w.seq - 1));
    assert_eq!(recovery.entries, [0, 1, 1, 1]);
    // NORMAL once the free rings stayed above the high watermark for the stability period:
    // not before, and at the first check after it.
    while w.lane.state() == LaneState::Recovery {
        w.write();
        let now = w.ts_of(w.seq - 1);
        if now < recovery.since_ns + STABILITY_NS {
            assert_eq!(
                w.lane.state(),
                LaneState::Recovery,
                "not before the stability period"
            );
        }
        assert!(now < recovery.since_ns + STABILITY_NS + quarter * STEP);
    }
    let normal = published();
    assert_eq!(normal.state, LaneState::Normal.as_u8());
    assert!(normal.since_ns >= recovery.since_ns + STABILITY_NS);
    assert_eq!(normal.entries, [1, 1, 1, 1]);
    assert_eq!(
        w.lane.counters().ring_swaps,
        swaps,
        "no swap: the free rings stayed free"
    );

    let written = w.seq;
    w.finish();
    let (report, seen) = session.stop();
    assert_balanced(&report);
    let t = &report.threads[0];
    let l = t.lane(LaneKind::Index);
    assert_eq!(
        (l.written, l.persisted, l.dropped),
        (written, written - lost, lost)
    );
    assert_eq!((l.lost.overwritten, l.markers), (lost, 1));
    assert_eq!(l.state, Some(LaneState::Normal));
    assert_eq!(l.entries, [1, 1, 1, 1]);
    let expect: Vec<u64> = (0..3 * r).chain(n - a..written).collect();
    assert_eq!(seen.seqs(slot), expect);
}

/// Drop-oldest: the newest events survive, the lost ones are the older ones in between.
#[test]
fn drop_oldest_keeps_the_newest_events() {
    let session = Session::start();
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropPolicy::DropOldest);
    let (slot, r) = (w.index(), w.ring_events());
    let n = 9 * r;
    stall(&mut w, n * STEP);
    let a = drop_oldest_active_survivors(n, r);
    session.drain_once();
    w.finish();
    let (report, seen) = session.stop();
    assert_balanced(&report);
    let seqs = seen.seqs(slot);
    // The newest `a` events are all there, right after the oldest rings the drain owned.
    assert_eq!(
        seqs[seqs.len() - a as usize..],
        (n - a..n).collect::<Vec<_>>()[..]
    );
    assert_eq!(seqs, (0..3 * r).chain(n - a..n).collect::<Vec<_>>());
    let l = report.threads[0].lane(LaneKind::Index);
    assert_eq!((l.lost.overwritten, l.lost.refused), (n - 3 * r - a, 0));
    assert_eq!(seen.marked(slot), l.dropped);
}

/// Drop-newest: what is buffered is kept, the events that found no ring are refused.
#[test]
fn drop_newest_keeps_the_oldest_events() {
    let session = Session::start();
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropPolicy::DropNewest);
    let (slot, r) = (w.index(), w.ring_events());
    let n = 9 * r;
    stall(&mut w, n * STEP);
    assert_eq!(w.lane.state(), LaneState::Dropping);
    let c = w.lane.counters();
    assert_eq!(
        (c.events_written, c.refused, c.overwritten),
        (n, n - 4 * r, 0)
    );
    session.drain_once();
    assert_eq!(session.seen().seqs(slot), (0..4 * r).collect::<Vec<_>>());
    // The marker waits for room: the next event, in a returned ring, comes right after it.
    w.write();
    session.drain_once();
    {
        let seen = session.seen();
        let losses = seen.losses(slot);
        assert_eq!(losses.len(), 1);
        assert_eq!(losses[0].cause, LossCause::Refused);
        assert_eq!(losses[0].count, n - 4 * r);
        assert_eq!(
            (losses[0].first_ns, losses[0].last_ns),
            (w.ts_of(4 * r), w.ts_of(n - 1))
        );
    }
    w.finish();
    let (report, seen) = session.stop();
    assert_balanced(&report);
    assert_eq!(
        seen.seqs(slot),
        (0..4 * r).chain([n]).collect::<Vec<_>>(),
        "the oldest events, then the first one after the drain came back"
    );
    let l = report.threads[0].lane(LaneKind::Index);
    assert_eq!(
        (l.lost.refused, l.dropped, l.markers),
        (n - 4 * r, n - 4 * r, 1)
    );
}

/// A thread that ends while drop-newest still refuses has no ring to put its marker in: the
/// drain announces the loss at the end of the thread's stream (where it happened: the refused
/// events were its last), so every lost event is still in the stream, its times unknown.
#[test]
fn losses_whose_marker_found_no_room_are_announced_at_the_thread_end() {
    let session = Session::start();
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropPolicy::DropNewest);
    let (slot, r) = (w.index(), w.ring_events());
    let n = 5 * r;
    stall(&mut w, n * STEP);
    assert_eq!(w.lane.counters().refused, n - 4 * r);
    // Ends with the drain still held: no ring comes back, the marker stays unplaced.
    w.finish();
    let (report, seen) = session.stop();
    assert_balanced(&report);
    assert_eq!(seen.seqs(slot), (0..4 * r).collect::<Vec<_>>());
    let losses = seen.losses(slot);
    assert_eq!(losses.len(), 1, "{losses:?}");
    let loss = losses[0];
    assert_eq!((loss.cause, loss.count), (LossCause::Refused, n - 4 * r));
    assert_eq!((loss.first_ns, loss.last_ns), (0, 0), "times unknown");
    assert_eq!(
        loss.at_ns,
        w_ts_of_last_kept(r),
        "after the last event kept"
    );
    let l = report.threads[0].lane(LaneKind::Index);
    // One announcement in the stream, made by the drain for the whole stretch.
    assert_eq!((l.markers, l.announced_at_end), (1, n - 4 * r));
}

/// Timestamp of event `4r - 1`, the last one four rings hold (see `Writer::ts_of`).
fn w_ts_of_last_kept(r: u64) -> u64 {
    1_000_000 + 4 * r * stall_kit::STEP
}
