//! Fallback ring benchmarks: the cost of one push with 1, 2 and 8 threads pushing at once into a
//! 4096-record ring while a consumer thread drains it (the report's per-push time is the wall
//! time one producer spent per record, contention included). Refused pushes (the ring full
//! because the consumer fell behind) cost the same reservation attempt and are included; the
//! bench prints how many there were.
//!
//! Run: `cargo bench -p ada-registry --bench fallback`

use ada_registry::LaneKind;
use ada_registry::fallback::{FallbackRecord, HeapFallback};
use ada_shm::sync::{AtomicBool, Ordering};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

fn push_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fallback_push");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2, 8] {
        let mut ring = HeapFallback::new(4096);
        let (producers, mut consumer) = ring.split();
        g.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let stop = AtomicBool::new(false);
                let start = Barrier::new(n + 1);
                std::thread::scope(|s| {
                    let drain = s.spawn(|| {
                        let mut taken = 0u64;
                        // Relaxed: a stop flag; the scope's join orders everything else.
                        while !stop.load(Ordering::Relaxed) {
                            taken += consumer.drain(drain_sink).taken;
                        }
                        taken + consumer.drain(drain_sink).taken
                    });
                    let workers: Vec<_> = (0..n)
                        .map(|t| {
                            let start = &start;
                            s.spawn(move || {
                                let rec = FallbackRecord {
                                    pid: 1,
                                    tid: t as u32,
                                    lane: LaneKind::Index,
                                    payload: [1, 2, 3, 4],
                                };
                                start.wait();
                                let begin = Instant::now();
                                for _ in 0..iters {
                                    let _ = black_box(producers.push(black_box(&rec)));
                                }
                                begin.elapsed()
                            })
                        })
                        .collect();
                    start.wait();
                    let slowest = workers
                        .into_iter()
                        .map(|w| w.join().unwrap())
                        .max()
                        .unwrap_or(Duration::ZERO);
                    // Relaxed: see above.
                    stop.store(true, Ordering::Relaxed);
                    drain.join().unwrap();
                    slowest
                })
            })
        });
        eprintln!(
            "fallback_push/{threads}: {} pushes refused (ring full) over the whole run",
            producers.refused()
        );
    }
    g.finish();
}

#[inline(never)]
fn drain_sink(r: ada_registry::fallback::FallbackRecord) {
    black_box(r);
}

criterion_group!(benches, push_contended);
criterion_main!(benches);
