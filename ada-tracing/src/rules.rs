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

    use tracing::callsite::{Callsite, Identifier};
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    struct Cs;
    impl Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable!("never asked in these tests")
        }
    }
    static CS: Cs = Cs;

    fn meta(level: Level, target: &'static str) -> Metadata<'static> {
        let fields = FieldSet::new(&[], Identifier(&CS));
        Metadata::new("e", target, level, None, None, None, fields, Kind::EVENT)
    }

    #[test]
    fn the_default_marks_errors_only() {
        let rules = MarkRules::default();
        assert!(rules.matches(&meta(Level::ERROR, "app")));
        assert!(!rules.matches(&meta(Level::WARN, "app")));
        assert!(!MarkRules::none().matches(&meta(Level::ERROR, "app")));
    }

    #[test]
    fn a_level_rule_takes_that_level_and_the_more_severe() {
        let mut rules = MarkRules::none();
        rules.at(Level::WARN);
        assert!(rules.matches(&meta(Level::ERROR, "app")));
        assert!(rules.matches(&meta(Level::WARN, "app")));
        assert!(!rules.matches(&meta(Level::INFO, "app")));
    }

    #[test]
    fn a_target_rule_marks_whatever_the_level() {
        let mut rules = MarkRules::none();
        rules.target("db");
        assert!(rules.matches(&meta(Level::TRACE, "db::pool")));
        assert!(!rules.matches(&meta(Level::ERROR, "dbx")));
    }

    #[test]
    fn targets_match_whole_path_segments() {
        assert!(within("db", "db"));
        assert!(within("db::pool", "db"));
        assert!(!within("dbx", "db"));
        assert!(!within("app::db", "db"));
    }
}
