//! One entry point for model-checked tests: [`check`] runs a closure under loom (`--cfg loom`),
//! under shuttle's randomized scheduler (`--cfg shuttle`), or once on real threads otherwise;
//! plus the means to show that a model checked something: a vacuity guard in [`check`],
//! [`Witness`] counters, and [`leak`] for building a model's objects before it spawns.
//!
//! Bounds: loom explores every interleaving up to `LOOM_MAX_PREEMPTIONS` preemptions (the
//! `cargo xtask loom` step sets 2, which loom's docs recommend for CI); shuttle runs
//! [`shuttle_iterations`] random schedules (env `ADA_SHUTTLE_ITERATIONS`, default 200).
//!
//! # Vacuity guard
//! A loom model that explores a single execution checks nothing about concurrency: it ran one
//! interleaving, the one a plain test would have run. So [`check`] (and [`check_pct`] under
//! loom) counts the executions loom ran and **panics** when there were fewer than
//! [`MIN_LOOM_EXECUTIONS`] (two). Every model run through [`check`] is meant to spawn threads;
//! a model that spawns none has one execution by construction and belongs in a plain test. The
//! guard is off when `LOOM_MAX_PREEMPTIONS=0` (loom then switches threads only where one
//! blocks, so one execution can be the honest answer) and when `LOOM_MAX_PERMUTATIONS` caps
//! the run. Under shuttle the count is the configured number of random schedules by
//! construction; it is checked to match (a closure that never ran would be caught), nothing
//! more.
//!
//! More than one execution is not yet proof that the races a model is about were tried. A
//! [`Witness`] counts the executions that reached a given situation (the drain saw a slot
//! ACTIVE, a live copy lost to a recycle, ...) and fails the test under loom if none did.
//!
//! Set `ADA_MODEL_STATS=1` to print `model: N <checker> executions (<test>)` per model to
//! stderr (with `--nocapture`); that is how the suites' sizes are measured.
//!
//! # The loom pitfall behind both
//! Loom 0.7's DPOR keeps only the *last* access to each atomic. When a thread loads a word and
//! later stores (or compare-and-swaps) it, its own load is the last access loom sees at the
//! store, so a load another thread made of that word *earlier in the schedule* is never
//! reordered after the store: loom finds no race there and never tries that order
//! (tokio-rs/loom#392, #166). Queue ends read their own position when they are built; a slot
//! claim reads the slot word before its compare-and-swap. Two ways around it, used by the
//! suites:
//! - build every queue end, writer and drain on the model's main thread *before* spawning
//!   ([`leak`] gives them the `'static` lifetime `thread::spawn` needs; a heap lane's safe
//!   `split` then yields `'static` ends), so no spawned thread's first access to a shared word
//!   is a load of its own position;
//! - run the side that only observes (a drain walk, a reader) in a thread spawned *after* the
//!   threads it observes: loom's first schedule then runs it last, and loom works backwards
//!   from there through the loads it does see (a load always races the last store).
//!
//! The ring pool suites had run exactly one execution each (their producer thread built its
//! queue ends inside the spawned closure), and the registry's concurrent-registration model
//! never once let its drain see an ACTIVE slot; both passed with a Relaxed publication in
//! place of a Release one. Loom cannot find every bug even so: its compare-and-swaps read the
//! latest value in execution order, so fences that only matter for a weak-memory reordering of
//! a load before a CAS (the `consumed` seqlock's) are not checked by it.

/// The fewest executions a loom model run through [`check`] must explore (see the module
/// docs: one execution means loom found no alternative schedule at all).
pub const MIN_LOOM_EXECUTIONS: usize = 2;

/// How many random schedules a shuttle test explores.
pub fn shuttle_iterations() -> usize {
    std::env::var("ADA_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(200)
}

/// Moves `value` to the heap for good and returns a `'static` exclusive reference to it, so a
/// model can build its lanes, queue ends, writers and drains on the model's main thread and
/// move them into `thread::spawn` closures (which must be `'static`); with `&'static mut` a
/// heap lane's safe `split` gives `'static` ends. Each call leaks `value`: one lane and its
/// rings are a few KiB per loom execution. Tests only.
pub fn leak<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}

/// A count of the executions that reached a situation a model exists to check (the drain saw
/// a slot ACTIVE, a live copy lost its race with a recycle, ...), kept outside the model. The
/// vacuity guard of [`check`] only knows that loom tried more than one schedule; a witness
/// shows that the schedules that matter were among them. Under loom,
/// [`expect_reached`](Self::expect_reached) panics if no execution reached the situation; in
/// other builds (one real run, or shuttle's random sample) it checks nothing, since one run
/// may legitimately miss it.
///
/// ```
/// use ada_testkit::model::{self, Witness};
///
/// let busy = Witness::new();
/// let seen = busy.clone();
/// model::check(move || {
///     // ... a model in which something is sometimes observed ...
///     seen.hit();
/// });
/// busy.expect_reached("the situation the model is about");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Witness(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Witness {
    /// A witness that nothing has reached yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that this execution reached the situation.
    pub fn hit(&self) {
        // Relaxed: a plain tally (a `std` atomic on purpose: outside the model, unscheduled),
        // read after the checker returned.
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many times [`hit`](Self::hit) was called, over all executions so far.
    pub fn count(&self) -> usize {
        // Relaxed: read after the checker returned on this thread.
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Under loom, panics with `what` unless some execution reached the situation (except
    /// where the vacuity guard is off too: `LOOM_MAX_PREEMPTIONS=0`, `LOOM_MAX_PERMUTATIONS`);
    /// in other builds, does nothing.
    pub fn expect_reached(&self, what: &str) {
        #[cfg(loom)]
        assert!(
            self.count() > 0 || !loom_guard_applies(),
            "loom explored no execution in which {what}: the model checks less than it claims \
             (see ada_testkit::model on tokio-rs/loom#392)"
        );
        #[cfg(not(loom))]
        let _ = what;
    }
}

/// The runs of a model's closure, counted in a `std` atomic on purpose: the tally lives outside
/// the model, and loom or shuttle must neither see nor schedule it.
#[cfg(any(loom, shuttle))]
type Runs = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// `f`, counting its runs.
#[cfg(any(loom, shuttle))]
fn counted<F>(f: F) -> (impl Fn() + Send + Sync + 'static, Runs)
where
    F: Fn() + Send + Sync + 'static,
{
    let runs = Runs::default();
    let tally = runs.clone();
    let run = move || {
        // Relaxed: a plain tally, read after the checker returned (see `check`).
        tally.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    };
    (run, runs)
}

/// Prints the execution count if `ADA_MODEL_STATS` is set.
#[cfg(any(loom, shuttle))]
fn report(kind: &str, runs: usize) {
    if std::env::var_os("ADA_MODEL_STATS").is_some() {
        let name = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_owned();
        eprintln!("model: {runs} {kind} executions ({name})");
    }
}

/// Whether the loom vacuity guard applies under the current environment (see the module docs).
#[cfg(loom)]
fn loom_guard_applies() -> bool {
    let no_preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").is_ok_and(|v| v.trim() == "0");
    let capped = std::env::var_os("LOOM_MAX_PERMUTATIONS").is_some();
    !no_preemptions && !capped
}

/// Panics if a loom model explored fewer than [`MIN_LOOM_EXECUTIONS`] executions.
#[cfg(loom)]
fn loom_guard(runs: usize) {
    report("loom", runs);
    assert!(
        runs >= MIN_LOOM_EXECUTIONS || !loom_guard_applies(),
        "vacuous loom model: loom explored {runs} execution(s), so no interleaving was checked. \
         Does the model spawn threads (through ada_shm::sync::thread)? Are all shared words loom \
         atomics? A spawned thread that first loads a word it later stores hides the other \
         threads' loads of it from loom (tokio-rs/loom#392): build queue ends, writers and \
         drains before spawning (see ada_testkit::model::leak)."
    );
}

/// Runs `f` under the build's model checker (or once, in a normal build). Under loom it
/// panics if loom explored only one execution (see the module docs).
pub fn check<F>(f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    #[cfg(loom)]
    {
        let (run, runs) = counted(f);
        loom::model(run);
        // Relaxed: loom has returned; every run happened on this thread or was joined by it.
        loom_guard(runs.load(std::sync::atomic::Ordering::Relaxed));
    }
    #[cfg(all(shuttle, not(loom)))]
    {
        let iterations = shuttle_iterations();
        let (run, runs) = counted(f);
        shuttle::check_random(run, iterations);
        // Relaxed: shuttle has returned (see the loom case).
        let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
        report("shuttle", runs);
        assert_eq!(
            runs, iterations,
            "shuttle ran the model {runs} times, not {iterations}"
        );
    }
    #[cfg(not(any(loom, shuttle)))]
    {
        f();
    }
}

/// Runs `f` under shuttle's PCT scheduler (good at finding ordering bugs with few preemptions),
/// in addition to [`check`]'s random schedules. In other builds it behaves like [`check`].
pub fn check_pct<F>(f: F, depth: usize)
where
    F: Fn() + Send + Sync + 'static,
{
    #[cfg(all(shuttle, not(loom)))]
    {
        let iterations = shuttle_iterations();
        let (run, runs) = counted(f);
        shuttle::check_pct(run, iterations, depth);
        // Relaxed: shuttle has returned.
        let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
        report("shuttle-pct", runs);
        assert_eq!(
            runs, iterations,
            "shuttle ran the model {runs} times, not {iterations}"
        );
    }
    #[cfg(not(all(shuttle, not(loom))))]
    {
        let _ = depth;
        check(f);
    }
}
