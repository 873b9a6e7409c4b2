//! Random and mutated headers are rejected with typed errors, never a panic; a header that does
//! validate only ever describes regions inside the segment. Also exercised end to end: bytes
//! written into a real segment's header make `attach` fail cleanly.

use ada_shm::clock::ClockId;
use ada_shm::{
    AttachOptions, HEADER_SIZE, RegionKind, RegionSpec, Segment, SegmentHeader, ShmError,
};
use proptest::prelude::*;
use std::io::{Seek, SeekFrom, Write};
use zerocopy::{FromBytes, IntoBytes};

fn valid() -> SegmentHeader {
    SegmentHeader::plan(
        &[
            RegionSpec {
                kind: RegionKind::Control,
                version: 1,
                size: 384,
            },
            RegionSpec {
                kind: RegionKind::Registry,
                version: 1,
                size: 9000,
            },
            RegionSpec {
                kind: RegionKind::Rings,
                version: 1,
                size: 70000,
            },
        ],
        0x1234,
        std::process::id(),
        ClockId::Monotonic,
        1,
    )
    .unwrap()
}

fn assert_regions_inside(h: &SegmentHeader, len: u64) {
    for r in &h.regions[..h.region_count as usize] {
        assert!(r.offset >= HEADER_SIZE as u64);
        assert!(r.offset.checked_add(r.size).unwrap() <= len);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), HEADER_SIZE), len in any::<u64>()) {
        let h = SegmentHeader::read_from_bytes(&bytes).unwrap();
        if h.validate("p", len).is_ok() {
            assert_regions_inside(&h, len);
        }
    }

    #[test]
    fn single_byte_mutations_are_caught_or_harmless(pos in 0..HEADER_SIZE, value in any::<u8>()) {
        let good = valid();
        let mut bytes = good.as_bytes().to_vec();
        bytes[pos] = value;
        let h = SegmentHeader::read_from_bytes(&bytes).unwrap();
        match h.validate("p", good.total_size) {
            Ok(()) => assert_regions_inside(&h, good.total_size),
            Err(e) => { let _ = e.to_string(); }
        }
    }

    #[test]
    fn mutated_word_fields_are_caught_or_harmless(word in 0..HEADER_SIZE / 8, value in any::<u64>()) {
        let good = valid();
        let mut bytes = good.as_bytes().to_vec();
        bytes[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
        let h = SegmentHeader::read_from_bytes(&bytes).unwrap();
        if h.validate("p", good.total_size).is_ok() {
            assert_regions_inside(&h, good.total_size);
        }
    }
}

fn specs() -> [RegionSpec; 2] {
    [
        RegionSpec {
            kind: RegionKind::Control,
            version: 1,
            size: 384,
        },
        RegionSpec {
            kind: RegionKind::Registry,
            version: 1,
            size: 8192,
        },
    ]
}

fn write_at(seg: &Segment, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{}", seg.name()))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn corrupt_segments_fail_attach_with_typed_errors() {
    let attach = |seg: &Segment| Segment::attach(seg.name(), AttachOptions::default());

    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    write_at(&seg, 0, b"NOTADA!!");
    assert!(matches!(attach(&seg), Err(ShmError::BadMagic { .. })));

    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    write_at(&seg, 8, &7u32.to_le_bytes());
    assert!(matches!(
        attach(&seg),
        Err(ShmError::VersionMismatch { found: 7, .. })
    ));

    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    write_at(&seg, 16, &(1u64 << 40).to_le_bytes());
    assert!(matches!(
        attach(&seg),
        Err(ShmError::SizeOutOfBounds { .. })
    ));

    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    // region 1's size (offset 64 + 24 + 16) made huge
    write_at(&seg, 64 + 24 + 16, &u64::MAX.to_le_bytes());
    assert!(matches!(
        attach(&seg),
        Err(ShmError::LayoutOutOfBounds { index: 1, .. })
    ));

    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    write_at(&seg, 0, &0u64.to_le_bytes());
    assert!(matches!(attach(&seg), Err(ShmError::NotReady { .. })));

    // A segment whose creator pid is not running is reported, and can still be salvaged.
    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    write_at(&seg, 40, &(u32::MAX - 7).to_le_bytes());
    assert!(matches!(
        attach(&seg),
        Err(ShmError::InvalidField {
            field: "creator_pid",
            ..
        })
    ));
    // Above the kernel's PID_MAX_LIMIT (2^22), so never a running process.
    write_at(&seg, 40, &(i32::MAX as u32 - 7).to_le_bytes());
    assert!(matches!(attach(&seg), Err(ShmError::CreatorDead { .. })));
    Segment::attach(seg.name(), AttachOptions { allow_stale: true }).unwrap();

    let missing = ada_shm::SegmentName::parse("/ada_0_doesnotexist").unwrap();
    assert!(matches!(
        Segment::attach(&missing, AttachOptions::default()),
        Err(ShmError::NotFound { .. })
    ));
}

#[test]
fn truncated_segment_is_rejected() {
    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{}", seg.name()))
        .unwrap();
    f.set_len(100).unwrap();
    assert!(matches!(
        Segment::attach(seg.name(), AttachOptions::default()),
        Err(ShmError::SizeOutOfBounds { .. })
    ));
    f.set_len(8192).unwrap();
    assert!(matches!(
        Segment::attach(seg.name(), AttachOptions::default()),
        Err(ShmError::SizeOutOfBounds { .. })
    ));
}
