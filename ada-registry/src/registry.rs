//! [`Registry`]: the registry placed in a shared-memory segment (normal build only).
//!
//! The controller creates it ([`Registry::create`]); agents attach by name
//! ([`Registry::attach`]). Attach treats the segment as untrusted: the control and registry
//! regions must be exactly as large as the capacity and geometry in the header say, the geometry
//! must be within limits, and the rings region must hold every slot's rings. The symbols
//! region must be exactly as large as the sizes its own header states, and those sizes must be
//! within limits. The fallback region (absent when the creator chose no fallback ring) must
//! have a supported version, a record count within limits and exactly the size that count
//! needs.

use crate::control::{CONTROL_VERSION, ControlBlock};
use crate::core::{BackpressureSettings, REGISTRY_VERSION, RegistryHeader, RegistryRef};
use crate::drain_claim::DrainClaim;
use crate::error::RegistryError;
use crate::fallback::{
    DEFAULT_FALLBACK_RECORDS, FALLBACK_HEADER_BYTES, FALLBACK_VERSION, FallbackHeader, FallbackRef,
    FallbackSlot,
};
use crate::geometry::{DEFAULT_CAPACITY, MAX_CAPACITY, RingGeometry};
use crate::lane::LaneKind;
use crate::slot::ThreadLaneSet;
use crate::symbols::{
    SYMBOLS_VERSION, SymbolEntry, SymbolHeader, SymbolTableConfig, SymbolTableRef,
};
use ada_shm::clock::ClockId;
use ada_shm::sync::{AtomicU64, Ordering};
use ada_shm::{AttachOptions, Off, RegionKind, RegionSpec, Segment, SegmentName};
use std::sync::Arc;

/// Layout version of the rings region (its contents belong to `ada-ringpool`). 3: loss marker
/// records (`EventsLost`, kind 6) in both lanes.
pub const RINGS_VERSION: u32 = 3;

/// What the creator chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Slots (threads that can be registered at once). Default 64.
    pub capacity: u32,
    /// Ring pools per lane.
    pub geometry: RingGeometry,
    /// Sizes of the symbol string table.
    pub symbols: SymbolTableConfig,
    /// Drop policies and the stability period every agent applies.
    pub backpressure: BackpressureSettings,
    /// Records in the shared fallback ring (a power of two, default 4096); 0 = no fallback
    /// region.
    pub fallback_records: u32,
    /// The clock agents stamp events with (default [`ClockId::Monotonic`]); written in the
    /// segment header and the control block.
    pub clock: ClockId,
    /// That clock's rate in stamps per second, for agents that compare periods with stamps
    /// (0 = nanoseconds; see [`ControlBlock::stamps_per_second`]).
    pub stamps_per_second: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            capacity: DEFAULT_CAPACITY,
            geometry: RingGeometry::default(),
            symbols: SymbolTableConfig::default(),
            backpressure: BackpressureSettings::default(),
            fallback_records: DEFAULT_FALLBACK_RECORDS,
            clock: ClockId::Monotonic,
            stamps_per_second: 0,
        }
    }
}

impl RegistryConfig {
    /// Checks capacity, geometry, symbol table and fallback ring sizes.
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(RegistryError::BadHeader(
                "capacity must be between 1 and 4096",
            ));
        }
        self.geometry.validate()?;
        self.symbols.validate()?;
        if self.fallback_records != 0 {
            crate::fallback::validate_records(self.fallback_records)
                .map_err(RegistryError::BadHeader)?;
        }
        if self.backpressure.stability_ns > ada_backpressure::BackpressureConfig::MAX_STABILITY_NS {
            return Err(RegistryError::BadHeader(
                "backpressure stability period must be at most one minute",
            ));
        }
        Ok(())
    }

    /// The regions the registry needs, to pass to [`Segment::create`] (a controller may add
    /// regions of its own). The fallback region is left out when `fallback_records` is 0.
    pub fn regions(&self) -> Vec<RegionSpec> {
        let mut regions = vec![
            RegionSpec {
                kind: RegionKind::Control,
                version: CONTROL_VERSION,
                size: size_of::<ControlBlock>() as u64,
            },
            RegionSpec {
                kind: RegionKind::Registry,
                version: REGISTRY_VERSION,
                size: registry_region_size(self.capacity),
            },
            RegionSpec {
                kind: RegionKind::Rings,
                version: RINGS_VERSION,
                size: u64::from(self.capacity) * self.geometry.slot_ring_bytes(),
            },
            RegionSpec {
                kind: RegionKind::Symbols,
                version: SYMBOLS_VERSION,
                size: self.symbols.region_size(),
            },
        ];
        if self.fallback_records != 0 {
            regions.push(RegionSpec {
                kind: RegionKind::Fallback,
                version: FALLBACK_VERSION,
                size: crate::fallback::region_size(self.fallback_records),
            });
        }
        regions
    }

    /// Shared memory one registered thread costs at this geometry: its rings plus its slot.
    pub fn bytes_per_thread(&self) -> u64 {
        self.geometry.slot_ring_bytes() + size_of::<ThreadLaneSet>() as u64
    }
}

fn registry_region_size(capacity: u32) -> u64 {
    size_of::<RegistryHeader>() as u64 + u64::from(capacity) * size_of::<ThreadLaneSet>() as u64
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

struct Inner {
    uid: u64,
    /// The session clock from the segment header.
    clock: ClockId,
    segment: Segment,
    control: Off<ControlBlock>,
    header: Off<RegistryHeader>,
    slots: Off<ThreadLaneSet>,
    rings_offset: u64,
    capacity: u32,
    geometry: RingGeometry,
    symbols: SymbolParts,
    fallback: Option<FallbackParts>,
    backpressure: BackpressureSettings,
}

/// Where the validated fallback ring lies.
struct FallbackParts {
    header: Off<FallbackHeader>,
    slots: Off<FallbackSlot>,
    records: u32,
}

/// Where the validated symbol table lies.
struct SymbolParts {
    header: Off<SymbolHeader>,
    entries: Off<SymbolEntry>,
    words: Off<ada_shm::sync::AtomicU64>,
    config: SymbolTableConfig,
}

/// A registry in a mapped segment. Cheap to clone (reference-counted); the mapping lives until
/// the last clone (and every thread registration, which holds one) is gone.
///
/// ```
/// use ada_registry::{Registry, RegistryConfig, SlotOwner, SlotState};
///
/// let reg = Registry::create(&RegistryConfig { capacity: 4, ..Default::default() }, &[])?;
/// let registration = reg.view().register(SlotOwner::current_thread())?;
/// let index = registration.slot.index();
///
/// // The drain sees the thread's slot, owned by this process.
/// let live: Vec<_> = reg.view().live_slots().collect();
/// assert_eq!((live.len(), live[0].index, live[0].state), (1, index, SlotState::Active));
/// assert_eq!(live[0].owner.pid, std::process::id());
///
/// // Dropping the registration hands the slot to the drain, which frees it after draining.
/// drop(registration);
/// let live: Vec<_> = reg.view().live_slots().collect();
/// assert_eq!(live[0].state, SlotState::Exited);
/// assert!(reg.view().reclaim(index));
/// assert_eq!(reg.view().live_slots().count(), 0);
/// # Ok::<(), ada_registry::RegistryError>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("segment", &self.inner.segment)
            .field("capacity", &self.inner.capacity)
            .field("geometry", &self.inner.geometry)
            .finish()
    }
}

impl Registry {
    /// Creates a segment holding a fresh registry, plus any `extra` regions the caller needs.
    pub fn create(
        config: &RegistryConfig,
        extra: &[RegionSpec],
    ) -> Result<Registry, RegistryError> {
        config.validate()?;
        let mut specs = config.regions();
        specs.extend_from_slice(extra);
        let segment = Segment::create(&specs, config.clock)?;
        // Write the parameters before validating the segment exactly as an attacher would.
        let pid = segment.header().creator_pid;
        let control = segment.region(RegionKind::Control)?.at::<ControlBlock>(0)?;
        let control_block = segment.view(control)?;
        control_block.initialize(config.clock, pid);
        control_block.set_stamps_per_second(config.stamps_per_second);
        let reg_region = segment.region(RegionKind::Registry)?;
        let header = segment.view(reg_region.at::<RegistryHeader>(0)?)?;
        let slots = segment.view_slice(
            reg_region.at::<ThreadLaneSet>(size_of::<RegistryHeader>() as u64)?,
            u64::from(config.capacity),
        )?;
        RegistryRef::new(header, slots, config.geometry).initialize();
        header.set_backpressure(&config.backpressure);
        let parts = symbol_parts(&segment.region(RegionKind::Symbols)?, config.symbols)?;
        symbol_view(&segment, &parts)?.initialize();
        if config.fallback_records != 0 {
            let region = segment.region(RegionKind::Fallback)?;
            let parts = fallback_parts(&region, config.fallback_records)?;
            fallback_view(&segment, &parts)?.initialize();
        }
        Registry::from_segment(segment)
    }

    /// Attaches to the registry in segment `name`, validating it.
    pub fn attach(name: &SegmentName, options: AttachOptions) -> Result<Registry, RegistryError> {
        Registry::from_segment(Segment::attach(name, options)?)
    }

    /// Validates the registry regions of a segment (created or attached) and wraps it.
    pub fn from_segment(segment: Segment) -> Result<Registry, RegistryError> {
        let control_region = segment.region(RegionKind::Control)?;
        if control_region.version != CONTROL_VERSION {
            return Err(RegistryError::BadHeader(
                "control region version is not supported",
            ));
        }
        let control = control_region.at::<ControlBlock>(0)?;
        let reg_region = segment.region(RegionKind::Registry)?;
        if reg_region.version != REGISTRY_VERSION {
            return Err(RegistryError::BadHeader(
                "registry region version is not supported",
            ));
        }
        let header_off = reg_region.at::<RegistryHeader>(0)?;
        let header = segment.view(header_off)?;
        let capacity = header.capacity();
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(RegistryError::BadHeader("capacity is out of range"));
        }
        if reg_region.size != registry_region_size(capacity) {
            return Err(RegistryError::BadHeader(
                "registry region size does not match capacity",
            ));
        }
        let slots = reg_region.at::<ThreadLaneSet>(size_of::<RegistryHeader>() as u64)?;
        segment.view_slice(slots, u64::from(capacity))?;
        let geometry = header.geometry();
        geometry.validate()?;
        let rings = segment.region(RegionKind::Rings)?;
        if rings.version != RINGS_VERSION {
            return Err(RegistryError::BadHeader(
                "rings region version is not supported",
            ));
        }
        if rings.size < u64::from(capacity) * geometry.slot_ring_bytes() {
            return Err(RegistryError::BadHeader(
                "rings region is smaller than the geometry needs",
            ));
        }
        let symbols = validate_symbols(&segment)?;
        let fallback = validate_fallback(&segment)?;
        let backpressure = header.backpressure()?;
        let clock = segment.header().clock()?;
        let inner = Inner {
            backpressure,
            clock,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed), // Relaxed: a unique id, nothing else.
            control,
            header: header_off,
            slots,
            rings_offset: rings.offset,
            capacity,
            geometry,
            symbols,
            fallback,
            segment,
        };
        Ok(Registry {
            inner: Arc::new(inner),
        })
    }

    /// The clock agents stamp events with, from the segment header (validated at attach: an
    /// unknown id refuses the segment).
    pub fn clock(&self) -> ClockId {
        self.inner.clock
    }

    /// The session's backpressure settings (validated at attach).
    pub fn backpressure(&self) -> BackpressureSettings {
        self.inner.backpressure
    }

    /// The segment.
    pub fn segment(&self) -> &Segment {
        &self.inner.segment
    }

    /// Process-unique id of this attachment: two `Registry` values have the same uid exactly
    /// when they are clones of one attachment (and share its mapping).
    pub fn uid(&self) -> u64 {
        self.inner.uid
    }

    /// The control block.
    pub fn control(&self) -> &ControlBlock {
        self.inner
            .segment
            .view(self.inner.control)
            .expect("validated at attach")
    }

    /// The registry header.
    pub fn header(&self) -> &RegistryHeader {
        self.inner
            .segment
            .view(self.inner.header)
            .expect("validated at attach")
    }

    /// The borrowed view the algorithms run on.
    pub fn view(&self) -> RegistryRef<'_> {
        let slots = self
            .inner
            .segment
            .view_slice(self.inner.slots, u64::from(self.inner.capacity))
            .expect("validated at attach");
        RegistryRef::new(self.header(), slots, self.inner.geometry)
    }

    /// Claims this segment's drain for the calling process: refused with
    /// [`RegistryError::DrainClaimed`] while another drain (in this process or a live other
    /// one) holds it; taken over from a holder process that has died.
    pub fn claim_drain(&self) -> Result<DrainClaim<'_>, RegistryError> {
        let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
        DrainClaim::acquire(self.control(), self.view(), me, |holder| {
            holder != me && !ada_shm::process::exists(holder)
        })
        .map(|claim| claim.with_fallback(self.fallback()))
    }

    /// The shared fallback ring (producers push into it; the drain takes its consumer from
    /// [`DrainClaim::fallback`]), or `None` if the segment has none.
    pub fn fallback(&self) -> Option<FallbackRef<'_>> {
        let parts = self.inner.fallback.as_ref()?;
        Some(fallback_view(&self.inner.segment, parts).expect("validated at attach"))
    }

    /// The symbol string table (agents register names, the controller reads them).
    pub fn symbols(&self) -> SymbolTableRef<'_> {
        symbol_view(&self.inner.segment, &self.inner.symbols).expect("validated at attach")
    }

    /// Slot count.
    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }

    /// Ring pool sizes.
    pub fn geometry(&self) -> RingGeometry {
        self.inner.geometry
    }

    /// Segment offset and size of ring `ring` of lane `kind` of slot `slot`, or `None` if any
    /// index is out of range. Computed from the validated geometry, never read from the segment.
    pub fn ring_location(&self, slot: u32, kind: LaneKind, ring: u32) -> Option<(u64, u32)> {
        let g = self.inner.geometry;
        let (rings, bytes) = match kind {
            LaneKind::Index => (g.index_rings, g.index_ring_bytes),
            LaneKind::Detail => (g.detail_rings, g.detail_ring_bytes),
        };
        if slot >= self.inner.capacity || ring >= rings {
            return None;
        }
        let offset = self.inner.rings_offset
            + u64::from(slot) * g.slot_ring_bytes()
            + g.ring_offset_in_slot(kind == LaneKind::Detail, ring);
        Some((offset, bytes))
    }
}

/// The offsets of a symbol table of `config`'s sizes at the start of `region` (bounds are
/// checked when the parts are viewed).
fn symbol_parts(
    region: &ada_shm::Region,
    config: SymbolTableConfig,
) -> Result<SymbolParts, RegistryError> {
    let entries_at = size_of::<SymbolHeader>() as u64;
    let words_at = entries_at + u64::from(config.entries) * size_of::<SymbolEntry>() as u64;
    Ok(SymbolParts {
        header: region.at::<SymbolHeader>(0)?,
        entries: region.at::<SymbolEntry>(entries_at)?,
        words: region.at::<ada_shm::sync::AtomicU64>(words_at)?,
        config,
    })
}

/// Views the parts (bounds- and alignment-checked by the segment).
fn symbol_view<'s>(
    segment: &'s Segment,
    parts: &SymbolParts,
) -> Result<SymbolTableRef<'s>, RegistryError> {
    Ok(SymbolTableRef::new(
        segment.view(parts.header)?,
        segment.view_slice(parts.entries, u64::from(parts.config.entries))?,
        segment.view_slice(parts.words, u64::from(parts.config.name_words()))?,
    ))
}

/// Validates the symbols region as untrusted input: version, sizes from its header within
/// limits, region size exactly what those sizes need, every part inside the mapping.
fn validate_symbols(segment: &Segment) -> Result<SymbolParts, RegistryError> {
    let region = segment.region(RegionKind::Symbols)?;
    if region.version != SYMBOLS_VERSION {
        return Err(RegistryError::BadHeader(
            "symbols region version is not supported",
        ));
    }
    let config = segment.view(region.at::<SymbolHeader>(0)?)?.config();
    config.validate()?;
    if region.size != config.region_size() {
        return Err(RegistryError::BadHeader(
            "symbols region size does not match its entries and name bytes",
        ));
    }
    let parts = symbol_parts(&region, config)?;
    symbol_view(segment, &parts)?;
    Ok(parts)
}

/// The offsets of a fallback ring of `records` slots at the start of `region` (bounds are checked
/// when the parts are viewed).
fn fallback_parts(region: &ada_shm::Region, records: u32) -> Result<FallbackParts, RegistryError> {
    Ok(FallbackParts {
        header: region.at::<FallbackHeader>(0)?,
        slots: region.at::<FallbackSlot>(FALLBACK_HEADER_BYTES)?,
        records,
    })
}

/// Views the parts (bounds- and alignment-checked by the segment).
fn fallback_view<'s>(
    segment: &'s Segment,
    parts: &FallbackParts,
) -> Result<FallbackRef<'s>, RegistryError> {
    FallbackRef::new(
        segment.view(parts.header)?,
        segment.view_slice(parts.slots, u64::from(parts.records))?,
    )
    .ok_or(RegistryError::BadHeader(
        "fallback ring record count is invalid",
    ))
}

/// Validates the fallback region, if there is one, as untrusted input: version, record count
/// from its header within limits, region size exactly what that count needs.
fn validate_fallback(segment: &Segment) -> Result<Option<FallbackParts>, RegistryError> {
    let region = match segment.region(RegionKind::Fallback) {
        Ok(region) => region,
        Err(ada_shm::ShmError::MissingRegion { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if region.version != FALLBACK_VERSION {
        return Err(RegistryError::BadHeader(
            "fallback region version is not supported",
        ));
    }
    let records = segment.view(region.at::<FallbackHeader>(0)?)?.records();
    crate::fallback::validate_records(records).map_err(RegistryError::BadHeader)?;
    if region.size != crate::fallback::region_size(records) {
        return Err(RegistryError::BadHeader(
            "fallback region size does not match its record count",
        ));
    }
    let parts = fallback_parts(&region, records)?;
    fallback_view(segment, &parts)?;
    Ok(Some(parts))
}
