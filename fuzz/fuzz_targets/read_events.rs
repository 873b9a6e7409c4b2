//! Fuzz the ATF v4 reader: the input is used as the bytes of an `events.bin`, of a `trace.json`
//! and of a `window_metadata.jsonl`. Nothing may panic; the event stream must terminate within
//! its bound; every event that decodes must survive the hand-written encoder, which has to
//! produce exactly the bytes `prost` produces for it; and the stream's definitions go through
//! `StreamNames`.
#![no_main]

use ada_atf::schema::event::Payload;
use ada_atf::{Event, EventRef, Events, Lane, Manifest, PayloadRef, ReaderOptions};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let options = [
        ReaderOptions::default(),
        ReaderOptions {
            strict_tail: true,
            ..ReaderOptions::default()
        },
        ReaderOptions {
            max_record_len: 64,
            ..ReaderOptions::default()
        },
    ];
    for opts in options {
        let mut events = Events::new(data, &opts);
        let mut names = ada_atf::StreamNames::new(None);
        let mut items = 0usize;
        let mut failed = false;
        for item in events.by_ref() {
            assert!(!failed, "an item after an error");
            items += 1;
            assert!(items <= data.len() + 1, "more items than bytes");
            match item {
                Ok(event) => {
                    names.observe(&event);
                    check_event(&event)
                }
                Err(_) => failed = true,
            }
        }
        assert!(events.next().is_none(), "not fused");
        if let Some(tail) = events.torn_tail() {
            assert!(!opts.strict_tail);
            assert_eq!(tail.offset + tail.bytes, data.len() as u64);
        }
    }
    let _ = Manifest::from_json_slice(data);
    let _ = ada_atf::window::parse_window_lines(data);
});

fn regs(m: &std::collections::BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    m.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

/// prost re-encoding is stable, and the hand encoder agrees with prost byte for byte on every
/// event it can express.
fn check_event(event: &Event) {
    let bytes = event.encode_to_vec();
    assert_eq!(&Event::decode(bytes.as_slice()).expect("re-decode"), event);

    let Some(ts) = event.timestamp.and_then(|t| t.to_nanos()) else {
        return;
    };
    let Some(lane) = Lane::from_u32(event.lane) else {
        return;
    };
    let Some(payload) = &event.payload else {
        return;
    };
    let args: Vec<&str>;
    let r: Vec<(&str, u64)>;
    let p = match payload {
        Payload::TraceStart(s) => {
            args = s.args.iter().map(String::as_str).collect();
            PayloadRef::TraceStart {
                executable_path: &s.executable_path,
                args: &args,
                operating_system: &s.operating_system,
                cpu_architecture: &s.cpu_architecture,
            }
        }
        Payload::TraceEnd(e) => PayloadRef::TraceEnd {
            exit_code: e.exit_code,
        },
        Payload::FunctionCall(c) => {
            r = regs(&c.argument_registers);
            PayloadRef::FunctionCall {
                symbol: &c.symbol,
                address: c.address,
                argument_registers: &r,
                stack_shallow_copy: &c.stack_shallow_copy,
            }
        }
        Payload::FunctionReturn(c) => {
            r = regs(&c.return_registers);
            PayloadRef::FunctionReturn {
                symbol: &c.symbol,
                address: c.address,
                return_registers: &r,
            }
        }
        Payload::SignalDelivery(s) => {
            r = regs(&s.registers);
            PayloadRef::SignalDelivery {
                number: s.number,
                name: &s.name,
                registers: &r,
            }
        }
        Payload::EventsLost(l) => {
            let Some(lost_lane) = Lane::from_u32(l.lane) else {
                return;
            };
            PayloadRef::EventsLost {
                lane: lost_lane,
                count: l.count,
                cause: &l.cause,
                first_lost_ns: l.first_lost_ns,
                last_lost_ns: l.last_lost_ns,
            }
        }
        Payload::Custom(c) => PayloadRef::Custom {
            name: &c.name,
            data: &c.data,
        },
        Payload::WindowMark(w) => PayloadRef::WindowMark((*w).into()),
        Payload::SymbolDef(d) => PayloadRef::SymbolDef {
            function_id: d.function_id,
            symbol: &d.symbol,
            address: d.address,
            module: &d.module,
            file: &d.file,
            line: d.line,
        },
        Payload::ThreadDef(d) => PayloadRef::ThreadDef {
            thread_id: d.thread_id,
            pid: d.pid,
            os_tid: d.os_tid,
            name: &d.name,
            verified: d.verified,
        },
    };
    let ev = EventRef {
        thread_id: event.thread_id,
        timestamp_ns: ts,
        function_id: event.function_id,
        call_depth: event.call_depth,
        lane,
        payload: p,
    };
    let mut hand = Vec::new();
    match ada_atf::encode_delimited(event.event_id, &ev, &mut hand) {
        Ok(n) => {
            assert_eq!(n, hand.len());
            assert_eq!(
                hand,
                event.encode_length_delimited_to_vec(),
                "hand encoder != prost"
            );
        }
        // Over a limit (too many registers or args, a large stack): rejected, nothing written.
        Err(_) => assert!(hand.is_empty()),
    }
}
