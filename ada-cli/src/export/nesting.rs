//! Balanced slices from a trace's calls and returns: [`Nesting`] keeps each thread's open calls
//! and says, at every return, loss and at the trace's end, what an exporter must write so that
//! every slice it opens is closed and nested inside its parent.
//!
//! A complete trace needs no repair: every return closes the call on top of its thread's stack.
//! A trace with losses (a refused or overwritten ring, a killed process, a torn tail) does not
//! promise that, and viewers show a broken tree (or reject the file) when an end event closes a
//! slice of another name or nothing at all. The rules, one thread at a time:
//!
//! - a **call** opens a slice;
//! - a **return** of the function on top closes it ([`Return::Matched`]); a return of a function
//!   deeper in the stack first closes everything above it ([`CutReason::Unwound`]: their returns
//!   were lost), then closes it; a return of a function not open on the thread is an orphan
//!   ([`Return::Orphan`]: its call was lost) and is not written as a slice end;
//! - a **loss** on the thread's index lane ([`Nesting::gap`]) closes everything open at the gap
//!   ([`CutReason::Loss`]): the returns that fell into it are unknown, so nothing stays open
//!   across it;
//! - the trace's **end** ([`Nesting::finish`]) closes what is still open ([`CutReason::TraceEnd`]):
//!   the traced process ended, was killed or the trace was cut short with those calls running.
//!
//! Every closing that a return did not make is a [`Cut`] the exporter writes as a slice end
//! marked as cut. Memory is the threads' open calls: one entry per frame of call depth.
//!
//! This module is not an exporter: it writes nothing and knows no output format; it does not
//! reorder events either (the exporter feeds them in the order it writes them).

use std::collections::HashMap;

/// Why a slice was closed by the exporter rather than by its return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// A return of a function deeper in the thread's stack: this slice's own return was lost.
    Unwound,
    /// Events of the thread were lost here; what was open is closed at the gap.
    Loss,
    /// The trace ended with the slice open.
    TraceEnd,
}

impl CutReason {
    /// A short word for exports' arguments: `unwound`, `loss`, `trace end`.
    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::Unwound => "unwound",
            CutReason::Loss => "loss",
            CutReason::TraceEnd => "trace end",
        }
    }
}

/// A slice the exporter must close: write an end of `function_id` on `thread_id` at `ts_ns`,
/// marked as cut for `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The thread whose slice it is.
    pub thread_id: i32,
    /// The function (the slice's call) being closed.
    pub function_id: u64,
    /// When the slice opened.
    pub begin_ns: u64,
    /// Where to close it: the time of the return, gap or end that closed it (never before
    /// `begin_ns`).
    pub ts_ns: u64,
    /// Why it is closed here.
    pub reason: CutReason,
}

/// What to do with a return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Return {
    /// It closes the slice on top of its thread (after the cuts written to `cuts`): write it.
    Matched,
    /// No call of this function is open on the thread: do not write it as a slice end.
    Orphan,
}

/// One open call.
#[derive(Clone, Copy, Debug)]
struct Open {
    function_id: u64,
    begin_ns: u64,
}

/// Each thread's open calls (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct Nesting {
    threads: HashMap<i32, Vec<Open>>,
    /// Each thread's latest time seen, for closing at the trace's end.
    last_ns: HashMap<i32, u64>,
    orphans: u64,
    cuts: [u64; 3],
}

impl Nesting {
    /// No thread has anything open.
    pub fn new() -> Nesting {
        Nesting::default()
    }

    fn saw(&mut self, thread_id: i32, ts_ns: u64) {
        let last = self.last_ns.entry(thread_id).or_insert(ts_ns);
        *last = (*last).max(ts_ns);
    }

    /// A call of `function_id` on `thread_id` at `ts_ns` opens a slice.
    pub fn call(&mut self, thread_id: i32, function_id: u64, ts_ns: u64) {
        self.saw(thread_id, ts_ns);
        self.threads.entry(thread_id).or_default().push(Open {
            function_id,
            begin_ns: ts_ns,
        });
    }

    /// A return of `function_id` on `thread_id` at `ts_ns`. Slices it unwinds are appended to
    /// `cuts` (innermost first), to be written before the return's own end.
    pub fn ret(
        &mut self,
        thread_id: i32,
        function_id: u64,
        ts_ns: u64,
        cuts: &mut Vec<Cut>,
    ) -> Return {
        self.saw(thread_id, ts_ns);
        let Some(stack) = self.threads.get_mut(&thread_id) else {
            self.orphans += 1;
            return Return::Orphan;
        };
        let Some(at) = stack.iter().rposition(|o| o.function_id == function_id) else {
            self.orphans += 1;
            return Return::Orphan;
        };
        for open in stack.drain(at + 1..).rev() {
            self.cuts[CutReason::Unwound as usize] += 1;
            cuts.push(Cut {
                thread_id,
                function_id: open.function_id,
                begin_ns: open.begin_ns,
                ts_ns: ts_ns.max(open.begin_ns),
                reason: CutReason::Unwound,
            });
        }
        stack.pop();
        Return::Matched
    }

    /// Events of `thread_id`'s index lane were lost at `ts_ns`: everything open on the thread
    /// is closed there (appended to `cuts`, innermost first).
    pub fn gap(&mut self, thread_id: i32, ts_ns: u64, cuts: &mut Vec<Cut>) {
        self.saw(thread_id, ts_ns);
        self.close_all(thread_id, Some(ts_ns), CutReason::Loss, cuts);
    }

    /// The trace ended: every slice still open is closed (appended to `cuts`, innermost first,
    /// threads in ascending id order) at `end_ns` when given, else at its thread's latest time.
    pub fn finish(&mut self, end_ns: Option<u64>, cuts: &mut Vec<Cut>) {
        let mut threads: Vec<i32> = self.threads.keys().copied().collect();
        threads.sort_unstable();
        for thread_id in threads {
            self.close_all(thread_id, end_ns, CutReason::TraceEnd, cuts);
        }
    }

    fn close_all(
        &mut self,
        thread_id: i32,
        at: Option<u64>,
        reason: CutReason,
        cuts: &mut Vec<Cut>,
    ) {
        let last = self.last_ns.get(&thread_id).copied().unwrap_or(0);
        let Some(stack) = self.threads.get_mut(&thread_id) else {
            return;
        };
        while let Some(open) = stack.pop() {
            self.cuts[reason as usize] += 1;
            cuts.push(Cut {
                thread_id,
                function_id: open.function_id,
                begin_ns: open.begin_ns,
                ts_ns: at.unwrap_or(last).max(open.begin_ns),
                reason,
            });
        }
    }

    /// How many slices are open on `thread_id`.
    pub fn depth(&self, thread_id: i32) -> usize {
        self.threads.get(&thread_id).map_or(0, Vec::len)
    }

    /// Returns seen so far that closed nothing ([`Return::Orphan`]).
    pub fn orphans(&self) -> u64 {
        self.orphans
    }

    /// Slices closed so far for `reason`.
    pub fn cuts(&self, reason: CutReason) -> u64 {
        self.cuts[reason as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_trace_needs_no_repair() {
        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        n.call(1, 10, 100);
        n.call(1, 20, 110);
        assert_eq!(n.ret(1, 20, 120, &mut cuts), Return::Matched);
        assert_eq!(n.ret(1, 10, 130, &mut cuts), Return::Matched);
        n.finish(None, &mut cuts);
        assert!(cuts.is_empty());
        assert_eq!(n.orphans(), 0);
        assert_eq!(n.depth(1), 0);
    }

    #[test]
    fn a_return_of_an_outer_function_closes_the_inner_ones_first() {
        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        n.call(1, 10, 100);
        n.call(1, 20, 110);
        n.call(1, 30, 115);
        assert_eq!(n.ret(1, 10, 140, &mut cuts), Return::Matched);
        let closed: Vec<(u64, CutReason)> =
            cuts.iter().map(|c| (c.function_id, c.reason)).collect();
        assert_eq!(closed, [(30, CutReason::Unwound), (20, CutReason::Unwound)]);
        assert!(cuts.iter().all(|c| c.ts_ns == 140));
        assert_eq!(n.depth(1), 0);
        assert_eq!(n.cuts(CutReason::Unwound), 2);
    }

    #[test]
    fn a_return_of_nothing_open_is_an_orphan() {
        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        assert_eq!(n.ret(2, 10, 100, &mut cuts), Return::Orphan);
        n.call(2, 20, 110);
        assert_eq!(n.ret(2, 10, 120, &mut cuts), Return::Orphan);
        assert_eq!(n.depth(2), 1, "an orphan closes nothing");
        assert!(cuts.is_empty());
        assert_eq!(n.orphans(), 2);
    }

    #[test]
    fn a_gap_closes_what_was_open_on_its_thread_only() {
        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        n.call(1, 10, 100);
        n.call(1, 20, 110);
        n.call(2, 30, 105);
        n.gap(1, 150, &mut cuts);
        assert_eq!(cuts.len(), 2);
        assert_eq!((cuts[0].function_id, cuts[0].ts_ns), (20, 150));
        assert_eq!((cuts[1].function_id, cuts[1].begin_ns), (10, 100));
        assert!(cuts.iter().all(|c| c.reason == CutReason::Loss));
        assert_eq!((n.depth(1), n.depth(2)), (0, 1));
        // The return after the gap closes nothing.
        assert_eq!(n.ret(1, 10, 160, &mut cuts), Return::Orphan);
    }

    #[test]
    fn the_end_closes_everything_at_the_end_or_at_each_threads_last_time() {
        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        n.call(2, 10, 100);
        n.call(1, 20, 200);
        n.call(1, 21, 250);
        n.finish(None, &mut cuts);
        let got: Vec<(i32, u64, u64)> = cuts
            .iter()
            .map(|c| (c.thread_id, c.function_id, c.ts_ns))
            .collect();
        assert_eq!(got, [(1, 21, 250), (1, 20, 250), (2, 10, 100)]);
        assert!(cuts.iter().all(|c| c.reason == CutReason::TraceEnd));

        let mut n = Nesting::new();
        let mut cuts = Vec::new();
        n.call(1, 10, 100);
        n.finish(Some(90), &mut cuts);
        assert_eq!(
            cuts[0].ts_ns, 100,
            "a cut never ends before its slice began"
        );
    }
}
