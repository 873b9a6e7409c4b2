//! Drain throughput: events per second from full rings in the segment into a sink — the
//! ATF v4 writer (`events.bin` in a temporary directory) and, for comparison, a sink that only
//! counts. One drain thread, rings filled beforehand by a registered thread (not timed).
//!
//! `index_events_to_pipelined_counting_sink` puts the counting sink behind [`Pipelined`] (as
//! `ada trace` does with the ATF sink) and times the drain plus the sink thread catching up
//! (`finish`): the cost of handing records from the drain thread to a sink thread. (Behind
//! `Pipelined`, the ATF sink's time would be its own, above, plus `finalize`'s `fdatasync`.)
//!
//! `cargo bench -p ada-controller --bench drain`

use ada_controller::{AtfSink, CountingSink, Drainer, Pipelined, Sink};
use ada_registry::{LaneKind, Registry, RegistryConfig, RingGeometry};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};

/// 8 index rings of 1 MiB: ~32 k records each.
fn geometry() -> RingGeometry {
    RingGeometry {
        index_rings: 8,
        index_ring_bytes: 1 << 20,
        ..RingGeometry::default()
    }
}

/// Fills every ring but the last of one thread's index lane (no drops), then exits the thread
/// so the drain also frees the slot. Returns the events written.
fn fill(reg: &Registry) -> u64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            let slot = reg.view().register(ada_registry::SlotOwner {
                thread_id: 1,
                pid: std::process::id(),
                generation: 0,
                registered_ns: 0,
            });
            let slot = slot.expect("a free slot");
            let store = SegmentStore::new(reg, slot.slot.index(), LaneKind::Index).unwrap();
            let per_ring = u64::from(store_capacity(reg)) / 32;
            let events = per_ring * u64::from(geometry().index_rings - 1);
            let mut w = LaneWriter::new(slot.index, store, DropOldest);
            for i in 0..events {
                w.write_index(&IndexRecord {
                    timestamp_ns: 1_000_000_000 + i * 20,
                    function_id: 1 + (i % 64),
                    thread_id: 4242,
                    kind: if i % 2 == 0 {
                        EventKind::Call
                    } else {
                        EventKind::Return
                    } as u32,
                    call_depth: (i % 16) as u32,
                    reserved: 0,
                });
            }
            w.flush_counters();
            drop(slot.slot); // unregisters
            events
        })
        .join()
        .unwrap()
    })
}

fn store_capacity(reg: &Registry) -> u32 {
    reg.geometry().index_ring_bytes - ada_ringpool::header::RING_HEADER_SIZE
}

fn drain_all<S: Sink>(reg: &Registry, sink: S) -> (Duration, S) {
    let mut drainer = Drainer::new(reg, sink).expect("the bench is the only drain");
    let t = Instant::now();
    while drainer.pass().live_slots > 0 {}
    let elapsed = t.elapsed();
    let (_report, sink) = drainer.finish(&[], ada_controller::Report::default());
    (elapsed, sink)
}

/// Drains into `sink` behind [`Pipelined`] and waits for the sink thread to finish.
fn drain_pipelined<S: Sink + 'static>(reg: &Registry, sink: S) -> Duration {
    let t = Instant::now();
    let (_, mut sink) = drain_all(reg, Pipelined::start(sink).unwrap());
    let out = sink.finish(&ada_controller::Report::default()).unwrap();
    let elapsed = t.elapsed();
    assert!(out.complete && out.events > 0, "{out:?}");
    elapsed
}

fn bench(c: &mut Criterion) {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 2,
            geometry: geometry(),
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    for id in 1..=64u64 {
        let got = reg
            .symbols()
            .register(&format!("function_{id}"), 0x1000 * id)
            .unwrap();
        assert_eq!(got, id);
    }
    let per_fill = fill(&reg);
    drain_all(&reg, CountingSink::default());
    let out = tempfile::tempdir().unwrap();
    let mut run = 0u32;

    let mut g = c.benchmark_group("drain");
    g.throughput(Throughput::Elements(per_fill));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("index_events_to_atf_file", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            // A trace directory per sample (directories are per second and pid).
            run += 1;
            let mut sink = AtfSink::create(out.path(), run).unwrap();
            for _ in 0..iters {
                fill(&reg);
                let (t, s) = drain_all(&reg, sink);
                sink = s;
                total += t;
            }
            // A sample writes `iters` × ~8 MB: remove it now, not when the run ends (a 5 s
            // measurement otherwise keeps several GB on disk until exit).
            let dir = sink.dir().to_path_buf();
            drop(sink);
            let _ = std::fs::remove_dir_all(dir);
            total
        })
    });
    g.bench_function("index_events_to_counting_sink", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&reg);
                total += drain_all(&reg, CountingSink::default()).0;
            }
            total
        })
    });
    g.bench_function("index_events_to_pipelined_counting_sink", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&reg);
                total += drain_pipelined(&reg, CountingSink::default());
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
