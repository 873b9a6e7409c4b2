//! loom: readiness. The controller makes the registry ready (everything it set up before,
//! here a word standing for the registry's contents, and a first heartbeat) and publishes
//! `registry_ready` under epoch 1; an agent takes a snapshot concurrently. An agent that sees
//! ready sees the epoch, the mode and the heartbeat that came with it and the contents written
//! before it; one that does not see ready is in startup, never half-ready. After a restart
//! (ready withdrawn, a heartbeat, ready under epoch 2), a snapshot that sees epoch 2 sees its
//! heartbeat and mode: never the new epoch with the old controller's state.
#![cfg(loom)]

use ada_registry::{ControlBlock, RegistryMode};
use ada_shm::clock::ClockId;
use ada_shm::sync::{AtomicU64, Ordering, thread};
use ada_testkit::model::{self, Witness, leak};

#[test]
fn an_agent_that_sees_ready_sees_what_was_published_before_it() {
    let (ready, not_yet) = (Witness::new(), Witness::new());
    let (saw_ready, saw_not_ready) = (ready.clone(), not_yet.clone());
    model::check(move || {
        let cb: &'static ControlBlock = leak(ControlBlock::default());
        cb.initialize(ClockId::Monotonic, 1);
        let contents: &'static AtomicU64 = leak(AtomicU64::new(0));
        let controller = thread::spawn(move || {
            // Relaxed: published by `publish_ready`'s Release store, which is the point.
            contents.store(42, Ordering::Relaxed);
            cb.tick_heartbeat(7);
            cb.publish_ready(RegistryMode::DualWrite)
        });
        let s = cb.snapshot();
        if s.ready {
            saw_ready.hit();
            assert_eq!(s.epoch, 1);
            assert_eq!(s.mode, Some(RegistryMode::DualWrite));
            assert_eq!(s.heartbeat_ns, 7);
            // Relaxed: ordered by the snapshot's Acquire of `registry_ready`.
            assert_eq!(contents.load(Ordering::Relaxed), 42);
        } else {
            saw_not_ready.hit();
        }
        assert_eq!(controller.join().unwrap(), 1);
        let after = cb.snapshot();
        assert!(after.ready && after.epoch == 1 && after.heartbeat_ns == 7);
    });
    ready.expect_reached("an agent saw the registry ready");
    not_yet.expect_reached("an agent saw it not ready yet");
}

#[test]
fn a_restart_publishes_the_next_epoch_with_its_heartbeat() {
    let (second, other) = (Witness::new(), Witness::new());
    let (saw_second, saw_other) = (second.clone(), other.clone());
    model::check(move || {
        let cb: &'static ControlBlock = leak(ControlBlock::default());
        cb.initialize(ClockId::Monotonic, 1);
        cb.tick_heartbeat(5);
        cb.publish_ready(RegistryMode::PerThreadOnly);
        // A new controller takes over: readiness withdrawn, a heartbeat, ready again.
        let controller = thread::spawn(move || {
            cb.withdraw_ready();
            cb.tick_heartbeat(9);
            cb.publish_ready(RegistryMode::DualWrite)
        });
        let s = cb.snapshot();
        assert!((1..=2).contains(&s.epoch), "{s:?}");
        if s.epoch == 2 {
            // The new epoch comes with its own heartbeat and mode, and never with the first
            // controller's readiness (withdrawn before it): ready, if seen, is the new one's.
            saw_second.hit();
            assert_eq!(s.heartbeat_ns, 9, "{s:?}");
            assert_eq!(s.mode, Some(RegistryMode::DualWrite), "{s:?}");
        } else {
            saw_other.hit();
        }
        assert_eq!(controller.join().unwrap(), 2);
    });
    second.expect_reached("an agent saw the restarted controller's readiness");
    other.expect_reached("an agent saw the first controller's, or none");
}
