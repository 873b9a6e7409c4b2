//! A whole session from ring records: TraceStart, mapped index and detail records, TraceEnd,
//! written, finalized and read back with event ids strictly increasing from 1.

use ada_atf::schema::event::Payload;
use ada_atf::{
    EventRef, Lane, PayloadRef, RecordKind, RecordMapper, RingRecord, TraceReader, TraceSummary,
    TraceWriter, WriterOptions,
};
use std::collections::HashMap;

#[test]
fn session_of_mapped_records_round_trips_with_increasing_ids() {
    let out = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(out.path(), WriterOptions::default()).unwrap();
    let symbols = HashMap::from([
        (1u64, ("main".to_owned(), 0x1000u64)),
        (2, ("work".to_owned(), 0x2000)),
    ]);
    let mut mapper = RecordMapper::new("x86_64");
    let start = PayloadRef::TraceStart {
        executable_path: "/bin/demo",
        args: &["--fast"],
        operating_system: "linux",
        cpu_architecture: "x86_64",
    };
    w.write(&EventRef::new(0, 0, start)).unwrap();
    let regs = [10u64, 20];
    let records = [
        RingRecord {
            kind: RecordKind::Call,
            lane: Lane::Index,
            timestamp_ns: 10,
            function_id: 1,
            thread_id: 1,
            call_depth: 1,
            registers: &[],
            stack: &[],
            message: &[],
        },
        RingRecord {
            kind: RecordKind::Call,
            lane: Lane::Detail,
            timestamp_ns: 11,
            function_id: 2,
            thread_id: 1,
            call_depth: 2,
            registers: &regs,
            stack: &[1, 2, 3],
            message: &[],
        },
        RingRecord {
            kind: RecordKind::Return,
            lane: Lane::Index,
            timestamp_ns: 12,
            function_id: 2,
            thread_id: 1,
            call_depth: 2,
            registers: &[],
            stack: &[],
            message: &[],
        },
        RingRecord {
            kind: RecordKind::Mark,
            lane: Lane::Detail,
            timestamp_ns: 13,
            function_id: 1,
            thread_id: 1,
            call_depth: 1,
            registers: &[],
            stack: &[],
            message: b"here",
        },
    ];
    for r in &records {
        w.write(&mapper.map(r, &symbols)).unwrap();
    }
    w.write(&EventRef::new(0, 20, PayloadRef::TraceEnd { exit_code: 0 }))
        .unwrap();
    let stats = w.finalize(TraceSummary::default()).unwrap();

    let reader = TraceReader::open(&stats.dir).unwrap();
    let events: Vec<_> = reader.events().collect::<Result<_, _>>().unwrap();
    assert_eq!(events.len(), 6);
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (1..=6).collect::<Vec<_>>());
    assert!(matches!(events[0].payload, Some(Payload::TraceStart(_))));
    assert!(matches!(events[5].payload, Some(Payload::TraceEnd(_))));
    match &events[2].payload {
        Some(Payload::FunctionCall(c)) => {
            assert_eq!((c.symbol.as_str(), c.address), ("work", 0x2000));
            assert_eq!(
                (c.argument_registers["rdi"], c.argument_registers["rsi"]),
                (10, 20)
            );
            assert_eq!(c.stack_shallow_copy, vec![1, 2, 3]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (events[2].lane, events[2].call_depth, events[2].function_id),
        (1, 2, 2)
    );
    assert!(matches!(&events[3].payload, Some(Payload::FunctionReturn(r)) if r.symbol == "work"));
    assert!(
        matches!(&events[4].payload, Some(Payload::Custom(c)) if c.name == "mark" && c.data == b"here")
    );
    assert_eq!(reader.manifest().unwrap().event_count, 6);
}
