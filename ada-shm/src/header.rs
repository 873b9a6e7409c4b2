//! The segment header: the first 256 bytes of every ADA segment.
//!
//! ```text
//! offset  size  field                 written by / notes
//!      0     8  magic                 creator, LAST (release); "ADA-SHM1" little-endian
//!      8     4  layout_version        creator; must equal LAYOUT_VERSION
//!     12     4  header_size           creator; must equal HEADER_SIZE (256)
//!     16     8  total_size            creator; must equal the size of the mapping
//!     24     8  session_id            creator; random, also embedded in the name
//!     32     8  created_realtime_ns   creator; CLOCK_REALTIME at creation (informational)
//!     40     4  creator_pid           creator; used to detect segments left by dead creators
//!     44     4  clock_id              creator; the session timebase (see ada_shm::clock)
//!     48     4  region_count          creator; <= MAX_REGIONS
//!     52    12  reserved              zero
//!     64   192  regions[8]            creator; {kind u32, version u32, offset u64, size u64}
//! ```
//!
//! All fields are little-endian fixed-size integers (no `bool`, no enum, no pointer). The header
//! is immutable once `magic` is published. A reader copies it out of the mapping and validates
//! every field ([`SegmentHeader::validate`]) before it touches anything else; regions must be
//! `REGION_ALIGN`-aligned, inside the segment, past the header, non-empty, of distinct kinds and
//! non-overlapping.

use crate::ShmError;
use crate::clock::ClockId;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"ADA-SHM1"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ADA-SHM1");
/// The layout version this build writes and accepts.
/// (2: a lane's counters moved to a cache line of their own.)
pub const LAYOUT_VERSION: u32 = 2;
/// Size of [`SegmentHeader`] in bytes.
pub const HEADER_SIZE: usize = 256;
/// Most regions one segment can describe.
pub const MAX_REGIONS: usize = 8;
/// Every region starts on a page boundary, so ring memory never shares a page with the header.
pub const REGION_ALIGN: u64 = 4096;

crate::wire_enum! {
    /// What a region holds. The numbering is ADA-wide and stable; decode with
    /// [`RegionKind::try_from`].
    pub enum RegionKind {
        /// The control block: readiness, heartbeat, epoch, mode (`ada-registry`).
        Control = 1,
        /// The thread registry header and its `ThreadLaneSet` slots (`ada-registry`).
        Registry = 2,
        /// Per-slot ring memory (`ada-ringpool`).
        Rings = 3,
        /// The symbol string table agents fill and the controller reads (`ada-registry`'s
        /// `symbols` module defines its layout).
        Symbols = 4,
        /// Process-wide fallback rings used before the registry is ready (`ada-agent`).
        Fallback = 5,
        /// The trigger specs of selective persistence, written by the controller when it
        /// creates the segment (before it spawns anything or publishes `registry_ready`) and
        /// never changed after; read by agents at attach as untrusted input. Layout (version
        /// [`TRIGGERS_REGION_VERSION`]): a `u64` little-endian byte length, then that many bytes
        /// of `ada_persist::TriggerSet::encode()`. An absent region means no triggers.
        Triggers = 6,
    }
}

/// Layout version of the [`RegionKind::Triggers`] region.
pub const TRIGGERS_REGION_VERSION: u32 = 1;

/// One row of the layout table.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RegionEntry {
    /// A [`RegionKind`] as `u32`.
    pub kind: u32,
    /// Version of the region's own layout (owned by the crate that defines the region).
    pub version: u32,
    /// Byte offset from the start of the segment.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What a creator asks for: a region kind, its layout version and its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionSpec {
    /// What the region holds.
    pub kind: RegionKind,
    /// Version of the region's layout.
    pub version: u32,
    /// Bytes needed.
    pub size: u64,
}

/// The segment header (see the module docs for the byte diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SegmentHeader {
    /// [`MAGIC`]; written last by the creator.
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub layout_version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// Size of the whole segment in bytes.
    pub total_size: u64,
    /// Random session id.
    pub session_id: u64,
    /// `CLOCK_REALTIME` nanoseconds at creation.
    pub created_realtime_ns: u64,
    /// Pid of the creating process.
    pub creator_pid: u32,
    /// A [`ClockId`] as `u32`.
    pub clock_id: u32,
    /// Number of valid entries in `regions`.
    pub region_count: u32,
    /// Zero.
    pub reserved: [u32; 3],
    /// The layout table.
    pub regions: [RegionEntry; MAX_REGIONS],
}

const _: () = assert!(core::mem::size_of::<SegmentHeader>() == HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<RegionEntry>() == 24);
const _: () = assert!(core::mem::offset_of!(SegmentHeader, regions) == 64);
const _: () = assert!(core::mem::offset_of!(SegmentHeader, creator_pid) == 40);

impl SegmentHeader {
    /// Lays out `specs` one after another, each on a [`REGION_ALIGN`] boundary after the header,
    /// and returns the header a creator writes (with `magic` already set).
    pub fn plan(
        specs: &[RegionSpec],
        session_id: u64,
        creator_pid: u32,
        clock: ClockId,
        created_realtime_ns: u64,
    ) -> Result<SegmentHeader, ShmError> {
        if specs.is_empty() || specs.len() > MAX_REGIONS {
            return Err(ShmError::LayoutOutOfBounds {
                index: specs.len(),
                reason: "a segment needs between 1 and MAX_REGIONS regions",
            });
        }
        let mut regions = [RegionEntry::default(); MAX_REGIONS];
        let mut cursor = HEADER_SIZE as u64;
        for (index, spec) in specs.iter().enumerate() {
            if spec.size == 0 {
                return Err(ShmError::LayoutOutOfBounds {
                    index,
                    reason: "region size is zero",
                });
            }
            if specs[..index].iter().any(|s| s.kind == spec.kind) {
                return Err(ShmError::LayoutOutOfBounds {
                    index,
                    reason: "duplicate region kind",
                });
            }
            let offset = align_up(cursor, REGION_ALIGN).ok_or(ShmError::LayoutOutOfBounds {
                index,
                reason: "segment size overflows u64",
            })?;
            cursor = offset
                .checked_add(spec.size)
                .ok_or(ShmError::LayoutOutOfBounds {
                    index,
                    reason: "segment size overflows u64",
                })?;
            regions[index] = RegionEntry {
                kind: spec.kind as u32,
                version: spec.version,
                offset,
                size: spec.size,
            };
        }
        let total_size = align_up(cursor, REGION_ALIGN).ok_or(ShmError::LayoutOutOfBounds {
            index: specs.len(),
            reason: "segment size overflows u64",
        })?;
        Ok(SegmentHeader {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            header_size: HEADER_SIZE as u32,
            total_size,
            session_id,
            created_realtime_ns,
            creator_pid,
            clock_id: clock as u32,
            region_count: specs.len() as u32,
            reserved: [0; 3],
            regions,
        })
    }

    /// Checks every field against a mapping of `mapped_len` bytes. `name` only labels errors.
    pub fn validate(&self, name: &str, mapped_len: u64) -> Result<(), ShmError> {
        if self.magic == 0 {
            return Err(ShmError::NotReady {
                name: name.to_owned(),
            });
        }
        if self.magic != MAGIC {
            return Err(ShmError::BadMagic {
                name: name.to_owned(),
                found: self.magic,
            });
        }
        if self.layout_version != LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch {
                found: self.layout_version,
                expected: LAYOUT_VERSION,
            });
        }
        if self.header_size as usize != HEADER_SIZE {
            return Err(ShmError::SizeOutOfBounds {
                what: "header_size",
                claimed: self.header_size.into(),
                actual: HEADER_SIZE as u64,
            });
        }
        if self.total_size != mapped_len {
            return Err(ShmError::SizeOutOfBounds {
                what: "total_size vs mapping",
                claimed: self.total_size,
                actual: mapped_len,
            });
        }
        if self.creator_pid == 0 || self.creator_pid > i32::MAX as u32 {
            return Err(ShmError::InvalidField {
                field: "creator_pid",
                value: self.creator_pid.into(),
            });
        }
        ClockId::try_from(self.clock_id).map_err(ShmError::UnknownClock)?;
        let count = self.region_count as usize;
        if count == 0 || count > MAX_REGIONS {
            return Err(ShmError::LayoutOutOfBounds {
                index: count,
                reason: "region_count must be between 1 and MAX_REGIONS",
            });
        }
        let live = &self.regions[..count];
        for (index, r) in live.iter().enumerate() {
            let bad = |reason| Err(ShmError::LayoutOutOfBounds { index, reason });
            if RegionKind::try_from(r.kind).is_err() {
                return bad("unknown region kind");
            }
            if live[..index].iter().any(|o| o.kind == r.kind) {
                return bad("duplicate region kind");
            }
            if r.size == 0 {
                return bad("region size is zero");
            }
            if !r.offset.is_multiple_of(REGION_ALIGN) {
                return bad("region offset is not page-aligned");
            }
            if r.offset < HEADER_SIZE as u64 {
                return bad("region overlaps the header");
            }
            match r.offset.checked_add(r.size) {
                Some(end) if end <= self.total_size => {}
                _ => return bad("region extends past the end of the segment"),
            }
            for other in &live[..index] {
                let disjoint =
                    r.offset >= other.offset + other.size || other.offset >= r.offset + r.size;
                if !disjoint {
                    return bad("region overlaps another region");
                }
            }
        }
        if self.regions[count..]
            .iter()
            .any(|r| *r != RegionEntry::default())
        {
            return Err(ShmError::LayoutOutOfBounds {
                index: count,
                reason: "unused region entries must be zero",
            });
        }
        Ok(())
    }

    /// The entry for `kind`, if the (validated) table has one.
    pub fn region(&self, kind: RegionKind) -> Option<RegionEntry> {
        let count = (self.region_count as usize).min(MAX_REGIONS);
        self.regions[..count]
            .iter()
            .copied()
            .find(|r| r.kind == kind as u32)
    }

    /// The clock the session uses (valid once [`validate`](Self::validate) passed).
    pub fn clock(&self) -> Result<ClockId, ShmError> {
        ClockId::try_from(self.clock_id).map_err(ShmError::UnknownClock)
    }
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentHeader {
        SegmentHeader::plan(
            &[
                RegionSpec {
                    kind: RegionKind::Control,
                    version: 1,
                    size: 1000,
                },
                RegionSpec {
                    kind: RegionKind::Registry,
                    version: 1,
                    size: 5000,
                },
            ],
            0xfeed,
            42,
            ClockId::Monotonic,
            7,
        )
        .unwrap()
    }

    #[test]
    fn plan_aligns_regions_and_validates() {
        let h = sample();
        assert_eq!(h.regions[0].offset, 4096);
        assert_eq!(h.regions[1].offset, 8192);
        assert_eq!(h.total_size, 16384);
        h.validate("t", h.total_size).unwrap();
        assert_eq!(h.region(RegionKind::Registry).unwrap().size, 5000);
        assert!(h.region(RegionKind::Rings).is_none());
    }

    #[test]
    fn each_bad_field_has_its_own_error() {
        let good = sample();
        let len = good.total_size;
        let check = |h: SegmentHeader| h.validate("t", len).unwrap_err();

        assert!(matches!(
            check(SegmentHeader { magic: 0, ..good }),
            ShmError::NotReady { .. }
        ));
        assert!(matches!(
            check(SegmentHeader { magic: 1, ..good }),
            ShmError::BadMagic { .. }
        ));
        assert!(matches!(
            check(SegmentHeader {
                layout_version: 9,
                ..good
            }),
            ShmError::VersionMismatch { found: 9, .. }
        ));
        assert!(matches!(
            check(SegmentHeader {
                total_size: len + 1,
                ..good
            }),
            ShmError::SizeOutOfBounds { .. }
        ));
        assert!(matches!(
            check(SegmentHeader {
                clock_id: 99,
                ..good
            }),
            ShmError::UnknownClock(99)
        ));
        assert!(matches!(
            check(SegmentHeader {
                region_count: 9,
                ..good
            }),
            ShmError::LayoutOutOfBounds { .. }
        ));
        let mut overlap = good;
        overlap.regions[1].offset = 4096;
        assert!(matches!(
            check(overlap),
            ShmError::LayoutOutOfBounds { index: 1, .. }
        ));
        let mut past_end = good;
        past_end.regions[1].size = u64::MAX;
        assert!(matches!(
            check(past_end),
            ShmError::LayoutOutOfBounds { index: 1, .. }
        ));
        let mut dup = good;
        dup.regions[1].kind = dup.regions[0].kind;
        assert!(matches!(
            check(dup),
            ShmError::LayoutOutOfBounds { index: 1, .. }
        ));
    }

    #[test]
    fn plan_rejects_duplicates_and_empty() {
        let spec = RegionSpec {
            kind: RegionKind::Control,
            version: 1,
            size: 1,
        };
        assert!(SegmentHeader::plan(&[], 1, 1, ClockId::Monotonic, 0).is_err());
        assert!(SegmentHeader::plan(&[spec, spec], 1, 1, ClockId::Monotonic, 0).is_err());
        let zero = RegionSpec { size: 0, ..spec };
        assert!(SegmentHeader::plan(&[zero], 1, 1, ClockId::Monotonic, 0).is_err());
    }
}
