//! `cargo xtask tidy`: repository rules that rustc and clippy do not check.
//!
//! Every `.rs` file of every crate directory (workspace members and excluded crates such as
//! `fuzz`; `target` and hidden directories and xtask's own test fixtures are skipped):
//!
//! - opens with a `//!` module doc (after any leading `#![...]` attributes and blank lines);
//! - holds no stub macro and no left-over marker, in code or comments (the list is
//!   [`markers`]);
//! - has a `SAFETY:` comment for every line with an `unsafe` block or `unsafe impl`: on that
//!   line, in the three lines above it, or anywhere in the comment block directly above it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cmd::{Failure, Outcome};
use crate::workspace::Workspace;

/// Directory, relative to the workspace root, of sources that break the rules on purpose.
const FIXTURES: &str = "xtask/tests/fixtures";

/// How many lines above an `unsafe` line a `SAFETY:` comment may sit.
const SAFETY_REACH: usize = 3;

/// A rule a line breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The file does not open with a `//!` module doc.
    ModuleDoc,
    /// A stub macro or left-over marker (the text found).
    Marker(&'static str),
    /// An `unsafe` block or impl without a `SAFETY:` comment.
    UndocumentedUnsafe,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ModuleDoc => write!(
                f,
                "file must open with a `//!` module doc (after any `#![...]` attributes)"
            ),
            Self::Marker(m) => write!(f, "`{m}` left in the source"),
            Self::UndocumentedUnsafe => write!(
                f,
                "`unsafe` without a `SAFETY:` comment on the line or in the {SAFETY_REACH} lines above"
            ),
        }
    }
}

/// One broken rule at a 1-based line.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line number.
    pub line: usize,
    /// The rule broken.
    pub rule: Rule,
}

/// The stub macros and markers no file may contain. Each is spelled in two pieces so this
/// file passes its own check.
fn markers() -> [&'static str; 5] {
    [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("TO", "DO"),
        concat!("FIX", "ME"),
        concat!("XX", "X"),
    ]
}

/// Checks one file's text.
pub fn check_source(text: &str) -> Vec<Violation> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    if let Some(line) = missing_module_doc(&lines) {
        out.push(Violation {
            line,
            rule: Rule::ModuleDoc,
        });
    }
    let unsafe_forms = [concat!("unsafe", " {"), concat!("unsafe", " impl")];
    for (i, line) in lines.iter().enumerate() {
        for m in markers() {
            if line.contains(m) {
                out.push(Violation {
                    line: i + 1,
                    rule: Rule::Marker(m),
                });
            }
        }
        let code = line.split_once("//").map_or(*line, |(code, _)| code);
        if unsafe_forms.iter().any(|u| code.contains(u)) && !has_safety_comment(&lines, i) {
            out.push(Violation {
                line: i + 1,
                rule: Rule::UndocumentedUnsafe,
            });
        }
    }
    out
}

/// The 1-based line where a `//!` doc should be but is not; `None` if the file is fine.
/// Skips blank lines, a shebang, and `#![...]` attributes (also ones spanning lines).
fn missing_module_doc(lines: &[&str]) -> Option<usize> {
    let mut depth = 0i32;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if depth > 0 {
            depth += bracket_balance(t);
        } else if t.starts_with("#![") {
            depth = bracket_balance(t);
        } else if !(t.is_empty() || (i == 0 && t.starts_with("#!"))) {
            return (!t.starts_with("//!")).then_some(i + 1);
        }
    }
    Some(lines.len().max(1))
}

fn bracket_balance(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            '[' => 1,
            ']' => -1,
            _ => 0,
        })
        .sum()
}

/// Whether line `i` or one of the [`SAFETY_REACH`] lines above it says `SAFETY:`, or the run of
/// comment and attribute lines directly above it does (a long SAFETY comment).
fn has_safety_comment(lines: &[&str], i: usize) -> bool {
    let near = lines[i.saturating_sub(SAFETY_REACH)..=i]
        .iter()
        .any(|l| l.contains("SAFETY:"));
    near || lines[..i]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l.contains("SAFETY:"))
}

/// Every `.rs` file under `dir`, skipping `target`, hidden directories and `skip`.
fn rust_files(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && path != skip {
                rust_files(&path, skip, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks every crate directory of the workspace, printing `path:line: message` per violation.
pub fn check_tree(ws: &Workspace) -> Outcome {
    let skip = ws.root.join(FIXTURES);
    let mut files = Vec::new();
    let dirs = ws.packages.iter().map(|p| &p.dir).chain(&ws.excluded);
    for dir in dirs.filter(|d| d.is_dir()) {
        rust_files(dir, &skip, &mut files)
            .map_err(|e| Failure::new(format!("cannot list {}: {e}", dir.display())))?;
    }
    files.sort();
    files.dedup();
    let mut count = 0;
    for file in &files {
        let rel = file.strip_prefix(&ws.root).unwrap_or(file).display();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                for v in check_source(&text) {
                    eprintln!("{rel}:{}: {}", v.line, v.rule);
                    count += 1;
                }
            }
            Err(e) => {
                eprintln!("{rel}:1: cannot read: {e}");
                count += 1;
            }
        }
    }
    if count > 0 {
        return Err(Failure::new(format!("{count} tidy violation(s)")));
    }
    eprintln!("    tidy: {} files clean", files.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(usize, Rule)> {
        check_source(text)
            .into_iter()
            .map(|v| (v.line, v.rule))
            .collect()
    }

    const CLEAN: [(usize, Rule); 0] = [];

    #[test]
    fn clean_fixture_passes() {
        assert_eq!(
            rules(include_str!("../tests/fixtures/tidy/clean.rs")),
            CLEAN
        );
    }

    /// A file that breaks every rule. Built at run time from pieces, so the repository itself
    /// holds no stub macros or marker words (other tools grep for them too).
    fn dirty_fixture() -> String {
        let (todo, unimpl) = (concat!("to", "do!"), concat!("unimple", "mented!"));
        let (t, f, x) = (
            concat!("TO", "DO"),
            concat!("FIX", "ME"),
            concat!("X", "XX"),
        );
        let (block, imp) = (concat!("unsafe", " { *p }"), concat!("unsafe", " impl"));
        format!(
            "// A tidy fixture that breaks every rule.\n\nfn stubs() {{\n    {todo}(\"later\");\n    {unimpl}();\n}}\n// {t}: remove\n// {f} {x}\n\nfn f(p: *const u8) -> u8 {{\n    // Reads p.\n    {block}\n}}\n\n// SAFETY: this comment is too far above the impl.\n\nstruct S;\n\n\n{imp} Send for S {{}}\n"
        )
    }

    #[test]
    fn dirty_fixture_reports_each_violation() {
        let m = markers();
        assert_eq!(
            rules(&dirty_fixture()),
            [
                (1, Rule::ModuleDoc),
                (4, Rule::Marker(m[0])),
                (5, Rule::Marker(m[1])),
                (7, Rule::Marker(m[2])),
                (8, Rule::Marker(m[3])),
                (8, Rule::Marker(m[4])),
                (12, Rule::UndocumentedUnsafe),
                (20, Rule::UndocumentedUnsafe),
            ]
        );
    }

    #[test]
    fn module_doc_may_follow_attributes_and_blank_lines() {
        assert_eq!(rules("//! Doc.\nfn f() {}\n"), CLEAN);
        assert_eq!(rules("\n#![cfg(loom)]\n\n//! Doc.\n"), CLEAN);
        assert_eq!(
            rules("#![cfg_attr(\n    x,\n    allow(y)\n)]\n//! Doc.\n"),
            CLEAN
        );
        assert_eq!(rules("#!/usr/bin/env run-cargo-script\n//! Doc.\n"), CLEAN);
    }

    #[test]
    fn module_doc_is_required_first() {
        assert_eq!(rules(""), [(1, Rule::ModuleDoc)]);
        assert_eq!(rules("#![cfg(loom)]\n"), [(1, Rule::ModuleDoc)]);
        assert_eq!(rules("/// Item doc.\nfn f() {}\n"), [(1, Rule::ModuleDoc)]);
        assert_eq!(rules("// Plain.\n//! Doc.\n"), [(1, Rule::ModuleDoc)]);
        assert_eq!(rules("#![cfg(loom)]\nuse x;\n"), [(2, Rule::ModuleDoc)]);
    }

    #[test]
    fn safety_comment_reach() {
        let block = concat!("unsafe", " { f() }");
        let at = |above: &str| rules(&format!("//! Doc.\n{above}let x = {block};\n"));
        assert_eq!(at("// SAFETY: f has no preconditions.\n"), CLEAN);
        assert_eq!(at("// SAFETY: ok.\n\n\n"), CLEAN);
        assert_eq!(
            at("// SAFETY: ok.\n\n\n\n"),
            [(6, Rule::UndocumentedUnsafe)]
        );
        // A long comment block counts from anywhere in it.
        assert_eq!(at("// SAFETY: a\n// b\n// c\n// d\n#[allow(x)]\n"), CLEAN);
        // `unsafe` in a comment is not code.
        assert_eq!(rules(&format!("//! Doc.\n// {block}\n")), CLEAN);
    }
}
