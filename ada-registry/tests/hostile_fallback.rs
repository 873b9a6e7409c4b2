//! The fallback ring against a peer that scribbles its shared words (stamps, tail, head, record
//! fields): pushes and drains return promptly (their loops are bounded by the ring's capacity
//! and a fixed attempt count, never by shared values), nothing panics, and the consumer counts
//! what it skips or finds torn.
#![cfg(not(any(loom, shuttle)))]

use ada_registry::LaneKind;
use ada_registry::fallback::{
    ABANDON_PASSES, FallbackConsumer, FallbackDrained, FallbackRecord, FallbackRefused,
    HeapFallback,
};

fn rec(n: u64) -> FallbackRecord {
    FallbackRecord {
        pid: 1,
        tid: 2,
        lane: LaneKind::Index,
        payload: [n, !n, 0, 0],
    }
}

fn drain(c: &mut FallbackConsumer<'_>) -> (Vec<u64>, FallbackDrained) {
    let mut got = Vec::new();
    let d = c.drain(|r| got.push(r.payload[0]));
    (got, d)
}

/// A stamp no protocol step writes blocks the consumer for the abandon limit, then is skipped
/// and counted; the records behind it arrive.
#[test]
fn an_impossible_stamp_is_skipped_and_counted() {
    let mut ring = HeapFallback::new(4);
    ring.scribble(Some(0), 0xdead_beef_dead_beef);
    let (p, mut c) = ring.split();
    // Position 0's slot looks occupied (from an earlier lap) to the producers too: the push is
    // refused and counted, the ring is "full" at its head.
    assert_eq!(p.push(&rec(1)), Err(FallbackRefused::Full));
    assert_eq!(p.refused(), 1);
    let mut skipped = 0;
    for _ in 0..=ABANDON_PASSES {
        let (got, d) = drain(&mut c);
        assert!(got.is_empty());
        skipped += d.skipped;
    }
    assert_eq!(skipped, 1);
    // The slot was stamped free again: the ring works from position 0.
    for n in 0..4 {
        p.push(&rec(n)).unwrap();
    }
    assert_eq!(drain(&mut c).0, vec![0, 1, 2, 3]);
}

/// A committed record whose fields were rewritten is counted torn, never delivered.
#[test]
fn a_rewritten_record_is_counted_torn() {
    let mut ring = HeapFallback::new(4);
    let (p, _) = ring.split();
    for n in 0..3 {
        p.push(&rec(n)).unwrap();
    }
    ring.scribble_payload(1, 77);
    let (_, mut c) = ring.split();
    let (got, d) = drain(&mut c);
    assert_eq!((got, d.taken, d.torn), (vec![0, 2], 2, 1));
}

/// A tail far ahead of or behind the slots: every push returns promptly (a bounded number of
/// attempts) with its record stored or counted, the consumer neither loops nor panics, and a
/// tail set back (or wrapped) is walked past: the ring works again after the drain has
/// abandoned the positions nobody will commit.
#[test]
fn a_damaged_tail_is_survived() {
    for (tail, heals) in [(u64::MAX, true), (3, true), (1 << 40, false)] {
        let mut ring = HeapFallback::new(4);
        // Slot 3 is stamped for a later lap, as if the ring had gone round a few times.
        ring.scribble(Some(3), 2 * (3 + 4 * 5));
        ring.scribble(None, tail);
        let (p, mut c) = ring.split();
        let stored = (0..10).filter(|&n| p.push(&rec(n)).is_ok()).count() as u64;
        assert_eq!(stored + p.refused(), 10, "tail {tail}");
        let mut taken = 0;
        for _ in 0..5 * (ABANDON_PASSES + 1) {
            taken += drain(&mut c).1.taken;
        }
        assert_eq!(taken, stored, "tail {tail}");
        let ok = (100..104).filter(|&n| p.push(&rec(n)).is_ok()).count();
        assert_eq!(ok == 4, heals, "tail {tail}: {ok} of 4 stored");
        let (got, _) = drain(&mut c);
        if heals {
            assert_eq!(got, vec![100, 101, 102, 103], "tail {tail}");
        }
    }
}

/// A peer thread rewriting random words of the ring while four producers push and the consumer
/// drains: everything returns, nothing panics, and every delivered record checks out.
#[test]
fn concurrent_scribbling_never_panics_or_hangs() {
    let ring = HeapFallback::new(16);
    let ring_ref: &HeapFallback = &ring;
    let scribble = |i: u64| {
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match x % 3 {
            0 => ring_ref.scribble(Some((x >> 8) as usize % 16), x),
            1 => ring_ref.scribble_payload((x >> 8) as usize % 16, x),
            _ => ring_ref.scribble(None, x >> 40),
        }
    };
    let stop = ada_shm::sync::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u64;
            // Relaxed: a stop flag; nothing is published through it.
            while !stop.load(ada_shm::sync::Ordering::Relaxed) {
                scribble(i);
                i += 1;
                std::thread::yield_now();
            }
        });
        let p = ring_ref.view();
        let producers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(move || {
                    for n in 0..2000 {
                        let _ = p.push(&rec(n));
                    }
                })
            })
            .collect();
        // SAFETY: the only consumer of this ring (the test never splits it while this lives).
        let mut c = unsafe { p.consumer() };
        let mut drained = FallbackDrained::default();
        while producers.iter().any(|h| !h.is_finished()) {
            let d = c.drain(|r| {
                assert_eq!(r.payload[1], !r.payload[0], "a delivered record checks out");
            });
            drained.taken += d.taken;
            drained.torn += d.torn;
            drained.skipped += d.skipped;
        }
        // Relaxed: see above.
        stop.store(true, ada_shm::sync::Ordering::Relaxed);
        assert!(drained.taken + drained.torn + drained.skipped > 0 || p.refused() > 0);
    });
}
