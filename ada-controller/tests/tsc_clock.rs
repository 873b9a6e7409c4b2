//! The TSC session clock end to end: agents stamp with the segment's clock, the drain converts
//! counter ticks to `CLOCK_MONOTONIC` nanoseconds (exactly, for a fake counter of known rate;
//! to within a microsecond, for the real one), converted times never go back across a
//! calibration update, and the clock choice is honoured or refused clearly.

use ada_agent::{Agent, ThreadWriter};
use ada_backpressure::DropPolicy;
use ada_controller::{
    ClockChoice, ClockUnavailable, ControllerBuilder, ControllerError, Drainer, LaneKind, LossInfo,
    Record, Report, SessionInfo, Sink, SinkError, SinkOutput, StampConverter, ThreadInfo,
    TscSource,
};
use ada_registry::{Registry, RegistryConfig, RingGeometry, SlotOwner};
use ada_ringpool::{EventKind, IndexRecord, LaneWriter, SegmentStore};
use ada_shm::clock::{ClockId, MonotonicClock};
use ada_shm::tsc::{Calibration, Invariance, Point};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What reached the sink.
#[derive(Debug, Default)]
struct Seen {
    /// (slot, lane, timestamp, function id) of every record, in arrival order.
    records: Vec<(u32, LaneKind, u64, u64)>,
    losses: Vec<LossInfo>,
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Seen>>);

impl Sink for Collect {
    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        let mut seen = self.0.lock().unwrap();
        seen.records
            .push((thread.slot, r.lane, r.timestamp_ns, r.function_id));
        Ok(())
    }
    fn events_lost(&mut self, _: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        self.0.lock().unwrap().losses.push(*loss);
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput::new(self.0.lock().unwrap().records.len() as u64))
    }
}

impl Collect {
    fn index_times(&self) -> Vec<(u64, u64)> {
        let seen = self.0.lock().unwrap();
        seen.records
            .iter()
            .filter(|r| r.1 == LaneKind::Index)
            .map(|r| (r.2, r.3))
            .collect()
    }
}

fn tsc_registry(geometry: RingGeometry) -> Registry {
    Registry::create(
        &RegistryConfig {
            capacity: 4,
            geometry,
            clock: ClockId::Tsc,
            stamps_per_second: 1_000_000_000,
            ..RegistryConfig::default()
        },
        &[],
    )
    .unwrap()
}

fn index(ticks: u64, id: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ticks,
        function_id: id,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 1,
        reserved: 0,
    }
}

/// A fake world: `CLOCK_MONOTONIC` is whatever the test says (`now`), and the counter runs at
/// 1 tick per ns up to 2000 ns (ticks = ns - 1000), then at 2 ticks per ns.
fn fake_ticks(ns: u64) -> u64 {
    if ns <= 2_000 {
        ns - 1_000
    } else {
        1_000 + 2 * (ns - 2_000)
    }
}

fn fake_source(now: &Arc<AtomicU64>) -> TscSource {
    let now = Arc::clone(now);
    TscSource::new(Invariance::Cpuid, move || {
        // Relaxed: one test thread moves it, the drain (same thread) reads it.
        let ns = now.load(Ordering::Relaxed);
        Some(Point {
            ticks: fake_ticks(ns),
            mono_ns: ns,
        })
    })
}

/// A fake counter of known rate, drained: every record and the loss marker's first and last
/// times convert exactly; then the counter speeds up, and the calibration point saying so does
/// not take the thread's converted times back (anchoring). Without the conversion the sink
/// would see raw ticks; without the anchor, the first records after the update would convert
/// ~500 ns below the last ones before it.
#[test]
fn a_fake_counter_converts_exactly_and_never_backwards_in_the_drain() {
    // 128 records per ring, 2 rings: a pool that fills.
    let registry = tsc_registry(RingGeometry {
        index_rings: 2,
        index_ring_bytes: 4096,
        ..RingGeometry::default()
    });
    let now = Arc::new(AtomicU64::new(2_000));
    let mut calibration = Calibration::new();
    for ns in [1_500, 2_000] {
        calibration
            .add(Point {
                ticks: fake_ticks(ns),
                mono_ns: ns,
            })
            .unwrap();
    }
    let sink = Collect::default();
    let mut drainer = Drainer::new(&registry, sink.clone()).unwrap();
    // A point at every pass: the fake counter's time is the test's.
    drainer.set_stamps(
        StampConverter::from_calibration(calibration, Some(fake_source(&now))).with_schedule(0, 0),
    );
    let r = registry
        .view()
        .register(SlotOwner::current_thread())
        .unwrap();
    let store = SegmentStore::new(&registry, r.slot.index(), LaneKind::Index).unwrap();
    let mut lane = LaneWriter::new(r.index, store, DropPolicy::DropNewest);

    // Phase 1, 1 tick per ns: 300 records at ticks 1002, 1004, ... (extrapolated past the last
    // point); the pool holds 256, the rest are refused with one marker.
    let phase1: Vec<u64> = (1..=300).map(|i| 1_000 + 2 * i).collect();
    for (i, &t) in phase1.iter().enumerate() {
        lane.write_index(&index(t, i as u64));
    }
    drainer.pass();
    // The marker is placed with the next record, in a returned ring.
    lane.write_index(&index(1_700, 300));
    drainer.pass();
    let got = sink.index_times();
    // What the pool held (the rest refused), then the record that placed the marker.
    let held = got.len() - 1;
    assert!((200..300).contains(&held), "{held}");
    let expected: Vec<(u64, u64)> = phase1[..held]
        .iter()
        .enumerate()
        .map(|(i, &t)| (t + 1_000, i as u64))
        .chain([(2_700, 300)])
        .collect();
    assert_eq!(got, expected, "ticks + 1000: exact");
    let losses = sink.0.lock().unwrap().losses.clone();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(
        (losses[0].count, losses[0].first_ns, losses[0].last_ns),
        (
            (300 - held) as u64,
            phase1[held] + 1_000,
            phase1[299] + 1_000
        ),
        "the lost records' own times, converted"
    );

    // Phase 2: the counter ran at 2 ticks per ns since 2000 ns; a point at 3500 ns (4000
    // ticks) says so at the next pass, before its records are read.
    now.store(3_500, Ordering::Relaxed);
    for i in 0..100u64 {
        lane.write_index(&index(1_702 + 23 * i, 1_000 + i));
    }
    drainer.pass();
    let got = sink.index_times();
    let times: Vec<u64> = got.iter().map(|g| g.0).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {:?}",
        &times[250..]
    );
    assert_eq!(
        drainer.stamps().calibration().points().len(),
        4,
        "anchor + point"
    );
    drop(lane);
    drop(r.slot);
    let (report, _) = drainer.finish(&[], Report::default());
    assert_eq!(report.clock.source, ClockId::Tsc);
    assert_eq!(report.clock.calibration.points()[3].mono_ns, 3_500);
}

/// An agent attached to a segment that says TSC stamps counter ticks; one that says
/// `CLOCK_MONOTONIC` stamps nanoseconds (read raw: a drain with no conversion).
#[test]
fn agents_stamp_with_the_segments_clock() {
    for clock in [ClockId::Tsc, ClockId::Monotonic] {
        if clock == ClockId::Tsc && ada_shm::tsc::read().is_none() {
            eprintln!("skipped TSC: no counter on this architecture");
            continue;
        }
        let registry = Registry::create(
            &RegistryConfig {
                capacity: 2,
                clock,
                ..RegistryConfig::default()
            },
            &[],
        )
        .unwrap();
        let agent = Agent::from_registry(registry.clone());
        assert_eq!(agent.clock(), clock);
        let sink = Collect::default();
        let mut drainer = Drainer::new(&registry, sink.clone()).unwrap();
        let read = || match clock {
            ClockId::Tsc => ada_shm::tsc::read().unwrap(),
            _ => MonotonicClock::read(),
        };
        let (before, after) = {
            let mut w = ThreadWriter::register(&agent).unwrap();
            let before = read();
            w.enter(1);
            w.exit(1);
            (before, read())
        };
        drainer.pass();
        let times = sink.index_times();
        assert_eq!(times.len(), 2, "{clock:?}");
        for (t, _) in times {
            assert!(
                before <= t && t <= after,
                "{clock:?}: {before} <= {t} <= {after}"
            );
        }
    }
}

/// `tsc` where the counter is not invariant is a clear configuration error; `auto` settles for
/// `CLOCK_MONOTONIC` there; `monotonic` makes a `CLOCK_MONOTONIC` segment.
#[test]
fn the_clock_choice_is_honoured_or_refused_clearly() {
    let not_invariant = TscSource::new(Invariance::No, ada_shm::tsc::sample);
    let e = ControllerBuilder::new()
        .session_clock(ClockChoice::Tsc)
        .tsc_source(not_invariant.clone())
        .create()
        .unwrap_err();
    assert!(
        matches!(e, ControllerError::Clock(ClockUnavailable::NotInvariant)),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("no invariant time-stamp counter"),
        "{e}"
    );
    let auto = ControllerBuilder::new()
        .capacity(2)
        .tsc_source(not_invariant)
        .create()
        .unwrap();
    assert_eq!(auto.registry().clock(), ClockId::Monotonic);
    let mono = ControllerBuilder::new()
        .capacity(2)
        .session_clock(ClockChoice::Monotonic)
        .create()
        .unwrap();
    assert_eq!(mono.registry().clock(), ClockId::Monotonic);
    assert_eq!(mono.registry().control().clock(), Some(ClockId::Monotonic));
    if ada_shm::tsc::invariance().is_invariant() {
        let tsc = ControllerBuilder::new()
            .capacity(2)
            .session_clock(ClockChoice::Tsc)
            .create()
            .unwrap();
        assert_eq!(tsc.registry().clock(), ClockId::Tsc);
        assert_eq!(tsc.registry().control().clock(), Some(ClockId::Tsc));
        let rate = tsc.registry().control().stamps_per_second();
        assert!(rate > 100_000_000, "a measured counter rate: {rate}");
    }
}

/// The real counter over a 10 s trace: every event's converted time lies within 1 µs of the
/// `CLOCK_MONOTONIC` bracket around its stamp. Each record's id is `CLOCK_MONOTONIC` read just
/// before it is stamped, so record k was stamped after id(k) and before id(k + 1); preemption
/// only widens a bracket.
#[test]
fn the_real_counter_converts_to_within_a_microsecond_over_ten_seconds() {
    if !real_counter() {
        return;
    }
    let controller = ControllerBuilder::new()
        .capacity(4)
        .session_clock(ClockChoice::Tsc)
        .create()
        .unwrap();
    assert_eq!(controller.registry().clock(), ClockId::Tsc);
    let agent = Agent::from_registry(controller.registry().clone());
    let sink = Collect::default();
    let running = controller.start(sink.clone(), SessionInfo::new(0)).unwrap();
    let mut ids = Vec::new();
    {
        let mut w = ThreadWriter::register(&agent).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let id = MonotonicClock::read();
            w.enter(id);
            ids.push(id);
            let id = MonotonicClock::read();
            w.exit(id);
            ids.push(id);
            std::thread::sleep(Duration::from_micros(200));
        }
        ids.push(MonotonicClock::read());
    }
    let report = running.stop(Some(0)).unwrap();
    assert_eq!(report.clock.source, ClockId::Tsc);
    let times = sink.index_times();
    assert_eq!(times.len() + 1, ids.len(), "every event arrived");
    let mut worst = 0i64;
    for (k, &(t, id)) in times.iter().enumerate() {
        assert_eq!(id, ids[k], "in order");
        let (low, high) = (ids[k] as i64, ids[k + 1] as i64);
        let t = t as i64;
        let error = (low - t).max(t - high).max(0);
        worst = worst.max(error);
        assert!(
            error < 1_000,
            "event {k}: converted {t} outside [{low}, {high}] by {error} ns"
        );
    }
    eprintln!(
        "{} events over 10 s: worst error outside the bracket {worst} ns; {} calibration \
         points",
        times.len(),
        report.clock.calibration.total_points()
    );
}

/// `attach` (a restarted controller) follows the segment's clock whatever the builder asks
/// for, and says so clearly when it cannot calibrate that clock.
#[test]
fn attach_follows_the_segments_clock() {
    if !real_counter() {
        return;
    }
    let first = ControllerBuilder::new()
        .capacity(2)
        .session_clock(ClockChoice::Tsc)
        .create()
        .unwrap();
    let name = first.segment_name().to_owned();
    let e = ControllerBuilder::new()
        .tsc_source(TscSource::new(Invariance::Cpuid, || None))
        .attach(&name)
        .unwrap_err();
    assert!(
        matches!(e, ControllerError::Clock(ClockUnavailable::NoCalibration)),
        "{e:?}"
    );
    let second = ControllerBuilder::new()
        .session_clock(ClockChoice::Monotonic)
        .attach(&name)
        .unwrap();
    assert_eq!(second.registry().clock(), ClockId::Tsc);
    let report = second
        .start(Collect::default(), SessionInfo::new(0))
        .unwrap()
        .stop(Some(0))
        .unwrap();
    assert_eq!(report.clock.source, ClockId::Tsc);
    assert!(
        report.clock.calibration.points().len() >= 3,
        "opening pair + final"
    );
    drop(first);
}

/// Three drain workers on a TSC session: every worker converts with the same samples (the
/// drain loop takes them and hands each to all), each traced thread's times stay within a
/// microsecond of the CLOCK_MONOTONIC bracket around each event and never go back, and the
/// report's calibration holds those samples, in order.
#[test]
fn drain_workers_share_one_calibration() {
    if !real_counter() {
        return;
    }
    const THREADS: usize = 6;
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(8)
        .session_clock(ClockChoice::Tsc)
        .drain_threads(3)
        .output_dir(out.path())
        .create()
        .unwrap();
    let agent = Agent::from_registry(controller.registry().clone());
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    // Per thread: the CLOCK_MONOTONIC readings around its events, in order.
    let brackets: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut w = ThreadWriter::register(&agent).unwrap();
                    let mut ids = Vec::new();
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(1_500) {
                        let id = MonotonicClock::read();
                        w.enter(id);
                        ids.push(id);
                        let id = MonotonicClock::read();
                        w.exit(id);
                        ids.push(id);
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    ids.push(MonotonicClock::read());
                    ids
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let report = running.stop(Some(0)).unwrap();
    assert_eq!(report.clock.source, ClockId::Tsc);
    let points = report.clock.calibration.points();
    assert!(
        points.len() >= 4,
        "opening pair, schedule, final: {points:?}"
    );
    assert!(
        points
            .windows(2)
            .all(|p| p[0].ticks < p[1].ticks && p[0].mono_ns < p[1].mono_ns)
    );

    let reader =
        ada_atf::TraceReader::open(report.output.as_ref().unwrap().dir.as_ref().unwrap()).unwrap();
    // Per traced thread (by its first event's id, which is unique): (timestamp, id) in order.
    let mut per_thread: std::collections::HashMap<i32, Vec<(u64, u64)>> = Default::default();
    for e in reader.events() {
        let e = e.unwrap();
        if e.function_id == 0 || e.thread_id == 0 {
            continue; // definitions
        }
        let ts = e
            .timestamp
            .map_or(0, |t| t.seconds as u64 * 1_000_000_000 + t.nanos as u64);
        per_thread
            .entry(e.thread_id)
            .or_default()
            .push((ts, e.function_id));
    }
    assert_eq!(per_thread.len(), THREADS);
    for times in per_thread.values() {
        let ids = brackets
            .iter()
            .find(|b| b[0] == times[0].1)
            .expect("a thread's first id is its own");
        assert_eq!(times.len() + 1, ids.len(), "every event arrived");
        let mut last = 0;
        for (k, &(t, id)) in times.iter().enumerate() {
            assert_eq!(id, ids[k], "in order");
            assert!(t >= last, "event {k}: {t} < {last}");
            last = t;
            let (low, high) = (ids[k] as i64, ids[k + 1] as i64);
            let error = (low - t as i64).max(t as i64 - high).max(0);
            assert!(
                error < 1_000,
                "event {k}: {t} outside [{low}, {high}] by {error} ns"
            );
        }
    }
}

/// Whether this machine has an invariant counter for the real-counter tests (which say they
/// are skipped where it has none).
fn real_counter() -> bool {
    let invariant = ada_shm::tsc::invariance().is_invariant();
    if !invariant {
        eprintln!("skipped: this machine's counter is not invariant");
    }
    invariant
}
