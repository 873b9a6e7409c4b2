//! [`ModeDriver`]: runs the [`mode`](crate::mode) machine for one [`Agent`](crate::Agent) and
//! keeps its outcome in the agent's own memory.
//!
//! [`ModeDriver::tick`] takes a snapshot of the control block, runs [`mode::next`] and
//! [`mode::dormant`] with the time it is given (a fake clock in tests; the global agent's mode
//! watcher thread passes the monotonic clock every [`ModeConfig::period_ns`]), counts each mode
//! change (privately in [`ModeCounts`] and in the control block's agent statistics, for the
//! report and `ada status`) and publishes the result in three words the recording paths read:
//! the effective mode, the dormant flag and the attach generation (bumped once per new epoch:
//! a thread whose writer was registered under an older generation re-registers at its next
//! slow path). The control block is only read, never trusted for where to write.

use crate::mode::{self, AgentMode, ModeConfig, ModeCounts, ModeState};
use ada_registry::ControlBlock;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

/// What one [`Agent::tick_mode`](crate::Agent::tick_mode) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The mode after the tick.
    pub mode: AgentMode,
    /// Whether the agent is dormant after the tick.
    pub dormant: bool,
    /// A new epoch was followed (the attach generation moved).
    pub reattached: bool,
}

/// The mode machine's state and its published outcome (see the module docs).
///
/// Ticks are serialised by a try-once flag rather than a lock: a tick that finds another
/// running returns at once, and a `fork` child, whose copy of the flag may say a tick was
/// running in a thread it does not have, clears it ([`ModeDriver::forget_tick_after_fork`]);
/// a `Mutex` held at the fork would stay locked in the child for good.
#[derive(Debug)]
pub(crate) struct ModeDriver {
    config: ModeConfig,
    /// [`AgentMode`] as a byte.
    effective: AtomicU8,
    dormant: AtomicBool,
    /// New epochs followed since the agent attached.
    generation: AtomicU32,
    /// `from → to` mode changes, indexed `[from][to]` (saturating).
    counts: [[AtomicU64; 4]; 4],
    /// Set while a tick runs: the thread that set it is the one that may touch `state`.
    ticking: AtomicBool,
    state: UnsafeCell<ModeState>,
}

// SAFETY: `state` is only read or written by the thread that holds `ticking` (taken with a
// swap in `Turn::take`, given back by the guard), so never by two threads at once; every other
// field is an atomic or immutable.
unsafe impl Sync for ModeDriver {}

/// A tick's exclusive turn; gives it back when dropped (a panic included).
struct Turn<'d>(&'d AtomicBool);

impl<'d> Turn<'d> {
    fn take(flag: &'d AtomicBool) -> Option<Self> {
        // Acquire: the previous turn's writes to the state (released below) are visible.
        (!flag.swap(true, Ordering::Acquire)).then_some(Turn(flag))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // Release: this turn's writes to the state happen before the next turn's reads.
        self.0.store(false, Ordering::Release);
    }
}

/// A tick's turn held from outside a tick (see [`crate::Agent::hold_mode_turn`]): no tick
/// runs until it is dropped.
#[doc(hidden)]
pub struct HeldTurn<'d>(#[allow(dead_code)] Turn<'d>);

impl std::fmt::Debug for HeldTurn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldTurn")
    }
}

impl ModeDriver {
    /// Takes the tick's turn as a tick would, without ticking (`None` while a tick runs).
    pub(crate) fn hold_turn(&self) -> Option<HeldTurn<'_>> {
        Turn::take(&self.ticking).map(HeldTurn)
    }

    pub(crate) fn new(config: ModeConfig) -> Self {
        ModeDriver {
            config,
            effective: AtomicU8::new(AgentMode::Startup as u8),
            dormant: AtomicBool::new(false),
            generation: AtomicU32::new(0),
            counts: Default::default(),
            ticking: AtomicBool::new(false),
            state: UnsafeCell::new(ModeState::START),
        }
    }

    pub(crate) fn config(&self) -> &ModeConfig {
        &self.config
    }

    /// Evaluates the machine at `now_ns`. `controller_alive` says whether the controller's
    /// processes still exist: asked only when the heartbeat has been still for the dormant
    /// threshold (see [`mode::dormant`]), so a tick makes no system call otherwise. `publish`
    /// gets the dormant verdict while the tick still holds its turn (the global agent's early
    /// out follows it in the order the ticks ran). `None` when another tick is running (it
    /// decides; this one has nothing to add).
    pub(crate) fn tick(
        &self,
        control: &ControlBlock,
        now_ns: u64,
        controller_alive: impl FnOnce() -> bool,
        publish: impl FnOnce(bool),
    ) -> Option<Tick> {
        let _turn = Turn::take(&self.ticking)?;
        // SAFETY: holding the turn makes this thread the only one touching `state`.
        let state = unsafe { &mut *self.state.get() };
        let before = *state;
        let step = mode::next(&before, &control.snapshot(), now_ns, &self.config);
        let after = step.state;
        let dormant = mode::dormant(&after, now_ns, controller_alive, &self.config);
        *state = after;
        if before.mode != after.mode {
            let c = &self.counts[before.mode as usize][after.mode as usize];
            // Relaxed (both): a statistic only ticks (one at a time, by the turn) write.
            c.store(
                c.load(Ordering::Relaxed).saturating_add(1),
                Ordering::Relaxed,
            );
            control.count_mode_transition(after.mode as usize);
        }
        // Relaxed: only ticks (one at a time) store the flag.
        if dormant && !self.dormant.load(Ordering::Relaxed) {
            control.count_dormancy();
        }
        if step.reattach {
            // Relaxed RMW: a counter the writers compare with their own copy; the mode store
            // below (Release) orders it before the mode they read with it.
            self.generation.fetch_add(1, Ordering::Relaxed);
            control.count_reattach();
        }
        // Release (both): a recording path that loads the mode or the flag (Acquire) sees the
        // generation bumped above with it; the registry it then registers in was published by
        // the control block's ready flag, which `snapshot` acquired before this store.
        self.dormant.store(dormant, Ordering::Release);
        self.effective.store(after.mode as u8, Ordering::Release);
        publish(dormant);
        Some(Tick {
            mode: after.mode,
            dormant,
            reattached: step.reattach,
        })
    }

    /// `fork` child: a tick the parent was running at the fork belongs to a thread the child
    /// does not have; let the child's ticks run.
    pub(crate) fn forget_tick_after_fork(&self) {
        // Relaxed: the child is single-threaded when its fork handler runs.
        self.ticking.store(false, Ordering::Relaxed);
    }

    /// The mode the last tick decided.
    #[inline]
    pub(crate) fn mode(&self) -> AgentMode {
        // Acquire: pairs with `tick`'s Release store (the generation travels with it).
        match self.effective.load(Ordering::Acquire) {
            0 => AgentMode::Startup,
            1 => AgentMode::WarmUp,
            2 => AgentMode::Steady,
            _ => AgentMode::Stalled,
        }
    }

    /// Whether the last tick found the agent dormant.
    #[inline]
    pub(crate) fn dormant(&self) -> bool {
        // Acquire: pairs with `tick`'s Release store.
        self.dormant.load(Ordering::Acquire)
    }

    /// New epochs followed so far.
    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        // Relaxed: read on a slow path after `mode()` or `dormant()` (Acquire) or compared
        // against a copy; a stale value only delays a re-registration to the next slow path.
        self.generation.load(Ordering::Relaxed)
    }

    /// The mode changes counted so far.
    pub(crate) fn counts(&self) -> ModeCounts {
        let mut counts = ModeCounts::default();
        for from in AgentMode::ALL {
            for to in AgentMode::ALL {
                // Relaxed: a statistic.
                let n = self.counts[from as usize][to as usize].load(Ordering::Relaxed);
                counts.add(from, to, n);
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_registry::RegistryMode;
    use ada_shm::clock::ClockId;

    const MS: u64 = 1_000_000;

    #[test]
    fn ticks_publish_the_mode_count_changes_and_bump_the_generation_per_new_epoch() {
        let cb = ControlBlock::default();
        cb.initialize(ClockId::Monotonic, 1);
        let d = ModeDriver::new(ModeConfig::default());
        let alive = || true;
        assert_eq!(
            d.tick(&cb, MS, alive, |_| {}).unwrap().mode,
            AgentMode::Startup
        );
        cb.tick_heartbeat(1);
        cb.publish_ready(RegistryMode::DualWrite);
        assert_eq!(
            d.tick(&cb, 2 * MS, alive, |_| {}).unwrap().mode,
            AgentMode::WarmUp
        );
        assert_eq!(d.mode(), AgentMode::WarmUp);
        cb.set_mode(RegistryMode::PerThreadOnly);
        cb.tick_heartbeat(2);
        assert_eq!(
            d.tick(&cb, 3 * MS, alive, |_| {}).unwrap().mode,
            AgentMode::Steady
        );
        // A restarted controller: ready again under a new epoch.
        cb.withdraw_ready();
        cb.tick_heartbeat(3);
        cb.publish_ready(RegistryMode::DualWrite);
        let t = d.tick(&cb, 4 * MS, alive, |_| {}).unwrap();
        assert!(t.reattached && !t.dormant);
        assert_eq!(d.generation(), 1);
        assert!(
            !d.tick(&cb, 5 * MS, alive, |_| {}).unwrap().reattached,
            "once"
        );
        let s = cb.agent_stats();
        assert_eq!(s.mode_entries, [0, 2, 1, 0]);
        assert_eq!((s.mode_transitions, s.reattaches), (3, 1));
        assert_eq!(d.counts().get(AgentMode::Steady, AgentMode::WarmUp), 1);
    }

    #[test]
    fn a_stall_whose_controller_is_gone_turns_dormant_and_a_new_epoch_ends_it() {
        let cb = ControlBlock::default();
        cb.initialize(ClockId::Monotonic, 1);
        let c = ModeConfig::default();
        let d = ModeDriver::new(c);
        cb.tick_heartbeat(7);
        cb.publish_ready(RegistryMode::PerThreadOnly);
        d.tick(&cb, MS, || true, |_| {}).unwrap();
        let stalled_at = MS + c.stall_after_ns + 1;
        assert_eq!(
            d.tick(&cb, stalled_at, || false, |_| {}).unwrap().mode,
            AgentMode::Stalled
        );
        assert!(!d.dormant(), "not long enough");
        let late = MS + c.dormant_after_ns + 1;
        assert!(
            !d.tick(&cb, late, || true, |_| {}).unwrap().dormant,
            "a live controller"
        );
        assert!(d.tick(&cb, late, || false, |_| {}).unwrap().dormant);
        assert!(d.dormant());
        assert!(d.tick(&cb, late + 1, || false, |_| {}).unwrap().dormant);
        assert_eq!(cb.agent_stats().dormancies, 1, "counted once");
        cb.withdraw_ready();
        cb.tick_heartbeat(8);
        cb.publish_ready(RegistryMode::DualWrite);
        let t = d.tick(&cb, late + MS, || false, |_| {}).unwrap();
        assert!(t.reattached && !t.dormant && !d.dormant());
        assert_eq!(t.mode, AgentMode::WarmUp);
    }
}
