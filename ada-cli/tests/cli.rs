//! The `ada` command line: the demo and its trace read back by `inspect` and `export`, and bad
//! input of every kind answered by a one-line error and a non-zero exit, never a panic or a
//! trace presented as complete.

mod common;

use common::{ada, run_ada, trace_dir};
use std::io::Write;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A one-line `ada: error: ...` message and the given exit code.
fn assert_one_line_error(out: &std::process::Output, code: i32, needle: &str) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    assert!(lines[0].starts_with("ada: error: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn demo_trace_is_read_by_inspect_and_export() {
    let out = tempfile::tempdir().unwrap();
    let demo = run_ada(&["demo", "-q", "-o", out.path().to_str().unwrap()]);
    let err = stderr_of(&demo);
    assert!(demo.status.success(), "{err}");
    assert!(
        err.contains("ada inspect "),
        "tells the user how to look: {err}"
    );
    let dir = trace_dir(out.path());

    let manifest = ada_atf::Manifest::read(&dir.join("trace.json")).unwrap();
    assert_eq!(manifest.complete, Some(true));
    assert_eq!(manifest.threads.len(), 4, "four workers");
    for t in &manifest.threads {
        for lane in &t.lanes {
            assert!(lane.is_balanced(), "{t:?}");
            assert!(lane.written > 0, "{t:?}");
        }
    }
    let names: Vec<&str> = manifest.symbols.iter().map(|s| s.symbol.as_str()).collect();
    for n in [
        "handle_request",
        "parse_request",
        "compute",
        "fib",
        "slow_request",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }

    // The functions by name in `--top` (which of them the first events define depends on
    // the order in which the threads' first callsites reached the drain).
    let inspect = run_ada(&["inspect", dir.to_str().unwrap(), "-n", "5", "--top", "5"]);
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("trace start"), "{text}");
    let top = text
        .split_once("top 5 functions by calls")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(
        top.lines().take(7).any(|l| l.ends_with(" handle_request")),
        "{text}"
    );

    let json = out.path().join("demo.json");
    let export = run_ada(&[
        "export",
        "--chrome",
        dir.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr_of(&export));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let begins = events.iter().filter(|e| e["ph"] == "B").count();
    let ends = events.iter().filter(|e| e["ph"] == "E").count();
    assert!(begins > 1000 && ends > 1000, "B {begins} E {ends}");
    let dropped: u64 = manifest.threads.iter().map(|t| t.lanes[0].dropped).sum();
    if dropped == 0 {
        assert_eq!(begins, ends, "every span closed when nothing was dropped");
    }
    assert!(events.iter().any(|e| e["name"] == "fib"));
}

#[test]
fn unknown_flag_is_a_one_line_usage_error() {
    assert_one_line_error(&run_ada(&["trace", "--bogus", "--", "true"]), 2, "--bogus");
    assert_one_line_error(&run_ada(&["frobnicate"]), 2, "frobnicate");
    assert_one_line_error(
        &run_ada(&["trace", "--duration", "soon", "--", "true"]),
        2,
        "soon",
    );
    assert_one_line_error(
        &run_ada(&["trace", "--threads", "0", "--", "true"]),
        2,
        "--threads",
    );
}

/// Nothing under `out` after a run that traced nothing: no `ada_traces` (created and left empty
/// before).
fn assert_nothing_left(out: &std::path::Path) {
    let left: Vec<_> = out.read_dir().unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn out_of_range_ring_sizes_are_refused_before_running_anything() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let marker = out.path().join("ran");
    let r = run_ada(&[
        "trace",
        "-o",
        o,
        "--index-rings",
        "9",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 2, "2..=8 rings");
    assert!(!marker.exists(), "the command must not run");
    assert_nothing_left(out.path());
}

/// Every ring, geometry and interval flag out of range: a usage error (exit 2) naming the flag
/// and its limit, for `trace` and `demo`, and no `ada_traces` left in the output directory.
#[test]
fn every_bad_ring_or_interval_flag_is_a_usage_error_that_leaves_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        ("--index-rings", "99", "2..=8 rings"),
        ("--index-rings", "1", "2..=8 rings"),
        ("--detail-rings", "0", "2..=8 rings"),
        ("--detail-rings", "9", "2..=8 rings"),
        ("--index-ring-kib", "0", "between 256 bytes and 64 MiB"),
        ("--index-ring-kib", "65537", "between 256 bytes and 64 MiB"),
        (
            "--index-ring-kib",
            "4194304",
            "between 256 bytes and 64 MiB",
        ),
        ("--detail-ring-kib", "0", "between 256 bytes and 64 MiB"),
        ("--detail-ring-kib", "70000", "between 256 bytes and 64 MiB"),
        ("--drain-interval", "2s", "longer than 1s"),
        ("--drain-interval", "1h", "longer than 1s"),
        ("--drain-interval", "soon", "examples"),
        ("--threads", "4097", "1..=4096"),
        ("--fallback-records", "3", "power of two"),
        ("--fallback-records", "2097152", "power of two"),
        ("--fallback-records", "many", "not a record count"),
        ("--drain-threads", "0", "from 1 to 64"),
        ("--drain-threads", "65", "from 1 to 64"),
        ("--drain-threads", "all", "from 1 to 64"),
    ];
    for &(flag, value, limit) in cases {
        for sub in ["trace", "demo"] {
            let out = tempfile::tempdir().unwrap();
            let o = out.path().to_str().unwrap();
            let mut args = vec![sub, "-o", o, flag, value];
            if sub == "trace" {
                args.extend(["--", "true"]);
            }
            let r = run_ada(&args);
            assert_one_line_error(&r, 2, flag);
            assert_one_line_error(&r, 2, limit);
            assert_nothing_left(out.path());
            // Not even the output directory itself when it did not exist.
            let missing = out.path().join("new/deeper");
            args[2] = missing.to_str().unwrap();
            assert_one_line_error(&run_ada(&args), 2, flag);
            assert_nothing_left(out.path());
        }
    }
}

/// `--drain-threads 3`: three drain workers write one stream that reads like any other (ids
/// `1..=n`, every event once, each thread's in order) with exact accounting.
#[test]
fn three_drain_workers_write_one_trace() {
    const THREADS: usize = 5;
    const EVENTS: u64 = 20_000;
    let out = tempfile::tempdir().unwrap();
    let r = ada()
        .args([
            "trace",
            "-q",
            "--drain-threads",
            "3",
            "--index-ring-kib",
            "1024",
            "-o",
        ])
        .arg(out.path())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--seq", "--threads", &THREADS.to_string()])
        .args(["--events", &EVENTS.to_string(), "--rate", "200000"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr_of(&r));
    let t = common::read_seq_trace(&trace_dir(out.path()), THREADS);
    assert_eq!(t.ledger.duplicates(), 0);
    assert_eq!(t.out_of_order, 0);
    assert_eq!(t.manifest.complete, Some(true));
    assert_eq!(t.manifest.event_count, t.events + t.definitions);
    assert_eq!(t.manifest.threads.len(), THREADS);
    let mut persisted = 0;
    for th in &t.manifest.threads {
        let l = &th.lanes[0];
        assert!(l.is_balanced(), "{th:?}");
        assert_eq!(l.written, EVENTS, "{th:?}");
        persisted += l.persisted + l.via_fallback.unwrap_or(0);
    }
    let distinct: u64 = (0..THREADS).map(|p| t.ledger.distinct(p)).sum();
    assert_eq!(distinct, persisted);
}

#[test]
fn missing_command_is_a_one_line_usage_error() {
    assert_one_line_error(&run_ada(&["trace"]), 2, "COMMAND");
    assert_one_line_error(&run_ada(&["trace", "-o", "/tmp", "--"]), 2, "COMMAND");
}

#[test]
fn unwritable_output_directory_fails_before_running_anything() {
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("ran");
    let out = run_ada(&[
        "trace",
        "-o",
        "/proc/ada-cannot-write-here",
        "--",
        "touch",
        touched.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, 1, "/proc/ada-cannot-write-here");
    assert!(!touched.exists(), "the command must not run");
}

#[test]
fn command_that_cannot_start_is_reported() {
    let out = tempfile::tempdir().unwrap();
    let r = run_ada(&[
        "trace",
        "-o",
        out.path().to_str().unwrap(),
        "--",
        "/nonexistent/ada-test-command",
    ]);
    assert_one_line_error(&r, 1, "cannot run");
    assert_nothing_left(out.path());
}

/// A command that cannot be started leaves no directory this run created (the output directory
/// and its missing parents included), and deletes none that existed before.
#[test]
fn command_that_cannot_start_leaves_only_what_was_there() {
    let out = tempfile::tempdir().unwrap();
    let fresh = out.path().join("a/b");
    let r = run_ada(&[
        "trace",
        "-o",
        fresh.to_str().unwrap(),
        "--",
        "ada-test-command-that-is-not-on-path",
    ]);
    assert_one_line_error(&r, 1, "cannot run");
    assert_nothing_left(out.path());

    let traces = out.path().join("ada_traces");
    std::fs::create_dir_all(traces.join("session_earlier")).unwrap();
    let r = run_ada(&[
        "trace",
        "-o",
        out.path().to_str().unwrap(),
        "--",
        "/nonexistent/ada-test-command",
    ]);
    assert_one_line_error(&r, 1, "cannot run");
    assert!(traces.join("session_earlier").is_dir(), "kept");
    std::fs::remove_dir(traces.join("session_earlier")).unwrap();
    let r = run_ada(&[
        "trace",
        "-o",
        out.path().to_str().unwrap(),
        "--",
        "/nonexistent/ada-test-command",
    ]);
    assert_one_line_error(&r, 1, "cannot run");
    assert!(
        traces.is_dir(),
        "an ada_traces that was there before stays, even empty"
    );
}

#[test]
fn trace_help_documents_the_exit_codes() {
    let r = run_ada(&["trace", "--help"]);
    assert!(r.status.success());
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("Exit codes:"), "{text}");
    assert!(text.contains("2  usage error"), "{text}");
}

/// A file in /dev/shm named like an ADA segment but holding something else.
struct ForeignSegment(std::path::PathBuf, String);

impl ForeignSegment {
    fn new() -> Self {
        let name = format!("ada_{}_{:016x}", std::process::id(), 0xdead_beef_u64);
        let path = std::path::Path::new("/dev/shm").join(&name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&[0x5a; 8192]).unwrap();
        ForeignSegment(path, format!("/{name}"))
    }
}

impl Drop for ForeignSegment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_segment_that_is_not_ours_is_refused() {
    let foreign = ForeignSegment::new();
    assert_one_line_error(&run_ada(&["status", &foreign.1]), 1, "magic");
    assert_one_line_error(&run_ada(&["status", "not-a-segment"]), 1, "not-a-segment");
    let missing = format!("/ada_{}_{:016x}", std::process::id(), 0x1234_u64);
    assert_one_line_error(&run_ada(&["status", &missing]), 1, &missing);

    // A traced program pointed at it runs untraced and says why in one line.
    let w = ada()
        .args(["workload", "--threads", "1", "--events", "10"])
        .env("ADA_SHM", &foreign.1)
        .output()
        .unwrap();
    assert!(w.status.success());
    let err = stderr_of(&w);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("tracing disabled"), "{err}");
}

#[test]
fn inspect_and_export_of_a_non_trace_fail_cleanly() {
    let empty = tempfile::tempdir().unwrap();
    let p = empty.path().to_str().unwrap();
    assert_one_line_error(&run_ada(&["inspect", p]), 1, "events.bin");
    let out = empty.path().join("x.json");
    assert_one_line_error(
        &run_ada(&["export", "--chrome", p, "-o", out.to_str().unwrap()]),
        1,
        "events.bin",
    );
    assert!(!out.exists(), "no half-written export");
}

#[test]
fn error_messages_escape_the_paths_they_quote() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory with a name no terminal should see raw: not a trace.
    let evil = tmp.path().join("x\u{1b}[2Jy\u{202e}z");
    std::fs::create_dir(&evil).unwrap();
    let out = run_ada(&["inspect", evil.to_str().unwrap()]);
    assert_one_line_error(&out, 1, "x\\x1b[2Jy\\u{202e}z");
    let err = stderr_of(&out);
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{202e}'),
        "{err}"
    );
}

#[test]
fn inspect_and_export_take_a_session_directory_with_one_trace() {
    let out = tempfile::tempdir().unwrap();
    let write = |pid| {
        let options = ada_atf::WriterOptions {
            pid,
            session_label: Some("session_cli".into()),
            ..ada_atf::WriterOptions::default()
        };
        ada_atf::TraceWriter::create(out.path(), options)
            .unwrap()
            .finalize(ada_atf::TraceSummary::default())
            .unwrap()
            .dir
    };
    let first = write(11);
    let session = first.parent().unwrap().to_str().unwrap().to_owned();
    let inspect = run_ada(&["inspect", &session]);
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.starts_with(&format!("trace: {}", first.display())),
        "{text}"
    );
    let json = out.path().join("one.json");
    let export = run_ada(&["export", "--chrome", &session, "-o", json.to_str().unwrap()]);
    assert!(export.status.success(), "{}", stderr_of(&export));
    assert!(json.exists());

    let second = write(12);
    let two = out.path().join("two.json");
    for r in [
        run_ada(&["inspect", &session]),
        run_ada(&["export", "--chrome", &session, "-o", two.to_str().unwrap()]),
    ] {
        assert_one_line_error(&r, 1, "holds 2 traces");
        let err = stderr_of(&r);
        assert!(err.contains(&second.display().to_string()), "{err}");
    }
    assert!(!two.exists(), "no half-written export");
}

/// `ada trace -q ARGS -o OUT -- ada workload --seq` on 2 threads that would run for hours.
fn endless_workload(args: &[&str], out: &std::path::Path) -> std::process::Command {
    let mut cmd = ada();
    cmd.args(["trace", "-q"])
        .args(args)
        .arg("-o")
        .arg(out)
        .arg("--");
    cmd.arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--seq", "--threads", "2"])
        .args(["--events", "1000000000", "--rate", "20000"]);
    cmd
}

#[test]
fn duration_stops_the_command_and_still_finalizes() {
    let out = tempfile::tempdir().unwrap();
    let r = endless_workload(&["--duration", "700ms"], out.path())
        .output()
        .unwrap();
    let err = stderr_of(&r);
    assert_eq!(
        r.status.code(),
        Some(128 + 15),
        "SIGTERM exit passed on: {err}"
    );
    assert!(err.contains("duration elapsed"), "{err}");
    let t = common::read_seq_trace(&trace_dir(out.path()), 2);
    assert_eq!(t.manifest.complete, Some(true));
    assert_eq!(t.manifest.exit_code, Some(143));
    for p in 0..2 {
        assert!(t.ledger.distinct(p) > 1000, "{p}: {}", t.ledger.distinct(p));
        assert_eq!(t.ledger.distinct(p), t.max_seq[p], "no gaps for thread {p}");
    }
}

#[test]
fn sigint_stops_tracing_and_finalizes() {
    let out = tempfile::tempdir().unwrap();
    let child = endless_workload(&[], out.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let r = child.wait_with_output().unwrap();
    let err = stderr_of(&r);
    assert_eq!(r.status.code(), Some(128 + 2), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let t = common::read_seq_trace(&trace_dir(out.path()), 2);
    assert_eq!(t.manifest.complete, Some(true));
    assert!(t.calls > 1000);
}

/// The `/dev/shm` name of the segment controller `pid` created, waiting up to 10 s for it.
fn segment_of(pid: u32) -> String {
    let prefix = format!("ada_{pid}_");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.starts_with(&prefix));
        if let Some(name) = found {
            return name;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no segment of controller {pid}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_sigkilled_controllers_segment_is_removed_by_the_next_run() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let pidfile = out.path().join("child.pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let mut controller = ada()
        .args(["trace", "-q", "-o", o, "--", "sh", "-c", &script])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ada_pid = controller.id();
    let name = segment_of(ada_pid);
    let path = std::path::Path::new("/dev/shm").join(&name);
    // Let the traced command start, so the controller is mid-run when it dies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let child_pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    controller.kill().unwrap(); // SIGKILL: no destructor unlinks the segment
    controller.wait().unwrap();
    if let Some(pid) = rustix::process::Pid::from_raw(child_pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    assert!(
        path.exists(),
        "the killed controller's segment stays behind"
    );

    // A segment whose creator (this test) runs must survive every cleanup below.
    let live = ada_shm::Segment::create(
        &[ada_shm::RegionSpec {
            kind: ada_shm::RegionKind::Control,
            version: 1,
            size: 384,
        }],
        ada_shm::clock::ClockId::Monotonic,
    )
    .unwrap();
    let live_path = format!("/dev/shm{}", live.name());

    // `ada status` lists it as stale, with the command that removes it.
    let status = run_ada(&["status"]);
    assert!(status.status.success());
    let listing = String::from_utf8_lossy(&status.stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("/{name} ")))
        .unwrap_or_else(|| panic!("/{name} is listed: {listing}"));
    assert!(
        line.contains(&format!("controller pid {ada_pid}")),
        "{line}"
    );
    assert!(line.contains("stale"), "{line}");
    assert!(listing.contains("ada status --clean"), "{listing}");

    // The next `ada trace` removes it and says so.
    let run = ada()
        .env_remove("ADA_KEEP_STALE_SEGMENTS")
        .args(["trace", "-q", "-o", o, "--", "true"])
        .output()
        .expect("run ada");
    let err = stderr_of(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "ada: removed stale segment /{name} of dead controller pid {ada_pid}"
        )),
        "{err}"
    );
    assert!(!path.exists());
    assert!(std::path::Path::new(&live_path).exists());

    // `ada status --clean` leaves the live one alone too.
    let clean = run_ada(&["status", "--clean"]);
    assert!(clean.status.success(), "{}", stderr_of(&clean));
    assert!(!stderr_of(&clean).contains(&name));
    assert!(std::path::Path::new(&live_path).exists());
}

#[test]
fn status_clean_removes_a_stale_segment_and_is_documented() {
    // A segment whose creator died: forged by naming a pid above the kernel's pid_max.
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 22);
    let dead = max + 2000;
    let name = ada_shm::SegmentName::generate(dead).unwrap().0;
    let seg = ada_shm::Segment::create_named(
        &name,
        1,
        &[ada_shm::RegionSpec {
            kind: ada_shm::RegionKind::Control,
            version: 1,
            size: 384,
        }],
        ada_shm::clock::ClockId::Monotonic,
    )
    .unwrap();
    let path = format!("/dev/shm{name}");
    {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(40)).unwrap(); // the header's creator pid
        f.write_all(&dead.to_le_bytes()).unwrap();
    }
    let clean = run_ada(&["status", "--clean"]);
    let err = stderr_of(&clean);
    assert!(clean.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "ada: removed stale segment {name} of dead controller pid {dead}"
        )),
        "{err}"
    );
    assert!(!std::path::Path::new(&path).exists());
    drop(seg);

    let help = run_ada(&["status", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--clean"), "{text}");
    assert!(text.contains("SIGKILL"), "{text}");
}

/// An empty directory to which planted links point.
fn victim_dir(root: &std::path::Path) -> std::path::PathBuf {
    let v = root.join("victim");
    std::fs::create_dir(&v).unwrap();
    v
}

fn is_empty_dir(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// A link planted at `<out>/ada_traces` is refused with a one-line error before the command
/// runs, and nothing is written where it points.
#[test]
fn planted_ada_traces_link_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let victim = victim_dir(root.path());
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("ada_traces")).unwrap();
    let touched = root.path().join("ran");
    let r = run_ada(&[
        "trace",
        "-o",
        out.to_str().unwrap(),
        "--",
        "touch",
        touched.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 1, "symbolic link");
    assert!(!touched.exists(), "the command must not run");
    assert!(is_empty_dir(&victim));
    assert!(
        std::fs::symlink_metadata(out.join("ada_traces"))
            .unwrap()
            .is_symlink()
    );
}

/// Links planted at the predictable `session_<UTC second>` names of the next seconds are not
/// followed: the trace goes to a fresh real directory instead.
#[test]
fn planted_session_links_are_not_followed() {
    let out = tempfile::tempdir().unwrap();
    let victim = victim_dir(out.path());
    let traces = out.path().join("ada_traces");
    std::fs::create_dir(&traces).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for s in 0..30 {
        let name = ada_atf::writer::session_dir_name((now + s) * 1_000_000_000);
        std::os::unix::fs::symlink(&victim, traces.join(name)).unwrap();
    }
    let demo = run_ada(&["demo", "-q", "-o", out.path().to_str().unwrap()]);
    assert!(demo.status.success(), "{}", stderr_of(&demo));
    assert!(is_empty_dir(&victim));
    let real: Vec<_> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .collect();
    assert_eq!(real.len(), 1, "one fresh session directory");
    assert!(
        real[0].file_name().to_string_lossy().ends_with("_2"),
        "{:?}",
        real[0].file_name()
    );
}

/// A link planted at the probe's old predictable name `.ada_probe_<pid>` is not written through:
/// the file it points to keeps its contents.
#[test]
fn planted_probe_link_does_not_truncate_its_target() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let out = root.path().join("out");
    std::fs::create_dir_all(out.join("ada_traces")).unwrap();
    let probe = out
        .join("ada_traces")
        .join(format!(".ada_probe_{}", std::process::id()));
    std::os::unix::fs::symlink(&victim, &probe).unwrap();
    ada_cli::trace::check_output_dir(&out).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&probe).unwrap().is_symlink());
}

/// A link planted at the export's old predictable `<out>.partial` name is not written through:
/// the export still lands at `<out>` as a regular file and the link's target is untouched.
#[test]
fn planted_partial_link_does_not_overwrite_its_target() {
    let out = tempfile::tempdir().unwrap();
    let dir = ada_atf::TraceWriter::create(
        out.path(),
        ada_atf::WriterOptions {
            session_label: Some("session_cli".into()),
            ..ada_atf::WriterOptions::default()
        },
    )
    .unwrap()
    .finalize(ada_atf::TraceSummary::default())
    .unwrap()
    .dir;
    let victim = out.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let json = out.path().join("x.json");
    std::os::unix::fs::symlink(&victim, out.path().join("x.json.partial")).unwrap();
    let r = run_ada(&[
        "export",
        "--chrome",
        dir.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let meta = std::fs::symlink_metadata(&json).unwrap();
    assert!(meta.is_file(), "a regular file, not a link");
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(text.contains("traceEvents"), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
