//! Record formats. All integers little-endian, every record 8-byte aligned.
//!
//! Index lane — fixed 32-byte [`IndexRecord`]:
//! ```text
//!  0 timestamp_ns u64 | 8 function_id u64 | 16 thread_id u32 | 20 kind u32 | 24 call_depth u32 | 28 reserved u32
//! ```
//! Detail lane — variable-length records, a 32-byte [`DetailHeader`] then the payload:
//! ```text
//!  0 len u32 (whole record, multiple of 8) | 4 kind u16 | 6 reg_count u8 | 7 flags u8
//!  8 timestamp_ns u64 | 16 function_id u64 | 24 thread_id u32 | 28 call_depth u32
//! 32 registers [u64; reg_count]
//!    stack_len u16 | message_len u16 | reserved u32
//!    stack bytes (<= 256) | message bytes (<= 1024) | zero padding to a multiple of 8
//! ```
//! The drain validates every record before using it: the writer is another process.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

ada_shm::wire_enum! {
    /// What an event records.
    pub enum EventKind {
        /// Function entry.
        Call = 1,
        /// Function exit.
        Return = 2,
        /// An exception or unwind passing through.
        Exception = 3,
        /// An explicit mark (the moment that matters).
        Mark = 4,
        /// A free-form message or custom payload.
        Message = 5,
        /// A loss marker the writer put where events were lost (see [`crate::LossMarker`]):
        /// not an event of the program, never counted as written.
        EventsLost = 6,
    }
}

/// One index-lane record.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IndexRecord {
    /// Session-clock stamp: nanoseconds, or counter ticks in a TSC session (the drain converts).
    pub timestamp_ns: u64,
    /// Function or callsite id.
    pub function_id: u64,
    /// OS thread id (low 32 bits).
    pub thread_id: u32,
    /// An [`EventKind`] as `u32`.
    pub kind: u32,
    /// Call depth of the thread at the event.
    pub call_depth: u32,
    /// Zero.
    pub reserved: u32,
}

/// Size of an index record.
pub const INDEX_RECORD_SIZE: u32 = 32;
const _: () = assert!(core::mem::size_of::<IndexRecord>() == INDEX_RECORD_SIZE as usize);

/// Most registers a detail record carries.
pub const MAX_REGISTERS: usize = 16;
/// Most stack bytes a detail record carries.
pub const MAX_STACK_BYTES: usize = 256;
/// Most message bytes a detail record carries.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Largest possible detail record.
pub const MAX_DETAIL_RECORD: usize =
    32 + MAX_REGISTERS * 8 + 8 + MAX_STACK_BYTES + MAX_MESSAGE_BYTES;
/// `DetailHeader::flags` bit: this event matched a marking pattern.
pub const DETAIL_FLAG_MARKED: u8 = 1;

/// The fixed part of a detail record.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct DetailHeader {
    /// Whole record length in bytes (multiple of 8).
    pub len: u32,
    /// An [`EventKind`] as `u16`.
    pub kind: u16,
    /// Registers that follow.
    pub reg_count: u8,
    /// [`DETAIL_FLAG_MARKED`] and reserved bits.
    pub flags: u8,
    /// Session-clock stamp: nanoseconds, or counter ticks in a TSC session (the drain converts).
    pub timestamp_ns: u64,
    /// Function or callsite id.
    pub function_id: u64,
    /// OS thread id (low 32 bits).
    pub thread_id: u32,
    /// Call depth.
    pub call_depth: u32,
}

const _: () = assert!(core::mem::size_of::<DetailHeader>() == 32);

/// A detail event, borrowed: what a thread writes and what the drain reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailRecord<'a> {
    /// The event kind.
    pub kind: EventKind,
    /// Whether the event matched a marking pattern.
    pub marked: bool,
    /// Session-clock stamp: nanoseconds, or counter ticks in a TSC session (the drain converts).
    pub timestamp_ns: u64,
    /// Function or callsite id.
    pub function_id: u64,
    /// OS thread id (low 32 bits).
    pub thread_id: u32,
    /// Call depth.
    pub call_depth: u32,
    /// Register values, in the architecture's argument order.
    pub registers: &'a [u64],
    /// A window of the stack.
    pub stack: &'a [u8],
    /// Message bytes.
    pub message: &'a [u8],
}

/// Why a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes remain than a record needs.
    #[error("record at offset {offset} is truncated")]
    Truncated {
        /// Offset of the record.
        offset: usize,
    },
    /// The length field is impossible.
    #[error("record at offset {offset} has invalid length {len}")]
    BadLength {
        /// Offset of the record.
        offset: usize,
        /// The length found.
        len: u32,
    },
    /// Unknown event kind.
    #[error("record at offset {offset} has unknown kind {kind}")]
    BadKind {
        /// Offset of the record.
        offset: usize,
        /// The kind found.
        kind: u32,
    },
    /// Register, stack or message counts exceed the limits or the record length.
    #[error("record at offset {offset} has an inconsistent payload")]
    BadPayload {
        /// Offset of the record.
        offset: usize,
    },
    /// A record to write exceeds the limits.
    #[error("detail record exceeds the limits (registers <= 16, stack <= 256, message <= 1024)")]
    TooLarge,
}

impl DetailRecord<'_> {
    /// Encoded size in bytes (a multiple of 8).
    pub fn encoded_len(&self) -> usize {
        let raw = 32 + self.registers.len() * 8 + 8 + self.stack.len() + self.message.len();
        raw.next_multiple_of(8)
    }

    /// Checks the limits.
    pub fn check(&self) -> Result<(), RecordError> {
        if self.registers.len() > MAX_REGISTERS
            || self.stack.len() > MAX_STACK_BYTES
            || self.message.len() > MAX_MESSAGE_BYTES
        {
            return Err(RecordError::TooLarge);
        }
        Ok(())
    }

    /// Encodes into `out[..encoded_len()]`. `out` must be at least that long and the record
    /// must pass [`check`](Self::check).
    pub fn encode_into(&self, out: &mut [u8]) -> usize {
        let len = self.encoded_len();
        let out = &mut out[..len];
        let header = DetailHeader {
            len: len as u32,
            kind: self.kind as u16,
            reg_count: self.registers.len() as u8,
            flags: if self.marked { DETAIL_FLAG_MARKED } else { 0 },
            timestamp_ns: self.timestamp_ns,
            function_id: self.function_id,
            thread_id: self.thread_id,
            call_depth: self.call_depth,
        };
        out[..32].copy_from_slice(header.as_bytes());
        let mut at = 32;
        for r in self.registers {
            out[at..at + 8].copy_from_slice(&r.to_le_bytes());
            at += 8;
        }
        out[at..at + 2].copy_from_slice(&(self.stack.len() as u16).to_le_bytes());
        out[at + 2..at + 4].copy_from_slice(&(self.message.len() as u16).to_le_bytes());
        out[at + 4..at + 8].fill(0);
        at += 8;
        out[at..at + self.stack.len()].copy_from_slice(self.stack);
        at += self.stack.len();
        out[at..at + self.message.len()].copy_from_slice(self.message);
        at += self.message.len();
        out[at..].fill(0);
        len
    }
}

/// Decoded detail record with its registers copied out (records in a drained chunk are not
/// 8-byte aligned in general, so registers cannot be borrowed as `&[u64]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailView<'a> {
    /// The fixed part.
    pub header: DetailHeader,
    /// The event kind (validated).
    pub kind: EventKind,
    /// Register values.
    pub registers: [u64; MAX_REGISTERS],
    /// Number of valid entries in `registers`.
    pub reg_count: usize,
    /// The stack window.
    pub stack: &'a [u8],
    /// The message.
    pub message: &'a [u8],
}

impl DetailView<'_> {
    /// The valid registers.
    pub fn registers(&self) -> &[u64] {
        &self.registers[..self.reg_count]
    }

    /// Whether the event was marked.
    pub fn marked(&self) -> bool {
        self.header.flags & DETAIL_FLAG_MARKED != 0
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Parses one detail record at the start of `bytes` (which starts at `offset` in its chunk).
pub fn parse_detail(bytes: &[u8], offset: usize) -> Result<DetailView<'_>, RecordError> {
    let header = DetailHeader::read_from_prefix(bytes)
        .map_err(|_| RecordError::Truncated { offset })?
        .0;
    let len = header.len as usize;
    if len < 40 || !len.is_multiple_of(8) || len > MAX_DETAIL_RECORD.next_multiple_of(8) {
        return Err(RecordError::BadLength {
            offset,
            len: header.len,
        });
    }
    if len > bytes.len() {
        return Err(RecordError::Truncated { offset });
    }
    let kind = EventKind::try_from(u32::from(header.kind))
        .map_err(|kind| RecordError::BadKind { offset, kind })?;
    let reg_count = usize::from(header.reg_count);
    let bad = RecordError::BadPayload { offset };
    if reg_count > MAX_REGISTERS || 32 + reg_count * 8 + 8 > len {
        return Err(bad);
    }
    let mut registers = [0u64; MAX_REGISTERS];
    for (i, r) in registers.iter_mut().take(reg_count).enumerate() {
        let at = 32 + i * 8;
        *r = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    }
    let sizes = 32 + reg_count * 8;
    let stack_len = usize::from(u16_at(bytes, sizes));
    let message_len = usize::from(u16_at(bytes, sizes + 2));
    let body = sizes + 8;
    if stack_len > MAX_STACK_BYTES
        || message_len > MAX_MESSAGE_BYTES
        || body + stack_len + message_len > len
    {
        return Err(bad);
    }
    Ok(DetailView {
        header,
        kind,
        registers,
        reg_count,
        stack: &bytes[body..body + stack_len],
        message: &bytes[body + stack_len..body + stack_len + message_len],
    })
}

/// Iterates the detail records of a drained chunk; stops after the first error.
#[derive(Debug, Clone)]
pub struct DetailRecords<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> DetailRecords<'a> {
    /// Records in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        DetailRecords {
            bytes,
            at: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for DetailRecords<'a> {
    type Item = Result<DetailView<'a>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.bytes.len() {
            return None;
        }
        match parse_detail(&self.bytes[self.at..], self.at) {
            Ok(view) => {
                self.at += view.header.len as usize;
                Some(Ok(view))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the index records of a drained chunk. A trailing partial record or an unknown kind
/// is reported once, then iteration stops.
pub fn index_records(bytes: &[u8]) -> impl Iterator<Item = Result<IndexRecord, RecordError>> + '_ {
    let mut failed = false;
    bytes
        .chunks(INDEX_RECORD_SIZE as usize)
        .enumerate()
        .map_while(move |(i, chunk)| {
            if failed {
                return None;
            }
            let offset = i * INDEX_RECORD_SIZE as usize;
            let result = match IndexRecord::read_from_bytes(chunk) {
                Err(_) => Err(RecordError::Truncated { offset }),
                Ok(rec) => match EventKind::try_from(rec.kind) {
                    Ok(_) => Ok(rec),
                    Err(kind) => Err(RecordError::BadKind { offset, kind }),
                },
            };
            failed = result.is_err();
            Some(result)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_round_trip_and_rejections() {
        let regs = [1u64, 2, 3];
        let rec = DetailRecord {
            kind: EventKind::Call,
            marked: true,
            timestamp_ns: 9,
            function_id: 0x1_0000_0002,
            thread_id: 7,
            call_depth: 3,
            registers: &regs,
            stack: &[0xAA; 13],
            message: b"hello",
        };
        rec.check().unwrap();
        let mut buf = vec![0u8; MAX_DETAIL_RECORD];
        let n = rec.encode_into(&mut buf);
        assert_eq!(n % 8, 0);
        let view = parse_detail(&buf[..n], 0).unwrap();
        assert_eq!(view.registers(), &regs);
        assert_eq!(view.stack, &[0xAA; 13]);
        assert_eq!(view.message, b"hello");
        assert!(view.marked());
        assert_eq!(view.header.call_depth, 3);
        // Truncations and bad fields are typed errors.
        assert!(matches!(
            parse_detail(&buf[..n - 8], 0),
            Err(RecordError::Truncated { .. })
        ));
        let mut bad = buf.clone();
        bad[4] = 99;
        assert!(matches!(
            parse_detail(&bad[..n], 0),
            Err(RecordError::BadKind { kind: 99, .. })
        ));
        let mut bad = buf.clone();
        bad[0] = 12;
        assert!(matches!(
            parse_detail(&bad[..n], 0),
            Err(RecordError::BadLength { .. })
        ));
        let mut bad = buf.clone();
        bad[6] = 200;
        assert!(matches!(
            parse_detail(&bad[..n], 0),
            Err(RecordError::BadPayload { .. })
        ));
        let too_big = DetailRecord {
            stack: &[0; 300],
            ..rec
        };
        assert_eq!(too_big.check(), Err(RecordError::TooLarge));
    }

    #[test]
    fn index_records_report_partial_tail_and_bad_kind() {
        let rec = IndexRecord {
            kind: 1,
            ..Default::default()
        };
        let mut bytes = rec.as_bytes().to_vec();
        bytes.extend_from_slice(rec.as_bytes());
        assert_eq!(index_records(&bytes).filter(|r| r.is_ok()).count(), 2);
        bytes.extend_from_slice(&[0; 5]);
        let all: Vec<_> = index_records(&bytes).collect();
        assert_eq!(all.len(), 3);
        assert!(matches!(all[2], Err(RecordError::Truncated { offset: 64 })));
        let bad = IndexRecord {
            kind: 77,
            ..Default::default()
        };
        let v: Vec<_> = index_records(bad.as_bytes()).collect();
        assert!(matches!(v[0], Err(RecordError::BadKind { kind: 77, .. })));
    }
}
