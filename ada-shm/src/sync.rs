//! The atomics facade every lock-free algorithm of ADA is written against.
//!
//! In a normal build the names below are `std`'s. Under `--cfg loom` they come from `loom` and
//! under `--cfg shuttle` from `shuttle`, so the same queue, ring and registration code can be
//! model-checked. Model-checker atomics are not layout-compatible with `std` atomics, so under
//! those cfgs the shared-memory mapping ([`crate::Segment`]) is not built at all: algorithms run on
//! heap memory there, and layout assertions are compiled only in the normal build.
//!
//! Crates above this one import atomics, `spin_loop`, `yield_now` and `thread` from here, never
//! from `std` directly (the `tidy` step of `cargo xtask ci` and review keep it that way).

#[cfg(loom)]
pub use loom::{
    hint::spin_loop,
    sync::Arc,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

#[cfg(all(shuttle, not(loom)))]
pub use shuttle::{
    hint::spin_loop,
    sync::Arc,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

#[cfg(not(any(loom, shuttle)))]
pub use std::{
    hint::spin_loop,
    sync::Arc,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

/// `true` when this build runs under a model checker (`--cfg loom` or `--cfg shuttle`).
pub const MODEL_CHECKING: bool = cfg!(any(loom, shuttle));
