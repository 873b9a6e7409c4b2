//! The segment is written by another process: a broken or hostile agent that writes impossible
//! ring indices, positions beyond a ring and records that do not parse must not crash the
//! controller, make it read out of bounds, or cost the valid events it had already drained.
//! Every bad thing is counted in the report.

use ada_controller::{ControllerBuilder, CountingSink, Drainer, Report};
use ada_registry::{LaneKind, SlotOwner};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};

fn record(kind: u32, seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: 1_000 + seq,
        function_id: 1,
        thread_id: 7,
        kind,
        call_depth: 1,
        reserved: 0,
    }
}

#[test]
fn corrupt_lanes_are_counted_never_followed() {
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let owner = SlotOwner {
        thread_id: 7,
        pid: std::process::id(),
        generation: 0,
        registered_ns: 0,
    };
    // Slot A: valid records, then one with an unknown kind (the rest of that chunk is lost
    // and counted), then garbage in the lane's control words.
    let a = reg.view().register(owner).unwrap();
    let store = SegmentStore::new(reg, a.slot.index(), LaneKind::Index).unwrap();
    let lane = a.slot.lanes().lane(LaneKind::Index);
    let mut w = LaneWriter::new(a.index, store.clone(), DropOldest);
    for seq in 0..100 {
        w.write_index(&record(EventKind::Call as u32, seq));
    }
    let mut drainer = Drainer::new(reg, CountingSink::default()).unwrap();
    // The segment has one drain: a second is refused with a clear error.
    let second = Drainer::new(reg, CountingSink::default()).unwrap_err();
    assert!(
        second.to_string().contains("already being drained"),
        "{second}"
    );
    drainer.pass();
    assert_eq!(drainer.sink_mut().records, 100, "valid records drained");

    w.write_index(&record(77, 100)); // an EventKind that does not exist
    w.write_index(&record(EventKind::Call as u32, 101));
    drainer.pass();

    // Impossible ring indices in the submit queue, an active ring index out of range, and a
    // ring whose write_pos lies beyond its data area.
    // This plays a second, hostile producer of the submit queue, as another process could;
    // the thread's own writer is idle meanwhile.
    // SAFETY: deliberately not upheld; the queue words are touched by one side at a time here.
    let mut submit = unsafe { lane.submit_queue().producer() };
    submit.push(1_000).unwrap();
    submit.push(u32::MAX).unwrap();
    use ada_ringpool::RingStore;
    let header = store.header(1);
    header.publish_position(header.consumed().generation, u32::MAX - 7);
    submit.push(1).unwrap();
    drainer.pass();
    lane.set_active_ring(4_242);
    drainer.pass();

    // Slot B: a well-behaved thread next to it keeps being drained.
    let b = std::thread::scope(|s| {
        s.spawn(|| {
            let b = reg
                .view()
                .register(SlotOwner {
                    thread_id: 8,
                    ..owner
                })
                .unwrap();
            let index = b.slot.index();
            let store = SegmentStore::new(reg, index, LaneKind::Index).unwrap();
            let mut w = LaneWriter::new(b.index, store, DropOldest);
            for seq in 0..50 {
                w.write_index(&record(EventKind::Return as u32, seq));
            }
            w.flush_counters();
            drop(b.slot); // unregisters
            index
        })
        .join()
        .unwrap()
    });
    a.slot.unregister().unwrap();
    for _ in 0..3 {
        drainer.pass();
    }
    let (report, sink): (Report, CountingSink) = drainer.finish(&[], Report::default());
    assert_eq!(sink.records, 150, "every valid record, and nothing else");
    assert!(report.corruption.bad_chunks >= 1, "{report:?}");
    assert!(report.corruption.ring_errors >= 3, "{report:?}");
    let ta = report.threads.iter().find(|t| t.info.os_tid == 7).unwrap();
    let index = ta.lane(LaneKind::Index);
    assert_eq!(index.persisted, 100);
    assert!(index.corrupt >= 1);
    assert!(
        !index.is_balanced(),
        "corruption shows as imbalance, not hidden"
    );
    let tb = report.threads.iter().find(|t| t.info.os_tid == 8).unwrap();
    assert_eq!(tb.info.slot, b);
    let index = tb.lane(LaneKind::Index);
    assert_eq!((index.written, index.persisted), (50, 50));
    assert!(index.is_balanced());
}

/// A running thread's lane counters are read at `finish` from shared memory: a peer that set
/// the loss counters near `u64::MAX` must not make the final accounting overflow (a panic in
/// the drain thread would lose the manifest).
#[test]
fn finish_survives_counters_set_near_the_maximum() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let owner = SlotOwner::current_thread();
    let a = reg.view().register(owner).unwrap();
    let store = SegmentStore::new(reg, a.slot.index(), LaneKind::Index).unwrap();
    let lane = a.slot.lanes().lane(LaneKind::Index);
    let mut w = LaneWriter::new(a.index, store, DropOldest);
    for seq in 0..10 {
        w.write_index(&record(EventKind::Call as u32, seq));
    }
    w.flush_counters();
    let mut drainer = Drainer::new(reg, CountingSink::default()).unwrap();
    drainer.pass();
    let mut forged = lane.counters();
    forged.events_dropped = 3;
    forged.overwritten = u64::MAX - 1;
    forged.refused = 2;
    forged.events_written = u64::MAX;
    lane.store_counters(&forged);
    let (report, sink): (Report, CountingSink) = drainer.finish(&[], Report::default());
    assert_eq!(sink.records, 10);
    let t = &report.threads[0];
    let index = t.lane(LaneKind::Index);
    assert_eq!(index.persisted, 10);
    // The total is computed from the causes (the shared total word is ignored), saturating.
    assert_eq!(index.dropped, u64::MAX);
    assert_eq!(
        (index.lost.overwritten, index.lost.refused),
        (u64::MAX - 1, 2)
    );
    assert_eq!(index.after_end, 0, "saturated, not wrapped");
    // The report's totals saturate too.
    assert_eq!(report.dropped(), u64::MAX);
    // A running thread's counters may be read half stored: a total (3) that contradicts its
    // causes is not taken as evidence of corruption here.
    assert_eq!(report.corruption.lane_counters, 0);
    drop(w);
    drop(a.slot);
}

/// A thread that unregistered stored all its counters before handing its slot over: a total
/// of lost events that contradicts its causes then means another process rewrote them.
#[test]
fn contradicting_loss_counters_of_an_ended_thread_are_corruption() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let a = reg.view().register(SlotOwner::current_thread()).unwrap();
    let store = SegmentStore::new(reg, a.slot.index(), LaneKind::Index).unwrap();
    let lane = a.slot.lanes().lane(LaneKind::Index);
    let mut w = LaneWriter::new(a.index, store, DropOldest);
    for seq in 0..10 {
        w.write_index(&record(EventKind::Call as u32, seq));
    }
    w.flush_counters();
    let mut forged = lane.counters();
    forged.events_dropped = 3;
    forged.refused = 2;
    lane.store_counters(&forged);
    drop(w);
    drop(a.slot);
    let drainer = Drainer::new(reg, CountingSink::default()).unwrap();
    let (report, _) = drainer.finish(&[], Report::default());
    let index = report.threads[0].lane(LaneKind::Index);
    assert_eq!(
        (index.dropped, index.lost.refused),
        (2, 2),
        "the causes are reported"
    );
    assert_eq!(report.corruption.lane_counters, 1);
}
