//! [`Report`]: the session's accounting — per thread and lane, `written = persisted + spilled +
//! dropped + discarded` (+ `after_end`), the shared fallback ring's ([`FallbackReport`]) — and
//! what the summary prints.
//!
//! Lanes are read by kind: [`ThreadReport::lane`], [`ThreadReport::lanes`], [`Report::total`].
//! The structs are `#[non_exhaustive]`: the drain makes them, callers read them.

use crate::sink::{SinkOutput, ThreadInfo};
use ada_backpressure::{LanePolicies, LaneState, LossCounters};
use ada_registry::{AgentStatsSnapshot, LaneKind};
use std::time::Duration;

/// One lane of one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaneReport {
    /// Events the thread recorded (from its lane counter in the segment).
    pub written: u64,
    /// Events taken from the lane's own rings and handed to the sink (events that came
    /// through the shared fallback ring are [`via_fallback`](Self::via_fallback)).
    pub persisted: u64,
    /// Events the thread sent to the shared fallback ring because its lane's pool was exhausted
    /// (spill before drop; from its lane counter). Not lost: the drain delivers them from the
    /// fallback ring (counted in [`via_fallback`](Self::via_fallback), or in
    /// [`FallbackReport`] if the ring lost them).
    pub spilled: u64,
    /// Events of this thread the drain handed to the sink from the shared fallback ring: its
    /// spilled events and those it wrote before it had a slot (index lane only). Not part of
    /// this lane's `written` balance: a thread counts what it spills in `spilled`, and does not
    /// count at all what it wrote before it registered.
    pub via_fallback: u64,
    /// Events the thread lost: the sum of [`lost`](Self::lost) (counted by the thread).
    pub dropped: u64,
    /// Of `dropped`, by cause (overwritten under drop-oldest, refused under drop-newest, too
    /// large for a ring; `no_slot` is always 0 here: a thread refused a slot has no lane, its
    /// events are in [`Report::unregistered_by_lane`]).
    pub lost: LossCounters,
    /// `EventsLost` announcements in the lane's stream (each reached the sink as
    /// [`crate::Sink::events_lost`]): the thread's loss markers, and one per cause the drain
    /// announced at the thread's end (see [`announced_at_end`](Self::announced_at_end)).
    pub markers: u64,
    /// The events announced lost in the stream ([`crate::Sink::events_lost`]): those the
    /// thread's markers announce, plus [`announced_at_end`](Self::announced_at_end). Equal to
    /// `dropped` for every thread the drain saw end (and for threads still running at the end
    /// of the session).
    pub marked_lost: u64,
    /// Of `marked_lost`: losses whose marker the thread could not place before it ended (no
    /// room: drop-newest refusing to the end, for instance), announced by the drain at the end
    /// of the thread's stream, where they happened, with their times unknown.
    pub announced_at_end: u64,
    /// `marked_lost` by cause (the thread's markers and the drain's announcements).
    pub(crate) marked_by_cause: LossCounters,
    /// Timestamp of the last record or loss announced for this lane (where an end-of-thread
    /// announcement is placed).
    pub(crate) last_ns: u64,
    /// The lane's backpressure state when the drain last read it (`None`: not read, or a byte
    /// no state has, i.e. a rewritten segment).
    pub state: Option<LaneState>,
    /// Times the lane entered each state (NORMAL, PRESSURE, DROPPING, RECOVERY).
    pub entries: [u64; 4],
    /// Events discarded by selective persistence: detail events outside every window (always 0
    /// on the index lane and with [`crate::Persistence::All`]).
    pub discarded: u64,
    /// Records the drain rejected as corrupt (written by the thread, not persisted).
    pub corrupt: u64,
    /// Events a thread still running at the end recorded after its rings were last drained
    /// (not in the trace).
    pub after_end: u64,
    /// Bytes copied out of the rings.
    pub bytes: u64,
    /// The thread's counter lagged what it had committed when its process was killed; this
    /// many events were added to `written` from what its rings held (at most one per lane).
    pub reconciled: u64,
    /// Persistence windows of this lane (detail lane, [`crate::Persistence::Windows`]).
    pub windows: u64,
    /// Of `discarded`: events a window's duration pre-roll wanted that the per-thread budget
    /// could not hold (the sum of the windows' `over_budget_before`; raise the budget, or
    /// shorten the pre-roll).
    pub over_budget: u64,
    /// Events of a thread this controller inherited (it was registered when an attached
    /// controller took the drain over: [`crate::ControllerBuilder::attach`]) that are not in
    /// this trace because its counters had counted them before the take-over: received by the
    /// previous controller (and in its trace, or lost with it), or — for a thread still
    /// running at the end — at most this many of its `after_end` events, its earliest. 0 for
    /// every other thread.
    pub before_attach: u64,
    /// For an inherited thread: what its counters said when the take-over happened, written
    /// less lost — the most `before_attach` may be for the lane to balance. 0 for every other
    /// thread.
    pub inherited: u64,
    /// Ring-format bytes of the records handed to the sink and taken by it.
    pub persisted_bytes: u64,
    /// Ring-format bytes of the records discarded by selective persistence (known once the
    /// thread's lane was drained for the last time).
    pub discarded_bytes: u64,
    /// Ring-format bytes of the detail records that went through the window tracker.
    pub(crate) tracked_bytes: u64,
    /// Of `tracked_bytes`, those of records the tracker handed on (taken by the sink or not).
    pub(crate) emitted_bytes: u64,
}

impl LaneReport {
    /// `written == persisted + spilled + dropped + discarded + after_end + before_attach`, with
    /// `before_attach <= inherited` (corrupt records break the balance, and are reported).
    pub fn is_balanced(&self) -> bool {
        self.before_attach <= self.inherited
            && self
                .persisted
                .checked_add(self.spilled)
                .and_then(|s| s.checked_add(self.dropped))
                .and_then(|s| s.checked_add(self.discarded))
                .and_then(|s| s.checked_add(self.after_end))
                .and_then(|s| s.checked_add(self.before_attach))
                == Some(self.written)
    }

    /// `persisted + spilled + dropped + discarded` (saturating: `spilled` and `dropped` come from
    /// counters in shared memory that another process can set to anything).
    pub(crate) fn taken(&self) -> u64 {
        self.persisted
            .saturating_add(self.spilled)
            .saturating_add(self.dropped)
            .saturating_add(self.discarded)
    }

    pub(crate) fn add(&mut self, other: &LaneReport) {
        self.written = self.written.saturating_add(other.written);
        self.persisted = self.persisted.saturating_add(other.persisted);
        self.spilled = self.spilled.saturating_add(other.spilled);
        self.via_fallback = self.via_fallback.saturating_add(other.via_fallback);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.lost.merge(&other.lost);
        self.markers = self.markers.saturating_add(other.markers);
        self.marked_lost = self.marked_lost.saturating_add(other.marked_lost);
        self.announced_at_end = self.announced_at_end.saturating_add(other.announced_at_end);
        self.marked_by_cause.merge(&other.marked_by_cause);
        self.last_ns = self.last_ns.max(other.last_ns);
        for (a, b) in self.entries.iter_mut().zip(other.entries) {
            *a = a.saturating_add(b);
        }
        self.discarded = self.discarded.saturating_add(other.discarded);
        self.corrupt = self.corrupt.saturating_add(other.corrupt);
        self.after_end = self.after_end.saturating_add(other.after_end);
        self.before_attach = self.before_attach.saturating_add(other.before_attach);
        self.inherited = self.inherited.saturating_add(other.inherited);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.reconciled = self.reconciled.saturating_add(other.reconciled);
        self.over_budget = self.over_budget.saturating_add(other.over_budget);
        self.windows = self.windows.saturating_add(other.windows);
        self.persisted_bytes = self.persisted_bytes.saturating_add(other.persisted_bytes);
        self.discarded_bytes = self.discarded_bytes.saturating_add(other.discarded_bytes);
        self.tracked_bytes = self.tracked_bytes.saturating_add(other.tracked_bytes);
        self.emitted_bytes = self.emitted_bytes.saturating_add(other.emitted_bytes);
    }
}

/// How a thread's registration ended, as the drain saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadEnd {
    /// It unregistered (thread exit) and its slot was drained and freed.
    Exited,
    /// Its process ended while the thread was still registered (killed, or it exited while
    /// the thread ran, which skips thread-exit destructors); everything committed was drained.
    ProcessDied,
    /// Still registered when the session ended (its process outlived the trace).
    StillRunning,
    /// Its slot's owner fields (generation, pid or thread id) were rewritten while it was
    /// registered: the segment was tampered with. Everything drained up to then is reported
    /// under this thread; what the slot held afterwards under a new one.
    Displaced,
    /// It never held a registry slot while the drain knew it: every event of it came through
    /// the shared fallback ring (written before the registry was ready, or refused a slot). Its
    /// end is not known; its [`ThreadInfo::slot`] is [`ThreadInfo::NO_SLOT`].
    NoSlot,
}

/// One traced thread.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadReport {
    /// Who.
    pub info: ThreadInfo,
    /// Thread name (`/proc`), read only for a verified thread, if it could be read.
    pub name: Option<String>,
    /// Per lane, indexed by `LaneKind as usize` (read them with [`ThreadReport::lane`]).
    pub(crate) lanes: [LaneReport; 2],
    /// How it ended.
    pub end: ThreadEnd,
    /// Its claimed identity was refuted (the pid is not a traced process, or the ids are
    /// impossible; counted in [`Corruption::unverified_threads`]). An unverified thread that is
    /// not refuted was merely gone before the drain could check it.
    pub refuted: bool,
}

impl ThreadReport {
    /// A thread with nothing recorded on either lane (for tests of code that renders reports;
    /// the drain makes the real ones).
    pub fn new(info: ThreadInfo, name: Option<String>, end: ThreadEnd) -> Self {
        ThreadReport {
            info,
            name,
            lanes: [LaneReport::default(); 2],
            end,
            refuted: false,
        }
    }

    /// With lane `kind` set to `lane` (for tests of code that renders reports).
    pub fn with_lane(mut self, kind: LaneKind, lane: LaneReport) -> Self {
        self.lanes[kind as usize] = lane;
        self
    }

    /// The lane of `kind`.
    pub fn lane(&self, kind: LaneKind) -> &LaneReport {
        &self.lanes[kind as usize]
    }

    /// Both lanes, index first.
    pub fn lanes(&self) -> impl Iterator<Item = (LaneKind, &LaneReport)> {
        LaneKind::ALL.into_iter().map(|k| (k, self.lane(k)))
    }
}

/// What the drain found wrong in the segment (a misbehaving or corrupted peer). All zero in a
/// healthy session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corruption {
    /// Ring indices out of range, `write_pos` beyond a ring, inconsistent queues, lost rings.
    pub ring_errors: u64,
    /// Chunks whose records failed validation (the rest of such a chunk is skipped).
    pub bad_chunks: u64,
    /// Threads whose claimed identity was refuted: the pid is not a process the controller
    /// trusts (see [`crate::ProcessTrust`]), or the ids are impossible. They were drained and
    /// are flagged unverified.
    pub unverified_threads: u64,
    /// Threads whose slot owner fields (generation, pid, thread id) changed while registered
    /// (reported as [`ThreadEnd::Displaced`]).
    pub displaced_threads: u64,
    /// Symbol table entries skipped as damaged (unknown state, name out of bounds).
    pub symbol_entries: u64,
    /// The symbol table's counters were inconsistent: its `refused` count was not believed
    /// ([`Report::symbols_refused`] is then 0), or its claim counter went backwards.
    pub symbol_counters: u64,
    /// Lanes whose loss counters contradict each other (the thread's total of lost events is
    /// not the sum of its causes); the causes are reported.
    pub lane_counters: u64,
    /// Records of the shared fallback ring that were whole (their check hash matched) but not
    /// valid: a lane other than the index lane, or an index record that does not validate
    /// (unknown kind, a loss marker that does not parse). Also in [`FallbackReport::corrupt`].
    pub fallback_records: u64,
}

impl Corruption {
    /// The sum of every count: 0 in a healthy session.
    pub fn total(&self) -> u64 {
        self.ring_errors
            .saturating_add(self.bad_chunks)
            .saturating_add(self.unverified_threads)
            .saturating_add(self.displaced_threads)
            .saturating_add(self.symbol_entries)
            .saturating_add(self.symbol_counters)
            .saturating_add(self.lane_counters)
            .saturating_add(self.fallback_records)
    }
}

/// Threads retired beyond [`crate::drain::DETAILED_THREADS`]: counted and summed rather than
/// kept one by one, so the controller's memory does not grow with every thread ever seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FoldedThreads {
    /// How many threads were folded.
    pub threads: u64,
    /// How many of them were not verified.
    pub unverified: u64,
    /// Their lanes, summed (indexed by `LaneKind as usize`: read with [`FoldedThreads::lane`]).
    pub(crate) lanes: [LaneReport; 2],
}

impl FoldedThreads {
    /// The summed lane of `kind`.
    pub fn lane(&self, kind: LaneKind) -> &LaneReport {
        &self.lanes[kind as usize]
    }

    /// Both summed lanes, index first.
    pub fn lanes(&self) -> impl Iterator<Item = (LaneKind, &LaneReport)> {
        LaneKind::ALL.into_iter().map(|k| (k, self.lane(k)))
    }

    pub(crate) fn add(&mut self, t: &ThreadReport) {
        self.threads += 1;
        self.unverified += u64::from(!t.info.verified);
        for (kind, l) in t.lanes() {
            self.lanes[kind as usize].add(l);
        }
    }
}

/// The shared fallback ring's accounting (all zero when the segment has none, or nothing went
/// through it).
///
/// `taken = delivered + markers + corrupt` (+ records a failing sink could not take, counted in
/// [`Report::sink_failures`]); `delivered` is the sum of every thread's
/// [`LaneReport::via_fallback`]. What producers could not store is `refused` and `late`; what
/// the drain could not take is `torn` and `skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackReport {
    /// Records the ring holds (0: the segment has no fallback ring).
    pub capacity: u32,
    /// Whole records the drain took out of the ring.
    pub taken: u64,
    /// Of `taken`, events handed to the sink.
    pub delivered: u64,
    /// Of `taken`, loss markers (announced like a ring's, see [`crate::Sink::events_lost`]).
    pub markers: u64,
    /// Of `taken`, records that did not validate (also in [`Corruption::fallback_records`]).
    pub corrupt: u64,
    /// Records producers could not store: the ring was full, or stayed contended (the ring
    /// header's counter, written by producers).
    pub refused: u64,
    /// Records whose producer found its slot abandoned by the drain before it committed them
    /// (the ring header's counter).
    pub late: u64,
    /// Committed records whose fields did not check out (torn by a late writer, or damaged).
    pub torn: u64,
    /// Slots the drain abandoned after they blocked it for its abandon-pass limit (a producer
    /// that stalled or died mid-write, or a damaged stamp).
    pub skipped: u64,
    /// Threads known only from the fallback ring (they never held a slot while the drain knew
    /// them: [`ThreadEnd::NoSlot`]).
    pub threads: u64,
    /// Records (reserved or committed) still in the ring after the final drain: not in the
    /// trace. 0 unless producers kept pushing past the end, or the ring's words were damaged.
    pub left: u64,
}

impl FallbackReport {
    /// Whether anything went through the ring or was lost on the way.
    pub fn is_used(&self) -> bool {
        self.taken != 0
            || self.refused != 0
            || self.late != 0
            || self.torn != 0
            || self.skipped != 0
            || self.left != 0
    }
}

/// When the registry became ready and then steady (see the [warm-up](crate::Controller) rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// The epoch this controller published `registry_ready` under (1 for a new segment; one
    /// more than the previous controller's for a continuation). 0: ready was never published.
    pub epoch: u32,
    /// When ready was published (warm-up mode), on the controller's clock (`CLOCK_MONOTONIC`
    /// unless a test injected another).
    pub ready_at_ns: u64,
    /// When the mode became steady, on the same clock (`None`: the session ended in warm-up).
    pub steady_at_ns: Option<u64>,
    /// The configured warm-up period: how long the drain had to be healthy.
    pub warm_up: Duration,
    /// Times an unhealthy drain loop iteration started the warm-up period again.
    pub warm_up_restarts: u64,
}

impl Readiness {
    /// The time from ready to steady, if steady was reached.
    pub fn ready_to_steady(&self) -> Option<Duration> {
        self.steady_at_ns
            .map(|s| Duration::from_nanos(s.saturating_sub(self.ready_at_ns)))
    }
}

/// A session continued by an attached controller ([`crate::ControllerBuilder::attach`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Continuation {
    /// The segment (`ADA_SHM`) whose session this continues.
    pub segment: String,
    /// The epoch this controller published (the previous controller's was lower).
    pub epoch: u32,
    /// The controller that died: the drain claim's holder when this one attached, else the
    /// segment's creator (from the control block: claimed by whoever wrote it).
    pub previous_controller_pid: u32,
}

/// The session's final accounting.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Threads reported one by one: the first [`crate::drain::DETAILED_THREADS`] to end (in
    /// the order they ended), then those still running at the end, up to that bound.
    pub threads: Vec<ThreadReport>,
    /// The threads beyond that bound, summed.
    pub folded: FoldedThreads,
    /// Threads that could not be verified because they (or their process) were gone before
    /// the drain first looked (short-lived threads): flagged unverified, not corruption.
    pub unverifiable_threads: u64,
    /// Events from threads that could not get a slot (registry full, thread exiting).
    pub unregistered_drops: u64,
    /// Of `unregistered_drops`, per lane (`[index, detail]`): the `no_slot` cause of each
    /// lane's loss.
    pub unregistered_by_lane: [u64; 2],
    /// The drop policy each lane ran under (the segment's, as every agent applied it).
    pub drop_policies: LanePolicies,
    /// The backpressure stability period in force (ns): how long a lane's free rings stayed
    /// above the high watermark before RECOVERY became NORMAL.
    pub stability_ns: u64,
    /// Symbol registrations refused because the symbol table was full (0 when the table's
    /// counters were inconsistent: see [`Corruption::symbol_counters`]).
    pub symbols_refused: u64,
    /// Symbols received.
    pub symbols: u64,
    /// What the drain found wrong in the segment.
    pub corruption: Corruption,
    /// The shared fallback ring: what went through it and what it lost.
    pub fallback: FallbackReport,
    /// Records the sink failed to take.
    pub sink_failures: u64,
    /// The last error the sink returned during the drain, if any.
    pub sink_error: Option<String>,
    /// The traced command's exit code (128 + signal when killed), if known.
    pub exit_code: Option<i32>,
    /// Wall time from the start of draining to the end of the final drain.
    pub duration: Duration,
    /// Shared memory each registered thread costs at this session's ring sizes.
    pub memory_per_thread: u64,
    /// Drain passes made.
    pub passes: u64,
    /// The longest drain pass (a thread whose rings fill faster than this drops events).
    pub longest_pass: Duration,
    /// What the sink produced (set after [`crate::Sink::finish`]).
    pub output: Option<SinkOutput>,
    /// When the registry became ready and steady.
    pub readiness: Readiness,
    /// The agents' own statistics from the control block at the end (mode entries,
    /// transitions, fallback events, re-attaches): written by the traced processes, so
    /// information only, never trusted.
    pub agent_stats: AgentStatsSnapshot,
    /// `Some` when this session continues one whose controller died.
    pub continuation: Option<Continuation>,
    /// The clock agents stamped events with and the calibration that converted them to the
    /// trace's `CLOCK_MONOTONIC` nanoseconds.
    pub clock: crate::stamps::SessionClock,
}

impl Report {
    /// Adds the report of another worker of the same drain (made by the drainer of a disjoint
    /// set of slots: see [`crate::Drainer::workers`]) to this one, so the totals are the sums
    /// over the workers and every lane keeps its own balance.
    ///
    /// Threads are listed in session-number order, at most `detailed` of them (the rest are
    /// folded, as a single drain folds the threads beyond its bound). What every worker read
    /// of the same segment-wide thing (the symbol table, the segment's counters, the fallback
    /// ring's accounting, which the workers share) is taken once: `other`'s, which finished
    /// later. The sink's error is kept if either has one. The session clock's calibration
    /// ([`Report::clock`]) stays this report's; the drain loop replaces it with the samples it
    /// handed every worker.
    pub(crate) fn merge_worker(&mut self, other: Report, detailed: usize) {
        self.threads.extend(other.threads);
        self.threads.sort_by_key(|t| t.info.number);
        if self.threads.len() > detailed {
            for t in self.threads.drain(detailed..) {
                self.folded.add(&t);
            }
        }
        let f = &mut self.folded;
        f.threads += other.folded.threads;
        f.unverified += other.folded.unverified;
        for (a, b) in f.lanes.iter_mut().zip(&other.folded.lanes) {
            a.add(b);
        }
        self.unverifiable_threads += other.unverifiable_threads;
        let (c, o) = (&mut self.corruption, &other.corruption);
        c.ring_errors += o.ring_errors;
        c.bad_chunks += o.bad_chunks;
        c.unverified_threads += o.unverified_threads;
        c.displaced_threads += o.displaced_threads;
        c.lane_counters += o.lane_counters;
        c.fallback_records += o.fallback_records;
        // Every worker reads the whole symbol table with a cursor of its own: the same damage.
        c.symbol_entries = c.symbol_entries.max(o.symbol_entries);
        c.symbol_counters = c.symbol_counters.max(o.symbol_counters);
        self.symbols = self.symbols.max(other.symbols);
        self.symbols_refused = other.symbols_refused;
        self.unregistered_drops = other.unregistered_drops;
        self.unregistered_by_lane = other.unregistered_by_lane;
        (self.drop_policies, self.stability_ns) = (other.drop_policies, other.stability_ns);
        self.fallback = other.fallback;
        self.sink_failures += other.sink_failures;
        if other.sink_error.is_some() {
            self.sink_error = other.sink_error;
        }
        self.passes = self.passes.max(other.passes);
        self.memory_per_thread = other.memory_per_thread;
    }

    /// The lane of `kind`, summed over every thread (folded ones included).
    pub fn total(&self, kind: LaneKind) -> LaneReport {
        let mut t = *self.folded.lane(kind);
        for th in &self.threads {
            t.add(th.lane(kind));
        }
        t
    }

    /// Threads seen: listed plus folded.
    pub fn thread_count(&self) -> u64 {
        self.threads.len() as u64 + self.folded.threads
    }

    /// Whether every lane of every thread (and the folded sums) balances and nothing was lost
    /// outside the counters.
    pub fn is_balanced(&self) -> bool {
        self.threads
            .iter()
            .all(|t| t.lanes().all(|(_, l)| l.is_balanced()))
            && self.folded.lanes().all(|(_, l)| l.is_balanced())
            && self.sink_failures == 0
            && self.output.as_ref().is_none_or(|o| o.unwritten == 0)
    }

    /// Events persisted over all threads and lanes: taken from their rings, or delivered from
    /// the shared fallback ring.
    pub fn persisted(&self) -> u64 {
        LaneKind::ALL.iter().fold(0u64, |a, &k| {
            let t = self.total(k);
            a.saturating_add(t.persisted).saturating_add(t.via_fallback)
        })
    }

    /// Events dropped (ring-pool policy and threads without a slot).
    pub fn dropped(&self) -> u64 {
        LaneKind::ALL
            .iter()
            .fold(0u64, |a, &k| a.saturating_add(self.total(k).dropped))
            .saturating_add(self.unregistered_drops)
    }
}
