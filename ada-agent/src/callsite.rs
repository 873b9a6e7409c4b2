//! [`Callsite`]: a static name whose function id (and trigger verdict) is registered once per
//! process.

use crate::global::global;
use ada_persist::TriggerId;
use ada_registry::SymbolSource;
use ada_registry::callsite::{pack, publish, unpack_id, unpack_trigger};
use std::sync::atomic::{AtomicU64, Ordering};

/// A named place in the program (a function, a span, a mark site). Declare it as a `static`
/// (or use [`crate::callsite!`]); the first event that uses it registers the name in the
/// segment's symbol table and asks the marking policy once whether a symbol trigger fires for
/// it; later events read both from one cached word
/// ([`ada_registry::callsite`] describes its layout).
#[derive(Debug)]
pub struct Callsite {
    name: &'static str,
    address: u64,
    /// The packed id and verdict; 0 until registered.
    word: AtomicU64,
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
            word: AtomicU64::new(0),
        }
    }

    /// The name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function id, registering the name on first use; 0 when the process is not traced.
    #[inline(always)]
    pub fn id(&self) -> u64 {
        unpack_id(self.word())
    }

    /// The symbol trigger that fires for this callsite's name, registering it on first use;
    /// `None` when none does (or the process is not traced).
    pub fn trigger(&self) -> Option<TriggerId> {
        unpack_trigger(self.word()).and_then(|index| TriggerId::new(usize::from(index)))
    }

    /// The cached word (id and verdict), registering the name on first use; 0 when the process
    /// is not traced.
    #[inline(always)]
    pub(crate) fn word(&self) -> u64 {
        // Relaxed: the word is a plain number for this process; the name reaches the controller
        // through the symbol table's own Release publication, not through this cell.
        let word = self.word.load(Ordering::Relaxed);
        if word != 0 { word } else { self.register() }
    }

    #[cold]
    #[inline(never)]
    fn register(&self) -> u64 {
        let word = Callsite::register_name(self.name, self.address, None);
        if word == 0 {
            return 0;
        }
        // Two threads may race to register: the first word stored wins and both use it (the
        // loser's table entry names the same function and is simply never referenced; both
        // computed the same verdict from the same name).
        publish(&self.word, word)
    }

    /// Registers `name` at `address` (defined at `source`, if given) in the global agent's
    /// symbol table and asks the marking policy whether a symbol trigger fires for it: the
    /// packed word, or 0 when the process is not traced.
    pub(crate) fn register_name(name: &str, address: u64, source: Option<SymbolSource<'_>>) -> u64 {
        if crate::global::quiet() == crate::global::UNTRACED {
            // Known untraced: nothing to register (and no lazy-initialisation check to make).
            return 0;
        }
        let Some(agent) = global() else { return 0 };
        let id = agent.register_symbol_with_source(name, address, source);
        // Matching happens here, once per callsite (per racing thread at most).
        let verdict = agent.symbol_verdict(name).map(TriggerId::get);
        pack(id, verdict)
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
