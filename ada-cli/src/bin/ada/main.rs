//! `ada`: trace a program, inspect and export traces.
//!
//! ```text
//! ada trace [--output DIR] [--duration D] [--trigger SPEC]... [--drop-policy P] [--stability D] [--warm-up D] [--config FILE] [--functions [--agent-lib PATH]] -- COMMAND [ARGS...]
//! ada attach SEGMENT [--output DIR] [--duration D] [--pid PID]...
//! ada inspect TRACE_DIR [--limit N] [--top N]
//! ada export --chrome TRACE_DIR -o out.json
//! ada export --perfetto TRACE_DIR -o out.pftrace
//! ada demo [--output DIR]
//! ada status [SEGMENT | --clean]
//! ```
//!
//! Everything printed that did not come from `ada` itself (names and paths from a trace or a
//! segment, error messages quoting them) goes through [`ada_cli::escape`] first.

mod persist;
mod workload;

use ada_cli::escape::{escape, escape_path};
use ada_cli::summary;
use ada_cli::trace::{self, Ending, TraceError, TraceOptions};
use ada_controller::{ControllerBuilder, ControllerError, LiveSnapshot, Persistence};
use ada_registry::RingGeometry;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "ada",
    version,
    about = "Low-overhead per-thread tracing with a flight recorder"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct SessionArgs {
    /// Directory that receives `ada_traces/session_*/pid_*/`.
    #[arg(short, long, default_value = ".")]
    output: PathBuf,
    /// Thread slots in the registry (threads traced at once), 1..=4096.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=i64::from(ada_registry::geometry::MAX_CAPACITY)))]
    threads: u32,
    /// Rings in each thread's index-lane pool (2..=8).
    #[arg(long, default_value_t = 4, value_parser = parse_index_rings)]
    index_rings: u32,
    /// Size of each index ring in KiB, 1..=65536 (more buffering per thread against drops).
    #[arg(long, default_value_t = 32, value_parser = parse_index_ring_kib)]
    index_ring_kib: u32,
    /// Rings in each thread's detail-lane pool (2..=8).
    #[arg(long, default_value_t = 2, value_parser = parse_detail_rings)]
    detail_rings: u32,
    /// Size of each detail ring in KiB, 1..=65536.
    #[arg(long, default_value_t = 48, value_parser = parse_detail_ring_kib)]
    detail_ring_kib: u32,
    /// Records in the shared fallback ring: where events go before the registry is ready, from
    /// threads refused a slot, and spilled from an exhausted pool (a power of two, 2..=1048576;
    /// 0 = none: those events are counted as lost).
    #[arg(long, default_value_t = ada_registry::fallback::DEFAULT_FALLBACK_RECORDS, value_parser = parse_fallback_records)]
    fallback_records: u32,
    /// Drain interval when idle, at most 1s (e.g. 1ms).
    #[arg(long, default_value = "1ms", value_parser = parse_drain_interval)]
    drain_interval: Duration,
    /// Drain workers, 1..=64, each draining its share of the threads and encoding their events
    /// into the one events.bin [default: a quarter of the cores, at least 1].
    #[arg(long, value_name = "N", value_parser = parse_drain_threads)]
    drain_threads: Option<usize>,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run COMMAND traced and write its trace.
    #[command(after_help = EXIT_CODES)]
    Trace {
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        persist: persist::PersistArgs,
        /// Stop tracing (and the command) after this long, e.g. 10s, 2m.
        #[arg(short, long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Trace every function of a program compiled with `-finstrument-functions`: preload
        /// the C agent library (appended to LD_PRELOAD), which records each entry and exit with
        /// the function's address as its id. A program linked to the library needs no flag.
        #[arg(long)]
        functions: bool,
        /// The C agent library `--functions` preloads [default: $ADA_AGENT_LIB, else
        /// libada_agent_c.so next to the ada executable].
        #[arg(long, value_name = "PATH", requires = "functions")]
        agent_lib: Option<PathBuf>,
        /// The command to trace and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Continue the session of a controller that died: drain its segment into a new trace.
    #[command(after_help = ATTACH_HELP)]
    Attach {
        /// The segment, as `ada trace` announced it (the traced processes' ADA_SHM), e.g.
        /// /ada_1234_5f0c...
        segment: String,
        /// Directory that receives `ada_traces/session_*/pid_*/`.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Stop after this long, e.g. 10s, 2m (the traced processes keep running).
        #[arg(short, long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// A traced process (repeatable): its threads and its descendants' are verified, the
        /// first names the trace directory, and attach ends when all have exited. Without it,
        /// every process is accepted and every process owning a slot is watched.
        #[arg(long = "pid", value_name = "PID")]
        pids: Vec<u32>,
        /// Drain interval when idle, at most 1s (e.g. 1ms).
        #[arg(long, default_value = "1ms", value_parser = parse_drain_interval)]
        drain_interval: Duration,
        /// Drain workers, 1..=64 [default: a quarter of the cores, at least 1].
        #[arg(long, value_name = "N", value_parser = parse_drain_threads)]
        drain_threads: Option<usize>,
        /// How long the drain must have been healthy before the agents are moved from warm-up
        /// to steady state [default: 50ms; at most 1m].
        #[arg(long, value_name = "DUR", value_parser = persist::parse_warm_up)]
        warm_up: Option<Duration>,
        /// No progress lines.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a trace's manifest summary and its first events.
    #[command(after_help = READ_EXIT_CODES)]
    Inspect {
        /// The trace directory (`.../pid_<pid>`, or a session directory holding one).
        trace_dir: PathBuf,
        /// Events to print.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Also print the top N functions by call count and by inclusive time (entry to
        /// matching exit per thread, as `uftrace report` does).
        #[arg(long, value_name = "N")]
        top: Option<usize>,
    },
    /// Convert a trace to another format.
    #[command(after_help = READ_EXIT_CODES)]
    #[command(group(clap::ArgGroup::new("format").required(true).args(["chrome", "perfetto"])))]
    Export {
        /// Chrome trace-event JSON (opens in the Perfetto UI and chrome://tracing).
        #[arg(long)]
        chrome: bool,
        /// Perfetto's protobuf trace format (opens in the Perfetto UI and trace_processor).
        #[arg(long)]
        perfetto: bool,
        /// The trace directory.
        trace_dir: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// What part of the trace to export.
        #[command(flatten)]
        select: ada_cli::export::select::SelectArgs,
        /// Do not warn when the export will be larger than viewers load.
        #[arg(long)]
        no_size_warning: bool,
    },
    /// Trace the bundled multi-threaded example program (with `--trigger symbol=slow_request`
    /// unless triggers are given).
    #[command(after_help = EXIT_CODES)]
    Demo {
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        persist: persist::PersistArgs,
    },
    /// Show the registry of a live ADA segment (or list ADA segments).
    #[command(after_help = STATUS_HELP)]
    Status {
        /// Segment name, e.g. /ada_1234_5f0c...
        segment: Option<String>,
        /// Remove the stale segments (those of controllers that are no longer running).
        #[arg(long, conflicts_with = "segment")]
        clean: bool,
    },
    /// The bundled workload (used by `ada demo`, tests and benchmarks).
    #[command(hide = true)]
    Workload(workload::WorkloadArgs),
}

/// The exit codes of `ada trace` and `ada demo`.
const EXIT_CODES: &str = "\
Exit codes:
  the command's own exit code (128 + N if signal N ended it) once it ran and its trace is complete
  1  ada failed: the output directory is unusable, the command could not be started, the trace is
     incomplete, ...
  2  usage error: unknown flag, bad value (a bad ADA_DROP_POLICY included), missing COMMAND
     (nothing is run or written)
Drop policies, highest precedence first: ADA_DROP_POLICY (read once when the session starts; a
lane it does not name takes its default), --drop-policy, the config file's drop-policy, the
defaults index=newest,detail=oldest. --drop-policy and the config file are layered lane by lane.";

/// What `ada attach` does, and its exit codes.
const ATTACH_HELP: &str = "\
`ada trace` prints the segment's name once the command runs (\"ada: segment /ada_... ready\", unless -q); it is
also the ADA_SHM variable in the traced processes' environment. If that controller dies
(SIGKILL), the traced program keeps running; `ada attach SEGMENT` takes the drain over (a drain
still alive is refused, naming its pid), publishes the registry under the next epoch and writes a
new trace, a continuation (its trace.json says so: \"continuation\" with the segment, the epoch
and the previous controller's pid). What the threads lost while no controller ran is in their loss
counts; what they had counted before is reported per lane as \"beforeAttach\", in the old trace.
It ends on SIGINT, after --duration, or when every watched process has exited, and removes the
segment. Run it before `ada status --clean` or another `ada trace` removes the segment as stale
(or set ADA_KEEP_STALE_SEGMENTS).
Exit codes:
  0  the continuation trace is complete
  1  ada failed: no such segment, a drain that is still alive, an unusable output directory, an
     incomplete trace
  2  usage error";

/// The exit codes of `ada inspect` and `ada export` (`ada_cli::damage`).
const READ_EXIT_CODES: &str = "\
Exit codes:
  0  the trace is complete and undamaged
  1  error: no trace at the path, a trace that cannot be opened, an output that cannot be written
     (no export file is left behind)
  2  usage error: unknown flag, missing argument
  3  the trace is damaged or incomplete: some data was lost (no trace.json, complete: false, an
     events.bin shorter than trace.json says, a torn tail, a corrupt record, missing events). The
     summary or the export is still written with what was readable; each problem is printed on
     stderr (\"ada: warning: ...\"), and the export's otherData (--perfetto: the args of its
     last instant, \"ada export\") says \"complete\":\"false\", \"dataLost\":\"true\" and lists
     them under \"warnings\"
What the capture itself lost or could not trust (corrupt input the controller found in the shared
segment, refuted thread identities among it, events of threads that got no registry slot) is recorded in
trace.json, printed as warnings too and put in the export's otherData (\"captureWarnings\"); it
does not change the exit code.";

/// What `ada status` calls stale, and how such segments go away.
const STATUS_HELP: &str = "\
Stale segments:
  A controller killed by SIGKILL cannot remove its segment from /dev/shm. Without SEGMENT, `ada
  status` lists such segments as stale; `ada status --clean` removes them, and so does every
  `ada trace` and `ada demo` when it starts. Only segments of the current user whose header is a
  valid ADA header naming a controller pid that is no longer running are removed; anything else
  is listed and left alone. A controller pid the system has since reused counts as running.
  Set ADA_KEEP_STALE_SEGMENTS to keep `ada trace`/`ada demo` from removing them.";

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 10s, 2m)"))
}

/// A number of drain workers the controller accepts (1..=`ControllerBuilder::MAX_DRAIN_THREADS`).
fn parse_drain_threads(s: &str) -> Result<usize, String> {
    let max = ControllerBuilder::MAX_DRAIN_THREADS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of drain workers from 1 to {max}"
        )),
    }
}

/// A drain interval the controller accepts (`ControllerBuilder::MAX_DRAIN_INTERVAL`).
fn parse_drain_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let max = ControllerBuilder::MAX_DRAIN_INTERVAL;
    if d > max {
        return Err(format!(
            "{} is longer than {}: threads would drop events while the drain sleeps",
            humantime::format_duration(d),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Checks one ring flag against `RingGeometry::validate` (the limits every process relies on),
/// by changing it in the default geometry.
fn ring_flag(s: &str, set: fn(&mut RingGeometry, u32)) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    let mut geometry = RingGeometry::default();
    set(&mut geometry, n);
    geometry.validate().map_err(|e| e.0.to_owned())?;
    Ok(n)
}

/// KiB as ring bytes; too many for a `u32` saturates (and is then refused as too large).
fn kib_to_bytes(kib: u32) -> u32 {
    u32::try_from(u64::from(kib) << 10).unwrap_or(u32::MAX)
}

fn parse_index_rings(s: &str) -> Result<u32, String> {
    ring_flag(s, |g, n| g.index_rings = n)
}

fn parse_detail_rings(s: &str) -> Result<u32, String> {
    ring_flag(s, |g, n| g.detail_rings = n)
}

fn parse_index_ring_kib(s: &str) -> Result<u32, String> {
    ring_flag(s, |g, n| g.index_ring_bytes = kib_to_bytes(n))
}

fn parse_detail_ring_kib(s: &str) -> Result<u32, String> {
    ring_flag(s, |g, n| g.detail_ring_bytes = kib_to_bytes(n))
}

fn parse_fallback_records(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a record count"))?;
    if n != 0 {
        ada_registry::fallback::validate_records(n).map_err(str::to_owned)?;
    }
    Ok(n)
}

/// Parses the command line; a usage error is one line on stderr and exit code 2 (`--help` and
/// `--version` print as usual).
fn parse_cli() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // clap's first paragraph is the error (possibly over several lines); the rest is usage.
        let rendered = e.render().to_string();
        let first: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty())
            .collect();
        let message = first.join(" ");
        let message = message.trim_start_matches("error: ");
        eprintln!("ada: error: {} (see `ada --help`)", escape(message));
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Cmd::Trace {
            session,
            persist,
            duration,
            functions,
            agent_lib,
            command,
        } => match resolve_persist(&session, &persist, &[]) {
            Ok(plan) => {
                let preload = if functions {
                    match trace::find_agent_lib(agent_lib.as_deref()) {
                        Ok(lib) => Some(lib),
                        Err(e) => {
                            eprintln!("ada: error: {}", escape(&e.to_string()));
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    None
                };
                run_trace(&session, &plan, duration, preload, command)
            }
            Err(code) => return code,
        },
        Cmd::Attach {
            segment,
            output,
            duration,
            pids,
            drain_interval,
            drain_threads,
            warm_up,
            quiet,
        } => {
            let mut controller = ControllerBuilder::new().drain_interval(drain_interval);
            if let Some(workers) = drain_threads {
                controller = controller.drain_threads(workers);
            }
            if let Some(period) = warm_up {
                controller = controller.warm_up(period);
            }
            let options = ada_cli::attach::AttachOptions {
                segment,
                output,
                duration,
                pids,
                controller,
            };
            attach(&options, quiet)
        }
        Cmd::Inspect {
            trace_dir,
            limit,
            top,
        } => inspect(&trace_dir, limit, top),
        Cmd::Export {
            chrome: _,
            perfetto,
            trace_dir,
            output,
            select,
            no_size_warning,
        } => export(&trace_dir, &output, perfetto, &select, !no_size_warning),
        Cmd::Demo { session, persist } => {
            match resolve_persist(&session, &persist, &[DEMO_TRIGGER]) {
                Ok(plan) => demo(&session, &plan),
                Err(code) => return code,
            }
        }
        Cmd::Status { segment, clean } => status(segment.as_deref(), clean),
        Cmd::Workload(args) => return ExitCode::from(workload::run(&args).clamp(0, 255) as u8),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            // The one place errors reach the terminal: they may quote paths and names from a
            // trace, the traced command or a segment.
            eprintln!("ada: error: {}", escape(&msg));
            ExitCode::FAILURE
        }
    }
}

/// `ada demo`'s trigger when none is given: the workload's slow requests.
const DEMO_TRIGGER: &str = "symbol=slow_request";

/// Resolves the persistence flags and config file (`persist::resolve`) before anything runs: a
/// bad one is a usage error (exit 2). Warns about triggers that match everything.
fn resolve_persist(
    session: &SessionArgs,
    args: &persist::PersistArgs,
    default_triggers: &[&str],
) -> Result<persist::PersistPlan, ExitCode> {
    let ring_bytes =
        u64::from(session.detail_rings) * u64::from(kib_to_bytes(session.detail_ring_kib));
    let plan = persist::resolve(args, default_triggers, ring_bytes).map_err(|e| {
        // The message quotes the specs and the config file, which come from the user.
        eprintln!("ada: error: {} (see `ada --help`)", escape(&e.0));
        ExitCode::from(2)
    })?;
    for spec in &plan.universal {
        eprintln!(
            "ada: warning: trigger {} matches every symbol or message: every such event opens a window",
            escape(spec)
        );
    }
    Ok(plan)
}

fn run_trace(
    session: &SessionArgs,
    plan: &persist::PersistPlan,
    duration: Option<Duration>,
    preload: Option<PathBuf>,
    command: Vec<OsString>,
) -> Result<ExitCode, String> {
    if std::env::var_os(KEEP_STALE_ENV).is_none() {
        remove_stale_segments();
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt))
        .map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;
    let mut controller = ControllerBuilder::new();
    if let Some(workers) = session.drain_threads {
        controller = controller.drain_threads(workers);
    }
    if let Some(period) = plan.stability {
        controller = controller.stability(period);
    }
    if let Some(period) = plan.warm_up {
        controller = controller.warm_up(period);
    }
    if let Some(clock) = plan.clock {
        controller = controller.session_clock(clock);
    }
    let options = TraceOptions {
        command,
        output: session.output.clone(),
        duration,
        grace: Duration::from_secs(2),
        preload,
        controller: controller
            .capacity(session.threads)
            .geometry(ada_registry::RingGeometry {
                index_rings: session.index_rings,
                index_ring_bytes: kib_to_bytes(session.index_ring_kib),
                detail_rings: session.detail_rings,
                detail_ring_bytes: kib_to_bytes(session.detail_ring_kib),
            })
            .drain_interval(session.drain_interval)
            .fallback_records(session.fallback_records)
            .drop_policies(plan.drop_policies)
            .triggers(plan.triggers.clone())
            .persistence(match plan.windows {
                Some(windows) => Persistence::Windows(windows),
                None => Persistence::All,
            }),
    };
    let quiet = session.quiet;
    let tty = std::io::stderr().is_terminal();
    let outcome = match trace::run(&options, &interrupt, |p| match p {
        // The name `ada attach` needs should this controller die.
        trace::Progress::Ready { segment, epoch } if !quiet => {
            eprintln!(
                "ada: segment {} ready (epoch {epoch}); if this controller dies: ada attach {0}",
                escape(segment)
            );
        }
        trace::Progress::Live(elapsed, live) if !quiet => progress(elapsed, live, tty),
        _ => {}
    }) {
        Ok(outcome) => outcome,
        // The flags' parsers refuse these first; a setting the controller still refuses is a
        // usage error all the same (nothing was run or written).
        Err(
            e @ TraceError::Controller(
                ControllerError::Config(_)
                | ControllerError::DrainInterval(_)
                | ControllerError::DropPolicyEnv(_)
                | ControllerError::Clock(_),
            ),
        ) => {
            eprintln!("ada: error: {e} (see `ada --help`)");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.to_string()),
    };
    if tty && !quiet {
        eprint!("\r\x1b[K");
    }
    let report = &outcome.report;
    match outcome.ending {
        Ending::CommandExited => {}
        Ending::DurationElapsed => eprintln!("ada: duration elapsed; the command was stopped"),
        Ending::Interrupted => eprintln!("ada: interrupted; the command was stopped"),
    }
    print_report(report)?;
    let code = report.exit_code.unwrap_or(0);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn attach(options: &ada_cli::attach::AttachOptions, quiet: bool) -> Result<ExitCode, String> {
    use ada_cli::attach::AttachEnding;
    let interrupt = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt))
        .map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;
    let tty = std::io::stderr().is_terminal();
    let outcome = ada_cli::attach::run(options, &interrupt, |p| match p {
        trace::Progress::Ready { segment, epoch } if !quiet => {
            eprintln!(
                "ada: attached to segment {}: the drain is taken over, the registry ready again (epoch {epoch})",
                escape(segment)
            );
        }
        trace::Progress::Live(elapsed, live) if !quiet => progress(elapsed, live, tty),
        _ => {}
    })
    .map_err(|e| e.to_string())?;
    if tty && !quiet {
        eprint!("\r\x1b[K");
    }
    if outcome.any_process {
        eprintln!(
            "ada: no --pid given: every process's threads were accepted as verified (the trace is \
             named after pid {})",
            outcome.trace_pid
        );
    }
    match outcome.ending {
        AttachEnding::ProcessesExited => {
            eprintln!("ada: every traced process has exited")
        }
        AttachEnding::DurationElapsed => eprintln!("ada: duration elapsed"),
        AttachEnding::Interrupted => eprintln!("ada: interrupted"),
    }
    print_report(&outcome.report)?;
    Ok(ExitCode::SUCCESS)
}

/// The session's summary on stderr, with how to look at the trace; an error when the trace is
/// incomplete.
fn print_report(report: &ada_controller::Report) -> Result<(), String> {
    eprint!("{}", summary::render(report));
    let output = report.output.as_ref();
    if let Some(dir) = output.and_then(|o| o.dir.as_ref()) {
        eprintln!(
            "  look at it: ada inspect {0}   |   ada export --chrome {0} -o trace.json",
            escape_path(dir)
        );
    }
    if output.is_none_or(|o| !o.complete) {
        return Err("the trace is incomplete (see the warnings above)".into());
    }
    Ok(())
}

fn progress(elapsed: Duration, live: LiveSnapshot, tty: bool) {
    let secs = elapsed.as_secs();
    if secs < 2 || (!tty && !secs.is_multiple_of(5)) {
        return;
    }
    let line = format!(
        "ada: {secs} s, {} thread(s), {} events persisted, {:.1} MiB drained",
        live.live_threads,
        live.records,
        live.bytes as f64 / (1024.0 * 1024.0)
    );
    if tty {
        eprint!("\r\x1b[K{line}");
    } else {
        eprintln!("{line}");
    }
}

fn demo(session: &SessionArgs, plan: &persist::PersistPlan) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ada binary: {e}"))?;
    eprintln!("ada demo: tracing the bundled workload (4 threads handling requests)");
    let command = [
        exe.into_os_string(),
        "workload".into(),
        "--threads".into(),
        "4".into(),
        "--events".into(),
        workload::DEMO_EVENTS.to_string().into(),
        "--rate".into(),
        workload::DEMO_RATE.to_string().into(),
        "--slow-every".into(),
        workload::DEMO_SLOW_EVERY.to_string().into(),
    ]
    .to_vec();
    run_trace(session, plan, None, None, command)
}

/// Prints what the capture could not hold or trust as warnings on stderr (no effect on the exit
/// code: the trace files are whole).
fn capture_warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("ada: warning: {}", escape(w));
    }
}

/// Prints each damage as a warning on stderr, and the exit code for it ([`READ_EXIT_CODES`]).
fn damage_exit(damage: &[ada_cli::damage::Damage], what: &str) -> ExitCode {
    if damage.is_empty() {
        return ExitCode::SUCCESS;
    }
    for d in damage {
        // The damage may quote the trace (a write error, a reader error).
        eprintln!("ada: warning: {}", escape(&d.to_string()));
    }
    eprintln!(
        "ada: the trace is damaged or incomplete ({} problem(s) above): {what} holds only what \
         was readable",
        damage.len()
    );
    ExitCode::from(ada_cli::damage::EXIT_DAMAGED)
}

/// `dir` is a trace directory or a session directory holding one (`ada_atf::TraceDir::find`).
fn inspect(dir: &Path, limit: usize, top: Option<usize>) -> Result<ExitCode, String> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let options = ada_cli::inspect::InspectOptions { limit, top };
    let report =
        ada_cli::inspect::inspect_with(dir, &options, &mut out).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    capture_warn(&report.capture_warnings);
    Ok(damage_exit(&report.damage, "the summary"))
}

/// What `ada export` says of an export.
struct Exported {
    /// Trace events (Chrome) or packets (Perfetto) written.
    written: u64,
    what: &'static str,
    events_exported: u64,
    complete: bool,
    capture_warnings: Vec<String>,
    damage: Vec<ada_cli::damage::Damage>,
}

/// `dir` as for [`inspect`]; `perfetto`: Perfetto's protobuf format, else Chrome JSON; `select`
/// the part to export; `size_warning`: warn before writing when the export will be larger than
/// viewers load.
fn export(
    dir: &Path,
    output: &Path,
    perfetto: bool,
    select: &ada_cli::export::select::SelectArgs,
    size_warning: bool,
) -> Result<ExitCode, String> {
    use ada_cli::export::chrome::{CHROME_VIEWER_LIMIT, ChromeOptions, estimate_chrome};
    use ada_cli::export::perfetto::PerfettoOptions;
    let selection = select.selection().map_err(|e| e.to_string())?;
    if size_warning {
        // An unreadable trace is reported by the export itself.
        let warning = if perfetto {
            ada_cli::export::stream::StreamedTrace::open(dir)
                .ok()
                .and_then(|trace| {
                    ada_cli::export::perfetto::size_warning(
                        trace.manifest(),
                        trace.events_len(),
                        &selection,
                    )
                })
                .map(|w| format!("{w}; --no-size-warning silences this"))
        } else {
            estimate_chrome(dir, &selection).ok().and_then(|estimate| {
                estimate.warning(
                    CHROME_VIEWER_LIMIT,
                    "Chrome JSON",
                    "export Perfetto's format instead (ada export --perfetto), or less of the trace (--from, --to, --threads); --no-size-warning silences this",
                )
            })
        };
        if let Some(w) = warning {
            eprintln!("ada: warning: {w}");
        }
    }
    // Write next to the destination and rename, so a failed export never leaves a partial file
    // under the requested name. The temporary file is created exclusively (`O_EXCL`, never
    // through a link) under an unpredictable name, so a link planted in a shared directory is
    // never written through; the rename replaces the destination itself, never a link's target.
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut prefix = output.file_name().unwrap_or_default().to_os_string();
    prefix.push(".partial.");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(parent)
        .map_err(|e| {
            format!(
                "cannot create a temporary file in {}: {e}",
                escape_path(parent)
            )
        })?;
    let mut w = std::io::BufWriter::new(tmp);
    let result = if perfetto {
        let options = PerfettoOptions {
            selection,
            progress: true,
        };
        ada_cli::export::perfetto::export_perfetto_with(dir, &mut w, &options).map(|s| Exported {
            written: s.packets,
            what: "packets",
            events_exported: s.events_exported,
            complete: s.complete,
            capture_warnings: s.capture_warnings,
            damage: s.damage,
        })
    } else {
        let options = ChromeOptions {
            selection,
            progress: true,
        };
        ada_cli::export::chrome::export_chrome_with(dir, &mut w, &options).map(|s| Exported {
            written: s.trace_events,
            what: "trace events",
            events_exported: s.events_exported,
            complete: s.complete,
            capture_warnings: s.capture_warnings,
            damage: s.damage,
        })
    };
    // Dropping the temporary file on an error removes it.
    let tmp = match (result, w.into_inner()) {
        (Ok(stats), Ok(tmp)) => match tmp.as_file().sync_all() {
            Ok(()) => (stats, tmp),
            Err(e) => return Err(format!("writing {}: {e}", output.display())),
        },
        (Err(e), _) => return Err(e.to_string()),
        (_, Err(e)) => return Err(format!("writing {}: {}", output.display(), e.error())),
    };
    let (stats, tmp) = tmp;
    tmp.persist(output).map_err(|e| {
        format!(
            "cannot move the export to {}: {}",
            output.display(),
            e.error
        )
    })?;
    eprintln!(
        "ada: wrote {} ({} {} from {} ATF events{}); open it in the Perfetto UI{}",
        escape_path(output),
        stats.written,
        stats.what,
        stats.events_exported,
        if stats.complete {
            ""
        } else {
            ", trace NOT complete"
        },
        if perfetto { "" } else { " or chrome://tracing" }
    );
    capture_warn(&stats.capture_warnings);
    Ok(damage_exit(&stats.damage, "the export"))
}

/// Set (to anything) to keep `ada trace`/`ada demo` from removing stale segments at start
/// (`ada status --clean` still removes them): for looking at a dead controller's segment, and
/// for test suites that run many `ada` processes side by side.
const KEEP_STALE_ENV: &str = "ADA_KEEP_STALE_SEGMENTS";

/// Removes the segments left by controllers that are gone (`ada_shm::remove_stale_segments`),
/// one line on stderr for each, except those a live process still uses (a traced program that
/// outlived its controller, whose trace `ada attach` continues; or an `ada attach` draining it).
/// Returns how many
/// could not be removed.
fn remove_stale_segments() -> usize {
    let mut failed = 0;
    let removable = |s: &ada_shm::StaleSegment| {
        let Some(pid) = recording_process(&s.name) else {
            return true;
        };
        let name = escape(s.name.as_str());
        eprintln!(
            "ada: kept segment {name} of dead controller pid {}: process {pid} still uses it \
             (continue its trace with: ada attach {name})",
            s.pid
        );
        false
    };
    for (s, result) in ada_shm::remove_stale_segments_where(removable) {
        let name = escape(s.name.as_str());
        match result {
            Ok(()) => eprintln!(
                "ada: removed stale segment {name} of dead controller pid {}",
                s.pid
            ),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "ada: cannot remove stale segment {name}: {}",
                    escape(&e.to_string())
                );
            }
        }
    }
    failed
}

/// A live process still using segment `name` (the segment is validated as untrusted by the
/// attach; an unreadable one has none): one holding a slot in its registry, or the holder of
/// its drain claim (an `ada attach` draining it). Pids 0 and 1 never count (init is always
/// alive; a segment naming it pins nothing).
fn recording_process(name: &ada_shm::SegmentName) -> Option<u32> {
    let options = ada_shm::AttachOptions { allow_stale: true };
    let registry = ada_registry::Registry::attach(name, options).ok()?;
    let alive = |pid: u32| pid > 1 && ada_shm::process::exists(pid);
    let drain = registry.control().drain_owner();
    if alive(drain) {
        return Some(drain);
    }
    registry
        .view()
        .live_slots()
        .map(|slot| slot.owner.pid)
        .find(|&pid| alive(pid))
}

fn status(segment: Option<&str>, clean: bool) -> Result<ExitCode, String> {
    use ada_shm::{AttachOptions, SegmentName, SegmentState};
    if clean {
        return match remove_stale_segments() {
            0 => Ok(ExitCode::SUCCESS),
            n => Err(format!("{n} stale segment(s) could not be removed")),
        };
    }
    let Some(raw) = segment else {
        let found = ada_shm::list_segments();
        if found.is_empty() {
            println!("no ADA segments");
        }
        let mut stale = 0;
        for s in found {
            let state = match &s.state {
                SegmentState::Live => "live".to_owned(),
                SegmentState::Stale => {
                    stale += 1;
                    "stale (its controller is gone)".to_owned()
                }
                SegmentState::OtherUser { uid } => {
                    format!("controller gone; owned by uid {uid}, left alone")
                }
                SegmentState::Invalid { reason } => {
                    format!("controller gone; left alone: {}", escape(reason))
                }
                _ => "unknown".to_owned(),
            };
            println!(
                "{}  controller pid {}  {state}",
                escape(s.name.as_str()),
                s.pid
            );
        }
        if stale > 0 {
            println!("{stale} stale segment(s): remove them with `ada status --clean`");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let name = SegmentName::parse(raw).map_err(|e| format!("\"{raw}\": {e}"))?;
    let registry = ada_registry::Registry::attach(&name, AttachOptions { allow_stale: true })
        .map_err(|e| format!("{raw}: {e}"))?;
    let control = registry.control().snapshot();
    let mode = match control.mode {
        Some(ada_registry::RegistryMode::GlobalOnly) => "fallback only",
        Some(ada_registry::RegistryMode::DualWrite) => "warm-up",
        Some(ada_registry::RegistryMode::PerThreadOnly) => "steady",
        None => "unknown",
    };
    // The heartbeat's age on CLOCK_MONOTONIC (the controller stamps it with that clock,
    // whatever agents stamp events with).
    let age = match control.heartbeat_ns {
        0 => "never".to_owned(),
        beat => format!(
            "{:.1} ms ago",
            ada_shm::clock::MonotonicClock::read().saturating_sub(beat) as f64 / 1e6
        ),
    };
    println!(
        "segment {}: {} slots, ready {}, epoch {}, mode {mode}, heartbeat {} ns ({age}), \
         controller pid {}, drain held by pid {}",
        escape(raw),
        registry.capacity(),
        control.ready,
        control.epoch,
        control.heartbeat_ns,
        registry.control().controller_pid(),
        registry.control().drain_owner()
    );
    let a = registry.control().agent_stats();
    let [startup, warm_up, steady, stalled] = a.mode_entries;
    println!(
        "  agents (their own numbers): {} mode change(s) (entries: startup {startup}, warm-up \
         {warm_up}, steady {steady}, stalled {stalled}), {} dormancy(-ies), {} re-attach(es)",
        a.mode_transitions, a.dormancies, a.reattaches
    );
    let settings = registry.backpressure();
    let counters = registry.header().counters();
    println!(
        "  drop policies: {} (stability {:.1} ms); events of threads with no slot (no_slot): \
         index {}, detail {}",
        settings.policies,
        settings.stability_ns as f64 / 1e6,
        counters.unregistered_by_lane[0],
        counters.unregistered_by_lane[1]
    );
    println!(
        "{}",
        ada_cli::live_lanes::fallback_line(registry.fallback().as_ref())
    );
    println!(
        "  slot  state    pid      thread id   index written/dropped   detail written/dropped"
    );
    for s in registry.view().live_slots() {
        let i = s.lanes.index_lane().counters();
        let d = s.lanes.detail_lane().counters();
        println!(
            "  {:>4}  {:<8} {:<8} {:<11} {:>12}/{:<10} {:>12}/{}",
            s.index,
            format!("{:?}", s.state),
            s.owner.pid,
            s.owner.thread_id,
            i.events_written,
            i.events_dropped,
            d.events_written,
            d.events_dropped
        );
        for (name, lane) in [
            ("index", s.lanes.index_lane()),
            ("detail", s.lanes.detail_lane()),
        ] {
            // The thread may be storing its counters right now (the total, then each cause):
            // a read that finds them disagreeing is taken again before anything is said.
            let mut counters = lane.counters();
            if counters.contradicts() {
                counters = lane.counters();
            }
            println!(
                "{}",
                ada_cli::live_lanes::lane_line(name, &counters, &lane.state_word())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
