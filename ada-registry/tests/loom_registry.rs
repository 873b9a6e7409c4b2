//! loom: concurrent registration hands out unique slots, a slot the drain sees as ACTIVE is
//! fully initialised (owner and lane queues), and exit → reclaim → reuse never lets two owners
//! hold one slot.
#![cfg(loom)]

use ada_registry::{HeapRegistry, LaneKind, RingGeometry, SlotOwner, SlotState};
use ada_shm::sync::{Arc, thread};
use ada_testkit::model::Witness;

fn owner(tid: u64) -> SlotOwner {
    SlotOwner {
        thread_id: tid,
        pid: 1,
        generation: 0,
        registered_ns: tid,
    }
}

fn small() -> RingGeometry {
    RingGeometry {
        index_rings: 2,
        index_ring_bytes: 256,
        detail_rings: 2,
        detail_ring_bytes: 256,
    }
}

#[test]
fn concurrent_registration_gets_unique_slots_visible_to_drain() {
    let saw_active = Witness::new();
    let witness = saw_active.clone();
    ada_testkit::model::check(move || {
        let reg = Arc::new(HeapRegistry::new(2, small()));
        let handles: Vec<_> = (1..=2u64)
            .map(|tid| {
                let reg = reg.clone();
                thread::spawn(move || {
                    let registration = reg.view().register(owner(tid)).expect("room for both");
                    let index = registration.slot.index();
                    // Keep the slot ACTIVE past the thread (dropping it would unregister).
                    std::mem::forget(registration);
                    index
                })
            })
            .collect();
        // The drain walks concurrently: whatever it sees as ACTIVE must be fully initialised.
        // It is its own thread, spawned last, so loom's first schedule runs it after the
        // registrations and works back from there; walking on this thread right away would
        // hide every registration from it (the registrant reads the slot word before it
        // claims it, tokio-rs/loom#392).
        let drain = {
            let (reg, witness) = (reg.clone(), witness.clone());
            thread::spawn(move || {
                for view in reg.view().live_slots() {
                    witness.hit();
                    assert_eq!(view.state, SlotState::Active);
                    assert!(view.owner.thread_id == 1 || view.owner.thread_id == 2);
                    let lane = view.lanes.lane(LaneKind::Index);
                    assert_eq!(lane.active_ring(), 0);
                    assert_eq!(lane.free_queue().len(), 1, "ring 1 is queued as free");
                }
            })
        };
        let a = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>();
        drain.join().unwrap();
        assert_ne!(a[0], a[1]);
        assert_eq!(reg.view().census()[SlotState::Active as usize], 2);
    });
    saw_active.expect_reached("the drain saw an ACTIVE slot while threads registered");
}

#[test]
fn exit_reclaim_and_reuse_hand_over_the_slot() {
    let refused = Witness::new();
    let witness = refused.clone();
    ada_testkit::model::check(move || {
        let reg = Arc::new(HeapRegistry::new(1, small()));
        let first = reg.view().register(owner(1)).unwrap();
        let (reg2, witness) = (reg.clone(), witness.clone());
        let newcomer = thread::spawn(move || {
            // Retries until the drain frees the only slot (bounded by the model's schedule).
            loop {
                match reg2.view().register(owner(2)) {
                    Ok(r) => {
                        let generation = r.slot.generation();
                        std::mem::forget(r); // stays ACTIVE
                        return generation;
                    }
                    Err(_) => {
                        witness.hit();
                        thread::yield_now()
                    }
                }
            }
        });
        let first_generation = first.slot.generation();
        first.slot.unregister().unwrap();
        // Drain: sees EXITED, "drains", frees.
        loop {
            if reg.view().reclaim(0) {
                break;
            }
            thread::yield_now();
        }
        let generation = newcomer.join().unwrap();
        assert_eq!(generation, first_generation + 1);
        let owner_now = reg.view().slot(0).unwrap().owner();
        assert_eq!(owner_now.thread_id, 2);
    });
    refused.expect_reached("the newcomer was refused while the slot was taken");
}

/// The owner's unregister races the controller declaring its process dead, the drain freeing
/// the slot and a new thread claiming it. Whatever the interleaving, the stale handle never
/// evicts the new owner: the slot ends ACTIVE under the newcomer's generation.
#[test]
fn a_stale_unregister_never_evicts_the_next_owner() {
    let (refused, accepted) = (Witness::new(), Witness::new());
    let (stale, fresh) = (refused.clone(), accepted.clone());
    ada_testkit::model::check(move || {
        let reg = Arc::new(HeapRegistry::new(1, small()));
        let first = reg.view().register(owner(1)).unwrap();
        let reg_b = reg.clone();
        let newcomer = thread::spawn(move || {
            loop {
                match reg_b.view().register(owner(2)) {
                    Ok(r) => {
                        let generation = r.slot.generation();
                        std::mem::forget(r); // stays ACTIVE
                        return generation;
                    }
                    Err(_) => thread::yield_now(),
                }
            }
        });
        // The controller: the owner's process is declared dead, the slot drained and freed.
        let controller = {
            let reg = reg.clone();
            thread::spawn(move || {
                reg.view().mark_process_dead(1);
                while !reg.view().reclaim(0) {
                    thread::yield_now();
                }
            })
        };
        // Meanwhile the first owner unregisters (it may be refused as stale, or win the race
        // against the controller's marking; both are fine).
        match first.slot.unregister() {
            Ok(_) => fresh.hit(),
            Err(_) => stale.hit(),
        }
        controller.join().unwrap();
        let generation = newcomer.join().unwrap();
        let (state, now) = reg.view().slot(0).unwrap().state_and_generation();
        assert_eq!(state, Ok(SlotState::Active), "the new owner was evicted");
        assert_eq!(now, generation);
        assert_eq!(reg.view().slot(0).unwrap().owner().thread_id, 2);
    });
    refused.expect_reached("the first owner's unregister was refused as stale");
    accepted.expect_reached("the first owner's unregister won the race");
}
