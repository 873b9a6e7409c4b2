//! The record path in steady state, without a drain that cannot keep up: the global agent on a
//! registry whose heartbeat a helper thread ticks (so the agent is steady), index lane under
//! drop-oldest (a full ring is recycled by the thread itself, so the pool never runs dry and
//! nothing spills), next to the bare baselines (a 32-byte thread-local store plus a clock read:
//! `clock_gettime(CLOCK_MONOTONIC)`, or the time-stamp counter). The segment names the TSC as
//! its clock where the counter is invariant (issue 15), so the agent stamps with it. Written
//! against APIs that predate issue 14's agent modes; since issue 15 it needs
//! `RegistryConfig::clock` (an A/B against older code drops that field and the TSC baseline).
//!
//! `cargo bench -p ada-controller --bench steady_path`

use ada_backpressure::{DropPolicy, LanePolicies};
use ada_registry::{BackpressureSettings, Registry, RegistryConfig, RegistryMode};
use ada_shm::clock::{ClockId, MonotonicClock};
use criterion::{Criterion, criterion_group, criterion_main};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

thread_local! {
    static BARE: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

fn bench(c: &mut Criterion) {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 4,
            backpressure: BackpressureSettings {
                policies: LanePolicies {
                    index: DropPolicy::DropOldest,
                    detail: DropPolicy::DropOldest,
                },
                ..BackpressureSettings::default()
            },
            clock: if ada_shm::tsc::invariance().is_invariant() {
                ClockId::Tsc
            } else {
                ClockId::Monotonic
            },
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    reg.segment().unlink().unwrap();
    eprintln!("steady_path bench: session clock {}", reg.clock().name());
    let control = reg.clone();
    control.control().tick_heartbeat(MonotonicClock::read());
    control.control().publish_ready(RegistryMode::PerThreadOnly);
    std::thread::spawn(move || {
        loop {
            control.control().tick_heartbeat(MonotonicClock::read());
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    ada_agent::install(ada_agent::Agent::from_registry(reg.clone())).expect("first agent");
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("steady");
    let mut g = c.benchmark_group("steady_path");
    g.bench_function("bare_tls_store_plus_clock", |b| {
        b.iter(|| {
            let ts = MonotonicClock::read();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    g.bench_function("bare_tls_store_plus_tsc", |b| {
        b.iter(|| {
            let ts = ada_shm::tsc::ticks();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    g.bench_function("enter_id", |b| b.iter(|| ada_agent::enter_id(black_box(7))));
    g.bench_function("span_enter_exit", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
