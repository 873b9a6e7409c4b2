//! What a readable trace lost: the [`Damage`] that `ada inspect` and `ada export` report.
//!
//! The reader ([`ada_atf::TraceReader`]) reads whatever a trace directory holds: a trace without
//! `trace.json`, an `events.bin` that ends in a torn tail or stops at a corrupt record. That is
//! what a user needs from a damaged trace, but the tools must never present such a trace as
//! whole. [`CheckedEvents`] decodes the event stream once, as the tools do anyway, and
//! [`CheckedEvents::finish`] compares what it found with what the manifest says, listing every
//! problem as a [`Damage`]:
//!
//! - the trace is incomplete: no `trace.json` ([`Damage::NoManifest`]), `complete: false`
//!   ([`Damage::NotComplete`]), or a write error recorded in it ([`Damage::WriteFailed`]);
//! - `events.bin` does not have the bytes `trace.json` says were written
//!   ([`Damage::MissingBytes`], [`Damage::ExtraBytes`]): a truncated file, an empty one;
//! - the stream ends in a torn tail, cut records or zero bytes ([`Damage::TornTail`]), or stops at
//!   a corrupt record ([`Damage::Corrupt`]): a truncated, zero-filled or bit-flipped file;
//! - zero bytes inside the stream ([`Damage::EmptyRecords`]), which ADA writers never write;
//! - fewer (or, for a complete trace, more) events than `trace.json` counts
//!   ([`Damage::MissingEvents`], [`Damage::ExtraEvents`]);
//! - `ada inspect` also reports an unreadable `window_metadata.jsonl`
//!   ([`Damage::WindowsUnreadable`]).
//!
//! An empty list means the trace is complete and its stream is what `trace.json` describes. Both
//! tools then exit 0; with any damage they still write their output (what was readable) and exit
//! [`EXIT_DAMAGED`].
//!
//! What cannot be found: ATF v4 records carry no checksum, so a flipped bit inside a field value
//! that still decodes (a timestamp, an address, a name) goes unnoticed. A flipped bit in a length
//! prefix or a field tag is found: it shows as a corrupt record, a torn tail, or counts that
//! disagree with `trace.json`.

use std::fmt;
use std::iter::FusedIterator;

use ada_atf::{Event, Events, Manifest, ReadError, TornTail, TraceReader};

/// What the controller recorded in `trace.json` about its own input, one line each: corrupt
/// input it found in the segment (`corruption`), events of threads that got no registry slot
/// (`unregisteredDrops`); a thread whose identity was refuted is among the corruption. (Threads
/// merely gone before the drain could check them are not warned about: `ada inspect` lists
/// them.) Unlike a
/// [`Damage`], none of this is damage to the trace files: the trace holds what was captured, and
/// these say what the capture could not hold or trust. `ada inspect` and `ada export` print
/// them as warnings and `ada export` puts them in `otherData` (`captureWarnings`); they do not
/// change the exit code.
///
/// Names in `corruption` come from the file: escape the lines before they reach a terminal.
pub fn capture_warnings(m: &Manifest) -> Vec<String> {
    let mut warnings = Vec::new();
    if m.corruption_total() > 0 {
        let counts: Vec<String> = m
            .corruption
            .iter()
            .filter(|&(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        warnings.push(format!(
            "the controller found corrupt input in the shared segment (counted, never followed; \
             records in corrupt chunks are lost): {}",
            counts.join(", ")
        ));
    }
    if m.unregistered_drops > 0 {
        warnings.push(format!(
            "{} events were dropped by threads that got no registry slot (raise ada trace \
             --threads)",
            m.unregistered_drops
        ));
    }
    warnings
}

/// The exit code of `ada inspect` and `ada export` when the trace is damaged or incomplete (any
/// [`Damage`]): the summary or the export was still written, holding what was readable, and
/// the damage is listed on stderr. 0 is a complete, undamaged trace; 1 an error (nothing
/// written); 2 a usage error.
pub const EXIT_DAMAGED: u8 = 3;

/// One way a trace is damaged or incomplete; its `Display` says what was lost, in one line.
///
/// Strings in it (a write error, a reader error) may quote the trace: escape them
/// ([`crate::escape`]) before they reach a terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// No `trace.json`: the writer never finalized.
    NoManifest,
    /// `trace.json` says `complete: false`.
    NotComplete,
    /// `trace.json` records a write error and/or events that never reached `events.bin`.
    WriteFailed {
        /// The manifest's `writeError`.
        error: Option<String>,
        /// The manifest's `eventsUnwritten`.
        events_unwritten: u64,
    },
    /// `events.bin` is shorter than the manifest's `bytesWritten`.
    MissingBytes {
        /// `bytesWritten`.
        expected: u64,
        /// The size of `events.bin`.
        actual: u64,
    },
    /// `events.bin` is longer than the `bytesWritten` of a complete manifest.
    ExtraBytes {
        /// `bytesWritten`.
        expected: u64,
        /// The size of `events.bin`.
        actual: u64,
    },
    /// The stream ends in bytes that are not a whole record (cut, or zero bytes).
    TornTail(TornTail),
    /// The stream stops at a corrupt record; nothing after it is read.
    Corrupt {
        /// Offset of the corrupt record.
        offset: u64,
        /// Bytes from that offset to the end of `events.bin`, not read.
        unread: u64,
        /// What the reader reported.
        error: String,
    },
    /// Zero-length records (zero bytes where a record should start) before the end.
    EmptyRecords {
        /// How many.
        count: u64,
        /// Offset of the first.
        first_offset: u64,
    },
    /// Fewer events read than the manifest's `eventCount`.
    MissingEvents {
        /// `eventCount`.
        expected: u64,
        /// Events read.
        read: u64,
    },
    /// More events read than the `eventCount` of a complete manifest.
    ExtraEvents {
        /// `eventCount`.
        expected: u64,
        /// Events read.
        read: u64,
    },
    /// `window_metadata.jsonl` exists but cannot be read (reported by `ada inspect`).
    WindowsUnreadable {
        /// What the reader reported.
        error: String,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoManifest => f.write_str(
                "no trace.json: the writer did not finish (it crashed, was killed, or is still \
                 writing); events it had not written yet, and the thread names, symbol names and \
                 counters trace.json holds, are missing",
            ),
            Damage::NotComplete => f.write_str(
                "trace.json says complete: false: the trace was cut short (its writer or \
                 controller failed); events after the cut are missing",
            ),
            Damage::WriteFailed {
                error,
                events_unwritten,
            } => {
                match error {
                    Some(e) => write!(f, "the writer failed: {e}")?,
                    None => f.write_str("the writer failed")?,
                }
                write!(f, "; {events_unwritten} events never reached events.bin")
            }
            Damage::MissingBytes { expected, actual } => write!(
                f,
                "events.bin has {actual} bytes but trace.json says {expected} were written: \
                 {} bytes are missing",
                expected - actual
            ),
            Damage::ExtraBytes { expected, actual } => write!(
                f,
                "events.bin has {actual} bytes but trace.json says {expected} were written: \
                 {} bytes more than the trace was finalized with",
                actual - expected
            ),
            Damage::TornTail(t) => write!(
                f,
                "torn tail: the last {} bytes of events.bin (from offset {}) are {}, not a \
                 whole event; they were not read",
                t.bytes,
                t.offset,
                if t.zero_filled {
                    "zero bytes"
                } else {
                    "a cut record"
                }
            ),
            Damage::Corrupt {
                offset,
                unread,
                error,
            } => write!(
                f,
                "corrupt record at offset {offset} of events.bin: {error}; the {unread} bytes \
                 from there to the end were not read"
            ),
            Damage::EmptyRecords {
                count,
                first_offset,
            } => write!(
                f,
                "{count} zero-length record(s) in events.bin, the first at offset \
                 {first_offset}: zero bytes where records should be (ADA writers never write \
                 them)"
            ),
            Damage::MissingEvents { expected, read } => write!(
                f,
                "{} events missing: trace.json counts {expected}, {read} were read",
                expected - read
            ),
            Damage::ExtraEvents { expected, read } => write!(
                f,
                "trace.json counts {expected} events but {read} were read"
            ),
            Damage::WindowsUnreadable { error } => {
                write!(f, "window_metadata.jsonl is unreadable: {error}")
            }
        }
    }
}

/// How a trace's event stream ended and what the trace lost ([`CheckedEvents::finish`]).
#[derive(Debug)]
pub struct StreamOutcome {
    /// Whole events decoded (zero-length records included).
    pub events_read: u64,
    /// The torn tail the stream ended with, if any.
    pub torn_tail: Option<TornTail>,
    /// The corrupt record the stream stopped at, if any.
    pub stream_error: Option<ReadError>,
    /// Everything damaged or missing, in the order of [`Damage`]'s variants; empty for a
    /// complete, undamaged trace.
    pub damage: Vec<Damage>,
}

/// The events of a trace, decoded one at a time ([`TraceReader::events`]), keeping the books
/// [`finish`](CheckedEvents::finish) needs. Yields each whole event; ends at the end of the
/// stream, at a torn tail, or at a corrupt record.
#[derive(Debug)]
pub struct CheckedEvents<S> {
    events: S,
    len: u64,
    events_read: u64,
    empty_records: u64,
    first_empty: Option<u64>,
    error: Option<(u64, ReadError)>,
}

impl<'a> CheckedEvents<Events<'a>> {
    /// The events of `reader`'s `events.bin`.
    pub fn new(reader: &'a TraceReader) -> Self {
        CheckedEvents::from_source(reader.events(), reader.events_bytes().len() as u64)
    }

    /// Reads the rest of the stream (without keeping it) and compares it with `reader`'s
    /// manifest. `reader` must be the one given to [`new`](CheckedEvents::new).
    pub fn finish(self, reader: &TraceReader) -> StreamOutcome {
        self.finish_with(reader.manifest())
    }
}

/// A decoder of `events.bin` that [`CheckedEvents`] can check: [`ada_atf::Events`] over the
/// bytes in memory, or [`crate::export::stream::ChunkedEvents`] over the file.
pub trait EventSource: Iterator<Item = Result<Event, ReadError>> {
    /// File offset of the next record.
    fn position(&self) -> u64;
    /// The torn tail found at the end, if any (known once the source has ended).
    fn torn_tail(&self) -> Option<TornTail>;
}

impl EventSource for Events<'_> {
    fn position(&self) -> u64 {
        Events::position(self)
    }

    fn torn_tail(&self) -> Option<TornTail> {
        Events::torn_tail(self)
    }
}

impl<S: EventSource> CheckedEvents<S> {
    /// The events `source` decodes from an `events.bin` of `len` bytes.
    pub fn from_source(source: S, len: u64) -> Self {
        CheckedEvents {
            events: source,
            len,
            events_read: 0,
            empty_records: 0,
            first_empty: None,
            error: None,
        }
    }

    /// Whole events yielded so far.
    pub fn events_read(&self) -> u64 {
        self.events_read
    }

    /// Offset in `events.bin` of the next record (for progress).
    pub fn position(&self) -> u64 {
        self.events.position()
    }

    /// Reads the rest of the stream (without keeping it) and compares it with the trace's
    /// `manifest` (`None`: the trace has none).
    pub fn finish_with(mut self, manifest: Option<&Manifest>) -> StreamOutcome {
        for _ in self.by_ref() {}
        let torn_tail = self.events.torn_tail();
        let read = self.events_read;
        let actual = self.len;
        let mut damage = Vec::new();
        match manifest {
            None => damage.push(Damage::NoManifest),
            Some(m) => {
                if !m.is_complete() {
                    damage.push(Damage::NotComplete);
                }
                if m.write_error.is_some() || m.events_unwritten > 0 {
                    damage.push(Damage::WriteFailed {
                        error: m.write_error.clone(),
                        events_unwritten: m.events_unwritten,
                    });
                }
                if actual < m.bytes_written {
                    damage.push(Damage::MissingBytes {
                        expected: m.bytes_written,
                        actual,
                    });
                } else if actual > m.bytes_written && m.is_complete() {
                    damage.push(Damage::ExtraBytes {
                        expected: m.bytes_written,
                        actual,
                    });
                }
            }
        }
        if let Some(t) = torn_tail {
            damage.push(Damage::TornTail(t));
        }
        if let Some((offset, e)) = &self.error {
            damage.push(Damage::Corrupt {
                offset: *offset,
                unread: actual.saturating_sub(*offset),
                error: e.to_string(),
            });
        }
        if let Some(first_offset) = self.first_empty {
            damage.push(Damage::EmptyRecords {
                count: self.empty_records,
                first_offset,
            });
        }
        if let Some(m) = manifest {
            if read < m.event_count {
                damage.push(Damage::MissingEvents {
                    expected: m.event_count,
                    read,
                });
            } else if read > m.event_count && m.is_complete() {
                damage.push(Damage::ExtraEvents {
                    expected: m.event_count,
                    read,
                });
            }
        }
        StreamOutcome {
            events_read: read,
            torn_tail,
            stream_error: self.error.map(|(_, e)| e),
            damage,
        }
    }
}

impl<S: EventSource> Iterator for CheckedEvents<S> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let offset = self.events.position();
        match self.events.next()? {
            Ok(event) => {
                self.events_read += 1;
                // A zero-length record decodes as the default event; every event an ADA writer
                // writes has at least an id.
                if event == Event::default() {
                    self.empty_records += 1;
                    self.first_empty.get_or_insert(offset);
                }
                Some(event)
            }
            Err(e) => {
                // The reader ends after its first error (`Events` is fused).
                self.error = Some((offset, e));
                None
            }
        }
    }
}

impl<S: EventSource> FusedIterator for CheckedEvents<S> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_damage_says_what_was_lost() {
        let cases = [
            (Damage::NoManifest, "no trace.json"),
            (Damage::NotComplete, "complete: false"),
            (
                Damage::WriteFailed {
                    error: Some("disk full".into()),
                    events_unwritten: 7,
                },
                "the writer failed: disk full; 7 events never reached events.bin",
            ),
            (
                Damage::MissingBytes {
                    expected: 100,
                    actual: 40,
                },
                "60 bytes are missing",
            ),
            (
                Damage::ExtraBytes {
                    expected: 40,
                    actual: 100,
                },
                "60 bytes more",
            ),
            (
                Damage::TornTail(TornTail {
                    offset: 10,
                    bytes: 3,
                    zero_filled: true,
                }),
                "the last 3 bytes of events.bin (from offset 10) are zero bytes",
            ),
            (
                Damage::Corrupt {
                    offset: 5,
                    unread: 9,
                    error: "bad".into(),
                },
                "corrupt record at offset 5 of events.bin: bad; the 9 bytes",
            ),
            (
                Damage::EmptyRecords {
                    count: 2,
                    first_offset: 4,
                },
                "2 zero-length record(s) in events.bin, the first at offset 4",
            ),
            (
                Damage::MissingEvents {
                    expected: 11,
                    read: 4,
                },
                "7 events missing: trace.json counts 11, 4 were read",
            ),
            (
                Damage::ExtraEvents {
                    expected: 1,
                    read: 4,
                },
                "trace.json counts 1 events but 4 were read",
            ),
            (
                Damage::WindowsUnreadable { error: "x".into() },
                "window_metadata.jsonl is unreadable: x",
            ),
        ];
        for (damage, needle) in cases {
            let text = damage.to_string();
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
            assert!(!text.contains('\n'), "one line: {text:?}");
        }
    }
}
