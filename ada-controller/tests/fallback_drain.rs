//! The drain and the shared fallback ring: records pushed with `Registry::fallback().push` are
//! delivered exactly once, attributed to the thread a slot holds (same session number) or to
//! a fallback-only thread keyed by (pid, tid); a thread seen first through the ring keeps its
//! number when it registers; spilled events keep the lane balance exact; records pushed just
//! before the end are in the final drain; a hostile fallback region is counted, never a panic
//! or a hang.

use ada_controller::{
    ChunkInfo, ControllerBuilder, Drainer, Record, Report, SessionInfo, Sink, SinkError,
    SinkOutput, ThreadEnd, ThreadInfo,
};
use ada_registry::fallback::{ABANDON_PASSES, FALLBACK_HEADER_BYTES, FallbackRecord};
use ada_registry::{LaneKind, Registry, SlotOwner};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};
use ada_shm::sync::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One delivered record: (thread as the sink was told it, function id, timestamp, from a
/// fallback chunk).
type Seen = (ThreadInfo, u64, u64, bool);

/// Records every call it gets.
#[derive(Default, Clone)]
struct Recording {
    seen: Arc<Mutex<Vec<Seen>>>,
    threads: Arc<Mutex<Vec<ThreadInfo>>>,
    in_fallback_chunk: bool,
}

impl Recording {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn threads(&self) -> Vec<ThreadInfo> {
        self.threads.lock().unwrap().clone()
    }
}

impl Sink for Recording {
    fn thread(&mut self, thread: &ThreadInfo, _: Option<&str>) -> Result<(), SinkError> {
        self.threads.lock().unwrap().push(*thread);
        Ok(())
    }
    fn chunk_begin(&mut self, _: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        self.in_fallback_chunk = chunk.from_fallback;
        Ok(())
    }
    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        self.seen.lock().unwrap().push((
            *thread,
            r.function_id,
            r.timestamp_ns,
            self.in_fallback_chunk,
        ));
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(self.seen.lock().unwrap().len() as u64))
    }
}

fn index(kind: u32, function_id: u64, ts: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ts,
        function_id,
        thread_id: 7,
        kind,
        call_depth: 1,
        reserved: 0,
    }
}

/// `r` as a fallback record's four native-endian payload words.
fn payload(r: &IndexRecord) -> [u64; 4] {
    // The record's layout: two u64 then four u32, native-endian.
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&r.timestamp_ns.to_ne_bytes());
    bytes.extend_from_slice(&r.function_id.to_ne_bytes());
    for w in [r.thread_id, r.kind, r.call_depth, r.reserved] {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    let mut words = [0u64; 4];
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        *w = u64::from_ne_bytes(b.try_into().unwrap());
    }
    words
}

fn push(reg: &Registry, pid: u32, tid: u64, function_id: u64, ts: u64) {
    push_raw(
        reg,
        pid,
        tid,
        LaneKind::Index,
        &index(EventKind::Call as u32, function_id, ts),
    );
}

fn push_raw(reg: &Registry, pid: u32, tid: u64, lane: LaneKind, r: &IndexRecord) {
    reg.fallback()
        .expect("the segment has a fallback ring")
        .push(&FallbackRecord {
            pid,
            tid,
            lane,
            payload: payload(r),
        })
        .expect("room in the fallback ring");
}

/// Every function id seen exactly once, and the set is `expected`.
fn exactly_once(seen: &[Seen], expected: impl IntoIterator<Item = u64>) -> HashMap<u64, Seen> {
    let mut by_id = HashMap::new();
    for s in seen {
        assert!(by_id.insert(s.1, *s).is_none(), "delivered twice: {s:?}");
    }
    let mut want: Vec<u64> = expected.into_iter().collect();
    want.sort_unstable();
    let mut got: Vec<u64> = by_id.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, want);
    by_id
}

/// (i) records of unregistered (pid, tid) pairs and (ii) records of a registered thread next to
/// its ring events: each delivered once, to the right thread and number; records pushed after
/// the last pass are in the final drain.
#[test]
fn fallback_records_reach_their_threads_exactly_once() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let me = std::process::id();
    let a = reg
        .view()
        .register(SlotOwner {
            thread_id: 1001,
            pid: me,
            generation: 0,
            registered_ns: 0,
        })
        .unwrap();
    let store = SegmentStore::new(reg, a.slot.index(), LaneKind::Index).unwrap();
    let mut w = LaneWriter::new(a.index, store, DropOldest);
    // Function ids: 1xx ring events of A, 2xx fallback events of A, 3xx/4xx of two strangers.
    for i in 0..10 {
        w.write_index(&index(EventKind::Call as u32, 100 + i, 1_000 + i));
    }
    w.flush_counters();
    for i in 0..5 {
        push(reg, me, 1001, 200 + i, 2_000 + i);
    }
    for i in 0..3 {
        push(reg, 4242, 1, 300 + i, 3_000 + i);
        push(reg, 4242, 2, 400 + i, 3_000 + i);
    }
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    let stats = drainer.pass();
    assert_eq!((stats.records, stats.fallback_records), (21, 11));
    // Pushed after the last pass: only the final drain can take them.
    push(reg, 4242, 1, 303, 3_003);
    push(reg, me, 1001, 205, 2_005);
    let (report, _) = drainer.finish(&[], Report::default());

    let by_id = exactly_once(
        &sink.seen(),
        (100..110).chain(200..206).chain(300..304).chain(400..403),
    );
    let a_info = by_id[&100].0;
    assert_eq!((a_info.slot, a_info.os_tid), (a.slot.index(), 1001));
    for id in (100..110).chain(200..206) {
        assert_eq!(by_id[&id].0, a_info, "A's events under A's one identity");
        assert_eq!(
            by_id[&id].3,
            (200..206).contains(&id),
            "chunk origin of {id}"
        );
    }
    let s1 = by_id[&300].0;
    let s2 = by_id[&400].0;
    for (info, tid) in [(s1, 1), (s2, 2)] {
        assert_eq!((info.slot, info.generation), (ThreadInfo::NO_SLOT, 0));
        assert!(!info.has_slot());
        assert_eq!((info.pid, info.os_tid), (4242, tid));
    }
    for id in 300..304 {
        assert_eq!(by_id[&id].0, s1);
    }
    for id in 400..403 {
        assert_eq!(by_id[&id].0, s2);
    }
    let mut numbers = vec![a_info.number, s1.number, s2.number];
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "unique session numbers");
    assert_eq!(sink.threads().len(), 3, "each thread announced once");

    // The report: A's index lane counts its ring events as persisted and its fallback events
    // as via_fallback; the strangers are fallback-only threads.
    assert_eq!(report.threads.len(), 3, "{report:?}");
    let ta = report
        .threads
        .iter()
        .find(|t| t.info.number == a_info.number)
        .unwrap();
    let l = ta.lane(LaneKind::Index);
    assert_eq!((l.written, l.persisted, l.via_fallback), (10, 10, 6));
    assert!(l.is_balanced(), "{l:?}");
    assert_eq!(ta.end, ThreadEnd::StillRunning);
    for (info, n) in [(s1, 4), (s2, 3)] {
        let t = report
            .threads
            .iter()
            .find(|t| t.info.number == info.number)
            .unwrap();
        assert_eq!(t.end, ThreadEnd::NoSlot);
        assert_eq!(t.lane(LaneKind::Index).via_fallback, n);
        assert_eq!(t.lane(LaneKind::Index).persisted, 0);
    }
    let f = report.fallback;
    assert_eq!(f.capacity, reg.fallback().unwrap().capacity());
    assert_eq!((f.taken, f.delivered, f.corrupt, f.threads), (13, 13, 0, 2));
    assert_eq!((f.refused, f.late, f.torn, f.skipped), (0, 0, 0, 0));
    assert_eq!(report.persisted(), 23, "ring and fallback events");
    assert_eq!(report.corruption.total(), 0);
}

/// A thread whose first events came through the fallback ring (before it registered) and that
/// registers later is one thread with one number; it is announced once.
#[test]
fn a_thread_seen_first_in_the_fallback_ring_keeps_its_number_when_it_registers() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let me = std::process::id();
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    // Another thread first, so that numbers are not trivially 1.
    push(reg, 99, 99, 900, 10);
    drainer.pass();
    for i in 0..4 {
        push(reg, me, 2002, 100 + i, 100 + i);
    }
    drainer.pass();
    let early = sink.seen()[1].0;
    assert_eq!(early.slot, ThreadInfo::NO_SLOT);

    let owner = SlotOwner {
        thread_id: 2002,
        pid: me,
        generation: 0,
        registered_ns: 0,
    };
    let b = reg.view().register(owner).unwrap();
    let store = SegmentStore::new(reg, b.slot.index(), LaneKind::Index).unwrap();
    let mut w = LaneWriter::new(b.index, store, DropOldest);
    for i in 0..6 {
        w.write_index(&index(EventKind::Return as u32, 200 + i, 200 + i));
    }
    w.flush_counters();
    // One more pre-registration record still in the ring when its slot is first seen.
    push(reg, me, 2002, 104, 104);
    drainer.pass();
    let b_slot = b.slot.index();
    b.slot.unregister().unwrap();
    drainer.pass();
    let (report, _) = drainer.finish(&[], Report::default());

    let by_id = exactly_once(
        &sink.seen(),
        [900].into_iter().chain(100..105).chain(200..206),
    );
    for id in (100..105).chain(200..206) {
        assert_eq!(by_id[&id].0.number, early.number, "one number for {id}");
    }
    assert_eq!(by_id[&200].0.slot, b_slot, "its slot once registered");
    assert_eq!(
        sink.threads().len(),
        2,
        "announced once, not again at registration"
    );
    let t = report
        .threads
        .iter()
        .find(|t| t.info.number == early.number)
        .unwrap();
    assert_eq!(t.end, ThreadEnd::Exited);
    assert_eq!(t.info.slot, b_slot);
    let l = t.lane(LaneKind::Index);
    assert_eq!((l.written, l.persisted, l.via_fallback), (6, 6, 5));
    assert!(l.is_balanced(), "{l:?}");
    assert_eq!(report.threads.len(), 2, "{report:?}");
    assert_eq!(
        report.fallback.threads, 1,
        "only the other one stayed slotless"
    );
}

/// Spilled events (the lane's `spilled` counter) keep the lane balance exact:
/// `written = persisted + spilled + dropped + discarded`, and they arrive via the fallback ring.
#[test]
fn spilled_events_balance_the_lane() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let me = std::process::id();
    let a = reg
        .view()
        .register(SlotOwner {
            thread_id: 3003,
            pid: me,
            generation: 0,
            registered_ns: 0,
        })
        .unwrap();
    let store = SegmentStore::new(reg, a.slot.index(), LaneKind::Index).unwrap();
    let lane = a.slot.lanes().lane(LaneKind::Index);
    let mut w = LaneWriter::new(a.index, store, DropOldest);
    for i in 0..8 {
        w.write_index(&index(EventKind::Call as u32, 100 + i, 100 + i));
    }
    w.flush_counters();
    // Plays the agent's spill: three events to the fallback ring, counted as written and
    // spilled on the lane.
    for i in 0..3 {
        push(reg, me, 3003, 200 + i, 50 + i);
    }
    let mut c = lane.counters();
    c.events_written += 3;
    c.spilled += 3;
    lane.store_counters(&c);
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    drainer.pass();
    a.slot.unregister().unwrap();
    drainer.pass();
    let (report, _) = drainer.finish(&[], Report::default());
    exactly_once(&sink.seen(), (100..108).chain(200..203));
    let t = &report.threads[0];
    let l = t.lane(LaneKind::Index);
    assert_eq!(
        (l.written, l.persisted, l.spilled, l.via_fallback, l.dropped),
        (11, 8, 3, 3, 0)
    );
    assert!(l.is_balanced(), "{l:?}");
    assert_eq!(l.after_end, 0);
    assert!(report.is_balanced());
}

/// Records pushed right before `Running::stop` reach the sink through the final drain of the
/// real drain thread.
#[test]
fn records_pushed_just_before_stop_are_in_the_final_drain() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let sink = Recording::default();
    let running = controller
        .start(sink.clone(), SessionInfo::new(std::process::id()))
        .unwrap();
    let reg = running.registry();
    for i in 0..50 {
        push(reg, 5, 5, i, i);
    }
    let report = running.stop(Some(0)).unwrap();
    exactly_once(&sink.seen(), 0..50);
    assert_eq!(report.fallback.delivered, 50);
    assert_eq!(report.fallback.threads, 1);
}

/// The words of the segment's fallback region, for a test playing a hostile peer.
fn region_words(reg: &Registry) -> &[AtomicU64] {
    let region = reg.segment().region(ada_shm::RegionKind::Fallback).unwrap();
    reg.segment()
        .view_slice::<AtomicU64>(ada_shm::Off::new(region.offset), region.size / 8)
        .unwrap()
}

/// Word `word` of slot `slot` (0 stamp, 1 pid+lane, 2 tid, 3..=6 payload, 7 check).
fn slot_word(words: &[AtomicU64], slot: usize, word: usize) -> &AtomicU64 {
    &words[(FALLBACK_HEADER_BYTES / 8) as usize + slot * 8 + word]
}

/// A hostile fallback region: records that check out but do not validate (bad kind, detail
/// lane, a malformed loss marker), a rewritten payload (torn), a scribbled stamp (skipped)
/// and a scribbled tail: the drain neither panics nor hangs, counts each, and delivers the
/// valid records once.
#[test]
fn a_hostile_fallback_region_is_counted_never_followed() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    // Positions 0..6: valid, bad kind, valid, detail lane, valid (torn below), loss marker with
    // a zero count (does not parse).
    push(reg, 1, 1, 1, 10);
    push_raw(reg, 1, 1, LaneKind::Index, &index(77, 2, 11));
    push(reg, 1, 1, 3, 12);
    push_raw(
        reg,
        1,
        1,
        LaneKind::Detail,
        &index(EventKind::Call as u32, 4, 13),
    );
    push(reg, 1, 1, 5, 14);
    let bad_marker = IndexRecord {
        reserved: 0xff, // no loss cause has this byte
        ..index(EventKind::EventsLost as u32, 0, 15)
    };
    push_raw(reg, 1, 1, LaneKind::Index, &bad_marker);
    let words = region_words(reg);
    // Relaxed: this test is the only writer now.
    slot_word(words, 4, 4).store(0xbad, Ordering::Relaxed);
    // Position 6: a stamp no protocol step writes; 7: valid behind it.
    // Relaxed: as above.
    slot_word(words, 6, 0).store(0xdead_beef_dead_beef, Ordering::Relaxed);
    // Relaxed: as above (the tail: position 7 was reserved).
    words[128 / 8].store(7, Ordering::Relaxed);
    let start = std::time::Instant::now();
    for _ in 0..=ABANDON_PASSES {
        drainer.pass();
    }
    push(reg, 1, 1, 8, 18);
    drainer.pass();
    let (report, _) = drainer.finish(&[], Report::default());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "bounded"
    );
    let seen = sink.seen();
    let ids: Vec<u64> = seen.iter().map(|s| s.1).collect();
    assert!(ids.starts_with(&[1, 3]), "{ids:?}");
    assert!(ids.contains(&8), "{ids:?}");
    exactly_once(&seen, ids.iter().copied());
    let f = report.fallback;
    assert_eq!(f.corrupt, 3, "{f:?}");
    assert_eq!(report.corruption.fallback_records, 3);
    assert!(report.corruption.total() >= 3);
    assert_eq!(f.torn, 1, "{f:?}");
    assert!(f.skipped >= 1, "{f:?}");
    assert_eq!(f.delivered, ids.len() as u64);
    assert_eq!(f.taken, f.delivered + f.markers + f.corrupt);
}

/// A peer that moves the fallback ring's tail far ahead: pushes return (stored or refused and
/// counted), passes and the final drain return promptly, nothing panics.
#[test]
fn a_scribbled_fallback_tail_never_hangs_the_drain() {
    for tail in [u64::MAX - 3, 1 << 40, 3] {
        let controller = ControllerBuilder::new().capacity(2).create().unwrap();
        let reg = controller.registry();
        let sink = Recording::default();
        let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
        push(reg, 1, 1, 1, 1);
        // Relaxed: this test is the only writer now.
        region_words(reg)[128 / 8].store(tail, Ordering::Relaxed);
        let start = std::time::Instant::now();
        let fallback = reg.fallback().unwrap();
        let mut refused = 0;
        for i in 0..10 {
            let r = FallbackRecord {
                pid: 1,
                tid: 1,
                lane: LaneKind::Index,
                payload: payload(&index(EventKind::Call as u32, 10 + i, 10 + i)),
            };
            refused += u64::from(fallback.push(&r).is_err());
            drainer.pass();
        }
        let (report, _) = drainer.finish(&[], Report::default());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "bounded"
        );
        let seen = sink.seen();
        exactly_once(&seen, seen.iter().map(|s| s.1).collect::<Vec<_>>());
        assert!(
            seen.iter().any(|s| s.1 == 1),
            "the record before the damage"
        );
        assert_eq!(report.fallback.refused, refused, "{:?}", report.fallback);
        assert_eq!(report.fallback.corrupt, 0);
    }
}

/// The default ATF sink: fallback events are in `events.bin` under their thread's number, and
/// the manifest carries the fallback section and the lane's `viaFallback`.
#[test]
fn the_trace_and_its_manifest_carry_the_fallback_ring() {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(2)
        .output_dir(out.path())
        .create()
        .unwrap();
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    for i in 0..20 {
        push(running.registry(), 6, 60, 1 + i, 1_000 + i);
    }
    let report = running.stop(Some(0)).unwrap();
    let dir = report.output.as_ref().unwrap().dir.clone().unwrap();
    let reader = ada_atf::TraceReader::open(&dir).unwrap();
    let m = reader.manifest().unwrap();
    let f = m.fallback.expect("a fallback section");
    assert_eq!((f.taken, f.delivered, f.threads), (20, 20, 1));
    assert_eq!(f.capacity, u64::from(report.fallback.capacity));
    let t = m.threads.iter().find(|t| t.os_tid == Some(60)).unwrap();
    assert_eq!(t.lanes[0].via_fallback, Some(20));
    assert_eq!(t.lanes[0].spilled, None);
    let calls = reader
        .events()
        .filter_map(Result::ok)
        .filter(|e| e.thread_id == t.thread_id && e.function_id != 0)
        .count();
    assert_eq!(
        calls, 20,
        "every fallback event in events.bin under its thread"
    );
}

/// A slot a producer reserved and never committed (it died mid-write) at the end of the
/// session: the final drain waits a moment, abandons it (counted `skipped`) and still takes the
/// records behind it, however patient the drain was during the session.
#[test]
fn the_final_drain_takes_the_records_behind_a_slot_never_committed() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    drainer.fallback_abandon_passes(1_000_000);
    // Relaxed: this test plays the producer that reserved position 0 and died.
    region_words(reg)[128 / 8].fetch_add(1, Ordering::Relaxed);
    for i in 0..3 {
        push(reg, 8, 8, 10 + i, 10 + i);
    }
    drainer.pass();
    assert!(sink.seen().is_empty(), "blocked behind the reserved slot");
    let (report, _) = drainer.finish(&[], Report::default());
    exactly_once(&sink.seen(), 10..13);
    let f = report.fallback;
    assert_eq!((f.delivered, f.skipped, f.left), (3, 1, 0), "{f:?}");
}

/// A fallback-only thread that no longer exists is ended between passes (its last records
/// taken from the ring first), so a program that starts many short-lived slotless threads does
/// not keep an account per thread; one that still exists is kept.
#[test]
fn fallback_only_threads_that_are_gone_are_ended_with_their_last_records() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let me = std::process::id();
    let my_tid = rustix::thread::gettid().as_raw_nonzero().get() as u64;
    // A thread id no task of this process has (4242 is never one of its threads: the test
    // process has far fewer, and ids are the kernel's pids).
    let gone_tid = (1..4_194_304u64)
        .rev()
        .find(|t| !std::path::Path::new(&format!("/proc/{me}/task/{t}")).exists())
        .unwrap();
    push(reg, me, my_tid, 1, 10);
    push(reg, me, gone_tid, 2, 11);
    let sink = Recording::default();
    let mut drainer = Drainer::new(reg, sink.clone()).unwrap();
    drainer.pass();
    assert_eq!(drainer.retained_threads(), 2);
    // Seen in the last pass: not ended yet (it may still be pushing).
    assert_eq!(drainer.end_exited_fallback_threads().records, 0);
    assert_eq!(drainer.retained_threads(), 2);
    // The gone thread's last record, pushed before it went: delivered, then it ends.
    push(reg, me, gone_tid, 3, 12);
    drainer.pass();
    // A pass that delivers nothing of it: now it is idle.
    drainer.pass();
    push(reg, me, gone_tid, 4, 13);
    let taken = drainer.end_exited_fallback_threads();
    assert_eq!(taken.records, 1, "its last record first");
    let (report, _) = drainer.finish(&[], Report::default());
    let by_id = exactly_once(&sink.seen(), 1..5);
    let gone = by_id[&2].0;
    assert!(
        (2..5).all(|id| by_id[&id].0 == gone),
        "one identity to the end"
    );
    let ends: Vec<(u64, ThreadEnd)> = report
        .threads
        .iter()
        .map(|t| (t.info.os_tid, t.end))
        .collect();
    assert!(ends.contains(&(gone_tid, ThreadEnd::NoSlot)), "{ends:?}");
    assert!(ends.iter().any(|&(tid, _)| tid == my_tid), "{ends:?}");
}
