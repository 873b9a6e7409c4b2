//! `ada-peers`: a same-run comparison of ADA's per-event cost with its peers and with the floor
//! any tracer pays, run by `cargo xtask bench-peers` (never by `cargo xtask ci`: it is slow,
//! noisy, and needs system packages).
//!
//! One criterion bench binary (`benches/peers.rs`) measures, in one process and one run:
//!
//! - `floor/tls_store_plus_tsc`: a bare thread-local 32-byte store stamped with the time-stamp
//!   counter ([`floor_ticks`]); `floor/tls_store_plus_clock_gettime`: the same store stamped with
//!   `CLOCK_MONOTONIC` (`ada_shm::clock::MonotonicClock::read`).
//! - `ada/enter_id_live_drain` and `ada/span_live_drain`: `ada_agent::enter_id` and an
//!   `ada_agent::span` (entry + exit) while a controller drains the rings live into an ATF trace
//!   in the same process, set up as `ada-controller/benches/producer.rs` does.
//! - `lttng/tracepoint_32b` (only when built with lttng-ust ≥ 2.13, `cfg(ada_peers_lttng)`):
//!   one LTTng-UST tracepoint with a 32-byte payload (two u64 and two u32 fields) per
//!   iteration, fired from the C provider in `c/` through [`lttng_event`]; it records only
//!   while an LTTng session has `ada_peers:*` enabled, which `cargo xtask bench-peers` sets up
//!   around the run.
//! - `tracy/span` (feature `tracy`, on by default): `tracy_client::span!` (begin + end) after
//!   `tracy_client::Client::start()`, with no server connected.
//!
//! The traced thread runs on CPU 0 and every other thread of the process (ADA's drain, sink
//! and fsync threads, Tracy's worker, lttng-ust's listeners) on CPU 1 ([`pin_threads`]), as
//! in ADA's producer bench.
//!
//! Running: `cargo xtask bench-peers [-- CRITERION_ARGS]` installs LTTng where it can, records
//! the session, runs this bench and prints the medians and issue 15's ratios (see the README's
//! "Comparing with peers"). Run by hand (`cargo bench --manifest-path peers/Cargo.toml`), the
//! `lttng` group measures a tracepoint no session enables, which is not LTTng's recording cost.
//!
//! Building: `build.rs` compiles the C provider when pkg-config finds lttng-ust ≥ 2.13 and
//! `ADA_PEERS_LTTNG` is not `0`; otherwise the bench has no `lttng` group (a cargo warning
//! says why). It links with `--no-gc-sections`: lttng-ust finds the provider's callsites
//! through weak `__start___tracepoints_ptrs` symbols, which do not keep the section alive, so
//! the linker's section GC would silently drop them. `--no-default-features` leaves Tracy out.
//!
//! Tracy's group: `tracy-client` with only its `enable` feature (no system or context-switch
//! tracing, no sampling, which as root would start collectors competing for the CPU). With no
//! server connected Tracy keeps every span in memory (60–80 bytes each on the development
//! VM), so the group runs a fixed 0.5 s warm-up and 1 s measurement whatever the command line
//! asks (about 3 GB at 40 ns a span). The `ondemand` feature would bound memory but measure a
//! span that records nothing.

#![deny(unsafe_op_in_unsafe_fn)]

/// The counter the TSC floor is stamped with: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64, 0
/// where neither exists (the bench then skips the TSC floor).
#[inline(always)]
pub fn floor_ticks() -> u64 {
    ada_shm::tsc::read().unwrap_or(0)
}

/// Whether [`floor_ticks`] reads a real counter on this machine.
pub fn has_tsc() -> bool {
    ada_shm::tsc::read().is_some()
}

#[cfg(ada_peers_lttng)]
mod lttng_ffi {
    // SAFETY: `ada_peers_lttng_event` is defined in `c/ada_peers_tp.c` with exactly this
    // signature; it takes integers by value, touches no memory of the caller and has no
    // preconditions (the tracepoint is a no-op until a session enables it), so it is `safe`.
    unsafe extern "C" {
        pub safe fn ada_peers_lttng_event(id: u64, arg: u64, kind: u32, thread: u32);
    }
}

/// Fires the `ada_peers:event32` LTTng-UST tracepoint once (a 32-byte payload).
#[cfg(ada_peers_lttng)]
#[inline]
pub fn lttng_event(id: u64, arg: u64, kind: u32, thread: u32) {
    lttng_ffi::ada_peers_lttng_event(id, arg, kind, thread);
}

/// Pins the calling thread to CPU 0 and every other thread of this process to CPU 1 (best
/// effort: with fewer than 2 CPUs, or where affinity is not allowed, nothing is pinned).
/// Call it again after starting a component that spawns threads.
pub fn pin_threads() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    let cpu = |c: usize| {
        let mut set = rustix::thread::CpuSet::new();
        set.set(c);
        set
    };
    let me = rustix::thread::gettid();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let pid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
            .and_then(rustix::thread::Pid::from_raw);
        if let Some(pid) = pid.filter(|&p| p != me) {
            let _ = rustix::thread::sched_setaffinity(Some(pid), &cpu(1));
        }
    }
    let _ = rustix::thread::sched_setaffinity(None, &cpu(0));
}
