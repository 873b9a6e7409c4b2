//! The agent's side of the segment's shared fallback ring (`ada_registry::fallback`): where an
//! index event goes when it has no thread ring to go to.
//!
//! - **Before the registry is ready** (mode STARTUP) and for a **thread refused a slot**
//!   (registry full): each index event is pushed as one record tagged with the process and OS
//!   thread id (the thread's own call depth kept in thread-local storage, see `tls`).
//! - **Spill before drop**: a registered thread whose own pool is exhausted offers the event
//!   here first ([`AgentPolicy`], the lane writer's [`PoolPolicy`]); only when the ring refuses
//!   it does the lane's drop policy apply. The lane counts it as `spilled`. Only on a lane
//!   whose policy refuses new events (drop-newest, the index lane's default): what it keeps
//!   is its oldest events, and the spilled ones extend that stretch, so its loss stays one gap.
//!   A drop-oldest lane keeps its newest events by recycling its own ring; spilling there
//!   would keep stretches between its losses and break its markers' gaps apart, so it does not.
//!   Not while the agent is stalled or dormant either: then nobody drains the ring, and it is
//!   kept for the threads that have no ring at all; a stalled lane keeps what its own rings
//!   hold and counts the rest by its drop policy.
//!
//! Detail events never come here (a record holds one 32-byte index record); without a ring they
//! are counted as lost (`unregistered_by_lane`). A push that the ring refuses (full, contended)
//! is counted by the ring itself. Each event goes to exactly one place: its thread's ring or
//! this ring, never both.

use crate::driver::ModeDriver;
use crate::mode::AgentMode;
use ada_backpressure::DropPolicy;
use ada_registry::LaneKind;
use ada_registry::fallback::{FallbackRecord, FallbackRef};
use ada_ringpool::{DropAction, PoolPolicy};

/// An encoded index record (32 bytes) as the four native-endian words a fallback record
/// carries; `None` for anything else.
pub(crate) fn payload(record: &[u8]) -> Option<[u64; 4]> {
    let bytes: &[u8; 32] = record.try_into().ok()?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    Some([word(0), word(1), word(2), word(3)])
}

/// Pushes one encoded index record for thread (`pid`, `tid`). `false` if there is no ring or
/// it refused the record (counted by the ring).
pub(crate) fn push_index(ring: Option<FallbackRef<'_>>, pid: u32, tid: u64, record: &[u8]) -> bool {
    let (Some(ring), Some(payload)) = (ring, payload(record)) else {
        return false;
    };
    ring.push(&FallbackRecord {
        pid,
        tid,
        lane: LaneKind::Index,
        payload,
    })
    .is_ok()
}

/// A registered thread's lane policy: spill index events into the fallback ring while the
/// controller drains it, then the session's drop policy.
#[derive(Debug)]
pub(crate) struct AgentPolicy<'a> {
    pub(crate) drop: DropPolicy,
    pub(crate) fallback: Option<FallbackRef<'a>>,
    pub(crate) driver: &'a ModeDriver,
    pub(crate) pid: u32,
    pub(crate) tid: u64,
}

impl PoolPolicy for AgentPolicy<'_> {
    fn spill(&mut self, lane: LaneKind, record: &[u8]) -> bool {
        lane == LaneKind::Index
            && self.drop == DropPolicy::DropNewest
            && matches!(self.driver.mode(), AgentMode::WarmUp | AgentMode::Steady)
            && !self.driver.dormant()
            && push_index(self.fallback, self.pid, self.tid, record)
    }

    fn on_exhaustion(&mut self, lane: LaneKind) -> DropAction {
        self.drop.on_exhaustion(lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_ringpool::{EventKind, IndexRecord};
    use zerocopy::IntoBytes;

    #[test]
    fn an_index_record_round_trips_through_the_payload_words() {
        let r = IndexRecord {
            timestamp_ns: 11,
            function_id: 22,
            thread_id: 33,
            kind: EventKind::Return as u32,
            call_depth: 4,
            reserved: 0,
        };
        let words = payload(r.as_bytes()).unwrap();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let back = ada_ringpool::index_records(&bytes).next().unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(payload(&[0u8; 31]), None);
        assert_eq!(payload(&[0u8; 56]), None);
    }
}
