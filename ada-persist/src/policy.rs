//! The marking policy: a [`TriggerSet`] compiled into two bounded automata, one over every
//! symbol trigger and one over every message trigger, that say which trigger (if any) a symbol
//! name or a message text fires.
//!
//! Each group of patterns becomes ONE multi-pattern
//! [`regex_automata::meta::Regex`] (a lazy DFA over a Thompson NFA, with literal prefilters;
//! the bounded backtracker is switched off), built with explicit limits: the NFA may take
//! [`NFA_SIZE_LIMIT`] bytes, a full DFA (used only when small) [`DFA_SIZE_LIMIT`], the lazy DFA's
//! cache [`HYBRID_CACHE_CAPACITY`] (when it thrashes the search falls back to the PikeVM, still
//! linear). A set whose automaton would exceed the limits is refused by
//! [`MarkingPolicy::compile`] with a [`PolicyError`]; nothing hostile can make compiling or
//! matching take more than time linear in the pattern and input sizes, or memory beyond the
//! limits.
//!
//! A literal symbol name compiles to an escaped, anchored pattern (`\A(?s:.*::)?NAME\z`, or
//! `\ANAME\z` when qualified); a literal message text to an escaped, unanchored one.
//!
//! **Verdicts.** [`MarkingPolicy::symbol_verdict`] and [`MarkingPolicy::message_verdict`]
//! report the *first* matching trigger in spec order (every pattern is searched, overlapping;
//! the lowest id wins). Symbol verdicts are meant to be taken once per callsite, when its name
//! is registered, and cached with it; see the crate's bench for the cost.
//!
//! **Documented edge cases.**
//! - A pattern that matches everything (`symbol~=.*`, `message~=x*`: any regex that can match
//!   the empty string without an anchor or word boundary) fires for every symbol or message.
//!   That is allowed (it makes every callsite a trigger, which with the window tracker persists
//!   everything the detail lane records, plus window metadata); [`MarkingPolicy::universal`]
//!   lists such triggers so a front end can warn.
//! - 10 000 specs are refused by [`TriggerSet::parse`] (at most
//!   [`MAX_TRIGGERS`](crate::MAX_TRIGGERS)). The full [`MAX_TRIGGERS`](crate::MAX_TRIGGERS) of
//!   literal names compile within the limits; many large regexes (each counted repetition
//!   multiplies the NFA, and Unicode classes such as `\w` are large) may not, and are refused
//!   with [`PolicyError::TooLarge`] in bounded time, naming the first trigger that is too large
//!   on its own if there is one.

use crate::spec::{Target, TriggerId, TriggerSet, TriggerSpec};
use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson;
use regex_automata::{Input, MatchKind, PatternSet};

/// Most bytes the Thompson NFA of one pattern group may take.
pub const NFA_SIZE_LIMIT: usize = 8 << 20;
/// Most bytes a fully compiled DFA may take; larger groups use the lazy DFA only.
pub const DFA_SIZE_LIMIT: usize = 2 << 20;
/// Capacity of the lazy DFA's cache (per concurrent search).
pub const HYBRID_CACHE_CAPACITY: usize = 2 << 20;
/// Most bytes of the one-pass DFA (anchored searches only).
pub const ONEPASS_SIZE_LIMIT: usize = 1 << 20;

/// Why a [`TriggerSet`] did not compile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The group's automaton would exceed the size limits.
    #[error(
        "the {count} {what} triggers need a larger automaton than the {limit}-byte limit{}; use fewer or simpler patterns (bounded counted repetitions such as `x{{1000}}` are costly)",
        culprit.as_ref().map_or(String::new(), |(id, spec)| format!(" (trigger {} {spec:?} alone exceeds it)", id.index() + 1))
    )]
    TooLarge {
        /// `symbol` or `message`.
        what: &'static str,
        /// How many triggers the group holds.
        count: usize,
        /// The limit that was hit, in bytes.
        limit: usize,
        /// The first trigger (in spec order) whose automaton exceeds the limit on its own, with
        /// its spec text; `None` when the triggers before any such one together exceed it.
        culprit: Option<(TriggerId, String)>,
    },
    /// The automaton builder refused the group for another reason.
    #[error("the {what} triggers do not compile: {source}")]
    Build {
        /// `symbol` or `message`.
        what: &'static str,
        /// regex-automata's error (boxed: it is large).
        source: Box<meta::BuildError>,
    },
}

/// One compiled group: the automaton and, for each of its patterns, the trigger's id.
#[derive(Debug)]
struct Group {
    regex: Regex,
    ids: Vec<TriggerId>,
}

impl Group {
    fn compile(set: &TriggerSet, target: Target) -> Result<Option<Group>, PolicyError> {
        let what = match target {
            Target::Symbol => "symbol",
            Target::Message => "message",
        };
        let mut hirs = Vec::new();
        let mut ids = Vec::new();
        for (index, spec) in set.specs().iter().enumerate() {
            if spec.target() != target {
                continue;
            }
            let Some(id) = TriggerId::new(index) else {
                continue;
            };
            hirs.push(spec.hir());
            ids.push(id);
        }
        if hirs.is_empty() {
            return Ok(None);
        }
        let config = Regex::config()
            .match_kind(MatchKind::All)
            .nfa_size_limit(Some(NFA_SIZE_LIMIT))
            .onepass_size_limit(Some(ONEPASS_SIZE_LIMIT))
            .dfa_size_limit(Some(DFA_SIZE_LIMIT))
            .hybrid_cache_capacity(HYBRID_CACHE_CAPACITY)
            .backtrack(false);
        let built = Regex::builder()
            .configure(config)
            .build_many_from_hir(&hirs);
        let regex = built.map_err(|source| match source.size_limit() {
            Some(limit) => {
                // Name the first trigger that is too large alone, so the user knows which
                // spec to change. Each NFA is bounded by the limit, and the search stops once
                // the NFAs built so far together exceed it (then the triggers together are the
                // problem): at most about twice the work of the failed build.
                let alone = thompson::Compiler::new()
                    .configure(thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
                    .clone();
                let mut spent = 0usize;
                let mut culprit = None;
                for (hir, &id) in hirs.iter().zip(&ids) {
                    match alone.build_from_hir(hir) {
                        Err(_) => {
                            culprit = set.get(id).map(|spec| (id, spec.to_string()));
                            break;
                        }
                        Ok(nfa) => spent = spent.saturating_add(nfa.memory_usage()),
                    }
                    if spent > NFA_SIZE_LIMIT {
                        break;
                    }
                }
                PolicyError::TooLarge {
                    what,
                    count: ids.len(),
                    limit,
                    culprit,
                }
            }
            None => PolicyError::Build {
                what,
                source: Box::new(source),
            },
        })?;
        Ok(Some(Group { regex, ids }))
    }

    fn first(&self, haystack: &[u8]) -> Option<TriggerId> {
        let mut matched = PatternSet::new(self.regex.pattern_len());
        self.regex
            .which_overlapping_matches(&Input::new(haystack), &mut matched);
        matched
            .iter()
            .next()
            .and_then(|pid| self.ids.get(pid.as_usize()).copied())
    }
}

/// A compiled [`TriggerSet`]: verdicts for symbol names and message texts. `Send + Sync`; the
/// automata keep per-thread search caches internally.
#[derive(Debug)]
pub struct MarkingPolicy {
    set: TriggerSet,
    symbol: Option<Group>,
    message: Option<Group>,
    universal: Vec<TriggerId>,
}

impl MarkingPolicy {
    /// Compiles every symbol trigger of `set` into one automaton and every message trigger into
    /// another, within the limits above. An empty set compiles to a policy that never fires.
    pub fn compile(set: &TriggerSet) -> Result<MarkingPolicy, PolicyError> {
        let symbol = Group::compile(set, Target::Symbol)?;
        let message = Group::compile(set, Target::Message)?;
        let universal = set
            .specs()
            .iter()
            .enumerate()
            .filter(|(_, spec)| matches_everything(spec))
            .filter_map(|(index, _)| TriggerId::new(index))
            .collect();
        Ok(MarkingPolicy {
            set: set.clone(),
            symbol,
            message,
            universal,
        })
    }

    /// The first symbol trigger (in spec order) that fires for the function name `name`.
    pub fn symbol_verdict(&self, name: &str) -> Option<TriggerId> {
        self.symbol.as_ref()?.first(name.as_bytes())
    }

    /// The first message trigger (in spec order) that fires for the message text `text` (any
    /// bytes; a regex's `.` and classes match only valid UTF-8 in it).
    pub fn message_verdict(&self, text: &[u8]) -> Option<TriggerId> {
        self.message.as_ref()?.first(text)
    }

    /// Whether any symbol trigger exists (if not, callsites need no verdict).
    pub fn has_symbol_triggers(&self) -> bool {
        self.symbol.is_some()
    }

    /// Whether any message trigger exists.
    pub fn has_message_triggers(&self) -> bool {
        self.message.is_some()
    }

    /// The trigger with id `id`, for reporting a verdict of this policy.
    ///
    /// # Panics
    /// If `id` is past the end of this policy's set (never for an id its verdicts returned);
    /// [`MarkingPolicy::get`] is the checked form.
    pub fn trigger(&self, id: TriggerId) -> &TriggerSpec {
        &self.set.specs()[id.index()]
    }

    /// The trigger with id `id`, or `None` if the set has no such trigger.
    pub fn get(&self, id: TriggerId) -> Option<&TriggerSpec> {
        self.set.get(id)
    }

    /// The set this policy was compiled from.
    pub fn triggers(&self) -> &TriggerSet {
        &self.set
    }

    /// The regex triggers that fire for every input (they can match the empty string with no
    /// anchor or word boundary), in spec order.
    pub fn universal(&self) -> &[TriggerId] {
        &self.universal
    }
}

fn matches_everything(spec: &TriggerSpec) -> bool {
    if spec.kind() == crate::spec::MatchKind::Literal {
        return false;
    }
    let hir = spec.hir();
    let props = hir.properties();
    props.minimum_len() == Some(0) && props.look_set().is_empty()
}
