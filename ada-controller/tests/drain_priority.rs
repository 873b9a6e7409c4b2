//! The drain's backpressure response: lanes under pressure are drained first and again at the
//! end of a pass, which cuts loss under an uneven load (one hot thread, seven quiet ones).
//!
//! Deterministic: no timing. The hot thread writes only when told, in lock step with the drain:
//! a fixed number of events per quiet thread's chunk the drain hands to the sink (the time the
//! drain spends on the quiet threads) and a fixed number between passes (the drain's sleep). Its
//! loss is then a pure function of the order in which the drain visits the lanes.

use ada_controller::{
    ChunkInfo, ControllerBuilder, Drainer, LaneKind, Record, Report, RingGeometry, Sink, SinkError,
    SinkOutput, ThreadInfo,
};
use ada_registry::{Registry, SlotOwner};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};
use std::sync::mpsc::{Receiver, Sender, channel};

const QUIET: u64 = 7;
const PASSES: u64 = 40;

fn owner(thread_id: u64) -> SlotOwner {
    SlotOwner {
        thread_id,
        pid: std::process::id(),
        generation: 0,
        registered_ns: 0,
    }
}

fn event(seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: 1 + seq,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

enum Cmd {
    Write(u64),
    Stop,
}

/// Advances the hot thread by `per_chunk` events for every quiet thread's chunk.
struct LockStep {
    hot_slot: u32,
    per_chunk: u64,
    cmd: Sender<Cmd>,
    ack: Receiver<()>,
}

impl LockStep {
    fn write(&self, n: u64) {
        self.cmd.send(Cmd::Write(n)).unwrap();
        self.ack.recv().unwrap();
    }
}

impl Sink for LockStep {
    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        if thread.slot != self.hot_slot && chunk.lane == LaneKind::Index {
            self.write(self.per_chunk);
        }
        Ok(())
    }
    fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(0))
    }
}

/// Runs the uneven load with the drain's prioritising `on` or off; returns the hot lane's loss
/// (and checks the whole report balances).
fn hot_loss(prioritise: bool) -> (u64, u64) {
    let controller = ControllerBuilder::new()
        .capacity(8)
        .geometry(RingGeometry {
            index_rings: 4,
            index_ring_bytes: 1024,
            ..RingGeometry::default()
        })
        .create()
        .unwrap();
    let reg: &Registry = controller.registry();
    let (cmd, cmd_rx) = channel();
    let (ack_tx, ack) = channel();
    let (slot_tx, slot_rx) = channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            let r = reg.view().register(owner(1)).unwrap();
            let store = SegmentStore::new(reg, r.slot.index(), LaneKind::Index).unwrap();
            let mut w = LaneWriter::new(r.index, store, DropOldest);
            let ring_events = u64::from(w.active_free_bytes()) / 32;
            slot_tx.send((r.slot.index(), ring_events)).unwrap();
            let mut seq = 0;
            while let Ok(Cmd::Write(n)) = cmd_rx.recv() {
                for _ in 0..n {
                    w.write_index(&event(seq));
                    seq += 1;
                }
                ack_tx.send(()).unwrap();
            }
            w.settle();
            r.slot.unregister().unwrap();
            ack_tx.send(()).unwrap();
        });
        let (hot_slot, ring) = slot_rx.recv().unwrap();
        // Between two visits of a plain round-robin the hot thread writes 7 × per_chunk +
        // between (about 4.7 rings: more than its pool holds); visited first and last, at most
        // 7 × per_chunk or `between` (about 2.3 rings: less).
        let per_chunk = ring / 3;
        let between = QUIET * per_chunk;
        let quiet: Vec<_> = (0..QUIET)
            .map(|i| {
                let r = reg.view().register(owner(10 + i)).unwrap();
                let store = SegmentStore::new(reg, r.slot.index(), LaneKind::Index).unwrap();
                (r.slot, LaneWriter::new(r.index, store, DropOldest))
            })
            .collect();
        let sink = LockStep {
            hot_slot,
            per_chunk,
            cmd,
            ack,
        };
        let mut drainer = Drainer::new(reg, sink).unwrap();
        drainer.prioritise(prioritise);
        let mut quiet = quiet;
        for pass in 0..PASSES {
            drainer.sink_mut().write(between);
            for (_, w) in &mut quiet {
                // One event each: one chunk per quiet thread per pass.
                w.write_index(&event(pass));
            }
            drainer.pass();
        }
        drainer.sink_mut().cmd.send(Cmd::Stop).unwrap();
        drainer.sink_mut().ack.recv().unwrap();
        for (slot, mut w) in quiet {
            w.settle();
            slot.unregister().unwrap();
        }
        let (report, _) = drainer.finish(&[], Report::default());
        assert_eq!(report.threads.len(), 8);
        let mut hot = None;
        for t in &report.threads {
            let lane = t.lane(LaneKind::Index);
            assert!(lane.is_balanced(), "{lane:?}");
            assert_eq!(lane.dropped, lane.lost.total());
            assert_eq!(lane.marked_lost, lane.dropped, "every loss marked");
            if t.info.slot == hot_slot {
                hot = Some((lane.dropped, lane.written));
            } else {
                assert_eq!(
                    (lane.written, lane.dropped),
                    (PASSES, 0),
                    "quiet threads lose nothing"
                );
            }
        }
        hot.unwrap()
    })
}

#[test]
fn prioritising_lanes_under_pressure_reduces_loss_under_uneven_load() {
    let (without, written) = hot_loss(false);
    let (with, written_too) = hot_loss(true);
    assert_eq!(written, written_too, "the same load both times");
    println!(
        "hot thread: {written} events written; lost {without} round-robin, {with} prioritised"
    );
    assert!(
        without > 0,
        "the plain round-robin must lose events for the comparison to mean anything"
    );
    assert!(
        with < without,
        "prioritised {with} vs round-robin {without}"
    );
}

/// Records the slot of every index chunk, in order.
#[derive(Default)]
struct Order(Vec<u32>);

impl Sink for Order {
    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        if chunk.lane == LaneKind::Index {
            self.0.push(thread.slot);
        }
        Ok(())
    }
    fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(0))
    }
}

/// A lane whose published state is not NORMAL is drained before the slots ahead of it, and
/// again at the end of the pass; a state byte no state has (a rewritten segment) buys nothing.
#[test]
fn visit_order_follows_the_published_state() {
    use ada_registry::LaneStateWord;
    let controller = ControllerBuilder::new().capacity(4).create().unwrap();
    let reg = controller.registry();
    let mut threads: Vec<_> = (0..2)
        .map(|i| {
            let r = reg.view().register(owner(1 + i)).unwrap();
            let store = SegmentStore::new(reg, r.slot.index(), LaneKind::Index).unwrap();
            (r.slot, LaneWriter::new(r.index, store, DropOldest))
        })
        .collect();
    threads.sort_by_key(|t| t.0.index());
    let (low, high) = (threads[0].0.index(), threads[1].0.index());
    let mut drainer = Drainer::new(reg, Order::default()).unwrap();
    let lane = threads[1].0.lanes().lane(LaneKind::Index);
    let publish = |state: u8| {
        lane.store_state(&LaneStateWord {
            state,
            since_ns: 0,
            entries: [0; 4],
        });
    };
    let mut order_with = |drainer: &mut Drainer<'_, Order>, state: u8, seq: u64| {
        publish(state);
        for (_, w) in threads.iter_mut() {
            w.write_index(&event(seq));
        }
        drainer.sink_mut().0.clear();
        drainer.pass();
        std::mem::take(&mut drainer.sink_mut().0)
    };
    assert_eq!(
        order_with(&mut drainer, 0, 0),
        [low, high],
        "NORMAL: slot order"
    );
    for state in [1, 2, 3] {
        assert_eq!(
            order_with(&mut drainer, state, 1),
            [high, low],
            "state {state}: first"
        );
    }
    assert_eq!(
        order_with(&mut drainer, 200, 2),
        [low, high],
        "unknown byte: as NORMAL"
    );
    drainer.prioritise(false);
    assert_eq!(
        order_with(&mut drainer, 1, 3),
        [low, high],
        "prioritising off"
    );
}
