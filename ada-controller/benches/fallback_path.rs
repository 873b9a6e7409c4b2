//! The agent's record path for a thread with no slot (the registry is full): each index event
//! goes through the recording call's slow path into the shared fallback ring (one reservation,
//! one commit). A helper thread holds the registry's only slot; another drains the fallback
//! ring as a controller would, so the ring never fills. Next to it, the same call for a
//! registered thread's steady path.
//!
//! `cargo bench -p ada-controller --bench fallback_path`

use ada_registry::{Registry, RegistryConfig, RegistryMode};
use ada_shm::clock::MonotonicClock;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::mpsc;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 1,
            fallback_records: 1 << 16,
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    reg.segment().unlink().unwrap();
    let reg: &'static Registry = Box::leak(Box::new(reg));
    reg.control().tick_heartbeat(MonotonicClock::read());
    reg.control().publish_ready(RegistryMode::PerThreadOnly);
    // The controller's part: the heartbeat, and the fallback ring drained.
    std::thread::spawn(move || {
        let mut claim = reg.claim_drain().unwrap();
        let mut ring = claim.fallback().unwrap();
        loop {
            reg.control().tick_heartbeat(MonotonicClock::read());
            ring.drain(|_| {});
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    ada_agent::install(ada_agent::Agent::from_registry(reg.clone())).expect("first agent");
    // Another thread takes the only slot and keeps it.
    let (held, slot_taken) = mpsc::channel();
    std::thread::spawn(move || {
        ada_agent::enter_id(1);
        held.send(()).unwrap();
        std::thread::park();
    });
    slot_taken.recv().unwrap();
    let mut g = c.benchmark_group("fallback_path");
    g.bench_function("enter_id_no_slot", |b| {
        b.iter(|| ada_agent::enter_id(black_box(7)))
    });
    g.finish();
    let refused = reg.fallback().unwrap().refused();
    eprintln!("fallback_path: {refused} pushes refused (ring full)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
