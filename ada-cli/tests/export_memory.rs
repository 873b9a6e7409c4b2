//! `ada export --chrome` streams (issue 17): a 10^7-event trace (nested calls on four threads,
//! with losses) exports with a peak resident set far below what holding the trace's events
//! would take, and the export is still balanced.
//!
//! The trace is written with `ada_atf::TraceWriter` directly; the export runs as a child
//! process, whose peak RSS (`ru_maxrss`) comes from `wait4` on it alone.
//!
//! Optimized only, like the soak tests: `cargo xtask soak` runs it with `--release` (about 10 s
//! on 2 cores, peak RSS about 5 MiB for a 258 MB events.bin); an unoptimized build takes
//! minutes and skips it.

mod common;

use std::path::Path;

use ada_atf::{EventRef, Lane, PayloadRef, TraceSummary, TraceWriter, WriterOptions};

use common::ada;

const EVENTS: u64 = 10_000_000;
const THREADS: u64 = 4;
/// Calls nest this deep; each thread cycles through call f1..fN, return fN..f1.
const DEPTH: u64 = 3;

/// Writes the trace: `EVENTS` calls and returns (and a loss of the index lane every million),
/// interleaved across threads in blocks of one cycle.
fn write_trace(root: &Path) -> std::path::PathBuf {
    let opts = WriterOptions {
        pid: 4242,
        session_label: Some("memory".into()),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root, opts).unwrap();
    let mut written = 0u64;
    let mut ts = 1_000u64;
    'outer: loop {
        for tid in 1..=THREADS as i32 {
            for step in 0..2 * DEPTH {
                let (f, is_call) = if step < DEPTH {
                    (step + 1, true)
                } else {
                    (2 * DEPTH - step, false)
                };
                let address = 0x40_0000 + f * 0x40;
                let payload = if is_call {
                    PayloadRef::FunctionCall {
                        symbol: "",
                        address,
                        argument_registers: &[],
                        stack_shallow_copy: &[],
                    }
                } else {
                    PayloadRef::FunctionReturn {
                        symbol: "",
                        address,
                        return_registers: &[],
                    }
                };
                w.write(&EventRef::new(tid, ts, payload).with_function(f, f as u32))
                    .unwrap();
                ts += 7;
                written += 1;
                if written % 1_000_000 == 500_000 {
                    // A loss in the middle of a cycle: what is open is cut.
                    let lost = PayloadRef::EventsLost {
                        lane: Lane::Index,
                        count: 3,
                        cause: "refused",
                        first_lost_ns: ts,
                        last_lost_ns: ts + 3,
                    };
                    w.write(&EventRef::new(tid, ts, lost)).unwrap();
                    ts += 7;
                    written += 1;
                }
                if written >= EVENTS {
                    break 'outer;
                }
            }
        }
    }
    w.finalize(TraceSummary::default()).unwrap().dir
}

/// Runs `ada export --chrome` on `dir` into `out`; returns its exit code and peak RSS (bytes).
fn export_peak_rss(dir: &Path, out: &Path) -> (i32, u64) {
    // Reaped by `wait4` below (which also gives its rusage), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = ada()
        .args(["export", "--chrome", "-o"])
        .arg(out)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for (the `Child` handle is never waited
    // on); `status` and `usage` are valid for writes for the call.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "export killed: status {status}");
    // Linux reports ru_maxrss in KiB.
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

#[test]
#[cfg_attr(debug_assertions, ignore = "optimized only: run by `cargo xtask soak`")]
fn a_ten_million_event_trace_exports_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_trace(tmp.path());
    let events_bin = std::fs::metadata(dir.join("events.bin")).unwrap().len();
    let out = tmp.path().join("out.json");
    let (code, peak) = export_peak_rss(&dir, &out);
    assert_eq!(code, 0, "the export succeeds");
    let json_len = std::fs::metadata(&out).unwrap().len();
    eprintln!(
        "events.bin {events_bin} bytes, export {json_len} bytes, peak RSS {} MiB",
        peak >> 20
    );
    // Holding the events would take at least events.bin's size (old exporter: all of it, read
    // into memory); streaming keeps a chunk, the open calls and the names.
    assert!(
        events_bin > 150 << 20,
        "the trace is big: {events_bin} bytes"
    );
    assert!(
        peak < 64 << 20,
        "peak RSS {peak} bytes exporting a {events_bin}-byte events.bin"
    );

    // The end of the document: balanced, with the losses' cuts counted.
    let text = std::fs::read(&out).unwrap();
    let tail = String::from_utf8_lossy(&text[text.len().saturating_sub(4096)..]).into_owned();
    assert!(tail.contains("\"lossMarkers\":\"10\""), "{tail}");
    assert!(tail.contains("\"allEventsKept\":\"false\""), "{tail}");
    assert!(tail.contains("\"cutLoss\":\""), "{tail}");
    assert!(!tail.contains("\"cutLoss\":\"0\""), "{tail}");
}
