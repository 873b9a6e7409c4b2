//! The cost of a recording call in a process that is not traced (`ADA_SHM` unset): the
//! "near-free no-op".
//!
//! `cargo bench -p ada-controller --bench untraced`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    // SAFETY: no other thread exists yet in this benchmark process.
    unsafe { std::env::remove_var(ada_agent::ENV_SEGMENT) };
    assert!(!ada_agent::is_enabled());
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("untraced");
    let mut g = c.benchmark_group("untraced");
    g.bench_function("enter_id", |b| b.iter(|| ada_agent::enter_id(black_box(7))));
    g.bench_function("span_enter_exit", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
