//! The human summary `ada trace` prints at the end.
//!
//! Threads are listed by their claimed OS thread id, marked where the controller could not
//! verify it; threads beyond the controller's bound are shown summed; corruption the drain
//! found is one warning line naming each kind (the same counts are in the trace's manifest).
//!
//! Thread names (read from the traced process), the sink's error messages and the trace path
//! are shown through [`crate::escape`], so they cannot inject terminal escape sequences.

use crate::escape::{escape, escape_path};
use ada_backpressure::{LaneState, LossCounters};
use ada_controller::{LaneKind, LaneReport, Report, ThreadEnd};
use std::fmt::Write as _;

/// The non-zero causes of `lost`, `cause n` comma-separated (`none` when nothing was lost).
pub fn causes(lost: &LossCounters) -> String {
    let parts: Vec<String> = [
        ("overwritten", lost.overwritten),
        ("refused", lost.refused),
        ("too_large", lost.too_large),
        ("no_slot", lost.no_slot),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .map(|(name, n)| format!("{name} {n}"))
    .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The states a lane entered, `STATE n×` (only those entered), in state order.
pub fn entries_text(entries: &[u64; 4]) -> String {
    LaneState::ALL
        .iter()
        .zip(entries)
        .filter(|&(_, &n)| n > 0)
        .map(|(s, n)| format!("{} {n}x", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a lane entered any state but NORMAL.
fn left_normal(entries: &[u64; 4]) -> bool {
    entries[1..].iter().any(|&n| n > 0)
}

/// The backpressure lines: the drop policies in force; per lane (when anything was lost) the
/// loss by cause and the balance `written + no_slot = persisted + discarded + lost + no_slot`
/// (what is still unread at the end is named too); and each listed lane that left NORMAL, with
/// the states it entered.
fn backpressure(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "  drop policies: {} (stability {:.1} ms)",
        report.drop_policies,
        report.stability_ns as f64 / 1e6
    );
    for kind in LaneKind::ALL {
        let l = report.total(kind);
        let no_slot = report.unregistered_by_lane[kind as usize];
        if l.dropped == 0 && no_slot == 0 {
            continue;
        }
        let mut lost = l.lost;
        lost.no_slot = no_slot;
        let _ = write!(
            out,
            "  {:<7} lost: {} (events {} = persisted {} + discarded {} + lost {} + no_slot {}",
            kind.name(),
            causes(&lost),
            l.written.saturating_add(no_slot),
            l.persisted,
            l.discarded,
            l.dropped,
            no_slot
        );
        if l.spilled > 0 {
            let _ = write!(out, " + spilled {}", l.spilled);
        }
        if l.after_end > 0 {
            let _ = write!(out, " + after end {}", l.after_end);
        }
        if l.before_attach > 0 {
            let _ = write!(out, " + before attach {}", l.before_attach);
        }
        let _ = writeln!(out, "); {} loss marker(s) in the trace", l.markers);
    }
    let mut shown = 0;
    for t in report.threads.iter().take(THREADS_LISTED) {
        for (kind, l) in t.lanes() {
            if !left_normal(&l.entries) {
                continue;
            }
            if shown == 0 {
                let _ = writeln!(out, "  lanes that left NORMAL:");
            }
            shown += 1;
            let _ = writeln!(
                out,
                "    thread {:<8} {:<7} entered {}; ended {}",
                t.info.os_tid,
                kind.name(),
                entries_text(&l.entries),
                l.state.map_or("unknown", LaneState::name)
            );
        }
    }
    let f = &report.folded;
    for (kind, l) in f.lanes() {
        if f.threads > 0 && left_normal(&l.entries) {
            let _ = writeln!(
                out,
                "    {} summed thread(s) {:<7} entered {}",
                f.threads,
                kind.name(),
                entries_text(&l.entries)
            );
        }
    }
}

fn lane_line(out: &mut String, name: &str, l: &LaneReport) {
    let _ = write!(
        out,
        "  {name:<7} written {:>12}  persisted {:>12}  dropped {:>10}",
        l.written, l.persisted, l.dropped
    );
    if l.discarded > 0 {
        let _ = write!(out, "  discarded {}", l.discarded);
    }
    if l.after_end > 0 {
        let _ = write!(out, "  after end {}", l.after_end);
    }
    if l.before_attach > 0 {
        let _ = write!(out, "  before attach {}", l.before_attach);
    }
    if l.corrupt > 0 {
        let _ = write!(out, "  CORRUPT {}", l.corrupt);
    }
    if !l.is_balanced() {
        let _ = write!(out, "  UNBALANCED");
    }
    out.push('\n');
}

/// Threads listed one by one in the summary; the manifest has them all.
pub const THREADS_LISTED: usize = 32;

/// Per thread: `written/persisted/dropped` of each lane, and a mark where it does not balance.
fn threads(out: &mut String, report: &Report) {
    if !report.threads.is_empty() {
        let _ = writeln!(out, "  per thread (written/persisted/dropped):");
    }
    for t in report.threads.iter().take(THREADS_LISTED) {
        let name = escape(t.name.as_deref().unwrap_or(""));
        let _ = write!(out, "    thread {:<8} {:<16}", t.info.os_tid, name);
        for (kind, l) in t.lanes() {
            let lane = kind.name();
            let _ = write!(out, "  {lane} {}/{}/{}", l.written, l.persisted, l.dropped);
            if l.dropped > 0 {
                let _ = write!(out, " (lost: {})", causes(&l.lost));
            }
            if l.discarded > 0 {
                let _ = write!(out, " (discarded {})", l.discarded);
            }
            if l.windows > 0 {
                let _ = write!(out, " in {} window(s)", l.windows);
            }
            if !l.is_balanced() {
                let _ = write!(out, " UNBALANCED");
            }
        }
        if t.refuted {
            let _ = write!(out, "  FALSE IDENTITY (claims pid {})", t.info.pid);
        }
        out.push('\n');
    }
    if report.threads.len() > THREADS_LISTED {
        let _ = writeln!(
            out,
            "    ... {} more thread(s) in the trace's manifest",
            report.threads.len() - THREADS_LISTED
        );
    }
    let f = &report.folded;
    if f.threads > 0 {
        let _ = write!(out, "    ... and {} more thread(s) summed:", f.threads);
        for (kind, l) in f.lanes() {
            let _ = write!(
                out,
                "  {} {}/{}/{}",
                kind.name(),
                l.written,
                l.persisted,
                l.dropped
            );
        }
        out.push('\n');
    }
}

/// The readiness line (epoch, ready → steady, the warm-up), the continuation line when this
/// session continues a dead controller's, and the agents' own statistics (when they reported
/// any: the traced processes write them, so they are shown as theirs).
fn readiness(out: &mut String, report: &Report) {
    let r = &report.readiness;
    if r.epoch != 0 {
        let steady = match r.ready_to_steady() {
            Some(d) => format!("steady {:.1} ms after ready", d.as_secs_f64() * 1e3),
            None => "never steady (the session ended in warm-up)".to_owned(),
        };
        let restarts = if r.warm_up_restarts > 0 {
            format!(
                ", the warm-up restarted {}x after an unhealthy drain",
                r.warm_up_restarts
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  registry: epoch {}, {steady} (warm-up {:.1} ms of healthy draining{restarts})",
            r.epoch,
            r.warm_up.as_secs_f64() * 1e3
        );
    }
    if let Some(c) = &report.continuation {
        let _ = writeln!(
            out,
            "  continues the session of segment {} (previous controller pid {}, now epoch {}); \
             what it had before is in its own trace",
            escape(&c.segment),
            c.previous_controller_pid,
            c.epoch
        );
    }
    let a = &report.agent_stats;
    if *a != ada_controller::AgentStatsSnapshot::default() {
        let [startup, warm_up, steady, stalled] = a.mode_entries;
        let _ = writeln!(
            out,
            "  agents report (their own numbers): {} mode change(s) (startup {startup}, warm-up \
             {warm_up}, steady {steady}, stalled {stalled}), {} dormancy(-ies), {} \
             re-attach(es)",
            a.mode_transitions, a.dormancies, a.reattaches
        );
    }
}

/// The flight recorder's line: windows, detail events persisted vs discarded, and the detail
/// bytes that did not reach the disk (nothing when every detail event was persisted).
fn flight_recorder(out: &mut String, detail: &LaneReport) {
    if detail.windows == 0 && detail.discarded == 0 {
        return;
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let total = detail
        .persisted_bytes
        .saturating_add(detail.discarded_bytes);
    let saved = if total == 0 {
        0.0
    } else {
        detail.discarded_bytes as f64 * 100.0 / total as f64
    };
    let _ = writeln!(
        out,
        "  flight recorder: {} window(s); detail events {} persisted, {} discarded; {:.2} MiB of detail records kept, {:.2} MiB saved ({saved:.1} %)",
        detail.windows,
        detail.persisted,
        detail.discarded,
        mib(detail.persisted_bytes),
        mib(detail.discarded_bytes),
    );
    if detail.over_budget > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} detail event(s) a --pre-roll wanted were beyond the per-thread \
             --pre-roll-budget and were discarded (raise the budget or shorten the pre-roll)",
            detail.over_budget
        );
    }
}

/// The shared fallback ring's line, when anything went through it or was lost on the way:
/// events it delivered (and the threads known only from it), the lanes' spilled events, and
/// what it lost (refused, late, torn, skipped) or found corrupt.
fn fallback(out: &mut String, report: &Report) {
    let f = &report.fallback;
    if !f.is_used() {
        return;
    }
    let spilled = report
        .total(LaneKind::Index)
        .spilled
        .saturating_add(report.total(LaneKind::Detail).spilled);
    let _ = write!(
        out,
        "  fallback ring: {} event(s) delivered ({} spilled by threads whose rings were full; {} thread(s) never had a slot)",
        f.delivered, spilled, f.threads
    );
    let lost: Vec<String> = [
        (f.refused, "refused (ring full)"),
        (f.late, "late"),
        (f.torn, "torn"),
        (f.skipped, "skipped"),
        (f.corrupt, "corrupt"),
        (f.left, "left in the ring at the end"),
    ]
    .into_iter()
    .filter(|&(n, _)| n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if lost.is_empty() {
        let _ = writeln!(out);
    } else {
        let _ = writeln!(out, "; lost: {}", lost.join(", "));
    }
}

/// What the drain found wrong in the segment, one warning line (nothing when all is well).
fn corruption(out: &mut String, report: &Report) {
    let c = report.corruption;
    if c.total() == 0 {
        return;
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (c.ring_errors, "ring error(s)"),
        (c.bad_chunks, "bad chunk(s)"),
        (c.unverified_threads, "thread(s) with a false identity"),
        (c.displaced_threads, "thread(s) whose slot was rewritten"),
        (c.symbol_entries, "damaged symbol entry(ies)"),
        (c.symbol_counters, "damaged symbol counter(s)"),
        (c.lane_counters, "contradictory lane counter(s)"),
        (c.fallback_records, "invalid fallback ring record(s)"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let _ = writeln!(
        out,
        "  WARNING: the segment held corrupt data: {} (recorded in the trace's manifest)",
        parts.join(", ")
    );
}

/// The summary of `report` (threads, listed and summed; events written, persisted, dropped and
/// discarded per lane; the flight recorder's windows and the detail bytes it saved; the drop
/// policies, each lane's loss by cause and its balance, and lanes that left NORMAL; what went
/// through the shared fallback ring; threads that could not be verified; corruption found in
/// the segment; bytes;
/// duration; events/s; where the trace is).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let secs = report.duration.as_secs_f64().max(1e-9);
    let (index, detail) = (
        report.total(LaneKind::Index),
        report.total(LaneKind::Detail),
    );
    let persisted = report.persisted();
    let died = report
        .threads
        .iter()
        .filter(|t| t.end == ThreadEnd::ProcessDied)
        .count();
    let running = report
        .threads
        .iter()
        .filter(|t| t.end == ThreadEnd::StillRunning)
        .count();
    let _ = writeln!(
        out,
        "ada: traced {} thread(s) in {:.3} s{}{}",
        report.thread_count(),
        secs,
        if died > 0 {
            format!(", {died} still registered when their process ended")
        } else {
            String::new()
        },
        if running > 0 {
            format!(", {running} still running at the end")
        } else {
            String::new()
        }
    );
    if report.threads.is_empty() {
        let _ = writeln!(
            out,
            "  no thread recorded anything: is the program built with ada-agent (it reads ADA_SHM)?"
        );
    }
    if let Some(code) = report.exit_code {
        let _ = writeln!(out, "  command exit code {code}");
    }
    lane_line(&mut out, "index", &index);
    lane_line(&mut out, "detail", &detail);
    readiness(&mut out, report);
    flight_recorder(&mut out, &detail);
    backpressure(&mut out, report);
    fallback(&mut out, report);
    threads(&mut out, report);
    if report.unverifiable_threads > 0 {
        let _ = writeln!(
            out,
            "  {} thread(s) ended before the controller could verify who they were",
            report.unverifiable_threads
        );
    }
    if report.unregistered_drops > 0 {
        let _ = writeln!(
            out,
            "  {} event(s) dropped by threads that found no free slot",
            report.unregistered_drops
        );
    }
    let bytes = index.bytes + detail.bytes;
    let _ = writeln!(
        out,
        "  {persisted} events persisted, {:.2} M events/s, {:.1} MiB drained from rings, {} KiB shared memory per thread",
        persisted as f64 / secs / 1e6,
        bytes as f64 / (1024.0 * 1024.0),
        report.memory_per_thread / 1024
    );
    if report.dropped() > 0 {
        let _ = writeln!(
            out,
            "  drain: {} passes, the longest took {:.1} ms (threads whose rings fill faster drop: --index-ring-kib / --index-rings give each thread more buffer)",
            report.passes,
            report.longest_pass.as_secs_f64() * 1e3
        );
    }
    if report.symbols_refused > 0 {
        let _ = writeln!(
            out,
            "  {} symbol(s) did not fit the symbol table (shown as fn#<id>)",
            report.symbols_refused
        );
    }
    corruption(&mut out, report);
    if report.sink_failures > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} record(s) could not be written: {}",
            report.sink_failures,
            escape(report.sink_error.as_deref().unwrap_or("unknown error"))
        );
    }
    if let Some(o) = &report.output {
        if let Some(dir) = &o.dir {
            let _ = writeln!(
                out,
                "  trace: {} ({} events, {:.1} MiB{})",
                escape_path(dir),
                o.events,
                o.bytes as f64 / (1024.0 * 1024.0),
                if o.complete { "" } else { ", INCOMPLETE" }
            );
        }
        if let Some(e) = &o.error {
            let _ = writeln!(out, "  WARNING: trace write error: {}", escape(e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_controller::{ThreadInfo, ThreadReport};

    #[test]
    fn thread_names_cannot_inject_escape_sequences() {
        let mut report = Report::default();
        report.threads.push(ThreadReport::new(
            ThreadInfo::new(0, 1, 100, 4242),
            Some("\u{1b}[31mred\u{1b}[0m".into()),
            ThreadEnd::Exited,
        ));
        report.threads.push(ThreadReport::new(
            ThreadInfo::new(1, 1, 100, 4243),
            Some("evil\u{202e}txt\rgrüße".into()),
            ThreadEnd::Exited,
        ));
        report.sink_error = Some("write \u{1b}]0;title\u{7} failed".into());
        report.sink_failures = 1;
        let text = render(&report);
        for bad in ['\u{1b}', '\u{202e}', '\r', '\u{7}'] {
            assert!(!text.contains(bad), "{bad:?} reached the summary:\n{text}");
        }
        for needle in [
            "thread 4242     \\x1b[31mred\\x1b[0m",
            "thread 4243     evil\\u{202e}txt\\rgrüße",
            "write \\x1b]0;title\\x07 failed",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn corruption_folded_threads_and_unverified_threads_are_shown() {
        let mut report = Report::default();
        let mut liar = ThreadReport::new(ThreadInfo::new(0, 1, 1, 1), None, ThreadEnd::Displaced);
        liar.refuted = true;
        report.threads.push(liar);
        report.corruption.unverified_threads = 1;
        report.corruption.symbol_entries = 4;
        let text = render(&report);
        assert!(text.contains("FALSE IDENTITY (claims pid 1)"), "{text}");
        assert!(
            text.contains("1 thread(s) with a false identity, 4 damaged symbol entry(ies)"),
            "{text}"
        );
        assert!(text.contains("traced 1 thread(s)"), "{text}");
    }

    #[test]
    fn the_fallback_ring_gets_a_line_when_anything_went_through_it() {
        let mut report = Report::default();
        assert!(!render(&report).contains("fallback ring"));
        let mut index = LaneReport::default();
        (
            index.written,
            index.persisted,
            index.spilled,
            index.via_fallback,
        ) = (10, 7, 3, 5);
        report.threads.push(
            ThreadReport::new(ThreadInfo::new(0, 1, 100, 7), None, ThreadEnd::Exited)
                .with_lane(LaneKind::Index, index),
        );
        report.fallback.taken = 6;
        report.fallback.delivered = 5;
        report.fallback.corrupt = 1;
        report.fallback.refused = 2;
        report.fallback.threads = 1;
        report.corruption.fallback_records = 1;
        let text = render(&report);
        assert!(
            text.contains(
                "fallback ring: 5 event(s) delivered (3 spilled by threads whose rings were \
                 full; 1 thread(s) never had a slot); lost: 2 refused (ring full), 1 corrupt"
            ),
            "{text}"
        );
        assert!(text.contains("1 invalid fallback ring record(s)"), "{text}");
        assert!(
            text.contains("12 events persisted"),
            "ring and fallback: {text}"
        );
    }

    #[test]
    fn the_flight_recorder_reports_windows_discarded_events_and_bytes_saved() {
        let mut detail = LaneReport::default();
        detail.written = 1_000;
        detail.persisted = 40;
        detail.discarded = 960;
        detail.windows = 3;
        detail.persisted_bytes = 1 << 20;
        detail.discarded_bytes = 19 << 20;
        let t = ThreadReport::new(ThreadInfo::new(0, 1, 100, 7), None, ThreadEnd::Exited)
            .with_lane(LaneKind::Detail, detail);
        let mut report = Report::default();
        report.threads.push(t);
        let text = render(&report);
        for needle in [
            "flight recorder: 3 window(s); detail events 40 persisted, 960 discarded; \
             1.00 MiB of detail records kept, 19.00 MiB saved (95.0 %)",
            "detail 1000/40/0 (discarded 960) in 3 window(s)",
            "discarded 960\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(!text.contains("UNBALANCED"), "{text}");
        assert!(
            !text.contains("pre-roll-budget"),
            "nothing over budget: {text}"
        );
        let mut tight = detail;
        tight.over_budget = 12;
        let mut report = Report::default();
        report.threads.push(
            ThreadReport::new(ThreadInfo::new(0, 1, 100, 7), None, ThreadEnd::Exited)
                .with_lane(LaneKind::Detail, tight),
        );
        let text = render(&report);
        assert!(
            text.contains("WARNING: 12 detail event(s) a --pre-roll wanted were beyond the per-thread --pre-roll-budget"),
            "{text}"
        );
        // Persist-all: no flight-recorder line.
        let mut all = Report::default();
        let mut lane = LaneReport::default();
        lane.written = 5;
        lane.persisted = 5;
        all.threads.push(
            ThreadReport::new(ThreadInfo::new(0, 1, 100, 7), None, ThreadEnd::Exited)
                .with_lane(LaneKind::Detail, lane),
        );
        assert!(!render(&all).contains("flight recorder"));
    }

    #[test]
    fn loss_by_cause_balance_policies_and_states_are_shown() {
        let mut index = LaneReport::default();
        index.written = 100;
        index.persisted = 60;
        index.lost.refused = 30;
        index.lost.too_large = 10;
        index.dropped = 40;
        index.markers = 2;
        index.entries = [1, 2, 1, 1];
        index.state = Some(LaneState::Normal);
        let mut report = Report::default();
        report.threads.push(
            ThreadReport::new(ThreadInfo::new(0, 1, 100, 7), None, ThreadEnd::Exited)
                .with_lane(LaneKind::Index, index),
        );
        report.unregistered_by_lane = [5, 0];
        report.unregistered_drops = 5;
        report.stability_ns = 5_000_000;
        let text = render(&report);
        for needle in [
            "drop policies: index=newest,detail=oldest (stability 5.0 ms)",
            "index   lost: refused 30, too_large 10, no_slot 5 (events 105 = persisted 60 + \
             discarded 0 + lost 40 + no_slot 5); 2 loss marker(s) in the trace",
            "index 100/60/40 (lost: refused 30, too_large 10)",
            "lanes that left NORMAL:",
            "thread 7        index   entered NORMAL 1x, PRESSURE 2x, DROPPING 1x, RECOVERY 1x; \
             ended NORMAL",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(
            !text.contains("detail  lost"),
            "the detail lane lost nothing: {text}"
        );
        assert!(!text.contains("UNBALANCED"), "{text}");
    }

    #[test]
    fn ordinary_thread_names_are_unchanged() {
        let mut report = Report::default();
        report.threads.push(ThreadReport::new(
            ThreadInfo::new(0, 1, 100, 7),
            Some("wörker-2".into()),
            ThreadEnd::Exited,
        ));
        let text = render(&report);
        assert!(
            text.contains("    thread 7        wörker-2         "),
            "{text}"
        );
    }
}
