//! `inspect` and `export_chrome` on traces written by `ada_atf::TraceWriter`: finalized,
//! unfinalized, torn, corrupt, damaged (truncated, bit-flipped, zero-filled, empty, no or an
//! incomplete manifest) with the `ada` binary's warnings and exit codes, session directories,
//! and paths that are not traces.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ada_atf::{
    EventRef, Lane, LaneCounters, LocateError, ManifestError, PayloadRef, PersistenceWindow,
    ReadError, SymbolEntry, ThreadSummary, TornTail, TraceSummary, TraceWriter, WriterOptions,
};
use ada_cli::damage::Damage;
use ada_cli::export::{ExportError, export_chrome};
use ada_cli::inspect::{InspectError, inspect};
use serde_json::Value;

const PID: u32 = 4321;
const MARK_TEXT: &str = "he said \"hi\"\nline2\ttab \\ ü 日本 🦀 \u{1}";
const T0: u64 = 2_000_001_234;

fn window() -> PersistenceWindow {
    PersistenceWindow {
        window_id: 1,
        start_ns: T0,
        end_ns: T0 + 900,
        first_mark_ns: T0 + 500,
        last_event_ns: T0 + 900,
        total_events: 12,
        marked_events: 1,
        mark_seen: true,
        ..PersistenceWindow::default()
    }
}

/// Writes the demo trace (11 events) and returns the writer, not finalized.
fn write_events(root: &Path) -> TraceWriter {
    let opts = WriterOptions {
        pid: PID,
        session_label: Some("session_test".into()),
        session_id: 77,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root, opts).unwrap();
    let args = ["--flag", "two words"];
    let regs = [("rdi", 1u64), ("rsi", 0xff)];
    let ret = [("rax", 0x2a_u64)];
    let events = [
        EventRef::new(
            1,
            T0,
            PayloadRef::TraceStart {
                executable_path: "/usr/bin/demo",
                args: &args,
                operating_system: "linux",
                cpu_architecture: "x86_64",
            },
        ),
        EventRef::new(
            1,
            T0 + 100,
            PayloadRef::FunctionCall {
                symbol: "main",
                address: 0x1000,
                argument_registers: &regs,
                stack_shallow_copy: &[1, 2, 3],
            },
        )
        .with_function(1, 1),
        // Unresolved symbol that the manifest's symbol table names.
        EventRef::new(
            2,
            T0 + 200,
            PayloadRef::FunctionCall {
                symbol: "",
                address: 0x2000,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
        )
        .with_function(2, 1)
        .on_lane(Lane::Detail),
        // Unresolved everywhere.
        EventRef::new(
            2,
            T0 + 300,
            PayloadRef::FunctionCall {
                symbol: "",
                address: 0,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
        )
        .with_function(3, 2),
        EventRef::new(
            2,
            T0 + 400,
            PayloadRef::FunctionReturn {
                symbol: "",
                address: 0,
                return_registers: &[],
            },
        )
        .with_function(3, 2),
        EventRef::new(
            2,
            T0 + 450,
            PayloadRef::FunctionReturn {
                symbol: "",
                address: 0x2000,
                return_registers: &ret,
            },
        )
        .with_function(2, 1),
        EventRef::new(
            1,
            T0 + 500,
            PayloadRef::Custom {
                name: "mark",
                data: MARK_TEXT.as_bytes(),
            },
        ),
        EventRef::new(
            1,
            T0 + 600,
            PayloadRef::EventsLost {
                lane: Lane::Detail,
                count: 5,
                cause: "overwritten",
                first_lost_ns: T0 + 600,
                last_lost_ns: T0 + 650,
            },
        ),
        EventRef::new(1, T0 + 700, PayloadRef::WindowMark(window())),
        EventRef::new(
            1,
            T0 + 800,
            PayloadRef::FunctionReturn {
                symbol: "main",
                address: 0x1000,
                return_registers: &ret,
            },
        )
        .with_function(1, 1),
        EventRef::new(1, T0 + 900, PayloadRef::TraceEnd { exit_code: 3 }),
    ];
    w.write_window(&window()).unwrap();
    for ev in &events {
        w.write(ev).unwrap();
    }
    w
}

fn summary() -> TraceSummary {
    let lane = |lane, written, persisted, dropped| LaneCounters {
        written,
        persisted,
        dropped,
        ..LaneCounters::new(lane)
    };
    TraceSummary {
        executable: Some("/usr/bin/demo".into()),
        args: vec!["--flag".into(), "two words".into()],
        exit_code: Some(3),
        threads: vec![
            ThreadSummary {
                thread_id: 1,
                name: Some("main".into()),
                os_tid: Some(999),
                pid: None,
                verified: None,
                // The detail lane does not balance: 8 != 2 + 5.
                lanes: vec![lane(Lane::Index, 7, 7, 0), lane(Lane::Detail, 8, 2, 5)],
            },
            ThreadSummary {
                thread_id: 2,
                name: Some("wörker \"2\"".into()),
                os_tid: None,
                pid: None,
                verified: None,
                lanes: vec![lane(Lane::Index, 3, 3, 0), lane(Lane::Detail, 1, 1, 0)],
            },
        ],
        symbols: vec![SymbolEntry {
            function_id: 2,
            symbol: "helper".into(),
            address: Some(0x2000),
            module: None,
            file: None,
            line: None,
        }],
        ..TraceSummary::default()
    }
}

fn finalized_trace(root: &Path) -> PathBuf {
    write_events(root).finalize(summary()).unwrap().dir
}

fn unfinalized_trace(root: &Path) -> PathBuf {
    let w = write_events(root);
    let dir = w.dir().to_owned();
    drop(w);
    assert!(!dir.join("trace.json").exists());
    dir
}

fn run_inspect(dir: &Path, limit: usize) -> (String, ada_cli::inspect::InspectReport) {
    let mut out = Vec::new();
    let report = inspect(dir, limit, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), report)
}

fn run_export(dir: &Path) -> (Value, ada_cli::export::ChromeStats, String) {
    let mut out = Vec::new();
    let stats = export_chrome(dir, &mut out).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    (json, stats, text)
}

fn trace_events(json: &Value) -> &Vec<Value> {
    json["traceEvents"].as_array().expect("traceEvents array")
}

fn with_ph<'a>(json: &'a Value, ph: &str) -> Vec<&'a Value> {
    trace_events(json)
        .iter()
        .filter(|e| e["ph"] == ph)
        .collect()
}

#[test]
fn inspect_a_finalized_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    let (text, report) = run_inspect(&dir, 100);

    assert!(report.finalized && report.complete, "{report:?}");
    assert_eq!(report.manifest_event_count, Some(11));
    assert_eq!(report.events_read, 11);
    assert_eq!(report.events_shown, 11);
    assert_eq!(report.unbalanced_lanes, 1);
    assert_eq!(report.windows, 1);
    assert_eq!(report.symbols, 1);
    assert!(report.ended_cleanly());
    assert!(report.events_bytes > 0);

    for needle in [
        "status: complete",
        "session: session_test (id 77)",
        "process: pid 4321, ",
        "executable: /usr/bin/demo --flag \"two words\"",
        "exit code: 3",
        "format: ATF v4",
        "clock: CLOCK_MONOTONIC",
        "events: 11, bytes: ",
        "threads: 2",
        "thread 1 \"main\" (os tid 999)",
        "detail  written 8  persisted 2  dropped 5  discarded 0  UNBALANCED (written - accounted = 1)",
        "WARNING: 1 lane(s) where written != persisted + spilled + dropped + discarded",
        "windows: 1 (from window_metadata.jsonl)",
        "window #1 2.000001234 s .. 2.000002134 s, events 12, marked 1, mark seen",
        "symbols: 1",
        "events (first 100):",
        "#1  thread 1  2.000001234 s  index   trace start /usr/bin/demo --flag \"two words\" (linux/x86_64)",
        "#2  thread 1  2.000001334 s  index   call main @0x1000 depth 1 [rdi=0x1 rsi=0xff] stack 3 bytes",
        "#3  thread 2  2.000001434 s  detail  call helper @0x2000 depth 1",
        "call fn#3 depth 2",
        "return fn#3 depth 2",
        "return helper @0x2000 depth 1 [rax=0x2a]",
        "mark \"he said \\\"hi\\\"\\nline2\\ttab \\\\ ü 日本 🦀 \\x01\"",
        "lost 5 events on lane detail (overwritten), first 2.000001834 s, last 2.000001884 s",
        "losses: 1 EventsLost event(s) in the stream, 5 events lost (overwritten 5)",
        "  thread 1  detail  5 events (overwritten), first 2.000001834 s, last 2.000001884 s",
        "#9  thread 1  2.000001934 s  index   window #1",
        "return main @0x1000 depth 1",
        "#11  thread 1  2.000002134 s  index   trace end exit=3",
        "events read: 11, timestamps 2.000001234 s .. 2.000002134 s (span 0.000000900 s)",
        "stream: ended cleanly after 11 events",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("NOT FINALIZED"));
    // One line per event: the mark's newline is escaped.
    assert_eq!(text.lines().filter(|l| l.starts_with("  #")).count(), 11);
}

#[test]
fn inspect_shows_loss_by_cause_states_and_the_policies_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = summary();
    let detail = &mut s.threads[1].lanes[1];
    (detail.written, detail.persisted, detail.dropped) = (20, 4, 16);
    detail.lost = Some(ada_atf::LostByCause {
        overwritten: 9,
        refused: 0,
        too_large: 7,
    });
    detail.markers = Some(2);
    detail.state = Some("RECOVERY".into());
    detail.state_entries = Some(ada_atf::StateEntries::from_array([0, 1, 2, 1]));
    // A lane whose dropped disagrees with its causes.
    s.threads[1].lanes[0].lost = Some(ada_atf::LostByCause {
        refused: 1,
        ..Default::default()
    });
    s.drop_policies = Some(ada_atf::PerLane {
        index: "newest".into(),
        detail: "oldest".into(),
    });
    s.stability_ns = Some(5_000_000);
    s.unregistered_drops = 3;
    s.unregistered_by_lane = Some(ada_atf::PerLane {
        index: 1,
        detail: 2,
    });
    let dir = write_events(tmp.path()).finalize(s).unwrap().dir;
    let (text, _) = run_inspect(&dir, 0);
    for needle in [
        "detail  written 20  persisted 4  dropped 16  discarded 0  lost: overwritten 9, refused 0, \
         too_large 7  markers 2  left NORMAL: entered PRESSURE 1x, DROPPING 2x, RECOVERY 1x, \
         NORMAL 0x  state RECOVERY\n",
        "index   written 3  persisted 3  dropped 0  discarded 0  lost: overwritten 0, refused 1, \
         too_large 0  UNBALANCED (dropped 0 != lost by cause 1)\n",
        "events dropped by threads with no registry slot: 3\n  of them (cause no_slot): index 1, \
         detail 2\n",
        "drop policies: index=newest,detail=oldest (stability 0.005000000 s)\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The Chrome export's otherData: the manifest's loss by cause, summed over every lane.
    let (json, _, _) = run_export(&dir);
    let other = &json["otherData"];
    for (key, value) in [
        ("lostOverwritten", "9"),
        ("lostRefused", "1"),
        ("lostTooLarge", "7"),
        ("lostNoSlot", "3"),
        ("dropPolicies", "index=newest,detail=oldest"),
    ] {
        assert_eq!(other[key], value, "{key} in {other}");
    }
}

#[test]
fn inspect_honours_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    let (text, report) = run_inspect(&dir, 3);
    assert_eq!(report.events_shown, 3);
    assert_eq!(report.events_read, 11, "the rest is still counted");
    assert!(text.contains("events (first 3):"));
    assert!(text.contains("  #3  "));
    assert!(!text.contains("  #4  "), "{text}");
    assert!(text.contains("... 8 more events not shown"));

    let (text, report) = run_inspect(&dir, 0);
    assert_eq!(report.events_shown, 0);
    assert_eq!(report.events_read, 11);
    assert!(!text.contains("  #1  "));
    assert!(text.contains("stream: ended cleanly after 11 events"));
}

#[test]
fn export_a_finalized_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    let (json, stats, text) = run_export(&dir);

    assert_eq!(json["displayTimeUnit"], "ns");
    assert_eq!(stats.events_read, 11);
    assert_eq!(stats.events_exported, 11);
    assert_eq!(stats.skipped, 0);
    assert!(stats.finalized && stats.complete && stats.ended_cleanly() && !stats.is_torn());
    assert_eq!(stats.pid, PID);

    let b = with_ph(&json, "B");
    let e = with_ph(&json, "E");
    let i = with_ph(&json, "i");
    let m = with_ph(&json, "M");
    // The detail-lane call ("helper") is an instant: the index lane holds the slices. Its
    // index-lane return closes nothing (no index-lane call): an orphan, marked by an instant
    // instead of an unbalanced E.
    assert_eq!((b.len(), e.len(), i.len()), (2, 2, 7));
    // process_name (manifest), two thread names, process_labels (TraceEnd).
    assert_eq!(m.len(), 4);
    assert_eq!(
        (stats.begins, stats.ends, stats.instants, stats.metadata),
        (2, 2, 7, 4)
    );
    assert_eq!(stats.orphan_ends, 1);
    let orphan = i
        .iter()
        .find(|e| e["name"] == "orphan return")
        .expect("orphan marker");
    assert_eq!(
        (&orphan["tid"], &orphan["args"]["function"]),
        (&2.into(), &"helper".into())
    );
    assert_eq!(json["otherData"]["orphanEnds"], "1");
    assert_eq!(stats.trace_events, trace_events(&json).len() as u64);

    let names: Vec<&str> = b.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["main", "fn#3"]);
    let names: Vec<&str> = e.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fn#3", "main"]);

    // ts in µs with ns precision, written exactly.
    assert_eq!(b[0]["ts"].as_f64(), Some(2_000_001.334));
    assert!(text.contains("\"ts\":2000001.334"), "{text}");
    assert!(text.contains("\"ts\":2000001.234"));
    assert_eq!(e[1]["ts"].as_f64(), Some(2_000_002.034));

    for ev in trace_events(&json) {
        assert_eq!(ev["pid"], PID, "{ev}");
        assert!(ev["tid"].is_i64(), "{ev}");
        if ev["ph"] == "i" {
            assert_eq!(ev["s"], "t");
        }
    }
    assert_eq!(b[0]["tid"], 1);
    let helper = i
        .iter()
        .find(|e| e["name"] == "helper")
        .expect("detail call");
    assert_eq!(helper["tid"], 2);
    assert_eq!(helper["args"]["lane"], "detail");
    // B args are the same for every call of the function (viewers merge frames by name and
    // args); E events carry none.
    assert_eq!(
        b[0]["args"],
        serde_json::json!({"address": "0x1000", "function_id": 1})
    );
    assert!(e.iter().all(|e| e.get("args").is_none()), "{e:?}");
    assert_eq!(
        helper["args"]["id"], 3,
        "per-call detail stays on the detail instants"
    );

    let mark = i.iter().find(|e| e["name"] == "mark").expect("mark");
    assert_eq!(
        mark["args"]["text"], MARK_TEXT,
        "escaped and decoded exactly"
    );
    assert_eq!(mark["cat"], "mark");
    let lost = i
        .iter()
        .find(|e| e["name"] == "events lost (overwritten)")
        .expect("lost");
    assert_eq!(lost["args"]["count"], 5);
    assert_eq!(lost["args"]["lane"], "detail");
    assert_eq!(lost["args"]["cause"], "overwritten");
    assert_eq!(lost["args"]["first_lost_ns"], T0 + 600);
    assert_eq!(lost["args"]["last_lost_ns"], T0 + 650);
    assert_eq!(
        (lost["ph"].as_str(), lost["s"].as_str()),
        (Some("i"), Some("t"))
    );
    assert_eq!(lost["tid"], 1, "on the thread's track");
    assert_eq!(json["otherData"]["lossMarkers"], "1");
    assert_eq!(json["otherData"]["eventsLostInStream"], "5");
    let win = i
        .iter()
        .find(|e| e["name"] == "persistence window")
        .expect("window");
    assert_eq!(win["args"]["window_id"], 1);
    assert_eq!(win["args"]["mark_seen"], true);
    let start = i
        .iter()
        .find(|e| e["name"] == "trace start")
        .expect("start");
    assert_eq!(start["args"]["executable"], "/usr/bin/demo");
    assert_eq!(
        start["args"]["args"],
        serde_json::json!(["--flag", "two words"])
    );
    let end = i.iter().find(|e| e["name"] == "trace end").expect("end");
    assert_eq!(end["args"]["exit_code"], 3);

    let meta =
        |name: &str| -> Vec<&Value> { m.iter().copied().filter(|e| e["name"] == name).collect() };
    assert_eq!(meta("process_name").len(), 1);
    assert_eq!(meta("process_name")[0]["args"]["name"], "demo");
    let threads = meta("thread_name");
    assert_eq!(threads[0]["tid"], 1);
    assert_eq!(threads[0]["args"]["name"], "main");
    assert_eq!(threads[1]["tid"], 2);
    assert_eq!(threads[1]["args"]["name"], "wörker \"2\"");
    assert_eq!(meta("process_labels")[0]["args"]["labels"], "exit=3");

    let other = &json["otherData"];
    assert_eq!(other["source"], "ada");
    assert_eq!(other["complete"], "true");
    assert_eq!(other["stream"], "ended cleanly");
    assert_eq!(other["eventsRead"], "11");
    assert!(other.as_object().unwrap().values().all(Value::is_string));
}

#[test]
fn unfinalized_trace_is_inspected_and_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unfinalized_trace(tmp.path());

    let (text, report) = run_inspect(&dir, 5);
    assert!(!report.finalized && !report.complete);
    assert_eq!(report.manifest_event_count, None);
    assert_eq!(report.events_read, 11);
    assert_eq!(report.events_shown, 5);
    assert_eq!(report.windows, 1, "from window_metadata.jsonl");
    assert_eq!(report.symbols, 0);
    assert!(report.ended_cleanly());
    assert!(
        text.contains("NOT FINALIZED (the writer did not finish; showing what is readable)"),
        "{text}"
    );
    assert!(text.contains("threads: unknown (no manifest)"));
    // Without the symbol table, the unresolved call is fn#2.
    assert!(text.contains("call fn#2 @0x2000"));

    let (json, stats, _) = run_export(&dir);
    assert!(!stats.finalized && !stats.complete && stats.ended_cleanly());
    assert_eq!(stats.events_read, 11);
    assert_eq!(stats.pid, PID, "from the pid_N directory name");
    assert_eq!(with_ph(&json, "B").len(), 2);
    assert_eq!(with_ph(&json, "E").len(), 2);
    let mut thread_names: Vec<(i64, &str)> = with_ph(&json, "M")
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_i64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    thread_names.sort();
    assert_eq!(
        thread_names,
        [(1, "thread 1"), (2, "thread 2")],
        "without a manifest, every thread with events is still named"
    );
    // The process is still named from the TraceStart event.
    assert!(
        with_ph(&json, "M")
            .iter()
            .any(|e| e["name"] == "process_name" && e["args"]["name"] == "demo")
    );
    assert_eq!(json["otherData"]["finalized"], "false");
}

#[test]
fn manifest_with_complete_false_is_not_finalized() {
    let tmp = tempfile::tempdir().unwrap();
    let w = write_events(tmp.path());
    let dir = w
        .finalize(TraceSummary {
            complete: false,
            ..summary()
        })
        .unwrap()
        .dir;
    let (text, report) = run_inspect(&dir, 1);
    assert!(report.finalized && !report.complete);
    assert!(text.contains("NOT FINALIZED"));
    assert!(text.contains("complete: false"));
    let (_, stats, _) = run_export(&dir);
    assert!(stats.finalized && !stats.complete);
}

#[test]
fn torn_tail_is_reported_and_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unfinalized_trace(tmp.path());
    let events = dir.join("events.bin");
    let len = std::fs::metadata(&events).unwrap().len();
    // Cut the last record (TraceEnd, a few bytes) in the middle.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&events)
        .unwrap();
    f.set_len(len - 2).unwrap();
    drop(f);

    let (text, report) = run_inspect(&dir, 100);
    assert_eq!(report.events_read, 10);
    let torn = report.torn_tail.expect("torn tail");
    assert!(!torn.zero_filled);
    assert_eq!(torn.offset + torn.bytes, len - 2);
    assert!(report.stream_error.is_none());
    assert!(!report.ended_cleanly());
    assert!(text.contains("stream: TORN TAIL"), "{text}");
    assert!(text.contains("10 whole events readable"));
    assert!(text.contains("NOT FINALIZED"));

    let (json, stats, _) = run_export(&dir);
    assert!(stats.is_torn());
    assert_eq!(stats.events_read, 10);
    assert_eq!(with_ph(&json, "B").len(), 2);
    assert_eq!(with_ph(&json, "E").len(), 2);
    assert!(
        json["otherData"]["stream"]
            .as_str()
            .unwrap()
            .starts_with("torn tail: ")
    );
}

#[test]
fn corrupt_record_stops_the_stream_but_not_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unfinalized_trace(tmp.path());
    let events = dir.join("events.bin");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    // A 2-byte record whose body is a cut varint tag, then more bytes (so it is not a tail).
    f.write_all(&[0x02, 0xff, 0xff, 0x01, 0x08]).unwrap();
    drop(f);

    let (text, report) = run_inspect(&dir, 100);
    assert_eq!(report.events_read, 11);
    assert!(matches!(
        report.stream_error,
        Some(ada_atf::ReadError::Malformed { .. })
    ));
    assert!(text.contains("stream: CORRUPT: "), "{text}");

    let (json, stats, _) = run_export(&dir);
    assert_eq!(stats.events_read, 11);
    assert!(stats.stream_error.is_some());
    assert!(
        json["otherData"]["stream"]
            .as_str()
            .unwrap()
            .starts_with("corrupt: ")
    );
}

#[test]
fn empty_events_file_is_an_empty_trace() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("events.bin"), b"").unwrap();
    let (text, report) = run_inspect(tmp.path(), 10);
    assert_eq!(report.events_read, 0);
    assert!(report.ended_cleanly());
    assert!(text.contains("stream: ended cleanly after 0 events"));
    let (json, stats, _) = run_export(tmp.path());
    assert_eq!(stats.events_read, 0);
    assert_eq!(stats.pid, 0);
    assert!(trace_events(&json).is_empty());
}

fn inspect_err(path: &Path) -> InspectError {
    inspect(path, 10, &mut Vec::new()).unwrap_err()
}

fn export_err(path: &Path) -> ExportError {
    let mut out = Vec::new();
    let err = export_chrome(path, &mut out).unwrap_err();
    assert!(out.is_empty(), "nothing is written for a non-trace");
    err
}

#[test]
fn not_a_trace_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();

    let e = inspect_err(&empty);
    assert!(
        matches!(e, InspectError::Locate(LocateError::NoEventsFile { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("is not a trace directory: it has no events.bin"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    let e = export_err(&empty);
    assert!(matches!(
        e,
        ExportError::Locate(LocateError::NoEventsFile { .. })
    ));
    assert!(!e.to_string().contains('\n'));

    let missing = tmp.path().join("missing");
    assert!(matches!(
        inspect_err(&missing),
        InspectError::Locate(LocateError::Missing { .. })
    ));
    assert!(matches!(
        export_err(&missing),
        ExportError::Locate(LocateError::Missing { .. })
    ));

    // An output root: the hint names the trace below it; a file inside the trace: its parent.
    let dir = finalized_trace(tmp.path());
    let e = inspect_err(tmp.path());
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("did you mean {}?", dir.display())),
        "{msg}"
    );
    match export_err(tmp.path()) {
        ExportError::Locate(LocateError::NoEventsFile { candidates, .. }) => {
            assert_eq!(candidates, std::slice::from_ref(&dir))
        }
        other => panic!("{other:?}"),
    }
    let file = dir.join("trace.json");
    match inspect_err(&file) {
        InspectError::Locate(LocateError::NotADirectory { candidates, .. }) => {
            assert_eq!(candidates, std::slice::from_ref(&dir))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        export_err(&file),
        ExportError::Locate(LocateError::NotADirectory { .. })
    ));
}

#[test]
fn a_session_directory_means_its_one_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    let session = dir.parent().unwrap();
    let (text, report) = run_inspect(session, 3);
    assert!(report.complete);
    assert!(
        text.starts_with(&format!("trace: {}\n", dir.display())),
        "{text}"
    );
    let (_, stats, _) = run_export(session);
    assert_eq!(stats.pid, PID);
    assert!(stats.complete);

    // A second process in the same session: which one is meant cannot be guessed.
    let other = TraceWriter::create(
        tmp.path(),
        WriterOptions {
            pid: PID + 1,
            session_label: Some("session_test".into()),
            ..WriterOptions::default()
        },
    )
    .unwrap()
    .finalize(summary())
    .unwrap()
    .dir;
    let e = inspect_err(session);
    let msg = e.to_string();
    match e {
        InspectError::Locate(LocateError::SeveralTraces { traces, .. }) => {
            assert_eq!(traces, [dir.clone(), other.clone()])
        }
        other => panic!("{other:?}"),
    }
    assert!(msg.contains("holds 2 traces"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(matches!(
        export_err(session),
        ExportError::Locate(LocateError::SeveralTraces { .. })
    ));
}

#[test]
fn unreadable_manifest_is_a_read_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    std::fs::write(dir.join("trace.json"), b"{ not json").unwrap();
    let e = inspect_err(&dir);
    assert!(matches!(e, InspectError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("manifest is not valid JSON"));
    assert!(matches!(export_err(&dir), ExportError::Read { .. }));
}

/// Runs `f` on a thread and fails the test if it has not returned within 20 s, so a reader that
/// blocks on a FIFO fails instead of hanging the test run.
fn within_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{what} did not return in time: {e}"))
}

fn mkfifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
}

#[test]
fn fifo_manifest_is_a_read_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    mkfifo(&dir.join("trace.json"));
    let d = dir.clone();
    let e = within_timeout("inspect", move || inspect_err(&d));
    assert!(
        matches!(
            &e,
            InspectError::Read {
                source: ReadError::Manifest(ManifestError::NotARegularFile { .. }),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let e = within_timeout("export", move || export_err(&dir));
    assert!(matches!(e, ExportError::Read { .. }), "{e:?}");
}

#[test]
fn fifo_window_metadata_is_reported_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    mkfifo(&dir.join("window_metadata.jsonl"));
    let d = dir.clone();
    let (text, report) = within_timeout("inspect", move || run_inspect(&d, 100));
    assert!(
        text.contains("window_metadata.jsonl is unreadable"),
        "{text}"
    );
    assert!(text.contains("not a regular file"), "{text}");
    assert_eq!(report.events_read, 11);
    let (_, stats, _) = within_timeout("export", move || run_export(&dir));
    assert_eq!(stats.events_read, 11);
}

#[test]
fn oversized_manifest_is_a_read_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("trace.json"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let d = dir.clone();
    let e = within_timeout("inspect", move || inspect_err(&d));
    assert!(
        matches!(
            &e,
            InspectError::Read {
                source: ReadError::Manifest(ManifestError::TooLarge {
                    len: 1_073_741_824,
                    ..
                }),
                ..
            }
        ),
        "{e:?}"
    );
    let e = within_timeout("export", move || export_err(&dir));
    assert!(matches!(e, ExportError::Read { .. }), "{e:?}");
}

struct FailingWriter;

impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_errors_are_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    assert!(matches!(
        inspect(&dir, 10, &mut FailingWriter),
        Err(InspectError::Output(_))
    ));
    assert!(matches!(
        export_chrome(&dir, &mut FailingWriter),
        Err(ExportError::Output(_))
    ));
}

/// Names and strings in a trace cannot reach the terminal raw: ESC sequences, CR and bidi
/// controls are shown escaped by `ada inspect`.
#[test]
fn inspect_escapes_terminal_controls_from_the_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        pid: PID,
        session_label: Some("session_evil".into()),
        session_id: 5,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(tmp.path(), opts).unwrap();
    let args = ["--x=\u{1b}[2J", "a\rb"];
    let regs = [("r\u{1b}di", 1u64)];
    let events = [
        EventRef::new(
            1,
            T0,
            PayloadRef::TraceStart {
                executable_path: "/bin/evil\u{202e}gpj.exe",
                args: &args,
                operating_system: "linux\u{7}",
                cpu_architecture: "x86_64",
            },
        ),
        // Named by the event itself.
        EventRef::new(
            1,
            T0 + 100,
            PayloadRef::FunctionCall {
                symbol: "evil\u{202e}txt.exe",
                address: 0x1000,
                argument_registers: &regs,
                stack_shallow_copy: &[],
            },
        )
        .with_function(1, 1),
        // Named by the manifest's symbol table.
        EventRef::new(
            1,
            T0 + 200,
            PayloadRef::FunctionReturn {
                symbol: "",
                address: 0x2000,
                return_registers: &[],
            },
        )
        .with_function(2, 1),
        EventRef::new(
            1,
            T0 + 300,
            PayloadRef::Custom {
                name: "message",
                data: "hi \u{1b}[31mred\u{2066}".as_bytes(),
            },
        ),
        EventRef::new(
            1,
            T0 + 400,
            PayloadRef::Custom {
                name: "\u{1b}[1mkind",
                data: b"x",
            },
        ),
        EventRef::new(
            1,
            T0 + 500,
            PayloadRef::EventsLost {
                lane: Lane::Detail,
                count: 1,
                cause: "\u{1b}[Kcause",
                first_lost_ns: 0,
                last_lost_ns: 0,
            },
        ),
    ];
    for ev in &events {
        w.write(ev).unwrap();
    }
    let summary = TraceSummary {
        executable: Some("/bin/evil\u{202e}gpj.exe".into()),
        args: args.iter().map(|a| a.to_string()).collect(),
        threads: vec![ThreadSummary {
            thread_id: 1,
            name: Some("\u{1b}[31mred\u{1b}[0m".into()),
            os_tid: Some(7),
            pid: None,
            verified: None,
            lanes: vec![],
        }],
        symbols: vec![SymbolEntry {
            function_id: 2,
            symbol: "evil\u{202e}txt.exe".into(),
            address: Some(0x2000),
            module: Some("lib\u{1b}[0m.so".into()),
            file: None,
            line: None,
        }],
        ..TraceSummary::default()
    };
    let dir = w.finalize(summary).unwrap().dir;
    let (text, report) = run_inspect(&dir, 100);
    assert_eq!(report.events_read, 6);
    for bad in ['\u{1b}', '\u{202e}', '\u{2066}', '\r', '\u{7}'] {
        assert!(!text.contains(bad), "{bad:?} reached the output:\n{text}");
    }
    for needle in [
        "executable: \"/bin/evil\\u{202e}gpj.exe\" \"--x=\\x1b[2J\" \"a\\rb\"",
        "thread 1 \"\\x1b[31mred\\x1b[0m\" (os tid 7)",
        "trace start \"/bin/evil\\u{202e}gpj.exe\" \"--x=\\x1b[2J\" \"a\\rb\" (\"linux\\x07\"/x86_64)",
        "call \"evil\\u{202e}txt.exe\" @0x1000 depth 1 [\"r\\x1bdi\"=0x1]",
        "return \"evil\\u{202e}txt.exe\" @0x2000 depth 1",
        "message \"hi \\x1b[31mred\\u{2066}\"",
        "custom \"\\x1b[1mkind\" \"x\"",
        "(\"\\x1b[Kcause\")",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged and incomplete traces (issue 11): `inspect` and `export` read what is readable, never
// present it as the whole trace, say what was lost, and `ada` exits 3.
// ---------------------------------------------------------------------------------------------

/// A way to damage the finalized demo trace (11 events, `trace.json` complete).
#[derive(Clone, Copy, Debug)]
enum Harm {
    /// `events.bin` cut in the middle of its last record.
    Truncated,
    /// One bit flipped: the high bit of the length prefix of the 6th record.
    BitFlipped,
    /// Every byte of `events.bin` zero (the file keeps its length).
    ZeroFilled,
    /// The 6th record overwritten with zero bytes, the rest intact.
    ZeroFilledRecord,
    /// `events.bin` empty.
    Empty,
    /// No `trace.json`.
    NoManifest,
    /// `trace.json` says `complete: false`.
    NotComplete,
    /// `trace.json` records a write error (with terminal controls in it) and unwritten events.
    WriteError,
}

const HARMS: [Harm; 8] = [
    Harm::Truncated,
    Harm::BitFlipped,
    Harm::ZeroFilled,
    Harm::ZeroFilledRecord,
    Harm::Empty,
    Harm::NoManifest,
    Harm::NotComplete,
    Harm::WriteError,
];

const WRITE_ERROR: &str = "disk full \u{1b}[2J\u{202e}";

/// Offsets where the records of an `events.bin` start.
fn record_starts(bytes: &[u8]) -> Vec<u64> {
    let mut events = ada_atf::Events::new(bytes, &ada_atf::ReaderOptions::default());
    let mut starts = Vec::new();
    loop {
        let at = events.position();
        match events.next() {
            Some(Ok(_)) => starts.push(at),
            Some(Err(e)) => panic!("{e}"),
            None => return starts,
        }
    }
}

/// The finalized demo trace under `root`, damaged by `harm`.
fn harmed_trace(root: &Path, harm: Harm) -> PathBuf {
    let dir = finalized_trace(root);
    let events = dir.join("events.bin");
    let mut bytes = std::fs::read(&events).unwrap();
    let starts = record_starts(&bytes);
    assert_eq!(starts.len(), 11);
    match harm {
        Harm::Truncated => bytes.truncate(bytes.len() - 2),
        Harm::BitFlipped => bytes[starts[5] as usize] ^= 0x80,
        Harm::ZeroFilled => bytes.fill(0),
        Harm::ZeroFilledRecord => {
            bytes[starts[5] as usize..starts[6] as usize].fill(0);
        }
        Harm::Empty => bytes.clear(),
        Harm::NoManifest => std::fs::remove_file(dir.join("trace.json")).unwrap(),
        Harm::NotComplete | Harm::WriteError => {
            let mut m = ada_atf::Manifest::read(&dir.join("trace.json")).unwrap();
            m.complete = Some(false);
            if matches!(harm, Harm::WriteError) {
                m.write_error = Some(WRITE_ERROR.into());
                m.events_unwritten = 4;
            }
            ada_atf::writer::write_manifest_atomically(&dir, &m).unwrap();
        }
    }
    std::fs::write(&events, &bytes).unwrap();
    dir
}

/// What `harm` must be reported as, given the intact trace's size and record starts.
fn expected_damage(harm: Harm, len: u64, starts: &[u64]) -> Vec<Damage> {
    match harm {
        Harm::Truncated => vec![
            Damage::MissingBytes {
                expected: len,
                actual: len - 2,
            },
            Damage::TornTail(TornTail {
                offset: starts[10],
                bytes: len - 2 - starts[10],
                zero_filled: false,
            }),
            Damage::MissingEvents {
                expected: 11,
                read: 10,
            },
        ],
        // The flipped prefix now claims far more bytes than the file has left: the reader sees
        // a record cut by the end of the file, and five events.
        Harm::BitFlipped => vec![
            Damage::TornTail(TornTail {
                offset: starts[5],
                bytes: len - starts[5],
                zero_filled: false,
            }),
            Damage::MissingEvents {
                expected: 11,
                read: 5,
            },
        ],
        Harm::ZeroFilled => vec![
            Damage::TornTail(TornTail {
                offset: 0,
                bytes: len,
                zero_filled: true,
            }),
            Damage::MissingEvents {
                expected: 11,
                read: 0,
            },
        ],
        // Each zero byte reads as a zero-length record: more "events" than trace.json counts.
        Harm::ZeroFilledRecord => {
            let zeros = starts[6] - starts[5];
            vec![
                Damage::EmptyRecords {
                    count: zeros,
                    first_offset: starts[5],
                },
                Damage::ExtraEvents {
                    expected: 11,
                    read: 10 + zeros,
                },
            ]
        }
        Harm::Empty => vec![
            Damage::MissingBytes {
                expected: len,
                actual: 0,
            },
            Damage::MissingEvents {
                expected: 11,
                read: 0,
            },
        ],
        Harm::NoManifest => vec![Damage::NoManifest],
        Harm::NotComplete => vec![Damage::NotComplete],
        Harm::WriteError => vec![
            Damage::NotComplete,
            Damage::WriteFailed {
                error: Some(WRITE_ERROR.into()),
                events_unwritten: 4,
            },
        ],
    }
}

/// Size and record starts of the intact demo trace.
fn intact_layout() -> (u64, Vec<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(finalized_trace(tmp.path()).join("events.bin")).unwrap();
    (bytes.len() as u64, record_starts(&bytes))
}

#[test]
fn an_intact_trace_has_no_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    let (text, report) = run_inspect(&dir, 3);
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    assert!(!report.is_damaged() && report.complete);
    assert!(text.contains("status: complete"), "{text}");
    assert!(
        text.contains("damage: none (complete, and events.bin holds what trace.json says)"),
        "{text}"
    );
    let (json, stats, _) = run_export(&dir);
    assert!(!stats.is_damaged() && stats.complete);
    assert_eq!(json["otherData"]["complete"], "true");
    assert_eq!(json["otherData"]["dataLost"], "false");
    assert!(json["otherData"].get("warnings").is_none());
}

/// Every damage case is found by both `inspect` and `export`, which still show what is
/// readable; neither calls the trace complete.
#[test]
fn damaged_traces_are_reported_by_inspect_and_export() {
    let (len, starts) = intact_layout();
    for harm in HARMS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = harmed_trace(tmp.path(), harm);
        let expected = expected_damage(harm, len, &starts);

        let (text, report) = run_inspect(&dir, 100);
        assert_eq!(report.damage, expected, "{harm:?}:\n{text}");
        assert!(!report.complete, "{harm:?}");
        assert!(!text.contains("status: complete"), "{harm:?}:\n{text}");
        assert!(
            text.contains(&format!(
                "DAMAGE: {} problem(s); what is shown above is what was readable:",
                expected.len()
            )),
            "{harm:?}:\n{text}"
        );
        for d in &expected {
            let line = format!("  - {}", ada_cli::escape::escape(&d.to_string()));
            assert!(text.contains(&line), "{harm:?}: {line:?} not in:\n{text}");
        }
        for bad in ['\u{1b}', '\u{202e}'] {
            assert!(!text.contains(bad), "{harm:?}: {bad:?} reached the output");
        }
        if report.finalized && !matches!(harm, Harm::NotComplete | Harm::WriteError) {
            assert!(
                text.contains(
                    "status: DAMAGED (trace.json says complete, but data was lost: see DAMAGE \
                     below)"
                ),
                "{harm:?}:\n{text}"
            );
        } else {
            assert!(text.contains("status: NOT FINALIZED"), "{harm:?}:\n{text}");
        }

        let (json, stats, _) = run_export(&dir);
        assert_eq!(stats.damage, expected, "{harm:?}");
        assert!(stats.is_damaged() && !stats.complete, "{harm:?}");
        assert_eq!(stats.events_read, report.events_read, "{harm:?}");
        let other = &json["otherData"];
        assert_eq!(other["complete"], "false", "{harm:?}");
        assert_eq!(other["dataLost"], "true", "{harm:?}");
        let warnings: Vec<String> = expected.iter().map(ToString::to_string).collect();
        assert_eq!(other["warnings"], warnings.join("; "), "{harm:?}");
        assert!(
            other.as_object().unwrap().values().all(Value::is_string),
            "{harm:?}"
        );
    }
}

/// `window_metadata.jsonl` that cannot be read is damage too, for `inspect` (the export takes
/// its windows from the event stream).
#[test]
fn unreadable_window_metadata_is_damage_for_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized_trace(tmp.path());
    std::fs::write(dir.join("window_metadata.jsonl"), b"{ not json\n").unwrap();
    let (text, report) = run_inspect(&dir, 0);
    assert!(
        matches!(&report.damage[..], [Damage::WindowsUnreadable { .. }]),
        "{:?}",
        report.damage
    );
    assert!(text.contains("status: DAMAGED"), "{text}");
    assert!(
        text.contains("  - window_metadata.jsonl is unreadable: "),
        "{text}"
    );
}

/// Runs the `ada` binary.
fn ada(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ada"))
        .env("ADA_KEEP_STALE_SEGMENTS", "1")
        .args(args)
        .output()
        .unwrap()
}

/// `ada export` and `ada inspect` of a damaged trace: the export is still written, every problem
/// is one escaped `ada: warning:` line on stderr, and the exit code is 3; an intact trace exits
/// 0 without warnings. Checks only the binary's behaviour, so it runs against any version.
#[test]
fn ada_exits_3_and_warns_on_stderr_for_damaged_traces() {
    let cases = std::iter::once(None).chain(HARMS.map(Some));
    for harm in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = match harm {
            Some(h) => harmed_trace(tmp.path(), h),
            None => finalized_trace(tmp.path()),
        };
        let out = tmp.path().join("out.json");
        let export = ada(&[
            "export".as_ref(),
            "--chrome".as_ref(),
            dir.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let stderr = String::from_utf8(export.stderr).unwrap();
        let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap())
            .unwrap_or_else(|e| panic!("{harm:?}: {e}"));
        let warnings = stderr
            .lines()
            .filter(|l| l.starts_with("ada: warning: "))
            .count();
        assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{202e}'));
        let inspect = ada(&["inspect".as_ref(), dir.as_os_str()]);
        let inspect_err = String::from_utf8(inspect.stderr).unwrap();
        let inspect_warnings = inspect_err
            .lines()
            .filter(|l| l.starts_with("ada: warning: "))
            .count();
        let text = String::from_utf8(inspect.stdout).unwrap();
        if harm.is_none() {
            assert_eq!(export.status.code(), Some(0), "{stderr}");
            assert_eq!(warnings, 0, "{stderr}");
            assert_eq!(json["otherData"]["complete"], "true");
            assert_eq!(inspect.status.code(), Some(0), "{inspect_err}");
            assert_eq!(inspect_warnings, 0, "{inspect_err}");
            continue;
        }
        assert_eq!(export.status.code(), Some(3), "{harm:?}: {stderr}");
        assert!(warnings >= 1, "{harm:?}: {stderr}");
        assert!(
            stderr.contains("the trace is damaged or incomplete"),
            "{harm:?}: {stderr}"
        );
        assert_ne!(json["otherData"]["complete"], "true", "{harm:?}");
        assert_eq!(json["otherData"]["dataLost"], "true", "{harm:?}");
        assert_eq!(inspect.status.code(), Some(3), "{harm:?}: {inspect_err}");
        assert_eq!(inspect_warnings, warnings, "{harm:?}: {inspect_err}");
        assert!(!inspect_err.contains('\u{1b}') && !inspect_err.contains('\u{202e}'));
        assert!(text.contains("DAMAGE: "), "{harm:?}: {text}");
        if matches!(harm, Some(Harm::WriteError)) {
            assert!(
                stderr.contains("ada: warning: the writer failed: disk full \\x1b[2J\\u{202e}"),
                "escaped: {stderr}"
            );
        }
    }
}

/// `--help` documents the exit codes.
#[test]
fn inspect_and_export_help_document_the_exit_codes() {
    for cmd in ["inspect", "export"] {
        let help = ada(&[cmd.as_ref(), "--help".as_ref()]);
        assert!(help.status.success());
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(text.contains("Exit codes:"), "{text}");
        assert!(
            text.contains("  3  the trace is damaged or incomplete: some data was lost"),
            "{text}"
        );
    }
}

/// A thread whose spilled events (newer, delivered through the controller's fallback ring)
/// reach `events.bin` before its older ring events: the Chrome export still writes that
/// thread's `B`/`E` events in timestamp order, so its slices nest as recorded; a thread in
/// order next to it is untouched.
#[test]
fn chrome_slices_nest_when_a_threads_spilled_events_precede_its_ring_events() {
    let out = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        pid: PID,
        session_label: Some("session_test".into()),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(out.path(), opts).unwrap();
    let call = |tid: i32, ts: u64, f: u64, depth: u32| {
        EventRef::new(
            tid,
            T0 + ts,
            PayloadRef::FunctionCall {
                symbol: "",
                address: 0,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
        )
        .with_function(f, depth)
    };
    let ret = |tid: i32, ts: u64, f: u64, depth: u32| {
        EventRef::new(
            tid,
            T0 + ts,
            PayloadRef::FunctionReturn {
                symbol: "",
                address: 0,
                return_registers: &[],
            },
        )
        .with_function(f, depth)
    };
    // Thread 1 called f1 then f2 (ring events, still queued), then returned from f2 and f1
    // while its pool was exhausted (spilled): the drain delivered the spilled ones first.
    // Thread 2 is in order throughout.
    let events = [
        call(2, 10, 7, 1),
        ret(1, 300, 2, 2),
        ret(1, 400, 1, 1),
        call(1, 100, 1, 1),
        call(1, 200, 2, 2),
        ret(2, 500, 7, 1),
    ];
    for e in &events {
        w.write(e).unwrap();
    }
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    let mut json = Vec::new();
    let stats = export_chrome(&dir, &mut json).unwrap();
    assert_eq!((stats.begins, stats.ends), (3, 3));
    let v: Value = serde_json::from_slice(&json).unwrap();
    for tid in [1, 2] {
        let slices: Vec<(String, f64, String)> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["tid"] == tid && (e["ph"] == "B" || e["ph"] == "E"))
            .map(|e| {
                (
                    e["ph"].as_str().unwrap().to_owned(),
                    e["ts"].as_f64().unwrap(),
                    e["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            slices.windows(2).all(|p| p[0].1 <= p[1].1),
            "thread {tid}: B/E in timestamp order: {slices:?}"
        );
        // Every E closes the innermost open B of the same function.
        let mut open = Vec::new();
        for (ph, _, name) in &slices {
            if ph == "B" {
                open.push(name.clone());
            } else {
                assert_eq!(open.pop().as_ref(), Some(name), "thread {tid}: {slices:?}");
            }
        }
        assert!(open.is_empty(), "thread {tid}: {slices:?}");
    }
}
