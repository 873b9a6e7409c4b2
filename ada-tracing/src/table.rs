//! [`Table`]: the lock-free core of the layer's callsite cache, keyed by a plain `usize` (the
//! layer's key is a `&'static Metadata`'s address; see `cache.rs`), its size in const
//! parameters so the model-checked suites (`tests/loom_table.rs`, `tests/shuttle_table.rs`)
//! can run it with a few entries. Public for those suites only: not a stable API.
//!
//! The protocol and the invariants a reader may rely on are in the crate docs
//! ("The callsite table"); each atomic operation below says why its ordering suffices.

use ada_shm::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use std::collections::HashMap;

/// Bit 0 of a stored key: the callsite marks. A key given to the table has it clear.
const MARK: usize = 1;

/// What the layer knows of one callsite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The callsite word for `ada_agent::enter_word` and friends; never 0 in a table.
    pub word: u64,
    /// Whether the layer's mark rules match it.
    pub mark: bool,
}

#[derive(Default)]
struct Entry {
    /// The key with the mark verdict in bit 0; 0 while free. Written once, by its claimer's
    /// compare-and-swap.
    key: AtomicUsize,
    /// The callsite word; 0 until its claimer stores it, once, after the claim.
    word: AtomicU64,
}

/// An open-addressing table (linear probing) of `CAPACITY` entries (a power of two, at least
/// 2) that only ever grows; a lookup or insertion probes at most `MAX_PROBES` entries
/// (1..=`CAPACITY`), and a key that finds no free entry within them is kept in a
/// mutex-guarded overflow map instead.
///
/// Keys are nonzero with bit 0 clear (an aligned address); a [`Site`]'s word is nonzero.
pub struct Table<const CAPACITY: usize, const MAX_PROBES: usize> {
    entries: Box<[Entry]>,
    overflow: Mutex<HashMap<usize, Site>>,
}

impl<const CAPACITY: usize, const MAX_PROBES: usize> std::fmt::Debug
    for Table<CAPACITY, MAX_PROBES>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

impl<const CAPACITY: usize, const MAX_PROBES: usize> Table<CAPACITY, MAX_PROBES> {
    const MASK: usize = {
        assert!(CAPACITY >= 2 && CAPACITY.is_power_of_two());
        assert!(MAX_PROBES >= 1 && MAX_PROBES <= CAPACITY);
        CAPACITY - 1
    };

    /// An empty table.
    pub fn new() -> Self {
        Table {
            entries: (0..CAPACITY).map(|_| Entry::default()).collect(),
            overflow: Mutex::new(HashMap::new()),
        }
    }

    /// The key's site, made by `make` and kept when the table has none for it yet.
    #[inline]
    pub fn get_or_insert(&self, key: usize, make: impl FnOnce() -> Site) -> Site {
        match self.get(key) {
            Some(site) => site,
            None => self.insert(key, make),
        }
    }

    /// The key's site, if the table holds it with its word stored. `None` may also mean the
    /// key's entry was claimed but its word not yet seen: the caller then inserts.
    #[inline]
    pub fn get(&self, key: usize) -> Option<Site> {
        debug_assert!(key != 0 && key & MARK == 0, "key {key:#x}");
        let mut i = Self::home(key);
        for _ in 0..MAX_PROBES {
            let entry = &self.entries[i];
            // Relaxed: the key is the only thing this load learns, and nothing is published
            // through it (the crate docs' invariants); a stale 0 only sends us to `insert`.
            let k = entry.key.load(Ordering::Relaxed);
            if k == 0 {
                return None;
            }
            if k & !MARK == key {
                // Relaxed: this entry's word is written only by the claimer of this key, once,
                // so any nonzero value read is that key's word; 0 (not yet seen) is a miss.
                let word = entry.word.load(Ordering::Relaxed);
                return (word != 0).then_some(Site {
                    word,
                    mark: k & MARK != 0,
                });
            }
            i = (i + 1) & Self::MASK;
        }
        self.overflow_get(key)
    }

    #[cold]
    #[inline(never)]
    fn overflow_get(&self, key: usize) -> Option<Site> {
        let map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key).copied()
    }

    /// Makes the key's site (`make`) and keeps it; a key another thread is inserting meanwhile
    /// gets that thread's site if its word is seen, else the one just made.
    #[cold]
    #[inline(never)]
    pub fn insert(&self, key: usize, make: impl FnOnce() -> Site) -> Site {
        debug_assert!(key != 0 && key & MARK == 0, "key {key:#x}");
        let site = make();
        debug_assert!(site.word != 0, "a site's word is nonzero");
        let claimed = key | usize::from(site.mark);
        let mut i = Self::home(key);
        for _ in 0..MAX_PROBES {
            let entry = &self.entries[i];
            // Relaxed (success and failure): the compare-and-swap alone decides who owns a
            // free entry (it reads the latest key, so two claimers never both succeed), and
            // nothing else is published with the key.
            match entry
                .key
                .compare_exchange(0, claimed, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // Relaxed: a reader uses this word only after matching this entry's key,
                    // and treats a 0 (this store not yet seen) as a miss.
                    entry.word.store(site.word, Ordering::Relaxed);
                    return site;
                }
                Err(k) if k & !MARK == key => {
                    // Relaxed: as in `get`, a nonzero word here is this key's.
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
                Err(_) => i = (i + 1) & Self::MASK,
            }
        }
        let mut map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(key).or_insert(site)
    }

    /// The first entry probed for `key` (a Fibonacci hash of the key without its low 3 bits,
    /// which an address of an 8-aligned value leaves 0).
    pub fn home(key: usize) -> usize {
        ((key as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CAPACITY.trailing_zeros()))
            as usize
            & Self::MASK
    }

    /// How many keys are in the overflow map.
    pub fn overflowed(&self) -> usize {
        self.overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl<const CAPACITY: usize, const MAX_PROBES: usize> Default for Table<CAPACITY, MAX_PROBES> {
    fn default() -> Self {
        Self::new()
    }
}
