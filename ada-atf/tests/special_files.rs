//! Trace files that are not what they should be: a FIFO in place of `trace.json`, `events.bin`
//! or `window_metadata.jsonl` is refused at once instead of blocking the reader; `events.bin`
//! truncated by another process while it is being read never crashes the reader; oversized
//! `trace.json` and `window_metadata.jsonl` are refused without being read.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ada_atf::{
    MAX_MANIFEST_LEN, MAX_WINDOWS_FILE_LEN, ManifestError, PersistenceWindow, ReadError,
    TraceReader, TraceSummary, TraceWriter, WriterOptions,
};

/// Long enough for any refusal, short enough that a reader blocked on a FIFO fails the test.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread and fails the test if it has not returned within [`TIMEOUT`] (a
/// blocked thread is left behind; the test process ends with the failure).
fn within_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(TIMEOUT)
        .unwrap_or_else(|e| panic!("{what} did not return within {TIMEOUT:?}: {e}"))
}

fn mkfifo(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", path.display()),
    }
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

fn window() -> PersistenceWindow {
    PersistenceWindow {
        window_id: 1,
        start_ns: 10,
        end_ns: 20,
        first_mark_ns: 15,
        last_event_ns: 20,
        total_events: 3,
        marked_events: 1,
        mark_seen: true,
        ..PersistenceWindow::default()
    }
}

/// A finalized trace with `n` events and one window; returns its directory.
fn finalized(root: &Path, n: u64) -> PathBuf {
    let mut w = TraceWriter::create(root, WriterOptions::default()).unwrap();
    for i in 0..n {
        common::index_spec(i).with_ref(|ev| w.write(ev)).unwrap();
    }
    w.write_window(&window()).unwrap();
    w.finalize(TraceSummary::default()).unwrap().dir
}

#[test]
fn fifo_manifest_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized(tmp.path(), 3);
    let manifest = dir.join("trace.json");
    mkfifo(&manifest);

    let d = dir.clone();
    let r = within_timeout("TraceReader::open", move || TraceReader::open(&d));
    match r {
        Err(ReadError::Manifest(ManifestError::NotARegularFile { path, kind })) => {
            assert_eq!(path, manifest);
            assert_eq!(kind, "FIFO");
        }
        other => panic!("expected NotARegularFile, got {other:?}"),
    }
    let d = dir.clone();
    let r = within_timeout("TraceReader::open_incomplete", move || {
        TraceReader::open_incomplete(&d)
    });
    assert!(
        matches!(
            r,
            Err(ReadError::Manifest(ManifestError::NotARegularFile { .. }))
        ),
        "{r:?}"
    );
    let m = manifest.clone();
    let r = within_timeout("Manifest::read", move || ada_atf::Manifest::read(&m));
    assert!(
        matches!(r, Err(ManifestError::NotARegularFile { .. })),
        "{r:?}"
    );
    // The message names the file.
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("trace.json"), "{msg}");
}

#[test]
fn fifo_window_metadata_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized(tmp.path(), 3);
    let windows = dir.join("window_metadata.jsonl");
    assert!(windows.exists());
    mkfifo(&windows);

    let r = within_timeout("windows", move || {
        TraceReader::open(&dir).unwrap().windows()
    });
    match r {
        Err(ReadError::NotARegularFile { path, kind }) => {
            assert_eq!(path, windows);
            assert_eq!(kind, "FIFO");
        }
        other => panic!("expected NotARegularFile, got {other:?}"),
    }
}

#[test]
fn fifo_events_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized(tmp.path(), 3);
    let events = dir.join("events.bin");
    mkfifo(&events);
    std::fs::remove_file(dir.join("trace.json")).unwrap();

    let r = within_timeout("open_incomplete", move || {
        TraceReader::open_incomplete(&dir)
    });
    match r {
        Err(ReadError::NotARegularFile { path, kind }) => {
            assert_eq!(path, events);
            assert_eq!(kind, "FIFO");
        }
        other => panic!("expected NotARegularFile, got {other:?}"),
    }
}

/// Another process cuts `events.bin` short while a reader iterates over it: the reader keeps
/// going without a crash (it was `SIGBUS` under a memory map), and reopening reports the cut.
#[test]
fn events_truncated_while_iterating_does_not_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 20_000u64;
    let dir = finalized(tmp.path(), n);
    let path = dir.join("events.bin");
    let full = std::fs::metadata(&path).unwrap().len();
    const CUT: u64 = 64 * 1024;
    // Many pages, so that pages of a mapping would lie wholly past the cut.
    assert!(full > 4 * CUT, "{full}");

    let r = TraceReader::open(&dir).unwrap();
    let mut events = r.events();
    for _ in 0..3 {
        events.next().unwrap().unwrap();
    }
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // Page-aligned, so that a mapping would have whole pages past the new end (SIGBUS).
    file.set_len(CUT).unwrap();
    drop(file);
    // Keep reading: every item is an event or a typed error, at most one error, and the
    // stream ends.
    let mut ok = 3usize;
    let mut errors = 0usize;
    for item in events.by_ref() {
        match item {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1, "{errors} errors");
    assert!(ok as u64 <= n);
    assert!(events.is_finished());

    // Reopened after the cut: a complete manifest no longer matches, and reading it as an
    // incomplete trace ends in a torn tail.
    assert!(matches!(
        TraceReader::open(&dir),
        Err(ReadError::SizeMismatch { actual: CUT, .. })
    ));
    let r = TraceReader::open_incomplete(&dir).unwrap();
    let mut events = r.events();
    let read = events.by_ref().filter(Result::is_ok).count();
    assert!(read < n as usize);
    assert!(events.torn_tail().is_some());
}

/// A sparse 1 GiB `trace.json` is refused from its length, without being read.
#[test]
fn oversized_manifest_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized(tmp.path(), 3);
    let manifest = dir.join("trace.json");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();

    let r = within_timeout("TraceReader::open", move || TraceReader::open(&dir));
    match r {
        Err(ReadError::Manifest(ManifestError::TooLarge { path, len, max })) => {
            assert_eq!(path, manifest);
            assert_eq!(len, 1 << 30);
            assert_eq!(max, MAX_MANIFEST_LEN);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// A sparse `window_metadata.jsonl` over the limit is refused from its length.
#[test]
fn oversized_window_metadata_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = finalized(tmp.path(), 3);
    let windows = dir.join("window_metadata.jsonl");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&windows)
        .unwrap()
        .set_len(MAX_WINDOWS_FILE_LEN + 1)
        .unwrap();

    let r = within_timeout("windows", move || {
        TraceReader::open(&dir).unwrap().windows()
    });
    match r {
        Err(ReadError::FileTooLarge { path, len, max }) => {
            assert_eq!(path, windows);
            assert_eq!(len, MAX_WINDOWS_FILE_LEN + 1);
            assert_eq!(max, MAX_WINDOWS_FILE_LEN);
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
}
