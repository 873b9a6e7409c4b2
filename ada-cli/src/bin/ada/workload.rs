//! `ada workload` (hidden): the bundled multi-threaded program `ada demo` traces, and the
//! sequence-numbered load the soak and crash tests and the benchmarks drive.

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
    #[arg(long)]
    pub seq: bool,
    /// Instead of long-lived workers: start this many short-lived threads, each recording
    /// `--events` sequence-numbered events and exiting; `--threads` of them run at a time.
    #[arg(long, default_value_t = 0)]
    pub churn: u64,
}

static HANDLE: Callsite = Callsite::new("handle_request");
static PARSE: Callsite = Callsite::new("parse_request");
static COMPUTE: Callsite = Callsite::new("compute");
static FIB: Callsite = Callsite::new("fib");
static RESPOND: Callsite = Callsite::new("send_response");
static SLOW: Callsite = Callsite::new("slow_request");
static INFO: Callsite = Callsite::new("info");

/// `ada demo`'s pace: requests per second per worker thread.
pub const DEMO_RATE: u64 = 2_000;

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
                    } else {
                        demo_worker(t, &args)
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
            let slow = request % 500 == 499;
            if slow {
                ada_agent::mark(
                    &SLOW,
                    &format!("request {request} on worker {thread} took the slow path"),
                );
            }
            fib(if slow { 10 } else { 3 + (size % 4) as u32 })
        };
        {
            let _r = ada_agent::span(&RESPOND);
            std::hint::black_box(result);
        }
        pacer.wait(request + 1);
    }
    ada_agent::message(&INFO, &format!("worker {thread} done"));
}
