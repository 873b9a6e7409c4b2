//! Chrome trace-event JSON: [`export_chrome`] turns an ATF v4 trace into the JSON Object Format
//! that the Perfetto UI (<https://ui.perfetto.dev>) and `chrome://tracing` open:
//!
//! ```text
//! {"traceEvents":[ {...}, {...} ],
//! "displayTimeUnit":"ns",
//! "otherData":{"source":"ada", ...}}
//! ```
//!
//! | ATF event | trace event |
//! |---|---|
//! | `FunctionCall` (index lane) | `"ph":"B"`, name = symbol (else the trace's name for `function_id`, from trace.json or a `SymbolDef` before it, else — an address in a module the trace recorded for the thread's process (`loadedModules`) — the function's name from the module's file, else `module+0x<offset>`, else, in a process with recorded modules, the hex address, else `fn#<id>`: see [`crate::symbolize`]), args only what is the same for every call of the function: `address` (hex), `function_id`, and `file` and `line` when the trace gives the function a source location (a `tracing` span) (so viewers that merge frames by name and args, such as speedscope, merge the calls of a function) |
//! | `FunctionReturn` (index lane) | `"ph":"E"` with its call's name and no args; a return whose call is not open is not an `E` (see *Balanced slices*) |
//! | either, from the detail lane (`lane` 1) | an instant (`"ph":"i"`) with the same name, args: the per-call detail, `id`, `address`, `function_id`, `depth`, `lane`, `registers` (hex), `stack_bytes` |
//! | `Custom` (`mark`, `message`, `exception`, ...) | instant `"ph":"i","s":"t"` named after the kind, args: `text` (or `bytes` and `hex` when not UTF-8) |
//! | `EventsLost` | instant `"ph":"i","s":"t"` on the thread's track named `events lost (<cause>)`, at the first lost event's time, args: `count`, `cause` (`overwritten`, `refused`, `too_large`, `no_slot`), `lane`, `first_lost_ns`, `last_lost_ns` (0 = unknown) |
//! | `WindowMark` | instant `persistence window`, args: the window's fields; and a complete slice (`"ph":"X"`, `ts` = the window's start, `dur` = its length, `cat` `window`) named `window #<id>` on the thread's track, args: `id`, `window_id`, `events`, `marks`, `pre_roll`, `discarded_before`, and `trigger` (the index of the trigger that opened it; absent for an explicit mark) |
//! | `SignalDelivery` | instant `signal <name>`, args: `number`, `name`, `registers` |
//! | `TraceStart` | `"ph":"M"` `process_name` (the executable's file name) and instant `trace start` (args: `executable`, `args`, `os`, `arch`) |
//! | `TraceEnd` | `"ph":"M"` `process_labels` (`exit=<code>`) and instant `trace end` (args: `exit_code`) |
//! | manifest `threads[].name` | `"ph":"M"` `thread_name` |
//! | `SymbolDef`, `ThreadDef` (definitions) | nothing of their own: they name the events after them (a `ThreadDef` name the manifest lacks becomes a `thread_name`); counted in [`ChromeStats::definitions`] |
//!
//! | (repair) | `E` with `args: {"cut": "unwound" \| "loss" \| "trace end" \| "selection end"}` closing a slice whose return is missing; `B` with `args: {..., "cut": "selection start"}` for a slice open at `--from`; instant `orphan return` (args: `function`, `why`) for a return that closes nothing |
//! | every thread with events | `"ph":"M"` `thread_name`: its name, else `trace` for thread 0 (the trace's start and end), else `thread <id>` |
//!
//! Every instant's args also carry its ATF `id` (slices do not: per-call args on `B`/`E` make
//! viewers show every call as its own frame). `ts` is in microseconds, written as a decimal
//! with nanosecond precision (`1234.567`); `pid` is the manifest's (else the `N` of a `pid_N`
//! directory name, else 0); `tid` is the event's `thread_id`. An event whose timestamp is
//! missing or invalid gets the last valid timestamp before it (counted in
//! [`ChromeStats::bad_timestamps`]); an event without a payload this version knows is skipped
//! ([`ChromeStats::skipped`]).
//!
//! **Balanced slices.** Every `B` is closed by an `E` of the same name on its thread, in
//! order, whatever the trace lost (see [`super::nesting`]): a return of a
//! function deeper in the stack cuts what it unwinds; a return whose call is not open (lost)
//! is dropped and marked by an `orphan return` instant; a loss on the thread's index lane
//! (`EventsLost` of lane `index`) cuts what is open at the first lost event's time; what is
//! still open at the end of the stream is cut at the trace's end (its `TraceEnd`, else the
//! thread's last time). Cut ends are marked `{"cut": reason}` and counted in `otherData`.
//!
//! **Order of slices.** The trace-event format requires a thread's `B`/`E` events in increasing
//! timestamp order, and an ATF trace does not promise it: a thread's events that went through
//! the controller's shared fallback ring (written before it registered, or spilled when its
//! ring pool was exhausted) can be in `events.bin` before older events of its own rings. The
//! export therefore scans the stream once first; a thread whose index-lane calls and returns
//! go back in time there has them put in time order in a bounded window of
//! [`REORDER_WINDOW`] (64 Ki) calls, returns and losses per thread (equal times keep the
//! stream's order). One that comes more than the window out of order is written as a loss
//! (what is open is cut; `lateEvents` counts them). Every other event, and every event of a
//! thread in order, is written as it is read.
//!
//! **Selection** ([`ChromeOptions::selection`], `ada export --from --to --threads`): events of
//! other threads and instants outside the time range are left out; slices crossing the range's
//! edges are cut there (`"cut": "selection start"` on the `B`, `"selection end"` on the `E`).
//!
//! **Bounded memory.** The export streams: `events.bin` is read a chunk at a time
//! ([`super::stream`]), and each event is decoded, written and dropped before the next. What
//! it keeps: per thread, its open calls and (threads out of order) at most [`REORDER_WINDOW`]
//! held items; per function, its name; per thread and module, names. Before writing, `ada
//! export` warns when the output will be larger than browser viewers load
//! ([`estimate_chrome`], [`CHROME_VIEWER_LIMIT`]). All strings
//! are encoded by `serde_json`, so quotes, control characters and non-ASCII text come out as
//! valid JSON. A torn tail or a corrupt record ends the export early but still closes the JSON
//! document, and [`ChromeStats`] says so.
//!
//! # Damaged and incomplete traces
//!
//! The export never presents a damaged or incomplete trace as whole. Every [`Damage`] found
//! (no `trace.json`, `complete: false`, an `events.bin` shorter than `trace.json` says, a torn
//! tail, a corrupt record, zero bytes in the stream, missing events: see [`crate::damage`]) is
//! listed in [`ChromeStats::damage`] and in `otherData`:
//!
//! ```text
//! "otherData":{..., "complete":"false", "dataLost":"true",
//!              "warnings":"events.bin has 40 bytes but trace.json says 96 were written: ...; ...",
//!              "stream":"torn tail: 7 bytes at offset 33"}
//! ```
//!
//! `complete` is `"true"` only for a trace whose `trace.json` says complete and in which nothing
//! was found damaged (then `dataLost` is `"false"` and there is no `warnings`).
//!
//! A trace that recorded its processes' modules (`loadedModules`) says how its addresses were
//! named: `"loadedModules"` (how many mappings) and `"addressNames"` (`"2 with a function name,
//! 1 without one (no symbol in the module: stripped?), shown as module+offset"`, see
//! [`crate::symbolize::Namer::summary`]).
//!
//! What the controller recorded about its own input is carried over too: `corruption` (the
//! manifest's counts, `"badChunks 2, ringErrors 3"`), `unregisteredDrops`, `foldedThreads`,
//! `unverifiableThreads`, the loss by cause summed over every thread and lane (`lostOverwritten`,
//! `lostRefused`, `lostTooLarge`, `lostNoSlot`, from the manifest) and the drop policies in
//! force (`dropPolicies`), and `captureWarnings` (one sentence each, as `ada export` prints them
//! on stderr: see [`crate::damage::capture_warnings`]). They describe the capture, not damage to
//! the trace files, and leave `complete` and `dataLost` as they are.
//!
//! What the export did about losses: `lossMarkers` and `eventsLostInStream` (the stream's
//! `EventsLost` events and the events they announce), `orphanEnds` (returns dropped),
//! `cutSlices` (`"unwound 0, loss 3, trace end 2, selection 0"`, also as `cutUnwound`,
//! `cutLoss`, `cutTraceEnd`, `cutSelection`), `lateEvents` and `reorderWindow`; and
//! `allEventsKept`: `"true"` only for a complete trace with no loss (no `EventsLost`, no loss
//! in the manifest's counts) and nothing repaired. A selection adds `selected` (what it kept)
//! and `unselectedEvents`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ada_atf::locate::pid_from_dir;
use ada_atf::schema::event::Payload;
use ada_atf::{Event, Lane, Manifest, ReadError, StreamNames, TornTail};

use super::ExportError;
use super::progress::Progress;
use super::select::{Selection, Window};
use super::size::SizeEstimate;
use super::stream::StreamedTrace;
use crate::damage::{CheckedEvents, Damage, capture_warnings};
use crate::inspect::lane_name;
use crate::symbolize::Namer;

mod slices;

pub use slices::REORDER_WINDOW;
use slices::{CUT_NAMES, Item, Kind, Slices};

/// About how many bytes of JSON the export writes per event (a `B` or `E` with its name,
/// times, ids and args), for [`estimate_chrome`].
pub const CHROME_BYTES_PER_EVENT: u64 = 140;

/// The largest Chrome JSON export [`estimate_chrome`] does not warn about: 500 MB. The
/// Perfetto UI's JSON importer and `chrome://tracing` read the whole document into one
/// browser string and parse it in memory; beyond a few hundred MB they fail or stall (a V8
/// string holds at most about 512 MiB), so bigger traces belong in Perfetto's own format
/// (`ada export --perfetto`) or a selection (`--from`, `--to`, `--threads`).
pub const CHROME_VIEWER_LIMIT: u64 = 500_000_000;

/// How [`export_chrome_with`] exports.
#[derive(Debug, Clone, Default)]
pub struct ChromeOptions {
    /// The part of the trace to write ([`Selection::default`]: all of it).
    pub selection: Selection,
    /// Show progress on stderr when it is a terminal ([`Progress`]).
    pub progress: bool,
}

/// How large the Chrome export of `selection` of the trace in `trace_dir` will be, about
/// (from the manifest's counts, else `events.bin`'s size; reads no events). Warn with
/// [`SizeEstimate::warning`] against [`CHROME_VIEWER_LIMIT`].
pub fn estimate_chrome(
    trace_dir: &Path,
    selection: &Selection,
) -> Result<SizeEstimate, ExportError> {
    let trace = StreamedTrace::open(trace_dir)?;
    Ok(SizeEstimate::of_trace(
        trace.manifest(),
        trace.events_len(),
        selection,
        CHROME_BYTES_PER_EVENT,
    ))
}

/// Bytes of a non-UTF-8 custom payload shown as hex.
const HEX_SHOWN: usize = 64;

/// What [`export_chrome`] wrote and how the event stream ended.
#[derive(Debug, Default)]
pub struct ChromeStats {
    /// Whole events decoded from `events.bin`.
    pub events_read: u64,
    /// Events that became at least one trace event (`events_read - skipped - definitions`).
    pub events_exported: u64,
    /// Trace-event objects written, metadata included.
    pub trace_events: u64,
    /// `"ph":"B"` events (function calls).
    pub begins: u64,
    /// `"ph":"E"` events (function returns).
    pub ends: u64,
    /// `"ph":"i"` instant events.
    pub instants: u64,
    /// `"ph":"M"` metadata events.
    pub metadata: u64,
    /// `"ph":"X"` complete events (persistence windows).
    pub slices: u64,
    /// Events without a payload this exporter knows, not exported.
    pub skipped: u64,
    /// Symbol and thread definitions read from the stream (they name other events: a thread's
    /// definition becomes its `thread_name` when trace.json did not name it).
    pub definitions: u64,
    /// Events whose timestamp was missing or invalid.
    pub bad_timestamps: u64,
    /// `EventsLost` events exported (one instant each).
    pub loss_markers: u64,
    /// The events they announce, summed (saturating). Also written to `otherData`
    /// (`lossMarkers`, `eventsLostInStream`).
    pub events_lost: u64,
    /// Slices closed by the export rather than by their return, by reason: `[unwound, loss,
    /// trace end, selection]` (see [`nesting`](super::nesting)); each is an `E` with
    /// `args: {"cut": reason}` (a `B` for slices open at `--from`). Also in `otherData`.
    pub cut_slices: [u64; 4],
    /// Returns whose call was not open (lost): not written as `E`, marked by an
    /// `orphan return` instant. Also in `otherData` (`orphanEnds`).
    pub orphan_ends: u64,
    /// Calls and returns that came later than the reorder window allows (written as a loss:
    /// what was open is cut). Also in `otherData` (`lateEvents`).
    pub late_events: u64,
    /// Events left out by the selection (another thread, outside the time range).
    pub unselected: u64,
    /// The `pid` used.
    pub pid: u32,
    /// `trace.json` exists.
    pub finalized: bool,
    /// `trace.json` exists and marks the trace complete, and nothing was found damaged
    /// ([`damage`](ChromeStats::damage) is empty).
    pub complete: bool,
    /// The torn tail the stream ended with, if any.
    pub torn_tail: Option<TornTail>,
    /// The corrupt record the stream stopped at, if any.
    pub stream_error: Option<ReadError>,
    /// What the trace lost or is missing ([`crate::damage`]); empty for a complete, undamaged
    /// trace. Also written to `otherData` (`dataLost`, `warnings`).
    pub damage: Vec<Damage>,
    /// What the controller recorded about its input ([`crate::damage::capture_warnings`]):
    /// corrupt segment input (refuted thread identities among it), slotless threads' drops. Also written to
    /// `otherData` (`captureWarnings`, and the counts under their manifest names).
    pub capture_warnings: Vec<String>,
}

impl ChromeStats {
    /// The stream ended with a torn tail.
    pub fn is_torn(&self) -> bool {
        self.torn_tail.is_some()
    }

    /// The stream ended after its last whole record: no torn tail, no corrupt record.
    pub fn ended_cleanly(&self) -> bool {
        self.torn_tail.is_none() && self.stream_error.is_none()
    }

    /// The trace is damaged or incomplete: the export holds only what was readable
    /// ([`damage`](ChromeStats::damage) lists what was lost).
    pub fn is_damaged(&self) -> bool {
        !self.damage.is_empty()
    }
}

/// Writes the trace in `trace_dir` (a trace directory, or a session directory holding exactly
/// one) to `out` as Chrome trace-event JSON (see the [module docs](self) for the mapping).
///
/// A torn, corrupt or unfinalized trace exports what is readable; [`ChromeStats::damage`] and
/// the document's `otherData` say what was lost. A path that is not a trace directory, a trace that cannot be opened, or a failing `out` is an
/// [`ExportError`]; after an output error the document written so far is incomplete.
pub fn export_chrome(trace_dir: &Path, out: &mut dyn Write) -> Result<ChromeStats, ExportError> {
    export_chrome_with(trace_dir, out, &ChromeOptions::default())
}

/// [`export_chrome`] with [`ChromeOptions`]: a selection, progress on the terminal.
pub fn export_chrome_with(
    trace_dir: &Path,
    out: &mut dyn Write,
    options: &ChromeOptions,
) -> Result<ChromeStats, ExportError> {
    let trace = StreamedTrace::open(trace_dir)?;
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let stats = write_trace(&trace, &mut w, options).map_err(ExportError::Output)?;
    w.flush().map_err(ExportError::Output)?;
    Ok(stats)
}

/// Writes `s` as a JSON string.
fn json_str<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *w, s).map_err(io::Error::from)
}

/// A JSON object being written.
struct Obj<'a, W: Write> {
    w: &'a mut W,
    empty: bool,
}

impl<'a, W: Write> Obj<'a, W> {
    fn open(w: &'a mut W) -> io::Result<Self> {
        w.write_all(b"{")?;
        Ok(Obj { w, empty: true })
    }

    /// Writes the separator and `"key":`, and returns the writer for the value.
    fn key(&mut self, key: &str) -> io::Result<&mut W> {
        if !self.empty {
            self.w.write_all(b",")?;
        }
        self.empty = false;
        json_str(self.w, key)?;
        self.w.write_all(b":")?;
        Ok(&mut *self.w)
    }

    fn str(&mut self, key: &str, value: &str) -> io::Result<()> {
        let w = self.key(key)?;
        json_str(w, value)
    }

    /// An integer value.
    fn int(&mut self, key: &str, value: impl Into<i128>) -> io::Result<()> {
        let v: i128 = value.into();
        write!(self.key(key)?, "{v}")
    }

    fn bool(&mut self, key: &str, value: bool) -> io::Result<()> {
        write!(self.key(key)?, "{value}")
    }

    /// A `"0x…"` string.
    fn hex(&mut self, key: &str, value: u64) -> io::Result<()> {
        write!(self.key(key)?, "\"0x{value:x}\"")
    }

    /// Microseconds with nanosecond precision.
    fn micros(&mut self, key: &str, ns: u64) -> io::Result<()> {
        write!(self.key(key)?, "{}.{:03}", ns / 1000, ns % 1000)
    }

    fn str_array(&mut self, key: &str, items: &[String]) -> io::Result<()> {
        let w = self.key(key)?;
        w.write_all(b"[")?;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            json_str(w, item)?;
        }
        w.write_all(b"]")
    }

    fn registers(&mut self, regs: &BTreeMap<String, u64>) -> io::Result<()> {
        if regs.is_empty() {
            return Ok(());
        }
        let mut r = self.obj("registers")?;
        for (name, value) in regs {
            r.hex(name, *value)?;
        }
        r.close()
    }

    fn obj(&mut self, key: &str) -> io::Result<Obj<'_, W>> {
        let w = self.key(key)?;
        Obj::open(w)
    }

    fn close(self) -> io::Result<()> {
        self.w.write_all(b"}")
    }
}

/// The `traceEvents` array being written.
struct Events<'w, W: Write> {
    w: &'w mut W,
    pid: u32,
    stats: ChromeStats,
}

impl<W: Write> Events<'_, W> {
    /// Starts a trace event: `{"name":…,"cat":…,"ph":…,["s":"t",]["ts":…,]"pid":…,"tid":…`.
    /// The caller adds fields (usually `args`) and closes it.
    fn event(
        &mut self,
        ph: &'static str,
        name: &str,
        cat: &str,
        ts_ns: Option<u64>,
        tid: i32,
    ) -> io::Result<Obj<'_, W>> {
        if self.stats.trace_events > 0 {
            self.w.write_all(b",\n")?;
        }
        self.stats.trace_events += 1;
        match ph {
            "B" => self.stats.begins += 1,
            "E" => self.stats.ends += 1,
            "i" => self.stats.instants += 1,
            "M" => self.stats.metadata += 1,
            "X" => self.stats.slices += 1,
            _ => {}
        }
        let mut o = Obj::open(&mut *self.w)?;
        o.str("name", name)?;
        if !cat.is_empty() {
            o.str("cat", cat)?;
        }
        o.str("ph", ph)?;
        if ph == "i" {
            o.str("s", "t")?;
        }
        if let Some(ns) = ts_ns {
            o.micros("ts", ns)?;
        }
        o.int("pid", self.pid)?;
        o.int("tid", tid)?;
        Ok(o)
    }

    /// A metadata event `{"name":kind,"ph":"M",…,"args":{key:value}}`.
    fn metadata(&mut self, kind: &str, tid: i32, key: &str, value: &str) -> io::Result<()> {
        let mut ev = self.event("M", kind, "", None, tid)?;
        let mut args = ev.obj("args")?;
        args.str(key, value)?;
        args.close()?;
        ev.close()
    }
}

/// The file name of an executable path, for `process_name`.
fn process_name(exe: &str) -> &str {
    Path::new(exe)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(exe)
}

fn write_trace<W: Write>(
    trace: &StreamedTrace,
    w: &mut W,
    options: &ChromeOptions,
) -> io::Result<ChromeStats> {
    let selection = &options.selection;
    let manifest = trace.manifest();
    let pid = manifest
        .map(|m| m.pid)
        .or_else(|| pid_from_dir(trace.dir()))
        .unwrap_or(0);
    // Names from the manifest, completed by the stream's definitions as they come (a trace
    // cut short by a controller crash has only those).
    let mut names = StreamNames::new(manifest);
    // Names for addresses in the modules the trace recorded.
    let mut namer = Namer::new(manifest);

    // Threads whose slices are out of timestamp order in the stream (see the module docs),
    // and where the trace starts.
    let scan = scan_stream(trace);
    let window = match manifest
        .and_then(|m| m.min_event_timestamp_ns)
        .or(scan.first_ns)
    {
        Some(origin) if selection.has_range() => selection.window(origin),
        _ => Window {
            from_ns: 0,
            to_ns: u64::MAX,
        },
    };

    w.write_all(b"{\"traceEvents\":[\n")?;
    let mut out = Events {
        w,
        pid,
        stats: ChromeStats {
            pid,
            finalized: manifest.is_some(),
            ..ChromeStats::default()
        },
    };

    let mut named_process: Option<String> = None;
    let mut named_threads = HashSet::new();
    if let Some(m) = manifest {
        if let Some(exe) = m.executable.as_deref().filter(|e| !e.is_empty()) {
            out.metadata("process_name", 0, "name", process_name(exe))?;
            named_process = Some(exe.to_owned());
        }
        for t in &m.threads {
            if let Some(name) = &t.name
                && selection.selects_thread(t.thread_id, Some(name))
            {
                out.metadata("thread_name", t.thread_id, "name", name)?;
                named_threads.insert(t.thread_id);
            }
        }
    }

    let mut slices = Slices::new(window);
    for &tid in &scan.unordered {
        slices.reorder(tid);
    }
    let mut progress = if options.progress {
        Progress::on_terminal("exporting", trace.events_len())
    } else {
        Progress::hidden()
    };
    // Threads with events written, to name those that have no name.
    let mut threads_seen = BTreeSet::new();
    let mut trace_end: Option<u64> = None;
    let mut events = CheckedEvents::from_source(trace.events(), trace.events_len());
    let mut last_ts = 0u64;
    let mut max_ts = 0u64;
    while let Some(ev) = events.next() {
        progress.update(events.position());
        out.stats.events_read += 1;
        if names.observe(&ev) {
            // A definition names later events; it is not itself an event of the program.
            out.stats.definitions += 1;
            if let Some(Payload::ThreadDef(d)) = &ev.payload {
                let name = names.thread(d.thread_id).and_then(|t| t.name.as_deref());
                if let Some(name) = name.filter(|n| {
                    selection.selects_thread(d.thread_id, Some(n))
                        && named_threads.insert(d.thread_id)
                }) {
                    out.metadata("thread_name", d.thread_id, "name", name)?;
                }
            }
            continue;
        }
        let ts = match ev.timestamp.and_then(|t| t.to_nanos()) {
            Some(ns) => {
                last_ts = ns;
                max_ts = max_ts.max(ns);
                ns
            }
            None => {
                out.stats.bad_timestamps += 1;
                last_ts
            }
        };
        let tid = ev.thread_id;
        let thread_name = names.thread(tid).and_then(|t| t.name.as_deref());
        if !selection.selects_thread(tid, thread_name) {
            out.stats.unselected += 1;
            continue;
        }
        if let Some(item) = slice_item(&ev, ts, &slices, &mut namer, &names) {
            if window.contains(ts) {
                out.stats.events_exported += 1;
                threads_seen.insert(tid);
            } else {
                out.stats.unselected += 1;
            }
            slices.push(&mut out, tid, item)?;
            continue;
        }
        if let Some(Payload::EventsLost(l)) = &ev.payload
            && l.lane == Lane::Index as u32
        {
            // The thread's calls and returns in the gap are unknown: what is open is cut.
            let at = if l.first_lost_ns != 0 {
                l.first_lost_ns
            } else {
                ts
            };
            slices.push(&mut out, tid, Item::gap(at))?;
        }
        if let Some(Payload::TraceEnd(_)) = &ev.payload {
            trace_end = Some(trace_end.map_or(ts, |e| e.max(ts)));
        }
        if !window.contains(ts) {
            out.stats.unselected += 1;
            continue;
        }
        if write_event(&mut out, &ev, ts, &names, &mut namer, &mut named_process)? {
            out.stats.events_exported += 1;
            threads_seen.insert(tid);
        } else {
            out.stats.skipped += 1;
        }
    }
    progress.finish();
    let outcome = events.finish_with(manifest);
    // A trace that goes on past the selection's end has what is open then cut there.
    slices.finish(&mut out, trace_end, max_ts > window.to_ns)?;
    out.stats.cut_slices = slices.cut_counts;
    out.stats.orphan_ends = slices.orphans;
    out.stats.late_events = slices.late;
    // Every thread with events gets a name: the trace's own events (start, end: thread 0)
    // are on the `trace` track; a thread nobody named is `thread N`.
    for tid in threads_seen {
        if named_threads.contains(&tid) {
            continue;
        }
        let name = match names.thread(tid).and_then(|t| t.name.as_deref()) {
            Some(name) => name.to_owned(),
            None if tid == 0 => "trace".to_owned(),
            None => format!("thread {tid}"),
        };
        out.metadata("thread_name", tid, "name", &name)?;
    }

    let Events { w, mut stats, .. } = out;
    stats.complete = trace.is_complete() && outcome.damage.is_empty();
    stats.torn_tail = outcome.torn_tail;
    stats.stream_error = outcome.stream_error;
    stats.damage = outcome.damage;
    stats.capture_warnings = manifest.map(capture_warnings).unwrap_or_default();
    w.write_all(b"\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":")?;
    write_other_data(w, trace, manifest, &stats, &namer, selection)?;
    w.write_all(b"}\n")?;
    Ok(stats)
}

/// The slice item `ev` is (an index-lane call or return), if it is one.
fn slice_item(
    ev: &Event,
    ts: u64,
    slices: &Slices,
    namer: &mut Namer,
    names: &StreamNames,
) -> Option<Item> {
    if ev.lane == Lane::Detail as u32 {
        return None;
    }
    let (symbol, address, kind) = match ev.payload.as_ref()? {
        Payload::FunctionCall(c) => (&c.symbol, c.address, Kind::Call),
        Payload::FunctionReturn(r) => (&r.symbol, r.address, Kind::Return),
        _ => return None,
    };
    let key = slices::key(ev.function_id, address);
    // A function's name is worked out once, at its first call (a return takes its call's).
    let (name, source) = if slices.knows(key) {
        (String::new(), None)
    } else {
        let name = namer
            .name(symbol, ev.function_id, address, ev.thread_id, names)
            .into_owned();
        let source = names.symbol(ev.function_id).and_then(|s| s.source.clone());
        (name, source)
    };
    Some(Item {
        ts,
        seq: 0,
        kind,
        key,
        name,
        address,
        function_id: ev.function_id,
        source,
    })
}

/// What [`scan_stream`] found.
struct Scan {
    /// Threads whose calls and returns go back in time in the stream.
    unordered: HashSet<i32>,
    /// The first valid timestamp.
    first_ns: Option<u64>,
}

/// One read of the stream before the export's own (events with no valid time are left out, as
/// the export stamps them with the time before them): the threads whose slices are not in
/// timestamp order, and where the trace starts.
fn scan_stream(trace: &StreamedTrace) -> Scan {
    let mut last = HashMap::<i32, u64>::new();
    let mut scan = Scan {
        unordered: HashSet::new(),
        first_ns: None,
    };
    for ev in CheckedEvents::from_source(trace.events(), trace.events_len()) {
        let Some(ns) = ev.timestamp.and_then(|t| t.to_nanos()) else {
            continue;
        };
        scan.first_ns.get_or_insert(ns);
        let is_slice = ev.lane != Lane::Detail as u32
            && matches!(
                ev.payload,
                Some(Payload::FunctionCall(_) | Payload::FunctionReturn(_))
            );
        if !is_slice {
            continue;
        }
        let prev = last.entry(ev.thread_id).or_insert(ns);
        if ns < *prev {
            scan.unordered.insert(ev.thread_id);
        }
        *prev = (*prev).max(ns);
    }
    scan
}

/// Writes the trace events for `ev`; `false` when it has no payload this exporter knows.
fn write_event<W: Write>(
    out: &mut Events<'_, W>,
    ev: &Event,
    ts: u64,
    table: &StreamNames,
    namer: &mut Namer,
    named_process: &mut Option<String>,
) -> io::Result<bool> {
    let tid = ev.thread_id;
    let lane = lane_name(ev.lane);
    let Some(payload) = &ev.payload else {
        return Ok(false);
    };
    match payload {
        // Taken in by the caller's `StreamNames` before this is called.
        Payload::SymbolDef(_) | Payload::ThreadDef(_) => return Ok(false),
        Payload::FunctionCall(c) => {
            let name = namer.name(&c.symbol, ev.function_id, c.address, tid, table);
            // Index-lane calls are slices (`slices`); a detail-lane call (registers, stack) is
            // shown as an instant on top of that slice, with the per-call detail.
            let mut o = out.event("i", &name, "function", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.hex("address", c.address)?;
            if ev.function_id != 0 {
                args.int("function_id", ev.function_id)?;
            }
            args.int("depth", ev.call_depth)?;
            args.str("lane", &lane)?;
            args.registers(&c.argument_registers)?;
            if !c.stack_shallow_copy.is_empty() {
                args.int("stack_bytes", c.stack_shallow_copy.len() as u64)?;
            }
            args.close()?;
            o.close()?;
        }
        Payload::FunctionReturn(r) => {
            let name = namer.name(&r.symbol, ev.function_id, r.address, tid, table);
            let mut o = out.event("i", &name, "function", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.hex("address", r.address)?;
            if ev.function_id != 0 {
                args.int("function_id", ev.function_id)?;
            }
            args.int("depth", ev.call_depth)?;
            args.str("lane", &lane)?;
            args.registers(&r.return_registers)?;
            args.close()?;
            o.close()?;
        }
        Payload::Custom(c) => {
            let (name, cat) = match c.name.as_str() {
                "" => ("custom", "custom"),
                n @ ("mark" | "message" | "exception") => (n, n),
                n => (n, "custom"),
            };
            let mut o = out.event("i", name, cat, Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            match std::str::from_utf8(&c.data) {
                Ok(text) => args.str("text", text)?,
                Err(_) => {
                    args.int("bytes", c.data.len() as u64)?;
                    let shown = &c.data[..c.data.len().min(HEX_SHOWN)];
                    let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
                    args.str("hex", &hex)?;
                }
            }
            args.str("lane", &lane)?;
            args.close()?;
            o.close()?;
        }
        Payload::EventsLost(l) => {
            out.stats.loss_markers += 1;
            out.stats.events_lost = out.stats.events_lost.saturating_add(l.count);
            let name = format!("events lost ({})", l.cause);
            let mut o = out.event("i", &name, "ada", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.int("count", l.count)?;
            args.str("cause", &l.cause)?;
            args.str("lane", &lane_name(l.lane))?;
            args.int("first_lost_ns", l.first_lost_ns)?;
            args.int("last_lost_ns", l.last_lost_ns)?;
            args.close()?;
            o.close()?;
        }
        Payload::WindowMark(m) => {
            let mut o = out.event("i", "persistence window", "ada", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.int("window_id", m.window_id)?;
            args.int("start_ns", m.start_ns)?;
            args.int("end_ns", m.end_ns)?;
            args.int("first_mark_ns", m.first_mark_ns)?;
            args.int("last_event_ns", m.last_event_ns)?;
            args.int("total_events", m.total_events)?;
            args.int("marked_events", m.marked_events)?;
            args.bool("mark_seen", m.mark_seen)?;
            args.close()?;
            o.close()?;
            // The window itself, as a slice on its thread's track.
            let name = format!("window #{}", m.window_id);
            let mut o = out.event("X", &name, "window", Some(m.start_ns), tid)?;
            o.micros("dur", m.end_ns.saturating_sub(m.start_ns))?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.int("window_id", m.window_id)?;
            args.int("events", m.total_events)?;
            args.int("marks", m.marked_events)?;
            args.int("pre_roll", m.pre_roll_events)?;
            args.int("discarded_before", m.discarded_events)?;
            if let Some(t) = m.trigger {
                args.int("trigger", t)?;
            }
            args.close()?;
            o.close()?;
        }
        Payload::SignalDelivery(s) => {
            let name = if s.name.is_empty() {
                format!("signal {}", s.number)
            } else {
                format!("signal {}", s.name)
            };
            let mut o = out.event("i", &name, "signal", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.int("number", s.number)?;
            args.str("name", &s.name)?;
            args.registers(&s.registers)?;
            args.close()?;
            o.close()?;
        }
        Payload::TraceStart(s) => {
            let exe = s.executable_path.as_str();
            if !exe.is_empty() && named_process.as_deref() != Some(exe) {
                out.metadata("process_name", tid, "name", process_name(exe))?;
                *named_process = Some(exe.to_owned());
            }
            let mut o = out.event("i", "trace start", "ada", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.str("executable", exe)?;
            args.str_array("args", &s.args)?;
            args.str("os", &s.operating_system)?;
            args.str("arch", &s.cpu_architecture)?;
            args.close()?;
            o.close()?;
        }
        Payload::TraceEnd(e) => {
            let label = format!("exit={}", e.exit_code);
            out.metadata("process_labels", tid, "labels", &label)?;
            let mut o = out.event("i", "trace end", "ada", Some(ts), tid)?;
            let mut args = o.obj("args")?;
            args.int("id", ev.event_id)?;
            args.int("exit_code", e.exit_code)?;
            args.close()?;
            o.close()?;
        }
    }
    Ok(true)
}

/// The manifest's loss by cause summed over every listed and folded thread's lanes
/// (`lostOverwritten`, `lostRefused`, `lostTooLarge`; `lostNoSlot` from `unregisteredByLane`,
/// else `unregisteredDrops`), and `dropPolicies`; nothing for a manifest without causes.
fn loss_totals<W: Write>(o: &mut Obj<'_, W>, m: &Manifest) -> io::Result<()> {
    let lanes = m
        .threads
        .iter()
        .flat_map(|t| &t.lanes)
        .chain(m.folded_threads.iter().flat_map(|f| &f.lanes));
    let mut any = false;
    let mut sum = ada_atf::LostByCause::default();
    for lost in lanes.filter_map(|l| l.lost.as_ref()) {
        any = true;
        sum.overwritten = sum.overwritten.saturating_add(lost.overwritten);
        sum.refused = sum.refused.saturating_add(lost.refused);
        sum.too_large = sum.too_large.saturating_add(lost.too_large);
    }
    if any {
        o.str("lostOverwritten", &sum.overwritten.to_string())?;
        o.str("lostRefused", &sum.refused.to_string())?;
        o.str("lostTooLarge", &sum.too_large.to_string())?;
        let no_slot = m
            .unregistered_by_lane
            .as_ref()
            .map_or(m.unregistered_drops, |b| b.index.saturating_add(b.detail));
        o.str("lostNoSlot", &no_slot.to_string())?;
    }
    if let Some(p) = &m.drop_policies {
        o.str(
            "dropPolicies",
            &format!("index={},detail={}", p.index, p.detail),
        )?;
    }
    Ok(())
}

/// `otherData`: where the trace came from and how the export went (all values strings).
fn write_other_data<W: Write>(
    w: &mut W,
    trace: &StreamedTrace,
    manifest: Option<&Manifest>,
    stats: &ChromeStats,
    namer: &Namer,
    selection: &Selection,
) -> io::Result<()> {
    let mut o = Obj::open(w)?;
    o.str("source", "ada")?;
    o.str("traceDir", &trace.dir().display().to_string())?;
    o.str("pid", &stats.pid.to_string())?;
    if let Some(m) = manifest {
        o.str("sessionId", &m.session_id.to_string())?;
        if let Some(name) = &m.session_name {
            o.str("sessionName", name)?;
        }
        o.str("os", &m.os)?;
        o.str("arch", &m.arch)?;
        if let Some(v) = m.format_version {
            o.str("formatVersion", &v.to_string())?;
        }
        if let Some(c) = &m.clock {
            o.str("clock", &c.name)?;
        }
    }
    o.str("finalized", if stats.finalized { "true" } else { "false" })?;
    o.str("complete", if stats.complete { "true" } else { "false" })?;
    o.str(
        "dataLost",
        if stats.is_damaged() { "true" } else { "false" },
    )?;
    if stats.is_damaged() {
        let warnings: Vec<String> = stats.damage.iter().map(ToString::to_string).collect();
        o.str("warnings", &warnings.join("; "))?;
    }
    if let Some(summary) = namer.summary() {
        o.str("loadedModules", &namer.module_counts().0.to_string())?;
        o.str("addressNames", &summary)?;
    }
    if let Some(m) = manifest {
        if !m.corruption.is_empty() {
            let counts: Vec<String> = m
                .corruption
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            o.str("corruption", &counts.join(", "))?;
        }
        if m.unregistered_drops > 0 {
            o.str("unregisteredDrops", &m.unregistered_drops.to_string())?;
        }
        if let Some(f) = &m.folded_threads {
            o.str("foldedThreads", &f.threads.to_string())?;
        }
        if m.unverifiable_threads > 0 {
            o.str("unverifiableThreads", &m.unverifiable_threads.to_string())?;
        }
        loss_totals(&mut o, m)?;
    }
    o.str("lossMarkers", &stats.loss_markers.to_string())?;
    o.str("eventsLostInStream", &stats.events_lost.to_string())?;
    let manifest_lost = manifest.is_some_and(|m| {
        m.threads
            .iter()
            .flat_map(|t| &t.lanes)
            .filter_map(|l| l.lost.as_ref())
            .any(|l| l.total() > 0)
            || m.unregistered_drops > 0
    });
    let repaired = stats.orphan_ends > 0
        || stats.late_events > 0
        || stats.cut_slices[..3].iter().any(|n| *n > 0);
    let all_kept = stats.complete && stats.loss_markers == 0 && !manifest_lost && !repaired;
    o.str("allEventsKept", if all_kept { "true" } else { "false" })?;
    o.str("orphanEnds", &stats.orphan_ends.to_string())?;
    let cuts: Vec<String> = CUT_NAMES
        .iter()
        .zip(stats.cut_slices)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    o.str("cutSlices", &cuts.join(", "))?;
    for (key, n) in ["cutUnwound", "cutLoss", "cutTraceEnd", "cutSelection"]
        .iter()
        .zip(stats.cut_slices)
    {
        o.str(key, &n.to_string())?;
    }
    o.str("lateEvents", &stats.late_events.to_string())?;
    o.str("reorderWindow", &REORDER_WINDOW.to_string())?;
    if !selection.is_all() {
        o.str("selected", &selection.to_string())?;
        o.str("unselectedEvents", &stats.unselected.to_string())?;
    }
    if !stats.capture_warnings.is_empty() {
        o.str("captureWarnings", &stats.capture_warnings.join("; "))?;
    }
    o.str("eventsRead", &stats.events_read.to_string())?;
    o.str("eventsExported", &stats.events_exported.to_string())?;
    let stream = match (&stats.stream_error, stats.torn_tail) {
        (Some(e), _) => format!("corrupt: {e}"),
        (None, Some(t)) => format!("torn tail: {} bytes at offset {}", t.bytes, t.offset),
        (None, None) => "ended cleanly".to_owned(),
    };
    o.str("stream", &stream)?;
    o.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_names_and_pids() {
        assert_eq!(process_name("/usr/bin/prog"), "prog");
        assert_eq!(process_name("prog"), "prog");
        assert_eq!(process_name("/"), "/");
        assert_eq!(pid_from_dir(Path::new("/x/pid_42")), Some(42));
        assert_eq!(pid_from_dir(Path::new("/x/pid_")), None);
        assert_eq!(pid_from_dir(Path::new("/x/other")), None);
    }

    #[test]
    fn micros_have_nanosecond_precision() {
        let mut buf = Vec::new();
        let mut o = Obj::open(&mut buf).unwrap();
        o.micros("ts", 1_234_567).unwrap();
        o.micros("z", 5).unwrap();
        o.close().unwrap();
        assert_eq!(buf, b"{\"ts\":1234.567,\"z\":0.005}");
    }
}
