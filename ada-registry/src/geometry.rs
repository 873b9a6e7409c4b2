//! Sizes chosen when the segment is created: how many slots, how many rings per lane and how big
//! each ring is. Stored in the registry header, validated on attach, immutable for the session.

use crate::lane::QUEUE_SLOTS;

/// Most slots a registry can have.
pub const MAX_CAPACITY: u32 = 4096;
/// Default slot count.
pub const DEFAULT_CAPACITY: u32 = 64;
/// Smallest ring (bytes).
pub const MIN_RING_BYTES: u32 = 256;
/// Largest ring (bytes).
pub const MAX_RING_BYTES: u32 = 64 << 20;

/// Ring pool sizes for the two lanes of every slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGeometry {
    /// Rings in each index lane's pool (default 4).
    pub index_rings: u32,
    /// Bytes per index ring, header included (default 32 KiB).
    pub index_ring_bytes: u32,
    /// Rings in each detail lane's pool (default 2).
    pub detail_rings: u32,
    /// Bytes per detail ring, header included (default 48 KiB).
    pub detail_ring_bytes: u32,
}

impl Default for RingGeometry {
    /// 4 × 32 KiB index rings and 2 × 48 KiB detail rings: 224 KiB of rings per thread.
    fn default() -> Self {
        RingGeometry {
            index_rings: 4,
            index_ring_bytes: 32 << 10,
            detail_rings: 2,
            detail_ring_bytes: 48 << 10,
        }
    }
}

/// Why a geometry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ring geometry: {0}")]
pub struct GeometryError(pub &'static str);

impl RingGeometry {
    /// Checks the limits every process relies on.
    pub fn validate(&self) -> Result<(), GeometryError> {
        for (rings, bytes, lane) in [
            (self.index_rings, self.index_ring_bytes, "index"),
            (self.detail_rings, self.detail_ring_bytes, "detail"),
        ] {
            if !(2..=QUEUE_SLOTS as u32).contains(&rings) {
                return Err(GeometryError(if lane == "index" {
                    "index lane needs 2..=8 rings"
                } else {
                    "detail lane needs 2..=8 rings"
                }));
            }
            if !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&bytes) || !bytes.is_multiple_of(64) {
                return Err(GeometryError(
                    "ring size must be a multiple of 64 between 256 bytes and 64 MiB",
                ));
            }
        }
        Ok(())
    }

    /// Ring bytes one slot owns (both lanes), rounded up to a whole page.
    pub fn slot_ring_bytes(&self) -> u64 {
        let raw = u64::from(self.index_rings) * u64::from(self.index_ring_bytes)
            + u64::from(self.detail_rings) * u64::from(self.detail_ring_bytes);
        raw.div_ceil(4096) * 4096
    }

    /// Offset of ring `ring` of `lane` inside one slot's ring area.
    pub fn ring_offset_in_slot(&self, detail: bool, ring: u32) -> u64 {
        if detail {
            u64::from(self.index_rings) * u64::from(self.index_ring_bytes)
                + u64::from(ring) * u64::from(self.detail_ring_bytes)
        } else {
            u64::from(ring) * u64::from(self.index_ring_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fits_the_memory_goal() {
        let g = RingGeometry::default();
        g.validate().unwrap();
        assert_eq!(g.slot_ring_bytes(), 224 << 10);
        assert_eq!(g.ring_offset_in_slot(true, 1), 4 * 32768 + 49152);
    }

    #[test]
    fn rejects_out_of_range() {
        let g = RingGeometry::default();
        assert!(
            RingGeometry {
                index_rings: 1,
                ..g
            }
            .validate()
            .is_err()
        );
        assert!(
            RingGeometry {
                detail_rings: 9,
                ..g
            }
            .validate()
            .is_err()
        );
        assert!(
            RingGeometry {
                index_ring_bytes: 100,
                ..g
            }
            .validate()
            .is_err()
        );
        assert!(
            RingGeometry {
                detail_ring_bytes: 1000,
                ..g
            }
            .validate()
            .is_err()
        );
    }
}
