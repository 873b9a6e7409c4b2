//! loom: two threads race to fill a callsite's cached word (its function id and trigger
//! verdict) on its first use, each with the id its own symbol registration got. Both end up
//! with the same word (one winner), and the cell holds exactly that word afterwards, with the
//! verdict intact.
#![cfg(loom)]

use ada_registry::callsite::{pack, publish, unpack_id, unpack_trigger};
use ada_shm::sync::{Arc, AtomicU64, Ordering, thread};
use ada_testkit::model::Witness;

#[test]
fn first_registration_race_agrees_on_id_and_verdict() {
    let (filled, both) = (Witness::new(), Witness::new());
    let (saw_filled, both_published) = (filled.clone(), both.clone());
    ada_testkit::model::check(move || {
        let cell = Arc::new(AtomicU64::new(0));
        let racers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|id| {
                let cell = cell.clone();
                thread::spawn(move || {
                    // The hot path's read: a filled cell is used as is.
                    let seen = cell.load(Ordering::Relaxed);
                    if seen != 0 {
                        return (seen, false);
                    }
                    // Both compute the same verdict from the same name (trigger 7).
                    (publish(&cell, pack(id, Some(7))), true)
                })
            })
            .collect();
        let (words, published): (Vec<u64>, Vec<bool>) =
            racers.into_iter().map(|h| h.join().unwrap()).unzip();
        if published.iter().all(|&p| p) {
            both_published.hit();
        } else {
            saw_filled.hit();
        }
        assert_eq!(words[0], words[1], "both threads use one word");
        assert_eq!(cell.load(Ordering::Relaxed), words[0]);
        assert!([1, 2].contains(&unpack_id(words[0])));
        assert_eq!(unpack_trigger(words[0]), Some(7));
    });
    filled.expect_reached("a racer found the cell already filled");
    both.expect_reached("both racers found the cell empty and published");
}
