//! Trigger spec parsing, validation and the byte encoding: every refusal names its spec and the
//! byte position; the encoding round-trips and its decoder survives arbitrary bytes.

use ada_persist::spec::{DecodeError, MatchKind, SpecErrorKind, Target};
use ada_persist::{MAX_ENCODED_LEN, MAX_TRIGGERS, TriggerSet, TriggerSpec};
use proptest::prelude::*;

#[test]
fn every_form_parses() {
    let cases = [
        ("symbol=fib", Target::Symbol, MatchKind::Literal, "fib"),
        (
            "symbol=demo::fib",
            Target::Symbol,
            MatchKind::Literal,
            "demo::fib",
        ),
        ("symbol~=^fi+b$", Target::Symbol, MatchKind::Regex, "^fi+b$"),
        (
            "symbol~i=FIB",
            Target::Symbol,
            MatchKind::RegexCaseInsensitive,
            "FIB",
        ),
        (
            "message=disk full",
            Target::Message,
            MatchKind::Literal,
            "disk full",
        ),
        (
            "message~=time(out)?",
            Target::Message,
            MatchKind::Regex,
            "time(out)?",
        ),
        (
            "message~i=a=b",
            Target::Message,
            MatchKind::RegexCaseInsensitive,
            "a=b",
        ),
        ("  symbol~= x  ", Target::Symbol, MatchKind::Regex, " x"),
    ];
    for (text, target, kind, pattern) in cases {
        let spec = TriggerSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (spec.target(), spec.kind(), spec.pattern()),
            (target, kind, pattern),
            "{text}"
        );
        assert_eq!(
            TriggerSpec::parse(&spec.to_string()).unwrap(),
            spec,
            "canonical form of {text}"
        );
    }
}

fn refusal(specs: &[&str]) -> ada_persist::SpecError {
    TriggerSet::parse(specs).expect_err("must be refused")
}

#[test]
fn unknown_key_missing_operator_and_empty_pattern_are_refused_with_their_position() {
    let e = refusal(&["symbol=ok", "  sym=fib"]);
    assert_eq!((e.index, e.position), (1, 2));
    assert_eq!(e.spec, "  sym=fib");
    assert!(
        matches!(e.kind, SpecErrorKind::UnknownKey(ref k) if k == "sym"),
        "{e}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains("trigger 2") && shown.contains("sym=fib") && shown.contains("byte 2"),
        "{shown}"
    );

    let e = refusal(&["symbol = fib"]);
    assert!(
        matches!(e.kind, SpecErrorKind::UnknownKey(ref k) if k == "symbol "),
        "{e}"
    );
    let e = refusal(&["symbol~x=fib"]);
    assert!(matches!(e.kind, SpecErrorKind::UnknownKey(_)), "{e}");
    let e = refusal(&["crash"]);
    assert_eq!((e.kind, e.position), (SpecErrorKind::MissingOperator, 5));
    let e = refusal(&["symbol~=   "]);
    assert_eq!((e.kind, e.position), (SpecErrorKind::EmptyPattern, 8));
    let e = refusal(&["message="]);
    assert_eq!((e.kind, e.position), (SpecErrorKind::EmptyPattern, 8));
}

#[test]
fn empty_path_segments_are_refused() {
    for (text, position) in [
        ("symbol=demo::", 13),
        ("symbol=::fib", 7),
        ("symbol=a::::b", 10),
    ] {
        let e = refusal(&[text]);
        assert_eq!(
            (e.kind, e.position),
            (SpecErrorKind::EmptySegment, position),
            "{text}"
        );
    }
}

#[test]
fn invalid_regex_is_refused_at_regex_syntax_span() {
    // `(` unclosed at pattern byte 3, the spec's byte 8 + 3.
    let e = refusal(&["symbol=x", "symbol~=abc(def"]);
    assert_eq!((e.index, e.position), (1, 11), "{e}");
    assert!(matches!(e.kind, SpecErrorKind::InvalidRegex(_)), "{e}");
    // A translation error (unknown Unicode class) at pattern byte 1.
    let e = refusal(&["message~i=a\\p{NoSuchClass}"]);
    assert_eq!(e.position, 11, "{e}");
    // Look-around and back-references are not supported.
    assert!(matches!(
        refusal(&["symbol~=(?=x)"]).kind,
        SpecErrorKind::InvalidRegex(_)
    ));
    assert!(matches!(
        refusal(&["symbol~=(a)\\1"]).kind,
        SpecErrorKind::InvalidRegex(_)
    ));
    // Nesting beyond the limit is refused, not recursed into.
    let deep = format!("symbol~={}x{}", "(".repeat(200), ")".repeat(200));
    assert!(matches!(
        refusal(&[&deep]).kind,
        SpecErrorKind::InvalidRegex(_)
    ));
}

#[test]
fn duplicates_are_refused_naming_the_first() {
    let e = refusal(&["symbol=a", "symbol=b", " symbol=a "]);
    assert_eq!((e.index, e.position), (2, 1));
    assert_eq!(e.kind, SpecErrorKind::Duplicate { first: 0 });
    // Different operators are different triggers.
    TriggerSet::parse(&["symbol=a", "symbol~=a", "symbol~i=a", "message=a"]).unwrap();
}

#[test]
fn ten_thousand_specs_and_overlong_patterns_are_refused() {
    let many: Vec<String> = (0..10_000).map(|i| format!("symbol=f{i}")).collect();
    let e = TriggerSet::parse(&many).unwrap_err();
    assert_eq!(e.kind, SpecErrorKind::TooMany(10_000));
    let max: Vec<String> = (0..MAX_TRIGGERS).map(|i| format!("symbol=f{i}")).collect();
    assert_eq!(TriggerSet::parse(&max).unwrap().len(), MAX_TRIGGERS);

    let long = format!("symbol~={}", "a".repeat(2000));
    assert!(matches!(
        refusal(&[&long]).kind,
        SpecErrorKind::PatternTooLong(2000)
    ));
    // Many long patterns: the set's encoding would not fit the published region.
    let big: Vec<String> = (0..100).map(|i| format!("message={i:0>1000}")).collect();
    assert!(matches!(
        TriggerSet::parse(&big).unwrap_err().kind,
        SpecErrorKind::TooLarge(_)
    ));
}

#[test]
fn encoding_round_trips() {
    let set = TriggerSet::parse(&[
        "symbol=demo::fib",
        "symbol~i=ÄÖ+",
        "message~=a=b ",
        "message= x",
    ])
    .unwrap();
    let bytes = set.encode();
    assert!(bytes.starts_with(b"ADAT\x01\x00\x04\x00"));
    assert_eq!(TriggerSet::decode(&bytes).unwrap(), set);
    assert_eq!(
        TriggerSet::decode(&TriggerSet::default().encode()).unwrap(),
        TriggerSet::default()
    );
}

#[test]
fn decode_refuses_damaged_bytes() {
    let bytes = TriggerSet::parse(&["symbol=a", "symbol~=b+"])
        .unwrap()
        .encode();
    for cut in 0..bytes.len() {
        assert!(
            matches!(
                TriggerSet::decode(&bytes[..cut]),
                Err(DecodeError::Truncated(_))
            ),
            "cut {cut}"
        );
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(
        TriggerSet::decode(&extra),
        Err(DecodeError::TrailingBytes(1))
    );
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(TriggerSet::decode(&magic), Err(DecodeError::BadMagic));
    let mut version = bytes.clone();
    version[4] = 9;
    assert_eq!(
        TriggerSet::decode(&version),
        Err(DecodeError::UnsupportedVersion(9))
    );
    let mut reserved = bytes.clone();
    reserved[5] = 1;
    assert_eq!(TriggerSet::decode(&reserved), Err(DecodeError::Reserved(1)));
    // A spec rewritten into an invalid regex is validated again.
    let mut regex = bytes.clone();
    let at = regex.len() - 1;
    regex[at] = b'(';
    assert!(matches!(
        TriggerSet::decode(&regex),
        Err(DecodeError::Spec(_))
    ));
    // Two equal specs are a duplicate.
    let mut dup = bytes.clone();
    dup.truncate(8 + 2 + 8);
    dup[6] = 2;
    dup.extend_from_within(8..18);
    assert!(
        matches!(TriggerSet::decode(&dup), Err(DecodeError::Spec(e)) if e.kind == SpecErrorKind::Duplicate { first: 0 })
    );
    let mut utf8 = bytes;
    utf8[8 + 2] = 0xff;
    assert_eq!(TriggerSet::decode(&utf8), Err(DecodeError::NotUtf8(0)));
    assert_eq!(
        TriggerSet::decode(&vec![0; MAX_ENCODED_LEN + 1]),
        Err(DecodeError::TooLong(MAX_ENCODED_LEN + 1))
    );
    // A count far beyond the bytes present is a truncation, not an allocation.
    assert!(matches!(
        TriggerSet::decode(b"ADAT\x01\x00\xff\xff"),
        Err(DecodeError::Truncated(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the decoder, and what it accepts re-encodes to the same bytes.
    #[test]
    fn decode_arbitrary_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), header in any::<bool>()) {
        if header && bytes.len() >= 8 {
            bytes[..6].copy_from_slice(b"ADAT\x01\x00");
            bytes[7] = 0;
            bytes[6] %= 4;
        }
        if let Ok(set) = TriggerSet::decode(&bytes) {
            prop_assert_eq!(set.encode(), bytes);
        }
    }

    /// Arbitrary spec text never panics the parser, and what it accepts round-trips.
    #[test]
    fn parse_arbitrary_text(text in "(symbol|message|sym)?(~i|~)?=?[a-z:()*+.\\[\\] =~é]{0,12}") {
        if let Ok(spec) = TriggerSpec::parse(&text) {
            prop_assert_eq!(TriggerSpec::parse(&spec.to_string()).unwrap(), spec.clone());
            let set = TriggerSet::parse(&[text.as_str()]).unwrap();
            prop_assert_eq!(TriggerSet::decode(&set.encode()).unwrap(), set);
        }
    }
}
