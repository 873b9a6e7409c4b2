//! Readiness (issue 14, controller side): `registry_ready` is published by the standby, before
//! any session exists, and the heartbeat ticks there; the controller owns the mode, warm-up
//! until the drain has been healthy for the warm-up period *of its clock* (a fake one here,
//! driven by the test while the drain is held at the hook), steady after; an unhealthy gap
//! starts the period again. `attach` refuses a live drain and continues a released one under
//! the next epoch.

use ada_controller::{ControllerBuilder, ControllerError, CountingSink, DrainPoint, SessionInfo};
use ada_registry::{RegistryError, RegistryMode};
use ada_shm::clock::Clock;
use ada_testkit::{FakeClock, PauseGate};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MS: u64 = 1_000_000;
const WAIT: Duration = Duration::from_secs(20);

/// A controller on `clock` whose drain stops at `gate` before every pass.
fn gated(clock: &FakeClock, gate: &Arc<PauseGate>, warm_up: Duration) -> ControllerBuilder {
    let g = Arc::clone(gate);
    ControllerBuilder::new()
        .capacity(2)
        .warm_up(warm_up)
        .clock(Arc::new(clock.clone()))
        .drain_hook(Arc::new(move |point| {
            if point == DrainPoint::BeforePass {
                g.checkpoint();
            }
        }))
}

/// Lets the held drain make at least two more loop iterations (reading the clock each time),
/// then holds it again.
fn step(gate: &PauseGate) {
    let passed = gate.passed();
    gate.resume();
    assert!(gate.wait_for_passes(passed + 2, WAIT), "the drain moves");
    gate.pause();
    assert!(gate.wait_until_paused(WAIT), "the drain is held again");
}

#[test]
fn the_standby_is_ready_and_ticks_the_heartbeat_before_any_session_exists() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let registry = controller.registry().clone();
    assert!(
        !registry.control().snapshot().ready,
        "not before the standby"
    );
    let standby = controller.standby().unwrap();
    let s = registry.control().snapshot();
    assert!(s.ready, "ready is published by the standby");
    assert_eq!(s.epoch, 1);
    assert_eq!(standby.epoch(), 1);
    assert_eq!(
        s.mode,
        Some(RegistryMode::DualWrite),
        "warm-up until draining"
    );
    assert_eq!(s.heartbeat_ns, standby.ready_at_ns());
    assert_ne!(registry.control().drain_owner(), 0, "the drain is claimed");
    // No session yet, and still the heartbeat moves: agents never see a stalled controller.
    let deadline = Instant::now() + WAIT;
    while registry.control().snapshot().heartbeat_ns == s.heartbeat_ns {
        assert!(
            Instant::now() < deadline,
            "the standby's heartbeat never moved"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Dropped without a session: readiness withdrawn, the claim given back.
    drop(standby);
    assert!(!registry.control().snapshot().ready);
    assert_eq!(registry.control().drain_owner(), 0);
}

#[test]
fn warm_up_lasts_the_period_of_healthy_passes_on_the_controllers_clock_then_steady() {
    let clock = FakeClock::new(1_000 * MS);
    let gate = Arc::new(PauseGate::new());
    gate.pause();
    let controller = gated(&clock, &gate, Duration::from_millis(50))
        .create()
        .unwrap();
    let registry = controller.registry().clone();
    let standby = controller.standby().unwrap();
    assert_eq!(standby.ready_at_ns(), 1_000 * MS, "the injected clock");
    assert_eq!(registry.control().snapshot().heartbeat_ns, 1_000 * MS);
    let running = standby
        .start(CountingSink::default(), SessionInfo::new(0))
        .unwrap();
    assert!(gate.wait_until_paused(WAIT));
    // The period starts at the first drain iteration (clock 1000 ms). Healthy steps of 10 ms
    // (within the healthy gap) for 40 ms: still warm-up, however many passes that took.
    for _ in 0..4 {
        clock.advance(10 * MS);
        step(&gate);
        assert_eq!(
            registry.control().snapshot().mode,
            Some(RegistryMode::DualWrite),
            "at {} ms of the fake clock, after {} passes",
            clock.now_ns() / MS,
            gate.passed()
        );
    }
    assert!(gate.passed() >= 8, "many passes, still warm-up");
    assert_eq!(
        registry.control().snapshot().heartbeat_ns,
        1_040 * MS,
        "the heartbeat is the injected clock's"
    );
    clock.advance(10 * MS);
    step(&gate);
    assert_eq!(
        registry.control().snapshot().mode,
        Some(RegistryMode::PerThreadOnly),
        "steady once 50 ms of healthy draining passed"
    );
    gate.resume();
    let report = running.stop(Some(0)).unwrap();
    let r = report.readiness;
    assert_eq!((r.epoch, r.ready_at_ns), (1, 1_000 * MS));
    assert_eq!(r.steady_at_ns, Some(1_050 * MS));
    assert_eq!(r.ready_to_steady(), Some(Duration::from_millis(50)));
    assert_eq!(
        (r.warm_up, r.warm_up_restarts),
        (Duration::from_millis(50), 0)
    );
}

#[test]
fn an_unhealthy_gap_starts_the_warm_up_period_again() {
    let clock = FakeClock::new(1_000 * MS);
    let gate = Arc::new(PauseGate::new());
    gate.pause();
    let builder = gated(&clock, &gate, Duration::from_millis(50));
    let gap = builder.healthy_gap();
    assert_eq!(gap, Duration::from_millis(101), "1 ms interval + 100 ms");
    let controller = builder.create().unwrap();
    let registry = controller.registry().clone();
    let running = controller
        .start(CountingSink::default(), SessionInfo::new(0))
        .unwrap();
    assert!(gate.wait_until_paused(WAIT));
    let mode = || registry.control().snapshot().mode;
    for _ in 0..4 {
        clock.advance(10 * MS);
        step(&gate);
    }
    // The drain is held for longer than the healthy gap (a stalled pass): the 40 healthy ms
    // count for nothing.
    clock.advance(200 * MS);
    step(&gate);
    assert_eq!(mode(), Some(RegistryMode::DualWrite));
    for _ in 0..4 {
        clock.advance(10 * MS);
        step(&gate);
        assert_eq!(mode(), Some(RegistryMode::DualWrite), "40 ms since the gap");
    }
    clock.advance(10 * MS);
    step(&gate);
    assert_eq!(
        mode(),
        Some(RegistryMode::PerThreadOnly),
        "50 ms since the gap"
    );
    gate.resume();
    let r = running.stop(None).unwrap().readiness;
    assert_eq!(r.warm_up_restarts, 1);
    assert_eq!(r.steady_at_ns, Some((1_000 + 40 + 200 + 50) * MS));
    assert_eq!(r.ready_to_steady(), Some(Duration::from_millis(290)));
}

#[test]
fn a_warm_up_beyond_a_minute_is_refused() {
    let e = ControllerBuilder::new()
        .warm_up(Duration::from_secs(61))
        .create()
        .unwrap_err();
    assert!(matches!(e, ControllerError::WarmUp(_)), "{e:?}");
    assert!(e.to_string().contains("warm-up"), "{e}");
}

#[test]
fn attach_refuses_a_live_drain_and_continues_a_released_one_under_the_next_epoch() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let name = controller.segment_name().to_owned();
    let registry = controller.registry().clone();
    let standby = controller.standby().unwrap();
    // A live drain (this process's own standby) is refused, naming its holder.
    let e = ControllerBuilder::new()
        .attach(&name)
        .unwrap()
        .standby()
        .unwrap_err();
    let me = std::process::id();
    assert!(
        matches!(e, ControllerError::DrainClaim(RegistryError::DrainClaimed { pid }) if pid == me),
        "{e:?}"
    );
    assert!(e.to_string().contains(&format!("process {me}")), "{e}");
    assert_eq!(
        registry.control().snapshot().epoch,
        1,
        "nothing was published"
    );
    drop(standby);
    // Released: an attached controller takes it, under epoch 2, as a continuation.
    let attached = ControllerBuilder::new().attach(&name).unwrap();
    assert!(attached.is_continuation());
    let running = attached
        .start(CountingSink::default(), SessionInfo::new(0))
        .unwrap();
    let s = registry.control().snapshot();
    assert!(s.ready);
    assert_eq!(s.epoch, 2);
    let report = running.stop(None).unwrap();
    let c = report.continuation.expect("a continuation");
    assert_eq!((c.segment.as_str(), c.epoch), (name.as_str(), 2));
    assert_eq!(
        c.previous_controller_pid, me,
        "the creator, as the control block says"
    );
    assert_eq!(report.readiness.epoch, 2);

    let e = ControllerBuilder::new()
        .attach("/ada_no_such_segment_x")
        .unwrap_err();
    assert!(matches!(e, ControllerError::Attach { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("cannot attach to the segment /ada_no_such"),
        "{e}"
    );
}

/// A drain interval longer than the agents' stall threshold (here 400 ms against 250 ms): the
/// idle drain still stamps its heartbeat every `HEARTBEAT_EVERY`, so an agent watching it never
/// takes it for stalled.
#[test]
fn a_long_drain_interval_never_looks_stalled() {
    let controller = ControllerBuilder::new()
        .capacity(2)
        .drain_interval(Duration::from_millis(400))
        .create()
        .unwrap();
    let registry = controller.registry().clone();
    let running = controller
        .start(CountingSink::default(), SessionInfo::new(0))
        .unwrap();
    let agent = ada_agent::Agent::from_registry(registry);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1_500) {
        let tick = agent
            .tick_mode(ada_shm::clock::MonotonicClock::read())
            .unwrap();
        assert_ne!(tick.mode, ada_agent::mode::AgentMode::Stalled);
        std::thread::sleep(Duration::from_millis(10));
    }
    running.stop(None).unwrap();
}
