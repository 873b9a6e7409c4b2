//! The CI steps and the process helpers that run them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs `cargo ARGS` in `root` with extra environment; Err names the command on failure.
fn run(root: &Path, args: &[&str], env: &[(&str, String)]) -> Result<(), String> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    eprintln!(
        "    $ {}cargo {}",
        env.iter()
            .map(|(k, v)| format!("{k}={v} "))
            .collect::<String>(),
        args.join(" ")
    );
    let status = cmd
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` exited with {status}", args.join(" ")))
    }
}

fn with_flags(var: &str, flag: &str) -> String {
    match std::env::var(var) {
        Ok(existing) if !existing.trim().is_empty() => format!("{existing} {flag}"),
        _ => flag.to_owned(),
    }
}

/// Workspace member directories (those with a Cargo.toml directly under the root).
fn members(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.join("Cargo.toml").is_file() && p.file_name().is_some_and(|n| n != "fuzz"));
    out.sort();
    out
}

fn package_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && line.starts_with("name") {
            return line.split('"').nth(1).map(str::to_owned);
        }
    }
    None
}

fn unpublishable(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|t| t.lines().any(|l| l.replace(' ', "") == "publish=false"))
        .unwrap_or(false)
}

/// `(package, test file stem)` for every `tests/<prefix>*.rs` in the workspace.
fn suites(root: &Path, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in members(root) {
        let Some(pkg) = package_name(&dir) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(dir.join("tests")) else {
            continue;
        };
        let mut stems: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".rs"))
            .map(|n| n.trim_end_matches(".rs").to_owned())
            .collect();
        stems.sort();
        out.extend(stems.into_iter().map(|s| (pkg.clone(), s)));
    }
    out
}

fn model_suites(root: &Path, kind: &str) -> Result<(), String> {
    let found = suites(root, kind);
    if found.is_empty() {
        eprintln!("    {kind}: no suites");
        return Ok(());
    }
    let mut args: Vec<String> = vec!["test".into(), "--release".into(), "--locked".into()];
    let mut pkgs: Vec<&String> = found.iter().map(|(p, _)| p).collect();
    pkgs.dedup();
    for p in pkgs {
        args.extend(["-p".into(), p.clone()]);
    }
    for (_, t) in &found {
        args.extend(["--test".into(), t.clone()]);
    }
    let target = root.join("target").join(kind).display().to_string();
    let mut env = vec![
        (
            "RUSTFLAGS",
            with_flags("RUSTFLAGS", &format!("--cfg {kind}")),
        ),
        // A separate target dir: the cfg change would otherwise rebuild the normal build.
        ("CARGO_TARGET_DIR", target),
    ];
    if kind == "loom" {
        // Bound the explored interleavings so the suite finishes in minutes on 2 cores; loom's
        // documentation recommends 2-3 preemptions for CI.
        env.push((
            "LOOM_MAX_PREEMPTIONS",
            std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()),
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(root, &args, &env)
}

/// Runs the fuzz targets for `secs` seconds.
pub fn fuzz(root: &Path, secs: u32) -> Result<(), String> {
    let script = root.join("fuzz").join("run.sh");
    if !script.is_file() {
        eprintln!("    fuzz: no targets");
        return Ok(());
    }
    let status = Command::new("bash")
        .current_dir(root)
        .arg(&script)
        .arg(secs.to_string())
        .status()
        .map_err(|e| format!("could not start fuzz/run.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("fuzz/run.sh exited with {status}"))
    }
}

fn step(root: &Path, name: &str) -> Result<(), String> {
    match name {
        "tidy" => crate::tidy::check_tree(root),
        "fmt" => run(root, &["fmt", "--all", "--", "--check"], &[]),
        "clippy" => run(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
        "test" => {
            let nextest = Command::new(cargo())
                .args(["nextest", "--version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if nextest {
                run(
                    root,
                    &[
                        "nextest",
                        "run",
                        "--workspace",
                        "--locked",
                        "--no-fail-fast",
                    ],
                    &[],
                )?;
            } else {
                run(
                    root,
                    &["test", "--workspace", "--locked", "--no-fail-fast"],
                    &[],
                )?;
            }
            run(root, &["test", "--workspace", "--doc", "--locked"], &[])
        }
        "loom" => model_suites(root, "loom"),
        "shuttle" => model_suites(root, "shuttle"),
        "doc" => run(
            root,
            &["doc", "--workspace", "--no-deps", "--locked"],
            &[("RUSTDOCFLAGS", with_flags("RUSTDOCFLAGS", "-D warnings"))],
        ),
        "bench-smoke" => run(root, &["test", "--workspace", "--benches", "--locked"], &[]),
        "fuzz" => fuzz(root, 20),
        "package" => {
            let mut args = vec![
                "package".to_owned(),
                "--workspace".into(),
                "--locked".into(),
                "--allow-dirty".into(),
            ];
            for dir in members(root) {
                if unpublishable(&dir)
                    && let Some(name) = package_name(&dir)
                {
                    args.extend(["--exclude".into(), name]);
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(root, &args, &[])
        }
        other => Err(format!("unknown step {other}")),
    }
}

const CI_STEPS: [&str; 10] = [
    "tidy",
    "fmt",
    "clippy",
    "test",
    "loom",
    "shuttle",
    "doc",
    "bench-smoke",
    "fuzz",
    "package",
];

/// Runs one named step with a banner.
pub fn run_one(root: &Path, name: &str) -> Result<(), String> {
    eprintln!("==> {name}");
    let start = Instant::now();
    let r = step(root, name).map_err(|e| format!("step `{name}`: {e}"));
    eprintln!("<== {name} ({:.1}s)", start.elapsed().as_secs_f64());
    r
}

/// Every step, in order; prints a timing table.
pub fn ci(root: &Path) -> Result<(), String> {
    let skip: Vec<String> = std::env::var("XTASK_SKIP")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let started = Instant::now();
    let mut table = Vec::new();
    let mut outcome = Ok(());
    for name in CI_STEPS {
        if skip.iter().any(|s| s == name) {
            eprintln!("==> {name}: skipped (XTASK_SKIP)");
            table.push((name, None));
            continue;
        }
        let t = Instant::now();
        let r = run_one(root, name);
        table.push((name, Some(t.elapsed().as_secs_f64())));
        if r.is_err() {
            outcome = r;
            break;
        }
    }
    eprintln!("\nstep          seconds");
    for (name, secs) in &table {
        match secs {
            Some(s) => eprintln!("{name:<13} {s:>7.1}"),
            None => eprintln!("{name:<13} skipped"),
        }
    }
    eprintln!("{:<13} {:>7.1}", "total", started.elapsed().as_secs_f64());
    outcome?;
    println!("xtask ci: all steps passed");
    Ok(())
}
