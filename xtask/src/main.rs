//! `cargo xtask`: ADA's single gate. If `cargo xtask ci` passes locally, CI is green.
//!
//! Subcommands: `ci` (everything below, in order), `tidy`, `loom`, `shuttle`, `fuzz [SECONDS]`,
//! `bench-smoke`, `help`. Each step prints a banner and its time; the first failure stops the
//! run with a non-zero exit naming the step. `XTASK_SKIP=step,step` skips steps for local
//! iteration (CI never sets it).
#![warn(missing_docs)]

mod steps;
mod tidy;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <command>\n\ncommands:\n  ci            fmt, clippy, tests, loom, shuttle, docs, bench smoke, fuzz smoke, package\n  tidy          repository rules (module docs, no stubs, SAFETY comments)\n  loom          the loom model-checking suites\n  shuttle       the shuttle suites\n  fuzz [SECS]   run the fuzz targets for SECS seconds (default 60)\n  bench-smoke   run every benchmark once, without measuring"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = steps::workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => steps::ci(&root),
        Some("tidy") => steps::run_one(&root, "tidy"),
        Some("loom") => steps::run_one(&root, "loom"),
        Some("shuttle") => steps::run_one(&root, "shuttle"),
        Some("bench-smoke") => steps::run_one(&root, "bench-smoke"),
        Some("fuzz") => {
            let secs = match args.get(1).map(|s| s.parse::<u32>()) {
                None => 60,
                Some(Ok(s)) if s > 0 => s,
                Some(_) => {
                    eprintln!("xtask fuzz: SECONDS must be a positive integer");
                    return ExitCode::from(2);
                }
            };
            steps::fuzz(&root, secs)
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("\nxtask: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}
