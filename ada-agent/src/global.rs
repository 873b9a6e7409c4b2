//! The process-wide agent: attached lazily from `ADA_SHM` on first use, or installed explicitly.
//!
//! With no controller (`ADA_SHM` unset, or attach failed) the global agent is `None` and every
//! recording call returns after one thread-local load and one atomic load (of `UNTRACED`,
//! inline, once the first call has resolved the agent).

use crate::agent::{Agent, AgentError};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static GLOBAL: OnceLock<Option<Agent>> = OnceLock::new();
static ATTACH_ERROR: OnceLock<String> = OnceLock::new();
static TRIGGER_ERROR: OnceLock<String> = OnceLock::new();
/// Set once `GLOBAL` has resolved to `None`, which it then stays.
static UNTRACED: AtomicBool = AtomicBool::new(false);

/// `false` once the process is known not to be traced: the recording calls' inline early out.
#[inline(always)]
pub(crate) fn maybe_traced() -> bool {
    // Relaxed: a hint. It is only ever set after `GLOBAL` resolved to `None` (which never
    // changes), and a stale `false` merely takes the slow path, which reads `GLOBAL` itself.
    !UNTRACED.load(Ordering::Relaxed)
}

/// The process's agent, attaching from `ADA_SHM` on the first call. `None` when the process is
/// not traced (or could not attach: see [`attach_error`]).
#[inline]
pub fn global() -> Option<&'static Agent> {
    let agent = GLOBAL.get_or_init(init_from_env).as_ref();
    if agent.is_none() {
        // Relaxed: see `maybe_traced`.
        UNTRACED.store(true, Ordering::Relaxed);
    }
    agent
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
            Ok(installed.as_ref().expect("just installed"))
        }
        Some(agent) => Err(agent),
    }
}
