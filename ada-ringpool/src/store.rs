//! Where a lane's rings live. The protocol code is generic over [`RingStore`], so it runs on a
//! shared-memory mapping ([`SegmentStore`], normal build) and on the heap ([`HeapStore`], tests
//! and loom/shuttle models). Either way a ring is a [`RingHeader`] and a data area of
//! `AtomicU64` words.
//!
//! Why the data is atomic: a ring's data area is read by the drain while its owner may still be
//! writing it (the salvage of a live thread's active ring), and it sits in memory another
//! process writes. In Rust's memory model a plain copy that races a write is undefined
//! behaviour even if the copy is thrown away afterwards, so both sides access ring bytes only as
//! `AtomicU64` words with `Relaxed` loads and stores: on x86-64 and AArch64 these are the same
//! `mov`/`ldr`/`str` instructions a plain copy uses, every record is a multiple of 8 bytes at an
//! 8-byte aligned offset, and a racing reader can at worst see a mix of old and new words, which
//! the `consumed` protocol ([`crate::header`]) detects and discards.

use crate::header::{RING_HEADER_SIZE, RingHeader};
use ada_registry::Lane;
use ada_shm::sync::AtomicU64;

/// The rings of one lane of one slot.
///
/// # Safety
/// Implementations promise that the references [`header`](Self::header) and
/// [`data`](Self::data) return stay valid, at the same address, for as long as the store
/// exists, even when the store value itself is moved (the writer keeps raw pointers to its
/// active ring across calls), and that `data(ring)` is `data_capacity() / 8` words long.
pub unsafe trait RingStore {
    /// Rings in the pool.
    fn ring_count(&self) -> u32;
    /// Bytes in each ring's data area (a multiple of 8).
    fn data_capacity(&self) -> u32;
    /// Header of ring `ring`. Panics if `ring >= ring_count()` (callers check).
    fn header(&self, ring: u32) -> &RingHeader;
    /// Data area of ring `ring`, `data_capacity() / 8` words. Panics if `ring >= ring_count()`.
    fn data(&self, ring: u32) -> &[AtomicU64];
    /// The lane whose rings these are: a writer or drain is only ever built from that lane's
    /// own queue ends, so no second writer or drain of a lane's rings can exist.
    fn lane(&self) -> *const Lane;
}

// SAFETY: forwards to `T`, whose guarantees hold for as long as the borrow does.
unsafe impl<T: RingStore + ?Sized> RingStore for &T {
    #[inline(always)]
    fn ring_count(&self) -> u32 {
        (**self).ring_count()
    }
    #[inline(always)]
    fn data_capacity(&self) -> u32 {
        (**self).data_capacity()
    }
    #[inline(always)]
    fn header(&self, ring: u32) -> &RingHeader {
        (**self).header(ring)
    }
    #[inline(always)]
    fn data(&self, ring: u32) -> &[AtomicU64] {
        (**self).data(ring)
    }
    #[inline(always)]
    fn lane(&self) -> *const Lane {
        (**self).lane()
    }
}

/// The rings of one lane on the heap.
#[derive(Debug)]
pub struct HeapStore {
    lane: *const Lane,
    headers: Box<[RingHeader]>,
    data: Box<[Box<[AtomicU64]>]>,
    capacity: u32,
}

// SAFETY: `lane` is only compared, never dereferenced; everything else is atomics.
unsafe impl Send for HeapStore {}
// SAFETY: as above.
unsafe impl Sync for HeapStore {}

impl HeapStore {
    /// `rings` rings of `ring_bytes` bytes each (header included; the data area is rounded
    /// down to whole words) for `lane`.
    pub fn new(lane: &Lane, rings: u32, ring_bytes: u32) -> Self {
        let capacity = (ring_bytes - RING_HEADER_SIZE) / 8 * 8;
        HeapStore {
            lane,
            headers: (0..rings).map(|_| RingHeader::default()).collect(),
            data: (0..rings)
                .map(|_| (0..capacity / 8).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            capacity,
        }
    }
}

// SAFETY: headers and words live in boxes the store owns and never reallocates, so their
// addresses do not change when the store moves; each data box holds `capacity / 8` words.
unsafe impl RingStore for HeapStore {
    fn ring_count(&self) -> u32 {
        self.headers.len() as u32
    }
    fn data_capacity(&self) -> u32 {
        self.capacity
    }
    fn header(&self, ring: u32) -> &RingHeader {
        &self.headers[ring as usize]
    }
    fn data(&self, ring: u32) -> &[AtomicU64] {
        &self.data[ring as usize]
    }
    fn lane(&self) -> *const Lane {
        self.lane
    }
}

#[cfg(not(any(loom, shuttle)))]
pub use segment_store::SegmentStore;

#[cfg(not(any(loom, shuttle)))]
mod segment_store {
    use super::RingStore;
    use crate::header::{RING_HEADER_SIZE, RingHeader};
    use ada_registry::lane::QUEUE_SLOTS;
    use ada_registry::{Lane, LaneKind, Registry};
    use ada_shm::sync::AtomicU64;
    use ada_shm::{Off, ShmError};

    /// The rings of one lane of one slot, in a registry's segment. Every header and data area
    /// was bounds- and alignment-checked against the mapping when the store was built.
    #[derive(Debug, Clone)]
    pub struct SegmentStore<'a> {
        lane: &'a Lane,
        headers: [Option<&'a RingHeader>; QUEUE_SLOTS],
        data: [&'a [AtomicU64]; QUEUE_SLOTS],
        count: u32,
        capacity: u32,
    }

    impl<'a> SegmentStore<'a> {
        /// The rings of lane `kind` of slot `slot` in `registry`.
        pub fn new(registry: &'a Registry, slot: u32, kind: LaneKind) -> Result<Self, ShmError> {
            let out_of_range = ShmError::OutOfBounds {
                offset: u64::from(slot),
                len: 0,
                align: 1,
                size: u64::from(registry.capacity()),
            };
            let lane = registry.view().lane(slot, kind).ok_or(out_of_range)?;
            let mut headers = [None; QUEUE_SLOTS];
            let mut data: [&'a [AtomicU64]; QUEUE_SLOTS] = [&[]; QUEUE_SLOTS];
            let mut count = 0;
            let mut capacity = 0;
            let seg = registry.segment();
            while let Some((offset, bytes)) = registry.ring_location(slot, kind, count) {
                headers[count as usize] = Some(seg.view(Off::<RingHeader>::new(offset))?);
                capacity = (bytes - RING_HEADER_SIZE) / 8 * 8;
                let start = offset + u64::from(RING_HEADER_SIZE);
                data[count as usize] =
                    seg.view_slice(Off::<AtomicU64>::new(start), u64::from(capacity / 8))?;
                count += 1;
            }
            if count == 0 {
                return Err(ShmError::OutOfBounds {
                    offset: 0,
                    len: 0,
                    align: 1,
                    size: 0,
                });
            }
            Ok(SegmentStore {
                lane,
                headers,
                data,
                count,
                capacity,
            })
        }
    }

    // SAFETY: every reference points into the registry's mapping, which the `'a` borrow keeps
    // mapped at a fixed address; each data slice has `capacity / 8` words (built that way).
    unsafe impl RingStore for SegmentStore<'_> {
        #[inline(always)]
        fn ring_count(&self) -> u32 {
            self.count
        }
        #[inline(always)]
        fn data_capacity(&self) -> u32 {
            self.capacity
        }
        #[inline(always)]
        fn header(&self, ring: u32) -> &RingHeader {
            self.headers[ring as usize].expect("ring index checked by the caller")
        }
        #[inline(always)]
        fn data(&self, ring: u32) -> &[AtomicU64] {
            assert!(ring < self.count, "ring index checked by the caller");
            self.data[ring as usize]
        }
        #[inline(always)]
        fn lane(&self) -> *const Lane {
            self.lane
        }
    }
}
