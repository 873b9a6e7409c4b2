//! Before the controller publishes `registry_ready`, the global agent's threads register no
//! slot: their index events go to the shared fallback ring, in order and at their own depths,
//! until it is full; the rest are refused and counted by the ring. The first event after ready
//! registers the thread (no wait for the mode watcher) and continues its nesting in its own
//! rings.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_agent::mode::AgentMode;
use ada_registry::{Registry, RegistryConfig};
use common::{CALL, RETURN, drain_fallback, drain_slot, shape};

#[test]
fn events_before_ready_go_to_the_fallback_ring_and_the_thread_registers_once_ready() {
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

    // 40 calls, each an entry and an exit: 80 events for 64 records.
    ada_agent::enter_id(1000); // held open across ready
    for id in 0..39 {
        ada_agent::enter_id(id);
        ada_agent::exit_id(id);
    }
    assert_eq!(reg.view().live_slots().count(), 0, "no slot before ready");
    let fallback = drain_fallback(&reg);
    let records: Vec<_> = fallback.iter().map(|(_, _, r)| *r).collect();
    let mut expected = vec![(CALL, 1000, 1)];
    for id in 0..39 {
        expected.extend([(CALL, id, 2), (RETURN, id, 2)]);
    }
    expected.truncate(64);
    assert_eq!(shape(&records), expected, "the first 64, in order");
    // The ring counted what it refused: nothing is lost silently.
    let ring = reg.fallback().unwrap();
    assert_eq!(ring.refused(), 79 - 64);

    // The controller goes live: the next event registers the thread at once.
    common::publish_ready(&reg);
    ada_agent::exit_id(1000);
    assert_ne!(agent.mode(), AgentMode::Startup);
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), 1);
    assert!(ada_agent::unregister_current_thread());
    let d = drain_slot(&reg, live[0].index);
    assert_eq!(
        shape(&d.index),
        vec![(RETURN, 1000, 1)],
        "nesting continued"
    );
    assert!(drain_fallback(&reg).is_empty());
    assert_eq!(reg.header().counters().unregistered_drops, 0);
    let stats = reg.control().agent_stats();
    assert!(stats.mode_entries[2] >= 1, "{stats:?}");
}
