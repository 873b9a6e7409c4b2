//! [`Drainer`]: one drain pass over every registered thread, and the final drain.
//!
//! A pass walks the registry's live slots in index order (round-robin: every thread gets one
//! turn per pass, taking every ring it submitted and what it committed to its active ring),
//! copies the bytes out of the segment (untrusted: `ada-ringpool` bounds-checks ring indices
//! and positions), validates every record, hands it to the [`Sink`], resets the rings and
//! returns them to the thread's free queue. A slot whose thread exited (or whose process died)
//! is drained one last time, its final counters are read, and it is freed for reuse.
//!
//! **Backpressure response.** Lanes whose thread published a backpressure state other than
//! NORMAL (PRESSURE, DROPPING, RECOVERY: see `ada-backpressure`) are drained *first* in a
//! pass, before the round-robin (which then skips those lanes), and *again at its end* (the
//! states are read afresh then, so a lane that fell behind during the pass is caught too): a
//! lane falling behind waits for no other thread's turn, and at most two turns per lane per
//! pass keep a pass bounded. The extra turns only drain (they look up the slot's account,
//! which is idempotent): retiring of exited slots and reclaiming stay with the round-robin
//! turn, once per slot. [`Drainer::prioritise`] turns this
//! off (plain round-robin) for comparison.
//!
//! Symbols are read from the segment's table just before the records of each chunk are
//! handed on: a record is copied after the agent published its symbol, so the name is always
//! known first.
//!
//! Each chunk (one ring's worth of one lane) reaches the sink as [`Sink::chunk_begin`], its
//! valid records, [`Sink::chunk_end`] — see [`Sink`] for the whole call order.
//!
//! **Selective persistence.** With [`Persistence::Windows`] (the default) each thread's
//! detail records go through a [`WindowTracker`] of its own (see [`crate::Persistence`]):
//! records inside windows reach the sink, the others are held (owned copies, within the
//! tracker's budget) as possible pre-roll and finally counted as `discarded` in the thread's
//! detail [`LaneReport`], so `written = persisted + spilled + dropped + discarded` (+
//! `after_end`) still holds per lane. Closed windows are announced with [`Sink::window`]. Such a drain does not
//! copy a thread's active detail ring on every pass: it takes the submitted rings, and the
//! active one only while the lane's "marked" flag is set (a mark is in it) or a window is open,
//! when the thread exits and in the final drain. A pass whose thread has an open window and
//! whose active ring was taken closes the window once the drain's clock (`CLOCK_MONOTONIC`,
//! read before the lane is drained, less [`CLOSE_GRACE_NS`]) is past its post-roll.
//! [`Persistence::All`] persists every detail record. Active rings that no window asks for
//! (the index lane's, and the detail lane's under [`Persistence::All`]) are copied at most
//! every [`LIVE_COPY_EVERY_NS`] while their thread runs, not on every pass.
//!
//! **Identity and accounting.** The drain keeps one account per slot, made when it first sees a
//! (slot, generation): the thread gets the next session thread number and its claimed pid and
//! OS thread id are checked (see [`ProcessTrust`]). If the slot's owner fields change while the
//! account is open, the segment was tampered with: the account ends as
//! [`ThreadEnd::Displaced`] and a new one starts, so no account is ever orphaned and every
//! record handed to the sink is counted under the thread the sink was told. Ended threads are
//! kept one by one up to [`DETAILED_THREADS`] and folded into [`Report::folded`] beyond it.
//!
//! **The shared fallback ring.** Events that had no thread ring to go to (written before the
//! registry was ready or before the thread registered, by a thread refused a slot, or spilled
//! when a thread's pool was exhausted) wait in the segment's fallback ring. The drain takes its
//! one consumer from the claim and empties it at the **start of every pass**, again just before
//! a pass retires an exited thread (so what that thread pushed before it unregistered is still
//! attributed to it), and in the final drain after the lanes' last look (so records pushed up
//! to the end are kept). Each record is checked by the ring (its hash) and then validated like
//! an index record taken from a ring (the same code: an unknown kind or a malformed loss
//! marker is counted in [`FallbackReport::corrupt`] and [`Corruption::fallback_records`];
//! a record of the detail lane, which never goes there, likewise), and handed to the sink
//! exactly once, in runs of one thread's records wrapped in a chunk pair with
//! [`ChunkInfo::from_fallback`] set.
//!
//! A record is attributed by its claimed (pid, OS thread id): to the thread a slot the drain
//! currently knows holds (same [`ThreadInfo`], same session number), else to a **fallback-only
//! thread** keyed by that pair, numbered from the same counter, verified by the same
//! [`ProcessTrust`] rules, and announced with [`ThreadInfo::NO_SLOT`]. When such a thread
//! registers later, its slot's account takes over its number and what was counted for it, so
//! it stays one thread with one number. At most [`FALLBACK_THREADS`] fallback-only threads are
//! held at once; beyond that the one seen least recently is ended ([`ThreadEnd::NoSlot`]) and
//! kept or folded like any ended thread (should it push again, it becomes a new thread). A
//! record of a thread whose slot was already retired (possible only when a stalled producer
//! held the ring's head past the retirement) likewise becomes a fallback-only thread.
//!
//! The accounting stays exact per lane: `written = persisted + spilled + dropped + discarded`
//! (+ `after_end`), where `spilled` is the thread's own count of events it sent to the fallback
//! ring; what the drain delivered for the thread from that ring is
//! [`LaneReport::via_fallback`], and the ring's own losses are in [`Report::fallback`].
//!
//! A `Drainer` holds the segment's [`DrainClaim`]: it is the segment's only drain, and its
//! per-lane [`LaneDrain`]s are made once per slot from the claim's lane ends. When a slot gets
//! a new owner (a new generation), the drain re-reads that slot's queue positions, which the
//! new owner reset when it registered.
//!
//! **Several workers.** [`Drainer::workers`] makes `W` drainers of one claim: drainer `w`
//! drains the slots with `slot % W == w` (a static, disjoint split; with `W = 1` it is the
//! single drain above). Each keeps its own accounts, window trackers, corruption counts and
//! finished threads. What they share sits behind one lock, taken when an account is opened,
//! when a slot's drain handles are first made and to read the fallback ring — never per
//! record: the claim, the session thread numbers (unique across workers), the fallback ring's
//! consumer and accounting, the fallback-only threads, and one **mailbox** per worker. A worker
//! reads the fallback ring at the start of its pass and before it retires an exited thread
//! (with several workers, before every retirement): records of a thread whose slot another
//! worker drains go to that worker's mailbox, in ring order, and that worker delivers them
//! (its mailbox first, then what it read itself) into its own sink, under its own account of
//! the thread — so what a thread pushed before it unregistered is still its own, and a
//! thread's fallback records reach the same sink as its ring records. Records of fallback-only
//! threads are delivered by the worker that read them (then it flushes its sink, so another
//! worker that takes such a thread over when it registers writes after them). The final read
//! of the fallback ring happens once, after every worker's final look at its lanes; then each
//! worker delivers its mailbox and makes its report, and the reports are merged.

use crate::identity::{Verdict, Verifier};
use crate::persist::{HeldRecord, Persistence, mark_of, ring_len};
use crate::report::{
    Corruption, FallbackReport, FoldedThreads, LaneReport, Report, ThreadEnd, ThreadReport,
};
use crate::sink::{
    ChunkInfo, LossInfo, ProcessTrust, Record, Sink, SinkError, ThreadInfo, WindowInfo,
};
use crate::stamps::StampConverter;
use ada_backpressure::{LaneState, LossCause};
use ada_persist::{Emit, Mark, PreRoll, WindowReport, WindowTracker};
use ada_registry::fallback::FallbackConsumer;
use ada_registry::{
    DrainClaim, FallbackRecord, LaneKind, Registry, RegistryError, SlotOwner, SlotState, SlotView,
    SymbolCursor,
};
use ada_ringpool::{
    DrainStats, EventKind, INDEX_RECORD_SIZE, IndexRecord, LaneDrain, LossMarker, RecordError,
    RingChunk, SegmentStore, index_records,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Threads kept one by one in the [`Report`] (and so in the manifest): the first this many to
/// end. Later ones are folded into [`Report::folded`] (a count and summed lanes), so the
/// controller's memory stays bounded however many threads a program starts (a few hundred
/// bytes per detailed thread: about 1 MiB at this bound).
pub const DETAILED_THREADS: usize = 4096;

/// Fallback-only threads (see the [module docs](self)) the drainer holds at once; beyond this
/// the one seen least recently is ended and kept or folded like any ended thread.
pub const FALLBACK_THREADS: usize = 4096;

/// How far behind the drain's clock a window's post-roll must end before a pass closes it: a
/// thread may stamp a record and commit it a little later (preempted in between), and a record
/// stamped within the post-roll must still find its window open.
pub const CLOSE_GRACE_NS: u64 = 2_000_000;

/// The least time between two copies of a running thread's active ring that no window asks
/// for (the index lane, and the detail lane under [`Persistence::All`]) in a session's drain
/// loop (see [`Drainer::live_copy_every`]): its records reach the
/// sink this long after they were written at most, unless the ring fills first (a full ring is
/// submitted and taken at the next pass). Copying on every pass would have the drain read the
/// very cache lines the thread is writing: each copy costs the thread misses on its next
/// records, which under a drain that keeps up is most of a record's cost. An exiting thread and
/// the final drain are copied at once.
pub const LIVE_COPY_EVERY_NS: u64 = 1_000_000;

/// Per-slot drain handles (their copy buffers are reused across passes and slot owners).
struct SlotDrains<'r> {
    lanes: [LaneDrain<'r, SegmentStore<'r>>; 2],
    /// The slot generation whose queue positions the lanes hold.
    generation: u32,
}

/// The thread a slot holds, as the drain first saw it.
struct Account {
    report: ThreadReport,
    /// The owner fields it was first seen with (generation, pid, thread id): any change while
    /// it is registered is tampering.
    owner: (u32, u32, u64),
    /// Its process was found dead (the slot was marked by the controller).
    died: bool,
    /// Its detail lane's window tracker (`None` with [`Persistence::All`]).
    tracker: Option<WindowTracker<HeldRecord>>,
    /// When a pass last took each lane's active ring without a window asking for it (drain
    /// clock; see [`LIVE_COPY_EVERY_NS`]); `None` until the first.
    live_copied_ns: [Option<u64>; 2],
}

/// Whose a run of fallback records is: the thread a slot's account holds, or a fallback-only
/// thread keyed by (pid, tid).
#[derive(Clone, Copy)]
enum FallbackOwner {
    Slot(u32),
    Orphan((u32, u64)),
}

/// A thread known only from the fallback ring.
struct FallbackThread {
    report: ThreadReport,
    /// The pass that last delivered a record of it (the least recent is ended first).
    last_pass: u64,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassStats {
    /// Records handed to the sink (from the threads' rings and the fallback ring).
    pub records: u64,
    /// Of `records`, those taken from the shared fallback ring.
    pub fallback_records: u64,
    /// Bytes copied out of rings.
    pub bytes: u64,
    /// Slots seen `ACTIVE` or `EXITED`.
    pub live_slots: u32,
    /// Slots freed after their thread exited.
    pub reclaimed: u32,
    /// Rings the threads submitted (full, or handed over at exit) that this pass took; active
    /// rings it copied are not counted.
    pub submitted_rings: u32,
}

impl PassStats {
    /// Adds `other` into `self` (several workers' passes make one).
    pub fn add(&mut self, other: &PassStats) {
        self.records += other.records;
        self.fallback_records += other.fallback_records;
        self.bytes += other.bytes;
        self.live_slots += other.live_slots;
        self.reclaimed += other.reclaimed;
        self.submitted_rings = self.submitted_rings.saturating_add(other.submitted_rings);
    }
}

/// Drains one registry into one sink.
///
/// Its memory is bounded by the registry's capacity and [`DETAILED_THREADS`], not by the
/// number of threads ever seen: one account per slot, and finished threads beyond the bound
/// folded into totals.
pub struct Drainer<'r, S: Sink> {
    registry: &'r Registry,
    /// What the workers of one drain share (with one worker, this drainer alone).
    hub: Arc<Mutex<Hub<'r>>>,
    /// Which slots this drainer drains.
    part: Part,
    sink: S,
    drains: Vec<Option<SlotDrains<'r>>>,
    /// The thread each slot holds, indexed by slot.
    accounts: Vec<Option<Account>>,
    finished: Vec<ThreadReport>,
    folded: FoldedThreads,
    detailed: usize,
    verifier: Verifier,
    unverifiable: u64,
    symbols: SymbolCursor,
    symbol_count: u64,
    corruption: Corruption,
    sink_failures: u64,
    sink_error: Option<String>,
    passes: u64,
    unflushed: bool,
    last_flush: std::time::Instant,
    persistence: Persistence,
    /// The final drain: every active ring is taken.
    final_drain: bool,
    /// Windows closed and not yet announced to the sink.
    closed: Vec<WindowReport>,
    /// Lanes under backpressure are drained first and last in a pass.
    prioritise: bool,
    /// See [`Drainer::live_copy_every`].
    live_copy_every_ns: u64,
    /// The lanes a pass drained first (scratch space, kept to reuse its allocation).
    first: Vec<(u32, u32, [bool; 2])>,
    /// (pid, OS thread id) → slot of the accounts open now (scratch space, rebuilt per batch).
    slot_ids: HashMap<(u32, u64), u32>,
    /// Converts the agents' stamps to `CLOCK_MONOTONIC` ns (see [`crate::stamps`]).
    stamps: StampConverter,
}

/// Which registry slots a drainer drains: those with `slot % workers == worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    worker: u32,
    workers: u32,
}

impl Part {
    #[inline]
    fn owns(self, slot: u32) -> bool {
        self.workers <= 1 || slot % self.workers == self.worker
    }

    fn worker_of(self, slot: u32) -> usize {
        (slot % self.workers.max(1)) as usize
    }
}

/// What the workers of one drain share, behind one lock (see the [module docs](self)): taken
/// when an account is opened, when a slot's drain handles are made, and to read the fallback
/// ring; never per record.
struct Hub<'r> {
    /// The drain claim: each lane's drain ends are taken from it on the slot's first visit.
    claim: DrainClaim<'r>,
    /// The last session thread number handed out (numbers are unique across workers).
    numbers: u32,
    /// The fallback ring's consumer (`None`: the segment has none).
    fallback: Option<FallbackConsumer<'r>>,
    /// The fallback ring's accounting.
    fallback_report: FallbackReport,
    /// Threads known only from the fallback ring, by claimed (pid, OS thread id).
    orphans: HashMap<(u32, u64), FallbackThread>,
    /// Records taken from the fallback ring by one drain of it (scratch space).
    fallback_batch: Vec<FallbackRecord>,
    /// Of `fallback_batch`, those the reading worker delivers itself (scratch space).
    local: Vec<FallbackRecord>,
    /// Per worker: fallback records of threads whose slots it drains, read from the ring by
    /// another worker, in ring order; the owner delivers them at its next look at the ring.
    mailboxes: Vec<Vec<FallbackRecord>>,
}

impl Hub<'_> {
    /// A new session thread number.
    fn next_number(&mut self) -> u32 {
        self.numbers = self.numbers.saturating_add(1).min(i32::MAX as u32);
        self.numbers
    }
}

/// The hub, locked (a worker that panicked while holding it left nothing half done that the
/// others could trip over: each field is consistent on its own).
fn lock<'a, 'r>(hub: &'a Mutex<Hub<'r>>) -> MutexGuard<'a, Hub<'r>> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often a busy drain calls [`Sink::flush`].
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

impl<S: Sink> std::fmt::Debug for Drainer<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drainer")
            .field("live_threads", &self.live_threads())
            .field("finished_threads", &self.finished.len())
            .field("folded_threads", &self.folded.threads)
            .field("passes", &self.passes)
            .finish()
    }
}

impl<'r, S: Sink> Drainer<'r, S> {
    /// A drainer of `registry` into `sink`. Fails with [`RegistryError::DrainClaimed`] if the
    /// segment already has a drain (in this process or another live one): two drains would
    /// take the same rings.
    ///
    /// It trusts no process until [`trust`](Drainer::trust) says which: every thread is
    /// drained, and flagged unverified.
    pub fn new(registry: &'r Registry, sink: S) -> Result<Self, RegistryError> {
        Ok(Self::with_claim(registry, registry.claim_drain()?, sink))
    }

    /// A drainer of `registry` into `sink`, under a drain claim already taken.
    ///
    /// # Panics
    /// If `claim` is another registry's.
    pub fn with_claim(registry: &'r Registry, claim: DrainClaim<'r>, sink: S) -> Self {
        let mut one = Self::workers(registry, claim, vec![sink]);
        one.pop().expect("one sink makes one drainer")
    }

    /// `sinks.len()` drainers of `registry` under one drain claim (at least one: an empty
    /// `sinks` makes none): drainer `w` of `W` drains the slots with `slot % W == w` into
    /// `sinks[w]`, so the drainers can make their passes on threads of their own. They share
    /// the session's thread numbers, the fallback ring and its fallback-only threads (see the
    /// [module docs](self)). The controller runs them in lock step
    /// ([`ControllerBuilder::drain_threads`](crate::ControllerBuilder::drain_threads)).
    ///
    /// # Panics
    /// If `claim` is another registry's.
    pub fn workers(registry: &'r Registry, mut claim: DrainClaim<'r>, sinks: Vec<S>) -> Vec<Self> {
        assert!(
            std::ptr::eq(claim.view().header(), registry.header()),
            "Drainer: the drain claim belongs to another registry"
        );
        let fallback = claim.fallback();
        let fallback_report = FallbackReport {
            capacity: fallback.as_ref().map_or(0, |c| c.ring().capacity()),
            ..FallbackReport::default()
        };
        let workers = u32::try_from(sinks.len()).unwrap_or(u32::MAX);
        let hub = Arc::new(Mutex::new(Hub {
            claim,
            numbers: 0,
            fallback,
            fallback_report,
            orphans: HashMap::new(),
            fallback_batch: Vec::new(),
            local: Vec::new(),
            mailboxes: (0..sinks.len()).map(|_| Vec::new()).collect(),
        }));
        let mut drainers = Vec::with_capacity(sinks.len());
        for (worker, sink) in (0..workers).zip(sinks) {
            drainers.push(Self::worker(
                registry,
                Arc::clone(&hub),
                Part { worker, workers },
                sink,
            ));
        }
        drainers
    }

    fn worker(registry: &'r Registry, hub: Arc<Mutex<Hub<'r>>>, part: Part, sink: S) -> Self {
        Drainer {
            registry,
            hub,
            part,
            sink,
            drains: (0..registry.capacity()).map(|_| None).collect(),
            accounts: (0..registry.capacity()).map(|_| None).collect(),
            finished: Vec::new(),
            folded: FoldedThreads::default(),
            detailed: DETAILED_THREADS,
            verifier: Verifier::nobody(),
            unverifiable: 0,
            symbols: SymbolCursor::default(),
            symbol_count: 0,
            corruption: Corruption::default(),
            sink_failures: 0,
            sink_error: None,
            passes: 0,
            unflushed: false,
            last_flush: std::time::Instant::now(),
            persistence: Persistence::default(),
            final_drain: false,
            closed: Vec::new(),
            prioritise: true,
            live_copy_every_ns: 0,
            first: Vec::new(),
            slot_ids: HashMap::new(),
            stamps: StampConverter::monotonic(),
        }
    }

    /// How the agents' stamps become `CLOCK_MONOTONIC` nanoseconds (default: the identity, a
    /// `CLOCK_MONOTONIC` session). A TSC session's converter (with its calibration and its
    /// source of further points) must match the segment's clock: every record, loss marker
    /// and fallback record the drain reads is converted before windows, marks and the sink
    /// see it. Each pass first takes a calibration point when one is due, and
    /// [`finish`](Drainer::finish) takes one before the final drain.
    pub fn set_stamps(&mut self, stamps: StampConverter) {
        self.stamps = stamps;
    }

    /// Adds a calibration point the drain loop took for every worker (a worker's converter has
    /// no source of its own: all of them convert with the same samples, each anchored at what
    /// it converted).
    pub(crate) fn add_stamp_point(&mut self, point: ada_shm::tsc::Point) {
        self.stamps.add(point);
    }

    /// The stamp converter (its calibration so far).
    pub fn stamps(&self) -> &StampConverter {
        &self.stamps
    }

    /// What the drain persists of the detail lane (default [`Persistence::Windows`] with the
    /// default settings). Applies to threads first seen from now on.
    pub fn persistence(&mut self, persistence: Persistence) {
        self.persistence = persistence;
    }

    /// Whether a pass drains the lanes under backpressure first and again at its end (the
    /// default: `true`). `false` makes every pass a plain round-robin, for comparison.
    pub fn prioritise(&mut self, on: bool) {
        self.prioritise = on;
    }

    /// The least time between two copies of a running thread's active ring that no window asks
    /// for. The default, zero, copies it on every pass (a drain whose caller paces the passes);
    /// a session's drain loop, which passes again at once while records come, uses
    /// [`LIVE_COPY_EVERY_NS`].
    pub fn live_copy_every(&mut self, every: std::time::Duration) {
        self.live_copy_every_ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
    }

    /// Which processes' threads to verify (see [`ProcessTrust`]); `session_pid` stands for
    /// [`ProcessTrust::SessionProcess`]. Applies to threads first seen from now on.
    pub fn trust(&mut self, trust: &ProcessTrust, session_pid: u32) {
        self.verifier = Verifier::new(trust, session_pid);
    }

    /// Keep at most `threads` finished threads one by one (default [`DETAILED_THREADS`]);
    /// later ones are folded into [`Report::folded`].
    pub fn detailed_threads(&mut self, threads: usize) {
        self.detailed = threads;
    }

    /// Threads the drainer holds state for right now: one per registered slot, the
    /// fallback-only threads (at most [`FALLBACK_THREADS`]), plus the finished threads it keeps
    /// one by one (at most [`DETAILED_THREADS`]). Folded threads cost nothing each.
    pub fn retained_threads(&self) -> usize {
        self.live_threads() + lock(&self.hub).orphans.len() + self.finished.len()
    }

    /// Sets how many consecutive passes a slot of the fallback ring may block the drain
    /// (reserved by a producer that has not committed yet) before it is abandoned (default
    /// [`ada_registry::fallback::ABANDON_PASSES`]). A drain that passes often should allow
    /// more, so that a producer preempted mid-write is not taken for a dead one.
    pub fn fallback_abandon_passes(&mut self, passes: u32) {
        if let Some(c) = lock(&self.hub).fallback.as_mut() {
            c.set_abandon_passes(passes);
        }
    }

    fn live_threads(&self) -> usize {
        self.accounts.iter().filter(|a| a.is_some()).count()
    }

    /// The sink.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Hands process `pid`'s newly seen modules to the sink ([`Sink::modules`]); call it
    /// between passes. The controller's module watcher does (see [`crate::modules`]).
    pub fn modules(&mut self, pid: u32, modules: &[crate::modules::Module]) {
        let r = self.sink.modules(pid, modules);
        self.note_sink(r);
    }

    /// The last error the sink returned, if any.
    pub fn sink_error(&self) -> Option<&str> {
        self.sink_error.as_deref()
    }

    /// Marks every `ACTIVE` slot of process `pid` as exited (the process died without
    /// unregistering); the next pass drains and frees them. Returns how many were marked.
    pub fn process_died(&mut self, pid: u32) -> u32 {
        self.note_died(pid);
        self.registry.view().mark_process_dead(pid)
    }

    /// The first half of [`process_died`](Drainer::process_died), for this drainer's slots
    /// only: notes on their accounts that the threads' process died (before any drainer marks
    /// the slots, which makes them `EXITED`).
    pub(crate) fn note_died(&mut self, pid: u32) {
        let part = self.part;
        for slot in self.registry.view().live_slots() {
            if part.owns(slot.index) && slot.state == SlotState::Active && slot.owner.pid == pid {
                self.account(slot.index, &slot.owner).died = true;
            }
        }
    }

    /// Ends the fallback-only threads that no longer exist (their `/proc/<pid>/task/<tid>` is
    /// gone) and delivered nothing in the last pass: their last records are taken from the
    /// fallback ring first (a thread that is gone pushes no more), then each ends
    /// ([`ThreadEnd::NoSlot`]) and is kept or folded like any ended thread, so a program that
    /// starts many short-lived threads without slots does not keep one account per thread
    /// until [`FALLBACK_THREADS`]. Call it now and then (the controller does every 100 ms).
    /// Returns what the ring read delivered.
    pub fn end_exited_fallback_threads(&mut self) -> PassStats {
        let mut stats = PassStats::default();
        let idle_since = self.passes;
        let idle: Vec<(u32, u64)> = lock(&self.hub)
            .orphans
            .iter()
            .filter(|(_, t)| t.last_pass < idle_since)
            .map(|(key, _)| *key)
            .collect();
        let gone: Vec<(u32, u64)> = idle
            .into_iter()
            .filter(|&(pid, tid)| !crate::identity::task_exists(pid, tid))
            .collect();
        if gone.is_empty() {
            return stats;
        }
        self.drain_fallback(&mut stats);
        let hub = Arc::clone(&self.hub);
        let mut h = lock(&hub);
        for key in gone {
            if let Some(orphan) = h.orphans.remove(&key) {
                self.end_orphan(&mut h, orphan.report);
            }
        }
        stats
    }

    /// Pids owning `ACTIVE` slots right now.
    pub fn active_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .registry
            .view()
            .live_slots()
            .filter(|s| s.state == SlotState::Active)
            .map(|s| s.owner.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The account of the thread `slot` holds, made (numbered and verified) on first sight. A
    /// slot whose owner fields changed since its account was made was tampered with: the old
    /// account ends as [`ThreadEnd::Displaced`] and a new one starts.
    fn account(&mut self, slot: u32, owner: &SlotOwner) -> &mut Account {
        if !self.has_account(slot, owner) {
            let hub = Arc::clone(&self.hub);
            self.open_account(slot, owner, &mut lock(&hub));
        }
        self.accounts[slot as usize]
            .as_mut()
            .expect("the account was just made")
    }

    /// The owner fields (generation, pid, thread id) `slot`'s open account was made with.
    fn account_owner(&self, slot: u32) -> Option<(u32, u32, u64)> {
        self.accounts
            .get(slot as usize)
            .and_then(|a| a.as_ref())
            .map(|a| a.owner)
    }

    /// Whether `slot`'s account is open and still the thread `owner` names.
    fn has_account(&self, slot: u32, owner: &SlotOwner) -> bool {
        self.account_owner(slot) == Some((owner.generation, owner.pid, owner.thread_id))
    }

    /// Makes the account of the thread `slot` holds unless it is open (see
    /// [`account`](Drainer::account)), under the hub's lock.
    fn open_account(&mut self, slot: u32, owner: &SlotOwner, hub: &mut Hub<'r>) {
        let key = (owner.generation, owner.pid, owner.thread_id);
        let index = slot as usize;
        if self.account_owner(slot).is_some_and(|k| k != key)
            && let Some(mut old) = self.accounts.get_mut(index).and_then(Option::take)
        {
            self.end_windows(&mut old);
            self.displaced(old.report);
        }
        if self.accounts.len() <= index {
            self.accounts.resize_with(index + 1, || None);
        }
        if self.accounts[index].is_none() {
            let account = self.new_account(slot, owner, hub);
            self.accounts[index] = Some(account);
        }
    }

    /// Checks a thread's claimed identity (see [`ProcessTrust`]) and counts the verdict:
    /// (verified, refuted, name).
    fn identify(&mut self, pid: u32, os_tid: u64) -> (bool, bool, Option<String>) {
        match self.verifier.check(pid, os_tid) {
            Verdict::Verified(name) => (true, false, name),
            Verdict::Gone => {
                self.unverifiable += 1;
                (false, false, None)
            }
            Verdict::Unchecked => (false, false, None),
            Verdict::Refuted => {
                self.corruption.unverified_threads += 1;
                (false, true, None)
            }
        }
    }

    fn new_account(&mut self, slot: u32, owner: &SlotOwner, hub: &mut Hub<'r>) -> Account {
        let report = match hub.orphans.remove(&(owner.pid, owner.thread_id)) {
            // Its first events came through the fallback ring: the same thread, already
            // numbered, verified and announced; what was counted for it carries over.
            Some(orphan) => {
                let mut r = orphan.report;
                r.info.slot = slot;
                r.info.generation = owner.generation;
                r.end = ThreadEnd::StillRunning;
                r
            }
            None => {
                let number = hub.next_number();
                let (verified, refuted, name) = self.identify(owner.pid, owner.thread_id);
                let info = ThreadInfo {
                    slot,
                    generation: owner.generation,
                    pid: owner.pid,
                    os_tid: owner.thread_id,
                    number,
                    verified,
                };
                // Before any chunk of this thread: a sink can describe the thread ahead of its
                // events.
                let announced = self.sink.thread(&info, name.as_deref());
                self.note_sink(announced);
                ThreadReport {
                    info,
                    name,
                    lanes: [LaneReport::default(); 2],
                    end: ThreadEnd::StillRunning,
                    refuted,
                }
            }
        };
        Account {
            report,
            owner: (owner.generation, owner.pid, owner.thread_id),
            died: false,
            live_copied_ns: [None; 2],
            tracker: match self.persistence {
                Persistence::All => None,
                Persistence::Windows(mut config) => {
                    // A buffered pre-roll is what the thread's detail rings hold, as in the
                    // original flight recorder: at most their capacity is held for it.
                    if config.pre_roll == PreRoll::Buffered {
                        let g = self.registry.geometry();
                        let rings = u64::from(g.detail_rings) * u64::from(g.detail_ring_bytes);
                        let rings = usize::try_from(rings).unwrap_or(usize::MAX);
                        config.budget_bytes = config.budget_bytes.min(rings);
                    }
                    Some(WindowTracker::new(config))
                }
            },
        }
    }

    /// The thread's detail lane is drained for the last time: closes its open window,
    /// discards what its tracker still holds, and announces the windows.
    fn end_windows(&mut self, account: &mut Account) {
        let Some(tracker) = account.tracker.as_mut() else {
            return;
        };
        let closed = &mut self.closed;
        let lane = &mut account.report.lanes[LaneKind::Detail as usize];
        let counts = tracker.finish(|e| {
            if let Emit::Closed(w) = e {
                lane.over_budget = lane.over_budget.saturating_add(w.over_budget_before);
                closed.push(w);
            }
        });
        lane.discarded = counts.discarded;
        lane.windows = counts.windows;
        // Nothing is held any more: what was tracked and not handed on was discarded.
        lane.discarded_bytes = lane.tracked_bytes.saturating_sub(lane.emitted_bytes);
        let info = account.report.info;
        announce(
            &mut self.sink,
            &info,
            &mut self.closed,
            &mut self.sink_error,
        );
    }

    /// A thread whose slot no longer shows it (owner fields or state rewritten): its counters
    /// in the slot now belong to whoever rewrote it, so what was drained is all that is known.
    fn displaced(&mut self, mut r: ThreadReport) {
        self.corruption.displaced_threads += 1;
        for lane in &mut r.lanes {
            lane.written = lane.taken();
        }
        r.end = ThreadEnd::Displaced;
        self.keep(r);
    }

    /// A thread that ended: kept one by one up to the bound, folded beyond it.
    fn keep(&mut self, report: ThreadReport) {
        if self.finished.len() < self.detailed {
            self.finished.push(report);
        } else {
            self.folded.add(&report);
        }
    }

    /// One pass: the shared fallback ring, then lanes under backpressure first, then a
    /// round-robin turn for every live slot, then the lanes under backpressure again (see the
    /// [module docs](self)).
    pub fn pass(&mut self) -> PassStats {
        self.passes += 1;
        // Before any record is read: every stamp this pass converts was taken before it (see
        // `StampConverter::add`'s anchoring).
        self.stamps.tick(crate::stamps::now_ns());
        let mut stats = PassStats::default();
        self.drain_fallback(&mut stats);
        // The fallback ring is read again before the pass retires its first exited thread.
        let mut fallback_again = true;
        let view = self.registry.view();
        let part = self.part;
        // (slot, generation, lanes) drained first: the round-robin turn skips those lanes.
        let mut first = std::mem::take(&mut self.first);
        first.clear();
        if self.prioritise {
            for slot in view.live_slots().filter(|s| part.owns(s.index)) {
                let lanes = pressed(&slot);
                if lanes != [false; 2] && self.visit(&slot, lanes, &mut stats) {
                    first.push((slot.index, slot.owner.generation, lanes));
                }
            }
        }
        let mut done = first.iter().peekable();
        for slot in view.live_slots().filter(|s| part.owns(s.index)) {
            stats.live_slots += 1;
            let exited = slot.state == SlotState::Exited;
            // Both lists are in slot order.
            while done.next_if(|d| d.0 < slot.index).is_some() {}
            let mut lanes = [true; 2];
            if let Some(&&(index, generation, drained)) = done.peek()
                && (index, generation) == (slot.index, slot.owner.generation)
                && !exited
            {
                lanes = drained.map(|d| !d);
            }
            if !self.visit(&slot, lanes, &mut stats) {
                self.corruption.ring_errors += 1;
                continue;
            }
            if exited {
                // With several workers, another one may have read the thread's last records
                // into this worker's mailbox since this pass last looked: looked at before
                // every retirement then.
                if std::mem::take(&mut fallback_again) || self.part.workers > 1 {
                    // What the thread pushed before it unregistered is in the ring by now
                    // (unless a stalled producer holds the ring's head): still its own.
                    self.drain_fallback(&mut stats);
                }
                self.retire(slot.index);
                stats.reclaimed += 1;
            }
        }
        if self.prioritise {
            for slot in view.live_slots().filter(|s| part.owns(s.index)) {
                let lanes = pressed(&slot);
                if lanes != [false; 2] {
                    self.visit(&slot, lanes, &mut stats);
                }
            }
        }
        self.first = first;
        // Hand buffered output on at most every FLUSH_EVERY while busy (a flush is a system
        // call; per pass it would cost more than the records), and at once when idle.
        self.unflushed |= stats.records > 0;
        if self.unflushed && (stats.records == 0 || self.last_flush.elapsed() >= FLUSH_EVERY) {
            let flushed = self.sink.flush();
            self.note_sink(flushed);
            self.unflushed = false;
            self.last_flush = std::time::Instant::now();
        }
        stats
    }

    /// Makes (or checks) the account of `slot` and drains the lanes `lanes` selects (indexed
    /// by `LaneKind as usize`). `false` if the slot has no drain handles (nothing drained).
    fn visit(&mut self, slot: &SlotView<'_>, lanes: [bool; 2], stats: &mut PassStats) -> bool {
        let exited = slot.state == SlotState::Exited;
        self.account(slot.index, &slot.owner);
        if !self.ensure_drains(slot.index, slot.owner.generation) {
            return false;
        }
        for kind in LaneKind::ALL {
            if lanes[kind as usize] {
                let (records, bytes, rings) = self.drain_lane(slot.index, kind, exited);
                stats.records += records;
                stats.bytes += bytes;
                stats.submitted_rings = stats.submitted_rings.saturating_add(rings);
            }
        }
        true
    }

    /// Drains one lane: submitted rings, then the active ring (twice over for an exited thread:
    /// it may have submitted a ring after the first look). Returns (records, bytes, submitted
    /// rings taken).
    fn drain_lane(&mut self, slot: u32, kind: LaneKind, exited: bool) -> (u64, u64, u32) {
        let Drainer {
            registry,
            sink,
            drains,
            accounts,
            symbols,
            symbol_count,
            corruption,
            sink_failures,
            sink_error,
            final_drain,
            closed,
            stamps,
            live_copy_every_ns,
            ..
        } = self;
        let Some(Some(account)) = accounts.get_mut(slot as usize) else {
            return (0, 0, 0);
        };
        // Read before the lane is drained: every record committed by now is taken below.
        let now = ada_shm::clock::MonotonicClock::read();
        let copied = &mut account.live_copied_ns[kind as usize];
        // Never copied yet: due whatever the clock reads (a machine up for less than one period
        // would otherwise wait for its clock to pass the period).
        let copy_due = copied.is_none_or(|at| now.saturating_sub(at) >= *live_copy_every_ns);
        if copy_due {
            *copied = Some(now);
        }
        // The index lane, and the detail lane of a drain that persists everything, go to the
        // sink whole; a tracked detail lane goes through its tracker.
        let tracker = match kind {
            LaneKind::Index => None,
            LaneKind::Detail => account.tracker.as_mut(),
        };
        let take_active = exited
            || *final_drain
            || match &tracker {
                None => copy_due,
                Some(t) => {
                    t.open_window().is_some()
                        || registry
                            .view()
                            .slot(slot)
                            .is_some_and(|set| set.lane(kind).marked())
                }
            };
        let mut ctx = ChunkContext {
            registry,
            sink,
            info: account.report.info,
            lane: &mut account.report.lanes[kind as usize],
            kind,
            symbols,
            symbol_count,
            corruption,
            sink_failures,
            sink_error,
            records: 0,
            tracker,
            closed,
            via_fallback: false,
            stamps,
        };
        let Some(Some(drains)) = drains.get_mut(slot as usize) else {
            return (0, 0, 0);
        };
        let drain = &mut drains.lanes[kind as usize];
        let mut ring_stats = DrainStats::default();
        let rounds = if exited { 2 } else { 1 };
        // A lane has this many rings, so an honest submit queue never holds more; a queue whose
        // positions were rewritten could claim billions. What is left waits for the next pass.
        let geometry = registry.geometry();
        let rings = match kind {
            LaneKind::Index => geometry.index_rings,
            LaneKind::Detail => geometry.detail_rings,
        }
        .max(1);
        for _ in 0..rounds {
            ring_stats.add(&drain.drain_submitted(rings, |c| ctx.chunk(c)));
            if take_active {
                // In order: a ring submitted since `drain_submitted` is taken first.
                ring_stats.add(&drain.drain_active_in_order(|c| ctx.chunk(c)));
            }
        }
        if take_active && let Some(tracker) = ctx.tracker.as_deref_mut() {
            // Everything committed before `now` was taken: a window whose post-roll ended
            // (with the grace for records stamped but not yet committed) can close.
            if tracker.open_window().is_some() {
                let closed = &mut *ctx.closed;
                let lane = &mut *ctx.lane;
                tracker.close_expired(now.saturating_sub(CLOSE_GRACE_NS), |e| {
                    if let Emit::Closed(w) = e {
                        lane.over_budget = lane.over_budget.saturating_add(w.over_budget_before);
                        closed.push(w);
                    }
                });
                announce(&mut *ctx.sink, &ctx.info, ctx.closed, ctx.sink_error);
            }
        }
        if let Some(tracker) = ctx.tracker.as_deref() {
            let counts = tracker.counts();
            ctx.lane.discarded = counts.discarded;
            ctx.lane.windows = counts.windows;
        }
        ctx.lane.bytes += ring_stats.bytes;
        ctx.corruption.ring_errors += ring_stats.bad_ring_indices
            + ring_stats.bad_write_pos
            + ring_stats.corrupt_queue
            + ring_stats.lost_rings;
        (
            ctx.records,
            ring_stats.bytes,
            u32::try_from(ring_stats.rings).unwrap_or(u32::MAX),
        )
    }

    /// Creates the drain handles of `slot` on first use (from the drain claim) and re-reads
    /// their queue positions when the slot has a new owner; `false` if the slot is out of range.
    fn ensure_drains(&mut self, slot: u32, generation: u32) -> bool {
        let registry = self.registry;
        let Some(entry) = self.drains.get_mut(slot as usize) else {
            return false;
        };
        match entry {
            Some(drains) => {
                if drains.generation != generation {
                    for lane in &mut drains.lanes {
                        lane.resync();
                    }
                    drains.generation = generation;
                }
            }
            None => {
                let mut hub = lock(&self.hub);
                let claim = &mut hub.claim;
                let mut make = |kind: LaneKind| -> Option<LaneDrain<'r, SegmentStore<'r>>> {
                    let store = SegmentStore::new(registry, slot, kind).ok()?;
                    Some(LaneDrain::new(claim.lane(slot, kind)?, store))
                };
                let (Some(index), Some(detail)) = (make(LaneKind::Index), make(LaneKind::Detail))
                else {
                    return false;
                };
                // Made after the Acquire load that showed this generation ACTIVE or EXITED, so
                // their positions are the current owner's.
                *entry = Some(SlotDrains {
                    lanes: [index, detail],
                    generation,
                });
            }
        }
        true
    }

    /// Takes what the fallback ring holds (see the [module docs](self)) and hands it on.
    /// Returns whether the ring's drain stopped at a slot reserved but not yet committed.
    ///
    /// With several workers, the records of threads whose slots another worker drains go to
    /// that worker's mailbox (it delivers them at its next look, in ring order, after what its
    /// mailbox held); this worker's own mailbox is delivered first.
    fn drain_fallback(&mut self, stats: &mut PassStats) -> bool {
        let hub = Arc::clone(&self.hub);
        let mut h = lock(&hub);
        let h = &mut *h;
        let Some(consumer) = h.fallback.as_mut() else {
            return false;
        };
        let mut batch = std::mem::take(&mut h.fallback_batch);
        batch.clear();
        let drained = consumer.drain(|r| batch.push(r));
        let f = &mut h.fallback_report;
        f.taken = f.taken.saturating_add(drained.taken);
        f.torn = f.torn.saturating_add(drained.torn);
        f.skipped = f.skipped.saturating_add(drained.skipped);
        // Running totals of the ring header (the producers' counters).
        (f.refused, f.late) = (drained.refused, drained.late);
        let me = self.part.worker as usize;
        if let Some(mine) = h.mailboxes.get_mut(me).map(std::mem::take) {
            if !mine.is_empty() {
                self.deliver_fallback(h, &mine, stats);
            }
            let mut mine = mine;
            mine.clear();
            if let Some(m) = h.mailboxes.get_mut(me)
                && m.is_empty()
            {
                // Its allocation back (nothing was added meanwhile: the lock is held).
                *m = mine;
            }
        }
        if !batch.is_empty() {
            if self.part.workers > 1 {
                let mut local = std::mem::take(&mut h.local);
                local.clear();
                self.route_fallback(h, &batch, &mut local);
                if !local.is_empty() {
                    self.deliver_fallback(h, &local, stats);
                }
                h.local = local;
            } else {
                self.deliver_fallback(h, &batch, stats);
            }
        }
        h.fallback_batch = batch;
        drained.blocked
    }

    /// Sorts a batch read from the fallback ring: records of a thread a slot of another worker
    /// holds go to that worker's mailbox, the others (this worker's threads, fallback-only
    /// threads) to `local`. Order is kept within each.
    fn route_fallback(
        &self,
        h: &mut Hub<'r>,
        batch: &[FallbackRecord],
        local: &mut Vec<FallbackRecord>,
    ) {
        let mut owners: HashMap<(u32, u64), u32> = HashMap::new();
        for slot in self.registry.view().live_slots() {
            owners.insert((slot.owner.pid, slot.owner.thread_id), slot.index);
        }
        for r in batch {
            let theirs = match owners.get(&(r.pid, r.tid)) {
                Some(&slot) if !self.part.owns(slot) => {
                    h.mailboxes.get_mut(self.part.worker_of(slot))
                }
                _ => None,
            };
            match theirs {
                Some(m) => m.push(*r),
                // Its own, a thread without a slot, or (never, but never dropped) a worker
                // without a mailbox: delivered here.
                None => local.push(*r),
            }
        }
    }

    /// Delivers what another worker put in this worker's mailbox since its last look at the
    /// fallback ring (the end of the session: after the one final read of the ring).
    pub(crate) fn deliver_mailbox(&mut self) -> PassStats {
        let mut stats = PassStats::default();
        let hub = Arc::clone(&self.hub);
        let mut h = lock(&hub);
        let h = &mut *h;
        if let Some(mine) = h
            .mailboxes
            .get_mut(self.part.worker as usize)
            .map(std::mem::take)
            && !mine.is_empty()
        {
            self.deliver_fallback(h, &mine, &mut stats);
        }
        if stats.records > 0 {
            let flushed = self.sink.flush();
            self.note_sink(flushed);
        }
        stats
    }

    /// The final drain's look at the fallback ring: drained until it is empty, giving a slot a
    /// producer reserved (and has not committed yet) about 10 ms; then such slots are abandoned
    /// (counted `skipped`: the session is ending) so the records behind them are still taken.
    /// What the ring still holds after that (bounded work) is counted as
    /// [`FallbackReport::left`].
    pub(crate) fn final_fallback_drain(&mut self) {
        let mut stats = PassStats::default();
        let mut blocked = false;
        for _ in 0..10 {
            blocked = self.drain_fallback(&mut stats);
            if !blocked {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let abandon = blocked
            && lock(&self.hub)
                .fallback
                .as_mut()
                .map(|c| c.set_abandon_passes(1))
                .is_some();
        if abandon {
            // Each blocked slot takes two looks (the second abandons it).
            for _ in 0..64 {
                if !self.drain_fallback(&mut stats) {
                    break;
                }
            }
        }
        let mut h = lock(&self.hub);
        h.fallback_report.left = h.fallback.as_ref().map_or(0, |c| c.ring().fill());
        drop(h);
        if stats.records > 0 {
            let flushed = self.sink.flush();
            self.note_sink(flushed);
        }
    }

    /// Hands `batch` (records in ring order) to the sink: each run of one thread's records as
    /// one chunk of that thread, attributed by claimed (pid, OS thread id).
    fn deliver_fallback(
        &mut self,
        h: &mut Hub<'r>,
        batch: &[FallbackRecord],
        stats: &mut PassStats,
    ) {
        // The threads slots hold right now: a thread that registered since the last pass is
        // known (numbered, announced) before its records are attributed.
        for slot in self.registry.view().live_slots() {
            if self.part.owns(slot.index) && !self.has_account(slot.index, &slot.owner) {
                self.open_account(slot.index, &slot.owner, h);
            }
        }
        let mut ids = std::mem::take(&mut self.slot_ids);
        ids.clear();
        for (slot, account) in self.accounts.iter().enumerate() {
            if let Some(a) = account {
                ids.insert((a.owner.1, a.owner.2), slot as u32);
            }
        }
        let mut rest = batch;
        let mut orphans = false;
        while let Some(first) = rest.first() {
            let key = (first.pid, first.tid);
            let run = rest
                .iter()
                .position(|r| (r.pid, r.tid) != key)
                .unwrap_or(rest.len());
            let (records, tail) = rest.split_at(run);
            rest = tail;
            let delivered = match ids.get(&key) {
                Some(&slot) => self.fallback_run(h, FallbackOwner::Slot(slot), records),
                None => {
                    orphans = true;
                    self.fallback_run(h, FallbackOwner::Orphan(key), records)
                }
            };
            stats.records += delivered;
            stats.fallback_records += delivered;
        }
        self.slot_ids = ids;
        self.unflushed |= stats.fallback_records > 0;
        if orphans && self.part.workers > 1 {
            // A fallback-only thread may be taken over by another worker's slot account: what
            // this worker delivered of it must reach the stream before that worker's records
            // of it do.
            let flushed = self.sink.flush();
            self.note_sink(flushed);
        }
    }

    /// A run of records of the thread a slot holds (its account) or of a fallback-only thread
    /// (made on first sight), handed to the sink as one chunk of that thread's index lane.
    /// Returns records delivered.
    fn fallback_run(
        &mut self,
        h: &mut Hub<'r>,
        owner: FallbackOwner,
        records: &[FallbackRecord],
    ) -> u64 {
        if let FallbackOwner::Orphan(key) = owner {
            self.ensure_orphan(h, key);
        }
        let Drainer {
            registry,
            sink,
            accounts,
            symbols,
            symbol_count,
            corruption,
            sink_failures,
            sink_error,
            closed,
            passes,
            stamps,
            ..
        } = self;
        let Hub {
            orphans,
            fallback_report,
            ..
        } = h;
        let report = match owner {
            FallbackOwner::Slot(slot) => match accounts.get_mut(slot as usize) {
                Some(Some(account)) => &mut account.report,
                _ => return 0,
            },
            FallbackOwner::Orphan(key) => match orphans.get_mut(&key) {
                Some(orphan) => {
                    orphan.last_pass = *passes;
                    &mut orphan.report
                }
                None => return 0,
            },
        };
        let mut ctx = ChunkContext {
            registry,
            sink,
            info: report.info,
            lane: &mut report.lanes[LaneKind::Index as usize],
            kind: LaneKind::Index,
            symbols,
            symbol_count,
            corruption,
            sink_failures,
            sink_error,
            records: 0,
            tracker: None,
            closed,
            via_fallback: true,
            stamps,
        };
        ctx.fallback_chunk(records, fallback_report);
        ctx.records
    }

    /// Makes the fallback-only thread of (pid, tid) `key` unless it exists (ending the least
    /// recently seen one when [`FALLBACK_THREADS`] are held).
    fn ensure_orphan(&mut self, h: &mut Hub<'r>, key: (u32, u64)) {
        if h.orphans.contains_key(&key) {
            return;
        }
        if h.orphans.len() >= FALLBACK_THREADS.max(1)
            && let Some(oldest) = h
                .orphans
                .iter()
                .min_by_key(|(_, t)| t.last_pass)
                .map(|(k, _)| *k)
            && let Some(old) = h.orphans.remove(&oldest)
        {
            self.end_orphan(h, old.report);
        }
        let number = h.next_number();
        let (verified, refuted, name) = self.identify(key.0, key.1);
        let info = ThreadInfo {
            slot: ThreadInfo::NO_SLOT,
            generation: 0,
            pid: key.0,
            os_tid: key.1,
            number,
            verified,
        };
        let announced = self.sink.thread(&info, name.as_deref());
        self.note_sink(announced);
        let mut report = ThreadReport::new(info, name, ThreadEnd::NoSlot);
        report.refuted = refuted;
        h.orphans.insert(
            key,
            FallbackThread {
                report,
                last_pass: self.passes,
            },
        );
    }

    /// A fallback-only thread ends (the session ended, or it was the least recently seen of
    /// too many): losses its markers announced are all it has; kept or folded.
    fn end_orphan(&mut self, h: &mut Hub<'r>, mut report: ThreadReport) {
        report.end = ThreadEnd::NoSlot;
        h.fallback_report.threads += 1;
        self.keep(report);
    }

    /// The thread is gone and its rings are drained: take its final counters, reset its rings
    /// and free the slot.
    fn retire(&mut self, slot: u32) {
        let Some(mut account) = self.accounts.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.end_windows(&mut account);
        let view = self.registry.view();
        if let Some(set) = view.slot(slot) {
            let contradictions = take_counters(&mut account.report, set);
            // A thread that unregistered stored its counters last, before handing the slot
            // over: they must agree. A thread whose process died may have been killed between
            // two of those stores (so may a running thread's at `finish`): not evidence.
            if !account.died {
                self.corruption.lane_counters += contradictions;
            }
            for lane in &mut account.report.lanes {
                settle(lane, account.died);
            }
            announce_unmarked(
                &mut self.sink,
                &mut account.report,
                &mut self.sink_failures,
                &mut self.sink_error,
            );
        }
        if let Some(Some(drains)) = self.drains.get_mut(slot as usize) {
            for d in &mut drains.lanes {
                d.reset_all();
            }
        }
        account.report.end = if account.died {
            ThreadEnd::ProcessDied
        } else {
            ThreadEnd::Exited
        };
        view.reclaim(slot);
        self.keep(account.report);
    }

    /// Ends the session: the caller has stopped (or lost) the traced processes. Marks the slots
    /// of `dead_pids` as exited, drains until every such slot is freed, reports the threads
    /// still running as they stand, and finishes the sink.
    ///
    /// Every thread the drain ever made an account for is in the returned report, one by one
    /// or folded: a thread whose slot no longer shows it (its state or owner fields were
    /// rewritten) is reported as [`ThreadEnd::Displaced`] with what was drained of it.
    pub fn finish(mut self, dead_pids: &[u32], report: Report) -> (Report, S) {
        for &pid in dead_pids {
            self.process_died(pid);
        }
        let spilled_before = self.final_lanes();
        // After the lanes' last look: what was pushed up to now is kept.
        self.final_fallback_drain();
        self.finish_accounts(&spilled_before, report)
    }

    /// The final drain's look at this drainer's lanes (the first part of
    /// [`finish`](Drainer::finish)); returns what each slot's thread had spilled by then.
    pub(crate) fn final_lanes(&mut self) -> Vec<Option<[u64; 2]>> {
        self.final_drain = true;
        // The session's last calibration point, before the final drain reads anything.
        self.stamps.sample_now(crate::stamps::now_ns());
        // Each pass frees every EXITED slot it sees; a second one catches threads that exited
        // during the first. Bounded: threads still running keep their slots.
        for _ in 0..3 {
            let p = self.pass();
            if p.reclaimed == 0 && p.records == 0 {
                break;
            }
        }
        // What each live thread had spilled before the ring's last look: a spill after it is
        // in neither the trace nor the ring's `left`, so it must count as after the end.
        let view = self.registry.view();
        (0..self.accounts.len())
            .map(|slot| {
                let set = view.slot(slot as u32)?;
                Some(LaneKind::ALL.map(|kind| set.lane(kind).counters().spilled))
            })
            .collect()
    }

    /// The end of [`finish`](Drainer::finish), once the fallback ring had its final read (and,
    /// with several workers, this one delivered its mailbox): the threads still running are
    /// reported as they stand, the fallback-only threads end, and the report is made.
    pub(crate) fn finish_accounts(
        mut self,
        spilled_before: &[Option<[u64; 2]>],
        mut report: Report,
    ) -> (Report, S) {
        let view = self.registry.view();
        self.refresh_symbols();
        let mut live: Vec<Option<SlotOwner>> = vec![None; self.accounts.len()];
        for slot in view.live_slots() {
            if let Some(l) = live.get_mut(slot.index as usize) {
                *l = Some(slot.owner);
            }
        }
        let open: Vec<Account> = self.accounts.iter_mut().filter_map(Option::take).collect();
        for mut account in open {
            // What a running thread's tracker still holds is discarded (counted before
            // `after_end` is worked out from what was taken).
            self.end_windows(&mut account);
            let mut r = account.report;
            let slot = r.info.slot;
            let still_there = live
                .get(slot as usize)
                .copied()
                .flatten()
                .is_some_and(|o| (o.generation, o.pid, o.thread_id) == account.owner);
            match view.slot(slot) {
                Some(set) if still_there => {
                    // Still writing: its counter stores may be read half done (see `retire`).
                    take_counters(&mut r, set);
                    announce_unmarked(
                        &mut self.sink,
                        &mut r,
                        &mut self.sink_failures,
                        &mut self.sink_error,
                    );
                    let before = spilled_before.get(slot as usize).copied().flatten();
                    for (kind, lane) in r.lanes.iter_mut().enumerate() {
                        if let Some(before) = before {
                            lane.spilled = lane.spilled.min(before[kind]);
                        }
                        // A running thread may have recorded (or spilled) more since its rings
                        // and the fallback ring were drained: those events are not in this
                        // trace, and are reported as such.
                        lane.after_end = lane.written.saturating_sub(lane.taken());
                    }
                    r.end = ThreadEnd::StillRunning;
                    self.keep(r);
                }
                _ => self.displaced(r),
            }
        }
        let hub = Arc::clone(&self.hub);
        let mut h = lock(&hub);
        let orphans: Vec<FallbackThread> = h.orphans.drain().map(|(_, t)| t).collect();
        for orphan in orphans {
            self.end_orphan(&mut h, orphan.report);
        }
        let counters = view.header().counters();
        let symbols = self.registry.symbols();
        report.threads = std::mem::take(&mut self.finished);
        report.clock = self.stamps.session_clock();
        report.fallback = h.fallback_report;
        drop(h);
        report.folded = self.folded;
        report.unverifiable_threads = self.unverifiable;
        report.unregistered_drops = counters.unregistered_drops;
        report.unregistered_by_lane = counters.unregistered_by_lane;
        // The settings the segment published (validated at attach), which every agent applied.
        let settings = self.registry.backpressure();
        (report.drop_policies, report.stability_ns) = (settings.policies, settings.stability_ns);
        match symbols.refused_checked() {
            Some(refused) => report.symbols_refused = refused,
            None => self.corruption.symbol_counters += 1,
        }
        self.corruption.symbol_entries = self.symbols.skipped();
        self.corruption.symbol_counters += self.symbols.rewound();
        report.symbols = self.symbol_count;
        report.corruption = self.corruption;
        report.sink_failures = self.sink_failures;
        report.sink_error = self.sink_error.take();
        report.passes = self.passes;
        report.memory_per_thread = ada_ringpool::memory_per_thread(&self.registry.geometry());
        (report, self.sink)
    }

    /// Reads symbols published since the last chunk (the final drain's last look).
    fn refresh_symbols(&mut self) {
        read_symbols(
            self.registry,
            &mut self.sink,
            &mut self.symbols,
            &mut self.symbol_count,
            &mut self.sink_failures,
            &mut self.sink_error,
        );
    }
}

/// Which lanes of a still registered (`ACTIVE`) slot the thread published as under
/// backpressure: PRESSURE, DROPPING or RECOVERY. A byte no state has (a rewritten segment)
/// counts as NORMAL: a corrupt word cannot buy a lane extra turns (the lane's report shows
/// it as an unknown state). An `EXITED` slot is never pressed: its one turn retires it.
fn pressed(slot: &SlotView<'_>) -> [bool; 2] {
    if slot.state != SlotState::Active {
        return [false; 2];
    }
    LaneKind::ALL.map(|kind| {
        LaneState::from_u8(slot.lanes.lane(kind).state_word().state)
            .is_some_and(|s| s != LaneState::Normal)
    })
}

/// The thread's own counts of what it wrote and what its pool policy dropped, per lane.
///
/// Returns the lanes whose total of lost events is not the sum of its causes (another process
/// rewrote the words: corruption; the causes are reported).
fn take_counters(report: &mut ThreadReport, lanes: &ada_registry::ThreadLaneSet) -> u64 {
    let mut contradictions = 0;
    for kind in LaneKind::ALL {
        let counters = lanes.lane(kind).counters();
        let lane = &mut report.lanes[kind as usize];
        lane.written = counters.events_written;
        lane.spilled = counters.spilled;
        lane.lost = counters.lost();
        // Computed from the causes (saturating: the words are another process's to write).
        lane.dropped = lane.lost.total();
        contradictions += u64::from(counters.contradicts());
        let word = lanes.lane(kind).state_word();
        lane.state = LaneState::from_u8(word.state);
        lane.entries = word.entries.map(u64::from);
    }
    contradictions
}

/// Hands `loss` to the sink and counts it as announced on `lane`.
fn announce_loss<S: Sink>(
    sink: &mut S,
    info: &ThreadInfo,
    lane: &mut LaneReport,
    loss: &LossInfo,
    sink_failures: &mut u64,
    sink_error: &mut Option<String>,
) {
    lane.marked_lost = lane.marked_lost.saturating_add(loss.count);
    lane.marked_by_cause.add(loss.cause, loss.count);
    lane.last_ns = lane.last_ns.max(loss.at_ns);
    if let Err(e) = sink.events_lost(info, loss) {
        *sink_failures += 1;
        *sink_error = Some(e.to_string());
    }
}

/// The thread's stream has ended (it exited, or the session did): losses its counters show
/// that no marker announced (a marker that found no room in the ring before the thread let go
/// of it: drop-newest refusing to the end) are announced now, at the end of the stream, where
/// they happened, their times unknown.
fn announce_unmarked<S: Sink>(
    sink: &mut S,
    report: &mut ThreadReport,
    sink_failures: &mut u64,
    sink_error: &mut Option<String>,
) {
    let info = report.info;
    // The end of the stream: after the last thing announced on either lane, or the drain's
    // clock when the thread has nothing in the trace (never time 0, which would stretch every
    // timeline to the epoch).
    let end = report
        .lanes
        .iter()
        .map(|l| l.last_ns)
        .max()
        .filter(|&t| t != 0)
        .unwrap_or_else(ada_shm::clock::MonotonicClock::read);
    for kind in LaneKind::ALL {
        let lane = &mut report.lanes[kind as usize];
        for cause in [
            LossCause::Overwritten,
            LossCause::Refused,
            LossCause::TooLarge,
        ] {
            let missing = lane
                .lost
                .get(cause)
                .saturating_sub(lane.marked_by_cause.get(cause));
            if missing == 0 {
                continue;
            }
            let mut loss = LossInfo::new(kind, cause, missing);
            loss.at_ns = if lane.last_ns != 0 { lane.last_ns } else { end };
            lane.announced_at_end = lane.announced_at_end.saturating_add(missing);
            lane.markers += 1;
            announce_loss(sink, &info, lane, &loss, sink_failures, sink_error);
        }
    }
}

/// Settles a retired lane's counters. A thread's `events_written` counter is stored right after
/// each record is committed, so a process killed between the two leaves the counter one behind
/// what its ring holds; the ring's contents are the authority, and the difference is reported.
fn settle(lane: &mut LaneReport, died: bool) {
    let accounted = lane.taken().saturating_add(lane.corrupt);
    if died && accounted > lane.written {
        lane.reconciled = accounted - lane.written;
        lane.written = accounted;
    }
}

/// Everything one chunk's records need, borrowed from the drainer.
struct ChunkContext<'c, S: Sink> {
    registry: &'c Registry,
    sink: &'c mut S,
    info: ThreadInfo,
    lane: &'c mut LaneReport,
    kind: LaneKind,
    symbols: &'c mut SymbolCursor,
    symbol_count: &'c mut u64,
    corruption: &'c mut Corruption,
    sink_failures: &'c mut u64,
    sink_error: &'c mut Option<String>,
    records: u64,
    /// The detail lane's tracker (`None`: every record goes to the sink).
    tracker: Option<&'c mut WindowTracker<HeldRecord>>,
    /// Windows closed by the drain's clock, to announce (scratch space).
    closed: &'c mut Vec<WindowReport>,
    /// The records come from the shared fallback ring: delivered ones are counted in the lane's
    /// `via_fallback`, not `persisted`.
    via_fallback: bool,
    /// Converts the records' stamps (agent clock) to `CLOCK_MONOTONIC` ns.
    stamps: &'c mut StampConverter,
}

/// Why an index record was not handed on.
struct BadRecord;

impl<S: Sink> ChunkContext<'_, S> {
    fn chunk(&mut self, chunk: RingChunk<'_>) {
        self.refresh_symbols();
        let info = ChunkInfo {
            lane: self.kind,
            ring: chunk.ring,
            marked: chunk.marked,
            from_active: chunk.from_active,
            seq: (!chunk.from_active).then_some(chunk.seq),
            bytes: chunk.bytes.len() as u64,
            from_fallback: false,
        };
        let begun = self.sink.chunk_begin(&self.info, &info);
        self.note(begun);
        match self.kind {
            LaneKind::Index => {
                for r in index_records(chunk.bytes) {
                    if self.index_record(r).is_err() {
                        self.bad_chunk();
                        break;
                    }
                }
            }
            LaneKind::Detail => {
                for r in ada_ringpool::DetailRecords::new(chunk.bytes) {
                    let Ok(r) = r else {
                        self.bad_chunk();
                        break;
                    };
                    if r.kind == EventKind::EventsLost {
                        let Some(marker) = LossMarker::from_detail(&r) else {
                            self.bad_chunk();
                            break;
                        };
                        // Straight to the sink, never through the window tracker: a loss is
                        // always persisted where it happened.
                        self.lost(&marker);
                        continue;
                    }
                    let timestamp_ns = self.stamps.convert(r.header.timestamp_ns);
                    self.detail(&Record {
                        kind: r.kind,
                        lane: LaneKind::Detail,
                        timestamp_ns,
                        function_id: r.header.function_id,
                        thread_id: r.header.thread_id,
                        call_depth: r.header.call_depth,
                        marked: r.marked(),
                        registers: r.registers(),
                        stack: r.stack,
                        message: r.message,
                    });
                }
            }
        }
        let ended = self.sink.chunk_end(&self.info, &info);
        self.note(ended);
    }

    /// One index record as `index_records` parsed it (from a ring or the fallback ring):
    /// validated, then announced as a loss or handed to the sink. `Err` if it is not valid
    /// (the caller counts it).
    // Inlined into the ring chunk's loop: out of line (as the stamp conversion made the
    // compiler choose) the ring side of the drain ran at 103 instead of 256 M records/s.
    #[inline(always)]
    fn index_record(&mut self, r: Result<IndexRecord, RecordError>) -> Result<(), BadRecord> {
        let r = r.map_err(|_| BadRecord)?;
        if r.kind == EventKind::EventsLost as u32 {
            let marker = LossMarker::from_index(&r).ok_or(BadRecord)?;
            self.lost(&marker);
            return Ok(());
        }
        let kind = EventKind::try_from(r.kind).map_err(|_| BadRecord)?;
        let timestamp_ns = self.stamps.convert(r.timestamp_ns);
        self.emit(&Record {
            kind,
            lane: LaneKind::Index,
            timestamp_ns,
            function_id: r.function_id,
            thread_id: r.thread_id,
            call_depth: r.call_depth,
            marked: false,
            registers: &[],
            stack: &[],
            message: &[],
        });
        Ok(())
    }

    /// A run of one thread's records from the shared fallback ring, as one chunk of its index
    /// lane. Each record is validated on its own (a bad one costs only itself) by the same code
    /// as a ring's index records; the counts land in `fallback`.
    fn fallback_chunk(&mut self, records: &[FallbackRecord], fallback: &mut FallbackReport) {
        self.refresh_symbols();
        let info = ChunkInfo {
            lane: LaneKind::Index,
            ring: 0,
            marked: false,
            from_active: false,
            seq: None,
            bytes: (records.len() as u64).saturating_mul(u64::from(INDEX_RECORD_SIZE)),
            from_fallback: true,
        };
        let begun = self.sink.chunk_begin(&self.info, &info);
        self.note(begun);
        for r in records {
            let (markers, delivered) = (self.lane.markers, self.lane.via_fallback);
            // The detail lane never goes there (its records do not fit): a record claiming it
            // is damage.
            let valid = r.lane == LaneKind::Index
                && index_records(&payload_bytes(&r.payload))
                    .next()
                    .is_some_and(|parsed| self.index_record(parsed).is_ok());
            if !valid {
                fallback.corrupt = fallback.corrupt.saturating_add(1);
                self.corruption.fallback_records += 1;
            } else if self.lane.markers != markers {
                fallback.markers = fallback.markers.saturating_add(1);
            } else {
                // 0 when the sink refused it (a sink failure, counted as such).
                let taken = self.lane.via_fallback.saturating_sub(delivered);
                fallback.delivered = fallback.delivered.saturating_add(taken);
            }
        }
        let ended = self.sink.chunk_end(&self.info, &info);
        self.note(ended);
    }

    /// A detail record: to the sink, or through the lane's tracker.
    fn detail(&mut self, record: &Record<'_>) {
        let Some(tracker) = self.tracker.as_deref_mut() else {
            self.emit(record);
            return;
        };
        let held = HeldRecord::new(record);
        let cost = held.cost();
        self.lane.tracked_bytes += ring_len(record);
        let mark: Option<Mark> = mark_of(record);
        let mut out = Persisted {
            sink: &mut *self.sink,
            info: &self.info,
            lane: &mut *self.lane,
            sink_failures: &mut *self.sink_failures,
            sink_error: &mut *self.sink_error,
            records: &mut self.records,
            via_fallback: false,
        };
        // A window this record is past is announced at once: after its last record, before
        // this one (which may open the next window).
        tracker.push(held, record.timestamp_ns, cost, mark, |e| match e {
            Emit::Persist { item, .. } => item.with(|r| {
                out.lane.emitted_bytes += ring_len(r);
                out.emit(r);
            }),
            Emit::Closed(w) => {
                out.lane.over_budget = out.lane.over_budget.saturating_add(w.over_budget_before);
                announce_one(out.sink, out.info, &w, out.sink_error)
            }
            Emit::Opened { .. } => {}
        });
    }

    /// A loss marker: announced to the sink at this point of the stream and counted (it is not
    /// an event: never in `persisted` or `written`).
    fn lost(&mut self, marker: &LossMarker) {
        // The lost records' own stamps (0: unknown, kept).
        let marker = &LossMarker {
            first_ns: self.stamps.convert_known(marker.first_ns),
            last_ns: self.stamps.convert_known(marker.last_ns),
            ..*marker
        };
        let at_ns = if marker.first_ns != 0 {
            marker.first_ns
        } else {
            marker.last_ns
        };
        let loss = LossInfo {
            lane: self.kind,
            cause: marker.cause,
            count: marker.count,
            first_ns: marker.first_ns,
            last_ns: marker.last_ns,
            at_ns,
        };
        self.lane.markers += 1;
        announce_loss(
            &mut *self.sink,
            &self.info,
            self.lane,
            &loss,
            &mut *self.sink_failures,
            &mut *self.sink_error,
        );
    }

    fn bad_chunk(&mut self) {
        self.corruption.bad_chunks += 1;
        self.lane.corrupt += 1;
    }

    #[inline]
    fn emit(&mut self, record: &Record<'_>) {
        Persisted {
            sink: &mut *self.sink,
            info: &self.info,
            lane: &mut *self.lane,
            sink_failures: &mut *self.sink_failures,
            sink_error: &mut *self.sink_error,
            records: &mut self.records,
            via_fallback: self.via_fallback,
        }
        .emit(record);
    }

    /// Keeps the message of a sink error that concerns no record (chunk boundaries).
    fn note(&mut self, r: Result<(), SinkError>) {
        if let Err(e) = r {
            *self.sink_error = Some(e.to_string());
        }
    }

    fn refresh_symbols(&mut self) {
        read_symbols(
            self.registry,
            &mut *self.sink,
            self.symbols,
            self.symbol_count,
            self.sink_failures,
            self.sink_error,
        );
    }
}

/// Where a record that is persisted goes, and what counts it.
struct Persisted<'p, S: Sink> {
    sink: &'p mut S,
    info: &'p ThreadInfo,
    lane: &'p mut LaneReport,
    sink_failures: &'p mut u64,
    sink_error: &'p mut Option<String>,
    records: &'p mut u64,
    /// Counted in the lane's `via_fallback` rather than `persisted` (a fallback ring record).
    via_fallback: bool,
}

impl<S: Sink> Persisted<'_, S> {
    #[inline]
    fn emit(&mut self, record: &Record<'_>) {
        // Where an end-of-thread loss announcement goes: after everything handed on.
        self.lane.last_ns = self.lane.last_ns.max(record.timestamp_ns);
        match self.sink.record(self.info, record) {
            Ok(()) if self.via_fallback => self.lane.via_fallback += 1,
            Ok(()) => {
                self.lane.persisted += 1;
                self.lane.persisted_bytes += ring_len(record);
            }
            Err(e) => {
                *self.sink_failures += 1;
                *self.sink_error = Some(e.to_string());
            }
        }
        *self.records += 1;
    }
}

/// A fallback record's payload as the bytes of one index record (native-endian words, the
/// layout `ada_ringpool::IndexRecord` has in a ring).
fn payload_bytes(payload: &[u64; 4]) -> [u8; INDEX_RECORD_SIZE as usize] {
    let mut bytes = [0u8; INDEX_RECORD_SIZE as usize];
    for (out, word) in bytes.chunks_exact_mut(8).zip(payload) {
        out.copy_from_slice(&word.to_ne_bytes());
    }
    bytes
}

/// Announces the windows in `closed` (emptying it) to `sink` as `thread`'s.
fn announce<S: Sink>(
    sink: &mut S,
    thread: &ThreadInfo,
    closed: &mut Vec<WindowReport>,
    error: &mut Option<String>,
) {
    for w in closed.drain(..) {
        announce_one(sink, thread, &w, error);
    }
}

/// Announces window `w` to `sink` as `thread`'s.
fn announce_one<S: Sink>(
    sink: &mut S,
    thread: &ThreadInfo,
    w: &WindowReport,
    error: &mut Option<String>,
) {
    let info = WindowInfo {
        id: w.id,
        start_ns: w.start_ns,
        end_ns: w.end_ns,
        first_mark_ns: w.first_mark_ns,
        last_mark_ns: w.last_mark_ns,
        trigger: match w.opened_by {
            Mark::Explicit => None,
            Mark::Trigger(t) => Some(u32::from(t.get())),
        },
        marks: w.marks,
        persisted: w.persisted,
        pre_roll: w.pre_roll,
        discarded_before: w.discarded_before,
        over_budget_before: w.over_budget_before,
    };
    if let Err(e) = sink.window(thread, &info) {
        *error = Some(e.to_string());
    }
}

/// Hands the symbols published since `cursor`'s last look to `sink`. Damaged entries are
/// skipped (and counted in the cursor) without stopping the read of later ones.
fn read_symbols<S: Sink>(
    registry: &Registry,
    sink: &mut S,
    cursor: &mut SymbolCursor,
    count: &mut u64,
    failures: &mut u64,
    error: &mut Option<String>,
) {
    registry.symbols().read_new(cursor, |s| {
        *count += 1;
        if let Err(e) = sink.symbol_at(s.id, s.name, s.address, s.source) {
            *failures += 1;
            *error = Some(e.to_string());
        }
    });
}

impl<S: Sink> Drainer<'_, S> {
    fn note_sink(&mut self, r: Result<(), SinkError>) {
        if let Err(e) = r {
            self.sink_error = Some(e.to_string());
        }
    }
}
