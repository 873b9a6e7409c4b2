//! The writer's backpressure on heap rings, driven by a fake clock (the event timestamps are
//! the state machine's clock): the lane's states and their entries as published in the lane,
//! loss markers by cause with exact counts and time spans, markers that a recycle overwrites
//! before the drain read them, and too-large detail records.

mod common;

use ada_backpressure::{BackpressureConfig, DropPolicy, LaneState};
use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DetailRecord, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, LossCause, LossMarker,
    Written, index_records,
};
use ada_shm::clock::Clock;
use ada_testkit::FakeClock;
use common::{drain_detail, drain_index};

const STABILITY_NS: u64 = 1_000;

type TestWriter = LaneWriter<'static, &'static HeapStore, DropPolicy>;
type TestDrain = LaneDrain<'static, &'static HeapStore>;

/// A lane of `rings` rings of `ring_bytes` bytes (leaked: it lives for the test), its one
/// writer under `policy`, its one drain, and a shared view of its control words.
fn lane(
    rings: u32,
    ring_bytes: u32,
    kind: LaneKind,
    policy: DropPolicy,
) -> (TestWriter, TestDrain, &'static Lane) {
    let lane: &'static mut Lane = Box::leak(Box::default());
    let store: &'static HeapStore = Box::leak(Box::new(HeapStore::new(lane, rings, ring_bytes)));
    let (thread, drain) = lane.split(rings, kind, 0);
    let shared = thread.lane();
    (
        LaneWriter::new(thread, store, policy),
        LaneDrain::new(drain, store),
        shared,
    )
}

fn rec(ts: u64, seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: ts,
        function_id: seq,
        thread_id: 1,
        kind: EventKind::Call as u32,
        call_depth: 0,
        reserved: 0,
    }
}

fn state_of(lane: &Lane) -> LaneState {
    LaneState::from_u8(lane.state_word().state).unwrap()
}

/// Four rings of four index records, drop-newest, no drain until the pool runs dry: NORMAL →
/// PRESSURE → DROPPING; the drain catches up: RECOVERY at the next look, NORMAL exactly when
/// the stability period has passed (fake time), never before.
#[test]
fn a_stalled_drain_walks_the_lane_through_every_state() {
    let (mut w, mut d, shared) = lane(4, 256, LaneKind::Index, DropPolicy::DropNewest);
    w.set_backpressure(BackpressureConfig {
        stability_ns: STABILITY_NS,
        ..BackpressureConfig::for_pool(4)
    });
    let clock = FakeClock::new(1);
    let mut seq = 0u64;
    let mut write = |w: &mut LaneWriter<'_, &HeapStore, DropPolicy>| {
        let out = w.write_index(&rec(clock.now_ns(), seq));
        seq += 1;
        clock.advance(1);
        out
    };
    // Rings 0..3 fill (16 events); the swaps leave 2, 1, 0 spare rings. The lane is looked at
    // a quarter ring after each swap (here: the next record), so the second swap (event 8)
    // shows at event 9.
    for i in 0..16 {
        write(&mut w);
        let expected = if i < 9 {
            LaneState::Normal
        } else {
            LaneState::Pressure
        };
        assert_eq!(w.state(), expected, "after event {i}");
    }
    assert_eq!(state_of(shared), LaneState::Pressure, "published");
    // Exhausted: every further event is refused.
    for _ in 0..5 {
        assert_eq!(write(&mut w), Written::DroppedNewest);
    }
    assert_eq!(w.state(), LaneState::Dropping);
    assert_eq!(state_of(shared), LaneState::Dropping);
    let c = w.counters();
    assert_eq!((c.events_written, c.refused, c.events_dropped), (21, 5, 5));
    // The drain catches up: the three submitted rings come back.
    let (seqs, markers) = drain_index(&mut d, false);
    assert_eq!(seqs, (0..12).collect::<Vec<_>>());
    assert!(markers.is_empty(), "the marker waits for a ring");
    // Next write: all three spares are free before it swaps → RECOVERY.
    let recovered_at = clock.now_ns();
    assert_eq!(write(&mut w), Written::Swapped);
    assert_eq!(w.state(), LaneState::Recovery);
    // While the stability period runs the lane stays RECOVERY, whatever the drain does.
    let (mut rest, mut markers) = (Vec::new(), Vec::new());
    while clock.now_ns() < recovered_at + STABILITY_NS {
        write(&mut w);
        assert_eq!(w.state(), LaneState::Recovery, "at {}", clock.now_ns());
        if clock.now_ns().is_multiple_of(3) {
            let (s, m) = drain_index(&mut d, false);
            rest.extend(s);
            markers.extend(m);
        }
    }
    // The first check once it has passed (at most a quarter ring later: here every record).
    write(&mut w);
    assert_eq!(w.state(), LaneState::Normal);
    let word = shared.state_word();
    assert_eq!(LaneState::from_u8(word.state), Some(LaneState::Normal));
    // Entered: PRESSURE once, DROPPING once, RECOVERY once, NORMAL once.
    assert_eq!(word.entries, [1, 1, 1, 1]);
    // The hole is marked where the writer resumed: the 5 refused events, by their times.
    let (s, m) = drain_index(&mut d, true);
    rest.extend(s);
    markers.extend(m);
    assert_eq!(
        markers,
        vec![LossMarker {
            cause: LossCause::Refused,
            count: 5,
            first_ns: 17,
            last_ns: 21,
        }]
    );
    // Drop-newest keeps the oldest: the full ring (12..16) survives, 16..21 are the hole, and
    // everything after it arrived.
    let mut expected: Vec<u64> = (12..16).collect();
    expected.extend(21..seq);
    assert_eq!(rest, expected);
    let c = w.counters();
    assert_eq!(12 + rest.len() as u64 + c.events_dropped, c.events_written);
}

/// Drop-oldest on a two-ring lane: the newest survive, one marker per hole carries the span of
/// what was overwritten, and a marker the drain had not read when its ring was recycled again
/// is merged into the next one (never lost, never double counted).
#[test]
fn drop_oldest_marks_overwritten_spans_and_merges_unread_markers() {
    let (mut w, mut d, _) = lane(2, 256, LaneKind::Index, DropPolicy::DropOldest);
    // 8 fit (ring 0 submitted, ring 1 active); then ring 1 is recycled: events 4..8 lost.
    for s in 0..9 {
        w.write_index(&rec(100 + s, s));
    }
    assert_eq!(w.state(), LaneState::Dropping);
    // The drain reads the active ring now: the marker and event 8 are taken.
    let (seqs, markers) = drain_index(&mut d, true);
    assert_eq!(seqs, vec![0, 1, 2, 3, 8]);
    assert_eq!(
        markers,
        vec![LossMarker {
            cause: LossCause::Overwritten,
            count: 4,
            first_ns: 104,
            last_ns: 107,
        }]
    );
    // 9..12 fill ring 0 (it came back); the next recycles ring 1 past what the drain read.
    for s in 9..20 {
        w.write_index(&rec(100 + s, s));
    }
    let (seqs, markers) = drain_index(&mut d, true);
    let lost: u64 = markers.iter().map(|m| m.count).sum();
    let c = w.counters();
    assert_eq!(
        c.overwritten,
        4 + lost,
        "every overwrite is marked exactly once"
    );
    assert_eq!(seqs.last(), Some(&19), "the newest survive");
    assert_eq!(5 + seqs.len() as u64 + c.events_dropped, c.events_written);
}

/// A detail lane: drop-newest refuses whole records; a record over the limits is refused as
/// too large and marked right away in the ring; the markers parse as detail records.
#[test]
fn detail_lane_marks_refused_and_too_large_records() {
    let (mut w, mut d, _) = lane(2, 512, LaneKind::Detail, DropPolicy::DropNewest);
    let msg = [b'x'; 40];
    let detail = |ts: u64, message: &'static [u8]| DetailRecord {
        kind: EventKind::Message,
        marked: false,
        timestamp_ns: ts,
        function_id: ts,
        thread_id: 1,
        call_depth: 0,
        registers: &[],
        stack: &[],
        message,
    };
    let msg: &'static [u8] = Box::leak(Box::new(msg));
    let huge: &'static [u8] = Box::leak(vec![b'y'; 2000].into_boxed_slice());
    assert!(w.write_detail(&detail(1, huge)).is_err());
    let mut outcomes = Vec::new();
    for ts in 2..20 {
        outcomes.push(w.write_detail(&detail(ts, msg)).unwrap());
    }
    let c = w.counters();
    assert_eq!(c.too_large, 1);
    assert!(c.refused > 0 && outcomes.contains(&Written::DroppedNewest));
    assert_eq!(c.events_written, 19);
    // A ring comes back; the next record places the refused marker first.
    let (mut kinds, mut markers) = drain_detail(&mut d, false);
    w.write_detail(&detail(20, msg)).unwrap();
    let (more, more_markers) = drain_detail(&mut d, true);
    kinds.extend(more);
    markers.extend(more_markers);
    assert_eq!(
        markers
            .iter()
            .map(|m| (m.cause, m.count))
            .collect::<Vec<_>>(),
        vec![(LossCause::TooLarge, 1), (LossCause::Refused, c.refused)]
    );
    assert_eq!(markers[0].first_ns, 1);
    let c = w.counters();
    assert_eq!(
        kinds.len() as u64 + c.events_dropped,
        c.events_written,
        "every record persisted or counted"
    );
}

/// `settle` places a pending marker before the thread lets go of the lane when a ring is free.
#[test]
fn settle_places_the_pending_marker() {
    let (mut w, mut d, _) = lane(2, 256, LaneKind::Index, DropPolicy::DropNewest);
    for s in 0..10 {
        w.write_index(&rec(s + 1, s));
    }
    assert_eq!(w.counters().refused, 2);
    let (seqs, markers) = drain_index(&mut d, false);
    assert_eq!((seqs.len(), markers.len()), (4, 0));
    w.settle();
    let (seqs, markers) = drain_index(&mut d, true);
    assert_eq!(seqs, vec![4, 5, 6, 7]);
    assert_eq!(markers.iter().map(|m| m.count).sum::<u64>(), 2);
}

/// A two-ring pool (the default detail geometry) with a drain that returns each ring soon after
/// the swap never looks pressed: the lane is looked at a quarter ring after a swap, not at the
/// swap, when the thread has just taken the only spare.
#[test]
fn a_healthy_two_ring_lane_stays_normal() {
    let (mut w, mut d, shared) = lane(2, 128 + 8 * 32, LaneKind::Index, DropPolicy::DropNewest);
    for s in 0..800u64 {
        assert_ne!(w.write_index(&rec(s + 1, s)), Written::DroppedNewest);
        // The drain returns a submitted ring within a record or so.
        if s % 8 == 0 {
            drain_index(&mut d, false);
        }
    }
    assert_eq!(w.state(), LaneState::Normal);
    assert_eq!(shared.state_word().entries, [0; 4], "never left NORMAL");
    assert!(w.counters().ring_swaps >= 99);
}

/// Drop-newest refuses until a ring comes back, even a smaller detail record that would still
/// fit: what survives is the oldest records, with no holes.
#[test]
fn drop_newest_refuses_everything_until_a_ring_returns() {
    let (mut w, mut d, _) = lane(2, 512, LaneKind::Detail, DropPolicy::DropNewest);
    let body: &'static [u8] = Box::leak(vec![b'm'; 400].into_boxed_slice());
    // Encoded sizes: 40 bytes of header and sizes, then the message, padded to 8; a ring holds
    // 384 bytes.
    let write = |w: &mut LaneWriter<'_, &HeapStore, DropPolicy>, ts: u64, len: usize| {
        w.write_detail(&DetailRecord {
            kind: EventKind::Message,
            marked: false,
            timestamp_ns: ts,
            function_id: ts,
            thread_id: 1,
            call_depth: 0,
            registers: &[],
            stack: &[],
            message: &body[..len],
        })
        .unwrap()
    };
    let outcomes: Vec<Written> = [(1, 296), (2, 208), (3, 248), (4, 8), (5, 248), (6, 8)]
        .into_iter()
        .map(|(ts, len)| write(&mut w, ts, len))
        .collect();
    assert_eq!(
        outcomes,
        [
            Written::Stored,
            Written::Swapped,
            Written::DroppedNewest,
            Written::DroppedNewest,
            Written::DroppedNewest,
            Written::DroppedNewest,
        ],
        "the small records after the first refusal are refused too"
    );
    // A ring comes back: the next record goes through, after the marker of the hole.
    let (mut seen, mut markers) = drain_detail(&mut d, false);
    assert_eq!(write(&mut w, 7, 8), Written::Swapped);
    let (more, more_markers) = drain_detail(&mut d, true);
    seen.extend(more);
    markers.extend(more_markers);
    assert_eq!(seen, vec![1, 2, 7]);
    assert_eq!(
        markers,
        vec![LossMarker {
            cause: LossCause::Refused,
            count: 4,
            first_ns: 3,
            last_ns: 6,
        }]
    );
}

/// With no free ring, an active ring the drain has already copied to its end is reused at no
/// loss (under either policy) instead of refusing or overwriting.
#[test]
fn an_active_ring_the_drain_copied_whole_is_reused_without_loss() {
    for policy in [DropPolicy::DropNewest, DropPolicy::DropOldest] {
        let (mut w, mut d, _) = lane(2, 256, LaneKind::Index, policy);
        for s in 0..8 {
            w.write_index(&rec(s + 1, s));
        }
        // The drain copies the full active ring live (ring 0 stays in the submit queue, the
        // free queue is empty).
        let mut live = Vec::new();
        d.drain_active(|c| live.extend(index_records(c.bytes).map(|r| r.unwrap().function_id)));
        assert_eq!(live, vec![4, 5, 6, 7], "{policy:?}");
        assert_eq!(w.write_index(&rec(9, 8)), Written::Swapped, "{policy:?}");
        assert_eq!(w.counters().events_dropped, 0, "{policy:?}");
        let (seqs, markers) = drain_index(&mut d, true);
        assert_eq!(seqs, vec![0, 1, 2, 3, 8], "{policy:?}");
        assert!(markers.is_empty(), "{policy:?}");
    }
}

/// A long refusal (most refused events take the short path that only looks at the free queue,
/// see `REFUSALS_BETWEEN_LOOKS`) is counted exactly, published exactly at a flush, and marked
/// by one marker spanning the first and the last refused event; a ring the drain returns is
/// taken at the very next event.
#[test]
fn a_long_refusal_is_counted_exactly_and_ends_at_the_next_returned_ring() {
    let (mut w, mut d, shared) = lane(2, 256, LaneKind::Index, DropPolicy::DropNewest);
    // Two rings of four records: 0..8 stored (ring 0 submitted), then every event refused.
    for s in 0..8u64 {
        assert_ne!(w.write_index(&rec(s + 1, s)), Written::DroppedNewest);
    }
    let refused = 10 * u64::from(ada_ringpool::writer::REFUSALS_BETWEEN_LOOKS) + 7;
    for s in 8..8 + refused {
        assert_eq!(
            w.write_index(&rec(s + 1, s)),
            Written::DroppedNewest,
            "event {s}"
        );
    }
    let c = w.counters();
    assert_eq!(
        (c.events_written, c.refused, c.events_dropped),
        (8 + refused, refused, refused)
    );
    w.flush_counters();
    let published = shared.counters();
    assert_eq!(
        (
            published.events_written,
            published.refused,
            published.events_dropped
        ),
        (8 + refused, refused, refused),
        "published exactly at the flush"
    );
    // The drain returns ring 0: the next event takes it.
    let (seqs, markers) = drain_index(&mut d, false);
    assert_eq!((seqs, markers.len()), ((0..4).collect::<Vec<_>>(), 0));
    let next = 8 + refused;
    assert_eq!(w.write_index(&rec(next + 1, next)), Written::Swapped);
    let (seqs, markers) = drain_index(&mut d, true);
    assert_eq!(seqs, vec![4, 5, 6, 7, next]);
    assert_eq!(markers.len(), 1, "{markers:?}");
    let m = markers[0];
    assert_eq!((m.cause, m.count), (LossCause::Refused, refused));
    // Stamps 9 ..= 8 + refused: the first and the last refused event's.
    assert_eq!((m.first_ns, m.last_ns), (9, 8 + refused));
}

/// Of a long refusal, only the first event and every `REFUSALS_BETWEEN_LOOKS + 1`-th after it
/// take the full look (`refused_quietly` says which: a caller leaves its own checks to those),
/// and every refusal, quiet or not, is published to the lane at once (a process killed between
/// two refusals leaves none uncounted).
#[test]
fn a_refusal_says_whether_it_looked_and_publishes_its_counts_at_once() {
    let (mut w, _d, shared) = lane(2, 256, LaneKind::Index, DropPolicy::DropNewest);
    for s in 0..8u64 {
        assert_ne!(w.write_index(&rec(s + 1, s)), Written::DroppedNewest);
    }
    let period = u64::from(ada_ringpool::writer::REFUSALS_BETWEEN_LOOKS) + 1;
    let mut looked = Vec::new();
    for s in 8..8 + 3 * period {
        assert_eq!(w.write_index(&rec(s + 1, s)), Written::DroppedNewest);
        looked.push(!w.refused_quietly());
        let published = shared.counters();
        assert_eq!(
            (
                published.events_written,
                published.events_dropped,
                published.refused
            ),
            (s + 1, s - 7, s - 7),
            "published with refusal {s}"
        );
    }
    let expected: Vec<bool> = (0..3 * period).map(|i| i % period == 0).collect();
    assert_eq!(looked, expected);
}

/// `write_index_lazily` reads the clock for every event that is stored or takes the full look,
/// and not for a quiet refusal; the stretch's marker still counts every refused event exactly
/// and spans them all: from the first refused event's stamp (a full look) to the stamp of the
/// event that takes the returned ring. `settle_at` ends a stretch still open at the thread's
/// exit at the time it is given.
#[test]
fn a_lazily_stamped_refusal_reads_no_clock_and_its_marker_spans_the_stretch() {
    use std::cell::Cell;
    let record = |seq: u64| IndexRecord {
        timestamp_ns: 0,
        ..rec(0, seq)
    };
    for settle in [false, true] {
        let (mut w, mut d, _) = lane(2, 256, LaneKind::Index, DropPolicy::DropNewest);
        // The clock: event `seq` happens at time `seq + 1`; `reads` counts the reads.
        let reads = Cell::new(0u64);
        let write = |w: &mut TestWriter, seq: u64| {
            w.write_index_lazily(
                || {
                    reads.set(reads.get() + 1);
                    seq + 1
                },
                record(seq),
            )
        };
        for s in 0..8u64 {
            assert_ne!(write(&mut w, s), Written::DroppedNewest);
        }
        assert_eq!(reads.get(), 8, "every stored event is stamped");
        let period = u64::from(ada_ringpool::writer::REFUSALS_BETWEEN_LOOKS) + 1;
        let refused = 10 * period + 5;
        for s in 8..8 + refused {
            assert_eq!(write(&mut w, s), Written::DroppedNewest, "event {s}");
        }
        let looks = refused.div_ceil(period);
        assert_eq!(
            reads.get(),
            8 + looks,
            "only the full looks read the clock ({looks} of {refused} refusals)"
        );
        let c = w.counters();
        assert_eq!((c.refused, c.events_written), (refused, 8 + refused));
        let (seqs, _) = drain_index(&mut d, false);
        assert_eq!(seqs, (0..4).collect::<Vec<_>>());
        let next = 8 + refused;
        let end = if settle {
            // The thread exits mid-stretch; the ring the drain returned takes the marker.
            w.settle_at(next + 100);
            next + 100
        } else {
            assert_eq!(write(&mut w, next), Written::Swapped);
            next + 1
        };
        let (seqs, markers) = drain_index(&mut d, true);
        let mut kept = vec![4, 5, 6, 7];
        if !settle {
            kept.push(next);
        }
        assert_eq!(seqs, kept, "settle: {settle}");
        assert_eq!(markers.len(), 1, "{markers:?}");
        let m = markers[0];
        assert_eq!((m.cause, m.count), (LossCause::Refused, refused));
        // Refused events happened at 9 ..= 8 + refused: the span holds them all.
        assert_eq!((m.first_ns, m.last_ns), (9, end), "settle: {settle}");
    }
}
