//! The segment-backed registry: registration and its move-only handle, stale handles, capacity
//! limits, exit → drain reclaim → reuse, the exclusive drain claim, attach validation of
//! hostile registry headers.

use ada_registry::{
    LaneKind, Registry, RegistryConfig, RegistryError, RingGeometry, SlotOwner, SlotState,
};
use ada_shm::AttachOptions;
use std::io::{Seek, SeekFrom, Write};

fn small(capacity: u32) -> RegistryConfig {
    RegistryConfig {
        capacity,
        geometry: RingGeometry::default(),
        ..Default::default()
    }
}

#[test]
fn registration_hands_out_the_slot_and_both_lanes_initialised() {
    let reg = Registry::create(&small(4), &[]).unwrap();
    let r = reg.view().register(SlotOwner::current_thread()).unwrap();
    let owner = r.slot.lanes().owner();
    assert_eq!(owner.pid, std::process::id());
    assert_eq!(
        owner.thread_id,
        rustix::thread::gettid().as_raw_nonzero().get() as u64
    );
    assert_eq!(owner.generation, r.slot.generation());
    assert_eq!(reg.header().counters().registrations, 1);
    assert_eq!(
        (r.index.slot(), r.index.kind()),
        (r.slot.index(), LaneKind::Index)
    );
    assert_eq!(
        (r.detail.slot(), r.detail.kind()),
        (r.slot.index(), LaneKind::Detail)
    );
    // The free queue is right from the first registration: rings 1..n are free, ring 0 active.
    let lane = r.slot.lanes().lane(LaneKind::Index);
    assert_eq!(lane.active_ring(), 0);
    assert_eq!(lane.free_queue().len(), 3);
    assert_eq!(r.slot.lanes().lane(LaneKind::Detail).free_queue().len(), 1);
    let lanes = r.slot.lanes();
    r.slot.unregister().unwrap();
    assert_eq!(lanes.state(), Ok(SlotState::Exited));
}

#[test]
fn dropping_the_registration_hands_the_slot_to_the_drain_which_frees_it_for_reuse() {
    let reg = Registry::create(&small(1), &[]).unwrap();
    let index = {
        let r = reg.view().register(SlotOwner::current_thread()).unwrap();
        r.slot.index()
    };
    let view = reg.view();
    let seen: Vec<_> = view.live_slots().map(|v| (v.index, v.state)).collect();
    assert_eq!(seen, vec![(index, SlotState::Exited)]);
    // Full until the drain reclaims.
    assert!(matches!(
        view.register(SlotOwner::current_thread()),
        Err(RegistryError::Full { capacity: 1 })
    ));
    assert!(view.reclaim(index));
    assert!(
        !view.reclaim(index),
        "a FREE slot cannot be reclaimed twice"
    );
    let r = view.register(SlotOwner::current_thread()).unwrap();
    assert_eq!(r.slot.index(), index);
    assert_eq!(r.slot.generation(), 2);
}

#[test]
fn a_stale_slot_handle_cannot_evict_the_slots_next_owner() {
    let reg = Registry::create(&small(1), &[]).unwrap();
    let view = reg.view();
    let first = view.register(SlotOwner::current_thread()).unwrap();
    // The controller declares the process dead and reclaims the slot; a new thread claims it.
    assert_eq!(view.mark_process_dead(std::process::id()), 1);
    assert!(view.reclaim(first.slot.index()));
    let second = view.register(SlotOwner::current_thread()).unwrap();
    assert_eq!(second.slot.index(), first.slot.index());
    assert_eq!(second.slot.generation(), first.slot.generation() + 1);
    // The first owner's handle is stale: its unregister is refused and changes nothing.
    let err = first.slot.unregister().unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::StaleSlot {
                slot: 0,
                generation: 1
            }
        ),
        "{err}"
    );
    assert_eq!(second.slot.lanes().state(), Ok(SlotState::Active));
    // Its drop (the usual way to unregister) is just as harmless.
    let lanes = second.slot.lanes();
    drop(second);
    assert_eq!(lanes.state(), Ok(SlotState::Exited));
}

#[test]
fn over_capacity_is_a_clear_error() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let view = reg.view();
    let _a = view.register(SlotOwner::current_thread()).unwrap();
    let _b = view.register(SlotOwner::current_thread()).unwrap();
    let err = view.register(SlotOwner::current_thread()).unwrap_err();
    assert!(matches!(err, RegistryError::Full { capacity: 2 }));
    assert!(err.to_string().contains("counted as dropped"));
    assert_eq!(reg.header().counters().capacity_failures, 1);
    reg.header().count_unregistered_drops(LaneKind::Index, 5);
    reg.header().count_unregistered_drops(LaneKind::Detail, 2);
    let counters = reg.header().counters();
    assert_eq!(counters.unregistered_drops, 7);
    assert_eq!(counters.unregistered_by_lane, [5, 2]);
}

#[test]
fn closed_registry_refuses_registration() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    reg.header().set_accepting(false);
    assert!(matches!(
        reg.view().register(SlotOwner::current_thread()),
        Err(RegistryError::Closed)
    ));
}

#[test]
fn dead_process_slots_become_exited() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let r = reg.view().register(SlotOwner::current_thread()).unwrap();
    assert_eq!(reg.view().mark_process_dead(std::process::id() + 1), 0);
    assert_eq!(reg.view().mark_process_dead(std::process::id()), 1);
    assert_eq!(r.slot.lanes().state(), Ok(SlotState::Exited));
}

#[test]
fn one_drain_per_segment_across_attachments_until_released() {
    let reg = Registry::create(&small(2), &[]).unwrap();
    let other = Registry::attach(reg.segment().name(), AttachOptions::default()).unwrap();
    let mut claim = reg.claim_drain().unwrap();
    assert_eq!(reg.control().drain_owner(), std::process::id());
    let err = other.claim_drain().unwrap_err();
    assert!(
        matches!(err, RegistryError::DrainClaimed { pid } if pid == std::process::id()),
        "{err}"
    );
    assert!(err.to_string().contains("already being drained"), "{err}");
    // Each lane's drain ends exist once.
    let ends = claim.lane(1, LaneKind::Detail).unwrap();
    assert!(claim.lane(1, LaneKind::Detail).is_none());
    assert!(claim.lane(2, LaneKind::Index).is_none(), "out of range");
    // The ends keep the claim alive after the claim itself is gone.
    drop(claim);
    assert!(other.claim_drain().is_err());
    drop(ends);
    assert_eq!(reg.control().drain_owner(), 0);
    assert!(other.claim_drain().is_ok());
}

#[test]
fn a_drain_claim_left_by_a_dead_process_is_taken_over() {
    let reg = Registry::create(&small(1), &[]).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    reg.control().claim_drain(dead).unwrap();
    let claim = reg.claim_drain().unwrap();
    assert_eq!(claim.claimant(), std::process::id());
    assert_eq!(reg.control().drain_owner(), std::process::id());
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
