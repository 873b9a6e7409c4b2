//! `ada-registry`: the thread registry, the control block and the SPSC queues of ring indices,
//! all living in ADA's shared-memory segment.
//!
//! What it is:
//! - [`ControlBlock`]: readiness (`registry_ready`), `drain_heartbeat_ns`, `registry_epoch`,
//!   `registry_version`, `registry_mode`, with a documented writer-Release / reader-Acquire
//!   contract.
//! - [`ThreadLaneSet`]: one slot per registered thread (64 by default, capacity chosen at
//!   creation), 128-byte aligned, with an index [`Lane`] and a detail [`Lane`]. A lane holds the
//!   active ring index, the SPSC submit and free queues of ring indices ([`spsc`]) and the
//!   per-lane counters.
//! - Registration without locks ([`RegistryRef::register`]), cached per thread
//!   ([`Registry::current_thread`]: a TLS read after the first call), released at thread exit to
//!   the drain, which frees the slot for reuse once it has drained it.
//! - [`symbols`]: the symbol string table ([`SymbolTableRef`]): agents register function names
//!   once (wait-free), the controller reads what is new with a [`SymbolCursor`].
//! - [`Registry`]: all of the above in a segment, created by the controller or attached (and
//!   validated as untrusted input) by agents.
//!
//! What it is not: it does not read or write ring contents (that is `ada-ringpool`), decide drop
//! policies (`ada-backpressure`) or do I/O beyond mapping the segment through `ada-shm`.
//!
//! Every algorithm here is written against borrowed atomics from `ada_shm::sync`, so under
//! `--cfg loom` / `--cfg shuttle` it runs on [`HeapRegistry`] / [`spsc::HeapQueue`] /
//! [`HeapSymbolTable`] and is model-checked; the segment-backed [`Registry`] exists only in the
//! normal build.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod control;
mod core;
mod error;
pub mod geometry;
pub mod lane;
#[cfg(not(any(loom, shuttle)))]
mod registry;
pub mod slot;
pub mod spsc;
pub mod symbols;
#[cfg(not(any(loom, shuttle)))]
mod tls;

pub use crate::core::{
    HeapRegistry, REGISTRY_VERSION, RegistryCounters, RegistryHeader, RegistryRef, SlotView,
    ThreadSlot,
};
pub use control::{ControlBlock, ControlSnapshot, RegistryMode};
pub use error::RegistryError;
pub use geometry::RingGeometry;
pub use lane::{Lane, LaneCounters, LaneKind};
#[cfg(not(any(loom, shuttle)))]
pub use registry::{RINGS_VERSION, Registry, RegistryConfig};
pub use slot::{SlotOwner, SlotState, ThreadLaneSet};
pub use symbols::{
    HeapSymbolTable, MAX_SYMBOL_NAME, SYMBOLS_VERSION, SymbolCursor, SymbolError, SymbolRecord,
    SymbolTableConfig, SymbolTableRef,
};
