//! `ada-tracing`: a [`tracing_subscriber::Layer`] that records a Rust program's
//! [`tracing`] spans and events through the ADA tracer's agent (`ada-agent`).
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry()
//!     .with(ada_tracing::layer()) // `ERROR` events mark by default
//!     .init();
//! let span = tracing::info_span!("job", id = 7);
//! let _guard = span.enter();
//! tracing::info!(rows = 3, "loaded");
//! ```
//!
//! What it records, under `ada trace -- program`:
//! - **Spans**: every enter and exit, on the calling thread's **index lane** (the agent's
//!   [`ada_agent::enter_word`] / [`ada_agent::exit_word`]). An async span entered on each poll
//!   is recorded on each polling thread, enter and exit on the same thread, so every thread's
//!   nesting stays balanced however the executor moves the task.
//! - **Events**: one message on the **detail lane** ([`ada_agent::message_word`]), its text
//!   `LEVEL message name=value ...` formatted once into a stack buffer of one detail record's
//!   size (1024 bytes; longer text is cut at a character boundary and ends with `…`): no
//!   allocation unless a field's own `Debug` allocates.
//! - **Marks**: a span or event whose level or target matches the layer's mark rules opens a
//!   selective-persistence window (the agent's [`ada_agent::mark_word`]): an event's message is
//!   then written as the mark itself, a span marks once when it is created (its name as the
//!   text). **Default: `ERROR` marks**, so `tracing::error!` is a trigger; change it with
//!   [`AdaLayer::mark_at`], add targets with [`AdaLayer::mark_target`], or turn marking off
//!   with [`AdaLayer::without_marks`]. The controller's own triggers (`ada trace --trigger`)
//!   apply as well: a `symbol=` / `symbol~=` trigger to callsite names (`symbol=fetch` matches
//!   the span `app::fetch`, whose every enter then marks), a `message~=` trigger to event
//!   texts.
//!
//! Callsites: each `tracing` callsite is registered once in the trace's symbol table, when
//! `tracing` first shows it to the layer (`register_callsite`), as `target::name` (a span:
//! `app::fetch`; an event: `app::event src/main.rs:12`, `tracing`'s own event name, which
//! carries the file and line), with the callsite's file and line as the symbol's source
//! location (`SymbolDef.file`/`line` in the stream, `symbols[].file`/`line` in the manifest,
//! shown by `ada inspect`). The word and mark verdict are cached per callsite in a
//! lock-free table keyed by the address of the callsite's `&'static Metadata`: the hot path
//! looks them up with a few loads, takes no lock and registers nothing.
//!
//! ## The callsite table
//! An open-addressing table (linear probing, 8192 entries, at most 64 probed per lookup, then a
//! mutex-guarded overflow map) that only ever grows: callsites are `static`, so an entry is
//! never removed. Each entry is two atomics: the key (the metadata's address, bit 0 the mark
//! verdict; 0 while free) and the callsite word (0 until stored). Every access is `Relaxed`.
//! The protocol:
//! - **Insert** makes the site (registers the name), then claims the first free entry of the
//!   key's probe sequence by a compare-and-swap of its key from 0, and only then stores the
//!   word. A compare-and-swap that finds the same key instead uses that entry's word if it is
//!   nonzero, else the site just made.
//! - **Lookup** walks the probe sequence: a key of 0 ends it (a miss), a matching key yields
//!   that entry's word, a word of 0 is a miss.
//!
//! Invariants, which the model-checked suites (`tests/loom_table.rs`, `tests/shuttle_table.rs`)
//! check:
//! - an entry's key is written once, by the one thread whose compare-and-swap claimed it (a
//!   compare-and-swap reads the latest value, so two claimers never both succeed), and its word
//!   once, by that same thread, after the claim;
//! - so a word read from the entry whose key a reader matched is 0 or that key's word, never
//!   another key's; a reader returns a site only with a nonzero word, and a key's site is
//!   complete (word and the verdict beside its key);
//! - a lookup may miss a key that is there (a stale key of 0, or the word not yet seen): the
//!   caller then inserts, making the site a second time. The layer makes a site through a
//!   map of the words it registered (`registered.rs`), which gives a callsite registered
//!   before its first word, so the racers get the same word and the trace one symbol-table
//!   entry (`tracing` lets threads use a callsite while another is still registering it, so
//!   this race is common when threads start together);
//! - a key is in the table or in the overflow map, never both: it goes to the map only when
//!   every entry of its probe sequence holds another key, and entries are never freed. The
//!   map keeps the first site inserted for a key, and every insertion of it returns that one.
//!
//! `Relaxed` suffices because nothing but these two numbers is published through an entry: a
//! reader uses a word only when read from the entry whose key it matched, and the word
//! is a value, not a pointer to data that would need an acquire to be seen.
//!
//! Not traced (no `ada trace`, or the agent could not attach): the layer is decided dead when
//! it is made, and each of its hooks returns after one branch. It never disables a callsite
//! (that would disable it for the layers beside it, such as `fmt`); to let `tracing` skip all
//! span bookkeeping when it is the only layer, add [`AdaLayer::if_live`]'s `Option` instead.
//!
//! What it is not: a filter (it records whatever the subscriber's other filters let through;
//! add a `tracing_subscriber` filter to record less), a formatter for humans (add `fmt`
//! beside it), or a recorder of span fields or follows-from links (a span is its name and its
//! enters and exits; put what matters in an event). It takes the agent as it is: a full ring
//! pool loses events the way the agent's own calls do, counted in the trace.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// The layer needs `ada-agent`, which is not built under the model checkers (`--cfg loom` /
// `--cfg shuttle`); there the crate is the callsite table alone, for its model-checked suites.
#[cfg(not(any(loom, shuttle)))]
mod cache;
#[cfg(not(any(loom, shuttle)))]
mod format;
#[cfg(not(any(loom, shuttle)))]
mod layer;
#[cfg(not(any(loom, shuttle)))]
mod registered;
#[cfg(not(any(loom, shuttle)))]
mod rules;
#[doc(hidden)]
pub mod table;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, not(any(loom, shuttle))))]
pub struct ReadmeDoctests;

#[cfg(not(any(loom, shuttle)))]
pub use format::TRUNCATED;
#[cfg(not(any(loom, shuttle)))]
pub use layer::{AdaLayer, symbol_name};

/// The layer, with the default mark rules (`ERROR` marks): live when the process is traced
/// (the agent attached from `ADA_SHM`), else a no-op.
#[cfg(not(any(loom, shuttle)))]
pub fn layer() -> AdaLayer {
    AdaLayer::new()
}
