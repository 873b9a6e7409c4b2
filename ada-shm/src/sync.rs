//! The atomics facade every lock-free algorithm of ADA is written against.
//!
//! In a normal build the names below are `std`'s. Under `--cfg loom` they come from `loom` and
//! under `--cfg shuttle` from `shuttle`, so the same queue, ring and registration code can be
//! model-checked. Model-checker atomics are not layout-compatible with `std` atomics, so under
//! those cfgs the shared-memory mapping ([`crate::Segment`]) is not built at all: algorithms run on
//! heap memory there, and layout assertions are compiled only in the normal build.
//!
//! The model-checked crates above this one (`ada-registry`, `ada-ringpool`) write their
//! algorithms and model tests against these names rather than `std`'s, so that loom and shuttle
//! see every atomic access and every spawned thread. For atomics `cargo xtask tidy` enforces it:
//! a `std::sync::atomic` or `core::sync::atomic` path in the `src/` or `tests/` of a crate with
//! loom or shuttle suites fails the check. `spin_loop`, `yield_now`, `thread` and `Mutex` (a
//! lock beside a lock-free structure, such as `ada-tracing`'s callsite overflow map) are kept
//! here by review (their plain integration tests use `std::thread` freely). Crates that are never
//! model-checked (the agent, the controller, the CLI) use `std` directly.

#[cfg(loom)]
pub use loom::{
    hint::spin_loop,
    sync::Arc,
    sync::Mutex,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

#[cfg(all(shuttle, not(loom)))]
pub use shuttle::{
    hint::spin_loop,
    sync::Arc,
    sync::Mutex,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

#[cfg(not(any(loom, shuttle)))]
pub use std::{
    hint::spin_loop,
    sync::Arc,
    sync::Mutex,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    thread,
    thread::yield_now,
};

/// `true` when this build runs under a model checker (`--cfg loom` or `--cfg shuttle`).
pub const MODEL_CHECKING: bool = cfg!(any(loom, shuttle));

/// `UnsafeCell` with loom's closure API (`with` / `with_mut`), so loom can see every access to
/// data that the protocols hand between threads. Outside loom it inlines to raw pointer access.
#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure API (`with` / `with_mut`); a thin wrapper outside loom.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
