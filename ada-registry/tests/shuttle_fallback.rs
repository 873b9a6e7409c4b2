//! shuttle: five producers push 24 records each into an eight-slot fallback ring while the
//! consumer drains it concurrently. Every record a producer saw committed is delivered exactly
//! once, whole and in its producer's order (or counted torn); every other record is counted as
//! refused (ring full) or late (its slot abandoned); nothing is lost uncounted.
#![cfg(shuttle)]

use ada_registry::LaneKind;
use ada_registry::fallback::{ABANDON_PASSES, FallbackRecord, FallbackRefused, HeapFallback};
use ada_shm::sync::{AtomicUsize, Ordering, thread, yield_now};
use ada_testkit::model::{self, leak};

const PRODUCERS: u32 = 5;
const RECORDS: u64 = 24;

fn rec(tid: u64, seq: u64) -> FallbackRecord {
    let id = tid << 32 | seq;
    FallbackRecord {
        pid: 99,
        tid,
        lane: if seq.is_multiple_of(2) {
            LaneKind::Index
        } else {
            LaneKind::Detail
        },
        payload: [id, !id, id.rotate_left(17), tid],
    }
}

fn check(r: &FallbackRecord) -> u64 {
    let id = r.payload[0];
    assert_eq!(r.payload[1], !id, "torn record {r:?}");
    assert_eq!(r.payload[2], id.rotate_left(17), "torn record {r:?}");
    assert_eq!((r.payload[3], id >> 32), (r.tid, r.tid));
    let lane = if id.is_multiple_of(2) {
        LaneKind::Index
    } else {
        LaneKind::Detail
    };
    assert_eq!((r.pid, r.lane), (99, lane), "torn record {r:?}");
    id
}

/// With the default abandon limit (a producer preempted mid-write is rarely abandoned).
#[test]
fn many_producers_exactly_once_or_counted() {
    run(ABANDON_PASSES);
}

/// With an abandon limit of one pass, so that producers preempted mid-write are abandoned often
/// and their late commits (and the records they may tear) must be counted.
#[test]
fn many_producers_with_eager_abandoning() {
    run(1);
}

fn run(abandon_after: u32) {
    model::check(move || {
        let (ring, mut consumer) = leak(HeapFallback::new(8)).split();
        consumer.set_abandon_passes(abandon_after);
        let done = &*leak(AtomicUsize::new(0));
        let producers: Vec<_> = (1..=PRODUCERS)
            .map(|tid| {
                let tid = u64::from(tid);
                thread::spawn(move || {
                    let (mut ok, mut refused, mut late) = (Vec::new(), 0u64, 0u64);
                    for seq in 0..RECORDS {
                        match ring.push(&rec(tid, seq)) {
                            Ok(()) => ok.push(tid << 32 | seq),
                            Err(FallbackRefused::Abandoned) => late += 1,
                            Err(_) => refused += 1,
                        }
                        if seq % 4 == 0 {
                            yield_now();
                        }
                    }
                    // Release: the consumer that sees the count sees every commit above.
                    done.fetch_add(1, Ordering::Release);
                    (ok, refused, late)
                })
            })
            .collect();
        let (mut got, mut torn, mut skipped) = (Vec::new(), 0u64, 0u64);
        loop {
            // Acquire: pairs with the producers' Release increments.
            let finished = done.load(Ordering::Acquire) == PRODUCERS as usize;
            let d = consumer.drain(|r| got.push(check(&r)));
            torn += d.torn;
            skipped += d.skipped;
            if finished && d.taken == 0 && !d.blocked {
                break;
            }
            yield_now();
        }
        let (mut ok, mut refused, mut late) = (Vec::new(), 0, 0);
        for p in producers {
            let (o, r, l) = p.join().unwrap();
            ok.extend(o);
            refused += r;
            late += l;
        }
        // Each producer's records arrive in the order it pushed them.
        for tid in 1..=u64::from(PRODUCERS) {
            let mine: Vec<u64> = got.iter().copied().filter(|id| id >> 32 == tid).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "out of order: {mine:?}"
            );
        }
        let mut unique = got.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "a record was delivered twice");
        assert!(
            got.iter().all(|id| ok.contains(id)),
            "a record nobody committed"
        );
        assert_eq!(got.len() as u64 + torn, ok.len() as u64);
        assert_eq!(
            (ring.refused(), ring.late(), skipped),
            (refused, late, late)
        );
        assert_eq!(
            ok.len() as u64 + refused + late,
            u64::from(PRODUCERS) * RECORDS
        );
    });
}
