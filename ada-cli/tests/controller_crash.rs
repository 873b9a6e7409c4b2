//! The controller itself is SIGKILLed mid-run: it never writes `trace.json`. The partial trace
//! must still describe itself: its functions and threads are named by the definitions the
//! controller wrote into the event stream as it first saw them, and `ada inspect` and
//! `ada export` say the trace is not finalized (exit 3) while naming what it holds.

mod common;

use common::{ada, children_of, trace_dir};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes in the trace's `events.bin` under `out`, 0 while there is none.
fn events_bytes(out: &Path) -> u64 {
    let traces = out.join(ada_atf::writer::TRACES_DIR);
    let Ok(sessions) = std::fs::read_dir(traces) else {
        return 0;
    };
    for session in sessions.flatten() {
        for pid in std::fs::read_dir(session.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(m) = std::fs::metadata(pid.path().join("events.bin")) {
                return m.len();
            }
        }
    }
    0
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[test]
fn a_trace_cut_short_by_a_controller_crash_names_its_functions_and_threads() {
    let out = tempfile::tempdir().unwrap();
    let mut controller = ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--threads", "2", "--events", "100000000"])
        .args(["--rate", "2000"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ada_pid = controller.id();
    // Wait until the drain has put a good part of a run on disk (it flushes every 20 ms).
    let deadline = Instant::now() + Duration::from_secs(20);
    while events_bytes(out.path()) < 64 * 1024 {
        assert!(Instant::now() < deadline, "the trace never grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    let workload = children_of(ada_pid);
    controller.kill().unwrap(); // SIGKILL: no final drain, no trace.json
    controller.wait().unwrap();
    for pid in workload {
        kill(pid);
    }
    let dir = trace_dir(out.path());
    assert!(
        !dir.join("trace.json").exists(),
        "the controller died first"
    );

    // The reader names everything from the stream alone.
    let reader = ada_atf::TraceReader::open_incomplete(&dir).unwrap();
    let mut names = ada_atf::StreamNames::new(reader.manifest());
    let (mut calls, mut unnamed, mut threads_seen) =
        (0u64, 0u64, std::collections::BTreeSet::new());
    for event in reader.events() {
        let Ok(event) = event else { break };
        if names.observe(&event) {
            continue;
        }
        if let Some(ada_atf::schema::event::Payload::FunctionCall(_)) = &event.payload {
            calls += 1;
            threads_seen.insert(event.thread_id);
            match names.symbol(event.function_id) {
                Some(s) if !s.symbol.is_empty() => {}
                _ => unnamed += 1,
            }
            assert!(
                names.thread(event.thread_id).is_some(),
                "thread {} was defined before its first event",
                event.thread_id
            );
        }
    }
    assert!(calls > 100, "{calls} calls");
    assert_eq!(unnamed, 0, "every call's function was defined before it");
    assert_eq!(threads_seen.len(), 2, "{threads_seen:?}");
    for id in &threads_seen {
        let t = names.thread(*id).unwrap();
        assert!(
            t.name.as_deref().is_some_and(|n| n.starts_with("worker-")),
            "{t:?}"
        );
        assert!(t.verified, "the controller's own child: {t:?}");
    }
    assert_eq!(names.conflicts(), 0);

    // `ada inspect` says so, and exits 3: the trace was not finalized.
    let r = ada()
        .args(["inspect", "-n", "400"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(3), "{text}");
    assert!(text.contains("NOT FINALIZED"), "{text}");
    assert!(text.contains("(0 in trace.json;"), "{text}");
    assert!(text.contains("threads: 2 (from the event stream"), "{text}");
    assert!(text.contains("\"worker-0\" (verified)"), "{text}");
    assert!(text.contains("call handle_request"), "{text}");
    assert!(!text.contains("call fn#"), "{text}");

    // So does the Chrome export: names, and thread names from the stream.
    let json = out.path().join("t.json");
    let r = ada()
        .args(["export", "--chrome", "-o"])
        .arg(&json)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let thread_names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    // The stream's two threads, and thread 0 (the trace's start) on the `trace` track.
    assert_eq!(thread_names.len(), 3, "{thread_names:?}");
    for name in ["worker-0", "worker-1", "trace"] {
        assert!(thread_names.contains(&name), "{thread_names:?}");
    }
    assert!(events.iter().any(|e| e["name"] == "handle_request"));
    assert!(
        !events
            .iter()
            .any(|e| e["name"].as_str().is_some_and(|n| n.starts_with("fn#")))
    );
    assert_eq!(v["otherData"]["complete"], "false");
}
