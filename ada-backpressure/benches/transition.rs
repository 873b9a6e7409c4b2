//! Transition benchmarks: the NORMAL fast check a writer makes on every ring swap
//! ([`needs_attention`], budget ≤ 0.5 ns added to the record path) and a full [`next`] step
//! (the slow path, taken only when the fast check says so), the latter for a lane in NORMAL
//! going to PRESSURE and for a RECOVERY lane waiting out its stability period.
//!
//! Run: `cargo bench -p ada-backpressure --bench transition`

use ada_backpressure::{BackpressureConfig, Input, LaneState, needs_attention, next};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let config = BackpressureConfig::default();
    c.bench_function("needs_attention (normal, healthy)", |b| {
        b.iter(|| needs_attention(black_box(3), black_box(false), black_box(&config)))
    });
    c.bench_function("next (normal -> pressure)", |b| {
        let input = Input {
            free_rings: 1,
            exhausted: false,
            now_ns: 1_000,
            since_ns: 0,
        };
        b.iter(|| {
            next(
                black_box(LaneState::Normal),
                black_box(input),
                black_box(&config),
            )
        })
    });
    c.bench_function("next (recovery, waiting)", |b| {
        let input = Input {
            free_rings: 3,
            exhausted: false,
            now_ns: 1_000,
            since_ns: 0,
        };
        b.iter(|| {
            next(
                black_box(LaneState::Recovery),
                black_box(input),
                black_box(&config),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
