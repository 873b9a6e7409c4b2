//! The hand-written ATF v4 encoder: borrowed events in, varint-delimited protobuf bytes out,
//! appended to a caller-owned `Vec<u8>` with no heap allocation of its own.
//!
//! **The generic encoder** ([`encode_delimited`]) takes any [`EventRef`]. It computes every
//! nested length up front (a sizing pass over the borrowed inputs), reserves the whole record
//! once and then writes it in field-number order straight into the buffer's spare capacity
//! (nothing is zero-filled first). The bytes are exactly what `prost` would produce for the
//! equal owned [`Event`] (proto3 defaults omitted, map entries in the order given, a map
//! entry's default key or value omitted), which the tests check against `prost` and against
//! hand-assembled byte arrays. The limits of the ATF v4 format are enforced before anything is
//! written: [`MAX_REGISTERS`] per register map, [`MAX_STACK_BYTES`] of stack copy,
//! [`MAX_ARGS`] arguments, and a record limit ([`DEFAULT_MAX_RECORD_LEN`] unless given).
//!
//! **The index fast path** ([`encode_index_delimited`], [`TraceWriter::write_index`]) takes
//! an [`IndexEventRef`]: a function call or return whose payload is only a symbol and an
//! address, the shape of every index-lane record the drain persists. It makes one pass and no
//! sizing pass:
//! - the payload message (`varint(len) ++ {symbol, address}`) comes pre-encoded from a
//!   [`FunctionPayload`], built once when the function id is defined and replaced whole when a
//!   definition changes (so it can never be stale), and short ones are copied as one
//!   fixed-size block;
//! - the rest of the body is written straight into the buffer's spare capacity, reserved for
//!   the largest such event; the timestamp's length byte is filled in after its fields, and
//!   the record's length prefix last, into the byte left for it before the body (a body of 128
//!   bytes or more, a long symbol, is moved up for the longer prefix);
//! - only the record limit is checked: an index-shaped event has no registers, stack copy or
//!   arguments to check.
//!
//! **Identity guarantee.** For every [`IndexEventRef`], event id and record limit, the fast
//! path appends exactly the bytes, and returns exactly the result (length or
//! [`EncodeError::RecordTooLarge`] with the same length), that [`encode_delimited_with_limit`]
//! gives for [`IndexEventRef::to_event_ref`]; on error the buffer is unchanged in both. A reader
//! cannot tell which path wrote an event. `tests/index_fast_path.rs` checks this over random
//! events (symbols empty, long, any Unicode; ids, timestamps and depths at their varint
//! boundaries and extremes; both lanes and kinds), and the controller's `AtfSink` tests check
//! that its records are byte-identical to the record mapper's events through the generic
//! encoder.
//!
//! [`TraceWriter::write_index`]: crate::TraceWriter::write_index

use std::collections::BTreeMap;
use std::mem::MaybeUninit;

use crate::error::EncodeError;
use crate::schema::{self, Event, Lane, Timestamp, event::Payload};
use crate::window::PersistenceWindow;

/// At most this many registers in one register map (`ATF_V4_MAX_REGISTERS`).
pub const MAX_REGISTERS: usize = 16;
/// At most this many bytes of stack copy (`ATF_V4_MAX_STACK_BYTES`).
pub const MAX_STACK_BYTES: usize = 256;
/// At most this many arguments in a `TraceStart` (`ATF_V4_MAX_ARGS`).
pub const MAX_ARGS: usize = 16;
/// Default limit on one record's encoded body, shared by the writer and the reader (1 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 1 << 20;

/// One named register value. In the file a register set is a protobuf `map<string, uint64>`:
/// a decoder keeps the last value of a name given twice.
pub type Register<'a> = (&'a str, u64);

/// A borrowed event, ready to encode. The writer assigns `event_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Per-session thread number (`Event.thread_id`).
    pub thread_id: i32,
    /// Trace-clock nanoseconds, stored as `Timestamp{seconds = ns / 1e9, nanos = ns % 1e9}`.
    pub timestamp_ns: u64,
    /// Extension field 4; 0 means unknown and is omitted on the wire.
    pub function_id: u64,
    /// Extension field 5; 0 is omitted on the wire.
    pub call_depth: u32,
    /// Extension field 6; [`Lane::Index`] (0) is omitted on the wire.
    pub lane: Lane,
    /// What happened.
    pub payload: PayloadRef<'a>,
}

impl<'a> EventRef<'a> {
    /// An index-lane event with no function id and depth 0.
    pub const fn new(thread_id: i32, timestamp_ns: u64, payload: PayloadRef<'a>) -> Self {
        EventRef {
            thread_id,
            timestamp_ns,
            function_id: 0,
            call_depth: 0,
            lane: Lane::Index,
            payload,
        }
    }

    /// A [`PayloadRef::SymbolDef`] event naming `function_id` (thread 0, no function id).
    pub const fn symbol_def(
        timestamp_ns: u64,
        function_id: u64,
        symbol: &'a str,
        address: u64,
        module: &'a str,
    ) -> Self {
        EventRef::new(
            0,
            timestamp_ns,
            PayloadRef::SymbolDef {
                function_id,
                symbol,
                address,
                module,
                file: "",
                line: 0,
            },
        )
    }

    /// This event with the source location `file`:`line` of the function it names, when it is
    /// a [`PayloadRef::SymbolDef`] (any other event is returned unchanged).
    pub const fn at_source(mut self, at_file: &'a str, at_line: u32) -> Self {
        if let PayloadRef::SymbolDef {
            ref mut file,
            ref mut line,
            ..
        } = self.payload
        {
            *file = at_file;
            *line = at_line;
        }
        self
    }

    /// A [`PayloadRef::ThreadDef`] event describing session thread `thread_id` (the event
    /// itself is on thread 0).
    pub const fn thread_def(
        timestamp_ns: u64,
        thread_id: i32,
        pid: u32,
        os_tid: u64,
        name: &'a str,
        verified: bool,
    ) -> Self {
        EventRef::new(
            0,
            timestamp_ns,
            PayloadRef::ThreadDef {
                thread_id,
                pid,
                os_tid,
                name,
                verified,
            },
        )
    }

    /// Sets the function id and call depth.
    pub const fn with_function(mut self, function_id: u64, call_depth: u32) -> Self {
        self.function_id = function_id;
        self.call_depth = call_depth;
        self
    }

    /// Sets the lane.
    pub const fn on_lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// The owned [`Event`] these bytes decode to (allocates; for tools and tests).
    pub fn to_event(&self, event_id: u64) -> Event {
        Event {
            event_id,
            thread_id: self.thread_id,
            timestamp: Some(Timestamp::from_nanos(self.timestamp_ns)),
            function_id: self.function_id,
            call_depth: self.call_depth,
            lane: self.lane.as_u32(),
            payload: Some(self.payload.to_payload()),
        }
    }
}

/// A borrowed payload: one variant per `Event.payload` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadRef<'a> {
    /// Member 10.
    TraceStart {
        /// Path of the traced executable.
        executable_path: &'a str,
        /// Arguments, at most [`MAX_ARGS`].
        args: &'a [&'a str],
        /// `"linux"`, `"darwin"`, ...
        operating_system: &'a str,
        /// `"x86_64"`, `"aarch64"`, ...
        cpu_architecture: &'a str,
    },
    /// Member 11.
    TraceEnd {
        /// Exit code of the traced process.
        exit_code: i32,
    },
    /// Member 12.
    FunctionCall {
        /// Symbol, `""` when unresolved.
        symbol: &'a str,
        /// Address, 0 when unresolved.
        address: u64,
        /// At most [`MAX_REGISTERS`].
        argument_registers: &'a [Register<'a>],
        /// At most [`MAX_STACK_BYTES`].
        stack_shallow_copy: &'a [u8],
    },
    /// Member 13.
    FunctionReturn {
        /// Symbol, `""` when unresolved.
        symbol: &'a str,
        /// Address, 0 when unresolved.
        address: u64,
        /// At most [`MAX_REGISTERS`].
        return_registers: &'a [Register<'a>],
    },
    /// Member 14.
    SignalDelivery {
        /// Signal number.
        number: i32,
        /// Signal name.
        name: &'a str,
        /// At most [`MAX_REGISTERS`].
        registers: &'a [Register<'a>],
    },
    /// Member 15 (extension): a loss marker.
    EventsLost {
        /// The lane that lost events.
        lane: Lane,
        /// How many.
        count: u64,
        /// Why: for ADA's controller one of the `LossCause` names (`"overwritten"`,
        /// `"refused"`, `"too_large"`, `"no_slot"`).
        cause: &'a str,
        /// Trace-clock time of the first lost event (0 = unknown).
        first_lost_ns: u64,
        /// Trace-clock time of the last lost event (0 = unknown).
        last_lost_ns: u64,
    },
    /// Member 16 (extension): a custom payload.
    Custom {
        /// Payload kind.
        name: &'a str,
        /// Opaque bytes (bounded only by the record limit).
        data: &'a [u8],
    },
    /// Member 17 (extension): a persistence window, placed before its events.
    WindowMark(PersistenceWindow),
    /// Member 18 (extension): the name of a function id, placed before its first use (see
    /// [`EventRef::symbol_def`]).
    SymbolDef {
        /// The function id being named.
        function_id: u64,
        /// The symbol.
        symbol: &'a str,
        /// Address, 0 when unknown.
        address: u64,
        /// Module, `""` when unknown.
        module: &'a str,
        /// The source file that defines it, `""` when unknown.
        file: &'a str,
        /// The line in `file`, 0 when unknown.
        line: u32,
    },
    /// Member 19 (extension): the identity of a session thread, placed before that thread's
    /// first event (see [`EventRef::thread_def`]).
    ThreadDef {
        /// The per-session thread number being described.
        thread_id: i32,
        /// The thread's process.
        pid: u32,
        /// The operating system's thread id.
        os_tid: u64,
        /// Thread name, `""` when unknown.
        name: &'a str,
        /// Whether the controller verified `pid` and `os_tid`.
        verified: bool,
    },
}

impl PayloadRef<'_> {
    /// The owned payload (allocates).
    pub fn to_payload(&self) -> Payload {
        fn regs(r: &[Register<'_>]) -> BTreeMap<String, u64> {
            r.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        }
        match *self {
            PayloadRef::TraceStart {
                executable_path,
                args,
                operating_system,
                cpu_architecture,
            } => Payload::TraceStart(schema::TraceStart {
                executable_path: executable_path.to_owned(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                operating_system: operating_system.to_owned(),
                cpu_architecture: cpu_architecture.to_owned(),
            }),
            PayloadRef::TraceEnd { exit_code } => Payload::TraceEnd(schema::TraceEnd { exit_code }),
            PayloadRef::FunctionCall {
                symbol,
                address,
                argument_registers,
                stack_shallow_copy,
            } => Payload::FunctionCall(schema::FunctionCall {
                symbol: symbol.to_owned(),
                address,
                argument_registers: regs(argument_registers),
                stack_shallow_copy: stack_shallow_copy.to_vec(),
            }),
            PayloadRef::FunctionReturn {
                symbol,
                address,
                return_registers,
            } => Payload::FunctionReturn(schema::FunctionReturn {
                symbol: symbol.to_owned(),
                address,
                return_registers: regs(return_registers),
            }),
            PayloadRef::SignalDelivery {
                number,
                name,
                registers,
            } => Payload::SignalDelivery(schema::SignalDelivery {
                number,
                name: name.to_owned(),
                registers: regs(registers),
            }),
            PayloadRef::EventsLost {
                lane,
                count,
                cause,
                first_lost_ns,
                last_lost_ns,
            } => Payload::EventsLost(schema::EventsLost {
                lane: lane.as_u32(),
                count,
                cause: cause.to_owned(),
                first_lost_ns,
                last_lost_ns,
            }),
            PayloadRef::Custom { name, data } => Payload::Custom(schema::Custom {
                name: name.to_owned(),
                data: data.to_vec(),
            }),
            PayloadRef::WindowMark(w) => Payload::WindowMark(w.into()),
            PayloadRef::SymbolDef {
                function_id,
                symbol,
                address,
                module,
                file,
                line,
            } => Payload::SymbolDef(schema::SymbolDef {
                function_id,
                symbol: symbol.to_owned(),
                address,
                module: module.to_owned(),
                file: file.to_owned(),
                line,
            }),
            PayloadRef::ThreadDef {
                thread_id,
                pid,
                os_tid,
                name,
                verified,
            } => Payload::ThreadDef(schema::ThreadDef {
                thread_id,
                pid,
                os_tid,
                name: name.to_owned(),
                verified,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire primitives. key = (field_number << 3) | wire_type; wire types used: 0 varint, 2 length.

const VARINT: u32 = 0;
const LEN: u32 = 2;

const fn key(field: u32, wire_type: u32) -> u64 {
    ((field << 3) | wire_type) as u64
}

/// Bytes needed for `v` as a base-128 varint (1..=10); the same formula as protobuf's
/// `VarintSize64`.
#[inline(always)]
pub const fn varint_len(v: u64) -> usize {
    let log2 = 63 - (v | 1).leading_zeros();
    ((log2 * 9 + 73) / 64) as usize
}

/// Writes front to back into a pre-sized slice of (possibly uninitialized) bytes: the spare
/// capacity of the output `Vec`, so nothing is zero-filled first. Sizes are computed before
/// writing, so every index is in bounds; an out-of-bounds write would be an encoder bug and
/// panics rather than corrupting. Every write starts at `pos` and advances `pos` past the
/// bytes it means (a fixed-size block copy may also write a few bytes after them, which the
/// next write overwrites or which stay outside the record), so the first `pos` bytes are
/// always initialized (what [`commit`] and the index fast path rely on).
struct Cursor<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pos: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.pos] = MaybeUninit::new(b);
        self.pos += 1;
    }

    #[inline(always)]
    fn slice(&mut self, s: &[u8]) {
        copy_into(&mut self.buf[self.pos..self.pos + s.len()], s);
        self.pos += s.len();
    }
}

/// Copies `src` into `dst`, which has the same length: one `memcpy`, or a few vector moves for
/// a fixed-size block (what `<[MaybeUninit<u8>]>::write_copy_of_slice` does; that method is
/// newer than this crate's minimum Rust version, and a byte loop does not compile to a copy).
#[inline(always)]
fn copy_into(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    // `MaybeUninit<u8>` has the same size, alignment and layout as `u8`, and every initialized
    // byte is a valid `MaybeUninit<u8>`; the view is shared and nothing writes through it.
    // SAFETY: the cast view of `src` is valid for `src`'s lifetime (see above).
    let src: &[MaybeUninit<u8>] = unsafe { &*(src as *const [u8] as *const [MaybeUninit<u8>]) };
    dst.copy_from_slice(src);
}

/// Runs `fill` on a cursor over `total` bytes of `out`'s spare capacity (reserving it first,
/// never zero-filling) and makes them part of `out`. `fill` must write exactly `total` bytes;
/// anything else is an encoder bug and panics before `out` changes (no bad input can cause it:
/// the sizes come from the same inputs the writing does).
#[inline(always)]
fn commit(out: &mut Vec<u8>, total: usize, fill: impl FnOnce(&mut Cursor<'_>)) {
    out.reserve(total);
    let mut cur = Cursor {
        buf: &mut out.spare_capacity_mut()[..total],
        pos: 0,
    };
    fill(&mut cur);
    assert_eq!(cur.pos, total, "size pass and write pass disagree");
    let len = out.len() + total;
    // `reserve` made room for `total` more bytes, and the cursor wrote each of the `total`
    // bytes after `out.len()` (every write starts at `pos` and advances it past what it wrote,
    // from 0, and `pos` reached `total`).
    // SAFETY: so `0..len` is initialized and within the capacity.
    unsafe { out.set_len(len) };
}

#[inline(always)]
fn put_varint(out: &mut Cursor<'_>, mut v: u64) {
    while v >= 0x80 {
        out.byte((v as u8) | 0x80);
        v >>= 7;
    }
    out.byte(v as u8);
}

/// `int32` fields are sign-extended to 64 bits on the wire (negative values take 10 bytes).
#[inline(always)]
const fn int32_bits(v: i32) -> u64 {
    v as i64 as u64
}

/// Length of a varint scalar field, 0 when it holds the proto3 default.
#[inline(always)]
const fn varint_field_len(field: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        varint_len(key(field, VARINT)) + varint_len(v)
    }
}

#[inline(always)]
fn put_varint_field(out: &mut Cursor<'_>, field: u32, v: u64) {
    if v != 0 {
        put_varint(out, key(field, VARINT));
        put_varint(out, v);
    }
}

/// Length of a length-delimited field that is always present (sub-messages, repeated items).
#[inline(always)]
const fn len_field_len(field: u32, len: usize) -> usize {
    varint_len(key(field, LEN)) + varint_len(len as u64) + len
}

/// Length of a singular `string`/`bytes` field, 0 when empty.
#[inline(always)]
const fn bytes_field_len(field: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len_field_len(field, len)
    }
}

#[inline(always)]
fn put_len_header(out: &mut Cursor<'_>, field: u32, len: usize) {
    put_varint(out, key(field, LEN));
    put_varint(out, len as u64);
}

#[inline(always)]
fn put_bytes_field(out: &mut Cursor<'_>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_len_header(out, field, bytes.len());
        out.slice(bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes.

#[inline]
fn map_entry_len(name: &str, value: u64) -> usize {
    bytes_field_len(1, name.len()) + varint_field_len(2, value)
}

#[inline]
fn registers_len(field: u32, regs: &[Register<'_>]) -> usize {
    regs.iter()
        .map(|(n, v)| len_field_len(field, map_entry_len(n, *v)))
        .sum()
}

fn timestamp_len(ts: Timestamp) -> usize {
    varint_field_len(1, ts.seconds as u64) + varint_field_len(2, int32_bits(ts.nanos))
}

fn window_len(w: &PersistenceWindow) -> usize {
    varint_field_len(1, w.window_id)
        + varint_field_len(2, w.start_ns)
        + varint_field_len(3, w.end_ns)
        + varint_field_len(4, w.first_mark_ns)
        + varint_field_len(5, w.last_event_ns)
        + varint_field_len(6, w.total_events)
        + varint_field_len(7, w.marked_events)
        + varint_field_len(8, u64::from(w.mark_seen))
        + varint_field_len(9, int32_bits(w.thread_id))
        + varint_field_len(10, w.last_mark_ns)
        // proto3 `optional`: present (even when 0) exactly when set.
        + w.trigger.map_or(0, |t| {
            varint_len(key(11, VARINT)) + varint_len(u64::from(t))
        })
        + varint_field_len(12, w.pre_roll_events)
        + varint_field_len(13, w.discarded_events)
        + varint_field_len(14, w.over_budget_events)
}

/// The payload's oneof field number and its validated body length.
fn payload_len(p: &PayloadRef<'_>) -> Result<(u32, usize), EncodeError> {
    fn check_regs(regs: &[Register<'_>]) -> Result<(), EncodeError> {
        if regs.len() > MAX_REGISTERS {
            return Err(EncodeError::TooManyRegisters {
                count: regs.len(),
                max: MAX_REGISTERS,
            });
        }
        Ok(())
    }
    Ok(match *p {
        PayloadRef::TraceStart {
            executable_path,
            args,
            operating_system,
            cpu_architecture,
        } => {
            if args.len() > MAX_ARGS {
                return Err(EncodeError::TooManyArgs {
                    count: args.len(),
                    max: MAX_ARGS,
                });
            }
            let args_len: usize = args.iter().map(|a| len_field_len(2, a.len())).sum();
            (
                10,
                bytes_field_len(1, executable_path.len())
                    + args_len
                    + bytes_field_len(3, operating_system.len())
                    + bytes_field_len(4, cpu_architecture.len()),
            )
        }
        PayloadRef::TraceEnd { exit_code } => (11, varint_field_len(1, int32_bits(exit_code))),
        PayloadRef::FunctionCall {
            symbol,
            address,
            argument_registers,
            stack_shallow_copy,
        } => {
            check_regs(argument_registers)?;
            if stack_shallow_copy.len() > MAX_STACK_BYTES {
                return Err(EncodeError::StackTooLarge {
                    len: stack_shallow_copy.len(),
                    max: MAX_STACK_BYTES,
                });
            }
            (
                12,
                bytes_field_len(1, symbol.len())
                    + varint_field_len(2, address)
                    + registers_len(3, argument_registers)
                    + bytes_field_len(4, stack_shallow_copy.len()),
            )
        }
        PayloadRef::FunctionReturn {
            symbol,
            address,
            return_registers,
        } => {
            check_regs(return_registers)?;
            (
                13,
                bytes_field_len(1, symbol.len())
                    + varint_field_len(2, address)
                    + registers_len(3, return_registers),
            )
        }
        PayloadRef::SignalDelivery {
            number,
            name,
            registers,
        } => {
            check_regs(registers)?;
            (
                14,
                varint_field_len(1, int32_bits(number))
                    + bytes_field_len(2, name.len())
                    + registers_len(3, registers),
            )
        }
        PayloadRef::EventsLost {
            lane,
            count,
            cause,
            first_lost_ns,
            last_lost_ns,
        } => (
            15,
            varint_field_len(1, u64::from(lane.as_u32()))
                + varint_field_len(2, count)
                + bytes_field_len(3, cause.len())
                + varint_field_len(4, first_lost_ns)
                + varint_field_len(5, last_lost_ns),
        ),
        PayloadRef::Custom { name, data } => (
            16,
            bytes_field_len(1, name.len()) + bytes_field_len(2, data.len()),
        ),
        PayloadRef::WindowMark(ref w) => (17, window_len(w)),
        PayloadRef::SymbolDef {
            function_id,
            symbol,
            address,
            module,
            file,
            line,
        } => (
            18,
            varint_field_len(1, function_id)
                + bytes_field_len(2, symbol.len())
                + varint_field_len(3, address)
                + bytes_field_len(4, module.len())
                + bytes_field_len(5, file.len())
                + varint_field_len(6, u64::from(line)),
        ),
        PayloadRef::ThreadDef {
            thread_id,
            pid,
            os_tid,
            name,
            verified,
        } => (
            19,
            varint_field_len(1, int32_bits(thread_id))
                + varint_field_len(2, u64::from(pid))
                + varint_field_len(3, os_tid)
                + bytes_field_len(4, name.len())
                + varint_field_len(5, u64::from(verified)),
        ),
    })
}

/// Everything the writing pass needs, computed by the sizing pass.
struct Plan {
    timestamp: Timestamp,
    timestamp_len: usize,
    payload_field: u32,
    payload_len: usize,
    body_len: usize,
}

fn plan(event_id: u64, ev: &EventRef<'_>) -> Result<Plan, EncodeError> {
    let timestamp = Timestamp::from_nanos(ev.timestamp_ns);
    let timestamp_len = timestamp_len(timestamp);
    let (payload_field, payload_len) = payload_len(&ev.payload)?;
    let body_len = varint_field_len(1, event_id)
        + varint_field_len(2, int32_bits(ev.thread_id))
        + len_field_len(3, timestamp_len)
        + varint_field_len(4, ev.function_id)
        + varint_field_len(5, u64::from(ev.call_depth))
        + varint_field_len(6, u64::from(ev.lane.as_u32()))
        + len_field_len(payload_field, payload_len);
    Ok(Plan {
        timestamp,
        timestamp_len,
        payload_field,
        payload_len,
        body_len,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing.

#[inline]
fn put_registers(out: &mut Cursor<'_>, field: u32, regs: &[Register<'_>]) {
    for (name, value) in regs {
        put_len_header(out, field, map_entry_len(name, *value));
        put_bytes_field(out, 1, name.as_bytes());
        put_varint_field(out, 2, *value);
    }
}

fn put_payload(out: &mut Cursor<'_>, p: &PayloadRef<'_>) {
    match *p {
        PayloadRef::TraceStart {
            executable_path,
            args,
            operating_system,
            cpu_architecture,
        } => {
            put_bytes_field(out, 1, executable_path.as_bytes());
            for a in args {
                put_len_header(out, 2, a.len());
                out.slice(a.as_bytes());
            }
            put_bytes_field(out, 3, operating_system.as_bytes());
            put_bytes_field(out, 4, cpu_architecture.as_bytes());
        }
        PayloadRef::TraceEnd { exit_code } => put_varint_field(out, 1, int32_bits(exit_code)),
        PayloadRef::FunctionCall {
            symbol,
            address,
            argument_registers,
            stack_shallow_copy,
        } => {
            put_bytes_field(out, 1, symbol.as_bytes());
            put_varint_field(out, 2, address);
            put_registers(out, 3, argument_registers);
            put_bytes_field(out, 4, stack_shallow_copy);
        }
        PayloadRef::FunctionReturn {
            symbol,
            address,
            return_registers,
        } => {
            put_bytes_field(out, 1, symbol.as_bytes());
            put_varint_field(out, 2, address);
            put_registers(out, 3, return_registers);
        }
        PayloadRef::SignalDelivery {
            number,
            name,
            registers,
        } => {
            put_varint_field(out, 1, int32_bits(number));
            put_bytes_field(out, 2, name.as_bytes());
            put_registers(out, 3, registers);
        }
        PayloadRef::EventsLost {
            lane,
            count,
            cause,
            first_lost_ns,
            last_lost_ns,
        } => {
            put_varint_field(out, 1, u64::from(lane.as_u32()));
            put_varint_field(out, 2, count);
            put_bytes_field(out, 3, cause.as_bytes());
            put_varint_field(out, 4, first_lost_ns);
            put_varint_field(out, 5, last_lost_ns);
        }
        PayloadRef::Custom { name, data } => {
            put_bytes_field(out, 1, name.as_bytes());
            put_bytes_field(out, 2, data);
        }
        PayloadRef::WindowMark(ref w) => {
            put_varint_field(out, 1, w.window_id);
            put_varint_field(out, 2, w.start_ns);
            put_varint_field(out, 3, w.end_ns);
            put_varint_field(out, 4, w.first_mark_ns);
            put_varint_field(out, 5, w.last_event_ns);
            put_varint_field(out, 6, w.total_events);
            put_varint_field(out, 7, w.marked_events);
            put_varint_field(out, 8, u64::from(w.mark_seen));
            put_varint_field(out, 9, int32_bits(w.thread_id));
            put_varint_field(out, 10, w.last_mark_ns);
            if let Some(t) = w.trigger {
                put_varint(out, key(11, VARINT));
                put_varint(out, u64::from(t));
            }
            put_varint_field(out, 12, w.pre_roll_events);
            put_varint_field(out, 13, w.discarded_events);
            put_varint_field(out, 14, w.over_budget_events);
        }
        PayloadRef::SymbolDef {
            function_id,
            symbol,
            address,
            module,
            file,
            line,
        } => {
            put_varint_field(out, 1, function_id);
            put_bytes_field(out, 2, symbol.as_bytes());
            put_varint_field(out, 3, address);
            put_bytes_field(out, 4, module.as_bytes());
            put_bytes_field(out, 5, file.as_bytes());
            put_varint_field(out, 6, u64::from(line));
        }
        PayloadRef::ThreadDef {
            thread_id,
            pid,
            os_tid,
            name,
            verified,
        } => {
            put_varint_field(out, 1, int32_bits(thread_id));
            put_varint_field(out, 2, u64::from(pid));
            put_varint_field(out, 3, os_tid);
            put_bytes_field(out, 4, name.as_bytes());
            put_varint_field(out, 5, u64::from(verified));
        }
    }
}

fn put_body(out: &mut Cursor<'_>, event_id: u64, ev: &EventRef<'_>, plan: &Plan) {
    put_varint_field(out, 1, event_id);
    put_varint_field(out, 2, int32_bits(ev.thread_id));
    put_len_header(out, 3, plan.timestamp_len);
    put_varint_field(out, 1, plan.timestamp.seconds as u64);
    put_varint_field(out, 2, int32_bits(plan.timestamp.nanos));
    put_varint_field(out, 4, ev.function_id);
    put_varint_field(out, 5, u64::from(ev.call_depth));
    put_varint_field(out, 6, u64::from(ev.lane.as_u32()));
    put_len_header(out, plan.payload_field, plan.payload_len);
    put_payload(out, &ev.payload);
}

/// The length of the encoded `Event` body (without its length prefix), after checking the
/// per-field limits.
pub fn encoded_len(event_id: u64, event: &EventRef<'_>) -> Result<usize, EncodeError> {
    plan(event_id, event).map(|p| p.body_len)
}

/// Appends `varint(len) ++ Event` for `event` to `out` and returns the number of bytes
/// appended. Uses [`DEFAULT_MAX_RECORD_LEN`]. On error `out` is unchanged.
pub fn encode_delimited(
    event_id: u64,
    event: &EventRef<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    encode_delimited_with_limit(event_id, event, out, DEFAULT_MAX_RECORD_LEN)
}

/// [`encode_delimited`] with an explicit limit on the body length.
///
/// `out` grows only when its spare capacity is too small for the record; reuse one buffer and
/// the encoder performs no allocation.
pub fn encode_delimited_with_limit(
    event_id: u64,
    event: &EventRef<'_>,
    out: &mut Vec<u8>,
    max_record_len: usize,
) -> Result<usize, EncodeError> {
    let plan = plan(event_id, event)?;
    if plan.body_len > max_record_len {
        return Err(EncodeError::RecordTooLarge {
            len: plan.body_len,
            max: max_record_len,
        });
    }
    let total = varint_len(plan.body_len as u64) + plan.body_len;
    commit(out, total, |cur| {
        put_varint(cur, plan.body_len as u64);
        put_body(cur, event_id, event, &plan);
    });
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// The index fast path.

/// The symbol and address of one function, with what the `FunctionCall` / `FunctionReturn`
/// message naming them encodes to pre-encoded: the message's length varint and its body (both
/// messages hold `symbol` in field 1 and `address` in field 2, so one body serves both).
///
/// Build one per function id when the id is defined, and build a new one (replacing the old)
/// when a definition changes: it is immutable, so a cached body can never go stale. The
/// [`Default`] value is the unresolved function (`""`, address 0), whose body is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionPayload {
    symbol: Box<str>,
    address: u64,
    /// `varint(body.len()) ++ body`, then zeros up to at least [`SMALL_PAYLOAD`] bytes (so a
    /// short payload is copied as one fixed-size block).
    padded: Box<[u8]>,
    /// The length of `varint(body.len()) ++ body`.
    len: usize,
    /// The length of the body alone.
    body_len: usize,
}

/// Payloads (length varint and body) of at most this many bytes are copied as one fixed-size
/// block, which compiles to a few vector moves instead of a `memcpy` call.
const SMALL_PAYLOAD: usize = 32;

impl FunctionPayload {
    /// The payload for `symbol` at `address` (`""` / 0 when unknown).
    pub fn new(symbol: &str, address: u64) -> Self {
        let body_len = bytes_field_len(1, symbol.len()) + varint_field_len(2, address);
        let len = varint_len(body_len as u64) + body_len;
        let mut padded = Vec::with_capacity(len.max(SMALL_PAYLOAD));
        commit(&mut padded, len, |cur| {
            put_varint(cur, body_len as u64);
            put_bytes_field(cur, 1, symbol.as_bytes());
            put_varint_field(cur, 2, address);
        });
        FunctionPayload {
            symbol: symbol.into(),
            address,
            padded: {
                padded.resize(len.max(SMALL_PAYLOAD), 0);
                padded.into_boxed_slice()
            },
            len,
            body_len,
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The address.
    pub fn address(&self) -> u64 {
        self.address
    }
}

impl Default for FunctionPayload {
    /// The unresolved function: `""` at address 0, an empty message.
    fn default() -> Self {
        FunctionPayload::new("", 0)
    }
}

/// Which of the two index-shaped payloads an [`IndexEventRef`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// `FunctionCall` (payload member 12).
    Call,
    /// `FunctionReturn` (payload member 13).
    Return,
}

impl IndexKind {
    /// The oneof member number.
    const fn field(self) -> u32 {
        match self {
            IndexKind::Call => 12,
            IndexKind::Return => 13,
        }
    }
}

/// An index-shaped event: a function call or return with a symbol and an address and nothing
/// else in its payload (no registers, no stack copy), what the drain writes for every index
/// lane record. It encodes to exactly the bytes of [`IndexEventRef::to_event_ref`]'s event,
/// in one pass ([`encode_index_delimited`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEventRef<'a> {
    /// Per-session thread number (`Event.thread_id`).
    pub thread_id: i32,
    /// Trace-clock nanoseconds.
    pub timestamp_ns: u64,
    /// Extension field 4 (0 is omitted on the wire).
    pub function_id: u64,
    /// Extension field 5 (0 is omitted on the wire).
    pub call_depth: u32,
    /// Extension field 6 ([`Lane::Index`] is omitted on the wire).
    pub lane: Lane,
    /// Call or return.
    pub kind: IndexKind,
    /// The function's symbol and address, pre-encoded.
    pub function: &'a FunctionPayload,
}

impl<'a> IndexEventRef<'a> {
    /// The same event for the generic encoder: a `FunctionCall` with no registers and no stack
    /// copy, or a `FunctionReturn` with no registers.
    pub fn to_event_ref(&self) -> EventRef<'a> {
        let (symbol, address) = (self.function.symbol(), self.function.address);
        let payload = match self.kind {
            IndexKind::Call => PayloadRef::FunctionCall {
                symbol,
                address,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
            IndexKind::Return => PayloadRef::FunctionReturn {
                symbol,
                address,
                return_registers: &[],
            },
        };
        EventRef::new(self.thread_id, self.timestamp_ns, payload)
            .with_function(self.function_id, self.call_depth)
            .on_lane(self.lane)
    }
}

/// The most bytes an index-shaped event's body takes besides its payload body: `event_id`
/// (key + 10), `thread_id` (key + 10, a negative `int32` is sign-extended), `timestamp` (key +
/// 1-byte length + seconds: key + 5, as `u64::MAX / 1e9 < 2^35` + nanos: key + 5, as
/// `1e9 < 2^35`), `function_id` (key + 10), `call_depth` (key + 5), `lane` (key + 1) and the
/// payload's key (the length varint is part of [`FunctionPayload`]'s bytes).
const INDEX_HEAD_MAX: usize = 11 + 11 + (2 + 6 + 6) + 11 + 6 + 2 + 1;

/// The most bytes a varint length prefix takes.
const PREFIX_MAX: usize = 10;

/// [`encode_delimited`] for an index-shaped event: the same bytes (and the same
/// [`EncodeError::RecordTooLarge`] for a record over [`DEFAULT_MAX_RECORD_LEN`]), written in
/// one pass.
#[inline]
pub fn encode_index_delimited(
    event_id: u64,
    event: &IndexEventRef<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    encode_index_delimited_with_limit(event_id, event, out, DEFAULT_MAX_RECORD_LEN)
}

/// [`encode_delimited_with_limit`] for an index-shaped event, in one pass and with no sizing
/// pass at all: the body is written straight into `out`'s spare capacity (reserved for the
/// largest such event, never zero-filled) one byte after where the record starts, the
/// timestamp's length byte is filled in after its fields, and the record's length prefix is
/// written last into the byte left for it (a body of 128 bytes or more, i.e. a long symbol,
/// is moved up to make room for a longer prefix). The payload body comes pre-encoded from the
/// [`FunctionPayload`]. There is nothing to check but the record limit: an index-shaped event
/// has no registers, stack copy or arguments.
///
/// The bytes are identical to [`encode_delimited_with_limit`]'s for
/// [`IndexEventRef::to_event_ref`] (the tests compare them over random events), and so is the
/// error; on error `out` is unchanged.
#[inline]
pub fn encode_index_delimited_with_limit(
    event_id: u64,
    event: &IndexEventRef<'_>,
    out: &mut Vec<u8>,
    max_record_len: usize,
) -> Result<usize, EncodeError> {
    let function = event.function;
    let payload = &function.padded[..function.len];
    if function.body_len > max_record_len {
        // Too large whatever the rest holds; the generic sizing gives the exact length.
        return Err(too_large(event_id, event, max_record_len));
    }
    // Room for the largest record with this payload, and for a fixed-size copy of a small one.
    let room = PREFIX_MAX + INDEX_HEAD_MAX + payload.len().max(SMALL_PAYLOAD);
    out.reserve(room);
    let spare = &mut out.spare_capacity_mut()[..room];
    let ts = Timestamp::from_nanos(event.timestamp_ns);
    let mut cur = Cursor {
        buf: spare,
        // Byte 0 is left for a one-byte length prefix.
        pos: 1,
    };
    put_varint_field(&mut cur, 1, event_id);
    put_varint_field(&mut cur, 2, int32_bits(event.thread_id));
    cur.byte(key(3, LEN) as u8);
    // The timestamp's length (at most 12, one byte) goes here once its fields are written.
    let ts_at = cur.pos;
    cur.pos += 1;
    put_varint_field(&mut cur, 1, ts.seconds as u64);
    put_varint_field(&mut cur, 2, int32_bits(ts.nanos));
    let ts_len = cur.pos - ts_at - 1;
    cur.buf[ts_at] = MaybeUninit::new(ts_len as u8);
    put_varint_field(&mut cur, 4, event.function_id);
    put_varint_field(&mut cur, 5, u64::from(event.call_depth));
    put_varint_field(&mut cur, 6, u64::from(event.lane.as_u32()));
    // Both oneof keys, (12 << 3) | 2 and (13 << 3) | 2, are one byte.
    cur.byte(key(event.kind.field(), LEN) as u8);
    if let Some(block) = function.padded.first_chunk::<SMALL_PAYLOAD>()
        && payload.len() <= SMALL_PAYLOAD
    {
        // The copy also writes the padding after the payload: those bytes lie past the
        // record's end, inside the reserved room, and never become part of `out`.
        copy_into(&mut cur.buf[cur.pos..cur.pos + SMALL_PAYLOAD], block);
        cur.pos += payload.len();
    } else {
        cur.slice(payload);
    }
    let body_len = cur.pos - 1;
    if body_len > max_record_len {
        return Err(EncodeError::RecordTooLarge {
            len: body_len,
            max: max_record_len,
        });
    }
    let prefix_len = varint_len(body_len as u64);
    if prefix_len > 1 {
        // Rare (a long symbol): move the body up to make room for the longer prefix.
        spare.copy_within(1..1 + body_len, prefix_len);
    }
    let mut prefix = Cursor {
        buf: &mut spare[..prefix_len],
        pos: 0,
    };
    put_varint(&mut prefix, body_len as u64);
    let total = prefix_len + body_len;
    let len = out.len() + total;
    // `reserve` made room for `room >= total` more bytes. Of the `total` bytes after
    // `out.len()`, the first `prefix_len` were just written by `put_varint`, and the body's
    // `body_len` bytes follow them: the cursor wrote every byte of `1..1 + body_len` (every
    // write starts at `pos` and advances it past what it wrote, from 1; the one byte skipped,
    // `ts_at`, was written explicitly), and when `prefix_len > 1` `copy_within` moved those
    // initialized bytes to `prefix_len..total`.
    // SAFETY: so `0..len` is initialized and within the capacity (see above).
    unsafe { out.set_len(len) };
    Ok(total)
}

/// The error for an index-shaped event too large for `max_record_len`, with its exact length
/// (out of line: it never happens for a real symbol).
#[cold]
#[inline(never)]
fn too_large(event_id: u64, event: &IndexEventRef<'_>, max_record_len: usize) -> EncodeError {
    match encoded_len(event_id, &event.to_event_ref()) {
        Ok(len) => EncodeError::RecordTooLarge {
            len,
            max: max_record_len,
        },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn varint_len_matches_encoding() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut buf = [MaybeUninit::new(0u8); 10];
            let mut out = Cursor {
                buf: &mut buf,
                pos: 0,
            };
            put_varint(&mut out, v);
            assert_eq!(out.pos, varint_len(v), "{v}");
            assert_eq!(prost::encoding::encoded_len_varint(v), varint_len(v));
        }
    }

    #[test]
    fn keys_above_15_take_two_bytes() {
        assert_eq!(varint_len(key(16, LEN)), 2);
        assert_eq!(varint_len(key(15, LEN)), 1);
    }

    #[test]
    fn limits_are_enforced_and_leave_buffer_untouched() {
        let regs: Vec<Register<'_>> = (0..17).map(|_| ("r", 1)).collect();
        let stack = [0u8; 257];
        let args = ["a"; 17];
        let mut out = vec![9];
        let cases = [
            (
                PayloadRef::FunctionCall {
                    symbol: "f",
                    address: 1,
                    argument_registers: &regs,
                    stack_shallow_copy: &[],
                },
                EncodeError::TooManyRegisters { count: 17, max: 16 },
            ),
            (
                PayloadRef::FunctionReturn {
                    symbol: "f",
                    address: 1,
                    return_registers: &regs,
                },
                EncodeError::TooManyRegisters { count: 17, max: 16 },
            ),
            (
                PayloadRef::SignalDelivery {
                    number: 11,
                    name: "SIGSEGV",
                    registers: &regs,
                },
                EncodeError::TooManyRegisters { count: 17, max: 16 },
            ),
            (
                PayloadRef::FunctionCall {
                    symbol: "f",
                    address: 1,
                    argument_registers: &[],
                    stack_shallow_copy: &stack,
                },
                EncodeError::StackTooLarge { len: 257, max: 256 },
            ),
            (
                PayloadRef::TraceStart {
                    executable_path: "/bin/x",
                    args: &args,
                    operating_system: "linux",
                    cpu_architecture: "x86_64",
                },
                EncodeError::TooManyArgs { count: 17, max: 16 },
            ),
        ];
        for (payload, want) in cases {
            let ev = EventRef::new(1, 1, payload);
            assert_eq!(encode_delimited(1, &ev, &mut out), Err(want));
            assert_eq!(out, vec![9]);
        }
        // Exactly at the limits is fine.
        let ev = EventRef::new(
            1,
            1,
            PayloadRef::FunctionCall {
                symbol: "f",
                address: 1,
                argument_registers: &regs[..16],
                stack_shallow_copy: &stack[..256],
            },
        );
        assert!(encode_delimited(1, &ev, &mut out).is_ok());
        // The record limit.
        let data = vec![7u8; 100];
        let ev = EventRef::new(
            1,
            1,
            PayloadRef::Custom {
                name: "x",
                data: &data,
            },
        );
        let len = encoded_len(5, &ev).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            encode_delimited_with_limit(5, &ev, &mut out, len - 1),
            Err(EncodeError::RecordTooLarge { len, max: len - 1 })
        );
        assert!(out.is_empty());
        assert_eq!(
            encode_delimited_with_limit(5, &ev, &mut out, len),
            Ok(len + 1)
        );
    }

    #[test]
    fn negative_int32_fields_round_trip() {
        let ev = EventRef::new(-5, 0, PayloadRef::TraceEnd { exit_code: -1 });
        let mut out = Vec::new();
        encode_delimited(u64::MAX, &ev, &mut out).unwrap();
        let decoded = Event::decode_length_delimited(out.as_slice()).unwrap();
        assert_eq!(decoded, ev.to_event(u64::MAX));
        assert_eq!(decoded.encode_length_delimited_to_vec(), out);
    }

    #[test]
    fn reused_buffer_does_not_grow_once_warm() {
        let mut out = Vec::with_capacity(1024);
        let ev = EventRef::new(
            3,
            123_456_789_012,
            PayloadRef::FunctionCall {
                symbol: "",
                address: 0x4000_1000,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
        )
        .with_function(77, 4);
        let ptr = out.as_ptr();
        for id in 1..=10 {
            encode_delimited(id, &ev, &mut out).unwrap();
        }
        assert_eq!(out.as_ptr(), ptr, "no reallocation while capacity suffices");
    }
}
