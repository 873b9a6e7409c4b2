//! `ada-testkit`: the test harness shared by ADA's crates.
//!
//! What it is, all of it:
//! - [`FakeClock`]: a clock advanced by hand (implements [`ada_shm::clock::Clock`]);
//! - [`model`]: [`model::check`] / [`model::check_pct`] run one closure under loom
//!   (`--cfg loom`), under shuttle's schedulers (`--cfg shuttle`), or once, directly, in a
//!   normal build;
//! - [`workload`]: sequence-numbered payloads ([`workload::tag`] / [`workload::untag`]) and a
//!   [`workload::SeqLedger`] that counts, per producer, the distinct payloads seen and the
//!   duplicates, so a test can prove every event arrived exactly once or was counted as dropped;
//! - [`PauseGate`]: a checkpoint a test can hold shut (a pausable drain: the drain thread calls
//!   [`PauseGate::checkpoint`] before each pass), with waits for "held" and "N more passes";
//! - [`StallInjector`]: stalls armed at numbered steps of one side, sleeping or advancing a
//!   [`FakeClock`] by the stall's duration.
//!
//! It is a dev-dependency only: nothing here is linked into a traced program or a controller.
//! It has no trace-file helpers; tests read traces back with `ada-atf`'s reader.
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
//! 5. Make the model prove it checked something: [`model::check`] fails a loom model that
//!    explored a single execution, and a [`model::Witness`] fails one that never reached the
//!    race it is about. Build queue ends before spawning and spawn observers last (the
//!    [`model`] docs explain the loom pitfall this avoids).

mod fake_clock;
pub mod model;
mod pause;
mod stall;
pub mod workload;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use fake_clock::FakeClock;
pub use pause::PauseGate;
pub use stall::StallInjector;
