//! Perfetto's protobuf trace format: [`export_perfetto`] turns an ATF v4 trace into a `Trace`
//! (`protos/perfetto/trace/trace.proto`) that the Perfetto UI (<https://ui.perfetto.dev>) and
//! `trace_processor` open natively: `TracePacket`s with `TrackDescriptor`s and `TrackEvent`s,
//! all on one packet sequence with interned names (`perfetto/sequence.rs`). The message types
//! are defined by hand with Perfetto's field numbers (`perfetto/proto.rs`, each number's source
//! file named); no code generator is involved.
//!
//! | ATF | Perfetto |
//! |---|---|
//! | the trace's process (manifest `pid`, else the `N` of a `pid_N` directory, else 0), and each other pid a thread names | a process track: `TrackDescriptor` with `ProcessDescriptor` (`pid`, `process_name` = the executable's file name, `cmdline` from `TraceStart`) |
//! | each thread (manifest `threads[]`, `ThreadDef`, or its first event) | a thread track, child of its process's: `ThreadDescriptor` `pid`, `tid` (the OS thread id when the trace knows it and it fits an `int32`, else the ATF `thread_id`), `thread_name`; written again when a later `ThreadDef` names it |
//! | `FunctionCall` on the index lane | `TYPE_SLICE_BEGIN` on the thread's track, name = the function's name (as the Chrome export names it: symbol, trace name, module symbol, `module+0x…`, `fn#<id>`), category `function`, args `id`, `address` (pointer), `function_id`, `depth`, `registers.<reg>`, `stack_bytes`; when the trace gives the function a source location (`SymbolDef.file`/`line`: a `tracing` span), `source_location_iid`, an interned `SourceLocation` (`file_name`, `line_number`, `function_name`) |
//! | `FunctionReturn` on the index lane, closing the call on top | `TYPE_SLICE_END`, args `id`, `registers.<reg>` (return registers) |
//! | a slice closed by the exporter ([`nesting`](super::nesting): a return of an outer function, a loss, the trace's end) | `TYPE_SLICE_END` with arg `cut` = `unwound`, `loss` or `trace end` |
//! | `FunctionReturn` whose call is not open (lost) | no slice end; an instant `orphan return`, args `function` (its name), `id` |
//! | `FunctionCall`/`FunctionReturn` on the detail lane | an instant named after the function, category `function`, args as above and `lane` |
//! | `Custom` (`mark`, `message`, `exception`, ...) | an instant named after the kind (`custom` when empty), args `text` (or `bytes` and `hex` when not UTF-8), `id`, `lane` |
//! | `EventsLost` | an instant `events lost (<cause>)` on the thread's track, args `count`, `cause`, `lane`, `first_lost_ns`, `last_lost_ns`, `id`; a value of the process's counter track `events lost` (the events lost so far, summed); on the index lane it also closes the thread's open slices (`cut` = `loss`) |
//! | `WindowMark` | a slice `persistence window` (begin at the window's start, end at its end), category `window`, on the thread's child track `persistence windows` (overlapping windows go to further tracks `persistence windows 2`, ...), args `window_id`, `events`, `marks`, `pre_roll`, `discarded_before`, `first_mark_ns`, `last_event_ns`, `mark_seen`, `trigger` |
//! | `SignalDelivery` | an instant `signal <name>`, args `number`, `name`, `registers.<reg>` |
//! | `TraceStart` / `TraceEnd` | instants `trace start` (args `executable`, `args`, `os`, `arch`) / `trace end` (arg `exit_code`) |
//! | `SymbolDef`, `ThreadDef` | nothing of their own: they name later events and tracks |
//! | how the export went, and any damage ([`crate::damage`]) | a last instant `ada export` on the process track, args `complete`, `dataLost`, `warnings`, `stream`, `captureWarnings`, `selection` and `unselected` (for a partial export), `lossMarkers`, `eventsLostInStream`, `orphanReturns`, `lateEvents`, `cutSlices`, `eventsRead`, `eventsExported` |
//!
//! **Time.** Packet timestamps are the trace clock's nanoseconds, written with no
//! `timestamp_clock_id`: Perfetto takes them as its default trace clock, so the times shown
//! are the ATF trace's own (not converted to any other clock). An event whose timestamp is
//! missing or invalid gets the last valid timestamp before it
//! ([`PerfettoStats::bad_timestamps`]).
//!
//! **Nesting.** Every slice begun is ended, and slices nest on their thread's track whatever
//! the trace lost: begins and ends go through [`Nesting`]. A thread
//! whose index-lane calls and returns go back in time in the stream (events that went through
//! the controller's fallback ring: `export/order.rs`) has its calls, returns and index-lane
//! losses put in time order within a window of [`REORDER_WINDOW`] items (`perfetto/reorder.rs`),
//! so they nest as recorded; one more than the window out of order is dropped and treated as a
//! loss of the thread's index lane (what is open is cut, `cut` = `out of order`;
//! [`PerfettoStats::late_events`]).
//!
//! **Streaming.** `events.bin` is read a chunk at a time ([`super::stream`]), twice (once to
//! find the out-of-order threads above, once to export), and each packet is encoded and written
//! as its event is read; the `Trace` is never built in memory. Memory is a chunk of the file,
//! the threads' open calls, the interning tables (one entry per distinct name) and the tracks
//! described; plus, for each out-of-order thread above, at most [`REORDER_WINDOW`] held events.
//!
//! **Selection** ([`PerfettoOptions::selection`], `--from`, `--to`, `--threads`: see
//! [`super::select`]). Events of other threads, and events before `--from` or after `--to`, are
//! not written (counted in [`PerfettoStats::unselected`]); a call open at `--from` begins there
//! (arg `cut_start` = `selection start`), one still open after `--to` ends there (`cut` =
//! `selection end`, as in the Chrome export); a window
//! is cut to the range. Times are from the trace's start: the manifest's
//! `minEventTimestampNs`, else the stream's first event. Definitions are read whatever the
//! selection, so names stay right.
//!
//! **Damaged traces.** As for the Chrome export ([`super`]): what is readable is exported,
//! [`PerfettoStats::damage`] says what was lost, and the `ada export` instant says it in the
//! file.

mod proto;
mod reorder;
mod sequence;

pub use self::reorder::REORDER_WINDOW;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ada_atf::locate::pid_from_dir;
use ada_atf::schema::event::Payload;
use ada_atf::{Event, ReadError, StreamNames, TornTail};

use self::proto::{
    CounterDescriptor, DebugAnnotation, ProcessDescriptor, ThreadDescriptor, TrackDescriptor,
    TrackEventType, UNIT_COUNT,
};
use self::reorder::{Push, Reorder};
use self::sequence::{Ev, Sequence, track_uuid};
use super::ExportError;
use super::nesting::{Cut, Nesting, Return};
use super::order::{is_slice, unordered_slice_threads};
use super::progress::Progress;
use super::select::{Selection, Window};
use super::size::SizeEstimate;
use super::stream::{ChunkedEvents, StreamedTrace};
use crate::damage::{CheckedEvents, Damage, EventSource, capture_warnings};
use crate::inspect::lane_name;
use crate::symbolize::Namer;

/// Bytes of output per event, about (46 measured for `ada demo`'s workload: calls and returns
/// with an id, an address, a depth and a few registers), for [`size_warning`].
pub const BYTES_PER_EVENT: u64 = 50;

/// The largest export the Perfetto UI is expected to load in a browser: its memory is about
/// 2 GB, and a protobuf trace takes 2 to 4 times its size once loaded (Perfetto's "Visualising
/// large traces").
pub const UI_LIMIT: u64 = 500_000_000;

/// A warning when the export of `selection` of a trace with `manifest` and an `events.bin` of
/// `events_len` bytes will be more than the Perfetto UI loads ([`UI_LIMIT`]), saying what to do.
pub fn size_warning(
    manifest: Option<&ada_atf::Manifest>,
    events_len: u64,
    selection: &Selection,
) -> Option<String> {
    SizeEstimate::of_trace(manifest, events_len, selection, BYTES_PER_EVENT).warning(
        UI_LIMIT,
        "Perfetto",
        "open it through a native trace_processor (trace_processor --httpd FILE, then the \
         Perfetto UI; see perfetto.dev/docs/visualization/large-traces), or export a part with \
         --from, --to or --threads",
    )
}

/// Bytes of a non-UTF-8 custom payload shown as hex.
const HEX_SHOWN: usize = 64;

/// Track kinds mixed into [`track_uuid`].
const PROCESS: u64 = 1;
const THREAD: u64 = 2;
const WINDOWS: u64 = 3;
const LOST: u64 = 4;

/// What [`export_perfetto`] wrote and how the event stream ended.
#[derive(Debug, Default)]
pub struct PerfettoStats {
    /// Whole events decoded from `events.bin`.
    pub events_read: u64,
    /// Events that became at least one packet.
    pub events_exported: u64,
    /// `TracePacket`s written.
    pub packets: u64,
    /// Track descriptors written (processes, threads, window and counter tracks; a track
    /// described again counts again).
    pub tracks: u64,
    /// `TYPE_SLICE_BEGIN` events (calls and windows).
    pub slice_begins: u64,
    /// `TYPE_SLICE_END` events (returns, cuts and windows' ends): equal to `slice_begins`.
    pub slice_ends: u64,
    /// Slice ends written by the exporter for slices whose return was lost (a return of an
    /// outer function, a loss, the trace's end).
    pub cut_slices: u64,
    /// Returns whose call was not open (not written as slice ends).
    pub orphan_returns: u64,
    /// Instant events.
    pub instants: u64,
    /// Counter values.
    pub counter_values: u64,
    /// Events without a payload this exporter knows, not exported.
    pub skipped: u64,
    /// Events left out by the selection (other threads, outside `--from`..`--to`).
    pub unselected: u64,
    /// Calls, returns and losses of out-of-order threads that came more than
    /// [`REORDER_WINDOW`] items late: not written, treated as losses.
    pub late_events: u64,
    /// Symbol and thread definitions read from the stream.
    pub definitions: u64,
    /// Events whose timestamp was missing or invalid.
    pub bad_timestamps: u64,
    /// `EventsLost` events exported.
    pub loss_markers: u64,
    /// The events they announce, summed (saturating).
    pub events_lost: u64,
    /// Distinct event names interned.
    pub interned_names: u64,
    /// The `pid` of the trace's process.
    pub pid: u32,
    /// `trace.json` exists.
    pub finalized: bool,
    /// `trace.json` exists and marks the trace complete, and nothing was found damaged.
    pub complete: bool,
    /// The torn tail the stream ended with, if any.
    pub torn_tail: Option<TornTail>,
    /// The corrupt record the stream stopped at, if any.
    pub stream_error: Option<ReadError>,
    /// What the trace lost or is missing ([`crate::damage`]); empty for a complete, undamaged
    /// trace.
    pub damage: Vec<Damage>,
    /// What the controller recorded about its input ([`crate::damage::capture_warnings`]).
    pub capture_warnings: Vec<String>,
}

impl PerfettoStats {
    /// The trace is damaged or incomplete: the export holds only what was readable.
    pub fn is_damaged(&self) -> bool {
        !self.damage.is_empty()
    }
}

/// How [`export_perfetto_with`] exports.
#[derive(Debug, Clone, Default)]
pub struct PerfettoOptions {
    /// The part of the trace to export; the default is all of it.
    pub selection: Selection,
    /// Show a progress line on stderr ([`Progress`]: only when stderr is a terminal).
    pub progress: bool,
}

/// Writes the whole trace in `trace_dir` to `out`: [`export_perfetto_with`] with the default
/// options.
pub fn export_perfetto(
    trace_dir: &Path,
    out: &mut dyn Write,
) -> Result<PerfettoStats, ExportError> {
    export_perfetto_with(trace_dir, out, &PerfettoOptions::default())
}

/// Writes the trace in `trace_dir` (a trace directory, or a session directory holding exactly
/// one) to `out` as a Perfetto protobuf trace (see the [module docs](self) for the mapping),
/// the part `options` selects.
///
/// A torn, corrupt or unfinalized trace exports what is readable; [`PerfettoStats::damage`]
/// says what was lost. A path that is not a trace directory, a trace that cannot be opened, or
/// a failing `out` is an [`ExportError`]; after an output error the file written so far is
/// incomplete.
pub fn export_perfetto_with(
    trace_dir: &Path,
    out: &mut dyn Write,
    options: &PerfettoOptions,
) -> Result<PerfettoStats, ExportError> {
    let trace = StreamedTrace::open(trace_dir)?;
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let stats = Exporter::run(&trace, &mut w, options).map_err(ExportError::Output)?;
    w.flush().map_err(ExportError::Output)?;
    Ok(stats)
}

/// [`ChunkedEvents`] that also tell the progress line how far they are.
struct Tracked<'a> {
    events: ChunkedEvents<'a>,
    progress: &'a std::cell::RefCell<Progress>,
    /// Added to the position: the pass's start in the progress's total.
    base: u64,
}

impl Iterator for Tracked<'_> {
    type Item = <ChunkedEvents<'static> as Iterator>::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.events.next();
        let done = self.base + self.events.position();
        self.progress.borrow_mut().update(done);
        item
    }
}

impl EventSource for Tracked<'_> {
    fn position(&self) -> u64 {
        self.events.position()
    }

    fn torn_tail(&self) -> Option<TornTail> {
        self.events.torn_tail()
    }
}

/// A thread's track, as described.
struct ThreadTrack {
    uuid: u64,
    pid: u32,
    name: Option<String>,
    /// The end of the last window on each of its window tracks.
    window_ends: Vec<u64>,
}

struct Exporter<'w> {
    seq: Sequence<'w>,
    names: StreamNames,
    namer: Namer,
    nesting: Nesting,
    cuts: Vec<Cut>,
    pid: u32,
    /// Each process described: its name and command line.
    processes: HashMap<u32, (Option<String>, Vec<String>)>,
    threads: HashMap<i32, ThreadTrack>,
    /// The processes whose `events lost` counter track is described.
    lost_tracks: HashSet<u32>,
    last_ts: u64,
    selection: Selection,
    /// The selected time range, known at the first event.
    window: Option<Window>,
    /// The manifest's first event time, the origin of `--from` and `--to`.
    origin: Option<u64>,
    /// Each thread's calls open before `--from` (function id, name), begun at `--from` when the
    /// thread's first event in range comes.
    before: HashMap<i32, Vec<(u64, String)>>,
    /// Threads with an event in range so far.
    entered: HashSet<i32>,
    /// An event came after `--to`.
    after_to: bool,
    stats: PerfettoStats,
}

impl<'w> Exporter<'w> {
    fn run(
        trace: &StreamedTrace,
        w: &'w mut dyn Write,
        options: &PerfettoOptions,
    ) -> io::Result<PerfettoStats> {
        let manifest = trace.manifest();
        let pid = manifest
            .map(|m| m.pid)
            .or_else(|| pid_from_dir(trace.dir()))
            .unwrap_or(0);
        let mut x = Exporter {
            seq: Sequence::new(w),
            names: StreamNames::new(manifest),
            namer: Namer::new(manifest),
            nesting: Nesting::new(),
            cuts: Vec::new(),
            pid,
            processes: HashMap::new(),
            threads: HashMap::new(),
            lost_tracks: HashSet::new(),
            last_ts: 0,
            selection: options.selection.clone(),
            window: None,
            origin: manifest.and_then(|m| m.min_event_timestamp_ns),
            before: HashMap::new(),
            entered: HashSet::new(),
            after_to: false,
            stats: PerfettoStats {
                pid,
                finalized: manifest.is_some(),
                ..PerfettoStats::default()
            },
        };
        let exe = manifest.and_then(|m| m.executable.clone());
        x.process(pid, exe.as_deref(), &[])?;
        if let Some(m) = manifest {
            for t in &m.threads {
                if x.selected(t.thread_id) {
                    x.thread(t.thread_id)?;
                }
            }
        }

        // Two passes over events.bin: the progress line counts both.
        let len = trace.events_len();
        let progress = std::cell::RefCell::new(if options.progress {
            Progress::on_terminal("exporting", len.saturating_mul(2))
        } else {
            Progress::hidden()
        });
        let events = |base| {
            let tracked = Tracked {
                events: trace.events(),
                progress: &progress,
                base,
            };
            CheckedEvents::from_source(tracked, len)
        };
        let unordered = unordered_slice_threads(events(0));
        let mut reorder = Reorder::new(REORDER_WINDOW);
        let mut events = events(len);
        let mut last_ts = 0u64;
        for ev in events.by_ref() {
            x.stats.events_read += 1;
            if x.names.observe(&ev) {
                x.stats.definitions += 1;
                if let Some(Payload::ThreadDef(d)) = &ev.payload
                    && x.selected(d.thread_id)
                {
                    x.thread(d.thread_id)?;
                }
                continue;
            }
            let ts = match ev.timestamp.and_then(|t| t.to_nanos()) {
                Some(ns) => {
                    last_ts = ns;
                    ns
                }
                None => {
                    x.stats.bad_timestamps += 1;
                    last_ts
                }
            };
            if unordered.contains(&ev.thread_id) && (is_slice(&ev) || is_index_loss(&ev)) {
                let tid = ev.thread_id;
                match reorder.push(ts, ev) {
                    Push::Kept => {}
                    Push::Due(ts, ev) => x.event(&ev, ts)?,
                    Push::Late { written_ns } => x.late(tid, written_ns)?,
                }
                continue;
            }
            x.event(&ev, ts)?;
        }
        let outcome = events.finish_with(manifest);
        progress.borrow_mut().finish();
        while let Some((ts, ev)) = reorder.pop() {
            x.event(&ev, ts)?;
        }
        x.end_of_stream()?;

        x.stats.complete = trace.is_complete() && outcome.damage.is_empty();
        x.stats.torn_tail = outcome.torn_tail;
        x.stats.stream_error = outcome.stream_error;
        x.stats.damage = outcome.damage;
        x.stats.capture_warnings = manifest.map(capture_warnings).unwrap_or_default();
        x.summary()?;
        x.stats.packets = x.seq.packets;
        x.stats.interned_names = x.seq.interned_names() as u64;
        Ok(x.stats)
    }

    /// An item of thread `thread_id` came too late to be put in order (its thread already wrote
    /// up to `written_ns`): dropped, and what is open on the thread is cut there, as at a loss.
    fn late(&mut self, thread_id: i32, written_ns: u64) -> io::Result<()> {
        self.stats.late_events += 1;
        if !self.selected(thread_id) {
            return Ok(());
        }
        self.nesting.gap(thread_id, written_ns, &mut self.cuts);
        self.write_cuts_as(Some("out of order"))
    }

    /// Whether the selection keeps thread `thread_id`'s events.
    fn selected(&self, thread_id: i32) -> bool {
        let name = self.names.thread(thread_id).and_then(|t| t.name.as_deref());
        self.selection.selects_thread(thread_id, name)
    }

    /// The selected time range; the first event's time is the origin when the manifest gives
    /// none.
    fn window(&mut self, ts: u64) -> Window {
        *self.window.get_or_insert_with(|| {
            let origin = self.origin.unwrap_or(ts);
            self.selection.window(origin)
        })
    }

    /// Keeps `ev`, before `--from`, in the thread's calls open at `--from`.
    fn before_range(&mut self, ev: &Event) {
        if ev.lane == 1 {
            return;
        }
        let tid = ev.thread_id;
        match &ev.payload {
            Some(Payload::FunctionCall(c)) => {
                let name = self
                    .namer
                    .name(&c.symbol, ev.function_id, c.address, tid, &self.names)
                    .into_owned();
                self.before
                    .entry(tid)
                    .or_default()
                    .push((ev.function_id, name));
            }
            Some(Payload::FunctionReturn(_)) => {
                let open = self.before.entry(tid).or_default();
                if let Some(at) = open.iter().rposition(|(f, _)| *f == ev.function_id) {
                    open.truncate(at);
                }
            }
            Some(Payload::EventsLost(l)) if l.lane == 0 => {
                self.before.remove(&tid);
            }
            _ => {}
        }
    }

    /// The thread's first event in range: its calls open at `--from` begin there.
    fn enter(&mut self, thread_id: i32, from_ns: u64) -> io::Result<()> {
        if !self.entered.insert(thread_id) {
            return Ok(());
        }
        let Some(open) = self.before.remove(&thread_id) else {
            return Ok(());
        };
        let track = self.thread(thread_id)?;
        for (function_id, name) in open {
            self.nesting.call(thread_id, function_id, from_ns);
            let args = vec![DebugAnnotation::string("cut_start", "selection start")];
            self.begin_call(from_ns, track, function_id, &name, args)?;
        }
        Ok(())
    }

    /// After the last event: calls open at `--from` in threads with no event in range still
    /// span it; everything open is closed (at `--to` when events came after it, else at each
    /// thread's last time).
    fn end_of_stream(&mut self) -> io::Result<()> {
        if let Some(w) = self.window {
            let mut waiting: Vec<i32> = self.before.keys().copied().collect();
            waiting.sort_unstable();
            for tid in waiting {
                if w.from_ns <= self.last_ts {
                    self.enter(tid, w.from_ns)?;
                }
            }
        }
        match self.window.filter(|_| self.after_to) {
            Some(w) => {
                self.nesting.finish(Some(w.to_ns), &mut self.cuts);
                self.write_cuts_as(Some("selection end"))
            }
            None => {
                self.nesting.finish(None, &mut self.cuts);
                self.write_cuts()
            }
        }
    }

    /// Describes process `pid`'s track if it is new or `exe` (its name) or `args` (with `exe`,
    /// its command line) say more than its last description.
    fn process(&mut self, pid: u32, exe: Option<&str>, args: &[String]) -> io::Result<()> {
        let exe = exe.filter(|e| !e.is_empty());
        let known = self.processes.get(&pid);
        let name = exe
            .map(|e| process_name(e).to_owned())
            .or_else(|| known.and_then(|k| k.0.clone()));
        let cmdline = match exe {
            Some(e) if !args.is_empty() => std::iter::once(e.to_owned())
                .chain(args.iter().cloned())
                .collect(),
            _ => known.map(|k| k.1.clone()).unwrap_or_default(),
        };
        if known.is_some_and(|k| k.0 == name && k.1 == cmdline) {
            return Ok(());
        }
        self.processes.insert(pid, (name.clone(), cmdline.clone()));
        self.stats.tracks += 1;
        self.seq.describe(TrackDescriptor {
            uuid: Some(track_uuid(PROCESS, pid.into())),
            process: Some(ProcessDescriptor {
                pid: Some(pid as i32),
                cmdline,
                process_name: name,
            }),
            ..TrackDescriptor::default()
        })
    }

    /// The uuid of thread `thread_id`'s track, described first if it is new or the trace
    /// named it since.
    fn thread(&mut self, thread_id: i32) -> io::Result<u64> {
        let ident = self.names.thread(thread_id);
        let named = ident.and_then(|t| t.name.as_deref());
        if let Some(t) = self.threads.get(&thread_id)
            && (named.is_none() || t.name.as_deref() == named)
        {
            return Ok(t.uuid);
        }
        let name = named.map(str::to_owned);
        let pid = ident.and_then(|t| t.pid).unwrap_or(self.pid);
        let tid = ident
            .and_then(|t| t.os_tid)
            .and_then(|t| i32::try_from(t).ok())
            .unwrap_or(thread_id);
        if !self.processes.contains_key(&pid) {
            self.process(pid, None, &[])?;
        }
        let uuid = track_uuid(THREAD, (u64::from(pid) << 32) | u64::from(thread_id as u32));
        let window_ends = self
            .threads
            .remove(&thread_id)
            .map(|t| t.window_ends)
            .unwrap_or_default();
        self.threads.insert(
            thread_id,
            ThreadTrack {
                uuid,
                pid,
                name: name.clone(),
                window_ends,
            },
        );
        self.stats.tracks += 1;
        self.seq.describe(TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: Some(track_uuid(PROCESS, pid.into())),
            thread: Some(ThreadDescriptor {
                pid: Some(pid as i32),
                tid: Some(tid),
                thread_name: name,
            }),
            ..TrackDescriptor::default()
        })?;
        Ok(uuid)
    }

    fn instant(
        &mut self,
        ts: u64,
        track: u64,
        name: &str,
        category: &'static str,
        args: Vec<DebugAnnotation>,
    ) -> io::Result<()> {
        self.stats.instants += 1;
        self.seq.event(Ev {
            ts,
            track,
            kind: TrackEventType::Instant,
            name: Some(name),
            category: Some(category),
            args,
            source: None,
        })
    }

    fn begin(
        &mut self,
        ts: u64,
        track: u64,
        name: &str,
        category: &'static str,
        args: Vec<DebugAnnotation>,
    ) -> io::Result<()> {
        self.begin_at(ts, track, name, category, args, None)
    }

    /// The slice of a call of `function_id`, with the function's source location when the
    /// trace has one.
    fn begin_call(
        &mut self,
        ts: u64,
        track: u64,
        function_id: u64,
        name: &str,
        args: Vec<DebugAnnotation>,
    ) -> io::Result<()> {
        let names = &self.names;
        let source = self.seq.source(function_id, name, || {
            names.symbol(function_id).and_then(|s| s.source.as_ref())
        });
        self.begin_at(ts, track, name, "function", args, source)
    }

    fn begin_at(
        &mut self,
        ts: u64,
        track: u64,
        name: &str,
        category: &'static str,
        args: Vec<DebugAnnotation>,
        source: Option<u64>,
    ) -> io::Result<()> {
        self.stats.slice_begins += 1;
        self.seq.event(Ev {
            ts,
            track,
            kind: TrackEventType::SliceBegin,
            name: Some(name),
            category: Some(category),
            args,
            source,
        })
    }

    fn end(&mut self, ts: u64, track: u64, args: Vec<DebugAnnotation>) -> io::Result<()> {
        self.stats.slice_ends += 1;
        self.seq.event(Ev {
            ts,
            track,
            kind: TrackEventType::SliceEnd,
            name: None,
            category: None,
            args,
            source: None,
        })
    }

    /// Writes the ends of the slices in `self.cuts`, marked as cut.
    fn write_cuts(&mut self) -> io::Result<()> {
        self.write_cuts_as(None)
    }

    /// [`write_cuts`](Self::write_cuts), the cut called `label` instead of its reason.
    fn write_cuts_as(&mut self, label: Option<&'static str>) -> io::Result<()> {
        let cuts = std::mem::take(&mut self.cuts);
        for c in &cuts {
            let track = self.thread(c.thread_id)?;
            self.stats.cut_slices += 1;
            let why = label.unwrap_or(c.reason.as_str());
            self.end(c.ts_ns, track, vec![DebugAnnotation::string("cut", why)])?;
        }
        self.cuts = cuts;
        self.cuts.clear();
        Ok(())
    }

    /// Adds `n` to process `pid`'s `events lost` counter, described at its first use.
    fn count_lost(&mut self, pid: u32, ts: u64) -> io::Result<()> {
        let track = track_uuid(LOST, pid.into());
        if self.lost_tracks.insert(pid) {
            self.stats.tracks += 1;
            self.seq.describe(TrackDescriptor {
                uuid: Some(track),
                name: Some("events lost".to_owned()),
                parent_uuid: Some(track_uuid(PROCESS, pid.into())),
                counter: Some(CounterDescriptor {
                    unit: Some(UNIT_COUNT),
                }),
                ..TrackDescriptor::default()
            })?;
        }
        self.stats.counter_values += 1;
        let total = i64::try_from(self.stats.events_lost).unwrap_or(i64::MAX);
        self.seq.counter(ts, track, total)
    }

    /// The track for a window from `start` to `end` on `thread_id`: the first of the thread's
    /// window tracks whose last window ended by `start`, described when new.
    fn window_track(&mut self, thread_id: i32, start: u64, end: u64) -> io::Result<u64> {
        let parent = self.thread(thread_id)?;
        let Some(t) = self.threads.get_mut(&thread_id) else {
            // Not reached: `thread` has just described it. The thread's own track will do.
            return Ok(parent);
        };
        let pid = t.pid;
        let (lane, new) = match t.window_ends.iter().position(|&e| e <= start) {
            Some(i) => (i, false),
            None => {
                t.window_ends.push(0);
                (t.window_ends.len() - 1, true)
            }
        };
        t.window_ends[lane] = end;
        let key = (u64::from(pid) << 40) ^ (u64::from(thread_id as u32) << 8) ^ lane as u64;
        let uuid = track_uuid(WINDOWS, key);
        if new {
            let name = if lane == 0 {
                "persistence windows".to_owned()
            } else {
                format!("persistence windows {}", lane + 1)
            };
            self.stats.tracks += 1;
            self.seq.describe(TrackDescriptor {
                uuid: Some(uuid),
                name: Some(name),
                parent_uuid: Some(parent),
                ..TrackDescriptor::default()
            })?;
        }
        Ok(uuid)
    }

    fn event(&mut self, ev: &Event, ts: u64) -> io::Result<()> {
        let Some(payload) = &ev.payload else {
            self.stats.skipped += 1;
            return Ok(());
        };
        let tid = ev.thread_id;
        if !self.selected(tid) {
            self.stats.unselected += 1;
            return Ok(());
        }
        if let Payload::TraceStart(s) = payload {
            // The process's name and command line, whatever the range.
            let pid = self
                .names
                .thread(tid)
                .and_then(|t| t.pid)
                .unwrap_or(self.pid);
            self.process(pid, Some(&s.executable_path), &s.args)?;
        }
        let range = self.window(ts);
        let in_range = match payload {
            Payload::WindowMark(m) => m.start_ns <= range.to_ns && m.end_ns >= range.from_ns,
            _ => range.contains(ts),
        };
        if !in_range {
            self.stats.unselected += 1;
            if ts < range.from_ns {
                self.before_range(ev);
            } else if ts > range.to_ns {
                self.after_to = true;
            }
            return Ok(());
        }
        self.enter(tid, range.from_ns)?;
        self.last_ts = self.last_ts.max(ts);
        let track = self.thread(tid)?;
        let lane = lane_name(ev.lane);
        let id = DebugAnnotation::uint("id", ev.event_id);
        match payload {
            Payload::SymbolDef(_) | Payload::ThreadDef(_) => {
                self.stats.skipped += 1;
                return Ok(());
            }
            Payload::FunctionCall(c) => {
                let name = self
                    .namer
                    .name(&c.symbol, ev.function_id, c.address, tid, &self.names)
                    .into_owned();
                let mut args = vec![id, DebugAnnotation::pointer("address", c.address)];
                if ev.function_id != 0 {
                    args.push(DebugAnnotation::uint("function_id", ev.function_id));
                }
                args.push(DebugAnnotation::uint("depth", ev.call_depth.into()));
                registers(&mut args, &c.argument_registers);
                if !c.stack_shallow_copy.is_empty() {
                    args.push(DebugAnnotation::uint(
                        "stack_bytes",
                        c.stack_shallow_copy.len() as u64,
                    ));
                }
                if ev.lane == 1 {
                    args.push(DebugAnnotation::string("lane", &lane));
                    self.instant(ts, track, &name, "function", args)?;
                } else {
                    self.nesting.call(tid, ev.function_id, ts);
                    self.begin_call(ts, track, ev.function_id, &name, args)?;
                }
            }
            Payload::FunctionReturn(r) => {
                let mut args = vec![id];
                registers(&mut args, &r.return_registers);
                if ev.lane == 1 {
                    let name = self
                        .namer
                        .name(&r.symbol, ev.function_id, r.address, tid, &self.names)
                        .into_owned();
                    args.push(DebugAnnotation::pointer("address", r.address));
                    args.push(DebugAnnotation::string("lane", &lane));
                    self.instant(ts, track, &name, "function", args)?;
                } else {
                    match self.nesting.ret(tid, ev.function_id, ts, &mut self.cuts) {
                        Return::Matched => {
                            self.write_cuts()?;
                            self.end(ts, track, args)?;
                        }
                        Return::Orphan => {
                            self.stats.orphan_returns += 1;
                            let name = self
                                .namer
                                .name(&r.symbol, ev.function_id, r.address, tid, &self.names)
                                .into_owned();
                            args.push(DebugAnnotation::string("function", &name));
                            self.instant(ts, track, "orphan return", "ada", args)?;
                        }
                    }
                }
            }
            Payload::Custom(c) => {
                let (name, cat) = match c.name.as_str() {
                    "" => ("custom", "custom"),
                    "mark" => ("mark", "mark"),
                    "message" => ("message", "message"),
                    "exception" => ("exception", "exception"),
                    n => (n, "custom"),
                };
                let mut args = vec![id];
                match std::str::from_utf8(&c.data) {
                    Ok(text) => args.push(DebugAnnotation::string("text", text)),
                    Err(_) => {
                        args.push(DebugAnnotation::uint("bytes", c.data.len() as u64));
                        let shown = &c.data[..c.data.len().min(HEX_SHOWN)];
                        let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
                        args.push(DebugAnnotation::string("hex", &hex));
                    }
                }
                args.push(DebugAnnotation::string("lane", &lane));
                let name = name.to_owned();
                self.instant(ts, track, &name, cat, args)?;
            }
            Payload::EventsLost(l) => {
                self.stats.loss_markers += 1;
                self.stats.events_lost = self.stats.events_lost.saturating_add(l.count);
                if l.lane == 0 {
                    self.nesting.gap(tid, ts, &mut self.cuts);
                    self.write_cuts()?;
                }
                let args = vec![
                    id,
                    DebugAnnotation::uint("count", l.count),
                    DebugAnnotation::string("cause", &l.cause),
                    DebugAnnotation::string("lane", &lane_name(l.lane)),
                    DebugAnnotation::uint("first_lost_ns", l.first_lost_ns),
                    DebugAnnotation::uint("last_lost_ns", l.last_lost_ns),
                ];
                let name = format!("events lost ({})", l.cause);
                self.instant(ts, track, &name, "ada", args)?;
                let pid = self.threads.get(&tid).map_or(self.pid, |t| t.pid);
                self.count_lost(pid, ts)?;
            }
            Payload::WindowMark(m) => {
                let start = m.start_ns.max(range.from_ns);
                let end = m.end_ns.max(m.start_ns).min(range.to_ns).max(start);
                let wt = self.window_track(tid, start, end)?;
                let mut args = vec![
                    id,
                    DebugAnnotation::uint("window_id", m.window_id),
                    DebugAnnotation::uint("events", m.total_events),
                    DebugAnnotation::uint("marks", m.marked_events),
                    DebugAnnotation::uint("pre_roll", m.pre_roll_events),
                    DebugAnnotation::uint("discarded_before", m.discarded_events),
                    DebugAnnotation::uint("first_mark_ns", m.first_mark_ns),
                    DebugAnnotation::uint("last_event_ns", m.last_event_ns),
                    DebugAnnotation::bool("mark_seen", m.mark_seen),
                ];
                if let Some(t) = m.trigger {
                    args.push(DebugAnnotation::uint("trigger", t.into()));
                }
                if start != m.start_ns || end != m.end_ns.max(m.start_ns) {
                    args.push(DebugAnnotation::bool("cut_to_range", true));
                }
                self.begin(start, wt, "persistence window", "window", args)?;
                self.end(end, wt, Vec::new())?;
            }
            Payload::SignalDelivery(s) => {
                let name = if s.name.is_empty() {
                    format!("signal {}", s.number)
                } else {
                    format!("signal {}", s.name)
                };
                let mut args = vec![
                    id,
                    DebugAnnotation::int("number", s.number.into()),
                    DebugAnnotation::string("name", &s.name),
                ];
                registers(&mut args, &s.registers);
                self.instant(ts, track, &name, "signal", args)?;
            }
            Payload::TraceStart(s) => {
                let args = vec![
                    id,
                    DebugAnnotation::string("executable", &s.executable_path),
                    DebugAnnotation::string("args", &s.args.join(" ")),
                    DebugAnnotation::string("os", &s.operating_system),
                    DebugAnnotation::string("arch", &s.cpu_architecture),
                ];
                self.instant(ts, track, "trace start", "ada", args)?;
            }
            Payload::TraceEnd(e) => {
                let args = vec![id, DebugAnnotation::int("exit_code", e.exit_code.into())];
                self.instant(ts, track, "trace end", "ada", args)?;
            }
        }
        self.stats.events_exported += 1;
        Ok(())
    }

    /// The last packet: an instant `ada export` on the process track saying how the export
    /// went and what the trace lost.
    fn summary(&mut self) -> io::Result<()> {
        let s = &self.stats;
        let mut args = vec![
            DebugAnnotation::bool("complete", s.complete),
            DebugAnnotation::bool("dataLost", s.is_damaged()),
        ];
        if s.is_damaged() {
            let warnings: Vec<String> = s.damage.iter().map(ToString::to_string).collect();
            args.push(DebugAnnotation::string("warnings", &warnings.join("; ")));
        }
        let stream = match (&s.stream_error, s.torn_tail) {
            (Some(e), _) => format!("corrupt: {e}"),
            (None, Some(t)) => format!("torn tail: {} bytes at offset {}", t.bytes, t.offset),
            (None, None) => "ended cleanly".to_owned(),
        };
        args.push(DebugAnnotation::string("stream", &stream));
        if !s.capture_warnings.is_empty() {
            args.push(DebugAnnotation::string(
                "captureWarnings",
                &s.capture_warnings.join("; "),
            ));
        }
        if let Some(summary) = self.namer.summary() {
            args.push(DebugAnnotation::string("addressNames", &summary));
        }
        if !self.selection.is_all() {
            args.push(DebugAnnotation::string(
                "selection",
                &self.selection.to_string(),
            ));
            args.push(DebugAnnotation::uint("unselected", s.unselected));
        }
        args.extend([
            DebugAnnotation::uint("lossMarkers", s.loss_markers),
            DebugAnnotation::uint("eventsLostInStream", s.events_lost),
            DebugAnnotation::uint("orphanReturns", s.orphan_returns),
            DebugAnnotation::uint("lateEvents", s.late_events),
            DebugAnnotation::uint("cutSlices", s.cut_slices),
            DebugAnnotation::uint("eventsRead", s.events_read),
            DebugAnnotation::uint("eventsExported", s.events_exported),
        ]);
        let track = track_uuid(PROCESS, self.pid.into());
        self.instant(self.last_ts, track, "ada export", "ada", args)
    }
}

/// An `EventsLost` of the index lane: it cuts its thread's slices, so it is held with them.
fn is_index_loss(ev: &Event) -> bool {
    matches!(&ev.payload, Some(Payload::EventsLost(l)) if l.lane == 0)
}

/// `registers.<name>` arguments, in hex.
fn registers(args: &mut Vec<DebugAnnotation>, regs: &std::collections::BTreeMap<String, u64>) {
    for (name, value) in regs {
        args.push(DebugAnnotation::pointer(
            &format!("registers.{name}"),
            *value,
        ));
    }
}

/// The file name of an executable path.
fn process_name(exe: &str) -> &str {
    Path::new(exe)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(events: u64) -> ada_atf::Manifest {
        let text = format!(
            r#"{{"os":"linux","arch":"x86_64","pid":7,"sessionId":1,"timeStartNs":1,
            "timeEndNs":2,"eventCount":{events},"bytesWritten":0,"modules":[]}}"#
        );
        ada_atf::Manifest::from_json_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn an_export_too_large_for_the_ui_is_warned_about() {
        let all = Selection::default();
        assert_eq!(size_warning(Some(&manifest(1_000_000)), 0, &all), None);
        let w = size_warning(Some(&manifest(100_000_000)), 0, &all).unwrap();
        assert!(w.contains("trace_processor --httpd"), "{w}");
        // No manifest: the estimate comes from events.bin's size.
        assert!(size_warning(None, 4_000_000_000, &all).is_some());
    }

    #[test]
    fn track_uuids_are_stable_and_never_the_global_track() {
        assert_eq!(track_uuid(THREAD, 5), track_uuid(THREAD, 5));
        assert_ne!(track_uuid(THREAD, 5), track_uuid(PROCESS, 5));
        assert_ne!(track_uuid(0, 0), 0);
    }
}
