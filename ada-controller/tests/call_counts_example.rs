//! Runs the `call_counts` example's code (examples/call_counts/counts.rs, included here as a
//! module) against its known workload and checks the counts and the printed table.
//!
//! How the traced child is made: this test binary re-executes itself with `ADA_SHM` set (by the
//! example's `trace`) and a libtest filter that runs only [`traced_child`], which then runs the
//! example's workload. That works the same under `cargo test` and `cargo nextest`, needs no
//! nested `cargo` and no prebuilt example binary (which a filtered test run would not build);
//! the example's `main.rs` is only the glue that does the same with its own binary.

#[path = "../examples/call_counts/counts.rs"]
mod counts;

use std::process::Command;

/// Set on the re-executed test binary, so a stray `ADA_SHM` in the environment alone never
/// turns a test run into a workload.
const CHILD: &str = "ADA_CALL_COUNTS_CHILD";

/// The traced child when re-executed by [`counts_match_the_workload`]; a no-op otherwise.
#[test]
fn traced_child() {
    if std::env::var_os(CHILD).is_some() && std::env::var_os(ada_controller::ENV_SEGMENT).is_some()
    {
        counts::workload();
    }
}

#[test]
fn counts_match_the_workload() {
    assert_eq!(ada_controller::ENV_SEGMENT, ada_agent::ENV_SEGMENT);
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["traced_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::null());
    let traced = counts::trace(child).unwrap();
    let report = &traced.report;
    assert_eq!(report.dropped(), 0, "{report:?}");
    assert!(report.is_balanced(), "{report:?}");
    let table = &traced.table;
    assert_eq!((table.unmatched_returns, table.open_calls), (0, 0));
    assert_eq!(table.functions.len(), 3, "{table:?}");
    for (name, calls) in counts::expected_calls() {
        assert_eq!(table.functions[name].calls, calls, "{name}: {table:?}");
        assert!(table.functions[name].inclusive_ns > 0, "{name}: {table:?}");
    }
    assert_eq!(counts::fib_calls(counts::FIB_N), 67);
    // A request contains its parses and its fib: inclusive time nests.
    let f = &table.functions;
    assert!(
        f["request"].inclusive_ns >= f["parse"].inclusive_ns + f["fib"].inclusive_ns,
        "{table:?}"
    );
    // Every index event of the workload reached the sink: an entry and an exit per call.
    let calls: u64 = counts::expected_calls().iter().map(|c| c.1).sum();
    assert_eq!(report.persisted(), 2 * calls);

    let text = traced.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("call_counts: pid {}, ", traced.pid)),
        "{text}"
    );
    assert!(
        lines[0].ends_with(&format!("{} events, 0 dropped", 2 * calls)),
        "{text}"
    );
    assert_eq!(
        lines.len(),
        5,
        "header, column names, three functions: {text}"
    );
    assert_eq!(
        lines[2].split_whitespace().next(),
        Some("request"),
        "{text}"
    );
    for (name, calls) in counts::expected_calls() {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("a row for {name}: {text}"));
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns[1], calls.to_string(), "{text}");
    }
}
