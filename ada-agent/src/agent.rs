//! [`Agent`]: one process's attachment to a controller's segment.

use crate::driver::{ModeDriver, Tick};
use crate::mode::{AgentMode, ModeConfig, ModeCounts};
use ada_persist::{MAX_ENCODED_LEN, MarkingPolicy, TriggerId, TriggerSet};
use ada_registry::callsite::CALLSITE_ID_MASK;
use ada_registry::{Registry, RegistryError, SymbolSource};
use ada_shm::clock::{ClockId, MonotonicClock};
use ada_shm::{
    AttachOptions, ENV_SEGMENT, RegionKind, SegmentName, ShmError, TRIGGERS_REGION_VERSION,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the agent could not attach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// `ADA_SHM` is not set: no controller is tracing this process.
    #[error("{ENV_SEGMENT} is not set: no controller is tracing this process")]
    NotTraced,
    /// `ADA_SHM` holds something that is not an ADA segment name.
    #[error("{ENV_SEGMENT}={value:?} is not an ADA segment name: {source}")]
    BadName {
        /// The variable's value.
        value: String,
        /// Why it was rejected.
        source: ShmError,
    },
    /// The segment could not be attached or failed validation.
    #[error("cannot attach to the controller's segment {name}: {source}")]
    Attach {
        /// The segment name.
        name: String,
        /// What went wrong.
        source: RegistryError,
    },
}

/// A process's attachment to the controller's segment: the registry (threads, rings), the
/// symbol table and the marking policy compiled from the triggers the controller published.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Agent {
    registry: Registry,
    /// The clock every event is stamped with: the segment's, read once at attach (an unknown
    /// id refuses the segment there).
    clock: ClockId,
    /// The mode machine (shared by clones).
    driver: Arc<ModeDriver>,
    /// The compiled triggers; `None` when the segment has none (or they were unusable).
    policy: Option<Arc<MarkingPolicy>>,
    /// Why the published triggers could not be used, if they could not.
    trigger_error: Option<Arc<str>>,
}

impl Agent {
    /// Attaches to the segment named by `ADA_SHM`.
    pub fn from_env() -> Result<Agent, AgentError> {
        let value = std::env::var(ENV_SEGMENT).map_err(|_| AgentError::NotTraced)?;
        let name = SegmentName::parse(&value).map_err(|source| AgentError::BadName {
            value: value.clone(),
            source,
        })?;
        Agent::attach(&name)
    }

    /// Attaches to segment `name` (validated as untrusted input).
    pub fn attach(name: &SegmentName) -> Result<Agent, AgentError> {
        let registry = Registry::attach(name, AttachOptions::default()).map_err(|source| {
            AgentError::Attach {
                name: name.as_str().to_owned(),
                source,
            }
        })?;
        Ok(Agent::from_registry(registry))
    }

    /// Wraps a registry this process already has (a controller tracing itself, tests). Like
    /// [`Agent::attach`], reads and compiles the segment's triggers.
    pub fn from_registry(registry: Registry) -> Agent {
        let (policy, trigger_error) = match load_policy(&registry) {
            Ok(policy) => (policy.map(Arc::new), None),
            Err(e) => (None, Some(Arc::from(e))),
        };
        let agent = Agent {
            clock: registry.clock(),
            registry,
            driver: Arc::new(ModeDriver::new(ModeConfig::default())),
            policy,
            trigger_error,
        };
        agent.tick_mode(MonotonicClock::read());
        agent
    }

    /// The same attachment with its own mode machine under `config` (evaluated once now). The
    /// global agent's watcher ticks every `config.period_ns`; other agents are ticked by their
    /// owner ([`Agent::tick_mode`]).
    pub fn with_mode_config(mut self, config: ModeConfig) -> Agent {
        self.driver = Arc::new(ModeDriver::new(config));
        self.tick_mode(MonotonicClock::read());
        self
    }

    /// Holds the mode machine's turn, as a tick in progress does, until the guard is dropped:
    /// meanwhile no tick runs (the watcher's and every recording thread's attempts return at
    /// once). For tests of what a thread does while the watcher is in the middle of a tick
    /// (preempted there, say); `None` while a tick runs.
    #[doc(hidden)]
    pub fn hold_mode_turn(&self) -> Option<crate::driver::HeldTurn<'_>> {
        self.driver.hold_turn()
    }

    /// Evaluates the mode machine at `now_ns` (agent clock: a fake one in tests). `None` when a
    /// concurrent tick is deciding.
    pub fn tick_mode(&self, now_ns: u64) -> Option<Tick> {
        self.tick_mode_with(now_ns, |_| {})
    }

    /// [`tick_mode`](Agent::tick_mode), handing the dormant verdict to `publish` while the
    /// tick still holds its turn.
    pub(crate) fn tick_mode_with(&self, now_ns: u64, publish: impl FnOnce(bool)) -> Option<Tick> {
        let control = self.registry.control();
        self.driver
            .tick(control, now_ns, || controller_alive(control), publish)
    }

    /// The agent's effective mode, as the last tick decided.
    pub fn mode(&self) -> AgentMode {
        self.driver.mode()
    }

    /// Whether the agent is dormant (its controller is gone; see [`crate::mode::dormant`]).
    pub fn is_dormant(&self) -> bool {
        self.driver.dormant()
    }

    /// The mode changes this agent counted.
    pub fn mode_counts(&self) -> ModeCounts {
        self.driver.counts()
    }

    /// The mode machine's thresholds.
    pub fn mode_config(&self) -> ModeConfig {
        *self.driver.config()
    }

    /// The clock this agent stamps events with (the segment's: see [`ada_shm::clock`]). The
    /// mode machine is not an event stamp: it runs on `CLOCK_MONOTONIC` like the controller's
    /// heartbeat.
    pub fn clock(&self) -> ClockId {
        self.clock
    }

    pub(crate) fn driver(&self) -> &ModeDriver {
        &self.driver
    }

    /// The marking policy compiled from the segment's triggers; `None` when there are none.
    pub fn policy(&self) -> Option<&MarkingPolicy> {
        self.policy.as_deref()
    }

    /// Why the segment's triggers region could not be used (bad length, undecodable or
    /// uncompilable triggers, an unknown layout version): the agent then marks nothing but
    /// explicit [`crate::mark`]s. `None` when there was no region or it was fine.
    pub fn trigger_error(&self) -> Option<&str> {
        self.trigger_error.as_deref()
    }

    /// The symbol trigger that fires for the function `name`, if any.
    pub(crate) fn symbol_verdict(&self, name: &str) -> Option<TriggerId> {
        self.policy.as_ref()?.symbol_verdict(name)
    }

    /// The policy, if it has message triggers (the `message` hot path's one branch).
    pub(crate) fn message_policy(&self) -> Option<&MarkingPolicy> {
        self.policy
            .as_deref()
            .filter(|policy| policy.has_message_triggers())
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a function or callsite name (and its address, 0 if unknown) in the segment's
    /// symbol table and returns its function id. When the table is full the name cannot reach
    /// the controller: the id is then [`unregistered_id`] of the name (the controller shows it
    /// as `fn#<id>`) and the refusal is counted in the segment.
    pub fn register_symbol(&self, name: &str, address: u64) -> u64 {
        self.register_symbol_with_source(name, address, None)
    }

    /// [`register_symbol`](Agent::register_symbol) with where the symbol is defined (a file
    /// and a line from 1), which the trace keeps beside the name. A source the table cannot
    /// hold with the name (see [`ada_registry::SymbolTableRef::register_with_source`]) is left
    /// out; the name is registered all the same.
    pub fn register_symbol_with_source(
        &self,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> u64 {
        match self
            .registry
            .symbols()
            .register_with_source(name, address, source)
        {
            Ok(id) => id,
            Err(_) => unregistered_id(name),
        }
    }
}

/// Whether the controller is still there: the process that created (or last attached to) the
/// segment, or the process holding its drain, runs (a killed controller its parent has not
/// reaped yet does not).
fn controller_alive(control: &ada_registry::ControlBlock) -> bool {
    ada_shm::process::running(control.controller_pid())
        || ada_shm::process::running(control.drain_owner())
}

/// The id of a name the symbol table refused: FNV-1a of the name folded into the 47 bits a
/// callsite caches an id in ([`ada_registry::callsite::CALLSITE_ID_MASK`]), with the top one
/// of them (bit 46) set, so it never collides with a table id (those are below 2³²) and never
/// reaches the bits where a callsite caches its trigger verdict.
pub fn unregistered_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let top = CALLSITE_ID_MASK ^ (CALLSITE_ID_MASK >> 1);
    ((h ^ (h >> 47)) & CALLSITE_ID_MASK) | top
}

/// Reads the segment's [`RegionKind::Triggers`] region (untrusted: the length is bounded by the
/// region and by [`MAX_ENCODED_LEN`]), decodes and compiles it. `Ok(None)`: no region, or no
/// triggers in it.
fn load_policy(registry: &Registry) -> Result<Option<MarkingPolicy>, String> {
    let segment = registry.segment();
    let Ok(region) = segment.region(RegionKind::Triggers) else {
        return Ok(None);
    };
    if region.version != TRIGGERS_REGION_VERSION {
        return Err(format!(
            "triggers region version {} is not supported (expected {TRIGGERS_REGION_VERSION})",
            region.version
        ));
    }
    let bad = |e: ShmError| format!("triggers region: {e}");
    let words = segment
        .view_slice::<AtomicU64>(region.at(0).map_err(bad)?, region.size / 8)
        .map_err(bad)?;
    let word = |cell: &AtomicU64| {
        // Relaxed: the controller wrote the region before it handed the segment's name to
        // anyone and never changes it; a hostile writer can only make us decode other bytes,
        // which `TriggerSet::decode` treats as untrusted.
        cell.load(Ordering::Relaxed).to_ne_bytes()
    };
    let Some((len_word, data)) = words.split_first() else {
        return Err("triggers region is too small for its length".to_owned());
    };
    let len = u64::from_le_bytes(word(len_word));
    let room = data.len() as u64 * 8;
    if len > room || len > MAX_ENCODED_LEN as u64 {
        return Err(format!(
            "triggers region claims {len} bytes but holds at most {}",
            room.min(MAX_ENCODED_LEN as u64)
        ));
    }
    let len = len as usize; // <= MAX_ENCODED_LEN
    let bytes: Vec<u8> = data.iter().flat_map(word).take(len).collect();
    let set = TriggerSet::decode(&bytes).map_err(|e| format!("triggers do not decode: {e}"))?;
    if set.is_empty() {
        return Ok(None);
    }
    let policy =
        MarkingPolicy::compile(&set).map_err(|e| format!("triggers do not compile: {e}"))?;
    Ok(Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_registry::callsite::{CALLSITE_TRIGGERED, pack, unpack_id, unpack_trigger};

    #[test]
    fn unregistered_ids_fit_the_callsite_word_and_never_collide_with_table_ids() {
        for name in ["", "a", "svc::handler", &"x".repeat(5000)] {
            let id = unregistered_id(name);
            assert_eq!(id & !CALLSITE_ID_MASK, 0, "{name:?}: {id:#x}");
            assert_ne!(id & (1 << 46), 0, "{name:?}: above every table id");
            assert!(id > u64::from(u32::MAX));
            assert_eq!(unregistered_id(name), id, "stable");
            // Packed with or without a verdict, the id comes back whole.
            assert_eq!(unpack_id(pack(id, None)), id);
            assert_eq!(unpack_id(pack(id, Some(1023))), id);
            assert_eq!(unpack_trigger(pack(id, None)), None);
            assert_eq!(pack(id, None) & CALLSITE_TRIGGERED, 0);
        }
        assert_ne!(unregistered_id("a"), unregistered_id("b"));
    }
}
