//! `LaneDrain::drain_active_in_order` delivers a lane's records in the order the thread wrote
//! them, even when the thread submits a ring between the drain's take of the submitted rings and
//! its copy of the active one (the new active ring holds newer records than the submitted one).

use ada_registry::{Lane, LaneKind};
use ada_ringpool::{
    DropNewest, EventKind, HeapStore, IndexRecord, LaneDrain, LaneWriter, index_records,
};

fn call(id: u64) -> IndexRecord {
    IndexRecord {
        function_id: id,
        timestamp_ns: id,
        kind: EventKind::Call as u32,
        ..Default::default()
    }
}

#[test]
fn a_ring_submitted_between_the_two_takes_comes_before_the_new_active_ring() {
    let mut lane = Lane::default();
    let store = HeapStore::new(&lane, 2, 128 + 64); // 2 rings of 2 records
    let (thread_ends, drain_ends) = lane.split(2, LaneKind::Index, 0);
    let mut writer = LaneWriter::new(thread_ends, &store, DropNewest);
    let mut drain = LaneDrain::new(drain_ends, &store);
    let mut ids = Vec::new();
    let mut take = |chunk: ada_ringpool::RingChunk<'_>| {
        ids.extend(index_records(chunk.bytes).map(|r| r.unwrap().function_id));
    };
    writer.write_index(&call(1));
    // The drain's pass: submitted rings first (none yet) ...
    assert_eq!(drain.drain_submitted(0, &mut take).rings, 0);
    // ... the thread fills ring 0 (1, 2), submits it and writes 3 into ring 1 ...
    writer.write_index(&call(2));
    writer.write_index(&call(3));
    // ... then the active ring: ring 0's records come first.
    let stats = drain.drain_active_in_order(&mut take);
    assert_eq!(stats.rings, 1, "the submitted ring was taken first");
    drain.drain_submitted(0, &mut take);
    drain.drain_active_in_order(&mut take);
    assert_eq!(ids, [1, 2, 3]);
}
