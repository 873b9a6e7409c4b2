//! The calling thread's writer for the global agent, cached in thread-local storage.
//!
//! `FAST` is a const-initialised cell without a destructor ([`crate::fast_cell`]), so reading it
//! is a plain TLS load; it points at the writer owned by `OWNER`, whose destructor runs at thread exit: it clears
//! `FAST` first, then drops the writer (counters published, slot handed to the drain).
//!
//! Re-entrancy: while a recording call runs, `FAST` is null, so a signal handler that records on
//! the same thread takes the slow path, finds the writer busy and counts its event as dropped
//! instead of aliasing the writer.
//!
//! Re-entrancy from the agent's own slow path (registration, attach, a thread-local's first
//! use), which may run the program's code — an allocator compiled with `-finstrument-functions`,
//! a signal handler —: a thread-local flag ([`SlowPath`]) makes a recording call from there
//! count its event as dropped instead of starting that work again.
//!
//! `fork`: the child starts with a copy of the forking thread's cache, whose slot belongs to the
//! parent's thread. A `pthread_atfork` child handler forgets that copy (without unregistering
//! the parent's slot), so the child registers a slot of its own on its next event.

use crate::agent::Agent;
use crate::fast_cell::{Fast, with_fast};
use crate::global::{DORMANT, global};
use crate::mode::AgentMode;
use crate::thread::{Flow, ThreadWriter, os_thread_id};
use ada_registry::LaneKind;
use ada_ringpool::{EventKind, IndexRecord};
use std::cell::{Cell, RefCell};
use zerocopy::IntoBytes;

struct Owner {
    writer: Option<Box<ThreadWriter<'static>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // `FAST` has no destructor, so it is always accessible.
        with_fast(|fast| fast.set(core::ptr::null_mut()));
        drop(self.writer.take());
    }
}

thread_local! {
    static OWNER: RefCell<Owner> = const { RefCell::new(Owner { writer: None }) };
    /// `reclaim_epoch + 1` of the registry when this thread was refused a slot (0 = never).
    static REFUSED_AT: Cell<u64> = const { Cell::new(0) };
    /// The thread's call depth while it holds no writer (its events then go to the fallback
    /// ring), handed to and from its writer so the nesting carries across.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The calling thread's OS thread id (0 = not read yet).
    static TID: Cell<u64> = const { Cell::new(0) };
    /// Events (index, detail) recorded while the agent was dormant, not yet reported.
    static DORMANT_LOST: DormantLost = const { DormantLost(Cell::new([0; 2])) };
    /// Whether this thread is inside the agent's own slow path ([`SlowPath`]).
    static IN_SLOW_PATH: Cell<bool> = const { Cell::new(false) };
}

/// The calling thread is inside the agent's slow path (registration, attaching, the first use
/// of a thread-local with a destructor) until this guard is dropped. That work can run code of
/// the program's: an allocator (or `__cxa_thread_atexit_impl`'s `calloc`) compiled with
/// `-finstrument-functions`, a signal handler. A recording call it makes must not start the
/// same work again (the thread-local's lazy initialisation would recurse until the stack
/// overflows; the agent's lazy attach would wait for itself): while the guard is held, such an
/// event is counted as dropped instead.
struct SlowPath;

impl SlowPath {
    /// The guard, or `None` when this thread already holds it.
    fn enter() -> Option<SlowPath> {
        // A `const` cell without a destructor is always accessible and needs no registration.
        // `then`, not `then_some`: a guard made eagerly and thrown away would clear the flag.
        IN_SLOW_PATH
            .try_with(|busy| !busy.replace(true))
            .unwrap_or(false)
            .then(|| SlowPath)
    }
}

impl Drop for SlowPath {
    fn drop(&mut self) {
        let _ = IN_SLOW_PATH.try_with(|busy| busy.set(false));
    }
}

/// An event recorded from inside the agent's own slow path on the same thread: counted as
/// dropped (`no_slot`) when the agent exists (it may be the agent's attach that was re-entered:
/// then there is nothing to count it in).
#[cold]
#[inline(never)]
fn reentered(event: Unwritten) {
    if let Some(agent) = global() {
        agent
            .registry()
            .header()
            .count_unregistered_drops(event.lane(), 1);
    }
}

/// A thread's count of events lost while dormant; reported when the thread exits, if it has
/// not registered (and reported them) since.
struct DormantLost(Cell<[u64; 2]>);

impl Drop for DormantLost {
    fn drop(&mut self) {
        let lost = self.0.replace([0; 2]);
        if lost != [0; 2]
            && let Some(agent) = global()
        {
            for lane in LaneKind::ALL {
                agent
                    .registry()
                    .header()
                    .count_unregistered_drops(lane, lost[lane as usize]);
            }
        }
    }
}

/// What a recording call writes, for the path that has no writer: an index event (`kind`,
/// `function_id`) can go to the fallback ring; anything else is counted in its lane.
#[derive(Debug, Clone, Copy)]
pub enum Unwritten {
    /// An index-lane event.
    Index(EventKind, u64),
    /// A detail-lane event.
    Detail,
}

impl Unwritten {
    fn lane(self) -> LaneKind {
        match self {
            Unwritten::Index(..) => LaneKind::Index,
            Unwritten::Detail => LaneKind::Detail,
        }
    }

    /// Two scalars (an index event's kind number, 0 for a detail event; the function id), so
    /// the record path hands them to the slow path in registers rather than building the enum
    /// in memory on every call.
    #[inline(always)]
    fn parts(self) -> (u32, u64) {
        match self {
            Unwritten::Index(kind, id) => (kind as u32, id),
            Unwritten::Detail => (0, 0),
        }
    }

    fn from_parts(kind: u32, function_id: u64) -> Self {
        match EventKind::try_from(kind) {
            Ok(kind) => Unwritten::Index(kind, function_id),
            Err(_) => Unwritten::Detail,
        }
    }
}

/// Runs `f` with the calling thread's writer, registering the thread on first use when the
/// agent's mode allows. Without a writer (untraced: nothing; the registry not ready, the thread
/// refused a slot: the fallback ring; dormant, re-entered from a signal handler, exiting:
/// counted as lost) `event` says what the call would have written.
#[inline(always)]
pub fn with_writer(event: Unwritten, f: impl FnOnce(&mut ThreadWriter<'static>) -> Flow) {
    with_fast(|fast| {
        let ptr = fast.get();
        if ptr.is_null() {
            // Out of line, with `f`: the fast path below keeps only what it uses live (no copy
            // of `event` for a slow path it does not take), so it needs no stack frame of its
            // own before the record is written.
            without_writer(fast, event, f);
            return;
        }
        let _ = run_exclusive(fast, ptr, f);
    })
}

/// [`with_writer`] for a thread whose `FAST` holds no writer: untraced, dormant, not
/// registered yet, refused a slot, busy or exiting.
#[cold]
#[inline(never)]
fn without_writer(
    fast: &Fast,
    event: Unwritten,
    f: impl FnOnce(&mut ThreadWriter<'static>) -> Flow,
) {
    let quiet = crate::global::quiet();
    if quiet != 0 {
        if quiet == DORMANT {
            count_dormant(event);
        }
        return;
    }
    let (kind, function_id) = event.parts();
    if let Some(ptr) = writer_slow(kind, function_id) {
        let _ = run_exclusive(fast, ptr, f);
    }
}

/// Runs `f` on the writer at `ptr` (taken from `FAST`) with `FAST` cleared meanwhile, so a
/// re-entrant call cannot make a second `&mut` to it, then puts it back, unless `f` says the
/// writer must leave (see [`Flow::Leave`]).
#[inline(always)]
fn run_exclusive<R>(
    fast: &Fast,
    ptr: *mut ThreadWriter<'static>,
    f: impl FnOnce(&mut ThreadWriter<'static>) -> R,
) -> R
where
    R: Into<Flow> + Copy,
{
    fast.set(core::ptr::null_mut());
    // `ptr` came from the box `OWNER` holds; it stays valid until `Owner::drop`, which clears
    // `FAST` first. `FAST` is null while `f` runs, so no second `&mut` can be made from it.
    // SAFETY: the writer is alive and this is the only reference to it.
    let r = f(unsafe { &mut *ptr });
    // A fast path returns `Stay` inline: this folds to the store.
    match r.into() {
        Flow::Stay => fast.set(ptr),
        Flow::Leave => leave(),
    }
    r
}

impl From<()> for Flow {
    fn from((): ()) -> Flow {
        Flow::Stay
    }
}

/// Runs `f` with the calling thread's writer if it already holds one; never registers the
/// thread and never counts a drop. `false` when the thread holds no writer (or it is busy).
pub fn with_registered_writer(f: impl FnOnce(&mut ThreadWriter<'static>)) -> bool {
    with_fast(|fast| {
        let ptr = fast.get();
        if ptr.is_null() {
            return false;
        }
        run_exclusive(fast, ptr, f);
        true
    })
}

/// The calling thread's writer when `FAST` holds none: registers the thread, or returns `None`
/// after sending `event` where it can go (the fallback ring) or counting it.
#[cold]
#[inline(never)]
fn writer_slow(kind: u32, function_id: u64) -> Option<*mut ThreadWriter<'static>> {
    let event = Unwritten::from_parts(kind, function_id);
    let Some(_slow) = SlowPath::enter() else {
        reentered(event);
        return None;
    };
    let agent = global()?;
    // Busy (re-entered from a signal handler while the writer is in use) or exiting: counted
    // as lost, whatever the mode (a signal handler's event would otherwise interleave with
    // the interrupted one's).
    if !OWNER
        .try_with(|owner| owner.try_borrow().is_ok_and(|o| o.writer.is_none()))
        .unwrap_or(false)
    {
        agent
            .registry()
            .header()
            .count_unregistered_drops(event.lane(), 1);
        return None;
    }
    let watched = crate::global::ensure_watcher(agent);
    // Still waiting for the registry: look again the moment the controller says it is ready
    // (one load while it is not: no tick, no lock, no system call per event). Without a
    // watcher, every slow path ticks.
    if !watched || (agent.mode() == AgentMode::Startup && agent.registry().control().is_ready()) {
        crate::global::tick_global(agent);
    }
    if agent.is_dormant() {
        count_dormant_in_slow_path(event);
        return None;
    }
    // Ready counts even when the tick above could not run (the watcher held its turn, say,
    // preempted in the middle of a tick): the mode says STARTUP only until the next tick, and
    // an event after ready must not go without a ring meanwhile (a detail event has nowhere
    // else to go).
    if agent.mode() != AgentMode::Startup || agent.registry().control().is_ready() {
        match OWNER.try_with(|owner| register(agent, owner)) {
            Ok(Ok(Some(ptr))) => return Some(ptr),
            Ok(Err(Busy)) | Err(_) => {
                agent
                    .registry()
                    .header()
                    .count_unregistered_drops(event.lane(), 1);
                return None;
            }
            // Refused a slot: the fallback ring, below.
            Ok(Ok(None)) => {}
        }
    }
    unregistered(agent, event);
    None
}

/// Re-entered, or the thread's storage is being torn down.
struct Busy;

/// An event of a thread without a writer, while the agent is not dormant: an index event goes
/// to the fallback ring (counted by the ring if it refuses); a detail event is counted.
fn unregistered(agent: &Agent, event: Unwritten) {
    let Unwritten::Index(kind, function_id) = event else {
        agent
            .registry()
            .header()
            .count_unregistered_drops(LaneKind::Detail, 1);
        return;
    };
    let Some(tid) = thread_id() else {
        agent
            .registry()
            .header()
            .count_unregistered_drops(LaneKind::Index, 1);
        return;
    };
    let Ok(depth) = DEPTH.try_with(Cell::get) else {
        agent
            .registry()
            .header()
            .count_unregistered_drops(LaneKind::Index, 1);
        return;
    };
    let (call_depth, after) = depth_after(kind, depth);
    let _ = DEPTH.try_with(|d| d.set(after));
    let record = IndexRecord {
        // The session clock, like the thread's own rings (the drain converts both alike).
        timestamp_ns: agent.clock().stamp(),
        function_id,
        thread_id: tid as u32,
        kind: kind as u32,
        call_depth,
        reserved: 0,
    };
    let pid = crate::global::process_id();
    let ring = agent.registry().fallback();
    if ring.is_none() {
        // A segment made without a fallback ring: the event has nowhere to go.
        agent
            .registry()
            .header()
            .count_unregistered_drops(LaneKind::Index, 1);
        return;
    }
    crate::fallback::push_index(ring, pid, tid, record.as_bytes());
}

/// The calling thread's OS thread id, read once (`None` while its storage is torn down).
fn thread_id() -> Option<u64> {
    TID.try_with(|t| {
        if t.get() == 0 {
            t.set(os_thread_id());
        }
        t.get()
    })
    .ok()
}

/// Counts one event lost while the agent is dormant (in the thread's own storage: as cheap as
/// the untraced early out allows), and follows an index event's nesting, so the thread's depth
/// is right when it records again.
///
/// The count's first use on a thread registers its destructor, which may run the program's
/// code (see [`SlowPath`]): a recording call from there is counted in the segment instead.
#[inline(always)]
fn count_dormant(event: Unwritten) {
    let Some(_slow) = SlowPath::enter() else {
        reentered(event);
        return;
    };
    count_dormant_in_slow_path(event);
}

/// [`count_dormant`] from inside the slow path (its guard held).
fn count_dormant_in_slow_path(event: Unwritten) {
    let lane = event.lane();
    let _ = DORMANT_LOST.try_with(|c| {
        let mut n = c.0.get();
        n[lane as usize] = n[lane as usize].wrapping_add(1);
        c.0.set(n);
    });
    if let Unwritten::Index(kind, _) = event {
        let _ = DEPTH.try_with(|d| d.set(depth_after(kind, d.get()).1));
    }
}

/// The writer's nesting convention for an index event of `kind` at call depth `depth`: the
/// depth it is recorded at, and the depth after it (an entry at its new depth, an exit at its
/// entry's).
fn depth_after(kind: EventKind, depth: u32) -> (u32, u32) {
    match kind {
        EventKind::Call => (depth.wrapping_add(1), depth.wrapping_add(1)),
        EventKind::Return => (depth, depth.saturating_sub(1)),
        _ => (depth, depth),
    }
}

/// Reports the events this thread lost while dormant (as events of a thread without a slot).
fn report_dormant_losses(agent: &Agent) {
    let Ok(lost) = DORMANT_LOST.try_with(|c| c.0.replace([0; 2])) else {
        return;
    };
    for lane in LaneKind::ALL {
        let n = lost[lane as usize];
        if n > 0 {
            agent.registry().header().count_unregistered_drops(lane, n);
        }
    }
}

/// Registers the thread (unless it already holds a writer, which means we were re-entered:
/// `Err(Busy)`); `Ok(None)` if it was refused a slot (now, or since the last slot was freed).
fn register(
    agent: &'static Agent,
    owner: &RefCell<Owner>,
) -> Result<Option<*mut ThreadWriter<'static>>, Busy> {
    let mut owner = owner.try_borrow_mut().map_err(|_| Busy)?;
    if owner.writer.is_some() {
        return Err(Busy);
    }
    let epoch = u64::from(agent.registry().header().reclaim_epoch()) + 1;
    if REFUSED_AT.get() == epoch {
        return Ok(None);
    }
    match ThreadWriter::register(agent) {
        Ok(writer) => {
            let mut boxed = Box::new(writer);
            boxed.set_depth(DEPTH.get());
            report_dormant_losses(agent);
            let ptr: *mut ThreadWriter<'static> = &mut *boxed;
            owner.writer = Some(boxed);
            Ok(Some(ptr))
        }
        Err(_) => {
            REFUSED_AT.set(epoch);
            Ok(None)
        }
    }
}

/// The writer said [`Flow::Leave`]: drop it (its counters are published and its slot handed to
/// the drain with what its rings hold); `FAST` stays null, so the thread's next event decides
/// afresh (registers with the new controller, or is dormant).
#[cold]
#[inline(never)]
fn leave() {
    let _ = OWNER.try_with(|owner| {
        if let Ok(mut owner) = owner.try_borrow_mut()
            && let Some(writer) = owner.writer.take()
        {
            // Its open calls carry over to what it records next.
            DEPTH.set(writer.depth());
            drop(writer);
        }
    });
}

/// Publishes the calling thread's counters and gives its slot back now (it registers again on
/// its next event). Returns whether it held one.
pub fn unregister_current_thread() -> bool {
    // The first use of `OWNER` on a thread registers its destructor (see `SlowPath`).
    let Some(_slow) = SlowPath::enter() else {
        return false;
    };
    OWNER
        .try_with(|owner| {
            let Ok(mut owner) = owner.try_borrow_mut() else {
                return false;
            };
            with_fast(|fast| fast.set(core::ptr::null_mut()));
            // A thread that hands its slot back on purpose starts afresh, at depth 0.
            DEPTH.set(0);
            owner.writer.take().is_some()
        })
        .unwrap_or(false)
}

extern "C" fn forget_parent_writer() {
    with_fast(|fast| fast.set(core::ptr::null_mut()));
    // The child is another thread of another process: read its id again; the losses its copy
    // of the parent thread's storage counted are the parent's to report.
    TID.set(0);
    let _ = DORMANT_LOST.try_with(|c| c.0.set([0; 2]));
    crate::global::forget_watcher();
    let _ = OWNER.try_with(|owner| {
        if let Ok(mut owner) = owner.try_borrow_mut() {
            // The slot is the parent thread's: neither unregister it nor touch its rings.
            std::mem::forget(owner.writer.take());
        }
    });
}

/// Registers the `fork` child handler once per process.
pub(crate) fn install_fork_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forget_parent_writer` is an `extern "C" fn()` that only touches this
        // thread's TLS cells; registering it has no other precondition.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_parent_writer)) };
        if rc != 0 {
            eprintln!("ada-agent: pthread_atfork failed ({rc}); a forked child must not record");
        }
    });
}
