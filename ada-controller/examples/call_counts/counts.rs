//! The call-counting controller of the `call_counts` example: a [`Sink`] that counts calls per
//! function and sums their inclusive time ([`CallCounts`]), the controller that traces a child
//! process with it ([`trace`]), and the child's known workload ([`workload`]).
//!
//! Shared by the example's `main.rs` and by `tests/call_counts_example.rs`, which runs the same
//! code against the same workload and checks the counts. The controller side uses
//! `ada_controller` alone; only the traced side ([`workload`]) uses `ada_agent`.

use ada_controller::{
    ControllerBuilder, ENV_SEGMENT, EventKind, LaneKind, Record, Report, RingGeometry, SessionInfo,
    Sink, SinkError, SinkOutput, ThreadInfo,
};
use std::collections::HashMap;
use std::fmt;
use std::process::Command;
use std::sync::mpsc::{Receiver, Sender, channel};

/// One function's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Calls (entries) recorded.
    pub calls: u64,
    /// Time from entry to the matching return, summed over the outermost activations (a
    /// recursive call's time is already inside its caller's), in nanoseconds.
    pub inclusive_ns: u64,
}

/// What the sink counted, by function name (`fn#<id>` for ids without a name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTable {
    /// Per function.
    pub functions: HashMap<String, FunctionStats>,
    /// Returns with no matching entry (their entry was dropped, or recorded before tracing).
    pub unmatched_returns: u64,
    /// Entries still open at the end (the thread was still inside the function).
    pub open_calls: u64,
}

/// A sink that counts calls and sums inclusive time per function, and hands its table over
/// when the session finishes.
pub struct CallCounts {
    names: HashMap<u64, String>,
    stats: HashMap<u64, FunctionStats>,
    /// Per thread, the calls not yet returned: (function id, entry time).
    stacks: HashMap<ThreadInfo, Vec<(u64, u64)>>,
    unmatched_returns: u64,
    done: Sender<CallTable>,
}

impl CallCounts {
    /// The sink, and where its table arrives once the session is finished.
    pub fn new() -> (CallCounts, Receiver<CallTable>) {
        let (done, table) = channel();
        let sink = CallCounts {
            names: HashMap::new(),
            stats: HashMap::new(),
            stacks: HashMap::new(),
            unmatched_returns: 0,
            done,
        };
        (sink, table)
    }

    fn ret(&mut self, thread: &ThreadInfo, function_id: u64, at: u64) {
        let stack = self.stacks.entry(*thread).or_default();
        // Unwind to the matching entry (entries without a return in between were cut short).
        let Some(pos) = stack.iter().rposition(|&(id, _)| id == function_id) else {
            self.unmatched_returns += 1;
            return;
        };
        let (_, entered) = stack[pos];
        stack.truncate(pos);
        let outermost = !stack.iter().any(|&(id, _)| id == function_id);
        if outermost {
            let s = self.stats.entry(function_id).or_default();
            s.inclusive_ns += at.saturating_sub(entered);
        }
    }
}

impl Sink for CallCounts {
    fn symbol(&mut self, function_id: u64, name: &str, _address: u64) -> Result<(), SinkError> {
        self.names.insert(function_id, name.to_owned());
        Ok(())
    }

    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        // Entries and exits are index records; detail records add data to a call already
        // counted there.
        if r.lane != LaneKind::Index {
            return Ok(());
        }
        match r.kind {
            EventKind::Call => {
                self.stats.entry(r.function_id).or_default().calls += 1;
                let stack = self.stacks.entry(*thread).or_default();
                stack.push((r.function_id, r.timestamp_ns));
            }
            EventKind::Return => self.ret(thread, r.function_id, r.timestamp_ns),
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        let functions = self
            .stats
            .iter()
            .map(|(id, s)| {
                let name = self.names.get(id).cloned();
                (name.unwrap_or_else(|| format!("fn#{id}")), *s)
            })
            .collect();
        let table = CallTable {
            functions,
            unmatched_returns: self.unmatched_returns,
            open_calls: self.stacks.values().map(|s| s.len() as u64).sum(),
        };
        self.done
            .send(table)
            .map_err(|_| SinkError::new("nobody is waiting for the call table"))?;
        Ok(SinkOutput::new(report.persisted()))
    }
}

/// A traced run: the table and the controller's accounting.
#[derive(Debug)]
pub struct Traced {
    /// The traced process.
    pub pid: u32,
    /// What the sink counted.
    pub table: CallTable,
    /// The controller's report (events persisted and dropped, per thread and lane).
    pub report: Report,
}

/// Runs `child` with a controller attached (it gets `ADA_SHM`), feeds a [`CallCounts`] sink
/// until it exits, and returns the table.
pub fn trace(mut child: Command) -> Result<Traced, Box<dyn std::error::Error>> {
    let controller = ControllerBuilder::new()
        .capacity(8)
        // Room for the whole workload in each thread's rings: the counts are exact even if
        // the drain falls behind on a busy machine (with the default 4 × 32 KiB, a thread
        // outrunning the drain would drop, and count, events).
        .geometry(RingGeometry {
            index_rings: 8,
            index_ring_bytes: 128 << 10,
            ..RingGeometry::default()
        })
        .create()?;
    let mut child = child.env(ENV_SEGMENT, controller.segment_name()).spawn()?;
    let pid = child.id();
    let (sink, table) = CallCounts::new();
    let running = match controller.start(sink, SessionInfo::new(pid)) {
        Ok(running) => running,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.into());
        }
    };
    let status = child.wait()?;
    // Its threads' slots are drained and freed even if it died without unregistering them.
    running.process_exited(pid);
    let report = running.stop(status.code())?;
    if !status.success() {
        return Err(format!("the traced process failed: {status}").into());
    }
    Ok(Traced {
        pid,
        table: table.recv()?,
        report,
    })
}

impl fmt::Display for Traced {
    /// The table, longest inclusive time first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        writeln!(
            f,
            "call_counts: pid {}, {} thread(s), {} events, {} dropped",
            self.pid,
            r.threads.len(),
            r.persisted(),
            r.dropped()
        )?;
        let mut rows: Vec<_> = self.table.functions.iter().collect();
        rows.sort_by(|a, b| b.1.inclusive_ns.cmp(&a.1.inclusive_ns).then(a.0.cmp(b.0)));
        writeln!(
            f,
            "{:<16} {:>10} {:>14}",
            "function", "calls", "inclusive ms"
        )?;
        for (name, s) in rows {
            let ms = s.inclusive_ns as f64 / 1e6;
            writeln!(f, "{name:<16} {:>10} {ms:>14.3}", s.calls)?;
        }
        if self.table.unmatched_returns + self.table.open_calls > 0 {
            writeln!(
                f,
                "({} return(s) without an entry, {} call(s) still open)",
                self.table.unmatched_returns, self.table.open_calls
            )?;
        }
        Ok(())
    }
}

/// Worker threads of the workload.
pub const THREADS: u64 = 2;
/// `request` calls per thread.
pub const REQUESTS: u64 = 100;
/// `parse` calls per request.
pub const PARSES: u64 = 3;
/// Each request computes `fib(FIB_N)` recursively.
pub const FIB_N: u64 = 8;

/// Calls of `fib(n)`, counting itself: `fib` recurses into `n - 1` and `n - 2`.
pub const fn fib_calls(n: u64) -> u64 {
    if n < 2 {
        1
    } else {
        1 + fib_calls(n - 1) + fib_calls(n - 2)
    }
}

/// The calls [`workload`] makes, by function.
pub fn expected_calls() -> [(&'static str, u64); 3] {
    [
        ("request", THREADS * REQUESTS),
        ("parse", THREADS * REQUESTS * PARSES),
        ("fib", THREADS * REQUESTS * fib_calls(FIB_N)),
    ]
}

static REQUEST: ada_agent::Callsite = ada_agent::Callsite::new("request");
static PARSE: ada_agent::Callsite = ada_agent::Callsite::new("parse");
static FIB: ada_agent::Callsite = ada_agent::Callsite::new("fib");

fn fib(n: u64) -> u64 {
    let _span = ada_agent::span(&FIB);
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn parse(i: u64) -> u64 {
    let _span = ada_agent::span(&PARSE);
    (0..200u64).fold(i, |acc, x| std::hint::black_box(acc.wrapping_mul(31) ^ x))
}

fn request(i: u64) -> u64 {
    let _span = ada_agent::span(&REQUEST);
    let parsed = (0..PARSES).fold(0, |acc: u64, p| acc.wrapping_add(parse(i + p)));
    parsed.wrapping_add(fib(std::hint::black_box(FIB_N)))
}

/// The traced program: [`THREADS`] threads, each making [`REQUESTS`] requests (recorded
/// through `ada_agent`, attached from `ADA_SHM`).
pub fn workload() {
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let all = (0..REQUESTS)
                    .fold(0, |acc: u64, i| acc.wrapping_add(request(t * REQUESTS + i)));
                std::hint::black_box(all);
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a workload thread panicked");
    }
}
