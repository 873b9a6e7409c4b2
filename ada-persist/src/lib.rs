//! `ada-persist`: selective persistence for the ADA tracer, the "always capture, selectively
//! persist" part of a flight recorder.
//!
//! What it is:
//! - Trigger specs ([`spec`]): `symbol=NAME`, `symbol=MODULE::NAME`, `symbol~=REGEX`,
//!   `symbol~i=REGEX`, `message=TEXT`, `message~=REGEX`, `message~i=REGEX`, parsed and
//!   validated into a [`TriggerSet`] that refuses a bad spec with an error naming the spec and
//!   the byte position; a compact, versioned byte encoding of the set that a controller can
//!   publish in shared memory and an agent can decode as untrusted input.
//! - The marking policy ([`policy`]): a [`TriggerSet`] compiled into one bounded
//!   `regex-automata` automaton for symbols and one for messages, giving the first matching
//!   trigger for a symbol name (meant to be asked once per callsite and cached) or a message.
//! - The window tracker ([`window`]): per thread, decides which detail events are persisted
//!   (a mark, its pre-roll and its post-roll, overlapping windows merged) and which are
//!   discarded, within a memory budget, and reports each window when it closes.
//!
//! What it is not: no I/O, no shared memory, no threads, no clock (timestamps come in with the
//! events), no trace encoding. It depends on no other ADA crate: `ada-agent` caches verdicts per
//! callsite and `ada-controller` runs a tracker per thread in its drain.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod policy;
pub mod spec;
pub mod window;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use policy::{MarkingPolicy, PolicyError};
pub use spec::{
    DecodeError, MAX_ENCODED_LEN, MAX_PATTERN_LEN, MAX_TRIGGERS, MatchKind, SpecError,
    SpecErrorKind, Target, TriggerId, TriggerSet, TriggerSpec,
};
pub use window::{Counts, Emit, Mark, PreRoll, WindowConfig, WindowReport, WindowTracker};
