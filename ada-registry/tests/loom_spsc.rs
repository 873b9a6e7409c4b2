//! loom: the SPSC queue delivers every value exactly once and in order, across wraparound of a
//! full queue, under every interleaving (bounded by LOOM_MAX_PREEMPTIONS).
//!
//! Both ends are built before the producer thread is spawned: an end reads its own position
//! word when it is built, and a spawned thread that reads a word before it writes it hides the
//! race from loom (see `ada_testkit::model`).
#![cfg(loom)]

use ada_registry::spsc::HeapQueue;
use ada_shm::sync::{thread, yield_now};
use ada_testkit::model::{Witness, leak};

#[test]
fn push_pop_in_order_across_full_queue() {
    let (full, overtaken) = (Witness::new(), Witness::new());
    let (saw_full, saw_overtaken) = (full.clone(), overtaken.clone());
    ada_testkit::model::check(move || {
        // Capacity 2 and 3 values: the producer must see "full" and the consumer's release.
        let (mut p, mut c) = leak(HeapQueue::starting_at(2, u32::MAX)).split();
        let saw_full = saw_full.clone();
        let producer = thread::spawn(move || {
            for v in 1..=3u32 {
                while p.push(v).is_err() {
                    saw_full.hit();
                    yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            match c.pop().expect("positions stay consistent") {
                Some(v) => got.push(v),
                None => {
                    if !got.is_empty() {
                        // Caught up with the producer mid-stream.
                        saw_overtaken.hit();
                    }
                    yield_now();
                }
            }
        }
        producer.join().unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(c.pop(), Ok(None));
    });
    full.expect_reached("the producer found the queue full");
    overtaken.expect_reached("the consumer caught up with the producer mid-stream");
}

#[test]
fn batch_push_and_pop_publish_whole_batches() {
    let early = Witness::new();
    let saw_early = early.clone();
    ada_testkit::model::check(move || {
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
                // Looked before the batch was published.
                saw_early.hit();
                yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        producer.join().unwrap();
        assert_eq!(got, vec![10, 11, 12]);
    });
    early.expect_reached("the consumer looked before the batch was published");
}
