//! [`SiteCache`]: each `tracing` callsite's ADA callsite word and mark verdict, found by the
//! address of its `&'static Metadata` without a lock.
//!
//! An open-addressing table (linear probing) that only ever grows: callsites are `static`, so
//! an entry is never removed. Each entry is two atomics, the key (the metadata's address, its
//! bit 0 the mark verdict: a `Metadata` is aligned to at least 8 bytes, so bit 0 of its
//! address is free) and the word [`ada_agent::register_callsite`] returned. An entry is
//! claimed by a compare-and-swap of its key from 0, and its word stored after: a reader that
//! finds the key before the word reads 0 and takes the slow path, which registers the name
//! itself and uses that word (the same race [`ada_agent::Callsite`] accepts: the loser's
//! symbol-table entry names the same callsite and is simply never referenced again).
//!
//! [`CAPACITY`] entries, at most [`MAX_PROBES`] probed per lookup; a callsite that finds no
//! free entry within them (the table is nearly full: thousands of callsites) is kept in a
//! mutex-guarded map instead, and each lookup of it then takes the lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tracing::Metadata;

/// Entries in the lock-free table (a power of two). 8192 × 16 bytes = 128 KiB per layer.
pub const CAPACITY: usize = 8192;
const MASK: usize = CAPACITY - 1;
/// The most entries a lookup or insertion probes before it turns to the overflow map: bounds a
/// lookup's cost however full the table is.
const MAX_PROBES: usize = 64;
/// Bit 0 of a key: the callsite marks.
const MARK: usize = 1;

/// What the layer knows of one callsite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The callsite word for `ada_agent::enter_word` and friends.
    pub word: u64,
    /// Whether the layer's mark rules match it.
    pub mark: bool,
}

#[derive(Default)]
struct Entry {
    /// The metadata's address with the mark verdict in bit 0; 0 while free.
    key: AtomicUsize,
    /// The callsite word; 0 until stored.
    word: AtomicU64,
}

/// The per-layer callsite table (see the module docs).
pub struct SiteCache {
    entries: Box<[Entry]>,
    overflow: Mutex<HashMap<usize, Site>>,
}

impl std::fmt::Debug for SiteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCache").finish_non_exhaustive()
    }
}

impl SiteCache {
    /// An empty table.
    pub fn new() -> SiteCache {
        SiteCache {
            entries: (0..CAPACITY).map(|_| Entry::default()).collect(),
            overflow: Mutex::new(HashMap::new()),
        }
    }

    /// The callsite's entry, registering it (with `make`) when it has none yet.
    #[inline]
    pub fn get_or_insert(
        &self,
        meta: &'static Metadata<'static>,
        make: impl FnOnce() -> Site,
    ) -> Site {
        match self.get(meta) {
            Some(site) => site,
            None => self.insert(meta, make),
        }
    }

    /// The callsite's entry, if the table holds it (with its word stored).
    #[inline]
    pub fn get(&self, meta: &'static Metadata<'static>) -> Option<Site> {
        let key = address(meta);
        let mut i = slot(key);
        for _ in 0..MAX_PROBES {
            let entry = &self.entries[i];
            // Relaxed (both loads): an entry holds only these two numbers, nothing else is
            // published through them; a key seen before its word reads 0 and takes the slow
            // path (see the module docs).
            let k = entry.key.load(Ordering::Relaxed);
            if k == 0 {
                return None;
            }
            if k & !MARK == key {
                let word = entry.word.load(Ordering::Relaxed);
                return (word != 0).then_some(Site {
                    word,
                    mark: k & MARK != 0,
                });
            }
            i = (i + 1) & MASK;
        }
        self.overflow_get(key)
    }

    #[cold]
    #[inline(never)]
    fn overflow_get(&self, key: usize) -> Option<Site> {
        let map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key).copied()
    }

    /// Registers the callsite (`make`) and keeps its entry; a callsite another thread is
    /// inserting meanwhile gets that thread's entry if it is complete, else this one's.
    #[cold]
    #[inline(never)]
    fn insert(&self, meta: &'static Metadata<'static>, make: impl FnOnce() -> Site) -> Site {
        let site = make();
        let key = address(meta);
        let claimed = key | usize::from(site.mark);
        let mut i = slot(key);
        for _ in 0..MAX_PROBES {
            let entry = &self.entries[i];
            // Relaxed (CAS and store): see `get`; the CAS alone makes the entry ours.
            match entry
                .key
                .compare_exchange(0, claimed, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    entry.word.store(site.word, Ordering::Relaxed);
                    return site;
                }
                Err(k) if k & !MARK == key => {
                    // Relaxed: as in `get`.
                    let word = entry.word.load(Ordering::Relaxed);
                    return if word != 0 {
                        Site {
                            word,
                            mark: k & MARK != 0,
                        }
                    } else {
                        site
                    };
                }
                Err(_) => i = (i + 1) & MASK,
            }
        }
        let mut map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(key).or_insert(site)
    }
}

impl Default for SiteCache {
    fn default() -> Self {
        SiteCache::new()
    }
}

fn address(meta: &'static Metadata<'static>) -> usize {
    std::ptr::from_ref(meta) as usize
}

/// The first slot to probe for `key` (a Fibonacci hash of the address).
fn slot(key: usize) -> usize {
    ((key as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CAPACITY.trailing_zeros()))
        as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing::callsite::{Callsite, Identifier};
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    struct Cs;
    impl Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable!("never asked in these tests")
        }
    }
    static CS: Cs = Cs;

    fn leak_meta(name: &'static str) -> &'static Metadata<'static> {
        Box::leak(Box::new(Metadata::new(
            name,
            "t",
            Level::INFO,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&CS)),
            Kind::EVENT,
        )))
    }

    #[test]
    fn an_entry_is_made_once_and_found_again() {
        let cache = SiteCache::new();
        let a = leak_meta("a");
        let b = leak_meta("b");
        assert_eq!(cache.get(a), None);
        let made = cache.get_or_insert(a, || Site {
            word: 7,
            mark: true,
        });
        assert_eq!(
            made,
            Site {
                word: 7,
                mark: true
            }
        );
        // Found: `make` is not called again.
        let again = cache.get_or_insert(a, || panic!("registered twice"));
        assert_eq!(again, made);
        let other = cache.get_or_insert(b, || Site {
            word: 9,
            mark: false,
        });
        assert_eq!(
            other,
            Site {
                word: 9,
                mark: false
            }
        );
        assert_eq!(cache.get(a), Some(made));
    }

    #[test]
    fn more_callsites_than_the_table_holds_go_to_the_overflow_map() {
        let cache = SiteCache::new();
        let metas: Vec<_> = (0..CAPACITY + 10).map(|_| leak_meta("m")).collect();
        for (n, meta) in metas.iter().enumerate() {
            cache.get_or_insert(meta, || Site {
                word: n as u64 + 1,
                mark: n % 2 == 0,
            });
        }
        for (n, meta) in metas.iter().enumerate() {
            assert_eq!(
                cache.get(meta),
                Some(Site {
                    word: n as u64 + 1,
                    mark: n % 2 == 0
                })
            );
        }
        let overflow = cache.overflow.lock().unwrap().len();
        assert!(overflow >= 10, "{overflow} in the overflow map");
    }
}
