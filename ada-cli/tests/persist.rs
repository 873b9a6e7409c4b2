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
