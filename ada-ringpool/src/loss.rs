//! Loss markers: the records a writer puts into its own lane where events were lost, so the
//! trace shows the hole at the point it happened.
//!
//! A marker is a record of kind [`EventKind::EventsLost`] in the lane that lost the events. It is
//! not an event of the program: it is never counted in `events_written`, and the drain turns it
//! into an `EventsLost` trace event instead of persisting it as a record.
//!
//! Encodings (all little-endian, like every record):
//!
//! ```text
//! index lane (an IndexRecord):
//!   timestamp_ns = first lost timestamp   function_id = last lost timestamp
//!   thread_id    = 0                      kind        = EventsLost (6)
//!   call_depth   = count bits 0..32       reserved    = cause (bits 0..8) | count bits 32..56 (bits 8..32)
//! detail lane (a DetailRecord, 56 bytes):
//!   timestamp_ns = first lost timestamp   function_id = last lost timestamp
//!   registers    = [count, cause]         thread_id = 0, no stack, no message, not marked
//! ```
//!
//! The lost times are the lost records' own stamps, in the session clock's units (counter ticks
//! in a TSC session: the drain converts them like any record's). A timestamp the writer could
//! not know is 0. Counts above 2^56 - 1 (index lane) are split
//! over several markers by [`LossMarker::split`].

use crate::record::{DetailRecord, DetailView, EventKind, IndexRecord};
use ada_backpressure::LossCause;

/// The largest count one index-lane marker carries (56 bits).
pub const MAX_INDEX_MARKER_COUNT: u64 = (1 << 56) - 1;

/// Size in bytes of a detail-lane marker.
pub const DETAIL_MARKER_LEN: u32 = 56;

/// `count` events lost for `cause`, stamped between `first_ns` and `last_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LossMarker {
    /// Why.
    pub cause: LossCause,
    /// How many events.
    pub count: u64,
    /// Timestamp of the first lost event (0: unknown).
    pub first_ns: u64,
    /// Timestamp of the last lost event (0: unknown).
    pub last_ns: u64,
}

impl LossMarker {
    /// Adds `other`'s events (same cause assumed): the count saturates, the time span widens
    /// (an unknown, 0, bound yields to a known one).
    pub fn merge(&mut self, other: &LossMarker) {
        self.count = self.count.saturating_add(other.count);
        self.first_ns = match (self.first_ns, other.first_ns) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.last_ns = self.last_ns.max(other.last_ns);
    }

    /// The index records for this marker: one, or several when the count exceeds
    /// [`MAX_INDEX_MARKER_COUNT`] (each then carries part of it).
    pub fn split(&self) -> impl Iterator<Item = LossMarker> + '_ {
        let mut left = self.count;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let part = left.min(MAX_INDEX_MARKER_COUNT);
            left -= part;
            Some(LossMarker {
                count: part,
                ..*self
            })
        })
    }

    /// The index-lane record (the count must be at most [`MAX_INDEX_MARKER_COUNT`]; higher bits
    /// are cut, use [`split`](Self::split)).
    pub fn to_index(&self, thread_id: u32) -> IndexRecord {
        debug_assert!(self.count <= MAX_INDEX_MARKER_COUNT);
        IndexRecord {
            timestamp_ns: self.first_ns,
            function_id: self.last_ns,
            thread_id,
            kind: EventKind::EventsLost as u32,
            call_depth: self.count as u32,
            reserved: u32::from(self.cause.as_u8())
                | (((self.count >> 32) as u32 & 0x00ff_ffff) << 8),
        }
    }

    /// Decodes an index record of kind [`EventKind::EventsLost`]; `None` for any other kind or
    /// an unknown cause (untrusted bytes).
    pub fn from_index(record: &IndexRecord) -> Option<LossMarker> {
        if record.kind != EventKind::EventsLost as u32 {
            return None;
        }
        let cause = LossCause::from_u8((record.reserved & 0xff) as u8)?;
        Some(LossMarker {
            cause,
            count: u64::from(record.call_depth) | (u64::from(record.reserved >> 8) << 32),
            first_ns: record.timestamp_ns,
            last_ns: record.function_id,
        })
    }

    /// Encodes the detail-lane record into `out` (at least [`DETAIL_MARKER_LEN`] bytes);
    /// returns its length.
    pub fn encode_detail(&self, thread_id: u32, out: &mut [u8]) -> usize {
        let registers = [self.count, u64::from(self.cause.as_u8())];
        DetailRecord {
            kind: EventKind::EventsLost,
            marked: false,
            timestamp_ns: self.first_ns,
            function_id: self.last_ns,
            thread_id,
            call_depth: 0,
            registers: &registers,
            stack: &[],
            message: &[],
        }
        .encode_into(out)
    }

    /// Decodes a detail record of kind [`EventKind::EventsLost`]; `None` for any other kind or
    /// a malformed marker (untrusted bytes).
    pub fn from_detail(view: &DetailView<'_>) -> Option<LossMarker> {
        if view.kind != EventKind::EventsLost {
            return None;
        }
        let [count, cause] = *view.registers() else {
            return None;
        };
        let cause = LossCause::from_u8(u8::try_from(cause).ok()?)?;
        Some(LossMarker {
            cause,
            count,
            first_ns: view.header.timestamp_ns,
            last_ns: view.header.function_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{DetailRecords, MAX_DETAIL_RECORD};

    fn marker(count: u64) -> LossMarker {
        LossMarker {
            cause: LossCause::Refused,
            count,
            first_ns: 100,
            last_ns: 250,
        }
    }

    #[test]
    fn index_round_trip() {
        for count in [
            1,
            7,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 9,
            MAX_INDEX_MARKER_COUNT,
        ] {
            let m = marker(count);
            let r = m.to_index(42);
            assert_eq!(r.kind, EventKind::EventsLost as u32);
            assert_eq!(r.thread_id, 42);
            assert_eq!(LossMarker::from_index(&r), Some(m), "{count}");
        }
    }

    #[test]
    fn index_refuses_other_kinds_and_unknown_causes() {
        let mut r = marker(3).to_index(1);
        r.reserved = (r.reserved & !0xff) | 9;
        assert_eq!(LossMarker::from_index(&r), None);
        let call = IndexRecord {
            kind: EventKind::Call as u32,
            ..IndexRecord::default()
        };
        assert_eq!(LossMarker::from_index(&call), None);
    }

    #[test]
    fn split_keeps_the_total() {
        let m = marker(MAX_INDEX_MARKER_COUNT * 2 + 5);
        let parts: Vec<_> = m.split().collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(|p| p.count).sum::<u64>(), m.count);
        assert!(parts.iter().all(|p| p.first_ns == 100 && p.last_ns == 250));
        assert_eq!(marker(0).split().count(), 0);
    }

    #[test]
    fn detail_round_trip() {
        let mut buf = vec![0u8; MAX_DETAIL_RECORD];
        let m = LossMarker {
            cause: LossCause::Overwritten,
            count: u64::MAX,
            first_ns: 5,
            last_ns: 9,
        };
        let n = m.encode_detail(3, &mut buf);
        assert_eq!(n, DETAIL_MARKER_LEN as usize);
        let view = DetailRecords::new(&buf[..n]).next().unwrap().unwrap();
        assert_eq!(LossMarker::from_detail(&view), Some(m));
    }

    #[test]
    fn merge_widens_and_saturates() {
        let mut a = LossMarker {
            cause: LossCause::Overwritten,
            count: u64::MAX - 1,
            first_ns: 0,
            last_ns: 10,
        };
        a.merge(&LossMarker {
            cause: LossCause::Overwritten,
            count: 5,
            first_ns: 4,
            last_ns: 8,
        });
        assert_eq!((a.count, a.first_ns, a.last_ns), (u64::MAX, 4, 10));
    }
}
