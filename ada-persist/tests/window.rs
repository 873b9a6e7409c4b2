//! The window tracker: open, extend, merge, close (past the post-roll, on `close_expired`, at
//! `finish`), a mark on the last event, pre-roll by duration and by budget, budget eviction,
//! clock skew; and a proptest against a reference model that keeps every item and decides
//! afterwards which fall in a window.

use ada_persist::{
    Counts, Emit, Mark, PreRoll, TriggerId, WindowConfig, WindowReport, WindowTracker,
};
use proptest::prelude::*;

const TRIGGER: Mark = Mark::Explicit;

/// What came out of a tracker: persisted items with their window, and the closed windows.
#[derive(Default, Debug)]
struct Out {
    persisted: Vec<(u32, u64)>,
    opened: Vec<u64>,
    closed: Vec<WindowReport>,
}

impl Out {
    fn items(&self) -> Vec<u32> {
        self.persisted.iter().map(|&(item, _)| item).collect()
    }

    fn take(&mut self, e: Emit<u32>) {
        match e {
            Emit::Persist { item, window } => {
                assert_eq!(
                    self.opened.last(),
                    Some(&window),
                    "persisted into the open window"
                );
                self.persisted.push((item, window));
            }
            Emit::Opened { window, .. } => {
                assert_eq!(self.opened.len(), self.closed.len(), "one window at a time");
                self.opened.push(window);
            }
            Emit::Closed(report) => {
                assert_eq!(self.opened.last(), Some(&report.id));
                self.closed.push(report);
            }
        }
    }
}

/// Pushes `(ts, bytes, marked)` events numbered from 0; checks the count identity after each.
fn run(config: WindowConfig, events: &[(u64, usize, bool)]) -> (Out, Counts) {
    let mut tracker = WindowTracker::new(config);
    let mut out = Out::default();
    for (seq, &(ts, bytes, marked)) in events.iter().enumerate() {
        tracker.push(seq as u32, ts, bytes, marked.then_some(TRIGGER), |e| {
            out.take(e)
        });
        let c = tracker.counts();
        assert_eq!(c.pushed, c.persisted + c.discarded + c.buffered, "{c:?}");
        assert!(c.buffered_bytes <= config.budget_bytes as u64);
    }
    let counts = tracker.finish(|e| out.take(e));
    assert_eq!(counts.buffered, 0);
    assert_eq!(counts.pushed, counts.persisted + counts.discarded);
    assert_eq!(counts.windows, out.closed.len() as u64);
    assert!(counts.over_budget <= counts.discarded);
    (out, counts)
}

fn config(pre_roll: PreRoll, post_roll_ns: u64, budget_bytes: usize) -> WindowConfig {
    WindowConfig {
        pre_roll,
        post_roll_ns,
        budget_bytes,
    }
}

#[test]
fn defaults_are_buffered_10ms_4mib() {
    let c = WindowConfig::default();
    assert_eq!(
        (c.pre_roll, c.post_roll_ns, c.budget_bytes),
        (PreRoll::Buffered, 10_000_000, 4 << 20)
    );
}

#[test]
fn a_mark_opens_a_window_with_pre_roll_and_post_roll_then_it_closes() {
    // ts:      0    10   20   30(M) 40   50   60   70
    let ev = [
        (0, 1, false),
        (10, 1, false),
        (20, 1, false),
        (30, 1, true),
        (40, 1, false),
        (50, 1, false),
        (60, 1, false),
        (70, 1, false),
    ];
    let (out, counts) = run(config(PreRoll::Duration(15), 20, 100), &ev);
    assert_eq!(out.items(), [2, 3, 4, 5]);
    assert_eq!(out.closed.len(), 1);
    let w = out.closed[0];
    assert_eq!(
        (w.id, w.start_ns, w.end_ns, w.first_mark_ns, w.last_mark_ns),
        (1, 20, 50, 30, 30)
    );
    assert_eq!(
        (w.opened_by, w.marks, w.persisted, w.pre_roll),
        (TRIGGER, 1, 4, 1)
    );
    assert_eq!((w.discarded_before, w.over_budget_before), (2, 0));
    assert_eq!(
        (
            counts.pushed,
            counts.persisted,
            counts.discarded,
            counts.over_budget
        ),
        (8, 4, 4, 0)
    );
}

#[test]
fn the_window_closes_when_an_item_arrives_past_the_post_roll_not_before() {
    let mut t = WindowTracker::new(config(PreRoll::Buffered, 10, 100));
    let mut out = Out::default();
    t.push(0, 100, 1, Some(TRIGGER), |e| out.take(e));
    t.push(1, 110, 1, None, |e| out.take(e)); // at the deadline: inside (inclusive)
    assert!(out.closed.is_empty());
    assert_eq!(t.open_window(), Some(1));
    t.push(2, 111, 1, None, |e| out.take(e)); // past it: closes, buffered
    assert_eq!(out.closed.len(), 1);
    assert_eq!(t.open_window(), None);
    assert_eq!(out.items(), [0, 1]);
    assert_eq!(t.counts().buffered, 1);
}

#[test]
fn close_expired_closes_an_idle_window_and_later_items_are_not_in_it() {
    let mut t = WindowTracker::new(config(PreRoll::Duration(5), 10, 100));
    let mut out = Out::default();
    t.push(0, 100, 1, Some(TRIGGER), |e| out.take(e));
    t.close_expired(110, |e| out.take(e));
    assert!(out.closed.is_empty(), "still within the post-roll");
    t.close_expired(111, |e| out.take(e));
    assert_eq!(out.closed.len(), 1);
    // An item stamped before the tick counts as stamped at the tick: buffered, not persisted.
    t.push(1, 105, 1, None, |e| out.take(e));
    assert_eq!(out.items(), [0]);
    // Duration pre-roll: a tick far ahead drops what no later mark can want.
    t.close_expired(1_000, |e| out.take(e));
    assert_eq!(t.counts().buffered, 0);
    assert_eq!(t.counts().discarded, 1);
}

#[test]
fn a_mark_inside_the_window_extends_it() {
    // Marks at 0 and 8 (within 10 of 0): one window until 18.
    let ev = [
        (0, 1, true),
        (8, 1, true),
        (15, 1, false),
        (18, 1, false),
        (19, 1, false),
    ];
    let (out, _) = run(config(PreRoll::Buffered, 10, 100), &ev);
    assert_eq!(out.items(), [0, 1, 2, 3]);
    assert_eq!(out.closed.len(), 1);
    let w = out.closed[0];
    assert_eq!(
        (
            w.marks,
            w.first_mark_ns,
            w.last_mark_ns,
            w.end_ns,
            w.persisted
        ),
        (2, 0, 8, 18, 4)
    );
}

#[test]
fn windows_merge_and_separate_marks_open_separate_windows() {
    let ev = [
        (0, 1, true),
        (10, 1, true),
        (20, 1, true), // one window: each mark within the last's post-roll
        (31, 1, false),
        (40, 1, false),
        (50, 1, true),  // 31 closes it; 50 opens window 2
        (100, 1, true), // window 3
    ];
    let (out, counts) = run(config(PreRoll::Duration(10), 10, 100), &ev);
    assert_eq!(
        out.closed
            .iter()
            .map(|w| (w.id, w.marks))
            .collect::<Vec<_>>(),
        [(1, 3), (2, 1), (3, 1)]
    );
    // 31 is past 20 + 10 and older than 50 - 10; 40 is not.
    assert_eq!(out.items(), [0, 1, 2, 4, 5, 6]);
    assert_eq!(out.closed[1].discarded_before, 1);
    assert_eq!((out.closed[1].start_ns, out.closed[1].pre_roll), (40, 1));
    assert_eq!(counts.discarded, 1);
}

#[test]
fn a_mark_on_the_last_event_is_persisted_and_closed_at_finish() {
    let ev = [(0, 1, false), (5, 1, false), (9, 1, true)];
    let (out, counts) = run(config(PreRoll::Buffered, 10, 100), &ev);
    assert_eq!(out.items(), [0, 1, 2]);
    assert_eq!(out.closed.len(), 1);
    let w = out.closed[0];
    assert_eq!(
        (
            w.start_ns,
            w.end_ns,
            w.first_mark_ns,
            w.pre_roll,
            w.persisted
        ),
        (0, 9, 9, 2, 3)
    );
    assert_eq!(counts.discarded, 0);
}

#[test]
fn finish_discards_what_is_buffered_and_the_tracker_can_go_on() {
    let mut t = WindowTracker::new(config(PreRoll::Buffered, 10, 100));
    let mut out = Out::default();
    t.push(0, 0, 1, None, |e| out.take(e));
    t.push(1, 1, 1, None, |e| out.take(e));
    let c = t.finish(|e| out.take(e));
    assert_eq!(
        (c.pushed, c.discarded, c.persisted, c.windows),
        (2, 2, 0, 0)
    );
    t.push(
        2,
        2,
        1,
        Some(Mark::Trigger(TriggerId::new(4).unwrap())),
        |e| out.take(e),
    );
    t.finish(|e| out.take(e));
    assert_eq!(out.items(), [2]);
    let w = out.closed[0];
    assert_eq!(
        (w.discarded_before, w.pre_roll),
        (0, 0),
        "finish already counted the gap"
    );
    assert_eq!(w.opened_by, Mark::Trigger(TriggerId::new(4).unwrap()));
}

#[test]
fn buffered_pre_roll_is_what_the_budget_holds() {
    // 10 items of 10 bytes, a 35-byte budget: the 3 newest are the pre-roll.
    let mut ev: Vec<_> = (0..10).map(|i| (i, 10, false)).collect();
    ev.push((1_000_000, 10, true));
    let (out, counts) = run(config(PreRoll::Buffered, 0, 35), &ev);
    assert_eq!(out.items(), [7, 8, 9, 10]);
    assert_eq!(
        (counts.discarded, counts.over_budget),
        (7, 0),
        "the budget is the pre-roll"
    );
    assert_eq!(out.closed[0].discarded_before, 7);
}

#[test]
fn duration_pre_roll_keeps_only_the_duration_and_counts_what_the_budget_lost() {
    let mut ev: Vec<_> = (0..10).map(|i| (i * 10, 10, false)).collect();
    ev.push((100, 10, true));
    // Duration 45 ns wants items at ts >= 55 (6..=9), and the budget holds them all.
    let (out, counts) = run(config(PreRoll::Duration(45), 0, 1000), &ev);
    assert_eq!(out.items(), [6, 7, 8, 9, 10]);
    assert_eq!((counts.discarded, counts.over_budget), (6, 0));
    // A 25-byte budget holds only 2 of the 4: the other 2 are over budget.
    let (out, counts) = run(config(PreRoll::Duration(45), 0, 25), &ev);
    assert_eq!(out.items(), [8, 9, 10]);
    assert_eq!(counts.discarded, 8);
    assert!(counts.over_budget >= 2, "{counts:?}");
    assert_eq!(out.closed[0].over_budget_before, counts.over_budget);
}

#[test]
fn an_item_larger_than_the_budget_evicts_everything() {
    let ev = [
        (0, 10, false),
        (1, 10, false),
        (2, 500, false),
        (3, 1, true),
    ];
    let (out, counts) = run(config(PreRoll::Buffered, 0, 100), &ev);
    assert_eq!(out.items(), [3]);
    assert_eq!(counts.discarded, 3);
    // A mark is persisted whatever its size; huge sizes do not overflow.
    let ev = [
        (0, usize::MAX, false),
        (1, usize::MAX, false),
        (2, usize::MAX, true),
    ];
    let (out, _) = run(config(PreRoll::Buffered, 0, usize::MAX), &ev);
    assert_eq!(out.items(), [1, 2]);
}

#[test]
fn timestamps_going_backwards_are_treated_as_the_latest() {
    // The item stamped 5 after 100 counts as 100: inside the mark's post-roll.
    let ev = [
        (100, 1, true),
        (5, 1, false),
        (200, 1, false),
        (0, 1, false),
    ];
    let (out, counts) = run(config(PreRoll::Duration(10), 10, 100), &ev);
    assert_eq!(out.items(), [0, 1]);
    assert_eq!(out.closed[0].end_ns, 100);
    assert_eq!(counts.discarded, 2);
}

/// The reference: keeps every item, then decides. Returns, per item, the window (1-based, in
/// opening order) it was persisted in, and per item whether a duration pre-roll lost it to the
/// budget.
fn reference(config: WindowConfig, events: &[(u64, usize, bool)]) -> (Vec<Option<u64>>, Vec<bool>) {
    let n = events.len();
    let mut window: Vec<Option<u64>> = vec![None; n];
    let mut last_mark: Option<u64> = None;
    let mut windows = 0;
    let mut last_persisted: Option<usize> = None;
    for j in 0..n {
        let (ts, _, marked) = events[j];
        let in_post_roll = last_mark.is_some_and(|m| ts <= m + config.post_roll_ns);
        if in_post_roll {
            window[j] = Some(windows);
        } else if marked {
            windows += 1;
            // Pre-roll: the longest run of unpersisted items just before j within the duration
            // and the budget.
            let mut bytes: u128 = 0;
            let first_free = last_persisted.map_or(0, |l| l + 1);
            for i in (first_free..j).rev() {
                let (ti, bi, _) = events[i];
                bytes += bi as u128;
                let old =
                    matches!(config.pre_roll, PreRoll::Duration(p) if ti < ts.saturating_sub(p));
                if old || bytes > config.budget_bytes as u128 {
                    break;
                }
                window[i] = Some(windows);
            }
            window[j] = Some(windows);
        }
        if marked {
            last_mark = Some(ts);
        }
        if window[j].is_some() {
            last_persisted = Some(j);
        }
    }
    // Over budget: a discarded item whose first eviction cause (by the pushes after it, up to
    // the next mark, which drains the buffer) is the budget rather than its age; only with a
    // duration.
    let mut over = vec![false; n];
    if let PreRoll::Duration(p) = config.pre_roll {
        for i in 0..n {
            if window[i].is_some() {
                continue;
            }
            let mut bytes: u128 = 0;
            for k in i..n {
                if events[k].2 {
                    break;
                }
                bytes += events[k].1 as u128;
                if events[i].0 < events[k].0.saturating_sub(p) {
                    break;
                }
                if bytes > config.budget_bytes as u128 {
                    over[i] = true;
                    break;
                }
            }
        }
    }
    (window, over)
}

fn events() -> impl Strategy<Value = Vec<(u64, usize, bool)>> {
    proptest::collection::vec(
        (0u64..30, 1usize..40, proptest::bool::weighted(0.12)),
        0..80,
    )
    .prop_map(|v| {
        let mut ts = 0;
        v.into_iter()
            .map(|(dt, bytes, mark)| {
                ts += dt;
                (ts, bytes, mark)
            })
            .collect()
    })
}

fn check_against_reference(
    config: WindowConfig,
    events: &[(u64, usize, bool)],
) -> Result<(), TestCaseError> {
    let (out, counts) = run(config, events);
    let (expected, over) = reference(config, events);
    let persisted: Vec<(u32, u64)> = expected
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.map(|w| (i as u32, w)))
        .collect();
    prop_assert_eq!(&out.persisted, &persisted);
    let windows = expected.iter().flatten().max().copied().unwrap_or(0);
    prop_assert_eq!(out.closed.len() as u64, windows);
    for w in &out.closed {
        let members: Vec<usize> = (0..events.len())
            .filter(|&i| expected[i] == Some(w.id))
            .collect();
        let first = members[0];
        let last = *members.last().unwrap();
        let marks: Vec<usize> = members.iter().copied().filter(|&i| events[i].2).collect();
        prop_assert_eq!(w.start_ns, events[first].0);
        prop_assert_eq!(w.end_ns, events[last].0);
        prop_assert_eq!(w.first_mark_ns, events[marks[0]].0);
        prop_assert_eq!(w.last_mark_ns, events[*marks.last().unwrap()].0);
        prop_assert_eq!(w.marks, marks.len() as u64);
        prop_assert_eq!(w.persisted, members.len() as u64);
        prop_assert_eq!(w.pre_roll, (first..marks[0]).count() as u64);
        // The gap before the window: items since the previous window's last item.
        let gap_from = (0..first)
            .rev()
            .find(|&i| expected[i].is_some())
            .map_or(0, |i| i + 1);
        prop_assert_eq!(w.discarded_before, (first - gap_from) as u64);
        let gap_over = (gap_from..first).filter(|&i| over[i]).count() as u64;
        prop_assert_eq!(w.over_budget_before, gap_over);
    }
    prop_assert_eq!(counts.persisted, persisted.len() as u64);
    prop_assert_eq!(counts.discarded, (events.len() - persisted.len()) as u64);
    prop_assert_eq!(
        counts.over_budget,
        over.iter().filter(|&&o| o).count() as u64
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The brief's reference, literally: with no budget pressure, an item is persisted exactly
    /// when some mark `m` has `m.ts - pre <= item.ts <= m.ts + post`.
    #[test]
    fn duration_windows_are_the_union_of_mark_intervals(events in events(), pre in 0u64..60, post in 0u64..60) {
        let (out, counts) = run(config(PreRoll::Duration(pre), post, usize::MAX), &events);
        let marks: Vec<u64> = events.iter().filter(|e| e.2).map(|e| e.0).collect();
        let expected: Vec<u32> = (0..events.len())
            .filter(|&i| marks.iter().any(|&m| m.saturating_sub(pre) <= events[i].0 && events[i].0 <= m + post))
            .map(|i| i as u32)
            .collect();
        prop_assert_eq!(out.items(), expected);
        prop_assert_eq!(counts.over_budget, 0);
    }

    #[test]
    fn tracker_matches_the_reference_model(
        events in events(),
        duration in proptest::option::of(0u64..60),
        post in 0u64..60,
        budget in prop_oneof![0usize..300, Just(usize::MAX)],
    ) {
        let pre_roll = duration.map_or(PreRoll::Buffered, PreRoll::Duration);
        check_against_reference(config(pre_roll, post, budget), &events)?;
    }
}
