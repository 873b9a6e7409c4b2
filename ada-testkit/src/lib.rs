//! `ada-testkit`: the test harness shared by ADA's crates.
//!
//! What it is: a [`FakeClock`] advanced by hand (implements [`ada_shm::clock::Clock`]), the
//! [`model`] scaffolding that runs one closure under loom, shuttle or plain threads depending on
//! the build's cfg, and small workload helpers. It is a dev-dependency only: nothing here is
//! linked into a traced program or a controller.
//!
//! What it is not: a mock of the shared-memory layout. Tests run the real algorithms; under
//! `--cfg loom` / `--cfg shuttle` they run them on heap memory through `ada_shm::sync`.
//!
//! ## The model-checking pattern every model-checked ADA crate follows
//! 1. In the algorithms and their model tests, take atomics, `Arc`, `thread`, `spin_loop` and
//!    `yield_now` from `ada_shm::sync`, not from `std` (`cargo xtask tidy` rejects `std`/`core`
//!    atomics paths in the `src/` and `tests/` of a crate with loom or shuttle suites).
//! 2. Write the algorithm against references to its control words (`&AtomicU32`, ...), so the
//!    same code runs on a shared-memory mapping (normal build) and on a heap allocation (models).
//! 3. Keep layout assertions and anything that maps memory behind
//!    `#[cfg(not(any(loom, shuttle)))]`.
//! 4. Put loom tests in `tests/loom_*.rs` and shuttle tests in `tests/shuttle_*.rs`, each file
//!    starting with `#![cfg(loom)]` / `#![cfg(shuttle)]`, with their bodies wrapped in
//!    [`model::check`]. `cargo xtask ci` finds and runs them with the right cfg.

mod fake_clock;
pub mod model;
pub mod workload;

pub use fake_clock::FakeClock;
