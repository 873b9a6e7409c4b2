//! The fallback ring in a real segment: records pushed by threads of one attachment are drained
//! through the drain claim of another, the region is optional and sized by the config, and
//! attach rejects hostile fallback headers and region-table entries with a typed error.
#![cfg(not(any(loom, shuttle)))]

use ada_registry::fallback::{FALLBACK_VERSION, FallbackRecord, FallbackRefused, region_size};
use ada_registry::{LaneKind, Registry, RegistryConfig, RegistryError};
use ada_shm::{AttachOptions, RegionKind};
use std::io::{Read, Seek, SeekFrom, Write};

fn config(fallback_records: u32) -> RegistryConfig {
    RegistryConfig {
        capacity: 2,
        fallback_records,
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

fn attach(reg: &Registry) -> Result<Registry, RegistryError> {
    Registry::attach(reg.segment().name(), AttachOptions::default())
}

/// Byte offset, in the segment header, of the region-table row describing the fallback region.
fn fallback_row(reg: &Registry) -> u64 {
    let mut f = std::fs::File::open(path(reg)).unwrap();
    f.seek(SeekFrom::Start(64)).unwrap();
    let mut table = vec![0; 8 * 24];
    f.read_exact(&mut table).unwrap();
    let row = table
        .chunks(24)
        .position(|row| {
            u32::from_le_bytes(row[..4].try_into().unwrap()) == RegionKind::Fallback as u32
        })
        .expect("the registry creates a fallback region");
    64 + row as u64 * 24
}

fn rec(tid: u64, n: u64) -> FallbackRecord {
    FallbackRecord {
        pid: std::process::id(),
        tid,
        lane: LaneKind::Detail,
        payload: [n, !n, 3, 4],
    }
}

#[test]
fn records_pushed_through_one_attachment_are_drained_through_the_claim_of_another() {
    let reg = Registry::create(&config(64), &[]).unwrap();
    let agent = attach(&reg).unwrap();
    let ring = agent
        .fallback()
        .expect("the config asked for a fallback ring");
    assert_eq!(ring.capacity(), 64);
    std::thread::scope(|s| {
        for tid in 1..=4u64 {
            s.spawn(move || {
                for n in 0..10 {
                    ring.push(&rec(tid, n)).unwrap();
                }
            });
        }
    });
    let mut claim = reg.claim_drain().unwrap();
    let mut consumer = claim.fallback().expect("handed out once");
    assert!(claim.fallback().is_none(), "the consumer exists once");
    let mut got = Vec::new();
    let d = consumer.drain(|r| got.push((r.tid, r.payload[0])));
    assert_eq!((d.taken, d.torn, d.skipped, d.refused), (40, 0, 0, 0));
    for tid in 1..=4 {
        let mine: Vec<u64> = got.iter().filter(|g| g.0 == tid).map(|g| g.1).collect();
        assert_eq!(mine, (0..10).collect::<Vec<_>>());
    }
    // Fill the ring: the 65th record is refused and counted, visible through either attachment.
    for n in 0..64 {
        ring.push(&rec(9, n)).unwrap();
    }
    assert_eq!(ring.push(&rec(9, 64)), Err(FallbackRefused::Full));
    assert_eq!(reg.fallback().unwrap().refused(), 1);
    assert_eq!(consumer.drain(|_| {}).taken, 64);
}

#[test]
fn the_region_is_optional_and_sized_by_the_config() {
    let none = Registry::create(&config(0), &[]).unwrap();
    assert!(none.segment().region(RegionKind::Fallback).is_err());
    assert!(none.fallback().is_none());
    assert!(attach(&none).unwrap().fallback().is_none());
    assert!(none.claim_drain().unwrap().fallback().is_none());

    let default = Registry::create(&RegistryConfig::default(), &[]).unwrap();
    let region = default.segment().region(RegionKind::Fallback).unwrap();
    assert_eq!(
        (region.version, region.size),
        (FALLBACK_VERSION, region_size(4096))
    );
    assert_eq!(default.fallback().unwrap().capacity(), 4096);

    for bad in [1, 3, 100, 1 << 21, u32::MAX] {
        let err = Registry::create(&config(bad), &[]).unwrap_err();
        assert!(matches!(err, RegistryError::BadHeader(_)), "{err}");
    }
}

#[test]
fn attach_rejects_hostile_fallback_headers() {
    let reg = Registry::create(&config(8), &[]).unwrap();
    let at = reg.segment().region(RegionKind::Fallback).unwrap().offset;
    attach(&reg).unwrap();
    let bad_header = |reg: &Registry| {
        let err = attach(reg).unwrap_err();
        assert!(matches!(err, RegistryError::BadHeader(_)), "{err}");
    };
    // records (first u32): zero, one, not a power of two, past the limit, or merely different
    // from what the region size says.
    for records in [0u32, 1, 7, u32::MAX, 1 << 21, 16, 4] {
        overwrite(&reg, at, &records.to_le_bytes());
        bad_header(&reg);
    }
    overwrite(&reg, at, &8u32.to_le_bytes());
    attach(&reg).unwrap();

    // The region table row: version, then size.
    let row = fallback_row(&reg);
    overwrite(&reg, row + 4, &(FALLBACK_VERSION + 1).to_le_bytes());
    bad_header(&reg);
    overwrite(&reg, row + 4, &FALLBACK_VERSION.to_le_bytes());
    for size in [region_size(8) - 64, region_size(8) + 64, 0, u64::MAX] {
        overwrite(&reg, row + 16, &size.to_le_bytes());
        // A size past the mapping may already be refused by the segment's own checks.
        assert!(attach(&reg).is_err());
    }
    overwrite(&reg, row + 16, &region_size(8).to_le_bytes());
    attach(&reg).unwrap();
}
