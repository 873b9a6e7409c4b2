//! The pure lane transition function, the NORMAL fast check, and transition counters.
//!
//! # State diagram
//!
//! ```text
//!            free <= low             exhausted             free > high
//!   NORMAL ──────────────► PRESSURE ───────────► DROPPING ─────────────► RECOVERY
//!     ▲ ▲                   │  ▲                   ▲  ▲                    │  │  │
//!     │ └─── free > high ───┘  └─── free <= low ───┼──┼────────────────────┘  │  │
//!     │                                            │  └──── exhausted ────────┘  │
//!     │          exhausted, from NORMAL ───────────┘                             │
//!     └──────────── stability_ns in RECOVERY (free never <= low) ──────────────────┘
//! ```
//!
//! | from | to | when |
//! |------|----|------|
//! | any but DROPPING | DROPPING | `exhausted` |
//! | NORMAL | PRESSURE | `free <= low` |
//! | PRESSURE | NORMAL | `free > high` |
//! | DROPPING | RECOVERY | `free > high` (and not `exhausted`) |
//! | RECOVERY | PRESSURE | `free <= low` |
//! | RECOVERY | NORMAL | `stability_ns` after RECOVERY was entered, unless it left meanwhile |
//!
//! In words, checked in this order for every state:
//!
//! 1. `exhausted` (the pool ran dry on this write) → DROPPING, from any state.
//! 2. NORMAL: `free <= low` → PRESSURE.
//! 3. PRESSURE: `free > high` → NORMAL (nothing was lost, so no stability period); between the
//!    watermarks it stays PRESSURE (hysteresis).
//! 4. DROPPING: `free > high` → RECOVERY; otherwise it stays DROPPING, even when the last
//!    write found a ring: the pool has not recovered until the drain has caught up.
//! 5. RECOVERY: `free <= low` → PRESSURE (it got worse again); once `stability_ns` have
//!    passed since RECOVERY was entered → NORMAL; otherwise it stays RECOVERY. Free rings
//!    between the watermarks do not restart the period: a busy thread that swaps rings holds
//!    one more ring than a fully drained pool after every swap (with the default high
//!    watermark, a drained pool is exactly "all spares free"), so requiring "above high" at
//!    every check would keep a healthy busy lane in RECOVERY forever.
//!
//! # Time
//!
//! [`next`] is pure: the caller passes the current time and the `since_ns` that the previous
//! [`Transition`] returned, and stores the new one. `since_ns` is the time the current state was
//! entered (in RECOVERY: the start of the stability period).
//!
//! Any `u64` times are accepted. Elapsed time is `now_ns - since_ns` when `now_ns >= since_ns`;
//! a clock that went backwards (`now_ns < since_ns`, e.g. a corrupted or re-created segment)
//! restarts the stability period at `now_ns` instead of counting as elapsed time, so a lane is
//! never declared NORMAL early, and never stuck in RECOVERY either once time moves forward again.
//!
//! # The hot path
//!
//! A writer in NORMAL calls [`needs_attention`] (two compares) and calls [`next`] only when it
//! says so: in NORMAL, `needs_attention` is false exactly when `next` would keep NORMAL with the
//! same `since_ns`.

use crate::state::{BackpressureConfig, LaneState};

/// What [`next`] looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Input {
    /// Rings in the lane's free queue after this write (or drain pass).
    pub free_rings: u32,
    /// The pool ran dry on this write: an event was lost under the lane's drop policy.
    pub exhausted: bool,
    /// The current time, in nanoseconds of the segment's clock.
    pub now_ns: u64,
    /// The `since_ns` of the previous [`Transition`] (see the [module docs](self)).
    pub since_ns: u64,
}

/// What [`next`] decided: the lane's state and the `since_ns` to pass next time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The new state (may equal the old one).
    pub state: LaneState,
    /// When `state` was entered, or, in RECOVERY, the start of the current stability period.
    pub since_ns: u64,
}

/// The NORMAL fast check: whether a lane in NORMAL must call [`next`].
///
/// False exactly when `next(LaneState::Normal, ..)` would keep NORMAL and its `since_ns`.
#[inline]
#[must_use]
pub fn needs_attention(free_rings: u32, exhausted: bool, config: &BackpressureConfig) -> bool {
    exhausted | (free_rings <= config.low_watermark)
}

/// The lane transition function: total and pure (see the [module docs](self) for the diagram
/// and the rules).
#[must_use]
pub fn next(state: LaneState, input: Input, config: &BackpressureConfig) -> Transition {
    let Input {
        free_rings,
        exhausted,
        now_ns,
        since_ns,
    } = input;
    let enter = |state| Transition {
        state,
        since_ns: now_ns,
    };
    let stay = Transition { state, since_ns };
    if exhausted {
        return if state == LaneState::Dropping {
            stay
        } else {
            enter(LaneState::Dropping)
        };
    }
    let above_high = free_rings > config.high_watermark;
    let at_or_below_low = free_rings <= config.low_watermark;
    match state {
        LaneState::Normal if at_or_below_low => enter(LaneState::Pressure),
        LaneState::Normal => stay,
        LaneState::Pressure if above_high => enter(LaneState::Normal),
        LaneState::Pressure => stay,
        LaneState::Dropping if above_high => enter(LaneState::Recovery),
        LaneState::Dropping => stay,
        LaneState::Recovery if at_or_below_low => enter(LaneState::Pressure),
        // A clock that went backwards restarts the stability period.
        LaneState::Recovery if now_ns < since_ns => Transition {
            state,
            since_ns: now_ns,
        },
        LaneState::Recovery if now_ns - since_ns >= config.stability_ns => enter(LaneState::Normal),
        LaneState::Recovery => stay,
    }
}

/// How many times each `from → to` transition happened, saturating at `u64::MAX`.
///
/// Only real changes are counted: [`record`](Self::record) ignores `from == to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransitionCounts {
    counts: [[u64; 4]; 4],
}

impl TransitionCounts {
    /// No transitions.
    #[must_use]
    pub const fn new() -> Self {
        TransitionCounts {
            counts: [[0; 4]; 4],
        }
    }

    /// Counts one `from → to` transition (nothing when `from == to`).
    #[inline]
    pub fn record(&mut self, from: LaneState, to: LaneState) {
        if from != to {
            let c = &mut self.counts[usize::from(from.as_u8())][usize::from(to.as_u8())];
            *c = c.saturating_add(1);
        }
    }

    /// Adds `n` `from → to` transitions, saturating (nothing when `from == to`); for merging
    /// counts read from elsewhere.
    pub fn add(&mut self, from: LaneState, to: LaneState, n: u64) {
        if from != to {
            let c = &mut self.counts[usize::from(from.as_u8())][usize::from(to.as_u8())];
            *c = c.saturating_add(n);
        }
    }

    /// The number of `from → to` transitions (always 0 for `from == to`).
    #[must_use]
    pub fn get(&self, from: LaneState, to: LaneState) -> u64 {
        self.counts[usize::from(from.as_u8())][usize::from(to.as_u8())]
    }

    /// All transitions, saturating.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .flatten()
            .fold(0u64, |acc, &c| acc.saturating_add(c))
    }

    /// Every pair with a non-zero count, in encoding order of `from`, then `to`.
    pub fn iter(&self) -> impl Iterator<Item = (LaneState, LaneState, u64)> + '_ {
        LaneState::ALL.into_iter().flat_map(move |from| {
            LaneState::ALL
                .into_iter()
                .map(move |to| (from, to, self.get(from, to)))
                .filter(|&(_, _, n)| n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LaneState::{Dropping, Normal, Pressure, Recovery};

    const C: BackpressureConfig = BackpressureConfig {
        low_watermark: 1,
        high_watermark: 2,
        stability_ns: 100,
    };

    fn step(
        state: LaneState,
        free_rings: u32,
        exhausted: bool,
        now_ns: u64,
        since_ns: u64,
    ) -> Transition {
        next(
            state,
            Input {
                free_rings,
                exhausted,
                now_ns,
                since_ns,
            },
            &C,
        )
    }

    fn t(state: LaneState, since_ns: u64) -> Transition {
        Transition { state, since_ns }
    }

    #[test]
    fn normal() {
        assert_eq!(step(Normal, 3, false, 50, 10), t(Normal, 10));
        assert_eq!(step(Normal, 2, false, 50, 10), t(Normal, 10));
        assert_eq!(step(Normal, 1, false, 50, 10), t(Pressure, 50));
        assert_eq!(step(Normal, 0, false, 50, 10), t(Pressure, 50));
        assert_eq!(step(Normal, 3, true, 50, 10), t(Dropping, 50));
        assert_eq!(step(Normal, 0, true, 50, 10), t(Dropping, 50));
    }

    #[test]
    fn pressure() {
        assert_eq!(step(Pressure, 0, false, 50, 10), t(Pressure, 10));
        assert_eq!(step(Pressure, 1, false, 50, 10), t(Pressure, 10));
        assert_eq!(
            step(Pressure, 2, false, 50, 10),
            t(Pressure, 10),
            "hysteresis"
        );
        assert_eq!(step(Pressure, 3, false, 50, 10), t(Normal, 50));
        assert_eq!(step(Pressure, 0, true, 50, 10), t(Dropping, 50));
    }

    #[test]
    fn dropping() {
        assert_eq!(step(Dropping, 0, true, 50, 10), t(Dropping, 10));
        assert_eq!(step(Dropping, 0, false, 50, 10), t(Dropping, 10));
        assert_eq!(step(Dropping, 2, false, 50, 10), t(Dropping, 10));
        assert_eq!(step(Dropping, 3, false, 50, 10), t(Recovery, 50));
        assert_eq!(step(Dropping, 3, true, 50, 10), t(Dropping, 10));
    }

    #[test]
    fn recovery() {
        // Above high: waits out the stability period, then NORMAL.
        assert_eq!(step(Recovery, 3, false, 109, 10), t(Recovery, 10));
        assert_eq!(step(Recovery, 3, false, 110, 10), t(Normal, 110));
        assert_eq!(step(Recovery, 3, false, u64::MAX, 0), t(Normal, u64::MAX));
        // Between the watermarks it keeps counting (a busy thread holds a ring after a swap).
        assert_eq!(step(Recovery, 2, false, 109, 10), t(Recovery, 10));
        assert_eq!(step(Recovery, 2, false, 110, 10), t(Normal, 110));
        // Worse again.
        assert_eq!(step(Recovery, 1, false, 109, 10), t(Pressure, 109));
        assert_eq!(step(Recovery, 3, true, 109, 10), t(Dropping, 109));
    }

    #[test]
    fn recovery_clock_backwards_restarts_the_period() {
        assert_eq!(step(Recovery, 3, false, 5, 1_000), t(Recovery, 5));
        // ...and time moving forward again from there reaches NORMAL.
        assert_eq!(step(Recovery, 3, false, 105, 5), t(Normal, 105));
    }

    #[test]
    fn zero_stability_recovers_on_the_next_check() {
        let c = BackpressureConfig {
            stability_ns: 0,
            ..C
        };
        let input = Input {
            free_rings: 3,
            exhausted: false,
            now_ns: 7,
            since_ns: 7,
        };
        assert_eq!(next(Recovery, input, &c), t(Normal, 7));
    }

    #[test]
    fn needs_attention_matches_next_in_normal() {
        for free_rings in 0..6 {
            for exhausted in [false, true] {
                let n = step(Normal, free_rings, exhausted, 50, 10);
                assert_eq!(
                    needs_attention(free_rings, exhausted, &C),
                    n != t(Normal, 10),
                    "free {free_rings} exhausted {exhausted}"
                );
            }
        }
    }

    #[test]
    fn counts() {
        let mut c = TransitionCounts::new();
        c.record(Normal, Pressure);
        c.record(Normal, Pressure);
        c.record(Pressure, Dropping);
        c.record(Dropping, Dropping);
        assert_eq!(c.get(Normal, Pressure), 2);
        assert_eq!(c.get(Pressure, Dropping), 1);
        assert_eq!(c.get(Dropping, Dropping), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [(Normal, Pressure, 2), (Pressure, Dropping, 1)]
        );
        c.add(Recovery, Normal, u64::MAX);
        c.record(Recovery, Normal);
        assert_eq!(c.get(Recovery, Normal), u64::MAX);
        assert_eq!(c.total(), u64::MAX);
        c.add(Normal, Normal, 5);
        assert_eq!(c.get(Normal, Normal), 0);
    }
}
