//! [`Sink`]: where drained events go. The ATF v4 writer ([`crate::AtfSink`]) is the default; a
//! custom controller implements this trait to send events elsewhere.
//!
//! Everything a sink sees is a type of this crate ([`Record`], [`ChunkInfo`], [`ThreadInfo`],
//! [`SessionInfo`], [`Report`], [`SinkOutput`], [`SinkError`]) or re-exported by it
//! ([`EventKind`], [`LaneKind`]): a custom sink needs no other ADA crate.

use crate::modules::Module;
use crate::report::Report;
use ada_registry::{LaneKind, SymbolSource};
use ada_ringpool::{EventKind, LossCause};
use std::path::PathBuf;

/// The traced session, as the sink learns it in [`Sink::begin`].
///
/// The caller of [`crate::Controller::start`] supplies what it knows about the traced process
/// (pid, executable, arguments); the controller fills in what it knows itself (the segment
/// name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The segment name (`ADA_SHM`). Set by the controller when the drain starts; a value the
    /// caller put here is replaced.
    pub segment: String,
    /// The traced process (0 if unknown).
    pub pid: u32,
    /// Its executable, if known.
    pub executable: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Whose thread identities the drain accepts as verified (default: `pid` and its
    /// descendants; see [`ProcessTrust`]).
    pub trust: ProcessTrust,
}

/// Which processes' threads the drain may verify.
///
/// A slot's owner fields (pid, OS thread id) are written into the segment by the thread that
/// registered, and any process of the user can rewrite them. The drain calls a thread
/// *verified* only when its pid is a trusted process (one named here, or a descendant of one:
/// the `/proc/<pid>/stat` parent chain is followed, at most [`ProcessTrust::MAX_ANCESTRY`]
/// steps) and `/proc/<pid>/task/<tid>` exists when the drain first sees the thread. Only a
/// verified thread's name is read from `/proc`. Unverified threads are still drained, and
/// flagged (`ThreadInfo::verified`, the manifest's `verified`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessTrust {
    /// The session's process ([`SessionInfo::pid`]) and its descendants; nobody when the pid
    /// is 0 (unknown). The default, and what `ada trace` uses (the spawned command).
    #[default]
    SessionProcess,
    /// These processes and their descendants (a custom controller that attaches to processes
    /// it did not spawn). An empty list verifies nobody: every thread is unverified, and none is
    /// checked or counted as corruption.
    Processes(Vec<u32>),
    /// Any process whose `/proc/<pid>/task/<tid>` exists: no ancestry check. An explicit
    /// choice for a controller that serves every process of the user.
    AnyProcess,
}

impl ProcessTrust {
    /// The most parent links followed from a thread's pid towards a trusted process.
    pub const MAX_ANCESTRY: usize = 64;
}

impl SessionInfo {
    /// A session tracing process `pid` (0 if unknown), executable and arguments unknown.
    pub fn new(pid: u32) -> Self {
        SessionInfo {
            pid,
            ..SessionInfo::default()
        }
    }

    /// With the traced process's executable.
    pub fn with_executable(mut self, executable: impl Into<String>) -> Self {
        self.executable = Some(executable.into());
        self
    }

    /// With the processes whose threads the drain may verify (default
    /// [`ProcessTrust::SessionProcess`]).
    pub fn with_trust(mut self, trust: ProcessTrust) -> Self {
        self.trust = trust;
        self
    }

    /// With the traced process's arguments (without the executable).
    pub fn with_args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
}

/// The thread a record came from.
///
/// `number` and `verified` are the controller's own; `pid` and `os_tid` are what the slot's
/// owner fields (or, for a thread known only from the shared fallback ring, its records) said
/// when the drain first saw the thread (written by the traced side: trustworthy only when
/// `verified`).
///
/// A thread whose events came through the shared fallback ring before it had a slot (written
/// before the registry was ready, or refused a slot) is first announced with `slot ==`
/// [`ThreadInfo::NO_SLOT`]. If it registers later, its records from then on carry its slot and
/// generation under the **same** `number` (it is not announced again with
/// [`Sink::thread`]): key a thread by `number`, never by the whole `ThreadInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// Registry slot, or [`ThreadInfo::NO_SLOT`] for a thread the drain knows only from the
    /// shared fallback ring.
    pub slot: u32,
    /// Claim generation of the slot (slots are reused by later threads); 0 with
    /// [`ThreadInfo::NO_SLOT`].
    pub generation: u32,
    /// Process id of the thread's process, as the slot claims it.
    pub pid: u32,
    /// OS thread id, as the slot claims it.
    pub os_tid: u64,
    /// The session thread number: 1, 2, ... per (slot, generation) in the order the drain first
    /// saw them. Assigned by the controller (never read from the segment); the ATF event's
    /// `thread_id` and the manifest's `threadId`.
    pub number: u32,
    /// The pid is a process the controller trusts and its task `os_tid` existed when the drain
    /// first saw the thread (see [`ProcessTrust`]).
    pub verified: bool,
}

impl ThreadInfo {
    /// The `slot` of a thread that holds no registry slot: all the drain knows of it came
    /// through the shared fallback ring (keyed by its claimed pid and OS thread id).
    pub const NO_SLOT: u32 = u32::MAX;

    /// Whether the thread held a registry slot when this description was made (`slot` is not
    /// [`ThreadInfo::NO_SLOT`]).
    pub fn has_slot(&self) -> bool {
        self.slot != Self::NO_SLOT
    }

    /// A thread description (for sinks' own tests; the drain makes the real ones), with
    /// session number 0 and not verified.
    pub fn new(slot: u32, generation: u32, pid: u32, os_tid: u64) -> Self {
        ThreadInfo {
            slot,
            generation,
            pid,
            os_tid,
            number: 0,
            verified: false,
        }
    }

    /// With session thread number `number`.
    pub fn with_number(mut self, number: u32) -> Self {
        self.number = number;
        self
    }
}

/// One ring's worth of records, as the drain took it out of a thread's lane: what
/// [`Sink::chunk_begin`] and [`Sink::chunk_end`] describe.
///
/// A ring is a thread's unit of buffering: the drain takes a ring the thread filled and
/// submitted (`from_active == false`, numbered by `seq`), or copies what the thread has
/// committed so far to the ring it is still writing (`from_active == true`; the same ring can
/// then show up again in later chunks, each holding only records not delivered before).
///
/// A chunk with `from_fallback == true` holds a run of one thread's index records taken from
/// the segment's shared fallback ring (`ring` is then 0, `from_active` false, `seq` `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ChunkInfo {
    /// The lane the ring belongs to.
    pub lane: LaneKind,
    /// The ring's index in the lane's pool.
    pub ring: u32,
    /// The ring is flagged MARKED: it holds a marked event (`ada_agent::mark`), so a
    /// selective-persistence sink keeps the window around it. Only detail rings are marked.
    pub marked: bool,
    /// Copied from the thread's active ring rather than taken as a submitted ring.
    pub from_active: bool,
    /// The lane-local fill sequence number of a submitted ring (`None` when `from_active` or
    /// `from_fallback`).
    /// Written by the traced thread: informative, not validated.
    pub seq: Option<u64>,
    /// Bytes of records the chunk held (valid or not).
    pub bytes: u64,
    /// Taken from the shared fallback ring rather than from the thread's own rings.
    pub from_fallback: bool,
}

/// One validated record, borrowed from the drain's copy of a ring.
///
/// Index records carry no registers, stack or message; detail records may carry all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The lane the record came from.
    pub lane: LaneKind,
    /// `CLOCK_MONOTONIC` nanoseconds (agents' counter ticks already converted: see
    /// [`crate::stamps`]).
    pub timestamp_ns: u64,
    /// Function or callsite id (named by [`Sink::symbol`] when the agent registered it).
    pub function_id: u64,
    /// OS thread id of the recording thread, low 32 bits, as the thread wrote it into the
    /// record (untrusted: [`ThreadInfo::number`] is the controller's identity of the thread).
    pub thread_id: u32,
    /// Call depth of the thread at the event.
    pub call_depth: u32,
    /// The event itself matched a marking pattern (detail records; `ada_agent::mark`).
    pub marked: bool,
    /// Register values in the architecture's argument order (at most 16).
    pub registers: &'a [u64],
    /// A window of the stack (at most 256 bytes).
    pub stack: &'a [u8],
    /// Message bytes: marks, messages, exceptions (at most 1024 bytes).
    pub message: &'a [u8],
}

impl<'a> Record<'a> {
    /// A record of `kind` on `lane` with every other field zero or empty (for sinks' own tests;
    /// set the public fields as needed).
    pub fn new(kind: EventKind, lane: LaneKind) -> Self {
        Record {
            kind,
            lane,
            timestamp_ns: 0,
            function_id: 0,
            thread_id: 0,
            call_depth: 0,
            marked: false,
            registers: &[],
            stack: &[],
            message: &[],
        }
    }
}

/// One closed persistence window of one thread's detail lane, as [`Sink::window`] announces
/// it (selective persistence: see [`crate::Persistence`]).
///
/// A window is opened by a marked detail record (a trigger fired, or an explicit
/// `ada_agent::mark()`), holds the detail records of the pre-roll before it and of the
/// post-roll after the latest mark, and closes when a record (or the drain's clock) is past
/// that post-roll, or when the thread's lane is drained for the last time. All times are
/// `CLOCK_MONOTONIC` nanoseconds, as the records carry them once converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct WindowInfo {
    /// Window id: 1, 2, ... per thread, in the order the windows opened.
    pub id: u64,
    /// Timestamp of the window's first persisted record (its oldest pre-roll record, or the
    /// mark).
    pub start_ns: u64,
    /// Timestamp of the window's last persisted record.
    pub end_ns: u64,
    /// Timestamp of the mark that opened the window.
    pub first_mark_ns: u64,
    /// Timestamp of the window's latest mark.
    pub last_mark_ns: u64,
    /// The trigger that opened the window: its index in the session's trigger set, or `None`
    /// for an explicit mark (a marked record whose first register is not `index + 1`).
    pub trigger: Option<u32>,
    /// Marks in the window (1 + those that extended it).
    pub marks: u64,
    /// Records the window persisted (handed to [`Sink::record`]), pre-roll and marks included.
    pub persisted: u64,
    /// Of `persisted`, those that came from the pre-roll the drain held.
    pub pre_roll: u64,
    /// Detail records of the thread discarded between the previous window (or the thread's
    /// start) and this window.
    pub discarded_before: u64,
    /// Of `discarded_before`, those a duration pre-roll wanted but the drain's per-thread
    /// budget could not hold.
    pub over_budget_before: u64,
}

impl WindowInfo {
    /// A window `id` spanning `start_ns..=end_ns`, opened by an explicit mark at `start_ns`,
    /// with one mark and nothing persisted (for sinks' own tests; set the public fields as
    /// needed — the drain makes the real ones).
    pub fn new(id: u64, start_ns: u64, end_ns: u64) -> Self {
        WindowInfo {
            id,
            start_ns,
            end_ns,
            first_mark_ns: start_ns,
            last_mark_ns: start_ns,
            trigger: None,
            marks: 1,
            persisted: 0,
            pre_roll: 0,
            discarded_before: 0,
            over_budget_before: 0,
        }
    }
}

/// Events one thread's lane lost, announced at the point of the gap in its stream
/// ([`Sink::events_lost`]): the thread's writer put a loss marker into its ring where it
/// resumed writing, so the loss arrives between the records before and after the hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LossInfo {
    /// The lane that lost them.
    pub lane: LaneKind,
    /// Why they were lost.
    pub cause: LossCause,
    /// How many events.
    pub count: u64,
    /// Timestamp of the first lost event (0: unknown).
    pub first_ns: u64,
    /// Timestamp of the last lost event (0: unknown).
    pub last_ns: u64,
    /// The time of the place in the thread's stream where the loss is announced: the marker's
    /// own time (`first_ns`, else `last_ns`) for a marker the thread wrote; the thread's last
    /// record for a loss the drain announces at the end of a thread whose marker found no room
    /// (its `first_ns` and `last_ns` are then 0, unknown).
    pub at_ns: u64,
}

impl LossInfo {
    /// `count` events of `lane` lost for `cause`, their time span unknown (for sinks' own tests;
    /// set the public fields as needed).
    pub fn new(lane: LaneKind, cause: LossCause, count: u64) -> Self {
        LossInfo {
            lane,
            cause,
            count,
            first_ns: 0,
            last_ns: 0,
            at_ns: 0,
        }
    }
}

/// A sink's failure: any error, boxed.
///
/// It displays as the error it wraps, and [`source`](std::error::Error::source) is that error,
/// so the chain below it (an I/O error under a write error, say) stays reachable:
/// `err.source()?.downcast_ref::<std::io::Error>()` or [`SinkError::downcast_ref`].
///
/// The drain keeps draining after a sink error (the traced program never waits on a sink):
/// records a failing sink could not take are counted in [`Report::sink_failures`], and the
/// last error's message lands in [`Report::sink_error`].
#[derive(Debug)]
pub struct SinkError {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl SinkError {
    /// Wraps `error`: any error type, or a message (`&str`, `String`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        SinkError {
            inner: error.into(),
        }
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The wrapped error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// Unwraps the error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.inner
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.inner)
    }
}

impl From<std::io::Error> for SinkError {
    fn from(error: std::io::Error) -> Self {
        SinkError::new(error)
    }
}

/// What a sink produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkOutput {
    /// Where the trace is, for sinks that write one.
    pub dir: Option<PathBuf>,
    /// Events the sink wrote (including any it adds, such as trace start/end).
    pub events: u64,
    /// Bytes it wrote.
    pub bytes: u64,
    /// Whether its output is complete (nothing failed).
    pub complete: bool,
    /// Records it accepted but could not write.
    pub unwritten: u64,
    /// Its last error, if any.
    pub error: Option<String>,
}

impl SinkOutput {
    /// A complete output of `events` events with nothing unwritten (set the other public
    /// fields as needed).
    pub fn new(events: u64) -> Self {
        SinkOutput {
            events,
            complete: true,
            ..SinkOutput::default()
        }
    }
}

/// Receives what the drain thread takes out of the rings.
///
/// Called only from the drain thread (or, behind [`crate::Pipelined`], from the sink's own
/// thread, in the same order), in this order:
///
/// ```text
/// begin  ( symbol | thread | modules | window | flush | chunk_begin (record | window)* chunk_end )*  finish
/// ```
///
/// - [`begin`](Sink::begin) once, first, with the session (the segment name filled in).
/// - [`symbol`](Sink::symbol): a function id got a name. A symbol always arrives before the
///   first record that names it.
/// - [`thread`](Sink::thread): the drain saw a thread for the first time (its session number,
///   claimed and verified identity, and name). It always arrives before the thread's first
///   chunk, once per session number: a thread first seen through the shared fallback ring
///   (announced with [`ThreadInfo::NO_SLOT`]) is not announced again when it registers.
/// - [`modules`](Sink::modules): modules (file-backed executable mappings) of a traced
///   process that the controller read from `/proc/<pid>/maps` and had not reported before
///   (see [`crate::modules`]). No particular order relative to the process's records: they
///   name addresses after the run, never while draining.
/// - [`chunk_begin`](Sink::chunk_begin) … [`chunk_end`](Sink::chunk_end): one ring's worth of
///   one thread's lane (a [`ChunkInfo`]: which ring, whether it is MARKED, whether it was copied
///   from the thread's active ring, or taken from the shared fallback ring). Every
///   [`record`](Sink::record) arrives between such a pair, from that thread and lane, in the
///   order the thread recorded them. Pairs never nest
///   or interleave, and `chunk_end` always follows its `chunk_begin` (with the same
///   arguments), even when the chunk held no valid record: if validation fails part way, the
///   rest of the chunk is counted as corrupt in the [`Report`] and the chunk ends there.
///   Symbols, threads, modules and flushes come only between pairs.
///
///   With selective persistence ([`crate::Persistence::Windows`], the default) only the
///   detail records inside windows reach the sink: a detail chunk may then carry fewer records
///   than its ring held (none at all, when they were discarded or are held as possible
///   pre-roll), and the chunk in which a mark opens a window first carries that window's
///   pre-roll — records the drain held from earlier chunks of the same thread and lane, still
///   in the order the thread recorded them. Index chunks are always whole.
///
///   **Order across chunks.** A thread's chunks from its own rings arrive in the order it
///   recorded them (per lane). Its index events that went through the shared fallback ring
///   (those written before it had a slot, and those it *spilled* when its pool was exhausted)
///   arrive in `from_fallback` chunks, in the order it pushed them, but **not** in timestamp
///   order relative to its ring chunks: the drain reads the fallback ring at the start of each
///   pass, so a spilled event (newer than the ring events still queued when it spilled) can
///   reach the sink before those older ring events. A sink that needs one thread's events in
///   timestamp order must sort them (by `timestamp_ns`, stable) itself; what is guaranteed is
///   that every event reaches the sink exactly once, under the thread's one session number.
/// - [`window`](Sink::window): a window of a thread's detail lane closed. It is announced right
///   after the last record it persisted and before any record of the thread's next window:
///   inside the chunk in which a record past its post-roll came (between two records of that
///   chunk), or between pairs when the drain's clock passes its post-roll, the thread exits or
///   the session ends.
/// - [`flush`](Sink::flush): the end of a busy stretch (at most every
///   [`crate::drain::FLUSH_EVERY`] while busy, at once when idle): hand buffered output on.
/// - [`finish`](Sink::finish) once, last, with the final accounting.
///
/// Only `record` and `finish` must be written; the others default to doing nothing.
///
/// Errors never stop the drain: a failed `record` counts that record in
/// [`Report::sink_failures`]; any error's message becomes [`Report::sink_error`]. An error from
/// `begin` (on [`crate::Controller::start`]) or `finish` (on [`crate::Running::stop`]) is
/// returned to the caller.
///
/// ```
/// use ada_controller::{EventKind, Record, Report, Sink, SinkError, SinkOutput, ThreadInfo};
///
/// /// Counts function entries.
/// #[derive(Default)]
/// struct Calls(u64);
///
/// impl Sink for Calls {
///     fn record(&mut self, _: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
///         if r.kind == EventKind::Call {
///             self.0 += 1;
///         }
///         Ok(())
///     }
///     fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
///         Ok(SinkOutput::new(self.0))
///     }
/// }
/// ```
pub trait Sink: Send {
    /// The session starts (before anything else).
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        let _ = session;
        Ok(())
    }
    /// A function id got a name.
    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        let _ = (function_id, name, address);
        Ok(())
    }
    /// A function id got a name and, when the registrar gave one, the place in the source
    /// that defines it (a `tracing` callsite's file and line). The drain calls this one; by
    /// default it forwards to [`Sink::symbol`], dropping the source, so a sink that has no use
    /// for source locations implements `symbol` alone.
    fn symbol_at(
        &mut self,
        function_id: u64,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> Result<(), SinkError> {
        let _ = source;
        self.symbol(function_id, name, address)
    }
    /// A thread was seen for the first time: `thread.number` is its session number, `name` its
    /// name when the controller could verify and read it.
    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        let _ = (thread, name);
        Ok(())
    }
    /// Process `pid` has these modules loaded, not reported before (a sink keeps the union:
    /// a module stays in the trace after the process unloads it, since earlier addresses
    /// still point into it).
    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        let _ = (pid, modules);
        Ok(())
    }
    /// The records of one ring of `thread` follow (until [`chunk_end`](Sink::chunk_end)).
    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        let _ = (thread, chunk);
        Ok(())
    }
    /// One validated record of the current chunk.
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError>;
    /// The chunk [`chunk_begin`](Sink::chunk_begin) announced is over.
    fn chunk_end(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        let _ = (thread, chunk);
        Ok(())
    }
    /// A persistence window of `thread`'s detail lane closed; its records were all handed to
    /// [`record`](Sink::record) before this call (see the call order above).
    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        let _ = (thread, window);
        Ok(())
    }
    /// `thread`'s lane lost events at this point of its stream (see [`LossInfo`]). Arrives
    /// inside a chunk pair of that lane, where the thread's loss marker was. The counts are in
    /// the [`Report`] as well ([`crate::LaneReport::lost`]), whether or not a sink records this.
    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        let _ = (thread, loss);
        Ok(())
    }
    /// End of a busy stretch: a good moment to hand buffers to the OS.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// The session is over; `report` holds the final accounting. Returns what was produced.
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError>;
}

/// A sink that counts and discards (benchmarks, `--no-output` style use, tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountingSink {
    /// Records received.
    pub records: u64,
    /// Symbols received.
    pub symbols: u64,
    /// Chunks received.
    pub chunks: u64,
}

impl Sink for CountingSink {
    fn symbol(&mut self, _: u64, _: &str, _: u64) -> Result<(), SinkError> {
        self.symbols += 1;
        Ok(())
    }
    fn chunk_begin(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
        self.chunks += 1;
        Ok(())
    }
    #[inline]
    fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
        self.records += 1;
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(self.records))
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        (**self).begin(session)
    }
    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        (**self).symbol(function_id, name, address)
    }
    fn symbol_at(
        &mut self,
        function_id: u64,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> Result<(), SinkError> {
        (**self).symbol_at(function_id, name, address, source)
    }
    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        (**self).thread(thread, name)
    }
    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        (**self).modules(pid, modules)
    }
    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        (**self).chunk_begin(thread, chunk)
    }
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError> {
        (**self).record(thread, record)
    }
    fn chunk_end(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        (**self).chunk_end(thread, chunk)
    }
    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        (**self).window(thread, window)
    }
    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        (**self).events_lost(thread, loss)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        (**self).finish(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the trace: {source}")]
    struct WriteFailed {
        source: std::io::Error,
    }

    #[test]
    fn sink_error_keeps_the_typed_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let e = SinkError::new(WriteFailed { source: io });
        assert_eq!(e.to_string(), "cannot write the trace: disk full");
        assert!(e.downcast_ref::<WriteFailed>().is_some());
        let wrapped = e.source().expect("the wrapped error");
        assert!(wrapped.downcast_ref::<WriteFailed>().is_some());
        let io = wrapped
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::StorageFull)
        );

        let msg = SinkError::new("the trace was already finalized");
        assert_eq!(msg.to_string(), "the trace was already finalized");
        let from_io: SinkError = std::io::Error::other("pipe closed").into();
        assert!(from_io.downcast_ref::<std::io::Error>().is_some());
    }

    /// Remembers which of the trait's calls reached it.
    #[derive(Default)]
    struct CallLog(Vec<&'static str>);

    impl Sink for CallLog {
        fn begin(&mut self, _: &SessionInfo) -> Result<(), SinkError> {
            self.0.push("begin");
            Ok(())
        }
        fn symbol(&mut self, _: u64, _: &str, _: u64) -> Result<(), SinkError> {
            self.0.push("symbol");
            Ok(())
        }
        fn thread(&mut self, _: &ThreadInfo, _: Option<&str>) -> Result<(), SinkError> {
            self.0.push("thread");
            Ok(())
        }
        fn modules(&mut self, _: u32, _: &[Module]) -> Result<(), SinkError> {
            self.0.push("modules");
            Ok(())
        }
        fn chunk_begin(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
            self.0.push("chunk_begin");
            Ok(())
        }
        fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
            self.0.push("record");
            Ok(())
        }
        fn chunk_end(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
            self.0.push("chunk_end");
            Ok(())
        }
        fn window(&mut self, _: &ThreadInfo, _: &WindowInfo) -> Result<(), SinkError> {
            self.0.push("window");
            Ok(())
        }
        fn events_lost(&mut self, _: &ThreadInfo, _: &LossInfo) -> Result<(), SinkError> {
            self.0.push("events_lost");
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            self.0.push("flush");
            Ok(())
        }
        fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
            self.0.push("finish");
            Ok(SinkOutput::new(0))
        }
    }

    /// A boxed sink (`ada trace` picks its sink at run time) gets every call, the ones with
    /// a default body included: a missing forward would silently drop, say, loss markers.
    #[test]
    fn a_boxed_sink_gets_every_call() {
        /// Every call, through `S`'s `Sink` impl (for `Box<CallLog>`: the box's forwards).
        fn feed<S: Sink>(sink: &mut S) {
            let thread = ThreadInfo::new(0, 1, 42, 42);
            let chunk = ChunkInfo {
                lane: LaneKind::Index,
                ring: 0,
                marked: false,
                from_active: false,
                seq: Some(0),
                bytes: 32,
                from_fallback: false,
            };
            let loss = LossInfo::new(LaneKind::Index, LossCause::Refused, 3);
            sink.begin(&SessionInfo::new(42)).unwrap();
            sink.symbol(7, "f", 0x1000).unwrap();
            sink.thread(&thread, Some("main")).unwrap();
            sink.modules(42, &[]).unwrap();
            sink.chunk_begin(&thread, &chunk).unwrap();
            sink.record(&thread, &Record::new(EventKind::Call, LaneKind::Index))
                .unwrap();
            sink.events_lost(&thread, &loss).unwrap();
            sink.chunk_end(&thread, &chunk).unwrap();
            sink.window(&thread, &WindowInfo::new(1, 0, 10)).unwrap();
            sink.flush().unwrap();
            sink.finish(&Report::default()).unwrap();
        }
        let mut log = Box::new(CallLog::default());
        feed(&mut log);
        assert_eq!(
            log.0,
            [
                "begin",
                "symbol",
                "thread",
                "modules",
                "chunk_begin",
                "record",
                "events_lost",
                "chunk_end",
                "window",
                "flush",
                "finish"
            ]
        );
    }

    #[test]
    fn session_info_builders() {
        let s = SessionInfo::new(42)
            .with_executable("/bin/true")
            .with_args(["-a", "b"]);
        assert_eq!((s.pid, s.executable.as_deref()), (42, Some("/bin/true")));
        assert_eq!(s.args, ["-a", "b"]);
        assert!(s.segment.is_empty(), "the controller fills it");
    }
}
