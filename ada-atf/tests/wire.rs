//! The encoder against the schema: hand-assembled wire bytes (independent of `prost`'s
//! derive), and agreement with `prost` for random events.

mod common;

use ada_atf::{
    Event, EventRef, Lane, PayloadRef, encode_delimited, encoded_len, schema::event::Payload,
};
use proptest::prelude::*;
use prost::Message;

fn encode(id: u64, ev: &EventRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode_delimited(id, ev, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

/// `FunctionCall{symbol "main", address 0x1000}`, event_id 1, thread_id 7, timestamp 1.5 s.
#[test]
fn function_call_wire_bytes() {
    let ev = EventRef::new(
        7,
        1_500_000_000,
        PayloadRef::FunctionCall {
            symbol: "main",
            address: 0x1000,
            argument_registers: &[],
            stack_shallow_copy: &[],
        },
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x19,                               // record length 25
        0x08, 0x01,                         // Event.event_id (1, varint) = 1
        0x10, 0x07,                         // Event.thread_id (2, varint) = 7
        0x1a, 0x08,                         // Event.timestamp (3, len) 8 bytes
          0x08, 0x01,                       //   Timestamp.seconds (1, varint) = 1
          0x10, 0x80, 0xca, 0xb5, 0xee, 0x01, //   Timestamp.nanos (2, varint) = 500_000_000
        0x62, 0x09,                         // Event.function_call (12, len) 9 bytes
          0x0a, 0x04, b'm', b'a', b'i', b'n', //   FunctionCall.symbol (1, len) "main"
          0x10, 0x80, 0x20,                 //   FunctionCall.address (2, varint) = 0x1000
    ];
    assert_eq!(encode(1, &ev), expected);
    assert_eq!(encoded_len(1, &ev).unwrap(), 25);
}

/// `TraceEnd{exit_code -1}` with event_id 2 and every other field at its default: an int32 is
/// sign-extended to ten bytes, the timestamp is present but empty, thread 0 is omitted.
#[test]
fn trace_end_wire_bytes() {
    let ev = EventRef::new(0, 0, PayloadRef::TraceEnd { exit_code: -1 });
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x11,                               // record length 17
        0x08, 0x02,                         // event_id = 2
        0x1a, 0x00,                         // timestamp: empty message
        0x5a, 0x0b,                         // Event.trace_end (11, len) 11 bytes
          0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // exit_code = -1
    ];
    assert_eq!(encode(2, &ev), expected);
}

/// The extension fields 4, 5, 6 and payload member 16 (a two-byte key).
#[test]
fn extension_wire_bytes() {
    let ev = EventRef::new(
        1,
        3,
        PayloadRef::Custom {
            name: "m",
            data: &[0xab],
        },
    )
    .with_function(9, 2)
    .on_lane(Lane::Detail);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x17,                               // record length 23
        0x08, 0x03,                         // event_id = 3
        0x10, 0x01,                         // thread_id = 1
        0x1a, 0x02, 0x10, 0x03,             // timestamp { nanos = 3 }
        0x20, 0x09,                         // function_id (4, varint) = 9
        0x28, 0x02,                         // call_depth (5, varint) = 2
        0x30, 0x01,                         // lane (6, varint) = 1 (detail)
        0x82, 0x01, 0x06,                   // Event.custom (16, len): key 130 = 0x82 0x01, 6 bytes
          0x0a, 0x01, b'm',                 //   Custom.name (1, len) "m"
          0x12, 0x01, 0xab,                 //   Custom.data (2, len) [0xab]
    ];
    assert_eq!(encode(3, &ev), expected);

    let ev = EventRef::new(
        0,
        0,
        PayloadRef::EventsLost {
            lane: Lane::Detail,
            count: 5,
            cause: "bp",
            first_lost_ns: 0,
            last_lost_ns: 0,
        },
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x0e,                               // record length 14
        0x08, 0x04,                         // event_id = 4
        0x1a, 0x00,                         // timestamp: empty
        0x7a, 0x08,                         // Event.events_lost (15, len) 8 bytes
          0x08, 0x01,                       //   lane = 1
          0x10, 0x05,                       //   count = 5
          0x1a, 0x02, b'b', b'p',           //   cause = "bp"
    ];
    assert_eq!(encode(4, &ev), expected);

    // The loss's first and last times: fields 4 and 5, varints (absent when 0, as above).
    let ev = EventRef::new(
        0,
        0,
        PayloadRef::EventsLost {
            lane: Lane::Index,
            count: 2,
            cause: "x",
            first_lost_ns: 300,
            last_lost_ns: 7,
        },
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x10,                               // record length 16
        0x08, 0x04,                         // event_id = 4
        0x1a, 0x00,                         // timestamp: empty
        0x7a, 0x0a,                         // Event.events_lost (15, len) 10 bytes
          0x10, 0x02,                       //   count = 2 (lane 0: absent)
          0x1a, 0x01, b'x',                 //   cause = "x"
          0x20, 0xac, 0x02,                 //   first_lost_ns (4, varint) = 300
          0x28, 0x07,                       //   last_lost_ns (5, varint) = 7
    ];
    assert_eq!(encode(4, &ev), expected);

    let ev = EventRef::symbol_def(0, 9, "f", 0x10, "m");
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x11,                               // record length 17
        0x08, 0x05,                         // event_id = 5
        0x1a, 0x00,                         // timestamp: empty (thread 0, no function id)
        0x92, 0x01, 0x0a,                   // Event.symbol_def (18, len): key 146, 10 bytes
          0x08, 0x09,                       //   function_id = 9
          0x12, 0x01, b'f',                 //   symbol = "f"
          0x18, 0x10,                       //   address = 0x10
          0x22, 0x01, b'm',                 //   module = "m"
    ];
    assert_eq!(encode(5, &ev), expected);

    // With a source location: file (5, len) and line (6, varint) follow the module.
    let ev = EventRef::symbol_def(0, 9, "f", 0x10, "m").at_source("a.rs", 300);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x1a,                               // record length 26
        0x08, 0x05,                         // event_id = 5
        0x1a, 0x00,                         // timestamp: empty (thread 0, no function id)
        0x92, 0x01, 0x13,                   // Event.symbol_def (18, len): key 146, 19 bytes
          0x08, 0x09,                       //   function_id = 9
          0x12, 0x01, b'f',                 //   symbol = "f"
          0x18, 0x10,                       //   address = 0x10
          0x22, 0x01, b'm',                 //   module = "m"
          0x2a, 0x04, b'a', b'.', b'r', b's', //   file = "a.rs"
          0x30, 0xac, 0x02,                 //   line = 300
    ];
    assert_eq!(encode(5, &ev), expected);

    let ev = EventRef::thread_def(0, 2, 7, 8, "w", true);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x12,                               // record length 18
        0x08, 0x06,                         // event_id = 6
        0x1a, 0x00,                         // timestamp: empty (the event is on thread 0)
        0x9a, 0x01, 0x0b,                   // Event.thread_def (19, len): key 154, 11 bytes
          0x08, 0x02,                       //   thread_id = 2 (the thread being described)
          0x10, 0x07,                       //   pid = 7
          0x18, 0x08,                       //   os_tid = 8
          0x22, 0x01, b'w',                 //   name = "w"
          0x28, 0x01,                       //   verified = true
    ];
    assert_eq!(encode(6, &ev), expected);
}

/// Map entries: each register is a nested `{key = 1; value = 2}` message under field 3, and a
/// zero value is omitted inside the entry.
#[test]
fn register_map_wire_bytes() {
    let ev = EventRef::new(
        0,
        0,
        PayloadRef::FunctionReturn {
            symbol: "",
            address: 0,
            return_registers: &[("x0", 0x2a), ("sp", 0)],
        },
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x14,                               // record length 20
        0x08, 0x05,                         // event_id = 5
        0x1a, 0x00,                         // timestamp: empty
        0x6a, 0x0e,                         // Event.function_return (13, len) 14 bytes
          0x1a, 0x06,                       //   return_registers entry (3, len) 6 bytes
            0x0a, 0x02, b'x', b'0',         //     key = "x0"
            0x10, 0x2a,                     //     value = 42
          0x1a, 0x04,                       //   entry, 4 bytes
            0x0a, 0x02, b's', b'p',         //     key = "sp" (value 0 omitted)
    ];
    assert_eq!(encode(5, &ev), expected);
    let decoded = Event::decode_length_delimited(expected).unwrap();
    match decoded.payload {
        Some(Payload::FunctionReturn(r)) => {
            assert_eq!(r.return_registers.get("x0"), Some(&42));
            assert_eq!(r.return_registers.get("sp"), Some(&0));
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The hand encoder agrees with prost: its bytes decode to the expected event, and (with
    /// registers in name order, as prost's BTreeMap emits them) are byte-identical to prost's.
    #[test]
    fn hand_encoder_matches_prost(spec in common::spec(), id in any::<u64>()) {
        let bytes = spec.with_ref(|ev| encode(id, ev));
        let expected = spec.expected(id);
        let decoded = Event::decode_length_delimited(bytes.as_slice()).unwrap();
        prop_assert_eq!(&decoded, &expected);
        prop_assert_eq!(bytes, expected.encode_length_delimited_to_vec());
        let len = spec.with_ref(|ev| encoded_len(id, ev)).unwrap();
        prop_assert_eq!(len, expected.encoded_len());
        prop_assert_eq!(spec.with_ref(|ev| ev.to_event(id)), expected);
    }

    /// Appending to a non-empty buffer leaves the existing bytes alone.
    #[test]
    fn encoder_appends(spec in common::spec(), prefix in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = prefix.clone();
        let n = spec.with_ref(|ev| encode_delimited(1, ev, &mut out)).unwrap();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(out.len(), prefix.len() + n);
    }
}

/// The shipped `.proto` documents the same field numbers the encoder uses.
#[test]
fn proto_file_matches_the_encoder() {
    let proto = include_str!("../proto/trace_schema.proto");
    let squashed: String = proto.split_whitespace().collect::<Vec<_>>().join(" ");
    for decl in [
        "uint64 event_id = 1;",
        "int32 thread_id = 2;",
        "google.protobuf.Timestamp timestamp = 3;",
        "uint64 function_id = 4;",
        "uint32 call_depth = 5;",
        "uint32 lane = 6;",
        "TraceStart trace_start = 10;",
        "TraceEnd trace_end = 11;",
        "FunctionCall function_call = 12;",
        "FunctionReturn function_return = 13;",
        "SignalDelivery signal_delivery = 14;",
        "EventsLost events_lost = 15;",
        "Custom custom = 16;",
        "WindowMark window_mark = 17;",
        "SymbolDef symbol_def = 18;",
        "ThreadDef thread_def = 19;",
        "string executable_path = 1;",
        "repeated string args = 2;",
        "string operating_system = 3;",
        "string cpu_architecture = 4;",
        "int32 exit_code = 1;",
        "map<string, uint64> argument_registers = 3;",
        "bytes stack_shallow_copy = 4;",
        "map<string, uint64> return_registers = 3;",
        "int32 number = 1;",
        "map<string, uint64> registers = 3;",
        "uint64 count = 2;",
        "string cause = 3;",
        "uint64 first_lost_ns = 4;",
        "uint64 last_lost_ns = 5;",
        "bytes data = 2;",
        "bool mark_seen = 8;",
        "optional uint32 trigger = 11;",
        "uint64 over_budget_events = 14;",
        "string module = 4;",
        "string file = 5;",
        "uint32 line = 6;",
        "int32 thread_id = 1;",
        "uint32 pid = 2;",
        "uint64 os_tid = 3;",
        "bool verified = 5;",
    ] {
        assert!(
            squashed.contains(decl),
            "{decl} missing from trace_schema.proto"
        );
    }
}
