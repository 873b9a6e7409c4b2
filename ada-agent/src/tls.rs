//! The calling thread's writer for the global agent, cached in thread-local storage.
//!
//! `FAST` is a const-initialised cell without a destructor, so reading it is a plain TLS load;
//! it points at the writer owned by `OWNER`, whose destructor runs at thread exit: it clears
//! `FAST` first, then drops the writer (counters published, slot handed to the drain).
//!
//! Re-entrancy: while a recording call runs, `FAST` is null, so a signal handler that records on
//! the same thread takes the slow path, finds the writer busy and counts its event as dropped
//! instead of aliasing the writer.
//!
//! `fork`: the child starts with a copy of the forking thread's cache, whose slot belongs to the
//! parent's thread. A `pthread_atfork` child handler forgets that copy (without unregistering
//! the parent's slot), so the child registers a slot of its own on its next event.

use crate::agent::Agent;
use crate::global::global;
use crate::thread::ThreadWriter;
use ada_registry::LaneKind;
use std::cell::{Cell, RefCell};

struct Owner {
    writer: Option<Box<ThreadWriter<'static>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // `FAST` has no destructor, so it is always accessible.
        FAST.set(core::ptr::null_mut());
        drop(self.writer.take());
    }
}

thread_local! {
    static FAST: Cell<*mut ThreadWriter<'static>> = const { Cell::new(core::ptr::null_mut()) };
    static OWNER: RefCell<Owner> = const { RefCell::new(Owner { writer: None }) };
    /// `reclaim_epoch + 1` of the registry when this thread was refused a slot (0 = never).
    static REFUSED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with the calling thread's writer, registering the thread on first use. Returns
/// `None` (and records nothing) when the process is not traced; an event that cannot be
/// recorded (no free slot, thread exiting, re-entered from a signal handler) is counted as
/// dropped in the segment.
///
/// `lane` is the lane the event goes to, for counting a refused thread's events by lane (a
/// trigger's extra mark on a refused thread is not counted separately).
#[inline(always)]
pub fn with_writer<R>(
    lane: LaneKind,
    f: impl FnOnce(&mut ThreadWriter<'static>) -> R,
) -> Option<R> {
    let mut ptr = FAST.get();
    if ptr.is_null() {
        if !crate::global::maybe_traced() {
            return None;
        }
        // `f` is not passed to the slow path: with a single call site (below) the compiler
        // inlines the recording closure into the caller instead of calling it out of line.
        ptr = writer_slow(lane)?;
    }
    Some(run_exclusive(ptr, f))
}

/// Runs `f` on the writer at `ptr` (taken from `FAST`) with `FAST` cleared meanwhile, so a
/// re-entrant call cannot make a second `&mut` to it, then puts it back.
#[inline(always)]
fn run_exclusive<R>(
    ptr: *mut ThreadWriter<'static>,
    f: impl FnOnce(&mut ThreadWriter<'static>) -> R,
) -> R {
    FAST.set(core::ptr::null_mut());
    // `ptr` came from the box `OWNER` holds; it stays valid until `Owner::drop`, which clears
    // `FAST` first. `FAST` is null while `f` runs, so no second `&mut` can be made from it.
    // SAFETY: the writer is alive and this is the only reference to it.
    let r = f(unsafe { &mut *ptr });
    FAST.set(ptr);
    r
}

/// Runs `f` with the calling thread's writer if it already holds one; never registers the
/// thread and never counts a drop. `None` when the thread holds no writer (or it is busy).
pub fn with_registered_writer<R>(f: impl FnOnce(&mut ThreadWriter<'static>) -> R) -> Option<R> {
    let ptr = FAST.get();
    if ptr.is_null() {
        return None;
    }
    Some(run_exclusive(ptr, f))
}

/// The calling thread's writer when `FAST` holds none: registers the thread, or returns `None`
/// (untraced process; or refused, busy when re-entered, thread exiting: counted as dropped).
#[cold]
#[inline(never)]
fn writer_slow(lane: LaneKind) -> Option<*mut ThreadWriter<'static>> {
    let agent = global()?;
    match OWNER.try_with(|owner| register(agent, owner)) {
        Ok(Some(ptr)) => Some(ptr),
        // Refused, busy (re-entered), or the thread is exiting: counted as dropped.
        Ok(None) | Err(_) => {
            agent.registry().header().count_unregistered_drops(lane, 1);
            None
        }
    }
}

/// Registers the thread (unless it already holds a writer, which means we were re-entered, or
/// was refused since the last slot was freed).
fn register(agent: &'static Agent, owner: &RefCell<Owner>) -> Option<*mut ThreadWriter<'static>> {
    let mut owner = owner.try_borrow_mut().ok()?;
    if owner.writer.is_some() {
        return None;
    }
    let epoch = u64::from(agent.registry().header().reclaim_epoch()) + 1;
    if REFUSED_AT.get() == epoch {
        return None;
    }
    match ThreadWriter::register(agent) {
        Ok(writer) => {
            let mut boxed = Box::new(writer);
            let ptr: *mut ThreadWriter<'static> = &mut *boxed;
            owner.writer = Some(boxed);
            Some(ptr)
        }
        Err(_) => {
            REFUSED_AT.set(epoch);
            None
        }
    }
}

/// Publishes the calling thread's counters and gives its slot back now (it registers again on
/// its next event). Returns whether it held one.
pub fn unregister_current_thread() -> bool {
    OWNER
        .try_with(|owner| {
            let Ok(mut owner) = owner.try_borrow_mut() else {
                return false;
            };
            FAST.set(core::ptr::null_mut());
            owner.writer.take().is_some()
        })
        .unwrap_or(false)
}

extern "C" fn forget_parent_writer() {
    FAST.set(core::ptr::null_mut());
    let _ = OWNER.try_with(|owner| {
        if let Ok(mut owner) = owner.try_borrow_mut() {
            // The slot is the parent thread's: neither unregister it nor touch its rings.
            std::mem::forget(owner.writer.take());
        }
    });
}

/// Registers the `fork` child handler once per process.
pub(crate) fn install_fork_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forget_parent_writer` is an `extern "C" fn()` that only touches this
        // thread's TLS cells; registering it has no other precondition.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_parent_writer)) };
        if rc != 0 {
            eprintln!("ada-agent: pthread_atfork failed ({rc}); a forked child must not record");
        }
    });
}
