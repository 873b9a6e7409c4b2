//! Typed offsets: the only way one process refers to memory of another.
//!
//! An [`Off<T>`] is a byte offset from the start of a segment, tagged with the type found there.
//! It is plain data (it can be stored in the segment, and a hostile peer can forge one), so it
//! means nothing until [`crate::Segment::view`] checks it against the mapping.

use core::fmt;
use core::marker::PhantomData;

/// A byte offset from the start of a segment to a `T`.
#[repr(transparent)]
pub struct Off<T> {
    raw: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T> Off<T> {
    /// An offset of `raw` bytes. Nothing is checked until it is resolved.
    pub const fn new(raw: u64) -> Self {
        Off {
            raw,
            _type: PhantomData,
        }
    }

    /// The byte offset.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// The offset of element `index` of an array of `T` starting here, or `None` on overflow.
    pub fn element(self, index: u64) -> Option<Off<T>> {
        let stride = core::mem::size_of::<T>() as u64;
        index
            .checked_mul(stride)
            .and_then(|d| self.raw.checked_add(d))
            .map(Off::new)
    }

    /// Reinterprets the offset as pointing at a `U` `delta` bytes further on.
    pub fn cast<U>(self, delta: u64) -> Option<Off<U>> {
        self.raw.checked_add(delta).map(Off::new)
    }
}

impl<T> Clone for Off<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Off<T> {}
impl<T> PartialEq for Off<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Off<T> {}
impl<T> fmt::Debug for Off<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Off<{}>({:#x})", core::any::type_name::<T>(), self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_and_cast_check_overflow() {
        let o: Off<u64> = Off::new(16);
        assert_eq!(o.element(2).unwrap().raw(), 32);
        assert!(o.element(u64::MAX).is_none());
        assert_eq!(o.cast::<u8>(4).unwrap().raw(), 20);
        assert!(Off::<u8>::new(u64::MAX).cast::<u8>(1).is_none());
    }
}
