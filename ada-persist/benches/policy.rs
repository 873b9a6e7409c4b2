//! Marking policy benchmarks: `symbol_verdict` over a 100-trigger policy (the cost a callsite
//! pays once, when its name registers; goal < 1 µs), for a symbol that no trigger matches, one
//! that an exact name matches and one that a regex matches; and compiling the 100 triggers.
//!
//! Run: `cargo bench -p ada-persist --bench policy`

use ada_persist::{MarkingPolicy, TriggerSet};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// 100 triggers: 60 exact names (half qualified), 30 regexes, 10 case-insensitive regexes.
fn hundred() -> Vec<String> {
    let mut specs = Vec::new();
    for i in 0..30 {
        specs.push(format!("symbol=handler_{i}"));
        specs.push(format!("symbol=service{i}::request_{i}"));
    }
    for i in 0..30 {
        specs.push(format!("symbol~=^worker_{i}_[a-z]+$"));
    }
    for i in 0..10 {
        specs.push(format!("symbol~i=slow.*path{i}"));
    }
    specs
}

fn bench(c: &mut Criterion) {
    let specs = hundred();
    let set = TriggerSet::parse(&specs).unwrap();
    let policy = MarkingPolicy::compile(&set).unwrap();
    assert_eq!(policy.triggers().len(), 100);
    let miss = "myapp::storage::btree::Node::insert_non_full";
    let exact = "myapp::api::handler_7";
    let regex = "myapp::SLOW_io_PATH9";
    assert_eq!(policy.symbol_verdict(miss), None);
    assert!(policy.symbol_verdict(exact).is_some());
    assert!(policy.symbol_verdict(regex).is_some());

    let mut g = c.benchmark_group("symbol_verdict_100_patterns");
    g.bench_function("miss", |b| {
        b.iter(|| policy.symbol_verdict(black_box(miss)))
    });
    g.bench_function("exact_hit", |b| {
        b.iter(|| policy.symbol_verdict(black_box(exact)))
    });
    g.bench_function("regex_hit", |b| {
        b.iter(|| policy.symbol_verdict(black_box(regex)))
    });
    g.finish();

    c.bench_function("compile_100_patterns", |b| {
        b.iter(|| MarkingPolicy::compile(black_box(&set)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
