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
//! - `tracing_layer/{ada,fmt,chrome}_{span,event}`: one `tracing` workload (`span`: enter +
//!   exit of a span made once; `event`: `info!(x = 1, "msg")`) recorded by the registry with,
//!   in turn, `ada-tracing`'s layer (under the same live drain), `tracing-subscriber`'s `fmt`
//!   layer (span events `ACTIVE`, so it records each enter and exit too) writing to
//!   `std::io::sink()`, and `tracing-chrome`'s layer writing to a temporary file from its own
//!   writer thread (pinned with the other non-measured threads). Each subscriber is the
//!   thread's default only while its benchmarks run. `tracing_layer/registry_{span,event}`
//!   run the same workload with the registry alone (no layer): what all three pay first.
//! - `lttng/tracepoint_32b` (only when built with lttng-ust ≥ 2.13, `cfg(ada_peers_lttng)`):
//!   one LTTng-UST tracepoint with a 32-byte payload (two u64 and two u32 fields) per
//!   iteration, fired from the C provider in `c/` through [`lttng_event`]; it records only
//!   while an LTTng session has `ada_peers:*` enabled, which `cargo xtask bench-peers` sets up
//!   around the run.
//! - `tracy/span` (feature `tracy`, on by default): `tracy_client::span!` (begin + end) after
//!   `tracy_client::Client::start()`, with a capture connected ([`TracyConsumer`], a stand-in
//!   for the Tracy server that reads and discards what the client sends). Where it cannot
//!   connect the bench says why and measures `tracy/span_no_server` instead.
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
//! tracing, no sampling, which as root would start collectors competing for the CPU). Tracy
//! never drops: what its worker has not sent stays queued in memory (60–80 bytes a span on the
//! development VM; every span, with no server connected), so the group runs a fixed 0.5 s
//! warm-up and 1 s measurement whatever the command line asks. Without a server the queue's
//! growth dominates a span's cost, which is why the capture connects first. The `ondemand`
//! feature would bound memory but measure a span that records nothing.

#![deny(unsafe_op_in_unsafe_fn)]

/// The counter the TSC floor is stamped with: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64, 0
/// where neither exists (the bench then skips the TSC floor).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub fn floor_ticks() -> u64 {
    // The same hot-path read the agents stamp with.
    ada_shm::tsc::ticks()
}

/// See the other [`floor_ticks`]: no counter on this architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
pub fn floor_ticks() -> u64 {
    0
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

/// A stand-in for the Tracy server: connects to this process's Tracy client as the profiler
/// GUI or `tracy-capture` would, completes the handshake, and reads (and discards) everything
/// the client sends, on a thread of its own. With it the client's worker serialises,
/// compresses and sends its queue, so the queue's memory is recycled as in a real capture;
/// without any server Tracy keeps every span in memory and its per-span cost is dominated by
/// that growth.
#[cfg(feature = "tracy")]
pub struct TracyConsumer {
    stream: std::net::TcpStream,
    reader: std::thread::JoinHandle<u64>,
}

#[cfg(feature = "tracy")]
impl TracyConsumer {
    /// Tracy's protocol version this consumer speaks: `tracy::ProtocolVersion` in
    /// `TracyProtocol.hpp` of the `tracy-client-sys` the bench builds (0.30: 82). A client of
    /// another version answers "protocol mismatch", which [`connect`](Self::connect) reports.
    pub const PROTOCOL_VERSION: u32 = 82;
    /// `sizeof(tracy::WelcomeMessage)` (packed) for that version.
    const WELCOME_SIZE: usize = 8 * 8 + 1 + 1 + 12 + 4 + 64 + 1024;

    /// Connects to the client listening on `port` of this host (Tracy's default is 8086),
    /// retrying for `timeout` while it starts listening; `Err` says why no capture runs.
    pub fn connect(port: u16, timeout: std::time::Duration) -> Result<Self, String> {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + timeout;
        let mut stream = loop {
            let tried = std::net::TcpStream::connect(("127.0.0.1", port))
                .or_else(|_| std::net::TcpStream::connect(("::1", port)));
            match tried {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(format!("no Tracy client answers on port {port}: {e}"));
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let io = |e: std::io::Error| format!("Tracy handshake: {e}");
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        let mut hello = Vec::with_capacity(12);
        hello.extend_from_slice(b"TracyPrf");
        hello.extend_from_slice(&Self::PROTOCOL_VERSION.to_le_bytes());
        stream.write_all(&hello).map_err(io)?;
        let mut status = [0u8; 1];
        stream.read_exact(&mut status).map_err(io)?;
        match status[0] {
            1 => {}
            2 => {
                return Err(format!(
                    "the Tracy client speaks another protocol than version {} (update \
                     TracyConsumer::PROTOCOL_VERSION)",
                    Self::PROTOCOL_VERSION
                ));
            }
            s => {
                return Err(format!(
                    "the Tracy client refused the connection (status {s})"
                ));
            }
        }
        let mut welcome = vec![0u8; Self::WELCOME_SIZE];
        stream.read_exact(&mut welcome).map_err(io)?;
        stream.set_read_timeout(None).map_err(io)?;
        let mut rx = stream.try_clone().map_err(io)?;
        let reader = std::thread::Builder::new()
            .name("tracy-consumer".into())
            .spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                while let Ok(n) = rx.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                total
            })
            .map_err(|e| format!("could not start the consumer thread: {e}"))?;
        Ok(TracyConsumer { stream, reader })
    }

    /// Disconnects (the client then stops sending and frees its queue) and returns the bytes
    /// received.
    pub fn finish(self) -> u64 {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.reader.join().unwrap_or(0)
    }
}
