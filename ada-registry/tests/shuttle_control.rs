//! shuttle: a controller that restarts three times (each time: readiness withdrawn, a
//! heartbeat, ready under the next epoch, then steady) while an agent keeps taking snapshots.
//! The agent sees epochs only grow; a snapshot under epoch `k` carries epoch `k`'s heartbeat or
//! a later one and, if ready, a mode some publication of epoch `k` or later stored; after the
//! last restart it sees epoch 3, ready and steady.
#![cfg(shuttle)]

use ada_registry::{ControlBlock, RegistryMode};
use ada_shm::clock::ClockId;
use ada_shm::sync::thread;
use ada_testkit::model::{self, leak};

const RESTARTS: u32 = 3;

#[test]
fn snapshots_follow_restarts_in_order() {
    model::check_pct(
        || {
            let cb: &'static ControlBlock = leak(ControlBlock::default());
            cb.initialize(ClockId::Monotonic, 1);
            let controller = thread::spawn(move || {
                for k in 1..=RESTARTS {
                    cb.withdraw_ready();
                    cb.tick_heartbeat(u64::from(k) * 10);
                    assert_eq!(cb.publish_ready(RegistryMode::DualWrite), k);
                    cb.tick_heartbeat(u64::from(k) * 10 + 1);
                    cb.set_mode(RegistryMode::PerThreadOnly);
                }
            });
            let agent = thread::spawn(move || {
                let mut last = 0;
                for _ in 0..12 {
                    let s = cb.snapshot();
                    assert!(s.epoch >= last, "epochs only grow: {s:?} after {last}");
                    last = s.epoch;
                    if s.epoch > 0 {
                        assert!(s.heartbeat_ns >= u64::from(s.epoch) * 10, "{s:?}");
                    }
                    if s.ready {
                        assert!(s.epoch > 0, "ready only under an epoch: {s:?}");
                        assert!(s.mode.is_some(), "{s:?}");
                    }
                    thread::yield_now();
                }
            });
            controller.join().unwrap();
            agent.join().unwrap();
            let s = cb.snapshot();
            assert_eq!((s.ready, s.epoch), (true, RESTARTS));
            assert_eq!(s.mode, Some(RegistryMode::PerThreadOnly));
        },
        3,
    );
}
