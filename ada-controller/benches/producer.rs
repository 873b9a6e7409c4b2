//! The traced thread's cost per event while a controller drains it live (drain thread and ATF
//! writer running in this process), next to the bare baselines the design measures against: a
//! 32-byte thread-local store plus a clock read, `clock_gettime(CLOCK_MONOTONIC)`
//! (`bare_tls_store_plus_clock`) or the time-stamp counter (`bare_tls_store_plus_tsc`, issue
//! 15's floor). The session runs on the TSC where the counter is invariant (`auto`, the
//! default; the bench says which clock it got), so `enter_id_live_drain` compares with the TSC
//! floor.
//!
//! On a 2-CPU machine the traced thread is pinned to CPU 0 and the controller's threads
//! (`ada-drain`, `ada-sink`, `ada-fsync`) to CPU 1, as a drain on its own core would run: left
//! to the scheduler, the busy drain and writer threads share the traced thread's CPU for part
//! of the enter_id measurement (not of the baseline's, when the drain idles), and the ratio
//! moved between 1.2× and 1.5× from run to run with where they landed.
//!
//! `cargo bench -p ada-controller --bench producer` (`ADA_BENCH_CLOCK=monotonic` runs the
//! session on `CLOCK_MONOTONIC` instead, for an A/B in the same binary)

use ada_controller::{ClockChoice, ControllerBuilder, SessionInfo};
use criterion::{Criterion, criterion_group, criterion_main};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static BARE: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

fn bench(c: &mut Criterion) {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(4)
        .output_dir(out.path())
        .session_clock(clock_choice())
        .create()
        .unwrap();
    eprintln!(
        "producer bench: session clock {}",
        controller.registry().clock().name()
    );
    ada_agent::install(ada_agent::Agent::from_registry(
        controller.registry().clone(),
    ))
    .expect("first agent of this process");
    let session = SessionInfo::new(std::process::id());
    let running = controller.start_default(session).unwrap();
    pin_threads();
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("bench_site");

    let mut g = c.benchmark_group("producer");
    g.bench_function("bare_tls_store_plus_clock", |b| {
        b.iter(|| {
            let ts = ada_shm::clock::MonotonicClock::read();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    g.bench_function("bare_tls_store_plus_tsc", |b| {
        b.iter(|| {
            let ts = ada_shm::tsc::ticks();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    g.bench_function("enter_id_live_drain", |b| {
        b.iter(|| ada_agent::enter_id(black_box(7)))
    });
    g.bench_function("span_enter_exit_live_drain", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();
    let report = running.stop(None).unwrap();
    eprintln!(
        "producer bench: {} events persisted, {} dropped (criterion writes far faster than one drain core persists)",
        report.persisted(),
        report.dropped()
    );
}

/// The session clock: `ADA_BENCH_CLOCK` (`auto`, `tsc`, `monotonic`) for a same-binary A/B,
/// else `auto`.
fn clock_choice() -> ClockChoice {
    std::env::var("ADA_BENCH_CLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ClockChoice::Auto)
}

/// Pins this thread to CPU 0 and the controller's threads to CPU 1 (best effort: with fewer
/// than 2 CPUs, or where affinity is not allowed, everything runs unpinned).
fn pin_threads() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    let cpu = |c: usize| {
        let mut set = rustix::thread::CpuSet::new();
        set.set(c);
        set
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok());
        let pid = tid.and_then(rustix::thread::Pid::from_raw);
        if comm.trim_end().starts_with("ada-") && pid.is_some() {
            let _ = rustix::thread::sched_setaffinity(pid, &cpu(1));
        }
    }
    let _ = rustix::thread::sched_setaffinity(None, &cpu(0));
}

criterion_group!(benches, bench);
criterion_main!(benches);
