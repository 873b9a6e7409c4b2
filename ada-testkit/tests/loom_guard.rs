//! loom: the test kit's own guards. `model::check` fails a model in which loom explored a
//! single execution (one that spawns nothing, and one that hits tokio-rs/loom#392: a spawned
//! thread that loads a word before it stores it hides the race with an earlier load), passes
//! the same race written so loom sees it, and a `Witness` fails when no execution reached its
//! situation.
#![cfg(loom)]

use ada_shm::sync::{Arc, AtomicU32, Ordering, thread};
use ada_testkit::model::{self, Witness, leak};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The panic message of `f`, or `None` if it returned.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let err = catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        err.downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    )
}

#[test]
fn a_model_without_threads_is_refused() {
    let msg = panic_message(|| {
        model::check(|| {
            let word = AtomicU32::new(0);
            // Relaxed: one thread.
            word.store(1, Ordering::Relaxed);
        })
    });
    let msg = msg.expect("a single-threaded model must fail the guard");
    assert!(msg.contains("vacuous loom model"), "{msg}");
}

/// The thread reads its own word first (as a queue end does when it is built), then
/// publishes; the main thread's earlier read of the word is never reordered after the store.
#[test]
fn a_thread_reading_its_word_before_storing_it_is_caught() {
    let msg = panic_message(|| {
        model::check(|| {
            let word = Arc::new(AtomicU32::new(0));
            let mine = word.clone();
            let t = thread::spawn(move || {
                // Relaxed (both): the race itself is what the model is about.
                let own = mine.load(Ordering::Relaxed);
                mine.store(own + 1, Ordering::Relaxed);
            });
            // Relaxed: as above.
            let _ = word.load(Ordering::Relaxed);
            t.join().unwrap();
        })
    });
    let msg = msg.expect("loom#392 leaves one execution, which the guard must refuse");
    assert!(msg.contains("tokio-rs/loom#392"), "{msg}");
}

/// The same race with the thread's read made before it is spawned: loom tries both orders.
#[test]
fn the_same_race_with_the_read_hoisted_is_explored() {
    let (before, after) = (Witness::new(), Witness::new());
    let (saw_before, saw_after) = (before.clone(), after.clone());
    model::check(move || {
        let word: &'static AtomicU32 = leak(AtomicU32::new(0));
        // Relaxed (all): the race itself is what the model is about.
        let own = word.load(Ordering::Relaxed);
        let t = thread::spawn(move || word.store(own + 1, Ordering::Relaxed));
        match word.load(Ordering::Relaxed) {
            0 => saw_before.hit(),
            _ => saw_after.hit(),
        }
        t.join().unwrap();
    });
    before.expect_reached("the main thread read before the store");
    after.expect_reached("the main thread read after the store");
}

#[test]
fn a_witness_never_reached_fails() {
    let never = Witness::new();
    let witness = never.clone();
    model::check(move || {
        let word = Arc::new(AtomicU32::new(0));
        let other = word.clone();
        // Relaxed (both): a plain race.
        let t = thread::spawn(move || other.store(1, Ordering::Relaxed));
        if word.load(Ordering::Relaxed) > 1 {
            witness.hit();
        }
        t.join().unwrap();
    });
    assert_eq!(never.count(), 0);
    let msg = panic_message(|| never.expect_reached("the word exceeded one"));
    let msg = msg.expect("an unreached witness must fail");
    assert!(msg.contains("the word exceeded one"), "{msg}");
}
