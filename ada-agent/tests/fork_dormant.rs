//! A `fork` child of a dormant agent (its controller gone) is not dormant for good: the child
//! forgets the parent's early out and watcher, and when a controller attaches (a new epoch) the
//! child's thread registers and records.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_registry::RegistryMode;
use ada_shm::clock::MonotonicClock;
use std::time::{Duration, Instant};

#[test]
fn a_fork_child_of_a_dormant_agent_registers_once_a_controller_attaches() {
    let (reg, config) = common::gone_controller_registry(8);
    let agent =
        ada_agent::install(Agent::from_registry(reg.clone()).with_mode_config(config)).unwrap();
    let t = Instant::now();
    while !agent.is_dormant() {
        assert!(t.elapsed() < Duration::from_secs(5), "dormant");
        std::thread::sleep(Duration::from_millis(1));
    }
    ada_agent::enter_id(1); // the dormant early out
    // SAFETY: the child only records, reads the segment and exits with `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork");
    if child == 0 {
        // A controller attaches (the segment is shared with the parent).
        reg.control().withdraw_ready();
        reg.control().tick_heartbeat(MonotonicClock::read());
        reg.control().publish_ready(RegistryMode::DualWrite);
        let me = std::process::id();
        let t = Instant::now();
        let mut registered = false;
        while t.elapsed() < Duration::from_secs(5) {
            reg.control().tick_heartbeat(MonotonicClock::read());
            ada_agent::enter_id(2);
            if reg.view().live_slots().any(|s| s.owner.pid == me) {
                registered = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let code = match (registered, agent.is_dormant()) {
            (true, _) => 0,
            (false, true) => 10,
            (false, false) => 11,
        };
        // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `child` is this process's child; `status` is a valid out pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child registered after the new epoch (10: still dormant, 11: not registered)"
    );
}
