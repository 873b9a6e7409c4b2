//! The registration algorithm, written against borrowed control words so it runs on a mapping
//! (normal build) and on heap memory (loom and shuttle models) alike.
//!
//! Claim: scan from a rotating hint for a `FREE` slot and CAS it to `CLAIMED` (lock-free: a
//! failed CAS means another thread won that slot, and we move on; the scan is bounded by the
//! capacity). Initialise the owner and both lanes privately, then publish `ACTIVE` (Release).
//! Registration returns a move-only [`Registration`]: the [`ThreadSlot`] handle and the thread's
//! ends of both lanes' queues ([`LaneProducer`]), which exist nowhere else.
//! Unregister: the owner's handle moves `ACTIVE` → `EXITED` by a compare-and-swap that names its
//! generation, so a stale handle can never evict a later owner. Reclaim: the drain, after
//! persisting what the slot held, moves `EXITED` → `FREE` and bumps `reclaim_epoch`, which is
//! what a thread that found the registry full waits for before it scans again.

use crate::control::ControlBlock;
use crate::drain_claim::DrainClaim;
use crate::endpoints::LaneProducer;
use crate::error::RegistryError;
use crate::geometry::RingGeometry;
use crate::lane::LaneKind;
use crate::slot::{SlotOwner, SlotState, ThreadLaneSet};
use ada_backpressure::{BackpressureConfig, DropPolicy, LanePolicies};
use ada_shm::CacheLine;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

/// What the controller decides about backpressure for the whole session and every agent
/// applies: each lane's drop policy and the stability period (the watermarks follow from each
/// lane's pool size, [`BackpressureConfig::for_pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackpressureSettings {
    /// Each lane's drop policy (default `index=newest,detail=oldest`).
    pub policies: LanePolicies,
    /// How long a lane stays in RECOVERY before it becomes NORMAL, unless its free rings fall
    /// to the low watermark meanwhile (nanoseconds; default
    /// [`BackpressureConfig::DEFAULT_STABILITY_NS`]).
    pub stability_ns: u64,
}

impl Default for BackpressureSettings {
    fn default() -> Self {
        BackpressureSettings {
            policies: LanePolicies::default(),
            stability_ns: BackpressureConfig::DEFAULT_STABILITY_NS,
        }
    }
}

impl BackpressureSettings {
    /// The state machine's thresholds for a lane of `pool_rings` rings.
    pub fn config(&self, pool_rings: u32) -> BackpressureConfig {
        BackpressureConfig {
            stability_ns: self.stability_ns,
            ..BackpressureConfig::for_pool(pool_rings)
        }
    }
}

/// Immutable registry parameters plus shared counters.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct RegistryParams {
    capacity: AtomicU32,
    index_rings: AtomicU32,
    index_ring_bytes: AtomicU32,
    detail_rings: AtomicU32,
    detail_ring_bytes: AtomicU32,
    accepting: AtomicU32,
    /// Drop policies: byte 0 the index lane's, byte 1 the detail lane's
    /// (`ada_backpressure::DropPolicy` encodings).
    drop_policies: AtomicU32,
    /// The backpressure stability period (nanoseconds).
    stability_ns: AtomicU64,
}

/// Counters every registering thread updates.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct RegistryStats {
    claim_hint: AtomicU32,
    reclaim_epoch: AtomicU32,
    registrations: AtomicU64,
    capacity_failures: AtomicU64,
    unregistered_drops: AtomicU64,
    /// Of `unregistered_drops`, the index lane's events ([1]: the detail lane's).
    unregistered_by_lane: [AtomicU64; 2],
}

/// The registry header at the start of the registry region; the slots follow it.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct RegistryHeader {
    params: CacheLine<RegistryParams>,
    stats: CacheLine<RegistryStats>,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic inside padding.
unsafe impl ada_shm::ShmSafe for RegistryHeader {}

#[cfg(not(any(loom, shuttle)))]
const _: () = assert!(core::mem::size_of::<RegistryHeader>() == 256);

/// Layout version of the registry region. 2: the backpressure settings in the header, the
/// per-lane counts of a refused thread's events, and each lane's state word and loss counters
/// by cause (an agent and a controller of different layouts refuse each other at attach).
/// 3: each lane's `spilled` counter (events spilled to the shared fallback ring).
pub const REGISTRY_VERSION: u32 = 3;

/// Registry-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryCounters {
    /// Successful registrations since creation.
    pub registrations: u64,
    /// Registrations refused because every slot was taken.
    pub capacity_failures: u64,
    /// Events from threads that could not register, counted as dropped (both lanes).
    pub unregistered_drops: u64,
    /// Of `unregistered_drops`, per lane, indexed by [`LaneKind`] (`[index, detail]`).
    pub unregistered_by_lane: [u64; 2],
}

impl RegistryHeader {
    /// Writes the parameters (creator only, before publication).
    pub fn initialize(&self, capacity: u32, geometry: &RingGeometry) {
        let p = &self.params;
        // Relaxed (all): private until the segment header's magic is published.
        p.capacity.store(capacity, Ordering::Relaxed);
        p.index_rings.store(geometry.index_rings, Ordering::Relaxed);
        p.index_ring_bytes
            .store(geometry.index_ring_bytes, Ordering::Relaxed);
        p.detail_rings
            .store(geometry.detail_rings, Ordering::Relaxed);
        p.detail_ring_bytes
            .store(geometry.detail_ring_bytes, Ordering::Relaxed);
        p.accepting.store(1, Ordering::Relaxed);
        self.set_backpressure(&BackpressureSettings::default());
    }

    /// Writes the backpressure settings every agent applies (creator only, before publication;
    /// [`initialize`](Self::initialize) writes the defaults).
    pub fn set_backpressure(&self, settings: &BackpressureSettings) {
        let p = &self.params;
        let policies = u32::from(settings.policies.index.as_u8())
            | (u32::from(settings.policies.detail.as_u8()) << 8);
        // Relaxed (both): private until the segment header's magic is published.
        p.drop_policies.store(policies, Ordering::Relaxed);
        p.stability_ns
            .store(settings.stability_ns, Ordering::Relaxed);
    }

    /// The backpressure settings as written, validated (untrusted: another process may have
    /// rewritten them): an unknown policy byte or a stability period beyond
    /// [`BackpressureConfig::MAX_STABILITY_NS`] is refused.
    pub fn backpressure(&self) -> Result<BackpressureSettings, RegistryError> {
        let p = &self.params;
        // Relaxed (both): immutable after creation.
        let raw = p.drop_policies.load(Ordering::Relaxed);
        let stability_ns = p.stability_ns.load(Ordering::Relaxed);
        let policy =
            |byte: u32| {
                u8::try_from(byte).ok().and_then(DropPolicy::from_u8).ok_or(
                    RegistryError::BadHeader("unknown drop policy in the registry header"),
                )
            };
        if raw >> 16 != 0 {
            return Err(RegistryError::BadHeader(
                "unknown drop policy in the registry header",
            ));
        }
        let policies = LanePolicies {
            index: policy(raw & 0xff)?,
            detail: policy((raw >> 8) & 0xff)?,
        };
        if stability_ns > BackpressureConfig::MAX_STABILITY_NS {
            return Err(RegistryError::BadHeader(
                "backpressure stability period in the registry header is out of range",
            ));
        }
        Ok(BackpressureSettings {
            policies,
            stability_ns,
        })
    }

    /// Capacity as written (untrusted until checked against the region size).
    pub fn capacity(&self) -> u32 {
        // Relaxed: immutable after creation.
        self.params.capacity.load(Ordering::Relaxed)
    }

    /// Geometry as written (untrusted until validated).
    pub fn geometry(&self) -> RingGeometry {
        let p = &self.params;
        // Relaxed (all): immutable after creation.
        RingGeometry {
            index_rings: p.index_rings.load(Ordering::Relaxed),
            index_ring_bytes: p.index_ring_bytes.load(Ordering::Relaxed),
            detail_rings: p.detail_rings.load(Ordering::Relaxed),
            detail_ring_bytes: p.detail_ring_bytes.load(Ordering::Relaxed),
        }
    }

    /// Open or close registration (controller).
    pub fn set_accepting(&self, accepting: bool) {
        // Release: pairs with the Acquire in `accepting`.
        self.params
            .accepting
            .store(accepting as u32, Ordering::Release);
    }

    /// Whether new registrations are allowed.
    pub fn accepting(&self) -> bool {
        // Acquire: pairs with `set_accepting`.
        self.params.accepting.load(Ordering::Acquire) != 0
    }

    /// Bumped each time a slot is freed; a thread refused for capacity rescans only after it moves.
    pub fn reclaim_epoch(&self) -> u32 {
        // Acquire: pairs with the Release in `bump_reclaim_epoch`, so the freed slot is visible.
        self.stats.reclaim_epoch.load(Ordering::Acquire)
    }

    fn bump_reclaim_epoch(&self) {
        // Release: a thread that sees the new epoch then sees the freed slot's FREE state.
        self.stats.reclaim_epoch.fetch_add(1, Ordering::Release);
    }

    /// Counts `n` events of `lane` from a thread that holds no slot as dropped.
    pub fn count_unregistered_drops(&self, lane: LaneKind, n: u64) {
        // Relaxed (both): statistics; no other memory is published through them.
        self.stats
            .unregistered_drops
            .fetch_add(n, Ordering::Relaxed);
        self.stats.unregistered_by_lane[lane as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Registry-wide counters.
    pub fn counters(&self) -> RegistryCounters {
        let s = &self.stats;
        // Relaxed (all): statistics.
        RegistryCounters {
            registrations: s.registrations.load(Ordering::Relaxed),
            capacity_failures: s.capacity_failures.load(Ordering::Relaxed),
            unregistered_drops: s.unregistered_drops.load(Ordering::Relaxed),
            unregistered_by_lane: [
                s.unregistered_by_lane[0].load(Ordering::Relaxed),
                s.unregistered_by_lane[1].load(Ordering::Relaxed),
            ],
        }
    }
}

/// The calling thread's ownership of one slot generation. Move-only: dropping it (or
/// [`unregister`](Self::unregister)) hands the slot to the drain (`ACTIVE` → `EXITED`), which
/// persists what its rings hold and then frees it.
///
/// A handle whose slot was already given up (its process was declared dead, or the slot was
/// reclaimed and claimed by a later thread) changes nothing: the transition is a
/// compare-and-swap of *(generation, ACTIVE)*.
///
/// ```
/// use ada_registry::{HeapRegistry, RingGeometry, SlotOwner, SlotState};
///
/// let registry = HeapRegistry::new(2, RingGeometry::default());
/// let owner = SlotOwner { thread_id: 1, pid: 1, generation: 0, registered_ns: 0 };
/// let registration = registry.view().register(owner)?;
/// let lanes = registration.slot.lanes();
/// assert_eq!(lanes.state(), Ok(SlotState::Active));
/// drop(registration); // hands the slot to the drain
/// assert_eq!(lanes.state(), Ok(SlotState::Exited));
/// # Ok::<(), ada_registry::RegistryError>(())
/// ```
///
/// The handle cannot be copied, so there is never a second one to unregister with:
///
/// ```compile_fail
/// use ada_registry::{HeapRegistry, RingGeometry, SlotOwner};
///
/// let registry = HeapRegistry::new(2, RingGeometry::default());
/// let owner = SlotOwner { thread_id: 1, pid: 1, generation: 0, registered_ns: 0 };
/// let registration = registry.view().register(owner).unwrap();
/// let copy = registration.slot.clone(); // error[E0599]: no method named `clone`
/// ```
#[derive(Debug)]
pub struct ThreadSlot<'a> {
    lanes: &'a ThreadLaneSet,
    index: u32,
    generation: u32,
    released: bool,
}

impl<'a> ThreadSlot<'a> {
    /// The slot's lanes (read-only views; the queue ends came with the [`Registration`]).
    pub fn lanes(&self) -> &'a ThreadLaneSet {
        self.lanes
    }

    /// Slot index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Claim generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Gives the slot to the drain now. `Err(StaleSlot)` if the slot no longer belonged to this
    /// handle's generation, in which case nothing was changed.
    pub fn unregister(mut self) -> Result<(), RegistryError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), RegistryError> {
        if std::mem::replace(&mut self.released, true) {
            return Ok(());
        }
        if self.lanes.exit_generation(self.generation) {
            Ok(())
        } else {
            Err(RegistryError::StaleSlot {
                slot: self.index,
                generation: self.generation,
            })
        }
    }
}

impl Drop for ThreadSlot<'_> {
    fn drop(&mut self) {
        // A stale handle changes nothing; there is nobody to tell at drop.
        let _ = self.release();
    }
}

/// A successful registration: the slot handle and the thread's ends of both lanes.
#[derive(Debug)]
pub struct Registration<'a> {
    /// The slot (dropping it unregisters).
    pub slot: ThreadSlot<'a>,
    /// The index lane's queue ends.
    pub index: LaneProducer<'a>,
    /// The detail lane's queue ends.
    pub detail: LaneProducer<'a>,
}

/// What the drain sees of a slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotView<'a> {
    /// Slot index.
    pub index: u32,
    /// `Active` or `Exited`.
    pub state: SlotState,
    /// Owner identity.
    pub owner: SlotOwner,
    /// The slot's lanes.
    pub lanes: &'a ThreadLaneSet,
}

/// The registry as borrowed control words: the algorithm's whole world.
#[derive(Debug, Clone, Copy)]
pub struct RegistryRef<'a> {
    header: &'a RegistryHeader,
    slots: &'a [ThreadLaneSet],
    geometry: RingGeometry,
}

impl<'a> RegistryRef<'a> {
    /// Wraps validated parts: `slots.len()` is the capacity, `geometry` was validated.
    pub fn new(
        header: &'a RegistryHeader,
        slots: &'a [ThreadLaneSet],
        geometry: RingGeometry,
    ) -> Self {
        RegistryRef {
            header,
            slots,
            geometry,
        }
    }

    /// Initialises a fresh registry (creator only).
    pub fn initialize(&self) {
        self.header
            .initialize(self.slots.len() as u32, &self.geometry);
        for (i, slot) in self.slots.iter().enumerate() {
            slot.set_slot_index(i as u32);
        }
    }

    /// The header.
    pub fn header(&self) -> &'a RegistryHeader {
        self.header
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The validated geometry.
    pub fn geometry(&self) -> RingGeometry {
        self.geometry
    }

    /// Slot `index`, if in range.
    pub fn slot(&self, index: u32) -> Option<&'a ThreadLaneSet> {
        self.slots.get(index as usize)
    }

    /// Claims a free slot for `owner` (its `generation` is ignored and assigned here).
    pub fn register(&self, owner: SlotOwner) -> Result<Registration<'a>, RegistryError> {
        if !self.header.accepting() {
            return Err(RegistryError::Closed);
        }
        let cap = self.slots.len() as u32;
        // Relaxed: the hint only spreads claimers over the slots; correctness is the CAS.
        let start = self.header.stats.claim_hint.load(Ordering::Relaxed) % cap.max(1);
        for step in 0..cap {
            let index = (start + step) % cap;
            let slot = &self.slots[index as usize];
            if slot.try_claim() {
                let generation =
                    slot.activate(owner, self.geometry.index_rings, self.geometry.detail_rings);
                // Relaxed: hint and statistic.
                self.header
                    .stats
                    .claim_hint
                    .store(index + 1, Ordering::Relaxed);
                // Relaxed: a statistic.
                self.header
                    .stats
                    .registrations
                    .fetch_add(1, Ordering::Relaxed);
                // SAFETY: our CAS FREE → CLAIMED made this thread the slot's only owner for this
                // generation and `activate` initialised both lanes; these are its only ends.
                let (index_ends, detail_ends) = unsafe {
                    (
                        LaneProducer::new_unchecked(slot.index_lane(), LaneKind::Index, index),
                        LaneProducer::new_unchecked(slot.detail_lane(), LaneKind::Detail, index),
                    )
                };
                return Ok(Registration {
                    slot: ThreadSlot {
                        lanes: slot,
                        index,
                        generation,
                        released: false,
                    },
                    index: index_ends,
                    detail: detail_ends,
                });
            }
        }
        // Relaxed: a statistic.
        self.header
            .stats
            .capacity_failures
            .fetch_add(1, Ordering::Relaxed);
        Err(RegistryError::Full { capacity: cap })
    }

    /// Controller: every `ACTIVE` slot owned by `pid` becomes `EXITED` (the process died without
    /// unregistering). Returns how many slots were marked. A slot left `CLAIMED` by a process
    /// that died mid-registration holds no events; it stays unusable (its owner pid is not yet
    /// trustworthy in that state) and is visible in [`census`](Self::census). Each transition
    /// names the generation whose owner was checked, so a slot that changed hands meanwhile is
    /// left alone.
    pub fn mark_process_dead(&self, pid: u32) -> u32 {
        let mut marked = 0;
        for slot in self.slots {
            let (state, generation) = slot.state_and_generation();
            let live = matches!(state, Ok(SlotState::Active));
            if live && slot.owner().pid == pid && slot.mark_owner_dead(generation) {
                marked += 1;
            }
        }
        marked
    }

    /// Drain: frees an `EXITED` slot after its rings were drained and reset. Returns whether the
    /// slot was `EXITED` (and is now `FREE`).
    pub fn reclaim(&self, index: u32) -> bool {
        let Some(slot) = self.slots.get(index as usize) else {
            return false;
        };
        let freed = slot.release_exited();
        if freed {
            self.header.bump_reclaim_epoch();
        }
        freed
    }

    /// Drain: the slots that are `ACTIVE` or `EXITED` right now, in index order. Slots that
    /// change state during the walk are seen in their old or new state; a thread that registers
    /// after the walk passed its slot is seen on the next walk.
    pub fn live_slots(&self) -> impl Iterator<Item = SlotView<'a>> + 'a {
        self.slots.iter().enumerate().filter_map(|(i, lanes)| {
            let (state, generation) = lanes.state_and_generation();
            let state = state.ok()?;
            matches!(state, SlotState::Active | SlotState::Exited).then(|| SlotView {
                index: i as u32,
                state,
                // The generation read together with the state (the owner fields were published
                // with it); `owner()` alone could see a later generation.
                owner: SlotOwner {
                    generation,
                    ..lanes.owner()
                },
                lanes,
            })
        })
    }

    /// Number of slots in each state `[free, claimed, active, exited, invalid]`.
    pub fn census(&self) -> [u32; 5] {
        let mut counts = [0u32; 5];
        for slot in self.slots {
            let i = match slot.state() {
                Ok(s) => s as usize,
                Err(_) => 4,
            };
            counts[i] += 1;
        }
        counts
    }

    /// Lane `kind` of slot `index`, if in range.
    pub fn lane(&self, index: u32, kind: LaneKind) -> Option<&'a crate::lane::Lane> {
        self.slot(index).map(|s| s.lane(kind))
    }
}

/// A registry on the heap, for model checking and unit tests.
#[derive(Debug)]
pub struct HeapRegistry {
    control: ControlBlock,
    header: RegistryHeader,
    slots: Box<[ThreadLaneSet]>,
    geometry: RingGeometry,
}

impl HeapRegistry {
    /// A fresh registry of `capacity` slots with the given geometry.
    pub fn new(capacity: u32, geometry: RingGeometry) -> Self {
        let reg = HeapRegistry {
            control: ControlBlock::default(),
            header: RegistryHeader::default(),
            slots: (0..capacity).map(|_| ThreadLaneSet::default()).collect(),
            geometry,
        };
        reg.view().initialize();
        reg
    }

    /// The borrowed view the algorithm runs on.
    pub fn view(&self) -> RegistryRef<'_> {
        RegistryRef::new(&self.header, &self.slots, self.geometry)
    }

    /// The control block.
    pub fn control(&self) -> &ControlBlock {
        &self.control
    }

    /// Claims the drain for `claimant` (a non-zero id; a second claim is refused until the
    /// first, and every lane end it handed out, is dropped).
    pub fn claim_drain(&self, claimant: u32) -> Result<DrainClaim<'_>, RegistryError> {
        DrainClaim::acquire(&self.control, self.view(), claimant, |_| false)
    }
}
