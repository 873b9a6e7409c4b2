//! `ada inspect --top N`: the functions called most and those that took the most inclusive
//! time, as `uftrace report` lists them.
//!
//! [`CallTable::observe`] takes the stream's index-lane calls and returns one at a time (a
//! detail-lane call repeats one the index lane holds, and is not counted again). Each thread
//! keeps a stack of its open calls: a call pushes (and counts one call of its function); a
//! return closes the innermost open call of the same function on that thread, and that
//! call's inclusive time is the return's time minus the call's. Calls above it that never
//! returned (events lost in between) are dropped from the stack, counted in
//! [`CallTable::unmatched`]; a return with no open call of its function is counted in
//! [`CallTable::orphan_returns`]; calls still open at the end of the trace count as calls with
//! no time. A recursive function's time is counted once: only the outermost of its open calls
//! on a thread adds its time, so a function's inclusive time never exceeds the time its
//! threads spent in it.
//!
//! Events are taken in stream order, which within a thread is its recording order except for
//! events that went through the controller's fallback ring (see `ada_atf::TraceReader`).
//! Memory is bounded: at most [`MAX_FUNCTIONS`] functions, [`MAX_THREADS`] threads and
//! [`MAX_DEPTH`] open calls per thread are tracked; what is beyond is counted in
//! [`CallTable::untracked`].

use std::collections::HashMap;
use std::io::{self, Write};

use ada_atf::schema::event::Payload;
use ada_atf::{Event, StreamNames};

use crate::symbolize::Namer;

/// Functions tracked.
pub const MAX_FUNCTIONS: usize = 1 << 20;
/// Threads tracked.
pub const MAX_THREADS: usize = 1 << 16;
/// Open calls tracked per thread.
pub const MAX_DEPTH: usize = 1 << 16;

/// A function: the process its id belongs to when the id is an address without a name in
/// the trace (0 otherwise: callsite ids are the session's), and the id.
type Key = (u32, u64);

#[derive(Debug, Default, Clone)]
struct Stats {
    calls: u64,
    inclusive_ns: u64,
    /// The name the events carried, if any.
    symbol: String,
    /// A thread id it was seen on (to find its process for naming).
    thread: i32,
}

#[derive(Debug, Default)]
struct Thread {
    /// Open calls: function and call time.
    stack: Vec<(Key, u64)>,
    /// Open calls per function (for the outermost-only time of recursion).
    open: HashMap<Key, u32>,
}

/// Call counts and inclusive times per function (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct CallTable {
    functions: HashMap<Key, Stats>,
    threads: HashMap<i32, Thread>,
    /// Calls counted.
    pub calls: u64,
    /// Calls dropped from a stack because a return of an outer call came first.
    pub unmatched: u64,
    /// Returns with no open call of their function.
    pub orphan_returns: u64,
    /// Calls and returns not tracked (a bound was reached).
    pub untracked: u64,
}

impl CallTable {
    /// An empty table.
    pub fn new() -> Self {
        CallTable::default()
    }

    /// Takes in `event` if it is an index-lane call or return of a thread.
    pub fn observe(&mut self, event: &Event, names: &StreamNames, namer: &mut Namer) {
        let (is_call, symbol) = match &event.payload {
            Some(Payload::FunctionCall(c)) => (true, c.symbol.as_str()),
            Some(Payload::FunctionReturn(r)) => (false, r.symbol.as_str()),
            _ => return,
        };
        if event.lane == 1 {
            return;
        }
        let Some(ts) = event.timestamp.and_then(|t| t.to_nanos()) else {
            self.untracked += 1;
            return;
        };
        let pid = namer
            .resolve(symbol, event.function_id, event.thread_id, names)
            .map_or(0, |(pid, _)| pid);
        let key = (pid, event.function_id);
        if !self.functions.contains_key(&key) && self.functions.len() >= MAX_FUNCTIONS
            || !self.threads.contains_key(&event.thread_id) && self.threads.len() >= MAX_THREADS
        {
            self.untracked += 1;
            return;
        }
        let thread = self.threads.entry(event.thread_id).or_default();
        if is_call {
            if thread.stack.len() >= MAX_DEPTH {
                self.untracked += 1;
                return;
            }
            let f = self.functions.entry(key).or_insert_with(|| Stats {
                symbol: symbol.to_owned(),
                thread: event.thread_id,
                ..Stats::default()
            });
            f.calls += 1;
            self.calls += 1;
            thread.stack.push((key, ts));
            *thread.open.entry(key).or_insert(0) += 1;
            return;
        }
        let Some(at) = thread.stack.iter().rposition(|(k, _)| *k == key) else {
            self.orphan_returns += 1;
            return;
        };
        for (above, _) in thread.stack.drain(at + 1..) {
            self.unmatched += 1;
            close(&mut thread.open, above);
        }
        let Some((_, called)) = thread.stack.pop() else {
            return;
        };
        if close(&mut thread.open, key)
            && let Some(f) = self.functions.get_mut(&key)
        {
            f.inclusive_ns = f.inclusive_ns.saturating_add(ts.saturating_sub(called));
        }
    }

    /// Functions seen.
    pub fn functions(&self) -> usize {
        self.functions.len()
    }

    /// Calls still open at the end (no return seen).
    pub fn open_calls(&self) -> u64 {
        self.threads.values().map(|t| t.stack.len() as u64).sum()
    }

    /// Prints the top `n` by calls and by inclusive time.
    pub fn write<W: Write>(
        &self,
        w: &mut W,
        n: usize,
        names: &StreamNames,
        namer: &mut Namer,
    ) -> io::Result<()> {
        let mut rows: Vec<(String, u64, u64)> = self
            .functions
            .iter()
            .map(|(&(_, id), f)| {
                let name = namer.name(&f.symbol, id, 0, f.thread, names).into_owned();
                (name, f.calls, f.inclusive_ns)
            })
            .collect();
        let mut extra = Vec::new();
        if self.open_calls() > 0 {
            extra.push(format!("{} without a return", self.open_calls()));
        }
        if self.unmatched > 0 {
            extra.push(format!("{} unmatched", self.unmatched));
        }
        if self.orphan_returns > 0 {
            extra.push(format!("{} returns without a call", self.orphan_returns));
        }
        if self.untracked > 0 {
            extra.push(format!("{} events not tracked", self.untracked));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("; {}", extra.join(", "))
        };
        writeln!(
            w,
            "top {n} functions by calls ({} functions, {} calls{extra}):",
            rows.len(),
            self.calls
        )?;
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        write_rows(w, &rows, n)?;
        writeln!(
            w,
            "top {n} functions by inclusive time (a recursive function's outermost calls only):"
        )?;
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
        write_rows(w, &rows, n)
    }
}

/// One open call of `key` closed; whether it was the outermost.
fn close(open: &mut HashMap<Key, u32>, key: Key) -> bool {
    match open.get_mut(&key) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => {
            open.remove(&key);
            true
        }
        None => false,
    }
}

fn write_rows<W: Write>(w: &mut W, rows: &[(String, u64, u64)], n: usize) -> io::Result<()> {
    writeln!(w, "  {:>12}  {:>14}  function", "calls", "inclusive")?;
    for (name, calls, ns) in rows.iter().take(n) {
        writeln!(
            w,
            "  {calls:>12}  {:>14}  {}",
            duration(*ns),
            crate::escape::Escaped(name)
        )?;
    }
    Ok(())
}

/// `ns` with a unit: `950 ns`, `1.500 us`, `12.345 ms`, `3.000 s`.
pub fn duration(ns: u64) -> String {
    let (unit, div) = match ns {
        0..1_000 => return format!("{ns} ns"),
        1_000..1_000_000 => ("us", 1_000),
        1_000_000..1_000_000_000 => ("ms", 1_000_000),
        _ => ("s", 1_000_000_000),
    };
    format!("{}.{:03} {unit}", ns / div, (ns % div) * 1000 / div)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0 ns");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(1_500), "1.500 us");
        assert_eq!(duration(12_345_678), "12.345 ms");
        assert_eq!(duration(3_000_000_000), "3.000 s");
        assert_eq!(duration(u64::MAX), "18446744073.709 s");
    }
}
