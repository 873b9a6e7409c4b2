//! A real-time stall: the controller's own drain thread, stalled by the test kit's
//! [`StallInjector`] (sleeping in the drain hook at a chosen pass), while a thread records
//! through the agent as fast as it can. The busy lane goes through PRESSURE to DROPPING while
//! the drain sleeps, comes back to NORMAL once the drain is back and the thread slows down,
//! and the final accounting balances exactly, every loss announced in the stream.
//!
//! Real time makes the counts unpredictable; what is asserted holds for any schedule: a stall
//! is re-armed until the lane was seen DROPPING, the return to NORMAL is awaited with a
//! generous bound, and the accounting is exact.

use ada_agent::{Agent, ThreadWriter};
use ada_backpressure::LaneState;
use ada_controller::{ControllerBuilder, CountingSink, DrainPoint, LaneKind, SessionInfo};
use ada_testkit::StallInjector;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_drain_stalled_in_real_time_drives_a_busy_lane_to_dropping_and_back_to_normal() {
    let stalls = Arc::new(StallInjector::sleeping());
    let passes = Arc::new(AtomicU64::new(0));
    let hook = {
        let (stalls, passes) = (Arc::clone(&stalls), Arc::clone(&passes));
        Arc::new(move |point| {
            if point == DrainPoint::BeforePass {
                // Relaxed: a pass counter read by the test to pick a future pass.
                let pass = passes.fetch_add(1, Ordering::Relaxed);
                stalls.checkpoint(pass);
            }
        })
    };
    let controller = ControllerBuilder::new()
        .capacity(4)
        .stability(Duration::from_millis(5))
        .drain_hook(hook)
        .create()
        .unwrap();
    let agent = Agent::from_registry(controller.registry().clone());
    let running = controller
        .start(
            CountingSink::default(),
            SessionInfo::new(std::process::id()),
        )
        .unwrap();

    let mut w = ThreadWriter::register(&agent).unwrap();
    let start = Instant::now();
    let mut written = 0u64;
    // At this rate (512 events a millisecond) a drain that runs keeps up easily: the pool holds
    // 8 ms of it. The drain is stalled for 200 ms a couple of passes from now (again, whenever
    // no stall is armed) until the lane has been seen DROPPING after a stall.
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "never DROPPING in {written} events"
        );
        if stalls.applied() >= 1 && w.lane_states().0 == LaneState::Dropping {
            break;
        }
        if stalls.pending() == 0 {
            // Relaxed: see the hook.
            let at = passes.load(Ordering::Relaxed) + 2;
            stalls.stall_at(at, Duration::from_millis(200));
        }
        for _ in 0..256 {
            w.enter(1);
            w.exit(1);
        }
        written += 512;
        std::thread::sleep(Duration::from_millis(1));
    }
    // The drain is back (or soon will be): at a modest rate the lane recovers and, once the
    // stability period has passed, is NORMAL again.
    while w.lane_states().0 != LaneState::Normal {
        assert!(start.elapsed() < LIMIT, "never NORMAL again");
        for _ in 0..64 {
            w.enter(2);
            w.exit(2);
        }
        written += 128;
        std::thread::sleep(Duration::from_micros(200));
    }
    drop(w);
    let report = running.stop(Some(0)).unwrap();
    let t = &report.threads[0];
    let l = t.lane(LaneKind::Index);
    assert_eq!(l.written, written);
    assert!(l.is_balanced(), "{l:?}");
    assert_eq!(l.written, l.persisted + l.dropped, "{l:?}");
    assert!(l.dropped > 0, "{l:?}");
    // The default index policy refuses (drop-newest); every loss is announced in the stream.
    assert_eq!(l.dropped, l.lost.refused, "{l:?}");
    assert_eq!(l.marked_lost, l.dropped, "{l:?}");
    assert_eq!(l.state, Some(LaneState::Normal));
    let [normal, pressure, dropping, recovery] = l.entries;
    assert!(
        pressure >= 1 && dropping >= 1 && recovery >= 1 && normal >= 1,
        "{:?}",
        l.entries
    );
}
