//! What the ringpool's loom models share: records whose two words check each other, and a
//! collector of what the drain received that tells a torn record or marker from a whole one.
#![allow(dead_code)] // each model uses part of it

use ada_ringpool::{EventKind, IndexRecord, LossCause, LossMarker, RingChunk, index_records};

/// Record `seq`: its id is `seq + 1` (never the 0 of an empty ring) and its timestamp the id's
/// complement, so a record made of words from different writes does not check out.
pub fn rec(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: !(seq + 1),
        function_id: seq + 1,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

/// Checks an event record made by [`rec`]: not torn, not stale. Returns its id.
pub fn check_event(r: &IndexRecord) -> u64 {
    assert_eq!(r.timestamp_ns, !r.function_id, "torn or stale record {r:?}");
    assert_eq!(r.kind, EventKind::Call as u32, "torn or stale record {r:?}");
    r.function_id
}

/// What the drain received: event ids in order, and the events its loss markers announce.
#[derive(Default)]
pub struct Received {
    /// Event ids, in the order the drain handed them over.
    pub ids: Vec<u64>,
    /// Events announced lost by markers.
    pub marked: u64,
    /// The one cause this model's markers may have.
    cause: Option<LossCause>,
}

impl Received {
    /// Expecting loss markers of `cause` only.
    pub fn expecting(cause: LossCause) -> Self {
        Received {
            cause: Some(cause),
            ..Received::default()
        }
    }

    /// Checks every record of `chunk`: a whole marker (of the expected cause, announcing at
    /// least one event, with its first time when the cause knows it) or an intact event.
    pub fn take(&mut self, chunk: RingChunk<'_>) {
        for r in index_records(chunk.bytes) {
            let r = r.expect("a whole record");
            if let Some(m) = LossMarker::from_index(&r) {
                assert_eq!(Some(m.cause), self.cause, "torn marker {r:?}");
                assert!(m.count >= 1, "torn marker {r:?}");
                if m.cause == LossCause::Refused {
                    assert!(m.first_ns != 0, "torn marker {r:?}");
                }
                self.marked += m.count;
                continue;
            }
            self.ids.push(check_event(&r));
        }
    }
}
