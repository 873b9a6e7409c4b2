//! loom: the fallback ring's reservation and commit with two producers and the consumer racing
//! on a two-slot ring. Every committed record is delivered exactly once and whole; a full ring
//! refuses and counts; a slot abandoned by the consumer refuses its late producer's commit and
//! counts it; nothing is lost without being counted.
//!
//! The ring's ends are built on the model's main thread before any producer is spawned, and the
//! consumer runs on the main thread after the spawns (see `ada_testkit::model` on
//! tokio-rs/loom#392).
#![cfg(loom)]

use ada_registry::LaneKind;
use ada_registry::fallback::{FallbackRecord, FallbackRefused, HeapFallback};
use ada_shm::sync::{AtomicUsize, Ordering, thread, yield_now};
use ada_testkit::model::{self, Witness, leak};

/// Record `id` of producer `tid`: its words check each other, so a record mixed from two writes
/// does not pass [`check`].
fn rec(tid: u64, id: u64) -> FallbackRecord {
    FallbackRecord {
        pid: 4242,
        tid,
        lane: LaneKind::Index,
        payload: [id, !id, id.wrapping_mul(7919), tid],
    }
}

/// Checks a delivered record and returns its id.
fn check(r: &FallbackRecord) -> u64 {
    let id = r.payload[0];
    assert_eq!(r.payload[1], !id, "torn record {r:?}");
    assert_eq!(r.payload[2], id.wrapping_mul(7919), "torn record {r:?}");
    assert_eq!(r.payload[3], r.tid, "torn record {r:?}");
    assert_eq!(
        (r.pid, r.lane),
        (4242, LaneKind::Index),
        "torn record {r:?}"
    );
    id
}

#[derive(Default)]
struct Outcome {
    ok: Vec<u64>,
    refused: u64,
    abandoned: u64,
}

/// Two producers (ids 1, 2 and 11) against a two-slot ring and a consumer that drains while
/// they push; `abandon_after` is the consumer's abandon-pass limit.
fn model_run(abandon_after: u32, witness: [Witness; 3]) {
    let [refused_w, blocked_w, late_w] = witness;
    model::check(move || {
        let (ring, mut consumer) = leak(HeapFallback::new(2)).split();
        consumer.set_abandon_passes(abandon_after);
        let done = &*leak(AtomicUsize::new(0));
        let spawn = |tid: u64, ids: &'static [u64]| {
            thread::spawn(move || {
                let mut out = Outcome::default();
                for &id in ids {
                    match ring.push(&rec(tid, id)) {
                        Ok(()) => out.ok.push(id),
                        Err(FallbackRefused::Full | FallbackRefused::Contended) => out.refused += 1,
                        Err(FallbackRefused::Abandoned) => out.abandoned += 1,
                    }
                }
                // Release: the consumer that sees the count sees every commit made above.
                done.fetch_add(1, Ordering::Release);
                out
            })
        };
        let a = spawn(1, &[1, 2]);
        let b = spawn(2, &[11]);
        let mut got = Vec::new();
        let (mut torn, mut skipped) = (0, 0);
        loop {
            // Acquire: pairs with the producers' Release increments.
            let finished = done.load(Ordering::Acquire) == 2;
            let d = consumer.drain(|r| got.push(check(&r)));
            torn += d.torn;
            skipped += d.skipped;
            if d.blocked {
                blocked_w.hit();
            }
            if finished && d.taken == 0 && !d.blocked {
                break;
            }
            yield_now();
        }
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let mut ok: Vec<u64> = a.ok.iter().chain(&b.ok).copied().collect();
        ok.sort_unstable();
        // Per producer, in order.
        let mine = |tid_ids: &[u64]| {
            got.iter()
                .filter(|id| tid_ids.contains(id))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            mine(&[1, 2]),
            a.ok.iter()
                .copied()
                .filter(|id| got.contains(id))
                .collect::<Vec<_>>()
        );
        let mut delivered = got.clone();
        delivered.sort_unstable();
        delivered.dedup();
        assert_eq!(
            delivered.len(),
            got.len(),
            "a record delivered twice: {got:?}"
        );
        // Every committed record is delivered whole, or counted torn (a late writer's fields).
        assert_eq!(
            got.len() as u64 + torn,
            ok.len() as u64,
            "got {got:?}, ok {ok:?}"
        );
        assert!(
            got.iter().all(|id| ok.contains(id)),
            "got {got:?}, ok {ok:?}"
        );
        // Every refusal and every abandoned commit is counted where the drain reads it.
        assert_eq!(ring.refused(), a.refused + b.refused);
        assert_eq!(ring.late(), a.abandoned + b.abandoned);
        assert_eq!(
            skipped,
            ring.late(),
            "each abandoned slot is one late producer"
        );
        assert_eq!(ok.len() as u64 + ring.refused() + ring.late(), 3);
        if ring.refused() > 0 {
            refused_w.hit();
        }
        if ring.late() > 0 {
            late_w.hit();
        }
    });
}

#[test]
fn every_record_once_whole_or_counted() {
    let w = [Witness::new(), Witness::new(), Witness::new()];
    // A limit no schedule reaches with this few steps (the default is 8 passes).
    model_run(u32::MAX, w.clone());
    let [refused, blocked, late] = w;
    refused.expect_reached("a producer found the ring full");
    blocked.expect_reached("the consumer stopped at a reserved, uncommitted slot");
    assert_eq!(late.count(), 0, "nothing is abandoned without a limit");
}

#[test]
fn an_abandoned_slot_refuses_its_late_commit() {
    let w = [Witness::new(), Witness::new(), Witness::new()];
    model_run(1, w.clone());
    let [_, blocked, late] = w;
    blocked.expect_reached("the consumer stopped at a reserved, uncommitted slot");
    late.expect_reached("a producer's commit found its slot abandoned");
}
