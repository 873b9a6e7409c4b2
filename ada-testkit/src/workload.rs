//! Workload helpers: sequence-numbered payloads that let a test prove every event arrived
//! exactly once (or was counted as dropped).

/// Packs a producer id and a per-producer sequence number into one `u64` payload.
pub const fn tag(producer: u32, seq: u32) -> u64 {
    ((producer as u64) << 32) | seq as u64
}

/// Splits a payload made by [`tag`] into `(producer, seq)`.
pub const fn untag(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}

/// Tracks, per producer, which sequence numbers were seen: [`distinct`](Self::distinct) counts
/// them (compare with what was sent to find gaps) and [`duplicates`](Self::duplicates) counts
/// repeats.
///
/// ```
/// use ada_testkit::workload::{SeqLedger, tag};
///
/// let mut ledger = SeqLedger::new(2);
/// assert!(ledger.record(tag(1, 0)));
/// assert!(ledger.record(tag(1, 1)));
/// assert!(!ledger.record(tag(1, 1)), "a repeat");
/// assert_eq!((ledger.distinct(1), ledger.duplicates()), (2, 1));
/// ```
#[derive(Debug, Default, Clone)]
pub struct SeqLedger {
    seen: Vec<Vec<u64>>,
    duplicates: u64,
}

impl SeqLedger {
    /// A ledger for `producers` producers.
    pub fn new(producers: usize) -> Self {
        SeqLedger {
            seen: vec![Vec::new(); producers],
            duplicates: 0,
        }
    }

    /// Records one payload; returns `false` (and counts it) if it was already seen.
    pub fn record(&mut self, value: u64) -> bool {
        let (producer, seq) = untag(value);
        let bits = &mut self.seen[producer as usize];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let fresh = bits[word] & (1 << bit) == 0;
        bits[word] |= 1 << bit;
        if !fresh {
            self.duplicates += 1;
        }
        fresh
    }

    /// Number of distinct payloads seen from `producer`.
    pub fn distinct(&self, producer: usize) -> u64 {
        self.seen[producer]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum()
    }

    /// Payloads seen more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_counts_distinct_and_duplicates() {
        let mut l = SeqLedger::new(2);
        assert!(l.record(tag(1, 5)));
        assert!(l.record(tag(1, 700)));
        assert!(!l.record(tag(1, 5)));
        assert_eq!(l.distinct(1), 2);
        assert_eq!(l.distinct(0), 0);
        assert_eq!(l.duplicates(), 1);
        assert_eq!(untag(tag(7, 9)), (7, 9));
    }
}
