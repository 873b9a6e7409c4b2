//! From ring records to ATF events.
//!
//! The drain hands each validated ring record to [`RecordMapper::map`] as a plain
//! [`RingRecord`]. This crate stands alone (it depends on no other ADA crate), so
//! [`RecordKind`] is its own input vocabulary, with no numbering: the ring format's numbers
//! belong to the ring format, and the caller converts its record kind to a [`RecordKind`]
//! (the controller does it in one exhaustive `match`). The mapping, with the symbol table the
//! agent registered, is below. For an index-shaped record (a call with no registers and no
//! stack, or a return with no registers) the controller skips the mapper and writes an
//! [`IndexEventRef`](crate::IndexEventRef) through the encoder's one-pass fast path instead:
//! the same event, the same bytes (see [`encode`](crate::encode)).
//!
//! | record | `Event.payload` |
//! |---|---|
//! | index or detail `Call` | `function_call { symbol, address }`; detail adds `argument_registers` (named for the architecture) and `stack_shallow_copy` |
//! | index or detail `Return` | `function_return { symbol, address }`; detail adds `return_registers` |
//! | `Exception` | `custom { name: "exception", data: message }` (no slot in the plain schema) |
//! | `Mark` | `custom { name: "mark", data: message }` |
//! | `Message` | `custom { name: "message", data: message }` |
//!
//! Every event also carries the additive `function_id`, `call_depth` and `lane` fields, so an
//! unresolved symbol (`""`, address 0) can still be joined to the manifest's symbol table later.
//! `TraceStart` / `TraceEnd` are written by the controller around the records; the writer numbers
//! everything from 1, strictly increasing.

use crate::encode::{EventRef, MAX_REGISTERS, PayloadRef, Register};
use crate::schema::Lane;
use std::collections::HashMap;

/// What a ring record records, as this crate's mapping needs it. It has no numeric form: it
/// is never stored, only matched on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Function entry.
    Call,
    /// Function exit.
    Return,
    /// An exception passing through.
    Exception,
    /// An explicit mark.
    Mark,
    /// A message.
    Message,
}

/// One validated ring record, as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingRecord<'a> {
    /// What happened.
    pub kind: RecordKind,
    /// Which lane it came from.
    pub lane: Lane,
    /// Session-clock nanoseconds.
    pub timestamp_ns: u64,
    /// Function or callsite id.
    pub function_id: u64,
    /// Per-session thread number.
    pub thread_id: i32,
    /// Call depth.
    pub call_depth: u32,
    /// Register values in the architecture's order (detail records; empty for index records).
    pub registers: &'a [u64],
    /// Stack window (detail records).
    pub stack: &'a [u8],
    /// Message bytes (marks, messages, exceptions).
    pub message: &'a [u8],
}

/// Resolves function ids to `(symbol, address)`.
pub trait SymbolLookup {
    /// The symbol and address registered for `function_id`.
    fn lookup(&self, function_id: u64) -> Option<(&str, u64)>;
}

impl SymbolLookup for HashMap<u64, (String, u64)> {
    fn lookup(&self, function_id: u64) -> Option<(&str, u64)> {
        self.get(&function_id).map(|(s, a)| (s.as_str(), *a))
    }
}

/// Register names in capture order for an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterNames {
    /// Names for a call's registers.
    pub call: &'static [&'static str],
    /// Names for a return's registers.
    pub ret: &'static [&'static str],
}

impl RegisterNames {
    /// x86_64 System V: arguments, frame and stack pointer; return value and stack pointer.
    pub const X86_64: RegisterNames = RegisterNames {
        call: &["rdi", "rsi", "rdx", "rcx", "r8", "r9", "rbp", "rsp"],
        ret: &["rax", "rsp"],
    };
    /// AArch64: x0–x7, link register, frame and stack pointer; x0 and stack pointer on return.
    pub const AARCH64: RegisterNames = RegisterNames {
        call: &[
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "lr", "fp", "sp",
        ],
        ret: &["x0", "sp"],
    };

    /// The names for `arch` (`std::env::consts::ARCH` spelling); unknown architectures get
    /// `r0`, `r1`, ... names.
    pub fn for_arch(arch: &str) -> Option<RegisterNames> {
        match arch {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::AARCH64),
            _ => None,
        }
    }
}

const GENERIC: [&str; MAX_REGISTERS] = [
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15",
];

/// Turns ring records into [`EventRef`]s, reusing one register scratch array (no allocation).
#[derive(Debug)]
pub struct RecordMapper {
    names: Option<RegisterNames>,
    scratch: [Register<'static>; MAX_REGISTERS],
}

impl RecordMapper {
    /// A mapper naming registers for `arch` (e.g. [`crate::manifest::host_arch`]).
    pub fn new(arch: &str) -> Self {
        RecordMapper {
            names: RegisterNames::for_arch(arch),
            scratch: [("", 0); MAX_REGISTERS],
        }
    }

    fn name(&self, is_return: bool, i: usize) -> &'static str {
        let table = self.names.map(|n| if is_return { n.ret } else { n.call });
        table
            .and_then(|t| t.get(i).copied())
            .unwrap_or(GENERIC[i % MAX_REGISTERS])
    }

    /// The event for `record`; registers beyond [`MAX_REGISTERS`] are dropped.
    pub fn map<'a>(
        &'a mut self,
        record: &RingRecord<'a>,
        symbols: &'a impl SymbolLookup,
    ) -> EventRef<'a> {
        let (symbol, address) = symbols.lookup(record.function_id).unwrap_or(("", 0));
        let is_return = record.kind == RecordKind::Return;
        let n = record.registers.len().min(MAX_REGISTERS);
        for i in 0..n {
            self.scratch[i] = (self.name(is_return, i), record.registers[i]);
        }
        let registers = &self.scratch[..n];
        let custom = |name| PayloadRef::Custom {
            name,
            data: record.message,
        };
        let payload = match record.kind {
            RecordKind::Call => PayloadRef::FunctionCall {
                symbol,
                address,
                argument_registers: registers,
                stack_shallow_copy: record.stack,
            },
            RecordKind::Return => PayloadRef::FunctionReturn {
                symbol,
                address,
                return_registers: registers,
            },
            RecordKind::Exception => custom("exception"),
            RecordKind::Mark => custom("mark"),
            RecordKind::Message => custom("message"),
        };
        EventRef::new(record.thread_id, record.timestamp_ns, payload)
            .with_function(record.function_id, record.call_depth)
            .on_lane(record.lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::event::Payload;

    fn symbols() -> HashMap<u64, (String, u64)> {
        HashMap::from([(7, ("main".to_owned(), 0x1000))])
    }

    fn record(kind: RecordKind, lane: Lane) -> RingRecord<'static> {
        RingRecord {
            kind,
            lane,
            timestamp_ns: 1_500_000_000,
            function_id: 7,
            thread_id: 3,
            call_depth: 2,
            registers: &[],
            stack: &[],
            message: &[],
        }
    }

    #[test]
    fn index_call_and_return_resolve_symbols_and_keep_ids() {
        let (syms, mut m) = (symbols(), RecordMapper::new("x86_64"));
        let ev = m
            .map(&record(RecordKind::Call, Lane::Index), &syms)
            .to_event(1);
        assert_eq!(
            (ev.function_id, ev.call_depth, ev.lane, ev.thread_id),
            (7, 2, 0, 3)
        );
        match ev.payload.unwrap() {
            Payload::FunctionCall(c) => {
                assert_eq!((c.symbol.as_str(), c.address), ("main", 0x1000));
                assert!(c.argument_registers.is_empty() && c.stack_shallow_copy.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let mut unknown = record(RecordKind::Return, Lane::Index);
        unknown.function_id = 99;
        match m.map(&unknown, &syms).to_event(2).payload.unwrap() {
            Payload::FunctionReturn(r) => assert_eq!((r.symbol.as_str(), r.address), ("", 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn detail_records_carry_named_registers_and_stack() {
        let (syms, mut m) = (symbols(), RecordMapper::new("x86_64"));
        let regs = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let rec = RingRecord {
            registers: &regs,
            stack: &[0xAB; 16],
            ..record(RecordKind::Call, Lane::Detail)
        };
        let ev = m.map(&rec, &syms).to_event(1);
        assert_eq!(ev.lane, 1);
        match ev.payload.unwrap() {
            Payload::FunctionCall(c) => {
                assert_eq!(c.argument_registers["rdi"], 1);
                assert_eq!(c.argument_registers["rsp"], 8);
                assert_eq!(
                    c.argument_registers["r8"], 9,
                    "past the table: generic names"
                );
                assert_eq!(c.stack_shallow_copy, vec![0xAB; 16]);
            }
            other => panic!("{other:?}"),
        }
        let ret = RingRecord {
            registers: &[42, 7],
            ..record(RecordKind::Return, Lane::Detail)
        };
        match RecordMapper::new("aarch64")
            .map(&ret, &syms)
            .to_event(2)
            .payload
            .unwrap()
        {
            Payload::FunctionReturn(r) => assert_eq!(
                (r.return_registers["x0"], r.return_registers["sp"]),
                (42, 7)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn marks_messages_and_exceptions_become_custom_payloads() {
        let (syms, mut m) = (symbols(), RecordMapper::new("x86_64"));
        for (kind, name) in [
            (RecordKind::Mark, "mark"),
            (RecordKind::Message, "message"),
            (RecordKind::Exception, "exception"),
        ] {
            let rec = RingRecord {
                message: b"boom",
                ..record(kind, Lane::Detail)
            };
            match m.map(&rec, &syms).to_event(1).payload.unwrap() {
                Payload::Custom(c) => {
                    assert_eq!((c.name.as_str(), c.data.as_slice()), (name, &b"boom"[..]))
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
