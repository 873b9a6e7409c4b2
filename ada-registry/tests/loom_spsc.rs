//! loom: the SPSC queue delivers every value exactly once and in order, across wraparound of a
//! full queue, under every interleaving (bounded by LOOM_MAX_PREEMPTIONS).
//!
//! Both ends are built before the producer thread is spawned: an end reads its own position
//! word when it is built, and a spawned thread that reads a word before it writes it hides the
//! race from loom (see `ada_testkit::model`).
#![cfg(loom)]

use ada_registry::spsc::HeapQueue;
use ada_shm::sync::{thread, yield_now};
use ada_testkit::model::leak;

#[test]
fn push_pop_in_order_across_full_queue() {
    ada_testkit::model::check(|| {
        // Capacity 2 and 3 values: the producer must see "full" and the consumer's release.
        let (mut p, mut c) = leak(HeapQueue::starting_at(2, u32::MAX)).split();
        let producer = thread::spawn(move || {
            for v in 1..=3u32 {
                while p.push(v).is_err() {
                    yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            match c.pop().expect("positions stay consistent") {
                Some(v) => got.push(v),
                None => yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(c.pop(), Ok(None));
    });
}

#[test]
fn batch_push_and_pop_publish_whole_batches() {
    ada_testkit::model::check(|| {
        let (mut p, mut c) = leak(HeapQueue::new(4)).split();
        let producer = thread::spawn(move || {
            let mut sent = 0;
            let values = [10, 11, 12];
            while sent < values.len() {
                let n = p.push_slice(&values[sent..]);
                if n == 0 {
                    yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u32; 4];
        while got.len() < 3 {
            let n = c.pop_into(&mut buf).expect("consistent");
            if n == 0 {
                yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        producer.join().unwrap();
        assert_eq!(got, vec![10, 11, 12]);
    });
}
