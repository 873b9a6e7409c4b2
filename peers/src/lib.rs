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
