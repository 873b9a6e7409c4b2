//! Segments left by dead creators: a valid ADA segment of ours whose creator is gone is stale and
//! removed by `remove_stale_segments`; one whose creator runs, one whose header is not a valid
//! ADA header, one whose header names another creator, and a file that is no segment at all are
//! left alone.

use ada_shm::clock::ClockId;
use ada_shm::{
    RegionKind, RegionSpec, Segment, SegmentName, SegmentState, list_segments,
    remove_stale_segments,
};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

fn specs() -> [RegionSpec; 1] {
    [RegionSpec {
        kind: RegionKind::Control,
        version: 1,
        size: 384,
    }]
}

/// A pid no process can have: above the kernel's `pid_max` (validation accepts up to
/// `i32::MAX`). `k` keeps the tests' names apart.
fn dead_pid(k: u32) -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 22);
    max + 1000 + k
}

/// A fresh ADA-shaped name embedding `pid`.
fn name_for(pid: u32) -> SegmentName {
    SegmentName::generate(pid).unwrap().0
}

fn path_of(name: &SegmentName) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

fn write_at(name: &SegmentName, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path_of(name))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// A valid segment named for `pid` whose header's creator pid (offset 40) is `header_pid`.
fn forged(pid: u32, header_pid: u32) -> Segment {
    let name = name_for(pid);
    let seg = Segment::create_named(&name, 7, &specs(), ClockId::Monotonic).unwrap();
    write_at(&name, 40, &header_pid.to_le_bytes());
    seg
}

fn state_of(name: &SegmentName) -> Option<SegmentState> {
    list_segments()
        .into_iter()
        .find(|s| s.name == *name)
        .map(|s| s.state)
}

#[test]
fn segment_of_a_dead_creator_is_stale_and_removed() {
    let pid = dead_pid(1);
    let seg = forged(pid, pid);
    assert_eq!(state_of(seg.name()), Some(SegmentState::Stale));
    let removed = remove_stale_segments();
    let ours = removed.iter().find(|(s, _)| s.name == *seg.name());
    let (s, result) = ours.expect("the stale segment was removed");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(s.pid, pid);
    assert!(!s.creator_alive);
    assert!(!path_of(seg.name()).exists());
    assert_eq!(state_of(seg.name()), None);
}

#[test]
fn segment_of_a_live_creator_is_left_alone() {
    let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
    assert_eq!(state_of(seg.name()), Some(SegmentState::Live));
    let removed = remove_stale_segments();
    assert!(removed.iter().all(|(s, _)| s.name != *seg.name()));
    assert!(path_of(seg.name()).exists());
}

#[test]
fn invalid_segments_of_dead_creators_are_left_alone() {
    let pid = dead_pid(2);
    // A corrupt magic.
    let bad_magic = forged(pid, pid);
    write_at(bad_magic.name(), 0, b"NOTADA!!");
    // Never published (magic still zero): a creator that died while creating it.
    let unpublished = forged(pid, pid);
    write_at(unpublished.name(), 0, &0u64.to_le_bytes());
    // A valid header naming another (live) creator than the name does.
    let other_creator = forged(pid, std::process::id());
    // Not a segment at all.
    let plain = name_for(pid);
    std::fs::write(path_of(&plain), [0x5a; 8192]).unwrap();
    // Too small to hold a header.
    let tiny = name_for(pid);
    std::fs::write(path_of(&tiny), [0u8; 16]).unwrap();

    let names = [
        bad_magic.name(),
        unpublished.name(),
        other_creator.name(),
        &plain,
        &tiny,
    ];
    for name in names {
        assert!(
            matches!(state_of(name), Some(SegmentState::Invalid { .. })),
            "{name}: {:?}",
            state_of(name)
        );
    }
    let removed = remove_stale_segments();
    for name in names {
        assert!(removed.iter().all(|(s, _)| s.name != *name), "{name}");
        assert!(path_of(name).exists(), "{name}");
    }
    let _ = std::fs::remove_file(path_of(&plain));
    let _ = std::fs::remove_file(path_of(&tiny));
}
