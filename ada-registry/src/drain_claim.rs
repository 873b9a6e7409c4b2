//! [`DrainClaim`]: the one drain of a segment.
//!
//! The drain is the only consumer of every lane's submit queue and the only producer of every
//! free queue. Two drains of one segment would both pop the same full rings and push rings back
//! twice, which breaks the ring ownership that the whole protocol rests on. The claim makes that
//! impossible: it is a compare-and-swap of the control block's `drain_owner` word from 0 to the
//! claimant's pid (so a second claimant, in this process or another, is refused with
//! [`RegistryError::DrainClaimed`]), and it hands each lane's drain ends ([`LaneConsumer`]) out
//! once, and the fallback ring's one consumer ([`FallbackConsumer`]) once. The word is released
//! when the claim and every end it handed out are dropped, so no second set of ends can ever
//! coexist with the first.

use crate::control::ControlBlock;
use crate::core::RegistryRef;
use crate::endpoints::LaneConsumer;
use crate::error::RegistryError;
use crate::fallback::{FallbackConsumer, FallbackRef};
use crate::lane::LaneKind;
use std::sync::Arc;

/// The exclusive right to drain one registry (see the module docs).
///
/// ```
/// use ada_registry::{HeapRegistry, LaneKind, RegistryError, RingGeometry};
///
/// let registry = HeapRegistry::new(4, RingGeometry::default());
/// let mut claim = registry.claim_drain(100)?;
/// // A second drain is refused while the first holds the claim.
/// assert!(matches!(registry.claim_drain(200), Err(RegistryError::DrainClaimed { pid: 100 })));
/// // Each lane's drain ends are handed out once.
/// assert!(claim.lane(0, LaneKind::Index).is_some());
/// assert!(claim.lane(0, LaneKind::Index).is_none());
/// drop(claim);
/// assert!(registry.claim_drain(200).is_ok());
/// # Ok::<(), RegistryError>(())
/// ```
#[derive(Debug)]
pub struct DrainClaim<'a> {
    guard: Arc<ClaimGuard<'a>>,
    view: RegistryRef<'a>,
    /// Per slot: bit 0 = index lane handed out, bit 1 = detail lane handed out.
    handed_out: Vec<u8>,
    /// The segment's fallback ring, until its consumer is handed out.
    fallback: Option<FallbackRef<'a>>,
}

/// Holds the control block's `drain_owner` word; the last of the claim and its lane ends to be
/// dropped releases it.
#[derive(Debug)]
pub(crate) struct ClaimGuard<'a> {
    control: &'a ControlBlock,
    claimant: u32,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.control.release_drain(self.claimant);
    }
}

impl<'a> DrainClaim<'a> {
    /// Claims `control`'s drain word for `claimant` (non-zero), taking it over from a holder
    /// that `holder_is_dead` says has died.
    pub(crate) fn acquire(
        control: &'a ControlBlock,
        view: RegistryRef<'a>,
        claimant: u32,
        holder_is_dead: impl Fn(u32) -> bool,
    ) -> Result<Self, RegistryError> {
        if claimant == 0 {
            return Err(RegistryError::BadHeader(
                "a drain claimant needs a non-zero id",
            ));
        }
        if let Err(holder) = control.claim_drain(claimant) {
            if holder == claimant || !holder_is_dead(holder) {
                return Err(RegistryError::DrainClaimed { pid: holder });
            }
            control
                .take_over_drain(holder, claimant)
                .map_err(|pid| RegistryError::DrainClaimed { pid })?;
        }
        Ok(DrainClaim {
            guard: Arc::new(ClaimGuard { control, claimant }),
            view,
            handed_out: vec![0; view.capacity() as usize],
            fallback: None,
        })
    }

    /// Attaches the segment's fallback ring, whose consumer [`fallback`](Self::fallback) hands
    /// out. (The heap registry of the model-checked builds has no fallback ring.)
    #[cfg(not(any(loom, shuttle)))]
    pub(crate) fn with_fallback(mut self, ring: Option<FallbackRef<'a>>) -> Self {
        self.fallback = ring;
        self
    }

    /// The drain's end of the fallback ring: `None` if the segment has none or it was already
    /// handed out (it exists once per claim; keep it).
    pub fn fallback(&mut self) -> Option<FallbackConsumer<'a>> {
        let ring = self.fallback.take()?;
        Some(FallbackConsumer::new(ring, Some(self.guard.clone())))
    }

    /// The registry being drained.
    pub fn view(&self) -> RegistryRef<'a> {
        self.view
    }

    /// Who holds the claim.
    pub fn claimant(&self) -> u32 {
        self.guard.claimant
    }

    /// The drain's ends of lane `kind` of slot `slot`: `None` if the slot is out of range or
    /// this lane's ends were already handed out (they exist once; keep them, and call
    /// [`LaneConsumer::resync`] when the slot gets a new owner).
    pub fn lane(&mut self, slot: u32, kind: LaneKind) -> Option<LaneConsumer<'a>> {
        let lane = self.view.lane(slot, kind)?;
        let bit = 1u8 << (kind as u32);
        let flags = self.handed_out.get_mut(slot as usize)?;
        if *flags & bit != 0 {
            return None;
        }
        *flags |= bit;
        // SAFETY: we hold the segment's drain claim and this lane's ends were never handed out
        // before (checked and recorded just above), so these are the drain's only ends.
        Some(unsafe { LaneConsumer::new(lane, kind, slot, Some(self.guard.clone())) })
    }
}
