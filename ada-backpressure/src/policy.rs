//! Drop policies, per lane, and the text form users give them.
//!
//! # Policies
//!
//! When a thread's active ring is full and its lane's pool has no free ring, something is lost:
//!
//! - [`DropPolicy::DropOldest`] (`oldest`): the thread overwrites its own oldest unsubmitted data
//!   and keeps writing, so the newest events survive. Lost events count as
//!   [`overwritten`](crate::LossCounters::overwritten).
//! - [`DropPolicy::DropNewest`] (`newest`): what is buffered is kept for the drain and new events
//!   are refused until a ring comes back, so the oldest events survive. Lost events count as
//!   [`refused`](crate::LossCounters::refused).
//!
//! # Defaults, per lane
//!
//! - **index lane: `newest`.** The index lane is the always-persisted timeline of the whole run.
//!   Keeping what is buffered keeps every event the thread wrote up to the stall, in order, and
//!   loses one contiguous stretch from the stall to the moment a ring returns: the hole sits
//!   where the stall was, and the events before it, which the drain is about to take, are not
//!   overwritten underneath it. Refusing is also the cheaper loss (a counter, no ring recycle) on
//!   the lane with the highest event rate.
//! - **detail lane: `oldest`.** The detail lane is a flight recorder: what a trigger wants is
//!   what happened just before it fired, i.e. the newest events. Overwriting the oldest is the
//!   flight-recorder choice and what the detail lane always did.
//!
//! # Text form
//!
//! Used by `ada trace --drop-policy`, the config file's drop-policy key and the
//! [`ADA_DROP_POLICY`](ENV_VAR) start-up override:
//!
//! - `LANE=POLICY[,LANE=POLICY]`, `LANE` one of `index`, `detail`, `POLICY` one of `oldest`,
//!   `newest` (lower case): `index=newest,detail=oldest`, or just `detail=newest` (a lane not
//!   named keeps its default, or the base given to [`LanePolicies::parse_onto`]);
//! - or a bare `oldest` / `newest`, which sets both lanes and must be the whole value;
//! - spaces and tabs around parts, names and `=` are allowed.
//!
//! An empty value or part, an unknown lane or policy, a lane without a policy, a lane named
//! twice, or a bare policy next to other parts is refused with a [`PolicyParseError`] naming the
//! part and its byte position in the value. [`LanePolicies`]' `Display` writes the full form,
//! which parses back to the same value.

use std::ffi::OsStr;
use std::fmt;
use std::str::FromStr;

/// The environment variable the controller reads once at start-up to override the drop policy.
pub const ENV_VAR: &str = "ADA_DROP_POLICY";

/// What to lose when a lane's pool is exhausted.
///
/// The discriminants are a stable encoding (the agent reads the policy from shared memory):
/// never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropPolicy {
    /// Overwrite the thread's oldest unsubmitted data; the newest events survive.
    DropOldest = 0,
    /// Refuse new events until a ring returns; the oldest (buffered) events survive.
    DropNewest = 1,
}

impl DropPolicy {
    /// The policy's stable byte.
    #[inline]
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Decodes a byte; `None` for one no policy has.
    #[inline]
    #[must_use]
    pub const fn from_u8(byte: u8) -> Option<DropPolicy> {
        match byte {
            0 => Some(DropPolicy::DropOldest),
            1 => Some(DropPolicy::DropNewest),
            _ => None,
        }
    }

    /// The policy's text form: `oldest` or `newest`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DropPolicy::DropOldest => "oldest",
            DropPolicy::DropNewest => "newest",
        }
    }

    fn from_name(name: &str) -> Option<DropPolicy> {
        match name {
            "oldest" => Some(DropPolicy::DropOldest),
            "newest" => Some(DropPolicy::DropNewest),
            _ => None,
        }
    }
}

impl fmt::Display for DropPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lane, as the drop-policy text names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// The index lane (`index`): the always-persisted timeline.
    Index,
    /// The detail lane (`detail`): the flight recorder.
    Detail,
}

impl Lane {
    /// The lane's text form: `index` or `detail`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Lane::Index => "index",
            Lane::Detail => "detail",
        }
    }

    fn from_name(name: &str) -> Option<Lane> {
        match name {
            "index" => Some(Lane::Index),
            "detail" => Some(Lane::Detail),
            _ => None,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The drop policy of each lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LanePolicies {
    /// The index lane's policy.
    pub index: DropPolicy,
    /// The detail lane's policy.
    pub detail: DropPolicy,
}

impl Default for LanePolicies {
    /// `index=newest,detail=oldest`; the [module docs](self) say why.
    fn default() -> Self {
        LanePolicies {
            index: DropPolicy::DropNewest,
            detail: DropPolicy::DropOldest,
        }
    }
}

impl LanePolicies {
    /// The same policy on both lanes.
    #[must_use]
    pub const fn both(policy: DropPolicy) -> Self {
        LanePolicies {
            index: policy,
            detail: policy,
        }
    }

    /// The policy of `lane`.
    #[must_use]
    pub const fn get(&self, lane: Lane) -> DropPolicy {
        match lane {
            Lane::Index => self.index,
            Lane::Detail => self.detail,
        }
    }

    /// Parses the text form (see the [module docs](self)); a lane not named keeps its default.
    pub fn parse(text: &str) -> Result<Self, PolicyParseError> {
        Self::parse_onto(LanePolicies::default(), text)
    }

    /// Parses the text form over `base`: a lane not named keeps `base`'s policy (for layering
    /// an override over a config file's value).
    pub fn parse_onto(base: LanePolicies, text: &str) -> Result<Self, PolicyParseError> {
        let err = |part: &str, position: usize, kind| PolicyParseError {
            input: text.to_owned(),
            part: part.to_owned(),
            position,
            kind,
        };
        if text.trim().is_empty() {
            return Err(err(text, 0, PolicyParseErrorKind::Empty));
        }
        let parts: Vec<(usize, &str)> = split_trimmed(text, 0, ',').collect();
        let mut out = base;
        let mut seen = [false; 2];
        for &(pos, part) in &parts {
            if part.is_empty() {
                return Err(err(part, pos, PolicyParseErrorKind::EmptyPart));
            }
            let Some(eq) = part.find('=') else {
                // A bare word: a policy for both lanes, or a lane missing its policy.
                if let Some(lane) = Lane::from_name(part) {
                    return Err(err(part, pos, PolicyParseErrorKind::MissingPolicy(lane)));
                }
                let Some(policy) = DropPolicy::from_name(part) else {
                    return Err(err(
                        part,
                        pos,
                        PolicyParseErrorKind::UnknownPolicy(part.to_owned()),
                    ));
                };
                if parts.len() > 1 {
                    return Err(err(part, pos, PolicyParseErrorKind::BareNotAlone));
                }
                return Ok(LanePolicies::both(policy));
            };
            let (lane_pos, lane_name) = trimmed(&part[..eq], pos);
            let (policy_pos, policy_name) = trimmed(&part[eq + 1..], pos + eq + 1);
            let Some(lane) = Lane::from_name(lane_name) else {
                return Err(err(
                    lane_name,
                    lane_pos,
                    PolicyParseErrorKind::UnknownLane(lane_name.to_owned()),
                ));
            };
            if policy_name.is_empty() {
                return Err(err(part, pos, PolicyParseErrorKind::MissingPolicy(lane)));
            }
            let Some(policy) = DropPolicy::from_name(policy_name) else {
                return Err(err(
                    policy_name,
                    policy_pos,
                    PolicyParseErrorKind::UnknownPolicy(policy_name.to_owned()),
                ));
            };
            let slot = match lane {
                Lane::Index => 0,
                Lane::Detail => 1,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(err(part, pos, PolicyParseErrorKind::DuplicateLane(lane)));
            }
            match lane {
                Lane::Index => out.index = policy,
                Lane::Detail => out.detail = policy,
            }
        }
        Ok(out)
    }

    /// The [`ADA_DROP_POLICY`](ENV_VAR) start-up override, given the variable's value
    /// (`std::env::var_os(ENV_VAR).as_deref()`): `Ok(None)` when unset, the parsed policies
    /// (lanes not named at their defaults) when set, and an error naming the variable for a
    /// value that is not UTF-8 or does not parse (an empty value included: set-but-empty is a
    /// mistake worth reporting, not a silent default).
    pub fn from_env_override(value: Option<&OsStr>) -> Result<Option<Self>, EnvOverrideError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.to_str().ok_or_else(|| EnvOverrideError::NotUnicode {
            lossy: value.to_string_lossy().into_owned(),
        })?;
        LanePolicies::parse(text)
            .map(Some)
            .map_err(EnvOverrideError::Invalid)
    }
}

impl fmt::Display for LanePolicies {
    /// The full text form, `index=POLICY,detail=POLICY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index={},detail={}", self.index, self.detail)
    }
}

impl FromStr for LanePolicies {
    type Err = PolicyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LanePolicies::parse(text)
    }
}

/// Whitespace the text form allows around parts, names and `=`.
fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `s` without surrounding spaces, and the byte position of what remains (`offset` being the
/// position of `s`).
fn trimmed(s: &str, offset: usize) -> (usize, &str) {
    let start = s.len() - s.trim_start_matches(is_space).len();
    (offset + start, s.trim_matches(is_space))
}

/// The `sep`-separated parts of `s`, trimmed, with their byte positions.
fn split_trimmed(s: &str, offset: usize, sep: char) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = offset;
    s.split(sep).map(move |part| {
        let here = pos;
        pos += part.len() + sep.len_utf8();
        trimmed(part, here)
    })
}

/// A drop-policy text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("drop policy {input:?}, byte {position} ({part:?}): {kind}")]
pub struct PolicyParseError {
    /// The whole text given.
    pub input: String,
    /// The part (or name within it) at fault.
    pub part: String,
    /// Byte position of `part` in `input`.
    pub position: usize,
    /// What is wrong.
    pub kind: PolicyParseErrorKind,
}

/// What is wrong with a drop-policy text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyParseErrorKind {
    /// The text is empty or only spaces.
    #[error("empty; expected `oldest`, `newest` or `LANE=POLICY[,LANE=POLICY]`")]
    Empty,
    /// A part between commas is empty.
    #[error("empty part between commas")]
    EmptyPart,
    /// Not `index` or `detail`.
    #[error("unknown lane {0:?} (expected `index` or `detail`)")]
    UnknownLane(String),
    /// Not `oldest` or `newest`.
    #[error("unknown policy {0:?} (expected `oldest` or `newest`)")]
    UnknownPolicy(String),
    /// A lane without `=POLICY`, or with an empty one.
    #[error("lane `{0}` has no policy (write `{0}=oldest` or `{0}=newest`)")]
    MissingPolicy(Lane),
    /// A lane named twice.
    #[error("lane `{0}` given twice")]
    DuplicateLane(Lane),
    /// A bare policy next to other parts.
    #[error("a bare policy sets both lanes and must be the whole value")]
    BareNotAlone,
}

/// A bad [`ADA_DROP_POLICY`](ENV_VAR) value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvOverrideError {
    /// The value is not UTF-8.
    #[error("{ENV_VAR}={lossy:?} is not valid UTF-8")]
    NotUnicode {
        /// The value, with invalid bytes replaced.
        lossy: String,
    },
    /// The value does not parse.
    #[error("{ENV_VAR}: {0}")]
    Invalid(#[source] PolicyParseError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use DropPolicy::{DropNewest as N, DropOldest as O};
    use PolicyParseErrorKind as K;

    fn lp(index: DropPolicy, detail: DropPolicy) -> LanePolicies {
        LanePolicies { index, detail }
    }

    fn fails(text: &str) -> (String, usize, PolicyParseErrorKind) {
        let e = LanePolicies::parse(text).unwrap_err();
        assert_eq!(e.input, text);
        assert_eq!(&text[e.position..e.position + e.part.len()], e.part);
        (e.part, e.position, e.kind)
    }

    #[test]
    fn defaults() {
        assert_eq!(LanePolicies::default(), lp(N, O));
        assert_eq!(
            LanePolicies::default().to_string(),
            "index=newest,detail=oldest"
        );
        assert_eq!(LanePolicies::default().get(Lane::Index), N);
        assert_eq!(LanePolicies::default().get(Lane::Detail), O);
    }

    #[test]
    fn encoding() {
        assert_eq!(DropPolicy::from_u8(O.as_u8()), Some(O));
        assert_eq!(DropPolicy::from_u8(N.as_u8()), Some(N));
        assert_eq!((O.as_u8(), N.as_u8()), (0, 1));
        assert_eq!(DropPolicy::from_u8(2), None);
    }

    #[test]
    fn parses() {
        assert_eq!(
            LanePolicies::parse("index=newest,detail=oldest"),
            Ok(lp(N, O))
        );
        assert_eq!(
            LanePolicies::parse("detail=newest,index=oldest"),
            Ok(lp(O, N))
        );
        assert_eq!(LanePolicies::parse("detail=newest"), Ok(lp(N, N)));
        assert_eq!(LanePolicies::parse("index=oldest"), Ok(lp(O, O)));
        assert_eq!(LanePolicies::parse("newest"), Ok(lp(N, N)));
        assert_eq!(LanePolicies::parse(" oldest\t"), Ok(lp(O, O)));
        assert_eq!(
            LanePolicies::parse(" index = oldest ,\tdetail= newest "),
            Ok(lp(O, N))
        );
        assert_eq!("index=oldest".parse::<LanePolicies>(), Ok(lp(O, O)));
    }

    #[test]
    fn parse_onto_keeps_the_base_for_unnamed_lanes() {
        assert_eq!(
            LanePolicies::parse_onto(lp(O, N), "index=newest"),
            Ok(lp(N, N))
        );
        assert_eq!(LanePolicies::parse_onto(lp(O, N), "oldest"), Ok(lp(O, O)));
    }

    #[test]
    fn empty() {
        for text in ["", "  ", "\t"] {
            assert_eq!(fails(text), (text.to_owned(), 0, K::Empty));
        }
    }

    #[test]
    fn empty_part() {
        assert_eq!(fails("index=newest,"), (String::new(), 13, K::EmptyPart));
        assert_eq!(fails(",detail=oldest"), (String::new(), 0, K::EmptyPart));
        assert_eq!(
            fails("index=newest, ,detail=oldest"),
            (String::new(), 14, K::EmptyPart)
        );
    }

    #[test]
    fn unknown_lane() {
        assert_eq!(
            fails("index=newest, global=oldest"),
            ("global".into(), 14, K::UnknownLane("global".into()))
        );
        assert_eq!(
            fails("=oldest"),
            (String::new(), 0, K::UnknownLane(String::new()))
        );
        assert_eq!(
            fails("Index=oldest"),
            ("Index".into(), 0, K::UnknownLane("Index".into()))
        );
    }

    #[test]
    fn unknown_policy() {
        assert_eq!(
            fails("index=newest,detail= latest"),
            ("latest".into(), 21, K::UnknownPolicy("latest".into()))
        );
        assert_eq!(
            fails("drop-oldest"),
            (
                "drop-oldest".into(),
                0,
                K::UnknownPolicy("drop-oldest".into())
            )
        );
        assert_eq!(
            fails("detail=old=est"),
            ("old=est".into(), 7, K::UnknownPolicy("old=est".into()))
        );
    }

    #[test]
    fn missing_policy() {
        assert_eq!(
            fails("index"),
            ("index".into(), 0, K::MissingPolicy(Lane::Index))
        );
        assert_eq!(
            fails("index=newest, detail ="),
            ("detail =".into(), 14, K::MissingPolicy(Lane::Detail))
        );
    }

    #[test]
    fn duplicate_lane() {
        assert_eq!(
            fails("detail=newest,index=oldest,detail=newest"),
            ("detail=newest".into(), 27, K::DuplicateLane(Lane::Detail))
        );
    }

    #[test]
    fn bare_not_alone() {
        assert_eq!(
            fails("newest,detail=oldest"),
            ("newest".into(), 0, K::BareNotAlone)
        );
        assert_eq!(
            fails("index=oldest, oldest"),
            ("oldest".into(), 14, K::BareNotAlone)
        );
    }

    #[test]
    fn error_message_names_part_and_position() {
        let e = LanePolicies::parse("index=newest,detail=latest").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("byte 20"), "{msg}");
        assert!(msg.contains("\"latest\""), "{msg}");
        assert!(msg.contains("expected `oldest` or `newest`"), "{msg}");
    }

    #[test]
    fn env_override() {
        assert_eq!(LanePolicies::from_env_override(None), Ok(None));
        assert_eq!(
            LanePolicies::from_env_override(Some(OsStr::new("detail=newest"))),
            Ok(Some(lp(N, N)))
        );
        let e = LanePolicies::from_env_override(Some(OsStr::new(""))).unwrap_err();
        assert!(matches!(&e, EnvOverrideError::Invalid(p) if p.kind == K::Empty));
        assert!(e.to_string().starts_with("ADA_DROP_POLICY: "), "{e}");
        let e = LanePolicies::from_env_override(Some(OsStr::new("index=sideways"))).unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn env_override_not_unicode() {
        use std::os::unix::ffi::OsStrExt;
        let e = LanePolicies::from_env_override(Some(OsStr::from_bytes(b"index=\xffnewest")))
            .unwrap_err();
        assert!(matches!(e, EnvOverrideError::NotUnicode { .. }));
        assert!(e.to_string().contains("ADA_DROP_POLICY"), "{e}");
    }
}
