//! The CI steps, and `ci` itself: every step in order, each with a banner and its time, stopping
//! at the first failure, then a timing table.

use std::time::Instant;

use crate::cmd::{Cmd, Failure, Outcome, append_env_flags};
use crate::tidy;
use crate::workspace::Workspace;

/// One CI step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Repository rules (`cargo xtask tidy`).
    Tidy,
    /// `cargo fmt --check`.
    Fmt,
    /// Clippy on every target, warnings denied.
    Clippy,
    /// Unit, integration and doc tests.
    Test,
    /// The loom model-checking suites (`tests/loom*.rs`).
    Loom,
    /// The shuttle randomized-scheduler suites (`tests/shuttle*.rs`).
    Shuttle,
    /// The end-to-end soak, crash and export-memory tests (Chrome and Perfetto), optimized
    /// (they are skipped in debug builds, or, for the Perfetto one, run at a tenth of the size).
    Soak,
    /// rustdoc, warnings denied.
    Doc,
    /// Every benchmark run once, without measuring.
    BenchSmoke,
    /// `fuzz/run.sh` for the given number of seconds.
    Fuzz(u32),
    /// `cargo package` of every publishable member.
    Package,
}

/// How long the fuzz smoke test of `ci` runs.
const CI_FUZZ_SECONDS: u32 = 20;

/// The `ci` steps, in order (cheap first).
pub const CI: [Step; 11] = [
    Step::Tidy,
    Step::Fmt,
    Step::Clippy,
    Step::Test,
    Step::Loom,
    Step::Shuttle,
    Step::Soak,
    Step::Doc,
    Step::BenchSmoke,
    Step::Fuzz(CI_FUZZ_SECONDS),
    Step::Package,
];

impl Step {
    /// The name used in banners, the timing table and `XTASK_SKIP`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tidy => "tidy",
            Self::Fmt => "fmt",
            Self::Clippy => "clippy",
            Self::Test => "test",
            Self::Loom => "loom",
            Self::Shuttle => "shuttle",
            Self::Soak => "soak",
            Self::Doc => "doc",
            Self::BenchSmoke => "bench-smoke",
            Self::Fuzz(_) => "fuzz",
            Self::Package => "package",
        }
    }

    fn run(self, ws: &Workspace) -> Outcome {
        let root = ws.root.as_path();
        match self {
            Self::Tidy => tidy::check_tree(ws),
            Self::Fmt => {
                require_component(ws, "fmt", "rustfmt")?;
                Cmd::cargo(root)
                    .args(["fmt", "--all", "--", "--check"])
                    .run()
            }
            Self::Clippy => {
                require_component(ws, "clippy", "clippy")?;
                Cmd::cargo(root)
                    .args(["clippy", "--workspace", "--all-targets", "--locked"])
                    .args(["--", "-D", "warnings"])
                    .run()
            }
            Self::Test => {
                // The valgrind tests (ada-cli/tests/valgrind.rs) must run, not skip, in CI.
                let valgrind = ensure_valgrind(root);
                let nextest = Cmd::cargo(root).args(["nextest", "--version"]).probe();
                let mut tests = if nextest {
                    Cmd::cargo(root).args([
                        "nextest",
                        "run",
                        "--workspace",
                        "--locked",
                        "--no-fail-fast",
                    ])
                } else {
                    eprintln!("    (cargo-nextest not installed: using cargo test)");
                    Cmd::cargo(root).args(["test", "--workspace", "--locked", "--no-fail-fast"])
                };
                if valgrind {
                    tests = tests.env("ADA_REQUIRE_VALGRIND", "1");
                }
                tests.run()?;
                // nextest does not run doctests.
                Cmd::cargo(root)
                    .args(["test", "--workspace", "--doc", "--locked"])
                    .run()
            }
            Self::Loom => model_suites(ws, "loom"),
            Self::Shuttle => model_suites(ws, "shuttle"),
            // `--test-threads 1`: each test drives a whole traced process and its drain; run
            // side by side on 2 cores they would measure each other.
            Self::Soak => Cmd::cargo(root)
                .args(["test", "--release", "--locked", "-p", "ada-cli"])
                .args([
                    "--test",
                    "soak",
                    "--test",
                    "crash",
                    "--test",
                    "export_memory",
                    "--test",
                    "perfetto_memory",
                ])
                .args(["--", "--test-threads", "1"])
                .run(),
            Self::Doc => Cmd::cargo(root)
                .args(["doc", "--workspace", "--no-deps", "--locked"])
                .env(
                    "RUSTDOCFLAGS",
                    append_env_flags("RUSTDOCFLAGS", "-D warnings"),
                )
                .run(),
            // Criterion benches run each benchmark once, unmeasured, under `cargo test`.
            Self::BenchSmoke => Cmd::cargo(root)
                .args(["test", "--workspace", "--benches", "--locked"])
                .run(),
            Self::Fuzz(seconds) => {
                if !root.join("fuzz/run.sh").is_file() {
                    eprintln!("    fuzz: no targets");
                    return Ok(());
                }
                Cmd::new("bash", root)
                    .args(["fuzz/run.sh".to_owned(), seconds.to_string()])
                    .run()
            }
            Self::Package => {
                forget_verified_packages();
                // `--allow-dirty` lets local runs package uncommitted work; harmless in CI.
                let mut cmd =
                    Cmd::cargo(root).args(["package", "--workspace", "--locked", "--allow-dirty"]);
                for p in ws.packages.iter().filter(|p| !p.publish) {
                    cmd = cmd.args(["--exclude", p.name.as_str()]);
                }
                cmd.run()
            }
        }
    }
}

/// Fails with an install hint when `cargo SUB` (a rustup component) is missing.
fn require_component(ws: &Workspace, sub: &str, component: &str) -> Outcome {
    if Cmd::cargo(&ws.root).args([sub, "--version"]).probe() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "`cargo {sub}` is not available; install it with `rustup component add {component}`"
    )))
}

/// The loom or shuttle suites: each `tests/<kind>*.rs` of each member, built in release with
/// `--cfg <kind>` in a target directory of their own.
fn model_suites(ws: &Workspace, kind: &str) -> Outcome {
    let suites = ws.suites(kind);
    if suites.is_empty() {
        eprintln!("    {kind}: no suites");
        return Ok(());
    }
    // The cfg changes every crate's flags; a separate target dir keeps the normal build cached.
    let target_base =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws.root.join("target"), Into::into);
    let target_dir = target_base.join(kind).display().to_string();
    for (package, tests) in suites {
        let mut cmd = Cmd::cargo(&ws.root)
            .args(["test", "--release", "--locked", "-p", package])
            .env(
                "RUSTFLAGS",
                append_env_flags("RUSTFLAGS", &format!("--cfg {kind}")),
            )
            .env("CARGO_TARGET_DIR", target_dir.clone());
        for t in &tests {
            cmd = cmd.args(["--test", t.as_str()]);
        }
        if kind == "loom" {
            // Bound the preemptions loom explores per execution: the state space grows
            // exponentially with the bound, and 2 keeps the suite to minutes on 2 cores while
            // still finding most bugs (loom's docs recommend 2-3). A value already set wins.
            let bound = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into());
            cmd = cmd.env("LOOM_MAX_PREEMPTIONS", bound);
        }
        cmd.run()?;
    }
    Ok(())
}

/// Runs one step under a banner and prints its time.
pub fn run_one(ws: &Workspace, step: Step) -> Outcome {
    let name = step.name();
    eprintln!("==> {name}");
    let start = Instant::now();
    let result = step.run(ws);
    let secs = start.elapsed().as_secs_f64();
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    eprintln!("<== {name}: {verdict} ({secs:.1}s)\n");
    result.map_err(|f| Failure {
        message: format!("step `{name}` failed: {}", f.message),
        code: f.code,
    })
}

/// The step names listed in `XTASK_SKIP` (comma-separated); an unknown name is an error.
fn skipped_steps() -> Result<Vec<&'static str>, Failure> {
    let Ok(list) = std::env::var("XTASK_SKIP") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let step = CI.iter().find(|s| s.name() == name).ok_or_else(|| {
            let known: Vec<&str> = CI.iter().map(|s| s.name()).collect();
            Failure::usage(format!(
                "XTASK_SKIP: unknown step `{name}` (steps: {})",
                known.join(", ")
            ))
        })?;
        out.push(step.name());
    }
    Ok(out)
}

/// Every CI step in order, stopping at the first failure; prints a timing table at the end.
pub fn ci(ws: &Workspace) -> Outcome {
    let skip = skipped_steps()?;
    if !skip.is_empty() {
        eprintln!("xtask ci: skipping {} (XTASK_SKIP)\n", skip.join(", "));
    }
    let start = Instant::now();
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut outcome = Ok(());
    for step in CI {
        let name = step.name();
        if outcome.is_err() {
            rows.push((name, "not run".into()));
        } else if skip.contains(&name) {
            rows.push((name, "skipped".into()));
        } else {
            let t = Instant::now();
            outcome = run_one(ws, step);
            let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
            let secs = t.elapsed().as_secs_f64();
            rows.push((name, format!("{verdict:<7} {secs:>8.1}s")));
        }
    }
    eprintln!("{:<12} result        time", "step");
    for (name, result) in &rows {
        eprintln!("{name:<12} {result}");
    }
    let total = start.elapsed().as_secs_f64();
    eprintln!("{:<12} {:<7} {total:>8.1}s", "total", "");
    if outcome.is_ok() && skip.is_empty() {
        eprintln!("\nxtask ci: all steps passed");
    } else if outcome.is_ok() {
        eprintln!(
            "\nxtask ci: all steps run passed; skipped: {}",
            skip.join(", ")
        );
    }
    outcome
}

/// Removes cargo's extracted copies of our own crates from earlier `cargo package` runs.
///
/// `cargo package` verifies each crate against a temporary local registry and extracts the
/// packaged sources under `$CARGO_HOME/registry/src/-<hash of that registry's path>/`. It never
/// re-extracts a `name-version` directory that is already there, so a second run from the same
/// checkout path (same version number, new code) would verify against the previous run's
/// sources. Only directories of local registries (names starting with `-`, never the crates.io
/// cache) and only `ada-*` crates are removed.
fn forget_verified_packages() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            if krate.file_name().to_string_lossy().starts_with("ada-") {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}

/// Whether valgrind runs here, installing it from Debian's packages first when it is missing
/// and this is root (the CI machines run as root). A machine where it cannot be had says so,
/// and the valgrind tests then skip loudly instead of failing.
fn ensure_valgrind(root: &std::path::Path) -> bool {
    let present = || Cmd::new("valgrind", root).args(["--version"]).probe();
    if present() {
        return true;
    }
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if is_root {
        eprintln!("    valgrind is missing: apt-get install -y valgrind");
        let _ = Cmd::new("apt-get", root).args(["update", "-q"]).run();
        let _ = Cmd::new("apt-get", root)
            .args(["install", "-y", "-q", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run();
        if present() {
            return true;
        }
    }
    eprintln!(
        "    WARNING: valgrind is not available here; the valgrind tests will skip (not checked)"
    );
    false
}
