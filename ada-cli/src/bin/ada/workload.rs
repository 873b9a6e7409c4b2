//! `ada workload` (hidden): the bundled multi-threaded program `ada demo` traces, and the
//! sequence-numbered loads the soak, crash and persistence tests and the benchmarks drive.
//!
//! Modes:
//! - default (the demo): each worker handles `--events` requests; each request is a few nested
//!   spans and one detail record, and every `--slow-every`-th request takes the slow path through
//!   the `slow_request` callsite (which `--trigger symbol=slow_request` turns into a mark).
//! - `--seq`: index events only, function id = `(thread << 32) | seq`.
//! - `--detail-seq`: per worker, for each request number `seq` in `0..--events`, one detail
//!   record at the `request` callsite whose registers are `[seq, thread]` and whose stack bytes
//!   are `seq` then `thread` (`u64` little-endian each), followed, for every
//!   `--slow-every`-th request (`seq % N == N - 1`), by a `slow_request` span. A trace of it says
//!   exactly which requests' detail events were persisted.
//! - `--linger MS` (any mode): each worker then waits MS milliseconds and records one more span
//!   (index lane) and one detail record, so a loss the burst ended in is marked in the stream
//!   once the drain has returned rings (the backpressure tests use it).

use ada_agent::{Callsite, Detail};
use std::time::{Duration, Instant};

/// What the workload does.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkloadArgs {
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    pub threads: u32,
    /// Events per thread (`--seq`) or requests per thread (demo).
    #[arg(long, default_value_t = 2_000)]
    pub events: u64,
    /// Events per second per thread (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Sequence-numbered index events: function id = (thread << 32) | seq.
    #[arg(long, conflicts_with = "detail_seq")]
    pub seq: bool,
    /// Sequence-numbered detail records (registers [seq, thread]), every --slow-every-th one
    /// followed by a `slow_request` span.
    #[arg(long)]
    pub detail_seq: bool,
    /// Every N-th request takes the slow path through `slow_request` (0: none).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub slow_every: u64,
    /// Instead of long-lived workers: start this many short-lived threads, each recording
    /// `--events` sequence-numbered events and exiting; `--threads` of them run at a time.
    #[arg(long, default_value_t = 0)]
    pub churn: u64,
    /// After its work, each worker waits this many milliseconds and records one span and one
    /// detail record (0: not).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub linger: u64,
}

static HANDLE: Callsite = Callsite::new("handle_request");
static PARSE: Callsite = Callsite::new("parse_request");
static COMPUTE: Callsite = Callsite::new("compute");
static FIB: Callsite = Callsite::new("fib");
static RESPOND: Callsite = Callsite::new("send_response");
static SLOW: Callsite = Callsite::new("slow_request");
static INFO: Callsite = Callsite::new("info");
static REQUEST: Callsite = Callsite::new("request");

/// `ada demo`'s pace: requests per second per worker thread.
pub const DEMO_RATE: u64 = 2_000;
/// `ada demo`'s requests per worker (two seconds at [`DEMO_RATE`]).
pub const DEMO_EVENTS: u64 = 2 * DEMO_RATE;
/// `ada demo`'s slow requests: one per worker per second, the sparse marks a flight recorder
/// is for.
pub const DEMO_SLOW_EVERY: u64 = DEMO_RATE;

/// Whether request `n` takes the slow path: every `every`-th one (none when `every` is 0).
fn is_slow(n: u64, every: u64) -> bool {
    every != 0 && n % every == every - 1
}

/// Runs the workload; returns the process exit code.
pub fn run(args: &WorkloadArgs) -> i32 {
    if let Some(e) = ada_agent::attach_error() {
        // The error may quote `ADA_SHM`, which comes from the environment.
        eprintln!("ada workload: not traced: {}", ada_cli::escape::escape(e));
    }
    if args.churn > 0 {
        return churn(args);
    }
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let args = args.clone();
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    if args.seq {
                        sequenced(t, &args)
                    } else if args.detail_seq {
                        detail_sequenced(t, &args)
                    } else {
                        demo_worker(t, &args)
                    }
                    if args.linger > 0 {
                        linger(args.linger);
                    }
                })
        })
        .collect();
    let mut code = 0;
    for w in workers {
        match w {
            Ok(handle) => {
                if handle.join().is_err() {
                    code = 1;
                }
            }
            Err(e) => {
                eprintln!("ada workload: cannot start a thread: {e}");
                code = 1;
            }
        }
    }
    code
}

/// Keeps `done` events on the schedule of `rate` per second (no-op when `rate` is 0). The rate
/// is a ceiling: a thread that fell behind (descheduled) does not burst to catch up, it moves
/// its schedule instead, so it never writes faster than `rate` over a batch.
struct Pacer {
    start: Instant,
    rate: u64,
}

impl Pacer {
    fn due(&self, done: u64) -> Duration {
        Duration::from_nanos((u128::from(done) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }

    fn wait(&mut self, done: u64) {
        if self.rate == 0 {
            return;
        }
        let due = self.due(done);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        } else if elapsed - due > Duration::from_millis(1) {
            self.start = Instant::now() - due;
        }
    }
}

fn sequenced(thread: u32, args: &WorkloadArgs) {
    let mut pacer = Pacer {
        start: Instant::now(),
        rate: args.rate,
    };
    const BATCH: u64 = 256;
    let mut seq = 0u64;
    while seq < args.events {
        let end = (seq + BATCH).min(args.events);
        for s in seq..end {
            ada_agent::enter_id((u64::from(thread) << 32) | s);
        }
        seq = end;
        pacer.wait(seq);
    }
}

/// `--detail-seq`: see the module docs.
fn detail_sequenced(thread: u32, args: &WorkloadArgs) {
    let mut pacer = Pacer {
        start: Instant::now(),
        rate: args.rate,
    };
    let t = u64::from(thread);
    for seq in 0..args.events {
        let mut stack = [0u8; 16];
        stack[..8].copy_from_slice(&seq.to_le_bytes());
        stack[8..].copy_from_slice(&t.to_le_bytes());
        ada_agent::detail(
            &REQUEST,
            Detail {
                registers: &[seq, t],
                stack: &stack,
                message: b"",
            },
        );
        if is_slow(seq, args.slow_every) {
            let _s = ada_agent::span(&SLOW);
        }
        pacer.wait(seq + 1);
    }
}

/// `--linger`: see the module docs.
fn linger(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    let _s = ada_agent::span(&INFO);
    ada_agent::detail(
        &INFO,
        Detail {
            registers: &[],
            stack: &[],
            message: b"",
        },
    );
}

/// `--churn`: `args.churn` short-lived threads, `args.threads` at a time, each recording
/// `args.events` index events.
fn churn(args: &WorkloadArgs) -> i32 {
    let mut started = 0u64;
    while started < args.churn {
        let batch = u64::from(args.threads.max(1)).min(args.churn - started);
        let handles: Vec<_> = (0..batch)
            .map(|i| {
                let (thread, events) = ((started + i) as u32, args.events);
                std::thread::Builder::new().spawn(move || {
                    for s in 0..events {
                        ada_agent::enter_id((u64::from(thread) << 32) | s);
                    }
                })
            })
            .collect();
        for h in handles {
            match h.map(std::thread::JoinHandle::join) {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return 1,
                Err(e) => {
                    eprintln!("ada workload: cannot start a thread: {e}");
                    return 1;
                }
            }
        }
        started += batch;
    }
    0
}

fn fib(n: u32) -> u64 {
    let _s = ada_agent::span(&FIB);
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn demo_worker(thread: u32, args: &WorkloadArgs) {
    let mut pacer = Pacer {
        start: Instant::now(),
        rate: args.rate,
    };
    ada_agent::message(&INFO, &format!("worker {thread} starting"));
    for request in 0..args.events {
        let _h = ada_agent::span(&HANDLE);
        let size = {
            let _p = ada_agent::span(&PARSE);
            (request * 7919 + u64::from(thread)) % 1000
        };
        ada_agent::detail(
            &HANDLE,
            Detail {
                registers: &[request, size, u64::from(thread)],
                stack: &size.to_le_bytes(),
                message: b"",
            },
        );
        let result = {
            let _c = ada_agent::span(&COMPUTE);
            if is_slow(request, args.slow_every) {
                // A mark only when a trigger names `slow_request` (as `ada demo`'s does).
                let _s = ada_agent::span(&SLOW);
                ada_agent::message(
                    &SLOW,
                    &format!("request {request} on worker {thread} took the slow path"),
                );
                fib(10)
            } else {
                fib(3 + (size % 4) as u32)
            }
        };
        {
            let _r = ada_agent::span(&RESPOND);
            std::hint::black_box(result);
        }
        pacer.wait(request + 1);
    }
    ada_agent::message(&INFO, &format!("worker {thread} done"));
}
