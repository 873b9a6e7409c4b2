//! [`TraceWriter`]: one ATF v4 trace directory (`events.bin`, `window_metadata.jsonl`,
//! `trace.json`) for one traced process.
//!
//! # Layout
//! `<output_root>/ada_traces/<session>/pid_<pid>/`, where `<session>` is
//! [`WriterOptions::session_label`] or `session_YYYYMMDD_HHMMSS` from the wall clock at
//! [`TraceWriter::create`], in **UTC** (older ATF v4 writers used local time; UTC keeps names
//! independent of the time zone and needs only `std`). Several processes of one session share a
//! session directory only if their writers get the same label; see [`session_dir_name`].
//!
//! Nothing planted in a shared output directory is followed: `ada_traces` is made with one
//! `mkdir` and must be a real directory ([`WriteError::NotARealDirectory`] otherwise); a
//! default-named session directory is created exclusively (`session_..._2`, `_3`, ... when the
//! name exists, a link included); `pid_<pid>` is created exclusively, so if it exists `create`
//! fails with [`WriteError::TraceExists`] and the existing trace is left untouched (the older
//! ATF v4 writers truncated it). Files are created `O_CREAT | O_EXCL | O_NOFOLLOW`, and the
//! manifest's temporary file has an unpredictable name.
//!
//! # Buffering and what survives a crash
//! Events are encoded straight into one reusable buffer ([`WriterOptions::buffer_capacity`],
//! 256 KiB by default) that only ever holds whole records. When it fills, or on
//! [`TraceWriter::flush`], it is handed to the OS with one `write_all`, so:
//! - **writer process killed**: everything flushed before survives; at most the buffer's
//!   contents are lost, and the file ends at a record boundary or in one torn record (if the
//!   kill interrupts a `write`), which readers report as a torn tail.
//! - **OS crash or power loss**: what the last `fdatasync` covered survives. The writer
//!   `fdatasync`s `events.bin` whenever a buffer write-out finds that
//!   [`SyncPolicy::every_bytes`] (default 8 MiB) have been written or [`SyncPolicy::every`]
//!   (default 1 s) has passed since the last sync (there is no timer thread: call `flush`
//!   periodically so the interval applies to a quiet trace), on [`TraceWriter::sync`], and at
//!   finalize. A zero-filled tail some file systems leave after a power cut is read as a torn
//!   tail too.
//!
//! # Finalize
//! [`TraceWriter::finalize`] flushes, `fdatasync`s, writes `trace.json` to a temporary file in
//! the same directory, `fsync`s it, renames it over `trace.json` and `fsync`s the directory: a
//! reader sees either no manifest or the whole one. A trace without a manifest is one whose
//! writer never finalized; [`TraceReader::open_incomplete`](crate::TraceReader::open_incomplete)
//! reads it.
//!
//! # Errors
//! An encoding error rejects only that event. An I/O error while writing `events.bin` poisons
//! the writer: it cuts the file back to its last whole record where it can, refuses further
//! events ([`WriteError::Poisoned`]), and `finalize` still writes a manifest with
//! `complete: false`, `writeError` and `eventsUnwritten` (accepted events that never reached the
//! file).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::encode::{
    DEFAULT_MAX_RECORD_LEN, EventRef, IndexEventRef, encode_delimited_with_limit,
    encode_index_delimited_with_limit,
};
use crate::error::WriteError;
use crate::manifest::{
    ClockDescription, FORMAT_VERSION, Manifest, TraceSummary, host_arch, host_os,
};
use crate::window::{PersistenceWindow, window_json_line};

/// Directory under the output root that holds all sessions.
pub const TRACES_DIR: &str = "ada_traces";
/// The event stream file.
pub const EVENTS_FILE: &str = "events.bin";
/// The manifest file.
pub const MANIFEST_FILE: &str = "trace.json";
/// The persistence-window file (JSON lines).
pub const WINDOWS_FILE: &str = "window_metadata.jsonl";
/// Prefix of the manifest's temporary files (`trace.json.tmp.<random>`).
pub const MANIFEST_TMP_PREFIX: &str = "trace.json.tmp";

/// Default write buffer (256 KiB).
pub const DEFAULT_BUFFER_CAPACITY: usize = 256 * 1024;

/// When the writer `fdatasync`s `events.bin` on its own (besides [`TraceWriter::sync`] and
/// finalize). Checked whenever the buffer is written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Sync once this many bytes were written since the last sync; 0 disables.
    pub every_bytes: u64,
    /// Sync once this much time passed since the last sync (and something was written);
    /// `None` disables.
    pub every: Option<Duration>,
}

impl SyncPolicy {
    /// Sync only on [`TraceWriter::sync`] and at finalize.
    pub const ON_REQUEST: SyncPolicy = SyncPolicy {
        every_bytes: 0,
        every: None,
    };
}

impl Default for SyncPolicy {
    /// Every 8 MiB or 1 s, whichever comes first.
    fn default() -> Self {
        SyncPolicy {
            every_bytes: 8 << 20,
            every: Some(Duration::from_secs(1)),
        }
    }
}

/// How to create a [`TraceWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// The traced process (directory `pid_<pid>` and manifest `pid`). Default: this process.
    pub pid: u32,
    /// Session directory name; default `session_YYYYMMDD_HHMMSS` (UTC). Must be one non-empty
    /// path component.
    pub session_label: Option<String>,
    /// Manifest `sessionId`; 0 (the default) means wall-clock ns at creation.
    pub session_id: u64,
    /// The clock of event timestamps, recorded in the manifest.
    pub clock: ClockDescription,
    /// Write buffer size in bytes (at least 4 KiB is used).
    pub buffer_capacity: usize,
    /// When to `fdatasync` on the writer's own initiative.
    pub sync: SyncPolicy,
    /// Largest encoded event accepted; keep it at or below the readers' limit.
    pub max_record_len: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            pid: std::process::id(),
            session_label: None,
            session_id: 0,
            clock: ClockDescription::default(),
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            sync: SyncPolicy::default(),
            max_record_len: DEFAULT_MAX_RECORD_LEN,
        }
    }
}

/// What [`TraceWriter::finalize`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalStats {
    /// The `pid_<pid>` directory.
    pub dir: PathBuf,
    /// Records in `events.bin` (manifest `eventCount`).
    pub event_count: u64,
    /// Bytes in `events.bin` (manifest `bytesWritten`).
    pub bytes_written: u64,
    /// Accepted events lost to an I/O error.
    pub events_unwritten: u64,
    /// Windows recorded.
    pub windows: usize,
    /// Window lines that could not be appended to `window_metadata.jsonl` (they are still in
    /// the manifest).
    pub window_write_failures: u64,
    /// Manifest `complete`.
    pub complete: bool,
    /// Manifest `writeError`.
    pub write_error: Option<String>,
}

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `session_YYYYMMDD_HHMMSS` for a wall-clock time in ns since the Unix epoch, in UTC.
pub fn session_dir_name(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "session_{y:04}{m:02}{d:02}_{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> WriteError + 'p {
    move |source| WriteError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// How many `session_..._<n>` names [`TraceWriter::create`] tries when the second's session
/// directory exists already.
const SESSION_SUFFIX_TRIES: u32 = 1000;

/// `options` set to create a new file exclusively (`O_CREAT | O_EXCL`) and never through a
/// symbolic link (`O_NOFOLLOW`, on top of `O_EXCL`, which already refuses one).
fn create_new_nofollow(options: &mut OpenOptions) -> &mut OpenOptions {
    options.create_new(true).custom_flags(libc::O_NOFOLLOW)
}

/// Fails unless `path` is a directory itself, not a symbolic link to one.
fn check_real_dir(path: &Path) -> Result<(), WriteError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => Err(WriteError::NotARealDirectory(path.to_owned())),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Creates `path` with `mkdir` (one component, never through a link) if it is missing, then
/// checks that it is a real directory.
fn ensure_real_dir(path: &Path) -> Result<(), WriteError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_real_dir(path),
        Err(e) => Err(io_err("create directory", path)(e)),
    }
}

/// `<output_root>/ada_traces`, created if missing (with `output_root` and its missing
/// parents, which the caller chose), and checked to be a real directory, not a link.
pub fn traces_dir(output_root: &Path) -> Result<PathBuf, WriteError> {
    std::fs::create_dir_all(output_root).map_err(io_err("create directory", output_root))?;
    let traces = output_root.join(TRACES_DIR);
    ensure_real_dir(&traces)?;
    Ok(traces)
}

/// Creates a session directory under `traces` that did not exist before: `name`, or
/// `name_2`, `name_3`, ... when that exists (another run in the same second, or a planted
/// link, which is never followed or reused).
fn create_fresh_session_dir(traces: &Path, name: String) -> Result<(String, PathBuf), WriteError> {
    let mut candidate = name.clone();
    let mut n = 1u32;
    loop {
        let path = traces.join(&candidate);
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok((candidate, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < SESSION_SUFFIX_TRIES => {
                n += 1;
                candidate = format!("{name}_{n}");
            }
            Err(e) => return Err(io_err("create directory", &path)(e)),
        }
    }
}

/// Writes one ATF v4 trace. Single-threaded by design: the drain thread owns it.
#[derive(Debug)]
pub struct TraceWriter {
    dir: PathBuf,
    session_name: String,
    events_path: PathBuf,
    file: File,
    buf: Vec<u8>,
    buf_threshold: usize,
    buf_events: u64,
    max_record_len: usize,
    next_id: u64,
    file_len: u64,
    file_events: u64,
    synced_len: u64,
    last_sync: Instant,
    sync_policy: SyncPolicy,
    min_ts: u64,
    max_ts: u64,
    windows: Vec<PersistenceWindow>,
    triggers: Vec<String>,
    window_file: Option<File>,
    window_line: Vec<u8>,
    window_write_failures: u64,
    pid: u32,
    session_id: u64,
    clock: ClockDescription,
    time_start_ns: u64,
    failure: Option<String>,
    events_unwritten: u64,
    finalized: bool,
}

impl TraceWriter {
    /// Creates `<output_root>/ada_traces/<session>/pid_<pid>/` (and parents) and a new, empty
    /// `events.bin` in it.
    pub fn create(output_root: &Path, options: WriterOptions) -> Result<TraceWriter, WriteError> {
        let time_start_ns = realtime_ns();
        let session_name = match &options.session_label {
            Some(label) => {
                let mut comps = Path::new(&label).components();
                let single_normal = matches!(
                    (comps.next(), comps.next()),
                    (Some(std::path::Component::Normal(_)), None)
                );
                if !single_normal || label.contains('/') || label.contains('\0') {
                    return Err(WriteError::InvalidSessionLabel(label.clone()));
                }
                label.clone()
            }
            None => session_dir_name(time_start_ns),
        };
        let traces = traces_dir(output_root)?;
        let (session_name, session_dir) = if options.session_label.is_some() {
            // A labelled session is shared by the writers given that label: it may exist, but
            // must be a real directory.
            let session_dir = traces.join(&session_name);
            ensure_real_dir(&session_dir)?;
            (session_name, session_dir)
        } else {
            create_fresh_session_dir(&traces, session_name)?
        };
        let dir = session_dir.join(crate::locate::pid_dir_name(options.pid));
        let events_path = dir.join(EVENTS_FILE);
        // Exclusive: a `pid_<pid>` that exists already (a trace, or a planted link) is refused.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(WriteError::TraceExists(events_path));
            }
            Err(e) => return Err(io_err("create directory", &dir)(e)),
        }
        let file = match create_new_nofollow(OpenOptions::new().write(true)).open(&events_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(WriteError::TraceExists(events_path));
            }
            Err(e) => return Err(io_err("create", &events_path)(e)),
        };
        let buf_threshold = options.buffer_capacity.max(4096);
        Ok(TraceWriter {
            dir,
            session_name,
            events_path,
            file,
            // Headroom so the record that crosses the threshold rarely reallocates.
            buf: Vec::with_capacity(buf_threshold + 4096),
            buf_threshold,
            buf_events: 0,
            max_record_len: options.max_record_len,
            next_id: 1,
            file_len: 0,
            file_events: 0,
            synced_len: 0,
            last_sync: Instant::now(),
            sync_policy: options.sync,
            min_ts: u64::MAX,
            max_ts: 0,
            windows: Vec::new(),
            triggers: Vec::new(),
            window_file: None,
            window_line: Vec::with_capacity(256),
            window_write_failures: 0,
            pid: options.pid,
            session_id: if options.session_id == 0 {
                time_start_ns
            } else {
                options.session_id
            },
            clock: options.clock,
            time_start_ns,
            failure: None,
            events_unwritten: 0,
            finalized: false,
        })
    }

    /// The `pid_<pid>` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The session directory name.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// Path of `events.bin`.
    pub fn events_path(&self) -> &Path {
        &self.events_path
    }

    /// The manifest `sessionId`.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Events accepted so far (ids `1..=accepted`).
    pub fn events_accepted(&self) -> u64 {
        self.next_id - 1
    }

    /// Bytes accepted so far (written to the OS or still buffered).
    pub fn bytes_accepted(&self) -> u64 {
        self.file_len + self.buf.len() as u64
    }

    /// Bytes handed to the OS so far.
    pub fn bytes_flushed(&self) -> u64 {
        self.file_len
    }

    /// Whether an earlier I/O error poisoned the writer.
    pub fn is_poisoned(&self) -> bool {
        self.failure.is_some()
    }

    /// Inlined into every write: the common case is one test of `failure`; building the error
    /// (a `String` clone) is out of line.
    #[inline(always)]
    fn check_ok(&self) -> Result<(), WriteError> {
        #[cold]
        #[inline(never)]
        fn poisoned(msg: &str) -> WriteError {
            WriteError::Poisoned(msg.to_owned())
        }
        match &self.failure {
            Some(msg) => Err(poisoned(msg)),
            None => Ok(()),
        }
    }

    /// Encodes `event` with the next event id (from 1) into the buffer and returns the id.
    /// Writes the buffer out when it is full. No heap allocation once the buffer is warm.
    ///
    /// An [`EncodeError`](crate::EncodeError) rejects the event without using an id. An I/O
    /// error poisons the writer (see the module docs).
    pub fn write(&mut self, event: &EventRef<'_>) -> Result<u64, WriteError> {
        self.check_ok()?;
        let id = self.next_id;
        encode_delimited_with_limit(id, event, &mut self.buf, self.max_record_len)?;
        self.accepted(event.timestamp_ns)
    }

    /// Counts the event just encoded into the buffer with the next id (stamped
    /// `timestamp_ns`), writes the buffer out when it is full, and returns the id.
    #[inline(always)]
    fn accepted(&mut self, timestamp_ns: u64) -> Result<u64, WriteError> {
        let id = self.next_id;
        self.next_id += 1;
        self.buf_events += 1;
        self.min_ts = self.min_ts.min(timestamp_ns);
        self.max_ts = self.max_ts.max(timestamp_ns);
        if self.buf.len() >= self.buf_threshold {
            self.write_out()?;
        }
        Ok(id)
    }

    /// Appends the events of `block` (encoded by a [`BlockEncoder`](crate::BlockEncoder) with
    /// the placeholder id) with the next event ids, then records its windows as
    /// [`write_window`](TraceWriter::write_window) does; returns the ids given (`first..=last`,
    /// empty when the block holds no events). The file is byte for byte what
    /// [`write`](TraceWriter::write) would have made of the same events (see
    /// [`crate::block`]).
    ///
    /// A malformed block ([`WriteError::Block`]) is refused whole: no id is used and nothing
    /// of it is written. An I/O error poisons the writer (see the module docs).
    pub fn append_block(
        &mut self,
        block: &crate::EncodedBlock,
    ) -> Result<std::ops::RangeInclusive<u64>, WriteError> {
        self.check_ok()?;
        let first = self.next_id;
        let start = self.buf.len();
        let n = crate::block::reframe(block.bytes(), first, self.max_record_len, &mut self.buf)?;
        if n != block.events() {
            // The count is the encoder's, the records the bytes': a block that disagrees with
            // itself is not trusted.
            self.buf.truncate(start);
            return Err(crate::BlockError {
                offset: 0,
                reason: "the block's event count does not match its records",
            }
            .into());
        }
        self.next_id += n;
        self.buf_events += n;
        if n > 0
            && let Some((lo, hi)) = block.time_range()
        {
            self.min_ts = self.min_ts.min(lo);
            self.max_ts = self.max_ts.max(hi);
        }
        let mut result = Ok(first..=first + n - 1);
        for w in block.windows() {
            if let Err(e) = self.write_window(w) {
                result = Err(e);
            }
        }
        if self.buf.len() >= self.buf_threshold {
            self.write_out()?;
        }
        result
    }

    /// [`write`](Self::write) for an index-shaped event, through the one-pass
    /// [`encode_index_delimited_with_limit`]: the same bytes, the same ids, the same errors.
    #[inline]
    pub fn write_index(&mut self, event: &IndexEventRef<'_>) -> Result<u64, WriteError> {
        self.check_ok()?;
        let id = self.next_id;
        encode_index_delimited_with_limit(id, event, &mut self.buf, self.max_record_len)?;
        self.accepted(event.timestamp_ns)
    }

    /// The clock of event timestamps for the manifest (replaces the one in [`WriterOptions`]:
    /// a caller that converts timestamps knows its calibration only at the end).
    pub fn set_clock(&mut self, clock: ClockDescription) {
        self.clock = clock;
    }

    /// The session's trigger specs, in order, for the manifest's `triggers` (a window's
    /// [`trigger`](PersistenceWindow::trigger) is an index into them). Replaces any given before.
    pub fn set_triggers(&mut self, specs: Vec<String>) {
        self.triggers = specs;
    }

    /// Records a persistence window: appends its JSON line to `window_metadata.jsonl` (one
    /// `write`, created on first use) and keeps it for the manifest's `windows`. A failed append
    /// is counted and returned; the window still goes to the manifest.
    pub fn write_window(&mut self, window: &PersistenceWindow) -> Result<(), WriteError> {
        self.windows.push(*window);
        self.window_line.clear();
        window_json_line(window, &mut self.window_line);
        let path = self.dir.join(WINDOWS_FILE);
        let result = (|| {
            if self.window_file.is_none() {
                let f = create_new_nofollow(OpenOptions::new().append(true))
                    .open(&path)
                    .map_err(io_err("create", &path))?;
                self.window_file = Some(f);
            }
            let f = self.window_file.as_mut().expect("opened above");
            f.write_all(&self.window_line)
                .map_err(io_err("write", &path))
        })();
        if result.is_err() {
            self.window_write_failures += 1;
        }
        result
    }

    /// Hands buffered events to the OS (and `fdatasync`s if the [`SyncPolicy`] says it is due).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.check_ok()?;
        self.write_out()
    }

    /// Flushes, then `fdatasync`s `events.bin` and `window_metadata.jsonl`.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.flush()?;
        self.sync_events()?;
        if let Some(f) = &self.window_file {
            f.sync_data()
                .map_err(io_err("fsync", &self.dir.join(WINDOWS_FILE)))?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), WriteError> {
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                return Err(self.fail("write", e));
            }
            self.file_len += self.buf.len() as u64;
            self.file_events += self.buf_events;
            self.buf.clear();
            self.buf_events = 0;
        }
        let unsynced = self.file_len - self.synced_len;
        let due = unsynced > 0
            && ((self.sync_policy.every_bytes > 0 && unsynced >= self.sync_policy.every_bytes)
                || self
                    .sync_policy
                    .every
                    .is_some_and(|every| self.last_sync.elapsed() >= every));
        if due {
            self.sync_events()?;
        }
        Ok(())
    }

    fn sync_events(&mut self) -> Result<(), WriteError> {
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail("fsync", e));
        }
        self.synced_len = self.file_len;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Poisons the writer after an I/O error on `events.bin`.
    fn fail(&mut self, op: &'static str, source: io::Error) -> WriteError {
        // A failed write_all may have written part of the buffer: cut the file back to the last
        // whole record so the tail stays clean. Best effort; a reader copes with a torn tail.
        let _ = self
            .file
            .set_len(self.file_len)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.file_len)));
        self.events_unwritten += self.buf_events;
        self.buf.clear();
        self.buf_events = 0;
        self.failure = Some(format!("{op} {}: {source}", self.events_path.display()));
        WriteError::Io {
            op,
            path: self.events_path.clone(),
            source,
        }
    }

    /// Flushes and syncs everything, then writes `trace.json` atomically and returns what was
    /// written.
    ///
    /// `complete` in the manifest is `summary.complete` and no write failure. If the writer was
    /// poisoned earlier, the manifest still goes out (incomplete) and this returns `Ok`. If the
    /// final flush or sync fails here, the manifest still goes out (incomplete) and that error
    /// is returned. An error writing the manifest itself is returned and leaves any previous
    /// `trace.json` and no temporary file behind.
    pub fn finalize(mut self, summary: TraceSummary) -> Result<FinalStats, WriteError> {
        self.finalized = true;
        let flushed = if self.failure.is_none() {
            self.sync()
        } else {
            Ok(())
        };
        let complete = summary.complete && self.failure.is_none();
        let has_events = self.min_ts <= self.max_ts;
        let mut modules: Vec<String> = Vec::with_capacity(summary.modules.len());
        for m in summary.modules {
            if !modules.contains(&m) {
                modules.push(m);
            }
        }
        let manifest = Manifest {
            os: host_os().to_owned(),
            arch: host_arch().to_owned(),
            pid: self.pid,
            session_id: self.session_id,
            time_start_ns: self.time_start_ns,
            time_end_ns: realtime_ns().max(self.time_start_ns),
            event_count: self.file_events,
            bytes_written: self.file_len,
            modules,
            format_version: Some(FORMAT_VERSION),
            complete: Some(complete),
            session_name: Some(self.session_name.clone()),
            clock: Some(self.clock.clone()),
            executable: summary.executable,
            args: summary.args,
            exit_code: summary.exit_code,
            min_event_timestamp_ns: has_events.then_some(self.min_ts),
            max_event_timestamp_ns: has_events.then_some(self.max_ts),
            threads: summary.threads,
            windows: std::mem::take(&mut self.windows),
            triggers: std::mem::take(&mut self.triggers),
            symbols: summary.symbols,
            loaded_modules: summary.loaded_modules,
            write_error: self.failure.clone(),
            events_unwritten: self.events_unwritten,
            folded_threads: summary.folded_threads,
            corruption: summary
                .corruption
                .into_iter()
                .filter(|&(_, n)| n > 0)
                .collect(),
            unregistered_drops: summary.unregistered_drops,
            unverifiable_threads: summary.unverifiable_threads,
            unregistered_by_lane: summary.unregistered_by_lane,
            drop_policies: summary.drop_policies,
            stability_ns: summary.stability_ns,
            fallback: summary.fallback,
            readiness: summary.readiness,
            agent_stats: summary.agent_stats,
            continuation: summary.continuation,
        };
        write_manifest_atomically(&self.dir, &manifest)?;
        flushed?;
        Ok(FinalStats {
            dir: self.dir.clone(),
            event_count: manifest.event_count,
            bytes_written: manifest.bytes_written,
            events_unwritten: manifest.events_unwritten,
            windows: manifest.windows.len(),
            window_write_failures: self.window_write_failures,
            complete,
            write_error: manifest.write_error,
        })
    }
}

impl Drop for TraceWriter {
    /// A writer dropped without [`finalize`](TraceWriter::finalize) (an early return, a panic)
    /// still hands its buffered events to the OS, best effort, and writes no manifest.
    fn drop(&mut self) {
        if !self.finalized && self.failure.is_none() {
            let _ = self.write_out();
        }
    }
}

/// Writes `trace.json` in `dir` atomically: temporary file, `fsync`, rename, directory `fsync`.
/// Also usable to finalize a trace whose writer died (with `complete: false`).
pub fn write_manifest_atomically(dir: &Path, manifest: &Manifest) -> Result<(), WriteError> {
    let final_path = dir.join(MANIFEST_FILE);
    // `tempfile` creates the temporary file exclusively (`O_EXCL`, which never follows a link)
    // under an unpredictable name; the rename replaces whatever `trace.json` is, a link included,
    // without following it.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{MANIFEST_TMP_PREFIX}."))
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    // Streamed: the text of a big manifest is never held in memory whole.
    let mut out = std::io::BufWriter::new(tmp.as_file_mut());
    manifest
        .write_json_pretty(&mut out)
        .and_then(|()| out.flush())
        .map_err(io_err("write", &tmp_path))?;
    drop(out);
    tmp.as_file()
        .sync_all()
        .map_err(io_err("fsync", &tmp_path))?;
    // On failure the returned `NamedTempFile` is dropped, which removes the temporary file.
    tmp.persist(&final_path)
        .map_err(|e| io_err("rename", &tmp_path)(e.error))?;
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_can_move_to_the_drain_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<TraceWriter>();
    }

    #[test]
    fn session_names_are_utc() {
        assert_eq!(session_dir_name(0), "session_19700101_000000");
        // 2024-02-29T23:59:59Z
        assert_eq!(
            session_dir_name(1_709_251_199_000_000_000),
            "session_20240229_235959"
        );
        // 2000-03-01T00:00:00Z
        assert_eq!(
            session_dir_name(951_868_800_123_456_789),
            "session_20000301_000000"
        );
        assert_eq!(session_dir_name(u64::MAX), "session_25540721_233433");
    }

    #[test]
    fn bad_labels_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        for label in ["", ".", "..", "a/b", "/abs", "x\0y"] {
            let opts = WriterOptions {
                session_label: Some(label.to_owned()),
                ..WriterOptions::default()
            };
            assert!(
                matches!(
                    TraceWriter::create(tmp.path(), opts),
                    Err(WriteError::InvalidSessionLabel(_))
                ),
                "{label:?}"
            );
        }
    }

    /// An empty directory to which planted links point.
    fn victim(tmp: &Path) -> PathBuf {
        let v = tmp.join("victim");
        std::fs::create_dir(&v).unwrap();
        v
    }

    fn is_empty_dir(dir: &Path) -> bool {
        std::fs::read_dir(dir).unwrap().next().is_none()
    }

    #[test]
    fn planted_traces_dir_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = victim(tmp.path());
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(TRACES_DIR)).unwrap();
        match TraceWriter::create(&out, WriterOptions::default()) {
            Err(WriteError::NotARealDirectory(p)) => assert_eq!(p, out.join(TRACES_DIR)),
            other => panic!("{other:?}"),
        }
        assert!(is_empty_dir(&victim));
    }

    #[test]
    fn planted_session_dir_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = victim(tmp.path());
        let traces = tmp.path().join(TRACES_DIR);
        std::fs::create_dir(&traces).unwrap();
        // The predictable names of this second and the next few.
        let now = realtime_ns();
        for s in 0..5u64 {
            let name = session_dir_name(now + s * 1_000_000_000);
            std::os::unix::fs::symlink(&victim, traces.join(name)).unwrap();
        }
        let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
        w.write(&EventRef::new(
            1,
            5,
            crate::PayloadRef::TraceEnd { exit_code: 0 },
        ))
        .unwrap();
        let name = w.session_name().to_owned();
        let dir = w.dir().to_path_buf();
        w.finalize(TraceSummary::default()).unwrap();
        assert!(is_empty_dir(&victim));
        assert!(name.ends_with("_2"), "{name}");
        let session = traces.join(&name);
        assert!(session.symlink_metadata().unwrap().file_type().is_dir());
        assert_eq!(dir.parent().unwrap(), session);
        assert!(dir.join(MANIFEST_FILE).is_file());
    }

    #[test]
    fn planted_labelled_session_and_pid_links_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = victim(tmp.path());
        let traces = tmp.path().join(TRACES_DIR);
        std::fs::create_dir(&traces).unwrap();
        std::os::unix::fs::symlink(&victim, traces.join("linked")).unwrap();
        let opts = |label: &str| WriterOptions {
            session_label: Some(label.into()),
            pid: 9,
            ..WriterOptions::default()
        };
        match TraceWriter::create(tmp.path(), opts("linked")) {
            Err(WriteError::NotARealDirectory(p)) => assert_eq!(p, traces.join("linked")),
            other => panic!("{other:?}"),
        }
        std::fs::create_dir(traces.join("real")).unwrap();
        std::os::unix::fs::symlink(&victim, traces.join("real/pid_9")).unwrap();
        assert!(matches!(
            TraceWriter::create(tmp.path(), opts("real")),
            Err(WriteError::TraceExists(_))
        ));
        assert!(is_empty_dir(&victim));
    }

    #[test]
    fn existing_trace_is_not_truncated() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            session_label: Some("s".into()),
            pid: 7,
            ..WriterOptions::default()
        };
        let mut w = TraceWriter::create(tmp.path(), opts.clone()).unwrap();
        w.write(&EventRef::new(
            1,
            5,
            crate::PayloadRef::TraceEnd { exit_code: 0 },
        ))
        .unwrap();
        w.flush().unwrap();
        let len = std::fs::metadata(w.events_path()).unwrap().len();
        assert!(len > 0);
        match TraceWriter::create(tmp.path(), opts) {
            Err(WriteError::TraceExists(p)) => assert_eq!(p, w.events_path()),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::metadata(w.events_path()).unwrap().len(), len);
    }

    #[test]
    fn sync_policy_by_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            sync: SyncPolicy {
                every_bytes: 30,
                every: None,
            },
            ..WriterOptions::default()
        };
        let mut w = TraceWriter::create(tmp.path(), opts).unwrap();
        w.write(&EventRef::new(
            1,
            5,
            crate::PayloadRef::TraceEnd { exit_code: 3 },
        ))
        .unwrap();
        assert_eq!(w.synced_len, 0);
        w.flush().unwrap();
        assert_eq!(w.synced_len, 0, "below the byte threshold");
        for _ in 0..3 {
            w.write(&EventRef::new(
                1,
                5,
                crate::PayloadRef::TraceEnd { exit_code: 3 },
            ))
            .unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.synced_len, w.bytes_flushed());
    }

    #[test]
    fn io_failure_poisons_cuts_back_and_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
        let ev = EventRef::new(1, 5, crate::PayloadRef::TraceEnd { exit_code: 3 });
        w.write(&ev).unwrap();
        w.write(&ev).unwrap();
        w.flush().unwrap();
        let good = w.bytes_flushed();
        for _ in 0..3 {
            w.write(&ev).unwrap();
        }
        // Emulate a write_all that got half a buffer out before failing.
        let mut other = OpenOptions::new()
            .append(true)
            .open(w.events_path())
            .unwrap();
        other.write_all(&w.buf[..w.buf.len() / 2]).unwrap();
        let err = w.fail("write", io::Error::other("disk full"));
        assert!(matches!(err, WriteError::Io { op: "write", .. }));
        assert_eq!(std::fs::metadata(w.events_path()).unwrap().len(), good);
        assert!(w.is_poisoned());
        assert!(matches!(w.write(&ev), Err(WriteError::Poisoned(_))));
        assert!(matches!(w.flush(), Err(WriteError::Poisoned(_))));
        let stats = w.finalize(TraceSummary::default()).unwrap();
        assert!(!stats.complete);
        assert_eq!(stats.event_count, 2);
        assert_eq!(stats.bytes_written, good);
        assert_eq!(stats.events_unwritten, 3);
        assert!(stats.write_error.as_deref().unwrap().contains("disk full"));
        let r = crate::TraceReader::open(&stats.dir).unwrap();
        let m = r.manifest().unwrap();
        assert_eq!(m.complete, Some(false));
        assert_eq!(m.events_unwritten, 3);
        assert!(m.write_error.is_some());
        assert_eq!(r.events().count(), 2);
    }

    #[test]
    fn drop_without_finalize_flushes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
        w.write(&EventRef::new(
            1,
            5,
            crate::PayloadRef::TraceEnd { exit_code: 3 },
        ))
        .unwrap();
        let path = w.events_path().to_owned();
        let accepted = w.bytes_accepted();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        drop(w);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), accepted);
        assert!(!path.with_file_name(MANIFEST_FILE).exists());
    }
}
