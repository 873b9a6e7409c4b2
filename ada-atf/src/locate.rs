//! Finding a trace on disk: is this path a trace directory, and if it is a session directory,
//! which `pid_<pid>` directory inside it is meant.
//!
//! [`TraceWriter`](crate::TraceWriter) lays traces out as
//! `<output_root>/ada_traces/<session>/pid_<pid>/`, and a *trace directory* is a directory
//! holding an `events.bin` file (the manifest `trace.json` appears only once the writer
//! finalized, so it is not required). [`TraceDir::find`] accepts either a trace directory or
//! a directory with exactly one trace directory directly inside it (a session directory), and
//! otherwise says precisely what is wrong ([`LocateError`]): nothing there, not a directory, no
//! `events.bin` (with a hint naming trace directories nearby), several traces to choose from,
//! or a permission problem — which is never reported as a missing `events.bin`.
//!
//! Every tool that takes a trace path from a user (`ada inspect`, `ada export`) and the tests
//! that look for the trace a run wrote use this one function.
//!
//! ```
//! use ada_atf::{TraceDir, TraceSummary, TraceWriter, WriterOptions};
//!
//! let out = tempfile::tempdir()?;
//! let options = WriterOptions { pid: 42, ..WriterOptions::default() };
//! let dir = TraceWriter::create(out.path(), options)?.finalize(TraceSummary::default())?.dir;
//!
//! let session = dir.parent().unwrap(); // ada_traces/session_…: one pid_ directory inside
//! let trace = TraceDir::find(session)?;
//! assert_eq!(trace.path(), dir);
//! assert_eq!(trace.pid(), Some(42));
//! assert!(TraceDir::find(out.path()).is_err()); // an output root: "did you mean …?"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};

use crate::writer::{EVENTS_FILE, MANIFEST_FILE};

/// Prefix of the directory that holds one process's trace: `pid_<pid>`.
pub const PID_DIR_PREFIX: &str = "pid_";

/// How many trace directories a [`LocateError`] hint names at most.
const HINTS_MAX: usize = 3;

/// How many directories the hint search reads at most.
const HINT_DIRS_MAX: usize = 64;

/// How many levels below a directory the hint search looks (an output root holds
/// `ada_traces/<session>/pid_<pid>`).
const HINT_DEPTH: usize = 3;

/// The name of the trace directory of process `pid`: `pid_<pid>`.
pub fn pid_dir_name(pid: u32) -> String {
    format!("{PID_DIR_PREFIX}{pid}")
}

/// The `N` of a directory named `pid_N`, if `dir`'s last component has that form.
pub fn pid_from_dir(dir: &Path) -> Option<u32> {
    dir.file_name()?
        .to_str()?
        .strip_prefix(PID_DIR_PREFIX)?
        .parse()
        .ok()
}

/// A trace directory: a directory holding `events.bin` (and, once finalized, `trace.json`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceDir {
    path: PathBuf,
}

impl TraceDir {
    /// The trace `path` names: `path` itself if it holds `events.bin`, else the one directory
    /// directly inside `path` that does (a session directory holding one `pid_<pid>`).
    ///
    /// Only the presence of `events.bin` is checked; whether the trace is readable, finalized
    /// or complete is for [`TraceReader`](crate::TraceReader) to say.
    pub fn find(path: impl AsRef<Path>) -> Result<TraceDir, LocateError> {
        find(path.as_ref())
    }

    /// The trace directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trace directory, owned.
    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// The traced process's pid as the directory name gives it (`pid_<pid>`), if it does.
    /// The manifest's `pid`, where there is one, is the authority.
    pub fn pid(&self) -> Option<u32> {
        pid_from_dir(&self.path)
    }

    /// `events.bin` in this directory.
    pub fn events_file(&self) -> PathBuf {
        self.path.join(EVENTS_FILE)
    }

    /// `trace.json` in this directory (present once the writer finalized).
    pub fn manifest_file(&self) -> PathBuf {
        self.path.join(MANIFEST_FILE)
    }
}

impl AsRef<Path> for TraceDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// Why [`TraceDir::find`] found no trace at a path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// Nothing exists at the path.
    #[error("{} does not exist", .path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The path exists but is not a directory.
    #[error(
        "{} is not a trace directory (a trace is a directory holding events.bin){}",
        .path.display(),
        candidates_hint(.candidates)
    )]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// Trace directories found nearby (the file's parent), if any.
        candidates: Vec<PathBuf>,
    },
    /// The directory holds no `events.bin`, and no directory directly inside it does.
    #[error(
        "{} is not a trace directory: it has no events.bin{}",
        .path.display(),
        candidates_hint(.candidates)
    )]
    NoEventsFile {
        /// The path given.
        path: PathBuf,
        /// Trace directories found below it (at most three levels deep, at most three of them).
        candidates: Vec<PathBuf>,
    },
    /// The directory is not a trace itself but holds several (a session directory with more
    /// than one `pid_<pid>`): which one is meant cannot be guessed.
    #[error(
        "{} holds {} traces, name one of them: {}",
        .path.display(),
        .traces.len(),
        list(.traces)
    )]
    SeveralTraces {
        /// The path given.
        path: PathBuf,
        /// The trace directories inside it, sorted.
        traces: Vec<PathBuf>,
    },
    /// The path, or a directory that may hold the trace, cannot be read or searched, so
    /// whether it is a trace cannot be told.
    #[error("permission denied: cannot look into {}", .path.display())]
    PermissionDenied {
        /// The directory (or file) that could not be examined.
        path: PathBuf,
    },
    /// Another operating-system error while examining the path.
    #[error("cannot examine {}: {source}", .path.display())]
    Io {
        /// The path being examined.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

fn candidates_hint(candidates: &[PathBuf]) -> String {
    match candidates {
        [] => String::new(),
        [one] => format!("; did you mean {}?", one.display()),
        many => format!("; trace directories below it: {}", list(many)),
    }
}

/// The error for an OS error `e` while examining `path` (`NotFound` is the caller's business).
fn os_error(path: &Path, e: io::Error) -> LocateError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => LocateError::PermissionDenied {
            path: path.to_owned(),
        },
        _ => LocateError::Io {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// Whether `dir` holds an `events.bin` file. `Ok(false)` when it does not (or `dir` is not a
/// directory); an error when that cannot be told.
fn holds_events(dir: &Path) -> Result<bool, LocateError> {
    match std::fs::metadata(dir.join(EVENTS_FILE)) {
        Ok(meta) => Ok(meta.is_file()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(os_error(dir, e)),
    }
}

fn find(path: &Path) -> Result<TraceDir, LocateError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LocateError::Missing {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(os_error(path, e)),
    };
    if !meta.is_dir() {
        let candidates = path
            .parent()
            .filter(|p| holds_events(p).unwrap_or(false))
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default();
        return Err(LocateError::NotADirectory {
            path: path.to_owned(),
            candidates,
        });
    }
    if holds_events(path)? {
        return Ok(TraceDir {
            path: path.to_owned(),
        });
    }

    // A session directory: exactly one trace directory directly inside.
    let entries = std::fs::read_dir(path).map_err(|e| os_error(path, e))?;
    let mut traces = Vec::new();
    let mut denied = None;
    for entry in entries {
        let child = entry.map_err(|e| os_error(path, e))?.path();
        match holds_events(&child) {
            Ok(true) => traces.push(child),
            Ok(false) => {}
            Err(e @ LocateError::PermissionDenied { .. }) => {
                denied.get_or_insert(e);
            }
            // Anything else about one child is not a reason to refuse the others.
            Err(_) => {}
        }
    }
    traces.sort();
    match traces.len() {
        1 => Ok(TraceDir {
            path: traces.pop().unwrap_or_default(),
        }),
        0 => Err(denied.unwrap_or_else(|| LocateError::NoEventsFile {
            path: path.to_owned(),
            candidates: traces_below(path),
        })),
        _ => Err(LocateError::SeveralTraces {
            path: path.to_owned(),
            traces,
        }),
    }
}

/// Best effort, for hints: up to three trace directories at most three levels below `dir`
/// (an output root holds `ada_traces/<session>/pid_<pid>`), reading at most 64 directories,
/// in sorted order. Directories that cannot be read are skipped.
pub fn traces_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![dir.to_owned()];
    let mut read = 0usize;
    for _depth in 0..HINT_DEPTH {
        let mut next = Vec::new();
        for d in &level {
            if read >= HINT_DIRS_MAX {
                break;
            }
            read += 1;
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            let mut children: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            children.sort();
            for child in children {
                if holds_events(&child).unwrap_or(false) {
                    if found.len() < HINTS_MAX {
                        found.push(child);
                    }
                } else {
                    next.push(child);
                }
            }
        }
        if found.len() >= HINTS_MAX || next.is_empty() {
            break;
        }
        level = next;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `<root>/<rel>/events.bin`, parents created; returns `<root>/<rel>`.
    fn trace_at(root: &Path, rel: &str) -> PathBuf {
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(EVENTS_FILE), b"").unwrap();
        dir
    }

    fn err(path: &Path) -> LocateError {
        TraceDir::find(path).unwrap_err()
    }

    #[test]
    fn a_trace_directory_is_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = trace_at(tmp.path(), "ada_traces/s/pid_42");
        let t = TraceDir::find(&dir).unwrap();
        assert_eq!(t.path(), dir);
        assert_eq!(t.pid(), Some(42));
        assert_eq!(t.events_file(), dir.join("events.bin"));
        assert_eq!(t.manifest_file(), dir.join("trace.json"));
        // Any name: what makes a trace is events.bin.
        let other = trace_at(tmp.path(), "copied");
        let t = TraceDir::find(&other).unwrap();
        assert_eq!(t.pid(), None);
        assert_eq!(t.into_path(), other);
    }

    #[test]
    fn a_session_with_one_trace_resolves_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = trace_at(tmp.path(), "s/pid_7");
        // Neither a plain file nor a directory without events.bin counts.
        std::fs::write(tmp.path().join("s/notes.txt"), b"x").unwrap();
        std::fs::create_dir(tmp.path().join("s/pid_8")).unwrap();
        assert_eq!(TraceDir::find(tmp.path().join("s")).unwrap().path(), dir);
    }

    #[test]
    fn a_session_with_several_traces_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        let b = trace_at(tmp.path(), "s/pid_2");
        let a = trace_at(tmp.path(), "s/pid_1");
        let session = tmp.path().join("s");
        let e = err(&session);
        let msg = e.to_string();
        match e {
            LocateError::SeveralTraces { path, traces } => {
                assert_eq!(path, session);
                assert_eq!(traces, [a.clone(), b.clone()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(msg.contains("holds 2 traces, name one of them"), "{msg}");
        assert!(msg.contains(&a.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn nothing_there_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(err(&missing), LocateError::Missing { path } if path == missing));
    }

    #[test]
    fn an_empty_directory_has_no_events_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = err(tmp.path());
        let msg = e.to_string();
        assert!(
            matches!(&e, LocateError::NoEventsFile { candidates, .. } if candidates.is_empty()),
            "{e:?}"
        );
        assert!(
            msg.ends_with("is not a trace directory: it has no events.bin"),
            "{msg}"
        );
        // A directory named events.bin is not an events file.
        std::fs::create_dir(tmp.path().join("events.bin")).unwrap();
        assert!(matches!(err(tmp.path()), LocateError::NoEventsFile { .. }));
    }

    #[test]
    fn an_output_root_hints_at_the_traces_below() {
        let tmp = tempfile::tempdir().unwrap();
        let one = trace_at(tmp.path(), "ada_traces/s1/pid_1");
        let e = err(tmp.path());
        assert!(
            e.to_string()
                .ends_with(&format!("; did you mean {}?", one.display())),
            "{e}"
        );
        let two = trace_at(tmp.path(), "ada_traces/s2/pid_2");
        match err(tmp.path()) {
            LocateError::NoEventsFile { candidates, .. } => assert_eq!(candidates, [one, two]),
            other => panic!("{other:?}"),
        }
        for i in 3..8 {
            trace_at(tmp.path(), &format!("ada_traces/s{i}/pid_{i}"));
        }
        assert_eq!(traces_below(tmp.path()).len(), HINTS_MAX);
    }

    #[test]
    fn a_file_is_not_a_directory_and_hints_at_its_trace() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = trace_at(tmp.path(), "pid_3");
        let file = dir.join("trace.json");
        std::fs::write(&file, b"{}").unwrap();
        match err(&file) {
            LocateError::NotADirectory { path, candidates } => {
                assert_eq!(path, file);
                assert_eq!(candidates, [dir]);
            }
            other => panic!("{other:?}"),
        }
        let loose = tmp.path().join("loose.txt");
        std::fs::write(&loose, b"x").unwrap();
        let e = err(&loose);
        assert!(
            matches!(&e, LocateError::NotADirectory { candidates, .. } if candidates.is_empty())
        );
        assert!(
            e.to_string()
                .ends_with("is not a trace directory (a trace is a directory holding events.bin)"),
            "{e}"
        );
    }

    #[test]
    fn permission_denied_is_its_own_error() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let e = os_error(Path::new("/x/pid_1"), denied);
        assert!(
            matches!(&e, LocateError::PermissionDenied { path } if path == Path::new("/x/pid_1"))
        );
        let msg = e.to_string();
        assert_eq!(msg, "permission denied: cannot look into /x/pid_1");
        assert!(!msg.contains("events.bin"));
        let other = os_error(Path::new("/x"), io::Error::other("disk on fire"));
        assert!(matches!(other, LocateError::Io { .. }));
    }

    /// Real permissions; skipped where they are not enforced (running as root).
    #[test]
    fn unsearchable_directories_are_permission_denied_not_missing_events() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = trace_at(tmp.path(), "s/pid_9");
        let session = tmp.path().join("s");
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&dir, 0o000);
        let enforced = std::fs::read_dir(&dir).is_err();
        let (of_trace, of_session) = (TraceDir::find(&dir), TraceDir::find(&session));
        set(&dir, 0o755);
        if !enforced {
            eprintln!("skipped: permissions are not enforced for this user");
            return;
        }
        assert!(
            matches!(of_trace, Err(LocateError::PermissionDenied { ref path }) if *path == dir),
            "{of_trace:?}"
        );
        assert!(
            matches!(of_session, Err(LocateError::PermissionDenied { ref path }) if *path == dir),
            "{of_session:?}"
        );
        // A session directory that can be searched but not listed.
        set(&session, 0o300);
        let listed = TraceDir::find(&session);
        set(&session, 0o755);
        assert!(
            matches!(listed, Err(LocateError::PermissionDenied { ref path }) if *path == session),
            "{listed:?}"
        );
    }

    #[test]
    fn pid_directory_names() {
        assert_eq!(pid_dir_name(42), "pid_42");
        assert_eq!(pid_from_dir(Path::new("/x/pid_42")), Some(42));
        assert_eq!(pid_from_dir(Path::new("/x/pid_")), None);
        assert_eq!(pid_from_dir(Path::new("/x/pid_-1")), None);
        assert_eq!(pid_from_dir(Path::new("/x/other")), None);
        assert_eq!(pid_from_dir(Path::new("/")), None);
    }
}
