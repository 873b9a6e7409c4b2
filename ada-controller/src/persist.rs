//! Selective persistence in the drain: [`Persistence`] (what the detail lane keeps) and the
//! drain's owned copy of a detail record, held as possible pre-roll by a per-thread
//! [`ada_persist::WindowTracker`].
//!
//! In [`Persistence::Windows`] mode every detail record goes through its thread's tracker: a
//! record inside a window (a mark, its pre-roll, its post-roll) reaches the sink, every other
//! one is counted as `discarded` in the thread's detail [`crate::LaneReport`]. What a marked
//! record says (the contract with the agent): a detail record whose `marked` flag is set opens
//! or extends a window; if its first register is `k >= 1`, trigger `k - 1` of the session's
//! trigger set fired; otherwise (no registers, or 0) it is an explicit `ada_agent::mark()`.
//! Index records are always persisted.

use crate::sink::Record;
use ada_persist::{Mark, TriggerId};
use ada_registry::LaneKind;
use ada_ringpool::EventKind;

pub use ada_persist::{PreRoll, WindowConfig};

/// What the drain persists of the detail lane (the index lane is always persisted whole).
///
/// Set with [`ControllerBuilder::persistence`](crate::ControllerBuilder::persistence) or
/// [`Drainer::persistence`](crate::Drainer::persistence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Every detail record reaches the sink (a plain tracer, no windows).
    All,
    /// The flight recorder: only detail records inside windows around marks reach the sink
    /// (pre-roll, post-roll and budget per [`WindowConfig`]); the rest are counted as
    /// `discarded`. The default, with [`WindowConfig::default`]: post-roll 10 ms, and a
    /// [`PreRoll::Buffered`] pre-roll — what the thread's detail rings hold, as in the original
    /// flight recorder: the drain holds copies of a thread's latest detail records up to the
    /// capacity of its detail rings (or `budget_bytes`, if smaller). A [`PreRoll::Duration`]
    /// is held up to `budget_bytes` (default 4 MiB per thread) whatever the rings hold; what it
    /// wanted beyond the budget is reported as `over_budget_before` in [`crate::WindowInfo`].
    /// The budget counts the memory of the held copies (record bytes plus a fixed overhead).
    Windows(WindowConfig),
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence::Windows(WindowConfig::default())
    }
}

/// What made `record` a mark, if it is one (see the [module docs](self)).
pub(crate) fn mark_of(record: &Record<'_>) -> Option<Mark> {
    if !record.marked || record.lane != LaneKind::Detail {
        return None;
    }
    let trigger = record
        .registers
        .first()
        .and_then(|&k| usize::try_from(k.checked_sub(1)?).ok())
        .and_then(TriggerId::new);
    Some(trigger.map_or(Mark::Explicit, Mark::Trigger))
}

/// The bytes `record` takes in its ring (the ring format's encoding, padding included).
pub(crate) fn ring_len(record: &Record<'_>) -> u64 {
    match record.lane {
        LaneKind::Index => ada_ringpool::INDEX_RECORD_SIZE as u64,
        LaneKind::Detail => ada_ringpool::DetailRecord {
            kind: record.kind,
            marked: record.marked,
            timestamp_ns: record.timestamp_ns,
            function_id: record.function_id,
            thread_id: record.thread_id,
            call_depth: record.call_depth,
            registers: record.registers,
            stack: record.stack,
            message: record.message,
        }
        .encoded_len() as u64,
    }
}

/// An owned copy of a detail record, held by a tracker until its fate is known.
#[derive(Debug, Clone)]
pub(crate) struct HeldRecord {
    kind: EventKind,
    timestamp_ns: u64,
    function_id: u64,
    thread_id: u32,
    call_depth: u32,
    marked: bool,
    /// Registers (little-endian), then the stack window, then the message.
    data: Box<[u8]>,
    registers: u8,
    stack_len: u16,
}

impl HeldRecord {
    /// Copies `r` (a detail record: at most 16 registers, a 256-byte stack window and a
    /// 1024-byte message, as validated by the drain; longer parts are cut to those bounds).
    pub(crate) fn new(r: &Record<'_>) -> Self {
        let registers = &r.registers[..r.registers.len().min(ada_ringpool::record::MAX_REGISTERS)];
        let stack = &r.stack[..r.stack.len().min(usize::from(u16::MAX))];
        let mut data = Vec::with_capacity(registers.len() * 8 + stack.len() + r.message.len());
        for reg in registers {
            data.extend_from_slice(&reg.to_le_bytes());
        }
        data.extend_from_slice(stack);
        data.extend_from_slice(r.message);
        HeldRecord {
            kind: r.kind,
            timestamp_ns: r.timestamp_ns,
            function_id: r.function_id,
            thread_id: r.thread_id,
            call_depth: r.call_depth,
            marked: r.marked,
            data: data.into_boxed_slice(),
            registers: registers.len() as u8,
            stack_len: stack.len() as u16,
        }
    }

    /// Bytes this copy costs the drain (counted against the tracker's budget).
    pub(crate) fn cost(&self) -> usize {
        std::mem::size_of::<Self>() + self.data.len()
    }

    /// Hands the record, borrowed again, to `f`.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Record<'_>) -> R) -> R {
        let mut regs = [0u64; ada_ringpool::record::MAX_REGISTERS];
        let n = usize::from(self.registers);
        let (reg_bytes, rest) = self.data.split_at(n * 8);
        for (r, b) in regs.iter_mut().zip(reg_bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            *r = u64::from_le_bytes(word);
        }
        let (stack, message) = rest.split_at(usize::from(self.stack_len));
        f(&Record {
            kind: self.kind,
            lane: LaneKind::Detail,
            timestamp_ns: self.timestamp_ns,
            function_id: self.function_id,
            thread_id: self.thread_id,
            call_depth: self.call_depth,
            marked: self.marked,
            registers: &regs[..n],
            stack,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_record_gives_back_what_it_copied() {
        let regs: Vec<u64> = (1..=16).map(|i| i * 0x0101_0101_0101).collect();
        let stack = [7u8; 256];
        let mut r = Record::new(EventKind::Message, LaneKind::Detail);
        r.timestamp_ns = 42;
        r.function_id = 9;
        r.thread_id = 3;
        r.call_depth = 2;
        r.marked = true;
        r.registers = &regs;
        r.stack = &stack;
        r.message = b"hello";
        let held = HeldRecord::new(&r);
        held.with(|back| assert_eq!(*back, r));
        assert!(held.cost() >= 16 * 8 + 256 + 5);
    }

    #[test]
    fn marks_name_their_trigger() {
        let mut r = Record::new(EventKind::Mark, LaneKind::Detail);
        assert_eq!(mark_of(&r), None, "not marked");
        r.marked = true;
        assert_eq!(mark_of(&r), Some(Mark::Explicit));
        r.registers = &[0];
        assert_eq!(mark_of(&r), Some(Mark::Explicit));
        r.registers = &[3, 99];
        assert_eq!(mark_of(&r), Some(Mark::Trigger(TriggerId::new(2).unwrap())));
        r.registers = &[u64::MAX];
        assert_eq!(mark_of(&r), Some(Mark::Explicit), "no such trigger id");
        r.lane = LaneKind::Index;
        assert_eq!(mark_of(&r), None, "index records never mark");
    }
}
