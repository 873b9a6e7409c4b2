//! The traced thread's cost per event while a controller drains it live (drain thread and ATF
//! writer running in this process), next to the bare baseline the design measures against: a
//! 32-byte thread-local store plus the same clock read.
//!
//! `cargo bench -p ada-controller --bench producer`

use ada_controller::{ControllerBuilder, SessionInfo};
use criterion::{Criterion, criterion_group, criterion_main};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static BARE: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

fn bench(c: &mut Criterion) {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(4)
        .output_dir(out.path())
        .create()
        .unwrap();
    ada_agent::install(ada_agent::Agent::from_registry(
        controller.registry().clone(),
    ))
    .expect("first agent of this process");
    let session = SessionInfo::new(std::process::id());
    let running = controller.start_default(session).unwrap();
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("bench_site");

    let mut g = c.benchmark_group("producer");
    g.bench_function("bare_tls_store_plus_clock", |b| {
        b.iter(|| {
            let ts = ada_shm::clock::MonotonicClock::read();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    g.bench_function("enter_id_live_drain", |b| {
        b.iter(|| ada_agent::enter_id(black_box(7)))
    });
    g.bench_function("span_enter_exit_live_drain", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();
    let report = running.stop(None).unwrap();
    eprintln!(
        "producer bench: {} events persisted, {} dropped (criterion writes far faster than one drain core persists)",
        report.persisted(),
        report.dropped()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
