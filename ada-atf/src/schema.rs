//! The ATF v4 protobuf schema as owned Rust types (`prost` derives, no code generator).
//!
//! These structs mirror `proto/trace_schema.proto` field for field. The field numbers of the
//! plain ATF v4 schema (`Event` 1–3 and oneof members 10–14, and every field of the payload
//! messages) are fixed for compatibility with existing ATF v4 readers and writers and never
//! change. Everything else is an **additive extension** in numbers that schema leaves unused:
//!
//! | message | field | number | meaning |
//! |---|---|---|---|
//! | `Event` | `function_id` | 4 | stable function id (0 = unknown, omitted on the wire) |
//! | `Event` | `call_depth` | 5 | call depth of the thread when the event was recorded |
//! | `Event` | `lane` | 6 | 0 = index lane, 1 = detail lane ([`Lane`]) |
//! | `Event.payload` | `events_lost` | 15 | [`EventsLost`]: a loss marker where events were dropped |
//! | `Event.payload` | `custom` | 16 | [`Custom`]: a named opaque payload (messages, custom events) |
//! | `Event.payload` | `window_mark` | 17 | [`WindowMark`]: a persistence window, in the stream |
//! | `Event.payload` | `symbol_def` | 18 | [`SymbolDef`]: a function id's name, before its first use |
//! | `Event.payload` | `thread_def` | 19 | [`ThreadDef`]: what the controller knows of a thread, before its first event |
//!
//! A reader that knows only the plain ATF v4 schema skips fields 4–6 as unknown fields and decodes
//! an event carrying a payload member ≥ 15 as an event with no payload; the integration tests
//! prove this with a plain-schema struct.
//!
//! These owned types allocate (strings, maps) and are meant for reading and for tests. The
//! write path uses the borrowed [`EventRef`](crate::EventRef) and the hand-written encoder in
//! [`encode`](crate::encode), which produces the same bytes without a heap allocation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `google.protobuf.Timestamp`, defined locally with the same field numbers so no well-known
/// types crate is needed. ATF v4 stores the trace clock here (see the manifest's `clock`), so
/// the value is **not** necessarily a Unix-epoch time.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Whole seconds (`timestamp_ns / 1_000_000_000`).
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second (`timestamp_ns % 1_000_000_000`), `0..1_000_000_000`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Splits a nanosecond count into whole seconds and the nanoseconds within the second, the
    /// split every ATF v4 timestamp uses.
    pub const fn from_nanos(ns: u64) -> Self {
        Timestamp {
            // u64::MAX / 1e9 < i64::MAX and the remainder < 1e9 < i32::MAX: both casts are exact.
            seconds: (ns / 1_000_000_000) as i64,
            nanos: (ns % 1_000_000_000) as i32,
        }
    }

    /// The inverse of [`Timestamp::from_nanos`]; `None` when the value is negative, has
    /// out-of-range nanoseconds or does not fit in `u64` nanoseconds.
    pub fn to_nanos(self) -> Option<u64> {
        let secs = u64::try_from(self.seconds).ok()?;
        let nanos = u64::try_from(self.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)?;
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)
    }
}

/// One trace event (`message Event`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Event {
    /// Sequence number assigned by the writer, from 1, strictly increasing within a file.
    #[prost(uint64, tag = "1")]
    pub event_id: u64,
    /// The per-session thread number (see the manifest's `threads`).
    #[prost(int32, tag = "2")]
    pub thread_id: i32,
    /// When the event was recorded, in the trace clock.
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
    /// Extension (4): the function id, 0 when unknown.
    #[prost(uint64, tag = "4")]
    pub function_id: u64,
    /// Extension (5): call depth of the thread.
    #[prost(uint32, tag = "5")]
    pub call_depth: u32,
    /// Extension (6): the lane the event came from, 0 = index, 1 = detail (see [`Lane`]).
    #[prost(uint32, tag = "6")]
    pub lane: u32,
    /// What happened.
    #[prost(
        oneof = "event::Payload",
        tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19"
    )]
    pub payload: Option<event::Payload>,
}

/// The `Event.payload` oneof.
pub mod event {
    /// What an [`Event`](super::Event) records. Members 10–14 are the plain ATF v4 schema; 15–19
    /// are additive extensions.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Payload {
        /// 10: the session started.
        #[prost(message, tag = "10")]
        TraceStart(super::TraceStart),
        /// 11: the session ended.
        #[prost(message, tag = "11")]
        TraceEnd(super::TraceEnd),
        /// 12: a function was entered.
        #[prost(message, tag = "12")]
        FunctionCall(super::FunctionCall),
        /// 13: a function returned.
        #[prost(message, tag = "13")]
        FunctionReturn(super::FunctionReturn),
        /// 14: a signal was delivered.
        #[prost(message, tag = "14")]
        SignalDelivery(super::SignalDelivery),
        /// 15 (extension): events were dropped here.
        #[prost(message, tag = "15")]
        EventsLost(super::EventsLost),
        /// 16 (extension): a custom, named payload.
        #[prost(message, tag = "16")]
        Custom(super::Custom),
        /// 17 (extension): a persistence window was dumped.
        #[prost(message, tag = "17")]
        WindowMark(super::WindowMark),
        /// 18 (extension): a function id's name.
        #[prost(message, tag = "18")]
        SymbolDef(super::SymbolDef),
        /// 19 (extension): a thread's identity.
        #[prost(message, tag = "19")]
        ThreadDef(super::ThreadDef),
    }
}

/// `message TraceStart`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TraceStart {
    /// Path of the traced executable.
    #[prost(string, tag = "1")]
    pub executable_path: String,
    /// Its command-line arguments.
    #[prost(string, repeated, tag = "2")]
    pub args: Vec<String>,
    /// `"linux"`, `"darwin"`, ...
    #[prost(string, tag = "3")]
    pub operating_system: String,
    /// `"x86_64"`, `"aarch64"`, ...
    #[prost(string, tag = "4")]
    pub cpu_architecture: String,
}

/// `message TraceEnd`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TraceEnd {
    /// Exit code of the traced process.
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
}

/// `message FunctionCall`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FunctionCall {
    /// Symbol name, empty when unresolved.
    #[prost(string, tag = "1")]
    pub symbol: String,
    /// Function address, 0 when unresolved.
    #[prost(uint64, tag = "2")]
    pub address: u64,
    /// Argument registers by name (`map<string, uint64>`).
    #[prost(btree_map = "string, uint64", tag = "3")]
    pub argument_registers: BTreeMap<String, u64>,
    /// A shallow copy of the top of the stack.
    #[prost(bytes = "vec", tag = "4")]
    pub stack_shallow_copy: Vec<u8>,
}

/// `message FunctionReturn`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FunctionReturn {
    /// Symbol name, empty when unresolved.
    #[prost(string, tag = "1")]
    pub symbol: String,
    /// Function address, 0 when unresolved.
    #[prost(uint64, tag = "2")]
    pub address: u64,
    /// Return registers by name.
    #[prost(btree_map = "string, uint64", tag = "3")]
    pub return_registers: BTreeMap<String, u64>,
}

/// `message SignalDelivery`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignalDelivery {
    /// Signal number.
    #[prost(int32, tag = "1")]
    pub number: i32,
    /// Signal name (`"SIGSEGV"`).
    #[prost(string, tag = "2")]
    pub name: String,
    /// Registers at delivery.
    #[prost(btree_map = "string, uint64", tag = "3")]
    pub registers: BTreeMap<String, u64>,
}

/// Extension `message EventsLost` (payload member 15): `count` events of `lane` were lost (by
/// backpressure or a failure) at this point of the stream: the event sits in the thread's
/// stream where the gap is, between the events recorded before and after it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EventsLost {
    /// The lane that lost them (0 = index, 1 = detail).
    #[prost(uint32, tag = "1")]
    pub lane: u32,
    /// How many events were lost.
    #[prost(uint64, tag = "2")]
    pub count: u64,
    /// Why. ADA's controller writes one of the `LossCause` names of `ada-backpressure`:
    /// `"overwritten"` (drop-oldest recycled buffered events), `"refused"` (drop-newest refused
    /// new ones), `"too_large"` (an event too large for a ring) or `"no_slot"` (a thread refused
    /// a registry slot); other writers may use other words.
    #[prost(string, tag = "3")]
    pub cause: String,
    /// Trace-clock time of the first lost event (0 = unknown).
    #[prost(uint64, tag = "4")]
    pub first_lost_ns: u64,
    /// Trace-clock time of the last lost event (0 = unknown).
    #[prost(uint64, tag = "5")]
    pub last_lost_ns: u64,
}

/// Extension `message Custom` (payload member 16): an application-defined payload.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Custom {
    /// What kind of payload this is (`"message"`, `"exception"`, ...).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Opaque bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// Extension `message WindowMark` (payload member 17): the metadata of one persistence window
/// ([`PersistenceWindow`](crate::PersistenceWindow)), placed in the stream so a reader sees
/// where a dumped window begins. The same record also goes to `window_metadata.jsonl` and the
/// manifest.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct WindowMark {
    /// Window id, from 1.
    #[prost(uint64, tag = "1")]
    pub window_id: u64,
    /// Window start, trace clock ns.
    #[prost(uint64, tag = "2")]
    pub start_ns: u64,
    /// Window end, trace clock ns.
    #[prost(uint64, tag = "3")]
    pub end_ns: u64,
    /// First marked event, trace clock ns (0 = none).
    #[prost(uint64, tag = "4")]
    pub first_mark_ns: u64,
    /// Last event seen in the window, trace clock ns.
    #[prost(uint64, tag = "5")]
    pub last_event_ns: u64,
    /// Events in the window.
    #[prost(uint64, tag = "6")]
    pub total_events: u64,
    /// Marked events in the window.
    #[prost(uint64, tag = "7")]
    pub marked_events: u64,
    /// Whether a mark was seen (why the window was kept).
    #[prost(bool, tag = "8")]
    pub mark_seen: bool,
    /// Additive (absent in older traces: 0). The session thread number of the window's thread.
    #[prost(int32, tag = "9")]
    pub thread_id: i32,
    /// Additive. The window's latest mark, trace clock ns (0 = unknown).
    #[prost(uint64, tag = "10")]
    pub last_mark_ns: u64,
    /// Additive. The index of the trigger that opened the window in the session's trigger set;
    /// absent for an explicit mark (or an older trace).
    #[prost(uint32, optional, tag = "11")]
    pub trigger: Option<u32>,
    /// Additive. Of `total_events`, those persisted from the pre-roll before the first mark.
    #[prost(uint64, tag = "12")]
    pub pre_roll_events: u64,
    /// Additive. Detail events of the thread discarded between the previous window (or the
    /// thread's start) and this one.
    #[prost(uint64, tag = "13")]
    pub discarded_events: u64,
    /// Additive. Of `discarded_events`, those a duration pre-roll wanted but the controller's
    /// per-thread budget could not hold.
    #[prost(uint64, tag = "14")]
    pub over_budget_events: u64,
}

/// Extension `message SymbolDef` (payload member 18): the name of a function id. A writer
/// puts it in the stream before the first event that uses the id, so a trace cut short (its
/// manifest never written) still names its functions; the manifest's `symbols` repeats the
/// table. A definition is not an event of the traced program: its `Event.thread_id` is 0 (no
/// thread) and its `Event.function_id` 0, so per-thread and per-function counts skip it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SymbolDef {
    /// The function id being named (as in `Event.function_id`).
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// The symbol, as the traced program registered it.
    #[prost(string, tag = "2")]
    pub symbol: String,
    /// The function's address, 0 when unknown.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// The module (object file) holding it, empty when unknown.
    #[prost(string, tag = "4")]
    pub module: String,
    /// The source file that defines it, empty when unknown (a `tracing` callsite's file, as
    /// the layer registered it; absent in traces written before it was added).
    #[prost(string, tag = "5")]
    pub file: String,
    /// The line of `file` that defines it, 0 when unknown.
    #[prost(uint32, tag = "6")]
    pub line: u32,
}

/// Extension `message ThreadDef` (payload member 19): what the controller knows of one thread
/// of the session. A writer puts it in the stream before that thread's first event; the
/// manifest's `threads` repeats it. Like [`SymbolDef`], the definition event itself has
/// `Event.thread_id` 0.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ThreadDef {
    /// The per-session thread number being described (as in `Event.thread_id`, from 1).
    #[prost(int32, tag = "1")]
    pub thread_id: i32,
    /// The process the thread belongs to.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// The operating system's thread id.
    #[prost(uint64, tag = "3")]
    pub os_tid: u64,
    /// The thread's name, empty when unknown.
    #[prost(string, tag = "4")]
    pub name: String,
    /// Whether the controller verified `pid` and `os_tid` (a process it traces, a thread that
    /// exists in it). `false`: they are what the traced side claimed in shared memory.
    #[prost(bool, tag = "5")]
    pub verified: bool,
}

/// The lane an event came from (`Event.lane`, extension field 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// 0: the always-persisted index lane (the proto3 default, so omitted on the wire).
    Index,
    /// 1: the selectively persisted detail lane.
    Detail,
}

impl Lane {
    /// The wire value.
    pub const fn as_u32(self) -> u32 {
        match self {
            Lane::Index => 0,
            Lane::Detail => 1,
        }
    }

    /// Decodes a wire value; `None` for values this version does not know.
    pub const fn from_u32(v: u32) -> Option<Lane> {
        match v {
            0 => Some(Lane::Index),
            1 => Some(Lane::Detail),
            _ => None,
        }
    }

    /// The name used in the manifest (`"index"` / `"detail"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Index => "index",
            Lane::Detail => "detail",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_split_and_join() {
        let t = Timestamp::from_nanos(1_500_000_000);
        assert_eq!((t.seconds, t.nanos), (1, 500_000_000));
        assert_eq!(t.to_nanos(), Some(1_500_000_000));
        let max = Timestamp::from_nanos(u64::MAX);
        assert_eq!(max.to_nanos(), Some(u64::MAX));
        assert_eq!(
            Timestamp {
                seconds: -1,
                nanos: 0
            }
            .to_nanos(),
            None
        );
        assert_eq!(
            Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            }
            .to_nanos(),
            None
        );
        assert_eq!(
            Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }
            .to_nanos(),
            None
        );
    }

    #[test]
    fn lane_values() {
        for lane in [Lane::Index, Lane::Detail] {
            assert_eq!(Lane::from_u32(lane.as_u32()), Some(lane));
        }
        assert_eq!(Lane::from_u32(2), None);
        assert_eq!(Lane::Detail.as_str(), "detail");
    }
}
