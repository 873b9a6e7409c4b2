//! Lost events by cause, and the balance every lane must satisfy.
//!
//! Every event a thread writes to a lane ends in exactly one place: persisted in the trace,
//! discarded by selective persistence (the detail lane's flight recorder), or lost for one of the
//! causes in [`LossCause`]. [`balanced`] checks `written = persisted + discarded + Σ lost`.

use std::fmt;

/// Why events were lost.
///
/// The discriminants are a stable encoding (for a shared-memory counter index or a trace
/// event's `cause` field): never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LossCause {
    /// Overwritten under drop-oldest: the thread recycled its own oldest unsubmitted data.
    Overwritten = 0,
    /// Refused under drop-newest: the event was not written because no ring was free.
    Refused = 1,
    /// The event was larger than a whole ring.
    TooLarge = 2,
    /// The thread was refused a registry slot, so it had no lane to write to.
    NoSlot = 3,
}

impl LossCause {
    /// Every cause, in encoding order.
    pub const ALL: [LossCause; 4] = [
        LossCause::Overwritten,
        LossCause::Refused,
        LossCause::TooLarge,
        LossCause::NoSlot,
    ];

    /// The cause's stable byte.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Decodes a byte; `None` for one no cause has.
    #[must_use]
    pub const fn from_u8(byte: u8) -> Option<LossCause> {
        match byte {
            0 => Some(LossCause::Overwritten),
            1 => Some(LossCause::Refused),
            2 => Some(LossCause::TooLarge),
            3 => Some(LossCause::NoSlot),
            _ => None,
        }
    }

    /// The cause's name as reports print it (`overwritten`, `refused`, `too_large`, `no_slot`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LossCause::Overwritten => "overwritten",
            LossCause::Refused => "refused",
            LossCause::TooLarge => "too_large",
            LossCause::NoSlot => "no_slot",
        }
    }
}

impl fmt::Display for LossCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Events lost on one lane, by cause. Every update saturates at `u64::MAX` instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LossCounters {
    /// Events overwritten under drop-oldest.
    pub overwritten: u64,
    /// Events refused under drop-newest.
    pub refused: u64,
    /// Events too large for a ring.
    pub too_large: u64,
    /// Events of threads refused a registry slot.
    pub no_slot: u64,
}

impl LossCounters {
    /// The counter for `cause`.
    #[must_use]
    pub const fn get(&self, cause: LossCause) -> u64 {
        match cause {
            LossCause::Overwritten => self.overwritten,
            LossCause::Refused => self.refused,
            LossCause::TooLarge => self.too_large,
            LossCause::NoSlot => self.no_slot,
        }
    }

    /// Adds `events` lost for `cause`, saturating.
    #[inline]
    pub fn add(&mut self, cause: LossCause, events: u64) {
        let c = match cause {
            LossCause::Overwritten => &mut self.overwritten,
            LossCause::Refused => &mut self.refused,
            LossCause::TooLarge => &mut self.too_large,
            LossCause::NoSlot => &mut self.no_slot,
        };
        *c = c.saturating_add(events);
    }

    /// Adds every counter of `other`, saturating.
    pub fn merge(&mut self, other: &LossCounters) {
        for cause in LossCause::ALL {
            self.add(cause, other.get(cause));
        }
    }

    /// All lost events, saturating at `u64::MAX`.
    #[must_use]
    pub fn total(&self) -> u64 {
        LossCause::ALL
            .iter()
            .fold(0u64, |acc, &c| acc.saturating_add(self.get(c)))
    }
}

/// Whether a lane's counts balance: `written = persisted + discarded + Σ lost by cause`,
/// computed without overflow (a sum beyond `u64::MAX` does not balance any `written`).
#[must_use]
pub fn balanced(written: u64, persisted: u64, discarded: u64, lost: &LossCounters) -> bool {
    let accounted = LossCause::ALL
        .iter()
        .fold(u128::from(persisted) + u128::from(discarded), |acc, &c| {
            acc + u128::from(lost.get(c))
        });
    u128::from(written) == accounted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_encoding() {
        for (i, c) in LossCause::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(c.as_u8()), i);
            assert_eq!(LossCause::from_u8(c.as_u8()), Some(c));
        }
        assert_eq!(LossCause::from_u8(4), None);
        assert_eq!(LossCause::TooLarge.to_string(), "too_large");
    }

    #[test]
    fn add_get_total() {
        let mut l = LossCounters::default();
        l.add(LossCause::Overwritten, 3);
        l.add(LossCause::Refused, 4);
        l.add(LossCause::TooLarge, 5);
        l.add(LossCause::NoSlot, 6);
        l.add(LossCause::Refused, 1);
        assert_eq!(
            l,
            LossCounters {
                overwritten: 3,
                refused: 5,
                too_large: 5,
                no_slot: 6
            }
        );
        assert_eq!(l.total(), 19);
        let mut m = l;
        m.merge(&l);
        assert_eq!(m.total(), 38);
        assert_eq!(m.get(LossCause::NoSlot), 12);
    }

    #[test]
    fn saturates() {
        let mut l = LossCounters::default();
        l.add(LossCause::Refused, u64::MAX);
        l.add(LossCause::Refused, 1);
        assert_eq!(l.refused, u64::MAX);
        l.add(LossCause::NoSlot, 1);
        assert_eq!(l.total(), u64::MAX);
    }

    #[test]
    fn balance() {
        let lost = LossCounters {
            overwritten: 1,
            refused: 2,
            too_large: 3,
            no_slot: 4,
        };
        assert!(balanced(110, 80, 20, &lost));
        assert!(!balanced(111, 80, 20, &lost));
        assert!(!balanced(109, 80, 20, &lost));
        assert!(balanced(0, 0, 0, &LossCounters::default()));
        // Overflowing sums never balance (no wrap-around to a small number).
        let huge = LossCounters {
            overwritten: u64::MAX,
            ..LossCounters::default()
        };
        assert!(!balanced(u64::MAX, 1, 0, &huge));
        assert!(!balanced(0, 1, 0, &huge));
        assert!(balanced(u64::MAX, 0, 0, &huge));
    }
}
