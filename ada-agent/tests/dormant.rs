//! A controller that died and does not come back: once the heartbeat has been still for the
//! dormant threshold and the controller's processes are gone, the global agent goes dormant.
//! A recording thread gives its slot back at its next slow path (what it recorded stays in the
//! slot for a later controller) and from then on each event costs the untraced early out plus
//! a thread-local count. A controller that attaches (a new epoch) ends it: the thread registers
//! again and reports the events it could not record, as events of a thread without a slot.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_registry::{RegistryMode, SlotState};
use ada_shm::clock::MonotonicClock;
use common::drain_slot;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_gone_controller_makes_the_agent_dormant_until_a_new_epoch() {
    let (reg, config) = common::gone_controller_registry(8);
    let agent = ada_agent::install(Agent::from_registry(reg.clone()).with_mode_config(config))
        .expect("first install");
    ada_agent::enter_id(1);
    let slot = reg.view().live_slots().next().unwrap().index;
    wait_for("dormant", || agent.is_dormant());

    // Recording goes on into the slot until the next ring swap, then the thread leaves it.
    let mut recorded = 1u64;
    while reg.view().slot(slot).unwrap().state() == Ok(SlotState::Active) {
        ada_agent::enter_id(2);
        recorded += 1;
        assert!(recorded < 5_000, "left at the first swap");
    }
    for _ in 0..100 {
        ada_agent::enter_id(3);
        ada_agent::message(&SITE, "not recorded");
    }
    recorded += 100;
    assert_eq!(
        reg.view()
            .live_slots()
            .filter(|s| s.state == SlotState::Active)
            .count(),
        0
    );

    // A thread that starts and ends while dormant reports its count on its way out.
    let before = reg.header().counters().unregistered_by_lane[0];
    std::thread::spawn(|| {
        for _ in 0..10 {
            ada_agent::enter_id(5);
        }
    })
    .join()
    .unwrap();
    assert_eq!(reg.header().counters().unregistered_by_lane[0], before + 10);
    recorded += 10;

    // A controller attaches: a new epoch, a live heartbeat.
    reg.control().withdraw_ready();
    reg.control().tick_heartbeat(MonotonicClock::read());
    reg.control().publish_ready(RegistryMode::DualWrite);
    wait_for("awake", || !agent.is_dormant());
    ada_agent::enter_id(4);
    let c = reg.header().counters();
    let kept = drain_slot(&reg, slot).index.len() as u64;
    assert_eq!(
        kept + c.unregistered_by_lane[0],
        recorded,
        "every index event kept in the old slot or counted: {c:?}"
    );
    assert_eq!(c.unregistered_by_lane[1], 100, "the messages");
    assert!(kept > 0 && c.unregistered_by_lane[0] >= 100);
    let stats = reg.control().agent_stats();
    assert_eq!((stats.dormancies, stats.reattaches), (1, 1), "{stats:?}");
    assert!(ada_agent::unregister_current_thread());
}

static SITE: ada_agent::Callsite = ada_agent::Callsite::new("dormant::site");
