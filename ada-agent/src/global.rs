//! The process-wide agent: attached lazily from `ADA_SHM` on first use, or installed explicitly.
//!
//! With no controller (`ADA_SHM` unset, or attach failed) the global agent is `None` and every
//! recording call returns after one thread-local load and one atomic load (of `QUIET`, inline,
//! once the first call has resolved the agent). A **dormant** agent (its controller is gone:
//! [`crate::mode::dormant`]) takes the same early out, plus one thread-local increment that
//! counts the event.
//!
//! The global agent's **mode watcher** is a thread (`ada-agent-mode`, started with the agent,
//! and again in a `fork` child at its first recording slow path) that ticks the agent's mode
//! machine every [`ModeConfig::period_ns`](crate::mode::ModeConfig::period_ns) and sets or
//! clears the dormant early out. If it cannot be started, the mode is evaluated on recording
//! slow paths instead (and an idle process notices a restarted controller late).

use crate::agent::{Agent, AgentError};
use ada_shm::clock::MonotonicClock;
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

static GLOBAL: OnceLock<Option<Agent>> = OnceLock::new();
static ATTACH_ERROR: OnceLock<String> = OnceLock::new();
static TRIGGER_ERROR: OnceLock<String> = OnceLock::new();

/// [`QUIET`]: recording may happen.
const LIVE: u8 = 0;
/// [`QUIET`]: `GLOBAL` resolved to `None`, which it then stays.
pub(crate) const UNTRACED: u8 = 1;
/// [`QUIET`]: the agent is dormant (until its watcher sees a new epoch).
pub(crate) const DORMANT: u8 = 2;
/// Why recording calls return early: [`LIVE`], [`UNTRACED`] or [`DORMANT`].
static QUIET: AtomicU8 = AtomicU8::new(LIVE);

/// Watcher states: none in this process, running, or could not be started.
const NO_WATCHER: u8 = 0;
const WATCHING: u8 = 1;
const WATCHER_FAILED: u8 = 2;
static WATCHER: AtomicU8 = AtomicU8::new(NO_WATCHER);

/// [`LIVE`] unless the process is known not to be traced or its agent is dormant: the recording
/// calls' inline early out.
#[inline(always)]
pub(crate) fn quiet() -> u8 {
    // Relaxed: a hint. `UNTRACED` is only set after `GLOBAL` resolved to `None` (which never
    // changes); `DORMANT` is set and cleared by the watcher from the mode it decided, and a
    // stale value either takes the slow path (which decides from the agent itself) or counts
    // one event as lost while the agent was leaving dormancy.
    QUIET.load(Ordering::Relaxed)
}

/// The process's agent, attaching from `ADA_SHM` on the first call. `None` when the process is
/// not traced (or could not attach: see [`attach_error`]).
///
/// A call made on a thread while that same thread is attaching (from a signal handler, or from
/// an allocator or other code compiled with `-finstrument-functions` that the attach itself
/// runs) returns `None` instead of waiting for itself: that event is not recorded, and there
/// is no agent yet to count it in.
#[inline]
pub fn global() -> Option<&'static Agent> {
    match GLOBAL.get() {
        Some(agent) => {
            if agent.is_none() {
                // Relaxed: see `quiet`.
                QUIET.store(UNTRACED, Ordering::Relaxed);
            }
            agent.as_ref()
        }
        None => resolve(),
    }
}

/// [`global`]'s first call (per thread, until the agent is resolved): attaches, unless this
/// thread is attaching already.
#[cold]
#[inline(never)]
fn resolve() -> Option<&'static Agent> {
    thread_local! {
        /// Whether this thread is inside `GLOBAL`'s initialisation (re-entering it would wait
        /// for itself forever).
        static RESOLVING: Cell<bool> = const { Cell::new(false) };
    }
    // A cell without a destructor is always accessible; `unwrap_or(true)` is belt and braces.
    if RESOLVING.try_with(|r| r.replace(true)).unwrap_or(true) {
        return None;
    }
    let agent = GLOBAL.get_or_init(init_from_env).as_ref();
    let _ = RESOLVING.try_with(|r| r.set(false));
    if agent.is_none() {
        // Relaxed: see `quiet`.
        QUIET.store(UNTRACED, Ordering::Relaxed);
    }
    agent
}

/// Starts the global agent's mode watcher unless one runs in this process (or could not be
/// started). Returns whether one runs.
pub(crate) fn ensure_watcher(agent: &'static Agent) -> bool {
    // Acquire: pairs with the Release below; a thread that sees WATCHING sees a started one.
    match WATCHER.load(Ordering::Acquire) {
        WATCHING => return true,
        WATCHER_FAILED => return false,
        _ => {}
    }
    // AcqRel: one caller wins the right to start it; Acquire on failure reads the winner's
    // outcome.
    if WATCHER
        .compare_exchange(NO_WATCHER, WATCHING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return true;
    }
    let period = Duration::from_nanos(agent.mode_config().period_ns.max(1_000_000));
    let started = std::thread::Builder::new()
        .name("ada-agent-mode".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                tick_global(agent);
            }
        });
    if let Err(e) = started {
        eprintln!(
            "ada-agent: cannot start the mode watcher thread ({e}); modes are evaluated on slow paths"
        );
        // Release: pairs with the Acquire loads above.
        WATCHER.store(WATCHER_FAILED, Ordering::Release);
        return false;
    }
    true
}

/// Ticks the global agent's mode machine now and sets the dormant early out from it (while the
/// tick holds its turn, so concurrent ticks leave the early out as the last of them decided).
pub(crate) fn tick_global(agent: &Agent) {
    agent.tick_mode_with(MonotonicClock::read(), |dormant| {
        // Without a watcher nothing would tick a dormant process again (its calls take the
        // early out), so it never goes dormant.
        // Acquire: pairs with `ensure_watcher`'s Release.
        let dormant = dormant && WATCHER.load(Ordering::Acquire) == WATCHING;
        let want = if dormant { DORMANT } else { LIVE };
        // Relaxed CAS: only ever moves between LIVE and DORMANT (never away from UNTRACED,
        // which a traced process never has); see `quiet` for why a stale value is harmless.
        let _ = QUIET.compare_exchange(
            if dormant { LIVE } else { DORMANT },
            want,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    });
}

/// This process's id, read once (and again in a `fork` child: [`forget_watcher`] clears it).
pub(crate) fn process_id() -> u32 {
    // Relaxed (both): a cache of a value the kernel owns; racing readers store the same one.
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// [`process_id`]'s cache (0: not read yet).
static PID: AtomicU32 = AtomicU32::new(0);

/// `fork` child: the parent's watcher thread does not exist here, nor does any tick it was
/// running; the process id is new; and the child is not dormant for its parent's controller
/// (it evaluates the mode afresh at its first recording slow path, which starts its watcher).
pub(crate) fn forget_watcher() {
    // Relaxed (all): the child is single-threaded while its fork handler runs.
    WATCHER.store(NO_WATCHER, Ordering::Relaxed);
    PID.store(0, Ordering::Relaxed);
    let _ = QUIET.compare_exchange(DORMANT, LIVE, Ordering::Relaxed, Ordering::Relaxed);
    if let Some(Some(agent)) = GLOBAL.get() {
        agent.driver().forget_tick_after_fork();
    }
}

#[cold]
fn init_from_env() -> Option<Agent> {
    match Agent::from_env() {
        Ok(agent) => {
            if let Some(msg) = agent.trigger_error() {
                // The triggers cannot work: say so once (the program is traced, explicit marks
                // still work) and keep the reason for `trigger_error`.
                eprintln!("ada-agent: triggers disabled: {msg}");
                let _ = TRIGGER_ERROR.set(msg.to_owned());
            }
            crate::tls::install_fork_handler();
            Some(agent)
        }
        Err(AgentError::NotTraced) => None,
        Err(e) => {
            // Tracing was requested but cannot work: say so once on stderr (the traced program
            // keeps running untraced) and keep the reason for `attach_error`.
            let msg = e.to_string();
            eprintln!("ada-agent: tracing disabled: {msg}");
            let _ = ATTACH_ERROR.set(msg);
            None
        }
    }
}

/// Why `ADA_SHM` was set but the agent could not attach, if that happened.
pub fn attach_error() -> Option<&'static str> {
    ATTACH_ERROR.get().map(String::as_str)
}

/// Why the controller's published triggers could not be used by the agent attached from
/// `ADA_SHM`, if that happened (it then marks nothing but explicit marks). For an agent made
/// otherwise, see [`Agent::trigger_error`].
pub fn trigger_error() -> Option<&'static str> {
    TRIGGER_ERROR.get().map(String::as_str)
}

/// Installs `agent` as the process's agent (instead of attaching from `ADA_SHM`). Fails, handing
/// the agent back, if the global agent was already set or resolved.
pub fn install(agent: Agent) -> Result<&'static Agent, Agent> {
    let mut slot = Some(agent);
    let installed = GLOBAL.get_or_init(|| slot.take());
    match slot {
        // Ours was taken, so `installed` is it.
        None => {
            crate::tls::install_fork_handler();
            let agent = installed.as_ref().expect("just installed");
            ensure_watcher(agent);
            Ok(agent)
        }
        Some(agent) => Err(agent),
    }
}
