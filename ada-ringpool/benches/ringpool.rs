//! Ring pool benchmarks: the index-event hot path against a bare thread-local store with the same
//! timestamp read (same run), ring swap latency (median from criterion, P50/P99 printed from the
//! same samples), and ring allocation from the pool.
//!
//! Run: `cargo bench -p ada-ringpool --bench ringpool`

use ada_registry::{LaneKind, RegistryConfig};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, Written};
use ada_shm::clock::MonotonicClock;
mod common;

use common::{Drain, index_lane};
use criterion::{Criterion, criterion_group, criterion_main};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

type Writer = common::Writer<DropOldest>;

fn setup() -> (Writer, Drain) {
    // ADA_BENCH_INDEX_RING_BYTES overrides the index ring size (default geometry otherwise).
    let mut config = RegistryConfig::default();
    if let Some(bytes) = std::env::var("ADA_BENCH_INDEX_RING_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.geometry.index_ring_bytes = bytes;
    }
    index_lane(&config, DropOldest)
}

thread_local! {
    static WRITER: RefCell<Option<(Writer, Drain)>> = const { RefCell::new(None) };
    static BARE: RefCell<([IndexRecord; 1024], usize)> = const { RefCell::new(([IndexRecord { timestamp_ns: 0, function_id: 0, thread_id: 0, kind: 0, call_depth: 0, reserved: 0 }; 1024], 0)) };
}

fn record(ts: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ts,
        function_id: 0x1_0000_0001,
        thread_id: 7,
        kind: EventKind::Call as u32,
        call_depth: 3,
        reserved: 0,
    }
}

#[inline(always)]
fn ada_write(ts: u64) -> Written {
    WRITER.with_borrow_mut(|w| w.as_mut().unwrap().0.write_index(&record(ts)))
}

#[inline(always)]
fn bare_write(ts: u64) {
    BARE.with_borrow_mut(|(buf, i)| {
        buf[*i & 1023] = record(ts);
        *i += 1;
    })
}

fn drain_untimed() {
    WRITER.with_borrow_mut(|w| {
        w.as_mut().unwrap().1.drain_submitted(0, |c| {
            black_box(c.bytes.len());
        });
    })
}

fn hot_path(c: &mut Criterion) {
    WRITER.set(Some(setup()));
    let mut g = c.benchmark_group("record_index_event");
    g.bench_function("timestamp_only_monotonic", |b| {
        b.iter(|| black_box(MonotonicClock::read()))
    });
    g.bench_function("bare_tls_store_32B+monotonic", |b| {
        b.iter(|| bare_write(black_box(MonotonicClock::read())))
    });
    g.bench_function("ada_write+monotonic", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut start = Instant::now();
            for _ in 0..iters {
                if let Written::Swapped = ada_write(MonotonicClock::read()) {
                    // Return rings to the pool outside the timed region, as the drain thread would.
                    total += start.elapsed();
                    drain_untimed();
                    start = Instant::now();
                }
            }
            total + start.elapsed()
        })
    });
    // Without the timestamp: the tracer's own cost versus the bare store.
    g.bench_function("bare_tls_store_32B", |b| {
        b.iter(|| bare_write(black_box(12345)))
    });
    g.bench_function("ada_write", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut start = Instant::now();
            for i in 0..iters {
                if let Written::Swapped = ada_write(black_box(i)) {
                    total += start.elapsed();
                    drain_untimed();
                    start = Instant::now();
                }
            }
            total + start.elapsed()
        })
    });
    // The same writer held in a local instead of a thread-local: isolates the TLS access.
    g.bench_function("ada_write_local_no_tls", |b| {
        let (mut w, mut d) = setup();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut start = Instant::now();
            for i in 0..iters {
                if let Written::Swapped = w.write_index(&record(black_box(i))) {
                    total += start.elapsed();
                    d.drain_submitted(0, |c| {
                        black_box(c.bytes.len());
                    });
                    start = Instant::now();
                }
            }
            total + start.elapsed()
        })
    });
    // Plain `iter`, no drain: the pool exhausts and drop-oldest recycles the active ring every
    // 1020 events (amortised into the figure, ~0.1 ns per event).
    g.bench_function("ada_write_local_iter_recycling", |b| {
        let (mut w, _d) = setup();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            w.write_index(&record(black_box(i)))
        })
    });
    g.finish();
}

fn swap_and_alloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_pool");
    let samples = RefCell::new(Vec::<u64>::new());
    // One swap: the write that finds the ring full, submits it and continues in a free ring.
    g.bench_function("swap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Fill the active ring untimed, stop right before the swap.
                let (mut w, mut d) = WRITER.take().unwrap();
                while w.active_free_bytes() >= ada_ringpool::INDEX_RECORD_SIZE {
                    w.write_index(&record(1));
                }
                let start = Instant::now();
                let out = w.write_index(&record(2));
                let t = start.elapsed();
                assert_eq!(out, Written::Swapped);
                samples.borrow_mut().push(t.as_nanos() as u64);
                total += t;
                d.drain_submitted(0, |c| {
                    black_box(c.bytes.len());
                });
                WRITER.set(Some((w, d)));
            }
            total
        })
    });
    let mut s = samples.into_inner();
    s.sort_unstable();
    if !s.is_empty() {
        let pct = |p: f64| s[((s.len() as f64 * p) as usize).min(s.len() - 1)];
        eprintln!(
            "ring_pool/swap latency over {} samples: P50 {} ns, P99 {} ns (includes ~20 ns of Instant::now)",
            s.len(),
            pct(0.50),
            pct(0.99)
        );
    }
    // Allocation from the pool: pop a free ring index (and hand it back, as the drain does).
    let mut lane = Box::new(ada_registry::Lane::default());
    let (thread, mut drain) = lane.split(4, LaneKind::Index, 0);
    let (_, _, mut free) = thread.into_parts();
    g.bench_function("alloc_from_pool", |b| {
        let giveback = drain.free();
        b.iter(|| {
            let ring = free.pop().unwrap().unwrap();
            giveback.push(black_box(ring)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path, swap_and_alloc);
criterion_main!(benches);
