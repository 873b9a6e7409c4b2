//! [`TraceReader`] and [`Events`]: reading ATF v4 traces, untrusted input included.
//!
//! `events.bin` is read into memory with bounded reads (never memory-mapped: a mapped file that
//! another process truncates raises `SIGBUS`) and decoded one record at a time by [`Events`],
//! which borrows the bytes and allocates only the decoded [`Event`]. Every defect has a typed [`ReadError`]; after the first error the iterator ends,
//! so it always terminates (each item consumes at least one byte) and never panics.
//!
//! A **torn tail** — the last record's length prefix or body cut short by the end of the file,
//! or a tail of zero bytes where a record should start — is what a killed writer or a power cut
//! leaves. It is not an error: the iterator ends after the last whole record and
//! [`Events::torn_tail`] says where the torn bytes are. [`ReaderOptions::strict_tail`] turns it
//! into an error item instead.
//!
//! **Order.** Events come in the order the writer wrote them (their ids, 1, 2, ...), which is
//! not necessarily timestamp order, not even within one thread: a controller may hand a
//! thread's events on out of time order (ADA's drain delivers events that went through its
//! shared fallback ring, such as those a thread spilled when its rings were full, when it reads
//! that ring, possibly before older events still in the thread's rings). A consumer that needs
//! a thread's events in time order sorts them by timestamp (stable, to keep equal times in
//! stream order), as `ada export`'s Chrome exporter does for call/return slices.
//!
//! Every trace file is opened with `O_NONBLOCK` and checked with `fstat` on the opened handle:
//! a FIFO, device or directory in place of `trace.json`, `events.bin` or `window_metadata.jsonl`
//! is a typed error ([`ReadError::NotARegularFile`], [`ManifestError::NotARegularFile`]) and
//! never blocks. `events.bin` is read up to the length `fstat` reported, so one that a writer
//! is still appending to is read as a consistent prefix, and one that another process truncates
//! during the read ends early: a torn tail (or [`ReadError::SizeMismatch`] against a complete
//! manifest), never a crash. Once opened, a [`TraceReader`] holds its own copy of the bytes, so
//! later changes to the file do not affect it. `trace.json` and `window_metadata.jsonl` have size
//! limits ([`MAX_MANIFEST_LEN`](crate::MAX_MANIFEST_LEN),
//! [`MAX_WINDOWS_FILE_LEN`]) checked before they are read.
//!
//! [`ManifestError::NotARegularFile`]: crate::ManifestError::NotARegularFile

use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::encode::DEFAULT_MAX_RECORD_LEN;
use crate::error::ReadError;
use crate::fsread::{FileFailure, open_regular, read_regular_limited, read_up_to};
use crate::manifest::Manifest;
use crate::schema::Event;
use crate::window::{MAX_WINDOWS_FILE_LEN, PersistenceWindow, parse_window_lines};
use crate::writer::{EVENTS_FILE, MANIFEST_FILE, WINDOWS_FILE};

/// How to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderOptions {
    /// A length prefix above this is [`ReadError::RecordTooLarge`]. Default
    /// [`DEFAULT_MAX_RECORD_LEN`] (1 MiB).
    pub max_record_len: usize,
    /// Report a torn tail as an error item ([`ReadError::TruncatedVarint`],
    /// [`ReadError::TruncatedRecord`], [`ReadError::ZeroFilledTail`]) instead of ending quietly.
    /// Default `false`.
    pub strict_tail: bool,
    /// No longer has any effect; kept so that existing callers compile. `events.bin` is always
    /// read with bounded reads into memory owned by the reader: a memory-mapped file that another
    /// process truncates raises `SIGBUS`.
    pub use_mmap: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            strict_tail: false,
            use_mmap: true,
        }
    }
}

/// Where a torn last record starts and how many bytes of it there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the torn record (= the length of the readable prefix of the file).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    /// Whether those bytes are all zero (a zero-filled tail rather than a cut record).
    pub zero_filled: bool,
}

/// Streaming decoder over the bytes of an `events.bin`.
#[derive(Clone, Debug)]
pub struct Events<'a> {
    data: &'a [u8],
    pos: usize,
    max_record_len: usize,
    strict_tail: bool,
    done: bool,
    torn: Option<TornTail>,
    /// End of the run of zero bytes that starts at or before `pos`, once computed.
    zero_run_end: usize,
}

impl<'a> Events<'a> {
    /// Decodes `data` (the contents of an `events.bin`).
    pub fn new(data: &'a [u8], options: &ReaderOptions) -> Self {
        Events {
            data,
            pos: 0,
            max_record_len: options.max_record_len,
            strict_tail: options.strict_tail,
            done: false,
            torn: None,
            zero_run_end: 0,
        }
    }

    /// Offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// Whether the iterator has ended.
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// The torn tail found at the end, if any (known once the iterator has returned `None`).
    pub fn torn_tail(&self) -> Option<TornTail> {
        self.torn
    }

    fn stop(&mut self, item: Option<Result<Event, ReadError>>) -> Option<Result<Event, ReadError>> {
        self.done = true;
        item
    }

    fn torn(
        &mut self,
        start: usize,
        zero_filled: bool,
        strict: ReadError,
    ) -> Option<Result<Event, ReadError>> {
        if self.strict_tail {
            return self.stop(Some(Err(strict)));
        }
        self.torn = Some(TornTail {
            offset: start as u64,
            bytes: (self.data.len() - start) as u64,
            zero_filled,
        });
        self.stop(None)
    }
}

impl Iterator for Events<'_> {
    type Item = Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let data = self.data;
        let start = self.pos;
        if start >= data.len() {
            return self.stop(None);
        }
        let offset = start as u64;

        // A zero byte is a zero-length record, which ADA writers never produce (every event has
        // an id). A run of zeros up to the end of the file is a zero-filled tail.
        if data[start] == 0 {
            if self.zero_run_end <= start {
                self.zero_run_end = data[start..]
                    .iter()
                    .position(|b| *b != 0)
                    .map_or(data.len(), |i| start + i);
            }
            if self.zero_run_end == data.len() {
                let bytes = (data.len() - start) as u64;
                return self.torn(start, true, ReadError::ZeroFilledTail { offset, bytes });
            }
            self.pos = start + 1;
            return Some(Ok(Event::default()));
        }

        // Length prefix: base-128 varint, at most 10 bytes, at most u64::MAX.
        let mut len: u64 = 0;
        let mut i = 0usize;
        loop {
            let Some(&b) = data.get(start + i) else {
                return self.torn(start, false, ReadError::TruncatedVarint { offset });
            };
            if i == 9 && b > 1 {
                return self.stop(Some(Err(ReadError::VarintOverflow { offset })));
            }
            len |= u64::from(b & 0x7f) << (7 * i);
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        if len > self.max_record_len as u64 {
            return self.stop(Some(Err(ReadError::RecordTooLarge {
                offset,
                len,
                max: self.max_record_len as u64,
            })));
        }
        let body_start = start + i;
        let available = (data.len() - body_start) as u64;
        if len > available {
            return self.torn(
                start,
                false,
                ReadError::TruncatedRecord {
                    offset,
                    len,
                    available,
                },
            );
        }
        // len <= available <= usize::MAX, so the cast is exact.
        let body_end = body_start + len as usize;
        self.pos = body_end;
        match Event::decode(&data[body_start..body_end]) {
            Ok(event) => Some(Ok(event)),
            Err(source) => self.stop(Some(Err(ReadError::Malformed { offset, source }))),
        }
    }
}

impl FusedIterator for Events<'_> {}

/// An opened trace directory (`pid_<pid>`).
pub struct TraceReader {
    dir: PathBuf,
    manifest: Option<Manifest>,
    bytes: Vec<u8>,
    options: ReaderOptions,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .field("events_len", &self.events_bytes().len())
            .field("options", &self.options)
            .finish()
    }
}

impl TraceReader {
    /// Opens a finalized trace: `trace.json` must exist and validate, and if it says the trace
    /// is complete, `events.bin` must have exactly `bytesWritten` bytes.
    pub fn open(dir: impl AsRef<Path>) -> Result<TraceReader, ReadError> {
        TraceReader::open_with(dir, ReaderOptions::default())
    }

    /// [`TraceReader::open`] with options.
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: ReaderOptions,
    ) -> Result<TraceReader, ReadError> {
        let dir = dir.as_ref();
        let manifest = Manifest::read(&dir.join(MANIFEST_FILE))?;
        let reader = TraceReader::open_parts(dir, Some(manifest), options)?;
        if let Some(m) = &reader.manifest {
            let actual = reader.events_bytes().len() as u64;
            if m.is_complete() && m.bytes_written != actual {
                return Err(ReadError::SizeMismatch {
                    manifest: m.bytes_written,
                    actual,
                });
            }
        }
        Ok(reader)
    }

    /// Opens a trace that may have no manifest yet (its writer crashed or is still running).
    /// A manifest that exists must still validate.
    pub fn open_incomplete(dir: impl AsRef<Path>) -> Result<TraceReader, ReadError> {
        TraceReader::open_incomplete_with(dir, ReaderOptions::default())
    }

    /// [`TraceReader::open_incomplete`] with options.
    pub fn open_incomplete_with(
        dir: impl AsRef<Path>,
        options: ReaderOptions,
    ) -> Result<TraceReader, ReadError> {
        let dir = dir.as_ref();
        let manifest = match Manifest::read(&dir.join(MANIFEST_FILE)) {
            Ok(m) => Some(m),
            Err(crate::ManifestError::Missing(_)) => None,
            Err(e) => return Err(e.into()),
        };
        TraceReader::open_parts(dir, manifest, options)
    }

    fn open_parts(
        dir: &Path,
        manifest: Option<Manifest>,
        options: ReaderOptions,
    ) -> Result<TraceReader, ReadError> {
        let path = dir.join(EVENTS_FILE);
        let error = |failure| file_error(&path, failure);
        let (file, len) = open_regular(&path).map_err(error)?;
        let bytes = read_up_to(&file, len).map_err(error)?;
        Ok(TraceReader {
            dir: dir.to_owned(),
            manifest,
            bytes,
            options,
        })
    }

    /// The trace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest, `None` for an unfinalized trace.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Whether a manifest exists and marks the trace complete.
    pub fn is_complete(&self) -> bool {
        self.manifest.as_ref().is_some_and(Manifest::is_complete)
    }

    /// The raw contents of `events.bin`.
    pub fn events_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A streaming iterator over the events.
    pub fn events(&self) -> Events<'_> {
        Events::new(self.events_bytes(), &self.options)
    }

    /// The persistence windows: from `window_metadata.jsonl` when it exists, else from the
    /// manifest, else none.
    pub fn windows(&self) -> Result<Vec<PersistenceWindow>, ReadError> {
        let path = self.dir.join(WINDOWS_FILE);
        match read_regular_limited(&path, MAX_WINDOWS_FILE_LEN) {
            Ok(bytes) => parse_window_lines(&bytes),
            Err(e) if e.is_not_found() => Ok(self
                .manifest
                .as_ref()
                .map(|m| m.windows.clone())
                .unwrap_or_default()),
            Err(e) => Err(file_error(&path, e)),
        }
    }
}

fn file_error(path: &Path, failure: FileFailure) -> ReadError {
    let path = path.to_owned();
    match failure {
        FileFailure::Io { op, source } => ReadError::Io { op, path, source },
        FileFailure::NotRegular { kind } => ReadError::NotARegularFile { path, kind },
        FileFailure::TooLarge { len, max } => ReadError::FileTooLarge { path, len, max },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{EventRef, PayloadRef, encode_delimited};

    fn stream(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for id in 1..=n {
            starts.push(out.len());
            let regs = [("rax", id)];
            let ev = EventRef::new(
                1,
                id * 10,
                PayloadRef::FunctionReturn {
                    symbol: "f",
                    address: id,
                    return_registers: &regs,
                },
            );
            encode_delimited(id, &ev, &mut out).unwrap();
        }
        (out, starts)
    }

    fn collect(
        data: &[u8],
        opts: ReaderOptions,
    ) -> (Vec<Result<Event, ReadError>>, Option<TornTail>) {
        let mut it = Events::new(data, &opts);
        let items: Vec<_> = it.by_ref().collect();
        assert!(it.next().is_none(), "fused");
        (items, it.torn_tail())
    }

    #[test]
    fn empty_input_is_an_empty_stream() {
        let (items, torn) = collect(&[], ReaderOptions::default());
        assert!(items.is_empty());
        assert_eq!(torn, None);
    }

    #[test]
    fn whole_stream_reads_back() {
        let (data, _) = stream(5);
        let (items, torn) = collect(&data, ReaderOptions::default());
        let ids: Vec<u64> = items.into_iter().map(|e| e.unwrap().event_id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(torn, None);
    }

    #[test]
    fn torn_prefix_and_body_are_tails_or_strict_errors() {
        let (data, starts) = stream(3);
        // Cut inside the last body.
        let cut = &data[..data.len() - 1];
        let (items, torn) = collect(cut, ReaderOptions::default());
        assert_eq!(items.len(), 2);
        assert_eq!(
            torn,
            Some(TornTail {
                offset: starts[2] as u64,
                bytes: (cut.len() - starts[2]) as u64,
                zero_filled: false
            })
        );
        let strict = ReaderOptions {
            strict_tail: true,
            ..ReaderOptions::default()
        };
        let (items, torn) = collect(cut, strict);
        assert!(matches!(
            items.last(),
            Some(Err(ReadError::TruncatedRecord { .. }))
        ));
        assert_eq!(torn, None);
        // A multi-byte prefix cut after its first byte.
        let mut big = data.clone();
        big.extend_from_slice(&[0x80 | 5, 0x80]);
        let (items, torn) = collect(&big, ReaderOptions::default());
        assert_eq!(items.len(), 3);
        assert_eq!(torn.unwrap().bytes, 2);
        let (items, _) = collect(&big, strict);
        assert!(matches!(
            items.last(),
            Some(Err(ReadError::TruncatedVarint { offset })) if *offset == data.len() as u64
        ));
    }

    #[test]
    fn zero_filled_tail_and_empty_records() {
        let (mut data, _) = stream(2);
        let end = data.len();
        data.extend_from_slice(&[0; 100]);
        let (items, torn) = collect(&data, ReaderOptions::default());
        assert_eq!(items.len(), 2);
        assert_eq!(
            torn,
            Some(TornTail {
                offset: end as u64,
                bytes: 100,
                zero_filled: true
            })
        );
        let strict = ReaderOptions {
            strict_tail: true,
            ..ReaderOptions::default()
        };
        let (items, _) = collect(&data, strict);
        assert!(matches!(
            items.last(),
            Some(Err(ReadError::ZeroFilledTail { bytes: 100, .. }))
        ));
        // Zero-length records followed by a real one are valid (empty) events.
        let (one, _) = stream(1);
        let mut data = vec![0, 0, 0];
        data.extend_from_slice(&one);
        let (items, torn) = collect(&data, ReaderOptions::default());
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap(), &Event::default());
        assert_eq!(items[3].as_ref().unwrap().event_id, 1);
        assert_eq!(torn, None);
    }

    #[test]
    fn varint_overflow() {
        // Ten bytes whose last has more than one bit: > u64::MAX.
        let data = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00,
        ];
        let (items, _) = collect(&data, ReaderOptions::default());
        assert!(matches!(
            items[..],
            [Err(ReadError::VarintOverflow { offset: 0 })]
        ));
        // Eleven bytes of continuation.
        let data = [0x80; 11];
        let (items, _) = collect(&data, ReaderOptions::default());
        assert!(matches!(
            items[..],
            [Err(ReadError::VarintOverflow { offset: 0 })]
        ));
        // u64::MAX exactly is a valid varint, but too large a record.
        let data = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let (items, _) = collect(&data, ReaderOptions::default());
        assert!(matches!(
            items[..],
            [Err(ReadError::RecordTooLarge { len: u64::MAX, .. })]
        ));
    }

    #[test]
    fn record_limit_is_configurable() {
        let (data, _) = stream(1);
        let small = ReaderOptions {
            max_record_len: 3,
            ..ReaderOptions::default()
        };
        let (items, _) = collect(&data, small);
        assert!(matches!(
            items[..],
            [Err(ReadError::RecordTooLarge {
                offset: 0,
                max: 3,
                ..
            })]
        ));
    }

    #[test]
    fn malformed_body_stops_the_stream() {
        let (mut data, starts) = stream(3);
        // Field 1 with wire type 7 (invalid) as the first byte of the second body.
        data[starts[1] + 1] = 0x0f;
        let (items, torn) = collect(&data, ReaderOptions::default());
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(
            &items[1],
            Err(ReadError::Malformed { offset, .. }) if *offset == starts[1] as u64
        ));
        assert_eq!(torn, None);
    }
}
