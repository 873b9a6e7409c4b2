//! `--clock`: the clock traced threads stamp with, named in the manifest and by `ada inspect`,
//! while the trace itself stays in `CLOCK_MONOTONIC` nanoseconds.

mod common;

use common::{run_ada, trace_dir};
use std::io::Write;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `ada demo` with `args`; returns the manifest, the `ada inspect` summary, and the
/// `CLOCK_MONOTONIC` bracket around the run.
fn demo(args: &[&str]) -> (ada_atf::Manifest, String, (u64, u64)) {
    let out = tempfile::tempdir().unwrap();
    let mut all = vec!["demo", "-q", "-o", out.path().to_str().unwrap()];
    all.extend_from_slice(args);
    let before = ada_shm::clock::MonotonicClock::read();
    let run = run_ada(&all);
    let after = ada_shm::clock::MonotonicClock::read();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let dir = trace_dir(out.path());
    let manifest = ada_atf::Manifest::read(&dir.join("trace.json")).unwrap();
    let inspect = run_ada(&["inspect", dir.to_str().unwrap(), "-n", "0"]);
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let text = String::from_utf8_lossy(&inspect.stdout).into_owned();
    (manifest, text, (before, after))
}

/// Every event time of the trace lies in the run's `CLOCK_MONOTONIC` bracket: the stamps were
/// converted (raw counter ticks would not be).
fn assert_monotonic_times(m: &ada_atf::Manifest, (before, after): (u64, u64)) {
    let (min, max) = (
        m.min_event_timestamp_ns.unwrap(),
        m.max_event_timestamp_ns.unwrap(),
    );
    assert!(
        before <= min && max <= after,
        "[{min}, {max}] in [{before}, {after}]"
    );
}

#[test]
fn clock_monotonic_stamps_clock_monotonic() {
    let (m, text, bracket) = demo(&["--clock", "monotonic"]);
    let clock = m.clock.as_ref().unwrap();
    assert_eq!(clock.name, "CLOCK_MONOTONIC");
    assert_eq!(clock.source.as_deref(), Some("CLOCK_MONOTONIC"));
    assert_eq!(clock.calibration, None);
    assert_monotonic_times(&m, bracket);
    assert!(text.contains("stamped with CLOCK_MONOTONIC"), "{text}");
}

#[test]
fn clock_auto_stamps_the_invariant_counter_and_converts_it() {
    if !ada_shm::tsc::invariance().is_invariant() {
        eprintln!("skipped: this machine's counter is not invariant");
        return;
    }
    // From the config file: the same key as the flag.
    let mut config = tempfile::NamedTempFile::new().unwrap();
    writeln!(config, "clock = \"tsc\"").unwrap();
    let (m, text, bracket) = demo(&["--config", config.path().to_str().unwrap()]);
    let clock = m.clock.as_ref().unwrap();
    assert_eq!(clock.name, "CLOCK_MONOTONIC", "the trace's clock");
    assert_eq!(clock.source.as_deref(), Some("TSC"));
    let cal = clock.calibration.as_ref().unwrap();
    assert!(cal.points >= 3, "opening pair and the final point: {cal:?}");
    assert!(cal.ticks_per_second.unwrap() > 100_000_000, "{cal:?}");
    assert!(!cal.first.is_empty() && cal.first.len() <= 8 && cal.last.len() <= 8);
    assert_monotonic_times(&m, bracket);
    assert!(text.contains("stamped with TSC, converted"), "{text}");
    // The default is auto: the counter here.
    let (m, _, bracket) = demo(&[]);
    assert_eq!(m.clock.as_ref().unwrap().source.as_deref(), Some("TSC"));
    assert_monotonic_times(&m, bracket);
}

#[test]
fn an_unknown_clock_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let run = run_ada(&[
        "trace",
        "--clock",
        "rdtsc",
        "-o",
        out.path().to_str().unwrap(),
        "--",
        "true",
    ]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("auto, tsc or monotonic"), "{err}");
    let mut config = tempfile::NamedTempFile::new().unwrap();
    writeln!(config, "clock = \"hpet\"").unwrap();
    let run = run_ada(&[
        "trace",
        "--config",
        config.path().to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--",
        "true",
    ]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("clock") && err.contains("auto, tsc or monotonic"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing ran"
    );
}
