//! `ada inspect`: a human-readable summary of one ATF v4 trace directory.
//!
//! [`inspect`] opens a trace directory (`pid_<pid>/`, holding `events.bin` and, once the writer
//! has finalized, `trace.json`), prints what the manifest says, the per-thread and per-lane
//! counters (flagging every lane whose books do not balance; each lane's loss by cause, loss
//! markers and the backpressure states it entered; the drop policies in force), the persistence
//! windows, the symbol table size, the stream's `EventsLost` events (count, cause, first and last
//! lost time; the first [`LOSSES_SHOWN`] listed), the first `limit` events one per line, how the event stream ended:
//! cleanly, with a torn tail (a killed writer), or at a corrupt record, and every way the trace
//! is damaged or incomplete ([`Damage`]: no manifest, an `events.bin` shorter than the manifest
//! says, fewer events than it counts, ...). It returns the numbers as an [`InspectReport`].
//!
//! The path may also be a session directory holding exactly one trace directory
//! ([`TraceDir::find`] decides). A trace without `trace.json`, or whose manifest says
//! `complete: false`, is still inspected: the output says **NOT FINALIZED** and shows what is
//! readable. A trace whose manifest says complete but whose stream lost data says **DAMAGED**
//! instead of complete. Either way the output ends with a `DAMAGE` list saying what was lost
//! (also in [`InspectReport::damage`]; `ada inspect` then exits
//! [`EXIT_DAMAGED`](crate::damage::EXIT_DAMAGED)). Only a path where no trace is found
//! ([`LocateError`]), an `events.bin` or manifest that cannot be read, or a failing output
//! stream is an [`InspectError`].
//!
//! Events are listed in stream order (their ids), which within a thread is not always
//! timestamp order (events that went through the controller's fallback ring may precede older
//! ring events: see `ada_atf::TraceReader`); the timestamp span printed is the minimum and
//! maximum over the stream, whatever the order.
//!
//! The whole stream is decoded once, one event at a time (to count the events and find how it
//! ends and what it lost, which the status line at the top reports), then its first `limit`
//! events again to print them; nothing but the current event (and at most [`LOSSES_SHOWN`]
//! losses and causes) is held in memory.
//!
//! Every string read from the trace (names, the command line, messages, paths, the reader's
//! errors) is printed through [`crate::escape`]: control characters, ESC sequences and bidi
//! controls show as visible escapes, never reach the terminal raw.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::damage::{CheckedEvents, Damage};
use crate::escape::{Escaped, Quoted, escape_path, is_unsafe};
use crate::symbolize::Namer;
use crate::top::CallTable;
use ada_atf::schema::event::Payload;
use ada_atf::writer::WINDOWS_FILE;
use ada_atf::{
    Event, Lane, LaneCounters, LocateError, Manifest, PersistenceWindow, ReadError, StreamNames,
    ThreadIdentity, TornTail, TraceDir, TraceReader,
};

/// How many persistence windows [`inspect`] lists before summarizing the rest.
pub const WINDOWS_SHOWN: usize = 5;

/// How many `EventsLost` events [`inspect`] lists (all are counted).
pub const LOSSES_SHOWN: usize = 32;

/// Longest custom text (in characters) [`inspect`] shows before cutting it short.
const TEXT_SHOWN: usize = 160;

/// `ada inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The path is not a trace directory, nor a session directory holding exactly one.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// `events.bin` or `trace.json` cannot be opened or read.
    #[error("cannot read the trace at {}: {source}", .path.display())]
    Read {
        /// The trace directory.
        path: PathBuf,
        /// What the reader reported.
        #[source]
        source: ReadError,
    },
    /// Writing the summary to the output failed.
    #[error("writing the trace summary failed: {0}")]
    Output(#[source] io::Error),
}

/// What [`inspect`] found, for callers and tests.
#[derive(Debug)]
pub struct InspectReport {
    /// `trace.json` exists (the writer finalized).
    pub finalized: bool,
    /// `trace.json` exists and marks the trace complete, and nothing was found damaged
    /// ([`damage`](InspectReport::damage) is empty).
    pub complete: bool,
    /// The manifest's `eventCount`, if there is a manifest.
    pub manifest_event_count: Option<u64>,
    /// Whole events decoded from `events.bin`.
    pub events_read: u64,
    /// Events printed (at most the `limit` given).
    pub events_shown: usize,
    /// Size of `events.bin` in bytes.
    pub events_bytes: u64,
    /// The torn tail the stream ended with, if any.
    pub torn_tail: Option<TornTail>,
    /// The corrupt record the stream stopped at, if any.
    pub stream_error: Option<ReadError>,
    /// Lanes (over all threads) whose `written != persisted + spilled + dropped + discarded`.
    pub unbalanced_lanes: usize,
    /// Persistence windows (from `window_metadata.jsonl`, else the manifest).
    pub windows: usize,
    /// Entries in the manifest's symbol table.
    pub symbols: usize,
    /// What the trace lost or is missing ([`crate::damage`]); empty for a complete, undamaged
    /// trace.
    pub damage: Vec<Damage>,
    /// What the controller recorded about its input ([`crate::damage::capture_warnings`]).
    pub capture_warnings: Vec<String>,
}

impl InspectReport {
    /// The stream ended after its last whole record: no torn tail, no corrupt record.
    pub fn ended_cleanly(&self) -> bool {
        self.torn_tail.is_none() && self.stream_error.is_none()
    }

    /// The trace is damaged or incomplete ([`damage`](InspectReport::damage) says how).
    pub fn is_damaged(&self) -> bool {
        !self.damage.is_empty()
    }
}

/// Why [`open_trace`] failed; converted into each caller's error type.
pub(crate) enum OpenFailure {
    /// No trace at the path given.
    Locate(LocateError),
    /// The reader failed on the trace directory found.
    Read {
        /// The trace directory.
        path: PathBuf,
        /// What the reader reported.
        source: ReadError,
    },
}

/// Finds the trace `path` names ([`TraceDir::find`]: the trace directory itself, or a session
/// directory holding one) and opens it, with or without a manifest.
pub(crate) fn open_trace(path: &Path) -> Result<TraceReader, OpenFailure> {
    let dir = TraceDir::find(path).map_err(OpenFailure::Locate)?;
    TraceReader::open_incomplete(dir.path()).map_err(|source| OpenFailure::Read {
        path: dir.into_path(),
        source,
    })
}

/// Prints a human summary of the trace in `trace_dir` (a trace directory, or a session
/// directory holding exactly one) to `out`, listing its first `limit` events, and returns the
/// numbers.
///
/// An unfinalized trace (no `trace.json`, or `complete: false`), a stream that ends in a torn
/// tail or a corrupt record, and every other [`Damage`] are reported in the output and the
/// [`InspectReport`], not as errors.
pub fn inspect(
    trace_dir: &Path,
    limit: usize,
    out: &mut dyn Write,
) -> Result<InspectReport, InspectError> {
    inspect_with(trace_dir, &InspectOptions { limit, top: None }, out)
}

/// What [`inspect_with`] prints beyond the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InspectOptions {
    /// Events to list.
    pub limit: usize,
    /// With `Some(n)`: the top `n` functions by calls and by inclusive time
    /// ([`crate::top`]), before the events.
    pub top: Option<usize>,
}

/// [`inspect`] with [`InspectOptions`] (`ada inspect --top N`).
pub fn inspect_with(
    trace_dir: &Path,
    options: &InspectOptions,
    out: &mut dyn Write,
) -> Result<InspectReport, InspectError> {
    let reader = open_trace(trace_dir).map_err(|f| match f {
        OpenFailure::Locate(e) => InspectError::Locate(e),
        OpenFailure::Read { path, source } => InspectError::Read { path, source },
    })?;
    let mut w = BufWriter::new(out);
    let report = write_summary(&reader, options, &mut w).map_err(InspectError::Output)?;
    w.flush().map_err(InspectError::Output)?;
    Ok(report)
}

fn write_summary<W: Write>(
    reader: &TraceReader,
    options: &InspectOptions,
    w: &mut W,
) -> io::Result<InspectReport> {
    let limit = options.limit;
    let manifest = reader.manifest();
    // Names for addresses in the recorded modules, and the calls table of `--top`.
    let mut namer = Namer::new(manifest);
    let mut calls = options.top.map(|_| CallTable::new());
    let events_bytes = reader.events_bytes().len() as u64;

    // The whole stream first: the status line says whether the trace lost data.
    let mut checked = CheckedEvents::new(reader);
    let mut span: Option<(u64, u64)> = None;
    // Names from the manifest, completed by the stream's definitions (all a trace cut short
    // has).
    let mut names = StreamNames::new(manifest);
    let mut losses = Losses::default();
    for event in checked.by_ref() {
        if names.observe(&event) {
            continue;
        }
        if let Some(calls) = calls.as_mut() {
            calls.observe(&event, &names, &mut namer);
        } else if namer.has_modules()
            && let Some(Payload::FunctionCall(c)) = &event.payload
        {
            // Resolved now, so the summary can say how naming went.
            let _ = namer.resolve(&c.symbol, event.function_id, event.thread_id, &names);
        }
        losses.observe(&event);
        if let Some(ns) = event.timestamp.and_then(|t| t.to_nanos()) {
            span = Some(span.map_or((ns, ns), |(lo, hi)| (lo.min(ns), hi.max(ns))));
        }
    }
    let outcome = checked.finish(reader);
    let mut damage = outcome.damage;
    let events_read = outcome.events_read;
    let windows_read = reader.windows();
    if let Err(e) = &windows_read {
        damage.push(Damage::WindowsUnreadable {
            error: e.to_string(),
        });
    }
    let complete = reader.is_complete() && damage.is_empty();

    writeln!(w, "trace: {}", escape_path(reader.dir()))?;
    if complete {
        writeln!(w, "status: complete")?;
    } else if reader.is_complete() {
        writeln!(
            w,
            "status: DAMAGED (trace.json says complete, but data was lost: see DAMAGE below)"
        )?;
    } else {
        let why = if manifest.is_some() {
            " [trace.json says complete: false]"
        } else {
            " [no trace.json]"
        };
        writeln!(
            w,
            "status: NOT FINALIZED (the writer did not finish; showing what is readable){why}"
        )?;
    }
    match manifest {
        Some(m) => write_manifest(w, m, events_bytes)?,
        None => writeln!(w, "events.bin: {events_bytes} bytes")?,
    }

    let unbalanced_lanes = match manifest {
        Some(m) => {
            let unbalanced = write_threads(w, m)?;
            write_integrity(w, m)?;
            unbalanced
        }
        None => {
            write_stream_threads(w, &names)?;
            0
        }
    };

    let triggers = manifest.map(|m| m.triggers.as_slice()).unwrap_or_default();
    let windows = match windows_read {
        Ok(windows) => {
            let source = if reader.dir().join(WINDOWS_FILE).is_file() {
                WINDOWS_FILE
            } else {
                "manifest"
            };
            write_windows(w, &windows, source, triggers)?;
            windows.len()
        }
        Err(e) => {
            let fallback = manifest.map(|m| m.windows.as_slice()).unwrap_or_default();
            writeln!(
                w,
                "windows: {WINDOWS_FILE} is unreadable ({})",
                Escaped(&e.to_string())
            )?;
            write_windows(w, fallback, "manifest", triggers)?;
            fallback.len()
        }
    };

    let symbols = names.symbol_count();
    let listed = manifest.map_or(0, |m| m.symbols.len());
    writeln!(
        w,
        "symbols: {symbols} ({listed} in trace.json; {} definitions in the event stream{})",
        names.definitions_seen(),
        if names.conflicts() > 0 {
            format!(
                ", {} contradicting an earlier one, not applied",
                names.conflicts()
            )
        } else {
            String::new()
        }
    )?;

    write_naming(w, &namer)?;

    losses.write(w)?;

    if let (Some(n), Some(calls)) = (options.top, &calls) {
        calls.write(w, n, &names, &mut namer)?;
    }

    if limit > 0 {
        writeln!(w, "events (first {limit}):")?;
    }
    let mut events_shown = 0usize;
    for event in CheckedEvents::new(reader).take(limit) {
        write!(w, "  ")?;
        write_event_line(w, &event, &names, &mut namer)?;
        writeln!(w)?;
        events_shown += 1;
    }
    let not_shown = events_read.saturating_sub(events_shown as u64);
    if limit > 0 && not_shown > 0 {
        writeln!(w, "  ... {not_shown} more events not shown")?;
    }
    let torn_tail = outcome.torn_tail;
    let stream_error = outcome.stream_error;

    match span {
        Some((lo, hi)) => writeln!(
            w,
            "events read: {events_read}, timestamps {} .. {} (span {})",
            secs(lo),
            secs(hi),
            secs(hi - lo)
        )?,
        None => writeln!(w, "events read: {events_read}")?,
    }
    match (&stream_error, torn_tail) {
        (Some(e), _) => writeln!(
            w,
            "stream: CORRUPT: {}; stopped after {events_read} whole events",
            Escaped(&e.to_string())
        )?,
        (None, Some(t)) => writeln!(
            w,
            "stream: TORN TAIL: {} {} at offset {} after the last whole event \
             (the writer was interrupted); {events_read} whole events readable",
            t.bytes,
            if t.zero_filled {
                "zero bytes"
            } else {
                "bytes of a cut record"
            },
            t.offset
        )?,
        (None, None) => writeln!(
            w,
            "stream: ended cleanly after {events_read} events ({events_bytes} bytes)"
        )?,
    }
    write_damage(w, &damage)?;

    Ok(InspectReport {
        finalized: manifest.is_some(),
        complete,
        manifest_event_count: manifest.map(|m| m.event_count),
        events_read,
        events_shown,
        events_bytes,
        torn_tail,
        stream_error,
        unbalanced_lanes,
        windows,
        symbols,
        damage,
        capture_warnings: manifest
            .map(crate::damage::capture_warnings)
            .unwrap_or_default(),
    })
}

/// The stream's `EventsLost` events: counted and summed by cause, the first
/// [`LOSSES_SHOWN`] kept to list.
#[derive(Default)]
struct Losses {
    events: u64,
    /// Lost events, summed over every cause.
    lost: u64,
    /// Lost events by cause, in first-seen order.
    by_cause: Vec<(String, u64)>,
    shown: Vec<(i32, u32, ada_atf::schema::EventsLost)>,
}

impl Losses {
    fn observe(&mut self, event: &Event) {
        let Some(Payload::EventsLost(l)) = &event.payload else {
            return;
        };
        self.events += 1;
        self.lost = self.lost.saturating_add(l.count);
        let room = self.by_cause.len() < LOSSES_SHOWN;
        match self.by_cause.iter_mut().find(|(c, _)| *c == l.cause) {
            Some((_, n)) => *n = n.saturating_add(l.count),
            // Bounded: a stream can name any number of causes; more than a few is damage.
            None if room => self.by_cause.push((l.cause.clone(), l.count)),
            None => {}
        }
        if self.shown.len() < LOSSES_SHOWN {
            self.shown.push((event.thread_id, l.lane, l.clone()));
        }
    }

    /// `losses: …` and one line per loss shown (nothing when the stream has none).
    fn write<W: Write>(&self, w: &mut W) -> io::Result<()> {
        if self.events == 0 {
            return Ok(());
        }
        let causes: Vec<String> = self
            .by_cause
            .iter()
            .map(|(c, n)| format!("{} {n}", escape(c)))
            .collect();
        writeln!(
            w,
            "losses: {} EventsLost event(s) in the stream, {} events lost ({})",
            self.events,
            self.lost,
            causes.join(", ")
        )?;
        for (thread, lane, l) in &self.shown {
            writeln!(
                w,
                "  thread {thread}  {:<6}  {} events ({}){}",
                lane_name(*lane),
                l.count,
                escape(&l.cause),
                lost_span(l)
            )?;
        }
        let more = self.events.saturating_sub(self.shown.len() as u64);
        if more > 0 {
            writeln!(w, "  ... {more} more")?;
        }
        Ok(())
    }
}

/// `, first … last …` of a loss, each where known (non-zero).
fn lost_span(l: &ada_atf::schema::EventsLost) -> String {
    let mut s = String::new();
    if l.first_lost_ns != 0 {
        s.push_str(&format!(", first {}", secs(l.first_lost_ns)));
    }
    if l.last_lost_ns != 0 {
        s.push_str(&format!(", last {}", secs(l.last_lost_ns)));
    }
    s
}

/// The `DAMAGE` list at the end of the summary: every [`Damage`], one escaped line each.
fn write_damage<W: Write>(w: &mut W, damage: &[Damage]) -> io::Result<()> {
    if damage.is_empty() {
        return writeln!(
            w,
            "damage: none (complete, and events.bin holds what trace.json says)"
        );
    }
    writeln!(
        w,
        "DAMAGE: {} problem(s); what is shown above is what was readable:",
        damage.len()
    )?;
    for d in damage {
        writeln!(w, "  - {}", Escaped(&d.to_string()))?;
    }
    Ok(())
}

fn write_manifest<W: Write>(w: &mut W, m: &Manifest, events_bytes: u64) -> io::Result<()> {
    match &m.session_name {
        Some(name) => writeln!(w, "session: {} (id {})", escape(name), m.session_id)?,
        None => writeln!(w, "session: id {}", m.session_id)?,
    }
    writeln!(
        w,
        "process: pid {}, {}/{}",
        m.pid,
        escape(&m.os),
        escape(&m.arch)
    )?;
    if let Some(exe) = &m.executable {
        writeln!(w, "executable: {}", command_line(exe, &m.args))?;
    }
    if let Some(code) = m.exit_code {
        writeln!(w, "exit code: {code}")?;
    }
    match m.format_version {
        Some(v) => writeln!(w, "format: ATF v{v}")?,
        None => writeln!(w, "format: ATF v4 (original writer, no formatVersion)")?,
    }
    match &m.clock {
        Some(c) => {
            match c.realtime_offset_ns {
                Some(off) => write!(w, "clock: {} (realtime offset {off} ns)", escape(&c.name))?,
                None => write!(w, "clock: {} (realtime offset unknown)", escape(&c.name))?,
            }
            match (&c.source, &c.calibration) {
                (Some(source), Some(cal)) => {
                    let rate = cal
                        .ticks_per_second
                        .map_or_else(|| "rate unknown".to_owned(), |r| format!("{r} ticks/s"));
                    writeln!(
                        w,
                        "; stamped with {}, converted ({rate}, {} calibration point(s))",
                        escape(source),
                        cal.points
                    )?;
                }
                (Some(source), None) => writeln!(w, "; stamped with {}", escape(source))?,
                (None, _) => writeln!(w)?,
            }
        }
        None => writeln!(w, "clock: not recorded")?,
    }
    writeln!(
        w,
        "complete: {}",
        m.complete
            .map_or("absent (original writer: final)", |c| if c {
                "true"
            } else {
                "false"
            })
    )?;
    writeln!(
        w,
        "wall time: {} .. {} ({})",
        utc(m.time_start_ns),
        utc(m.time_end_ns),
        secs(m.time_end_ns.saturating_sub(m.time_start_ns))
    )?;
    if let (Some(lo), Some(hi)) = (m.min_event_timestamp_ns, m.max_event_timestamp_ns) {
        writeln!(
            w,
            "event time: {} .. {} (span {}, trace clock)",
            secs(lo),
            secs(hi),
            secs(hi.saturating_sub(lo))
        )?;
    }
    writeln!(
        w,
        "events: {}, bytes: {} (events.bin has {events_bytes})",
        m.event_count, m.bytes_written
    )?;
    writeln!(w, "modules: {}", m.modules.len())?;
    if let Some(err) = &m.write_error {
        writeln!(w, "write error: {}", escape(err))?;
    }
    if m.events_unwritten > 0 {
        writeln!(
            w,
            "events unwritten (lost to the write error): {}",
            m.events_unwritten
        )?;
    }
    Ok(())
}

/// Prints what the manifest says about the trace's integrity beyond lane balance: threads
/// summed instead of listed, threads whose identity the controller could not verify, the
/// corruption it found in its input, and events of threads that got no registry slot.
fn write_integrity<W: Write>(w: &mut W, m: &Manifest) -> io::Result<()> {
    if let Some(f) = &m.folded_threads {
        writeln!(w, "folded threads: {} (summed, not listed)", f.threads)?;
        for lane in &f.lanes {
            write_lane(w, lane)?;
        }
    }
    const SHOWN: usize = 16;
    let unverified: Vec<i32> = m
        .threads
        .iter()
        .filter(|t| t.verified == Some(false))
        .map(|t| t.thread_id)
        .collect();
    if !unverified.is_empty() {
        let shown: Vec<String> = unverified.iter().take(SHOWN).map(i32::to_string).collect();
        let more = unverified.len().saturating_sub(SHOWN);
        writeln!(
            w,
            "unverified threads (pid and os tid as the traced side claimed them): {}{}",
            unverified.len(),
            if more > 0 {
                format!(" ({}, ...)", shown.join(", "))
            } else {
                format!(" ({})", shown.join(", "))
            }
        )?;
    }
    if m.unverifiable_threads > 0 {
        writeln!(
            w,
            "threads gone before they could be verified: {}",
            m.unverifiable_threads
        )?;
    }
    if m.corruption_total() > 0 {
        let counts: Vec<String> = m
            .corruption
            .iter()
            .filter(|&(_, &n)| n > 0)
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect();
        writeln!(
            w,
            "WARNING: the controller found corrupt input: {}",
            counts.join(", ")
        )?;
    }
    if m.unregistered_drops > 0 {
        writeln!(
            w,
            "events dropped by threads with no registry slot: {}",
            m.unregistered_drops
        )?;
    }
    if let Some(by_lane) = &m.unregistered_by_lane
        && (by_lane.index, by_lane.detail) != (0, 0)
    {
        writeln!(
            w,
            "  of them (cause no_slot): index {}, detail {}",
            by_lane.index, by_lane.detail
        )?;
    }
    if let Some(p) = &m.drop_policies {
        write!(
            w,
            "drop policies: index={},detail={}",
            escape(&p.index),
            escape(&p.detail)
        )?;
        if let Some(ns) = m.stability_ns {
            write!(w, " (stability {})", secs(ns))?;
        }
        writeln!(w)?;
    }
    if let Some(r) = &m.readiness {
        write!(w, "registry: epoch {}, ", r.epoch)?;
        match r.ready_to_steady_ns {
            Some(ns) => write!(w, "steady {} after ready", secs(ns))?,
            None => write!(w, "never steady")?,
        }
        writeln!(
            w,
            " (warm-up {}, {} restart(s))",
            secs(r.warm_up_ns),
            r.warm_up_restarts
        )?;
    }
    if let Some(c) = &m.continuation {
        writeln!(
            w,
            "continuation of segment {} (previous controller pid {}, epoch {}): events counted \
             before the take-over are in the previous trace (beforeAttach)",
            escape(&c.segment),
            c.previous_controller_pid,
            c.epoch
        )?;
    }
    Ok(())
}

/// Prints the threads and their lane counters; returns how many lanes do not balance.
fn write_threads<W: Write>(w: &mut W, m: &Manifest) -> io::Result<usize> {
    writeln!(w, "threads: {}", m.threads.len())?;
    let mut unbalanced = 0usize;
    for t in &m.threads {
        write!(w, "  thread {}", t.thread_id)?;
        if let Some(name) = &t.name {
            write!(w, " {}", Quoted(name))?;
        }
        if let Some(tid) = t.os_tid {
            write!(w, " (os tid {tid})")?;
        }
        writeln!(w)?;
        for lane in &t.lanes {
            write_lane(w, lane)?;
            if !lane.is_balanced() {
                unbalanced += 1;
            }
        }
    }
    if unbalanced > 0 {
        writeln!(
            w,
            "WARNING: {unbalanced} lane(s) where written != persisted + spilled + dropped + discarded"
        )?;
    }
    Ok(unbalanced)
}

fn write_lane<W: Write>(w: &mut W, c: &LaneCounters) -> io::Result<()> {
    write!(
        w,
        "    {:<6}  written {}  persisted {}  dropped {}  discarded {}",
        c.lane.as_str(),
        c.written,
        c.persisted,
        c.dropped,
        c.discarded
    )?;
    if let Some(lost) = &c.lost
        && lost.total() > 0
    {
        write!(
            w,
            "  lost: overwritten {}, refused {}, too_large {}",
            lost.overwritten, lost.refused, lost.too_large
        )?;
    }
    if let Some(markers) = c.markers
        && markers > 0
    {
        write!(w, "  markers {markers}")?;
    }
    if let Some(spilled) = c.spilled.filter(|&n| n > 0) {
        write!(w, "  spilled {spilled}")?;
    }
    if let Some(via) = c.via_fallback.filter(|&n| n > 0) {
        write!(w, "  via fallback ring {via}")?;
    }
    if let Some(e) = &c.state_entries
        && e.left_normal()
    {
        write!(
            w,
            "  left NORMAL: entered PRESSURE {}x, DROPPING {}x, RECOVERY {}x, NORMAL {}x",
            e.pressure, e.dropping, e.recovery, e.normal
        )?;
    }
    if let Some(state) = &c.state
        && state != "NORMAL"
    {
        write!(w, "  state {}", escape(state))?;
    }
    if !c.is_balanced() {
        let accounted = i128::from(c.persisted)
            + i128::from(c.spilled.unwrap_or(0))
            + i128::from(c.dropped)
            + i128::from(c.discarded);
        write!(
            w,
            "  UNBALANCED (written - accounted = {})",
            i128::from(c.written) - accounted
        )?;
    }
    if let Some(lost) = &c.lost
        && lost.total() != c.dropped
    {
        write!(
            w,
            "  UNBALANCED (dropped {} != lost by cause {})",
            c.dropped,
            lost.total()
        )?;
    }
    writeln!(w)
}

fn write_windows<W: Write>(
    w: &mut W,
    windows: &[PersistenceWindow],
    source: &str,
    triggers: &[String],
) -> io::Result<()> {
    if windows.is_empty() {
        return writeln!(w, "windows: 0");
    }
    writeln!(w, "windows: {} (from {source})", windows.len())?;
    for win in windows.iter().take(WINDOWS_SHOWN) {
        write!(w, "  {}", window_summary(win))?;
        // The spec, when the manifest names the session's triggers.
        if let Some(spec) = win.trigger.and_then(|t| triggers.get(t as usize)) {
            write!(w, " ({})", escape(spec))?;
        }
        writeln!(w)?;
    }
    if windows.len() > WINDOWS_SHOWN {
        writeln!(w, "  ... {} more", windows.len() - WINDOWS_SHOWN)?;
    }
    Ok(())
}

/// One window in a line: id, span, events and marks, then what a flight-recorder window adds
/// (thread, first mark, the trigger that opened it or an explicit mark, pre-roll, events
/// discarded before it) when the trace has it.
fn window_summary(win: &PersistenceWindow) -> String {
    let mut line = format!(
        "window #{} {} .. {}, events {}, marked {}, {}",
        win.window_id,
        secs(win.start_ns),
        secs(win.end_ns),
        win.total_events,
        win.marked_events,
        if win.mark_seen {
            "mark seen"
        } else {
            "no mark"
        }
    );
    if win.thread_id != 0 {
        line.push_str(&format!(", thread {}", win.thread_id));
    }
    if win.last_mark_ns != 0 {
        line.push_str(&format!(", first mark {}", secs(win.first_mark_ns)));
        match win.trigger {
            Some(t) => line.push_str(&format!(", opened by trigger {t}")),
            None => line.push_str(", opened by an explicit mark"),
        }
    }
    if win.pre_roll_events != 0 {
        line.push_str(&format!(", pre-roll {}", win.pre_roll_events));
    }
    if win.discarded_events != 0 {
        line.push_str(&format!(", {} discarded before", win.discarded_events));
    }
    if win.over_budget_events != 0 {
        line.push_str(&format!(" ({} over budget)", win.over_budget_events));
    }
    line
}

/// The name of a function: the event's symbol, else the trace's name for its id (trace.json's
/// symbol table or a `SymbolDef` in the stream), else `fn#<id>` (or the address when the id is
/// unknown too).
pub(crate) fn function_name<'a>(
    symbol: &'a str,
    function_id: u64,
    address: u64,
    names: &'a StreamNames,
) -> Cow<'a, str> {
    if !symbol.is_empty() {
        return Cow::Borrowed(symbol);
    }
    if let Some(s) = names.symbol(function_id).filter(|s| !s.symbol.is_empty()) {
        return Cow::Borrowed(&s.symbol);
    }
    if function_id == 0 && address != 0 {
        Cow::Owned(format!("0x{address:x}"))
    } else {
        Cow::Owned(format!("fn#{function_id}"))
    }
}

/// The lane name for a wire value.
pub(crate) fn lane_name(lane: u32) -> Cow<'static, str> {
    match Lane::from_u32(lane) {
        Some(l) => Cow::Borrowed(l.as_str()),
        None => Cow::Owned(format!("lane{lane}")),
    }
}

/// `ns` as seconds with nanosecond precision: `1.000000037 s`.
fn secs(ns: u64) -> String {
    format!("{}.{:09} s", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// A string from the trace, made safe for one line: as is when it holds nothing unsafe for a
/// terminal ([`is_unsafe`]), no quote and no backslash; else quoted and escaped ([`Quoted`]).
fn escape(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c == '"' || c == '\\' || is_unsafe(c)) {
        Cow::Owned(Quoted(s).to_string())
    } else {
        Cow::Borrowed(s)
    }
}

/// A word of a command line: as [`escape`], and quoted when empty or holding whitespace too.
fn word(s: &str) -> Cow<'_, str> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        Cow::Owned(Quoted(s).to_string())
    } else {
        escape(s)
    }
}

fn command_line(exe: &str, args: &[String]) -> String {
    let mut line = word(exe).into_owned();
    for a in args {
        line.push(' ');
        line.push_str(&word(a));
    }
    line
}

/// Quoted text, cut to [`TEXT_SHOWN`] characters.
fn quoted(text: &str) -> String {
    let mut chars = text.char_indices();
    match chars.nth(TEXT_SHOWN) {
        Some((cut, _)) => format!("{}... ({} bytes)", Quoted(&text[..cut]), text.len()),
        None => Quoted(text).to_string(),
    }
}

fn registers(regs: &std::collections::BTreeMap<String, u64>) -> String {
    if regs.is_empty() {
        return String::new();
    }
    let list: Vec<String> = regs
        .iter()
        .map(|(k, v)| format!("{}=0x{v:x}", escape(k)))
        .collect();
    format!(" [{}]", list.join(" "))
}

/// The threads a trace without a manifest names in its stream (`ThreadDef` events).
fn write_stream_threads<W: Write>(w: &mut W, names: &StreamNames) -> io::Result<()> {
    if names.thread_count() == 0 {
        return writeln!(
            w,
            "threads: unknown (no manifest) and no thread definitions in the stream"
        );
    }
    writeln!(
        w,
        "threads: {} (from the event stream; no manifest, so no counters)",
        names.thread_count()
    )?;
    // The first threads by number; a crashed program with 100 000 threads is summed up.
    const SHOWN: usize = 64;
    let mut ids: Vec<i32> = names.thread_ids().collect();
    ids.sort_unstable();
    for &id in ids.iter().take(SHOWN) {
        if let Some(t) = names.thread(id) {
            writeln!(w, "  thread {id}: {}", thread_identity(t))?;
        }
    }
    if ids.len() > SHOWN {
        writeln!(w, "  ... and {} more threads", ids.len() - SHOWN)?;
    }
    Ok(())
}

/// `pid 100 tid 101 "worker" (verified)`, escaped.
fn thread_identity(t: &ThreadIdentity) -> String {
    let mut s = String::new();
    if let Some(pid) = t.pid {
        s.push_str(&format!("pid {pid} "));
    }
    match t.os_tid {
        Some(tid) => s.push_str(&format!("tid {tid}")),
        None => s.push_str("tid ?"),
    }
    if let Some(name) = &t.name {
        s.push_str(&format!(" {}", quoted(name)));
    }
    s.push_str(if t.verified {
        " (verified)"
    } else {
        " (unverified: as the traced side claimed)"
    });
    s
}

/// `loaded modules: …` and how their addresses were named (nothing for a trace that
/// recorded no modules).
fn write_naming<W: Write>(w: &mut W, namer: &Namer) -> io::Result<()> {
    let Some(summary) = namer.summary() else {
        return Ok(());
    };
    let (modules, processes) = namer.module_counts();
    writeln!(
        w,
        "loaded modules: {modules} executable mappings in {processes} process(es)"
    )?;
    writeln!(w, "addresses named from the modules: {}", Escaped(&summary))
}

fn write_event_line<W: Write>(
    w: &mut W,
    ev: &Event,
    table: &StreamNames,
    namer: &mut Namer,
) -> io::Result<()> {
    let ts = match ev.timestamp {
        None => "-".to_owned(),
        Some(t) => match t.to_nanos() {
            Some(ns) => secs(ns),
            None => format!("invalid({}s {}ns)", t.seconds, t.nanos),
        },
    };
    write!(
        w,
        "#{}  thread {}  {}  {:<6}  ",
        ev.event_id,
        ev.thread_id,
        ts,
        lane_name(ev.lane)
    )?;
    match &ev.payload {
        None => write!(w, "(no payload)"),
        Some(Payload::FunctionCall(c)) => write!(
            w,
            "call {}{} depth {}{}{}",
            escape(&namer.name(&c.symbol, ev.function_id, c.address, ev.thread_id, table)),
            at_address(c.address),
            ev.call_depth,
            registers(&c.argument_registers),
            if c.stack_shallow_copy.is_empty() {
                String::new()
            } else {
                format!(" stack {} bytes", c.stack_shallow_copy.len())
            }
        ),
        Some(Payload::FunctionReturn(r)) => write!(
            w,
            "return {}{} depth {}{}",
            escape(&namer.name(&r.symbol, ev.function_id, r.address, ev.thread_id, table)),
            at_address(r.address),
            ev.call_depth,
            registers(&r.return_registers)
        ),
        Some(Payload::TraceStart(s)) => {
            write!(
                w,
                "trace start {}",
                command_line(&s.executable_path, &s.args)
            )?;
            if !s.operating_system.is_empty() || !s.cpu_architecture.is_empty() {
                write!(
                    w,
                    " ({}/{})",
                    escape(&s.operating_system),
                    escape(&s.cpu_architecture)
                )?;
            }
            Ok(())
        }
        Some(Payload::TraceEnd(e)) => write!(w, "trace end exit={}", e.exit_code),
        Some(Payload::SignalDelivery(s)) => write!(
            w,
            "signal {} ({}){}",
            escape(&s.name),
            s.number,
            registers(&s.registers)
        ),
        Some(Payload::EventsLost(l)) => write!(
            w,
            "lost {} events on lane {} ({}){}",
            l.count,
            lane_name(l.lane),
            escape(&l.cause),
            lost_span(l)
        ),
        Some(Payload::Custom(c)) => {
            let kind: Cow<'_, str> = match c.name.as_str() {
                "mark" | "message" | "exception" => Cow::Borrowed(&c.name),
                other => Cow::Owned(format!("custom {}", word(other))),
            };
            match std::str::from_utf8(&c.data) {
                Ok(text) => write!(w, "{kind} {}", quoted(text)),
                Err(_) => write!(w, "{kind} ({} bytes, not UTF-8)", c.data.len()),
            }
        }
        Some(Payload::WindowMark(m)) => {
            write!(w, "{}", window_summary(&PersistenceWindow::from(*m)))
        }
        Some(Payload::SymbolDef(d)) => write!(
            w,
            "defines function {} = {}{}{}",
            d.function_id,
            escape(&d.symbol),
            at_address(d.address),
            in_source(&d.file, d.line)
        ),
        Some(Payload::ThreadDef(d)) => write!(
            w,
            "defines thread {} = {}",
            d.thread_id,
            thread_identity(&ThreadIdentity {
                pid: Some(d.pid),
                os_tid: Some(d.os_tid),
                name: (!d.name.is_empty()).then(|| d.name.clone()),
                verified: d.verified,
            })
        ),
    }
}

/// ` (file:line)` for a definition with a source location, else nothing (a location needs
/// both a file and a line).
fn in_source(file: &str, line: u32) -> String {
    match ada_atf::SourceLocation::of(file, line) {
        Some(at) => format!(" ({}:{})", escape(&at.file), at.line),
        None => String::new(),
    }
}

/// `unix_ns` as a UTC date and time: `2024-01-02 03:04:05.123456789 UTC`.
fn utc(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:09} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        unix_ns % 1_000_000_000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// ` @0x…`, or nothing for an unknown (zero) address.
fn at_address(address: u64) -> String {
    if address == 0 {
        String::new()
    } else {
        format!(" @0x{address:x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000000000 UTC");
        // 2024-02-29 12:34:56.000000007 UTC
        assert_eq!(
            utc(1_709_210_096_000_000_007),
            "2024-02-29 12:34:56.000000007 UTC"
        );
        // Does not panic at the extreme.
        let _ = utc(u64::MAX);
    }

    #[test]
    fn names_and_quoting() {
        let mut table = StreamNames::new(None);
        table.observe(&ada_atf::EventRef::symbol_def(0, 7, "main", 0, "").to_event(1));
        assert_eq!(function_name("f", 7, 0, &table), "f");
        assert_eq!(function_name("", 7, 0, &table), "main");
        assert_eq!(function_name("", 8, 0x10, &table), "fn#8");
        assert_eq!(function_name("", 0, 0x10, &table), "0x10");
        assert_eq!(lane_name(1), "detail");
        assert_eq!(lane_name(9), "lane9");
        assert_eq!(escape("a\nb"), "\"a\\nb\"");
        assert_eq!(word("a b"), "\"a b\"");
        let long = "é".repeat(TEXT_SHOWN + 5);
        assert!(quoted(&long).ends_with(&format!("... ({} bytes)", long.len())));
    }
}
