//! A Rust program instrumented with `tracing`, recorded through `ada-tracing`'s layer under
//! `ada trace`, end to end: `ada-tracing/examples/traced_job.rs` (compiled into this test
//! binary, which runs it as the ignored test `traced_job_child` under `ada trace`) read back
//! with `ada_atf`'s reader: its spans named and balanced on every thread, the `fetch` task's
//! span entered and exited on each of the threads that polled it, its events on the detail
//! lane, its `audit` span marking by the layer's target rule and its closing `error!` by the
//! default level rule, in a persisted window; and with `--trigger symbol=fetch`, the task's
//! span naming the trigger by its name.

mod common;

use ada_atf::TraceReader;
use ada_atf::schema::event::Payload;
use common::{ada, trace_dir};
use std::collections::{BTreeMap, BTreeSet};

#[allow(dead_code)]
#[path = "../../ada-tracing/examples/traced_job.rs"]
mod traced_job;

/// The traced program: the example's `main`. Ignored in a plain run; the test below runs it
/// (`--ignored --exact`) under `ada trace`.
#[test]
#[ignore = "the program `a_tracing_program_is_recorded_through_the_layer` traces"]
fn traced_job_child() {
    traced_job::main();
}

/// `ada trace -q -o OUT EXTRA -- <this binary> traced_job_child ...`: its output.
fn trace_job(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let exe = std::env::current_exe().expect("this test binary");
    ada()
        .args(["trace", "-q", "-o"])
        .arg(out)
        .args(extra)
        .arg("--")
        .arg(&exe)
        .args(["traced_job_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .output()
        .expect("run ada trace")
}

#[test]
fn a_symbol_trigger_names_a_span_by_its_name() {
    // `symbol=fetch` matches the span registered as `<target>::fetch`: each of its enters
    // (one per poll, on the polling thread) writes a trigger mark, so every polling thread
    // gets a window.
    let out = tempfile::tempdir().expect("temporary directory");
    let run = trace_job(out.path(), &["--trigger", "symbol=fetch"]);
    assert!(
        run.status.success(),
        "ada trace failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reader = TraceReader::open(trace_dir(out.path())).expect("open the trace");
    let manifest = reader.manifest().cloned().expect("a finalized trace");
    let fetch = format!("{}::fetch", traced_job::TARGET);
    let fetch_id = manifest
        .symbols
        .iter()
        .find(|s| s.symbol == fetch)
        .map(|s| s.function_id)
        .expect("fetch registered");
    let mut marked_threads = BTreeSet::new();
    for ev in reader.events() {
        let ev = ev.expect("every event decodes");
        if let Some(Payload::Custom(c)) = &ev.payload
            && c.name == "mark"
            && ev.function_id == fetch_id
        {
            marked_threads.insert(ev.thread_id);
        }
    }
    assert!(
        marked_threads.len() >= traced_job::POLLS,
        "trigger marks of fetch on {marked_threads:?}"
    );
}

#[test]
fn a_tracing_program_is_recorded_through_the_layer() {
    let out = tempfile::tempdir().expect("temporary directory");
    let run = trace_job(out.path(), &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "ada trace failed: {stderr}");
    let (workers, items, polls) = (traced_job::WORKERS, traced_job::ITEMS, traced_job::POLLS);
    assert!(
        stdout.contains(&format!("items={} polls={polls}", workers * items)),
        "the job ran to its end: {stdout}"
    );
    // The `fmt` layer beside ADA's still printed the error.
    assert!(stderr.contains("job failed"), "fmt printed it: {stderr}");

    let reader = TraceReader::open(trace_dir(out.path())).expect("open the trace");
    let manifest = reader.manifest().cloned().expect("a finalized trace");
    assert_eq!(manifest.complete, Some(true));
    // Each span and event callsite registered once, as `target::name`.
    let span = |name: &str| format!("{}::{name}", traced_job::TARGET);
    let event = span("event ");
    let names: Vec<&str> = manifest.symbols.iter().map(|s| s.symbol.as_str()).collect();
    for name in ["worker", "item", "fetch"] {
        let name = span(name);
        assert_eq!(
            names.iter().filter(|n| **n == name).count(),
            1,
            "{name} registered once: {names:?}"
        );
        // With its callsite's file and line, in the manifest and in the stream's definition.
        let entry = manifest.symbols.iter().find(|s| s.symbol == name).unwrap();
        assert!(
            entry
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("traced_job.rs"))
                && entry.line.is_some_and(|l| l > 0),
            "{name} has its source location: {entry:?}"
        );
        let def = reader
            .events()
            .filter_map(|ev| match ev.expect("every event decodes").payload {
                Some(Payload::SymbolDef(d)) if d.function_id == entry.function_id => Some(d),
                _ => None,
            })
            .next()
            .expect("the stream defines it");
        assert_eq!(
            (Some(def.file.as_str()), Some(def.line)),
            (entry.file.as_deref(), entry.line),
            "the stream's definition of {name}"
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&event) && n.contains("traced_job.rs:")),
        "events are named by file and line: {names:?}"
    );

    // Per thread: the open spans (a stack of names), each span's calls, the detail texts.
    let mut stacks: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut calls: BTreeMap<(i32, String), usize> = BTreeMap::new();
    let mut messages: Vec<String> = Vec::new();
    let mut marks: Vec<(i32, String)> = Vec::new();
    let mut windows = 0;
    for ev in reader.events() {
        let ev = ev.expect("every event decodes");
        match ev.payload {
            Some(Payload::FunctionCall(call)) if ev.lane == 0 => {
                *calls
                    .entry((ev.thread_id, call.symbol.clone()))
                    .or_default() += 1;
                stacks.entry(ev.thread_id).or_default().push(call.symbol);
            }
            Some(Payload::FunctionReturn(ret)) => {
                let open = stacks.entry(ev.thread_id).or_default().pop();
                assert_eq!(
                    open.as_deref(),
                    Some(ret.symbol.as_str()),
                    "thread {}: an exit matches the innermost open span",
                    ev.thread_id
                );
            }
            Some(Payload::Custom(c)) if c.name == "mark" => {
                marks.push((ev.thread_id, String::from_utf8_lossy(&c.data).into_owned()));
            }
            Some(Payload::Custom(c)) if c.name == "message" => {
                messages.push(String::from_utf8_lossy(&c.data).into_owned());
            }
            Some(Payload::WindowMark(_)) => windows += 1,
            _ => {}
        }
    }
    for (thread, open) in &stacks {
        assert!(open.is_empty(), "thread {thread} left spans open: {open:?}");
    }
    let total = |name: &str| -> usize {
        calls
            .iter()
            .filter(|((_, n), _)| n == name)
            .map(|(_, c)| c)
            .sum()
    };
    assert_eq!(total(&span("worker")), workers);
    assert_eq!(total(&span("item")), workers * items);
    // The task's span: one enter per poll, each on the polling thread (a new one per poll);
    // dropping the task enters it once more, on the thread that drops it.
    let fetch_threads: BTreeSet<i32> = calls
        .keys()
        .filter(|(_, n)| *n == span("fetch"))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        fetch_threads.len() >= polls,
        "fetch entered on {} threads: {calls:?}",
        fetch_threads.len()
    );
    assert!(total(&span("fetch")) >= polls);

    // The `audit` span marked when it was made (its name the text: the target rule), once,
    // and it was entered and exited once, on the main thread.
    assert_eq!(total("audit::report"), 1, "{calls:?}");
    // The closing `error!` marked (the default rule) and the window was persisted, with its
    // fields formatted into the text.
    assert_eq!(marks.len(), 2, "two marks: {marks:?}");
    assert_eq!(
        marks[0].1, "report",
        "the span's mark comes first: {marks:?}"
    );
    let (_, text) = &marks[1];
    assert!(
        text.starts_with("ERROR ") && text.contains("job failed") && text.contains("code=7"),
        "the mark's text: {text}"
    );
    assert!(windows >= 1, "a window was persisted");
    assert!(
        !manifest.windows.is_empty(),
        "the manifest lists the window"
    );
    // Unmarked events outside any window are discarded, not persisted as messages.
    assert!(
        messages.iter().all(|m| !m.contains("item done")),
        "item events are outside the window: {messages:?}"
    );

    // The Chrome export shows each span's source location on its `B` events (the same for
    // every call, so viewers still merge the calls).
    let json = out.path().join("trace.json");
    let export = ada()
        .args(["export", "--chrome"])
        .arg(trace_dir(out.path()))
        .arg("-o")
        .arg(&json)
        .output()
        .expect("run ada export");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("the export is JSON");
    let worker = span("worker");
    let begins: Vec<&serde_json::Value> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "B" && e["name"] == worker.as_str())
        .collect();
    assert_eq!(begins.len(), workers, "one B per worker span");
    let line = manifest
        .symbols
        .iter()
        .find(|s| s.symbol == worker)
        .and_then(|s| s.line)
        .unwrap();
    for b in begins {
        let file = b["args"]["file"].as_str().unwrap_or_default();
        assert!(file.ends_with("traced_job.rs"), "{b}");
        assert_eq!(b["args"]["line"], line, "{b}");
    }
}
