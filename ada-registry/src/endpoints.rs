//! The two parties' ends of a lane's queues, each split exactly once.
//!
//! A lane has two SPSC queues of ring indices: *submit* (thread → drain: full rings) and
//! *free* (drain → thread: empty rings). The traced thread holds the submit queue's producer
//! and the free queue's consumer ([`LaneProducer`]); the drain holds the other two
//! ([`LaneConsumer`]). Safe code gets them only from the operations that make their owner
//! unique:
//! - a [`LaneProducer`] for each lane comes with a successful registration
//!   ([`crate::RegistryRef::register`]): the slot's FREE → CLAIMED compare-and-swap makes the
//!   registering thread the only owner of that slot generation;
//! - a [`LaneConsumer`] comes from the segment's drain claim ([`crate::DrainClaim::lane`]),
//!   which is exclusive per segment and hands each lane out once.
//!
//! Neither type is `Clone`. Whoever holds one may move it, but never copy it:
//!
//! ```compile_fail
//! use ada_registry::{Lane, LaneKind};
//!
//! let mut lane = Lane::default();
//! let (thread, drain) = lane.split(4, LaneKind::Index, 0);
//! let first = thread.into_parts();
//! let second = thread.into_parts(); // error[E0382]: use of moved value: `thread`
//! ```
//!
//! ```compile_fail
//! use ada_registry::{Lane, LaneKind};
//!
//! let mut lane = Lane::default();
//! let (thread, _drain) = lane.split(4, LaneKind::Index, 0);
//! let copy = thread.clone(); // error[E0599]: no method named `clone`
//! ```
//!
//! and the queues' unchecked constructors are `unsafe`:
//!
//! ```compile_fail
//! use ada_registry::Lane;
//!
//! let lane = Lane::default();
//! let second = lane.submit_queue().producer(); // error[E0133]: call to unsafe function
//! ```

use crate::drain_claim::ClaimGuard;
use crate::lane::{Lane, LaneKind};
use crate::spsc::{Consumer, Producer};
use std::sync::Arc;

/// The traced thread's ends of one lane: the submit queue's producer and the free queue's
/// consumer, plus the lane they belong to.
#[derive(Debug)]
pub struct LaneProducer<'a> {
    lane: &'a Lane,
    kind: LaneKind,
    slot: u32,
    submit: Producer<'a>,
    free: Consumer<'a>,
}

impl<'a> LaneProducer<'a> {
    /// The thread's ends of `lane` (lane `kind` of slot `slot`), without checking that they are
    /// the only ones. Registration ([`crate::RegistryRef::register`]) and [`Lane::split`] are
    /// the checked ways to get them.
    ///
    /// # Safety
    /// No other `LaneProducer` of `lane` may exist while this one is used, in this process or
    /// another: the ring pool's writer owns the rings it pops from the free queue and writes
    /// them because of it.
    pub unsafe fn new_unchecked(lane: &'a Lane, kind: LaneKind, slot: u32) -> Self {
        // SAFETY: forwarded from the caller: this is the thread's one set of ends.
        let submit = unsafe { lane.submit_queue().producer() };
        // SAFETY: as for `submit`: the thread's one free-queue consumer.
        let free = unsafe { lane.free_queue().consumer() };
        LaneProducer {
            lane,
            kind,
            slot,
            submit,
            free,
        }
    }

    /// The lane.
    pub fn lane(&self) -> &'a Lane {
        self.lane
    }

    /// Which lane of the slot.
    pub fn kind(&self) -> LaneKind {
        self.kind
    }

    /// The registry slot.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The lane, the submit queue's producer and the free queue's consumer, for the lane's
    /// writer to keep.
    pub fn into_parts(self) -> (&'a Lane, Producer<'a>, Consumer<'a>) {
        (self.lane, self.submit, self.free)
    }
}

/// The drain's ends of one lane: the submit queue's consumer and the free queue's producer.
#[derive(Debug)]
pub struct LaneConsumer<'a> {
    lane: &'a Lane,
    kind: LaneKind,
    slot: u32,
    submit: Consumer<'a>,
    free: Producer<'a>,
    /// Keeps the drain claim held while these ends exist (`None` for a heap lane).
    _claim: Option<Arc<ClaimGuard<'a>>>,
}

impl<'a> LaneConsumer<'a> {
    /// The drain's ends of `lane` (lane `kind` of slot `slot`), without checking that they are
    /// the only ones. [`crate::DrainClaim::lane`] and [`Lane::split`] are the checked ways to
    /// get them.
    ///
    /// # Safety
    /// No other `LaneConsumer` of `lane` may exist while this one is used, in this process or
    /// another: the drain owns the rings it pops from the submit queue and resets them because
    /// of it.
    pub unsafe fn new_unchecked(lane: &'a Lane, kind: LaneKind, slot: u32) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { Self::new(lane, kind, slot, None) }
    }

    /// # Safety
    /// As [`new_unchecked`](Self::new_unchecked); `claim` is the drain claim that guarantees it.
    pub(crate) unsafe fn new(
        lane: &'a Lane,
        kind: LaneKind,
        slot: u32,
        claim: Option<Arc<ClaimGuard<'a>>>,
    ) -> Self {
        // SAFETY: forwarded from the caller: the drain claim makes these the drain's only ends.
        let submit = unsafe { lane.submit_queue().consumer() };
        // SAFETY: as for `submit`: the drain's one free-queue producer.
        let free = unsafe { lane.free_queue().producer() };
        LaneConsumer {
            lane,
            kind,
            slot,
            submit,
            free,
            _claim: claim,
        }
    }

    /// The lane.
    pub fn lane(&self) -> &'a Lane {
        self.lane
    }

    /// Which lane of the slot.
    pub fn kind(&self) -> LaneKind {
        self.kind
    }

    /// The registry slot.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The submit queue's consumer (full rings arrive here).
    pub fn submit(&mut self) -> &mut Consumer<'a> {
        &mut self.submit
    }

    /// The free queue's producer (empty rings go back here).
    pub fn free(&mut self) -> &mut Producer<'a> {
        &mut self.free
    }

    /// Both ends at once.
    pub fn queues(&mut self) -> (&mut Consumer<'a>, &mut Producer<'a>) {
        (&mut self.submit, &mut self.free)
    }

    /// Re-reads the queue positions after the slot got a new owner (the registering thread
    /// resets both queues before it publishes the slot `ACTIVE`; call this after observing the
    /// new generation with the Acquire load of the slot state).
    pub fn resync(&mut self) {
        self.submit.resync();
        self.free.resync();
    }
}
