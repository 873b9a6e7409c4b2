//! The agent's mode machine: what a traced process does with its events, worked out from the
//! controller's control block and the time.
//!
//! [`next`] is a pure function of (state, [`ControlSnapshot`], now): the agent evaluates it on a
//! time period (never per event) and keeps the resulting [`AgentMode`] in its own memory, so a
//! hostile or half-written control block can change what the agent decides but never where it
//! writes. Its clock is injected (the caller passes `now`), so tests drive it with a fake clock.
//!
//! ```text
//!              ready, mode warm-up           mode steady
//!   STARTUP ─────────────────────► WARM-UP ─────────────► STEADY
//!      ▲  (not ready, or mode              │                │
//!      │   fallback-only)                  │ heartbeat      │ heartbeat unchanged
//!      └───────────────────────────────────┤ unchanged for  │ for stall_after_ns
//!                                          ▼ stall_after_ns ▼
//!                                        STALLED ◄──────────┘
//!                         (heartbeat moves again → the controller's mode)
//! ```
//!
//! - **Startup**: the registry is not ready (or the controller asks for the fallback ring
//!   only): events go to the shared fallback ring.
//! - **Warm-up** / **steady**: the controller's requested mode (`DualWrite` / `PerThreadOnly`),
//!   followed as long as its heartbeat moves.
//! - **Stalled**: the heartbeat has not changed for `stall_after_ns` of the agent's clock: the
//!   drain is not taking rings. Left as soon as the heartbeat changes again. The agent measures
//!   the heartbeat's *age* by when it last saw the value change, on its own clock: a heartbeat
//!   value another process wrote far in the future cannot keep it out of STALLED.
//! - **A new epoch** (a controller that restarted and published ready again) is reported once as
//!   [`Step::reattach`]: the agent's threads must register again with the new controller.
//!
//! A control block in an unknown mode (a corrupt or newer segment) is treated as not ready.
//! `shutdown` does not change the mode: the controller keeps draining until its final pass.

use ada_registry::{ControlSnapshot, RegistryMode};

/// What the agent does with its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentMode {
    /// The registry is not ready: the shared fallback ring only.
    Startup = 0,
    /// The controller's warm-up: per-thread rings, the fallback ring still drained.
    WarmUp = 1,
    /// Steady state: per-thread rings only.
    Steady = 2,
    /// The controller's heartbeat stopped: keep the flight-recorder data, swap no rings that
    /// cannot be handed over, count what is lost.
    Stalled = 3,
}

impl AgentMode {
    /// Every mode, in encoding order.
    pub const ALL: [AgentMode; 4] = [
        AgentMode::Startup,
        AgentMode::WarmUp,
        AgentMode::Steady,
        AgentMode::Stalled,
    ];
}

/// The thresholds of the mode machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeConfig {
    /// How long the heartbeat may stay unchanged (agent clock, nanoseconds) before the
    /// controller counts as stalled.
    pub stall_after_ns: u64,
    /// How often the agent's mode watcher evaluates [`next`] (nanoseconds).
    pub period_ns: u64,
    /// How long a stall whose controller and drain processes are both gone lasts before the
    /// agent goes **dormant** (see [`dormant`]).
    pub dormant_after_ns: u64,
}

impl Default for ModeConfig {
    /// Stalled after 250 ms: a drain loop ticks the heartbeat every pass (about every
    /// millisecond), so a quarter second without a tick is a drain that stopped, not a slow
    /// pass. Evaluated every 10 ms, so a restarted controller's new epoch is noticed within
    /// 10 ms (far inside the 1 s the design promises). Dormant after 1 s of a dead controller.
    fn default() -> Self {
        ModeConfig {
            stall_after_ns: 250_000_000,
            period_ns: 10_000_000,
            dormant_after_ns: 1_000_000_000,
        }
    }
}

/// Whether the agent goes **dormant**: the heartbeat has not changed for longer than
/// `dormant_after_ns`, the agent is stalled or waiting for a registry that is not ready (a
/// controller that finished withdraws ready), *and* the controller is gone (`controller_alive`
/// false: the control block's controller process and drain holder no longer exist). A dormant
/// agent's
/// threads give their slots back at their next slow path (what their rings hold stays in the
/// segment for a controller that attaches later) and every recording call then costs what an
/// untraced one does, counting its event per thread; a new epoch (a controller that attached)
/// ends it. Pure, like [`next`].
/// `controller_alive` is asked last, only when everything else says dormant (it looks at
/// processes: a system call the caller should not make on every evaluation).
#[must_use]
pub fn dormant(
    state: &ModeState,
    now_ns: u64,
    controller_alive: impl FnOnce() -> bool,
    config: &ModeConfig,
) -> bool {
    matches!(state.mode, AgentMode::Stalled | AgentMode::Startup)
        && now_ns.saturating_sub(state.heartbeat_seen_ns) > config.dormant_after_ns
        && !controller_alive()
}

/// The agent's private mode state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeState {
    /// The mode.
    pub mode: AgentMode,
    /// The epoch the agent follows (0: none yet).
    pub epoch: u32,
    /// The heartbeat value last seen.
    pub heartbeat_ns: u64,
    /// When (agent clock) that value was first seen.
    pub heartbeat_seen_ns: u64,
}

impl ModeState {
    /// A process that has not looked at the control block yet.
    pub const START: ModeState = ModeState {
        mode: AgentMode::Startup,
        epoch: 0,
        heartbeat_ns: 0,
        heartbeat_seen_ns: 0,
    };
}

/// What [`next`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The new state.
    pub state: ModeState,
    /// The controller published a new epoch since the agent last followed one: its threads
    /// must register again (true once per new epoch).
    pub reattach: bool,
}

/// The mode function (see the [module docs](self)): pure and total.
#[must_use]
pub fn next(
    state: &ModeState,
    snapshot: &ControlSnapshot,
    now_ns: u64,
    config: &ModeConfig,
) -> Step {
    let mut s = *state;
    if snapshot.heartbeat_ns != s.heartbeat_ns {
        s.heartbeat_ns = snapshot.heartbeat_ns;
        s.heartbeat_seen_ns = now_ns;
    } else if now_ns < s.heartbeat_seen_ns {
        // The caller's clock went backwards: the age restarts rather than underflowing.
        s.heartbeat_seen_ns = now_ns;
    }
    let follows = match (snapshot.ready, snapshot.mode) {
        (true, Some(RegistryMode::DualWrite)) => Some(AgentMode::WarmUp),
        (true, Some(RegistryMode::PerThreadOnly)) => Some(AgentMode::Steady),
        _ => None,
    };
    let Some(wanted) = follows else {
        s.mode = AgentMode::Startup;
        return Step {
            state: s,
            reattach: false,
        };
    };
    let reattach = s.epoch != 0 && snapshot.epoch != s.epoch;
    s.epoch = snapshot.epoch;
    let stale = now_ns - s.heartbeat_seen_ns > config.stall_after_ns;
    s.mode = if stale { AgentMode::Stalled } else { wanted };
    Step { state: s, reattach }
}

/// How many times each `from → to` mode change happened (saturating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModeCounts {
    counts: [[u64; 4]; 4],
}

impl ModeCounts {
    /// Adds `n` changes `from → to` (saturating).
    pub fn add(&mut self, from: AgentMode, to: AgentMode, n: u64) {
        let c = &mut self.counts[from as usize][to as usize];
        *c = c.saturating_add(n);
    }

    /// Counts one change (nothing when `from == to`).
    pub fn record(&mut self, from: AgentMode, to: AgentMode) {
        if from != to {
            let c = &mut self.counts[from as usize][to as usize];
            *c = c.saturating_add(1);
        }
    }

    /// The number of `from → to` changes.
    #[must_use]
    pub fn get(&self, from: AgentMode, to: AgentMode) -> u64 {
        self.counts[from as usize][to as usize]
    }

    /// All changes, saturating.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .flatten()
            .fold(0u64, |a, &c| a.saturating_add(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_shm::clock::Clock;
    use ada_testkit::FakeClock;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn snap(
        ready: bool,
        epoch: u32,
        mode: Option<RegistryMode>,
        heartbeat_ns: u64,
    ) -> ControlSnapshot {
        ControlSnapshot {
            ready,
            epoch,
            version: 1,
            mode,
            heartbeat_ns,
            shutdown: false,
        }
    }

    #[test]
    fn startup_warm_up_steady_stalled_recovered_with_a_fake_clock() {
        let clock = FakeClock::new(1_000 * MS);
        let c = ModeConfig::default();
        let mut counts = ModeCounts::default();
        let mut s = ModeState::START;
        let mut step = |s: &mut ModeState, snap: ControlSnapshot| {
            let st = next(s, &snap, clock.now_ns(), &c);
            counts.record(s.mode, st.state.mode);
            *s = st.state;
            st.reattach
        };
        // Not ready yet.
        assert!(!step(
            &mut s,
            snap(false, 0, Some(RegistryMode::GlobalOnly), 0)
        ));
        assert_eq!(s.mode, AgentMode::Startup);
        // Ready, warm-up, the heartbeat ticking.
        clock.advance(MS);
        assert!(!step(
            &mut s,
            snap(true, 1, Some(RegistryMode::DualWrite), 5)
        ));
        assert_eq!(s.mode, AgentMode::WarmUp);
        clock.advance(MS);
        step(&mut s, snap(true, 1, Some(RegistryMode::PerThreadOnly), 6));
        assert_eq!(s.mode, AgentMode::Steady);
        // The heartbeat stops: steady until the threshold, stalled just past it.
        clock.advance(c.stall_after_ns);
        step(&mut s, snap(true, 1, Some(RegistryMode::PerThreadOnly), 6));
        assert_eq!(s.mode, AgentMode::Steady, "exactly at the threshold");
        clock.advance(1);
        step(&mut s, snap(true, 1, Some(RegistryMode::PerThreadOnly), 6));
        assert_eq!(s.mode, AgentMode::Stalled);
        // It moves again: back to the controller's mode at once.
        clock.advance(MS);
        step(&mut s, snap(true, 1, Some(RegistryMode::PerThreadOnly), 7));
        assert_eq!(s.mode, AgentMode::Steady);
        assert_eq!(counts.get(AgentMode::Startup, AgentMode::WarmUp), 1);
        assert_eq!(counts.get(AgentMode::WarmUp, AgentMode::Steady), 1);
        assert_eq!(counts.get(AgentMode::Steady, AgentMode::Stalled), 1);
        assert_eq!(counts.get(AgentMode::Stalled, AgentMode::Steady), 1);
        assert_eq!(counts.total(), 4);
    }

    #[test]
    fn a_new_epoch_asks_for_reattach_once() {
        let c = ModeConfig::default();
        let s = next(
            &ModeState::START,
            &snap(true, 3, Some(RegistryMode::PerThreadOnly), 1),
            10,
            &c,
        );
        assert!(!s.reattach, "the first epoch is not a re-attach");
        let s2 = next(
            &s.state,
            &snap(true, 4, Some(RegistryMode::PerThreadOnly), 2),
            20,
            &c,
        );
        assert!(s2.reattach);
        let s3 = next(
            &s2.state,
            &snap(true, 4, Some(RegistryMode::PerThreadOnly), 3),
            30,
            &c,
        );
        assert!(!s3.reattach, "once per epoch");
    }

    #[test]
    fn unknown_mode_or_not_ready_is_startup() {
        let c = ModeConfig::default();
        for snap in [
            snap(true, 1, None, 1),
            snap(true, 1, Some(RegistryMode::GlobalOnly), 1),
            snap(false, 1, Some(RegistryMode::PerThreadOnly), 1),
        ] {
            assert_eq!(
                next(&ModeState::START, &snap, 5, &c).state.mode,
                AgentMode::Startup
            );
        }
    }

    fn any_snapshot() -> impl Strategy<Value = ControlSnapshot> {
        (
            any::<bool>(),
            any::<u32>(),
            0u32..4,
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(ready, epoch, mode, heartbeat_ns, shutdown)| ControlSnapshot {
                    ready,
                    epoch,
                    version: 1,
                    mode: RegistryMode::try_from(mode).ok(),
                    heartbeat_ns,
                    shutdown,
                },
            )
    }

    #[test]
    fn dormant_only_when_stalled_or_waiting_long_enough_and_the_controller_is_gone() {
        let c = ModeConfig::default();
        let stalled = ModeState {
            mode: AgentMode::Stalled,
            epoch: 1,
            heartbeat_ns: 5,
            heartbeat_seen_ns: 100,
        };
        let late = 100 + c.dormant_after_ns + 1;
        assert!(dormant(&stalled, late, || false, &c));
        assert!(!dormant(&stalled, late - 1, || false, &c), "not yet");
        assert!(
            !dormant(&stalled, late, || true, &c),
            "a live controller is only stalled"
        );
        let steady = ModeState {
            mode: AgentMode::Steady,
            ..stalled
        };
        assert!(!dormant(&steady, late, || false, &c));
        // A controller that finished (ready withdrawn) and exited.
        let waiting = ModeState {
            mode: AgentMode::Startup,
            ..stalled
        };
        assert!(dormant(&waiting, late, || false, &c));
        assert!(
            !dormant(&waiting, late, || true, &c),
            "a controller still starting"
        );
        assert!(
            !dormant(&stalled, 0, || false, &c),
            "a clock behind the stall"
        );
    }

    proptest! {
        /// Total: any state, snapshot and time (clock jumps included) give a state, no panic;
        /// a heartbeat value far in the future cannot keep a stopped controller from being
        /// stalled once the value stops changing for longer than the threshold.
        #[test]
        fn total_and_a_frozen_heartbeat_stalls(
            snaps in prop::collection::vec(any_snapshot(), 1..30),
            times in prop::collection::vec(any::<u64>(), 1..30),
            frozen in any::<u64>(),
            start in 0u64..u64::MAX / 2,
        ) {
            let c = ModeConfig::default();
            let mut s = ModeState::START;
            for (snap, now) in snaps.iter().zip(times.iter().cycle()) {
                s = next(&s, snap, *now, &c).state;
            }
            let live = snap(true, 9, Some(RegistryMode::PerThreadOnly), frozen);
            s = next(&s, &live, start, &c).state;
            let later = next(&s, &live, start + c.stall_after_ns + 1, &c).state;
            prop_assert_eq!(later.mode, AgentMode::Stalled);
            // And it recovers the moment the heartbeat moves.
            let moved = snap(true, 9, Some(RegistryMode::PerThreadOnly), frozen.wrapping_add(1));
            let back = next(&later, &moved, start + c.stall_after_ns + 2, &c).state;
            prop_assert_eq!(back.mode, AgentMode::Steady);
        }
    }
}
