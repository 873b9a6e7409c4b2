//! Registry errors.

use crate::geometry::GeometryError;

/// Everything registration and attach can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Every slot is taken. The thread's events are counted as dropped, never written anywhere.
    #[error(
        "thread registry is full ({capacity} slots); this thread's events are counted as dropped"
    )]
    Full {
        /// Slot count.
        capacity: u32,
    },
    /// The registry stopped accepting registrations (controller shutting down).
    #[error("thread registry is not accepting registrations")]
    Closed,
    /// The thread is being torn down and can no longer hold a registration.
    #[error("thread is exiting; it cannot register")]
    ThreadExiting,
    /// The slot handle no longer owns its slot: the slot was given up already (its process was
    /// declared dead, or it was reclaimed and now belongs to a later thread). Nothing changed.
    #[error("slot {slot} generation {generation} is no longer held by this handle")]
    StaleSlot {
        /// Slot index.
        slot: u32,
        /// The handle's generation.
        generation: u32,
    },
    /// Another drain holds the segment's drain claim.
    #[error(
        "the segment is already being drained by process {pid}; only one drain may run per segment"
    )]
    DrainClaimed {
        /// Pid of the holder.
        pid: u32,
    },
    /// The segment is not a valid registry.
    #[error(transparent)]
    Shm(#[from] ada_shm::ShmError),
    /// A header field is out of range.
    #[error("registry header is invalid: {0}")]
    BadHeader(&'static str),
    /// The ring geometry is out of range.
    #[error(transparent)]
    Geometry(#[from] GeometryError),
}
