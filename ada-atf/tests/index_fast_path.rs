//! The one-pass encoder for index-shaped events against the generic encoder: for every event,
//! id and record limit, `encode_index_delimited_with_limit` must append exactly the bytes (and
//! return exactly the result) `encode_delimited_with_limit` does for the equal [`EventRef`],
//! and the writer's `write_index` must leave the same `events.bin` as `write`.

use ada_atf::{
    DEFAULT_MAX_RECORD_LEN, EncodeError, Event, FunctionPayload, IndexEventRef, IndexKind, Lane,
    PayloadRef, TraceReader, TraceSummary, TraceWriter, WriterOptions, encode_delimited,
    encode_delimited_with_limit, encode_index_delimited, encode_index_delimited_with_limit,
    encoded_len,
};
use proptest::prelude::*;
use prost::Message;

/// Symbols of any length and content: empty, short ASCII, any printable Unicode, long ones
/// (past the one- and two-byte length varints).
fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z_0-9:<>]{1,40}",
        "\\PC{0,64}",
        Just("ƒünçtïøn::日本語::🦀".to_owned()),
        (120usize..140).prop_map(|n| "x".repeat(n)),
        (16_000usize..17_000).prop_map(|n| "é".repeat(n)),
    ]
}

/// Values at and around the varint boundaries, and anything.
fn u64_edges() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(127),
        Just(128),
        Just(16_383),
        Just(16_384),
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

fn u32_edges() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(127),
        Just(128),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn i32_edges() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0i32),
        Just(1),
        Just(-1),
        Just(i32::MAX),
        Just(i32::MIN),
        any::<i32>()
    ]
}

/// Timestamps whose seconds or nanoseconds are 0 (omitted fields), boundaries, and anything.
fn timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(999_999_999),
        Just(1_000_000_000),
        Just(u64::MAX),
        (0u64..1_000).prop_map(|s| s * 1_000_000_000),
        any::<u64>(),
    ]
}

#[derive(Clone, Debug)]
struct Spec {
    thread_id: i32,
    timestamp_ns: u64,
    function_id: u64,
    call_depth: u32,
    lane: Lane,
    kind: IndexKind,
    symbol: String,
    address: u64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        i32_edges(),
        timestamp(),
        u64_edges(),
        u32_edges(),
        prop_oneof![Just(Lane::Index), Just(Lane::Detail)],
        prop_oneof![Just(IndexKind::Call), Just(IndexKind::Return)],
        symbol(),
        u64_edges(),
    )
        .prop_map(
            |(thread_id, timestamp_ns, function_id, call_depth, lane, kind, symbol, address)| {
                Spec {
                    thread_id,
                    timestamp_ns,
                    function_id,
                    call_depth,
                    lane,
                    kind,
                    symbol,
                    address,
                }
            },
        )
}

impl Spec {
    fn with_event<R>(&self, f: impl FnOnce(&IndexEventRef<'_>) -> R) -> R {
        let function = FunctionPayload::new(&self.symbol, self.address);
        f(&IndexEventRef {
            thread_id: self.thread_id,
            timestamp_ns: self.timestamp_ns,
            function_id: self.function_id,
            call_depth: self.call_depth,
            lane: self.lane,
            kind: self.kind,
            function: &function,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Byte for byte the generic encoder's record, appended after whatever the buffer held.
    #[test]
    fn fast_path_bytes_are_identical(
        spec in spec(),
        id in u64_edges(),
        prefix in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        spec.with_event(|ev| {
            let generic_event = ev.to_event_ref();
            let mut generic = prefix.clone();
            let want = encode_delimited(id, &generic_event, &mut generic);
            let mut fast = prefix.clone();
            let got = encode_index_delimited(id, ev, &mut fast);
            prop_assert_eq!(got, want);
            prop_assert_eq!(&fast, &generic);
            // And what the generic encoder wrote is the event we meant.
            let decoded = Event::decode_length_delimited(&fast[prefix.len()..]).unwrap();
            prop_assert_eq!(decoded, generic_event.to_event(id));
            Ok(())
        })?;
    }

    /// The same verdict at every record limit around the record's length, and on refusal the
    /// buffer is untouched.
    #[test]
    fn fast_path_limit_is_the_generic_limit(spec in spec(), id in u64_edges(), slack in -3i64..=3) {
        spec.with_event(|ev| {
            let body = encoded_len(id, &ev.to_event_ref()).unwrap();
            let max = (body as i64 + slack).max(0) as usize;
            let mut generic = vec![0xEE];
            let want = encode_delimited_with_limit(id, &ev.to_event_ref(), &mut generic, max);
            let mut fast = vec![0xEE];
            let got = encode_index_delimited_with_limit(id, ev, &mut fast, max);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&fast, &generic);
            if got.is_err() {
                prop_assert_eq!(fast, vec![0xEE]);
            }
            Ok(())
        })?;
    }
}

/// A symbol longer than the default record limit: both encoders refuse it with the same error.
#[test]
fn oversized_symbol_is_refused_alike() {
    let symbol = "s".repeat(DEFAULT_MAX_RECORD_LEN);
    let function = FunctionPayload::new(&symbol, 1);
    let ev = IndexEventRef {
        thread_id: 1,
        timestamp_ns: 1,
        function_id: 1,
        call_depth: 1,
        lane: Lane::Index,
        kind: IndexKind::Call,
        function: &function,
    };
    let mut fast = Vec::new();
    let got = encode_index_delimited(1, &ev, &mut fast);
    let mut generic = Vec::new();
    let want = encode_delimited(1, &ev.to_event_ref(), &mut generic);
    assert!(
        matches!(got, Err(EncodeError::RecordTooLarge { .. })),
        "{got:?}"
    );
    assert_eq!(got, want);
    assert!(fast.is_empty());
}

/// The unresolved function (`FunctionPayload::default()`) is `""` at address 0: an empty
/// payload message, exactly as the generic encoder writes it.
#[test]
fn unresolved_function_has_an_empty_payload() {
    let function = FunctionPayload::default();
    assert_eq!((function.symbol(), function.address()), ("", 0));
    let ev = IndexEventRef {
        thread_id: 0,
        timestamp_ns: 0,
        function_id: 0,
        call_depth: 0,
        lane: Lane::Index,
        kind: IndexKind::Return,
        function: &function,
    };
    let mut out = Vec::new();
    encode_index_delimited(1, &ev, &mut out).unwrap();
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x06,       // record length 6
        0x08, 0x01, // event_id = 1
        0x1a, 0x00, // timestamp: empty message
        0x6a, 0x00, // Event.function_return (13, len): empty message
    ];
    assert_eq!(out, expected);
    match ev.to_event_ref().payload {
        PayloadRef::FunctionReturn {
            symbol,
            address,
            return_registers,
        } => assert_eq!((symbol, address, return_registers.len()), ("", 0, 0)),
        other => panic!("{other:?}"),
    }
}

/// `write_index` and `write` leave byte-identical `events.bin` files, with the same ids, and
/// the reader reads the fast path's events back.
#[test]
fn write_index_matches_write() {
    let out = tempfile::tempdir().unwrap();
    let functions = [
        FunctionPayload::new("main", 0x1000),
        FunctionPayload::default(),
        FunctionPayload::new("日本語::🦀", u64::MAX),
    ];
    let events: Vec<IndexEventRef<'_>> = (0..5_000u64)
        .map(|i| IndexEventRef {
            thread_id: (i % 7) as i32 - 2,
            timestamp_ns: 1_000_000_000 * (i % 3) + i * 37,
            function_id: i % 5,
            call_depth: (i % 40) as u32,
            lane: if i % 11 == 0 {
                Lane::Detail
            } else {
                Lane::Index
            },
            kind: if i % 2 == 0 {
                IndexKind::Call
            } else {
                IndexKind::Return
            },
            function: &functions[(i % 3) as usize],
        })
        .collect();
    let mut files = Vec::new();
    for (pid, fast) in [(1, true), (2, false)] {
        let mut w = TraceWriter::create(
            out.path(),
            WriterOptions {
                pid,
                buffer_capacity: 4096,
                ..WriterOptions::default()
            },
        )
        .unwrap();
        for (i, ev) in events.iter().enumerate() {
            let id = if fast {
                w.write_index(ev).unwrap()
            } else {
                w.write(&ev.to_event_ref()).unwrap()
            };
            assert_eq!(id, i as u64 + 1);
        }
        let stats = w.finalize(TraceSummary::default()).unwrap();
        assert_eq!(stats.event_count, events.len() as u64);
        files.push((
            stats.dir.clone(),
            std::fs::read(stats.dir.join("events.bin")).unwrap(),
        ));
    }
    assert_eq!(files[0].1, files[1].1);
    let reader = TraceReader::open(&files[0].0).unwrap();
    let read: Vec<Event> = reader.events().collect::<Result<_, _>>().unwrap();
    assert_eq!(read.len(), events.len());
    for (i, (got, ev)) in read.iter().zip(&events).enumerate() {
        assert_eq!(*got, ev.to_event_ref().to_event(i as u64 + 1));
    }
}
