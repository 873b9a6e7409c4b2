//! Flight-recorder windows (the controller's selective persistence) as `ada inspect` lists
//! them and `ada export --chrome` draws them: each window is a slice on its thread's track.

use ada_atf::{EventRef, PayloadRef, PersistenceWindow, TraceSummary, TraceWriter, WriterOptions};
use ada_cli::export::export_chrome;
use ada_cli::inspect::inspect;
use serde_json::Value;

const T0: u64 = 5_000_000_000;

fn windows() -> [PersistenceWindow; 2] {
    let by_trigger = PersistenceWindow {
        window_id: 1,
        start_ns: T0,
        end_ns: T0 + 12_000,
        first_mark_ns: T0 + 2_000,
        last_event_ns: T0 + 12_000,
        total_events: 13,
        marked_events: 1,
        mark_seen: true,
        thread_id: 2,
        last_mark_ns: T0 + 2_000,
        trigger: Some(0),
        pre_roll_events: 2,
        discarded_events: 40,
        over_budget_events: 0,
    };
    let explicit = PersistenceWindow {
        window_id: 1,
        start_ns: T0 + 50_000,
        end_ns: T0 + 51_500,
        first_mark_ns: T0 + 50_000,
        last_event_ns: T0 + 51_500,
        total_events: 3,
        marked_events: 2,
        thread_id: 3,
        last_mark_ns: T0 + 50_500,
        trigger: None,
        pre_roll_events: 0,
        discarded_events: 7,
        ..by_trigger
    };
    [by_trigger, explicit]
}

fn trace(root: &std::path::Path) -> std::path::PathBuf {
    let mut w = TraceWriter::create(
        root,
        WriterOptions {
            pid: 77,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for win in windows() {
        w.write(&EventRef::new(
            win.thread_id,
            win.start_ns,
            PayloadRef::WindowMark(win),
        ))
        .unwrap();
        w.write_window(&win).unwrap();
    }
    w.set_triggers(vec!["symbol=slow_request".into()]);
    let dir = w.dir().to_owned();
    w.finalize(TraceSummary::default()).unwrap();
    dir
}

#[test]
fn inspect_lists_each_window_with_its_thread_trigger_and_counts() {
    let root = tempfile::tempdir().unwrap();
    let dir = trace(root.path());
    let mut out = Vec::new();
    let report = inspect(&dir, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.windows, 2);
    for needle in [
        "windows: 2 (from window_metadata.jsonl)",
        "window #1 5.000000000 s .. 5.000012000 s, events 13, marked 1, mark seen, thread 2, \
         first mark 5.000002000 s, opened by trigger 0, pre-roll 2, 40 discarded before \
         (symbol=slow_request)",
        "window #1 5.000050000 s .. 5.000051500 s, events 3, marked 2, mark seen, thread 3, \
         first mark 5.000050000 s, opened by an explicit mark, 7 discarded before",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn the_chrome_export_draws_each_window_as_a_slice_on_its_thread() {
    let root = tempfile::tempdir().unwrap();
    let dir = trace(root.path());
    let mut out = Vec::new();
    let stats = export_chrome(&dir, &mut out).unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    let slices: Vec<&Value> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(stats.slices, 2);
    assert_eq!(slices.len(), 2, "{json}");
    let (a, b) = (slices[0], slices[1]);
    assert_eq!(
        (&a["name"], &a["cat"], &a["tid"]),
        (
            &Value::from("window #1"),
            &Value::from("window"),
            &Value::from(2)
        )
    );
    assert_eq!(a["ts"].as_f64(), Some(5_000_000.0));
    assert_eq!(a["dur"].as_f64(), Some(12.0));
    assert_eq!(a["args"]["trigger"], 0);
    assert_eq!(a["args"]["events"], 13);
    assert_eq!(a["args"]["discarded_before"], 40);
    assert_eq!(b["tid"], 3);
    assert_eq!(b["dur"].as_f64(), Some(1.5));
    assert!(
        b["args"].get("trigger").is_none(),
        "an explicit mark names no trigger"
    );
}
