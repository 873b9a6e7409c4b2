//! Hostile and damaged input: arbitrary bytes, truncations and bit flips never panic and always
//! terminate; a trace cut anywhere inside its last record reads up to the record before.

mod common;

use ada_atf::{
    Events, Manifest, ReadError, ReaderOptions, TornTail, TraceReader, TraceSummary, TraceWriter,
    WriterOptions,
};
use proptest::prelude::*;

fn strict() -> ReaderOptions {
    ReaderOptions {
        strict_tail: true,
        ..ReaderOptions::default()
    }
}

/// Drains an iterator over `data`, checking the termination bound: every item consumes at least
/// one byte, and nothing follows an error.
fn drain(data: &[u8], opts: ReaderOptions) -> (usize, Option<ReadError>, Option<TornTail>) {
    let mut it = Events::new(data, &opts);
    let mut ok = 0usize;
    let mut err = None;
    for item in it.by_ref() {
        assert!(err.is_none(), "an item after an error");
        match item {
            Ok(_) => ok += 1,
            Err(e) => err = Some(e),
        }
        assert!(ok <= data.len() + 1, "more items than bytes");
    }
    assert!(it.next().is_none());
    assert!(it.position() <= data.len() as u64);
    (ok, err, it.torn_tail())
}

/// A valid stream and the offset where each record starts.
fn stream(specs: &[common::Spec]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        starts.push(out.len());
        s.with_ref(|ev| ada_atf::encode_delimited(i as u64 + 1, ev, &mut out))
            .unwrap();
    }
    (out, starts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048), max in 0usize..4096) {
        for opts in [ReaderOptions::default(), strict(), ReaderOptions { max_record_len: max, ..ReaderOptions::default() }] {
            drain(&data, opts);
        }
    }

    #[test]
    fn arbitrary_manifest_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::from_json_slice(&data);
    }

    #[test]
    fn arbitrary_json_manifests_never_panic(
        keys in prop::collection::vec(prop_oneof![
            Just("os"), Just("arch"), Just("pid"), Just("sessionId"), Just("timeStartNs"),
            Just("timeEndNs"), Just("eventCount"), Just("bytesWritten"), Just("modules"),
            Just("threads"), Just("windows"), Just("clock"), Just("complete"), Just("symbols"),
        ], 0..14),
        values in prop::collection::vec(prop_oneof![
            Just(serde_json::json!(null)), Just(serde_json::json!(-1)), Just(serde_json::json!(1)),
            Just(serde_json::json!(u64::MAX)), Just(serde_json::json!(1.5)), Just(serde_json::json!("s")),
            Just(serde_json::json!([])), Just(serde_json::json!(["a", 1])), Just(serde_json::json!({})),
            Just(serde_json::json!([{"threadId": 1, "lanes": [{"lane": "index"}]}])),
            Just(serde_json::json!(true)),
        ], 14),
    ) {
        let mut obj = serde_json::Map::new();
        for (k, v) in keys.iter().zip(values) {
            obj.insert((*k).to_owned(), v);
        }
        let _ = Manifest::from_json_slice(serde_json::Value::Object(obj).to_string().as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Cutting a valid stream anywhere yields exactly the whole records before the cut, and a
    /// torn tail unless the cut falls on a record boundary.
    #[test]
    fn truncation_reads_whole_records(specs in prop::collection::vec(common::spec(), 1..12), cut_frac in 0.0f64..=1.0) {
        let (data, starts) = stream(&specs);
        let cut = ((data.len() as f64) * cut_frac) as usize;
        let cut_data = &data[..cut];
        let whole = starts.iter().skip(1).chain(std::iter::once(&data.len())).filter(|end| **end <= cut).count();
        let (ok, err, torn) = drain(cut_data, ReaderOptions::default());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(ok, whole);
        let boundary = cut == data.len() || starts.contains(&cut);
        prop_assert_eq!(torn.is_some(), !boundary);
        if let Some(t) = torn {
            prop_assert_eq!(t.offset as usize, starts[whole]);
            prop_assert_eq!(t.offset + t.bytes, cut as u64);
        }
        let (ok_strict, err_strict, _) = drain(cut_data, strict());
        prop_assert_eq!(ok_strict, whole);
        prop_assert_eq!(err_strict.is_some(), !boundary);
    }

    #[test]
    fn bit_flips_never_panic(
        specs in prop::collection::vec(common::spec(), 1..12),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8),
    ) {
        let (mut data, _) = stream(&specs);
        for (idx, bit) in flips {
            let i = idx.index(data.len());
            data[i] ^= 1 << bit;
        }
        drain(&data, ReaderOptions::default());
        drain(&data, strict());
    }
}

/// The torn-tail acceptance test, on files: cut a written trace at every offset inside its last
/// record; the reader yields all earlier events and reports the torn bytes.
#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    let n = 20u64;
    let mut specs: Vec<_> = (0..n - 1).map(common::index_spec).collect();
    // A big last record so its length prefix takes two bytes.
    specs.push(common::Spec {
        payload: common::PSpec::Custom {
            name: "last".into(),
            data: vec![0xee; 300],
        },
        ..common::index_spec(n)
    });
    for s in &specs {
        s.with_ref(|ev| w.write(ev)).unwrap();
    }
    let stats = w.finalize(TraceSummary::default()).unwrap();
    let full = std::fs::read(stats.dir.join("events.bin")).unwrap();
    let (_, starts) = stream(&specs);
    let last = *starts.last().unwrap();
    assert!(full.len() - last > 300);

    let dir = tmp.path().join("cut");
    std::fs::create_dir(&dir).unwrap();
    for cut in last..full.len() {
        std::fs::write(dir.join("events.bin"), &full[..cut]).unwrap();
        let r = TraceReader::open_incomplete(&dir).unwrap();
        assert!(r.manifest().is_none());
        assert!(!r.is_complete());
        let mut events = r.events();
        let ids: Vec<u64> = events.by_ref().map(|e| e.unwrap().event_id).collect();
        assert_eq!(ids, (1..n).collect::<Vec<_>>(), "cut at {cut}");
        let expected = (cut > last).then_some(TornTail {
            offset: last as u64,
            bytes: (cut - last) as u64,
            zero_filled: false,
        });
        assert_eq!(events.torn_tail(), expected, "cut at {cut}");
    }

    // With the manifest present, a short file no longer matches `bytesWritten`.
    std::fs::copy(stats.dir.join("trace.json"), dir.join("trace.json")).unwrap();
    assert!(matches!(
        TraceReader::open(&dir),
        Err(ReadError::SizeMismatch { .. })
    ));
    // open_incomplete still reads it.
    let r = TraceReader::open_incomplete(&dir).unwrap();
    assert_eq!(r.events().count(), n as usize - 1);
}

/// A zero-filled tail (as after a power cut) behind the last record is a torn tail.
#[test]
fn zero_filled_tail_on_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    for i in 0..5 {
        common::index_spec(i).with_ref(|ev| w.write(ev)).unwrap();
    }
    w.flush().unwrap();
    let dir = w.dir().to_owned();
    drop(w);
    let mut bytes = std::fs::read(dir.join("events.bin")).unwrap();
    let good = bytes.len();
    bytes.resize(good + 4096, 0);
    std::fs::write(dir.join("events.bin"), &bytes).unwrap();
    let r = TraceReader::open_incomplete(&dir).unwrap();
    let mut ev = r.events();
    assert_eq!(ev.by_ref().filter(Result::is_ok).count(), 5);
    assert_eq!(
        ev.torn_tail(),
        Some(TornTail {
            offset: good as u64,
            bytes: 4096,
            zero_filled: true
        })
    );
}
