//! Selective persistence and backpressure settings of `ada trace` and `ada demo`: the
//! `--trigger`, `--pre-roll`, `--post-roll`, `--pre-roll-budget`, `--persist-all`,
//! `--drop-policy`, `--stability`, `--warm-up` and `--clock` flags, the same keys from a TOML config file
//! (`--config FILE`), and their resolution into what the controller is given.
//!
//! Drop policies are layered lane by lane: the defaults (`index=newest,detail=oldest`), then
//! the config file's `drop-policy` (also spelled `drop_policy`), then `--drop-policy`; the
//! controller's `ADA_DROP_POLICY` start-up override, read when the segment is created, beats
//! all of them.
//!
//! Everything here is checked before anything is created or run: a bad spec, duration, size or
//! config file is a usage error (exit 2) whose message names the flag or key and the problem.

use ada_backpressure::{BackpressureConfig, LanePolicies};
use ada_controller::ClockChoice;
use ada_persist::{MarkingPolicy, PreRoll, TriggerSet, WindowConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest `--pre-roll-budget`: 1 GiB per thread (the drain holds up to this much per traced
/// thread, so a typo such as `4TiB` is refused rather than trusted).
pub const MAX_BUDGET_BYTES: u64 = 1 << 30;

/// The persistence flags (shared by `ada trace` and `ada demo`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PersistArgs {
    /// A trigger that opens a persistence window (repeatable): symbol=NAME, symbol=MODULE::NAME,
    /// symbol~=REGEX, symbol~i=REGEX, message=TEXT, message~=REGEX, message~i=REGEX. Replaces
    /// the config file's `trigger` list.
    #[arg(long = "trigger", value_name = "SPEC")]
    pub triggers: Vec<String>,
    /// Detail events persisted before each mark, as a duration (e.g. 50ms), kept in at most
    /// --pre-roll-budget bytes per thread. Default: about what the thread's detail rings hold
    /// (a budget of --detail-rings x --detail-ring-kib bytes).
    #[arg(long, value_name = "DUR", value_parser = parse_duration_flag)]
    pub pre_roll: Option<Duration>,
    /// Detail events persisted after each mark [default: 10ms].
    #[arg(long, value_name = "DUR", value_parser = parse_duration_flag)]
    pub post_roll: Option<Duration>,
    /// Most bytes of pre-roll the drain holds per thread, e.g. 4MiB, 512KiB, 65536 [default:
    /// 4MiB with --pre-roll, else what the detail rings hold, which is also the most it can be
    /// without --pre-roll]; what a --pre-roll duration needs beyond it is discarded and counted.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_flag)]
    pub pre_roll_budget: Option<u64>,
    /// Persist every detail event (no windows; triggers still mark events). `--persist-all=false`
    /// overrides a config file's `persist-all = true`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub persist_all: Option<bool>,
    /// Each lane's drop policy when its ring pool runs dry: `oldest` (overwrite the thread's
    /// oldest buffered events: the newest survive) or `newest` (refuse new events until a ring
    /// returns: the oldest survive), as LANE=POLICY[,LANE=POLICY] (e.g. `detail=newest`) or one
    /// bare policy for both lanes. A lane not named keeps the config file's policy, else its
    /// default: index=newest (the always-persisted timeline keeps everything up to a stall and
    /// loses one stretch where it was), detail=oldest (the flight recorder keeps the newest
    /// events, what a trigger wants). The ADA_DROP_POLICY environment variable, read once when
    /// the session starts, overrides this and the config file (a lane it does not name takes
    /// its default).
    #[arg(long, value_name = "POLICIES", value_parser = parse_policy_flag)]
    pub drop_policy: Option<String>,
    /// How long a lane stays in RECOVERY after a loss (once the drain caught up) before it is
    /// NORMAL again, e.g. 10ms [default: 10ms; at most 1m].
    #[arg(long, value_name = "DUR", value_parser = parse_stability_flag)]
    pub stability: Option<Duration>,
    /// How long the drain must have been healthy (every loop within the drain interval + 100 ms
    /// of the previous one) before the controller moves the agents from warm-up to steady
    /// state, e.g. 50ms [default: 50ms; at most 1m].
    #[arg(long, value_name = "DUR", value_parser = parse_warm_up_flag)]
    pub warm_up: Option<Duration>,
    /// The clock traced threads stamp events with: `tsc` (the CPU's invariant time-stamp
    /// counter, a few ns per read; an error where there is none), `monotonic`
    /// (clock_gettime(CLOCK_MONOTONIC)) or `auto` (tsc where invariant, else monotonic)
    /// [default: auto]. The trace is in CLOCK_MONOTONIC nanoseconds either way: the
    /// controller converts counter ticks as it drains.
    #[arg(long, value_name = "CLOCK", value_parser = parse_clock)]
    pub clock: Option<ClockChoice>,
    /// Read the settings above from a TOML file (keys: trigger, pre-roll, post-roll,
    /// pre-roll-budget, persist-all, drop-policy, stability, warm-up, clock); flags given on
    /// the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A config file's contents: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    trigger: Option<Vec<String>>,
    pre_roll: Option<String>,
    post_roll: Option<String>,
    pre_roll_budget: Option<SizeValue>,
    persist_all: Option<bool>,
    #[serde(alias = "drop_policy")]
    drop_policy: Option<String>,
    stability: Option<String>,
    #[serde(alias = "warm_up")]
    warm_up: Option<String>,
    clock: Option<String>,
}

/// A size in a config file: a number of bytes or a string with a unit.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// What the controller is given.
#[derive(Debug, Clone)]
pub struct PersistPlan {
    /// The triggers published in the segment (possibly none).
    pub triggers: TriggerSet,
    /// `None`: persist everything; else the flight recorder's window settings.
    pub windows: Option<WindowConfig>,
    /// Triggers that match every symbol or message (see `MarkingPolicy::universal`), for a
    /// warning.
    pub universal: Vec<String>,
    /// Each lane's drop policy (before the controller's `ADA_DROP_POLICY` override).
    pub drop_policies: LanePolicies,
    /// The stability period, when given (else the controller's default).
    pub stability: Option<Duration>,
    /// The warm-up period, when given (else the controller's default).
    pub warm_up: Option<Duration>,
    /// The session clock, when given (else the controller's default, `auto`).
    pub clock: Option<ClockChoice>,
}

/// A usage error: the message names the flag or key.
#[derive(Debug)]
pub struct UsageError(pub String);

fn parse_duration_flag(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn parse_size_flag(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// Checks a drop-policy text (the error names the part and its byte position); kept as text,
/// to be layered over the config file's policies by [`resolve`].
fn parse_policy_flag(s: &str) -> Result<String, String> {
    LanePolicies::parse(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// `auto`, `tsc` or `monotonic`.
pub fn parse_clock(s: &str) -> Result<ClockChoice, String> {
    s.parse()
}

fn parse_stability_flag(s: &str) -> Result<Duration, String> {
    parse_stability(s)
}

fn parse_warm_up_flag(s: &str) -> Result<Duration, String> {
    parse_warm_up(s)
}

/// A warm-up period: a duration of at most `ControllerBuilder::MAX_WARM_UP` (1 min).
pub fn parse_warm_up(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > ada_controller::ControllerBuilder::MAX_WARM_UP {
        return Err(format!("{s:?} is longer than the longest warm-up, 1m"));
    }
    Ok(d)
}

/// A stability period: a duration of at most `BackpressureConfig::MAX_STABILITY_NS` (1 min).
pub fn parse_stability(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.as_nanos() > u128::from(BackpressureConfig::MAX_STABILITY_NS) {
        return Err(format!(
            "{s:?} is longer than the longest stability period, 1m"
        ));
    }
    Ok(d)
}

/// A duration such as `10ms`, `2s`, `0s`, at most `u64::MAX` nanoseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (examples: 0s, 500us, 10ms, 2s)"))?;
    if d.as_nanos() > u128::from(u64::MAX) {
        return Err(format!("{s:?} is too long (at most about 584 years)"));
    }
    Ok(d)
}

/// A size in bytes: a plain number, or a number with a unit `B`, `KiB`/`K`/`KB`, `MiB`/`M`/`MB`,
/// `GiB`/`G`/`GB` (all binary: K = 1024), at most [`MAX_BUDGET_BYTES`].
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 65536, 512KiB, 4MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit (use B, KiB, MiB or GiB; examples: 65536, 512KiB, 4MiB)"
            ));
        }
    };
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|&b| b <= MAX_BUDGET_BYTES)
        .ok_or_else(|| format!("{s:?} is larger than 1GiB per thread"))?;
    Ok(bytes)
}

/// Reads and parses a config file; errors name the file, and the line and key at fault.
fn read_config(path: &Path) -> Result<ConfigFile, UsageError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--config {shown}: cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        let place = e.span().map_or(String::new(), |span| {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let line_text = text.lines().nth(line - 1).unwrap_or("").trim();
            format!(", line {line} ({line_text:?})")
        });
        UsageError(format!("--config {shown}{place}: {message}"))
    })
}

/// Resolves the flags (and the config file they name) into a plan; `default_triggers` apply
/// when neither gives any (`ada demo`'s `symbol=slow_request`). `ring_bytes` is what one
/// thread's detail rings hold, the default pre-roll.
pub fn resolve(
    args: &PersistArgs,
    default_triggers: &[&str],
    ring_bytes: u64,
) -> Result<PersistPlan, UsageError> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let cfg_key = |key: &str| match &args.config {
        Some(p) => format!("--config {}: {key}", p.display()),
        None => key.to_owned(),
    };
    // The command line wins, key by key.
    let (specs, from): (Vec<String>, String) = if !args.triggers.is_empty() {
        (args.triggers.clone(), "--trigger".into())
    } else if let Some(t) = file.trigger {
        (t, cfg_key("trigger"))
    } else {
        (
            default_triggers.iter().map(|s| (*s).to_owned()).collect(),
            "--trigger".into(),
        )
    };
    let triggers = TriggerSet::parse(&specs).map_err(|e| UsageError(format!("{from}: {e}")))?;
    let policy =
        MarkingPolicy::compile(&triggers).map_err(|e| UsageError(format!("{from}: {e}")))?;
    let universal = policy
        .universal()
        .iter()
        .map(|&id| policy.trigger(id).to_string())
        .collect();

    let file_duration = |key: &str,
                         value: Option<String>|
     -> Result<Option<Duration>, UsageError> {
        value
            .map(|v| parse_duration(&v).map_err(|e| UsageError(format!("{}: {e}", cfg_key(key)))))
            .transpose()
    };
    let pre_roll = match args.pre_roll {
        Some(d) => Some(d),
        None => file_duration("pre-roll", file.pre_roll)?,
    };
    let post_roll = match args.post_roll {
        Some(d) => Some(d),
        None => file_duration("post-roll", file.post_roll)?,
    };
    let budget = match args.pre_roll_budget {
        Some(b) => Some(b),
        None => file
            .pre_roll_budget
            .map(|v| match v {
                SizeValue::Bytes(n) if n <= MAX_BUDGET_BYTES => Ok(n),
                SizeValue::Bytes(n) => parse_size(&n.to_string()),
                SizeValue::Text(t) => parse_size(&t),
            })
            .transpose()
            .map_err(|e| UsageError(format!("{}: {e}", cfg_key("pre-roll-budget"))))?,
    };
    let persist_all = args.persist_all.or(file.persist_all).unwrap_or(false);

    // Lane by lane: defaults, then the file, then the flag.
    let mut drop_policies = LanePolicies::default();
    if let Some(text) = &file.drop_policy {
        drop_policies = LanePolicies::parse_onto(drop_policies, text)
            .map_err(|e| UsageError(format!("{}: {e}", cfg_key("drop-policy"))))?;
    }
    if let Some(text) = &args.drop_policy {
        drop_policies = LanePolicies::parse_onto(drop_policies, text)
            .map_err(|e| UsageError(format!("--drop-policy: {e}")))?;
    }
    let stability = match args.stability {
        Some(d) => Some(d),
        None => file
            .stability
            .as_deref()
            .map(parse_stability)
            .transpose()
            .map_err(|e| UsageError(format!("{}: {e}", cfg_key("stability"))))?,
    };
    let warm_up = match args.warm_up {
        Some(d) => Some(d),
        None => file
            .warm_up
            .as_deref()
            .map(parse_warm_up)
            .transpose()
            .map_err(|e| UsageError(format!("{}: {e}", cfg_key("warm-up"))))?,
    };
    let clock = match args.clock {
        Some(c) => Some(c),
        None => file
            .clock
            .as_deref()
            .map(parse_clock)
            .transpose()
            .map_err(|e| UsageError(format!("{}: {e}", cfg_key("clock"))))?,
    };

    let windows = (!persist_all).then(|| {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let (pre_roll, default_budget) = match pre_roll {
            Some(d) => (
                PreRoll::Duration(nanos(d)),
                ada_persist::window::DEFAULT_BUDGET_BYTES as u64,
            ),
            None => (PreRoll::Buffered, ring_bytes),
        };
        WindowConfig {
            pre_roll,
            post_roll_ns: post_roll.map_or(ada_persist::window::DEFAULT_POST_ROLL_NS, nanos),
            budget_bytes: usize::try_from(budget.unwrap_or(default_budget)).unwrap_or(usize::MAX),
        }
    });
    Ok(PersistPlan {
        triggers,
        windows,
        universal,
        drop_policies,
        stability,
        warm_up,
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ada.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn sizes_parse_with_binary_units_and_a_ceiling() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size(" 4 mb "), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "",
            "MiB",
            "4TiB",
            "-1",
            "1.5MiB",
            "2GiB",
            "18446744073709551615GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_windows_with_the_rings_as_pre_roll() {
        let plan = resolve(&PersistArgs::default(), &[], 96 << 10).unwrap();
        assert!(plan.triggers.is_empty());
        assert_eq!(
            plan.windows,
            Some(WindowConfig {
                pre_roll: PreRoll::Buffered,
                post_roll_ns: 10_000_000,
                budget_bytes: 96 << 10,
            })
        );
        let demo = resolve(&PersistArgs::default(), &["symbol=slow_request"], 1).unwrap();
        assert_eq!(demo.triggers.len(), 1);
    }

    #[test]
    fn the_config_file_applies_and_the_command_line_wins_key_by_key() {
        let (_dir, path) = config(
            "trigger = [\"symbol=a\", \"message~=b\"]\npre-roll = \"50ms\"\npost-roll = \"1ms\"\npre-roll-budget = \"1MiB\"\n",
        );
        let args = PersistArgs {
            config: Some(path.clone()),
            ..PersistArgs::default()
        };
        let plan = resolve(&args, &["symbol=default"], 1).unwrap();
        assert_eq!(plan.triggers.len(), 2);
        assert_eq!(
            plan.windows,
            Some(WindowConfig {
                pre_roll: PreRoll::Duration(50_000_000),
                post_roll_ns: 1_000_000,
                budget_bytes: 1 << 20,
            })
        );
        let args = PersistArgs {
            config: Some(path.clone()),
            triggers: vec!["symbol=c".into()],
            post_roll: Some(Duration::from_millis(3)),
            ..PersistArgs::default()
        };
        let plan = resolve(&args, &[], 1).unwrap();
        assert_eq!(plan.triggers.len(), 1);
        assert_eq!(plan.triggers.specs()[0].to_string(), "symbol=c");
        let w = plan.windows.unwrap();
        assert_eq!(w.post_roll_ns, 3_000_000);
        assert_eq!(w.pre_roll, PreRoll::Duration(50_000_000));
        // persist-all from the file, overridden by `--persist-all=false`.
        let (_dir, path) = config("persist-all = true\npre-roll-budget = 4096\n");
        let mut args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        assert!(resolve(&args, &[], 1).unwrap().windows.is_none());
        args.persist_all = Some(false);
        let w = resolve(&args, &[], 1).unwrap().windows.unwrap();
        assert_eq!((w.pre_roll, w.budget_bytes), (PreRoll::Buffered, 4096));
    }

    #[test]
    fn drop_policies_layer_default_file_flag_lane_by_lane() {
        use ada_backpressure::DropPolicy::{DropNewest as N, DropOldest as O};
        let plan = resolve(&PersistArgs::default(), &[], 1).unwrap();
        assert_eq!(plan.drop_policies, LanePolicies::default());
        assert_eq!(plan.stability, None);
        let (_dir, path) = config("drop-policy = \"index=oldest\"\nstability = \"25ms\"\n");
        let mut args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        let plan = resolve(&args, &[], 1).unwrap();
        assert_eq!(
            (plan.drop_policies.index, plan.drop_policies.detail),
            (O, O)
        );
        assert_eq!(plan.stability, Some(Duration::from_millis(25)));
        // The flag over the file: its lane replaced, the file's other lane kept.
        args.drop_policy = Some("detail=newest".into());
        args.stability = Some(Duration::from_millis(3));
        let plan = resolve(&args, &[], 1).unwrap();
        assert_eq!(
            (plan.drop_policies.index, plan.drop_policies.detail),
            (O, N)
        );
        assert_eq!(plan.stability, Some(Duration::from_millis(3)));
        // The warm-up, the same way: the file's, then the flag's.
        let (_dir, path) = config("warm-up = \"80ms\"\n");
        let mut args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        let plan = resolve(&args, &[], 1 << 20).unwrap();
        assert_eq!(plan.warm_up, Some(Duration::from_millis(80)));
        args.warm_up = Some(Duration::from_millis(5));
        let plan = resolve(&args, &[], 1 << 20).unwrap();
        assert_eq!(plan.warm_up, Some(Duration::from_millis(5)));
        let (_dir, path) = config("warm-up = \"2m\"\n");
        let args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        let e = resolve(&args, &[], 1 << 20).unwrap_err().0;
        assert!(e.contains("warm-up") && e.contains("1m"), "{e}");
        // The snake_case spelling of the key.
        let (_dir, path) = config("drop_policy = \"newest\"\n");
        let args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        assert_eq!(
            resolve(&args, &[], 1).unwrap().drop_policies,
            LanePolicies::both(N)
        );
    }

    #[test]
    fn bad_drop_policies_and_stability_periods_name_the_key_and_the_part() {
        let (_dir, path) = config("drop-policy = \"index=newest,detail=sometimes\"\n");
        let args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        let e = resolve(&args, &[], 1).unwrap_err().0;
        assert!(
            e.contains("drop-policy") && e.contains("byte 20") && e.contains("\"sometimes\""),
            "{e}"
        );
        let (_dir, path) = config("stability = \"2h\"\n");
        let args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        let e = resolve(&args, &[], 1).unwrap_err().0;
        assert!(e.contains("stability") && e.contains("1m"), "{e}");
        let e = parse_policy_flag("index=").unwrap_err();
        assert!(e.contains("byte 0") && e.contains("no policy"), "{e}");
        assert!(parse_stability("61s").is_err());
        assert_eq!(parse_stability("60s"), Ok(Duration::from_secs(60)));
        // A key of the wrong type is the config file's usage error, not a panic.
        let (_dir, path) = config("drop-policy = 3\n");
        let args = PersistArgs {
            config: Some(path),
            ..PersistArgs::default()
        };
        assert!(resolve(&args, &[], 1).unwrap_err().0.contains("line 1"));
    }

    #[test]
    fn a_pre_roll_duration_defaults_to_the_4_mib_budget() {
        let args = PersistArgs {
            pre_roll: Some(Duration::from_millis(5)),
            ..PersistArgs::default()
        };
        let w = resolve(&args, &[], 96 << 10).unwrap().windows.unwrap();
        assert_eq!(w.budget_bytes, 4 << 20);
        assert_eq!(w.pre_roll, PreRoll::Duration(5_000_000));
    }
}
