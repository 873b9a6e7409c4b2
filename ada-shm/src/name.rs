//! Segment names: `/ada_<creator pid>_<16 hex digits of a random session id>`.
//!
//! The random part comes from the OS (`getrandom`), so names are unguessable and two sessions of
//! the same pid never collide. For any pid Linux hands out (at most 2^22, seven digits) the
//! name is at most 29 bytes, within the 31-byte limit macOS puts on these names.

use crate::ShmError;
use std::fmt;

/// A validated POSIX shared-memory name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SegmentName(String);

/// Prefix of every name ADA creates (after the leading `/`).
pub const NAME_PREFIX: &str = "ada_";

/// The environment variable that hands a segment's name to a traced program: the controller
/// (`ada trace`, or a custom controller) starts the program with `ADA_SHM=<name>`, and the
/// agent attaches to the segment it names ([`SegmentName::parse`] validates the value).
pub const ENV_SEGMENT: &str = "ADA_SHM";

impl SegmentName {
    /// A fresh name for a segment created by `pid`, with a random session id.
    pub fn generate(pid: u32) -> Result<(SegmentName, u64), ShmError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| ShmError::Os {
            op: "getrandom",
            name: String::new(),
            source: std::io::Error::other(e.to_string()),
        })?;
        // Zero is reserved to mean "no session"; the chance is 2^-64, but keep the rule exact.
        let session_id = u64::from_le_bytes(bytes).max(1);
        Ok((
            SegmentName(format!("/{NAME_PREFIX}{pid}_{session_id:016x}")),
            session_id,
        ))
    }

    /// Validates a name given by a user or an environment variable. A missing leading `/` is
    /// added. Rejects empty names, names with another `/` or a NUL, and names over 255 bytes.
    pub fn parse(raw: &str) -> Result<SegmentName, ShmError> {
        let name = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        let invalid = |reason| {
            Err(ShmError::InvalidName {
                name: raw.to_owned(),
                reason,
            })
        };
        if name.len() < 2 {
            return invalid("name is empty");
        }
        if name.len() > 255 {
            return invalid("name is longer than 255 bytes");
        }
        if name[1..].contains('/') {
            return invalid("name may not contain '/' after the first character");
        }
        if name.contains('\0') {
            return invalid("name may not contain NUL");
        }
        Ok(SegmentName(name))
    }

    /// The name as passed to `shm_open`, with its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_unique_short_and_embed_pid() {
        let (a, sa) = SegmentName::generate(4_194_304).unwrap();
        let (b, sb) = SegmentName::generate(4_194_304).unwrap();
        assert_ne!(a, b);
        assert_ne!(sa, sb);
        assert!(a.as_str().starts_with("/ada_4194304_"));
        assert!(a.as_str().len() <= 31, "{a}");
        assert!(a.as_str().ends_with(&format!("{sa:016x}")));
    }

    #[test]
    fn parse_rejects_bad_names() {
        assert_eq!(SegmentName::parse("ada_1_2").unwrap().as_str(), "/ada_1_2");
        for bad in ["", "/", "/a/b", "a\0b"] {
            assert!(SegmentName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SegmentName::parse(&"x".repeat(300)).is_err());
    }
}
