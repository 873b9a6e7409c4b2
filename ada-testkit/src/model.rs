//! One entry point for model-checked tests: [`check`] runs a closure under loom (`--cfg loom`),
//! under shuttle's randomized scheduler (`--cfg shuttle`), or once on real threads otherwise.
//!
//! Bounds: loom explores every interleaving up to `LOOM_MAX_PREEMPTIONS` preemptions (the
//! `cargo xtask loom` step sets 2, which loom's docs recommend for CI); shuttle runs
//! [`shuttle_iterations`] random schedules (env `ADA_SHUTTLE_ITERATIONS`, default 200).

/// How many random schedules a shuttle test explores.
pub fn shuttle_iterations() -> usize {
    std::env::var("ADA_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(200)
}

/// Runs `f` under the build's model checker (or once, in a normal build).
pub fn check<F>(f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    #[cfg(loom)]
    {
        loom::model(f);
    }
    #[cfg(all(shuttle, not(loom)))]
    {
        shuttle::check_random(f, shuttle_iterations());
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
        shuttle::check_pct(f, shuttle_iterations(), depth);
    }
    #[cfg(not(all(shuttle, not(loom))))]
    {
        let _ = depth;
        check(f);
    }
}
