//! [`SiteCache`]: each `tracing` callsite's ADA callsite word and mark verdict, found by the
//! address of its `&'static Metadata` without a lock.
//!
//! A thin wrapper over the lock-free [`Table`] (`table.rs`, whose protocol the crate docs
//! describe), keyed by the metadata's address: a `Metadata` is aligned to at least 8 bytes,
//! so the address is nonzero with bit 0 free for the table's mark bit. [`CAPACITY`] entries,
//! at most [`MAX_PROBES`] probed per lookup; a callsite that finds no free entry within them
//! (the table is nearly full: thousands of callsites) is kept in a mutex-guarded map instead,
//! and each lookup of it then takes the lock. The wrapper holds the table inline, and the
//! table's sizes are constants, so a lookup compiles to the same probe loop as a table
//! written for this key alone.

pub use crate::table::Site;
use crate::table::Table;
use tracing::Metadata;

/// Entries in the lock-free table (a power of two). 8192 × 16 bytes = 128 KiB per layer.
pub const CAPACITY: usize = 8192;
/// The most entries a lookup or insertion probes before it turns to the overflow map: bounds a
/// lookup's cost however full the table is.
pub const MAX_PROBES: usize = 64;

/// The per-layer callsite table (see the module docs).
#[derive(Debug, Default)]
pub struct SiteCache {
    table: Table<CAPACITY, MAX_PROBES>,
}

impl SiteCache {
    /// An empty table.
    pub fn new() -> SiteCache {
        SiteCache {
            table: Table::new(),
        }
    }

    /// The callsite's entry, registering it (with `make`) when it has none yet.
    #[inline]
    pub fn get_or_insert(
        &self,
        meta: &'static Metadata<'static>,
        make: impl FnOnce() -> Site,
    ) -> Site {
        self.table.get_or_insert(address(meta), make)
    }

    /// The callsite's entry, if the table holds it (with its word stored).
    #[cfg(test)]
    pub fn get(&self, meta: &'static Metadata<'static>) -> Option<Site> {
        self.table.get(address(meta))
    }
}

fn address(meta: &'static Metadata<'static>) -> usize {
    std::ptr::from_ref(meta) as usize
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
        let overflow = cache.table.overflowed();
        assert!(overflow >= 10, "{overflow} in the overflow map");
    }
}
