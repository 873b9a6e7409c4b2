//! Startup with ready delayed by the drain hook (`DrainPoint::BeforeReady`): the agent's thread
//! records before the registry is ready, so it has no slot and its index events go to the
//! shared fallback ring, as many as it holds; the rest are refused and counted. Once ready, the
//! drain persists every one the ring took, under the thread's one session number, and the
//! thread registers at its next event and goes on in its own rings. Nothing is delivered twice.
//!
//! One `#[test]`: the global agent is once per process.

use ada_controller::{
    ControllerBuilder, DrainPoint, EventKind, Record, Report, SessionInfo, Sink, SinkError,
    SinkOutput, ThreadInfo,
};
use ada_testkit::PauseGate;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const RING: u32 = 64;

/// (thread number, kind, function id, depth) of every record, in delivery order.
type Seen = Arc<Mutex<Vec<(u32, EventKind, u64, u32)>>>;

struct Recorder(Seen);

impl Sink for Recorder {
    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        let entry = (thread.number, r.kind, r.function_id, r.call_depth);
        self.0.lock().unwrap().push(entry);
        Ok(())
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(report.persisted()))
    }
}

#[test]
fn events_before_ready_are_persisted_up_to_the_fallback_rings_capacity_and_counted_beyond() {
    let gate = Arc::new(PauseGate::new());
    gate.pause();
    let g = Arc::clone(&gate);
    let controller = ControllerBuilder::new()
        .capacity(2)
        .fallback_records(RING)
        .drain_hook(Arc::new(move |point| {
            if point == DrainPoint::BeforeReady {
                g.checkpoint();
            }
        }))
        .create()
        .unwrap();
    let registry = controller.registry().clone();
    let agent = ada_agent::install(ada_agent::Agent::from_registry(registry.clone())).unwrap();
    let seen: Seen = Arc::default();
    let sink = Recorder(Arc::clone(&seen));
    let session = SessionInfo::new(std::process::id());
    let starting = std::thread::spawn(move || controller.start(sink, session));
    assert!(
        gate.wait_until_paused(WAIT),
        "the drain waits to publish ready"
    );
    assert!(!registry.control().snapshot().ready);

    // 50 calls before ready: 100 events for a 64-record ring.
    ada_agent::enter_id(1_000); // open across ready
    for id in 0..50 {
        ada_agent::enter_id(id);
        ada_agent::exit_id(id);
    }
    assert_eq!(agent.mode(), ada_agent::mode::AgentMode::Startup);
    assert_eq!(
        registry.view().live_slots().count(),
        0,
        "no slot before ready"
    );

    gate.resume();
    let running = starting.join().unwrap().unwrap();
    assert!(registry.control().snapshot().ready);
    // Ready: the next events register the thread and go to its rings.
    for id in 100..110 {
        ada_agent::enter_id(id);
        ada_agent::exit_id(id);
    }
    ada_agent::exit_id(1_000);
    assert!(ada_agent::unregister_current_thread());
    let report = running.stop(Some(0)).unwrap();

    let seen = seen.lock().unwrap();
    let numbers: std::collections::BTreeSet<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(numbers.len(), 1, "one thread, one number: {numbers:?}");
    let events: Vec<(EventKind, u64, u32)> = seen.iter().map(|s| (s.1, s.2, s.3)).collect();
    let mut expected = vec![(EventKind::Call, 1_000, 1)];
    for id in 0..50 {
        expected.extend([(EventKind::Call, id, 2), (EventKind::Return, id, 2)]);
    }
    expected.truncate(RING as usize);
    for id in 100..110 {
        expected.extend([(EventKind::Call, id, 2), (EventKind::Return, id, 2)]);
    }
    expected.push((EventKind::Return, 1_000, 1));
    assert_eq!(
        events, expected,
        "the first 64 in order, then the rest of the run"
    );

    // Counted beyond the ring's capacity; the balance holds.
    let f = report.fallback;
    assert_eq!(
        (f.delivered, f.refused, f.left),
        (u64::from(RING), 101 - 64, 0),
        "{f:?}"
    );
    assert!(report.is_balanced(), "{report:?}");
    let thread = &report.threads[0];
    let index = thread.lane(ada_controller::LaneKind::Index);
    assert_eq!((index.via_fallback, index.persisted), (u64::from(RING), 21));
    assert_eq!(report.persisted(), 64 + 21);
}
