//! [`MarkRules`]: which `tracing` callsites mark (open a selective-persistence window), by
//! level and by target. Decided once per callsite, when the layer first sees it.

use tracing::{Level, Metadata};

/// The layer's mark rules: a callsite marks when its level is at least as severe as the level
/// rule, or its target is one of the target rules or inside one (`db` matches `db` and
/// `db::pool`, not `dbx`). The default: `ERROR` marks, no target rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRules {
    level: Option<Level>,
    targets: Vec<String>,
}

impl Default for MarkRules {
    fn default() -> Self {
        MarkRules {
            level: Some(Level::ERROR),
            targets: Vec::new(),
        }
    }
}

impl MarkRules {
    /// No rule: nothing marks.
    pub fn none() -> MarkRules {
        MarkRules {
            level: None,
            targets: Vec::new(),
        }
    }

    /// Callsites at `level` or more severe mark (replaces the level rule).
    pub fn at(&mut self, level: Level) {
        self.level = Some(level);
    }

    /// Callsites whose target is `target` or inside it (`target::...`) mark.
    pub fn target(&mut self, target: &str) {
        self.targets.push(target.to_owned());
    }

    /// Whether `meta` marks.
    pub fn matches(&self, meta: &Metadata<'_>) -> bool {
        // `tracing` orders levels by verbosity: ERROR is the least, so "at least as severe"
        // is `<=`.
        self.level.is_some_and(|l| *meta.level() <= l)
            || self.targets.iter().any(|t| within(meta.target(), t))
    }
}

/// Whether `target` is `rule` or a path inside it.
fn within(target: &str, rule: &str) -> bool {
    target
        .strip_prefix(rule)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_whole_path_segments() {
        assert!(within("db", "db"));
        assert!(within("db::pool", "db"));
        assert!(!within("dbx", "db"));
        assert!(!within("app::db", "db"));
    }
}
