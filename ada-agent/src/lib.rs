//! `ada-agent`: the traced process's side of the ADA tracer.
//!
//! What it is:
//! - [`Agent`]: attaches to the controller's shared-memory segment named by `ADA_SHM` (set by
//!   `ada trace`) or an explicit name, validating it as untrusted input.
//! - The recording API: [`enter`] / [`exit`] (or the [`span`] guard) write 32-byte records to
//!   the calling thread's **index lane**; [`detail`], [`message`] and [`mark`] write rich
//!   records to its **detail lane**. Each names a [`Callsite`] (declared `static`, or with
//!   [`callsite!`]) whose name is registered once per process in the segment's symbol table,
//!   so the controller can name the events.
//! - Lazy per-thread registration: a thread's first event claims a slot in the registry
//!   (lock-free) and caches its writers in thread-local storage; later events cost one TLS load,
//!   a clock read and a 32-byte store. Thread exit hands the slot to the drain.
//! - With no controller (`ADA_SHM` unset) every call is a near-free no-op.
//!
//! ```
//! static PARSE: ada_agent::Callsite = ada_agent::Callsite::new("parse");
//!
//! fn parse(input: &str) -> usize {
//!     let _span = ada_agent::span(&PARSE); // entry now, exit when dropped
//!     input.len()
//! }
//! # assert_eq!(parse("abc"), 3); // untraced here: recording is a no-op
//! ```
//!
//! What it is not: it never blocks the program, never allocates or makes a system call on the
//! hot path (registration and symbol registration happen once), and does no I/O: a full ring
//! pool drops the oldest ring and counts every lost event. It does not decide what is persisted
//! (the controller does) and is not async-signal-safe beyond this: an event recorded by a
//! signal handler that interrupts a recording on the same thread is counted as dropped.
//!
//! **Architecture invariant:** the hot path touches only the calling thread's own slot and
//! rings; nothing here ever writes another thread's lane or the controller's fields.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod agent;
mod callsite;
mod global;
mod thread;
mod tls;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The environment variable naming the controller's segment (set by `ada trace`); defined in
/// `ada-shm`, re-exported here for programs that only depend on the agent.
pub use ada_shm::ENV_SEGMENT;
pub use agent::{Agent, AgentError, unregistered_id};
pub use callsite::Callsite;
pub use global::{attach_error, global, install};
pub use thread::{Detail, ThreadWriter};
pub use tls::unregister_current_thread;

use ada_ringpool::EventKind;

/// Whether this process is traced (a controller's segment is attached).
pub fn is_enabled() -> bool {
    global().is_some()
}

/// Records entry into `site` on the calling thread's index lane.
#[inline(always)]
pub fn enter(site: &Callsite) {
    tls::with_writer(|w| w.enter(site.id()));
}

/// Records exit from `site` on the calling thread's index lane.
#[inline(always)]
pub fn exit(site: &Callsite) {
    tls::with_writer(|w| w.exit(site.id()));
}

/// Records entry into the function with id `function_id` (from [`Agent::register_symbol`], or
/// any number the caller maps to names itself).
#[inline(always)]
pub fn enter_id(function_id: u64) {
    tls::with_writer(|w| w.enter(function_id));
}

/// Records exit from the function with id `function_id`.
#[inline(always)]
pub fn exit_id(function_id: u64) {
    tls::with_writer(|w| w.exit(function_id));
}

/// Records entry into `site` now and exit when the guard is dropped.
#[inline(always)]
pub fn span(site: &Callsite) -> Span<'_> {
    enter(site);
    Span { site }
}

/// The guard of [`span`].
#[derive(Debug)]
#[must_use = "the span ends when this guard is dropped"]
pub struct Span<'s> {
    site: &'s Callsite,
}

impl Drop for Span<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        exit(self.site);
    }
}

/// Records a detail event for a call of `site` (registers, a stack window, bytes) on the
/// calling thread's detail lane. A record over the limits (16 registers, 256 stack bytes,
/// 1024 message bytes) is counted as dropped.
pub fn detail(site: &Callsite, detail: Detail<'_>) {
    tls::with_writer(|w| {
        let _ = w.detail(EventKind::Call, site.id(), detail, false);
    });
}

/// Records a free-form message at `site` on the detail lane.
pub fn message(site: &Callsite, text: &str) {
    text_event(site, EventKind::Message, text, false);
}

/// Records a **mark** at `site`: the moment that matters. The detail ring holding it is flagged
/// so the controller persists the window around it.
pub fn mark(site: &Callsite, text: &str) {
    text_event(site, EventKind::Mark, text, true);
}

/// A detail event carrying only `text` (cut to what a record holds).
fn text_event(site: &Callsite, kind: EventKind, text: &str, marked: bool) {
    tls::with_writer(|w| {
        let detail = Detail {
            message: clip(text),
            ..Detail::default()
        };
        let _ = w.detail(kind, site.id(), detail, marked);
    });
}

/// Publishes the calling thread's counters now (they are also published at every ring swap and
/// at thread exit). A thread that holds no slot has nothing to publish: it is not registered.
pub fn flush() {
    tls::with_registered_writer(|w| w.flush());
}

/// Messages longer than a detail record holds are cut at a character boundary.
fn clip(text: &str) -> &[u8] {
    let max = ada_ringpool::record::MAX_MESSAGE_BYTES;
    if text.len() <= max {
        return text.as_bytes();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}
