//! `ada trace`: run a command under a controller and write its trace.
//!
//! Order of events: the settings are validated and the segment is created, the output directory
//! is checked (creating `ada_traces/` and any missing parents), the controller goes into
//! standby (it claims the drain, publishes `registry_ready` in the warm-up mode and ticks the
//! heartbeat: [`ada_controller::Standby`]), then the command is spawned with `ADA_SHM` naming
//! the segment — so the registry is ready before the command's first instruction, and no event
//! of it waits for a drain that has not started — the segment is announced
//! ([`Progress::Ready`]), and finally the trace directory is created for its pid and the drain
//! starts draining into it. If the run fails before that (the command cannot be spawned,
//! say), the directories this run created are removed again when still empty, so a run that
//! traced nothing leaves nothing behind; if the drain cannot start after the spawn, the command
//! is killed. Tracing ends when the command exits, when `duration` elapses or when
//! `interrupt` is raised (SIGINT): in the last two cases the command is asked to stop (SIGINT
//! or SIGTERM) and killed if it has not exited after a grace period. Then the final drain runs
//! and the trace is finalized. A command killed by a signal still gets a finalized, readable
//! trace holding everything its threads had committed.
//!
//! With [`TraceOptions::preload`] (`ada trace --functions`), the command runs with that library
//! appended to `LD_PRELOAD`: the C agent ([`find_agent_lib`]), whose
//! `__cyg_profile_func_enter/exit` record every function of a program compiled with
//! `-finstrument-functions`. Its children inherit `LD_PRELOAD` and `ADA_SHM` alike.

use ada_controller::{ControllerBuilder, ControllerError, LiveSnapshot, Report, SessionInfo};

/// What [`run`] tells its caller as it goes.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The command was spawned, the registry having been ready (the controller in standby)
    /// since before the spawn: the segment name (the command's `ADA_SHM`; what `ada attach`
    /// takes should this controller die) and the epoch it published.
    Ready {
        /// The segment.
        segment: &'a str,
        /// The registry epoch.
        epoch: u32,
    },
    /// About once a second while tracing: the time since the drain started and live numbers.
    Live(Duration, LiveSnapshot),
}
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Where `ada_traces/` goes.
    pub output: PathBuf,
    /// Stop tracing (and the command) after this long.
    pub duration: Option<Duration>,
    /// How long a command asked to stop may take before it is killed.
    pub grace: Duration,
    /// Segment and drain settings.
    pub controller: ControllerBuilder,
    /// A shared library to preload into the command (`LD_PRELOAD`, appended to the one it
    /// inherits): the C agent for `--functions` ([`find_agent_lib`]). `None`: nothing is
    /// preloaded.
    pub preload: Option<PathBuf>,
}

/// The file name of the C agent library (`ada-agent-c`'s shared library), which `ada trace
/// --functions` preloads.
pub const AGENT_LIB_NAME: &str = "libada_agent_c.so";

/// The environment variable naming the C agent library for `ada trace --functions` when
/// `--agent-lib` is not given.
pub const ENV_AGENT_LIB: &str = "ADA_AGENT_LIB";

/// The C agent library for `ada trace --functions`: `explicit` (`--agent-lib`) if given, else
/// the path in [`ENV_AGENT_LIB`] if set, else [`AGENT_LIB_NAME`] in the directory of the
/// running executable (`ada` ships with it there). The first of these that is given is the
/// only one looked at; it must be a file and is made absolute (the command may change
/// directory). A path that `LD_PRELOAD` would split (one holding a space or a colon) is
/// refused.
pub fn find_agent_lib(explicit: Option<&Path>) -> Result<PathBuf, TraceError> {
    let env = std::env::var_os(ENV_AGENT_LIB).filter(|v| !v.is_empty());
    let (candidate, source) = match (explicit, env) {
        (Some(path), _) => (path.to_path_buf(), "--agent-lib"),
        (None, Some(path)) => (PathBuf::from(path), ENV_AGENT_LIB),
        (None, None) => {
            let exe = std::env::current_exe().map_err(|e| TraceError::AgentLib {
                path: PathBuf::from(AGENT_LIB_NAME),
                reason: format!("cannot locate the running executable: {e}"),
            })?;
            let dir = exe.parent().unwrap_or(Path::new("/"));
            (dir.join(AGENT_LIB_NAME), "next to the ada executable")
        }
    };
    let not_found = |reason: String| TraceError::AgentLib {
        path: candidate.clone(),
        reason,
    };
    let absolute =
        std::path::absolute(&candidate).map_err(|e| not_found(format!("{source}: {e}")))?;
    match absolute.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_found(format!("{source}: not a file"))),
        Err(e) => return Err(not_found(format!("{source}: {e}"))),
    }
    if absolute
        .to_str()
        .is_none_or(|text| text.contains([' ', ':']))
    {
        return Err(not_found(format!(
            "{source}: LD_PRELOAD cannot hold a path with a space, a colon or bytes that are not UTF-8"
        )));
    }
    Ok(absolute)
}

/// `LD_PRELOAD` for the command: `lib` appended to `inherited` (kept as it is, first, so what
/// the user preloads still comes first).
pub fn preload_value(inherited: Option<&std::ffi::OsStr>, lib: &Path) -> OsString {
    match inherited {
        Some(old) if !old.is_empty() => {
            let mut v = old.to_os_string();
            v.push(":");
            v.push(lib.as_os_str());
            v
        }
        _ => lib.as_os_str().to_os_string(),
    }
}

/// Why `ada trace` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// No command was given.
    #[error("no command to trace (usage: ada trace [OPTIONS] -- COMMAND [ARGS...])")]
    NoCommand,
    /// The output directory cannot hold a trace.
    #[error("output directory {}: {source}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// `ada_traces` in the output directory is a symbolic link (or not a directory). It is
    /// never followed, so a link planted in a shared directory cannot redirect the trace.
    #[error("refusing to use {}: it is a symbolic link or not a directory", path.display())]
    OutputLink {
        /// The `ada_traces` path.
        path: PathBuf,
    },
    /// The command could not be started. (The command is shown as given; the `ada` binary
    /// escapes error messages where it prints them.)
    #[error("cannot run \"{command}\": {source}")]
    Spawn {
        /// The command.
        command: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The C agent library for `--functions` cannot be used.
    #[error(
        "cannot preload the agent library {} ({reason}); build it with `cargo build --release -p ada-agent-c` and put {AGENT_LIB_NAME} next to ada, or name it with --agent-lib PATH or {ENV_AGENT_LIB}",
        path.display()
    )]
    AgentLib {
        /// The path tried.
        path: PathBuf,
        /// Why it cannot be used (and where the path came from).
        reason: String,
    },
    /// The controller failed.
    #[error(transparent)]
    Controller(#[from] ControllerError),
}

/// How tracing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The command exited by itself.
    CommandExited,
    /// `duration` elapsed.
    DurationElapsed,
    /// Interrupted (SIGINT).
    Interrupted,
}

/// The result of a traced run.
#[derive(Debug)]
pub struct TraceOutcome {
    /// The accounting and the sink's output.
    pub report: Report,
    /// How it ended.
    pub ending: Ending,
    /// The segment that was used.
    pub segment: String,
}

/// Checks that `dir` can hold traces: it is created if missing, `ada_traces` in it is created
/// if missing and must be a real directory (not a symbolic link), and a probe file is written
/// there under an unpredictable name.
pub fn check_output_dir(dir: &Path) -> Result<(), TraceError> {
    prepare_output_dir(dir).map(CreatedDirs::keep)
}

/// Directories a run created, deepest last. Dropped without [`keep`](CreatedDirs::keep), it
/// removes them again, deepest first, each only if it is still empty (`remove_dir` refuses
/// anything else), so nothing that existed before the run, and nothing another run put there
/// meanwhile, is ever deleted.
#[derive(Debug)]
pub(crate) struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    /// The run went ahead: the directories stay.
    pub(crate) fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// [`check_output_dir`], returning the directories it created.
pub(crate) fn prepare_output_dir(dir: &Path) -> Result<CreatedDirs, TraceError> {
    let err = |source| TraceError::Output {
        path: dir.to_path_buf(),
        source,
    };
    let traces = dir.join(ada_atf::writer::TRACES_DIR);
    // The missing directories, deepest first: `traces` and those of its ancestors that do not
    // exist yet (an empty ancestor is the current directory of a relative path).
    let mut missing: Vec<PathBuf> = traces
        .ancestors()
        .take_while(|a| {
            !a.as_os_str().is_empty()
                && matches!(a.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        })
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    // `ada_traces` itself is made with one `mkdir` and must then be a real directory: a link
    // planted there is refused, never followed.
    let result = ada_atf::writer::traces_dir(dir);
    // Whatever part of `missing` exists now was created by this run, even if a later step
    // failed; the guard removes it again on failure.
    let created = CreatedDirs(
        missing
            .into_iter()
            .filter(|d| d.symlink_metadata().is_ok_and(|m| m.is_dir()))
            .collect(),
    );
    match result {
        Ok(_) => {}
        Err(ada_atf::WriteError::NotARealDirectory(path)) => {
            return Err(TraceError::OutputLink { path });
        }
        Err(ada_atf::WriteError::Io { source, .. }) => return Err(err(source)),
        Err(e) => return Err(err(std::io::Error::other(e))),
    }
    // The probe is created exclusively under an unpredictable name (so a planted link is never
    // opened) and removed when dropped.
    let probe = tempfile::Builder::new()
        .prefix(".ada_probe_")
        .tempfile_in(&traces)
        .map_err(err)?;
    drop(probe);
    Ok(created)
}

/// Runs `options.command` traced. `progress` is told the segment once the command was spawned
/// (the registry was ready before) and then about once a second with live numbers.
pub fn run(
    options: &TraceOptions,
    interrupt: &AtomicBool,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<TraceOutcome, TraceError> {
    let (program, args) = options.command.split_first().ok_or(TraceError::NoCommand)?;
    // The settings are validated (and the segment created) before anything is written under
    // the output directory.
    let controller = options
        .controller
        .clone()
        .output_dir(&options.output)
        .create()?;
    let created = prepare_output_dir(&options.output)?;
    let segment = controller.segment_name().to_owned();
    // Ready (and the heartbeat ticking) before the command exists.
    let standby = controller.standby()?;
    // The command's orphans (a background job, a double fork) are reparented here rather than
    // to init, so the drain can still verify their threads as the session's descendants
    // (`ProcessTrust::SessionProcess`); `reap_adopted` reaps them when they exit. Best effort:
    // without it, an orphan's threads are reported as unverifiable identities.
    let _ = rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(
        rustix::process::getpid().as_raw_nonzero().get(),
    ));
    let mut command = Command::new(program);
    command.args(args).env(ada_shm::ENV_SEGMENT, &segment);
    if let Some(lib) = &options.preload {
        let inherited = std::env::var_os("LD_PRELOAD");
        command.env("LD_PRELOAD", preload_value(inherited.as_deref(), lib));
    }
    let mut child = command.spawn().map_err(|source| TraceError::Spawn {
        command: program.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child.id();
    // Announced once the command runs (a command that cannot start is one error line).
    progress(Progress::Ready {
        segment: &segment,
        epoch: standby.epoch(),
    });
    let session = SessionInfo::new(pid)
        .with_executable(resolve_executable(program))
        .with_args(args.iter().map(|a| a.to_string_lossy().into_owned()));
    let running = match standby.start_default(session) {
        Ok(r) => r,
        Err(e) => {
            stop_child(&mut child, rustix::process::Signal::KILL, Duration::ZERO);
            return Err(e.into());
        }
    };
    created.keep();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let (status, ending) = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break (Some(status), Ending::CommandExited);
        }
        reap_adopted(pid);
        // Relaxed: a flag set by the signal handler; it publishes nothing else.
        if interrupt.load(Ordering::Relaxed) {
            let s = stop_child(&mut child, rustix::process::Signal::INT, options.grace);
            break (s, Ending::Interrupted);
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            let s = stop_child(&mut child, rustix::process::Signal::TERM, options.grace);
            break (s, Ending::DurationElapsed);
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(Progress::Live(started.elapsed(), running.live()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    running.process_exited(pid);
    let report = running.stop(status.map(exit_code))?;
    Ok(TraceOutcome {
        report,
        ending,
        segment,
    })
}

/// Reaps every exited child except `main` (whose status `Child::try_wait` collects): the
/// orphans of the traced command that this process adopted as a child subreaper. Without it
/// they would stay zombies, and the drain would not see their processes die.
fn reap_adopted(main: u32) {
    loop {
        // SAFETY: an all-zero `siginfo_t` is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // Peek (WNOWAIT) at one exited child without reaping it, so the main child is left for
        // `Child::try_wait`.
        // SAFETY: `info` is a valid, writable `siginfo_t`; P_ALL ignores the id argument.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        let child = if r == 0 {
            // SAFETY: after a successful `waitid` with WEXITED the kernel filled `si_pid` (0
            // when no child had exited: WNOHANG).
            unsafe { info.si_pid() }
        } else {
            0
        };
        if child <= 0 || child as u32 == main {
            return;
        }
        let Some(pid) = rustix::process::Pid::from_raw(child) else {
            return;
        };
        if !matches!(
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG),
            Ok(Some(_))
        ) {
            return;
        }
    }
}

/// The shell's convention: the exit code, or 128 + the signal that killed the process.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Sends `signal`, waits up to `grace`, then kills and reaps. Returns the exit status if the
/// child could be reaped.
fn stop_child(
    child: &mut Child,
    signal: rustix::process::Signal,
    grace: Duration,
) -> Option<ExitStatus> {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The command as a path: itself if it names a file, else the first match on `PATH`.
fn resolve_executable(program: &std::ffi::OsStr) -> String {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.to_string_lossy().into_owned();
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(p))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_is_appended_to_what_the_command_inherits() {
        let lib = Path::new("/opt/ada/libada_agent_c.so");
        assert_eq!(preload_value(None, lib), lib.as_os_str());
        assert_eq!(preload_value(Some("".as_ref()), lib), lib.as_os_str());
        assert_eq!(
            preload_value(Some("/usr/lib/libfoo.so".as_ref()), lib),
            "/usr/lib/libfoo.so:/opt/ada/libada_agent_c.so"
        );
    }

    #[test]
    fn an_explicit_agent_library_must_be_a_file_ld_preload_can_hold() {
        let dir = tempfile::tempdir().unwrap();
        let reason = |path: &Path| match find_agent_lib(Some(path)) {
            Err(TraceError::AgentLib { path: p, reason }) => {
                assert_eq!(p, path);
                reason
            }
            other => panic!("{path:?}: {other:?}"),
        };
        assert!(reason(&dir.path().join("missing.so")).contains("--agent-lib"));
        assert!(reason(dir.path()).contains("not a file"));
        let colon = dir.path().join("a:b.so");
        std::fs::write(&colon, b"").unwrap();
        assert!(reason(&colon).contains("LD_PRELOAD"));
        let spaced = dir.path().join("a b.so");
        std::fs::write(&spaced, b"").unwrap();
        assert!(reason(&spaced).contains("LD_PRELOAD"));
        let good = dir.path().join("libada_agent_c.so");
        std::fs::write(&good, b"").unwrap();
        assert_eq!(find_agent_lib(Some(&good)).unwrap(), good);
        // A relative path is made absolute (the command may change directory).
        let cwd = std::env::current_dir().unwrap();
        let relative = Path::new("Cargo.toml");
        assert_eq!(find_agent_lib(Some(relative)).unwrap(), cwd.join(relative));
        let error = TraceError::AgentLib {
            path: good.clone(),
            reason: "r".into(),
        }
        .to_string();
        assert!(
            error.contains("--agent-lib PATH") && error.contains(ENV_AGENT_LIB),
            "{error}"
        );
    }
}
