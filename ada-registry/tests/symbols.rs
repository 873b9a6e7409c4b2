//! The symbol table in a real segment: names registered by several threads through one
//! attachment are read back through a second one; attach rejects hostile symbols-region headers
//! and region-table entries, and the reader survives corrupt entries in an attached mapping.
#![cfg(not(any(loom, shuttle)))]

use ada_registry::{
    MAX_SYMBOL_NAME, Registry, RegistryConfig, RegistryError, SYMBOLS_VERSION, SymbolCursor,
    SymbolError, SymbolTableConfig,
};
use ada_shm::{AttachOptions, RegionKind};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};

fn config(entries: u32, name_bytes: u32) -> RegistryConfig {
    RegistryConfig {
        capacity: 2,
        symbols: SymbolTableConfig {
            entries,
            name_bytes,
        },
        ..Default::default()
    }
}

fn path(reg: &Registry) -> String {
    format!("/dev/shm{}", reg.segment().name().as_str())
}

fn overwrite(reg: &Registry, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path(reg))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn read_at(reg: &Registry, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path(reg)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn attach(reg: &Registry) -> Result<Registry, RegistryError> {
    Registry::attach(reg.segment().name(), AttachOptions::default())
}

fn read_all(reg: &Registry, cursor: &mut SymbolCursor) -> BTreeMap<u64, (String, u64)> {
    let mut out = BTreeMap::new();
    reg.symbols().read_new(cursor, |r| {
        assert!(
            out.insert(r.id, (r.name.to_owned(), r.address)).is_none(),
            "id {} delivered twice",
            r.id
        );
    });
    out
}

/// Byte offset, in the segment header, of the region-table row describing the symbols region.
fn symbols_row(reg: &Registry) -> u64 {
    let table = read_at(reg, 64, 8 * 24);
    let row = table
        .chunks(24)
        .position(|row| {
            u32::from_le_bytes(row[..4].try_into().unwrap()) == RegionKind::Symbols as u32
        })
        .expect("the registry creates a symbols region");
    64 + row as u64 * 24
}

#[test]
fn names_registered_by_threads_are_read_back_through_a_second_attachment() {
    let reg = Registry::create(&RegistryConfig::default(), &[]).unwrap();
    let symbols = reg.symbols();
    assert_eq!(symbols.capacity(), 4096);
    let region = reg.segment().region(RegionKind::Symbols).unwrap();
    assert_eq!(region.version, SYMBOLS_VERSION);
    assert_eq!(region.size, SymbolTableConfig::default().region_size());

    let mut expected = BTreeMap::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                s.spawn(move || {
                    (0..50u64)
                        .map(|i| {
                            let name = format!("crate::module_{t}::function_{i}");
                            let address = t << 32 | i;
                            let id = symbols.register(&name, address).unwrap();
                            (id, (name, address))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            expected.extend(h.join().unwrap());
        }
    });
    let long = "λ".repeat(MAX_SYMBOL_NAME);
    let long_id = symbols.register(&long, 7).unwrap();
    expected.insert(
        long_id,
        ("λ".repeat(MAX_SYMBOL_NAME / 2), 7), // 2-byte chars: cut at exactly 1024 bytes
    );
    assert_eq!(expected.len(), 201, "ids are unique");
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (1..=201).collect::<Vec<_>>()
    );

    let other = attach(&reg).unwrap();
    assert_eq!(other.symbols().capacity(), 4096);
    let mut cursor = SymbolCursor::new();
    assert_eq!(read_all(&other, &mut cursor), expected);
    assert!(read_all(&other, &mut cursor).is_empty());
    // A name registered through the second attachment shows up in the first.
    let id = other.symbols().register("late", 9).unwrap();
    let mut first = SymbolCursor::new();
    let seen = read_all(&reg, &mut first);
    assert_eq!(seen.len(), 202);
    assert_eq!(seen[&id], ("late".to_owned(), 9));
    assert_eq!(read_all(&other, &mut cursor).len(), 1);
}

#[test]
fn small_table_fills_up_and_counts_refusals_across_attachments() {
    let reg = Registry::create(&config(3, 8), &[]).unwrap();
    let other = attach(&reg).unwrap();
    assert_eq!(reg.symbols().register("a", 1), Ok(1));
    assert_eq!(
        other.symbols().register("nine byte", 2),
        Err(SymbolError::Full)
    );
    assert_eq!(other.symbols().register("", 3), Ok(3));
    assert_eq!(reg.symbols().register("b", 4), Err(SymbolError::Full));
    assert_eq!(reg.symbols().refused(), 2);
    assert_eq!(other.symbols().refused(), 2);
}

#[test]
fn bad_symbol_configs_are_refused_at_create() {
    for (entries, name_bytes) in [(0, 8), (1, 0), (1, 7), (u32::MAX, 8), (1, u32::MAX - 7)] {
        let err = Registry::create(&config(entries, name_bytes), &[]).unwrap_err();
        assert!(matches!(err, RegistryError::BadHeader(_)), "{err}");
    }
}

#[test]
fn attach_rejects_hostile_symbols_headers() {
    let reg = Registry::create(&config(4, 64), &[]).unwrap();
    let at = reg.segment().region(RegionKind::Symbols).unwrap().offset;
    attach(&reg).unwrap();
    let bad_header = |reg: &Registry| {
        let err = attach(reg).unwrap_err();
        assert!(matches!(err, RegistryError::BadHeader(_)), "{err}");
    };
    // entries (first u32): zero, past the limit, or merely different from what the size says.
    for entries in [0u32, u32::MAX, 5, 3] {
        overwrite(&reg, at, &entries.to_le_bytes());
        bad_header(&reg);
    }
    overwrite(&reg, at, &4u32.to_le_bytes());
    // name_bytes (second u32): not a multiple of 8, zero, huge, or inconsistent with the size.
    for name_bytes in [60u32, 0, u32::MAX, 72, 56] {
        overwrite(&reg, at + 4, &name_bytes.to_le_bytes());
        bad_header(&reg);
    }
    // Consistent with the region size but different split: 5 entries * 24 = 4 * 24 + 24 bytes.
    overwrite(&reg, at, &5u32.to_le_bytes());
    overwrite(&reg, at + 4, &40u32.to_le_bytes());
    let other = attach(&reg).expect("a self-consistent header is accepted");
    assert_eq!(other.symbols().capacity(), 5);
    overwrite(&reg, at, &4u32.to_le_bytes());
    overwrite(&reg, at + 4, &64u32.to_le_bytes());
    attach(&reg).unwrap();

    // The region table row: version, then size.
    let row = symbols_row(&reg);
    overwrite(&reg, row + 4, &(SYMBOLS_VERSION + 1).to_le_bytes());
    bad_header(&reg);
    overwrite(&reg, row + 4, &SYMBOLS_VERSION.to_le_bytes());
    let size = config(4, 64).symbols.region_size();
    overwrite(&reg, row + 16, &(size - 8).to_le_bytes());
    bad_header(&reg);
    overwrite(&reg, row + 16, &size.to_le_bytes());
    attach(&reg).unwrap();
}

#[test]
fn reader_survives_corrupt_counters_and_entries_in_the_mapping() {
    let reg = Registry::create(&config(4, 64), &[]).unwrap();
    let at = reg.segment().region(RegionKind::Symbols).unwrap().offset;
    for name in ["zero", "one", "two"] {
        reg.symbols().register(name, 0).unwrap();
    }
    let entry = |i: u64| at + 256 + i * 24;
    overwrite(&reg, entry(0) + 4, &u32::MAX.to_le_bytes()); // name_word far out of bounds
    overwrite(&reg, entry(1) + 8, &u32::MAX.to_le_bytes()); // name_len far too long
    overwrite(&reg, entry(2), &9u32.to_le_bytes()); // unknown state
    overwrite(&reg, entry(3), &1u32.to_le_bytes()); // READY, never claimed: an empty name
    overwrite(&reg, at + 128, &u64::MAX.to_le_bytes()); // next_entry far past the capacity
    let other = attach(&reg).expect("counters and entries are checked by the reader");
    let mut cursor = SymbolCursor::new();
    let got = read_all(&other, &mut cursor);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![(4, (String::new(), 0))]
    );
    assert_eq!(cursor.skipped(), 3);
    assert_eq!(other.symbols().claimed(), 4);
    assert_eq!(other.symbols().register("more", 0), Err(SymbolError::Full));
}
