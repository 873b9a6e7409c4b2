//! The segment-backed registry: registration through the thread-local cache, capacity limits,
//! exit → drain reclaim → reuse, attach validation of hostile registry headers.

use ada_registry::{LaneKind, Registry, RegistryConfig, RegistryError, RingGeometry, SlotState};
use ada_shm::AttachOptions;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Barrier;

fn small(capacity: u32) -> RegistryConfig {
    RegistryConfig {
        capacity,
        geometry: RingGeometry::default(),
        ..Default::default()
    }
}

#[test]
fn thread_registers_once_and_lookups_are_cached() {
    let reg = Registry::create(&small(4), &[]).unwrap();
    let a = reg.current_thread().unwrap();
    let b = reg.current_thread().unwrap();
    assert_eq!(a.index, b.index);
    assert!(std::ptr::eq(a.lanes, b.lanes));
    let owner = a.lanes.owner();
    assert_eq!(owner.pid, std::process::id());
    assert_eq!(
        owner.thread_id,
        rustix::thread::gettid().as_raw_nonzero().get() as u64
    );
    assert_eq!(reg.header().counters().registrations, 1);
    // The free queue is right from the first registration: rings 1..n are free, ring 0 active.
    let lane = a.lanes.lane(LaneKind::Index);
    assert_eq!(lane.active_ring(), 0);
    assert_eq!(lane.free_queue().len(), 3);
    assert_eq!(a.lanes.lane(LaneKind::Detail).free_queue().len(), 1);
    assert!(reg.unregister_current_thread());
    assert_eq!(a.lanes.state(), Ok(SlotState::Exited));
    assert!(!reg.unregister_current_thread());
}

#[test]
fn thread_exit_hands_slot_to_drain_which_frees_it_for_reuse() {
    let reg = Registry::create(&small(1), &[]).unwrap();
    let index = std::thread::scope(|s| {
        s.spawn(|| reg.current_thread().unwrap().index)
            .join()
            .unwrap()
    });
    let view = reg.view();
    let seen: Vec<_> = view.live_slots().map(|v| (v.index, v.state)).collect();
    assert_eq!(seen, vec![(index, SlotState::Exited)]);
    // Full until the drain reclaims.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                reg.current_thread(),
                Err(RegistryError::Full { capacity: 1 })
            ))
        });
    });
    assert!(view.reclaim(index));
    assert!(
        !view.reclaim(index),
        "a FREE slot cannot be reclaimed twice"
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            let slot = reg.current_thread().unwrap();
            assert_eq!(slot.index, index);
            assert_eq!(slot.generation, 2);
        });
    });
}

#[test]
fn over_capacity_is_a_clear_error_and_does_not_rescan_until_a_slot_frees() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                reg.current_thread().unwrap();
                barrier.wait();
                barrier.wait();
            });
        }
        s.spawn(|| {
            barrier.wait();
            let err = reg.current_thread().unwrap_err();
            assert!(matches!(err, RegistryError::Full { capacity: 2 }));
            assert!(err.to_string().contains("counted as dropped"));
            // The refusal is cached: no new scan, no new failure counted.
            let failures = reg.header().counters().capacity_failures;
            assert!(reg.current_thread().is_err());
            assert_eq!(reg.header().counters().capacity_failures, failures);
            reg.header().count_unregistered_drops(5);
            barrier.wait();
        });
    });
    assert_eq!(reg.header().counters().unregistered_drops, 5);
}

#[test]
fn closed_registry_refuses_registration() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    reg.header().set_accepting(false);
    assert!(matches!(reg.current_thread(), Err(RegistryError::Closed)));
}

#[test]
fn dead_process_slots_become_exited() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let slot = reg.current_thread().unwrap();
    assert_eq!(reg.view().mark_process_dead(std::process::id() + 1), 0);
    assert_eq!(reg.view().mark_process_dead(std::process::id()), 1);
    assert_eq!(slot.lanes.state(), Ok(SlotState::Exited));
}

#[test]
fn ring_locations_are_bounds_checked_and_disjoint() {
    let reg = Registry::create(&small(3), &[]).unwrap();
    let mut spans = Vec::new();
    for slot in 0..3 {
        for (kind, n) in [(LaneKind::Index, 4), (LaneKind::Detail, 2)] {
            for ring in 0..n {
                let (off, len) = reg.ring_location(slot, kind, ring).unwrap();
                assert!(reg.segment().bytes_ptr(off, u64::from(len)).is_ok());
                spans.push((off, off + u64::from(len)));
            }
            assert!(reg.ring_location(slot, kind, n).is_none());
        }
    }
    assert!(reg.ring_location(3, LaneKind::Index, 0).is_none());
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "rings overlap");
    assert!(RegistryConfig::default().bytes_per_thread() <= 256 * 1024);
}

fn overwrite(name: &str, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn attach_rejects_hostile_registry_headers() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let name = reg.segment().name().clone();
    let header_at = reg
        .segment()
        .region(ada_shm::RegionKind::Registry)
        .unwrap()
        .offset;
    Registry::attach(&name, AttachOptions::default()).unwrap();
    // capacity (first u32 of the registry header) larger than the region
    overwrite(name.as_str(), header_at, &1000u32.to_le_bytes());
    let err = Registry::attach(&name, AttachOptions::default()).unwrap_err();
    assert!(matches!(err, RegistryError::BadHeader(_)), "{err}");
    overwrite(name.as_str(), header_at, &0u32.to_le_bytes());
    assert!(matches!(
        Registry::attach(&name, AttachOptions::default()),
        Err(RegistryError::BadHeader(_))
    ));
    overwrite(name.as_str(), header_at, &2u32.to_le_bytes());
    // index ring count (second u32) out of range
    overwrite(name.as_str(), header_at + 4, &99u32.to_le_bytes());
    assert!(matches!(
        Registry::attach(&name, AttachOptions::default()),
        Err(RegistryError::Geometry(_))
    ));
    overwrite(name.as_str(), header_at + 4, &4u32.to_le_bytes());
    Registry::attach(&name, AttachOptions::default()).unwrap();
}
