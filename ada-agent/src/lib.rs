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
//! - With no controller (`ADA_SHM` unset) every call is a near-free no-op; so is a call of a
//!   dormant agent (its controller died and none has attached since), which only counts it.
//! - [`mode`]: the agent's mode machine (startup, warm-up, steady, stalled; re-attach on a new
//!   epoch; dormant when the controller is gone) as a pure function of the control block and
//!   the time. The global agent's watcher thread (`ada-agent-mode`) evaluates it every 10 ms
//!   and keeps the outcome in the agent's own memory; the record path only consults it on its
//!   slow paths (see [Modes](crate#modes)).
//! - Triggers (selective persistence): the agent compiles the triggers the controller published
//!   in the segment (see below) and marks the events they name, so the controller persists the
//!   windows around them.
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
//! hot path (registration and symbol registration happen once; the one exception is matching
//! [`message`] texts when message triggers exist, see below), and does no I/O: a full ring
//! pool loses events under the lane's drop policy (the controller's choice, default: the index
//! lane refuses new events until a ring returns, the detail lane overwrites its oldest), counts
//! every one by cause and marks the gap in the stream. It does not decide what is persisted
//! (the controller does; the agent only marks what the triggers name) and is not
//! async-signal-safe beyond this: an event recorded by a signal handler that interrupts a
//! recording on the same thread is counted as dropped.
//!
//! # Triggers
//!
//! At attach the agent reads the segment's `Triggers` region (`u64` little-endian length, then
//! `ada_persist::TriggerSet::encode()` bytes), decodes it as untrusted input and compiles it
//! into an [`ada_persist::MarkingPolicy`]. A region that is unusable (a length past the region
//! or past `ada_persist::MAX_ENCODED_LEN`, bytes that do not decode, triggers that do not
//! compile, an unknown layout version) means no triggers: the program runs and explicit marks
//! work; the reason is printed once on stderr for the global agent and kept in
//! [`trigger_error`] (and [`Agent::trigger_error`]). Nothing about it ever panics.
//!
//! **Symbol triggers** are matched once per [`Callsite`], when its name is registered; the
//! verdict is cached with the id in one word, so recording pays one load and one branch for
//! it. A *triggered* callsite writes a **trigger mark** (a detail record of kind `Mark`, its
//! `marked` flag set, its one register the trigger's index + 1, no message or stack) on its
//! thread's detail lane:
//! - at every entry ([`enter`], the start of a [`span`]), just after the index record;
//! - before every [`detail`] or [`message`] record it writes (the record itself stays as the
//!   program gave it: its registers are the program's, so it cannot carry the trigger).
//!
//! Exits write none: the window a mark opens extends over what follows by its post-roll.
//! [`enter_id`] / [`exit_id`] take raw ids and no verdict; [`enter_word`] / [`exit_word`] take
//! the word [`register_callsite`] returns, verdict included (the C ABI's way).
//!
//! **Message triggers** are matched against every [`message`] text (only when the policy has
//! message triggers: otherwise one branch); a match writes the message record itself flagged,
//! its one register the trigger's index + 1. Matching searches the policy's automaton (linear
//! in the text). The automaton's search caches come from a pool inside `regex-automata`: a
//! thread's first message match allocates one, and threads other than the pool's owner take a
//! short internal lock to borrow one, so with message triggers `message` is not lock-free. [`mark`] is
//! unchanged: always a mark, with no registers.
//!
//! # Modes
//!
//! What the agent does with an event depends on its mode ([`mode::AgentMode`]), worked out
//! from the controller's control block (`registry_ready`, the requested mode, the heartbeat,
//! the epoch) every [`mode::ModeConfig::period_ns`]:
//! - **Startup** (the registry is not ready): no thread registers; each index event goes to
//!   the segment's shared **fallback ring**, tagged with its process and thread and nested at
//!   the thread's own depth. When the ring is full it refuses the event and counts it; detail
//!   events (which a fallback record cannot hold) are counted as lost (`no_slot`). The first
//!   event after ready registers the thread and continues its nesting in its own rings.
//! - **Warm-up / steady** (the controller's `DualWrite` / `PerThreadOnly`): threads register
//!   and record into their own rings. A thread **refused a slot** (registry full) sends its
//!   index events to the fallback ring. An index lane under drop-newest (the default) whose
//!   pool is exhausted **spills** its events there before it refuses any (counted as
//!   `spilled`, not lost); a drop-oldest lane keeps its newest events in its own ring instead.
//! - **Stalled** (the heartbeat has not moved for 250 ms): threads keep recording into their
//!   rings, which keep the newest or oldest events by their drop policy; nothing spills (the
//!   fallback ring is kept for threads with no ring at all); every loss is counted and marked.
//!   The heartbeat moving again ends it.
//! - **A new epoch** (a controller that restarted and published ready again): each thread gives
//!   its slot back at its next slow path (a ring swap, a loss; its rings keep what they hold,
//!   for the drain) and registers again at its next event, its call depth carried over.
//! - **Dormant** ([`mode::dormant`]: stalled for 1 s and the controller's processes are
//!   gone): threads give their slots back at their next slow path, and every recording call
//!   then costs the untraced early out plus a thread-local count; the counts are reported as
//!   lost (`no_slot`) when the thread registers again (a controller attached: new epoch) or
//!   exits.
//!
//! Each event goes to exactly one place (its thread's ring or the fallback ring), never both.
//! Mode changes are counted in the control block (`ada status`, the report). A process that
//! `fork`s starts a watcher of its own in the child at the child's first recording slow path.
//!
//! # Cargo features
//!
//! - `initial-exec-tls` (off by default; on in `ada-agent-c`): the thread's writer cell lives in
//!   initial-exec TLS, defined in C (`src/fast_cell.c`, compiled with the `cc` crate), instead
//!   of a Rust thread-local. In a shared library a Rust thread-local costs a `__tls_get_addr`
//!   call on every event; an initial-exec variable is one load relative to the thread pointer
//!   (read inline on x86-64 Linux). The library must then be loaded at program start (linked,
//!   or preloaded) or fit in glibc's static TLS surplus when loaded with `dlopen` (it needs 8
//!   bytes; a load that does not fit fails cleanly in `dlopen`).
//!
//! **Architecture invariant:** the hot path touches only the calling thread's own slot and
//! rings; nothing here ever writes another thread's lane or the controller's fields.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod agent;
mod callsite;
mod driver;
mod fallback;
mod fast_cell;
mod global;
pub mod mode;
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
pub use driver::Tick;
pub use global::{attach_error, global, install, trigger_error};
pub use thread::{Detail, Flow, ThreadWriter};
use tls::Unwritten;
pub use tls::unregister_current_thread;

use ada_registry::SymbolSource;
use ada_registry::callsite::{CALLSITE_TRIGGERED, unpack_id, unpack_trigger};
use ada_ringpool::EventKind;

/// Whether this process is traced (a controller's segment is attached).
pub fn is_enabled() -> bool {
    global().is_some()
}

/// Records entry into `site` on the calling thread's index lane. When a symbol trigger fires
/// for `site`, also writes a trigger mark on the detail lane (see [Triggers](crate#triggers)).
#[inline(always)]
pub fn enter(site: &Callsite) {
    enter_word(site.word());
}

/// [`enter`] of a callsite word: the function id and the trigger verdict that
/// [`register_callsite`] returns, or any id below 2⁶³ (its top bit clear: no verdict), which is
/// recorded as it is. For the C ABI (`ada-agent-c`), whose callsites are numbers rather than
/// [`Callsite`] statics.
#[inline(always)]
pub fn enter_word(word: u64) {
    // One branch on the word's TRIGGERED bit. An untriggered word is the bare id (the verdict
    // bits are zero), so the common path is exactly `enter_id`; the triggered one is out of
    // line.
    if word & CALLSITE_TRIGGERED == 0 {
        tls::with_writer(Unwritten::Index(EventKind::Call, word), |w| w.enter(word));
    } else {
        enter_triggered(word);
    }
}

/// [`enter`] of a callsite a symbol trigger names: the index record, then the trigger's mark.
#[cold]
#[inline(never)]
fn enter_triggered(word: u64) {
    let id = unpack_id(word);
    tls::with_writer(Unwritten::Index(EventKind::Call, id), |w| {
        let flow = w.enter(id);
        if let Some(trigger) = unpack_trigger(word) {
            w.trigger_mark(id, trigger);
        }
        flow
    });
}

/// Records exit from `site` on the calling thread's index lane.
#[inline(always)]
pub fn exit(site: &Callsite) {
    exit_word(site.word());
}

/// [`exit`] of a callsite word (see [`enter_word`]): the exit of its function id.
#[inline(always)]
pub fn exit_word(word: u64) {
    let id = word_id(word);
    tls::with_writer(Unwritten::Index(EventKind::Return, id), |w| w.exit(id));
}

/// The function id of a callsite word: the word itself unless its TRIGGERED bit (63) is set
/// (then its low 47 bits), so [`enter_word`] and [`exit_word`] agree on any id below 2⁶³.
#[inline(always)]
fn word_id(word: u64) -> u64 {
    if word & CALLSITE_TRIGGERED == 0 {
        word
    } else {
        unpack_id(word)
    }
}

/// Registers `name` (at code address `address`, 0 if unknown) as a callsite and returns its
/// callsite word: the function id in the low 47 bits and the symbol-trigger verdict above them
/// (see [`ada_registry::callsite`]), for [`enter_word`], [`exit_word`], [`message_word`] and
/// [`mark_word`]. 0 when the process is not traced. Each call registers the name again (a new
/// symbol-table entry): keep the word, as a [`Callsite`] does.
pub fn register_callsite(name: &str, address: u64) -> u64 {
    Callsite::register_name(name, address, None)
}

/// [`register_callsite`] with where the callsite is in the source: `file` and `line` (from 1),
/// which the trace keeps beside the name (a `tracing` callsite's `file!()` and `line!()`, say).
/// A source the symbol table cannot hold with the name is left out (see
/// [`Agent::register_symbol_with_source`]).
pub fn register_callsite_at(name: &str, address: u64, file: &str, line: u32) -> u64 {
    Callsite::register_name(name, address, Some(SymbolSource { file, line }))
}

/// Records entry into the function with id `function_id` (from [`Agent::register_symbol`], or
/// any number the caller maps to names itself).
#[inline(always)]
pub fn enter_id(function_id: u64) {
    tls::with_writer(Unwritten::Index(EventKind::Call, function_id), |w| {
        w.enter(function_id)
    });
}

/// Records exit from the function with id `function_id`.
#[inline(always)]
pub fn exit_id(function_id: u64) {
    tls::with_writer(Unwritten::Index(EventKind::Return, function_id), |w| {
        w.exit(function_id)
    });
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
    tls::with_writer(Unwritten::Detail, |w| {
        let word = site.word();
        if let Some(trigger) = unpack_trigger(word) {
            w.trigger_mark(unpack_id(word), trigger);
        }
        w.detail(EventKind::Call, unpack_id(word), detail, false)
    });
}

/// Records a free-form message at `site` on the detail lane. When a message trigger fires for
/// `text`, the message record itself is the mark (flagged, its one register the trigger's
/// index + 1); otherwise, when a symbol trigger fires for `site`, a trigger mark precedes it.
pub fn message(site: &Callsite, text: &str) {
    message_word(site.word(), text.as_bytes());
}

/// [`message`] at a callsite word (see [`enter_word`]) with the text as bytes. Bytes that are
/// not UTF-8 are recorded as they are (the controller's readers replace what does not decode).
pub fn message_word(word: u64, text: &[u8]) {
    tls::with_writer(Unwritten::Detail, |w| {
        let id = word_id(word);
        let message = clip(text);
        if let Some(trigger) = w.message_trigger(text) {
            let registers = [u64::from(trigger.get()) + 1];
            let detail = Detail {
                registers: &registers,
                message,
                ..Detail::default()
            };
            return w.detail(EventKind::Message, id, detail, true);
        }
        if let Some(trigger) = unpack_trigger(word) {
            w.trigger_mark(id, trigger);
        }
        let detail = Detail {
            message,
            ..Detail::default()
        };
        w.detail(EventKind::Message, id, detail, false)
    });
}

/// Records a **mark** at `site`: the moment that matters. The record is flagged so the
/// controller persists the window around it: a mark is always one. When a `message~=` trigger
/// matches its text, the record names that trigger (registers `[index + 1]`) as the cause;
/// otherwise it has no registers (an explicit mark).
pub fn mark(site: &Callsite, text: &str) {
    mark_word(site.word(), text.as_bytes());
}

/// [`mark`] at a callsite word (see [`enter_word`]) with the text as bytes (recorded as they
/// are, like [`message_word`]'s).
pub fn mark_word(word: u64, text: &[u8]) {
    let id = word_id(word);
    tls::with_writer(Unwritten::Detail, |w| {
        // A mark always opens a window; a message trigger matching its text names the trigger
        // as the cause (registers `[index + 1]`), else it is an explicit mark (no registers).
        let trigger = w.message_trigger(text);
        let registers = trigger.map(|t| [u64::from(t.get()) + 1]);
        let detail = Detail {
            registers: registers.as_ref().map_or(&[], |r| &r[..]),
            message: clip(text),
            ..Detail::default()
        };
        w.detail(EventKind::Mark, id, detail, true)
    });
}

/// Publishes the calling thread's counters now (they are also published at every ring swap and
/// at thread exit). A thread that holds no slot has nothing to publish: it is not registered.
pub fn flush() {
    tls::with_registered_writer(|w| w.flush());
}

/// Messages longer than a detail record holds are cut at a character boundary (of valid UTF-8:
/// the cut never falls on a continuation byte, backing off at most three bytes).
fn clip(text: &[u8]) -> &[u8] {
    let max = ada_ringpool::record::MAX_MESSAGE_BYTES;
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    // A continuation byte (0b10xx_xxxx) is never a character's first byte.
    while end > max.saturating_sub(3) && end > 0 && text[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    &text[..end]
}
