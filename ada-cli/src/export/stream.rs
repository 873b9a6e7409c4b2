//! Reading a trace for export in bounded memory: [`StreamedTrace`] opens a trace directory (its
//! manifest, if any, and `events.bin`) without reading the events, and [`ChunkedEvents`]
//! decodes `events.bin` from the file a chunk at a time.
//!
//! [`ada_atf::TraceReader`] reads the whole of `events.bin` into memory, which is fine for
//! `ada inspect` and small traces, not for a 13 M-event trace. [`ChunkedEvents`] holds at most
//! one chunk ([`CHUNK`]) plus one record (at most [`ReaderOptions::max_record_len`]), decodes
//! each chunk with [`ada_atf::Events`] and yields the same items at the same file offsets:
//! a record cut by the end of a chunk is completed from the next one; one cut by the end of
//! the file is a torn tail ([`ChunkedEvents::torn_tail`]), as is a run of zero bytes up to the
//! end of the file, however long (it is counted, not held).
//!
//! The file is opened as [`ada_atf`] opens it: without blocking (`O_NONBLOCK`), refused unless
//! the opened handle is a regular file, and read up to the length `fstat` reported then, so a
//! file another process appends to or truncates meanwhile reads as a prefix (a torn tail),
//! never a crash or a hang.

use std::fs::{File, OpenOptions};
use std::iter::FusedIterator;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ada_atf::{Event, Manifest, ManifestError, ReadError, ReaderOptions, TornTail, TraceDir};

use super::ExportError;
use crate::damage::EventSource;

/// Bytes read from `events.bin` at a time.
pub const CHUNK: usize = 1 << 20;

/// A trace opened for streaming (see the [module docs](self)).
#[derive(Debug)]
pub struct StreamedTrace {
    dir: PathBuf,
    manifest: Option<Manifest>,
    events_path: PathBuf,
    file: File,
    len: u64,
}

impl StreamedTrace {
    /// Finds the trace `path` names ([`TraceDir::find`]: the trace directory itself, or a
    /// session directory holding one) and opens its manifest (absent is fine, invalid is not)
    /// and `events.bin`.
    pub fn open(path: &Path) -> Result<StreamedTrace, ExportError> {
        let dir = TraceDir::find(path)?;
        let read_error = |source| ExportError::Read {
            path: dir.path().to_owned(),
            source,
        };
        let manifest = match Manifest::read(&dir.manifest_file()) {
            Ok(m) => Some(m),
            Err(ManifestError::Missing(_)) => None,
            Err(e) => return Err(read_error(e.into())),
        };
        let events_path = dir.events_file();
        let io = |op, source| ReadError::Io {
            op,
            path: events_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&events_path)
            .map_err(|e| read_error(io("open", e)))?;
        let meta = file.metadata().map_err(|e| read_error(io("stat", e)))?;
        if !meta.file_type().is_file() {
            return Err(read_error(ReadError::NotARegularFile {
                path: events_path.clone(),
                kind: "special file",
            }));
        }
        Ok(StreamedTrace {
            dir: dir.into_path(),
            manifest,
            events_path,
            file,
            len: meta.len(),
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

    /// `events.bin`'s length when it was opened (what is read of it at most).
    pub fn events_len(&self) -> u64 {
        self.len
    }

    /// The events, decoded from the start of `events.bin` a chunk at a time.
    pub fn events(&self) -> ChunkedEvents<'_> {
        ChunkedEvents::new(
            &self.file,
            self.events_path.clone(),
            self.len,
            ReaderOptions::default(),
        )
    }
}

/// `events.bin` decoded a chunk at a time (see the [module docs](self)).
#[derive(Debug)]
pub struct ChunkedEvents<'a> {
    file: &'a File,
    path: PathBuf,
    /// What is read of the file at most.
    len: u64,
    options: ReaderOptions,
    /// Bytes read at a time ([`CHUNK`]).
    chunk: usize,
    /// Bytes from the file, starting at file offset `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
    /// Bytes of `buf` already decoded.
    used: usize,
    /// Zero bytes taken out of the buffer, starting at file offset `zeros_at`, not yet known
    /// to be a zero-filled tail or single zero-length records.
    zeros: u64,
    zeros_at: u64,
    torn: Option<TornTail>,
    done: bool,
}

impl<'a> ChunkedEvents<'a> {
    /// Decodes the first `len` bytes of `file` (named `path` in errors).
    pub fn new(file: &'a File, path: PathBuf, len: u64, options: ReaderOptions) -> Self {
        ChunkedEvents {
            file,
            path,
            len,
            options: ReaderOptions {
                strict_tail: false,
                ..options
            },
            chunk: CHUNK,
            buf: Vec::new(),
            buf_start: 0,
            used: 0,
            zeros: 0,
            zeros_at: 0,
            torn: None,
            done: false,
        }
    }

    /// File offset of the first byte not in the buffer.
    fn read_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn at_eof(&self) -> bool {
        self.read_end() >= self.len
    }

    /// Drops what is decoded and reads the next chunk; `false` at the end of the file (or when
    /// the file ends early: it shrank since it was opened).
    fn refill(&mut self) -> Result<bool, ReadError> {
        self.buf.drain(..self.used);
        self.buf_start += self.used as u64;
        self.used = 0;
        let want = (self.len - self.read_end()).min(self.chunk as u64) as usize;
        if want == 0 {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let mut got = 0;
        while got < want {
            let at = self.read_end() - (want - got) as u64;
            match self.file.read_at(&mut self.buf[old + got..], at) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        op: "read",
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        self.buf.truncate(old + got);
        if got < want {
            // The file shrank: what is there is all there is.
            self.len = self.read_end();
        }
        Ok(got > 0)
    }

    /// `e` with its offset (relative to the chunk at `base`) made a file offset.
    fn at_file_offset(e: ReadError, base: u64) -> ReadError {
        match e {
            ReadError::VarintOverflow { offset } => ReadError::VarintOverflow {
                offset: offset + base,
            },
            ReadError::RecordTooLarge { offset, len, max } => ReadError::RecordTooLarge {
                offset: offset + base,
                len,
                max,
            },
            ReadError::Malformed { offset, source } => ReadError::Malformed {
                offset: offset + base,
                source,
            },
            other => other,
        }
    }

    fn stop(&mut self, item: Option<Result<Event, ReadError>>) -> Option<Result<Event, ReadError>> {
        self.done = true;
        item
    }
}

impl EventSource for ChunkedEvents<'_> {
    fn position(&self) -> u64 {
        if self.zeros > 0 {
            self.zeros_at
        } else {
            self.buf_start + self.used as u64
        }
    }

    fn torn_tail(&self) -> Option<TornTail> {
        self.torn
    }
}

impl Iterator for ChunkedEvents<'_> {
    type Item = Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let rest = &self.buf[self.used..];
            // Zeros held back are single zero-length records once something else follows.
            if self.zeros > 0 && rest.iter().any(|b| *b != 0) {
                self.zeros -= 1;
                self.zeros_at += 1;
                return Some(Ok(Event::default()));
            }
            let base = self.buf_start + self.used as u64;
            let mut events = ada_atf::Events::new(rest, &self.options);
            match events.next() {
                Some(Ok(ev)) => {
                    self.used += events.position() as usize;
                    return Some(Ok(ev));
                }
                Some(Err(e)) => {
                    let e = Self::at_file_offset(e, base);
                    return self.stop(Some(Err(e)));
                }
                None => {}
            }
            // The chunk holds no whole record at its start.
            let torn = events.torn_tail();
            if let Some(t) = torn.filter(|t| t.zero_filled && t.offset == 0) {
                // Zeros up to the end of the buffer: count them, keep looking.
                if self.zeros == 0 {
                    self.zeros_at = base;
                }
                self.zeros += t.bytes;
                self.used = self.buf.len();
            }
            if !self.at_eof() {
                match self.refill() {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => return self.stop(Some(Err(e))),
                }
            }
            // The end of the file.
            let at = self.buf_start + self.used as u64;
            if self.zeros > 0 {
                self.torn = Some(TornTail {
                    offset: self.zeros_at,
                    bytes: self.len.saturating_sub(self.zeros_at),
                    zero_filled: true,
                });
            } else if let Some(t) = torn.filter(|_| at < self.len) {
                self.torn = Some(TornTail {
                    offset: base + t.offset,
                    bytes: self.len - (base + t.offset),
                    zero_filled: t.zero_filled,
                });
            }
            return self.stop(None);
        }
    }
}

impl FusedIterator for ChunkedEvents<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split of a stream into chunks decodes as the whole does.
    #[test]
    fn chunks_decode_as_the_whole_file_does() {
        let mut bytes = Vec::new();
        for id in 1..=50u64 {
            let ev = Event {
                event_id: id,
                thread_id: (id % 3) as i32,
                ..Event::default()
            };
            let body = prost::Message::encode_to_vec(&ev);
            prost::encoding::encode_varint(body.len() as u64, &mut bytes);
            bytes.extend_from_slice(&body);
            if id == 20 {
                bytes.push(0); // a zero-length record
            }
        }
        let whole_len = bytes.len();
        for tail in [&b""[..], &[0, 0, 0][..], &[9, 1, 2][..]] {
            let mut data = bytes.clone();
            data.extend_from_slice(tail);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("events.bin");
            std::fs::write(&path, &data).unwrap();
            let file = File::open(&path).unwrap();
            let expected: Vec<Event> = ada_atf::Events::new(&data, &ReaderOptions::default())
                .map(Result::unwrap)
                .collect();
            let mut whole = ada_atf::Events::new(&data, &ReaderOptions::default());
            whole.by_ref().for_each(drop);
            for chunk in [1usize, 2, 3, 7, 64, 1 << 20] {
                let mut c = ChunkedEvents::new(
                    &file,
                    path.clone(),
                    data.len() as u64,
                    ReaderOptions::default(),
                );
                c.chunk = chunk;
                let got: Vec<Event> = c.by_ref().map(Result::unwrap).collect();
                assert_eq!(got.len(), expected.len(), "chunk {chunk}, tail {tail:?}");
                assert_eq!(got, expected, "chunk {chunk}, tail {tail:?}");
                assert_eq!(c.torn_tail(), whole.torn_tail(), "chunk {chunk}");
                assert!(c.position() as usize >= whole_len);
            }
        }
    }
}
