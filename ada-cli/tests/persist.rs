//! Selective persistence through the `ada` command line: bad trigger specs, durations, sizes and
//! config files refused before anything runs (exit 2, nothing left behind).

mod common;

use common::run_ada;
use std::path::Path;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A one-line `ada: error: ...` usage error (exit 2) containing every needle.
fn assert_usage_error(out: &std::process::Output, needles: &[&str]) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    assert!(lines[0].starts_with("ada: error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// No `ada_traces` (nor anything else) in `dir`.
fn assert_nothing_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Runs `ada trace -o OUT ARGS -- touch MARKER` and `ada demo -o OUT ARGS` and checks that each
/// is the usage error, that the command did not run and that nothing was created.
fn assert_refused(args: &[&str], needles: &[&str]) {
    for sub in ["trace", "demo"] {
        let out = tempfile::tempdir().unwrap();
        let marker = out.path().join("ran");
        let o = out.path().join("out");
        let mut full = vec![sub, "-o", o.to_str().unwrap()];
        full.extend_from_slice(args);
        if sub == "trace" {
            full.extend(["--", "touch", marker.to_str().unwrap()]);
        }
        let r = run_ada(&full);
        assert_usage_error(&r, needles);
        assert!(!marker.exists(), "the command must not run: {args:?}");
        assert_nothing_left(out.path());
    }
}

#[test]
fn bad_trigger_specs_are_usage_errors_naming_the_spec_and_position() {
    // (spec, what the message says: the spec's number, its text and the byte position)
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["symbol~=("],
            &[
                "--trigger",
                "trigger 1",
                "symbol~=(",
                "byte 8",
                "invalid regex",
            ],
        ),
        (
            &["symbol=ok", "sym=x"],
            &["trigger 2", "\"sym=x\"", "byte 0", "unknown key"],
        ),
        (&["symbol="], &["trigger 1", "byte 7", "empty pattern"]),
        (
            &["message~=a", "message~=a"],
            &["trigger 2", "duplicate of trigger 1"],
        ),
        (&["symbol"], &["trigger 1", "no operator"]),
        (
            &["symbol=demo::"],
            &["trigger 1", "empty `::` path segment"],
        ),
        (&["symbol~=a{5000000}"], &["trigger 1", "byte"]),
    ];
    for (specs, needles) in cases {
        let mut args = Vec::new();
        for s in specs.iter() {
            args.extend(["--trigger", s]);
        }
        assert_refused(&args, needles);
    }
}

#[test]
fn ten_thousand_triggers_are_refused() {
    let specs: Vec<String> = (0..10_000).map(|i| format!("symbol=f{i}")).collect();
    let mut args = Vec::new();
    for s in &specs {
        args.extend(["--trigger", s.as_str()]);
    }
    assert_refused(&args, &["--trigger", "10000 triggers", "at most 1024"]);
}

#[test]
fn bad_durations_and_sizes_are_usage_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("--pre-roll", "soon", "--pre-roll"),
        ("--post-roll", "1 fortnight", "--post-roll"),
        ("--post-roll", "1000000years", "too long"),
        ("--pre-roll-budget", "4TiB", "unknown unit"),
        ("--pre-roll-budget", "2GiB", "larger than 1GiB"),
        ("--pre-roll-budget", "lots", "not a size"),
        ("--persist-all=maybe", "", "--persist-all"),
    ];
    for &(flag, value, needle) in cases {
        let args: Vec<&str> = if value.is_empty() {
            vec![flag]
        } else {
            vec![flag, value]
        };
        assert_refused(&args, &[needle]);
    }
}

/// Writes `text` to a config file in a fresh directory and checks `--config` refuses it.
fn assert_config_refused(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ada.toml");
    std::fs::write(&path, text).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(needles);
    assert_refused(&["--config", path.to_str().unwrap()], &all[2..]);
    assert_refused(&["--config", path.to_str().unwrap()], &["ada.toml"]);
}

#[test]
fn bad_config_files_are_usage_errors_naming_the_key() {
    assert_config_refused(
        "trigger = [\"symbol=a\"]\nfoo = 1\n",
        &["line 2", "unknown field `foo`"],
    );
    assert_config_refused(
        "pre-roll = 5\n",
        &["line 1", "pre-roll", "expected a string"],
    );
    assert_config_refused(
        "post-roll = \"5 parsecs\"\n",
        &["post-roll", "unknown time unit"],
    );
    assert_config_refused(
        "pre-roll-budget = \"9GiB\"\n",
        &["pre-roll-budget", "larger than 1GiB"],
    );
    assert_config_refused(
        "pre-roll-budget = 4294967296\n",
        &["pre-roll-budget", "larger than 1GiB"],
    );
    assert_config_refused(
        "persist-all = \"yes\"\n",
        &["persist-all", "expected a boolean"],
    );
    assert_config_refused(
        "trigger = [\"symbol=a\", \"message~=[\"]\n",
        &["trigger", "trigger 2", "invalid regex"],
    );
    assert_config_refused(
        "trigger = \"symbol=a\"\n",
        &["trigger", "expected a sequence"],
    );
    assert_config_refused("trigger = [\n", &["line"]);
    // Not a file at all.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    assert_refused(
        &["--config", missing.to_str().unwrap()],
        &["missing.toml", "cannot read it"],
    );
}

#[test]
fn the_command_line_wins_over_the_config_file() {
    // The file's bad trigger list is replaced by the command line's good one, its bad
    // duration by the flag's: the run goes ahead.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ada.toml");
    std::fs::write(&path, "trigger = [\"symbol~=(\"]\npersist-all = true\n").unwrap();
    let out = dir.path().join("out");
    let r = run_ada(&[
        "trace",
        "-q",
        "-o",
        out.to_str().unwrap(),
        "--config",
        path.to_str().unwrap(),
        "--trigger",
        "symbol=fine",
        "--persist-all=false",
        "--",
        "true",
    ]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    // Without the flag, the file's refusal names it.
    let r = run_ada(&[
        "trace",
        "-q",
        "-o",
        out.to_str().unwrap(),
        "--config",
        path.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_usage_error(&r, &["ada.toml", "trigger 1", "invalid regex"]);
}

#[test]
fn a_trigger_matching_everything_is_allowed_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_ada(&[
        "trace",
        "-q",
        "-o",
        dir.path().to_str().unwrap(),
        "--trigger",
        "symbol~=.*",
        "--",
        "true",
    ]);
    let err = stderr_of(&r);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains("ada: warning: trigger symbol~=.* matches every symbol"),
        "{err}"
    );
}

#[test]
fn help_documents_the_persistence_flags() {
    for sub in ["trace", "demo"] {
        let r = run_ada(&[sub, "--help"]);
        let text = String::from_utf8_lossy(&r.stdout);
        for flag in [
            "--trigger <SPEC>",
            "--pre-roll <DUR>",
            "--post-roll <DUR>",
            "--pre-roll-budget <SIZE>",
            "--persist-all",
            "--config <FILE>",
            "symbol~=REGEX",
        ] {
            assert!(text.contains(flag), "{sub} --help lacks {flag}: {text}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// End to end: `ada trace --trigger symbol=slow_request -- ada workload --detail-seq ...`.

use ada_atf::schema::event::Payload;
use ada_atf::{Lane, Manifest, TraceReader};
use std::collections::{BTreeMap, BTreeSet};

/// What one workload thread's detail lane held in the trace.
#[derive(Debug, Default)]
struct ThreadDetail {
    /// Session thread number.
    number: i32,
    /// Persisted `request` records: seq -> timestamp (ns).
    requests: BTreeMap<u64, u64>,
    /// Marks from `slow_request`: (the request seq they follow, timestamp).
    marks: Vec<(u64, u64)>,
    /// The thread's windows, as written in the stream.
    windows: Vec<ada_atf::schema::WindowMark>,
}

/// A `--detail-seq` trace, read back.
struct DetailTrace {
    manifest: Manifest,
    /// By workload thread index (the `thread` in each record's stack bytes).
    threads: BTreeMap<u64, ThreadDetail>,
    /// Window events in the stream.
    windows: u64,
}

fn read_detail_trace(dir: &Path) -> DetailTrace {
    let reader = TraceReader::open(dir).expect("open trace");
    let manifest = reader.manifest().cloned().expect("finalized trace");
    let slow_ids: BTreeSet<u64> = manifest
        .symbols
        .iter()
        .filter(|s| s.symbol == "slow_request")
        .map(|s| s.function_id)
        .collect();
    let mut by_number: BTreeMap<i32, ThreadDetail> = BTreeMap::new();
    let mut workload_thread: BTreeMap<i32, u64> = BTreeMap::new();
    let mut windows = 0u64;
    for ev in reader.events() {
        let ev = ev.expect("every event decodes");
        if let Some(Payload::WindowMark(w)) = ev.payload {
            windows += 1;
            by_number.entry(w.thread_id).or_default().windows.push(w);
            continue;
        }
        if ev.lane != Lane::Detail as u32 {
            continue;
        }
        let ts = ev
            .timestamp
            .and_then(|t| t.to_nanos())
            .expect("a valid timestamp");
        let t = by_number.entry(ev.thread_id).or_default();
        t.number = ev.thread_id;
        match &ev.payload {
            Some(Payload::FunctionCall(call)) if call.symbol == "request" => {
                let s = &call.stack_shallow_copy;
                assert_eq!(s.len(), 16, "request record stack: {call:?}");
                let seq = u64::from_le_bytes(s[..8].try_into().unwrap());
                let thread = u64::from_le_bytes(s[8..].try_into().unwrap());
                assert!(
                    t.requests.insert(seq, ts).is_none(),
                    "request {seq} persisted twice"
                );
                workload_thread.insert(ev.thread_id, thread);
            }
            Some(Payload::Custom(c)) if c.name == "mark" && slow_ids.contains(&ev.function_id) => {
                let after = t
                    .requests
                    .last_key_value()
                    .map(|(&s, _)| s)
                    .expect("a mark follows its request's record (its pre-roll)");
                t.marks.push((after, ts));
            }
            _ => {}
        }
    }
    let threads = by_number
        .into_iter()
        .filter_map(|(n, t)| workload_thread.get(&n).map(|&w| (w, t)))
        .collect();
    DetailTrace {
        manifest,
        threads,
        windows,
    }
}

const THREADS: u64 = 2;
const EVENTS: u64 = 6_000;
const RATE: u64 = 3_000;
const SLOW_EVERY: u64 = 1_000;
const PRE_ROLL_NS: u64 = 5_000_000;
const POST_ROLL_NS: u64 = 10_000_000;

/// `ada trace -q -o OUT PERSIST_ARGS -- ada workload --detail-seq ...`; the trace read back.
fn trace_detail_seq(out: &Path, persist_args: &[&str]) -> DetailTrace {
    let (threads, events, rate, slow) = (
        THREADS.to_string(),
        EVENTS.to_string(),
        RATE.to_string(),
        SLOW_EVERY.to_string(),
    );
    let mut args = vec!["trace", "-q", "-o", out.to_str().unwrap()];
    args.extend_from_slice(persist_args);
    args.extend([
        "--",
        env!("CARGO_BIN_EXE_ada"),
        "workload",
        "--detail-seq",
        "--threads",
        &threads,
        "--events",
        &events,
        "--rate",
        &rate,
        "--slow-every",
        &slow,
    ]);
    let r = run_ada(&args);
    assert!(r.status.success(), "{}", stderr_of(&r));
    let trace = read_detail_trace(&common::trace_dir(out));
    assert_eq!(trace.manifest.complete, Some(true));
    assert_eq!(trace.threads.len(), THREADS as usize, "every worker traced");
    trace
}

/// The slow requests of one worker.
fn slow_requests() -> BTreeSet<u64> {
    (0..EVENTS)
        .filter(|s| s % SLOW_EVERY == SLOW_EVERY - 1)
        .collect()
}

#[test]
fn triggers_persist_exactly_the_windows_around_marks() {
    let out = tempfile::tempdir().unwrap();
    let pre = format!("{PRE_ROLL_NS}ns");
    let post = format!("{POST_ROLL_NS}ns");
    let trace = trace_detail_seq(
        out.path(),
        &[
            "--trigger",
            "symbol=slow_request",
            "--pre-roll",
            &pre,
            "--post-roll",
            &post,
        ],
    );
    for (w, t) in &trace.threads {
        let summary = trace
            .manifest
            .threads
            .iter()
            .find(|s| s.thread_id == t.number)
            .expect("the thread is in the manifest");
        let detail = summary
            .lanes
            .iter()
            .find(|l| l.lane == Lane::Detail)
            .expect("a detail lane");
        assert!(
            detail.is_balanced(),
            "written = persisted + dropped + discarded: {detail:?}"
        );
        assert_eq!(detail.dropped, 0, "no ring drops at this rate: {detail:?}");
        assert!(
            detail.discarded > 0,
            "outside the windows is discarded: {detail:?}"
        );
        for lane in &summary.lanes {
            assert!(lane.is_balanced(), "{lane:?}");
        }
        let index = summary
            .lanes
            .iter()
            .find(|l| l.lane == Lane::Index)
            .unwrap();
        assert_eq!(index.discarded, 0, "the index lane is always persisted");

        // Every marked event is there, after exactly its slow request.
        let marked: BTreeSet<u64> = t.marks.iter().map(|&(s, _)| s).collect();
        assert_eq!(marked, slow_requests(), "worker {w}: the marks");
        // The mark's own request (its newest pre-roll) is there.
        for s in &marked {
            assert!(
                t.requests.contains_key(s),
                "worker {w}: request {s} before its mark"
            );
        }
        let marks: Vec<u64> = t.marks.iter().map(|&(_, ts)| ts).collect();
        // Every persisted request lies in some mark's window: [mark - pre-roll, mark +
        // post-roll]. So nothing outside the windows was persisted.
        for (&seq, &ts) in &t.requests {
            assert!(
                marks
                    .iter()
                    .any(|&m| ts + PRE_ROLL_NS >= m && ts <= m + POST_ROLL_NS),
                "worker {w}: request {seq} at {ts} is outside every window {marks:?}"
            );
        }
        // Every request inside a window was persisted. A missing run a..=b of requests has
        // timestamps between those of a-1 and b+1 (the worker writes in order), so it lay in
        // the post-roll of the last mark before it if ts(b+1) <= that mark + post-roll, and in
        // the pre-roll of the next mark after it if ts(a-1) >= that mark - pre-roll.
        let persisted: Vec<u64> = t.requests.keys().copied().collect();
        for pair in persisted.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            if after == before + 1 {
                continue;
            }
            let (ts_before, ts_after) = (t.requests[&before], t.requests[&after]);
            if let Some(&(_, m)) = t.marks.iter().rev().find(|&&(s, _)| s <= before) {
                assert!(
                    ts_after > m + POST_ROLL_NS,
                    "worker {w}: requests {}..{after} missing inside the post-roll of the mark at {m}",
                    before + 1
                );
            }
            if let Some(&(_, m)) = t.marks.iter().find(|&&(s, _)| s >= after - 1) {
                assert!(
                    ts_before + PRE_ROLL_NS < m,
                    "worker {w}: requests {}..{after} missing inside the pre-roll of the mark at {m}",
                    before + 1
                );
            }
        }
        // The discarded count is what is missing, and the persisted count is what is there.
        let records = t.requests.len() as u64 + t.marks.len() as u64;
        assert_eq!(
            detail.persisted, records,
            "worker {w}: the manifest's persisted detail events are the stream's"
        );
        assert_eq!(
            detail.written,
            EVENTS + t.marks.len() as u64,
            "worker {w}: one record per request, one per mark"
        );
        // One window per mark (they are a third of a second apart: none merge), each opened
        // by trigger 0 at its mark, holding exactly the persisted records.
        assert_eq!(
            t.windows.len(),
            t.marks.len(),
            "worker {w}: {:?}",
            t.windows
        );
        for (window, &(_, m)) in t.windows.iter().zip(&t.marks) {
            assert_eq!(window.trigger, Some(0), "worker {w}: {window:?}");
            assert_eq!(window.first_mark_ns, m, "worker {w}: {window:?}");
            assert!(window.start_ns <= m && m <= window.end_ns, "{window:?}");
        }
        let in_windows: u64 = t.windows.iter().map(|w| w.total_events).sum();
        assert_eq!(
            in_windows, records,
            "worker {w}: the windows hold the persisted records"
        );
        assert!(
            t.requests.len() < EVENTS as usize / 2,
            "worker {w}: most requests discarded ({} kept)",
            t.requests.len()
        );
    }
    assert!(trace.windows > 0, "windows are written in the stream");
    assert_eq!(
        trace.manifest.triggers,
        ["symbol=slow_request"],
        "the manifest names the trigger the windows' index refers to"
    );
}

#[test]
fn persist_all_keeps_every_detail_event() {
    let out = tempfile::tempdir().unwrap();
    let trace = trace_detail_seq(
        out.path(),
        &["--trigger", "symbol=slow_request", "--persist-all"],
    );
    for (w, t) in &trace.threads {
        let seqs: Vec<u64> = t.requests.keys().copied().collect();
        assert_eq!(
            seqs,
            (0..EVENTS).collect::<Vec<_>>(),
            "worker {w}: every request"
        );
        let marked: BTreeSet<u64> = t.marks.iter().map(|&(s, _)| s).collect();
        assert_eq!(marked, slow_requests(), "worker {w}: triggers still mark");
    }
    for summary in &trace.manifest.threads {
        for lane in &summary.lanes {
            assert!(lane.is_balanced(), "{lane:?}");
            assert_eq!(lane.discarded, 0, "nothing discarded: {lane:?}");
        }
    }
}

/// The sparse workload (`ada demo`'s: about one slow request per worker per second) with a
/// trigger on its slow requests writes at least 95 % fewer detail bytes than with
/// `--persist-all`, while every mark is there. Figures go to BENCHMARKS.md (issue 12).
#[test]
fn triggers_cut_the_detail_bytes_of_a_sparse_workload_by_95_percent() {
    // The demo's workload: 4 workers, 2000 requests per second each for 2 s, every 2000th slow.
    let workload = [
        env!("CARGO_BIN_EXE_ada"),
        "workload",
        "--threads",
        "4",
        "--events",
        "4000",
        "--rate",
        "2000",
        "--slow-every",
        "2000",
    ];
    let run = |persist: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["trace", "-q", "-o", out.path().to_str().unwrap()];
        args.extend_from_slice(persist);
        args.push("--");
        args.extend_from_slice(&workload);
        let r = run_ada(&args);
        assert!(r.status.success(), "{}", stderr_of(&r));
        let dir = common::trace_dir(out.path());
        let reader = TraceReader::open(&dir).unwrap();
        let manifest = reader.manifest().cloned().unwrap();
        let (mut bytes, mut marks) = (0u64, 0u64);
        for ev in reader.events() {
            let ev = ev.unwrap();
            let window = matches!(ev.payload, Some(Payload::WindowMark(_)));
            if ev.lane == Lane::Detail as u32 || window {
                bytes += prost::Message::encoded_len(&ev) as u64;
            }
            if matches!(&ev.payload, Some(Payload::Custom(c)) if c.name == "mark") {
                marks += 1;
            }
        }
        (bytes, marks, manifest)
    };
    let (windowed, marks, manifest) =
        run(&["--trigger", "symbol=slow_request", "--pre-roll", "10ms"]);
    let (all, all_marks, _) = run(&["--trigger", "symbol=slow_request", "--persist-all"]);
    // The default pre-roll: what the detail rings hold (2 x 48 KiB per thread), here more than
    // half a second of this workload's detail events before each mark.
    let (ring_preroll, ring_marks, _) = run(&["--trigger", "symbol=slow_request"]);
    // Each slow request marks twice: its `slow_request` span and its message at that callsite.
    assert_eq!(
        marks,
        4 * 2 * 2,
        "every mark persisted (2 slow requests per worker)"
    );
    assert_eq!(all_marks, marks);
    assert_eq!(ring_marks, marks);
    for t in &manifest.threads {
        for lane in &t.lanes {
            assert!(lane.is_balanced(), "{lane:?}");
        }
    }
    let smaller = |bytes: u64| (1.0 - bytes as f64 / all as f64) * 100.0;
    eprintln!(
        "detail bytes: {windowed} with triggers and --pre-roll 10ms ({:.1} % smaller), \
         {ring_preroll} with triggers and the default pre-roll ({:.1} % smaller), {all} with \
         --persist-all",
        smaller(windowed),
        smaller(ring_preroll)
    );
    assert!(ring_preroll < all, "{ring_preroll} vs {all}");
    assert!(
        smaller(windowed) >= 95.0,
        "{windowed} vs {all}: only {:.1} % smaller",
        smaller(windowed)
    );
}
