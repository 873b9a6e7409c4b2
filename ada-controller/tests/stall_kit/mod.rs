//! The stall tests' harness: a controller whose drain thread is held by a [`PauseGate`] and
//! makes exactly one pass per [`Session::drain_once`], a sink that keeps what reached it, and
//! index-lane writers driven by the test with [`FakeClock`] timestamps (the lane state
//! machine's clock) and sequence numbers in `function_id`.
#![allow(dead_code)] // each test binary uses part of it

use ada_controller::{
    ClockChoice, ControllerBuilder, DrainPoint, LaneKind, LossInfo, Record, Report, RingGeometry,
    Running, SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo,
};
use ada_registry::{Registry, SlotOwner, ThreadSlot};
use ada_ringpool::{EventKind, IndexRecord, LaneWriter, PoolPolicy, SegmentStore, Written};
use ada_testkit::{FakeClock, PauseGate};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Index ring size in these tests: small rings fill fast.
pub const RING_BYTES: u32 = 4096;
/// Fake nanoseconds between two events of a writer.
pub const STEP: u64 = 100;

const WAIT: Duration = Duration::from_secs(60);

/// What reached the sink.
#[derive(Debug, Default)]
pub struct Seen {
    /// (slot, function_id) of every index event, in the order the sink got them.
    pub events: Vec<(u32, u64)>,
    /// (slot, loss) of every `EventsLost` marker.
    pub losses: Vec<(u32, LossInfo)>,
}

impl Seen {
    /// Sequence numbers of `slot`'s events, in arrival order.
    pub fn seqs(&self, slot: u32) -> Vec<u64> {
        self.events
            .iter()
            .filter(|e| e.0 == slot)
            .map(|e| e.1)
            .collect()
    }

    /// `slot`'s loss markers.
    pub fn losses(&self, slot: u32) -> Vec<LossInfo> {
        self.losses
            .iter()
            .filter(|l| l.0 == slot)
            .map(|l| l.1)
            .collect()
    }

    /// Events `slot`'s markers announce.
    pub fn marked(&self, slot: u32) -> u64 {
        self.losses(slot).iter().map(|l| l.count).sum()
    }
}

/// Keeps what reaches it in a shared [`Seen`].
pub struct Collect(Arc<Mutex<Seen>>);

impl Sink for Collect {
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError> {
        if record.lane == LaneKind::Index {
            let mut seen = self.0.lock().unwrap();
            seen.events.push((thread.slot, record.function_id));
        }
        Ok(())
    }
    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        self.0.lock().unwrap().losses.push((thread.slot, *loss));
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(self.0.lock().unwrap().events.len() as u64))
    }
}

/// A running controller whose drain is held between passes.
pub struct Session {
    /// `None` once stopped.
    running: Option<Running<Collect>>,
    gate: Arc<PauseGate>,
    seen: Arc<Mutex<Seen>>,
    /// A handle on the segment (writers borrow this one, not the session).
    pub registry: Registry,
}

impl Session {
    /// Four index rings of [`RING_BYTES`] per thread; the drain is held before its first pass;
    /// each pass takes everything committed, active rings included (the tests count what each
    /// pass delivers).
    pub fn start() -> Session {
        Session::with_live_copies_every(Duration::ZERO)
    }

    /// As [`start`](Self::start), with the controller's live-copy period `every` (see
    /// `ControllerBuilder::live_copy_every`).
    pub fn with_live_copies_every(every: Duration) -> Session {
        let gate = Arc::new(PauseGate::new());
        gate.pause();
        let hook = {
            let gate = Arc::clone(&gate);
            Arc::new(move |point| {
                if point == DrainPoint::BeforePass {
                    gate.checkpoint();
                }
            })
        };
        let controller = ControllerBuilder::new()
            // The writers stamp FakeClock nanoseconds: a CLOCK_MONOTONIC session.
            .session_clock(ClockChoice::Monotonic)
            .capacity(8)
            .geometry(RingGeometry {
                index_rings: 4,
                index_ring_bytes: RING_BYTES,
                ..RingGeometry::default()
            })
            .drain_hook(hook)
            .live_copy_every(every)
            .create()
            .unwrap();
        let registry = controller.registry().clone();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let running = controller
            .start(
                Collect(Arc::clone(&seen)),
                SessionInfo::new(std::process::id()),
            )
            .unwrap();
        assert!(
            gate.wait_until_paused(WAIT),
            "the drain reaches its first pass"
        );
        Session {
            running: Some(running),
            gate,
            seen,
            registry,
        }
    }

    /// Lets the drain make exactly one pass, and holds it again before the next.
    pub fn drain_once(&self) {
        let passed = self.gate.passed();
        self.gate.resume();
        assert!(self.gate.wait_for_passes(passed + 1, WAIT));
        self.gate.pause();
        // Held again only once the pass that began is over.
        assert!(self.gate.wait_until_paused(WAIT));
    }

    /// What reached the sink so far.
    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Releases the drain and stops the session (final drain): the report and what the sink got.
    pub fn stop(mut self) -> (Report, Seen) {
        self.gate.resume();
        let running = self.running.take().expect("stopped once");
        let report = running.stop(Some(0)).unwrap();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        (report, seen)
    }
}

impl Drop for Session {
    /// A test that fails while the drain is held must not hang: the drain is released before
    /// the `Running` is dropped (which stops it).
    fn drop(&mut self) {
        self.gate.resume();
    }
}

/// A registered thread's index-lane writer, stamping events with a fake clock.
pub struct Writer<'r, P: PoolPolicy> {
    pub slot: ThreadSlot<'r>,
    pub lane: LaneWriter<'r, SegmentStore<'r>, P>,
    pub clock: FakeClock,
    /// The next sequence number.
    pub seq: u64,
    ring: u64,
}

impl<'r, P: PoolPolicy> Writer<'r, P> {
    /// Registers a slot of `registry` (owned by this thread) and makes its index writer.
    pub fn new(registry: &'r Registry, policy: P) -> Self {
        let r = registry
            .view()
            .register(SlotOwner::current_thread())
            .unwrap();
        let store = SegmentStore::new(registry, r.slot.index(), LaneKind::Index).unwrap();
        let lane = LaneWriter::new(r.index, store, policy);
        Writer {
            slot: r.slot,
            // A fresh writer's active ring is empty: its free bytes are a ring's capacity.
            ring: u64::from(lane.active_free_bytes()) / 32,
            lane,
            clock: FakeClock::new(1_000_000),
            seq: 0,
        }
    }

    /// The slot index.
    pub fn index(&self) -> u32 {
        self.slot.index()
    }

    /// Events a ring holds.
    pub fn ring_events(&self) -> u64 {
        self.ring
    }

    /// Writes one event (sequence number in `function_id`, the clock advanced by `STEP`).
    pub fn write(&mut self) -> Written {
        let ts = self.clock.advance(STEP);
        let written = self.lane.write_index(&event(self.seq, ts));
        self.seq += 1;
        written
    }

    /// Writes `n` events.
    pub fn write_n(&mut self, n: u64) {
        for _ in 0..n {
            self.write();
        }
    }

    /// Timestamp of event `seq`, while only [`write`](Self::write) moves the clock.
    pub fn ts_of(&self, seq: u64) -> u64 {
        1_000_000 + (seq + 1) * STEP
    }

    /// Events that fit in the active ring now.
    pub fn active_room(&self) -> u64 {
        u64::from(self.lane.active_free_bytes()) / 32
    }

    /// Publishes pending markers and counters, and unregisters.
    pub fn finish(mut self) {
        self.lane.settle();
        self.slot.unregister().unwrap();
    }
}

/// Index event `seq` stamped `ts`.
pub fn event(seq: u64, ts: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ts,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

/// Checks the report's accounting for every lane: `written = persisted + spilled + discarded +
/// dropped`
/// (nothing after the end: every thread unregistered), `dropped` is the sum of the causes, and
/// every lost event was marked.
pub fn assert_balanced(report: &Report) {
    for t in &report.threads {
        for kind in LaneKind::ALL {
            let l = t.lane(kind);
            assert_eq!(l.after_end, 0, "{l:?}");
            assert!(l.is_balanced(), "{l:?}");
            assert_eq!(
                l.written,
                l.persisted + l.spilled + l.discarded + l.dropped,
                "{l:?}"
            );
            assert_eq!(l.dropped, l.lost.total(), "{l:?}");
            assert_eq!(l.marked_lost, l.dropped, "{l:?}");
        }
    }
}
