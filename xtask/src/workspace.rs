//! The workspace as xtask needs it: the root directory and the member packages (name,
//! directory, publishable or not), read from the manifests with a minimal TOML line scan
//! (std only; the manifests here are plain `key = value` lines).

use std::path::{Path, PathBuf};

use crate::cmd::Failure;

/// One workspace member.
#[derive(Debug)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// The directory holding its Cargo.toml.
    pub dir: PathBuf,
    /// False for `publish = false` (or `publish = []`).
    pub publish: bool,
}

/// The workspace root and its members.
#[derive(Debug)]
pub struct Workspace {
    /// The directory holding the root Cargo.toml.
    pub root: PathBuf,
    /// The members, sorted by name.
    pub packages: Vec<Package>,
    /// Crate directories the workspace excludes (e.g. `fuzz`): not members, but still ours.
    pub excluded: Vec<PathBuf>,
}

impl Workspace {
    /// Finds the root and reads the member manifests.
    pub fn load() -> Result<Self, Failure> {
        let root = find_root()?;
        let manifest = read(&root.join("Cargo.toml"))?;
        let excluded: Vec<PathBuf> = string_array(&manifest, "workspace", "exclude")
            .iter()
            .map(|e| root.join(e))
            .collect();
        let mut packages = Vec::new();
        for pattern in string_array(&manifest, "workspace", "members") {
            for dir in expand(&root, &pattern)? {
                if excluded.contains(&dir) {
                    continue;
                }
                let path = dir.join("Cargo.toml");
                let text = read(&path)?;
                let name = value(&text, "package", "name")
                    .map(|v| v.trim_matches('"').to_owned())
                    .ok_or_else(|| Failure::new(format!("{}: no package name", path.display())))?;
                let publish = publishable(&text, &manifest);
                packages.push(Package { name, dir, publish });
            }
        }
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            root,
            packages,
            excluded,
        })
    }

    /// For each member with `tests/<prefix>*.rs` files: the package name and the test names.
    pub fn suites(&self, prefix: &str) -> Vec<(&str, Vec<String>)> {
        let mut out = Vec::new();
        for p in &self.packages {
            let Ok(entries) = std::fs::read_dir(p.dir.join("tests")) else {
                continue;
            };
            let mut tests: Vec<String> = entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
                .collect();
            if !tests.is_empty() {
                tests.sort();
                out.push((p.name.as_str(), tests));
            }
        }
        out
    }
}

/// The nearest directory at or above this crate's whose Cargo.toml has a `[workspace]` table.
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time; the compile-time value is the fallback.
fn find_root() -> Result<PathBuf, Failure> {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|d| d.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Failure::new(format!(
                "no workspace Cargo.toml at or above {}",
                start.display()
            ))
        })
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// Member directories for one `members` entry: a path, or `dir/*` for every crate under `dir`.
fn expand(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, Failure> {
    let Some(parent) = pattern.strip_suffix("/*") else {
        if pattern.contains(['*', '?', '[']) {
            return Err(Failure::new(format!(
                "workspace member pattern `{pattern}` is not supported (only `dir/*`)"
            )));
        }
        return Ok(vec![root.join(pattern)]);
    };
    let dir = root.join(parent);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Failure::new(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Whether a member manifest allows publishing; `publish.workspace = true` defers to the root's
/// `[workspace.package]`.
fn publishable(member: &str, root: &str) -> bool {
    let raw = match value(member, "package", "publish") {
        Some(v) if v.contains("workspace") => value(root, "workspace.package", "publish"),
        Some(v) => Some(v),
        None => value(member, "package", "publish.workspace")
            .filter(|v| v == "true")
            .and_then(|_| value(root, "workspace.package", "publish")),
    };
    raw.is_none_or(|v| v != "false" && v.replace(' ', "") != "[]")
}

/// The text before a `#` comment (a `#` inside a string does not count).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Each `(key, raw value)` of table `[section]`, the value spanning lines while a `[` is open.
fn entries(toml: &str, section: &str) -> Vec<(String, String)> {
    let header = format!("[{section}]");
    let mut out: Vec<(String, String)> = Vec::new();
    let (mut in_section, mut open) = (false, false);
    for line in toml.lines().map(|l| strip_comment(l).trim()) {
        if open {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line);
                open = !v.contains(']');
            }
        } else if line.starts_with('[') {
            in_section = line == header;
        } else if in_section && let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            open = v.starts_with('[') && !v.contains(']');
            out.push((k.trim().to_owned(), v.to_owned()));
        }
    }
    out
}

/// The raw value of `key` in `[section]`.
fn value(toml: &str, section: &str, key: &str) -> Option<String> {
    entries(toml, section)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The strings of array `key` in `[section]` (empty if absent).
fn string_array(toml: &str, section: &str, key: &str) -> Vec<String> {
    value(toml, section, key)
        .map(|v| v.split('"').skip(1).step_by(2).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"
[workspace]
resolver = "3"
members = [
    "a", # the first
    "b",
]
exclude = ["fuzz"]

[workspace.package]
version = "0.1.0"

[workspace.dependencies]
members = ["not", "these"]
"#;

    #[test]
    fn reads_members_and_exclude() {
        assert_eq!(string_array(ROOT, "workspace", "members"), ["a", "b"]);
        assert_eq!(string_array(ROOT, "workspace", "exclude"), ["fuzz"]);
        assert!(string_array(ROOT, "workspace", "default-members").is_empty());
    }

    #[test]
    fn reads_name_and_publish() {
        let member = "[package]\nname = \"xtask\" # tool\npublish = false\n\n[dependencies]\n";
        assert_eq!(
            value(member, "package", "name").as_deref(),
            Some("\"xtask\"")
        );
        assert!(!publishable(member, ROOT));
        assert!(!publishable("[package]\npublish = []\n", ROOT));
        assert!(publishable("[package]\nname = \"a\"\n", ROOT));
        assert!(publishable("[package]\npublish.workspace = true\n", ROOT));
        let root = format!("{ROOT}\n[workspace.package]\npublish = false\n");
        assert!(!publishable("[package]\npublish.workspace = true\n", &root));
    }
}
