//! Tracing under valgrind: a program that runs under valgrind must keep running when it is
//! traced, and `ada trace` itself must run under valgrind (issue 11: rustix's own vDSO parser,
//! which read the clock, died with SIGSEGV there; ADA now reads clocks through libc and builds
//! rustix with its libc backend).
//!
//! Each test needs `valgrind` on `PATH`. Where it is missing the test says so loudly on stderr
//! and returns without checking anything; with `ADA_REQUIRE_VALGRIND=1` in the environment a
//! missing valgrind fails the test instead. `cargo xtask ci` installs valgrind when it is missing
//! (as root, from Debian's packages) and then sets `ADA_REQUIRE_VALGRIND=1`, so in CI these
//! tests always run. The workloads are small:
//! valgrind runs a program 20–50× slower.

mod common;

use common::{ada, read_seq_trace, trace_dir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// Worker threads of the traced workload.
const THREADS: usize = 2;
/// Index events per worker thread: far less than one 32 KiB index ring, so none is dropped.
const EVENTS: u64 = 300;
/// Valgrind's exit code when memcheck found errors (`--error-exitcode`).
const VALGRIND_ERROR_EXIT: i32 = 99;

/// Whether valgrind can be run here; when it cannot, says so loudly on stderr (or panics under
/// `ADA_REQUIRE_VALGRIND=1`).
fn valgrind_available(test: &str) -> bool {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        other => {
            let why = match other {
                Ok(out) => format!("`valgrind --version` exited with {}", out.status),
                Err(e) => format!("cannot run `valgrind`: {e}"),
            };
            if std::env::var_os("ADA_REQUIRE_VALGRIND").is_some_and(|v| v == "1") {
                panic!("{test}: valgrind is required (ADA_REQUIRE_VALGRIND=1) but {why}");
            }
            // Straight to fd 2, past libtest's capture of `eprintln!` (nextest shows it too:
            // `.config/nextest.toml` sets this binary's success output to immediate).
            let notice = format!(
                "\n{bar}\n!! SKIPPED {test}: valgrind is not installed ({why}).\n\
                 !! NOTHING WAS CHECKED. Install valgrind (CI has it) to run this test.\n{bar}\n",
                bar = "!".repeat(72)
            );
            let _ = std::io::stderr().write_all(notice.as_bytes());
            false
        }
    }
}

/// `valgrind --tool=TOOL` with the options every run here uses: quiet, a distinct exit code for
/// memcheck errors, and any output file of the tool inside `out`.
fn valgrind(tool: &str, out: &Path) -> Command {
    let mut vg = Command::new("valgrind");
    vg.arg(format!("--tool={tool}"))
        .arg("-q")
        .arg(format!("--error-exitcode={VALGRIND_ERROR_EXIT}"));
    if tool == "callgrind" {
        vg.arg(format!(
            "--callgrind-out-file={}",
            out.join("callgrind.out").display()
        ));
    }
    vg
}

/// The traced workload's command line: `ada workload --seq` on [`THREADS`] threads writing
/// [`EVENTS`] index events each (each stamped with the session clock).
fn workload_args() -> Vec<String> {
    [
        "workload",
        "--seq",
        "--threads",
        &THREADS.to_string(),
        "--events",
        &EVENTS.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Asserts `run` exited 0 and the one trace under `out` holds every event of the workload,
/// each once, in a complete trace whose manifest agrees with its stream.
fn assert_complete_trace(run: &Output, out: &Path, what: &str) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{what}: {} (139 = SIGSEGV, {VALGRIND_ERROR_EXIT} = memcheck errors)\n{stderr}",
        run.status
    );
    let t = read_seq_trace(&trace_dir(out), THREADS);
    assert_eq!(t.ledger.duplicates(), 0, "{what}");
    for p in 0..THREADS {
        assert_eq!(
            t.ledger.distinct(p),
            EVENTS,
            "{what}: thread {p}: every event persisted\n{stderr}"
        );
    }
    assert_eq!(t.calls, EVENTS * THREADS as u64, "{what}");
    assert_eq!(t.manifest.complete, Some(true), "{what}");
    assert_eq!(t.manifest.event_count, t.events + t.definitions, "{what}");
    assert_eq!(t.manifest.threads.len(), THREADS, "{what}");
    for th in &t.manifest.threads {
        let index = &th.lanes[0];
        assert_eq!(
            (index.written, index.persisted, index.dropped),
            (EVENTS, EVENTS, 0),
            "{what}: {th:?}"
        );
    }
}

/// `ada trace -q -o OUT -- valgrind --tool=TOOL … ada workload --seq …`.
fn trace_under_valgrind(tool: &str, out: &Path) -> Output {
    let mut traced = valgrind(tool, out);
    traced.arg(env!("CARGO_BIN_EXE_ada")).args(workload_args());
    ada()
        // A guard against a hang: the test fails (killed program) instead of waiting forever.
        .args(["trace", "-q", "--duration", "300s", "-o"])
        .arg(out)
        .arg("--")
        .arg(traced.get_program())
        .args(traced.get_args())
        .output()
        .expect("run ada trace")
}

#[test]
fn a_traced_program_runs_under_memcheck_without_errors() {
    if !valgrind_available("a_traced_program_runs_under_memcheck_without_errors") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = trace_under_valgrind("memcheck", out.path());
    assert_complete_trace(&run, out.path(), "traced program under memcheck");
}

#[test]
fn a_traced_program_runs_under_callgrind() {
    if !valgrind_available("a_traced_program_runs_under_callgrind") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = trace_under_valgrind("callgrind", out.path());
    assert_complete_trace(&run, out.path(), "traced program under callgrind");
    let profile = out.path().join("callgrind.out");
    let profile_len = std::fs::metadata(&profile).map_or(0, |m| m.len());
    assert!(profile_len > 0, "callgrind wrote {}", profile.display());
}

#[test]
fn ada_trace_itself_runs_under_memcheck_without_errors() {
    if !valgrind_available("ada_trace_itself_runs_under_memcheck_without_errors") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let ada_cmd = ada();
    let mut run = valgrind("memcheck", out.path());
    run.arg(ada_cmd.get_program())
        .args(["trace", "-q", "--duration", "300s", "-o"])
        .arg(out.path())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(workload_args());
    for (key, value) in ada_cmd.get_envs() {
        match value {
            Some(value) => run.env(key, value),
            None => run.env_remove(key),
        };
    }
    let run = run.output().expect("run valgrind ada trace");
    assert_complete_trace(&run, out.path(), "ada trace under memcheck");
}
