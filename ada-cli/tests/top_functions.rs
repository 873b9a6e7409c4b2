//! `ada inspect --top N` on traces written with the ATF writer, whose call counts and
//! durations are known: the order and the numbers of both tables, recursion counted once,
//! unmatched and open calls said, and the output without `--top` unchanged.

use std::path::{Path, PathBuf};

use ada_atf::{EventRef, PayloadRef, SymbolEntry, TraceSummary, TraceWriter, WriterOptions};

const T0: u64 = 5_000_000_000;

fn call(thread: i32, ts: u64, id: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        thread,
        T0 + ts,
        PayloadRef::FunctionCall {
            symbol: "",
            address: 0,
            argument_registers: &[],
            stack_shallow_copy: &[],
        },
    )
    .with_function(id, depth)
}

fn ret(thread: i32, ts: u64, id: u64, depth: u32) -> EventRef<'static> {
    EventRef::new(
        thread,
        T0 + ts,
        PayloadRef::FunctionReturn {
            symbol: "",
            address: 0,
            return_registers: &[],
        },
    )
    .with_function(id, depth)
}

const MAIN: u64 = 1;
const A: u64 = 2;
const B: u64 = 3;
const R: u64 = 4;
const C: u64 = 5;

/// Thread 1: main 0..1000 holding a 10..30 and a 40..100 holding b 50..80 (main 1 call 1000 ns,
/// a 2 calls 80 ns, b 1 call 30 ns). Thread 2: r recursing three deep, 0..100 outermost
/// (3 calls, 100 ns), then a call of c that never returns.
fn trace(root: &Path) -> PathBuf {
    let mut w = TraceWriter::create(
        root,
        WriterOptions {
            pid: 9,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let events = [
        call(1, 0, MAIN, 1),
        call(1, 10, A, 2),
        ret(1, 30, A, 2),
        call(2, 0, R, 1),
        call(1, 40, A, 2),
        call(2, 10, R, 2),
        call(1, 50, B, 3),
        call(2, 20, R, 3),
        ret(2, 25, R, 3),
        ret(1, 80, B, 3),
        ret(2, 40, R, 2),
        ret(1, 100, A, 2),
        ret(2, 100, R, 1),
        ret(1, 1000, MAIN, 1),
        call(2, 200, C, 1),
    ];
    for e in &events {
        w.write(e).unwrap();
    }
    let symbol = |function_id, name: &str| SymbolEntry {
        function_id,
        symbol: name.into(),
        address: None,
        module: None,
        file: None,
        line: None,
    };
    w.finalize(TraceSummary {
        symbols: vec![
            symbol(MAIN, "main"),
            symbol(A, "alpha"),
            symbol(B, "beta"),
            symbol(R, "recurse"),
            symbol(C, "stuck"),
        ],
        ..TraceSummary::default()
    })
    .unwrap()
    .dir
}

fn inspect(dir: &Path, top: Option<usize>) -> String {
    let mut out = Vec::new();
    let options = ada_cli::inspect::InspectOptions { limit: 0, top };
    ada_cli::inspect::inspect_with(dir, &options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The rows of the table whose heading starts with `heading`: (calls, inclusive, name).
fn table(text: &str, heading: &str) -> Vec<(u64, String, String)> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(heading));
    assert!(lines.next().is_some(), "no {heading:?} in\n{text}");
    let header = lines.next().unwrap();
    assert!(
        header.contains("calls") && header.contains("inclusive"),
        "{header}"
    );
    lines
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let mut f = l.split_whitespace();
            let calls = f.next().unwrap().parse().unwrap();
            let time = format!("{} {}", f.next().unwrap(), f.next().unwrap());
            (calls, time, f.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

fn row(calls: u64, time: &str, name: &str) -> (u64, String, String) {
    (calls, time.to_owned(), name.to_owned())
}

#[test]
fn top_lists_calls_and_inclusive_time_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = trace(tmp.path());
    let text = inspect(&dir, Some(4));
    assert!(
        text.contains("top 4 functions by calls (5 functions, 8 calls; 1 without a return):"),
        "{text}"
    );
    assert_eq!(
        table(&text, "top 4 functions by calls"),
        [
            row(3, "100 ns", "recurse"),
            row(2, "80 ns", "alpha"),
            row(1, "1.000 us", "main"),
            row(1, "30 ns", "beta"),
        ]
    );
    assert_eq!(
        table(&text, "top 4 functions by inclusive time"),
        [
            row(1, "1.000 us", "main"),
            row(3, "100 ns", "recurse"),
            row(2, "80 ns", "alpha"),
            row(1, "30 ns", "beta"),
        ]
    );
    // N cuts both tables.
    let text = inspect(&dir, Some(1));
    assert_eq!(
        table(&text, "top 1 functions by calls"),
        [row(3, "100 ns", "recurse")]
    );
    assert_eq!(
        table(&text, "top 1 functions by inclusive time"),
        [row(1, "1.000 us", "main")]
    );
}

#[test]
fn without_top_the_output_has_no_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = trace(tmp.path());
    let plain = inspect(&dir, None);
    assert!(!plain.contains("functions by"), "{plain}");
    // The rest of the output is the same with and without it.
    let with: String = inspect(&dir, Some(2))
        .lines()
        .filter(|l| !l.starts_with("top ") && !l.starts_with("  "))
        .map(|l| format!("{l}\n"))
        .collect();
    let without: String = plain
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(with, without);
}

#[test]
fn a_lost_return_and_a_return_without_a_call_are_counted_not_guessed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    // a 0..100 holding b, whose return was lost; then a return of c with no call.
    for e in [
        call(1, 0, A, 1),
        call(1, 10, B, 2),
        ret(1, 100, A, 1),
        ret(1, 120, C, 1),
    ] {
        w.write(&e).unwrap();
    }
    let dir = w.finalize(TraceSummary::default()).unwrap().dir;
    let text = inspect(&dir, Some(5));
    assert!(
        text.contains("(2 functions, 2 calls; 1 unmatched, 1 returns without a call):"),
        "{text}"
    );
    assert_eq!(
        table(&text, "top 5 functions by inclusive time"),
        [row(1, "100 ns", "fn#2"), row(1, "0 ns", "fn#3")]
    );
}

#[test]
fn the_binary_takes_top() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = trace(tmp.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ada"))
        .arg("inspect")
        .arg(&dir)
        .args(["--top", "2", "-n", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        table(&text, "top 2 functions by calls"),
        [row(3, "100 ns", "recurse"), row(2, "80 ns", "alpha")]
    );
}
