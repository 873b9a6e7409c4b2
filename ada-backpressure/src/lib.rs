//! `ada-backpressure`: the backpressure core of the ADA tracer, i.e. what a thread's lane does
//! when the drain falls behind and its ring pool runs low.
//!
//! What it is:
//! - Lane states ([`state`]): [`LaneState`] (NORMAL, PRESSURE, DROPPING, RECOVERY) with a stable
//!   one-byte encoding for shared memory, and the thresholds ([`BackpressureConfig`]: two
//!   watermarks on free rings and a stability period) validated against a pool size.
//! - The transition function ([`transition`]): [`next`], pure and total, the state diagram in its
//!   module docs; [`needs_attention`], the two-compare check a NORMAL writer makes before calling
//!   it; [`TransitionCounts`] per `from → to` pair.
//! - Drop policies ([`policy`]): [`DropPolicy`] (drop-oldest, drop-newest), [`LanePolicies`]
//!   with a documented default per lane, and the parser shared by `ada trace --drop-policy`, the
//!   config file and the `ADA_DROP_POLICY` override, refusing bad text with the part and byte
//!   position.
//! - Loss accounting ([`loss`]): [`LossCounters`] by [`LossCause`] (overwritten, refused, too
//!   large, no registry slot), saturating, and [`balanced`] for
//!   `written = persisted + discarded + Σ lost`.
//!
//! What it is not: no shared memory, no atomics, no threads, no clock, no I/O. It never drops or
//! writes an event itself. It depends on no other ADA crate: `ada-agent` keeps each lane's state
//! byte and loss counters in the segment and calls [`needs_attention`]/[`next`] on its write
//! path with the segment's clock, and `ada-controller` reads them in its drain and reports.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod loss;
pub mod policy;
pub mod state;
pub mod transition;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use loss::{LossCause, LossCounters, balanced};
pub use policy::{
    DropPolicy, ENV_VAR, EnvOverrideError, Lane, LanePolicies, PolicyParseError,
    PolicyParseErrorKind,
};
pub use state::{BackpressureConfig, ConfigError, LaneState, UnknownState};
pub use transition::{Input, Transition, TransitionCounts, needs_attention, next};
