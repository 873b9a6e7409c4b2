//! The Chrome export's `B`/`E` slices: each thread's index-lane calls, returns and losses, put in
//! time order within a bounded window, repaired by [`Nesting`] and cut at the selection's edges,
//! so that every `B` is closed by an `E` of the same name, in order, on its thread.
//!
//! - **Order.** A thread whose calls and returns go back in time in the stream (found by a
//!   first read of it) has them held in a heap of at most [`REORDER_WINDOW`] items, written in
//!   timestamp order (equal times in stream order) as the heap overflows and at the end. One
//!   that arrives earlier than what the thread already wrote (more than the window out of
//!   order) is dropped and treated as a loss: what is open is cut there ([`CutReason::Loss`])
//!   and it is counted ([`Slices::late`]). Threads in order are written as read.
//! - **Repair** ([`Nesting`]): a return closes its call (and cuts what it unwinds); a return
//!   of nothing open is an orphan, not written as an `E` but marked by an instant; a loss on
//!   the thread's index lane cuts what is open at the loss; the trace's end cuts what is still
//!   open. Cuts are `E` events with `args: {"cut": reason}`.
//! - **Selection**: a thread's slices before `--from` are followed (so the nesting is right)
//!   but not written; at the first item at or after it, what is open gets a `B` at `--from`
//!   marked `{"cut": "selection start"}`; after `--to`, what is open ends at `--to` marked
//!   `{"cut": "selection end"}` and the thread's later slices are not written.
//!
//! Memory: per thread, its open calls, and for out-of-order threads up to [`REORDER_WINDOW`]
//! held items (each about 80 bytes); per function, its name.

use ada_atf::SourceLocation;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Write};

use super::super::nesting::{Cut, CutReason, Nesting, Return};
use super::super::select::Window;
use super::Events;

/// Most calls, returns and losses held per out-of-order thread.
pub const REORDER_WINDOW: usize = 64 * 1024;

/// What a slice item does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// An index-lane call: opens a slice.
    Call,
    /// An index-lane return: closes one.
    Return,
    /// Events of the thread's index lane were lost here.
    Gap,
}

/// A call, return or loss of one thread, with what its `B` needs.
#[derive(Debug)]
pub(super) struct Item {
    /// When.
    pub ts: u64,
    /// Stream order, for equal times.
    pub seq: u64,
    /// What it does.
    pub kind: Kind,
    /// The function (its id, else its address: see [`key`]).
    pub key: u64,
    /// The slice's name (for calls; returns take their call's).
    pub name: String,
    /// The function's address (for calls).
    pub address: u64,
    /// The function's id (for calls; 0 = none).
    pub function_id: u64,
    /// Where the function is defined, when the trace says (taken, like `name`, at its first
    /// call only).
    pub source: Option<SourceLocation>,
}

impl Item {
    /// A loss of the thread's index lane at `ts`.
    pub(super) fn gap(ts: u64) -> Item {
        Item {
            ts,
            seq: 0,
            kind: Kind::Gap,
            key: 0,
            name: String::new(),
            address: 0,
            function_id: 0,
            source: None,
        }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// The key a function's slices nest by: its id, else (id 0) its address.
pub(super) fn key(function_id: u64, address: u64) -> u64 {
    if function_id != 0 {
        function_id
    } else {
        address
    }
}

/// What a `B` shows of a function: the same for every call of it.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    address: u64,
    function_id: u64,
    source: Option<SourceLocation>,
}

/// One open slice.
#[derive(Debug, Clone, Copy)]
struct Open {
    key: u64,
    begin_ns: u64,
}

/// One thread's slices.
#[derive(Debug, Default)]
struct Thread {
    /// Open slices, outermost first (as [`Nesting`] has them).
    open: Vec<Open>,
    /// Latest time of a slice item handled.
    last_ns: u64,
    /// Whether the selection's start was reached (what was open then got its `B`).
    entered: bool,
    /// Whether the selection's end was passed.
    done: bool,
    /// The reorder heap, for threads out of order.
    held: Option<BinaryHeap<Reverse<Item>>>,
}

/// Cut reasons, as counted: the three of [`CutReason`] and the selection's edges.
pub(super) const CUT_NAMES: [&str; 4] = ["unwound", "loss", "trace end", "selection"];

/// Every thread's slices (see the [module docs](self)).
#[derive(Debug)]
pub(super) struct Slices {
    nesting: Nesting,
    threads: HashMap<i32, Thread>,
    functions: HashMap<u64, Function>,
    window: Window,
    seq: u64,
    cuts: Vec<Cut>,
    /// Cut slices written, by [`CUT_NAMES`].
    pub cut_counts: [u64; 4],
    /// Returns without an open call (not written as `E`).
    pub orphans: u64,
    /// Items that arrived later than the reorder window allowed (dropped, as a loss).
    pub late: u64,
}

impl Slices {
    /// Slices of threads whose items are in `window`.
    pub(super) fn new(window: Window) -> Slices {
        Slices {
            nesting: Nesting::new(),
            threads: HashMap::new(),
            functions: HashMap::new(),
            window,
            seq: 0,
            cuts: Vec::new(),
            cut_counts: [0; 4],
            orphans: 0,
            late: 0,
        }
    }

    /// Whether a call of function `key` was seen (its name is known).
    pub(super) fn knows(&self, key: u64) -> bool {
        self.functions.contains_key(&key)
    }

    /// `thread_id`'s items may come out of time order: hold them in a reorder window.
    pub(super) fn reorder(&mut self, thread_id: i32) {
        self.threads.entry(thread_id).or_default().held = Some(BinaryHeap::new());
    }

    /// Takes in an item of `thread_id`, read in stream order.
    pub(super) fn push<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        thread_id: i32,
        mut item: Item,
    ) -> io::Result<()> {
        self.seq += 1;
        item.seq = self.seq;
        let t = self.threads.entry(thread_id).or_default();
        if item.ts < t.last_ns {
            if item.kind == Kind::Gap {
                // A loss is placed no earlier than what was written before it.
                item.ts = t.last_ns;
            } else {
                // Too late to be written in order: lost, as far as the slices go.
                self.late += 1;
                let gap = Item::gap(t.last_ns);
                return self.handle(out, thread_id, gap);
            }
        }
        match &mut t.held {
            Some(heap) => {
                heap.push(Reverse(item));
                if heap.len() > REORDER_WINDOW
                    && let Some(Reverse(first)) = heap.pop()
                {
                    self.handle(out, thread_id, first)?;
                }
                Ok(())
            }
            None => self.handle(out, thread_id, item),
        }
    }

    /// Writes an item in its thread's time order.
    fn handle<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        thread_id: i32,
        item: Item,
    ) -> io::Result<()> {
        let window = self.window;
        let t = self.threads.entry(thread_id).or_default();
        if t.done {
            return Ok(());
        }
        t.last_ns = t.last_ns.max(item.ts);
        if item.ts > window.to_ns {
            self.enter(out, thread_id)?;
            // What is open ends at the selection's end; later slices are not written.
            self.cuts.clear();
            self.nesting.gap(thread_id, window.to_ns, &mut self.cuts);
            for _ in 0..self.cuts.len() {
                self.end(out, thread_id, window.to_ns, Some("selection end"))?;
                self.cut_counts[3] += 1;
            }
            if let Some(t) = self.threads.get_mut(&thread_id) {
                t.done = true;
                t.held = None;
            }
            return Ok(());
        }
        let shown = item.ts >= window.from_ns;
        if shown {
            self.enter(out, thread_id)?;
        }
        self.cuts.clear();
        match item.kind {
            Kind::Call => {
                self.nesting.call(thread_id, item.key, item.ts);
                self.functions.entry(item.key).or_insert_with(|| Function {
                    name: item.name,
                    address: item.address,
                    function_id: item.function_id,
                    source: item.source,
                });
                if let Some(t) = self.threads.get_mut(&thread_id) {
                    t.open.push(Open {
                        key: item.key,
                        begin_ns: item.ts,
                    });
                }
                if shown {
                    self.begin(out, thread_id, item.key, item.ts, None)?;
                }
            }
            Kind::Return => {
                let mut cuts = std::mem::take(&mut self.cuts);
                let r = self.nesting.ret(thread_id, item.key, item.ts, &mut cuts);
                self.write_cuts(out, thread_id, &cuts, shown)?;
                self.cuts = cuts;
                match r {
                    Return::Matched => {
                        if shown {
                            self.end(out, thread_id, item.ts, None)?;
                        } else {
                            self.pop(thread_id);
                        }
                    }
                    Return::Orphan => {
                        if shown {
                            self.orphans += 1;
                            let name = self
                                .functions
                                .get(&item.key)
                                .map_or_else(|| item.name.clone(), |f| f.name.clone());
                            let mut o =
                                out.event("i", "orphan return", "ada", Some(item.ts), thread_id)?;
                            let mut args = o.obj("args")?;
                            args.str("function", &name)?;
                            args.str("why", "its call was lost: not written as a slice end")?;
                            args.close()?;
                            o.close()?;
                        }
                    }
                }
            }
            Kind::Gap => {
                let mut cuts = std::mem::take(&mut self.cuts);
                self.nesting.gap(thread_id, item.ts, &mut cuts);
                self.write_cuts(out, thread_id, &cuts, shown)?;
                self.cuts = cuts;
            }
        }
        Ok(())
    }

    /// Writes (when `shown`) and counts the cuts a return or loss made; pops them either way.
    fn write_cuts<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        thread_id: i32,
        cuts: &[Cut],
        shown: bool,
    ) -> io::Result<()> {
        for cut in cuts {
            if shown {
                self.end(out, thread_id, cut.ts_ns, Some(cut.reason.as_str()))?;
                self.cut_counts[cut.reason as usize] += 1;
            } else {
                self.pop(thread_id);
            }
        }
        Ok(())
    }

    fn pop(&mut self, thread_id: i32) -> Option<Open> {
        self.threads.get_mut(&thread_id)?.open.pop()
    }

    /// At the selection's start on `thread_id`: a `B` at the start, marked as cut, for each
    /// slice open then.
    fn enter<W: Write>(&mut self, out: &mut Events<'_, W>, thread_id: i32) -> io::Result<()> {
        let Some(t) = self.threads.get_mut(&thread_id) else {
            return Ok(());
        };
        if t.entered {
            return Ok(());
        }
        t.entered = true;
        let open = t.open.clone();
        for o in open {
            let at = o.begin_ns.max(self.window.from_ns);
            let cut = (o.begin_ns < self.window.from_ns).then_some("selection start");
            if cut.is_some() {
                self.cut_counts[3] += 1;
            }
            self.begin(out, thread_id, o.key, at, cut)?;
        }
        Ok(())
    }

    /// A `B` for function `key`; args the same for every call of it (and `cut` when given).
    fn begin<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        thread_id: i32,
        key: u64,
        ts: u64,
        cut: Option<&str>,
    ) -> io::Result<()> {
        let f = self.functions.get(&key);
        let name = f.map_or("?", |f| f.name.as_str());
        let mut o = out.event("B", name, "function", Some(ts), thread_id)?;
        let mut args = o.obj("args")?;
        if let Some(f) = f {
            args.hex("address", f.address)?;
            if f.function_id != 0 {
                args.int("function_id", f.function_id)?;
            }
            if let Some(at) = &f.source {
                args.str("file", &at.file)?;
                args.int("line", at.line)?;
            }
        }
        if let Some(reason) = cut {
            args.str("cut", reason)?;
        }
        args.close()?;
        o.close()
    }

    /// An `E` closing the innermost open slice of `thread_id` (no args unless it is a cut).
    fn end<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        thread_id: i32,
        ts: u64,
        cut: Option<&str>,
    ) -> io::Result<()> {
        let Some(open) = self.pop(thread_id) else {
            return Ok(());
        };
        let name = self
            .functions
            .get(&open.key)
            .map_or("?", |f| f.name.as_str());
        let mut o = out.event("E", name, "function", Some(ts), thread_id)?;
        if let Some(reason) = cut {
            let mut args = o.obj("args")?;
            args.str("cut", reason)?;
            args.close()?;
        }
        o.close()
    }

    /// The end of the stream: writes what the reorder windows hold, then cuts what is open at
    /// `end_ns` (the trace's end when known, else each thread's latest time), or, when the
    /// trace went on past the selection's end (`past_end`), at the selection's end.
    pub(super) fn finish<W: Write>(
        &mut self,
        out: &mut Events<'_, W>,
        end_ns: Option<u64>,
        past_end: bool,
    ) -> io::Result<()> {
        let mut tids: Vec<i32> = self.threads.keys().copied().collect();
        tids.sort_unstable();
        for &tid in &tids {
            let held = self.threads.get_mut(&tid).and_then(|t| t.held.take());
            if let Some(heap) = held {
                for Reverse(item) in heap.into_sorted_vec().into_iter().rev() {
                    self.handle(out, tid, item)?;
                }
            }
        }
        let mut cuts = Vec::new();
        let end_ns = if past_end {
            Some(end_ns.map_or(self.window.to_ns, |e| e.min(self.window.to_ns)))
        } else {
            end_ns
        };
        self.nesting.finish(end_ns, &mut cuts);
        for cut in cuts {
            let tid = cut.thread_id;
            if self.threads.get(&tid).is_some_and(|t| t.done) {
                continue;
            }
            let at = cut.ts_ns.min(self.window.to_ns);
            if at < self.window.from_ns {
                self.pop(tid);
                continue;
            }
            self.enter(out, tid)?;
            if at < cut.ts_ns || (past_end && at == self.window.to_ns) {
                self.end(out, tid, at, Some("selection end"))?;
                self.cut_counts[3] += 1;
            } else {
                self.end(out, tid, at, Some(CutReason::TraceEnd.as_str()))?;
                self.cut_counts[CutReason::TraceEnd as usize] += 1;
            }
        }
        Ok(())
    }
}
