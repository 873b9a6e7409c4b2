//! `trace.json`: written atomically, carries the original nine keys (readable by a reader that
//! knows only those) plus the additive ones, and bad manifests give typed errors.

mod common;

use ada_atf::{
    ClockDescription, ManifestError, PersistenceWindow, ReadError, TraceReader, TraceSummary,
    TraceWriter, WriterOptions,
};

use ada_atf::manifest::ORIGINAL_KEYS;

/// What a reader of the original writer's manifest deserializes.
#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OriginalManifest {
    os: String,
    arch: String,
    pid: u32,
    session_id: u64,
    time_start_ns: u64,
    time_end_ns: u64,
    event_count: u64,
    bytes_written: u64,
    modules: Vec<String>,
}

fn write_trace(root: &std::path::Path, n: u64, summary: TraceSummary) -> ada_atf::FinalStats {
    let opts = WriterOptions {
        pid: 77,
        session_label: Some("session_test".into()),
        session_id: 12345,
        clock: ClockDescription::new("CLOCK_MONOTONIC", Some(1_700_000_000_000_000_000)),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root, opts).unwrap();
    for i in 0..n {
        common::index_spec(i).with_ref(|ev| w.write(ev)).unwrap();
    }
    w.write_window(&PersistenceWindow {
        window_id: 1,
        mark_seen: true,
        ..PersistenceWindow::default()
    })
    .unwrap();
    w.finalize(summary).unwrap()
}

#[test]
fn layout_keys_and_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = write_trace(
        tmp.path(),
        10,
        TraceSummary {
            modules: vec!["0f1e2d3c-0000-0000-0000-000000000001".into()],
            ..TraceSummary::default()
        },
    );
    assert_eq!(
        stats.dir,
        tmp.path()
            .join("ada_traces")
            .join("session_test")
            .join("pid_77")
    );
    let mut names: Vec<String> = std::fs::read_dir(&stats.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["events.bin", "trace.json", "window_metadata.jsonl"]);

    let text = std::fs::read_to_string(stats.dir.join("trace.json")).unwrap();
    assert!(
        text.starts_with("{\n  \"os\": "),
        "pretty, two-space indent"
    );
    // The original keys come first, in the original order.
    let positions: Vec<usize> = ORIGINAL_KEYS
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing"))
        })
        .collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");

    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(["linux", "darwin", "unknown"].contains(&v["os"].as_str().unwrap()));
    assert_eq!(v["arch"], std::env::consts::ARCH);
    assert_eq!(v["pid"], 77);
    assert_eq!(v["sessionId"], 12345);
    assert_eq!(v["eventCount"], 10);
    assert_eq!(v["bytesWritten"], stats.bytes_written);
    assert_eq!(
        v["bytesWritten"],
        std::fs::metadata(stats.dir.join("events.bin"))
            .unwrap()
            .len()
    );
    assert_eq!(
        v["modules"],
        serde_json::json!(["0f1e2d3c-0000-0000-0000-000000000001"])
    );
    let start = v["timeStartNs"].as_u64().unwrap();
    let end = v["timeEndNs"].as_u64().unwrap();
    assert!(start > 1_600_000_000_000_000_000 && start <= end);
    // Additive keys.
    assert_eq!(v["formatVersion"], 4);
    assert_eq!(v["complete"], true);
    assert_eq!(v["sessionName"], "session_test");
    assert_eq!(
        v["clock"],
        serde_json::json!({"name": "CLOCK_MONOTONIC", "realtimeOffsetNs": 1_700_000_000_000_000_000i64})
    );
    assert!(v["threads"].is_array());
    assert_eq!(v["windows"][0]["window_id"], 1);
    assert_eq!(v["windows"][0]["mark_seen"], true);
    assert!(v["minEventTimestampNs"].is_u64());
    assert!(v.get("writeError").is_none());

    // A reader that knows only the nine original keys.
    let original: OriginalManifest = serde_json::from_str(&text).unwrap();
    assert_eq!(original.event_count, 10);
    assert_eq!(original.pid, 77);
}

#[test]
fn incomplete_session_is_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = write_trace(
        tmp.path(),
        3,
        TraceSummary {
            complete: false,
            ..TraceSummary::default()
        },
    );
    assert!(!stats.complete);
    let r = TraceReader::open(&stats.dir).unwrap();
    assert!(!r.is_complete());
    assert_eq!(r.manifest().unwrap().complete, Some(false));
    assert_eq!(r.events().count(), 3);
}

#[test]
fn unfinalized_trace_opens_only_as_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    for i in 0..4 {
        common::index_spec(i).with_ref(|ev| w.write(ev)).unwrap();
    }
    w.flush().unwrap();
    let dir = w.dir().to_owned();
    // Still running: no manifest yet.
    assert!(matches!(
        TraceReader::open(&dir),
        Err(ReadError::Manifest(ManifestError::Missing(_)))
    ));
    let r = TraceReader::open_incomplete(&dir).unwrap();
    assert!(r.manifest().is_none());
    assert_eq!(r.events().count(), 4);
    drop(r);
    drop(w);
}

#[test]
fn empty_trace_reads_as_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    let stats = w.finalize(TraceSummary::default()).unwrap();
    assert_eq!((stats.event_count, stats.bytes_written), (0, 0));
    let r = TraceReader::open(&stats.dir).unwrap();
    assert_eq!(r.events().count(), 0);
    assert_eq!(r.manifest().unwrap().min_event_timestamp_ns, None);
    assert!(r.windows().unwrap().is_empty());
}

#[test]
fn bad_manifests_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = write_trace(tmp.path(), 2, TraceSummary::default());
    let path = stats.dir.join("trace.json");
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, "{ not json").unwrap();
    assert!(matches!(
        TraceReader::open(&stats.dir),
        Err(ReadError::Manifest(ManifestError::InvalidJson(_)))
    ));
    // open_incomplete rejects a manifest that exists but is broken, too.
    assert!(matches!(
        TraceReader::open_incomplete(&stats.dir),
        Err(ReadError::Manifest(ManifestError::InvalidJson(_)))
    ));

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v.as_object_mut().unwrap().remove("eventCount");
    std::fs::write(&path, v.to_string()).unwrap();
    assert!(matches!(
        TraceReader::open(&stats.dir),
        Err(ReadError::Manifest(ManifestError::MissingKey("eventCount")))
    ));

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["modules"] = serde_json::json!([1, 2]);
    std::fs::write(&path, v.to_string()).unwrap();
    assert!(matches!(
        TraceReader::open(&stats.dir),
        Err(ReadError::Manifest(ManifestError::WrongType {
            key: "modules",
            ..
        }))
    ));

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["bytesWritten"] = serde_json::json!(1);
    std::fs::write(&path, v.to_string()).unwrap();
    assert!(matches!(
        TraceReader::open(&stats.dir),
        Err(ReadError::SizeMismatch { manifest: 1, .. })
    ));

    std::fs::write(&path, &good).unwrap();
    std::fs::remove_file(stats.dir.join("events.bin")).unwrap();
    assert!(matches!(
        TraceReader::open(&stats.dir),
        Err(ReadError::Io { op: "open", .. })
    ));
}

/// The fallback ring's accounting round-trips: `fallback` with its camelCase counts, and each
/// lane's `spilled` and `viaFallback`; `spilled` is part of a lane's balance; absent keys read
/// as `None` (older manifests).
#[test]
fn fallback_section_and_lane_spills_round_trip() {
    use ada_atf::{FallbackSummary, Lane, LaneCounters, Manifest, ThreadSummary};
    let tmp = tempfile::tempdir().unwrap();
    let lane = LaneCounters {
        written: 10,
        persisted: 7,
        spilled: Some(3),
        via_fallback: Some(5),
        ..LaneCounters::new(Lane::Index)
    };
    assert!(lane.is_balanced(), "written = persisted + spilled");
    assert!(
        !LaneCounters {
            spilled: None,
            ..lane.clone()
        }
        .is_balanced()
    );
    let fallback = FallbackSummary {
        capacity: 4096,
        taken: 6,
        delivered: 5,
        corrupt: 1,
        refused: 2,
        threads: 1,
        ..FallbackSummary::default()
    };
    let stats = write_trace(
        tmp.path(),
        3,
        TraceSummary {
            threads: vec![ThreadSummary {
                thread_id: 1,
                name: None,
                os_tid: Some(9),
                pid: Some(9),
                verified: Some(false),
                lanes: vec![lane.clone()],
            }],
            fallback: Some(fallback),
            ..TraceSummary::default()
        },
    );
    let text = std::fs::read_to_string(stats.dir.join("trace.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["fallback"]["capacity"], 4096);
    assert_eq!(v["fallback"]["refused"], 2);
    assert_eq!(v["threads"][0]["lanes"][0]["viaFallback"], 5);
    assert_eq!(v["threads"][0]["lanes"][0]["spilled"], 3);
    let m = TraceReader::open(&stats.dir)
        .unwrap()
        .manifest()
        .unwrap()
        .clone();
    assert_eq!(m.fallback, Some(fallback));
    assert_eq!(m.threads[0].lanes[0], lane);

    // Without them (an older manifest): absent, and a wrong type is a typed error.
    let mut old = v.clone();
    old.as_object_mut().unwrap().remove("fallback");
    let m = Manifest::from_json_slice(old.to_string().as_bytes()).unwrap();
    assert_eq!(m.fallback, None);
    let mut bad = v;
    bad["fallback"] = serde_json::Value::from("full");
    assert!(matches!(
        Manifest::from_json_slice(bad.to_string().as_bytes()),
        Err(ManifestError::WrongType {
            key: "fallback",
            ..
        })
    ));
}

#[test]
fn loaded_modules_round_trip_and_leave_the_original_keys_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let module = |pid, path: &str, start, build_id: Option<&str>| ada_atf::ModuleEntry {
        pid,
        path: path.into(),
        start,
        end: start + 0x2000,
        file_offset: 0x1000,
        build_id: build_id.map(str::to_owned),
        deleted: false,
    };
    let mut gone = module(78, "/usr/lib/libgone.so", 0x7f00_0000_0000, None);
    gone.deleted = true;
    let loaded = vec![
        module(77, "/usr/bin/prog", 0x5555_0000_1000, Some("0a1b2c3d")),
        module(77, "/usr/lib/libdemo.so", 0x7f00_0000_1000, Some("ffee")),
        gone,
    ];
    let stats = write_trace(
        tmp.path(),
        2,
        TraceSummary {
            modules: vec!["/usr/bin/prog".into(), "/usr/lib/libdemo.so".into()],
            loaded_modules: loaded.clone(),
            ..TraceSummary::default()
        },
    );
    let text = std::fs::read_to_string(stats.dir.join("trace.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["loadedModules"][0],
        serde_json::json!({"pid": 77, "path": "/usr/bin/prog", "start": 0x5555_0000_1000u64,
            "end": 0x5555_0000_3000u64, "fileOffset": 0x1000, "buildId": "0a1b2c3d"})
    );
    assert_eq!(v["loadedModules"][2]["deleted"], true);
    assert!(v["loadedModules"][2].get("buildId").is_none());
    let m = TraceReader::open(&stats.dir)
        .unwrap()
        .manifest()
        .unwrap()
        .clone();
    assert_eq!(m.loaded_modules, loaded);
    assert_eq!(m.loaded_modules[0].base(), 0x5555_0000_0000);
    assert!(m.loaded_modules[1].contains(0x7f00_0000_2fff));
    assert!(!m.loaded_modules[1].contains(0x7f00_0000_3000));
    // `modules` keeps its meaning: strings, readable by a reader of the nine keys.
    let original: OriginalManifest = serde_json::from_str(&text).unwrap();
    assert_eq!(original.modules, ["/usr/bin/prog", "/usr/lib/libdemo.so"]);
    // Older manifests have none and write none; a wrong type names the key.
    let tmp2 = tempfile::tempdir().unwrap();
    let plain = write_trace(tmp2.path(), 1, TraceSummary::default());
    let plain_text = std::fs::read_to_string(plain.dir.join("trace.json")).unwrap();
    assert!(!plain_text.contains("loadedModules"));
    let mut bad: serde_json::Value = serde_json::from_str(&plain_text).unwrap();
    bad["loadedModules"] = serde_json::json!([{"pid": 1, "path": 5}]);
    assert!(matches!(
        ada_atf::Manifest::from_json_slice(bad.to_string().as_bytes()),
        Err(ManifestError::WrongType {
            key: "loadedModules",
            ..
        })
    ));
}
