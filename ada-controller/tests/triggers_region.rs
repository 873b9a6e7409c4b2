//! `ControllerBuilder::triggers` publishes the trigger set in the segment before `create`
//! returns, in the layout the agent reads (`u64` little-endian length, then the encoding): an
//! agent attaching to the segment compiles exactly that set. With no triggers (or an empty set)
//! there is no region and the agent has no policy.

use ada_controller::ControllerBuilder;
use ada_persist::TriggerSet;
use ada_shm::RegionKind;

#[test]
fn the_agent_reads_the_triggers_the_controller_published() {
    // Long enough that the encoding spans many words and ends mid-word.
    let specs = [
        "symbol=slow_request",
        "symbol~i=^db::(read|write)_[0-9]+$",
        "message~=deadline exceeded",
        "symbol=svc::handler_with_a_rather_long_name_x",
    ];
    let set = TriggerSet::parse(&specs).unwrap();
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(2)
        .output_dir(out.path())
        .triggers(set.clone())
        .create()
        .unwrap();
    let segment = controller.registry().segment();
    let region = segment
        .region(RegionKind::Triggers)
        .expect("a triggers region");
    assert_eq!(region.version, ada_shm::TRIGGERS_REGION_VERSION);
    // The bytes in memory: length, then the encoding.
    let encoded = set.encode();
    let ptr = segment
        .bytes_ptr(region.offset, 8 + encoded.len() as u64)
        .unwrap();
    let mut raw = vec![0u8; 8 + encoded.len()];
    // SAFETY: `bytes_ptr` checked the range lies in the mapping; nothing writes the region
    // after `create` returned, and this copies bytes out without forming a reference.
    unsafe { core::ptr::copy_nonoverlapping(ptr.as_ptr(), raw.as_mut_ptr(), raw.len()) };
    assert_eq!(raw[..8], (encoded.len() as u64).to_le_bytes());
    assert_eq!(raw[8..], encoded[..]);

    let agent =
        ada_agent::Agent::attach(&ada_shm::SegmentName::parse(controller.segment_name()).unwrap())
            .unwrap();
    assert_eq!(agent.trigger_error(), None);
    let policy = agent.policy().expect("the agent compiled the triggers");
    assert_eq!(policy.triggers(), &set);
    assert_eq!(
        policy
            .symbol_verdict("app::slow_request")
            .map(|t| t.index()),
        Some(0)
    );
    assert_eq!(
        policy.symbol_verdict("DB::WRITE_17").map(|t| t.index()),
        Some(1)
    );
}

#[test]
fn no_triggers_no_region() {
    for builder in [
        ControllerBuilder::new(),
        ControllerBuilder::new().triggers(TriggerSet::default()),
    ] {
        let out = tempfile::tempdir().unwrap();
        let controller = builder.capacity(2).output_dir(out.path()).create().unwrap();
        assert!(
            controller
                .registry()
                .segment()
                .region(RegionKind::Triggers)
                .is_err()
        );
        let agent = ada_agent::Agent::from_registry(controller.registry().clone());
        assert!(agent.policy().is_none());
        assert_eq!(agent.trigger_error(), None);
    }
}
