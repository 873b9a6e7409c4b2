//! The peers bench: ADA's record cost next to the store + clock floor, LTTng-UST's tracepoint
//! and Tracy's `span!`, all measured in this one process and run (see the crate docs of
//! `ada-peers` for what each benchmark is). Run it with `cargo xtask bench-peers`, which also
//! records the LTTng session the `lttng` group needs; a bare
//! `cargo bench --manifest-path peers/Cargo.toml` measures LTTng's disabled tracepoint instead.
//!
//! Groups run in order floor, ada, lttng, tracy: Tracy's client starts only in its own group,
//! so its worker thread is not running during the others.

use ada_controller::{ControllerBuilder, SessionInfo};
use criterion::measurement::WallTime;
use criterion::{Criterion, criterion_group, criterion_main};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static BARE: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

/// The port Tracy's client listens on (its default; `TRACY_PORT` unset).
#[cfg(feature = "tracy")]
const TRACY_PORT: u16 = 8086;
/// How long the capture waits for Tracy's client to listen.
#[cfg(feature = "tracy")]
const TRACY_CONNECT: std::time::Duration = std::time::Duration::from_secs(5);
/// The Tracy group's warm-up time (fixed: see where it is used).
#[cfg(feature = "tracy")]
const TRACY_WARM_UP: std::time::Duration = std::time::Duration::from_millis(500);
/// The Tracy group's measurement time (fixed: see where it is used).
#[cfg(feature = "tracy")]
const TRACY_MEASUREMENT: std::time::Duration = std::time::Duration::from_secs(1);

fn bench(c: &mut Criterion) {
    let out = tempfile::tempdir().expect("temporary directory for the ADA trace");
    let controller = ControllerBuilder::new()
        .capacity(4)
        .output_dir(out.path())
        .create()
        .expect("ADA controller");
    ada_agent::install(ada_agent::Agent::from_registry(
        controller.registry().clone(),
    ))
    .expect("first agent of this process");
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .expect("ADA session");
    ada_peers::pin_threads();
    static SITE: ada_agent::Callsite = ada_agent::Callsite::new("bench_site");

    let mut g = c.benchmark_group("floor");
    if ada_peers::has_tsc() {
        g.bench_function("tls_store_plus_tsc", |b| {
            b.iter(|| {
                let ts = ada_peers::floor_ticks();
                BARE.set([ts, black_box(7), 1, 1]);
            })
        });
    } else {
        eprintln!("peers bench: no time-stamp counter on this architecture; TSC floor skipped");
    }
    g.bench_function("tls_store_plus_clock_gettime", |b| {
        b.iter(|| {
            let ts = ada_shm::clock::MonotonicClock::read();
            BARE.set([ts, black_box(7), 1, 1]);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ada");
    g.bench_function("enter_id_live_drain", |b| {
        b.iter(|| ada_agent::enter_id(black_box(7)))
    });
    g.bench_function("span_live_drain", |b| {
        b.iter(|| drop(ada_agent::span(black_box(&SITE))))
    });
    g.finish();

    tracing_layer(c);

    let report = running.stop(None).expect("ADA session stop");
    eprintln!(
        "peers bench: ADA persisted {} events, dropped {} (criterion writes far faster than one drain core persists)",
        report.persisted(),
        report.dropped()
    );

    #[cfg(ada_peers_lttng)]
    {
        let mut g = c.benchmark_group("lttng");
        g.bench_function("tracepoint_32b", |b| {
            b.iter(|| ada_peers::lttng_event(black_box(7), 1, 1, 1))
        });
        g.finish();
    }
    #[cfg(not(ada_peers_lttng))]
    eprintln!("peers bench: built without lttng-ust; LTTng group skipped");

    #[cfg(feature = "tracy")]
    {
        let _client = tracy_client::Client::start();
        // Connected as a Tracy server would be (see `TracyConsumer`): the client's worker
        // sends its queue and recycles its memory, as in a real capture.
        let consumer = ada_peers::TracyConsumer::connect(TRACY_PORT, TRACY_CONNECT);
        ada_peers::pin_threads();
        let mut g = c.benchmark_group("tracy");
        // Tracy never drops: what its worker does not send in time stays queued in memory
        // (60–80 bytes a span; always so without a server). The group runs a fixed, short
        // time whatever the command line asks, so the queue stays within a few GB.
        g.warm_up_time(TRACY_WARM_UP);
        g.measurement_time(TRACY_MEASUREMENT);
        let name = match &consumer {
            Ok(_) => "span",
            Err(why) => {
                eprintln!("peers bench: no Tracy capture ({why}); measuring `span_no_server`");
                "span_no_server"
            }
        };
        g.bench_function(name, |b| {
            b.iter(|| drop(black_box(tracy_client::span!("bench_site"))))
        });
        g.finish();
        if let Ok(consumer) = consumer {
            eprintln!(
                "peers bench: the Tracy capture received {} MB",
                consumer.finish() >> 20
            );
        }
    }
    #[cfg(not(feature = "tracy"))]
    eprintln!("peers bench: built without feature `tracy`; Tracy group skipped");
}

/// The `tracing_layer` group: one `tracing` workload recorded by three subscribers in turn,
/// each the registry plus one layer, made the thread's default for its benchmarks only:
/// `ada` (`ada_tracing::layer()`, under the live drain `bench` started), `fmt`
/// (`tracing_subscriber::fmt::layer()` writing to `std::io::sink()`, with span events
/// `FmtSpan::ACTIVE` so that it records each enter and exit as ADA does; without them `fmt`
/// records nothing for a span) and `chrome` (`tracing-chrome`'s layer writing its JSON to a
/// temporary file from its own writer thread). Workloads: `span` (enter + exit of a span
/// created once) and `event` (`info!(x = 1, "msg")`). `registry` runs them with the registry
/// alone, no layer: the part of each subscriber's figure that is not the layer's.
fn tracing_layer(c: &mut Criterion) {
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;

    fn workloads<S>(g: &mut criterion::BenchmarkGroup<'_, WallTime>, who: &str, subscriber: S)
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("bench_span");
            g.bench_function(format!("{who}_span"), |b| {
                b.iter(|| drop(black_box(&span).enter()))
            });
            g.bench_function(format!("{who}_event"), |b| {
                b.iter(|| tracing::info!(x = black_box(1), "msg"))
            });
        });
    }

    let mut g = c.benchmark_group("tracing_layer");
    // What every layer of the three pays before it does anything: the registry's own span
    // bookkeeping and event dispatch, with no layer.
    workloads(&mut g, "registry", tracing_subscriber::registry());
    let ada = ada_tracing::layer();
    assert!(ada.is_live(), "the bench installed the agent: the layer records");
    workloads(&mut g, "ada", tracing_subscriber::registry().with(ada));
    workloads(
        &mut g,
        "fmt",
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_span_events(FmtSpan::ACTIVE),
        ),
    );
    let dir = tempfile::tempdir().expect("temporary directory for tracing-chrome");
    let (chrome, flush) = tracing_chrome::ChromeLayerBuilder::new()
        .file(dir.path().join("trace.json"))
        .build();
    // Its writer thread runs beside the drain's, off the measured CPU.
    ada_peers::pin_threads();
    workloads(&mut g, "chrome", tracing_subscriber::registry().with(chrome));
    g.finish();
    drop(flush);
}

criterion_group!(benches, bench);
criterion_main!(benches);
