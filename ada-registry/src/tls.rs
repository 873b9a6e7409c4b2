//! Per-thread registration cache: after the first call, finding the calling thread's slot is one
//! thread-local read and one compare.
//!
//! `FAST` (const-initialised, no destructor, so access compiles to a plain TLS load) caches the
//! slot of the registry the thread used last. `HELD` owns one [`Held`] per registry the thread
//! registered with; its destructor runs at thread exit and hands each slot to the drain
//! (`ACTIVE` → `EXITED`). A thread refused because the registry was full remembers the
//! registry's reclaim epoch and does not rescan until a slot has been freed, so a full registry
//! costs one load per event, not a scan.

use crate::core::ThreadSlot;
use crate::error::RegistryError;
use crate::registry::Registry;
use crate::slot::{SlotOwner, ThreadLaneSet};
use ada_shm::clock::MonotonicClock;
use std::cell::{Cell, RefCell};

#[derive(Clone, Copy)]
struct Cached {
    uid: u64,
    lanes: *const ThreadLaneSet,
    index: u32,
    generation: u32,
}

impl Cached {
    const EMPTY: Cached = Cached {
        uid: 0,
        lanes: core::ptr::null(),
        index: 0,
        generation: 0,
    };
}

struct Held {
    registry: Registry,
    index: u32,
    generation: u32,
}

impl Drop for Held {
    fn drop(&mut self) {
        // `FAST` has no destructor, so it is still accessible here; forget the slot first.
        let _ = FAST.try_with(|f| {
            if f.get().uid == self.registry.uid() {
                f.set(Cached::EMPTY);
            }
        });
        let view = self.registry.view();
        if let Some(lanes) = view.slot(self.index) {
            view.unregister(ThreadSlot {
                lanes,
                index: self.index,
                generation: self.generation,
            });
        }
    }
}

thread_local! {
    static FAST: Cell<Cached> = const { Cell::new(Cached::EMPTY) };
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    static REFUSED: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

impl Registry {
    /// The calling thread's slot, registering it on first use. After the first call this is a
    /// thread-local read and a compare. The slot is released to the drain when the thread exits
    /// (or on [`unregister_current_thread`](Self::unregister_current_thread)).
    #[inline]
    pub fn current_thread(&self) -> Result<ThreadSlot<'_>, RegistryError> {
        let cached = FAST.get();
        if cached.uid == self.uid() {
            // `lanes` was produced by this registry's `view()` (same uid; uids are never reused).
            // SAFETY: it points at a validated slot inside the mapping, which `&self` keeps alive.
            let lanes = unsafe { &*cached.lanes };
            return Ok(ThreadSlot {
                lanes,
                index: cached.index,
                generation: cached.generation,
            });
        }
        self.register_slow()
    }

    #[cold]
    fn register_slow(&self) -> Result<ThreadSlot<'_>, RegistryError> {
        let uid = self.uid();
        let existing = HELD
            .try_with(|held| {
                held.borrow()
                    .iter()
                    .find(|h| h.registry.uid() == uid)
                    .map(|h| (h.index, h.generation))
            })
            .map_err(|_| RegistryError::ThreadExiting)?;
        let view = self.view();
        if let Some((index, generation)) = existing {
            let lanes = view.slot(index).expect("held slot is in range");
            FAST.set(Cached {
                uid,
                lanes,
                index,
                generation,
            });
            return Ok(ThreadSlot {
                lanes,
                index,
                generation,
            });
        }
        let epoch = self.header().reclaim_epoch();
        if REFUSED.get() == (uid, epoch) {
            return Err(RegistryError::Full {
                capacity: self.capacity(),
            });
        }
        let owner = SlotOwner {
            thread_id: rustix::thread::gettid().as_raw_nonzero().get() as u64,
            pid: rustix::process::getpid().as_raw_nonzero().get() as u32,
            generation: 0,
            registered_ns: MonotonicClock::read(),
        };
        let slot = match view.register(owner) {
            Ok(slot) => slot,
            Err(e) => {
                if matches!(e, RegistryError::Full { .. }) {
                    REFUSED.set((uid, epoch));
                }
                return Err(e);
            }
        };
        let held = Held {
            registry: self.clone(),
            index: slot.index,
            generation: slot.generation,
        };
        if HELD.try_with(|h| h.borrow_mut().push(held)).is_err() {
            // Unreachable in practice (checked above), and `held` was dropped, which unregistered.
            return Err(RegistryError::ThreadExiting);
        }
        FAST.set(Cached {
            uid,
            lanes: slot.lanes,
            index: slot.index,
            generation: slot.generation,
        });
        Ok(slot)
    }

    /// Gives the calling thread's slot of this registry back now (instead of at thread exit).
    /// Returns whether the thread held one.
    pub fn unregister_current_thread(&self) -> bool {
        let uid = self.uid();
        let held = HELD
            .try_with(|h| {
                let mut h = h.borrow_mut();
                h.iter()
                    .position(|x| x.registry.uid() == uid)
                    .map(|i| h.swap_remove(i))
            })
            .ok()
            .flatten();
        // Dropping `held` (outside the borrow) unregisters and clears the fast cache.
        held.is_some()
    }
}
