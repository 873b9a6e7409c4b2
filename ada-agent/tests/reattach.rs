//! A restarted controller (ready published again under a new epoch): the global agent's mode
//! watcher notices within a second and counts the re-attach; a thread that keeps recording
//! gives its slot back at its next ring swap (what it recorded stays there for the drain) and
//! registers again in a fresh slot, its open calls' nesting carried over.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_registry::{RegistryMode, SlotState};
use common::{CALL, drain_slot, in_process_registry};
use std::time::{Duration, Instant};

#[test]
fn threads_re_register_after_a_new_epoch() {
    let reg = in_process_registry(4);
    ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");
    ada_agent::enter_id(7); // open across the restart
    let first = reg.view().live_slots().next().unwrap().index;

    // The controller restarts.
    reg.control().withdraw_ready();
    reg.control()
        .tick_heartbeat(ada_shm::clock::MonotonicClock::read());
    reg.control().publish_ready(RegistryMode::DualWrite);
    let t = Instant::now();
    while reg.control().agent_stats().reattaches == 0 {
        assert!(t.elapsed() < Duration::from_secs(1), "noticed within 1 s");
        std::thread::sleep(Duration::from_millis(1));
    }

    // Until its next slow path the thread stays where it is; a ring's worth of events gets it
    // there (32 KiB rings: 1024 records).
    let mut id = 100;
    while reg.view().slot(first).unwrap().state() == Ok(SlotState::Active) {
        ada_agent::enter_id(id);
        ada_agent::exit_id(id);
        id += 1;
        assert!(id < 5_000, "left at the first swap");
    }
    ada_agent::exit_id(7);
    let live: Vec<_> = reg.view().live_slots().collect();
    let second = live
        .iter()
        .find(|s| s.state == SlotState::Active)
        .expect("registered again")
        .index;
    assert_ne!(second, first);
    assert!(ada_agent::unregister_current_thread());

    // Nothing is lost or doubled across the move: the old slot holds the first part, the new
    // one the rest, and the held-open call closes at its depth.
    let old = drain_slot(&reg, first);
    let new = drain_slot(&reg, second);
    let calls = |d: &common::Drained| {
        d.index
            .iter()
            .filter(|r| r.kind == CALL)
            .map(|r| r.function_id)
            .collect::<Vec<_>>()
    };
    let mut all = calls(&old);
    all.extend(calls(&new));
    let mut expected = vec![7];
    expected.extend(100..id);
    assert_eq!(all, expected);
    let last = new.index.last().unwrap();
    assert_eq!((last.function_id, last.call_depth), (7, 1));
    assert_eq!(reg.control().agent_stats().reattaches, 1);
}
