//! The marking policy: verdicts for each trigger form, the first trigger in spec order winning,
//! the documented edge cases (a pattern that matches everything, the largest sets, hostile
//! patterns), and a proptest against a naive matcher that checks every trigger on its own.

use ada_persist::spec::MatchKind;
use ada_persist::{MAX_TRIGGERS, MarkingPolicy, PolicyError, Target, TriggerId, TriggerSet};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn policy(specs: &[&str]) -> MarkingPolicy {
    MarkingPolicy::compile(&TriggerSet::parse(specs).unwrap()).unwrap()
}

fn id(index: usize) -> Option<TriggerId> {
    Some(TriggerId::new(index).unwrap())
}

#[test]
fn exact_names_match_whole_symbols_or_their_last_segment() {
    let p = policy(&["symbol=fib", "symbol=demo::slow"]);
    assert_eq!(p.symbol_verdict("fib"), id(0));
    assert_eq!(p.symbol_verdict("demo::fib"), id(0));
    assert_eq!(p.symbol_verdict("a::b::fib"), id(0));
    for miss in ["fib2", "xfib", "demo::fib::inner", "demo::fibx", "Fib", ""] {
        assert_eq!(p.symbol_verdict(miss), None, "{miss}");
    }
    assert_eq!(p.symbol_verdict("demo::slow"), id(1));
    for miss in ["x::demo::slow", "slow", "demo::slower", "demo::slow::x"] {
        assert_eq!(p.symbol_verdict(miss), None, "{miss}");
    }
}

#[test]
fn literal_names_are_escaped() {
    let p = policy(&["symbol=a.b", "symbol=<T as Tr>::f*"]);
    assert_eq!(p.symbol_verdict("a.b"), id(0));
    assert_eq!(p.symbol_verdict("axb"), None);
    assert_eq!(p.symbol_verdict("<T as Tr>::f*"), id(1));
    assert_eq!(p.symbol_verdict("<T as Tr>::fff"), None);
}

#[test]
fn regexes_search_unanchored_and_case_insensitively_when_asked() {
    let p = policy(&["symbol~=req(uest)?_\\d+", "symbol~i=^SLOW", "symbol~=end$"]);
    assert_eq!(p.symbol_verdict("svc::request_42::inner"), id(0));
    assert_eq!(p.symbol_verdict("slow_path"), id(1));
    assert_eq!(p.symbol_verdict("SlOw"), id(1));
    assert_eq!(p.symbol_verdict("x::slow"), None);
    assert_eq!(p.symbol_verdict("the_end"), id(2));
    assert_eq!(p.symbol_verdict("REQUEST_1"), None);
}

#[test]
fn the_first_trigger_in_spec_order_wins_even_when_a_later_one_matches_earlier_in_the_text() {
    let p = policy(&["symbol~=zzz", "symbol~=a", "symbol=x::a_zzz"]);
    // `a` matches at byte 3 and `zzz` at byte 5, but `zzz` is the first spec.
    assert_eq!(p.symbol_verdict("x::a_zzz"), id(0));
    assert_eq!(p.symbol_verdict("a"), id(1));
}

#[test]
fn messages_and_symbols_are_separate_and_ids_are_set_indices() {
    let p = policy(&[
        "message~=timeout",
        "symbol=fib",
        "message=disk full",
        "message~i=ERR\\d",
    ]);
    assert_eq!(p.symbol_verdict("timeout"), None);
    assert_eq!(p.message_verdict(b"fib"), None);
    assert_eq!(p.symbol_verdict("fib"), id(1));
    assert_eq!(p.message_verdict(b"request timeout after 3s"), id(0));
    assert_eq!(p.message_verdict(b"/var: disk full!"), id(2));
    assert_eq!(p.message_verdict(b"disk  full"), None);
    assert_eq!(p.message_verdict(b"got err7"), id(3));
    // Invalid UTF-8 in a message is searched, not refused.
    assert_eq!(p.message_verdict(b"\xff\xfe timeout \xff"), id(0));
    assert_eq!(p.trigger(id(2).unwrap()).to_string(), "message=disk full");
    assert_eq!(p.get(TriggerId::new(9).unwrap()), None);
    assert!(p.has_symbol_triggers() && p.has_message_triggers());
}

#[test]
fn an_empty_set_never_fires() {
    let p = MarkingPolicy::compile(&TriggerSet::default()).unwrap();
    assert_eq!(p.symbol_verdict("anything"), None);
    assert_eq!(p.message_verdict(b"anything"), None);
    assert!(!p.has_symbol_triggers() && !p.has_message_triggers());
}

#[test]
fn a_pattern_that_matches_everything_fires_for_every_input_and_is_listed() {
    let p = policy(&[
        "symbol=fib",
        "symbol~=.*",
        "message~=x*",
        "symbol~=^$",
        "message~=\\bq",
    ]);
    assert_eq!(p.symbol_verdict("fib"), id(0));
    assert_eq!(p.symbol_verdict("anything::else"), id(1));
    assert_eq!(p.symbol_verdict(""), id(1));
    assert_eq!(p.message_verdict(b""), id(2));
    assert_eq!(p.message_verdict(b"\xff"), id(2));
    // `^$` and `\bq` can match the empty string only with an anchor or boundary: not listed.
    assert_eq!(
        p.universal(),
        [TriggerId::new(1).unwrap(), TriggerId::new(2).unwrap()]
    );
}

#[test]
fn the_largest_set_of_names_compiles_quickly() {
    let specs: Vec<String> = (0..MAX_TRIGGERS)
        .map(|i| {
            if i % 2 == 0 {
                format!("symbol=fn_{i}")
            } else {
                format!("symbol=m{i}::fn_{i}")
            }
        })
        .collect();
    let start = Instant::now();
    let p = MarkingPolicy::compile(&TriggerSet::parse(&specs).unwrap()).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(p.symbol_verdict("crate::fn_1000"), id(1000));
    assert_eq!(p.symbol_verdict("m1023::fn_1023"), id(1023));
    assert_eq!(p.symbol_verdict("x::m1023::fn_1023"), None);
    assert_eq!(p.symbol_verdict("fn_1024"), None);
}

#[test]
fn hostile_patterns_are_refused_within_the_limits_in_bounded_time() {
    for hostile in ["symbol~=(?:\\w{100}){100}", "message~=[\\p{L}\\p{N}]{1000}"] {
        let start = Instant::now();
        // Among harmless triggers of both kinds, the hostile one is named.
        let set = TriggerSet::parse(&["symbol=fib", "message=ok", hostile]).unwrap();
        let err = MarkingPolicy::compile(&set).unwrap_err();
        let PolicyError::TooLarge {
            count: 2,
            culprit: Some((id, ref spec)),
            ..
        } = err
        else {
            panic!("{hostile}: {err}");
        };
        assert_eq!((id.index(), spec.as_str()), (2, hostile));
        let shown = err.to_string();
        assert!(
            shown.contains("limit") && shown.contains("trigger 3"),
            "{shown}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{hostile}: {:?}",
            start.elapsed()
        );
    }
    // Many moderately large regexes (Unicode `\w` is large): each fits alone, together they
    // do not; refused in bounded time, naming no single culprit.
    let specs: Vec<String> = (0..MAX_TRIGGERS)
        .map(|i| format!("symbol~=\\w{{20}}_{i}[a-z]{{5}}"))
        .collect();
    let start = Instant::now();
    let err = MarkingPolicy::compile(&TriggerSet::parse(&specs).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::TooLarge {
                count: MAX_TRIGGERS,
                culprit: None,
                ..
            }
        ),
        "{err}"
    );
    // The same 1024 regexes with ASCII `\w` fit.
    let ascii: Vec<String> = (0..MAX_TRIGGERS)
        .map(|i| format!("symbol~=(?-u:\\w){{20}}_{i}[a-z]{{5}}"))
        .collect();
    let p = MarkingPolicy::compile(&TriggerSet::parse(&ascii).unwrap()).unwrap();
    assert_eq!(p.symbol_verdict("abcdefghijabcdefghij_7abcde"), id(7));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    // Matching a long input against a pathological-for-backtrackers pattern stays linear.
    let p = policy(&["message~=(a|a)*(a|a)*b"]);
    let start = Instant::now();
    assert_eq!(p.message_verdict(&[b'a'; 100_000]), None);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// The naive matcher: each trigger on its own, written from the grammar rather than from the
/// policy's compiled form (literals compared as strings, each regex compiled alone).
fn naive(set: &TriggerSet, target: Target, text: &[u8]) -> Option<TriggerId> {
    set.specs().iter().enumerate().find_map(|(index, spec)| {
        if spec.target() != target {
            return None;
        }
        let pattern = spec.pattern();
        let hit = match (target, spec.kind()) {
            (Target::Symbol, MatchKind::Literal) => {
                let Ok(name) = std::str::from_utf8(text) else {
                    return None;
                };
                name == pattern
                    || (!pattern.contains("::") && name.ends_with(&format!("::{pattern}")))
            }
            (Target::Message, MatchKind::Literal) => {
                text.windows(pattern.len()).any(|w| w == pattern.as_bytes())
            }
            (_, kind) => {
                let source = if kind == MatchKind::RegexCaseInsensitive {
                    format!("(?i){pattern}")
                } else {
                    pattern.to_owned()
                };
                regex_automata::meta::Regex::new(&source)
                    .unwrap()
                    .is_match(text)
            }
        };
        hit.then(|| TriggerId::new(index).unwrap())
    })
}

fn spec_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[abAB]{1,3}".prop_map(|n| format!("symbol={n}")),
        "[ab]{1,2}::[abAB]{1,2}".prop_map(|n| format!("symbol={n}")),
        "[abAB.*+?^$|]{1,4}".prop_map(|p| format!("symbol~={p}")),
        "[abAB.*+?^$|]{1,4}".prop_map(|p| format!("symbol~i={p}")),
        "[ab .]{1,3}".prop_map(|p| format!("message={p}")),
        "[abAB.*+?^$|]{1,4}".prop_map(|p| format!("message~={p}")),
        "[abAB.*+?^$|]{1,4}".prop_map(|p| format!("message~i={p}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn verdicts_agree_with_the_naive_matcher(
        specs in proptest::collection::vec(spec_strategy(), 1..12),
        symbols in proptest::collection::vec("[abAB:]{0,8}", 1..8),
        messages in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'B'), Just(b' '), Just(b'.'), Just(0xff)], 0..8), 1..8),
    ) {
        // Keep the specs that parse, without duplicates.
        let mut kept: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for s in specs {
            if let Ok(spec) = ada_persist::TriggerSpec::parse(&s)
                && !seen.contains(&spec)
            {
                seen.push(spec);
                kept.push(s);
            }
        }
        let set = TriggerSet::parse(&kept).unwrap();
        let p = MarkingPolicy::compile(&set).unwrap();
        for s in &symbols {
            prop_assert_eq!(p.symbol_verdict(s), naive(&set, Target::Symbol, s.as_bytes()), "symbol {:?} specs {:?}", s, kept);
        }
        for m in &messages {
            prop_assert_eq!(p.message_verdict(m), naive(&set, Target::Message, m), "message {:?} specs {:?}", m, kept);
        }
    }
}

#[test]
fn a_policy_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let p = policy(&["symbol~=work", "message~=done"]);
    send_sync(&p);
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = &p;
            s.spawn(move || {
                for i in 0..200 {
                    assert_eq!(p.symbol_verdict(&format!("t{t}::work_{i}")), id(0));
                    assert_eq!(p.message_verdict(format!("{i} done").as_bytes()), id(1));
                }
            });
        }
    });
}
