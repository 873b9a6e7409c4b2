//! Registry benchmarks: registration latency, the registered-thread lookup fast path, and SPSC
//! throughput across two threads against `rtrb` in the same run.
//!
//! Run: `cargo bench -p ada-registry --bench registry`

use ada_registry::spsc::HeapQueue;
use ada_registry::{Registry, RegistryConfig, SlotOwner};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn owner() -> SlotOwner {
    SlotOwner {
        thread_id: 1,
        pid: std::process::id(),
        generation: 0,
        registered_ns: 0,
    }
}

fn registration(c: &mut Criterion) {
    let reg = Registry::create(&RegistryConfig::default(), &[]).unwrap();
    let mut g = c.benchmark_group("registration");
    // Claim + initialise both lanes + publish, timed alone; unregister and reclaim untimed.
    g.bench_function("register", |b| {
        b.iter_custom(|iters| {
            let view = reg.view();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let slot = black_box(view.register(owner()).unwrap());
                total += start.elapsed();
                view.unregister(slot);
                view.reclaim(slot.index);
            }
            total
        })
    });
    // The whole life of a slot: register, unregister, drain-side reclaim.
    g.bench_function("register_unregister_reclaim", |b| {
        let view = reg.view();
        b.iter(|| {
            let slot = view.register(owner()).unwrap();
            view.unregister(slot);
            view.reclaim(black_box(slot.index))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lookup");
    reg.current_thread().unwrap();
    // A registered thread finding its slot: the TLS fast path.
    g.bench_function("current_thread_registered", |b| {
        b.iter(|| black_box(reg.current_thread().unwrap().index))
    });
    g.finish();
}

/// Pins the calling thread to `cpu` (or to every CPU with `None`). The two-thread benchmarks pin
/// the producer and the consumer to different CPUs: left to the scheduler, the same binary swung
/// between 24 and 316 M items/s from run to run on a 2-vCPU VM.
fn pin(cpu: Option<usize>) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        return;
    }
    let mut set = rustix::thread::CpuSet::new();
    match cpu {
        Some(c) => set.set(c % n),
        None => (0..n).for_each(|c| set.set(c)),
    }
    // Best effort: a container may forbid it; the benchmark still runs, just unpinned.
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

const ITEMS: u32 = 1 << 20;
const CAPACITY: usize = 4096;
const BATCH: usize = 64;

fn spsc_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_two_threads");
    g.throughput(Throughput::Elements(u64::from(ITEMS)));
    g.sample_size(20);

    g.bench_function(BenchmarkId::new("ada", "per_item"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let q = Box::new(HeapQueue::new(CAPACITY));
                    std::thread::scope(|s| {
                        let consumer = s.spawn(|| {
                            pin(Some(1));
                            let mut c = q.queue().consumer();
                            let mut sum = 0u64;
                            let mut got = 0;
                            while got < ITEMS {
                                if let Some(v) = c.pop().unwrap() {
                                    sum += u64::from(v);
                                    got += 1;
                                }
                            }
                            sum
                        });
                        pin(Some(0));
                        let start = Instant::now();
                        let mut p = q.queue().producer();
                        for v in 0..ITEMS {
                            while p.push(v).is_err() {
                                std::hint::spin_loop();
                            }
                        }
                        black_box(consumer.join().unwrap());
                        start.elapsed()
                    })
                })
                .sum()
        })
    });

    g.bench_function(BenchmarkId::new("rtrb", "per_item"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (mut p, mut c) = rtrb::RingBuffer::<u32>::new(CAPACITY);
                    std::thread::scope(|s| {
                        let consumer = s.spawn(move || {
                            pin(Some(1));
                            let mut sum = 0u64;
                            let mut got = 0;
                            while got < ITEMS {
                                if let Ok(v) = c.pop() {
                                    sum += u64::from(v);
                                    got += 1;
                                }
                            }
                            sum
                        });
                        pin(Some(0));
                        let start = Instant::now();
                        for v in 0..ITEMS {
                            while p.push(v).is_err() {
                                std::hint::spin_loop();
                            }
                        }
                        black_box(consumer.join().unwrap());
                        start.elapsed()
                    })
                })
                .sum()
        })
    });

    g.bench_function(BenchmarkId::new("ada", "batch_64"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let q = Box::new(HeapQueue::new(CAPACITY));
                    std::thread::scope(|s| {
                        let consumer = s.spawn(|| {
                            pin(Some(1));
                            let mut c = q.queue().consumer();
                            let mut buf = [0u32; BATCH];
                            let (mut sum, mut got) = (0u64, 0u32);
                            while got < ITEMS {
                                let n = c.pop_into(&mut buf).unwrap();
                                sum += buf[..n].iter().map(|&v| u64::from(v)).sum::<u64>();
                                got += n as u32;
                            }
                            sum
                        });
                        pin(Some(0));
                        let start = Instant::now();
                        let mut p = q.queue().producer();
                        let mut batch = [0u32; BATCH];
                        let mut next = 0u32;
                        while next < ITEMS {
                            for (i, slot) in batch.iter_mut().enumerate() {
                                *slot = next + i as u32;
                            }
                            let mut sent = 0;
                            while sent < BATCH {
                                sent += p.push_slice(&batch[sent..]);
                            }
                            next += BATCH as u32;
                        }
                        black_box(consumer.join().unwrap());
                        start.elapsed()
                    })
                })
                .sum()
        })
    });
    g.finish();
    pin(None);
}

criterion_group!(benches, registration, spsc_throughput);
criterion_main!(benches);
