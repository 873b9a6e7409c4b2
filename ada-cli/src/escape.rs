//! Rendering untrusted text for a terminal.
//!
//! Everything `ada` prints that came from a traced process or a trace file (thread and
//! function names, the executable and its arguments, module names, messages, paths found on
//! disk, errors quoting them) goes through [`escape`], [`Escaped`] or [`Quoted`] first, so that
//! such a string cannot move the cursor, recolour or clear the terminal (C0/C1 controls, ESC
//! sequences, CR, BEL, DEL) nor reorder or hide what is shown around it (Unicode bidi controls,
//! zero-width and other invisible format characters).
//!
//! Each such character is shown as a visible escape: `\t`, `\n`, `\r`, `\0`, `\xNN` for the
//! other ASCII controls (ESC is `\x1b`) and `\u{NNNN}` for the rest (U+202E is `\u{202e}`). A
//! backslash is shown as `\\`, so the output is unambiguous. Ordinary text, non-ASCII letters
//! and emoji included, is unchanged.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::path::Path;

/// Whether `c` must not reach a terminal as is: a control character (C0, DEL, C1), a bidi
/// control, or an invisible format or separator character that can spoof the output.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                    // soft hyphen (invisible)
            | '\u{061c}'                  // Arabic letter mark
            | '\u{180e}'                  // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'     // zero-width space/(non-)joiner, LRM, RLM
            | '\u{2028}'..='\u{202e}'     // line/paragraph separator, LRE..RLO
            | '\u{2060}'..='\u{206f}'     // word joiner, invisible operators, LRI..PDI, ...
            | '\u{feff}'                  // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'     // interlinear annotation controls
            | '\u{e0000}'..='\u{e007f}' // tag characters
        )
}

/// Whether [`escape`] changes `s` (it holds an unsafe character or a backslash).
pub fn needs_escape(s: &str) -> bool {
    s.chars().any(|c| c == '\\' || is_unsafe(c))
}

/// Writes `c` as its visible escape.
fn write_escaped_char(f: &mut dyn fmt::Write, c: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\t' => f.write_str("\\t"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\0' => f.write_str("\\0"),
        c if c.is_ascii() => write!(f, "\\x{:02x}", c as u32),
        c => write!(f, "\\u{{{:x}}}", c as u32),
    }
}

fn write_body(f: &mut dyn fmt::Write, s: &str, quote: bool) -> fmt::Result {
    let mut rest = s;
    while let Some(at) = rest.find(|c: char| c == '\\' || (quote && c == '"') || is_unsafe(c)) {
        f.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        if c == '"' {
            f.write_str("\\\"")?;
        } else {
            write_escaped_char(f, c)?;
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
}

/// `s` with every unsafe character and backslash escaped (see the module documentation);
/// borrowed when nothing needs it.
pub fn escape(s: &str) -> Cow<'_, str> {
    if needs_escape(s) {
        Cow::Owned(Escaped(s).to_string())
    } else {
        Cow::Borrowed(s)
    }
}

/// A path (lossily decoded) made safe the same way.
pub fn escape_path(p: &Path) -> String {
    escape(&p.to_string_lossy()).into_owned()
}

/// Displays a string as [`escape`] renders it (width and alignment are not applied; use
/// [`escape`] and pad the result).
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_body(f, self.0, false)
    }
}

/// Displays a string in double quotes, escaped as [`escape`] does and with `"` shown as `\"`.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_body(f, self.0, true)?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible() {
        let s = "\u{1b}[31mred\u{1b}[0m";
        assert_eq!(escape(s), "\\x1b[31mred\\x1b[0m");
        assert!(!escape(s).contains('\u{1b}'));
        assert_eq!(escape("a\rb\u{7}\u{7f}\u{9b}"), "a\\rb\\x07\\x7f\\u{9b}");
        assert_eq!(escape("tab\there\nnl\0"), "tab\\there\\nnl\\0");
    }

    #[test]
    fn bidi_and_invisible_characters_are_escaped() {
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        for c in [
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{2028}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
            let shown = escape(&c.to_string()).into_owned();
            assert_eq!(shown, format!("\\u{{{:x}}}", c as u32));
        }
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in [
            "grüße",
            "main",
            "wörker 2",
            "日本 🦀",
            "std::vec::Vec<u8>::push",
            "",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(Escaped(s).to_string(), s);
        }
    }

    #[test]
    fn backslash_is_escaped() {
        assert_eq!(escape("a\\b"), "a\\\\b");
        // A literal `\x1b` in a name cannot pass for an escaped ESC.
        assert_ne!(escape("\\x1b"), escape("\u{1b}"));
        assert_eq!(escape_path(Path::new("/tmp/a\u{1b}b")), "/tmp/a\\x1bb");
    }

    #[test]
    fn quoted_escapes_quotes_too() {
        assert_eq!(Quoted("wörker \"2\"").to_string(), "\"wörker \\\"2\\\"\"");
        assert_eq!(Quoted("a\u{202e}b").to_string(), "\"a\\u{202e}b\"");
        assert_eq!(Quoted("").to_string(), "\"\"");
    }
}
