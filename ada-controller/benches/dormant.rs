//! The cost of a recording call in a traced process whose controller died and never came back
//! (the agent is dormant: see `ada_agent::mode::dormant`): each call takes the untraced early
//! out plus a thread-local count. Run it with the `untraced` bench, in the same command, to
//! compare: `cargo bench -p ada-controller --bench untraced --bench dormant`.

use ada_agent::mode::ModeConfig;
use ada_registry::{Registry, RegistryConfig, RegistryMode, SlotState};
use ada_shm::clock::{ClockId, MonotonicClock};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bench(c: &mut Criterion) {
    let reg = Registry::create(&RegistryConfig::default(), &[]).unwrap();
    reg.segment().unlink().unwrap();
    // The controller: a process that has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    reg.control().initialize(ClockId::Monotonic, gone_pid);
    reg.control().tick_heartbeat(MonotonicClock::read());
    reg.control().publish_ready(RegistryMode::PerThreadOnly);
    let config = ModeConfig {
        stall_after_ns: 1_000_000,
        period_ns: 1_000_000,
        dormant_after_ns: 2_000_000,
    };
    let agent =
        ada_agent::install(ada_agent::Agent::from_registry(reg.clone()).with_mode_config(config))
            .expect("first agent of this process");
    ada_agent::enter_id(1);
    let t = Instant::now();
    while !agent.is_dormant() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the agent went dormant"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Record until the thread has given its slot back (its next ring swap).
    while reg
        .view()
        .live_slots()
        .any(|s| s.state == SlotState::Active)
    {
        ada_agent::enter_id(2);
    }
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("dormant");
    let mut g = c.benchmark_group("dormant");
    g.bench_function("enter_id", |b| b.iter(|| ada_agent::enter_id(black_box(7))));
    g.bench_function("span_enter_exit", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();
    assert!(
        agent.is_dormant(),
        "still dormant: the figures are the dormant path's"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
