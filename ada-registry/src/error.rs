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
