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
//! | `FunctionCall` | `"ph":"B"`, name = symbol (else the trace's name for `function_id`, from trace.json or a `SymbolDef` before it, else — an address in a module the trace recorded for the thread's process (`loadedModules`) — the function's name from the module's file, else `module+0x<offset>`, else, in a process with recorded modules, the hex address, else `fn#<id>`: see [`crate::symbolize`]), args: `address` (hex), `function_id`, `depth`, `lane`, `registers` (hex), `stack_bytes` |
//! | `FunctionReturn` | `"ph":"E"`, same name and args (`registers` are the return registers) |
//! | either, from the detail lane (`lane` 1) | an instant (`"ph":"i"`) with the same name and args: the index lane holds the slice itself |
//! | `Custom` (`mark`, `message`, `exception`, ...) | instant `"ph":"i","s":"t"` named after the kind, args: `text` (or `bytes` and `hex` when not UTF-8) |
//! | `EventsLost` | instant `"ph":"i","s":"t"` on the thread's track named `events lost (<cause>)`, at the first lost event's time, args: `count`, `cause` (`overwritten`, `refused`, `too_large`, `no_slot`), `lane`, `first_lost_ns`, `last_lost_ns` (0 = unknown) |
//! | `WindowMark` | instant `persistence window`, args: the window's fields; and a complete slice (`"ph":"X"`, `ts` = the window's start, `dur` = its length, `cat` `window`) named `window #<id>` on the thread's track, args: `id`, `window_id`, `events`, `marks`, `pre_roll`, `discarded_before`, and `trigger` (the index of the trigger that opened it; absent for an explicit mark) |
//! | `SignalDelivery` | instant `signal <name>`, args: `number`, `name`, `registers` |
//! | `TraceStart` | `"ph":"M"` `process_name` (the executable's file name) and instant `trace start` (args: `executable`, `args`, `os`, `arch`) |
//! | `TraceEnd` | `"ph":"M"` `process_labels` (`exit=<code>`) and instant `trace end` (args: `exit_code`) |
//! | manifest `threads[].name` | `"ph":"M"` `thread_name` |
//! | `SymbolDef`, `ThreadDef` (definitions) | nothing of their own: they name the events after them (a `ThreadDef` name the manifest lacks becomes a `thread_name`); counted in [`ChromeStats::definitions`] |
//!
//! Every event's args also carry its ATF `id`. `ts` is in microseconds, written as a decimal
//! with nanosecond precision (`1234.567`); `pid` is the manifest's (else the `N` of a `pid_N`
//! directory name, else 0); `tid` is the event's `thread_id`. An event whose timestamp is
//! missing or invalid gets the last valid timestamp before it (counted in
//! [`ChromeStats::bad_timestamps`]); an event without a payload this version knows is skipped
//! ([`ChromeStats::skipped`]). Unbalanced `B`/`E` pairs are left as they are (Perfetto copes).
//!
//! **Order of slices.** The trace-event format requires a thread's `B`/`E` events in increasing
//! timestamp order, and an ATF trace does not promise it: a thread's events that went through
//! the controller's shared fallback ring (written before it registered, or spilled when its
//! ring pool was exhausted) can be in `events.bin` before older events of its own rings. The
//! export therefore scans the stream once first; a thread whose index-lane calls and returns
//! go back in time there has those `B`/`E` events held and written after the stream, sorted by
//! timestamp (stable: equal times keep the stream's order), so its slices nest as recorded.
//! Every other event, and every event of a thread in order, is written as it is read.
//!
//! The export streams: one event is decoded, written and dropped before the next (except the
//! held slices above: memory in proportion to those threads' calls and returns). All strings
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

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ada_atf::locate::pid_from_dir;
use ada_atf::schema::event::Payload;
use ada_atf::{Event, Manifest, ReadError, StreamNames, TornTail, TraceReader};

use super::ExportError;
use crate::damage::{CheckedEvents, Damage, capture_warnings};
use crate::inspect::{lane_name, open_trace};
use crate::symbolize::Namer;

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
    let reader = open_trace(trace_dir).map_err(ExportError::open)?;
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let stats = write_trace(&reader, &mut w).map_err(ExportError::Output)?;
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

fn write_trace<W: Write>(reader: &TraceReader, w: &mut W) -> io::Result<ChromeStats> {
    let manifest = reader.manifest();
    let pid = manifest
        .map(|m| m.pid)
        .or_else(|| pid_from_dir(reader.dir()))
        .unwrap_or(0);
    // Names from the manifest, completed by the stream's definitions as they come (a trace
    // cut short by a controller crash has only those).
    let mut names = StreamNames::new(manifest);
    // Names for addresses in the modules the trace recorded.
    let mut namer = Namer::new(manifest);

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
    let mut named_threads = std::collections::HashSet::new();
    if let Some(m) = manifest {
        if let Some(exe) = m.executable.as_deref().filter(|e| !e.is_empty()) {
            out.metadata("process_name", 0, "name", process_name(exe))?;
            named_process = Some(exe.to_owned());
        }
        for t in &m.threads {
            if let Some(name) = &t.name {
                out.metadata("thread_name", t.thread_id, "name", name)?;
                named_threads.insert(t.thread_id);
            }
        }
    }

    // Threads whose slices are out of timestamp order in the stream (see the module docs):
    // their begins and ends are held, then written sorted.
    let unordered = unordered_slice_threads(reader);
    let mut held: Vec<(u64, Event)> = Vec::new();
    let mut events = CheckedEvents::new(reader);
    let mut last_ts = 0u64;
    for ev in events.by_ref() {
        out.stats.events_read += 1;
        if names.observe(&ev) {
            // A definition names later events; it is not itself an event of the program.
            out.stats.definitions += 1;
            if let Some(Payload::ThreadDef(d)) = &ev.payload {
                let name = names.thread(d.thread_id).and_then(|t| t.name.as_deref());
                if let Some(name) = name.filter(|_| named_threads.insert(d.thread_id)) {
                    out.metadata("thread_name", d.thread_id, "name", name)?;
                }
            }
            continue;
        }
        let ts = match ev.timestamp.and_then(|t| t.to_nanos()) {
            Some(ns) => {
                last_ts = ns;
                ns
            }
            None => {
                out.stats.bad_timestamps += 1;
                last_ts
            }
        };
        if is_slice(&ev) && unordered.contains(&ev.thread_id) {
            held.push((ts, ev));
            continue;
        }
        if write_event(&mut out, &ev, ts, &names, &mut namer, &mut named_process)? {
            out.stats.events_exported += 1;
        } else {
            out.stats.skipped += 1;
        }
    }
    let outcome = events.finish(reader);
    // Stable: events of equal time keep the stream's order.
    held.sort_by_key(|(ts, _)| *ts);
    for (ts, ev) in &held {
        if write_event(&mut out, ev, *ts, &names, &mut namer, &mut named_process)? {
            out.stats.events_exported += 1;
        } else {
            out.stats.skipped += 1;
        }
    }

    let Events { w, mut stats, .. } = out;
    stats.complete = reader.is_complete() && outcome.damage.is_empty();
    stats.torn_tail = outcome.torn_tail;
    stats.stream_error = outcome.stream_error;
    stats.damage = outcome.damage;
    stats.capture_warnings = manifest.map(capture_warnings).unwrap_or_default();
    w.write_all(b"\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":")?;
    write_other_data(w, reader, manifest, &stats, &namer)?;
    w.write_all(b"}\n")?;
    Ok(stats)
}

/// Whether `ev` becomes a `B` or `E` event: an index-lane call or return.
fn is_slice(ev: &Event) -> bool {
    ev.lane != 1
        && matches!(
            ev.payload,
            Some(Payload::FunctionCall(_) | Payload::FunctionReturn(_))
        )
}

/// The threads whose slices (see [`is_slice`]) are not in timestamp order in the stream: one
/// read of it, before the export's own (events with no valid time are left out, as the export
/// stamps them with the time before them).
fn unordered_slice_threads(reader: &TraceReader) -> std::collections::HashSet<i32> {
    let mut last = std::collections::HashMap::<i32, u64>::new();
    let mut unordered = std::collections::HashSet::new();
    for ev in CheckedEvents::new(reader) {
        if !is_slice(&ev) {
            continue;
        }
        let Some(ns) = ev.timestamp.and_then(|t| t.to_nanos()) else {
            continue;
        };
        let prev = last.entry(ev.thread_id).or_insert(ns);
        if ns < *prev {
            unordered.insert(ev.thread_id);
        }
        *prev = (*prev).max(ns);
    }
    unordered
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
            // The index lane already holds the call; a detail-lane call (registers, stack) is
            // shown as an instant on top of that slice, not as a second begin.
            let ph = if ev.lane == 1 { "i" } else { "B" };
            let mut o = out.event(ph, &name, "function", Some(ts), tid)?;
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
            let ph = if ev.lane == 1 { "i" } else { "E" };
            let mut o = out.event(ph, &name, "function", Some(ts), tid)?;
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
    reader: &TraceReader,
    manifest: Option<&Manifest>,
    stats: &ChromeStats,
    namer: &Namer,
) -> io::Result<()> {
    let mut o = Obj::open(w)?;
    o.str("source", "ada")?;
    o.str("traceDir", &reader.dir().display().to_string())?;
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
