//! The `trace.json` manifest: what it holds, how it is written and how it is validated.
//!
//! The nine keys of every ATF v4 manifest, with the meanings older ATF v4 writers gave them
//! (never renamed, never redefined):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `os` | string | `"linux"`, `"darwin"` or `"unknown"` |
//! | `arch` | string | `"x86_64"`, `"aarch64"`, or Rust's name for other CPUs |
//! | `pid` | u32 | the traced process |
//! | `sessionId` | u64 | session id (wall-clock ns at start unless the caller chose one) |
//! | `timeStartNs` | u64 | wall-clock (`CLOCK_REALTIME`) ns when the writer was created |
//! | `timeEndNs` | u64 | wall-clock ns at finalize (never below `timeStartNs`) |
//! | `eventCount` | u64 | records in `events.bin`; events are numbered from 1 |
//! | `bytesWritten` | u64 | length of `events.bin` in bytes |
//! | `modules` | array of strings | loaded modules (UUIDs or paths), deduplicated, in first-seen order |
//!
//! Additive keys (a reader of the nine keys above ignores them):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `formatVersion` | u32 | `4` |
//! | `complete` | bool | `true` only if the writer finalized normally and the caller said the session ended normally |
//! | `sessionName` | string | the `session_…` directory name |
//! | `clock` | object | `{name, realtimeOffsetNs?, source?, calibration?}`: the trace clock of event timestamps (`name`); wall-clock ns = event ns + `realtimeOffsetNs`; `source` the clock the traced side stamped events with before the controller converted them to `name` (`"TSC"`, `"CLOCK_MONOTONIC"`; absent: the same as `name`), `calibration` the conversion's `{ticksPerSecond?, points, first, last}` for a counter source: `points` pairs taken in all, `first` and `last` the first and last few as `[ticks, ns]` pairs |
//! | `executable`, `args`, `exitCode` | string, array of strings, i32 | the traced program (optional) |
//! | `minEventTimestampNs`, `maxEventTimestampNs` | u64 | range of event timestamps, trace clock (absent when no events) |
//! | `threads` | array of objects | `{threadId, name?, osTid?, pid?, verified?, lanes: [{lane: "index"/"detail", written, persisted, dropped, discarded, lost?, markers?, state?, stateEntries?, spilled?, viaFallback?}]}`: `threadId` is the `Event.thread_id` of the thread's events; `osTid` and `pid` are what the traced side claimed, trustworthy only when `verified` is `true` (absent: not stated); `lost` is `dropped` by cause (`{overwritten, refused, tooLarge}`), `markers` the `EventsLost` events the lane put into the stream, `state` its last backpressure state (`"NORMAL"`, `"PRESSURE"`, `"DROPPING"`, `"RECOVERY"`) and `stateEntries` how often it entered each (`{NORMAL, PRESSURE, DROPPING, RECOVERY}`); `spilled` the events the thread sent to the shared fallback ring when its pool was exhausted (part of `written`: `written = persisted + spilled + dropped + discarded`), `viaFallback` the events of the thread that reached `events.bin` through that ring (not part of `written`'s balance; absent when 0) |
//! | `foldedThreads` | object | `{threads, unverified, lanes}`: threads beyond the writer's bound, summed instead of listed (`lost`, `markers` and `stateEntries` summed too; no `state`); their events carry thread ids absent from `threads` |
//! | `corruption` | object | name → count of what the controller found wrong in its input (`ringErrors`, `badChunks`, `unverifiedThreads`, ...); absent when nothing was |
//! | `unregisteredDrops` | u64 | events dropped by threads that got no registry slot (absent when 0) |
//! | `unregisteredByLane` | object | `{index, detail}`: `unregisteredDrops` per lane, the `no_slot` cause of each lane's loss |
//! | `dropPolicies` | object | `{index, detail}`: each lane's drop policy in force, `"oldest"` or `"newest"` |
//! | `stabilityNs` | u64 | the backpressure stability period in force (ns) |
//! | `fallback` | object | `{capacity, taken, delivered, markers, corrupt, refused, late, torn, skipped, threads, left}`: the shared fallback ring (events with no thread ring to go to): records it holds, whole records taken by the controller (`delivered` events + loss `markers` + `corrupt`), records producers could not store (`refused`: full or contended; `late`: their slot was abandoned), records the controller could not take (`torn`, `skipped`, and `left` in the ring after its last look), and threads known only from it; absent when nothing went through it |
//! | `unverifiableThreads` | u64 | threads that were gone before their identity could be checked (absent when 0) |
//! | `windows` | array of objects | persistence windows, same keys as `window_metadata.jsonl` |
//! | `triggers` | array of strings | the session's trigger specs, in order: a window's `trigger` is an index into it (absent when the writer was told none) |
//! | `symbols` | array of objects | `{functionId, symbol, address?, module?}`: names for `Event.function_id` |
//! | `loadedModules` | array of objects | `{pid, path, start, end, fileOffset, buildId?, deleted?}`: each file-backed executable mapping the controller saw in a traced process (`/proc/<pid>/maps`, read when it first saw the process, while it ran and before the final drain): the mapped file, its address range `start..end` and file offset (the module's base, where file offset 0 would be, is `start - fileOffset`), the file's ELF build id in lower-case hex (absent: none, or unreadable) and `deleted` when the file was gone or replaced already; a reader names a function id that has no symbol and lies in a module of its thread's process from the file (`ada inspect`, `ada export`). The paths are also in `modules`, which keeps its meaning (strings), so a reader of the nine keys is unaffected; absent in older manifests and when nothing was recorded |
//! | `writeError`, `eventsUnwritten` | string, u64 | present when writing `events.bin` failed: what failed and how many accepted events never reached the file |
//!
//! `timeEndNs` is always wall-clock time, never an event (trace-clock) timestamp (older ATF v4
//! writers mixed the two); event timestamps have their own keys.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ManifestError;
use crate::fsread::{FileFailure, read_regular_limited};
use crate::schema::Lane;
use crate::window::PersistenceWindow;

/// The ATF format version written to `formatVersion`.
pub const FORMAT_VERSION: u32 = 4;

/// The longest `trace.json` [`Manifest::read`] accepts: 64 MiB. A longer file is
/// [`ManifestError::TooLarge`], refused before any of it is read, so a corrupt or hostile
/// manifest cannot make a reader allocate an arbitrary amount.
pub const MAX_MANIFEST_LEN: u64 = 64 << 20;

/// The operating-system name ATF v4 manifests use: `"linux"`, `"darwin"` or `"unknown"`.
pub fn host_os() -> &'static str {
    match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "darwin",
        _ => "unknown",
    }
}

/// The CPU architecture name: `"x86_64"`, `"aarch64"`, or Rust's name for any other CPU.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// Which clock event timestamps use, supplied by the caller (the controller owns the clock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockDescription {
    /// `"CLOCK_MONOTONIC"`, `"TSC"`, ...
    pub name: String,
    /// `CLOCK_REALTIME − trace clock` in ns, sampled at the start; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_offset_ns: Option<i64>,
    /// The clock the traced side stamped events with, before the controller converted them to
    /// `name` (`"TSC"`, `"CLOCK_MONOTONIC"`); `None`: not stated (the same as `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How a counter source was converted; `None` for a clock that needed no conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<ClockCalibration>,
}

/// A counter clock's conversion to the trace clock: (ticks, trace-clock ns) pairs, bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockCalibration {
    /// The counter's rate over the whole calibration; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks_per_second: Option<u64>,
    /// Pairs taken in all (more than `first` and `last` hold on a long run).
    #[serde(default)]
    pub points: u64,
    /// The first pairs, `[ticks, ns]`.
    #[serde(default)]
    pub first: Vec<[u64; 2]>,
    /// The last pairs, `[ticks, ns]` (none in common with `first`).
    #[serde(default)]
    pub last: Vec<[u64; 2]>,
}

impl ClockDescription {
    /// A clock description.
    pub fn new(name: impl Into<String>, realtime_offset_ns: Option<i64>) -> Self {
        ClockDescription {
            name: name.into(),
            realtime_offset_ns,
            source: None,
            calibration: None,
        }
    }
}

impl Default for ClockDescription {
    /// `CLOCK_MONOTONIC` with an unknown offset.
    fn default() -> Self {
        ClockDescription::new("CLOCK_MONOTONIC", None)
    }
}

/// A lane's lost events by cause (`lost`): the `LossCause` names of `ada-backpressure`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostByCause {
    /// Buffered events recycled by drop-oldest.
    #[serde(default)]
    pub overwritten: u64,
    /// New events refused by drop-newest.
    #[serde(default)]
    pub refused: u64,
    /// Events too large for a ring.
    #[serde(default)]
    pub too_large: u64,
}

impl LostByCause {
    /// The sum of the causes (saturating: the counts may come from a file).
    pub fn total(&self) -> u64 {
        self.overwritten
            .saturating_add(self.refused)
            .saturating_add(self.too_large)
    }
}

/// Times a lane entered each backpressure state (`stateEntries`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntries {
    /// Entries into NORMAL (back from RECOVERY).
    #[serde(rename = "NORMAL", default)]
    pub normal: u64,
    /// Entries into PRESSURE.
    #[serde(rename = "PRESSURE", default)]
    pub pressure: u64,
    /// Entries into DROPPING.
    #[serde(rename = "DROPPING", default)]
    pub dropping: u64,
    /// Entries into RECOVERY.
    #[serde(rename = "RECOVERY", default)]
    pub recovery: u64,
}

impl StateEntries {
    /// From counts in state order (NORMAL, PRESSURE, DROPPING, RECOVERY).
    pub const fn from_array(a: [u64; 4]) -> Self {
        StateEntries {
            normal: a[0],
            pressure: a[1],
            dropping: a[2],
            recovery: a[3],
        }
    }

    /// Whether the lane ever left NORMAL (entered any other state).
    pub const fn left_normal(&self) -> bool {
        self.pressure != 0 || self.dropping != 0 || self.recovery != 0
    }
}

/// A per-lane pair of values (`dropPolicies`, `unregisteredByLane`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerLane<T> {
    /// The index lane's.
    pub index: T,
    /// The detail lane's.
    pub detail: T,
}

/// Event accounting of one lane of one thread. With nothing lost,
/// `written == persisted + spilled + dropped + discarded`; `dropped` is the sum of `lost` by
/// cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneCounters {
    /// Which lane.
    pub lane: Lane,
    /// Events the thread recorded.
    pub written: u64,
    /// Events that reached `events.bin`.
    pub persisted: u64,
    /// Events dropped by the backpressure policy.
    pub dropped: u64,
    /// Events discarded by selective persistence (unmarked windows).
    pub discarded: u64,
    /// `dropped` by cause (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostByCause>,
    /// `EventsLost` events (loss markers) the lane put into the stream (absent in older
    /// manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<u64>,
    /// The lane's last backpressure state: `"NORMAL"`, `"PRESSURE"`, `"DROPPING"` or
    /// `"RECOVERY"` (absent when unknown, for folded threads, and in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// How often the lane entered each state (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_entries: Option<StateEntries>,
    /// Events the thread sent to the shared fallback ring when its pool was exhausted (part of
    /// `written`; absent when 0 and in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spilled: Option<u64>,
    /// Events of the thread that reached `events.bin` through the shared fallback ring (not
    /// part of `written`'s balance; absent when 0 and in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_fallback: Option<u64>,
    /// `beforeAttach`: in a continuation's trace, events of a thread its controller inherited
    /// from the one that died that are not in this trace because they were counted before the
    /// take-over (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_attach: Option<u64>,
}

impl LaneCounters {
    /// Zeroed counters for `lane`.
    pub const fn new(lane: Lane) -> Self {
        LaneCounters {
            lane,
            written: 0,
            persisted: 0,
            dropped: 0,
            discarded: 0,
            lost: None,
            markers: None,
            state: None,
            state_entries: None,
            spilled: None,
            via_fallback: None,
            before_attach: None,
        }
    }

    /// Whether every written event is accounted for, without overflow:
    /// `written == persisted + spilled + dropped + discarded + beforeAttach` (`spilled` and
    /// `beforeAttach` absent count as 0).
    pub fn is_balanced(&self) -> bool {
        self.persisted
            .checked_add(self.spilled.unwrap_or(0))
            .and_then(|s| s.checked_add(self.dropped))
            .and_then(|s| s.checked_add(self.discarded))
            .and_then(|s| s.checked_add(self.before_attach.unwrap_or(0)))
            == Some(self.written)
    }
}

/// One traced thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadSummary {
    /// The `Event.thread_id` this thread's events carry.
    pub thread_id: i32,
    /// Thread name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OS thread id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_tid: Option<u64>,
    /// Process id of the thread's process, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Whether the writer verified `pid` and `os_tid` (absent: not stated, as in older
    /// manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Per-lane counters.
    #[serde(default)]
    pub lanes: Vec<LaneCounters>,
}

/// Threads summed instead of listed (`foldedThreads`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoldedThreadsSummary {
    /// How many threads were folded.
    pub threads: u64,
    /// How many of them were not verified.
    #[serde(default)]
    pub unverified: u64,
    /// Their per-lane counters, summed.
    #[serde(default)]
    pub lanes: Vec<LaneCounters>,
}

/// The shared fallback ring's accounting (`fallback`): see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FallbackSummary {
    /// Records the ring holds.
    pub capacity: u64,
    /// Whole records the controller took out of it (`delivered + markers + corrupt`, plus any
    /// the sink failed to write).
    pub taken: u64,
    /// Events it delivered to `events.bin` (the sum of the lanes' `viaFallback`).
    pub delivered: u64,
    /// Loss markers among the records.
    pub markers: u64,
    /// Records that did not validate.
    pub corrupt: u64,
    /// Records producers could not store (ring full or contended).
    pub refused: u64,
    /// Records whose slot was abandoned before their producer committed them.
    pub late: u64,
    /// Committed records whose fields did not check out.
    pub torn: u64,
    /// Slots the controller abandoned (a producer stalled or died mid-write).
    pub skipped: u64,
    /// Threads known only from the ring (they never held a registry slot).
    pub threads: u64,
    /// Records still in the ring after the controller's last look (not in `events.bin`).
    pub left: u64,
}

/// A name for a `function_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolEntry {
    /// The id used in `Event.function_id`.
    pub function_id: u64,
    /// Symbol name.
    pub symbol: String,
    /// Address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u64>,
    /// Module, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The source file that defines it, if known (a `tracing` callsite's file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of `file` that defines it, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// One file-backed executable mapping of a traced process (`loadedModules`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleEntry {
    /// The process that had it mapped.
    pub pid: u32,
    /// The mapped file.
    pub path: String,
    /// First address of the mapping.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// File offset the mapping starts at.
    pub file_offset: u64,
    /// The file's ELF build id, lower-case hex (`None`: none or not readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The file was deleted or replaced after it was mapped (absent: `false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ModuleEntry {
    /// The address file offset 0 would be mapped at: `start - fileOffset` (wrapping).
    pub fn base(&self) -> u64 {
        self.start.wrapping_sub(self.file_offset)
    }

    /// Whether `address` lies in the mapping.
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }
}

/// `readiness`: when the controller published the registry ready and when it reached steady
/// state (the controller's clock, normally the trace clock).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessSummary {
    /// `epoch`: the registry epoch the controller published ready under.
    pub epoch: u32,
    /// `readyAtNs`: when ready was published (warm-up mode).
    pub ready_at_ns: u64,
    /// `steadyAtNs`: when the mode became steady (absent: it never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_at_ns: Option<u64>,
    /// `readyToSteadyNs`: the time from ready to steady (absent: never steady).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_steady_ns: Option<u64>,
    /// `warmUpNs`: the configured warm-up period.
    pub warm_up_ns: u64,
    /// `warmUpRestarts`: times an unhealthy drain iteration started the period again.
    #[serde(default)]
    pub warm_up_restarts: u64,
}

/// Entries into each agent mode (`agentStats.modeEntries`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeEntries {
    /// `startup`.
    pub startup: u64,
    /// `warmUp`.
    pub warm_up: u64,
    /// `steady`.
    pub steady: u64,
    /// `stalled`.
    pub stalled: u64,
}

/// `agentStats`: the agents' own statistics, summed over the session's processes. Written by
/// the traced processes: information only, never trusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatsSummary {
    /// `modeTransitions`.
    pub mode_transitions: u64,
    /// `dormancies`: times an agent went dormant (its controller gone).
    #[serde(default)]
    pub dormancies: u64,
    /// `modeEntries`.
    pub mode_entries: ModeEntries,
    /// `reattaches`: processes that followed a new epoch (a restarted controller).
    pub reattaches: u64,
}

/// `continuation`: this trace continues a session whose controller died.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinuationSummary {
    /// `segment`: the session's segment (`ADA_SHM`).
    pub segment: String,
    /// `epoch`: the epoch the continuing controller published.
    pub epoch: u32,
    /// `previousControllerPid`: the controller that died (as the segment's control block
    /// named it).
    pub previous_controller_pid: u32,
}

/// What the caller knows at finalize and the writer does not: the writer never sees rings,
/// so every counter here is supplied by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    /// Whether the trace holds everything its controller could drain and was finalized by it.
    /// Pass `false` when salvaging a trace whose writer or controller crashed. A traced process
    /// that was killed does not make a trace incomplete: the controller drains what it had
    /// committed, and `exit_code` tells how it ended. Default `true`.
    pub complete: bool,
    /// The traced executable.
    pub executable: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Loaded modules; duplicates are removed, first occurrence kept.
    pub modules: Vec<String>,
    /// The traced processes' executable mappings (`loadedModules`; empty: not written).
    pub loaded_modules: Vec<ModuleEntry>,
    /// Per-thread, per-lane accounting.
    pub threads: Vec<ThreadSummary>,
    /// Names for function ids.
    pub symbols: Vec<SymbolEntry>,
    /// Threads summed instead of listed, if any.
    pub folded_threads: Option<FoldedThreadsSummary>,
    /// What the caller found wrong in its input: name → count (zero counts are left out).
    pub corruption: std::collections::BTreeMap<String, u64>,
    /// Events dropped by threads that got no registry slot.
    pub unregistered_drops: u64,
    /// Threads gone before their identity could be checked.
    pub unverifiable_threads: u64,
    /// `unregistered_drops` per lane (`unregisteredByLane`; `None`: not written).
    pub unregistered_by_lane: Option<PerLane<u64>>,
    /// Each lane's drop policy in force, `"oldest"` or `"newest"` (`dropPolicies`; `None`: not
    /// written).
    pub drop_policies: Option<PerLane<String>>,
    /// The backpressure stability period in force, ns (`stabilityNs`; `None`: not written).
    pub stability_ns: Option<u64>,
    /// The shared fallback ring's accounting (`fallback`; `None`: not written).
    pub fallback: Option<FallbackSummary>,
    /// When the registry was ready and steady (`readiness`; `None`: not written).
    pub readiness: Option<ReadinessSummary>,
    /// The agents' statistics (`agentStats`; `None`: not written).
    pub agent_stats: Option<AgentStatsSummary>,
    /// The session this trace continues (`continuation`; `None`: not a continuation).
    pub continuation: Option<ContinuationSummary>,
}

impl Default for TraceSummary {
    fn default() -> Self {
        TraceSummary {
            complete: true,
            executable: None,
            args: Vec::new(),
            exit_code: None,
            modules: Vec::new(),
            loaded_modules: Vec::new(),
            threads: Vec::new(),
            symbols: Vec::new(),
            folded_threads: None,
            corruption: std::collections::BTreeMap::new(),
            unregistered_drops: 0,
            unverifiable_threads: 0,
            unregistered_by_lane: None,
            drop_policies: None,
            stability_ns: None,
            fallback: None,
            readiness: None,
            agent_stats: None,
            continuation: None,
        }
    }
}

/// The nine keys of every ATF v4 manifest, in the order older ATF v4 writers emitted them. Every
/// manifest carries them with their established meanings; everything else is additive.
pub const ORIGINAL_KEYS: [&str; 9] = [
    "os",
    "arch",
    "pid",
    "sessionId",
    "timeStartNs",
    "timeEndNs",
    "eventCount",
    "bytesWritten",
    "modules",
];

/// The parsed (or about to be written) `trace.json`. Field order is key order on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `os`.
    pub os: String,
    /// `arch`.
    pub arch: String,
    /// `pid`.
    pub pid: u32,
    /// `sessionId`.
    pub session_id: u64,
    /// `timeStartNs` (wall clock).
    pub time_start_ns: u64,
    /// `timeEndNs` (wall clock).
    pub time_end_ns: u64,
    /// `eventCount`.
    pub event_count: u64,
    /// `bytesWritten`.
    pub bytes_written: u64,
    /// `modules`.
    pub modules: Vec<String>,
    /// `formatVersion` (absent in manifests of older ATF v4 writers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_version: Option<u32>,
    /// `complete` (absent in manifests of older ATF v4 writers, which were always final).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// `sessionName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// `clock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockDescription>,
    /// `executable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// `args`.
    pub args: Vec<String>,
    /// `exitCode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `minEventTimestampNs` (trace clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_event_timestamp_ns: Option<u64>,
    /// `maxEventTimestampNs` (trace clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_timestamp_ns: Option<u64>,
    /// `threads`.
    pub threads: Vec<ThreadSummary>,
    /// `windows`.
    pub windows: Vec<PersistenceWindow>,
    /// `triggers`: the session's trigger specs; a window's `trigger` indexes it (empty when
    /// absent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// `symbols`.
    pub symbols: Vec<SymbolEntry>,
    /// `loadedModules` (empty when absent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loaded_modules: Vec<ModuleEntry>,
    /// `writeError`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
    /// `eventsUnwritten`.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_unwritten: u64,
    /// `foldedThreads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_threads: Option<FoldedThreadsSummary>,
    /// `corruption` (empty when absent).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub corruption: std::collections::BTreeMap<String, u64>,
    /// `unregisteredDrops` (0 when absent).
    #[serde(skip_serializing_if = "is_zero")]
    pub unregistered_drops: u64,
    /// `unverifiableThreads` (0 when absent).
    #[serde(skip_serializing_if = "is_zero")]
    pub unverifiable_threads: u64,
    /// `unregisteredByLane`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unregistered_by_lane: Option<PerLane<u64>>,
    /// `dropPolicies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_policies: Option<PerLane<String>>,
    /// `stabilityNs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability_ns: Option<u64>,
    /// `fallback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSummary>,
    /// `readiness`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessSummary>,
    /// `agentStats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_stats: Option<AgentStatsSummary>,
    /// `continuation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<ContinuationSummary>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Manifest {
    /// Threads the trace accounts for: listed plus folded.
    pub fn thread_count(&self) -> u64 {
        // Saturating: `foldedThreads.threads` is read from the file.
        (self.threads.len() as u64)
            .saturating_add(self.folded_threads.as_ref().map_or(0, |f| f.threads))
    }

    /// The sum of the `corruption` counts (0 when the writer found nothing wrong).
    pub fn corruption_total(&self) -> u64 {
        self.corruption
            .values()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Whether the trace is final and whole: `complete` is `true`, or absent (a manifest of
    /// an older ATF v4 writer, which wrote one only at finalize).
    pub fn is_complete(&self) -> bool {
        self.complete.unwrap_or(true)
    }

    /// Writes [`to_json_pretty`](Self::to_json_pretty)'s text to `out` as it is produced,
    /// without building it in memory first (a manifest of thousands of threads is megabytes of
    /// text).
    pub fn write_json_pretty(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")
    }

    /// Pretty JSON, two-space indent, trailing newline.
    pub fn to_json_pretty(&self) -> String {
        // Only strings, integers, bools, arrays and maps with string keys: cannot fail.
        let mut s = serde_json::to_string_pretty(self).expect("manifest serializes infallibly");
        s.push('\n');
        s
    }

    /// Reads and validates `path`. It is opened without blocking and must be a regular file
    /// ([`ManifestError::NotARegularFile`] otherwise, e.g. for a FIFO) of at most
    /// [`MAX_MANIFEST_LEN`] bytes ([`ManifestError::TooLarge`]).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        match read_regular_limited(path, MAX_MANIFEST_LEN) {
            Ok(bytes) => Manifest::from_json_slice(&bytes),
            Err(e) if e.is_not_found() => Err(ManifestError::Missing(path.to_owned())),
            Err(FileFailure::NotRegular { kind }) => Err(ManifestError::NotARegularFile {
                path: path.to_owned(),
                kind,
            }),
            Err(FileFailure::TooLarge { len, max }) => Err(ManifestError::TooLarge {
                path: path.to_owned(),
                len,
                max,
            }),
            Err(FileFailure::Io { source, .. }) => Err(ManifestError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses and validates manifest bytes. The nine ATF v4 keys ([`ORIGINAL_KEYS`]) are
    /// required; additive
    /// keys are optional (`null` counts as absent) but must have the right type when present.
    /// Unknown keys are ignored.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ManifestError::InvalidJson)?;
        let Value::Object(obj) = value else {
            return Err(ManifestError::NotAnObject);
        };
        Manifest::from_object(&obj)
    }

    fn from_object(obj: &Map<String, Value>) -> Result<Manifest, ManifestError> {
        const U64: &str = "an unsigned 64-bit integer";
        Ok(Manifest {
            os: required(obj, "os", "a string", |v| v.as_str().map(str::to_owned))?,
            arch: required(obj, "arch", "a string", |v| v.as_str().map(str::to_owned))?,
            pid: required(obj, "pid", "an unsigned 32-bit integer", |v| {
                v.as_u64().and_then(|n| u32::try_from(n).ok())
            })?,
            session_id: required(obj, "sessionId", U64, Value::as_u64)?,
            time_start_ns: required(obj, "timeStartNs", U64, Value::as_u64)?,
            time_end_ns: required(obj, "timeEndNs", U64, Value::as_u64)?,
            event_count: required(obj, "eventCount", U64, Value::as_u64)?,
            bytes_written: required(obj, "bytesWritten", U64, Value::as_u64)?,
            modules: required(obj, "modules", "an array of strings", |v| {
                v.as_array()?
                    .iter()
                    .map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })?,
            format_version: optional(obj, "formatVersion", "an unsigned 32-bit integer")?,
            complete: optional(obj, "complete", "a bool")?,
            session_name: optional(obj, "sessionName", "a string")?,
            clock: optional(
                obj,
                "clock",
                "an object {name, realtimeOffsetNs?, source?, calibration?}",
            )?,
            executable: optional(obj, "executable", "a string")?,
            args: optional(obj, "args", "an array of strings")?.unwrap_or_default(),
            exit_code: optional(obj, "exitCode", "a 32-bit integer")?,
            min_event_timestamp_ns: optional(obj, "minEventTimestampNs", U64)?,
            max_event_timestamp_ns: optional(obj, "maxEventTimestampNs", U64)?,
            threads: optional(obj, "threads", "an array of thread objects")?.unwrap_or_default(),
            windows: optional(obj, "windows", "an array of window objects")?.unwrap_or_default(),
            triggers: optional(obj, "triggers", "an array of strings")?.unwrap_or_default(),
            symbols: optional(obj, "symbols", "an array of symbol objects")?.unwrap_or_default(),
            loaded_modules: optional(
                obj,
                "loadedModules",
                "an array of module objects {pid, path, start, end, fileOffset, buildId?}",
            )?
            .unwrap_or_default(),
            write_error: optional(obj, "writeError", "a string")?,
            events_unwritten: optional(obj, "eventsUnwritten", U64)?.unwrap_or(0),
            folded_threads: optional(
                obj,
                "foldedThreads",
                "an object {threads, unverified, lanes}",
            )?,
            corruption: optional(obj, "corruption", "an object of unsigned counts")?
                .unwrap_or_default(),
            unregistered_drops: optional(obj, "unregisteredDrops", U64)?.unwrap_or(0),
            unverifiable_threads: optional(obj, "unverifiableThreads", U64)?.unwrap_or(0),
            unregistered_by_lane: optional(
                obj,
                "unregisteredByLane",
                "an object {index, detail} of unsigned counts",
            )?,
            drop_policies: optional(obj, "dropPolicies", "an object {index, detail} of strings")?,
            stability_ns: optional(obj, "stabilityNs", U64)?,
            fallback: optional(
                obj,
                "fallback",
                "an object {capacity, taken, delivered, ...} of unsigned counts",
            )?,
            readiness: optional(
                obj,
                "readiness",
                "an object {epoch, readyAtNs, steadyAtNs?, readyToSteadyNs?, warmUpNs, warmUpRestarts?}",
            )?,
            agent_stats: optional(
                obj,
                "agentStats",
                "an object {modeTransitions, dormancies?, modeEntries, reattaches}",
            )?,
            continuation: optional(
                obj,
                "continuation",
                "an object {segment, epoch, previousControllerPid}",
            )?,
        })
    }
}

fn required<T>(
    obj: &Map<String, Value>,
    key: &'static str,
    expected: &'static str,
    get: impl FnOnce(&Value) -> Option<T>,
) -> Result<T, ManifestError> {
    let v = obj.get(key).ok_or(ManifestError::MissingKey(key))?;
    get(v).ok_or(ManifestError::WrongType { key, expected })
}

fn optional<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|_| ManifestError::WrongType { key, expected }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"{
  "os": "linux",
  "arch": "x86_64",
  "pid": 4242,
  "sessionId": 1700000000000000000,
  "timeStartNs": 1700000000000000000,
  "timeEndNs": 1700000001000000000,
  "eventCount": 3,
  "bytesWritten": 120,
  "modules": ["a", "b"]
}"#;

    #[test]
    fn reads_a_manifest_of_the_original_writer() {
        let m = Manifest::from_json_slice(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(m.pid, 4242);
        assert_eq!(m.session_id, 1_700_000_000_000_000_000);
        assert_eq!(m.modules, ["a", "b"]);
        assert_eq!(m.format_version, None);
        assert!(m.is_complete());
        assert!(m.threads.is_empty());
    }

    #[test]
    fn the_streamed_manifest_is_the_pretty_text_byte_for_byte() {
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["threads"] = serde_json::json!([{"threadId": 1, "lanes": []}]);
        let m = Manifest::from_json_slice(v.to_string().as_bytes()).unwrap();
        let mut streamed = Vec::new();
        m.write_json_pretty(&mut streamed).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), m.to_json_pretty());
        assert!(m.to_json_pretty().ends_with("}\n"));
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            Manifest::from_json_slice(b"{"),
            Err(ManifestError::InvalidJson(_))
        ));
        assert!(matches!(
            Manifest::from_json_slice(b"[1]"),
            Err(ManifestError::NotAnObject)
        ));
        for key in ORIGINAL_KEYS {
            let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
            v.as_object_mut().unwrap().remove(key);
            match Manifest::from_json_slice(v.to_string().as_bytes()) {
                Err(ManifestError::MissingKey(k)) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
            let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
            v[key] = Value::Bool(true);
            match Manifest::from_json_slice(v.to_string().as_bytes()) {
                Err(ManifestError::WrongType { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["pid"] = Value::from(u64::from(u32::MAX) + 1);
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType { key: "pid", .. })
        ));
        v["pid"] = Value::from(-1);
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType { key: "pid", .. })
        ));
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["threads"] = Value::from("nope");
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType { key: "threads", .. })
        ));
        v["threads"] = Value::Null;
        assert!(Manifest::from_json_slice(v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn corruption_folded_threads_and_thread_identity_round_trip() {
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["corruption"] = serde_json::json!({"ringErrors": 3, "unverifiedThreads": 2});
        v["unregisteredDrops"] = Value::from(7);
        v["foldedThreads"] = serde_json::json!({"threads": 5, "unverified": 1, "lanes": [
            {"lane": "index", "written": 9, "persisted": 9, "dropped": 0, "discarded": 0}]});
        v["threads"] = serde_json::json!([{"threadId": 1, "osTid": 99, "pid": 42,
            "verified": false, "lanes": []}]);
        let m = Manifest::from_json_slice(v.to_string().as_bytes()).unwrap();
        assert_eq!(m.corruption_total(), 5);
        assert_eq!(m.corruption["ringErrors"], 3);
        assert_eq!(m.unregistered_drops, 7);
        assert_eq!(m.thread_count(), 6);
        assert_eq!(
            (m.threads[0].pid, m.threads[0].verified),
            (Some(42), Some(false))
        );
        let again = Manifest::from_json_slice(m.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(again, m);
        // Older manifests have none of them.
        let old = Manifest::from_json_slice(ORIGINAL.as_bytes()).unwrap();
        assert_eq!((old.corruption_total(), old.thread_count()), (0, 0));
        assert!(!old.to_json_pretty().contains("corruption"));
        v["corruption"] = serde_json::json!({"ringErrors": -1});
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType {
                key: "corruption",
                ..
            })
        ));
    }

    #[test]
    fn backpressure_keys_round_trip_and_are_optional() {
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["dropPolicies"] = serde_json::json!({"index": "newest", "detail": "oldest"});
        v["stabilityNs"] = Value::from(5_000_000u64);
        v["unregisteredByLane"] = serde_json::json!({"index": 3, "detail": 4});
        v["threads"] = serde_json::json!([{"threadId": 1, "lanes": [
            {"lane": "index", "written": 10, "persisted": 4, "dropped": 6, "discarded": 0,
             "lost": {"overwritten": 1, "refused": 2, "tooLarge": 3}, "markers": 2,
             "state": "RECOVERY",
             "stateEntries": {"NORMAL": 1, "PRESSURE": 2, "DROPPING": 2, "RECOVERY": 1}},
            {"lane": "detail", "written": 1, "persisted": 1, "dropped": 0, "discarded": 0}]}]);
        let m = Manifest::from_json_slice(v.to_string().as_bytes()).unwrap();
        let policies = m.drop_policies.clone().unwrap();
        assert_eq!(
            (policies.index.as_str(), policies.detail.as_str()),
            ("newest", "oldest")
        );
        assert_eq!(m.stability_ns, Some(5_000_000));
        assert_eq!(
            m.unregistered_by_lane,
            Some(PerLane {
                index: 3,
                detail: 4
            })
        );
        let index = &m.threads[0].lanes[0];
        let lost = index.lost.unwrap();
        assert_eq!((lost.overwritten, lost.refused, lost.too_large), (1, 2, 3));
        assert_eq!(lost.total(), index.dropped);
        assert_eq!(index.markers, Some(2));
        assert_eq!(index.state.as_deref(), Some("RECOVERY"));
        assert_eq!(
            index.state_entries,
            Some(StateEntries::from_array([1, 2, 2, 1]))
        );
        assert!(index.state_entries.unwrap().left_normal());
        // A lane of an older writer has none of them.
        let detail = &m.threads[0].lanes[1];
        assert_eq!(
            (
                detail.lost,
                detail.markers,
                &detail.state,
                detail.state_entries
            ),
            (None, None, &None, None)
        );
        let again = Manifest::from_json_slice(m.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(again, m);
        let text = m.to_json_pretty();
        for key in [
            "\"tooLarge\"",
            "\"stateEntries\"",
            "\"dropPolicies\"",
            "\"stabilityNs\"",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
        // Older manifests have none, and write none.
        let old = Manifest::from_json_slice(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(
            (
                &old.drop_policies,
                old.stability_ns,
                &old.unregistered_by_lane
            ),
            (&None, None, &None)
        );
        assert!(!old.to_json_pretty().contains("dropPolicies"));
        // Present with the wrong type: a typed error naming the key.
        v["dropPolicies"] = Value::from("newest");
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType {
                key: "dropPolicies",
                ..
            })
        ));
    }

    #[test]
    fn readiness_agent_stats_and_continuation_round_trip_and_are_optional() {
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v["readiness"] = serde_json::json!({"epoch": 2, "readyAtNs": 10, "steadyAtNs": 60,
            "readyToSteadyNs": 50, "warmUpNs": 50, "warmUpRestarts": 1});
        v["agentStats"] = serde_json::json!({"modeTransitions": 3, "dormancies": 4,
            "modeEntries": {"startup": 1, "warmUp": 1, "steady": 1, "stalled": 0},
            "reattaches": 1});
        v["continuation"] = serde_json::json!({"segment": "/ada_1_x", "epoch": 2,
            "previousControllerPid": 77});
        v["threads"] = serde_json::json!([{"threadId": 1, "lanes": [
            {"lane": "index", "written": 10, "persisted": 4, "dropped": 1, "discarded": 0,
             "beforeAttach": 5}]}]);
        let m = Manifest::from_json_slice(v.to_string().as_bytes()).unwrap();
        let r = m.readiness.clone().unwrap();
        assert_eq!(
            (r.epoch, r.steady_at_ns, r.ready_to_steady_ns),
            (2, Some(60), Some(50))
        );
        let a = m.agent_stats.unwrap();
        assert_eq!((a.mode_entries.warm_up, a.reattaches), (1, 1));
        let c = m.continuation.clone().unwrap();
        assert_eq!(
            (c.segment.as_str(), c.previous_controller_pid),
            ("/ada_1_x", 77)
        );
        let lane = &m.threads[0].lanes[0];
        assert_eq!(lane.before_attach, Some(5));
        assert!(lane.is_balanced(), "10 = 4 + 1 + 0 + 5");
        let again = Manifest::from_json_slice(m.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(again, m);
        let text = m.to_json_pretty();
        for key in [
            "\"readyToSteadyNs\"",
            "\"agentStats\"",
            "\"previousControllerPid\"",
            "\"beforeAttach\"",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
        // Older manifests have none, and write none.
        let old = Manifest::from_json_slice(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(
            (&old.readiness, &old.agent_stats, &old.continuation),
            (&None, &None, &None)
        );
        assert!(!old.to_json_pretty().contains("readiness"));
        // Wrong types name the key.
        v["continuation"] = Value::from(2);
        assert!(matches!(
            Manifest::from_json_slice(v.to_string().as_bytes()),
            Err(ManifestError::WrongType {
                key: "continuation",
                ..
            })
        ));
    }

    #[test]
    fn the_clock_source_and_calibration_round_trip_and_are_optional() {
        // An older manifest's clock: no source, no calibration.
        let old = r#"{"name": "CLOCK_MONOTONIC", "realtimeOffsetNs": -5}"#;
        let c: ClockDescription = serde_json::from_str(old).unwrap();
        assert_eq!(c, ClockDescription::new("CLOCK_MONOTONIC", Some(-5)));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("source") && !json.contains("calibration"),
            "{json}"
        );
        let mut tsc = ClockDescription::new("CLOCK_MONOTONIC", Some(7));
        tsc.source = Some("TSC".into());
        tsc.calibration = Some(ClockCalibration {
            ticks_per_second: Some(3_000_000_000),
            points: 40,
            first: vec![[10, 1], [3_000_010, 1_000_001]],
            last: vec![[9_000_000_010, 3_000_000_001]],
        });
        let json = serde_json::to_string(&tsc).unwrap();
        assert!(
            json.contains(r#""source":"TSC""#) && json.contains(r#""ticksPerSecond":3000000000"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<ClockDescription>(&json).unwrap(),
            tsc
        );
    }

    #[test]
    fn lane_counter_balance() {
        let mut c = LaneCounters::new(Lane::Detail);
        assert!(c.is_balanced());
        c.written = 10;
        c.persisted = 4;
        c.dropped = 1;
        assert!(!c.is_balanced());
        c.discarded = 5;
        assert!(c.is_balanced());
        c.persisted = u64::MAX;
        assert!(!c.is_balanced());
    }

    #[test]
    fn host_names() {
        assert!(["linux", "darwin", "unknown"].contains(&host_os()));
        assert!(!host_arch().is_empty());
    }
}
