//! loom: two threads register names concurrently while the controller reads. The reader only
//! ever sees a complete name (never a torn or zero-filled one), ids are unique and match what
//! each writer got back, and a final read after joining delivers whatever the concurrent read
//! missed, exactly once.
#![cfg(loom)]

use ada_registry::{HeapSymbolTable, SymbolCursor, SymbolTableConfig};
use ada_shm::sync::{Arc, thread};
use ada_testkit::model::Witness;

/// Two words each, so a reader that could see a half-written name would notice.
const NAMES: [&str; 2] = ["alpha::beta_1", "gamma::delta_2"];

#[test]
fn concurrent_registration_is_seen_whole_and_once() {
    let saw_name = Witness::new();
    let witness = saw_name.clone();
    ada_testkit::model::check(move || {
        let table = Arc::new(HeapSymbolTable::new(SymbolTableConfig {
            entries: 2,
            name_bytes: 32,
        }));
        let writers: Vec<_> = NAMES
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let table = table.clone();
                thread::spawn(move || table.view().register(name, i as u64).unwrap())
            })
            .collect();
        let mut cursor = SymbolCursor::new();
        let mut seen = Vec::new();
        table.view().read_new(&mut cursor, |r| {
            let i = NAMES
                .iter()
                .position(|&n| n == r.name)
                .unwrap_or_else(|| panic!("partial or foreign name {:?}", r.name));
            assert_eq!(r.address, i as u64);
            witness.hit();
            seen.push((r.id, i));
        });
        let ids: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        assert_ne!(ids[0], ids[1]);
        assert!(ids.iter().all(|id| (1..=2).contains(id)));
        table.view().read_new(&mut cursor, |r| {
            let i = NAMES.iter().position(|&n| n == r.name).unwrap();
            seen.push((r.id, i));
        });
        seen.sort();
        let mut expected = vec![(ids[0], 0), (ids[1], 1)];
        expected.sort();
        assert_eq!(
            seen, expected,
            "each name exactly once, under the id its writer got"
        );
        assert_eq!(cursor.pending(), 0);
    });
    saw_name.expect_reached("the concurrent read saw a registered name");
}
