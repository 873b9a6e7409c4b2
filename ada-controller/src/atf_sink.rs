//! [`AtfSink`]: the default sink, writing an ATF v4 trace (`events.bin` + `trace.json`).
//!
//! Layout: `<output>/ada_traces/session_YYYYMMDD_HHMMSS/pid_<pid>/`. The stream starts with a
//! `TraceStart` event (executable, arguments, OS, architecture) and ends with `TraceEnd` (exit
//! code); in between, every drained record mapped by [`ada_atf::RecordMapper`] with the names
//! the agent registered — index-shaped records (calls and returns without registers or stack,
//! all index-lane records) go instead through `ada-atf`'s one-pass encoder with each function's
//! payload pre-encoded ([`ada_atf::FunctionPayload`], rebuilt when a definition changes),
//! which writes the same bytes the mapper's event would encode to. The manifest carries the per-thread, per-lane accounting of the
//! [`Report`] (threads listed and folded, each thread's claimed pid and OS thread id and whether
//! they were verified), what the drain found corrupt, the events of threads refused a slot,
//! the shared fallback ring's accounting (`fallback`, and each lane's `spilled` and
//! `viaFallback`) and the symbol table, and the traced processes' loaded modules
//! ([`Sink::modules`]: the manifest's `loadedModules`, their paths also in `modules` after the
//! executable), at most [`MAX_LOADED_MODULES`].
//!
//! **Windows.** Each persistence window the drain announces ([`Sink::window`]) is written
//! twice: in the stream, as a `WindowMark` event of the window's thread stamped with the
//! window's start and placed *after* the window's events (the drain announces a window when it
//! closes), and as a line of `window_metadata.jsonl` (repeated in the manifest's `windows`):
//! id (from 1 per thread), thread, start/end, first and last mark, the index of the trigger
//! that opened it (none for an explicit mark; the manifest's `triggers` names the specs when
//! [`AtfSink::set_triggers`] was told them), events persisted (of them, from the pre-roll)
//! and detail events discarded since the thread's previous window. The manifest's per-lane
//! `discarded` counts every detail event the flight recorder did not keep.
//!
//! An event's `thread_id` is the controller's session thread number ([`ThreadInfo::number`]),
//! never the id the record itself carries (written by the traced side), so every event
//! belongs to a thread of the manifest (or of its `foldedThreads`).
//!
//! `ada-atf` stands alone, with its own record vocabulary ([`ada_atf::RecordKind`],
//! [`ada_atf::Lane`]); [`ring_record`] is the one place the controller's [`EventKind`] and
//! [`LaneKind`] are converted to it, by exhaustive `match`es.

use crate::modules::Module;
use crate::report::{Corruption, FallbackReport, LaneReport, Report};
use crate::sink::{
    LossInfo, Record, SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo, WindowInfo,
};
use ada_atf::{
    ClockDescription, EventRef, FallbackSummary, FoldedThreadsSummary, FunctionPayload,
    IndexEventRef, IndexKind, LaneCounters, LostByCause, ModuleEntry, PayloadRef, PerLane,
    PersistenceWindow, RecordKind, RecordMapper, RingRecord, StateEntries, SymbolEntry, SyncPolicy,
    ThreadSummary, TraceSummary, TraceWriter, WriteError, WriterOptions,
};
use ada_registry::{LaneKind, SymbolSource};
use ada_ringpool::EventKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The most loaded modules (over all processes) an [`AtfSink`] lists in the manifest; later
/// ones are left out.
pub const MAX_LOADED_MODULES: usize = 65_536;

/// Writes drained events to an ATF v4 trace.
#[derive(Debug)]
pub struct AtfSink {
    writer: Option<TraceWriter>,
    /// `loadedModules`, in the order reported, each once.
    modules: Vec<ModuleEntry>,
    known_modules: std::collections::HashSet<(u32, String, u64, u64, u64)>,
    mapper: RecordMapper,
    symbols: SymbolMap,
    session: SessionInfo,
    dir: PathBuf,
    syncer: Option<Syncer>,
    /// The trace clock as described at creation (its realtime offset sampled then).
    clock: ClockDescription,
}

/// `fdatasync`s `events.bin` once a second from a thread of its own, so what was handed to the
/// OS more than about a second ago survives a power failure (a process crash loses nothing
/// that was handed to the OS). A sync can stall the next `write` to the file for tens of
/// milliseconds (79 ms measured here); `ada trace` therefore runs this sink behind
/// [`crate::Pipelined`], where such a stall delays the trace writer, never the drain.
#[derive(Debug)]
struct Syncer {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    const PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

    fn start(events: &Path) -> std::io::Result<Syncer> {
        let file = std::fs::File::open(events)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ada-fsync".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Self::PERIOD)
                {
                    // Best effort: finalize syncs again and reports errors.
                    let _ = file.sync_data();
                }
            })?;
        Ok(Syncer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl AtfSink {
    /// Creates the trace directory for traced process `pid` under `output_root`.
    pub fn create(output_root: &Path, pid: u32) -> Result<AtfSink, WriteError> {
        let clock = session_clock();
        let options = WriterOptions {
            pid,
            clock: clock.clone(),
            // The drain thread never waits for the disk: `Syncer` makes events.bin durable.
            sync: SyncPolicy::ON_REQUEST,
            ..WriterOptions::default()
        };
        let writer = TraceWriter::create(output_root, options)?;
        let syncer = Syncer::start(writer.events_path()).map_err(|source| WriteError::Io {
            op: "open for syncing",
            path: writer.events_path().to_path_buf(),
            source,
        })?;
        Ok(AtfSink {
            modules: Vec::new(),
            known_modules: std::collections::HashSet::new(),
            syncer: Some(syncer),
            dir: writer.dir().to_path_buf(),
            writer: Some(writer),
            mapper: RecordMapper::new(ada_atf::manifest::host_arch()),
            symbols: SymbolMap::default(),
            session: SessionInfo::default(),
            clock,
        })
    }

    /// The session's trigger specs, in order (the controller's trigger set, each spec as it
    /// displays: `ada_persist::TriggerSet::specs`), written to the manifest's `triggers` so a
    /// reader can name the trigger that opened each window. Without it a window names its
    /// trigger by index only.
    pub fn set_triggers(&mut self, specs: Vec<String>) {
        if let Some(writer) = self.writer.as_mut() {
            writer.set_triggers(specs);
        }
    }

    /// The trace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a block of events encoded by a drain worker ([`crate::TraceSink`]) with the
    /// next event ids, and records its windows.
    pub(crate) fn append_block(&mut self, block: &ada_atf::EncodedBlock) -> Result<(), SinkError> {
        self.writer()?
            .append_block(block)
            .map(|_| ())
            .map_err(SinkError::new)
    }

    /// Names a function for the manifest's symbol table only (the drain workers wrote its
    /// definition into the stream themselves).
    pub(crate) fn know_symbol(&mut self, entry: &SymbolEntry) {
        let source = entry
            .file
            .as_deref()
            .zip(entry.line)
            .map(|(file, line)| SymbolSource { file, line });
        let address = entry.address.unwrap_or(0);
        self.symbols
            .insert(entry.function_id, &entry.symbol, address, source);
    }

    fn writer(&mut self) -> Result<&mut TraceWriter, SinkError> {
        self.writer
            .as_mut()
            .ok_or_else(|| SinkError::new("the trace was already finalized"))
    }
}

/// Calibration pairs the manifest shows at each end (the count says how many there were).
pub const MANIFEST_CALIBRATION_POINTS: usize = 8;

/// The trace clock as the manifest describes it at the end of a session: `CLOCK_MONOTONIC`
/// (every timestamp in the trace is in it) with its realtime offset from `start`, plus the
/// clock agents stamped with and, for a counter, the calibration that converted it.
pub fn session_clock_with(
    start: &ClockDescription,
    clock: &crate::SessionClock,
) -> ClockDescription {
    let mut description = start.clone();
    description.source = Some(clock.source.name().to_owned());
    let points = clock.calibration.points();
    description.calibration = (!points.is_empty()).then(|| {
        let pair = |p: &ada_shm::tsc::Point| [p.ticks, p.mono_ns];
        let n = MANIFEST_CALIBRATION_POINTS;
        let first: Vec<[u64; 2]> = points.iter().take(n).map(pair).collect();
        let last = points[first.len()..]
            .iter()
            .skip(points.len().saturating_sub(first.len()).saturating_sub(n))
            .map(pair)
            .collect();
        ada_atf::ClockCalibration {
            ticks_per_second: clock.calibration.ticks_per_second(),
            points: clock.calibration.total_points(),
            first,
            last,
        }
    });
    description
}

/// The session clock (`CLOCK_MONOTONIC`, the trace's timebase whatever agents stamped with:
/// see [`crate::stamps`]) and its offset to wall-clock time, so readers can show absolute
/// times.
pub fn session_clock() -> ClockDescription {
    let mono = ada_shm::clock::MonotonicClock::read();
    let real = ada_shm::clock::realtime_ns();
    ClockDescription::new(
        ada_shm::clock::ClockId::Monotonic.name(),
        Some(real as i64 - mono as i64),
    )
}

/// Function id → its [`FunctionPayload`] (name, address and the pre-encoded payload body the
/// index fast path copies). Table ids are small and dense (1, 2, ...): they index a vector,
/// which is several times cheaper per event than hashing; other ids (hashed names the table
/// refused, raw ids) go to a map. A redefinition replaces the whole entry, so the cached body
/// always matches the name and address the generic path would encode.
#[derive(Debug, Default)]
pub(crate) struct SymbolMap {
    dense: Vec<Option<FunctionPayload>>,
    sparse: HashMap<u64, FunctionPayload>,
    /// What an id without a definition resolves to (`""`, address 0).
    unresolved: FunctionPayload,
    /// The source locations (file, line) of the ids that have one (for the manifest; only
    /// `tracing` callsites have them, so a map rather than a slot per id).
    sources: HashMap<u64, (Box<str>, u32)>,
}

impl SymbolMap {
    /// Ids below this are stored densely (the table's entry limit).
    const DENSE_LIMIT: u64 = ada_registry::symbols::MAX_SYMBOL_ENTRIES as u64 + 1;

    /// Defines `id` as `name` at `address`, defined in the source at `source` when known.
    pub(crate) fn insert(
        &mut self,
        id: u64,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) {
        match source {
            Some(s) => {
                self.sources.insert(id, (s.file.into(), s.line));
            }
            None => {
                self.sources.remove(&id);
            }
        }
        let value = FunctionPayload::new(name, address);
        if id < Self::DENSE_LIMIT {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(value);
        } else {
            self.sparse.insert(id, value);
        }
    }

    /// The definition of `function_id`, if any.
    #[inline]
    fn get(&self, function_id: u64) -> Option<&FunctionPayload> {
        match self.dense.get(function_id as usize) {
            Some(v) => v.as_ref(),
            None if function_id < Self::DENSE_LIMIT => None,
            None => self.sparse.get(&function_id),
        }
    }

    /// The payload of `function_id`: its definition, or the unresolved one.
    #[inline]
    pub(crate) fn payload(&self, function_id: u64) -> &FunctionPayload {
        self.get(function_id).unwrap_or(&self.unresolved)
    }

    /// The manifest's entries for the ids defined, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = SymbolEntry> + '_ {
        self.iter().map(|(function_id, p)| {
            let source = self.sources.get(&function_id);
            SymbolEntry {
                function_id,
                symbol: p.symbol().to_owned(),
                address: (p.address() != 0).then_some(p.address()),
                module: None,
                file: source.map(|(file, _)| file.to_string()),
                line: source.map(|&(_, line)| line),
            }
        })
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &FunctionPayload)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|p| (i as u64, p)));
        let sparse = self.sparse.iter().map(|(&i, p)| (i, p));
        dense.chain(sparse)
    }
}

impl ada_atf::SymbolLookup for SymbolMap {
    #[inline]
    fn lookup(&self, function_id: u64) -> Option<(&str, u64)> {
        self.get(function_id).map(|p| (p.symbol(), p.address()))
    }
}

/// The stream's definition of `function_id`, with its source location when it has one.
pub(crate) fn symbol_def<'a>(
    now: u64,
    function_id: u64,
    name: &'a str,
    address: u64,
    source: Option<SymbolSource<'a>>,
) -> EventRef<'a> {
    let def = EventRef::symbol_def(now, function_id, name, address, "");
    match source {
        Some(s) => def.at_source(s.file, s.line),
        None => def,
    }
}

/// `bytes` as lower-case hex (a build id in the manifest).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `record` as an index-shaped event for the one-pass encoder, when it is one (see
/// [`index_kind`]): what `ring_record` + the mapper would produce, without building either.
#[inline]
pub(crate) fn index_event<'s>(
    thread: &ThreadInfo,
    record: &Record<'_>,
    symbols: &'s SymbolMap,
) -> Option<IndexEventRef<'s>> {
    Some(IndexEventRef {
        thread_id: session_thread(thread),
        timestamp_ns: record.timestamp_ns,
        function_id: record.function_id,
        call_depth: record.call_depth,
        lane: atf_lane(record.lane),
        kind: index_kind(record)?,
        function: symbols.payload(record.function_id),
    })
}

/// The `EventsLost` payload announcing `loss`.
pub(crate) fn loss_payload(loss: &LossInfo) -> PayloadRef<'static> {
    PayloadRef::EventsLost {
        lane: atf_lane(loss.lane),
        count: loss.count,
        cause: loss.cause.name(),
        first_lost_ns: loss.first_ns,
        last_lost_ns: loss.last_ns,
    }
}

/// The index fast path's shape of `record`, when it has one: a call with no registers and no
/// stack, or a return with no registers (the mapper drops a return's stack), which
/// [`RecordMapper`] would turn into a payload of symbol and address only.
#[inline]
pub(crate) fn index_kind(record: &Record<'_>) -> Option<IndexKind> {
    match record.kind {
        EventKind::Call if record.registers.is_empty() && record.stack.is_empty() => {
            Some(IndexKind::Call)
        }
        EventKind::Return if record.registers.is_empty() => Some(IndexKind::Return),
        _ => None,
    }
}

/// The ATF `thread_id` of `thread`: the controller's session thread number (at most
/// `i32::MAX`: the drain saturates it).
pub(crate) fn session_thread(thread: &ThreadInfo) -> i32 {
    i32::try_from(thread.number).unwrap_or(i32::MAX)
}

/// The ATF lane of `lane`.
pub(crate) fn atf_lane(lane: LaneKind) -> ada_atf::Lane {
    match lane {
        LaneKind::Index => ada_atf::Lane::Index,
        LaneKind::Detail => ada_atf::Lane::Detail,
    }
}

/// `record` in `ada-atf`'s vocabulary: the one conversion between the two (a new
/// [`EventKind`] does not compile until it is mapped here).
#[inline]
pub(crate) fn ring_record<'a>(thread: &ThreadInfo, record: &Record<'a>) -> RingRecord<'a> {
    let kind = match record.kind {
        EventKind::Call => RecordKind::Call,
        EventKind::Return => RecordKind::Return,
        EventKind::Exception => RecordKind::Exception,
        EventKind::Mark => RecordKind::Mark,
        EventKind::Message => RecordKind::Message,
        // The drain hands loss markers to `events_lost`, never to `record`; a caller's own
        // record of this kind is kept, as a message.
        EventKind::EventsLost => RecordKind::Message,
    };
    RingRecord {
        kind,
        lane: atf_lane(record.lane),
        timestamp_ns: record.timestamp_ns,
        function_id: record.function_id,
        thread_id: session_thread(thread),
        call_depth: record.call_depth,
        registers: record.registers,
        stack: record.stack,
        message: record.message,
    }
}

/// The manifest's `corruption` object: every count by name (the writer leaves out zeros).
fn corruption_counts(c: &Corruption) -> std::collections::BTreeMap<String, u64> {
    let Corruption {
        ring_errors,
        bad_chunks,
        unverified_threads,
        displaced_threads,
        symbol_entries,
        symbol_counters,
        lane_counters,
        fallback_records,
    } = *c;
    [
        ("ringErrors", ring_errors),
        ("badChunks", bad_chunks),
        ("unverifiedThreads", unverified_threads),
        ("displacedThreads", displaced_threads),
        ("symbolEntries", symbol_entries),
        ("symbolCounters", symbol_counters),
        ("laneCounters", lane_counters),
        ("fallbackRecords", fallback_records),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The trace's record of `window`, a window of session thread `thread`.
pub(crate) fn persistence_window(thread: &ThreadInfo, w: &WindowInfo) -> PersistenceWindow {
    PersistenceWindow {
        window_id: w.id,
        start_ns: w.start_ns,
        end_ns: w.end_ns,
        first_mark_ns: w.first_mark_ns,
        last_event_ns: w.end_ns,
        total_events: w.persisted,
        marked_events: w.marks,
        mark_seen: true,
        thread_id: i32::try_from(thread.number).unwrap_or(i32::MAX),
        last_mark_ns: w.last_mark_ns,
        trigger: w.trigger,
        pre_roll_events: w.pre_roll,
        discarded_events: w.discarded_before,
        over_budget_events: w.over_budget_before,
    }
}

/// The manifest's `readiness` (absent parts: never steady).
fn readiness_summary(r: &crate::Readiness) -> ada_atf::ReadinessSummary {
    ada_atf::ReadinessSummary {
        epoch: r.epoch,
        ready_at_ns: r.ready_at_ns,
        steady_at_ns: r.steady_at_ns,
        ready_to_steady_ns: r
            .ready_to_steady()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        warm_up_ns: u64::try_from(r.warm_up.as_nanos()).unwrap_or(u64::MAX),
        warm_up_restarts: r.warm_up_restarts,
    }
}

/// The manifest's `agentStats` (the agents' own numbers: information only).
fn agent_stats_summary(a: &crate::AgentStatsSnapshot) -> ada_atf::AgentStatsSummary {
    let [startup, warm_up, steady, stalled] = a.mode_entries;
    ada_atf::AgentStatsSummary {
        mode_transitions: a.mode_transitions,
        dormancies: a.dormancies,
        mode_entries: ada_atf::ModeEntries {
            startup,
            warm_up,
            steady,
            stalled,
        },
        reattaches: a.reattaches,
    }
}

/// The manifest's counters of a lane: the accounting, the loss by cause, the loss markers, the
/// last backpressure state (absent when unknown, e.g. for folded threads) and the state entries.
fn lane_counters(kind: LaneKind, r: &LaneReport) -> LaneCounters {
    let mut c = LaneCounters::new(atf_lane(kind));
    c.written = r.written;
    c.persisted = r.persisted;
    c.dropped = r.dropped;
    c.discarded = r.discarded;
    c.lost = Some(LostByCause {
        overwritten: r.lost.overwritten,
        refused: r.lost.refused,
        too_large: r.lost.too_large,
    });
    c.markers = Some(r.markers);
    c.state = r.state.map(|s| s.name().to_owned());
    c.state_entries = Some(StateEntries::from_array(r.entries));
    c.spilled = (r.spilled != 0).then_some(r.spilled);
    c.via_fallback = (r.via_fallback != 0).then_some(r.via_fallback);
    c.before_attach = (r.before_attach != 0).then_some(r.before_attach);
    c
}

/// The manifest's `fallback` object, when anything went through the ring or was lost on the way.
fn fallback_summary(f: &FallbackReport) -> Option<FallbackSummary> {
    f.is_used().then(|| FallbackSummary {
        capacity: u64::from(f.capacity),
        taken: f.taken,
        delivered: f.delivered,
        markers: f.markers,
        corrupt: f.corrupt,
        refused: f.refused,
        late: f.late,
        torn: f.torn,
        skipped: f.skipped,
        threads: f.threads,
        left: f.left,
    })
}

impl Sink for AtfSink {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        self.session = session.clone();
        let args: Vec<&str> = session.args.iter().map(String::as_str).collect();
        let start = PayloadRef::TraceStart {
            executable_path: session.executable.as_deref().unwrap_or(""),
            args: &args,
            operating_system: ada_atf::manifest::host_os(),
            cpu_architecture: ada_atf::manifest::host_arch(),
        };
        let now = ada_shm::clock::MonotonicClock::read();
        self.writer()?
            .write(&EventRef::new(0, now, start))
            .map(|_| ())
            .map_err(SinkError::new)
    }

    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        self.symbol_at(function_id, name, address, None)
    }

    fn symbol_at(
        &mut self,
        function_id: u64,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> Result<(), SinkError> {
        self.symbols.insert(function_id, name, address, source);
        // Into the stream as well, before the first event that uses it: a trace whose
        // controller dies before writing trace.json still names its functions.
        let now = ada_shm::clock::MonotonicClock::read();
        let def = symbol_def(now, function_id, name, address, source);
        self.writer()?
            .write(&def)
            .map(|_| ())
            .map_err(SinkError::new)
    }

    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        // Into the stream before the thread's first event: a trace whose controller dies before
        // writing trace.json still says who its threads were.
        let now = ada_shm::clock::MonotonicClock::read();
        let def = EventRef::thread_def(
            now,
            i32::try_from(thread.number).unwrap_or(i32::MAX),
            thread.pid,
            thread.os_tid,
            name.unwrap_or(""),
            thread.verified,
        );
        self.writer()?
            .write(&def)
            .map(|_| ())
            .map_err(SinkError::new)
    }

    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        for m in modules {
            if self.modules.len() >= MAX_LOADED_MODULES {
                break;
            }
            let key = (pid, m.path.clone(), m.start, m.end, m.file_offset);
            if self.known_modules.insert(key) {
                self.modules.push(ModuleEntry {
                    pid,
                    path: m.path.clone(),
                    start: m.start,
                    end: m.end,
                    file_offset: m.file_offset,
                    build_id: m.build_id.as_deref().map(hex),
                    deleted: m.deleted,
                });
            }
        }
        Ok(())
    }

    #[inline]
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(SinkError::new("the trace was already finalized"));
        };
        if let Some(event) = index_event(thread, record, &self.symbols) {
            // The same bytes through the one-pass encoder
            // (`tests::fast_path_matches_the_mapper`).
            return writer
                .write_index(&event)
                .map(|_| ())
                .map_err(SinkError::new);
        }
        let record = ring_record(thread, record);
        let event = self.mapper.map(&record, &self.symbols);
        writer.write(&event).map(|_| ()).map_err(SinkError::new)
    }

    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        let writer = self.writer()?;
        // Stamped where the drain found it in the thread's stream (`at_ns`): between the
        // records around the hole.
        let event = EventRef::new(session_thread(thread), loss.at_ns, loss_payload(loss));
        writer.write(&event).map(|_| ()).map_err(SinkError::new)
    }

    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        let w = persistence_window(thread, window);
        let writer = self.writer()?;
        let event = EventRef::new(w.thread_id, w.start_ns, PayloadRef::WindowMark(w));
        let written = writer.write(&event).map(|_| ());
        // To window_metadata.jsonl and the manifest even if the stream write failed.
        let listed = writer.write_window(&w);
        written.and(listed).map_err(SinkError::new)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.writer()?.flush().map_err(SinkError::new)
    }

    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| SinkError::new("the trace was already finalized"))?;
        writer.set_clock(session_clock_with(&self.clock, &report.clock));
        drop(self.syncer.take());
        let now = ada_shm::clock::MonotonicClock::read();
        let end = PayloadRef::TraceEnd {
            exit_code: report.exit_code.unwrap_or(0),
        };
        // A failure here poisons the writer; finalize still writes an incomplete manifest.
        let _ = writer.write(&EventRef::new(0, now, end));
        let mut symbols: Vec<SymbolEntry> = self.symbols.entries().collect();
        symbols.sort_by_key(|s| s.function_id);
        let threads = report
            .threads
            .iter()
            .map(|t| ThreadSummary {
                thread_id: i32::try_from(t.info.number).unwrap_or(i32::MAX),
                name: t.name.clone(),
                os_tid: Some(t.info.os_tid),
                pid: Some(t.info.pid),
                verified: Some(t.info.verified),
                lanes: t.lanes().map(|(k, l)| lane_counters(k, l)).collect(),
            })
            .collect();
        let folded = &report.folded;
        let folded_threads = (folded.threads > 0).then(|| FoldedThreadsSummary {
            threads: folded.threads,
            unverified: folded.unverified,
            lanes: folded.lanes().map(|(k, l)| lane_counters(k, l)).collect(),
        });
        let summary = TraceSummary {
            complete: true,
            executable: self.session.executable.clone(),
            args: self.session.args.clone(),
            exit_code: report.exit_code,
            // The executable, then every module's path (the writer keeps each once).
            modules: self
                .session
                .executable
                .iter()
                .cloned()
                .chain(self.modules.iter().map(|m| m.path.clone()))
                .collect(),
            loaded_modules: std::mem::take(&mut self.modules),
            threads,
            symbols,
            folded_threads,
            corruption: corruption_counts(&report.corruption),
            unregistered_drops: report.unregistered_drops,
            unverifiable_threads: report.unverifiable_threads,
            unregistered_by_lane: Some(PerLane {
                index: report.unregistered_by_lane[0],
                detail: report.unregistered_by_lane[1],
            }),
            drop_policies: Some(PerLane {
                index: report.drop_policies.index.name().to_owned(),
                detail: report.drop_policies.detail.name().to_owned(),
            }),
            stability_ns: Some(report.stability_ns),
            fallback: fallback_summary(&report.fallback),
            readiness: Some(readiness_summary(&report.readiness)),
            agent_stats: Some(agent_stats_summary(&report.agent_stats)),
            continuation: report
                .continuation
                .as_ref()
                .map(|c| ada_atf::ContinuationSummary {
                    segment: c.segment.clone(),
                    epoch: c.epoch,
                    previous_controller_pid: c.previous_controller_pid,
                }),
        };
        let stats = writer.finalize(summary).map_err(SinkError::new)?;
        Ok(SinkOutput {
            dir: Some(stats.dir),
            events: stats.event_count,
            bytes: stats.bytes_written,
            complete: stats.complete,
            unwritten: stats.events_unwritten,
            error: stats.write_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_atf::encode_delimited;

    /// One call into the sink; each writes exactly one event.
    enum Op {
        Symbol(u64, &'static str, u64),
        Record(Record<'static>),
    }

    fn rec(kind: EventKind, lane: LaneKind, function_id: u64) -> Record<'static> {
        Record {
            timestamp_ns: 1_500_000_123,
            function_id,
            thread_id: 4242,
            call_depth: 3,
            ..Record::new(kind, lane)
        }
    }

    /// `events.bin` split into its delimited records (prefix included).
    fn records(bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (mut len, mut shift, mut n) = (0usize, 0, 0);
            loop {
                let b = bytes[at + n];
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                n += 1;
                if b < 0x80 {
                    break;
                }
            }
            out.push(&bytes[at..at + n + len]);
            at += n + len;
        }
        out
    }

    /// Every record the sink writes — through the index fast path or not — is byte for byte
    /// what `ring_record` + the mapper + the generic encoder make of it with the symbols known
    /// at that moment: unresolved ids, a late definition, a redefinition, sparse ids, detail
    /// and index lanes, records with registers or a stack, extreme values.
    #[test]
    fn fast_path_matches_the_mapper() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = AtfSink::create(tmp.path(), 1).unwrap();
        sink.begin(&SessionInfo::default()).unwrap();
        let regs: &'static [u64] = &[1, 2, 3];
        let stack: &'static [u8] = &[9; 16];
        let sparse = u64::MAX - 1;
        let ops = vec![
            // Used before it is defined: unresolved.
            Op::Record(rec(EventKind::Call, LaneKind::Index, 5)),
            Op::Symbol(5, "first", 0x10),
            Op::Record(rec(EventKind::Call, LaneKind::Index, 5)),
            Op::Record(rec(EventKind::Return, LaneKind::Index, 5)),
            // Redefined: the cached payload must follow.
            Op::Symbol(5, "renamed::日本語::🦀", 0),
            Op::Record(rec(EventKind::Call, LaneKind::Index, 5)),
            Op::Record(Record {
                stack,
                ..rec(EventKind::Return, LaneKind::Index, 5)
            }),
            Op::Record(Record {
                registers: regs,
                ..rec(EventKind::Call, LaneKind::Detail, 5)
            }),
            Op::Record(Record {
                stack,
                ..rec(EventKind::Call, LaneKind::Detail, 5)
            }),
            Op::Record(Record {
                registers: regs,
                ..rec(EventKind::Return, LaneKind::Detail, 5)
            }),
            Op::Record(rec(EventKind::Call, LaneKind::Detail, 5)),
            Op::Record(Record {
                message: b"boom",
                ..rec(EventKind::Mark, LaneKind::Detail, 5)
            }),
            Op::Symbol(sparse, "x", u64::MAX),
            Op::Record(Record {
                timestamp_ns: u64::MAX,
                call_depth: u32::MAX,
                ..rec(EventKind::Return, LaneKind::Index, sparse)
            }),
            Op::Record(Record {
                timestamp_ns: 0,
                call_depth: 0,
                ..rec(EventKind::Call, LaneKind::Index, 0)
            }),
            Op::Record(rec(EventKind::Call, LaneKind::Index, 77)),
        ];
        let mut reference: HashMap<u64, (String, u64)> = HashMap::new();
        let mut mapper = RecordMapper::new(ada_atf::manifest::host_arch());
        let mut expected = Vec::new();
        for (n, thread_number) in [(0, 1u32), (1, u32::MAX)] {
            let thread = ThreadInfo {
                slot: 0,
                generation: 0,
                pid: 1,
                os_tid: 2,
                number: thread_number,
                verified: true,
            };
            for op in &ops {
                // Event 1 is TraceStart; each op writes one event.
                let id = 2 + expected.len() as u64;
                match op {
                    Op::Symbol(function_id, name, address) => {
                        sink.symbol(*function_id, name, *address).unwrap();
                        reference.insert(*function_id, ((*name).to_owned(), *address));
                        expected.push(None);
                    }
                    Op::Record(r) => {
                        sink.record(&thread, r).unwrap();
                        let ring = ring_record(&thread, r);
                        let mut bytes = Vec::new();
                        encode_delimited(id, &mapper.map(&ring, &reference), &mut bytes).unwrap();
                        expected.push(Some(bytes));
                    }
                }
            }
            assert_eq!(expected.len(), ops.len() * (n + 1));
        }
        let out = sink.finish(&Report::default()).unwrap();
        let bytes = std::fs::read(out.dir.unwrap().join("events.bin")).unwrap();
        let written = records(&bytes);
        // TraceStart, the ops, TraceEnd.
        assert_eq!(written.len(), expected.len() + 2);
        for (i, want) in expected.iter().enumerate() {
            if let Some(want) = want {
                assert_eq!(written[i + 1], want.as_slice(), "event {}", i + 2);
            }
        }
    }
}
