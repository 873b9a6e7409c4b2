//! `cargo xtask`: ADA's development gate. If `cargo xtask ci` passes locally, CI is green
//! (`.ci/run` runs exactly that).
//!
//! `ci` runs tidy, fmt, clippy, tests (nextest or cargo test, plus doctests), the loom and
//! shuttle suites, rustdoc, a benchmark smoke run, a fuzz smoke run and `cargo package`, in
//! that order; each step prints a `==> step` banner and its time, the first failure stops the
//! run with the failing command's exit status, and a timing table ends it. Single steps:
//! `tidy`, `loom`, `shuttle`, `fuzz [SECONDS]`, `bench-smoke`. Outside `ci`: `bench-peers`, the
//! same-run comparison with LTTng-UST and Tracy (see the `peers` module), and `bench-native`,
//! the per-call cost of function tracing next to uftrace (see the `native` module). `XTASK_SKIP=step,step` makes
//! `ci` skip steps, for local iteration only (CI never sets it). Every step runs from the
//! workspace root with `$CARGO` (the cargo that ran xtask).

mod cmd;
mod native;
mod peers;
mod steps;
mod tidy;
mod workspace;

use std::process::ExitCode;

use steps::Step;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci             every step below, in order: tidy, fmt, clippy, test, loom, shuttle,
                 soak, doc, bench-smoke, fuzz (20s), package
  tidy           repository rules: `//!` module docs, no stub macros or left-over
                 markers, a SAFETY: comment above every unsafe block and impl, and
                 atomics only from `ada_shm::sync` in the model-checked crates
  loom           the loom suites (tests/loom*.rs), release, --cfg loom, target/loom
  shuttle        the shuttle suites (tests/shuttle*.rs), release, --cfg shuttle
  soak           ada-cli's soak, crash and export-memory tests (Chrome and Perfetto),
                 release
  fuzz [SECS]    fuzz/run.sh for SECS seconds (default 60)
  bench-smoke    every benchmark once, without measuring
  bench-peers [-- CRITERION_ARGS]
                 not part of ci: the peers/ bench (ADA against the TSC and
                 clock_gettime floors, LTTng-UST and Tracy, in one run), installing
                 and recording LTTng where it can; prints the medians and issue
                 15's ratios
  bench-native [N [ROUNDS]]
                 not part of ci: per-call cost of tracing a -finstrument-functions
                 program: bare, the bare ring hook, ada trace --functions and
                 uftrace record (installed where it can be), in one run
  help           this text

environment:
  XTASK_SKIP=step,step   `ci` skips these steps (local iteration only)
  LOOM_MAX_PREEMPTIONS   loom's preemption bound (default 2)";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Ci,
    One(Step),
    /// `bench-peers` with the arguments for criterion.
    BenchPeers(Vec<String>),
    /// `bench-native` with its arguments.
    BenchNative(Vec<String>),
}

/// Parses the arguments after `xtask`; `None` means print the usage.
fn parse(args: &[&str]) -> Option<Command> {
    let step = match args {
        ["ci"] => return Some(Command::Ci),
        ["bench-peers", rest @ ..] => {
            return Some(Command::BenchPeers(peers::criterion_args(rest)));
        }
        ["bench-native", rest @ ..] => {
            return Some(Command::BenchNative(
                rest.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
        ["tidy"] => Step::Tidy,
        ["loom"] => Step::Loom,
        ["shuttle"] => Step::Shuttle,
        ["soak"] => Step::Soak,
        ["bench-smoke"] => Step::BenchSmoke,
        ["fuzz"] => Step::Fuzz(60),
        ["fuzz", secs] => Step::Fuzz(secs.parse().ok().filter(|&s| s > 0)?),
        _ => return None,
    };
    Some(Command::One(step))
}

/// Start-up overrides a developer may have exported that change what the tests observe (the
/// tests assume the defaults unless they set these themselves): the gate runs without them.
const CLEARED_ENV: [&str; 1] = ["ADA_DROP_POLICY"];

fn main() -> ExitCode {
    for key in CLEARED_ENV {
        // SAFETY: first thing in `main`, before this process starts any thread, so no other
        // thread can be reading the environment.
        unsafe { std::env::remove_var(key) };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(command) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = workspace::Workspace::load().and_then(|ws| match command {
        Command::Ci => steps::ci(&ws),
        Command::One(step) => steps::run_one(&ws, step),
        Command::BenchPeers(args) => peers::run(&ws, &args),
        Command::BenchNative(args) => native::run(&ws, &args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: FAILED: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(&["ci"]), Some(Command::Ci));
        assert_eq!(parse(&["fuzz"]), Some(Command::One(Step::Fuzz(60))));
        assert_eq!(parse(&["fuzz", "5"]), Some(Command::One(Step::Fuzz(5))));
        assert_eq!(
            parse(&["bench-smoke"]),
            Some(Command::One(Step::BenchSmoke))
        );
        assert_eq!(parse(&["bench-peers"]), Some(Command::BenchPeers(vec![])));
        assert_eq!(
            parse(&["bench-peers", "--", "--measurement-time", "3"]),
            Some(Command::BenchPeers(vec![
                "--measurement-time".into(),
                "3".into()
            ]))
        );
        for bad in [
            &[][..],
            &["help"],
            &["ci", "x"],
            &["fuzz", "0"],
            &["fuzz", "x"],
        ] {
            assert_eq!(parse(bad), None);
        }
    }
}
