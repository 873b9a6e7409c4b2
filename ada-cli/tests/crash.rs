//! Crash: the traced child is SIGKILLed mid-run. The controller notices, drains everything the
//! child's threads had committed (active rings included), and finalizes a readable trace whose
//! events are exactly what was committed: per thread a gap-free prefix of its sequence, equal
//! to the thread's own count of recorded events (which may lag the ring by the one event in
//! flight when the kill landed).

mod common;

use ada_cli::trace::exit_code;
use ada_controller::{ControllerBuilder, LaneKind, SessionInfo, ThreadEnd};
use common::{ada, read_seq_trace, trace_dir};
use std::time::{Duration, Instant};

const THREADS: usize = 4;

#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn sigkilled_child_trace_holds_everything_committed() {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(16)
        .output_dir(out.path())
        .create()
        .unwrap();
    let segment = controller.segment_name().to_owned();
    let mut child = ada()
        .args(["workload", "--seq", "--threads", &THREADS.to_string()])
        .args(["--events", "1000000000", "--rate", "200000"])
        .env("ADA_SHM", &segment)
        .spawn()
        .unwrap();
    let pid = child.id();
    let running = controller.start_default(SessionInfo::new(pid)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.live().records < 200_000 {
        assert!(Instant::now() < deadline, "the child never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no unregistration, no flush
    let status = child.wait().unwrap();
    running.process_exited(pid);
    let report = running.stop(Some(exit_code(status))).unwrap();

    assert_eq!(report.exit_code, Some(128 + 9));
    assert_eq!(report.threads.len(), THREADS, "{report:?}");
    for t in &report.threads {
        assert_eq!(t.end, ThreadEnd::ProcessDied, "{t:?}");
        for (_, lane) in t.lanes() {
            assert!(lane.is_balanced(), "{t:?}");
            assert!(
                lane.reconciled <= 1,
                "counter lags by at most the event in flight: {t:?}"
            );
            assert_eq!(lane.corrupt, 0);
        }
        assert!(t.lane(LaneKind::Index).persisted > 10_000, "{t:?}");
        assert_eq!(
            t.lane(LaneKind::Index).dropped,
            0,
            "paced: the drain kept up"
        );
    }
    let output = report.output.as_ref().unwrap();
    assert!(output.complete);

    let trace = read_seq_trace(&trace_dir(out.path()), THREADS);
    assert_eq!(trace.manifest.complete, Some(true));
    assert_eq!(trace.manifest.exit_code, Some(137));
    assert_eq!(trace.ledger.duplicates(), 0);
    let mut per_thread: Vec<u64> = (0..THREADS).map(|p| trace.ledger.distinct(p)).collect();
    for (p, (&distinct, &max)) in per_thread.iter().zip(&trace.max_seq).enumerate() {
        assert_eq!(distinct, max, "thread {p}: a gap-free prefix");
    }
    // Through the thread's rings, or spilled into the fallback ring (a drain that fell behind
    // for a moment on a loaded machine) and delivered from there.
    let mut persisted: Vec<u64> = report
        .threads
        .iter()
        .map(|t| {
            let index = t.lane(LaneKind::Index);
            index.persisted + index.via_fallback
        })
        .collect();
    per_thread.sort_unstable();
    persisted.sort_unstable();
    assert_eq!(
        per_thread, persisted,
        "the trace holds what the report counted"
    );
    // TraceStart + every committed event + TraceEnd.
    assert_eq!(trace.events, report.persisted() + 2);
    assert_eq!(trace.manifest.event_count, trace.events + trace.definitions);
    assert!(
        trace.definitions >= THREADS as u64,
        "every thread is defined in the stream"
    );
}
