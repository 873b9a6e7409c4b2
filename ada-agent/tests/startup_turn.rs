//! A thread's first event after `registry_ready` registers it even while the mode watcher is
//! in the middle of a tick (preempted there, say): the tick the event would run cannot take
//! the turn, the agent's mode still says STARTUP, and before the fix the event went without a
//! ring — a detail event was then dropped (counted as unregistered) though the registry was
//! ready. Here the test holds the tick's turn across the thread's first events.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_agent::mode::AgentMode;
use ada_registry::{Registry, RegistryConfig};

static NOTE: ada_agent::Callsite = ada_agent::Callsite::new("note");

#[test]
fn the_first_event_after_ready_registers_while_a_tick_holds_the_turn() {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 4,
            fallback_records: 64,
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    reg.segment().unlink().unwrap();
    let agent = ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");
    assert_eq!(agent.mode(), AgentMode::Startup);

    // The watcher is mid-tick: nobody else can tick until the turn is given back.
    let turn = agent.hold_mode_turn().expect("no tick runs yet");
    common::publish_ready(&reg);
    std::thread::scope(|s| {
        s.spawn(|| {
            ada_agent::message(&NOTE, "the first event, a detail one");
            ada_agent::enter_id(7);
            ada_agent::exit_id(7);
            assert!(ada_agent::unregister_current_thread(), "it held a slot");
        });
    });
    let counters = reg.header().counters();
    assert_eq!(
        counters.unregistered_by_lane,
        [0, 0],
        "nothing went without a ring"
    );
    assert_eq!(counters.registrations, 1);
    assert_eq!(agent.mode(), AgentMode::Startup, "no tick ran meanwhile");
    drop(turn);
    let ring = reg.fallback().unwrap();
    assert_eq!(ring.refused(), 0);
    let fallback = common::drain_fallback(&reg);
    assert!(
        fallback.is_empty(),
        "nothing went to the fallback ring: {fallback:?}"
    );
    let slot = 0;
    let d = common::drain_slot(&reg, slot);
    assert_eq!(
        d.detail.len(),
        1,
        "the detail event is in the thread's own ring"
    );
    assert_eq!(d.index.len(), 2);
}
