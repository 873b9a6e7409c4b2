//! What a thread does when its active ring is full and the pool has no free ring.
//!
//! This is the backpressure hook: a [`PoolPolicy`] sees every swap (with the free rings left, to
//! track pressure) and decides, on exhaustion, which events to lose. Both choices are counted
//! exactly in the lane's `events_dropped`; the thread never blocks and never spins.

use ada_registry::LaneKind;

/// What to drop when the pool is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropAction {
    /// Recycle the thread's own full active ring: the oldest events still in the thread's hands
    /// are dropped (minus whatever the drain already copied out), new events keep flowing. What
    /// a flight recorder wants: the latest moments survive.
    DropOldest,
    /// Keep the full ring for the drain and drop the new event; retry the free queue on the next
    /// event.
    DropNewest,
}

/// The exhaustion hook.
pub trait PoolPolicy {
    /// The active ring of `lane` is full and no free ring is available: offer the event (its
    /// encoded record) to somewhere else before anything is dropped. `true` if it was taken
    /// (the lane counts it as `spilled`, not lost, and [`on_exhaustion`](Self::on_exhaustion)
    /// is not asked). Not offered once [`DropAction::DropNewest`] has refused an event, until
    /// a ring returns (the refused stretch stays one gap). The default takes nothing. The
    /// agent spills index events into the segment's shared fallback ring here.
    fn spill(&mut self, lane: LaneKind, record: &[u8]) -> bool {
        let _ = (lane, record);
        false
    }
    /// The active ring of `lane` is full, no free ring is available and the event was not
    /// spilled.
    fn on_exhaustion(&mut self, lane: LaneKind) -> DropAction;
    /// A swap succeeded; `free_rings` remain in the free queue.
    fn on_swap(&mut self, lane: LaneKind, free_rings: u32) {
        let _ = (lane, free_rings);
    }
    /// `events` were dropped by `action`.
    fn on_drop(&mut self, lane: LaneKind, action: DropAction, events: u64) {
        let _ = (lane, action, events);
    }
}

/// The default policy: always [`DropAction::DropOldest`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DropOldest;

impl PoolPolicy for DropOldest {
    fn on_exhaustion(&mut self, _lane: LaneKind) -> DropAction {
        DropAction::DropOldest
    }
}

/// Always [`DropAction::DropNewest`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DropNewest;

impl PoolPolicy for DropNewest {
    fn on_exhaustion(&mut self, _lane: LaneKind) -> DropAction {
        DropAction::DropNewest
    }
}

/// The policy chosen at run time (`ada trace --drop-policy`, the segment's settings).
impl PoolPolicy for ada_backpressure::DropPolicy {
    #[inline]
    fn on_exhaustion(&mut self, _lane: LaneKind) -> DropAction {
        match self {
            ada_backpressure::DropPolicy::DropOldest => DropAction::DropOldest,
            ada_backpressure::DropPolicy::DropNewest => DropAction::DropNewest,
        }
    }
}
