//! The Chrome export as viewers read it (issue 17): balanced `B`/`E` slices whatever the trace
//! lost (losses, orphan returns, a killed process), `B` args the same for every call of a
//! function and none on `E`, every thread named, loss and repair counts in `otherData`;
//! selection (`--from`, `--to`, `--threads`), the size warning, and bounded memory on a
//! 10^7-event trace.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ada_atf::{EventRef, Lane, PayloadRef, TraceSummary, TraceWriter, WriterOptions};
use ada_cli::export::chrome::{ChromeOptions, ChromeStats, export_chrome_with};
use ada_cli::export::select::Selection;
use serde_json::Value;

use common::ada;

const PID: u32 = 777;

fn call(tid: i32, ts: u64, function_id: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        tid,
        ts,
        PayloadRef::FunctionCall {
            symbol: "",
            address: 0x1000 + function_id * 0x10,
            argument_registers: &[],
            stack_shallow_copy: &[],
        },
    )
    .with_function(function_id, depth)
}

fn ret(tid: i32, ts: u64, function_id: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        tid,
        ts,
        PayloadRef::FunctionReturn {
            symbol: "",
            address: 0x1000 + function_id * 0x10,
            return_registers: &[],
        },
    )
    .with_function(function_id, depth)
}

fn lost(tid: i32, ts: u64, lane: Lane) -> EventRef<'static> {
    EventRef::new(
        tid,
        ts,
        PayloadRef::EventsLost {
            lane,
            count: 4,
            cause: "refused",
            first_lost_ns: ts,
            last_lost_ns: ts + 5,
        },
    )
}

fn writer(root: &Path) -> TraceWriter {
    let opts = WriterOptions {
        pid: PID,
        session_label: Some("repair".into()),
        session_id: 5,
        ..WriterOptions::default()
    };
    TraceWriter::create(root, opts).unwrap()
}

/// A trace with losses, orphan returns, unwound calls, and a killed process (no `TraceEnd`,
/// no trace.json): the shape after losses or a `kill -9`.
///
/// - thread 1: `fn#1` > `fn#2`, a loss of the index lane (cuts both), returns of both
///   (orphans); `fn#3` > `fn#4`, a return of `fn#3` (unwinds `fn#4`); `fn#5` left open;
/// - thread 2: a return of `fn#9` (orphan), `fn#6` left open, a detail-lane loss (cuts
///   nothing) and a detail-lane call (an instant);
/// - thread 0: the trace's start.
fn lossy_killed_trace(root: &Path) -> PathBuf {
    let mut w = writer(root);
    let events = [
        EventRef::new(
            0,
            100,
            PayloadRef::TraceStart {
                executable_path: "/bin/app",
                args: &[],
                operating_system: "linux",
                cpu_architecture: "x86_64",
            },
        ),
        call(1, 100, 1, 1),
        call(1, 110, 2, 2),
        ret(2, 115, 9, 1),
        lost(1, 120, Lane::Index),
        ret(1, 130, 2, 2),
        ret(1, 140, 1, 1),
        call(1, 150, 3, 1),
        call(2, 150, 6, 1),
        call(1, 160, 4, 2),
        lost(2, 165, Lane::Detail),
        call(2, 166, 7, 2).on_lane(Lane::Detail),
        ret(1, 170, 3, 1),
        call(1, 180, 5, 1),
    ];
    for ev in &events {
        w.write(ev).unwrap();
    }
    let dir = w.dir().to_owned();
    drop(w);
    dir
}

fn export(dir: &Path, selection: Selection) -> (Value, ChromeStats) {
    let mut out = Vec::new();
    let options = ChromeOptions {
        selection,
        progress: false,
    };
    let stats = export_chrome_with(dir, &mut out, &options).unwrap();
    let json: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    (json, stats)
}

fn events(json: &Value) -> &Vec<Value> {
    json["traceEvents"].as_array().unwrap()
}

/// What viewers need of the slices, checked per thread: `B`/`E` in time order, every `E`
/// closing the innermost open `B` of the same name, nothing open at the end; every thread
/// with events named; `B` args the same for every call of a function (the `cut` mark aside);
/// `E` without args except the cut mark. Returns each thread's `(name, ts, cut)` ends.
fn check_viewer_rules(json: &Value) -> BTreeMap<i64, Vec<(String, f64, Option<String>)>> {
    let mut stacks: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut last_ts: BTreeMap<i64, f64> = BTreeMap::new();
    let mut b_args: BTreeMap<String, Value> = BTreeMap::new();
    let mut ends: BTreeMap<i64, Vec<(String, f64, Option<String>)>> = BTreeMap::new();
    let mut with_events = BTreeSet::new();
    let mut named = BTreeSet::new();
    for ev in events(json) {
        let tid = ev["tid"].as_i64().unwrap();
        let name = ev["name"].as_str().unwrap().to_owned();
        match ev["ph"].as_str().unwrap() {
            "M" => {
                if name == "thread_name" {
                    assert!(ev["args"]["name"].as_str().is_some_and(|n| !n.is_empty()));
                    named.insert(tid);
                }
                continue;
            }
            "B" | "E" => {
                let ts = ev["ts"].as_f64().unwrap();
                let last = last_ts.entry(tid).or_insert(ts);
                assert!(ts >= *last, "thread {tid}: {ev} goes back in time");
                *last = ts;
            }
            _ => {}
        }
        with_events.insert(tid);
        let stack = stacks.entry(tid).or_default();
        match ev["ph"].as_str().unwrap() {
            "B" => {
                let mut args = ev["args"].clone();
                args.as_object_mut().unwrap().remove("cut");
                let known = b_args.entry(name.clone()).or_insert_with(|| args.clone());
                assert_eq!(*known, args, "B args differ between calls of {name}");
                stack.push(name);
            }
            "E" => {
                let open = stack.pop().unwrap_or_else(|| panic!("E without B: {ev}"));
                assert_eq!(open, name, "E closes a B of another name: {ev}");
                let cut = ev["args"]["cut"].as_str().map(str::to_owned);
                if ev.get("args").is_some() {
                    assert!(cut.is_some(), "E args other than the cut mark: {ev}");
                    assert_eq!(ev["args"].as_object().unwrap().len(), 1, "{ev}");
                }
                ends.entry(tid)
                    .or_default()
                    .push((name, ev["ts"].as_f64().unwrap(), cut));
            }
            _ => {}
        }
    }
    for (tid, stack) in &stacks {
        assert!(stack.is_empty(), "thread {tid} left open: {stack:?}");
    }
    let unnamed: Vec<_> = with_events.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "threads without thread_name: {unnamed:?}"
    );
    ends
}

fn cut(reason: &str) -> Option<String> {
    Some(reason.to_owned())
}

#[test]
fn a_lossy_killed_trace_exports_balanced_marked_slices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lossy_killed_trace(tmp.path());
    let (json, stats) = export(&dir, Selection::default());
    let ends = check_viewer_rules(&json);

    assert_eq!(
        ends[&1],
        [
            // The loss cuts what was open at it.
            ("fn#2".into(), 0.12, cut("loss")),
            ("fn#1".into(), 0.12, cut("loss")),
            // The return of fn#3 unwinds fn#4, then closes fn#3.
            ("fn#4".into(), 0.17, cut("unwound")),
            ("fn#3".into(), 0.17, None),
            // The killed process left fn#5 open: cut at the thread's last time.
            ("fn#5".into(), 0.18, cut("trace end")),
        ]
    );
    assert_eq!(ends[&2], [("fn#6".into(), 0.15, cut("trace end"))]);

    // The orphan returns (fn#2 and fn#1 after the loss, fn#9) are marked, not written as E.
    let orphans: Vec<(i64, &str)> = events(&json)
        .iter()
        .filter(|e| e["name"] == "orphan return")
        .map(|e| {
            (
                e["tid"].as_i64().unwrap(),
                e["args"]["function"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(orphans, [(2, "fn#9"), (1, "fn#2"), (1, "fn#1")]);

    // Thread 0 (the trace's start) and the unnamed threads have names.
    let names: BTreeMap<i64, &str> = events(&json)
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_i64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        BTreeMap::from([(0, "trace"), (1, "thread 1"), (2, "thread 2")])
    );
    // B args: what is the same for every call; no per-event id or depth.
    let b = events(&json).iter().find(|e| e["ph"] == "B").unwrap();
    assert_eq!(
        b["args"],
        serde_json::json!({"address": "0x1010", "function_id": 1})
    );

    let other = &json["otherData"];
    for (key, value) in [
        ("complete", "false"),
        ("allEventsKept", "false"),
        ("orphanEnds", "3"),
        ("cutUnwound", "1"),
        ("cutLoss", "2"),
        ("cutTraceEnd", "2"),
        ("cutSelection", "0"),
        ("cutSlices", "unwound 1, loss 2, trace end 2, selection 0"),
        ("lossMarkers", "2"),
        ("eventsLostInStream", "8"),
        ("lateEvents", "0"),
    ] {
        assert_eq!(other[key], value, "{key} in {other}");
    }
    assert_eq!(stats.orphan_ends, 3);
    assert_eq!(stats.cut_slices, [1, 2, 2, 0]);
    assert_eq!((stats.begins, stats.ends), (6, 6));
}

#[test]
fn a_complete_trace_needs_no_repair_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = writer(tmp.path());
    for i in 0..10u64 {
        w.write(&call(1, 100 + 10 * i, 1, 1)).unwrap();
        w.write(&call(1, 102 + 10 * i, 2, 2)).unwrap();
        w.write(&ret(1, 104 + 10 * i, 2, 2)).unwrap();
        w.write(&ret(1, 106 + 10 * i, 1, 1)).unwrap();
    }
    w.write(&EventRef::new(
        0,
        300,
        PayloadRef::TraceEnd { exit_code: 0 },
    ))
    .unwrap();
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    let (json, stats) = export(&dir, Selection::default());
    let ends = check_viewer_rules(&json);
    assert!(ends[&1].iter().all(|(_, _, cut)| cut.is_none()));
    assert_eq!((stats.begins, stats.ends), (20, 20));
    // Every call of a function is the same frame: one B args value per name.
    assert_eq!(json["otherData"]["complete"], "true");
    assert_eq!(json["otherData"]["allEventsKept"], "true");
    assert_eq!(
        json["otherData"]["cutSlices"],
        "unwound 0, loss 0, trace end 0, selection 0"
    );
}

/// A thread whose slices come more than the reorder window out of order: the late ones are
/// written as a loss, and the slices stay balanced and in order.
#[test]
fn slices_later_than_the_reorder_window_are_a_loss() {
    let window = ada_cli::export::chrome::REORDER_WINDOW as u64;
    let tmp = tempfile::tempdir().unwrap();
    let mut w = writer(tmp.path());
    // Slightly out of order (within the window): put back in order.
    w.write(&call(1, 1_000, 1, 1)).unwrap();
    w.write(&call(1, 1_010, 2, 2)).unwrap();
    w.write(&ret(1, 1_005, 2, 2)).unwrap();
    w.write(&call(1, 1_002, 2, 2)).unwrap();
    w.write(&ret(1, 1_020, 1, 1)).unwrap();
    let base = 10_000u64;
    for i in 0..window {
        w.write(&call(1, base + 4 * i, 3, 1)).unwrap();
        w.write(&ret(1, base + 4 * i + 2, 3, 1)).unwrap();
    }
    // Far older than what the window still holds.
    w.write(&call(1, 2_000, 4, 1)).unwrap();
    w.write(&ret(1, 2_001, 4, 1)).unwrap();
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    let (json, stats) = export(&dir, Selection::default());
    check_viewer_rules(&json);
    assert_eq!(stats.late_events, 2);
    assert_eq!(json["otherData"]["lateEvents"], "2");
    assert_eq!(json["otherData"]["allEventsKept"], "false");
    let names: Vec<&str> = events(&json)
        .iter()
        .filter(|e| e["ph"] == "B")
        .take(3)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["fn#1", "fn#2", "fn#2"],
        "the early calls in time order"
    );
    assert!(!events(&json).iter().any(|e| e["name"] == "fn#4"));
}

#[test]
fn a_selection_cuts_slices_at_its_edges_and_keeps_only_its_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = writer(tmp.path());
    // Thread 1: fn#1 spans the whole range; fn#2 crosses --from, fn#3 crosses --to,
    // fn#4 lies inside, fn#5 after. Thread 2 is not selected.
    for ev in [
        call(1, 1_000, 1, 1),
        call(2, 1_000, 8, 1),
        call(1, 1_100, 2, 2),
        ret(1, 1_300, 2, 2),
        call(1, 1_400, 4, 2),
        ret(1, 1_450, 4, 2),
        call(1, 1_500, 3, 2),
        ret(1, 1_800, 3, 2),
        ret(2, 1_900, 8, 1),
        call(1, 1_900, 5, 2),
        ret(1, 1_950, 5, 2),
        ret(1, 2_000, 1, 1),
    ] {
        w.write(&ev).unwrap();
    }
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    // The trace starts at 1000 ns: 200ns..700ns is 1200..1700.
    let selection = Selection::parse(Some("200ns"), Some("0.7us"), Some("1")).unwrap();
    let (json, stats) = export(&dir, selection);
    let ends = check_viewer_rules(&json);
    let begins: Vec<(&str, f64, Option<&str>)> = events(&json)
        .iter()
        .filter(|e| e["ph"] == "B")
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["ts"].as_f64().unwrap(),
                e["args"]["cut"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        begins,
        [
            ("fn#1", 1.2, Some("selection start")),
            ("fn#2", 1.2, Some("selection start")),
            ("fn#4", 1.4, None),
            ("fn#3", 1.5, None),
        ]
    );
    assert_eq!(
        ends[&1],
        [
            ("fn#2".into(), 1.3, None),
            ("fn#4".into(), 1.45, None),
            ("fn#3".into(), 1.7, cut("selection end")),
            ("fn#1".into(), 1.7, cut("selection end")),
        ]
    );
    assert!(
        events(&json).iter().all(|e| e["tid"] != 2),
        "thread 2 left out"
    );
    assert_eq!(stats.cut_slices[3], 4);
    assert_eq!(
        json["otherData"]["selected"],
        "from 200ns to 700ns after the trace's start, threads 1"
    );
}

#[test]
fn the_command_line_selects_and_refuses_bad_times() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lossy_killed_trace(tmp.path());
    let out = tmp.path().join("out.json");
    let r = ada()
        .args(["export", "--chrome", "--from", "1.5x", "-o"])
        .arg(&out)
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains("bad time \"1.5x\""), "{err}");
    assert!(!out.exists());

    let r = ada()
        .args(["export", "--chrome", "--threads", "2", "--to", "60ns", "-o"])
        .arg(&out)
        .arg(&dir)
        .output()
        .unwrap();
    // Exit 3: the trace is not finalized (written anyway).
    assert_eq!(
        r.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    check_viewer_rules(&json);
    let tids: BTreeSet<i64> = events(&json)
        .iter()
        .map(|e| e["tid"].as_i64().unwrap())
        .collect();
    assert!(tids.iter().all(|t| *t == 2 || *t == 0), "{tids:?}");
    // fn#6 (150 ns) is open at --to (100 + 60 ns): cut there.
    assert!(events(&json).iter().any(|e| e["ph"] == "E"
        && e["name"] == "fn#6"
        && e["ts"].as_f64() == Some(0.16)
        && e["args"]["cut"] == "selection end"));
}

#[test]
fn the_command_line_warns_before_writing_an_export_viewers_cannot_load() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = writer(tmp.path());
    w.write(&call(1, 100, 1, 1)).unwrap();
    w.write(&ret(1, 200, 1, 1)).unwrap();
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    // A manifest that claims 10^9 events (the counts then disagree: exit 3, still written).
    let manifest = dir.join("trace.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["eventCount"] = 1_000_000_000u64.into();
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = tmp.path().join("big.json");
    let run = |extra: &[&str]| {
        let r = ada()
            .args(["export", "--chrome", "-o"])
            .arg(&out)
            .args(extra)
            .arg(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&r.stderr).into_owned()
    };
    let err = run(&[]);
    assert!(
        err.contains("more than viewers load") && err.contains("--perfetto"),
        "{err}"
    );
    assert!(out.exists(), "a warning, not a refusal");
    let err = run(&["--no-size-warning"]);
    assert!(!err.contains("more than viewers load"), "{err}");
}
