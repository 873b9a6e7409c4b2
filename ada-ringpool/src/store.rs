//! Where a lane's rings live. The protocol code is generic over [`RingStore`], so it runs on a
//! shared-memory mapping ([`SegmentStore`], normal build) and on the heap ([`HeapStore`], tests
//! and loom/shuttle models, where each ring's bytes sit in a model-checked `UnsafeCell` so an
//! access by a side that does not own the ring is reported as a race).

use crate::header::{RING_HEADER_SIZE, RingHeader};
use ada_shm::sync::UnsafeCell;

/// The rings of one lane of one slot.
pub trait RingStore {
    /// Rings in the pool.
    fn ring_count(&self) -> u32;
    /// Bytes in each ring's data area.
    fn data_capacity(&self) -> u32;
    /// Header of ring `ring` (`ring < ring_count()`, checked by callers).
    fn header(&self, ring: u32) -> &RingHeader;
    /// Copies `src` into ring `ring` at `offset`.
    ///
    /// # Safety
    /// The caller owns the ring (it is the thread's active ring), `ring < ring_count()` and
    /// `offset + src.len() <= data_capacity()`.
    unsafe fn write(&self, ring: u32, offset: u32, src: &[u8]);
    /// Copies `dst.len()` bytes at `offset` of ring `ring` into `dst`. Returns `false` (copying
    /// nothing) if the range is out of bounds.
    fn read(&self, ring: u32, offset: u32, dst: &mut [u8]) -> bool;
    /// The start of ring `ring`'s data area, for stores that let the owner write through a raw
    /// pointer (the mapping). `None` makes the writer go through [`write`](Self::write), which is
    /// what the model-checked heap store needs.
    fn data_ptr(&self, ring: u32) -> Option<core::ptr::NonNull<u8>> {
        let _ = ring;
        None
    }
}

impl<T: RingStore + ?Sized> RingStore for &T {
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
    unsafe fn write(&self, ring: u32, offset: u32, src: &[u8]) {
        // SAFETY: forwarded with the caller's guarantees unchanged.
        unsafe { (**self).write(ring, offset, src) }
    }
    #[inline(always)]
    fn read(&self, ring: u32, offset: u32, dst: &mut [u8]) -> bool {
        (**self).read(ring, offset, dst)
    }
    #[inline(always)]
    fn data_ptr(&self, ring: u32) -> Option<core::ptr::NonNull<u8>> {
        (**self).data_ptr(ring)
    }
}

/// Rings on the heap.
#[derive(Debug)]
pub struct HeapStore {
    headers: Box<[RingHeader]>,
    data: Box<[UnsafeCell<Box<[u8]>>]>,
    capacity: u32,
}

// SAFETY: the ring bytes are only accessed under the ownership protocol (one owner at a time,
// ownership transferred through Release/Acquire queue operations), exactly like the mapping.
unsafe impl Sync for HeapStore {}
// SAFETY: the store owns its memory; moving it between threads is fine.
unsafe impl Send for HeapStore {}

impl HeapStore {
    /// `rings` rings of `ring_bytes` bytes each (header included).
    pub fn new(rings: u32, ring_bytes: u32) -> Self {
        let capacity = ring_bytes - RING_HEADER_SIZE;
        HeapStore {
            headers: (0..rings).map(|_| RingHeader::default()).collect(),
            data: (0..rings)
                .map(|_| UnsafeCell::new(vec![0u8; capacity as usize].into_boxed_slice()))
                .collect(),
            capacity,
        }
    }
}

impl RingStore for HeapStore {
    fn ring_count(&self) -> u32 {
        self.headers.len() as u32
    }
    fn data_capacity(&self) -> u32 {
        self.capacity
    }
    fn header(&self, ring: u32) -> &RingHeader {
        &self.headers[ring as usize]
    }
    unsafe fn write(&self, ring: u32, offset: u32, src: &[u8]) {
        self.data[ring as usize].with_mut(|data| {
            // SAFETY: the caller owns the ring, so no other access to this cell is concurrent.
            let data = unsafe { &mut *data };
            data[offset as usize..offset as usize + src.len()].copy_from_slice(src);
        })
    }
    fn read(&self, ring: u32, offset: u32, dst: &mut [u8]) -> bool {
        let Some(cell) = self.data.get(ring as usize) else {
            return false;
        };
        let end = offset as usize + dst.len();
        if end > self.capacity as usize {
            return false;
        }
        cell.with(|data| {
            // SAFETY: the protocol orders this read after the owner's writes of these bytes
            // (Acquire of write_pos or of the submit queue); loom checks exactly that.
            let data = unsafe { &*data };
            dst.copy_from_slice(&data[offset as usize..end]);
        });
        true
    }
}

#[cfg(not(any(loom, shuttle)))]
pub use segment_store::SegmentStore;

#[cfg(not(any(loom, shuttle)))]
mod segment_store {
    use super::RingStore;
    use crate::header::{RING_HEADER_SIZE, RingHeader};
    use ada_registry::{LaneKind, Registry};
    use ada_shm::{Off, ShmError};
    use core::ptr::NonNull;

    /// The rings of one lane of one slot, in a registry's segment. Every pointer was bounds-
    /// checked against the mapping when the store was built; ring indices are checked on use.
    #[derive(Debug, Clone)]
    pub struct SegmentStore<'a> {
        headers: [Option<&'a RingHeader>; ada_registry::lane::QUEUE_SLOTS],
        data: [Option<NonNull<u8>>; ada_registry::lane::QUEUE_SLOTS],
        count: u32,
        capacity: u32,
    }

    // SAFETY: the pointers refer to the shared mapping owned by the registry borrowed for 'a;
    // access follows the ring ownership protocol.
    unsafe impl Send for SegmentStore<'_> {}
    // SAFETY: as above.
    unsafe impl Sync for SegmentStore<'_> {}

    impl<'a> SegmentStore<'a> {
        /// The rings of lane `kind` of slot `slot` in `registry`.
        pub fn new(registry: &'a Registry, slot: u32, kind: LaneKind) -> Result<Self, ShmError> {
            let mut headers = [None; ada_registry::lane::QUEUE_SLOTS];
            let mut data = [None; ada_registry::lane::QUEUE_SLOTS];
            let mut count = 0;
            let mut capacity = 0;
            while let Some((offset, bytes)) = registry.ring_location(slot, kind, count) {
                let seg = registry.segment();
                headers[count as usize] = Some(seg.view(Off::<RingHeader>::new(offset))?);
                capacity = bytes - RING_HEADER_SIZE;
                let start = offset + u64::from(RING_HEADER_SIZE);
                data[count as usize] = Some(seg.bytes_ptr(start, u64::from(capacity))?);
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
                headers,
                data,
                count,
                capacity,
            })
        }
    }

    impl RingStore for SegmentStore<'_> {
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
        unsafe fn write(&self, ring: u32, offset: u32, src: &[u8]) {
            let base = self.data[ring as usize].expect("ring index checked by the caller");
            // SAFETY: the caller guarantees `offset + src.len() <= capacity` and ownership of the
            // ring; `base` points at `capacity` bytes inside the mapping (checked in `new`).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    base.as_ptr().add(offset as usize),
                    src.len(),
                )
            };
        }
        fn read(&self, ring: u32, offset: u32, dst: &mut [u8]) -> bool {
            let Some(Some(base)) = self.data.get(ring as usize) else {
                return false;
            };
            let end = offset as u64 + dst.len() as u64;
            if end > u64::from(self.capacity) {
                return false;
            }
            // The bytes may be changing under a misbehaving peer: they are copied out first and
            // validated only in the private copy.
            // SAFETY: the range is inside the ring's data area (checked above and in `new`).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    base.as_ptr().add(offset as usize),
                    dst.as_mut_ptr(),
                    dst.len(),
                )
            };
            true
        }
    }
}
