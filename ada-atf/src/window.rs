//! Persistence-window metadata: the record, its JSON-lines form and a reader.
//!
//! The writer appends one JSON object per dumped window to `window_metadata.jsonl` beside
//! `events.bin`, keys in this order:
//!
//! ```text
//! {"window_id":3,"start_ns":…,"end_ns":…,"first_mark_ns":…,"last_event_ns":…,"total_events":…,"marked_events":…,"mark_seen":true,
//!  "thread_id":2,"last_mark_ns":…,"trigger":0,"pre_roll_events":…,"discarded_events":…,"over_budget_events":…}
//! ```
//!
//! The keys after `mark_seen` were added with selective persistence (the controller's flight
//! recorder): each is left out when it is 0 (`trigger` when there is none: an explicit mark),
//! and read as 0 (`None`) when absent, so older files still read and older lines are written
//! byte for byte as before.
//!
//! and repeats the list under the manifest key `windows` (same object shape). Callers may also
//! put a [`WindowMark`] event in the stream, before the window's
//! events, with [`PayloadRef::WindowMark`](crate::PayloadRef::WindowMark).

use serde::{Deserialize, Serialize};

use crate::error::ReadError;
use crate::schema::WindowMark;

/// The longest `window_metadata.jsonl` [`TraceReader::windows`](crate::TraceReader::windows)
/// accepts: 256 MiB (over a million windows). A longer file is
/// [`ReadError::FileTooLarge`], refused before any of it is read.
pub const MAX_WINDOWS_FILE_LEN: u64 = 256 << 20;

/// One persistence window (a dumped detail ring and why it was kept). All times are trace-clock
/// nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersistenceWindow {
    /// Window id, from 1 per thread.
    pub window_id: u64,
    /// Start of the window.
    pub start_ns: u64,
    /// End of the window (`max(last event, last mark)` when it was closed).
    pub end_ns: u64,
    /// First marked event, 0 when none.
    pub first_mark_ns: u64,
    /// Last event seen in the window.
    pub last_event_ns: u64,
    /// Events in the window.
    pub total_events: u64,
    /// Marked events in the window.
    pub marked_events: u64,
    /// Whether a mark was seen since the previous dump.
    pub mark_seen: bool,
    /// The session thread number of the window's thread (0 = unknown).
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub thread_id: i32,
    /// The window's latest mark (0 = unknown); its post-roll ran from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_mark_ns: u64,
    /// Index of the trigger that opened the window in the session's trigger set (the spec
    /// `ada trace --trigger` was given in that position); `None` for an explicit mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<u32>,
    /// Of `total_events`, those persisted from the pre-roll before the first mark.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pre_roll_events: u64,
    /// Detail events of the thread discarded between the previous window (or the thread's
    /// start) and this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub discarded_events: u64,
    /// Of `discarded_events`, those a duration pre-roll wanted but the controller's per-thread
    /// budget could not hold.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub over_budget_events: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl From<PersistenceWindow> for WindowMark {
    fn from(w: PersistenceWindow) -> Self {
        WindowMark {
            window_id: w.window_id,
            start_ns: w.start_ns,
            end_ns: w.end_ns,
            first_mark_ns: w.first_mark_ns,
            last_event_ns: w.last_event_ns,
            total_events: w.total_events,
            marked_events: w.marked_events,
            mark_seen: w.mark_seen,
            thread_id: w.thread_id,
            last_mark_ns: w.last_mark_ns,
            trigger: w.trigger,
            pre_roll_events: w.pre_roll_events,
            discarded_events: w.discarded_events,
            over_budget_events: w.over_budget_events,
        }
    }
}

impl From<WindowMark> for PersistenceWindow {
    fn from(w: WindowMark) -> Self {
        PersistenceWindow {
            window_id: w.window_id,
            start_ns: w.start_ns,
            end_ns: w.end_ns,
            first_mark_ns: w.first_mark_ns,
            last_event_ns: w.last_event_ns,
            total_events: w.total_events,
            marked_events: w.marked_events,
            mark_seen: w.mark_seen,
            thread_id: w.thread_id,
            last_mark_ns: w.last_mark_ns,
            trigger: w.trigger,
            pre_roll_events: w.pre_roll_events,
            discarded_events: w.discarded_events,
            over_budget_events: w.over_budget_events,
        }
    }
}

/// Appends the JSON line for `w` (with its trailing `\n`) to `out`.
pub fn window_json_line(w: &PersistenceWindow, out: &mut Vec<u8>) {
    // Serializing a struct of integers and a bool into a Vec cannot fail.
    serde_json::to_writer(&mut *out, w).expect("PersistenceWindow serializes infallibly");
    out.push(b'\n');
}

/// Parses the contents of a `window_metadata.jsonl` file.
///
/// Blank lines are skipped. A last line without its terminating newline that does not parse is
/// a torn append (the writer was killed mid-line) and is ignored; any other line that does not
/// parse is a [`ReadError::WindowMetadata`].
pub fn parse_window_lines(bytes: &[u8]) -> Result<Vec<PersistenceWindow>, ReadError> {
    let mut windows = Vec::new();
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let (line, terminated, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = next;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<PersistenceWindow>(line) {
            Ok(w) => windows.push(w),
            Err(_) if !terminated => break,
            Err(source) => {
                return Err(ReadError::WindowMetadata {
                    line: line_no,
                    source,
                });
            }
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PersistenceWindow {
        PersistenceWindow {
            window_id: 3,
            start_ns: 10,
            end_ns: 20,
            first_mark_ns: 12,
            last_event_ns: 19,
            total_events: 255,
            marked_events: 2,
            mark_seen: true,
            ..PersistenceWindow::default()
        }
    }

    fn flight_recorder_sample() -> PersistenceWindow {
        PersistenceWindow {
            thread_id: 2,
            last_mark_ns: 15,
            trigger: Some(0),
            pre_roll_events: 4,
            discarded_events: 1_000,
            over_budget_events: 7,
            ..sample()
        }
    }

    #[test]
    fn additive_keys_are_written_after_the_old_ones_and_read_back() {
        let mut out = Vec::new();
        window_json_line(&flight_recorder_sample(), &mut out);
        let line = std::str::from_utf8(&out).unwrap();
        assert!(
            line.ends_with(
                "\"mark_seen\":true,\"thread_id\":2,\"last_mark_ns\":15,\"trigger\":0,\
                 \"pre_roll_events\":4,\"discarded_events\":1000,\"over_budget_events\":7}\n"
            ),
            "{line}"
        );
        assert_eq!(
            parse_window_lines(&out).unwrap(),
            vec![flight_recorder_sample()]
        );
        // An explicit mark has no trigger, and says so by leaving the key out.
        let explicit = PersistenceWindow {
            trigger: None,
            ..flight_recorder_sample()
        };
        out.clear();
        window_json_line(&explicit, &mut out);
        assert!(!std::str::from_utf8(&out).unwrap().contains("trigger"));
        assert_eq!(parse_window_lines(&out).unwrap(), vec![explicit]);
        let w = flight_recorder_sample();
        assert_eq!(PersistenceWindow::from(WindowMark::from(w)), w);
    }

    #[test]
    fn json_line_has_spec_keys_in_order() {
        let mut out = Vec::new();
        window_json_line(&sample(), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"window_id\":3,\"start_ns\":10,\"end_ns\":20,\"first_mark_ns\":12,\
             \"last_event_ns\":19,\"total_events\":255,\"marked_events\":2,\"mark_seen\":true}\n"
        );
    }

    #[test]
    fn parse_skips_torn_last_line_but_rejects_bad_middle_line() {
        let mut out = Vec::new();
        window_json_line(&sample(), &mut out);
        window_json_line(&PersistenceWindow::default(), &mut out);
        let full = out.clone();
        assert_eq!(parse_window_lines(&full).unwrap().len(), 2);
        // Torn last line.
        let torn = &full[..full.len() - 5];
        assert_eq!(parse_window_lines(torn).unwrap(), vec![sample()]);
        // Corrupt first line.
        let mut bad = full.clone();
        bad[0] = b'x';
        assert!(matches!(
            parse_window_lines(&bad),
            Err(ReadError::WindowMetadata { line: 1, .. })
        ));
        assert!(parse_window_lines(b"\n\n").unwrap().is_empty());
    }

    #[test]
    fn window_mark_conversion_round_trips() {
        let w = sample();
        assert_eq!(PersistenceWindow::from(WindowMark::from(w)), w);
    }
}
