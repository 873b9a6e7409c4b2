//! `cargo xtask bench-native [N [ROUNDS]]`: the per-call cost of tracing a native program
//! (issue 16), ADA next to the bare ring hook and uftrace, in one run. Kept out of `ci`: slow,
//! noisy, and it installs a system package.
//!
//! 1. Builds `ada` and the C agent (`cargo build --release -p ada-cli -p ada-agent-c`) and,
//!    with the system C compiler, `peers/native/callbench.c` (`-O2 -finstrument-functions
//!    -pthread`) and the floor hook `peers/native/ring_floor.c` (a shared library), under
//!    `<target>/native-bench` (`<target>`: `$CARGO_TARGET_DIR` or `target`).
//! 2. Makes sure `uftrace` is installed (as root: `apt-get install -y uftrace`); where it cannot
//!    be, uftrace's column says why and the rest still runs.
//! 3. For 1 and 4 threads, ROUNDS times (default 5) in turn: `callbench N THREADS` bare
//!    (glibc's no-op `__cyg_profile_func_enter/exit`), with the floor hook preloaded, under
//!    `ada trace --functions` (default rings: the program outruns one drain core, and most
//!    events are refused, counted), with `--drop-policy index=oldest` (every event stored, a
//!    dry pool overwritten as the floor overwrites its ring), with an index pool that holds
//!    each thread's whole run (keep-all: nothing refused; its figure includes the first touch
//!    of 64 MiB of shared memory per thread) and under `uftrace record`. `callbench` reports
//!    each thread's CPU time around its work (N, default 27: fib(27) and 110 short and long
//!    calls, 635 732 calls per thread), so the figure is what the hooks cost the traced
//!    thread, not the tracer's start-up or its other processes.
//! 4. Prints the median per-call overhead over bare of each, the ratios the issue sets as goals
//!    (ADA ≤ 1.5× the floor's overhead; uftrace ≥ 4× ADA's) for each way ADA ran, and each ADA
//!    run's accounting of every call (written = persisted + lost by cause + spilled, from
//!    `ada trace`'s summary) with the share lost.
//!
//! Goals not met are reported, not failures: the command fails only when something cannot be
//! built or run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{Cmd, Failure, Outcome};
use crate::workspace::Workspace;

/// `callbench`'s fib argument when none is given.
const DEFAULT_N: u32 = 27;
/// Rounds when none is given.
const DEFAULT_ROUNDS: u32 = 5;
/// The thread counts measured.
const THREADS: [u32; 2] = [1, 4];

/// One way of running `callbench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    Floor,
    /// `ada trace --functions` as a user runs it (default rings): the program outruns one
    /// drain core, so most events are refused (counted).
    Ada,
    /// `ada trace --functions --drop-policy index=oldest`: every event is stored (stamped),
    /// and a thread whose pool is dry overwrites its own active ring, as the floor hook does.
    AdaOldest,
    /// `ada trace --functions` with an index pool that holds each thread's whole run
    /// ([`KEEP_ALL_RING_ARGS`]): every event is stored and persisted, none refused.
    AdaKeepAll,
    Uftrace,
}

/// The index pool of [`Mode::AdaKeepAll`]: 8 rings of 8 MiB (64 MiB per thread; a thread of
/// `callbench 27` writes 1 271 466 records, 40.7 MB). Its figure includes the first touch of
/// that much fresh shared memory (~10 k page faults per thread).
const KEEP_ALL_RING_ARGS: [&str; 4] = ["--index-rings", "8", "--index-ring-kib", "8192"];

impl Mode {
    const ALL: [Mode; 6] = [
        Mode::Bare,
        Mode::Floor,
        Mode::Ada,
        Mode::AdaOldest,
        Mode::AdaKeepAll,
        Mode::Uftrace,
    ];

    /// The ways ADA runs, the first as a user runs it.
    const ADA: [Mode; 3] = [Mode::Ada, Mode::AdaOldest, Mode::AdaKeepAll];

    fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::Floor => "ring floor",
            Mode::Ada => "ADA",
            Mode::AdaOldest => "ADA oldest",
            Mode::AdaKeepAll => "ADA keep-all",
            Mode::Uftrace => "uftrace",
        }
    }

    /// Its place in [`Mode::ALL`] (and in the per-mode sample lists).
    fn index(self) -> usize {
        self as usize
    }
}

/// What one run of `callbench` printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Instrumented calls per thread inside the timed region.
    pub calls: u64,
    /// The threads' mean CPU time around their work, ns.
    pub cpu_ns: f64,
}

/// Parses `callbench threads=T calls_per_thread=C cpu_ns_per_thread=X ...` out of `stdout`.
pub fn parse_sample(stdout: &str) -> Result<Sample, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("callbench "))
        .ok_or("no `callbench` line in its output")?;
    let field = |key: &str| -> Result<&str, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("no {key}= in {line:?}"))
    };
    let calls: u64 = field("calls_per_thread")?
        .parse()
        .map_err(|e| format!("calls_per_thread: {e}"))?;
    let cpu_ns: f64 = field("cpu_ns_per_thread")?
        .parse()
        .map_err(|e| format!("cpu_ns_per_thread: {e}"))?;
    if calls == 0 || !cpu_ns.is_finite() || cpu_ns < 0.0 {
        return Err(format!("implausible figures in {line:?}"));
    }
    Ok(Sample { calls, cpu_ns })
}

/// ADA's accounting of one run, from `ada trace`'s summary line `index lost: ... (events W =
/// persisted P + discarded D + lost L + no_slot S + spilled F)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    /// Index events written.
    pub written: u64,
    /// Persisted + discarded + lost + no_slot + spilled.
    pub accounted: u64,
    /// Of them, lost (by any cause) or without a slot.
    pub lost: u64,
}

/// Reads the index lane's accounting from `ada trace`'s summary (`None`: no such line). With
/// no loss the summary has no `lost:` line; the totals line (`index written W persisted P
/// dropped D`) is used then.
pub fn parse_accounting(summary: &str) -> Option<Accounting> {
    let number_after = |text: &str, key: &str| -> Option<u64> {
        let rest = &text[text.find(key)? + key.len()..];
        rest.split_whitespace()
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    if let Some(line) = summary
        .lines()
        .find(|l| l.trim_start().starts_with("index   lost:"))
    {
        let written = number_after(line, "(events ")?;
        let parts = ["persisted ", "discarded ", "lost ", "no_slot "];
        let mut accounted = 0u64;
        for key in parts {
            accounted = accounted.checked_add(number_after(line, key)?)?;
        }
        // Named only when something spilled (drop-oldest never spills).
        if line.contains("spilled ") {
            accounted = accounted.checked_add(number_after(line, "spilled ")?)?;
        }
        let lost = number_after(line, "lost ")? + number_after(line, "no_slot ")?;
        return Some(Accounting {
            written,
            accounted,
            lost,
        });
    }
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("index   written"))?;
    let written = number_after(line, "written ")?;
    let persisted = number_after(line, "persisted ")?;
    let dropped = number_after(line, "dropped ")?;
    Some(Accounting {
        written,
        accounted: persisted.checked_add(dropped)?,
        lost: dropped,
    })
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `cargo xtask bench-native`: see the module docs. `args`: `[N [ROUNDS]]`.
pub fn run(ws: &Workspace, args: &[String]) -> Outcome {
    let root = ws.root.as_path();
    let (n, rounds) = parse_args(args)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let work = target.join("native-bench");
    std::fs::create_dir_all(&work)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", work.display())))?;

    eprintln!("==> bench-native: build");
    Cmd::cargo(root)
        .args([
            "build",
            "--locked",
            "--release",
            "-p",
            "ada-cli",
            "-p",
            "ada-agent-c",
        ])
        .run()?;
    let ada = target.join("release/ada");
    let agent_lib = target.join("release/libada_agent_c.so");
    let callbench = work.join("callbench");
    let floor = work.join("libring_floor.so");
    let src = root.join("peers/native");
    Cmd::new("cc", root)
        .args(["-O2", "-finstrument-functions", "-pthread", "-o"])
        .args([path_str(&callbench)?, path_str(&src.join("callbench.c"))?])
        .run()?;
    Cmd::new("cc", root)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .args([path_str(&floor)?, path_str(&src.join("ring_floor.c"))?])
        .run()?;
    let uftrace = ensure_uftrace(root);
    if let Err(why) = &uftrace {
        eprintln!("    uftrace SKIPPED: {why}");
    }

    eprintln!("==> bench-native: run (N = {n}, {rounds} rounds)");
    let mut report = String::new();
    for threads in THREADS {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
        let mut calls = 0;
        let mut accounting: Vec<(Mode, Accounting)> = Vec::new();
        for _ in 0..rounds {
            for (i, mode) in Mode::ALL.into_iter().enumerate() {
                if mode == Mode::Uftrace && uftrace.is_err() {
                    continue;
                }
                let out = work.join(format!("out-{}", mode.name().replace(' ', "-")));
                let _ = std::fs::remove_dir_all(&out);
                let run = RunSpec {
                    callbench: &callbench,
                    floor: &floor,
                    ada: &ada,
                    agent_lib: &agent_lib,
                    out: &out,
                    n,
                    threads,
                };
                let (stdout, stderr) = run.run(mode)?;
                let sample = parse_sample(&stdout).map_err(|e| {
                    Failure::new(format!(
                        "{} run ({threads} threads): {e}\n{stderr}",
                        mode.name()
                    ))
                })?;
                calls = sample.calls;
                samples[i].push(sample.cpu_ns);
                if Mode::ADA.contains(&mode) {
                    match parse_accounting(&stderr) {
                        Some(a) => accounting.push((mode, a)),
                        None => {
                            return Err(Failure::new(format!(
                                "no accounting in `ada trace`'s summary:\n{stderr}"
                            )));
                        }
                    }
                }
                let _ = std::fs::remove_dir_all(&out);
            }
        }
        report.push_str(&table(threads, calls, &samples, &uftrace, &accounting));
    }
    println!("\n{report}");
    Ok(())
}

/// `[N [ROUNDS]]`.
fn parse_args(args: &[String]) -> Result<(u32, u32), Failure> {
    let usage = || Failure::usage("usage: cargo xtask bench-native [N (1..=35) [ROUNDS (1..=50)]]");
    let n = match args.first() {
        None => DEFAULT_N,
        Some(a) => a
            .parse()
            .ok()
            .filter(|n| (1..=35).contains(n))
            .ok_or_else(usage)?,
    };
    let rounds = match args.get(1) {
        None => DEFAULT_ROUNDS,
        Some(a) => a
            .parse()
            .ok()
            .filter(|r| (1..=50).contains(r))
            .ok_or_else(usage)?,
    };
    if args.len() > 2 {
        return Err(usage());
    }
    Ok((n, rounds))
}

fn path_str(p: &Path) -> Result<&str, Failure> {
    p.to_str()
        .ok_or_else(|| Failure::new(format!("path is not UTF-8: {}", p.display())))
}

/// One `callbench` invocation's inputs.
struct RunSpec<'a> {
    callbench: &'a Path,
    floor: &'a Path,
    ada: &'a Path,
    agent_lib: &'a Path,
    out: &'a Path,
    n: u32,
    threads: u32,
}

impl RunSpec<'_> {
    /// Runs `callbench` in `mode`; its stdout and the whole stderr (the tracer's summary).
    fn run(&self, mode: Mode) -> Result<(String, String), Failure> {
        let bench_args = [self.n.to_string(), self.threads.to_string()];
        let mut cmd = match mode {
            Mode::Bare => Command::new(self.callbench),
            Mode::Floor => Command::new(self.callbench),
            Mode::Ada | Mode::AdaOldest | Mode::AdaKeepAll => {
                let mut c = Command::new(self.ada);
                c.arg("trace")
                    .arg("--functions")
                    .arg("--agent-lib")
                    .arg(self.agent_lib)
                    .arg("-o")
                    .arg(self.out);
                match mode {
                    Mode::AdaKeepAll => {
                        c.args(KEEP_ALL_RING_ARGS);
                    }
                    Mode::AdaOldest => {
                        c.args(["--drop-policy", "index=oldest"]);
                    }
                    _ => {}
                }
                c.arg("--").arg(self.callbench);
                c
            }
            Mode::Uftrace => {
                let mut c = Command::new("uftrace");
                c.arg("record").arg("-d").arg(self.out).arg(self.callbench);
                c
            }
        };
        cmd.args(bench_args);
        cmd.env_remove("LD_PRELOAD").env_remove("ADA_SHM");
        if mode == Mode::Floor {
            cmd.env("LD_PRELOAD", self.floor);
        }
        let output = cmd
            .output()
            .map_err(|e| Failure::new(format!("could not run {} mode: {e}", mode.name())))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(Failure::new(format!(
                "{} run failed ({}):\n{stdout}{stderr}",
                mode.name(),
                output.status
            )));
        }
        Ok((stdout, stderr))
    }
}

/// Makes sure `uftrace` runs, installing it from the distribution's packages as root; `Err`
/// says why it cannot be measured.
fn ensure_uftrace(root: &Path) -> Result<(), String> {
    crate::cmd::ensure_packages(root, "uftrace", &["uftrace"], || {
        Cmd::new("uftrace", root).args(["--version"]).probe()
    })
}

/// The report for one thread count: per mode the median CPU time per thread and overhead per
/// call over bare, then the goals and ADA's accounting.
fn table(
    threads: u32,
    calls: u64,
    samples: &[Vec<f64>],
    uftrace: &Result<(), String>,
    accounting: &[(Mode, Accounting)],
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{threads} thread(s), {calls} calls per thread (CPU time per thread, medians):"
    );
    let medians: Vec<Option<f64>> = samples.iter().map(|v| median(v)).collect();
    let bare = medians[Mode::Bare.index()];
    let overhead = |m: Mode| -> Option<f64> { Some((medians[m.index()]? - bare?) / calls as f64) };
    for (i, mode) in Mode::ALL.into_iter().enumerate() {
        let cell = match (medians[i], mode) {
            (None, Mode::Uftrace) => match uftrace {
                Err(why) => format!("— (skipped: {why})"),
                Ok(()) => "— (no runs)".to_owned(),
            },
            (None, _) => "— (no runs)".to_owned(),
            (Some(ns), Mode::Bare) => format!("{:>10.3} ms", ns / 1e6),
            (Some(ns), _) => format!(
                "{:>10.3} ms  {:>8.2} ns per call over bare",
                ns / 1e6,
                overhead(mode).unwrap_or(f64::NAN)
            ),
        };
        let _ = writeln!(s, "  {:<13} {cell}", mode.name());
    }
    let ratio = |num: Option<f64>, den: Option<f64>| match (num, den) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let verdict = |r: Option<f64>, met: fn(f64) -> bool, target: &str| match r {
        Some(r) => format!(
            "{r:.2}× ({target}: {})",
            if met(r) { "met" } else { "NOT met" }
        ),
        None => "— (not measured)".to_owned(),
    };
    // The goals, for each way ADA ran (the default is how a user runs it; `oldest` and
    // keep-all store every event, as the floor does).
    for mode in Mode::ADA {
        let _ = writeln!(
            s,
            "  {:<13} / ring floor {}; uftrace / {} {}",
            mode.name(),
            verdict(
                ratio(overhead(mode), overhead(Mode::Floor)),
                |r| r <= 1.5,
                "≤ 1.5×"
            ),
            mode.name(),
            verdict(
                ratio(overhead(Mode::Uftrace), overhead(mode)),
                |r| r >= 4.0,
                "≥ 4×"
            )
        );
    }
    let expected = 2 * calls * u64::from(threads);
    for (round, (mode, a)) in accounting.iter().enumerate() {
        let balanced = a.written == a.accounted;
        let _ = writeln!(
            s,
            "  {} round {}: {} index events written (≥ {expected} from the timed calls), {} lost ({:.1} %, counted); {}",
            mode.name(),
            round / Mode::ADA.len() + 1,
            a.written,
            a.lost,
            100.0 * a.lost as f64 / a.written.max(1) as f64,
            if balanced {
                "written = persisted + discarded + lost + no_slot + spilled"
            } else {
                "ACCOUNTING DOES NOT BALANCE"
            }
        );
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbench_line_is_parsed() {
        let out = "noise\ncallbench threads=4 calls_per_thread=635732 cpu_ns_per_thread=2272249 check=1\n";
        assert_eq!(
            parse_sample(out),
            Ok(Sample {
                calls: 635_732,
                cpu_ns: 2_272_249.0
            })
        );
        assert!(parse_sample("callbench threads=1\n").is_err());
        assert!(parse_sample("callbench calls_per_thread=0 cpu_ns_per_thread=5\n").is_err());
        assert!(parse_sample("nothing").is_err());
    }

    #[test]
    fn accounting_is_read_from_the_loss_line_or_the_totals() {
        let lossy = "  index   written       229698  persisted         8178  dropped     217424\n  \
                     index   lost: refused 217424 (events 229698 = persisted 8178 + discarded 0 + lost 217424 + no_slot 0 + spilled 4096); 2 loss marker(s) in the trace\n";
        assert_eq!(
            parse_accounting(lossy),
            Some(Accounting {
                written: 229_698,
                accounted: 229_698,
                lost: 217_424
            })
        );
        let unspilled = "  index   lost: overwritten 1016125 (events 1271466 = persisted 255341 + discarded 0 + lost 1016125 + no_slot 0); 182 loss marker(s) in the trace\n";
        assert_eq!(
            parse_accounting(unspilled),
            Some(Accounting {
                written: 1_271_466,
                accounted: 1_271_466,
                lost: 1_016_125
            })
        );
        let clean = "  index   written       100  persisted         100  dropped     0\n";
        assert_eq!(
            parse_accounting(clean),
            Some(Accounting {
                written: 100,
                accounted: 100,
                lost: 0
            })
        );
        assert_eq!(parse_accounting("nothing here"), None);
    }

    #[test]
    fn each_mode_is_at_its_index() {
        for (i, mode) in Mode::ALL.into_iter().enumerate() {
            assert_eq!(mode.index(), i, "{mode:?}");
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(parse_args(&[]).ok(), Some((DEFAULT_N, DEFAULT_ROUNDS)));
        assert_eq!(parse_args(&["20".into(), "3".into()]).ok(), Some((20, 3)));
        assert!(parse_args(&["0".into()]).is_err());
        assert!(parse_args(&["20".into(), "x".into()]).is_err());
        assert!(parse_args(&["1".into(), "1".into(), "1".into()]).is_err());
    }
}
