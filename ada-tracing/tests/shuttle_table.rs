//! shuttle: four threads insert and look up 24 keys in an 8-entry table (at most 4 probes),
//! so most keys go to the overflow map, most of them inserted by several threads at once. Every site a lookup returns is complete (the word and
//! verdict some thread made for that key); all lookups of a key, on every thread, return one
//! site; and once the threads are joined every key is found with that site.
#![cfg(shuttle)]

use ada_shm::sync::{Arc, thread};
use ada_tracing::table::{Site, Table};
use std::collections::HashMap;

type Small = Table<8, 4>;

const THREADS: u64 = 4;
const KEYS: usize = 24;

/// The `n`th key: nonzero, bit 0 clear, 8-aligned like a `Metadata` address.
fn key(n: usize) -> usize {
    0x4000 + 24 * n
}

/// The site thread `tid` makes for `key` (see `loom_table.rs`).
fn site(key: usize, tid: u64) -> Site {
    Site {
        word: (key as u64) << 8 | tid,
        mark: key.is_multiple_of(3),
    }
}

fn assert_of_key(found: Site, key: usize) {
    assert_ne!(found.word, 0, "a site with a word of 0");
    assert_eq!(
        found.word >> 8,
        key as u64,
        "key {key:#x} got another key's word"
    );
    let tid = found.word & 0xff;
    assert!((1..=THREADS).contains(&tid), "a word no thread made");
    assert_eq!(found, site(key, tid), "word and verdict of one site");
}

#[test]
fn threads_inserting_and_looking_up_more_keys_than_the_table_holds() {
    ada_testkit::model::check(|| {
        let table = Arc::new(Small::new());
        let threads: Vec<_> = (1..=THREADS)
            .map(|tid| {
                let table = table.clone();
                thread::spawn(move || {
                    // The threads walk the keys in pairs, from two starts one key apart, so most
                    // keys are inserted by several threads at once: each inserts a key, then
                    // looks up that key, the next one (which others may be inserting) and the
                    // one it inserted two steps before.
                    let order: Vec<usize> =
                        (0..KEYS).map(|i| (i + tid as usize / 2) % KEYS).collect();
                    let mut found = Vec::new();
                    for (i, &n) in order.iter().enumerate() {
                        let got = table.get_or_insert(key(n), || site(key(n), tid));
                        assert_of_key(got, key(n));
                        for m in [n, order[(i + 1) % KEYS], order[i.saturating_sub(2)]] {
                            if let Some(s) = table.get(key(m)) {
                                assert_of_key(s, key(m));
                                found.push((m, s));
                            }
                        }
                    }
                    found
                })
            })
            .collect();
        let mut seen: HashMap<usize, Site> = HashMap::new();
        for t in threads {
            for (n, s) in t.join().unwrap() {
                let first = *seen.entry(n).or_insert(s);
                assert_eq!(first, s, "two lookups of key {n} found different sites");
            }
        }
        for n in 0..KEYS {
            let s = table.get(key(n)).expect("every key is found once joined");
            assert_of_key(s, key(n));
            if let Some(&earlier) = seen.get(&n) {
                assert_eq!(s, earlier, "key {n}'s site changed");
            }
        }
        assert!(
            table.overflowed() >= KEYS - 8,
            "{} keys in the overflow map",
            table.overflowed()
        );
    });
}
