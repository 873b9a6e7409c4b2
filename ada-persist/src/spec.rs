//! Trigger specs: the text a user gives (`--trigger SPEC`), parsed and validated into a
//! [`TriggerSpec`], and an ordered, duplicate-free [`TriggerSet`] of them.
//!
//! # Grammar
//!
//! A spec is `KEY OP PATTERN`:
//!
//! | spec | matches |
//! |------|---------|
//! | `symbol=NAME` | a symbol equal to `NAME`, or (when `NAME` has no `::`) whose last `::` path segment is `NAME`: `symbol=fib` matches `fib` and `demo::fib`, not `fib2` or `demo::fib::inner` |
//! | `symbol=MODULE::NAME` | a symbol equal to `MODULE::NAME` (exact, qualified) |
//! | `symbol~=PATTERN` | a symbol in which the regex `PATTERN` matches somewhere (unanchored; use `^`/`$` to anchor) |
//! | `symbol~i=PATTERN` | the same, case-insensitively |
//! | `message=TEXT` | a `message()`/`mark()` text containing `TEXT` literally |
//! | `message~=PATTERN` | a message text in which the regex `PATTERN` matches somewhere |
//! | `message~i=PATTERN` | the same, case-insensitively |
//!
//! Regexes use the [`regex-syntax`](https://docs.rs/regex-syntax) dialect (the `regex` crate's):
//! no look-around and no back-references, so every pattern runs in linear time.
//!
//! # Whitespace and escaping
//!
//! - Leading and trailing whitespace of the whole spec is ignored (so a spec quoted with stray
//!   spaces still works); whitespace anywhere else is part of the spec. The key and operator
//!   must be written exactly as above (`symbol = x` is refused as an unknown key `symbol `).
//! - There is no escaping at the spec level: the key ends at the first `=`, and everything after
//!   that `=` is the pattern, byte for byte (it may itself contain `=`, `~` and spaces). To match
//!   a trailing space in a regex, write `\x20` or `[ ]`.
//! - `NAME` and `TEXT` are literal: regex metacharacters in them mean themselves. A `NAME` with
//!   an empty `::` segment (`demo::`, `::fib`, `a::::b`) is refused.
//! - In a regex, escape metacharacters the regex way (`\.`, `\(`, `\\`).
//!
//! # Refusals
//!
//! [`TriggerSpec::parse`] and [`TriggerSet::parse`] refuse, with a [`SpecError`] naming the
//! spec (its index in the list and its text) and the byte position of the problem in that text:
//! a missing operator, an unknown key, an empty pattern, an empty path segment, an invalid regex
//! (the position is regex-syntax's span, shifted to the spec), a pattern longer than
//! [`MAX_PATTERN_LEN`], more than [`MAX_TRIGGERS`] specs, a set whose encoding
//! ([`TriggerSet::encode`]) would exceed [`MAX_ENCODED_LEN`], and a duplicate (the same key,
//! operator and pattern as an earlier spec, after the outer whitespace is removed).

use std::fmt;

/// Most specs one [`TriggerSet`] may hold. 10 000 specs are refused here, before any automaton is
/// built; sets up to this size compile within the [`MarkingPolicy`](crate::MarkingPolicy)
/// limits when their patterns are names or small regexes.
pub const MAX_TRIGGERS: usize = 1024;

/// Longest pattern (in bytes, after the operator) a spec may have.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Largest encoding of a [`TriggerSet`] (bytes), the most the controller publishes in the
/// segment and the most [`TriggerSet::decode`] reads.
pub const MAX_ENCODED_LEN: usize = 64 * 1024;

/// Nesting limit handed to regex-syntax (its default is 250): deep nesting is refused before it
/// can cost stack or time.
pub(crate) const NEST_LIMIT: u32 = 64;

/// What a trigger looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The name of the function a callsite belongs to, matched once when the callsite registers.
    Symbol,
    /// The text of a `message()` or `mark()` event.
    Message,
}

/// How a trigger's pattern matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// `symbol=NAME`: the whole symbol, or its last path segment when `NAME` is unqualified.
    /// `message=TEXT`: the text contains `TEXT`.
    Literal,
    /// `~=`: an unanchored regex search.
    Regex,
    /// `~i=`: an unanchored, case-insensitive regex search.
    RegexCaseInsensitive,
}

impl MatchKind {
    fn operator(self) -> &'static str {
        match self {
            MatchKind::Literal => "=",
            MatchKind::Regex => "~=",
            MatchKind::RegexCaseInsensitive => "~i=",
        }
    }
}

/// One validated trigger: what it looks at, how it matches, and its pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TriggerSpec {
    target: Target,
    kind: MatchKind,
    pattern: String,
}

/// Why a spec was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecErrorKind {
    /// No `=` in the spec.
    MissingOperator,
    /// The text before the operator is not `symbol` or `message` (or the operator is not `=`,
    /// `~=` or `~i=`).
    UnknownKey(String),
    /// Nothing after the operator.
    EmptyPattern,
    /// A literal symbol name with an empty `::` segment.
    EmptySegment,
    /// The pattern is longer than [`MAX_PATTERN_LEN`].
    PatternTooLong(usize),
    /// The regex does not parse; the text is regex-syntax's message.
    InvalidRegex(String),
    /// The same trigger as spec `first` (an index into the list).
    Duplicate {
        /// Index of the earlier, identical spec.
        first: usize,
    },
    /// More than [`MAX_TRIGGERS`] specs.
    TooMany(usize),
    /// The set's encoding would be longer than [`MAX_ENCODED_LEN`].
    TooLarge(usize),
}

impl fmt::Display for SpecErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecErrorKind::MissingOperator => {
                f.write_str("no operator (expected `=`, `~=` or `~i=`)")
            }
            SpecErrorKind::UnknownKey(key) => write!(
                f,
                "unknown key {key:?} (expected `symbol` or `message`, then `=`, `~=` or `~i=`)"
            ),
            SpecErrorKind::EmptyPattern => f.write_str("empty pattern"),
            SpecErrorKind::EmptySegment => f.write_str("empty `::` path segment in a symbol name"),
            SpecErrorKind::PatternTooLong(n) => {
                write!(f, "pattern of {n} bytes (at most {MAX_PATTERN_LEN})")
            }
            SpecErrorKind::InvalidRegex(msg) => write!(f, "invalid regex: {msg}"),
            SpecErrorKind::Duplicate { first } => {
                write!(f, "duplicate of trigger {}", first + 1)
            }
            SpecErrorKind::TooMany(n) => write!(f, "{n} triggers (at most {MAX_TRIGGERS})"),
            SpecErrorKind::TooLarge(n) => {
                write!(f, "the triggers need {n} bytes (at most {MAX_ENCODED_LEN})")
            }
        }
    }
}

/// A refused spec: which one (its 0-based `index` in the list, shown 1-based, and its `spec`
/// text), where (`position`, a byte offset into `spec`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("trigger {} ({spec:?}), byte {position}: {kind}", index + 1)]
pub struct SpecError {
    /// 0-based index of the spec in the list given ([`TriggerSpec::parse`] says 0).
    pub index: usize,
    /// The spec's text as given.
    pub spec: String,
    /// Byte offset into `spec` where the problem is.
    pub position: usize,
    /// What is wrong.
    pub kind: SpecErrorKind,
}

impl TriggerSpec {
    /// Parses and validates one spec (see the [module docs](self) for the grammar). Errors say
    /// index 0.
    pub fn parse(spec: &str) -> Result<TriggerSpec, SpecError> {
        let fail = |position: usize, kind: SpecErrorKind| SpecError {
            index: 0,
            spec: spec.to_owned(),
            position,
            kind,
        };
        let lead = spec.len() - spec.trim_start().len();
        let text = spec.trim();
        let Some(eq) = text.find('=') else {
            return Err(fail(lead + text.len(), SpecErrorKind::MissingOperator));
        };
        let head = &text[..eq];
        let pattern = &text[eq + 1..];
        let pattern_at = lead + eq + 1;
        let (key, kind) = if let Some(key) = head.strip_suffix("~i") {
            (key, MatchKind::RegexCaseInsensitive)
        } else if let Some(key) = head.strip_suffix('~') {
            (key, MatchKind::Regex)
        } else {
            (head, MatchKind::Literal)
        };
        let target = match key {
            "symbol" => Target::Symbol,
            "message" => Target::Message,
            _ => return Err(fail(lead, SpecErrorKind::UnknownKey(head.to_owned()))),
        };
        if pattern.is_empty() {
            return Err(fail(pattern_at, SpecErrorKind::EmptyPattern));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(fail(
                pattern_at + MAX_PATTERN_LEN,
                SpecErrorKind::PatternTooLong(pattern.len()),
            ));
        }
        match kind {
            MatchKind::Literal if target == Target::Symbol && pattern.contains("::") => {
                let mut at = 0;
                for segment in pattern.split("::") {
                    if segment.is_empty() {
                        return Err(fail(pattern_at + at, SpecErrorKind::EmptySegment));
                    }
                    at += segment.len() + 2;
                }
            }
            MatchKind::Literal => {}
            MatchKind::Regex | MatchKind::RegexCaseInsensitive => {
                if let Err((offset, msg)) =
                    parse_regex(pattern, kind == MatchKind::RegexCaseInsensitive)
                {
                    return Err(fail(pattern_at + offset, SpecErrorKind::InvalidRegex(msg)));
                }
            }
        }
        Ok(TriggerSpec {
            target,
            kind,
            pattern: pattern.to_owned(),
        })
    }

    /// What the trigger looks at.
    pub fn target(&self) -> Target {
        self.target
    }

    /// How its pattern matches.
    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// The pattern, as given after the operator.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The regex this trigger compiles to, as a regex-syntax [`Hir`](regex_syntax::hir::Hir).
    pub(crate) fn hir(&self) -> regex_syntax::hir::Hir {
        let source = match (self.target, self.kind) {
            (Target::Symbol, MatchKind::Literal) if self.pattern.contains("::") => {
                format!(r"\A{}\z", regex_syntax::escape(&self.pattern))
            }
            (Target::Symbol, MatchKind::Literal) => {
                format!(r"\A(?s:.*::)?{}\z", regex_syntax::escape(&self.pattern))
            }
            (Target::Message, MatchKind::Literal) => regex_syntax::escape(&self.pattern),
            _ => self.pattern.clone(),
        };
        match parse_regex(&source, self.kind == MatchKind::RegexCaseInsensitive) {
            Ok(hir) => hir,
            // Unreachable for a parsed spec (its regex was validated with the same settings, and
            // an escaped literal always parses); an empty class never matches, the safe side.
            Err(_) => regex_syntax::hir::Hir::fail(),
        }
    }
}

impl fmt::Display for TriggerSpec {
    /// The canonical spec text, which [`TriggerSpec::parse`] reads back to an equal spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.target {
            Target::Symbol => "symbol",
            Target::Message => "message",
        };
        write!(f, "{key}{}{}", self.kind.operator(), self.pattern)
    }
}

/// Parses `pattern` with the settings every trigger regex uses; on error, the byte offset (into
/// `pattern`) and regex-syntax's message.
fn parse_regex(
    pattern: &str,
    case_insensitive: bool,
) -> Result<regex_syntax::hir::Hir, (usize, String)> {
    regex_syntax::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .case_insensitive(case_insensitive)
        .build()
        .parse(pattern)
        .map_err(|e| {
            let offset = match &e {
                regex_syntax::Error::Parse(e) => e.span().start.offset,
                regex_syntax::Error::Translate(e) => e.span().start.offset,
                _ => 0,
            };
            let msg = match &e {
                regex_syntax::Error::Parse(e) => e.kind().to_string(),
                regex_syntax::Error::Translate(e) => e.kind().to_string(),
                other => other.to_string(),
            };
            (offset, msg)
        })
}

/// An ordered list of distinct, validated triggers; a trigger's index in it is its
/// [`TriggerId`]. Holds at most [`MAX_TRIGGERS`] and always encodes within [`MAX_ENCODED_LEN`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerSet {
    specs: Vec<TriggerSpec>,
}

/// A trigger's index in its [`TriggerSet`] (spec order): what a verdict names and what a window
/// reports as the trigger that opened it. Fits in 16 bits, since a set holds at most
/// [`MAX_TRIGGERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TriggerId(u16);

impl TriggerId {
    /// The id of the trigger at `index`; `None` past [`MAX_TRIGGERS`].
    pub fn new(index: usize) -> Option<TriggerId> {
        (index < MAX_TRIGGERS).then_some(TriggerId(index as u16))
    }

    /// The trigger's index in its set.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The id as 16 bits (for packing into a cached verdict).
    pub fn get(self) -> u16 {
        self.0
    }
}

const MAGIC: [u8; 4] = *b"ADAT";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;

/// Why [`TriggerSet::decode`] refused its bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than [`MAX_ENCODED_LEN`].
    #[error("{0} bytes of triggers (at most {MAX_ENCODED_LEN})")]
    TooLong(usize),
    /// The bytes do not start with the trigger set magic.
    #[error("not an encoded trigger set (bad magic)")]
    BadMagic,
    /// An encoding version this build does not read.
    #[error("trigger set encoding version {0} (this build reads {VERSION})")]
    UnsupportedVersion(u8),
    /// The reserved header byte is not zero.
    #[error("reserved header byte is {0}, not 0")]
    Reserved(u8),
    /// The bytes end inside the header or a spec.
    #[error("truncated trigger set at byte {0}")]
    Truncated(usize),
    /// Bytes left over after the last spec.
    #[error("{0} trailing bytes after the trigger set")]
    TrailingBytes(usize),
    /// A spec's bytes are not UTF-8.
    #[error("trigger {} is not UTF-8", .0 + 1)]
    NotUtf8(usize),
    /// A decoded spec or the set is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl TriggerSet {
    /// Parses and validates `specs` in order (see the [module docs](self)); the first refusal
    /// names its spec's index and text.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<TriggerSet, SpecError> {
        if specs.len() > MAX_TRIGGERS {
            return Err(SpecError {
                index: MAX_TRIGGERS,
                spec: specs[MAX_TRIGGERS].as_ref().to_owned(),
                position: 0,
                kind: SpecErrorKind::TooMany(specs.len()),
            });
        }
        let mut out: Vec<TriggerSpec> = Vec::with_capacity(specs.len());
        let mut encoded = HEADER_LEN;
        for (index, text) in specs.iter().enumerate() {
            let text = text.as_ref();
            let spec = TriggerSpec::parse(text).map_err(|e| SpecError { index, ..e })?;
            if let Some(first) = out.iter().position(|s| *s == spec) {
                let position = text.len() - text.trim_start().len();
                return Err(SpecError {
                    index,
                    spec: text.to_owned(),
                    position,
                    kind: SpecErrorKind::Duplicate { first },
                });
            }
            encoded += 2 + spec.to_string().len();
            if encoded > MAX_ENCODED_LEN {
                return Err(SpecError {
                    index,
                    spec: text.to_owned(),
                    position: 0,
                    kind: SpecErrorKind::TooLarge(encoded),
                });
            }
            out.push(spec);
        }
        Ok(TriggerSet { specs: out })
    }

    /// The triggers, in spec order.
    pub fn specs(&self) -> &[TriggerSpec] {
        &self.specs
    }

    /// How many triggers.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The trigger with id `id`, if it belongs to this set.
    pub fn get(&self, id: TriggerId) -> Option<&TriggerSpec> {
        self.specs.get(id.index())
    }

    /// The set as bytes, at most [`MAX_ENCODED_LEN`] of them: the magic `ADAT`, a version byte
    /// (1), a reserved zero byte, the spec count (u16 little-endian), then each spec's canonical
    /// text ([`TriggerSpec`]'s `Display`) as a u16 little-endian length and UTF-8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.specs.len() * 16);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(0);
        out.extend_from_slice(&(self.specs.len() as u16).to_le_bytes());
        for spec in &self.specs {
            let text = spec.to_string();
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    /// Reads bytes written by [`encode`](Self::encode), treating them as untrusted: at most
    /// [`MAX_ENCODED_LEN`] bytes are looked at, every length is checked against what remains,
    /// and every spec is parsed and validated again exactly as [`TriggerSet::parse`] does (so
    /// the result holds the same invariants). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<TriggerSet, DecodeError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(DecodeError::TooLong(bytes.len()));
        }
        let Some((header, mut rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated(bytes.len()));
        };
        if header[..4] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if header[4] != VERSION {
            return Err(DecodeError::UnsupportedVersion(header[4]));
        }
        if header[5] != 0 {
            return Err(DecodeError::Reserved(header[5]));
        }
        let count = usize::from(u16::from_le_bytes([header[6], header[7]]));
        let mut texts = Vec::with_capacity(count.min(MAX_TRIGGERS + 1));
        for index in 0..count {
            let at = bytes.len() - rest.len();
            let Some((len, tail)) = rest.split_first_chunk::<2>() else {
                return Err(DecodeError::Truncated(at));
            };
            let len = usize::from(u16::from_le_bytes(*len));
            let Some((text, tail)) = tail.split_at_checked(len) else {
                return Err(DecodeError::Truncated(bytes.len()));
            };
            let text = std::str::from_utf8(text).map_err(|_| DecodeError::NotUtf8(index))?;
            texts.push(text);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        Ok(TriggerSet::parse(&texts)?)
    }
}
