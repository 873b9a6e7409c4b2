//! Lane states and the thresholds that move a lane between them.
//!
//! A [`LaneState`] is stored in shared memory (so the drain and `ada status` see it) as one
//! byte: [`LaneState::as_u8`] writes it and [`LaneState::from_u8`] reads it back, refusing any
//! byte this build does not know, because the reader treats the segment as untrusted input.
//!
//! A [`BackpressureConfig`] holds the two watermarks and the stability period that
//! [`next`](crate::next) applies; [`BackpressureConfig::validate`] checks them against the
//! size of a lane's ring pool.

use std::fmt;

/// The backpressure state of one lane of one thread.
///
/// The discriminants are the stable shared-memory encoding: never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LaneState {
    /// Enough free rings; nothing to do.
    Normal = 0,
    /// Free rings at or below the low watermark: the drain is falling behind, nothing is lost
    /// yet.
    Pressure = 1,
    /// The pool ran dry on a write: events are being lost under the lane's drop policy.
    Dropping = 2,
    /// After a loss, free rings are back above the high watermark; the lane returns to
    /// [`Normal`](LaneState::Normal) after the stability period, unless free rings fall to the
    /// low watermark meanwhile.
    Recovery = 3,
}

impl LaneState {
    /// Every state, in encoding order.
    pub const ALL: [LaneState; 4] = [
        LaneState::Normal,
        LaneState::Pressure,
        LaneState::Dropping,
        LaneState::Recovery,
    ];

    /// The state's shared-memory byte.
    #[inline]
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Decodes a shared-memory byte; `None` for a byte no state has (a corrupt or newer
    /// segment).
    #[inline]
    #[must_use]
    pub const fn from_u8(byte: u8) -> Option<LaneState> {
        match byte {
            0 => Some(LaneState::Normal),
            1 => Some(LaneState::Pressure),
            2 => Some(LaneState::Dropping),
            3 => Some(LaneState::Recovery),
            _ => None,
        }
    }

    /// The state's name as `ada status` prints it (`NORMAL`, `PRESSURE`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LaneState::Normal => "NORMAL",
            LaneState::Pressure => "PRESSURE",
            LaneState::Dropping => "DROPPING",
            LaneState::Recovery => "RECOVERY",
        }
    }
}

impl fmt::Display for LaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A byte that is not a [`LaneState`] encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown lane state byte {0} (known: 0..=3)")]
pub struct UnknownState(pub u8);

impl TryFrom<u8> for LaneState {
    type Error = UnknownState;

    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        LaneState::from_u8(byte).ok_or(UnknownState(byte))
    }
}

impl From<LaneState> for u8 {
    fn from(state: LaneState) -> u8 {
        state.as_u8()
    }
}

/// Thresholds of the lane state machine.
///
/// "Free rings" are the rings in the lane's free queue, ready for the thread's next swap. A
/// thread always holds one ring (its active one), so a pool of `pool_rings` rings has at most
/// `pool_rings - 1` free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackpressureConfig {
    /// Free rings at or below this move a NORMAL lane to PRESSURE (and a RECOVERY lane back to
    /// PRESSURE).
    pub low_watermark: u32,
    /// Free rings above this move a DROPPING lane to RECOVERY, and a PRESSURE lane back to
    /// NORMAL; between the two watermarks a lane keeps its state (hysteresis).
    pub high_watermark: u32,
    /// How long a lane stays in RECOVERY before it becomes NORMAL (unless free rings fall to
    /// the low watermark meanwhile), in nanoseconds of the segment's clock.
    pub stability_ns: u64,
}

impl BackpressureConfig {
    /// The longest stability period [`validate`](Self::validate) accepts: one minute. A longer
    /// one is almost certainly a unit mistake (seconds given as nanoseconds squared, say), and
    /// would leave `ada status` reporting RECOVERY long after the drain caught up.
    pub const MAX_STABILITY_NS: u64 = 60_000_000_000;

    /// The smallest pool the state machine can work with: one active ring plus one spare
    /// (`low = high = 0`: PRESSURE when the spare is in use, no hysteresis).
    pub const MIN_POOL_RINGS: u32 = 2;

    /// The default stability period: 10 ms (see [`Default`](#impl-Default-for-BackpressureConfig)).
    pub const DEFAULT_STABILITY_NS: u64 = 10_000_000;

    /// The default thresholds for a lane pool of `pool_rings` rings (at least
    /// [`MIN_POOL_RINGS`](Self::MIN_POOL_RINGS); smaller values are treated as that): with
    /// `spare = pool_rings - 1` rings that can be free, `high_watermark = spare - 1` (a lane
    /// recovers only when every spare ring is back, i.e. the drain has caught up) and
    /// `low_watermark = spare / 3` (PRESSURE with a third of the spares or fewer left). For the
    /// default index pool of 4 this is [`Default`]'s `low 1, high 2`; for the default detail
    /// pool of 2 it is `low 0, high 0`.
    #[must_use]
    pub const fn for_pool(pool_rings: u32) -> Self {
        let pool = if pool_rings < Self::MIN_POOL_RINGS {
            Self::MIN_POOL_RINGS
        } else {
            pool_rings
        };
        let spare = pool - 1;
        BackpressureConfig {
            low_watermark: spare / 3,
            high_watermark: spare - 1,
            stability_ns: Self::DEFAULT_STABILITY_NS,
        }
    }

    /// Checks the thresholds against a lane pool of `pool_rings` rings (the active one
    /// included): `low_watermark <= high_watermark < pool_rings - 1`, so that every state is
    /// reachable and a drained pool (all `pool_rings - 1` spare rings free) is above the high
    /// watermark, and `stability_ns <= MAX_STABILITY_NS`. (Equal watermarks are allowed, for
    /// small pools: the lane then has no hysteresis between PRESSURE and NORMAL.)
    pub fn validate(&self, pool_rings: u32) -> Result<(), ConfigError> {
        if pool_rings < Self::MIN_POOL_RINGS {
            return Err(ConfigError::PoolTooSmall { pool_rings });
        }
        if self.low_watermark > self.high_watermark {
            return Err(ConfigError::LowAboveHigh {
                low: self.low_watermark,
                high: self.high_watermark,
            });
        }
        let max_free = pool_rings - 1;
        if self.high_watermark >= max_free {
            return Err(ConfigError::HighUnreachable {
                high: self.high_watermark,
                pool_rings,
                max_free,
            });
        }
        if self.stability_ns > Self::MAX_STABILITY_NS {
            return Err(ConfigError::StabilityTooLong {
                stability_ns: self.stability_ns,
            });
        }
        Ok(())
    }
}

impl Default for BackpressureConfig {
    /// Defaults for the agent's default lane pool of 4 rings (one active, up to 3 free):
    ///
    /// - `low_watermark = 1`: PRESSURE when at most one spare ring is left, i.e. one swap away
    ///   from exhaustion. With `0` the lane would only enter PRESSURE at the moment it is about
    ///   to drop, too late for the drain to favour it.
    /// - `high_watermark = 2`: RECOVERY (and PRESSURE → NORMAL) only when all 3 spare rings are
    ///   free again, i.e. the drain has caught up with everything the thread submitted.
    ///   It cannot be higher in a 4-ring pool (a free count above it must be possible).
    /// - `stability_ns = 10 ms`: ten passes of the controller's default 1 ms drain interval;
    ///   long enough that one lucky drain pass during a stall does not declare the lane healthy,
    ///   short enough that `ada status` shows NORMAL promptly after the load drops.
    fn default() -> Self {
        BackpressureConfig {
            low_watermark: 1,
            high_watermark: 2,
            stability_ns: Self::DEFAULT_STABILITY_NS,
        }
    }
}

/// Thresholds that [`BackpressureConfig::validate`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The pool has fewer than [`BackpressureConfig::MIN_POOL_RINGS`] rings.
    #[error(
        "a lane pool of {pool_rings} rings is too small for backpressure states (at least {} rings: one active, one spare)",
        BackpressureConfig::MIN_POOL_RINGS
    )]
    PoolTooSmall {
        /// The pool size given.
        pool_rings: u32,
    },
    /// `low_watermark > high_watermark`.
    #[error("low watermark {low} must not be above high watermark {high} (free rings)")]
    LowAboveHigh {
        /// The low watermark.
        low: u32,
        /// The high watermark.
        high: u32,
    },
    /// Free rings can never exceed the high watermark in this pool, so a lane could never
    /// leave DROPPING.
    #[error(
        "high watermark {high} must be below {max_free}, the most free rings a pool of {pool_rings} can have (one is always active), or a lane could never recover"
    )]
    HighUnreachable {
        /// The high watermark.
        high: u32,
        /// The pool size given.
        pool_rings: u32,
        /// `pool_rings - 1`.
        max_free: u32,
    },
    /// `stability_ns` exceeds [`BackpressureConfig::MAX_STABILITY_NS`].
    #[error(
        "stability period {stability_ns} ns is longer than the {} ns allowed",
        BackpressureConfig::MAX_STABILITY_NS
    )]
    StabilityTooLong {
        /// The stability period given.
        stability_ns: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_is_stable() {
        for (i, s) in LaneState::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(s.as_u8()), i);
            assert_eq!(LaneState::from_u8(s.as_u8()), Some(s));
            assert_eq!(LaneState::try_from(s.as_u8()), Ok(s));
        }
        assert_eq!(LaneState::Dropping.as_u8(), 2);
    }

    #[test]
    fn unknown_bytes_are_refused() {
        for b in 4..=u8::MAX {
            assert_eq!(LaneState::from_u8(b), None);
            assert_eq!(LaneState::try_from(b), Err(UnknownState(b)));
        }
        assert!(UnknownState(9).to_string().contains('9'));
    }

    #[test]
    fn names() {
        let names: Vec<String> = LaneState::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["NORMAL", "PRESSURE", "DROPPING", "RECOVERY"]);
    }

    #[test]
    fn default_is_valid_for_four_rings_only_and_up() {
        let c = BackpressureConfig::default();
        assert_eq!(c.validate(4), Ok(()));
        assert_eq!(c.validate(64), Ok(()));
        assert_eq!(
            c.validate(3),
            Err(ConfigError::HighUnreachable {
                high: 2,
                pool_rings: 3,
                max_free: 2
            })
        );
    }

    #[test]
    fn pool_too_small() {
        let c = BackpressureConfig {
            low_watermark: 0,
            high_watermark: 1,
            stability_ns: 0,
        };
        assert_eq!(c.validate(3), Ok(()));
        for pool_rings in 0..2 {
            assert_eq!(
                c.validate(pool_rings),
                Err(ConfigError::PoolTooSmall { pool_rings })
            );
        }
    }

    #[test]
    fn low_must_be_below_high() {
        for (low, high) in [(3, 2), (u32::MAX, 0)] {
            let c = BackpressureConfig {
                low_watermark: low,
                high_watermark: high,
                stability_ns: 1,
            };
            let err = c.validate(16).unwrap_err();
            assert_eq!(err, ConfigError::LowAboveHigh { low, high });
            assert!(err.to_string().contains(&format!("low watermark {low}")));
        }
        // Equal watermarks are allowed (no hysteresis), as in a two-ring pool.
        let c = BackpressureConfig {
            low_watermark: 0,
            high_watermark: 0,
            stability_ns: 1,
        };
        assert_eq!(c.validate(2), Ok(()));
    }

    #[test]
    fn for_pool_defaults_are_valid_and_match_default_for_four() {
        assert_eq!(
            BackpressureConfig::for_pool(4),
            BackpressureConfig::default()
        );
        let two = BackpressureConfig::for_pool(2);
        assert_eq!((two.low_watermark, two.high_watermark), (0, 0));
        let eight = BackpressureConfig::for_pool(8);
        assert_eq!((eight.low_watermark, eight.high_watermark), (2, 6));
        for rings in 2..=64 {
            assert_eq!(
                BackpressureConfig::for_pool(rings).validate(rings),
                Ok(()),
                "{rings}"
            );
        }
        // Below the minimum it is the minimum's.
        assert_eq!(BackpressureConfig::for_pool(0), two);
    }

    #[test]
    fn high_must_be_reachable() {
        let c = BackpressureConfig {
            low_watermark: 1,
            high_watermark: 7,
            stability_ns: 1,
        };
        assert_eq!(c.validate(9), Ok(()));
        let err = c.validate(8).unwrap_err();
        assert_eq!(
            err,
            ConfigError::HighUnreachable {
                high: 7,
                pool_rings: 8,
                max_free: 7
            }
        );
        assert!(err.to_string().contains("never recover"));
    }

    #[test]
    fn stability_is_bounded() {
        let mut c = BackpressureConfig {
            stability_ns: BackpressureConfig::MAX_STABILITY_NS,
            ..BackpressureConfig::default()
        };
        assert_eq!(c.validate(4), Ok(()));
        c.stability_ns += 1;
        let err = c.validate(4).unwrap_err();
        assert_eq!(
            err,
            ConfigError::StabilityTooLong {
                stability_ns: BackpressureConfig::MAX_STABILITY_NS + 1
            }
        );
        assert!(err.to_string().contains("stability period"));
    }
}
