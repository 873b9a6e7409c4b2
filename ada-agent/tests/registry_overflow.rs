//! 100 threads against a 64-slot registry, all alive at once: 64 hold slots and record into
//! their rings; the other 36 are refused and their index events reach the shared fallback ring,
//! tagged with their thread. Every event of every thread is found exactly once.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use common::{CALL, drain_fallback, drain_slot, in_process_registry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

const THREADS: u64 = 100;
const CALLS: u64 = 30;

#[test]
fn a_hundred_threads_against_sixty_four_slots_are_all_traced() {
    let reg = in_process_registry(64);
    ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");
    let all_alive = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let all_alive = Arc::clone(&all_alive);
            std::thread::spawn(move || {
                all_alive.wait();
                for seq in 0..CALLS {
                    let id = (t << 32) | seq;
                    ada_agent::enter_id(id);
                    ada_agent::exit_id(id);
                }
                // Nobody leaves before everyone has recorded, so no slot is freed and reused.
                all_alive.wait();
                common::gettid()
            })
        })
        .collect();
    let tids: BTreeSet<u64> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(tids.len(), THREADS as usize);

    // (thread, seq) → entries seen, from the slots and from the fallback ring.
    let mut seen: BTreeMap<(u64, u64), u32> = BTreeMap::new();
    let mut in_slots = BTreeSet::new();
    for slot in 0..64 {
        let d = drain_slot(&reg, slot);
        for r in d.index.iter().filter(|r| r.kind == CALL) {
            *seen
                .entry((r.function_id >> 32, r.function_id & 0xffff_ffff))
                .or_default() += 1;
            in_slots.insert(r.function_id >> 32);
        }
    }
    let mut via_fallback = BTreeSet::new();
    for (pid, tid, r) in drain_fallback(&reg) {
        assert_eq!(pid, std::process::id());
        assert!(tids.contains(&tid));
        if r.kind == CALL {
            *seen
                .entry((r.function_id >> 32, r.function_id & 0xffff_ffff))
                .or_default() += 1;
            via_fallback.insert(r.function_id >> 32);
        }
    }
    assert_eq!(in_slots.len(), 64);
    assert_eq!(via_fallback.len(), 36);
    assert!(in_slots.is_disjoint(&via_fallback));
    assert_eq!(
        seen.len() as u64,
        THREADS * CALLS,
        "every call of every thread"
    );
    assert!(seen.values().all(|&n| n == 1), "each exactly once");
    let c = reg.header().counters();
    assert_eq!(
        (c.unregistered_drops, c.capacity_failures),
        (0, 36),
        "{c:?}"
    );
    assert_eq!(reg.fallback().unwrap().refused(), 0);
}
