//! Drain throughput: events per second from full rings in the segment into a sink — the
//! ATF v4 writer (`events.bin` in a temporary directory) and, for comparison, a sink that only
//! counts. One drain thread, rings filled beforehand by a registered thread (not timed).
//!
//! `index_events_to_pipelined_counting_sink` puts the counting sink behind [`Pipelined`] (as
//! `ada trace` does with the ATF sink) and times the drain plus the sink thread catching up
//! (`finish`): the cost of handing records from the drain thread to a sink thread. (Behind
//! `Pipelined`, the ATF sink's time would be its own, above, plus `finalize`'s `fdatasync`.)
//!
//! `workers/*` drain the same pre-filled rings of [`THREADS`] threads into the ATF writer with
//! several drain workers (`Drainer::workers`, each on a thread of its own, encoding into blocks
//! that one writer thread appends: [`TraceSink::merged`]), against the single drain
//! (`workers/single`: one drain thread, [`Pipelined`]`<AtfSink>`, as `ada trace` runs with one
//! worker). Each sample times the drain through to the finished trace (the writer's final
//! `fdatasync` included, in both), so on a machine with cores to spare the figure shows how the
//! drain scales with workers.
//!
//! `cargo bench -p ada-controller --bench drain`

use ada_controller::{
    AtfSink, CountingSink, Drainer, Pipelined, Report, SessionInfo, Sink, TraceSink,
};
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

/// Threads whose rings `workers/*` drain.
const THREADS: u64 = 8;

/// Fills every ring but the last of the index lanes of [`THREADS`] threads, registered at once
/// (so every worker has slots to drain), which then exit. Returns the events written.
fn fill_threads(reg: &Registry) -> u64 {
    std::thread::scope(|s| {
        let fills: Vec<_> = (0..THREADS).map(|_| s.spawn(|| fill(reg))).collect();
        fills.into_iter().map(|f| f.join().unwrap()).sum()
    })
}

/// Drains everything with `workers` drain workers into a merged trace, through to the finished
/// trace.
fn drain_workers(reg: &Registry, out: &std::path::Path, run: u32, workers: usize) -> Duration {
    let atf = AtfSink::create(out, run).unwrap();
    let t = Instant::now();
    let mut sink = TraceSink::merged(atf, workers).unwrap();
    sink.begin(&SessionInfo::new(run)).unwrap();
    let sinks = sink.worker_sinks().unwrap();
    let claim = reg.claim_drain().expect("the bench is the only drain");
    let drainers = Drainer::workers(reg, claim, sinks);
    let sinks: Vec<_> = std::thread::scope(|s| {
        let running: Vec<_> = drainers
            .into_iter()
            .map(|mut d| {
                s.spawn(move || {
                    while d.pass().live_slots > 0 {}
                    d.finish(&[], Report::default()).1
                })
            })
            .collect();
        running.into_iter().map(|r| r.join().unwrap()).collect()
    });
    sink.collect(sinks).unwrap();
    let out = sink.finish(&Report::default()).unwrap();
    let elapsed = t.elapsed();
    assert!(out.complete && out.events > 0, "{out:?}");
    remove_trace(&out);
    elapsed
}

/// The single drain into `Pipelined<AtfSink>`, through to the finished trace.
fn drain_single(reg: &Registry, out: &std::path::Path, run: u32) -> Duration {
    let atf = AtfSink::create(out, run).unwrap();
    let t = Instant::now();
    let (_, mut sink) = drain_all(reg, Pipelined::start(atf).unwrap());
    let out = sink.finish(&Report::default()).unwrap();
    let elapsed = t.elapsed();
    assert!(out.complete && out.events > 0, "{out:?}");
    remove_trace(&out);
    elapsed
}

/// Removes a sample's trace (tens of MiB each), so the samples do not fill the disk.
fn remove_trace(out: &ada_controller::SinkOutput) {
    if let Some(dir) = &out.dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn bench_workers(c: &mut Criterion) {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: THREADS as u32,
            geometry: geometry(),
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap();
    for id in 1..=64u64 {
        reg.symbols()
            .register(&format!("function_{id}"), 0x1000 * id)
            .unwrap();
    }
    let per_fill = fill_threads(&reg);
    drain_all(&reg, CountingSink::default());
    let out = tempfile::tempdir().unwrap();
    // Trace directories are per session second and pid: a pid per sample.
    let mut run = 1_000_000u32;
    let mut g = c.benchmark_group("workers");
    g.throughput(Throughput::Elements(per_fill));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("single", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill_threads(&reg);
                run += 1;
                total += drain_single(&reg, out.path(), run);
            }
            total
        })
    });
    for workers in [1usize, 2, 4] {
        g.bench_function(format!("merged/{workers}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill_threads(&reg);
                    run += 1;
                    total += drain_workers(&reg, out.path(), run, workers);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_workers);
criterion_main!(benches);
