//! Per-thread record cost as the number of traced threads grows (1, 2, 4, 8, 14), under a live
//! drain (controller and ATF writer in this process, as in `producer.rs`). Flat is the goal:
//! each thread writes only its own rings, so a thread's cost per event must not grow with the
//! number of threads (no shared cache line on the record path).
//!
//! The figure is each thread's own **CPU time** per event (`CLOCK_THREAD_CPUTIME_ID`), averaged
//! over the threads: on a machine with fewer cores than threads (the 2-vCPU development VM) the
//! threads take turns on the cores, so wall time per thread grows with their number whatever
//! the tracer does, while the CPU time a thread spends per event shows only what the tracer
//! costs it (contention on shared lines, cache misses after a switch). With at least as many
//! idle cores as threads the two agree.
//!
//! Each timed thread registers and records one event before the clock starts (registration is
//! not a record cost). As in `producer.rs`, the threads write far faster than one drain core
//! persists: rings fill and the lanes' drop policy refuses (and counts) events part of the
//! time, which is part of the per-event cost at that rate.
//!
//! `cargo bench -p ada-controller --bench thread_scaling`

use ada_controller::{ControllerBuilder, SessionInfo};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Duration;

/// The thread counts measured.
const THREADS: [usize; 5] = [1, 2, 4, 8, 14];

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the whole call; the clock id is one
    // Linux always has, and a failure leaves `ts` zero (never undefined behaviour).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is readable on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `threads` threads recording `iters` events each (after one untimed event that
/// registers the thread) and returns the threads' mean CPU time.
fn run(threads: usize, iters: u64) -> Duration {
    let start = Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    ada_agent::enter_id(black_box(7));
                    start.wait();
                    let t0 = thread_cpu();
                    for _ in 0..iters {
                        ada_agent::enter_id(black_box(7));
                    }
                    thread_cpu() - t0
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total / threads as u32
}

fn bench(c: &mut Criterion) {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(64)
        .output_dir(out.path())
        .create()
        .unwrap();
    ada_agent::install(ada_agent::Agent::from_registry(
        controller.registry().clone(),
    ))
    .expect("first agent of this process");
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();

    let mut g = c.benchmark_group("thread_scaling");
    for threads in THREADS {
        g.bench_with_input(
            BenchmarkId::new("enter_id_cpu_per_thread", threads),
            &threads,
            |b, &threads| b.iter_custom(|iters| run(threads, iters)),
        );
    }
    g.finish();
    let report = running.stop(None).unwrap();
    eprintln!(
        "thread_scaling bench: {} events persisted, {} dropped",
        report.persisted(),
        report.dropped()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
