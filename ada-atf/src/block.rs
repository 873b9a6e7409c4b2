//! [`BlockEncoder`] and [`EncodedBlock`]: events encoded away from the writer, appended to one
//! `events.bin` by [`TraceWriter::append_block`](crate::TraceWriter::append_block).
//!
//! Several threads can encode events in parallel (each with its own `BlockEncoder`) while one
//! [`TraceWriter`](crate::TraceWriter) owns the file. Event ids must be unique and increasing
//! in the file, and only the writer knows the next one; so an encoder writes every event with
//! the **placeholder id 1** (field 1, the first one encoded: the bytes `08 01` right after the
//! length prefix), and the writer re-frames each record as it appends the block:
//! `varint(len') 08 varint(id) rest`, where `rest` is the record's body after the placeholder.
//! The file is then byte for byte what [`TraceWriter::write`](crate::TraceWriter::write) would
//! have written for the same events in the same order (a test checks it), so every ATF v4
//! reader reads it unchanged.
//!
//! A block also carries what the manifest needs of its events (count, earliest and latest
//! timestamp) and the persistence windows announced between them, which the writer records
//! (`window_metadata.jsonl`, the manifest's `windows`) when it appends the block.

use crate::encode::{
    EventRef, IndexEventRef, encode_delimited_with_limit, encode_index_delimited_with_limit,
    varint_len,
};
use crate::error::EncodeError;
use crate::window::PersistenceWindow;

/// The largest growth of a record when the writer replaces the 1-byte placeholder id with a
/// real one (a varint is at most 10 bytes).
pub const MAX_ID_GROWTH: usize = 9;

/// Encoded events (each `varint(len) ++ Event` with event id 1) and the side items that travel
/// with them: see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedBlock {
    bytes: Vec<u8>,
    events: u64,
    min_ts: u64,
    max_ts: u64,
    windows: Vec<PersistenceWindow>,
}

impl EncodedBlock {
    /// An empty block.
    pub fn new() -> Self {
        EncodedBlock {
            min_ts: u64::MAX,
            ..EncodedBlock::default()
        }
    }

    /// A block of the given encoded bytes, as if `events` events stamped from `min_ts` to
    /// `max_ts` had been encoded into it (for tests of [`TraceWriter::append_block`]'s checks:
    /// the bytes are not validated here).
    ///
    /// [`TraceWriter::append_block`]: crate::TraceWriter::append_block
    pub fn from_raw(bytes: Vec<u8>, events: u64, min_ts: u64, max_ts: u64) -> Self {
        EncodedBlock {
            bytes,
            events,
            min_ts,
            max_ts,
            windows: Vec::new(),
        }
    }

    /// The encoded records.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Events encoded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The earliest and latest event timestamps (`None`: no events).
    pub fn time_range(&self) -> Option<(u64, u64)> {
        (self.min_ts <= self.max_ts).then_some((self.min_ts, self.max_ts))
    }

    /// The windows announced in the block, in order.
    pub fn windows(&self) -> &[PersistenceWindow] {
        &self.windows
    }

    /// Nothing in it: no events, no windows.
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.windows.is_empty()
    }

    /// Empties the block, keeping its allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.events = 0;
        self.min_ts = u64::MAX;
        self.max_ts = 0;
        self.windows.clear();
    }
}

/// Encodes events into an [`EncodedBlock`] (see the [module docs](self)).
#[derive(Debug)]
pub struct BlockEncoder {
    block: EncodedBlock,
    max_record_len: usize,
}

impl BlockEncoder {
    /// An encoder whose events, once the writer gave them their real ids, are at most
    /// `max_record_len` bytes long (the writer's [`WriterOptions::max_record_len`]).
    ///
    /// [`WriterOptions::max_record_len`]: crate::WriterOptions::max_record_len
    pub fn new(max_record_len: usize) -> Self {
        BlockEncoder {
            block: EncodedBlock::new(),
            max_record_len: max_record_len.saturating_sub(MAX_ID_GROWTH),
        }
    }

    /// Encodes `event` (with the placeholder id) into the block. An [`EncodeError`] leaves
    /// the block unchanged.
    #[inline]
    pub fn write(&mut self, event: &EventRef<'_>) -> Result<(), EncodeError> {
        let b = &mut self.block;
        encode_delimited_with_limit(1, event, &mut b.bytes, self.max_record_len)?;
        b.events += 1;
        b.min_ts = b.min_ts.min(event.timestamp_ns);
        b.max_ts = b.max_ts.max(event.timestamp_ns);
        Ok(())
    }

    /// [`write`](Self::write) for an index-shaped event, through the one-pass index encoder
    /// (the same bytes as [`write`](Self::write) of the event it stands for).
    #[inline]
    pub fn write_index(&mut self, event: &IndexEventRef<'_>) -> Result<(), EncodeError> {
        let b = &mut self.block;
        encode_index_delimited_with_limit(1, event, &mut b.bytes, self.max_record_len)?;
        b.events += 1;
        b.min_ts = b.min_ts.min(event.timestamp_ns);
        b.max_ts = b.max_ts.max(event.timestamp_ns);
        Ok(())
    }

    /// Adds a persistence window to the block, after the events encoded so far.
    pub fn write_window(&mut self, window: &PersistenceWindow) {
        self.block.windows.push(*window);
    }

    /// The block being filled.
    pub fn block(&self) -> &EncodedBlock {
        &self.block
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.block.bytes.len()
    }

    /// Nothing in the block yet.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    /// Hands the filled block out, continuing in `spare` (cleared first: pass a block that came
    /// back from the writer to reuse its allocation).
    pub fn take(&mut self, mut spare: EncodedBlock) -> EncodedBlock {
        spare.clear();
        std::mem::replace(&mut self.block, spare)
    }
}

/// Why a block could not be appended (nothing of it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed encoded block at byte {offset}: {reason}")]
pub struct BlockError {
    /// Where in the block.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// A varint at the start of `bytes`: (value, its length).
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Appends the records of `block` to `out` with ids from `first_id` (see the
/// [module docs](self)); returns how many. On error `out` is left as it was.
pub(crate) fn reframe(
    block: &[u8],
    first_id: u64,
    max_record_len: usize,
    out: &mut Vec<u8>,
) -> Result<u64, BlockError> {
    let start = out.len();
    let mut pos = 0usize;
    let mut id = first_id;
    let fail = |out: &mut Vec<u8>, offset: usize, reason: &'static str| {
        out.truncate(start);
        Err(BlockError { offset, reason })
    };
    while pos < block.len() {
        let Some((len, n)) = read_varint(&block[pos..]) else {
            return fail(out, pos, "bad length prefix");
        };
        let body_start = pos + n;
        let Some(body_end) = usize::try_from(len)
            .ok()
            .and_then(|l| body_start.checked_add(l))
            .filter(|&e| e <= block.len())
        else {
            return fail(out, pos, "record runs past the end of the block");
        };
        let body = &block[body_start..body_end];
        if body.len() < 2 || body[0] != 0x08 || body[1] != 0x01 {
            return fail(
                out,
                body_start,
                "record does not start with the placeholder id",
            );
        }
        let rest = &body[2..];
        let new_len = 1 + varint_len(id) + rest.len();
        if new_len > max_record_len {
            return fail(out, pos, "record too large once its id is set");
        }
        put_varint(out, new_len as u64);
        out.push(0x08);
        put_varint(out, id);
        out.extend_from_slice(rest);
        id += 1;
        pos = body_end;
    }
    Ok(id - first_id)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PayloadRef, TraceReader, TraceSummary, TraceWriter, WriteError, WriterOptions};

    /// A mix of event shapes and sizes (a long message makes a 2-byte length prefix).
    fn events(long: &str) -> Vec<EventRef<'_>> {
        let call = PayloadRef::FunctionCall {
            symbol: "main",
            address: 0x1000,
            argument_registers: &[("rdi", 1)],
            stack_shallow_copy: &[1, 2, 3],
        };
        vec![
            EventRef::new(3, 100, call).with_function(42, 1),
            EventRef::thread_def(101, 3, 77, 78, "worker", true),
            EventRef::symbol_def(102, 42, "main", 0x1000, ""),
            EventRef::new(
                3,
                99,
                PayloadRef::FunctionReturn {
                    symbol: long,
                    address: 0,
                    return_registers: &[],
                },
            ),
            EventRef::new(0, 200, PayloadRef::TraceEnd { exit_code: 3 }),
        ]
    }

    #[test]
    fn a_block_reframed_by_the_writer_is_what_encode_delimited_makes_with_the_real_ids() {
        let long = "x".repeat(300);
        let events = events(&long);
        // Ids that cross the one-byte varint boundary (127 → 128) and a ten-byte one.
        for first in [1u64, 125, u64::MAX - 10] {
            let mut enc = BlockEncoder::new(crate::DEFAULT_MAX_RECORD_LEN);
            for e in &events {
                enc.write(e).unwrap();
            }
            let block = enc.take(EncodedBlock::new());
            assert_eq!(block.events(), events.len() as u64);
            assert_eq!(block.time_range(), Some((99, 200)));
            assert!(enc.is_empty());
            let mut out = vec![0xAA];
            let n = reframe(
                block.bytes(),
                first,
                crate::DEFAULT_MAX_RECORD_LEN,
                &mut out,
            )
            .unwrap();
            assert_eq!(n, events.len() as u64);
            let mut want = vec![0xAA];
            for (i, e) in events.iter().enumerate() {
                crate::encode_delimited(first + i as u64, e, &mut want).unwrap();
            }
            assert_eq!(out, want, "first id {first}");
        }
    }

    #[test]
    fn an_index_event_through_a_block_is_what_encode_index_delimited_makes_with_the_real_id() {
        let f = crate::FunctionPayload::new("handler", 0x4000);
        let events = [crate::IndexKind::Call, crate::IndexKind::Return].map(|kind| IndexEventRef {
            thread_id: 9,
            timestamp_ns: 1_234_567_890,
            function_id: 77,
            call_depth: 3,
            lane: crate::Lane::Index,
            kind,
            function: &f,
        });
        for first in [1u64, 127, 1 << 40] {
            let mut enc = BlockEncoder::new(crate::DEFAULT_MAX_RECORD_LEN);
            for e in &events {
                enc.write_index(e).unwrap();
            }
            let mut out = Vec::new();
            reframe(
                enc.block().bytes(),
                first,
                crate::DEFAULT_MAX_RECORD_LEN,
                &mut out,
            )
            .unwrap();
            let mut want = Vec::new();
            for (i, e) in events.iter().enumerate() {
                crate::encode_index_delimited(first + i as u64, e, &mut want).unwrap();
            }
            assert_eq!(out, want, "first id {first}");
        }
    }

    #[test]
    fn a_malformed_block_is_a_typed_error_and_leaves_the_output_as_it_was() {
        let mut enc = BlockEncoder::new(crate::DEFAULT_MAX_RECORD_LEN);
        enc.write(&EventRef::new(1, 5, PayloadRef::TraceEnd { exit_code: 0 }))
            .unwrap();
        let good = enc.block().bytes().to_vec();
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x80], "bad length prefix"),
            (vec![0xff; 11], "bad length prefix"),
            (vec![0x05, 0x08, 0x01], "past the end"),
            (vec![0x02, 0x08, 0x02], "placeholder"),
            (vec![0x01, 0x08], "placeholder"),
            (vec![0x00], "placeholder"),
        ];
        // A good record followed by a torn one: nothing of the block is kept.
        let mut torn = good.clone();
        torn.extend_from_slice(&good[..good.len() - 1]);
        cases.push((torn, "past the end"));
        for (bytes, why) in cases {
            let mut out = vec![7, 7];
            let e = reframe(&bytes, 1, crate::DEFAULT_MAX_RECORD_LEN, &mut out).unwrap_err();
            assert!(e.reason.contains(why), "{bytes:?}: {e}");
            assert_eq!(out, [7, 7], "{bytes:?}");
        }
        // A record that grows past the limit once its id is set.
        let mut out = Vec::new();
        let e = reframe(&good, u64::MAX, good.len(), &mut out).unwrap_err();
        assert!(e.reason.contains("too large"), "{e}");
        assert!(out.is_empty());
    }

    #[test]
    fn the_writer_appends_blocks_with_contiguous_ids_and_refuses_a_malformed_one_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
        assert_eq!(
            w.write(&EventRef::new(0, 10, PayloadRef::TraceEnd { exit_code: 0 }))
                .unwrap(),
            1
        );
        let long = "y".repeat(200);
        let mut enc = BlockEncoder::new(crate::DEFAULT_MAX_RECORD_LEN);
        for e in events(&long) {
            enc.write(&e).unwrap();
        }
        let window = crate::PersistenceWindow {
            window_id: 1,
            start_ns: 100,
            end_ns: 150,
            first_mark_ns: 120,
            last_event_ns: 150,
            total_events: 2,
            marked_events: 1,
            mark_seen: true,
            thread_id: 3,
            last_mark_ns: 120,
            trigger: None,
            pre_roll_events: 0,
            discarded_events: 0,
            over_budget_events: 0,
        };
        enc.write_window(&window);
        let block = enc.take(EncodedBlock::new());
        assert_eq!(w.append_block(&block).unwrap(), 2..=6);
        // Malformed (bad bytes, or a count that disagrees): refused whole, no id used.
        let bad = EncodedBlock::from_raw(vec![0x02, 0x08, 0x05], 1, 1, 1);
        assert!(matches!(w.append_block(&bad), Err(WriteError::Block(_))));
        let lying = EncodedBlock::from_raw(block.bytes().to_vec(), 4, 1, 1);
        assert!(matches!(w.append_block(&lying), Err(WriteError::Block(_))));
        assert_eq!(w.append_block(&EncodedBlock::new()).unwrap().count(), 0);
        assert_eq!(w.append_block(&block).unwrap(), 7..=11);
        let stats = w.finalize(TraceSummary::default()).unwrap();
        assert_eq!(stats.event_count, 11);
        assert_eq!(stats.windows, 2);
        let reader = TraceReader::open(&stats.dir).unwrap();
        let ids: Vec<u64> = reader.events().map(|e| e.unwrap().event_id).collect();
        assert_eq!(ids, (1..=11).collect::<Vec<_>>());
        let m = reader.manifest().unwrap();
        assert_eq!(
            (m.min_event_timestamp_ns, m.max_event_timestamp_ns),
            (Some(10), Some(200))
        );
    }
}
