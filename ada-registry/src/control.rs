//! The control block: how the controller tells agents that it is live.
//!
//! ```text
//! offset  field                 writer      reader   ordering contract
//!      0  registry_ready  u32   controller  agents   store Release after the registry, the
//!                                                    drain thread and the heartbeat are live;
//!                                                    agents load Acquire, then read the rest
//!      4  registry_epoch  u32   controller  agents   incremented by each `publish_ready` with a
//!                                                    Release fetch_add (only the controller
//!                                                    writes it), after the mode and before
//!                                                    `registry_ready`; readers load it Acquire
//!                                                    first, so an epoch seen comes with its
//!                                                    heartbeat, mode and readiness (or later)
//!      8  registry_version u32  controller  agents   CONTROL_VERSION, the control block's
//!                                                    layout version (written at creation)
//!     12  registry_mode   u32   controller  agents   requested RegistryMode (controller-owned:
//!                                                    agents never write it)
//!     16  clock_id        u32   controller  agents   the session timebase (ada_shm::clock)
//!     20  shutdown        u32   controller  agents   1 = controller is finalizing
//!     24  controller_pid  u32   controller  agents
//!     28  drain_owner     u32   controller  controllers  pid of the process holding the drain
//!                                                    claim (0 = none); compare-and-swap only,
//!                                                    so at most one drain runs per segment
//!     32  stamps_per_second u64 controller  agents   the session clock's rate as the creator
//!                                                    measured it (0 = unknown: nanoseconds);
//!                                                    agents scale time periods they compare
//!                                                    with event stamps (a TSC session)
//!    128  drain_heartbeat_ns u64 controller agents   stored Release every drain loop with
//!                                                    CLOCK_MONOTONIC (whatever the clock
//!                                                    events use); agents load Acquire
//!    256  mode_transitions u64  agents      both     Relaxed counters (statistics only):
//!    264  dormancies      u64   agents      both     mode changes of every agent process,
//!    272  mode_entries [u64; 4] agents      both     times an agent went dormant, entries
//!    304  reattaches      u64   agents      both     into each agent mode (startup, warm-up,
//!                                                    steady, stalled), processes that
//!                                                    re-attached to a new epoch
//! ```
//!
//! The rule for the fields that change while agents run (`registry_ready`, `registry_mode`,
//! `shutdown`, `drain_heartbeat_ns`): **the writer publishes with `Release` and the reader loads
//! with `Acquire`**, so whatever the writer did before the store (creating the registry,
//! starting the drain) is visible to a reader that saw the new value. `registry_epoch` follows
//! the same rule (a Release increment, read Acquire first by [`ControlBlock::snapshot`]): a
//! snapshot that sees epoch `e` sees the heartbeat and mode published with `e` and, after a
//! restart, never the previous controller's readiness (withdrawn before the increment). The
//! mode that [`ControlBlock::publish_ready`] stores travels with the epoch (stored `Relaxed`
//! just before its Release increment); `registry_version`,
//! `clock_id`, `stamps_per_second` and `controller_pid` are written once by [`ControlBlock::initialize`] before the
//! segment is published and read `Relaxed`; `drain_owner` changes only by compare-and-swap
//! (`AcqRel`, see [`ControlBlock::claim_drain`]); the counters are `Relaxed` because no other
//! memory is published through them.

use ada_shm::CacheLine;
use ada_shm::clock::ClockId;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

ada_shm::wire_enum! {
    /// What the controller asks agents to do with their events.
    pub enum RegistryMode {
        /// Only the process-wide fallback rings (before the registry is ready).
        GlobalOnly = 0,
        /// Warm-up: per-thread rings, with the fallback path still drained.
        DualWrite = 1,
        /// Steady state: per-thread rings only.
        PerThreadOnly = 2,
    }
}

/// Controller-published state (one cache line).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct ControllerState {
    registry_ready: AtomicU32,
    registry_epoch: AtomicU32,
    registry_version: AtomicU32,
    registry_mode: AtomicU32,
    clock_id: AtomicU32,
    shutdown: AtomicU32,
    controller_pid: AtomicU32,
    drain_owner: AtomicU32,
    stamps_per_second: AtomicU64,
}

/// Agent-side statistics the controller reports.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct AgentStats {
    mode_transitions: AtomicU64,
    dormancies: AtomicU64,
    mode_entries: [AtomicU64; 4],
    reattaches: AtomicU64,
}

/// A copy of the agent-side statistics in the control block (summed over every agent process
/// of the segment; written by agents, so untrusted: information only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStatsSnapshot {
    /// Agent mode changes.
    pub mode_transitions: u64,
    /// Times an agent process went dormant (its controller gone: it records nothing until a
    /// controller attaches).
    pub dormancies: u64,
    /// Entries into each agent mode, indexed by the mode's number: startup 0, warm-up 1,
    /// steady 2, stalled 3.
    pub mode_entries: [u64; 4],
    /// Agent processes that followed a new epoch (a restarted controller) and re-registered.
    pub reattaches: u64,
}

/// The control block (see the module docs for the byte diagram and ordering contract).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct ControlBlock {
    state: CacheLine<ControllerState>,
    heartbeat: CacheLine<AtomicU64>,
    agents: CacheLine<AgentStats>,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic (or padding around atomics), any bit pattern is valid.
unsafe impl ada_shm::ShmSafe for ControlBlock {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<ControlBlock>() == 384);
    assert!(core::mem::offset_of!(ControlBlock, heartbeat) == 128);
    assert!(core::mem::offset_of!(ControlBlock, agents) == 256);
};

/// Most attempts [`ControlBlock::snapshot`] makes at a consistent snapshot.
pub const SNAPSHOT_TRIES: u32 = 4;

/// Layout version of the control region. 2: per-mode entry counts and re-attaches in the
/// agent statistics.
pub const CONTROL_VERSION: u32 = 2;

/// What an agent reads in one go: the epoch first, then `ready` (both Acquire), then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSnapshot {
    /// `registry_ready != 0`.
    pub ready: bool,
    /// Current registry epoch.
    pub epoch: u32,
    /// The `registry_version` word: [`CONTROL_VERSION`], as the creator wrote it.
    pub version: u32,
    /// Requested mode; `None` if the raw value is unknown.
    pub mode: Option<RegistryMode>,
    /// Last heartbeat in `CLOCK_MONOTONIC` nanoseconds (0 = never).
    pub heartbeat_ns: u64,
    /// The controller is finalizing.
    pub shutdown: bool,
}

impl ControlBlock {
    /// Writes the initial state. Called once by the creator before anyone can attach (the
    /// segment header's magic publishes it), so `Relaxed` suffices.
    pub fn initialize(&self, clock: ClockId, controller_pid: u32) {
        let s = &self.state;
        // Relaxed (all): not yet visible to any other process; segment publication orders it.
        s.registry_ready.store(0, Ordering::Relaxed);
        s.registry_epoch.store(0, Ordering::Relaxed);
        s.registry_version.store(CONTROL_VERSION, Ordering::Relaxed);
        s.registry_mode
            .store(RegistryMode::GlobalOnly as u32, Ordering::Relaxed);
        s.clock_id.store(clock as u32, Ordering::Relaxed);
        s.shutdown.store(0, Ordering::Relaxed);
        s.controller_pid.store(controller_pid, Ordering::Relaxed);
        s.drain_owner.store(0, Ordering::Relaxed);
        s.stamps_per_second.store(0, Ordering::Relaxed);
        self.heartbeat.store(0, Ordering::Relaxed);
    }

    /// Writes the session clock's rate in stamps per second (creator only, after
    /// [`initialize`](Self::initialize) and before the segment is published).
    pub fn set_stamps_per_second(&self, rate: u64) {
        // Relaxed: not yet visible to any other process; segment publication orders it.
        self.state.stamps_per_second.store(rate, Ordering::Relaxed);
    }

    /// The session clock's rate as the creator measured it (0 = unknown; untrusted: another
    /// process may have rewritten it).
    pub fn stamps_per_second(&self) -> u64 {
        // Relaxed: immutable after initialisation, which segment publication ordered.
        self.state.stamps_per_second.load(Ordering::Relaxed)
    }

    /// Controller: announce a live registry under a new epoch. Call only after the drain thread
    /// runs and a first heartbeat was stored.
    pub fn publish_ready(&self, mode: RegistryMode) -> u32 {
        let s = &self.state;
        // Relaxed: the Release increment of the epoch below publishes it.
        s.registry_mode.store(mode as u32, Ordering::Relaxed);
        // Release RMW (only the controller writes the epoch): a snapshot that acquires the new
        // epoch sees the mode above, the heartbeat and the withdrawal of the previous readiness
        // made before it.
        let epoch = s
            .registry_epoch
            .fetch_add(1, Ordering::Release)
            .wrapping_add(1);
        // Release: an agent that acquires ready == 1 sees the epoch, mode and registry contents.
        s.registry_ready.store(1, Ordering::Release);
        epoch
    }

    /// Controller: withdraw readiness (before re-creating the registry or at shutdown).
    pub fn withdraw_ready(&self) {
        // Release: anything the controller did before withdrawing is visible to agents that see 0.
        self.state.registry_ready.store(0, Ordering::Release);
    }

    /// Controller: request a mode.
    pub fn set_mode(&self, mode: RegistryMode) {
        // Release: agents acquiring the new mode see what the controller prepared for it.
        self.state
            .registry_mode
            .store(mode as u32, Ordering::Release);
    }

    /// Controller: store a heartbeat taken from `CLOCK_MONOTONIC` (never the event clock).
    pub fn tick_heartbeat(&self, now_ns: u64) {
        // Release: an agent that sees this heartbeat also sees the drain progress made before it
        // (returned rings, counters), which is what "the drain is alive" means.
        self.heartbeat.store(now_ns, Ordering::Release);
    }

    /// Controller: announce shutdown (agents keep recording; events land until the final drain).
    pub fn request_shutdown(&self) {
        // Release: pairs with the Acquire in `snapshot`.
        self.state.shutdown.store(1, Ordering::Release);
    }

    /// Agent: read everything, the epoch first, then the epoch again: a snapshot that raced a
    /// publication (the epoch moved meanwhile) is taken again, at most [`SNAPSHOT_TRIES`]
    /// times (a control block republished without end cannot hold the agent here; the last
    /// attempt is returned as read). So the epoch returned is the one `ready`, the heartbeat
    /// and the mode were read under: a snapshot never pairs a new epoch with the previous
    /// controller's readiness, nor a readiness published under a later epoch with an earlier
    /// one.
    pub fn snapshot(&self) -> ControlSnapshot {
        let s = &self.state;
        // Acquire: pairs with `publish_ready`'s Release increment; the loads below see what was
        // published with this epoch (or later), never an earlier controller's readiness.
        let mut epoch = s.registry_epoch.load(Ordering::Acquire);
        let mut tries = 1;
        loop {
            // Acquire: pairs with `publish_ready`'s Release; a `ready` published under a later
            // epoch makes the epoch's second load below see that epoch (its increment came
            // first), so the snapshot is taken again.
            let ready = s.registry_ready.load(Ordering::Acquire) != 0;
            // Acquire (each): pairs with the controller's Release stores of these fields.
            let heartbeat_ns = self.heartbeat.load(Ordering::Acquire);
            let mode = RegistryMode::try_from(s.registry_mode.load(Ordering::Acquire)).ok();
            // Acquire: pairs with `request_shutdown`.
            let shutdown = s.shutdown.load(Ordering::Acquire) != 0;
            // Acquire: as the first load.
            let again = s.registry_epoch.load(Ordering::Acquire);
            if again == epoch || tries == SNAPSHOT_TRIES {
                return ControlSnapshot {
                    ready,
                    epoch,
                    // Relaxed: immutable after initialisation.
                    version: s.registry_version.load(Ordering::Relaxed),
                    mode,
                    heartbeat_ns,
                    shutdown,
                };
            }
            epoch = again;
            tries += 1;
        }
    }

    /// Agent: whether `registry_ready` is set, alone (a waiting agent's cheap look; take a
    /// [`snapshot`](Self::snapshot) for the rest).
    pub fn is_ready(&self) -> bool {
        // Acquire: pairs with `publish_ready`'s Release, like `snapshot`'s load.
        self.state.registry_ready.load(Ordering::Acquire) != 0
    }

    /// The session clock recorded at creation (`None` if the raw value is unknown).
    pub fn clock(&self) -> Option<ClockId> {
        // Relaxed: immutable after initialisation, which segment publication ordered.
        ClockId::try_from(self.state.clock_id.load(Ordering::Relaxed)).ok()
    }

    /// Pid of the controller that created the segment.
    pub fn controller_pid(&self) -> u32 {
        // Relaxed: immutable after initialisation.
        self.state.controller_pid.load(Ordering::Relaxed)
    }

    /// Claims the segment's drain for `claimant` (a non-zero pid). `Err(holder)` if another
    /// claim is held.
    pub fn claim_drain(&self, claimant: u32) -> Result<(), u32> {
        debug_assert!(claimant != 0);
        self.replace_drain_owner(0, claimant)
    }

    /// Moves the drain claim from `dead` (a holder known to have died) to `claimant`.
    /// `Err(holder)` if the word no longer names `dead`.
    pub fn take_over_drain(&self, dead: u32, claimant: u32) -> Result<(), u32> {
        debug_assert!(dead != 0 && claimant != 0);
        self.replace_drain_owner(dead, claimant)
    }

    fn replace_drain_owner(&self, from: u32, to: u32) -> Result<(), u32> {
        self.state
            .drain_owner
            // AcqRel: Acquire so the new drain sees everything the previous one did to the lanes
            // before it released (Release in `release_drain`); Release orders our claim before
            // the lane accesses that follow it. Acquire on failure: the holder we report is real.
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Gives the drain claim of `claimant` back. Returns whether it held it.
    pub fn release_drain(&self, claimant: u32) -> bool {
        self.state
            .drain_owner
            // Release: the next claimant (Acquire) sees the lane state this drain left.
            // Relaxed on failure: nothing was ours to release.
            .compare_exchange(claimant, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Pid of the process holding the drain claim (0 = none).
    pub fn drain_owner(&self) -> u32 {
        // Acquire: pairs with the claim's Release; informational for status displays.
        self.state.drain_owner.load(Ordering::Acquire)
    }

    /// Agent: count a mode transition into mode number `to` (0..4; statistics).
    pub fn count_mode_transition(&self, to: usize) {
        // Relaxed: a statistic; nothing is published through it.
        self.agents.mode_transitions.fetch_add(1, Ordering::Relaxed);
        if let Some(entries) = self.agents.mode_entries.get(to) {
            // Relaxed: a statistic.
            entries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Agent: count a process that re-attached to a new epoch (statistics).
    pub fn count_reattach(&self) {
        // Relaxed: a statistic.
        self.agents.reattaches.fetch_add(1, Ordering::Relaxed);
    }

    /// Agent: count a process going dormant (statistics).
    pub fn count_dormancy(&self) {
        // Relaxed: a statistic.
        self.agents.dormancies.fetch_add(1, Ordering::Relaxed);
    }

    /// The agents' statistics.
    pub fn agent_stats(&self) -> AgentStatsSnapshot {
        let a = &self.agents;
        // Relaxed (all): statistics.
        AgentStatsSnapshot {
            mode_transitions: a.mode_transitions.load(Ordering::Relaxed),
            dormancies: a.dormancies.load(Ordering::Relaxed),
            mode_entries: [0, 1, 2, 3].map(|i| a.mode_entries[i].load(Ordering::Relaxed)),
            reattaches: a.reattaches.load(Ordering::Relaxed),
        }
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn publish_ready_bumps_epoch_and_snapshot_sees_it() {
        let cb = ControlBlock::default();
        cb.initialize(ClockId::Monotonic, 77);
        let s = cb.snapshot();
        assert!(!s.ready);
        assert_eq!(s.epoch, 0);
        assert_eq!(s.mode, Some(RegistryMode::GlobalOnly));
        cb.tick_heartbeat(123);
        assert_eq!(cb.publish_ready(RegistryMode::DualWrite), 1);
        let s = cb.snapshot();
        assert!(s.ready && s.epoch == 1 && s.heartbeat_ns == 123);
        assert_eq!(s.mode, Some(RegistryMode::DualWrite));
        cb.withdraw_ready();
        assert_eq!(cb.publish_ready(RegistryMode::PerThreadOnly), 2);
        assert_eq!(cb.controller_pid(), 77);
        assert_eq!(cb.clock(), Some(ClockId::Monotonic));
        assert_eq!(cb.stamps_per_second(), 0);
        cb.set_stamps_per_second(3_000_000_000);
        assert_eq!(cb.stamps_per_second(), 3_000_000_000);
        assert_eq!(RegistryMode::try_from(9), Err(9));
    }

    #[test]
    fn agent_stats_count_entries_per_mode_and_ignore_unknown_modes() {
        let cb = ControlBlock::default();
        cb.count_mode_transition(1);
        cb.count_mode_transition(3);
        cb.count_mode_transition(3);
        cb.count_mode_transition(9);
        cb.count_dormancy();
        cb.count_reattach();
        let s = cb.agent_stats();
        assert_eq!(s.mode_transitions, 4);
        assert_eq!(s.mode_entries, [0, 1, 0, 2]);
        assert_eq!((s.dormancies, s.reattaches), (1, 1));
    }

    #[test]
    fn drain_claim_is_exclusive_and_can_be_taken_from_the_dead() {
        let cb = ControlBlock::default();
        cb.initialize(ClockId::Monotonic, 1);
        assert_eq!(cb.drain_owner(), 0);
        assert_eq!(cb.claim_drain(10), Ok(()));
        assert_eq!(cb.claim_drain(11), Err(10));
        assert_eq!(cb.claim_drain(10), Err(10), "not even the holder twice");
        assert!(!cb.release_drain(11), "only the holder releases");
        assert_eq!(cb.take_over_drain(9, 11), Err(10), "the holder is not 9");
        assert_eq!(cb.take_over_drain(10, 11), Ok(()));
        assert_eq!(cb.drain_owner(), 11);
        assert!(cb.release_drain(11));
        assert_eq!(cb.claim_drain(12), Ok(()));
    }
}
