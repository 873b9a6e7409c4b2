//! Time order, within a bounded window, for the calls, returns and index-lane losses of the
//! threads whose slices are out of time order in the stream (found by a first read of it:
//! `export/order.rs`).
//!
//! Each such thread's items are held in a min-heap by time (equal times in stream order); once
//! more than [`REORDER_WINDOW`] are held, the earliest is due and written. One that comes
//! earlier than what its thread already wrote (more than the window out of order) cannot be
//! placed: it is [`Push::Late`], and the exporter treats it as a loss of the thread's index lane.
//! At the end, [`Reorder::pop`] gives what is still held, each thread in time order.
//!
//! Memory: per out-of-order thread, at most [`REORDER_WINDOW`] held events.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use ada_atf::Event;

/// Most items held per out-of-order thread.
pub const REORDER_WINDOW: usize = 64 * 1024;

/// One held event.
struct Held {
    ts: u64,
    /// Stream order, for equal times.
    seq: u64,
    ev: Event,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

#[derive(Default)]
struct Thread {
    heap: BinaryHeap<Reverse<Held>>,
    /// The time of the last item written.
    written_ns: u64,
}

/// What became of a pushed event.
pub enum Push {
    /// Held; nothing is due.
    Kept,
    /// Held, and this earlier event of the thread is due: write it.
    Due(u64, Event),
    /// Earlier than what the thread already wrote (at `written_ns`): not held.
    Late {
        /// The time of the thread's last written item.
        written_ns: u64,
    },
}

/// The held items of every out-of-order thread (see the [module docs](self)).
#[derive(Default)]
pub struct Reorder {
    threads: BTreeMap<i32, Thread>,
    seq: u64,
    window: usize,
}

impl Reorder {
    /// Holds at most `window` items per thread.
    pub fn new(window: usize) -> Self {
        Reorder {
            window: window.max(1),
            ..Reorder::default()
        }
    }

    /// Holds `ev` (of thread `ev.thread_id`, at `ts`).
    pub fn push(&mut self, ts: u64, ev: Event) -> Push {
        let t = self.threads.entry(ev.thread_id).or_default();
        if ts < t.written_ns {
            return Push::Late {
                written_ns: t.written_ns,
            };
        }
        self.seq += 1;
        t.heap.push(Reverse(Held {
            ts,
            seq: self.seq,
            ev,
        }));
        if t.heap.len() <= self.window {
            return Push::Kept;
        }
        match t.heap.pop() {
            Some(Reverse(h)) => {
                t.written_ns = h.ts;
                Push::Due(h.ts, h.ev)
            }
            None => Push::Kept,
        }
    }

    /// The earliest item still held of the lowest thread id holding any: call until `None`
    /// at the end of the stream.
    pub fn pop(&mut self) -> Option<(u64, Event)> {
        while let Some(mut entry) = self.threads.first_entry() {
            match entry.get_mut().heap.pop() {
                Some(Reverse(h)) => {
                    entry.get_mut().written_ns = h.ts;
                    return Some((h.ts, h.ev));
                }
                None => {
                    entry.remove();
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(thread_id: i32, event_id: u64) -> Event {
        Event {
            thread_id,
            event_id,
            ..Event::default()
        }
    }

    #[test]
    fn items_come_out_in_time_order_within_the_window_and_late_ones_are_refused() {
        let mut r = Reorder::new(2);
        assert!(matches!(r.push(30, ev(1, 1)), Push::Kept));
        assert!(matches!(r.push(10, ev(1, 2)), Push::Kept));
        // A third: the earliest (10) is due.
        assert!(matches!(r.push(20, ev(1, 3)), Push::Due(10, e) if e.event_id == 2));
        // Earlier than what was written: late.
        assert!(matches!(r.push(5, ev(1, 4)), Push::Late { written_ns: 10 }));
        // Another thread has its own window; equal times keep the stream's order.
        assert!(matches!(r.push(1, ev(2, 5)), Push::Kept));
        assert!(matches!(r.push(1, ev(2, 6)), Push::Kept));
        let rest: Vec<(i32, u64, u64)> = std::iter::from_fn(|| r.pop())
            .map(|(ts, e)| (e.thread_id, ts, e.event_id))
            .collect();
        assert_eq!(rest, [(1, 20, 3), (1, 30, 1), (2, 1, 5), (2, 1, 6)]);
    }
}
