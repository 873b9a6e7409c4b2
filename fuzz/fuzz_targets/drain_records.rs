//! Fuzz the drain's view of untrusted ring bytes. The input is, first, the copied-out contents
//! of a ring's data area, parsed the way the controller's drain parses it (`index_records`,
//! `DetailRecords`, the per-record accessors and `EventKind` conversions); and second, the
//! raw state of a small lane on the heap (ring headers, the active ring, submit-queue entries,
//! ring words) that one `LaneDrain` then drains. Nothing may panic; every record lies inside
//! its chunk; iteration ends within a bound set by the input length; a detail record that
//! parses encodes back (with `DetailRecord::encode_into`) to bytes that parse to the same
//! record; a chunk handed out by the drain fits the ring and is whole words.
#![no_main]

use std::sync::atomic::Ordering;

use ada_registry::{Lane, LaneKind};
use ada_ringpool::record::{DETAIL_FLAG_MARKED, MAX_DETAIL_RECORD, MAX_REGISTERS, parse_detail};
use ada_ringpool::{
    DetailRecord, DetailRecords, DetailView, DrainStats, EventKind, HeapStore, INDEX_RECORD_SIZE,
    LaneDrain, RecordError, RingStore, index_records,
};
use libfuzzer_sys::fuzz_target;
use zerocopy::IntoBytes;

fuzz_target!(|data: &[u8]| {
    check_index(data);
    check_detail(data);
    drive_drain(data);
});

/// `index_records` over `bytes`: whole 32-byte records in order, each the input's bytes, a
/// valid kind; at most one error, and it ends the iteration.
fn check_index(bytes: &[u8]) {
    let size = INDEX_RECORD_SIZE as usize;
    let mut items = 0usize;
    let mut failed = false;
    for (i, item) in index_records(bytes).enumerate() {
        assert!(!failed, "an index item after an error");
        items += 1;
        assert!(
            items <= bytes.len() / size + 1,
            "more index items than records"
        );
        let offset = i * size;
        match item {
            Ok(rec) => {
                let raw = &bytes[offset..offset + size];
                assert_eq!(rec.as_bytes(), raw, "index record is not its bytes");
                let kind = EventKind::try_from(rec.kind).expect("yielded with a bad kind");
                assert_eq!(kind as u32, rec.kind);
            }
            Err(RecordError::Truncated { offset: at }) => {
                assert_eq!(at, offset);
                assert!(
                    bytes.len() - offset < size,
                    "truncated with a whole record left"
                );
                failed = true;
            }
            Err(RecordError::BadKind { offset: at, kind }) => {
                assert_eq!(at, offset);
                assert!(EventKind::try_from(kind).is_err());
                failed = true;
            }
            Err(e) => panic!("index_records: unexpected error {e:?}"),
        }
    }
    if !failed {
        assert_eq!(items, bytes.len() / size, "stopped early without an error");
    }
}

/// `DetailRecords` over `bytes`: records tile the input from offset 0, each within the input
/// and within its own `len`, with at most one error, which ends the iteration.
fn check_detail(bytes: &[u8]) {
    let mut at = 0usize;
    let mut items = 0usize;
    let mut failed = false;
    let mut records = DetailRecords::new(bytes);
    for item in records.by_ref() {
        assert!(!failed, "a detail item after an error");
        items += 1;
        // Every record is at least 40 bytes.
        assert!(
            items <= bytes.len() / 40 + 1,
            "more detail items than bytes allow"
        );
        match item {
            Ok(view) => {
                let len = view.header.len as usize;
                assert!(len >= 40 && len.is_multiple_of(8) && len <= MAX_DETAIL_RECORD + 8);
                assert!(at + len <= bytes.len(), "record beyond the input");
                check_view(&view, &bytes[at..at + len]);
                at += len;
            }
            Err(e) => {
                let offset = match e {
                    RecordError::Truncated { offset }
                    | RecordError::BadLength { offset, .. }
                    | RecordError::BadKind { offset, .. }
                    | RecordError::BadPayload { offset } => offset,
                    e => panic!("DetailRecords: unexpected error {e:?}"),
                };
                assert_eq!(offset, at, "error at the wrong offset");
                assert!(parse_detail(&bytes[at..], at).is_err());
                failed = true;
            }
        }
    }
    assert!(records.next().is_none(), "DetailRecords is not fused");
    if !failed {
        assert_eq!(at, bytes.len(), "stopped early without an error");
    }
}

/// One parsed detail record against its bytes `raw` (exactly `header.len` long).
fn check_view(view: &DetailView<'_>, raw: &[u8]) {
    let within = |s: &[u8]| {
        let (lo, hi) = (raw.as_ptr() as usize, raw.as_ptr() as usize + raw.len());
        let p = s.as_ptr() as usize;
        s.is_empty() || (p >= lo && p + s.len() <= hi)
    };
    assert!(
        within(view.stack) && within(view.message),
        "payload outside the record"
    );
    let regs = view.registers();
    assert_eq!(regs.len(), usize::from(view.header.reg_count));
    assert!(regs.len() <= MAX_REGISTERS);
    for (i, r) in regs.iter().enumerate() {
        let w = &raw[32 + i * 8..40 + i * 8];
        assert_eq!(*r, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    assert_eq!(
        EventKind::try_from(u32::from(view.header.kind)),
        Ok(view.kind),
        "kind does not convert back"
    );
    assert_eq!(view.marked(), view.header.flags & DETAIL_FLAG_MARKED != 0);

    // Re-encode what was read: it fits the limits and the original length, and parses back
    // to the same record. (The encoding is canonical, so it equals the input bytes only when
    // reserved bits, padding and slack were zero: not a property of arbitrary input.)
    let rec = DetailRecord {
        kind: view.kind,
        marked: view.marked(),
        timestamp_ns: view.header.timestamp_ns,
        function_id: view.header.function_id,
        thread_id: view.header.thread_id,
        call_depth: view.header.call_depth,
        registers: regs,
        stack: view.stack,
        message: view.message,
    };
    rec.check().expect("a parsed record is within the limits");
    let n = rec.encoded_len();
    assert!(
        n <= raw.len(),
        "re-encoding is longer than the record it came from"
    );
    let mut buf = vec![0u8; n];
    assert_eq!(rec.encode_into(&mut buf), n);
    let again = parse_detail(&buf, 0).expect("a re-encoded record parses");
    assert_eq!(again.kind, view.kind);
    assert_eq!(again.marked(), view.marked());
    assert_eq!(again.registers(), regs);
    assert_eq!(again.stack, view.stack);
    assert_eq!(again.message, view.message);
    assert_eq!(
        (
            again.header.timestamp_ns,
            again.header.function_id,
            again.header.thread_id,
            again.header.call_depth,
            again.header.reg_count,
        ),
        (
            view.header.timestamp_ns,
            view.header.function_id,
            view.header.thread_id,
            view.header.call_depth,
            view.header.reg_count,
        )
    );
    let canonical = view.header.flags & !DETAIL_FLAG_MARKED == 0 && n == raw.len();
    if canonical && buf[..] != raw[..] {
        // Only the reserved word after the sizes and the padding may differ.
        let sizes = 32 + regs.len() * 8;
        let pad = sizes + 8 + view.stack.len() + view.message.len();
        assert_eq!(buf[..sizes + 4], raw[..sizes + 4]);
        assert_eq!(buf[sizes + 8..pad], raw[sizes + 8..pad]);
    }
}

/// Reads bytes off the front of the input; zeros once it runs out.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
}

/// Ring data area of the fuzzed lane, bytes (`HeapStore` adds the 128-byte header).
const RING_DATA: u32 = 256;

/// A lane on the heap in a state the input chooses (bounded: at most 4 rings of 256 bytes, 7
/// submit-queue entries), drained once as the controller does (submitted rings, then the
/// active ring), with every chunk parsed.
///
/// Layout: `[flags, active_ring, submits, ring index * submits, per ring (recycles|marked,
/// position generation, read_pos u16, write_pos u16), ring words...]`.
fn drive_drain(data: &[u8]) {
    let mut cur = Cursor(data);
    let flags = cur.u8();
    let detail = flags & 1 != 0;
    let rings = u32::from((flags >> 1) & 3) + 1;
    let max_rings = u32::from((flags >> 3) & 3);
    let kind = if detail {
        LaneKind::Detail
    } else {
        LaneKind::Index
    };
    let active = u32::from(cur.u8());
    let submits: Vec<u32> = (0..cur.u8() % 8).map(|_| u32::from(cur.u8())).collect();

    let mut lane = Lane::default();
    let store = HeapStore::new(&lane, rings, RING_DATA + 128);
    let cap = store.data_capacity();
    let (thread_ends, drain_ends) = lane.split(rings, kind, 0);
    let (lane_ref, mut submit, _free) = thread_ends.into_parts();
    lane_ref.set_active_ring(active);
    let mut pushed = 0u64;
    for ring in &submits {
        if submit.push(*ring).is_ok() {
            pushed += 1;
        }
    }
    for ring in 0..rings {
        let header = store.header(ring);
        let bits = cur.u8();
        for _ in 0..bits & 3 {
            header.begin_recycle();
        }
        if bits & 4 != 0 {
            header.set_marked();
        }
        let generation = u32::from(cur.u8());
        let read_pos = u32::from(cur.u16());
        let write_pos = u32::from(cur.u16());
        let seen = header.consumed();
        assert!(header.commit_read(seen, read_pos));
        header.publish_position(generation, write_pos);
        header.set_submit_seq(u64::from(ring));
    }
    let words = cur.0.chunks(8);
    let slots = (0..rings).flat_map(|r| store.data(r).iter());
    for (word, bytes) in slots.zip(words) {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        word.store(u64::from_le_bytes(w), Ordering::Relaxed);
    }

    let mut drain = LaneDrain::new(drain_ends, &store);
    let mut handed = 0u64;
    let mut visit = |chunk: ada_ringpool::RingChunk<'_>| {
        assert!(chunk.ring < rings, "chunk from a ring that does not exist");
        assert!(
            chunk.bytes.len() as u32 <= cap,
            "chunk larger than the ring"
        );
        assert!(chunk.bytes.len().is_multiple_of(8), "chunk not whole words");
        assert!(!chunk.bytes.is_empty(), "empty chunk handed out");
        handed += chunk.bytes.len() as u64;
        if detail {
            check_detail(chunk.bytes);
        } else {
            check_index(chunk.bytes);
        }
    };
    let sub: DrainStats = drain.drain_submitted(max_rings, &mut visit);
    let taken = sub.rings + sub.bad_ring_indices;
    assert!(taken <= pushed, "took more rings than were submitted");
    if max_rings != 0 {
        assert!(taken <= u64::from(max_rings));
    }
    let act = drain.drain_active(&mut visit);
    assert_eq!(
        sub.bytes + act.bytes,
        handed,
        "stats disagree with the chunks"
    );
    assert_eq!(act.rings, 0);
    drain.reset_all();
    // A second pass over the reset lane finds nothing in the active ring.
    let again = drain.drain_active(|_| panic!("bytes in a reset ring"));
    assert_eq!(again.bytes, 0);
}
