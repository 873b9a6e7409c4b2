//! What the ringpool benchmarks share: one registered index lane of a fresh segment.

use ada_registry::{LaneKind, Registry, RegistryConfig, SlotOwner};
use ada_ringpool::{LaneDrain, LaneWriter, PoolPolicy, SegmentStore};

/// A writer of a segment's index lane under policy `P`.
pub type Writer<P> = LaneWriter<'static, SegmentStore<'static>, P>;
/// The drain of that lane.
pub type Drain = LaneDrain<'static, SegmentStore<'static>>;

/// A registered index lane of a fresh segment made with `config` (leaked: it lives for the
/// whole benchmark), its writer under `policy` and its drain.
pub fn index_lane<P: PoolPolicy>(config: &RegistryConfig, policy: P) -> (Writer<P>, Drain) {
    let reg: &'static Registry = Box::leak(Box::new(Registry::create(config, &[]).unwrap()));
    let registration = reg.view().register(SlotOwner::current_thread()).unwrap();
    let slot = registration.slot.index();
    // The slot stays registered for the whole benchmark.
    std::mem::forget(registration.slot);
    let claim = Box::leak(Box::new(reg.claim_drain().unwrap()));
    let drain_ends = claim.lane(slot, LaneKind::Index).unwrap();
    let store = || SegmentStore::new(reg, slot, LaneKind::Index).unwrap();
    (
        LaneWriter::new(registration.index, store(), policy),
        LaneDrain::new(drain_ends, store()),
    )
}
