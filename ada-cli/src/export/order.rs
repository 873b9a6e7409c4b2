//! Which threads' slices are out of timestamp order in a trace's stream, for exporters whose
//! format needs each thread's slice begins and ends in increasing time.
//!
//! An ATF trace does not promise that order: a thread's events that went through the
//! controller's shared fallback ring (written before the thread registered, or spilled when its
//! ring pool was exhausted) can be in `events.bin` before older events of its own rings. An
//! exporter reads the stream once with [`unordered_slice_threads`] first, then holds those
//! threads' slice events and writes them sorted after the stream.

use std::collections::{HashMap, HashSet};

use ada_atf::Event;
use ada_atf::schema::event::Payload;

/// Whether `ev` opens or closes a slice: an index-lane call or return.
pub(crate) fn is_slice(ev: &Event) -> bool {
    ev.lane != 1
        && matches!(
            ev.payload,
            Some(Payload::FunctionCall(_) | Payload::FunctionReturn(_))
        )
}

/// The threads whose slices (see [`is_slice`]) are not in timestamp order in `events` (one
/// read of the stream; events with no valid time are left out: exporters stamp them with the
/// time before them).
pub(crate) fn unordered_slice_threads(events: impl Iterator<Item = Event>) -> HashSet<i32> {
    let mut last = HashMap::<i32, u64>::new();
    let mut unordered = HashSet::new();
    for ev in events {
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
