//! Backpressure benchmarks, on the real segment with the default index geometry (4 × 32 KiB):
//!
//! - `backpressure_record`: one index event in NORMAL with the lane state machine and, in the
//!   same run, with it off ([`LaneWriter::without_backpressure`]); the drain returns rings
//!   outside the timed region, as the drain thread would (setup as `benches/ringpool.rs`).
//! - `backpressure_drop`: one event into an exhausted lane (no drain) under each policy: the
//!   cost of a dropped event (goal ≤ 50 ns). Drop-oldest writes and recycles the active ring
//!   once per fill; drop-newest refuses every event on the slow path.
//! - `backpressure_recovery`: a DROPPING lane whose drain just returned every ring, the thread
//!   writing on: the time until the writer reports RECOVERY (its next state check).
//!
//! Run: `cargo bench -p ada-ringpool --bench backpressure -- --warm-up-time 1 --measurement-time 3`

use ada_backpressure::LaneState;
use ada_registry::RegistryConfig;
use ada_ringpool::{DropNewest, DropOldest, EventKind, IndexRecord, PoolPolicy, Written};
mod common;

use common::{Drain, Writer, index_lane};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A registered index lane of a fresh default segment.
fn setup<P: PoolPolicy>(policy: P) -> (Writer<P>, Drain) {
    index_lane(&RegistryConfig::default(), policy)
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

fn drain(d: &mut Drain) {
    d.drain_submitted(0, |c| {
        black_box(c.bytes.len());
    });
}

/// `iters` events, the drain returning each submitted ring outside the timed region.
fn timed_writes(w: &mut Writer<DropOldest>, d: &mut Drain, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut start = Instant::now();
    for i in 0..iters {
        if let Written::Swapped = w.write_index(&record(black_box(i))) {
            total += start.elapsed();
            drain(d);
            start = Instant::now();
        }
    }
    total + start.elapsed()
}

fn record_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("backpressure_record");
    let (mut with, mut d1) = setup(DropOldest);
    let (without, mut d2) = setup(DropOldest);
    let mut without = without.without_backpressure();
    g.bench_function("normal_with_state_machine", |b| {
        b.iter_custom(|iters| timed_writes(&mut with, &mut d1, iters))
    });
    g.bench_function("without_state_machine", |b| {
        b.iter_custom(|iters| timed_writes(&mut without, &mut d2, iters))
    });
    g.finish();
    // The drain kept up: the lane never left NORMAL.
    assert_eq!(with.state(), LaneState::Normal);
    assert_eq!(with.counters().events_dropped, 0);
}

fn drop_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("backpressure_drop");
    // No drain: after 4 rings the pool is exhausted for good.
    let (mut oldest, _d1) = setup(DropOldest);
    let (mut newest, _d2) = setup(DropNewest);
    let fill = 4 * u64::from(oldest.active_free_bytes()) / 32 + 1;
    for i in 0..fill {
        oldest.write_index(&record(i));
        newest.write_index(&record(i));
    }
    assert_eq!(oldest.state(), LaneState::Dropping);
    assert_eq!(newest.state(), LaneState::Dropping);
    let mut i = fill;
    g.bench_function("drop_oldest", |b| {
        b.iter(|| {
            i += 1;
            oldest.write_index(&record(black_box(i)))
        })
    });
    g.bench_function("drop_newest", |b| {
        b.iter(|| {
            i += 1;
            newest.write_index(&record(black_box(i)))
        })
    });
    g.finish();
    assert!(oldest.counters().overwritten > 0);
    assert!(newest.counters().refused > 0);
}

fn recovery_detection(c: &mut Criterion) {
    let mut g = c.benchmark_group("backpressure_recovery");
    let (mut w, mut d) = setup(DropOldest);
    let mut ts = 0u64;
    let mut events_to_detect = Vec::new();
    g.bench_function("ring_return_to_recovery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Untimed: drive the lane into DROPPING (no drain until the pool runs dry).
                while w.state() != LaneState::Dropping {
                    ts += 1;
                    w.write_index(&record(ts));
                }
                // The drain returns every submitted ring; the thread writes on.
                drain(&mut d);
                let start = Instant::now();
                let mut events = 0u32;
                while w.state() != LaneState::Recovery {
                    ts += 1;
                    w.write_index(&record(black_box(ts)));
                    events += 1;
                }
                total += start.elapsed();
                events_to_detect.push(events);
            }
            total
        })
    });
    g.finish();
    if let Some(&max) = events_to_detect.iter().max() {
        eprintln!(
            "backpressure_recovery: RECOVERY detected within {max} events (at most a quarter ring) over {} samples",
            events_to_detect.len()
        );
    }
}

criterion_group!(benches, record_cost, drop_cost, recovery_detection);
criterion_main!(benches);
