//! shuttle: 8 threads register several names each while the controller reads concurrently.
//! Every id is unique, every name is delivered exactly once under the id its writer got, and
//! nothing is delivered that was not registered.
#![cfg(shuttle)]

use ada_registry::{HeapSymbolTable, SymbolCursor, SymbolTableConfig};
use ada_shm::sync::{Arc, AtomicU32, Ordering, thread};
use std::collections::BTreeMap;

const THREADS: u64 = 8;
const NAMES_PER_THREAD: u64 = 4;

fn name(t: u64, i: u64) -> String {
    // Lengths 9..=40 bytes: one to five words, so names straddle word boundaries.
    format!(
        "thread{t}::fn{i}{}",
        "_".repeat(((t * 7 + i * 5) % 28) as usize)
    )
}

#[test]
fn eight_threads_register_while_the_controller_reads() {
    ada_testkit::model::check(|| {
        let table = Arc::new(HeapSymbolTable::new(SymbolTableConfig {
            entries: (THREADS * NAMES_PER_THREAD) as u32,
            name_bytes: 2048,
        }));
        let finished = Arc::new(AtomicU32::new(0));
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (table, finished) = (table.clone(), finished.clone());
                thread::spawn(move || {
                    let got: Vec<_> = (0..NAMES_PER_THREAD)
                        .map(|i| {
                            let id = table.view().register(&name(t, i), t << 8 | i).unwrap();
                            thread::yield_now();
                            (id, (name(t, i), t << 8 | i))
                        })
                        .collect();
                    // SeqCst: test bookkeeping only.
                    finished.fetch_add(1, Ordering::SeqCst);
                    got
                })
            })
            .collect();
        let mut cursor = SymbolCursor::new();
        let mut seen: BTreeMap<u64, (String, u64)> = BTreeMap::new();
        let read = |cursor: &mut SymbolCursor, seen: &mut BTreeMap<u64, (String, u64)>| {
            table.view().read_new(cursor, |r| {
                let prev = seen.insert(r.id, (r.name.to_owned(), r.address));
                assert!(prev.is_none(), "id {} delivered twice", r.id);
            });
        };
        // SeqCst: test bookkeeping only.
        while finished.load(Ordering::SeqCst) < THREADS as u32 {
            read(&mut cursor, &mut seen);
            thread::yield_now();
        }
        let mut expected = BTreeMap::new();
        for w in writers {
            for (id, value) in w.join().unwrap() {
                assert!(
                    expected.insert(id, value).is_none(),
                    "id {id} handed out twice"
                );
            }
        }
        read(&mut cursor, &mut seen);
        assert_eq!(seen, expected);
        assert_eq!(cursor.pending(), 0);
        assert_eq!(table.view().refused(), 0);
    });
}
