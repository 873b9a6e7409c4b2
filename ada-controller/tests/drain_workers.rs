//! Several drain workers (`ControllerBuilder::drain_threads`) writing one merged ATF stream:
//! threads come and go (more of them than workers, slots reused), some spill events through
//! the shared fallback ring, one is known only from the fallback ring; the trace holds every
//! event exactly once with ids `1..=n`, each thread's events in order, every thread and symbol
//! defined before its first use, and the accounting is exact per lane and in total.

use ada_atf::TraceReader;
use ada_atf::schema::event::Payload;
use ada_controller::{ClockChoice, ControllerBuilder, LaneKind, Report, SessionInfo};
use ada_registry::fallback::FallbackRecord;
use ada_registry::{Registry, SlotOwner, SymbolSource};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Events each thread writes to its rings.
const RING_EVENTS: u64 = 3_000;
/// Events each thread spills through the fallback ring (counted as written and spilled).
const SPILLS: u64 = 40;
/// Threads at once, and how many times a set of them starts.
const AT_ONCE: usize = 6;
const WAVES: usize = 3;
/// Events of the fallback-only thread.
const SLOTLESS: u64 = 25;
/// Its (claimed) OS thread id: no task of this process has it.
const SLOTLESS_TID: u64 = 4_000_001;
/// The source file of the one symbol registered with a location.
const SOURCE_FILE: &str = "src/worker.rs";

fn record(kind: EventKind, function_id: u64, ts: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ts,
        function_id,
        thread_id: 0,
        kind: kind as u32,
        call_depth: 1,
        reserved: 0,
    }
}

fn push(reg: &Registry, pid: u32, tid: u64, r: &IndexRecord) {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&r.timestamp_ns.to_ne_bytes());
    bytes.extend_from_slice(&r.function_id.to_ne_bytes());
    for w in [r.thread_id, r.kind, r.call_depth, r.reserved] {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    let mut payload = [0u64; 4];
    for (p, c) in payload.iter_mut().zip(bytes.chunks_exact(8)) {
        *p = u64::from_ne_bytes(c.try_into().unwrap());
    }
    let rec = FallbackRecord {
        pid,
        tid,
        lane: LaneKind::Index,
        payload,
    };
    // The drain empties the ring every pass: wait for room rather than lose a record.
    while reg.fallback().unwrap().push(&rec).is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One traced thread, played as the agent would: registers (waiting for a free slot), writes
/// `RING_EVENTS` calls to its rings at a pace the drain keeps up with, spills `SPILLS` returns
/// through the fallback ring, unregisters. Timestamps number its events from 1 per kind.
fn traced_thread(reg: &Registry, symbols: &[u64]) -> u64 {
    let me = std::process::id();
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u64;
    let owner = SlotOwner {
        thread_id: tid,
        pid: me,
        generation: 0,
        registered_ns: 0,
    };
    let b = loop {
        match reg.view().register(owner) {
            Ok(b) => break b,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let store = SegmentStore::new(reg, b.slot.index(), LaneKind::Index).unwrap();
    let lane = b.slot.lanes().lane(LaneKind::Index);
    let mut w = LaneWriter::new(b.index, store, DropOldest);
    for seq in 1..=RING_EVENTS {
        let f = symbols[(seq as usize) % symbols.len()];
        w.write_index(&record(EventKind::Call, f, seq));
        if seq % 256 == 0 {
            w.flush_counters();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    w.flush_counters();
    for seq in 1..=SPILLS {
        push(reg, me, tid, &record(EventKind::Return, symbols[0], seq));
    }
    let mut c = lane.counters();
    c.events_written += SPILLS;
    c.spilled += SPILLS;
    lane.store_counters(&c);
    drop(w);
    b.slot.unregister().unwrap();
    tid
}

/// The names of this process's threads right now.
fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            if let Ok(n) = std::fs::read_to_string(t.path().join("comm")) {
                names.push(n.trim().to_owned());
            }
        }
    }
    names
}

fn run(workers: usize) {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(8)
        // The stamps are sequence numbers: kept as they are (no counter conversion).
        .session_clock(ClockChoice::Monotonic)
        .drain_threads(workers)
        .output_dir(out.path())
        .create()
        .unwrap();
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    assert_eq!(running.registry().capacity(), 8);
    let reg = running.registry().clone();
    let symbols: Vec<u64> = (0..5)
        .map(|i| {
            // The last one with a source location, which must reach the stream and the
            // manifest through the workers' sinks too.
            let source = (i == 4).then_some(SymbolSource {
                file: SOURCE_FILE,
                line: 42,
            });
            reg.symbols()
                .register_with_source(&format!("fn_{i}"), 0x1000 + i, source)
                .unwrap()
        })
        .collect();
    let me = std::process::id();
    // A thread known only from the fallback ring.
    for seq in 1..=SLOTLESS {
        push(
            &reg,
            me,
            SLOTLESS_TID,
            &record(EventKind::Call, symbols[1], seq),
        );
    }
    let mut tids = Vec::new();
    for _ in 0..WAVES {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..AT_ONCE)
                .map(|_| s.spawn(|| traced_thread(&reg, &symbols)))
                .collect();
            tids.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    // The workers run by now (they start once the sink has begun).
    let names = thread_names();
    for w in 0..workers {
        let name = format!("ada-drain-{w}");
        assert!(names.contains(&name), "{name} runs: {names:?}");
    }
    assert!(names.iter().any(|n| n == "ada-sink"), "{names:?}");
    let report = running.stop(Some(0)).unwrap();
    check(&report, workers, &tids, &symbols);
}

fn check(report: &Report, workers: usize, tids: &[u64], symbols: &[u64]) {
    let threads = tids.len();
    // The accounting: every lane balances, nothing lost, the totals are the sums.
    assert!(report.is_balanced(), "{report:#?}");
    assert_eq!(report.threads.len(), threads + 1, "{:#?}", report.threads);
    let mut by_tid = HashMap::new();
    for t in &report.threads {
        let l = t.lane(LaneKind::Index);
        assert!(l.is_balanced(), "{t:?}");
        assert_eq!(l.dropped, 0, "{t:?}");
        by_tid.insert(t.info.os_tid, t);
    }
    let mut non_zero_worker_spilled = 0;
    for tid in tids {
        let t = by_tid[tid];
        let l = t.lane(LaneKind::Index);
        assert_eq!(
            (l.written, l.persisted, l.spilled, l.via_fallback),
            (RING_EVENTS + SPILLS, RING_EVENTS, SPILLS, SPILLS),
            "{t:?}"
        );
        if t.info.slot % workers as u32 != 0 {
            non_zero_worker_spilled += l.via_fallback;
        }
    }
    assert!(
        non_zero_worker_spilled > 0,
        "some spilled events were of threads another worker than the first drains"
    );
    let slotless = by_tid[&SLOTLESS_TID];
    assert!(!slotless.info.has_slot());
    assert_eq!(slotless.lane(LaneKind::Index).via_fallback, SLOTLESS);
    let total = report.total(LaneKind::Index);
    let per_thread: u64 = report
        .threads
        .iter()
        .map(|t| t.lane(LaneKind::Index).persisted + t.lane(LaneKind::Index).via_fallback)
        .sum();
    assert_eq!(total.persisted + total.via_fallback, per_thread);
    let events_expected = threads as u64 * (RING_EVENTS + SPILLS) + SLOTLESS;
    assert_eq!(report.persisted(), events_expected);
    assert_eq!(
        report.fallback.delivered,
        threads as u64 * SPILLS + SLOTLESS
    );
    assert_eq!(report.fallback.threads, 1);

    // The stream.
    let output = report.output.as_ref().unwrap();
    assert!(output.complete, "{output:?}");
    let reader = TraceReader::open(output.dir.as_ref().unwrap()).unwrap();
    let events: Vec<_> = reader.events().map(Result::unwrap).collect();
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "ids 1..=n"
    );
    let mut defined_threads = HashSet::new();
    let mut defined_symbols = HashSet::new();
    // Per thread number and kind: the timestamps (sequence numbers) in stream order.
    let mut seqs: HashMap<(i32, bool), Vec<u64>> = HashMap::new();
    for e in &events {
        let ts = e
            .timestamp
            .map_or(0, |t| t.seconds as u64 * 1_000_000_000 + t.nanos as u64);
        match &e.payload {
            Some(Payload::ThreadDef(d)) => {
                defined_threads.insert(d.thread_id);
            }
            Some(Payload::SymbolDef(d)) => {
                defined_symbols.insert(d.function_id);
                let expected = if d.function_id == symbols[4] {
                    (SOURCE_FILE, 42)
                } else {
                    ("", 0)
                };
                assert_eq!((d.file.as_str(), d.line), expected, "{d:?}");
            }
            Some(Payload::FunctionCall(_)) | Some(Payload::FunctionReturn(_)) => {
                assert!(
                    defined_threads.contains(&e.thread_id),
                    "event {} of thread {} before its definition",
                    e.event_id,
                    e.thread_id
                );
                assert!(
                    defined_symbols.contains(&e.function_id),
                    "event {} uses symbol {} before its definition",
                    e.event_id,
                    e.function_id
                );
                let call = matches!(e.payload, Some(Payload::FunctionCall(_)));
                seqs.entry((e.thread_id, call)).or_default().push(ts);
            }
            _ => {}
        }
    }
    assert_eq!(defined_threads.len(), threads + 1);
    assert!(symbols.iter().all(|s| defined_symbols.contains(s)));
    for t in &report.threads {
        let number = t.info.number as i32;
        let (ring, spills) = if t.info.os_tid == SLOTLESS_TID {
            (SLOTLESS, 0)
        } else {
            (RING_EVENTS, SPILLS)
        };
        // Exactly once, in order: 1, 2, ... n for each kind.
        let calls = seqs.remove(&(number, true)).unwrap_or_default();
        assert_eq!(
            calls,
            (1..=ring).collect::<Vec<_>>(),
            "thread {number}'s calls"
        );
        let returns = seqs.remove(&(number, false)).unwrap_or_default();
        assert_eq!(
            returns,
            (1..=spills).collect::<Vec<_>>(),
            "thread {number}'s spills"
        );
    }
    assert!(seqs.is_empty(), "events of no thread: {:?}", seqs.keys());
    // The manifest: written once, from the merged report.
    let m = reader.manifest().unwrap();
    assert_eq!(m.event_count, events.len() as u64);
    assert_eq!(m.threads.len(), threads + 1);
    let manifest_persisted: u64 = m
        .threads
        .iter()
        .flat_map(|t| &t.lanes)
        .map(|l| l.persisted + l.via_fallback.unwrap_or(0))
        .sum();
    assert_eq!(manifest_persisted, events_expected);
    let ids: HashSet<u64> = m.symbols.iter().map(|s| s.function_id).collect();
    assert_eq!(
        ids.len(),
        m.symbols.len(),
        "each symbol once in the manifest"
    );
    assert!(symbols.iter().all(|s| ids.contains(s)));
    for entry in &m.symbols {
        let expected = if entry.function_id == symbols[4] {
            (Some(SOURCE_FILE), Some(42))
        } else {
            (None, None)
        };
        assert_eq!((entry.file.as_deref(), entry.line), expected, "{entry:?}");
    }
}

#[test]
fn two_workers_write_every_event_once_in_one_stream() {
    run(2);
}

#[test]
fn three_workers_write_every_event_once_in_one_stream() {
    run(3);
}

/// One worker stays the single-drain path: a drain thread and `ada-sink`, no `ada-drain-<w>`.
#[test]
fn one_worker_is_the_single_drain() {
    let out = tempfile::tempdir().unwrap();
    let running = ControllerBuilder::new()
        .capacity(4)
        .drain_threads(1)
        .output_dir(out.path())
        .create()
        .unwrap()
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n.starts_with("ada-drain-")),
        "{names:?}"
    );
    let report = running.stop(Some(0)).unwrap();
    assert!(report.output.unwrap().complete);
}
