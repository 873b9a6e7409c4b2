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
//!
//! In the model-checked crates (every member with a `tests/loom*.rs` or `tests/shuttle*.rs`
//! suite), the files under `src/` and `tests/` also name no `std` or `core` atomics path
//! (`std::sync::atomic`, `core::sync::atomic`, or a path segment `atomic::` as in
//! `std::sync::{atomic::AtomicU32, Arc}`) outside comments: their atomics come from
//! `ada_shm::sync`, which loom and shuttle replace. Direct `std` atomics would compile under the
//! model checkers but be invisible to them. The exemptions ([`DIRECT_ATOMICS_ALLOWED`]) are the
//! facade itself and the test kit's model runner, whose execution tallies must stay outside
//! the model on purpose.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cmd::{Failure, Outcome};
use crate::workspace::Workspace;

/// Directory, relative to the workspace root, of sources that break the rules on purpose.
const FIXTURES: &str = "xtask/tests/fixtures";

/// How many lines above an `unsafe` line a `SAFETY:` comment may sit.
const SAFETY_REACH: usize = 3;

/// Files, relative to the workspace root, that may name `std` atomics even inside a
/// model-checked crate: the atomics facade, which is where those names come from, and the test
/// kit's model runner, which counts executions in atomics loom and shuttle must not see.
const DIRECT_ATOMICS_ALLOWED: [&str; 2] = ["ada-shm/src/sync.rs", "ada-testkit/src/model.rs"];

/// A rule a line breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The file does not open with a `//!` module doc.
    ModuleDoc,
    /// A stub macro or left-over marker (the text found).
    Marker(&'static str),
    /// An `unsafe` block or impl without a `SAFETY:` comment.
    UndocumentedUnsafe,
    /// A `std`/`core` atomics path in a model-checked crate.
    DirectAtomic,
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
            Self::DirectAtomic => write!(
                f,
                "`std`/`core` atomics in a model-checked crate: import them from `ada_shm::sync` \
                 (loom and shuttle cannot see `std` atomics)"
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
    // Blocks, impls and foreign blocks (whose declarations the compiler takes on trust); an
    // `unsafe extern "C" fn` is a function, documented by its `# Safety` section instead.
    let unsafe_forms = [
        concat!("unsafe", " {"),
        concat!("unsafe", " impl"),
        concat!("unsafe", " extern \"C\" {"),
    ];
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

/// Checks one file of a model-checked crate for `std`/`core` atomics paths (the facade rule).
pub fn check_atomics_facade(text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split_once("//").map_or(*line, |(code, _)| code);
            names_std_atomics(code)
        })
        .map(|(i, _)| Violation {
            line: i + 1,
            rule: Rule::DirectAtomic,
        })
        .collect()
}

/// Whether `code` names the `std`/`core` atomics module: a `sync::atomic` path, or a path
/// segment `atomic::` (`std::sync::{atomic::AtomicU32, Arc}`, or `atomic::Ordering` after a
/// `use std::sync::atomic;`). `ada_shm::sync::AtomicU32` has neither.
fn names_std_atomics(code: &str) -> bool {
    code.contains("sync::atomic")
        || code.match_indices("atomic::").any(|(i, _)| {
            !code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Whether the facade rule covers `file`: it lies under `src/` or `tests/` of one of
/// `model_checked` (crate directories) and is not one of [`DIRECT_ATOMICS_ALLOWED`].
fn facade_rule_applies(root: &Path, file: &Path, model_checked: &[&Path]) -> bool {
    let allowed = DIRECT_ATOMICS_ALLOWED.iter().any(|a| root.join(a) == file);
    !allowed
        && model_checked
            .iter()
            .any(|dir| file.starts_with(dir.join("src")) || file.starts_with(dir.join("tests")))
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
    let model_checked = model_checked_dirs(ws);
    let mut count = 0;
    for file in &files {
        let rel = file.strip_prefix(&ws.root).unwrap_or(file).display();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let mut found = check_source(&text);
                if facade_rule_applies(&ws.root, file, &model_checked) {
                    found.extend(check_atomics_facade(&text));
                    found.sort_by_key(|v| v.line);
                }
                for v in found {
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

/// The directories of the members with loom or shuttle suites.
fn model_checked_dirs(ws: &Workspace) -> Vec<&Path> {
    let names: Vec<&str> = ["loom", "shuttle"]
        .iter()
        .flat_map(|kind| ws.suites(kind))
        .map(|(name, _)| name)
        .collect();
    ws.packages
        .iter()
        .filter(|p| names.contains(&p.name.as_str()))
        .map(|p| p.dir.as_path())
        .collect()
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
        // A foreign block needs one too; an `unsafe extern "C" fn` does not.
        let foreign = concat!("unsafe", " extern \"C\" {\n    fn g();\n}\n");
        assert_eq!(
            rules(&format!("//! Doc.\n{foreign}")),
            [(2, Rule::UndocumentedUnsafe)]
        );
        assert_eq!(
            rules(&format!(
                "//! Doc.\n// SAFETY: g is defined in g.c so.\n{foreign}"
            )),
            CLEAN
        );
        let function = concat!("pub unsafe", " extern \"C\" fn f(p: *const u8) {}\n");
        assert_eq!(rules(&format!("//! Doc.\n{function}")), CLEAN);
        // `unsafe` in a comment is not code.
        assert_eq!(rules(&format!("//! Doc.\n// {block}\n")), CLEAN);
    }

    #[test]
    fn atomics_fixture_reports_each_std_atomics_path() {
        let text = include_str!("../tests/fixtures/tidy/atomics.rs");
        assert_eq!(rules(text), CLEAN, "the fixture breaks no other rule");
        let found: Vec<(usize, Rule)> = check_atomics_facade(text)
            .into_iter()
            .map(|v| (v.line, v.rule))
            .collect();
        assert_eq!(
            found,
            [
                (6, Rule::DirectAtomic),
                (7, Rule::DirectAtomic),
                (10, Rule::DirectAtomic),
                (12, Rule::DirectAtomic),
                (21, Rule::DirectAtomic),
            ]
        );
        assert_eq!(
            check_atomics_facade(include_str!("../tests/fixtures/tidy/clean.rs")),
            []
        );
    }

    #[test]
    fn atomics_facade_rule_covers_src_and_tests_of_model_checked_crates_only() {
        let root = Path::new("/ws");
        let (registry, shm) = (root.join("ada-registry"), root.join("ada-shm"));
        let model_checked = [registry.as_path(), shm.as_path()];
        let applies = |rel: &str| facade_rule_applies(root, &root.join(rel), &model_checked);
        assert!(applies("ada-registry/src/registry.rs"));
        assert!(applies("ada-registry/tests/loom_spsc.rs"));
        assert!(applies("ada-shm/src/segment.rs"));
        assert!(!applies("ada-shm/src/sync.rs"), "the facade itself");
        assert!(!applies("ada-registry/benches/registry.rs"));
        assert!(!applies("ada-registry/examples/registry_demo.rs"));
        assert!(!applies("ada-agent/src/callsite.rs"), "not model-checked");
    }

    /// A scratch workspace under the system temp directory, removed on drop.
    struct ScratchWorkspace(PathBuf);

    impl Drop for ScratchWorkspace {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn check_tree_fails_on_std_atomics_planted_in_a_model_checked_crate() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-atomics-{}", std::process::id()));
        let scratch = ScratchWorkspace(root.clone());
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let facade = "//! Uses the facade.\nuse ada_shm::sync::{AtomicU32, Ordering};\n";
        write("checked/src/lib.rs", facade);
        write(
            "checked/tests/loom_queue.rs",
            "#![cfg(loom)]\n//! A loom suite.\n",
        );
        // The same import in a crate without model-checking suites is allowed.
        let direct = "//! Uses std.\nuse std::sync::atomic::AtomicU32;\n";
        write("plain/src/lib.rs", direct);
        let package = |name: &str| crate::workspace::Package {
            name: name.to_owned(),
            dir: root.join(name),
            publish: false,
        };
        let ws = Workspace {
            root: root.clone(),
            packages: vec![package("checked"), package("plain")],
            excluded: Vec::new(),
        };
        assert!(check_tree(&ws).is_ok());
        write("checked/src/queue.rs", direct);
        assert!(check_tree(&ws).is_err(), "planted std atomics not reported");
        drop(scratch);
    }
}
