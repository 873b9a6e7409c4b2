//! The per-thread flight-recorder window tracker, as pure logic: no I/O, no clock, no threads.
//! Timestamps come in with the items; what must be persisted comes out through a callback.
//!
//! # Model
//!
//! One [`WindowTracker`] follows one thread's detail events in order. Each pushed item is
//! either **persisted** (handed back through [`Emit::Persist`]), **buffered** (held as possible
//! pre-roll of a future mark) or **discarded** (dropped, and counted). A *mark* (an item pushed
//! with `Some(`[`Mark`]`)`) is always persisted and opens a **window**, or extends the open one:
//!
//! - **Pre-roll.** When a mark opens a window, the buffered items are persisted first, oldest
//!   first. What the buffer holds: the items since the last persisted one, the newest of them
//!   that fit in `budget_bytes` (oldest evicted first), and with [`PreRoll::Duration`]`(p)` only
//!   those with `ts >= mark_ts - p`. [`PreRoll::Buffered`] keeps whatever fits the budget (as
//!   the agent's detail rings do).
//! - **Post-roll.** While a window is open every item is persisted directly (not buffered).
//!   The window stays open for items with `ts <= last_mark_ts + post_roll_ns`.
//! - **Merging.** A mark while the window is open (its `ts` within the last mark's post-roll)
//!   extends the window: one window, `marks` counts both. A mark after the post-roll closes the
//!   old window and opens a new one (whose pre-roll holds the items since the old one ended).
//! - **Closing.** A window closes (and [`Emit::Closed`] reports it) when an item arrives past
//!   its post-roll, when [`WindowTracker::close_expired`] is told the time has passed it, or at
//!   [`WindowTracker::finish`], which also discards what is still buffered.
//!
//! Thus an item is persisted exactly when it is a mark, lies within `post_roll_ns` after a
//! mark, or was still buffered when a mark came (see above); every other item is discarded.
//!
//! **Counts.** At every moment `pushed = persisted + discarded + buffered`
//! ([`Counts`]). `over_budget` counts the discarded items that [`PreRoll::Duration`] asked to
//! keep but the budget could not hold (evicted by the budget while still within the pre-roll
//! duration); it is a part of `discarded`, never added to it. With [`PreRoll::Buffered`] the
//! budget *is* the pre-roll, so nothing is over budget.
//!
//! **Timestamps** are expected not to decrease; one that does (a skewed or scribbled clock) is
//! treated as equal to the latest seen, so decisions stay consistent and nothing panics.

use crate::spec::TriggerId;
use std::collections::VecDeque;

/// Default post-roll: 10 ms.
pub const DEFAULT_POST_ROLL_NS: u64 = 10_000_000;
/// Default buffer budget per thread: 4 MiB.
pub const DEFAULT_BUDGET_BYTES: usize = 4 << 20;

/// How much history before a mark is persisted with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreRoll {
    /// Whatever the buffer budget holds (the newest items that fit in `budget_bytes`).
    Buffered,
    /// The items at most this many nanoseconds older than the mark, as far as the budget holds
    /// them (the rest is counted `over_budget`).
    Duration(u64),
}

/// A tracker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// What is persisted before a mark.
    pub pre_roll: PreRoll,
    /// How long after the latest mark the window stays open (inclusive), in nanoseconds.
    pub post_roll_ns: u64,
    /// Most bytes (as the pushes state them) held as pre-roll.
    pub budget_bytes: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            pre_roll: PreRoll::Buffered,
            post_roll_ns: DEFAULT_POST_ROLL_NS,
            budget_bytes: DEFAULT_BUDGET_BYTES,
        }
    }
}

/// What made an item a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// An explicit `mark()` call.
    Explicit,
    /// A trigger of the marking policy fired.
    Trigger(TriggerId),
}

impl From<TriggerId> for Mark {
    fn from(id: TriggerId) -> Self {
        Mark::Trigger(id)
    }
}

/// A closed window, as reported by [`Emit::Closed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowReport {
    /// Window id, from 1, increasing per tracker.
    pub id: u64,
    /// Timestamp of the window's first persisted item (its oldest pre-roll item, or the mark).
    pub start_ns: u64,
    /// Timestamp of the window's last persisted item.
    pub end_ns: u64,
    /// Timestamp of the mark that opened the window.
    pub first_mark_ns: u64,
    /// Timestamp of the window's latest mark (the post-roll ran to `last_mark_ns + post_roll_ns`).
    pub last_mark_ns: u64,
    /// What opened the window.
    pub opened_by: Mark,
    /// Marks in the window (1 + those that extended it).
    pub marks: u64,
    /// Items persisted in the window, pre-roll and marks included.
    pub persisted: u64,
    /// Of `persisted`, the items that came from the pre-roll buffer.
    pub pre_roll: u64,
    /// Items discarded between the previous window's end (or the tracker's start, or the last
    /// [`finish`](WindowTracker::finish)) and this window's start.
    pub discarded_before: u64,
    /// Of `discarded_before`, those counted `over_budget`.
    pub over_budget_before: u64,
}

/// What a push asks the caller to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Emit<T> {
    /// A window opens (before its first persisted item).
    Opened {
        /// Its id.
        window: u64,
        /// What opened it.
        opened_by: Mark,
        /// Timestamp of the opening mark.
        mark_ns: u64,
    },
    /// Persist this item, which belongs to window `window`.
    Persist {
        /// The item.
        item: T,
        /// The window it belongs to.
        window: u64,
    },
    /// A window closed.
    Closed(WindowReport),
}

/// A tracker's running totals. `pushed = persisted + discarded + buffered` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items pushed.
    pub pushed: u64,
    /// Items emitted for persistence.
    pub persisted: u64,
    /// Items dropped (outside every window).
    pub discarded: u64,
    /// Of `discarded`, the items a [`PreRoll::Duration`] wanted but the budget could not hold.
    pub over_budget: u64,
    /// Items held now as possible pre-roll.
    pub buffered: u64,
    /// Bytes held now as possible pre-roll (at most `budget_bytes`).
    pub buffered_bytes: u64,
    /// Windows closed.
    pub windows: u64,
}

struct Held<T> {
    item: T,
    ts: u64,
    bytes: usize,
}

struct Open {
    id: u64,
    start_ns: u64,
    end_ns: u64,
    first_mark_ns: u64,
    last_mark_ns: u64,
    opened_by: Mark,
    marks: u64,
    persisted: u64,
    pre_roll: u64,
    discarded_before: u64,
    over_budget_before: u64,
}

/// One thread's window tracker over items of type `T` (see the [module docs](self)).
pub struct WindowTracker<T> {
    config: WindowConfig,
    buffer: VecDeque<Held<T>>,
    /// Sum of `buffer`'s bytes; u128 so that no sum of `usize`s can overflow it.
    buffered_bytes: u128,
    last_ts: u64,
    next_id: u64,
    open: Option<Open>,
    counts: Counts,
    gap_discarded: u64,
    gap_over_budget: u64,
}

impl<T> WindowTracker<T> {
    /// A tracker with no window open and nothing buffered.
    pub fn new(config: WindowConfig) -> Self {
        WindowTracker {
            config,
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            last_ts: 0,
            next_id: 1,
            open: None,
            counts: Counts::default(),
            gap_discarded: 0,
            gap_over_budget: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The running totals.
    pub fn counts(&self) -> Counts {
        Counts {
            buffered: self.buffer.len() as u64,
            buffered_bytes: u64::try_from(self.buffered_bytes).unwrap_or(u64::MAX),
            ..self.counts
        }
    }

    /// The id of the open window, if any.
    pub fn open_window(&self) -> Option<u64> {
        self.open.as_ref().map(|w| w.id)
    }

    /// Takes the next item: `bytes` is what it costs to hold (for the budget), `mark` says
    /// whether it is a mark. What must happen now comes out through `emit`, in order: a
    /// [`Emit::Closed`] for a window this item is past, then for a mark opening a window
    /// [`Emit::Opened`] and the pre-roll's [`Emit::Persist`]s, then the item's own
    /// [`Emit::Persist`] if it is persisted.
    pub fn push(
        &mut self,
        item: T,
        ts_ns: u64,
        bytes: usize,
        mark: Option<Mark>,
        mut emit: impl FnMut(Emit<T>),
    ) {
        let ts = ts_ns.max(self.last_ts);
        self.last_ts = ts;
        self.counts.pushed += 1;
        self.close_if_past(ts, &mut emit);
        if let Some(open) = self.open.as_mut() {
            if mark.is_some() {
                open.marks += 1;
                open.last_mark_ns = ts;
            }
            open.persisted += 1;
            open.end_ns = ts;
            self.counts.persisted += 1;
            emit(Emit::Persist {
                item,
                window: open.id,
            });
            return;
        }
        match mark {
            Some(mark) => self.open_new(item, ts, mark, &mut emit),
            None => {
                self.buffer.push_back(Held { item, ts, bytes });
                self.buffered_bytes += bytes as u128;
                self.evict_expired(ts);
                self.evict_over_budget();
            }
        }
    }

    /// Tells the tracker that no later item will be stamped before `now_ns`: closes the open
    /// window if `now_ns` is past its post-roll, and drops buffered items that a
    /// [`PreRoll::Duration`] can no longer use. Later items stamped before `now_ns` are treated
    /// as stamped `now_ns`.
    pub fn close_expired(&mut self, now_ns: u64, mut emit: impl FnMut(Emit<T>)) {
        let now = now_ns.max(self.last_ts);
        self.last_ts = now;
        self.close_if_past(now, &mut emit);
        self.evict_expired(now);
    }

    /// The thread is done (or the trace ends): closes the open window (reported through
    /// `emit`), discards what is buffered, and returns the totals. The tracker may be used
    /// again afterwards; the next window's `discarded_before` counts from here.
    pub fn finish(&mut self, mut emit: impl FnMut(Emit<T>)) -> Counts {
        self.close(&mut emit);
        let dropped = self.buffer.len() as u64;
        self.buffer.clear();
        self.buffered_bytes = 0;
        self.counts.discarded += dropped;
        self.gap_discarded = 0;
        self.gap_over_budget = 0;
        self.counts()
    }

    fn close_if_past(&mut self, ts: u64, emit: &mut impl FnMut(Emit<T>)) {
        let past = self
            .open
            .as_ref()
            .is_some_and(|w| ts > w.last_mark_ns.saturating_add(self.config.post_roll_ns));
        if past {
            self.close(emit);
        }
    }

    fn close(&mut self, emit: &mut impl FnMut(Emit<T>)) {
        let Some(w) = self.open.take() else { return };
        self.counts.windows += 1;
        emit(Emit::Closed(WindowReport {
            id: w.id,
            start_ns: w.start_ns,
            end_ns: w.end_ns,
            first_mark_ns: w.first_mark_ns,
            last_mark_ns: w.last_mark_ns,
            opened_by: w.opened_by,
            marks: w.marks,
            persisted: w.persisted,
            pre_roll: w.pre_roll,
            discarded_before: w.discarded_before,
            over_budget_before: w.over_budget_before,
        }));
    }

    fn open_new(&mut self, item: T, ts: u64, mark: Mark, emit: &mut impl FnMut(Emit<T>)) {
        self.evict_expired(ts);
        let id = self.next_id;
        self.next_id += 1;
        emit(Emit::Opened {
            window: id,
            opened_by: mark,
            mark_ns: ts,
        });
        let start_ns = self.buffer.front().map_or(ts, |h| h.ts);
        let pre_roll = self.buffer.len() as u64;
        for held in self.buffer.drain(..) {
            emit(Emit::Persist {
                item: held.item,
                window: id,
            });
        }
        self.buffered_bytes = 0;
        emit(Emit::Persist { item, window: id });
        self.counts.persisted += pre_roll + 1;
        self.open = Some(Open {
            id,
            start_ns,
            end_ns: ts,
            first_mark_ns: ts,
            last_mark_ns: ts,
            opened_by: mark,
            marks: 1,
            persisted: pre_roll + 1,
            pre_roll,
            discarded_before: std::mem::take(&mut self.gap_discarded),
            over_budget_before: std::mem::take(&mut self.gap_over_budget),
        });
    }

    /// With a duration pre-roll, drops the buffered items older than `now - duration`: no mark
    /// at or after `now` can want them.
    fn evict_expired(&mut self, now: u64) {
        let PreRoll::Duration(duration) = self.config.pre_roll else {
            return;
        };
        let oldest_kept = now.saturating_sub(duration);
        while self.buffer.front().is_some_and(|h| h.ts < oldest_kept) && self.pop_front(false) {}
    }

    /// Drops the oldest buffered items until the rest fit the budget.
    fn evict_over_budget(&mut self) {
        let over = matches!(self.config.pre_roll, PreRoll::Duration(_));
        while self.buffered_bytes > self.config.budget_bytes as u128 {
            if !self.pop_front(over) {
                break;
            }
        }
    }

    /// Discards the oldest buffered item; false if there is none.
    fn pop_front(&mut self, over_budget: bool) -> bool {
        let Some(held) = self.buffer.pop_front() else {
            return false;
        };
        self.buffered_bytes -= held.bytes as u128;
        self.counts.discarded += 1;
        self.gap_discarded += 1;
        if over_budget {
            self.counts.over_budget += 1;
            self.gap_over_budget += 1;
        }
        true
    }
}
