//! loom: the callsite table's claim-then-publish protocol (crate docs, "The callsite table"),
//! on a 4-entry table: two threads inserting one key, a lookup racing an insertion, and two
//! keys whose probe sequences start at the same entry. Every site a lookup returns is
//! complete (a nonzero word, and the word and verdict of the key looked up), and once the
//! inserters are joined every key is found with the site of the thread that claimed its
//! entry. Plus the overflow map (a 2-entry table, one probe): two threads inserting one key
//! there both use the first site made.
#![cfg(loom)]

use ada_shm::sync::{Arc, thread};
use ada_testkit::model::Witness;
use ada_tracing::table::{Site, Table};

/// Small enough for loom, and every probe sequence long enough to reach every entry.
type Small = Table<4, 4>;

/// The site thread `tid` makes for `key`: its word names both, so a word can be traced back to
/// the key and thread that made it. Keys at 16-byte steps mark when bit 4 is set.
fn site(key: usize, tid: u64) -> Site {
    Site {
        word: (key as u64) << 8 | tid,
        mark: key & 0x10 != 0,
    }
}

/// A site a lookup of `key` may return: one that some thread made for `key`.
fn assert_of_key(found: Site, key: usize) {
    assert_ne!(found.word, 0, "a site with a word of 0");
    assert_eq!(
        found.word >> 8,
        key as u64,
        "key {key:#x} got another key's word"
    );
    assert_eq!(
        found,
        site(key, found.word & 0xff),
        "word and verdict of one site"
    );
}

/// Two keys (bit 0 clear, nonzero) whose probe sequences start at the same entry.
fn colliding_keys() -> (usize, usize) {
    let first = 0x1000;
    let second = (1..)
        .map(|n| first + 16 * n)
        .find(|&k| Small::home(k) == Small::home(first))
        .expect("4 entries: some key shares the home entry");
    (first, second)
}

#[test]
fn two_threads_inserting_one_key_agree_on_the_claimed_site() {
    const KEY: usize = 0x1010;
    let (shared, own) = (Witness::new(), Witness::new());
    let (saw_shared, saw_own) = (shared.clone(), own.clone());
    ada_testkit::model::check(move || {
        let table = Arc::new(Small::new());
        let inserters: Vec<_> = [1, 2]
            .into_iter()
            .map(|tid| {
                let table = table.clone();
                thread::spawn(move || table.get_or_insert(KEY, || site(KEY, tid)))
            })
            .collect();
        let got: Vec<Site> = inserters.into_iter().map(|h| h.join().unwrap()).collect();
        for &g in &got {
            assert_of_key(g, KEY);
        }
        // Both inserters are joined: the claimer's word is visible, and it is the claimer's.
        let kept = table
            .get(KEY)
            .expect("the key is found once its inserters are joined");
        assert_of_key(kept, KEY);
        let claimer = (kept.word & 0xff) as usize - 1;
        assert_eq!(got[claimer], kept, "the claimer uses its own site");
        // The other thread used the claimer's site, or its own when it saw the claimed key
        // before the claimer's word (the accepted double registration).
        let other = got[1 - claimer];
        assert!(other == kept || other == site(KEY, 2 - claimer as u64));
        if other == kept {
            saw_shared.hit();
        } else {
            saw_own.hit();
        }
        assert_eq!(
            table.get(KEY),
            Some(kept),
            "a later lookup finds the same site"
        );
    });
    shared.expect_reached("the second inserter used the claimer's site");
    own.expect_reached("the second inserter saw the key before its word and used its own site");
}

#[test]
fn a_lookup_racing_an_insertion_finds_nothing_or_the_complete_site() {
    const KEY: usize = 0x2000;
    let (missed, found) = (Witness::new(), Witness::new());
    let (saw_missed, saw_found) = (missed.clone(), found.clone());
    ada_testkit::model::check(move || {
        let table = Arc::new(Small::new());
        let inserter = {
            let table = table.clone();
            thread::spawn(move || table.get_or_insert(KEY, || site(KEY, 1)))
        };
        // Spawned after the inserter, so loom's first schedule runs the lookup last and works
        // back from there (ada_testkit::model's docs).
        let reader = {
            let table = table.clone();
            thread::spawn(move || table.get(KEY))
        };
        assert_eq!(inserter.join().unwrap(), site(KEY, 1));
        match reader.join().unwrap() {
            None => saw_missed.hit(),
            Some(s) => {
                assert_eq!(
                    s,
                    site(KEY, 1),
                    "the lookup found an incomplete or foreign site"
                );
                saw_found.hit();
            }
        }
        assert_eq!(table.get(KEY), Some(site(KEY, 1)));
    });
    missed.expect_reached("the lookup ran before the insertion was seen");
    found.expect_reached("the lookup found the inserted site");
}

#[test]
fn two_keys_on_one_probe_sequence_each_find_their_own_site() {
    let (a, b) = colliding_keys();
    let crossed = Witness::new();
    let saw_crossed = crossed.clone();
    ada_testkit::model::check(move || {
        let table = Arc::new(Small::new());
        // Each thread inserts its key, then looks up the other's.
        let threads: Vec<_> = [(a, b, 1), (b, a, 2)]
            .into_iter()
            .map(|(mine, theirs, tid)| {
                let table = table.clone();
                thread::spawn(move || {
                    let got = table.get_or_insert(mine, || site(mine, tid));
                    (got, table.get(theirs))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        for (&(got, other), (mine, theirs, tid)) in results.iter().zip([(a, b, 1), (b, a, 2)]) {
            assert_eq!(
                got,
                site(mine, tid),
                "the only inserter of a key keeps its site"
            );
            if let Some(o) = other {
                assert_eq!(
                    o,
                    site(theirs, 3 - tid),
                    "a lookup found the wrong key's site"
                );
                saw_crossed.hit();
            }
        }
        assert_eq!(table.get(a), Some(site(a, 1)));
        assert_eq!(table.get(b), Some(site(b, 2)));
    });
    crossed.expect_reached("a thread found the other key's site");
}

#[test]
fn two_threads_inserting_one_overflowed_key_agree_on_the_first_site() {
    // Two entries, one probe: `b` shares `a`'s home entry, so with `a` in it `b` overflows.
    type Tiny = Table<2, 1>;
    let a = 0x3000;
    let b = (1..)
        .map(|n| a + 16 * n)
        .find(|&k| Tiny::home(k) == Tiny::home(a))
        .expect("2 entries: some key shares the home entry");
    let both_missed = Witness::new();
    let saw_both_missed = both_missed.clone();
    ada_testkit::model::check(move || {
        let table = Arc::new(Tiny::new());
        assert_eq!(table.get_or_insert(a, || site(a, 9)), site(a, 9));
        let inserters: Vec<_> = [1, 2]
            .into_iter()
            .map(|tid| {
                let table = table.clone();
                thread::spawn(move || {
                    let missed = table.get(b).is_none();
                    (table.get_or_insert(b, || site(b, tid)), missed)
                })
            })
            .collect();
        let got: Vec<(Site, bool)> = inserters.into_iter().map(|h| h.join().unwrap()).collect();
        // The overflow map keeps the first site made: both threads use it, even when both
        // missed it and made their own.
        assert_of_key(got[0].0, b);
        assert_eq!(
            got[0].0, got[1].0,
            "both threads use the overflow map's site"
        );
        if got[0].1 && got[1].1 {
            saw_both_missed.hit();
        }
        assert_eq!(table.get(b), Some(got[0].0));
        assert_eq!(table.overflowed(), 1);
        assert_eq!(table.get(a), Some(site(a, 9)));
    });
    both_missed.expect_reached("both threads missed the key and inserted it");
}
