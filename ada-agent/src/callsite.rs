//! [`Callsite`]: a static name whose function id is registered once per process.

use crate::global::global;
use std::sync::atomic::{AtomicU64, Ordering};

/// A named place in the program (a function, a span, a mark site). Declare it as a `static`
/// (or use [`crate::callsite!`]); the first event that uses it registers the name in the
/// segment's symbol table, later ones read the cached id.
#[derive(Debug)]
pub struct Callsite {
    name: &'static str,
    address: u64,
    id: AtomicU64,
}

impl Callsite {
    /// A callsite named `name` with no code address.
    pub const fn new(name: &'static str) -> Callsite {
        Callsite::with_address(name, 0)
    }

    /// A callsite named `name` at code address `address` (shown in the trace).
    pub const fn with_address(name: &'static str, address: u64) -> Callsite {
        Callsite {
            name,
            address,
            id: AtomicU64::new(0),
        }
    }

    /// The name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function id, registering the name on first use; 0 when the process is not traced.
    #[inline(always)]
    pub fn id(&self) -> u64 {
        // Relaxed: the id is a plain number for this process; the name reaches the controller
        // through the symbol table's own Release publication, not through this cell.
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 { id } else { self.register() }
    }

    #[cold]
    #[inline(never)]
    fn register(&self) -> u64 {
        let Some(agent) = global() else { return 0 };
        let id = agent.register_symbol(self.name, self.address);
        // Two threads may race to register: the first id stored wins and both use it (the
        // loser's table entry names the same function and is simply never referenced).
        // Relaxed: as in `id`; the compare-exchange only has to pick one winner.
        match self
            .id
            .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => id,
            Err(winner) => winner,
        }
    }
}

/// Declares a `static` [`Callsite`] and evaluates to a reference to it:
/// `ada_agent::callsite!("parse_header")`.
#[macro_export]
macro_rules! callsite {
    ($name:expr) => {{
        static CALLSITE: $crate::Callsite = $crate::Callsite::new($name);
        &CALLSITE
    }};
}
