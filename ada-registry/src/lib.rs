//! `ada-registry`: the thread registry, the control block and the SPSC queues of ring indices,
//! all living in ADA's shared-memory segment.
//!
//! What it is:
//! - [`ControlBlock`]: readiness (`registry_ready`), `drain_heartbeat_ns`, `registry_epoch`,
//!   `registry_version`, `registry_mode`, the drain claim (`drain_owner`), with a documented
//!   ordering contract for every field (see [`control`]).
//! - [`ThreadLaneSet`]: one slot per registered thread (64 by default, capacity chosen at
//!   creation), 128-byte aligned, with an index [`Lane`] and a detail [`Lane`]. A lane holds the
//!   active ring index, the SPSC submit and free queues of ring indices ([`spsc`]) and the
//!   per-lane counters.
//! - Registration without locks ([`RegistryRef::register`]), which returns a move-only
//!   [`Registration`]: the [`ThreadSlot`] handle (dropping it hands the slot to the drain, which
//!   frees it for reuse once it has drained it) and the thread's ends of both lanes' queues
//!   ([`LaneProducer`]). Caching the registration per thread is the agent's job (`ada-agent`).
//! - [`DrainClaim`]: the one drain of a segment (an exclusive claim in the control block),
//!   which hands out each lane's drain ends ([`LaneConsumer`]) and the fallback ring's consumer
//!   ([`FallbackConsumer`]) once.
//! - [`symbols`]: the symbol string table ([`SymbolTableRef`]): agents register function names
//!   once (wait-free), the controller reads what is new with a [`SymbolCursor`].
//! - [`fallback`]: the shared fallback ring ([`FallbackRef`]): a bounded multi-producer ring of
//!   records tagged with their thread, committed individually, for events that have no thread
//!   ring; the drain takes them through its one [`FallbackConsumer`].
//! - [`callsite`]: the word an agent caches per callsite (function id + trigger verdict) and
//!   its one-winner publication.
//! - [`Registry`]: all of the above in a segment, created by the controller or attached (and
//!   validated as untrusted input) by agents.
//!
//! What it is not: it does not read or write ring contents or decide drop policies (both are
//! `ada-ringpool`'s, the latter through its `PoolPolicy` hook) and does no I/O beyond mapping
//! the segment through `ada-shm`.
//!
//! Every algorithm here is written against borrowed atomics from `ada_shm::sync`, so under
//! `--cfg loom` / `--cfg shuttle` it runs on [`HeapRegistry`] / [`spsc::HeapQueue`] /
//! [`HeapSymbolTable`] and is model-checked; the segment-backed [`Registry`] exists only in the
//! normal build.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod callsite;
pub mod control;
mod core;
mod drain_claim;
mod endpoints;
mod error;
pub mod fallback;
pub mod geometry;
pub mod lane;
#[cfg(not(any(loom, shuttle)))]
mod registry;
pub mod slot;
pub mod spsc;
pub mod symbols;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use crate::core::{
    BackpressureSettings, HeapRegistry, REGISTRY_VERSION, Registration, RegistryCounters,
    RegistryHeader, RegistryRef, SlotView, ThreadSlot,
};
pub use control::{AgentStatsSnapshot, ControlBlock, ControlSnapshot, RegistryMode};
pub use drain_claim::DrainClaim;
pub use endpoints::{LaneConsumer, LaneProducer};
pub use error::RegistryError;
pub use fallback::{FallbackConsumer, FallbackRecord, FallbackRef, FallbackRefused, HeapFallback};
pub use geometry::RingGeometry;
pub use lane::{Lane, LaneCounters, LaneKind, LaneStateWord};
#[cfg(not(any(loom, shuttle)))]
pub use registry::{RINGS_VERSION, Registry, RegistryConfig};
pub use slot::{SlotOwner, SlotState, ThreadLaneSet};
pub use symbols::{
    HeapSymbolTable, MAX_SYMBOL_NAME, SYMBOLS_VERSION, SymbolCursor, SymbolError, SymbolRecord,
    SymbolSource, SymbolTableConfig, SymbolTableRef,
};
