//! What the controller records about its own input reaches the user: `ada trace` of a program
//! that starts 100 000 short-lived threads keeps the controller's memory bounded (retired
//! threads beyond a fixed number are folded into totals) while the summary, the manifest and
//! `ada inspect` still account for every thread; the corruption, unverified threads and
//! slotless drops a manifest records are shown by `ada inspect`.

mod common;

use ada_atf::schema::event::Payload;
use ada_atf::{Lane, LaneCounters, ThreadSummary, TraceReader, TraceSummary, TraceWriter};
use common::{ada, trace_dir};
use std::time::Duration;

/// `RssAnon` of `pid` in KiB: the process's own heap and stacks. Not `VmRSS`/`VmHWM`, which
/// also count the pages of the shared segment the controller has touched (they grow with the
/// slots used, not with the threads seen).
fn rss_anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bound on the controller's own memory. Measured here: about 3 MiB with folding, the
/// same whether 10 000 or 100 000 threads ran; with every thread kept (the code before
/// folding, about 200 bytes a thread in the drain's reports and accounts, more in the
/// manifest it builds at the end) it passed 20 MiB by 100 000 threads and kept growing. 16 MiB
/// leaves room for a slow disk holding trace batches in the sink's queue (the run drains
/// under 10 MiB in all) without letting per-thread growth pass.
const BOUND_KIB: u64 = 16 << 10;

#[test]
fn controller_memory_stays_bounded_over_100k_short_lived_threads() {
    const THREADS: u64 = 100_000;
    let out = tempfile::tempdir().unwrap();
    let mut child = ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .args(["--", env!("CARGO_BIN_EXE_ada"), "workload", "--churn"])
        .arg(THREADS.to_string())
        .args(["--threads", "8", "--events", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut most = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = rss_anon_kib(pid) {
            most = most.max(kib);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = child.wait_with_output().unwrap();
    // The summary goes to stderr.
    let stdout = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}");
    assert!(samples > 10, "the run was sampled ({samples} samples)");
    assert!(
        most <= BOUND_KIB,
        "the controller's own memory reached {most} KiB (bound {BOUND_KIB} KiB)\n{stdout}"
    );

    // Every thread is accounted for: listed or folded, in the summary and the manifest.
    let reader = TraceReader::open(trace_dir(out.path())).unwrap();
    let manifest = reader.manifest().unwrap();
    let folded = manifest
        .folded_threads
        .as_ref()
        .expect("threads were folded");
    assert!(folded.threads > 0);
    let slotless = manifest.unregistered_drops;
    let persisted: u64 = manifest
        .threads
        .iter()
        .flat_map(|t| &t.lanes)
        .chain(&folded.lanes)
        // Through the thread's rings, or (a thread without a slot) the shared fallback ring.
        .map(|l| l.persisted + l.via_fallback.unwrap_or(0))
        .sum();
    assert_eq!(
        persisted + slotless,
        THREADS * 2,
        "every event persisted or counted"
    );
    let (mut events, mut thread_defs) = (0u64, 0u64);
    for event in reader.events() {
        match event.unwrap().payload {
            Some(Payload::ThreadDef(_)) => thread_defs += 1,
            Some(Payload::SymbolDef(_)) => {}
            _ => events += 1,
        }
    }
    assert_eq!(
        persisted + 2,
        events,
        "the stream holds them (and TraceStart, TraceEnd)"
    );
    assert_eq!(
        thread_defs,
        manifest.thread_count(),
        "every thread, listed or folded, is defined in the stream"
    );
    assert!(
        stdout.contains(&format!("traced {} thread(s)", manifest.thread_count())),
        "{stdout}"
    );
    assert!(stdout.contains("more thread(s) summed"), "{stdout}");
    let inspect = ada()
        .arg("inspect")
        .arg(trace_dir(out.path()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains(&format!(
            "folded threads: {} (summed, not listed)",
            folded.threads
        )),
        "{text}"
    );
}

#[test]
fn inspect_shows_the_corruption_and_identities_the_manifest_records() {
    let out = tempfile::tempdir().unwrap();
    let lane = LaneCounters {
        written: 4,
        persisted: 4,
        ..LaneCounters::new(Lane::Index)
    };
    let summary = TraceSummary {
        threads: vec![
            ThreadSummary {
                thread_id: 1,
                name: Some("main".into()),
                os_tid: Some(100),
                pid: Some(100),
                verified: Some(true),
                lanes: vec![lane.clone()],
            },
            ThreadSummary {
                thread_id: 2,
                name: None,
                os_tid: Some(1),
                pid: Some(1),
                verified: Some(false),
                lanes: vec![lane],
            },
        ],
        corruption: [
            ("ringErrors".to_owned(), 3),
            ("unverifiedThreads".to_owned(), 1),
        ]
        .into_iter()
        .collect(),
        unregistered_drops: 12,
        ..TraceSummary::default()
    };
    let dir = TraceWriter::create(out.path(), ada_atf::WriterOptions::default())
        .unwrap()
        .finalize(summary)
        .unwrap()
        .dir;
    let inspect = ada().arg("inspect").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    for line in [
        "unverified threads (pid and os tid as the traced side claimed them): 1 (2)",
        "WARNING: the controller found corrupt input: ringErrors 3, unverifiedThreads 1",
        "events dropped by threads with no registry slot: 12",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// `ada trace -q --threads SLOTS TRACE_ARGS -o OUT -- ada workload WORKLOAD_ARGS` with a fresh
/// `OUT`, which must succeed: the output directory (kept alive) and the trace directory.
fn trace_with_slots(
    slots: u32,
    trace_args: &[&str],
    workload_args: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let run = ada()
        .args(["trace", "-q", "--threads", &slots.to_string()])
        .args(trace_args)
        .arg("-o")
        .arg(out.path())
        .args(["--", env!("CARGO_BIN_EXE_ada"), "workload"])
        .args(workload_args)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let dir = trace_dir(out.path());
    (out, dir)
}

/// `ada trace --threads 1` of a program with three threads recording at once: two are refused a
/// slot. Their index events reach the trace through the shared fallback ring (every one of
/// them, under their own thread numbers).
#[test]
fn events_of_threads_refused_a_slot_are_in_the_trace_inspect_and_export() {
    const THREADS: u64 = 3;
    const EVENTS: u64 = 10_000;
    let (_out, dir) = trace_with_slots(
        1,
        &[],
        &[
            "--seq",
            "--threads",
            &THREADS.to_string(),
            "--events",
            &EVENTS.to_string(),
            "--rate",
            "20000",
        ],
    );
    let reader = TraceReader::open(&dir).unwrap();
    let m = reader.manifest().unwrap();
    let index = |t: &ThreadSummary| {
        t.lanes
            .iter()
            .find(|l| l.lane == Lane::Index)
            .unwrap()
            .clone()
    };
    // Every thread's events are all in the trace: through its slot, or the fallback ring while
    // it had none (a refused thread takes the slot once its holder has exited and the drain
    // freed it, which on a loaded machine can happen before it is done).
    assert_eq!(m.threads.len(), THREADS as usize, "{m:?}");
    for t in &m.threads {
        let l = index(t);
        assert_eq!(l.persisted + l.via_fallback.unwrap_or(0), EVENTS, "{t:?}");
    }
    let refused = m
        .threads
        .iter()
        .filter(|t| index(t).via_fallback.is_some_and(|n| n > 0))
        .count();
    assert_eq!(refused, 2, "two threads had no slot: {m:?}");
    assert_eq!(m.unregistered_drops, 0);
    let fallback = m.fallback.expect("the fallback ring's accounting");
    assert!(
        fallback.delivered > 0 && fallback.refused == 0,
        "{fallback:?}"
    );
    // Every event of every thread is in the stream once (`read_seq_trace` refuses doubles).
    let seq = common::read_seq_trace(&dir, THREADS as usize);
    assert_eq!(seq.calls, THREADS * EVENTS);
    assert_eq!(seq.max_seq, vec![EVENTS; THREADS as usize]);
}

/// The same with detail records (`--detail-seq`): the refused threads' detail events are
/// counted as events of threads with no slot, and `ada inspect` and the export say so.
#[test]
fn detail_events_of_threads_refused_a_slot_are_counted_in_inspect_and_export() {
    const THREADS: u64 = 3;
    const EVENTS: u64 = 2_000;
    let (out, dir) = trace_with_slots(
        1,
        &[],
        &[
            "--detail-seq",
            "--threads",
            &THREADS.to_string(),
            "--events",
            &EVENTS.to_string(),
            "--slow-every",
            "0",
            "--rate",
            "20000",
        ],
    );
    let reader = TraceReader::open(&dir).unwrap();
    let m = reader.manifest().unwrap();
    assert!(m.unregistered_drops > 0, "two threads had no slot: {m:?}");
    assert_eq!(
        m.unregistered_by_lane.as_ref().map(|l| l.index),
        Some(0),
        "index events go to the fallback ring"
    );
    let lanes = m.threads.iter().flat_map(|t| &t.lanes);
    let (kept, dropped): (u64, u64) = lanes
        .filter(|l| l.lane == Lane::Detail)
        .fold((0, 0), |(k, d), l| {
            (k + l.persisted + l.discarded, d + l.dropped)
        });
    assert_eq!(
        kept + dropped + m.unregistered_drops,
        THREADS * EVENTS,
        "every detail event the workload recorded is persisted, discarded or counted"
    );

    let inspect = ada().arg("inspect").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    let line = format!(
        "events dropped by threads with no registry slot: {}",
        m.unregistered_drops
    );
    assert!(text.contains(&line), "{text}");
    let warned = String::from_utf8_lossy(&inspect.stderr);
    assert!(
        warned.contains(&format!(
            "ada: warning: {} events were dropped by threads that got no registry slot",
            m.unregistered_drops
        )),
        "{warned}"
    );
    assert_eq!(inspect.status.code(), Some(0), "the trace files are whole");

    let json = out.path().join("t.json");
    let export = ada()
        .args(["export", "--chrome", "-o"])
        .arg(&json)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let other = &v["otherData"];
    assert_eq!(other["unregisteredDrops"], m.unregistered_drops.to_string());
    assert!(
        other["captureWarnings"]
            .as_str()
            .is_some_and(|w| w.contains("no registry slot")),
        "{other}"
    );
}

#[test]
fn export_metadata_carries_the_corruption_the_manifest_records() {
    let out = tempfile::tempdir().unwrap();
    let summary = TraceSummary {
        corruption: [("badChunks".to_owned(), 2), ("ringErrors".to_owned(), 3)]
            .into_iter()
            .collect(),
        ..TraceSummary::default()
    };
    let dir = TraceWriter::create(out.path(), ada_atf::WriterOptions::default())
        .unwrap()
        .finalize(summary)
        .unwrap()
        .dir;
    let json = out.path().join("t.json");
    let export = ada()
        .args(["export", "--chrome", "-o"])
        .arg(&json)
        .arg(&dir)
        .output()
        .unwrap();
    let warned = String::from_utf8_lossy(&export.stderr);
    assert!(
        warned.contains("ada: warning: the controller found corrupt input")
            && warned.contains("badChunks 2, ringErrors 3"),
        "{warned}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["otherData"]["corruption"], "badChunks 2, ringErrors 3");
}

#[test]
fn a_background_jobs_threads_are_verified_not_reported_as_false_identities() {
    let out = tempfile::tempdir().unwrap();
    let ada_bin = env!("CARGO_BIN_EXE_ada");
    // The shell starts the workload in the background and returns at once: the workload is
    // orphaned while it records (reparented to `ada trace`, a child subreaper, not to init).
    let script = format!("({ada_bin} workload --threads 2 --events 300 --rate 1000 &); sleep 1");
    let run = ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{summary}");
    assert!(!summary.contains("FALSE IDENTITY"), "{summary}");
    let reader = TraceReader::open(trace_dir(out.path())).unwrap();
    let m = reader.manifest().unwrap();
    assert_eq!(m.threads.len(), 2, "{m:?}");
    for t in &m.threads {
        assert_eq!(t.verified, Some(true), "{t:?}");
        assert!(
            t.name.as_deref().is_some_and(|n| n.starts_with("worker-")),
            "{t:?}"
        );
    }
    assert!(m.corruption.is_empty(), "{:?}", m.corruption);
}

/// The "done when": `ada trace --threads 64` of a program with 100 threads recording at
/// once traces all 100. The 36 that get no slot send their index events through the shared
/// fallback ring; every event of every thread is in the trace, once.
#[test]
fn a_hundred_threads_against_sixty_four_slots_are_all_traced() {
    const THREADS: u64 = 100;
    const EVENTS: u64 = 1_000;
    // Half a second a thread, started together: they all live at once. (200 000 events a second
    // in all: within what the debug-build drain keeps up with on a loaded machine.)
    let (_out, dir) = trace_with_slots(
        64,
        &["--fallback-records", "65536"],
        &[
            "--seq",
            "--threads",
            &THREADS.to_string(),
            "--events",
            &EVENTS.to_string(),
            "--rate",
            "2000",
        ],
    );
    let seq = common::read_seq_trace(&dir, THREADS as usize);
    assert_eq!(
        seq.calls,
        THREADS * EVENTS,
        "every call of every thread, once"
    );
    assert_eq!(seq.max_seq, vec![EVENTS; THREADS as usize]);
    let m = &seq.manifest;
    assert_eq!(m.threads.len(), THREADS as usize, "{m:?}");
    let through_fallback = m
        .threads
        .iter()
        .filter(|t| {
            t.lanes
                .iter()
                .any(|l| l.via_fallback.is_some_and(|n| n > 0))
        })
        .count();
    assert!(
        (1..=36).contains(&through_fallback),
        "the threads without a slot went through the fallback ring: {through_fallback}"
    );
    let f = m.fallback.as_ref().expect("fallback accounting");
    assert_eq!((f.refused, f.left, f.corrupt), (0, 0, 0), "{f:?}");
    assert_eq!(m.unregistered_drops, 0);
}
