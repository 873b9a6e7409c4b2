//! A reader that knows only the DESIGN §4 schema (no extension fields, oneof members 10–14)
//! decodes every event ATF v4 writes, extensions included.

mod common;

use ada_atf::{
    Events, Lane, PayloadRef, ReaderOptions, TraceReader, TraceSummary, TraceWriter, WriterOptions,
};
use proptest::prelude::*;
use prost::Message;
use std::collections::HashMap;

/// The plain schema, as a reader built from the original `.proto` would have it.
mod plain {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(uint64, tag = "1")]
        pub event_id: u64,
        #[prost(int32, tag = "2")]
        pub thread_id: i32,
        #[prost(message, optional, tag = "3")]
        pub timestamp: Option<Timestamp>,
        #[prost(oneof = "Payload", tags = "10, 11, 12, 13, 14")]
        pub payload: Option<Payload>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(message, tag = "10")]
        TraceStart(TraceStart),
        #[prost(message, tag = "11")]
        TraceEnd(TraceEnd),
        #[prost(message, tag = "12")]
        FunctionCall(FunctionCall),
        #[prost(message, tag = "13")]
        FunctionReturn(FunctionReturn),
        #[prost(message, tag = "14")]
        SignalDelivery(SignalDelivery),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TraceStart {
        #[prost(string, tag = "1")]
        pub executable_path: String,
        #[prost(string, repeated, tag = "2")]
        pub args: Vec<String>,
        #[prost(string, tag = "3")]
        pub operating_system: String,
        #[prost(string, tag = "4")]
        pub cpu_architecture: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TraceEnd {
        #[prost(int32, tag = "1")]
        pub exit_code: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FunctionCall {
        #[prost(string, tag = "1")]
        pub symbol: String,
        #[prost(uint64, tag = "2")]
        pub address: u64,
        #[prost(map = "string, uint64", tag = "3")]
        pub argument_registers: HashMap<String, u64>,
        #[prost(bytes = "vec", tag = "4")]
        pub stack_shallow_copy: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FunctionReturn {
        #[prost(string, tag = "1")]
        pub symbol: String,
        #[prost(uint64, tag = "2")]
        pub address: u64,
        #[prost(map = "string, uint64", tag = "3")]
        pub return_registers: HashMap<String, u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SignalDelivery {
        #[prost(int32, tag = "1")]
        pub number: i32,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(map = "string, uint64", tag = "3")]
        pub registers: HashMap<String, u64>,
    }
}

/// Decodes `events.bin` with the plain schema only (its own framing loop, no ada-atf reader).
fn decode_plain(mut bytes: &[u8]) -> Vec<plain::Event> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(plain::Event::decode_length_delimited(&mut bytes).expect("plain schema decodes"));
    }
    out
}

#[test]
fn loss_marker_and_custom_events_decode_with_the_plain_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    let regs = [("rdi", 5u64)];
    let events = [
        ada_atf::EventRef::new(
            1,
            10,
            PayloadRef::FunctionCall {
                symbol: "main",
                address: 0x1000,
                argument_registers: &regs,
                stack_shallow_copy: &[1, 2, 3],
            },
        )
        .with_function(7, 1)
        .on_lane(Lane::Detail),
        ada_atf::EventRef::new(
            1,
            11,
            PayloadRef::EventsLost {
                lane: Lane::Index,
                count: 1000,
                cause: "overwritten",
                first_lost_ns: 10,
                last_lost_ns: 11,
            },
        ),
        ada_atf::EventRef::new(
            1,
            12,
            PayloadRef::Custom {
                name: "message",
                data: b"hi",
            },
        ),
        ada_atf::EventRef::new(1, 13, PayloadRef::WindowMark(Default::default())),
        ada_atf::EventRef::new(1, 14, PayloadRef::TraceEnd { exit_code: 0 }),
    ];
    for e in &events {
        w.write(e).unwrap();
    }
    let stats = w.finalize(TraceSummary::default()).unwrap();
    let bytes = std::fs::read(stats.dir.join("events.bin")).unwrap();
    let plain = decode_plain(&bytes);
    assert_eq!(plain.len(), 5);
    assert_eq!(
        plain.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    match &plain[0].payload {
        Some(plain::Payload::FunctionCall(c)) => {
            assert_eq!(c.symbol, "main");
            assert_eq!(c.argument_registers, HashMap::from([("rdi".to_owned(), 5)]));
            assert_eq!(c.stack_shallow_copy, [1, 2, 3]);
        }
        other => panic!("{other:?}"),
    }
    // Extension members are unknown to the plain schema: no payload, rest intact.
    for e in &plain[1..4] {
        assert_eq!(e.payload, None);
        assert_eq!(e.thread_id, 1);
    }
    assert_eq!(
        plain[1].timestamp,
        Some(plain::Timestamp {
            seconds: 0,
            nanos: 11
        })
    );
    assert_eq!(
        plain[4].payload,
        Some(plain::Payload::TraceEnd(plain::TraceEnd { exit_code: 0 }))
    );
    // And our own reader sees the same count.
    let r = TraceReader::open(&stats.dir).unwrap();
    assert_eq!(r.events().count(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every event kind, every extension: the plain schema decodes all of them, with the same
    /// id, thread, timestamp, and payload for the original kinds.
    #[test]
    fn plain_schema_decodes_every_event(specs in prop::collection::vec(common::spec(), 1..20)) {
        let mut bytes = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            s.with_ref(|ev| ada_atf::encode_delimited(i as u64 + 1, ev, &mut bytes)).unwrap();
        }
        let plain = decode_plain(&bytes);
        let ours: Vec<_> = Events::new(&bytes, &ReaderOptions::default()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(plain.len(), ours.len());
        for (p, o) in plain.iter().zip(&ours) {
            prop_assert_eq!(p.event_id, o.event_id);
            prop_assert_eq!(p.thread_id, o.thread_id);
            let (pt, ot) = (p.timestamp.clone().unwrap(), o.timestamp.unwrap());
            prop_assert_eq!((pt.seconds, pt.nanos), (ot.seconds, ot.nanos));
            use ada_atf::schema::event::Payload as P;
            let original_kind = matches!(
                o.payload,
                Some(P::TraceStart(_) | P::TraceEnd(_) | P::FunctionCall(_) | P::FunctionReturn(_) | P::SignalDelivery(_))
            );
            prop_assert_eq!(p.payload.is_some(), original_kind);
            if let (Some(plain::Payload::FunctionCall(pc)), Some(P::FunctionCall(oc))) = (&p.payload, &o.payload) {
                prop_assert_eq!(&pc.symbol, &oc.symbol);
                prop_assert_eq!(pc.argument_registers.len(), oc.argument_registers.len());
                prop_assert_eq!(&pc.stack_shallow_copy, &oc.stack_shallow_copy);
            }
        }
    }
}
