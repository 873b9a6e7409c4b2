//! Helpers shared by the agent's integration tests: drain a slot's two lanes the way the
//! controller does (submitted rings, then the active ring), free a drained slot, read the symbol
//! table, and name the calling thread.

#![allow(dead_code)]

use ada_registry::{LaneKind, Registry, RegistryConfig, SymbolCursor};
use ada_ringpool::{
    DetailRecords, DrainStats, EventKind, IndexRecord, LaneDrain, RingChunk, SegmentStore,
    index_records,
};

/// Acts as the controller going live: a first heartbeat, then `registry_ready` in steady mode,
/// so agents use their own rings (before it they send index events to the fallback ring).
/// Nothing ticks the heartbeat afterwards, so the agent counts it stalled after a while, which
/// changes nothing these tests look at (a stalled agent still registers and records).
pub fn publish_ready(reg: &Registry) {
    reg.control()
        .tick_heartbeat(ada_shm::clock::MonotonicClock::read());
    reg.control()
        .publish_ready(ada_registry::RegistryMode::PerThreadOnly);
}

/// The index records in the segment's fallback ring (taken by a drain claim), with the
/// (pid, OS thread id) that pushed each.
pub fn drain_fallback(reg: &Registry) -> Vec<(u32, u64, IndexRecord)> {
    let mut claim = reg
        .claim_drain()
        .expect("the test is the segment's only drain");
    let mut consumer = claim.fallback().expect("the segment has a fallback ring");
    let mut out = Vec::new();
    consumer.drain(|r| {
        let bytes: Vec<u8> = r.payload.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let record = index_records(&bytes).next().unwrap().unwrap();
        out.push((r.pid, r.tid, record));
    });
    out
}

/// An in-process registry (see [`in_process_registry`]) whose controller is gone: the control
/// block names a process that has exited, and the registry is ready; with the returned mode
/// thresholds (stalled after 20 ms, dormant 50 ms later, ticked every millisecond) an agent
/// goes dormant as soon as the heartbeat has been still that long.
pub fn gone_controller_registry(capacity: u32) -> (Registry, ada_agent::mode::ModeConfig) {
    const MS: u64 = 1_000_000;
    let reg = in_process_registry(capacity);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    reg.control()
        .initialize(ada_shm::clock::ClockId::Monotonic, gone_pid);
    publish_ready(&reg);
    let config = ada_agent::mode::ModeConfig {
        stall_after_ns: 20 * MS,
        period_ns: MS,
        dormant_after_ns: 50 * MS,
    };
    (reg, config)
}

/// A fresh in-process registry (this test acts as the controller: it publishes ready, see
/// [`publish_ready`]) with `capacity` slots. Its name is unlinked at once: the mapping stays
/// valid (and is shared with forked children), and a registry installed as the global agent,
/// which is never dropped, leaves nothing behind in `/dev/shm`.
pub fn in_process_registry(capacity: u32) -> Registry {
    let reg = Registry::create(
        &RegistryConfig {
            capacity,
            ..Default::default()
        },
        &[],
    )
    .expect("create registry");
    reg.segment().unlink().expect("unlink the segment name");
    publish_ready(&reg);
    reg
}

/// The calling thread's Linux thread id.
pub fn gettid() -> u64 {
    rustix::thread::gettid().as_raw_nonzero().get() as u64
}

/// One drained detail record, copied out of the drain's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailEvent {
    /// The record's kind.
    pub kind: EventKind,
    /// Function id.
    pub function_id: u64,
    /// Thread id as recorded.
    pub thread_id: u32,
    /// Call depth as recorded.
    pub call_depth: u32,
    /// Register values.
    pub registers: Vec<u64>,
    /// Stack window.
    pub stack: Vec<u8>,
    /// Message bytes.
    pub message: Vec<u8>,
    /// The record's own marked flag.
    pub marked: bool,
    /// The ring it came from carried the MARKED flag (`RingChunk::marked`).
    pub ring_marked: bool,
}

/// Everything one slot held.
#[derive(Debug, Default)]
pub struct Drained {
    /// Index-lane records in order.
    pub index: Vec<IndexRecord>,
    /// Whether any index-lane chunk carried the MARKED flag (it never should).
    pub index_ring_marked: bool,
    /// Detail-lane records in order.
    pub detail: Vec<DetailEvent>,
}

fn assert_clean(stats: &DrainStats, what: &str) {
    assert_eq!(
        (
            stats.bad_ring_indices,
            stats.bad_write_pos,
            stats.corrupt_queue,
            stats.lost_rings,
            stats.raced_copies
        ),
        (0, 0, 0, 0, 0),
        "{what}: {stats:?}"
    );
}

/// Drains slot `slot`'s index and detail lanes (`drain_submitted(0, ..)` then `drain_active`),
/// validating every record. Works for `ACTIVE` and `EXITED` slots.
pub fn drain_slot(reg: &Registry, slot: u32) -> Drained {
    let mut claim = reg
        .claim_drain()
        .expect("the test is the segment's only drain");
    let mut out = Drained::default();

    let store = SegmentStore::new(reg, slot, LaneKind::Index).expect("index store");
    let ends = claim.lane(slot, LaneKind::Index).expect("slot in range");
    let mut d = LaneDrain::new(ends, store);
    let mut stats = DrainStats::default();
    {
        let mut visit = |c: RingChunk<'_>| {
            out.index_ring_marked |= c.marked;
            for r in index_records(c.bytes) {
                out.index.push(r.expect("valid index record"));
            }
        };
        stats.add(&d.drain_submitted(0, &mut visit));
        stats.add(&d.drain_active(&mut visit));
    }
    assert_clean(&stats, "index lane");

    let store = SegmentStore::new(reg, slot, LaneKind::Detail).expect("detail store");
    let ends = claim.lane(slot, LaneKind::Detail).expect("slot in range");
    let mut d = LaneDrain::new(ends, store);
    let mut stats = DrainStats::default();
    {
        let mut visit = |c: RingChunk<'_>| {
            for r in DetailRecords::new(c.bytes) {
                let v = r.expect("valid detail record");
                out.detail.push(DetailEvent {
                    kind: v.kind,
                    function_id: v.header.function_id,
                    thread_id: v.header.thread_id,
                    call_depth: v.header.call_depth,
                    registers: v.registers().to_vec(),
                    stack: v.stack.to_vec(),
                    message: v.message.to_vec(),
                    marked: v.marked(),
                    ring_marked: c.marked,
                });
            }
        };
        stats.add(&d.drain_submitted(0, &mut visit));
        stats.add(&d.drain_active(&mut visit));
    }
    assert_clean(&stats, "detail lane");
    out
}

/// Resets both lanes' rings of an `EXITED`, fully drained slot and frees it (`EXITED → FREE`).
pub fn free_slot(reg: &Registry, slot: u32) {
    let mut claim = reg
        .claim_drain()
        .expect("the test is the segment's only drain");
    for kind in [LaneKind::Index, LaneKind::Detail] {
        let store = SegmentStore::new(reg, slot, kind).expect("store");
        let ends = claim.lane(slot, kind).expect("slot in range");
        LaneDrain::new(ends, store).reset_all();
    }
    assert!(
        reg.view().reclaim(slot),
        "slot {slot} was EXITED and is now FREE"
    );
}

/// Every published symbol: `(id, name, address)` in the order the reader delivered them.
pub fn symbols(reg: &Registry) -> Vec<(u64, String, u64)> {
    let mut cursor = SymbolCursor::new();
    let mut out = Vec::new();
    reg.symbols().read_new(&mut cursor, |rec| {
        out.push((rec.id, rec.name.to_owned(), rec.address))
    });
    assert_eq!(cursor.pending(), 0, "every claimed entry is published");
    assert_eq!(cursor.skipped(), 0, "no corrupt entry");
    out
}

/// `(kind, function_id, call_depth)` of each index record, for compact comparisons.
pub fn shape(records: &[IndexRecord]) -> Vec<(u32, u64, u32)> {
    records
        .iter()
        .map(|r| (r.kind, r.function_id, r.call_depth))
        .collect()
}

/// `EventKind::Call` as stored in an index record.
pub const CALL: u32 = EventKind::Call as u32;
/// `EventKind::Return` as stored in an index record.
pub const RETURN: u32 = EventKind::Return as u32;

/// A fresh in-process registry with `capacity` slots and a `Triggers` region of `words` 8-byte
/// words (layout version `version`), filled from `bytes` (zero-padded) as the controller lays it
/// out. The name is unlinked at once, as in [`in_process_registry`].
pub fn registry_with_triggers_region(
    capacity: u32,
    version: u32,
    words: u64,
    bytes: &[u8],
) -> Registry {
    let reg = Registry::create(
        &RegistryConfig {
            capacity,
            ..Default::default()
        },
        &[ada_shm::RegionSpec {
            kind: ada_shm::RegionKind::Triggers,
            version,
            size: words * 8,
        }],
    )
    .expect("create registry");
    reg.segment().unlink().expect("unlink the segment name");
    publish_ready(&reg);
    let region = reg
        .segment()
        .region(ada_shm::RegionKind::Triggers)
        .expect("triggers region");
    let cells = reg
        .segment()
        .view_slice::<std::sync::atomic::AtomicU64>(region.at(0).unwrap(), region.size / 8)
        .expect("region words");
    for (cell, chunk) in cells.iter().zip(bytes.chunks(8)) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        // Relaxed: the test is the only thread touching the segment yet.
        cell.store(
            u64::from_ne_bytes(word),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    reg
}

/// A registry whose `Triggers` region holds `set`, laid out as the controller writes it.
pub fn registry_with_triggers(capacity: u32, set: &ada_persist::TriggerSet) -> Registry {
    let encoded = set.encode();
    let mut bytes = (encoded.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&encoded);
    let words = (bytes.len() as u64).div_ceil(8);
    registry_with_triggers_region(capacity, ada_shm::TRIGGERS_REGION_VERSION, words, &bytes)
}
