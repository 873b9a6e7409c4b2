//! `cargo xtask bench-peers [-- CRITERION_ARGS]`: the same-run comparison of ADA with its
//! peers (issue 15), kept out of `ci` because it is slow, noisy and needs system packages.
//!
//! 1. LTTng-UST: makes sure `lttng` and lttng-ust ≥ 2.13 are installed (as root, installs
//!    `lttng-tools liblttng-ust-dev` from the distribution's packages when they are missing),
//!    starts `lttng-sessiond --daemonize` when no session daemon answers (and leaves it
//!    running), and records a session `ada-peers-<pid>` with `ada_peers:*` enabled, output
//!    under `<target>/lttng-peers`, around the bench run. Where any of that is impossible the
//!    bench is built without its LTTng group (`ADA_PEERS_LTTNG=0`) and the reason is printed.
//! 2. Builds the `peers/` bench (`cargo bench --no-run --manifest-path peers/Cargo.toml`); if
//!    that fails with Tracy (feature `tracy`, default), builds it again without and says so.
//! 3. Runs it, passing the arguments after `bench-peers` (a leading `--` is dropped) on to
//!    criterion, with `CRITERION_HOME=<target>/criterion`; `<target>` is `$CARGO_TARGET_DIR`,
//!    or `peers/target` when that is unset.
//! 4. Stops and destroys the LTTng session (printing the events LTTng discarded) and deletes its
//!    output.
//! 5. Reads each benchmark's median from criterion's `<group>/<bench>/new/estimates.json` and
//!    prints a table of medians and of the ratios issue 15 sets as goals, each met or not.
//!
//! Goals not met are reported, not failures: the command fails only when the bench cannot be
//! built or run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Failure, Outcome};
use crate::workspace::Workspace;

/// One benchmark of the peers bench: criterion's group and function names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bench {
    /// The criterion group (`floor`, `ada`, `tracing_layer`, `lttng`, `tracy`).
    pub group: &'static str,
    /// The function within the group.
    pub name: &'static str,
}

impl Bench {
    /// `group/name`, as criterion prints it.
    pub fn id(self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

/// The TSC floor: a thread-local 32-byte store stamped with the time-stamp counter.
pub const TSC_FLOOR: Bench = Bench {
    group: "floor",
    name: "tls_store_plus_tsc",
};
/// The same store stamped with `clock_gettime(CLOCK_MONOTONIC)`.
pub const CLOCK_FLOOR: Bench = Bench {
    group: "floor",
    name: "tls_store_plus_clock_gettime",
};
/// ADA's `enter_id` under a live drain.
pub const ADA_ENTER_ID: Bench = Bench {
    group: "ada",
    name: "enter_id_live_drain",
};
/// ADA's `span` (entry + exit) under a live drain.
pub const ADA_SPAN: Bench = Bench {
    group: "ada",
    name: "span_live_drain",
};
/// One LTTng-UST tracepoint with a 32-byte payload, recorded by a session.
pub const LTTNG_EVENT: Bench = Bench {
    group: "lttng",
    name: "tracepoint_32b",
};
/// Tracy's `span!` (begin + end) with a capture connected (the bench's stand-in for the Tracy
/// server reads what the client sends).
pub const TRACY_SPAN: Bench = Bench {
    group: "tracy",
    name: "span",
};
/// Tracy's `span!` with no server: measured only when the capture could not connect (the
/// bench says why); not a fair figure, Tracy then keeps every span in memory.
pub const TRACY_SPAN_NO_SERVER: Bench = Bench {
    group: "tracy",
    name: "span_no_server",
};

/// `tracing`'s span (enter + exit) with the registry alone, no layer: what each layer pays
/// first.
pub const LAYER_REGISTRY_SPAN: Bench = Bench {
    group: "tracing_layer",
    name: "registry_span",
};
/// `tracing`'s `info!(x = 1, "msg")` with the registry alone.
pub const LAYER_REGISTRY_EVENT: Bench = Bench {
    group: "tracing_layer",
    name: "registry_event",
};
/// `tracing`'s span (enter + exit) recorded by `ada-tracing`'s layer under a live drain.
pub const LAYER_ADA_SPAN: Bench = Bench {
    group: "tracing_layer",
    name: "ada_span",
};
/// `tracing`'s `info!(x = 1, "msg")` recorded by `ada-tracing`'s layer under a live drain.
pub const LAYER_ADA_EVENT: Bench = Bench {
    group: "tracing_layer",
    name: "ada_event",
};
/// The span recorded by `tracing-subscriber`'s `fmt` layer (span events on) into a sink.
pub const LAYER_FMT_SPAN: Bench = Bench {
    group: "tracing_layer",
    name: "fmt_span",
};
/// The event recorded by the `fmt` layer into a sink.
pub const LAYER_FMT_EVENT: Bench = Bench {
    group: "tracing_layer",
    name: "fmt_event",
};
/// The span recorded by `tracing-chrome`'s layer into a file.
pub const LAYER_CHROME_SPAN: Bench = Bench {
    group: "tracing_layer",
    name: "chrome_span",
};
/// The event recorded by `tracing-chrome`'s layer into a file.
pub const LAYER_CHROME_EVENT: Bench = Bench {
    group: "tracing_layer",
    name: "chrome_event",
};

/// Every benchmark of the peers bench, in the order it runs them.
pub const BENCHES: [Bench; 15] = [
    TSC_FLOOR,
    CLOCK_FLOOR,
    ADA_ENTER_ID,
    ADA_SPAN,
    LAYER_REGISTRY_SPAN,
    LAYER_REGISTRY_EVENT,
    LAYER_ADA_SPAN,
    LAYER_ADA_EVENT,
    LAYER_FMT_SPAN,
    LAYER_FMT_EVENT,
    LAYER_CHROME_SPAN,
    LAYER_CHROME_EVENT,
    LTTNG_EVENT,
    TRACY_SPAN,
    TRACY_SPAN_NO_SERVER,
];

/// How a goal compares its value with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The value must be at most the target.
    AtMost,
    /// The value must be at least the target.
    AtLeast,
}

/// One of issue 15's goals: `numerator / denominator` (or `numerator` alone, in ns) against a
/// target.
#[derive(Debug, Clone, Copy)]
pub struct Goal {
    /// What the goal is, in words.
    pub label: &'static str,
    /// The benchmark whose median is the value (or the ratio's numerator).
    pub numerator: Bench,
    /// The ratio's denominator; `None` for an absolute goal in nanoseconds.
    pub denominator: Option<Bench>,
    /// How the value must compare with `target`.
    pub bound: Bound,
    /// The target: a ratio, or nanoseconds for an absolute goal.
    pub target: f64,
}

/// Issue 15's goals for the record cost (Deliver 2).
pub const GOALS: [Goal; 4] = [
    Goal {
        label: "ADA enter_id / TSC floor",
        numerator: ADA_ENTER_ID,
        denominator: Some(TSC_FLOOR),
        bound: Bound::AtMost,
        target: 1.2,
    },
    Goal {
        label: "LTTng event / ADA enter_id",
        numerator: LTTNG_EVENT,
        denominator: Some(ADA_ENTER_ID),
        bound: Bound::AtLeast,
        target: 5.0,
    },
    Goal {
        label: "Tracy span! / ADA span",
        numerator: TRACY_SPAN,
        denominator: Some(ADA_SPAN),
        bound: Bound::AtLeast,
        target: 1.5,
    },
    Goal {
        label: "ADA span (absolute)",
        numerator: ADA_SPAN,
        denominator: None,
        bound: Bound::AtMost,
        target: 25.0,
    },
];

/// Issue 17's goals for `ada-tracing`'s layer: the cheapest of the three subscribers by at
/// least 3×, per span and per event.
pub const LAYER_GOALS: [Goal; 4] = [
    Goal {
        label: "fmt span / ADA layer span",
        numerator: LAYER_FMT_SPAN,
        denominator: Some(LAYER_ADA_SPAN),
        bound: Bound::AtLeast,
        target: 3.0,
    },
    Goal {
        label: "chrome span / ADA layer span",
        numerator: LAYER_CHROME_SPAN,
        denominator: Some(LAYER_ADA_SPAN),
        bound: Bound::AtLeast,
        target: 3.0,
    },
    Goal {
        label: "fmt event / ADA layer event",
        numerator: LAYER_FMT_EVENT,
        denominator: Some(LAYER_ADA_EVENT),
        bound: Bound::AtLeast,
        target: 3.0,
    },
    Goal {
        label: "chrome event / ADA layer event",
        numerator: LAYER_CHROME_EVENT,
        denominator: Some(LAYER_ADA_EVENT),
        bound: Bound::AtLeast,
        target: 3.0,
    },
];

/// The outcome of one goal.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The value and whether it meets the target.
    Measured {
        /// The ratio, or nanoseconds for an absolute goal.
        value: f64,
        /// Whether `value` is within the target.
        met: bool,
    },
    /// A median it needs is missing (the benchmark was skipped or not run).
    Missing(String),
}

impl Goal {
    /// This goal's verdict from the medians (`median(b)` is `None` for a benchmark that did
    /// not run).
    pub fn verdict(&self, median: impl Fn(Bench) -> Option<f64>) -> Verdict {
        let Some(num) = median(self.numerator) else {
            return Verdict::Missing(format!("no {}", self.numerator.id()));
        };
        let value = match self.denominator {
            None => num,
            Some(den_bench) => match median(den_bench) {
                Some(den) if den > 0.0 => num / den,
                Some(_) => return Verdict::Missing(format!("{} is 0", den_bench.id())),
                None => return Verdict::Missing(format!("no {}", den_bench.id())),
            },
        };
        let met = match self.bound {
            Bound::AtMost => value <= self.target,
            Bound::AtLeast => value >= self.target,
        };
        Verdict::Measured { value, met }
    }

    /// The target as printed: `≤ 1.2×`, `≥ 5×`, `≤ 25 ns`.
    fn target_text(&self) -> String {
        let op = match self.bound {
            Bound::AtMost => "≤",
            Bound::AtLeast => "≥",
        };
        let unit = if self.denominator.is_some() {
            "×"
        } else {
            " ns"
        };
        format!("{op} {}{unit}", self.target)
    }
}

/// The median point estimate (ns) in a criterion `estimates.json`: the `point_estimate` of its
/// top-level `median` object, which must be a non-negative finite number.
pub fn median_ns(json: &str) -> Result<f64, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not criterion's JSON: {e}"))?;
    let median = value
        .get("median")
        .ok_or("no top-level \"median\" estimate")?;
    if !median.is_object() {
        return Err("\"median\" is not an object".into());
    }
    let estimate = median
        .get("point_estimate")
        .ok_or("\"median\" has no point_estimate")?;
    let ns = estimate
        .as_f64()
        .ok_or_else(|| format!("point_estimate `{estimate}` is not a number"))?;
    if ns.is_finite() && ns >= 0.0 {
        Ok(ns)
    } else {
        Err(format!("point_estimate {ns} is not a duration"))
    }
}

/// A benchmark's result for the table.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// Its median, in nanoseconds.
    Median(f64),
    /// Why there is none (skipped, not run, unreadable).
    Absent(String),
}

/// The printed report: each benchmark's median, then each goal's value, target and verdict.
pub fn table(rows: &[(Bench, Row)]) -> String {
    let median = |b: Bench| {
        rows.iter().find_map(|(rb, r)| match r {
            Row::Median(ns) if *rb == b => Some(*ns),
            _ => None,
        })
    };
    let mut s = String::new();
    let _ = writeln!(s, "{:<38} median", "benchmark");
    for (bench, row) in rows {
        let cell = match row {
            Row::Median(ns) => format!("{ns:>9.2} ns"),
            Row::Absent(why) => format!("        — ({why})"),
        };
        let _ = writeln!(s, "{:<38} {cell}", bench.id());
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<38} {:>9}  {:<9} verdict",
        "goal (issues 15, 17)", "value", "target"
    );
    for goal in GOALS.iter().chain(&LAYER_GOALS) {
        let (value, verdict) = match goal.verdict(median) {
            Verdict::Measured { value, met } => {
                let value = if goal.denominator.is_some() {
                    format!("{value:.2}×")
                } else {
                    format!("{value:.2} ns")
                };
                (value, if met { "met" } else { "NOT met" }.to_owned())
            }
            Verdict::Missing(why) => ("—".to_owned(), format!("not measured ({why})")),
        };
        let _ = writeln!(
            s,
            "{:<38} {value:>9}  {:<9} {verdict}",
            goal.label,
            goal.target_text()
        );
    }
    s
}

/// The arguments for criterion: those after `bench-peers`, less a leading `--`.
pub fn criterion_args(args: &[&str]) -> Vec<String> {
    let args = match args {
        ["--", rest @ ..] => rest,
        all => all,
    };
    args.iter().map(|&a| a.to_owned()).collect()
}

/// Runs the whole comparison (see the module docs).
pub fn run(ws: &Workspace, args: &[String]) -> Outcome {
    let root = ws.root.as_path();
    let manifest = root.join("peers/Cargo.toml");
    if !manifest.is_file() {
        return Err(Failure::new(format!("{} is missing", manifest.display())));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("peers/target"), |t| root.join(t));
    let criterion_home = target.join("criterion");

    eprintln!("==> bench-peers: LTTng-UST");
    let lttng_skip = ensure_lttng(root).err();
    let mut session = None;
    let lttng_skip = lttng_skip.or_else(|| match LttngSession::start(root, &target) {
        Ok(s) => {
            session = Some(s);
            None
        }
        Err(why) => Some(why),
    });
    if let Some(why) = &lttng_skip {
        eprintln!("    LTTng SKIPPED: {why}");
    }

    eprintln!("==> bench-peers: build");
    let manifest_arg = manifest.display().to_string();
    let cargo_bench = |extra: &[&str]| {
        let mut cmd = Cmd::cargo(root)
            .args([
                "bench",
                "--locked",
                "--manifest-path",
                manifest_arg.as_str(),
            ])
            .args(["--bench", "peers"])
            .args(extra.iter().copied())
            .env("CRITERION_HOME", criterion_home.display().to_string());
        if lttng_skip.is_some() {
            cmd = cmd.env("ADA_PEERS_LTTNG", "0");
        }
        cmd
    };
    let mut features: Vec<&str> = Vec::new();
    let mut tracy_skip = None;
    if cargo_bench(&["--no-run"]).run().is_err() {
        let why = "tracy-client did not build (its errors are above)".to_owned();
        eprintln!("    Tracy SKIPPED: {why}; building without it");
        features.push("--no-default-features");
        cargo_bench(&["--no-run", "--no-default-features"]).run()?;
        tracy_skip = Some(why);
    }

    eprintln!("==> bench-peers: run");
    for bench in BENCHES {
        // Stale results of an earlier run must not stand in for a benchmark skipped now.
        let _ = std::fs::remove_dir_all(criterion_home.join(bench.group).join(bench.name));
    }
    let ran = cargo_bench(&features).args(["--"]).args(args).run();
    // Stops and destroys the session before the table (an early return above does the same).
    drop(session);
    ran?;

    let rows: Vec<(Bench, Row)> = BENCHES
        .iter()
        .map(|&bench| {
            let skipped = match bench.group {
                "lttng" => lttng_skip.as_deref(),
                "tracy" => tracy_skip.as_deref(),
                _ => None,
            };
            let row = match skipped {
                Some(why) => Row::Absent(format!("skipped: {why}")),
                None => read_median(&criterion_home, bench),
            };
            (bench, row)
        })
        .collect();
    println!("\n{}", table(&rows));
    if let Some(why) = &lttng_skip {
        println!("LTTng was skipped: {why}");
    }
    if let Some(why) = &tracy_skip {
        println!("Tracy was skipped: {why}");
    }
    Ok(())
}

/// A benchmark's median from criterion's output, or why it is absent.
fn read_median(criterion_home: &Path, bench: Bench) -> Row {
    let path = criterion_home
        .join(bench.group)
        .join(bench.name)
        .join("new/estimates.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => match median_ns(&text) {
            Ok(ns) => Row::Median(ns),
            Err(e) => Row::Absent(format!("{}: {e}", path.display())),
        },
        Err(_) => Row::Absent("not run".to_owned()),
    }
}

/// Makes sure the `lttng` client and lttng-ust ≥ 2.13 (pkg-config) are installed, installing
/// them from Debian's packages as root; `Err` says why LTTng cannot be measured.
fn ensure_lttng(root: &Path) -> Result<(), String> {
    crate::cmd::ensure_packages(
        root,
        "lttng-tools or liblttng-ust-dev (>= 2.13)",
        &["lttng-tools", "liblttng-ust-dev", "pkg-config"],
        || {
            Cmd::new("lttng", root).args(["--version"]).probe()
                && Cmd::new("pkg-config", root)
                    .args(["--atleast-version=2.13", "lttng-ust"])
                    .probe()
        },
    )
}

/// A recording LTTng session with `ada_peers:*` enabled; dropping it stops and destroys it
/// (so a failed build or run never leaves it recording).
struct LttngSession {
    root: PathBuf,
    name: String,
    output: PathBuf,
}

impl LttngSession {
    /// Starts a session daemon if none answers, then creates, configures and starts the
    /// session; `Err` says why it could not.
    fn start(root: &Path, target: &Path) -> Result<Self, String> {
        let lttng = |args: &[&str]| Cmd::new("lttng", root).args(args.iter().copied());
        if !lttng(&["list"]).probe() {
            eprintln!("    no LTTng session daemon answers: starting one (left running)");
            Cmd::new("lttng-sessiond", root)
                .args(["--daemonize"])
                .run()
                .map_err(|f| format!("lttng-sessiond did not start: {}", f.message))?;
            if !lttng(&["list"]).probe() {
                return Err("lttng-sessiond started but does not answer `lttng list`".to_owned());
            }
        }
        let name = format!("ada-peers-{}", std::process::id());
        let output = target.join("lttng-peers").join(&name);
        let _ = std::fs::remove_dir_all(&output);
        let output_arg = format!("--output={}", output.display());
        lttng(&["create", name.as_str(), output_arg.as_str()])
            .run()
            .map_err(|f| format!("could not create the LTTng session: {}", f.message))?;
        let session = Self {
            root: root.to_path_buf(),
            name,
            output,
        };
        let configured = lttng(&["enable-event", "-u", "ada_peers:*", "-s", &session.name])
            .run()
            .and_then(|()| lttng(&["start", session.name.as_str()]).run());
        if let Err(f) = configured {
            drop(session);
            return Err(format!(
                "could not start recording ada_peers:*: {}",
                f.message
            ));
        }
        Ok(session)
    }
}

impl Drop for LttngSession {
    /// Stops the session, prints how many events LTTng discarded, destroys the session and
    /// deletes its output.
    fn drop(&mut self) {
        let lttng = |args: &[&str]| Cmd::new("lttng", &self.root).args(args.iter().copied());
        let _ = lttng(&["stop", self.name.as_str()]).run();
        if let Ok(out) = std::process::Command::new("lttng")
            .args(["list", self.name.as_str()])
            .output()
        {
            let discarded = discarded_events(&String::from_utf8_lossy(&out.stdout));
            eprintln!("    LTTng discarded {discarded} events (buffers full; discard mode)");
        }
        let _ = lttng(&["destroy", self.name.as_str()]).run();
        let _ = std::fs::remove_dir_all(&self.output);
    }
}

/// The sum of the `Discarded events: N` lines of `lttng list SESSION`.
fn discarded_events(listing: &str) -> u64 {
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Discarded events:"))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `estimates.json` as criterion 0.8 writes it (one line; trimmed numbers).
    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":11.1,"upper_bound":12.3},"point_estimate":11.7,"standard_error":0.3},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":10.9,"upper_bound":11.8},"point_estimate":11.62,"standard_error":0.25},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.1,"upper_bound":0.4},"point_estimate":0.2,"standard_error":0.05},"slope":{"confidence_interval":{"confidence_level":0.95,"lower_bound":11.0,"upper_bound":12.0},"point_estimate":11.5,"standard_error":0.2},"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1}}"#;

    #[test]
    fn median_is_the_top_level_median_point_estimate() {
        // Not the mean's, the slope's or median_abs_dev's point estimate.
        assert_eq!(median_ns(ESTIMATES), Ok(11.62));
        // Order and whitespace do not matter; exponents parse.
        let pretty = "{\n  \"median_abs_dev\": {\"point_estimate\": 0.5},\n  \"median\": {\n    \"point_estimate\" : 2.5e1,\n    \"confidence_interval\": {\"point_estimate\": 9}\n  }\n}";
        assert_eq!(median_ns(pretty), Ok(25.0));
        // The median object's own point_estimate, not one nested in it.
        let nested_first =
            r#"{"median":{"confidence_interval":{"point_estimate":1.0},"point_estimate":3.0}}"#;
        assert_eq!(median_ns(nested_first), Ok(3.0));
    }

    #[test]
    fn median_rejects_what_is_not_an_estimate() {
        for bad in [
            "",
            "{}",
            r#"{"mean":{"point_estimate":1.0}}"#,
            r#"{"x":{"median":{"point_estimate":1.0}}}"#,
            r#"{"median":1.0}"#,
            r#"{"median":{"point_estimate":1.0"#,
            r#"{"median":{"standard_error":1.0}}"#,
            r#"{"median":{"point_estimate":"fast"}}"#,
            r#"{"median":{"point_estimate":-3.0}}"#,
        ] {
            assert!(median_ns(bad).is_err(), "accepted {bad:?}");
        }
    }

    fn medians(pairs: &[(Bench, f64)]) -> impl Fn(Bench) -> Option<f64> + '_ {
        |b| pairs.iter().find(|(pb, _)| *pb == b).map(|&(_, ns)| ns)
    }

    #[test]
    fn goals_compute_the_issue_ratios() {
        let m = [
            (TSC_FLOOR, 10.0),
            (ADA_ENTER_ID, 12.0),
            (ADA_SPAN, 20.0),
            (LTTNG_EVENT, 66.0),
            (TRACY_SPAN, 29.0),
        ];
        let verdicts: Vec<Verdict> = GOALS.iter().map(|g| g.verdict(medians(&m))).collect();
        let measured = |value: f64, met: bool| Verdict::Measured { value, met };
        // enter_id / floor = 1.2: at the bound is met.
        assert_eq!(verdicts[0], measured(1.2, true));
        // LTTng / enter_id = 5.5 ≥ 5.
        assert_eq!(verdicts[1], measured(5.5, true));
        // Tracy / span = 1.45 < 1.5.
        assert_eq!(verdicts[2], measured(1.45, false));
        // span = 20 ns ≤ 25.
        assert_eq!(verdicts[3], measured(20.0, true));

        let slow = [
            (TSC_FLOOR, 10.0),
            (ADA_ENTER_ID, 25.0),
            (ADA_SPAN, 47.0),
            (LTTNG_EVENT, 66.0),
            (TRACY_SPAN, 39.0),
        ];
        let met: Vec<bool> = GOALS
            .iter()
            .map(|g| {
                matches!(
                    g.verdict(medians(&slow)),
                    Verdict::Measured { met: true, .. }
                )
            })
            .collect();
        assert_eq!(met, [false, false, false, false]);
    }

    #[test]
    fn goals_without_a_median_are_not_measured() {
        let m = [(TSC_FLOOR, 0.0), (ADA_ENTER_ID, 12.0)];
        assert_eq!(
            GOALS[0].verdict(medians(&m)),
            Verdict::Missing("floor/tls_store_plus_tsc is 0".into())
        );
        assert_eq!(
            GOALS[1].verdict(medians(&m)),
            Verdict::Missing("no lttng/tracepoint_32b".into())
        );
        assert_eq!(
            GOALS[3].verdict(medians(&m)),
            Verdict::Missing("no ada/span_live_drain".into())
        );
    }

    #[test]
    fn table_prints_medians_ratios_and_skips() {
        let rows = [
            (TSC_FLOOR, Row::Median(10.0)),
            (CLOCK_FLOOR, Row::Median(21.25)),
            (ADA_ENTER_ID, Row::Median(24.0)),
            (ADA_SPAN, Row::Median(20.0)),
            (LTTNG_EVENT, Row::Absent("skipped: no lttng".into())),
            (TRACY_SPAN, Row::Median(39.0)),
        ];
        let text = table(&rows);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("floor/tls_store_plus_clock_gettime"),
            "floor/tls_store_plus_clock_gettime 21.25 ns"
        );
        assert_eq!(
            line("lttng/tracepoint_32b"),
            "lttng/tracepoint_32b — (skipped: no lttng)"
        );
        assert_eq!(
            line("ADA enter_id / TSC floor"),
            "ADA enter_id / TSC floor 2.40× ≤ 1.2× NOT met"
        );
        assert_eq!(
            line("LTTng event / ADA enter_id"),
            "LTTng event / ADA enter_id — ≥ 5× not measured (no lttng/tracepoint_32b)"
        );
        assert_eq!(
            line("Tracy span! / ADA span"),
            "Tracy span! / ADA span 1.95× ≥ 1.5× met"
        );
        assert_eq!(
            line("ADA span (absolute)"),
            "ADA span (absolute) 20.00 ns ≤ 25 ns met"
        );
    }

    #[test]
    fn the_layer_goals_compare_each_peer_with_ada() {
        let m = [
            (LAYER_ADA_SPAN, 80.0),
            (LAYER_FMT_SPAN, 1800.0),
            (LAYER_CHROME_SPAN, 200.0),
            (LAYER_ADA_EVENT, 100.0),
            (LAYER_FMT_EVENT, 600.0),
        ];
        let verdicts: Vec<Verdict> = LAYER_GOALS.iter().map(|g| g.verdict(medians(&m))).collect();
        let measured = |value: f64, met: bool| Verdict::Measured { value, met };
        assert_eq!(verdicts[0], measured(22.5, true));
        assert_eq!(verdicts[1], measured(2.5, false));
        assert_eq!(verdicts[2], measured(6.0, true));
        assert_eq!(
            verdicts[3],
            Verdict::Missing("no tracing_layer/chrome_event".into())
        );
        let rows: Vec<(Bench, Row)> = m.iter().map(|&(b, ns)| (b, Row::Median(ns))).collect();
        let text = table(&rows);
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")
                    == "fmt span / ADA layer span 22.50× ≥ 3× met"),
            "{text}"
        );
    }

    #[test]
    fn criterion_args_drop_one_leading_separator() {
        assert_eq!(
            criterion_args(&["--", "--measurement-time", "3"]),
            ["--measurement-time", "3"]
        );
        assert_eq!(
            criterion_args(&["--warm-up-time", "1"]),
            ["--warm-up-time", "1"]
        );
        assert!(criterion_args(&[]).is_empty());
    }

    #[test]
    fn discarded_events_sum_every_channel() {
        let listing = "Channels:\n- channel0: [enabled]\n    Statistics:\n      Discarded events: 166148\n- channel1:\n      Discarded events: 2\n";
        assert_eq!(discarded_events(listing), 166_150);
        assert_eq!(discarded_events("Recording session x: [inactive]\n"), 0);
    }
}
