//! ATF v4 throughput: encoding index events into a reused buffer, writing them through
//! `TraceWriter` to `events.bin`, and decoding them back with `TraceReader`.
//!
//! Run: `cargo bench -p ada-atf -- --warm-up-time 1 --measurement-time 3`.
//! The writer runs with the default fsync policy (`fdatasync` every 8 MiB or 1 s) and with
//! syncing only on request, so the cost of durability is visible.
//! Goal (DESIGN §5): ≥ 10 M index events/s encoded on one core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ada_atf::{
    EventRef, Lane, PayloadRef, SyncPolicy, TraceReader, TraceSummary, TraceWriter, WriterOptions,
    encode_delimited,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Events per benchmark iteration.
const BATCH: u64 = 1024;

/// An index-lane event as the drain produces it: unresolved symbol, function id, depth.
fn index_event(i: u64) -> EventRef<'static> {
    let payload = if i & 1 == 0 {
        PayloadRef::FunctionCall {
            symbol: "",
            address: 0x5555_5555_0000 + (i & 0xfff) * 16,
            argument_registers: &[],
            stack_shallow_copy: &[],
        }
    } else {
        PayloadRef::FunctionReturn {
            symbol: "",
            address: 0x5555_5555_0000 + (i & 0xfff) * 16,
            return_registers: &[],
        }
    };
    EventRef::new((i % 8) as i32, 1_700_000_000_000_000_000 + i * 25, payload)
        .with_function(1000 + (i & 0xff), (i % 24) as u32)
}

const REGS: [(&str, u64); 8] = [
    ("rdi", 1),
    ("rsi", 0x7ffd_0000_1000),
    ("rdx", 3),
    ("rcx", 0),
    ("r8", 5),
    ("r9", 6),
    ("rbp", 0x7ffd_0000_2000),
    ("rsp", 0x7ffd_0000_1f00),
];
const STACK: [u8; 128] = [0x5a; 128];

/// A detail-lane call with eight registers and 128 bytes of stack.
fn detail_event(i: u64) -> EventRef<'static> {
    EventRef::new(
        1,
        1_700_000_000_000_000_000 + i * 25,
        PayloadRef::FunctionCall {
            symbol: "my_module::do_work",
            address: 0x5555_5555_1234,
            argument_registers: &REGS,
            stack_shallow_copy: &STACK,
        },
    )
    .with_function(77, 5)
    .on_lane(Lane::Detail)
}

fn batch_bytes(make: fn(u64) -> EventRef<'static>) -> u64 {
    let mut buf = Vec::new();
    for i in 0..BATCH {
        encode_delimited(i + 1, &make(i), &mut buf).unwrap();
    }
    buf.len() as u64
}

fn bench_encode(c: &mut Criterion) {
    for (name, make) in [
        ("index", index_event as fn(u64) -> EventRef<'static>),
        ("detail", detail_event as fn(u64) -> EventRef<'static>),
    ] {
        let bytes = batch_bytes(make);
        let events: Vec<EventRef<'static>> = (0..BATCH).map(make).collect();
        let mut buf = Vec::with_capacity(bytes as usize);
        for (unit, tp) in [
            ("events", Throughput::Elements(BATCH)),
            ("bytes", Throughput::Bytes(bytes)),
        ] {
            let mut g = c.benchmark_group(format!("encode_{name}_{unit}"));
            g.throughput(tp);
            g.bench_function("reused_buffer", |b| {
                b.iter(|| {
                    buf.clear();
                    for (i, ev) in events.iter().enumerate() {
                        encode_delimited(i as u64 + 1, black_box(ev), &mut buf).unwrap();
                    }
                    black_box(buf.len())
                })
            });
            g.finish();
        }
    }
}

fn bench_write(c: &mut Criterion) {
    let bytes = batch_bytes(index_event);
    let events: Vec<EventRef<'static>> = (0..BATCH).map(index_event).collect();
    let tmp = tempfile::tempdir().unwrap();
    for (unit, tp, sync_name, sync) in [
        (
            "events",
            Throughput::Elements(BATCH),
            "default_sync",
            SyncPolicy::default(),
        ),
        (
            "bytes",
            Throughput::Bytes(bytes),
            "default_sync",
            SyncPolicy::default(),
        ),
        (
            "events",
            Throughput::Elements(BATCH),
            "sync_on_request",
            SyncPolicy::ON_REQUEST,
        ),
    ] {
        let mut g = c.benchmark_group(format!("write_index_{unit}"));
        g.throughput(tp);
        g.bench_function(sync_name, |b| {
            b.iter_custom(|iters| {
                // A fresh trace every 64 MiB keeps the file (and the disk) bounded; creation and
                // finalize are outside the timed region.
                let mut n = 0u64;
                let mut elapsed = Duration::ZERO;
                while n < iters {
                    let opts = WriterOptions {
                        session_label: Some(format!("bench_{unit}_{sync_name}_{n}_{iters}")),
                        sync,
                        ..WriterOptions::default()
                    };
                    let mut w = TraceWriter::create(tmp.path(), opts).unwrap();
                    let start = Instant::now();
                    while n < iters && w.bytes_accepted() < 64 << 20 {
                        for ev in &events {
                            black_box(w.write(black_box(ev)).unwrap());
                        }
                        n += 1;
                    }
                    w.flush().unwrap();
                    elapsed += start.elapsed();
                    let dir = w.dir().to_owned();
                    w.finalize(TraceSummary::default()).unwrap();
                    std::fs::remove_dir_all(dir).unwrap();
                }
                elapsed
            })
        });
        g.finish();
    }
}

fn bench_read(c: &mut Criterion) {
    const N: u64 = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(tmp.path(), WriterOptions::default()).unwrap();
    for i in 0..N {
        w.write(&index_event(i)).unwrap();
    }
    let stats = w.finalize(TraceSummary::default()).unwrap();
    let reader = TraceReader::open(&stats.dir).unwrap();
    for (unit, tp) in [
        ("events", Throughput::Elements(N)),
        ("bytes", Throughput::Bytes(stats.bytes_written)),
    ] {
        let mut g = c.benchmark_group(format!("read_index_{unit}"));
        g.throughput(tp);
        g.bench_function("trace_reader", |b| {
            b.iter(|| {
                let mut n = 0u64;
                for ev in reader.events() {
                    black_box(ev.unwrap());
                    n += 1;
                }
                assert_eq!(n, N);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench_encode, bench_write, bench_read);
criterion_main!(benches);
