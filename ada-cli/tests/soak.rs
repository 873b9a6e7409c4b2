//! Soak: 8 threads × 10^7 sequence-numbered events from a real child process (`ada trace --
//! ada workload --seq`). Every event is persisted exactly once or counted as dropped, and when
//! the drain keeps up (a paced producer) nothing is dropped at all. The `two_drain_workers`
//! variants run the same with `--drain-threads 2` (two drain workers, one merged stream).
//!
//! These run optimized: `cargo xtask soak` (part of `cargo xtask ci`) runs them with
//! `--release`; an unoptimized build skips them (an unoptimized drain is ~10× slower and the
//! test would measure the build, not the tracer).

mod common;

use common::{ada, read_seq_trace, trace_dir};

const THREADS: usize = 8;

/// Traces the sequenced workload; `ring_kib` sizes each thread's 4 index rings.
fn trace_workload(
    out: &std::path::Path,
    events: u64,
    rate: u64,
    ring_kib: u32,
) -> std::process::Output {
    trace_workload_with(out, events, rate, ring_kib, 1)
}

/// [`trace_workload`] drained by `workers` drain workers.
fn trace_workload_with(
    out: &std::path::Path,
    events: u64,
    rate: u64,
    ring_kib: u32,
    workers: usize,
) -> std::process::Output {
    ada()
        .args([
            "trace",
            "-q",
            "--drain-threads",
            &workers.to_string(),
            "--index-ring-kib",
            &ring_kib.to_string(),
            "-o",
        ])
        .arg(out)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--seq", "--threads", &THREADS.to_string()])
        .args(["--events", &events.to_string(), "--rate", &rate.to_string()])
        .output()
        .expect("run ada trace")
}

#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn soak_8_threads_10m_events_each_all_persisted_exactly_once_none_dropped() {
    const EVENTS: u64 = 10_000_000;
    // 8 × 250 k/s = 2 M events/s in total: within what the drain sustains on 2 cores shared
    // with the producers and the trace writer (BENCHMARKS.md), so nothing may be dropped.
    const RATE: u64 = 250_000;
    // Each thread gets 4 × 512 KiB rings (65 k events, 260 ms at its rate). On the 2-vCPU CI
    // VM the drain is sometimes off the CPU, or held up behind the trace writer's disk, for
    // tens of milliseconds (passes of 20-45 ms measured on 2026-11-30, when even the code of
    // the previous landing dropped whole rings at the default 4 × 32 KiB = 16 ms of buffer).
    // What this test guards is the end-to-end guarantee — every event persisted exactly once,
    // nothing dropped while the drain keeps up — so it gives the threads the buffer a
    // user would give them on such a machine (the summary points to these flags when threads
    // drop); BENCHMARKS.md records what the default sizes sustain.
    const RING_KIB: u32 = 512;
    let out = tempfile::tempdir().unwrap();
    let r = trace_workload(out.path(), EVENTS, RATE, RING_KIB);
    check_soak(&r, out.path(), EVENTS);
}

/// The soak with two drain workers writing one merged stream: every event exactly once, ids
/// `1..=n`, exact accounting. Shorter (2 × 10^6 events per thread at 200 k/s: 10 s) than the
/// single-worker soak: the CI machine has 2 cores for 8 producers, 2 drain workers and the
/// trace writer.
#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn soak_two_drain_workers_all_persisted_exactly_once_none_dropped() {
    const EVENTS: u64 = 2_000_000;
    const RATE: u64 = 200_000;
    let out = tempfile::tempdir().unwrap();
    let r = trace_workload_with(out.path(), EVENTS, RATE, 512, 2);
    check_soak(&r, out.path(), EVENTS);
}

/// A paced soak's trace: every event of every thread persisted once, none dropped, the
/// manifest's counts agree with the stream.
fn check_soak(r: &std::process::Output, out: &std::path::Path, events: u64) {
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    eprintln!("{err}");
    let t = read_seq_trace(&trace_dir(out), THREADS);
    assert_eq!(t.ledger.duplicates(), 0);
    assert_eq!(t.out_of_order, 0, "each thread's events in order");
    for p in 0..THREADS {
        assert_eq!(
            t.ledger.distinct(p),
            events,
            "thread {p}: every event persisted"
        );
    }
    assert_eq!(t.calls, events * THREADS as u64);
    assert_eq!(t.manifest.complete, Some(true));
    assert_eq!(t.manifest.event_count, t.events + t.definitions);
    assert_eq!(
        t.definitions, THREADS as u64,
        "one definition per thread (seq ids have no names)"
    );
    assert_eq!(t.manifest.threads.len(), THREADS);
    for th in &t.manifest.threads {
        let index = &th.lanes[0];
        assert_eq!(
            (index.written, index.persisted, index.dropped),
            (events, events, 0),
            "{th:?}"
        );
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn flood_every_event_persisted_once_or_counted_as_dropped() {
    flood(1);
}

/// The flood with two drain workers: spills of threads both workers drain go through the
/// shared fallback ring, and the accounting stays exact.
#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn flood_two_drain_workers_every_event_persisted_once_or_counted_as_dropped() {
    flood(2);
}

fn flood(workers: usize) {
    const EVENTS: u64 = 2_000_000;
    let out = tempfile::tempdir().unwrap();
    // Unpaced, default ring sizes: the producers outrun the drain, so the ring pools run dry
    // and drop.
    let r = trace_workload_with(out.path(), EVENTS, 0, 32, workers);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    eprintln!("{err}");
    let t = read_seq_trace(&trace_dir(out.path()), THREADS);
    assert_eq!(t.ledger.duplicates(), 0);
    assert_eq!(t.manifest.threads.len(), THREADS);
    let mut dropped = 0;
    for th in &t.manifest.threads {
        let index = &th.lanes[0];
        assert_eq!(index.written, EVENTS, "{th:?}");
        assert!(index.is_balanced(), "{th:?}");
        dropped += index.dropped;
    }
    // Which workload thread is which manifest thread is not known, but the totals must match:
    // the stream holds what the threads' rings gave and what they spilled into the shared
    // fallback ring when their pools ran dry (all of it: nothing was left in the ring).
    let persisted: u64 = (0..THREADS).map(|p| t.ledger.distinct(p)).sum();
    let lanes = || t.manifest.threads.iter().map(|t| &t.lanes[0]);
    let spilled: u64 = lanes().map(|l| l.spilled.unwrap_or(0)).sum();
    let via_fallback: u64 = lanes().map(|l| l.via_fallback.unwrap_or(0)).sum();
    assert_eq!(spilled, via_fallback, "every spilled event was delivered");
    let manifest_persisted: u64 = lanes().map(|l| l.persisted).sum();
    assert_eq!(persisted, manifest_persisted + via_fallback);
    assert_eq!(persisted + dropped, EVENTS * THREADS as u64);
    eprintln!("flood: {persisted} persisted, {dropped} dropped");
}
