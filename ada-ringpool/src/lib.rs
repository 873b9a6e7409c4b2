//! `ada-ringpool`: the per-thread rings in ADA's shared-memory segment and the ring pool swap
//! protocol between a traced thread and the drain.
//!
//! What it is:
//! - Ring memory layout ([`header`]): a 128-byte header (the `position` word holding the fill's
//!   generation and `write_pos`, flags, fill sequence, and the `consumed` word) followed by the
//!   data area. Index lanes hold fixed 32-byte
//!   [`IndexRecord`]s; detail lanes hold variable-length [`DetailRecord`]s (registers, a stack
//!   window of up to 256 bytes, message bytes).
//! - The producer: [`LaneWriter`] (hot path: four 8-byte stores of the record and two of
//!   `write_pos` and the event count), the swap
//!   through the lane's SPSC submit and free queues, detail-lane marking that travels with the
//!   submitted ring, and pool exhaustion handled by a [`PoolPolicy`] (drop-oldest at ring
//!   granularity or drop-newest; `ada_backpressure::DropPolicy` picks at run time), every lost
//!   event counted by cause and announced by a [`LossMarker`] record where the thread resumed.
//!   The writer also runs the lane's backpressure state machine (`ada-backpressure`) on its
//!   slow path and publishes the state in the lane. The thread never blocks.
//! - The consumer: [`LaneDrain`] takes submitted rings, copies their bytes out as untrusted
//!   input, resets and returns them; it can also salvage a live or dead thread's active ring
//!   without double counting.
//! - The ring pool sizes (4 index rings, 2 detail rings by default) come from
//!   `ada_registry::RingGeometry`; [`memory_per_thread`] reports what one thread costs.
//!
//! What it is not: no I/O, no threads, no clocks. It does not decide what to persist (the drain's
//! caller does; `ada-controller` persists every record it drains) or how to encode it (that is
//! `ada-atf`).
//!
//! **Architecture invariant:** ownership of a ring moves only through the lane's queues: the
//! thread owns its active ring and what it popped from the free queue; the drain owns what it
//! popped from the submit queue until it pushes it on the free queue. Neither side ever writes
//! the other side's queue position, not even on pool exhaustion (the thread then recycles its own
//! active ring, see [`PoolPolicy`]).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod drain;
pub mod header;
pub mod loss;
pub mod policy;
pub mod record;
pub mod store;
mod words;
pub mod writer;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use ada_backpressure::LossCause;
pub use drain::{DrainStats, LaneDrain, RingChunk};
pub use header::RingHeader;
pub use loss::{DETAIL_MARKER_LEN, LossMarker};
pub use policy::{DropAction, DropNewest, DropOldest, PoolPolicy};
pub use record::{
    DetailRecord, DetailRecords, DetailView, EventKind, INDEX_RECORD_SIZE, IndexRecord,
    RecordError, index_records,
};
#[cfg(not(any(loom, shuttle)))]
pub use store::SegmentStore;
pub use store::{HeapStore, RingStore};
pub use writer::{LaneWriter, Written};

/// Shared memory one registered thread costs with `geometry`: its rings plus its registry slot.
pub fn memory_per_thread(geometry: &ada_registry::RingGeometry) -> u64 {
    geometry.slot_ring_bytes() + core::mem::size_of::<ada_registry::ThreadLaneSet>() as u64
}
