//! A multi-threaded job instrumented with `tracing`, recorded by ADA through `ada-tracing`
//! beside `tracing-subscriber`'s `fmt` layer (which prints only warnings and errors).
//!
//! ```text
//! cargo build --example traced_job -p ada-tracing
//! ada trace -- target/debug/examples/traced_job
//! ada inspect ada_traces/...
//! ```
//!
//! Four workers each run a `worker` span holding 50 `item` spans, each with a `debug!` event;
//! one task instrumented with a `fetch` span is polled three times, on three different
//! threads, the way a work-stealing executor moves a task; then an `audit::report` span
//! marks (the layer's `mark_target("audit")` rule) and the job ends with an `error!`, which
//! marks too (the layer's default rule), so `ada trace` persists the window around them. Run untraced, the layer records nothing and the job runs the same.
//!
//! `ada-cli`'s test `tracing_layer` runs this program under `ada trace` and reads the trace
//! back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tracing::Instrument;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// The target of this program's spans and events (its module path: `traced_job` built as
/// the example).
pub const TARGET: &str = module_path!();
/// Worker threads.
pub const WORKERS: usize = 4;
/// `item` spans per worker.
pub const ITEMS: usize = 50;
/// Polls of the `fetch` task, each on its own thread.
pub const POLLS: usize = 3;

/// A future that is pending `left` times, then ready with how often it was polled.
struct Yields {
    left: usize,
    polls: usize,
}

impl Future for Yields {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        tracing::info!(poll = self.polls, "fetch polled");
        if self.left == 0 {
            Poll::Ready(self.polls)
        } else {
            self.left -= 1;
            Poll::Pending
        }
    }
}

/// The job: returns the items done and the polls the `fetch` task took.
pub fn run() -> (usize, usize) {
    let items: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                s.spawn(move || {
                    let _worker = tracing::info_span!("worker", w).entered();
                    let mut done = 0;
                    for i in 0..ITEMS {
                        let _item = tracing::info_span!("item", i).entered();
                        tracing::debug!(w, i, "item done");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().expect("worker")).sum()
    });

    // One task, polled on a new thread each time (enter and exit on the polling thread).
    let mut task = Box::pin(
        Yields {
            left: POLLS - 1,
            polls: 0,
        }
        .instrument(tracing::info_span!("fetch")),
    );
    let mut polls = None;
    for _ in 0..POLLS {
        let (back, ready) = std::thread::spawn(move || {
            let mut cx = Context::from_waker(Waker::noop());
            let ready = task.as_mut().poll(&mut cx);
            (task, ready)
        })
        .join()
        .expect("poller");
        task = back;
        if let Poll::Ready(n) = ready {
            polls = Some(n);
            break;
        }
    }
    let polls = polls.expect("the task finishes within POLLS polls");
    // Target `audit` marks (the layer's `mark_target("audit")`): a span marks when it is made.
    tracing::info_span!(target: "audit", "report", items).in_scope(|| {
        tracing::debug!(items, polls, "report written");
    });
    tracing::error!(code = 7, "job failed: simulated error after {items} items");
    (items, polls)
}

/// Sets up the subscriber (ADA's layer beside `fmt`) and runs the job.
pub fn main() {
    tracing_subscriber::registry()
        .with(ada_tracing::layer().mark_target("audit"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        )
        .init();
    let (items, polls) = run();
    println!("items={items} polls={polls}");
}
