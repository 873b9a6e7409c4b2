//! The drain paused by the hook: the agent's thread fills its pool, spills into the shared
//! fallback ring until that is full, then refuses (drop-newest); with the heartbeat still for
//! longer than its threshold the agent is **stalled** (counted); the drain resumes, the
//! heartbeat moves, the agent **recovers** and the thread goes on in its own rings. Every event
//! is accounted exactly: persisted from its rings, spilled and delivered from the fallback
//! ring, or lost by refusal and marked.
//!
//! One `#[test]`: the global agent is once per process.

use ada_agent::mode::{AgentMode, ModeConfig};
use ada_controller::{ControllerBuilder, CountingSink, DrainPoint, LaneKind, SessionInfo};
use ada_registry::RingGeometry;
use ada_testkit::PauseGate;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < WAIT, "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_paused_drain_stalls_the_agent_and_every_event_is_accounted_when_it_recovers() {
    let gate = Arc::new(PauseGate::new());
    let g = Arc::clone(&gate);
    let controller = ControllerBuilder::new()
        .capacity(2)
        .geometry(RingGeometry {
            index_rings: 2,
            index_ring_bytes: 1 << 10,
            ..RingGeometry::default()
        })
        .fallback_records(64)
        .warm_up(Duration::from_millis(1))
        .drain_hook(Arc::new(move |point| {
            if point == DrainPoint::BeforePass {
                g.checkpoint();
            }
        }))
        .create()
        .unwrap();
    let registry = controller.registry().clone();
    let config = ModeConfig {
        stall_after_ns: 500_000_000,
        period_ns: 1_000_000,
        dormant_after_ns: 60_000_000_000,
    };
    let agent = ada_agent::install(
        ada_agent::Agent::from_registry(registry.clone()).with_mode_config(config),
    )
    .unwrap();
    let running = controller
        .start(
            CountingSink::default(),
            SessionInfo::new(std::process::id()),
        )
        .unwrap();
    let mut written = 0u64;
    let mut record = |n: u64| {
        for _ in 0..n {
            ada_agent::enter_id(7);
            written += 1;
        }
    };
    record(5);
    wait_for("steady", || agent.mode() == AgentMode::Steady);

    gate.pause();
    assert!(gate.wait_until_paused(WAIT));
    // A burst far beyond the two rings and the 64-record fallback ring.
    record(200);
    wait_for("stalled", || agent.mode() == AgentMode::Stalled);
    record(20);
    gate.resume();
    wait_for("recovered", || agent.mode() != AgentMode::Stalled);
    // The drain returns the rings: the thread's next events are stored again.
    wait_for("a ring returned", || {
        registry
            .view()
            .live_slots()
            .next()
            .and_then(|s| {
                s.lanes
                    .lane(LaneKind::Index)
                    .free_queue()
                    .len()
                    .checked_sub(1)
            })
            .is_some()
    });
    record(10);
    assert!(ada_agent::unregister_current_thread());
    let report = running.stop(Some(0)).unwrap();

    assert!(report.is_balanced(), "{report:?}");
    let index = report.threads[0].lane(LaneKind::Index);
    assert_eq!(index.written, written);
    assert_eq!((index.spilled, index.via_fallback), (64, 64), "{index:?}");
    let refused = index.lost.refused;
    assert!(refused > 20, "the stalled stretch was refused: {index:?}");
    assert_eq!(
        index.persisted + index.spilled + refused,
        written,
        "kept in its rings, spilled, or refused: {index:?}"
    );
    assert_eq!(
        (index.marked_lost, index.announced_at_end),
        (refused, 0),
        "the gap is marked where it happened: {index:?}"
    );
    assert_eq!(report.fallback.delivered, 64);
    // The stall and the recovery, counted by the agent and reported.
    let counts = agent.mode_counts();
    assert_eq!(counts.get(AgentMode::Steady, AgentMode::Stalled), 1);
    assert!(
        counts.get(AgentMode::Stalled, AgentMode::Steady) == 1,
        "{counts:?}"
    );
    assert!(report.agent_stats.mode_entries[AgentMode::Stalled as usize] >= 1);
}
