//! Helpers shared by the `ada` tool's integration tests: run the `ada` binary, find and verify
//! the trace it wrote.

#![allow(dead_code)]

use ada_atf::schema::event::Payload;
use ada_atf::{Manifest, TraceDir, TraceReader};
use ada_testkit::workload::{SeqLedger, untag};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ada` binary of this build.
/// Runs side by side with other tests' `ada` processes, it leaves their stale segments alone
/// (only the stale-segment tests, serialized in `.config/nextest.toml`, let it clean up).
pub fn ada() -> Command {
    let mut ada = Command::new(env!("CARGO_BIN_EXE_ada"));
    ada.env("ADA_KEEP_STALE_SEGMENTS", "1");
    ada
}

/// The children of process `pid`, from every one of its threads (a child belongs to the
/// thread that forked it): the command `ada trace` spawned.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return kids;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        kids.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    kids
}

/// Runs `ada ARGS` and returns its output.
pub fn run_ada(args: &[&str]) -> Output {
    ada().args(args).output().expect("run ada")
}

/// The one trace under `<out>/ada_traces/`: the only session directory there, and the only
/// `pid_*` trace directory in it (found by `ada_atf::TraceDir::find`, as `ada inspect` finds it).
pub fn trace_dir(out: &Path) -> PathBuf {
    let traces = out.join(ada_atf::writer::TRACES_DIR);
    let sessions: Vec<PathBuf> = std::fs::read_dir(&traces)
        .expect("ada_traces")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "exactly one session under {}: {sessions:?}",
        traces.display()
    );
    match TraceDir::find(&sessions[0]) {
        Ok(trace) => trace.into_path(),
        Err(e) => panic!("exactly one trace under {}: {e}", out.display()),
    }
}

/// What a sequence-numbered trace held.
#[derive(Debug)]
pub struct SeqTrace {
    /// Which (thread, seq) pairs were persisted.
    pub ledger: SeqLedger,
    /// Index `FunctionCall` events read.
    pub calls: u64,
    /// Highest seq + 1 per workload thread.
    pub max_seq: Vec<u64>,
    /// The manifest.
    pub manifest: Manifest,
    /// Events in the stream, definitions excluded.
    pub events: u64,
    /// Symbol and thread definitions in the stream.
    pub definitions: u64,
    /// Index calls whose seq was not above the previous one of the same workload thread (0
    /// when every thread's events are in order in the stream).
    pub out_of_order: u64,
}

/// Reads a trace of `ada workload --seq --threads N`: every index call's function id is
/// `(thread << 32) | seq`. Panics on a torn or corrupt stream, or on event ids that are not
/// `1, 2, 3, ...`.
pub fn read_seq_trace(dir: &Path, threads: usize) -> SeqTrace {
    let reader = TraceReader::open(dir).expect("open trace");
    let manifest = reader
        .manifest()
        .cloned()
        .expect("finalized trace has a manifest");
    let mut ledger = SeqLedger::new(threads);
    let mut max_seq = vec![0u64; threads];
    let (mut calls, mut events, mut definitions) = (0u64, 0u64, 0u64);
    let mut last_seq: Vec<Option<u32>> = vec![None; threads];
    let mut out_of_order = 0u64;
    let mut stream = reader.events();
    for (id, ev) in (1u64..).zip(&mut stream) {
        let ev = ev.expect("every event decodes");
        assert_eq!(ev.event_id, id, "event ids are 1, 2, 3, ...");
        if let Some(Payload::SymbolDef(_) | Payload::ThreadDef(_)) = ev.payload {
            definitions += 1;
            continue;
        }
        events += 1;
        if let Some(Payload::FunctionCall(_)) = ev.payload {
            calls += 1;
            let (thread, seq) = untag(ev.function_id);
            assert!((thread as usize) < threads, "thread {thread} out of range");
            assert!(
                ledger.record(ev.function_id),
                "persisted twice: thread {thread} seq {seq}"
            );
            let m = &mut max_seq[thread as usize];
            *m = (*m).max(u64::from(seq) + 1);
            let last = &mut last_seq[thread as usize];
            out_of_order += u64::from(last.is_some_and(|l| seq <= l));
            *last = Some(seq);
        }
    }
    assert!(
        stream.torn_tail().is_none(),
        "finalized trace has no torn tail"
    );
    SeqTrace {
        ledger,
        calls,
        max_seq,
        manifest,
        events,
        definitions,
        out_of_order,
    }
}
