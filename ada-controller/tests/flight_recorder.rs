//! The detail lane as a flight recorder, drained in process: a thread writes detail records
//! (sequence number in `function_id`) with marks at known positions, and the drain must hand
//! the sink exactly the windows' records — pre-roll, marks, post-roll — count every other one
//! as `discarded`, announce each window after its records, and keep
//! `written = persisted + dropped + discarded` on every lane. `Persistence::All` keeps every
//! record.

use ada_controller::{
    ChunkInfo, ControllerBuilder, Drainer, LaneKind, Persistence, PreRoll, Record, Report, Sink,
    SinkError, SinkOutput, ThreadEnd, ThreadInfo, WindowConfig, WindowInfo,
};
use ada_registry::{Registration, Registry, SlotOwner, ThreadSlot};
use ada_ringpool::{DetailRecord, DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};

/// What the sink saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Detail(u64),
    Index(u64),
    Window(WindowInfo),
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    open_chunks: u32,
}

impl Log {
    fn detail(&self) -> Vec<u64> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Detail(seq) => Some(*seq),
                _ => None,
            })
            .collect()
    }
    fn windows(&self) -> Vec<WindowInfo> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Window(w) => Some(*w),
                _ => None,
            })
            .collect()
    }
}

impl Sink for Log {
    fn chunk_begin(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
        self.open_chunks += 1;
        Ok(())
    }
    fn record(&mut self, _: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        assert_eq!(self.open_chunks, 1, "records come inside a chunk");
        self.seen.push(match r.lane {
            LaneKind::Detail => Seen::Detail(r.function_id),
            LaneKind::Index => Seen::Index(r.function_id),
        });
        Ok(())
    }
    fn chunk_end(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
        self.open_chunks -= 1;
        Ok(())
    }
    fn window(&mut self, t: &ThreadInfo, w: &WindowInfo) -> Result<(), SinkError> {
        assert_eq!(t.number, 1);
        self.seen.push(Seen::Window(*w));
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(self.seen.len() as u64))
    }
}

type Writer<'r> = LaneWriter<'r, SegmentStore<'r>, DropOldest>;

/// This thread, registered, with writers of both lanes.
fn register(reg: &Registry) -> (ThreadSlot<'_>, Writer<'_>, Writer<'_>) {
    let Registration {
        slot,
        index,
        detail,
    } = reg.view().register(SlotOwner::current_thread()).unwrap();
    let store = |kind| SegmentStore::new(reg, slot.index(), kind).unwrap();
    let index = LaneWriter::new(index, store(LaneKind::Index), DropOldest);
    let detail = LaneWriter::new(detail, store(LaneKind::Detail), DropOldest);
    (slot, index, detail)
}

/// A time far enough ahead that the drain's clock never passes a post-roll by itself: windows
/// close only by later records, at thread exit or at finish.
fn future() -> u64 {
    ada_shm::clock::MonotonicClock::read() + 1_000_000_000_000
}

/// Writes detail record `seq` at `base + seq µs`; `mark`: `Some(None)` explicit, `Some(Some(k))`
/// trigger `k`.
fn write(w: &mut Writer<'_>, base: u64, seq: u64, mark: Option<Option<u64>>) {
    let regs = match mark {
        Some(Some(k)) => vec![k + 1],
        _ => Vec::new(),
    };
    let r = DetailRecord {
        kind: if mark.is_some() {
            EventKind::Mark
        } else {
            EventKind::Message
        },
        marked: mark.is_some(),
        timestamp_ns: base + seq * 1_000,
        function_id: seq,
        thread_id: 1,
        call_depth: 0,
        registers: &regs,
        stack: &[],
        message: b"detail",
    };
    w.write_detail(&r).unwrap();
}

fn drainer(reg: &Registry, persistence: Persistence) -> Drainer<'_, Log> {
    let mut d = Drainer::new(reg, Log::default()).unwrap();
    d.persistence(persistence);
    d
}

fn windows(pre_roll: PreRoll, post_roll_ns: u64) -> Persistence {
    Persistence::Windows(WindowConfig {
        pre_roll,
        post_roll_ns,
        ..WindowConfig::default()
    })
}

#[test]
fn exactly_the_windows_are_persisted_and_the_rest_discarded() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    // Pre-roll 5 µs (5 records), post-roll 10 µs (10 records after the latest mark).
    let mut drain = drainer(reg, windows(PreRoll::Duration(5_000), 10_000));
    let (slot, mut index, mut detail) = register(reg);
    let base = future();
    for seq in 0..400u64 {
        let mark = match seq {
            100 | 105 => Some(None), // 105 is within 100's post-roll: one window
            300 => Some(Some(2)),    // trigger index 2
            _ => None,
        };
        write(&mut detail, base, seq, mark);
        if seq % 7 == 0 {
            index.write_index(&IndexRecord {
                timestamp_ns: base + seq * 1_000,
                function_id: seq,
                kind: EventKind::Call as u32,
                ..IndexRecord::default()
            });
        }
        if seq % 50 == 0 {
            drain.pass();
        }
    }
    index.flush_counters();
    detail.flush_counters();
    drop((index, detail));
    slot.unregister().unwrap();
    drain.pass();
    let (report, log) = drain.finish(&[], Report::default());

    let mut expected: Vec<u64> = (95..=115).collect();
    expected.extend(295..=310);
    assert_eq!(log.detail(), expected);
    let w = log.windows();
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((w[0].id, w[0].marks, w[0].trigger), (1, 2, None));
    assert_eq!(
        (w[0].start_ns, w[0].end_ns),
        (base + 95_000, base + 115_000)
    );
    assert_eq!(
        (w[0].first_mark_ns, w[0].last_mark_ns),
        (base + 100_000, base + 105_000)
    );
    assert_eq!(
        (w[0].persisted, w[0].pre_roll, w[0].discarded_before),
        (21, 5, 95)
    );
    assert_eq!((w[1].id, w[1].marks, w[1].trigger), (2, 1, Some(2)));
    assert_eq!((w[1].persisted, w[1].pre_roll), (16, 5));
    assert_eq!(w[1].discarded_before, 295 - 116);
    // Each window is announced after its last record and before the next window's first.
    let pos = |s: &Seen| log.seen.iter().position(|x| x == s).unwrap();
    assert!(pos(&Seen::Window(w[0])) > pos(&Seen::Detail(115)));
    assert!(pos(&Seen::Window(w[0])) < pos(&Seen::Detail(295)));
    assert!(pos(&Seen::Window(w[1])) > pos(&Seen::Detail(310)));

    assert_eq!(report.threads.len(), 1);
    let t = &report.threads[0];
    assert_eq!(t.end, ThreadEnd::Exited);
    let d = t.lane(LaneKind::Detail);
    assert_eq!(
        (d.written, d.persisted, d.dropped, d.discarded),
        (400, 37, 0, 363)
    );
    assert_eq!(d.windows, 2);
    // Every record here takes the same ring bytes: a mark with a register 8 more.
    let plain = ada_ringpool::DetailRecord {
        kind: EventKind::Message,
        marked: false,
        timestamp_ns: 0,
        function_id: 0,
        thread_id: 1,
        call_depth: 0,
        registers: &[],
        stack: &[],
        message: b"detail",
    }
    .encoded_len() as u64;
    assert_eq!(d.persisted_bytes, 37 * plain + 8);
    assert_eq!(d.discarded_bytes, 363 * plain);
    let i = t.lane(LaneKind::Index);
    assert_eq!(
        (i.written, i.persisted, i.discarded),
        (58, 58, 0),
        "the index lane is whole"
    );
    assert!(report.is_balanced(), "{report:?}");
}

#[test]
fn a_mark_on_the_last_record_before_exit_gets_its_window_and_pre_roll() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let mut drain = drainer(reg, Persistence::default());
    let (slot, index, mut detail) = register(reg);
    let base = future();
    for seq in 0..50u64 {
        write(&mut detail, base, seq, (seq == 49).then_some(Some(0)));
        drain.pass();
    }
    detail.flush_counters();
    drop((index, detail));
    slot.unregister().unwrap();
    drain.pass();
    let (report, log) = drain.finish(&[], Report::default());
    // The default pre-roll is whatever the budget holds: all 49 records before the mark.
    assert_eq!(log.detail(), (0..50).collect::<Vec<_>>());
    let w = log.windows();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].trigger, w[0].persisted, w[0].pre_roll),
        (Some(0), 50, 49)
    );
    assert_eq!(log.seen.last(), Some(&Seen::Window(w[0])), "closed at exit");
    let d = report.threads[0].lane(LaneKind::Detail);
    assert_eq!((d.written, d.persisted, d.discarded), (50, 50, 0));
    assert!(report.is_balanced());
}

#[test]
fn a_running_thread_s_window_closes_at_finish_and_its_held_records_are_discarded() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let mut drain = drainer(reg, windows(PreRoll::Duration(2_000), 3_000));
    let (slot, _index, mut detail) = register(reg);
    let base = future();
    for seq in 0..40u64 {
        write(&mut detail, base, seq, (seq == 10).then_some(None));
    }
    drain.pass();
    detail.flush_counters();
    let (report, log) = drain.finish(&[], Report::default());
    assert_eq!(log.detail(), (8..=13).collect::<Vec<_>>());
    assert_eq!(log.windows().len(), 1);
    let t = &report.threads[0];
    assert_eq!(t.end, ThreadEnd::StillRunning);
    let d = t.lane(LaneKind::Detail);
    assert_eq!(
        (d.written, d.persisted, d.discarded, d.after_end),
        (40, 6, 34, 0)
    );
    assert!(report.is_balanced(), "{report:?}");
    std::mem::forget(slot);
}

#[test]
fn the_drain_clock_closes_a_window_once_its_post_roll_is_over() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let mut drain = drainer(reg, windows(PreRoll::Buffered, 1_000_000));
    let (slot, _index, mut detail) = register(reg);
    let now = ada_shm::clock::MonotonicClock::read();
    // Stamped with the session clock: a mark now and one record just after.
    write(&mut detail, now, 0, Some(None));
    write(&mut detail, now, 1, None);
    drain.pass();
    std::thread::sleep(std::time::Duration::from_millis(20));
    drain.pass();
    let closed = drain.sink_mut().windows();
    assert_eq!(
        closed.len(),
        1,
        "closed by the clock, before the thread ended"
    );
    assert_eq!(closed[0].persisted, 2);
    detail.flush_counters();
    let (report, log) = drain.finish(&[], Report::default());
    assert_eq!(log.windows().len(), 1);
    assert!(report.is_balanced());
    std::mem::forget(slot);
}

#[test]
fn a_flight_recorder_leaves_an_unmarked_active_ring_alone_and_persist_all_keeps_everything() {
    for persistence in [Persistence::default(), Persistence::All] {
        let controller = ControllerBuilder::new().capacity(4).create().unwrap();
        let reg = controller.registry();
        let mut drain = drainer(reg, persistence);
        let (slot, index, mut detail) = register(reg);
        let base = future();
        for seq in 0..20u64 {
            write(&mut detail, base, seq, None);
        }
        let pass = drain.pass();
        let all = persistence == Persistence::All;
        assert_eq!(
            pass.bytes > 0,
            all,
            "{persistence:?}: the active detail ring is copied only to persist everything"
        );
        detail.flush_counters();
        drop((index, detail));
        slot.unregister().unwrap();
        drain.pass();
        let (report, log) = drain.finish(&[], Report::default());
        let d = report.threads[0].lane(LaneKind::Detail);
        if all {
            assert_eq!(log.detail(), (0..20).collect::<Vec<_>>());
            assert_eq!((d.persisted, d.discarded), (20, 0));
        } else {
            assert!(log.detail().is_empty());
            assert_eq!((d.persisted, d.discarded), (0, 20));
        }
        assert!(log.windows().is_empty());
        assert_eq!(d.written, 20);
        assert!(report.is_balanced());
    }
}

#[test]
fn the_atf_trace_holds_the_windows_in_stream_in_jsonl_and_the_manifest() {
    use ada_atf::schema::event::Payload;
    let out = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let mut sink = ada_controller::AtfSink::create(out.path(), me).unwrap();
    let set = ada_persist::TriggerSet::parse(&["symbol=first", "message~=slow"]).unwrap();
    sink.set_triggers(set.specs().iter().map(ToString::to_string).collect());
    sink.begin(&ada_controller::SessionInfo::new(me)).unwrap();
    let dir = sink.dir().to_path_buf();
    let mut drain = Drainer::new(reg, sink).unwrap();
    drain.persistence(windows(PreRoll::Duration(3_000), 4_000));
    let (slot, index, mut detail) = register(reg);
    let base = future();
    for seq in 0..100u64 {
        let mark = match seq {
            20 => Some(Some(1)),
            70 => Some(None),
            _ => None,
        };
        write(&mut detail, base, seq, mark);
    }
    detail.flush_counters();
    drop((index, detail));
    slot.unregister().unwrap();
    drain.pass();
    let (report, mut sink) = drain.finish(&[], Report::default());
    sink.finish(&report).unwrap();

    let reader = ada_atf::TraceReader::open(&dir).unwrap();
    let jsonl = reader.windows().unwrap();
    let manifest = reader.manifest().unwrap();
    assert_eq!(manifest.windows, jsonl);
    assert_eq!(manifest.triggers, ["symbol=first", "message~=slow"]);
    assert_eq!(jsonl.len(), 2, "{jsonl:?}");
    let (a, b) = (&jsonl[0], &jsonl[1]);
    assert_eq!((a.window_id, a.thread_id, a.trigger), (1, 1, Some(1)));
    assert_eq!(
        (a.start_ns, a.first_mark_ns, a.end_ns),
        (base + 17_000, base + 20_000, base + 24_000)
    );
    assert_eq!(
        (a.total_events, a.pre_roll_events, a.discarded_events),
        (8, 3, 17)
    );
    assert_eq!(
        (b.window_id, b.trigger, b.total_events, b.discarded_events),
        (2, None, 8, 42)
    );
    // In the stream: both windows, on the thread, after the window's own events.
    let mut seen_detail = Vec::new();
    let mut marks = Vec::new();
    for ev in reader.events() {
        let ev = ev.unwrap();
        match ev.payload {
            Some(Payload::WindowMark(w)) => {
                assert_eq!(ev.thread_id, 1);
                marks.push((seen_detail.len(), ada_atf::PersistenceWindow::from(w)));
            }
            Some(_) if ev.lane == ada_atf::Lane::Detail.as_u32() => {
                seen_detail.push(ev.function_id)
            }
            _ => {}
        }
    }
    let mut expected: Vec<u64> = (17..=24).collect();
    expected.extend(67..=74);
    assert_eq!(seen_detail, expected);
    assert_eq!(marks, vec![(8, *a), (16, *b)]);
    let t = &manifest.threads[0];
    let d = t
        .lanes
        .iter()
        .find(|l| l.lane == ada_atf::Lane::Detail)
        .unwrap();
    assert_eq!(
        (d.written, d.persisted, d.dropped, d.discarded),
        (100, 16, 0, 84)
    );
}

#[test]
fn a_buffered_pre_roll_holds_what_the_detail_rings_hold() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let geometry = reg.geometry();
    let rings = u64::from(geometry.detail_rings) * u64::from(geometry.detail_ring_bytes);
    let mut drain = drainer(reg, Persistence::default());
    let (slot, index, mut detail) = register(reg);
    let base = future();
    // Far more than the rings hold (a pass every 200 records keeps the pool from dropping).
    let n = 3 * rings / 48;
    for seq in 0..n {
        write(&mut detail, base, seq, (seq == n - 1).then_some(None));
        if seq % 200 == 0 {
            drain.pass();
        }
    }
    detail.flush_counters();
    drop((index, detail));
    slot.unregister().unwrap();
    drain.pass();
    let (report, log) = drain.finish(&[], Report::default());
    let w = log.windows();
    assert_eq!(w.len(), 1);
    let kept = log.detail();
    // The newest records up to the mark, no more than the rings' bytes' worth.
    assert_eq!(kept.len() as u64, w[0].persisted);
    assert_eq!(kept, (n - kept.len() as u64..n).collect::<Vec<_>>());
    assert!(w[0].pre_roll > 0 && w[0].pre_roll * 48 <= rings, "{w:?}");
    let d = report.threads[0].lane(LaneKind::Detail);
    assert_eq!((d.written, d.dropped), (n, 0));
    assert_eq!(d.discarded, n - w[0].persisted);
    assert!(report.is_balanced());
}

#[test]
fn a_pre_roll_beyond_the_budget_is_counted_as_over_budget() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    // Pre-roll 50 µs (50 records) but a budget of a few records' bytes.
    let mut drain = drainer(
        reg,
        Persistence::Windows(WindowConfig {
            pre_roll: PreRoll::Duration(50_000),
            post_roll_ns: 5_000,
            budget_bytes: 512,
        }),
    );
    let (slot, index, mut detail) = register(reg);
    let base = future();
    for seq in 0..200u64 {
        write(&mut detail, base, seq, (seq == 100).then_some(None));
    }
    detail.flush_counters();
    drop((index, detail));
    slot.unregister().unwrap();
    drain.pass();
    let (report, log) = drain.finish(&[], Report::default());
    let w = log.windows();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].pre_roll < 50, "the budget held less than 50 µs: {w:?}");
    assert!(w[0].over_budget_before > 0, "{w:?}");
    let lane = report.threads[0].lane(LaneKind::Detail);
    assert_eq!(lane.over_budget, w[0].over_budget_before);
    assert!(lane.over_budget <= lane.discarded);
    assert!(lane.is_balanced(), "{lane:?}");
}
