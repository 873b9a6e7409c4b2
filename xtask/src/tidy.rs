//! Repository rules enforced by `cargo xtask tidy`: every Rust file opens with a `//!` doc,
//! no stubs or left-over markers, and every `unsafe` block or impl carries a `SAFETY:` comment
//! within the five lines above it.

use std::path::{Path, PathBuf};

/// One rule broken at `line` (1-based) of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
}

/// Checks one file's text.
pub fn check_source(text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("#!"));
    if !first.is_some_and(|l| l.starts_with("//!")) {
        out.push(Violation {
            line: 1,
            message: "file does not start with a `//!` module doc",
        });
    }
    // Built from pieces so this file does not trip its own rule.
    let markers = [
        (["to", "do!("].concat(), "stub macro left in code"),
        (["unimple", "mented!("].concat(), "stub macro left in code"),
        (["TO", "DO"].concat(), "left-over marker"),
        (["FIX", "ME"].concat(), "left-over marker"),
        (["X", "XX"].concat(), "left-over marker"),
    ];
    let (unsafe_block, unsafe_impl) = (["unsafe", " {"].concat(), ["unsafe", " impl"].concat());
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        for (marker, message) in &markers {
            if line.contains(marker.as_str()) {
                out.push(Violation {
                    line: i + 1,
                    message,
                });
            }
        }
        let code = line.split("//").next().unwrap_or("");
        if code.contains(&unsafe_block) || code.contains(&unsafe_impl) {
            // The SAFETY comment may be a few lines up, or anywhere in the comment block that
            // directly precedes the line.
            let near = lines[i.saturating_sub(5)..=i]
                .iter()
                .any(|l| l.contains("SAFETY:"));
            let block = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("//"))
                .any(|l| l.contains("SAFETY:"));
            if !near && !block {
                out.push(Violation {
                    line: i + 1,
                    message: "`unsafe` without a `SAFETY:` comment in the 5 lines above",
                });
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.')
                && !name.starts_with("target")
                && name != "corpus"
                && name != "artifacts"
            {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Checks every `.rs` file under the workspace root.
pub fn check_tree(root: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut count = 0;
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for v in check_source(&text) {
            let rel = f.strip_prefix(root).unwrap_or(f);
            eprintln!("{}:{}: {}", rel.display(), v.line, v.message);
            count += 1;
        }
    }
    if count == 0 {
        eprintln!("    tidy: {} files clean", files.len());
        Ok(())
    } else {
        Err(format!("{count} tidy violation(s)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_clean_file() {
        let src = format!(
            "//! Docs.\n// SAFETY: fine\n{} Send for X {{}}\n",
            ["unsafe", " impl"].concat()
        );
        let src = src.as_str();
        assert!(check_source(src).is_empty());
        assert!(check_source("#![cfg(loom)]\n\n//! Docs after an attribute.\n").is_empty());
    }

    #[test]
    fn flags_missing_docs_markers_and_unsafe() {
        let marker = ["to", "do!()"].concat();
        let block = ["unsafe", " {"].concat();
        let src = format!("fn f() {{ {marker} }}\nfn g() {{ {block} x() }} }}\n");
        let v = check_source(&src);
        assert_eq!(v.iter().map(|v| v.line).collect::<Vec<_>>(), vec![1, 1, 2]);
        assert!(v[0].message.contains("module doc"));
        assert!(v[2].message.contains("SAFETY"));
    }
}
