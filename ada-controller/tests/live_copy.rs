//! The session drain copies a running thread's active index ring at most once per live-copy
//! period (`ControllerBuilder::live_copy_every`), not on every pass: a pass that copies reads
//! the very cache lines the thread is writing. Submitted rings are still taken at every pass,
//! and the final drain takes everything.

mod stall_kit;

use ada_controller::LaneKind;
use ada_ringpool::DropOldest;
use stall_kit::{Session, Writer, assert_balanced};
use std::time::{Duration, Instant};

/// Far longer than the test: after the first copy, no other is due.
const NEVER: Duration = Duration::from_secs(3600);

#[test]
fn an_active_ring_is_copied_once_per_period_and_submitted_rings_at_every_pass() {
    let session = Session::with_live_copies_every(NEVER);
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropOldest);
    let (slot, r) = (w.index(), w.ring_events());
    w.write_n(3);
    // The first look at the lane copies its active ring (no copy yet).
    session.drain_once();
    assert_eq!(session.seen().seqs(slot), vec![0, 1, 2]);
    // Within the period: the active ring's new records wait.
    w.write_n(3);
    session.drain_once();
    assert_eq!(session.seen().seqs(slot), vec![0, 1, 2], "no second copy");
    // A ring that fills is submitted and taken at the next pass all the same.
    w.write_n(r - 6 + 2);
    session.drain_once();
    assert_eq!(
        session.seen().seqs(slot),
        (0..r).collect::<Vec<_>>(),
        "the submitted ring"
    );
    w.finish();
    let (report, seen) = session.stop();
    assert_balanced(&report);
    assert_eq!(
        seen.seqs(slot),
        (0..r + 2).collect::<Vec<_>>(),
        "final drain"
    );
    assert_eq!(report.threads[0].lane(LaneKind::Index).persisted, r + 2);
}

#[test]
fn an_active_ring_is_copied_again_once_the_period_is_over() {
    let period = Duration::from_millis(50);
    let session = Session::with_live_copies_every(period);
    let reg = session.registry.clone();
    let mut w = Writer::new(&reg, DropOldest);
    let slot = w.index();
    w.write_n(2);
    session.drain_once();
    let copied = Instant::now();
    assert_eq!(session.seen().seqs(slot), vec![0, 1]);
    w.write_n(2);
    std::thread::sleep(period.saturating_sub(copied.elapsed()) + Duration::from_millis(5));
    session.drain_once();
    assert_eq!(session.seen().seqs(slot), vec![0, 1, 2, 3]);
    w.finish();
    let (report, _) = session.stop();
    assert_balanced(&report);
}
