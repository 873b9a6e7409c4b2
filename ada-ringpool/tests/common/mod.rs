//! What the ringpool's plain tests share: draining a heap lane and splitting what came out into
//! events and loss markers.
#![allow(dead_code)] // each test binary uses part of it

use ada_ringpool::{DetailRecords, HeapStore, LaneDrain, LossMarker, RingChunk, index_records};

/// Drains an index lane (its submitted rings, then its active ring when `active`): the events'
/// `function_id`s (the tests' sequence numbers) and the loss markers, in order.
pub fn drain_index(d: &mut LaneDrain<'_, &HeapStore>, active: bool) -> (Vec<u64>, Vec<LossMarker>) {
    let (mut seqs, mut markers) = (Vec::new(), Vec::new());
    let mut visit = |c: RingChunk<'_>| {
        for r in index_records(c.bytes) {
            let r = r.unwrap();
            match LossMarker::from_index(&r) {
                Some(m) => markers.push(m),
                None => seqs.push(r.function_id),
            }
        }
    };
    d.drain_submitted(0, &mut visit);
    if active {
        d.drain_active(&mut visit);
    }
    (seqs, markers)
}

/// Drains a detail lane the same way: the events' timestamps and the loss markers, in order.
pub fn drain_detail(
    d: &mut LaneDrain<'_, &HeapStore>,
    active: bool,
) -> (Vec<u64>, Vec<LossMarker>) {
    let (mut stamps, mut markers) = (Vec::new(), Vec::new());
    let mut visit = |c: RingChunk<'_>| {
        for r in DetailRecords::new(c.bytes) {
            let r = r.unwrap();
            match LossMarker::from_detail(&r) {
                Some(m) => markers.push(m),
                None => stamps.push(r.header.timestamp_ns),
            }
        }
    };
    d.drain_submitted(0, &mut visit);
    if active {
        d.drain_active(&mut visit);
    }
    (stamps, markers)
}
