//! [`ThreadWriter`]: one registered thread's slot and its two lane writers.
//!
//! Registering claims a slot in the segment's registry (lock-free) and sets up a
//! [`LaneWriter`] for the index lane (function entry/exit: 32-byte records) and one for the
//! detail lane (registers, stack window, messages, marks). Dropping the writer publishes its
//! counters and hands the slot to the drain (`ACTIVE → EXITED`), which persists what is left in
//! its rings and frees it for reuse.

use crate::agent::Agent;
use crate::fallback::AgentPolicy;
use ada_persist::MarkingPolicy;
use ada_persist::TriggerId;
use ada_registry::{LaneKind, RegistryError, SlotOwner, ThreadSlot};
use ada_ringpool::{DetailRecord, EventKind, IndexRecord, LaneWriter, SegmentStore, Written};
use ada_shm::clock::{ClockId, MonotonicClock};

/// What the calling thread must do with its writer after a recording call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep it.
    Stay,
    /// Give the slot back now (drop the writer): the agent followed a new epoch (a restarted
    /// controller: the thread registers again with it at its next event) or went dormant.
    /// Only a slow path (a ring swap, a loss, a state check) ever says so, so the record
    /// path's fast path stays one compare.
    Leave,
}

/// A detail event's contents (everything but the time, thread and depth, which the writer adds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Detail<'d> {
    /// Register values in the architecture's argument order (at most 16).
    pub registers: &'d [u64],
    /// A window of the stack (at most 256 bytes).
    pub stack: &'d [u8],
    /// Message bytes (at most 1024).
    pub message: &'d [u8],
}

/// A registered thread's writers. Not `Send`: it belongs to the thread that registered it.
/// Dropping it publishes the counters and hands the slot to the drain.
pub struct ThreadWriter<'a> {
    /// The slot handle; dropped (unregistering) after the `Drop` impl flushed the counters.
    slot: ThreadSlot<'a>,
    index: LaneWriter<'a, SegmentStore<'a>, AgentPolicy<'a>>,
    detail: LaneWriter<'a, SegmentStore<'a>, AgentPolicy<'a>>,
    agent: &'a Agent,
    /// The agent's attach generation when this writer registered.
    generation: u32,
    thread_id: u32,
    depth: u32,
    /// The clock events are stamped with: the segment's, as the agent read it at attach (a
    /// copy, so the record path's clock choice is one well-predicted branch).
    clock: ClockId,
    /// The agent's policy when it has message triggers (`None`: `message` skips matching).
    message_policy: Option<&'a MarkingPolicy>,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl std::fmt::Debug for ThreadWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadWriter")
            .field("slot", &self.slot.index())
            .field("thread_id", &self.thread_id)
            .field("depth", &self.depth)
            .field("index", &self.index)
            .field("detail", &self.detail)
            .finish()
    }
}

/// Linux thread id of the calling thread.
pub(crate) fn os_thread_id() -> u64 {
    rustix::thread::gettid().as_raw_nonzero().get() as u64
}

impl<'a> ThreadWriter<'a> {
    /// Registers the calling thread with `agent`'s registry.
    pub fn register(agent: &'a Agent) -> Result<ThreadWriter<'a>, RegistryError> {
        let registry = agent.registry();
        let tid = os_thread_id();
        let pid = crate::global::process_id();
        // Read before registering: a new epoch followed meanwhile makes this writer leave at
        // its first slow path and register again, never miss the change.
        let generation = agent.driver().generation();
        let owner = SlotOwner {
            thread_id: tid,
            pid,
            generation: 0,
            // Not an event stamp: CLOCK_MONOTONIC whatever the session clock.
            registered_ns: MonotonicClock::read(),
        };
        let clock = agent.clock();
        let registration = registry.view().register(owner)?;
        let index = registration.slot.index();
        // Cannot fail for a validated registry; on error the registration is dropped, which
        // gives the slot back rather than leaking it.
        let index_store = SegmentStore::new(registry, index, LaneKind::Index)?;
        let detail_store = SegmentStore::new(registry, index, LaneKind::Detail)?;
        // The session's drop policies and stability period, as the controller published them
        // (validated when the agent attached); the watermarks follow from each pool's size.
        let settings = registry.backpressure();
        let geometry = registry.geometry();
        let policy = |drop| AgentPolicy {
            drop,
            fallback: registry.fallback(),
            driver: agent.driver(),
            pid,
            tid,
        };
        let mut index_writer = LaneWriter::new(
            registration.index,
            index_store,
            policy(settings.policies.index),
        );
        // The state machine runs on event stamps: its stability period in the session clock's
        // units.
        let stamps_per_second = registry.control().stamps_per_second();
        let config = |rings| {
            let mut config = settings.config(rings);
            config.stability_ns = in_stamps(config.stability_ns, clock, stamps_per_second);
            config
        };
        index_writer.set_backpressure(config(geometry.index_rings));
        let mut detail_writer = LaneWriter::new(
            registration.detail,
            detail_store,
            policy(settings.policies.detail),
        );
        detail_writer.set_backpressure(config(geometry.detail_rings));
        Ok(ThreadWriter {
            index: index_writer,
            detail: detail_writer,
            slot: registration.slot,
            agent,
            generation,
            thread_id: tid as u32,
            depth: 0,
            clock,
            message_policy: agent.message_policy(),
            _not_send: core::marker::PhantomData,
        })
    }

    /// The registry slot this thread holds.
    pub fn slot_index(&self) -> u32 {
        self.slot.index()
    }

    /// Current call depth (entries minus exits, never below zero).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Continues at call depth `depth` (a thread that recorded before it registered, or
    /// registers again, keeps its nesting).
    pub(crate) fn set_depth(&mut self, depth: u32) {
        self.depth = depth;
    }

    #[inline(always)]
    fn index_event(&mut self, kind: EventKind, function_id: u64) -> Flow {
        let clock = self.clock;
        // The clock is read only for an event that is stored or looks at the pool: a quiet
        // refusal (a producer faster than its drain) reads none (see `write_index_lazily`).
        let written = self.index.write_index_lazily(
            || clock.stamp(),
            IndexRecord {
                timestamp_ns: 0,
                function_id,
                thread_id: self.thread_id,
                kind: kind as u32,
                call_depth: self.depth,
                reserved: 0,
            },
        );
        // The fast path returns `Stored` inline, so this folds away there; a quiet refusal
        // (inline too) leaves the agent's checks to the lane's next full look.
        match written {
            Written::Stored => Flow::Stay,
            Written::DroppedNewest if self.index.refused_quietly() => Flow::Stay,
            _ => self.after_slow_path(),
        }
    }

    /// After a write that took the slow path: leave if the agent followed a new epoch since
    /// this writer registered, or went dormant.
    #[cold]
    #[inline(never)]
    fn after_slow_path(&self) -> Flow {
        let driver = self.agent.driver();
        if driver.dormant() || driver.generation() != self.generation {
            Flow::Leave
        } else {
            Flow::Stay
        }
    }

    /// Function entry: one index record at the new depth.
    #[inline(always)]
    pub fn enter(&mut self, function_id: u64) -> Flow {
        self.depth = self.depth.wrapping_add(1);
        self.index_event(EventKind::Call, function_id)
    }

    /// Function exit: one index record at the depth of the matching entry.
    #[inline(always)]
    pub fn exit(&mut self, function_id: u64) -> Flow {
        let flow = self.index_event(EventKind::Return, function_id);
        self.depth = self.depth.saturating_sub(1);
        flow
    }

    /// A detail event of `kind` (`marked` flags the ring for persistence around it). A record
    /// over the size limits is refused and counted as dropped.
    pub fn detail(
        &mut self,
        kind: EventKind,
        function_id: u64,
        detail: Detail<'_>,
        marked: bool,
    ) -> Flow {
        let record = DetailRecord {
            kind,
            marked,
            timestamp_ns: self.clock.stamp(),
            function_id,
            thread_id: self.thread_id,
            call_depth: self.depth,
            registers: detail.registers,
            stack: detail.stack,
            message: detail.message,
        };
        match self.detail.write_detail(&record) {
            Ok(Written::Stored) => Flow::Stay,
            // Too large: counted as dropped by the writer, which took its slow path for it.
            _ => self.after_slow_path(),
        }
    }

    /// A trigger's mark: a detail record of kind `Mark` for `function_id`, flagged `marked`,
    /// whose one register is the trigger's index + 1 (how the controller tells a trigger's mark
    /// from an explicit [`crate::mark`], which has no registers).
    #[cold]
    #[inline(never)]
    pub fn trigger_mark(&mut self, function_id: u64, trigger: u16) {
        let registers = [u64::from(trigger) + 1];
        let detail = Detail {
            registers: &registers,
            ..Detail::default()
        };
        // Cannot be over the limits. A `Leave` is seen again at the thread's next slow path.
        let _ = self.detail(EventKind::Mark, function_id, detail, true);
    }

    /// The message trigger that fires for `text`, if the agent has message triggers.
    #[inline]
    pub(crate) fn message_trigger(&self, text: &[u8]) -> Option<TriggerId> {
        self.message_policy?.message_verdict(text)
    }

    /// Publishes both lanes' counters to the segment.
    pub fn flush(&self) {
        self.index.flush_counters();
        self.detail.flush_counters();
    }

    /// Backpressure states of the (index, detail) lanes as this thread last evaluated them.
    pub fn lane_states(&self) -> (ada_backpressure::LaneState, ada_backpressure::LaneState) {
        (self.index.state(), self.detail.state())
    }

    /// Counters of (index, detail) lanes as this thread knows them.
    pub fn counters(&self) -> (ada_registry::LaneCounters, ada_registry::LaneCounters) {
        (self.index.counters(), self.detail.counters())
    }
}

/// The highest counter rate believed (100 GHz): the control block is writable by every traced
/// process, and a rewritten rate must not stretch the stability period without bound.
const MAX_STAMPS_PER_SECOND: u64 = 100_000_000_000;

/// `ns` nanoseconds in units of the session clock: counter ticks at `stamps_per_second` for a
/// TSC session, unchanged for `CLOCK_MONOTONIC` or an unknown or implausible rate.
fn in_stamps(ns: u64, clock: ClockId, stamps_per_second: u64) -> u64 {
    match clock {
        ClockId::Tsc if stamps_per_second != 0 && stamps_per_second <= MAX_STAMPS_PER_SECOND => {
            let stamps = u128::from(ns) * u128::from(stamps_per_second) / 1_000_000_000;
            u64::try_from(stamps).unwrap_or(u64::MAX)
        }
        _ => ns,
    }
}

impl Drop for ThreadWriter<'_> {
    fn drop(&mut self) {
        // Pending loss markers and counters first; then the `slot` field's own drop hands the
        // slot to the drain.
        // The index lane refuses without reading the clock: its last refused stretch ends now.
        self.index.settle_at(self.clock.stamp());
        self.detail.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_scaled_to_the_session_clock() {
        assert_eq!(
            in_stamps(7, ClockId::Tsc, u64::MAX),
            7,
            "an implausible rate is ignored"
        );
        assert_eq!(
            in_stamps(5_000_000, ClockId::Monotonic, 3_000_000_000),
            5_000_000
        );
        assert_eq!(
            in_stamps(5_000_000, ClockId::Tsc, 3_000_000_000),
            15_000_000
        );
        assert_eq!(
            in_stamps(5_000_000, ClockId::Tsc, 0),
            5_000_000,
            "rate unknown"
        );
        assert_eq!(
            in_stamps(u64::MAX, ClockId::Tsc, 10_000_000_000),
            u64::MAX,
            "saturates"
        );
    }
}
