//! Write random events with `TraceWriter`, read them back with `TraceReader`: equal.

mod common;

use ada_atf::{
    Lane, LaneCounters, PersistenceWindow, ReaderOptions, ThreadSummary, TraceReader, TraceSummary,
    TraceWriter, WriterOptions,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writer_reader_round_trip(
        specs in prop::collection::vec(common::spec(), 0..40),
        small_buffer in any::<bool>(),
        use_mmap in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            pid: 4321,
            // The minimum buffer makes most events cross a write-out.
            buffer_capacity: if small_buffer { 0 } else { 1 << 20 },
            ..WriterOptions::default()
        };
        let mut w = TraceWriter::create(tmp.path(), opts).unwrap();
        for (i, s) in specs.iter().enumerate() {
            let id = s.with_ref(|ev| w.write(ev)).unwrap();
            prop_assert_eq!(id, i as u64 + 1);
        }
        let stats = w.finalize(TraceSummary::default()).unwrap();
        prop_assert_eq!(stats.event_count, specs.len() as u64);
        prop_assert!(stats.complete);

        let r = TraceReader::open_with(&stats.dir, ReaderOptions { use_mmap, ..ReaderOptions::default() }).unwrap();
        let m = r.manifest().unwrap();
        prop_assert_eq!(m.event_count, specs.len() as u64);
        prop_assert_eq!(m.bytes_written, r.events_bytes().len() as u64);
        prop_assert_eq!(m.pid, 4321);
        let mut events = r.events();
        let mut n = 0u64;
        for (i, item) in events.by_ref().enumerate() {
            let ev = item.unwrap();
            prop_assert_eq!(&ev, &specs[i].expected(i as u64 + 1));
            n += 1;
        }
        prop_assert_eq!(n, specs.len() as u64);
        prop_assert_eq!(events.torn_tail(), None);
        if specs.is_empty() {
            prop_assert_eq!(m.min_event_timestamp_ns, None);
        } else {
            prop_assert_eq!(m.min_event_timestamp_ns, specs.iter().map(|s| s.timestamp_ns).min());
            prop_assert_eq!(m.max_event_timestamp_ns, specs.iter().map(|s| s.timestamp_ns).max());
        }
    }
}

#[test]
fn summary_and_windows_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    let windows: Vec<PersistenceWindow> = (1..=3)
        .map(|i| PersistenceWindow {
            window_id: i,
            start_ns: i * 100,
            end_ns: i * 100 + 50,
            first_mark_ns: i * 100 + 10,
            last_event_ns: i * 100 + 49,
            total_events: 255,
            marked_events: i,
            mark_seen: true,
            ..PersistenceWindow::default()
        })
        .collect();
    for (i, win) in windows.iter().enumerate() {
        w.write_window(win).unwrap();
        common::index_spec(i as u64)
            .with_ref(|ev| w.write(ev))
            .unwrap();
    }
    let mut lanes = vec![
        LaneCounters::new(Lane::Index),
        LaneCounters::new(Lane::Detail),
    ];
    lanes[0].written = 3;
    lanes[0].persisted = 3;
    lanes[1].written = 10;
    lanes[1].discarded = 10;
    let summary = TraceSummary {
        executable: Some("/bin/prog".into()),
        args: vec!["--x".into()],
        exit_code: Some(3),
        modules: vec!["m1".into(), "m2".into(), "m1".into()],
        threads: vec![ThreadSummary {
            thread_id: 0,
            name: Some("main".into()),
            os_tid: Some(99),
            pid: None,
            verified: None,
            lanes,
        }],
        ..TraceSummary::default()
    };
    let stats = w.finalize(summary.clone()).unwrap();
    assert_eq!(stats.windows, 3);
    let r = TraceReader::open(&stats.dir).unwrap();
    let m = r.manifest().unwrap();
    assert_eq!(m.modules, ["m1", "m2"], "deduplicated in first-seen order");
    assert_eq!(m.threads, summary.threads);
    assert!(m.threads[0].lanes.iter().all(LaneCounters::is_balanced));
    assert_eq!(m.executable.as_deref(), Some("/bin/prog"));
    assert_eq!(m.exit_code, Some(3));
    assert_eq!(m.windows, windows);
    assert_eq!(r.windows().unwrap(), windows, "from window_metadata.jsonl");
    std::fs::remove_file(stats.dir.join("window_metadata.jsonl")).unwrap();
    assert_eq!(r.windows().unwrap(), windows, "from the manifest");
    assert_eq!(r.events().count(), 3);
}
