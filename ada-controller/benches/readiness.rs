//! Time from `registry_ready` to steady state: the controller publishes ready (warm-up mode)
//! in its standby, then switches to steady once its drain has been healthy for the warm-up
//! period. Measured as the controller records it (`Report::readiness`, its own clock), for the
//! default warm-up (50 ms) and a 1 ms one (what lies beyond the period: the drain loop's own
//! granularity).
//!
//! `cargo bench -p ada-controller --bench readiness`

use ada_controller::{ControllerBuilder, CountingSink, SessionInfo};
use ada_registry::RegistryMode;
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};

/// One session: start, wait for steady, stop; the controller's ready → steady time.
fn ready_to_steady(warm_up: Duration) -> Duration {
    let controller = ControllerBuilder::new()
        .capacity(1)
        .warm_up(warm_up)
        .create()
        .unwrap();
    let registry = controller.registry().clone();
    let running = controller
        .start(CountingSink::default(), SessionInfo::new(0))
        .unwrap();
    let t = Instant::now();
    while registry.control().snapshot().mode != Some(RegistryMode::PerThreadOnly) {
        assert!(t.elapsed() < Duration::from_secs(10), "steady");
        std::thread::sleep(Duration::from_micros(100));
    }
    let report = running.stop(None).unwrap();
    report
        .readiness
        .ready_to_steady()
        .expect("the session reached steady state")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("readiness");
    g.sample_size(10);
    for (name, warm_up) in [
        (
            "ready_to_steady_default_warm_up_50ms",
            Duration::from_millis(50),
        ),
        ("ready_to_steady_warm_up_1ms", Duration::from_millis(1)),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| ready_to_steady(warm_up)).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
