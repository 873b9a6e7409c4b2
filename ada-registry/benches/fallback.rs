//! Fallback ring benchmarks: the cost of one push with 1, 2 and 8 threads pushing at once into a
//! 4096-record ring, and the cost of a refused push (ring full).
//!
//! Contended pushes run in rounds: the threads start together (a barrier), each pushes its share
//! of one ring's worth of records (timed, per thread), then the ring is drained between rounds
//! (untimed), so every timed push stores its record: the number is the store cost under
//! contention, not the cost of a refusal because a consumer fell behind. The time reported per
//! push is the slowest thread's total over its pushes.
//!
//! Run: `cargo bench -p ada-registry --bench fallback`

use ada_registry::LaneKind;
use ada_registry::fallback::{FallbackRecord, HeapFallback};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const RECORDS: u32 = 4096;

fn rec(tid: u64) -> FallbackRecord {
    FallbackRecord {
        pid: 1,
        tid,
        lane: LaneKind::Index,
        payload: [1, 2, 3, 4],
    }
}

fn push_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fallback_push");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2, 8] {
        let mut ring = HeapFallback::new(RECORDS);
        let (producers, mut consumer) = ring.split();
        let chunk = u64::from(RECORDS) / threads as u64;
        g.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let rounds = iters.div_ceil(chunk);
                let (start, done) = (Barrier::new(n + 1), Barrier::new(n + 1));
                std::thread::scope(|s| {
                    let workers: Vec<_> = (0..n)
                        .map(|t| {
                            let (start, done) = (&start, &done);
                            s.spawn(move || {
                                let rec = rec(t as u64);
                                let mut timed = Duration::ZERO;
                                let mut left = iters;
                                for _ in 0..rounds {
                                    let batch = left.min(chunk);
                                    left -= batch;
                                    start.wait();
                                    let begin = Instant::now();
                                    for _ in 0..batch {
                                        black_box(producers.push(black_box(&rec)))
                                            .expect("the ring has room for every round");
                                    }
                                    timed += begin.elapsed();
                                    done.wait();
                                }
                                timed
                            })
                        })
                        .collect();
                    for _ in 0..rounds {
                        start.wait();
                        done.wait();
                        consumer.drain(|r| {
                            black_box(r);
                        });
                    }
                    workers
                        .into_iter()
                        .map(|w| w.join().unwrap())
                        .max()
                        .unwrap_or(Duration::ZERO)
                })
            })
        });
    }
    g.finish();
}

fn push_refused(c: &mut Criterion) {
    let ring = HeapFallback::new(2);
    let producers = ring.view();
    while producers.push(&rec(0)).is_ok() {}
    c.bench_function("fallback_push_refused_full", |b| {
        b.iter(|| black_box(producers.push(black_box(&rec(0)))))
    });
}

criterion_group!(benches, push_contended, push_refused);
criterion_main!(benches);
