//! A `fork` while another thread is in the middle of a mode tick: the child's copy of the
//! driver says a tick is running in a thread the child does not have; the child forgets it, so
//! its own ticks run (its mode machine is never frozen).
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_shm::clock::MonotonicClock;
use common::in_process_registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn a_fork_during_a_tick_leaves_the_childs_mode_machine_running() {
    let reg = in_process_registry(8);
    let agent = ada_agent::install(Agent::from_registry(reg)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ticking = Arc::clone(&stop);
    let ticker = std::thread::spawn(move || {
        // Relaxed: a stop flag; nothing else is published through it.
        while !ticking.load(Ordering::Relaxed) {
            let _ = agent.tick_mode(MonotonicClock::read());
        }
    });
    let mut stuck = 0;
    for _ in 0..100 {
        // SAFETY: the child only ticks, sleeps and exits with `_exit`.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork");
        if child == 0 {
            // The child is single-threaded: its first tick has nobody to wait for.
            let ticked = agent.tick_mode(MonotonicClock::read()).is_some();
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if ticked { 0 } else { 10 }) };
        }
        let mut status = 0;
        // SAFETY: `child` is this process's child; `status` is a valid out pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        if libc::WEXITSTATUS(status) != 0 {
            stuck += 1;
        }
    }
    // Relaxed: see the ticker.
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    assert_eq!(stuck, 0, "children whose mode machine could never tick");
}
