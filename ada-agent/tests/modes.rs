//! The agent's modes as its threads' writers see them, on an agent that is not the process's
//! global one, ticked by hand with fake times: spill before drop while the controller drains
//! (steady), no spill while it is stalled (the drop policy counts the loss), and a new epoch
//! (a restarted controller) makes a writer leave at its next slow path, never before.

mod common;

use ada_agent::mode::{AgentMode, ModeConfig};
use ada_agent::{Agent, Flow, ThreadWriter};
use ada_registry::{Registry, RegistryConfig, RegistryMode, RingGeometry};
use common::{CALL, drain_fallback, drain_slot};

const MS: u64 = 1_000_000;

/// Two 256-byte index rings per thread (4 records each after the header), a 64-record fallback
/// ring, ready and steady.
fn registry() -> Registry {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 2,
            geometry: RingGeometry {
                index_rings: 2,
                index_ring_bytes: 256,
                ..RingGeometry::default()
            },
            fallback_records: 64,
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    reg.segment().unlink().unwrap();
    reg.control().tick_heartbeat(1);
    reg.control().publish_ready(RegistryMode::PerThreadOnly);
    reg
}

#[test]
fn steady_lanes_spill_before_they_drop_and_stalled_lanes_do_not() {
    let reg = registry();
    let config = ModeConfig::default();
    let agent = Agent::from_registry(reg.clone()).with_mode_config(config);
    let t0 = 1_000 * MS;
    assert_eq!(agent.tick_mode(t0).unwrap().mode, AgentMode::Steady);
    let mut w = ThreadWriter::register(&agent).unwrap();
    // 8 events fill both rings (nobody drains); the next 5 spill.
    for id in 0..13 {
        assert_eq!(w.enter(id), Flow::Stay);
    }
    let (index, _) = w.counters();
    assert_eq!(
        (index.events_written, index.spilled, index.events_dropped),
        (13, 5, 0)
    );
    // Stalled: the heartbeat has not moved for longer than the threshold.
    let stalled = agent.tick_mode(t0 + config.stall_after_ns + 1).unwrap();
    assert_eq!(stalled.mode, AgentMode::Stalled);
    for id in 13..16 {
        assert_eq!(w.enter(id), Flow::Stay);
    }
    let (index, _) = w.counters();
    assert_eq!(
        (index.events_written, index.spilled, index.refused),
        (16, 5, 3),
        "a stalled lane keeps its rings and counts its losses"
    );
    // The spilled events are in the fallback ring, tagged with the thread, once each.
    let fallback = drain_fallback(&reg);
    let spilled: Vec<(u32, u64)> = fallback
        .iter()
        .map(|(_, _, r)| (r.kind, r.function_id))
        .collect();
    assert_eq!(spilled, (8..13).map(|id| (CALL, id)).collect::<Vec<_>>());
    assert!(
        fallback
            .iter()
            .all(|(pid, tid, _)| (*pid, *tid) == (std::process::id(), common::gettid()))
    );
    // Every event is in exactly one place: its rings (8), the fallback ring (5) or lost (3).
    w.flush();
    let slot = w.slot_index();
    drop(w);
    let d = drain_slot(&reg, slot);
    let in_rings: Vec<u64> = d
        .index
        .iter()
        .filter(|r| r.kind == CALL)
        .map(|r| r.function_id)
        .collect();
    assert_eq!(in_rings, (0..8).collect::<Vec<_>>());
}

#[test]
fn a_new_epoch_makes_a_writer_leave_at_its_next_slow_path() {
    let reg = registry();
    let agent = Agent::from_registry(reg.clone());
    let t0 = 1_000 * MS;
    agent.tick_mode(t0).unwrap();
    let mut w = ThreadWriter::register(&agent).unwrap();
    for id in 0..3 {
        assert_eq!(w.enter(id), Flow::Stay);
    }
    // The controller restarts: ready again under a new epoch.
    reg.control().withdraw_ready();
    reg.control().tick_heartbeat(2);
    reg.control().publish_ready(RegistryMode::DualWrite);
    assert_eq!(reg.control().agent_stats().reattaches, 0);
    let tick = agent.tick_mode(t0 + MS).unwrap();
    assert!(tick.reattached);
    assert_eq!(tick.mode, AgentMode::WarmUp);
    assert_eq!(reg.control().agent_stats().reattaches, 1);
    // The fast path does not look: the ring still has room for one record.
    assert_eq!(w.enter(3), Flow::Stay);
    // The ring is full: the swap is a slow path, which notices.
    assert_eq!(w.enter(4), Flow::Leave);
    drop(w);
    // A writer registered under the new generation stays.
    let mut fresh = ThreadWriter::register(&agent).unwrap();
    for id in 0..9 {
        assert_eq!(fresh.enter(id), Flow::Stay, "event {id}");
    }
}
