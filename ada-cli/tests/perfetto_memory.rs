//! The Perfetto export streams: a trace of 10^6 events (10^7 in an optimized build) exports
//! with a heap that stays within a few MiB, far below the trace's size. The heap is measured by
//! this test binary's own global allocator (so the export's memory maps of `events.bin` do not
//! count: they are the file, not the export's memory); this file holds one test so nothing else
//! allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ada_atf::{
    EventRef, Lane, LaneCounters, PayloadRef, PersistenceWindow, SymbolEntry, ThreadSummary,
    TraceSummary, TraceWriter, WriterOptions,
};

/// The system allocator, counting the bytes allocated now and the most allocated at once.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's own arguments, which meet
// `System`'s contract because they meet `GlobalAlloc`'s; the counting touches no memory of the
// allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller meets `GlobalAlloc::alloc`'s contract (a non-zero size).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            // Relaxed: a statistic read after the measured work has returned on this thread;
            // it orders no other memory.
            let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            // Relaxed: as above.
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above (that is, by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        // Relaxed: a statistic, as in `alloc`.
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const THREADS: i32 = 4;
const FUNCTIONS: u64 = 64;
const DEPTH: u32 = 8;
const EVENTS: u64 = if cfg!(debug_assertions) {
    1_000_000
} else {
    10_000_000
};
/// The most the export may hold on the heap, whatever the trace's size.
const HEAP_LIMIT: usize = 6 << 20;

/// `EVENTS` events: each thread calls `DEPTH`-deep stacks of `FUNCTIONS` named functions and
/// returns, with a mark every 10 000 events, a loss of its index lane every 250 000 (cutting
/// what is open) and a persistence window every 100 000.
fn write_trace(root: &std::path::Path) -> std::path::PathBuf {
    let opts = WriterOptions {
        pid: 77,
        session_id: 1,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(root, opts).unwrap();
    let mut depth = [0u32; THREADS as usize];
    let mut opening = [true; THREADS as usize];
    for n in 0..EVENTS {
        let ts = 1_000 + n * 10;
        let t = (n % THREADS as u64) as usize;
        let thread = t as i32 + 1;
        let ev = if n % 250_000 == 249_999 {
            depth[t] = 0;
            opening[t] = true;
            EventRef::new(
                thread,
                ts,
                PayloadRef::EventsLost {
                    lane: Lane::Index,
                    count: 100,
                    cause: "overwritten",
                    first_lost_ns: ts,
                    last_lost_ns: ts,
                },
            )
        } else if n % 100_000 == 99_999 {
            let window = PersistenceWindow {
                window_id: n / 100_000,
                start_ns: ts - 500_000,
                end_ns: ts,
                thread_id: thread,
                ..PersistenceWindow::default()
            };
            w.write(&EventRef::new(thread, ts, PayloadRef::WindowMark(window)))
                .unwrap();
            continue;
        } else if n % 10_000 == 9_999 {
            EventRef::new(
                thread,
                ts,
                PayloadRef::Custom {
                    name: "mark",
                    data: b"checkpoint",
                },
            )
        } else {
            let ev = if opening[t] {
                depth[t] += 1;
                let f = (u64::from(depth[t]) + n / 1_000) % FUNCTIONS + 1;
                EventRef::new(
                    thread,
                    ts,
                    PayloadRef::FunctionCall {
                        symbol: "",
                        address: f,
                        argument_registers: &[],
                        stack_shallow_copy: &[],
                    },
                )
                .with_function(f, depth[t])
            } else {
                let f = (u64::from(depth[t]) + n / 1_000) % FUNCTIONS + 1;
                depth[t] -= 1;
                EventRef::new(
                    thread,
                    ts,
                    PayloadRef::FunctionReturn {
                        symbol: "",
                        address: f,
                        return_registers: &[],
                    },
                )
                .with_function(f, depth[t] + 1)
            };
            if depth[t] == DEPTH {
                opening[t] = false;
            } else if depth[t] == 0 {
                opening[t] = true;
            }
            ev
        };
        w.write(&ev).unwrap();
    }
    let summary = TraceSummary {
        threads: (1..=THREADS)
            .map(|thread_id| ThreadSummary {
                thread_id,
                name: Some(format!("worker-{thread_id}")),
                os_tid: None,
                pid: None,
                verified: None,
                lanes: vec![LaneCounters::new(Lane::Index)],
            })
            .collect(),
        symbols: (1..=FUNCTIONS)
            .map(|function_id| SymbolEntry {
                function_id,
                symbol: format!("function_{function_id}"),
                address: None,
                module: None,
                file: None,
                line: None,
            })
            .collect(),
        ..TraceSummary::default()
    };
    w.finalize(summary).unwrap().dir
}

#[test]
fn a_large_trace_exports_in_bounded_memory() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_trace(root.path());
    let trace_bytes = std::fs::metadata(dir.join("events.bin")).unwrap().len();

    let mut out = std::io::sink();
    // Relaxed: read and reset on this thread before the export; no other thread allocates.
    let base = NOW.load(Ordering::Relaxed);
    // Relaxed: as above.
    PEAK.store(base, Ordering::Relaxed);
    let stats = ada_cli::export::export_perfetto(&dir, &mut out).unwrap();
    // Relaxed: the export returned on this thread.
    let heap = PEAK.load(Ordering::Relaxed) - base;

    eprintln!(
        "{} events, events.bin {trace_bytes} bytes, {} packets, export heap peak {heap} bytes",
        stats.events_read, stats.packets
    );
    assert_eq!(stats.events_read, EVENTS);
    assert!(stats.complete, "{:?}", stats.damage);
    assert_eq!(stats.slice_begins, stats.slice_ends);
    assert!(stats.cut_slices > 0, "the losses cut open slices");
    assert!(
        trace_bytes > 3 * HEAP_LIMIT as u64,
        "the trace ({trace_bytes} bytes) is far larger than the limit"
    );
    assert!(
        heap < HEAP_LIMIT,
        "the export held {heap} bytes of heap at once (limit {HEAP_LIMIT})"
    );
}
