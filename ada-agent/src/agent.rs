//! [`Agent`]: one process's attachment to a controller's segment.

use ada_registry::{Registry, RegistryError};
use ada_shm::{AttachOptions, ENV_SEGMENT, SegmentName, ShmError};

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

/// A process's attachment to the controller's segment: the registry (threads, rings) and the
/// symbol table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Agent {
    registry: Registry,
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
        Ok(Agent { registry })
    }

    /// Wraps a registry this process already has (a controller tracing itself, tests).
    pub fn from_registry(registry: Registry) -> Agent {
        Agent { registry }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a function or callsite name (and its address, 0 if unknown) in the segment's
    /// symbol table and returns its function id. When the table is full the name cannot reach
    /// the controller: the id is then a stable hash of the name with the top bit set (the
    /// controller shows it as `fn#<id>`) and the refusal is counted in the segment.
    pub fn register_symbol(&self, name: &str, address: u64) -> u64 {
        match self.registry.symbols().register(name, address) {
            Ok(id) => id,
            Err(_) => unregistered_id(name),
        }
    }
}

/// The id of a name the symbol table refused: FNV-1a of the name with the top bit set, so it
/// never collides with a table id (those are small).
pub fn unregistered_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | (1 << 63)
}
