//! `ada export --perfetto`: the export of traces written by `ada_atf::TraceWriter` (nested calls
//! on three threads, a loss in the middle, an orphan return, a call left open at the end, a
//! mark, a persistence window) and of a real traced program, decoded with an independent
//! decoder (Perfetto's schema, parsed at test time: `perfetto/mod.rs`) and checked as a trace
//! reader would check it.

mod common;
mod perfetto;

use std::path::{Path, PathBuf};

use ada_atf::{
    EventRef, Lane, LaneCounters, PayloadRef, PersistenceWindow, SymbolEntry, ThreadSummary,
    TraceSummary, TraceWriter, WriterOptions,
};
use ada_cli::export::export_perfetto;
use perfetto::{Decoded, decode};

const PID: u32 = 4321;
const T: u64 = 1_000_000_000;

fn call(thread: i32, ts: u64, function: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        thread,
        T + ts,
        PayloadRef::FunctionCall {
            symbol: "",
            address: 0x1000 + function,
            argument_registers: &[],
            stack_shallow_copy: &[],
        },
    )
    .with_function(function, depth)
}

fn ret(thread: i32, ts: u64, function: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        thread,
        T + ts,
        PayloadRef::FunctionReturn {
            symbol: "",
            address: 0x1000 + function,
            return_registers: &[("rax", 42)],
        },
    )
    .with_function(function, depth)
}

fn lost(thread: i32, ts: u64, lane: Lane, count: u64, cause: &'static str) -> EventRef<'static> {
    EventRef::new(
        thread,
        T + ts,
        PayloadRef::EventsLost {
            lane,
            count,
            cause,
            first_lost_ns: T + ts,
            last_lost_ns: T + ts + 10,
        },
    )
}

fn window() -> PersistenceWindow {
    PersistenceWindow {
        window_id: 1,
        start_ns: T + 50,
        end_ns: T + 850,
        first_mark_ns: T + 350,
        last_event_ns: T + 850,
        total_events: 20,
        marked_events: 1,
        mark_seen: true,
        thread_id: 1,
        ..PersistenceWindow::default()
    }
}

/// Thread 1 (`main`, tid 1001): main > parse, a mark, main > compute, a loss of its index lane
/// (cuts compute and main), compute's return (now an orphan), finish, a window, then `tail`
/// left open at the end. Thread 2 (`worker-a`, 1002): work > helper (helper named by a
/// `SymbolDef` in the stream), a detail-lane loss (no cut). Thread 3 (`late`, 1003): known only
/// from a `ThreadDef` in the stream: work.
fn write_events(root: &Path) -> TraceWriter {
    let opts = WriterOptions {
        pid: PID,
        session_id: 9,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root, opts).unwrap();
    let args = ["--fast"];
    let events = [
        EventRef::new(
            1,
            T,
            PayloadRef::TraceStart {
                executable_path: "/usr/bin/demo",
                args: &args,
                operating_system: "linux",
                cpu_architecture: "x86_64",
            },
        ),
        call(1, 100, 1, 1),
        call(2, 110, 6, 1),
        call(1, 200, 2, 2),
        EventRef::symbol_def(T + 205, 7, "helper", 0x1007, "").at_source("src/helper.rs", 12),
        call(2, 210, 7, 2),
        ret(1, 300, 2, 2),
        ret(2, 310, 7, 2),
        EventRef::new(
            1,
            T + 350,
            PayloadRef::Custom {
                name: "mark",
                data: b"hello",
            },
        ),
        call(1, 400, 3, 2),
        lost(1, 600, Lane::Index, 7, "overwritten"),
        ret(1, 650, 3, 2),
        call(1, 700, 4, 1),
        ret(1, 750, 4, 1),
        ret(2, 800, 6, 1),
        EventRef::thread_def(T + 805, 3, PID, 1003, "late", true),
        call(3, 810, 6, 1),
        ret(3, 820, 6, 1),
        EventRef::new(1, T + 900, PayloadRef::WindowMark(window())),
        call(1, 950, 5, 1),
        lost(2, 960, Lane::Detail, 2, "refused"),
    ];
    for ev in &events {
        w.write(ev).unwrap();
    }
    w
}

fn summary() -> TraceSummary {
    let thread = |thread_id, name: &str, os_tid| ThreadSummary {
        thread_id,
        name: Some(name.into()),
        os_tid: Some(os_tid),
        pid: None,
        verified: None,
        lanes: vec![LaneCounters::new(Lane::Index)],
    };
    let symbol = |function_id, symbol: &str| SymbolEntry {
        function_id,
        symbol: symbol.into(),
        address: None,
        module: None,
        file: None,
        line: None,
    };
    TraceSummary {
        executable: Some("/usr/bin/demo".into()),
        threads: vec![thread(1, "main", 1001), thread(2, "worker-a", 1002)],
        symbols: vec![
            symbol(1, "main"),
            symbol(2, "parse"),
            symbol(3, "compute"),
            symbol(4, "finish"),
            symbol(5, "tail"),
            SymbolEntry {
                file: Some("src/work.rs".into()),
                line: Some(40),
                ..symbol(6, "work")
            },
        ],
        ..TraceSummary::default()
    }
}

fn export(dir: &Path) -> (Decoded, ada_cli::export::PerfettoStats) {
    let mut out = Vec::new();
    let stats = export_perfetto(dir, &mut out).unwrap();
    (decode(&out), stats)
}

fn finalized(root: &Path) -> PathBuf {
    write_events(root).finalize(summary()).unwrap().dir
}

/// (name, begin, end, depth, cut) of the slices on `track`, in begin order.
fn slices_on(d: &Decoded, track: u64) -> Vec<(String, u64, u64, usize, Option<String>)> {
    d.slices
        .iter()
        .filter(|s| s.track == track)
        .map(|s| {
            (
                s.name.clone(),
                s.begin - T,
                s.end - T,
                s.depth,
                s.args.get("cut").cloned(),
            )
        })
        .collect()
}

fn sl(
    name: &str,
    b: u64,
    e: u64,
    depth: usize,
    cut: Option<&str>,
) -> (String, u64, u64, usize, Option<String>) {
    (name.to_owned(), b, e, depth, cut.map(str::to_owned))
}

#[test]
fn tracks_slices_losses_and_windows_decode_with_perfettos_schema() {
    let root = tempfile::tempdir().unwrap();
    let dir = finalized(root.path());
    let (d, stats) = export(&dir);

    // The process and its threads: pid, tid (the OS thread id), names (thread 3's from the
    // stream's ThreadDef).
    let process: Vec<_> = d.tracks.values().filter(|t| t.process.is_some()).collect();
    assert_eq!(process.len(), 1, "{process:?}");
    let (pid, pname, cmdline) = process[0].process.clone().unwrap();
    assert_eq!((pid, pname.as_deref()), (PID as i32, Some("demo")));
    assert_eq!(cmdline, ["/usr/bin/demo", "--fast"]);
    let t1 = d.thread_track(PID as i32, 1001);
    let t2 = d.thread_track(PID as i32, 1002);
    let t3 = d.thread_track(PID as i32, 1003);
    for (t, name) in [(t1, "main"), (t2, "worker-a"), (t3, "late")] {
        assert_eq!(t.thread.as_ref().unwrap().2.as_deref(), Some(name));
        assert_eq!(t.parent, Some(process[0].uuid), "{name} is in the process");
    }

    // Slices: balanced and nested per thread; the loss cuts what was open, the end closes what
    // is still open.
    assert_eq!(
        slices_on(&d, t1.uuid),
        [
            sl("main", 100, 600, 0, Some("loss")),
            sl("parse", 200, 300, 1, None),
            sl("compute", 400, 600, 1, Some("loss")),
            sl("finish", 700, 750, 0, None),
            sl("tail", 950, 950, 0, Some("trace end")),
        ]
    );
    assert_eq!(
        slices_on(&d, t2.uuid),
        [
            sl("work", 110, 800, 0, None),
            sl("helper", 210, 310, 1, None)
        ]
    );
    assert_eq!(slices_on(&d, t3.uuid), [sl("work", 810, 820, 0, None)]);
    // A function with a source location (in the manifest, or in the stream's definition)
    // refers to one interned `SourceLocation` from each of its slices; the others to none.
    let sources = |name: &str| -> Vec<Option<(String, u32, String)>> {
        d.events
            .iter()
            .filter(|e| e.kind == "TYPE_SLICE_BEGIN" && e.name.as_deref() == Some(name))
            .map(|e| e.source.clone())
            .collect()
    };
    let work = Some(("src/work.rs".to_owned(), 40, "work".to_owned()));
    assert_eq!(sources("work"), [work.clone(), work]);
    let helper = Some(("src/helper.rs".to_owned(), 12, "helper".to_owned()));
    assert_eq!(sources("helper"), [helper]);
    assert_eq!(sources("parse"), [None]);
    let parse = &d.slices_named("parse")[0];
    assert_eq!(parse.args["registers.rax"], "0x2a", "return registers");
    assert_eq!(parse.args["address"], "0x1002");
    assert_eq!(stats.slice_begins, stats.slice_ends);
    assert_eq!((stats.cut_slices, stats.orphan_returns), (3, 1));

    // The loss markers: instants with count and cause, and the cumulative counter.
    let lost = d.instants("events lost (overwritten)");
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].track, lost[0].ts), (t1.uuid, T + 600));
    assert_eq!(lost[0].args["count"], "7");
    assert_eq!(lost[0].args["cause"], "overwritten");
    assert_eq!(lost[0].args["lane"], "index");
    let refused = d.instants("events lost (refused)");
    assert_eq!((refused.len(), refused[0].track), (1, t2.uuid));
    let counter = d.track_named("events lost");
    assert_eq!(counter.len(), 1);
    assert!(counter[0].counter);
    let values: Vec<i64> = d
        .events
        .iter()
        .filter(|e| e.track == counter[0].uuid)
        .map(|e| e.counter.unwrap())
        .collect();
    assert_eq!(values, [7, 9]);

    // The orphan return: marked, not a slice end.
    let orphan = d.instants("orphan return");
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0].args["function"], "compute");

    // The window: a slice on the thread's "persistence windows" track.
    let windows = d.track_named("persistence windows");
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].parent, Some(t1.uuid));
    assert_eq!(
        slices_on(&d, windows[0].uuid),
        [sl("persistence window", 50, 850, 0, None)]
    );
    assert_eq!(
        d.slices_named("persistence window")[0].args["window_id"],
        "1"
    );

    // The mark, and the export's own summary.
    let mark = d.instants("mark");
    assert_eq!((mark.len(), mark[0].track), (1, t1.uuid));
    assert_eq!(mark[0].args["text"], "hello");
    assert_eq!(mark[0].categories, ["mark"]);
    let summary = d.instants("ada export");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].args["complete"], "true");
    assert_eq!(summary[0].args["dataLost"], "false");
    assert_eq!(summary[0].args["lossMarkers"], "2");
    assert!(stats.complete && !stats.is_damaged());
    assert_eq!(stats.packets, d.packets as u64);
}

#[test]
fn an_unfinalized_trace_exports_balanced_and_says_it_is_damaged() {
    let root = tempfile::tempdir().unwrap();
    let w = write_events(root.path());
    let dir = w.dir().to_owned();
    drop(w);
    let (d, stats) = export(&dir);
    assert!(stats.is_damaged());
    let summary = d.instants("ada export");
    assert_eq!(summary[0].args["complete"], "false");
    assert_eq!(summary[0].args["dataLost"], "true");
    assert!(
        summary[0].args["warnings"].contains("trace.json"),
        "{:?}",
        summary[0].args
    );
    // No manifest: the threads are known by their ATF ids (3 from its ThreadDef), every slice
    // still closed (decode checks it).
    assert_eq!(
        d.thread_track(PID as i32, 2).thread.as_ref().unwrap().2,
        None
    );
    assert_eq!(
        d.thread_track(PID as i32, 1003)
            .thread
            .as_ref()
            .unwrap()
            .2
            .as_deref(),
        Some("late")
    );
    assert_eq!(d.slices.len(), 9);
}

#[test]
fn ada_export_perfetto_writes_the_file_and_exits_3_for_a_damaged_trace() {
    let root = tempfile::tempdir().unwrap();
    let dir = finalized(root.path());
    let file = root.path().join("out.pftrace");
    let r = common::ada()
        .args(["export", "--perfetto"])
        .arg(&dir)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("packets"), "{err}");
    let d = decode(&std::fs::read(&file).unwrap());
    assert_eq!(d.slices.len(), 9);

    std::fs::remove_file(dir.join("trace.json")).unwrap();
    let r = common::ada()
        .args(["export", "--perfetto"])
        .arg(&dir)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(i32::from(ada_cli::damage::EXIT_DAMAGED)),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    decode(&std::fs::read(&file).unwrap());

    // A selection needs valid times, the range not empty.
    let bad: [&[&str]; 2] = [
        &["--perfetto", "--from", "1"],
        &["--perfetto", "--from", "2s", "--to", "1s"],
    ];
    for args in bad {
        let r = common::ada()
            .arg("export")
            .args(args)
            .arg(&dir)
            .arg("-o")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(1), "{args:?}");
    }

    // The selection flags work with --chrome too (exit 3: the trace still lacks trace.json).
    let json = root.path().join("out.json");
    let r = common::ada()
        .args(["export", "--chrome", "--threads", "main", "--from", "100ns"])
        .arg(&dir)
        .arg("-o")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(json.exists());

    // --chrome and --perfetto are one choice.
    let r = common::ada()
        .args(["export", "--chrome", "--perfetto"])
        .arg(&dir)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn a_traced_program_exports_a_track_per_thread_and_every_call_as_a_slice() {
    let out = tempfile::tempdir().unwrap();
    let r = common::ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args([
            "workload",
            "--threads",
            "3",
            "--events",
            "300",
            "--slow-every",
            "50",
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let dir = common::trace_dir(out.path());
    let reader = ada_atf::TraceReader::open(&dir).unwrap();
    let m = reader.manifest().unwrap().clone();
    let mut calls = 0u64;
    for ev in reader.events() {
        let ev = ev.unwrap();
        if ev.lane == 0
            && matches!(
                ev.payload,
                Some(ada_atf::schema::event::Payload::FunctionCall(_))
            )
        {
            calls += 1;
        }
    }
    assert!(calls > 0);
    let (d, stats) = export(&dir);
    assert!(stats.complete, "{:?}", stats.damage);
    assert_eq!(stats.slice_begins, calls);
    let call_slices = d
        .slices
        .iter()
        .filter(|s| s.name != "persistence window")
        .count() as u64;
    assert_eq!(call_slices, calls, "every call is a closed slice");
    // Each named thread of the manifest has a thread track with its pid, OS tid and name.
    for t in m.threads.iter().filter(|t| t.name.is_some()) {
        let tid = i32::try_from(t.os_tid.unwrap()).unwrap();
        let found = d
            .tracks
            .values()
            .any(|track| track.thread.as_ref() == Some(&(m.pid as i32, tid, t.name.clone())));
        assert!(found, "no track for {t:?}: {:?}", d.tracks);
    }
}

#[test]
fn a_selection_exports_its_threads_and_range_with_the_slices_at_its_edges_cut() {
    let root = tempfile::tempdir().unwrap();
    let dir = finalized(root.path());
    let options = ada_cli::export::perfetto::PerfettoOptions {
        selection: ada_cli::export::select::Selection::parse(
            Some("250ns"),
            Some("700ns"),
            Some("main"),
        )
        .unwrap(),
        progress: false,
    };
    let mut out = Vec::new();
    let stats = ada_cli::export::perfetto::export_perfetto_with(&dir, &mut out, &options).unwrap();
    let d = decode(&out);

    // Only thread 1 (`main`) has a track; 2 and 3 are left out.
    let t1 = d.thread_track(PID as i32, 1001);
    let threads = d.tracks.values().filter(|t| t.thread.is_some()).count();
    assert_eq!(threads, 1);
    // main and parse were open at --from: they begin there, marked; finish is open at --to.
    assert_eq!(
        slices_on(&d, t1.uuid),
        [
            sl("main", 250, 600, 0, Some("loss")),
            sl("parse", 250, 300, 1, None),
            sl("compute", 400, 600, 1, Some("loss")),
            sl("finish", 700, 700, 0, Some("selection end")),
        ]
    );
    let main = &d.slices_named("main")[0];
    assert_eq!(main.args["cut_start"], "selection start");
    // The window is cut to the range.
    let windows = d.track_named("persistence windows");
    assert_eq!(
        slices_on(&d, windows[0].uuid),
        [sl("persistence window", 250, 700, 0, None)]
    );
    assert_eq!(d.instants("mark").len(), 1);
    assert!(d.instants("trace start").is_empty(), "before --from");
    assert!(
        d.instants("events lost (refused)").is_empty(),
        "another thread"
    );
    let summary = &d.instants("ada export")[0];
    assert_eq!(
        summary.args["selection"],
        "from 250ns to 700ns after the trace's start, threads main"
    );
    assert!(stats.unselected > 0);
    assert_eq!(summary.args["unselected"], stats.unselected.to_string());
}

#[test]
fn a_thread_out_of_time_order_in_the_stream_is_put_in_order_before_nesting() {
    // Thread 1's call of `parse` at 150 comes after the return of `main` at 200 in the stream
    // (as events through the controller's fallback ring do). In time order, `main` returns
    // while `parse` runs: `parse` is cut there (unwound), and its own return is an orphan.
    // Written in stream order instead, the slices would overlap without nesting and a reader
    // would pair the ends with the wrong begins (`main` ending at 250).
    let root = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        pid: PID,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root.path(), opts).unwrap();
    for ev in [
        call(1, 100, 1, 1),
        ret(1, 200, 1, 1),
        call(1, 150, 2, 2),
        ret(1, 250, 2, 2),
    ] {
        w.write(&ev).unwrap();
    }
    let dir = w.finalize(summary()).unwrap().dir;
    let (d, stats) = export(&dir);
    let t1 = d.thread_track(PID as i32, 1001);
    assert_eq!(
        slices_on(&d, t1.uuid),
        [
            sl("main", 100, 200, 0, None),
            sl("parse", 150, 200, 1, Some("unwound")),
        ]
    );
    assert_eq!(stats.orphan_returns, 1);
    assert_eq!(stats.late_events, 0);
}
