//! DESIGN §1: encoding happens on the drain thread "without a heap allocation per event". A
//! counting global allocator proves that the encoder and `TraceWriter::write` (including the
//! buffer write-outs and periodic fsyncs) allocate nothing once warm.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ada_atf::{
    EventRef, Lane, PayloadRef, SyncPolicy, TraceSummary, TraceWriter, WriterOptions,
    encode_delimited,
};

thread_local! {
    /// Allocations made by this thread (const-initialized: no lazy allocation of its own).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is System's; the counter is a thread-local `Cell` touched without
// allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through `alloc`/`realloc` above with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const REGS: [(&str, u64); 8] = [
    ("rdi", 1),
    ("rsi", 2),
    ("rdx", 3),
    ("rcx", 4),
    ("r8", 5),
    ("r9", 6),
    ("rbp", 7),
    ("rsp", 8),
];
const STACK: [u8; 128] = [0x5a; 128];

fn event(i: u64) -> EventRef<'static> {
    match i % 4 {
        0 => EventRef::new(
            1,
            i * 25,
            PayloadRef::FunctionCall {
                symbol: "",
                address: 0x4000 + i,
                argument_registers: &[],
                stack_shallow_copy: &[],
            },
        )
        .with_function(i, 3),
        1 => EventRef::new(
            1,
            i * 25,
            PayloadRef::FunctionReturn {
                symbol: "",
                address: 0x4000 + i,
                return_registers: &[],
            },
        )
        .with_function(i, 3),
        2 => EventRef::new(
            2,
            i * 25,
            PayloadRef::FunctionCall {
                symbol: "ns::work",
                address: 0x4000 + i,
                argument_registers: &REGS,
                stack_shallow_copy: &STACK,
            },
        )
        .on_lane(Lane::Detail),
        _ => EventRef::new(
            2,
            i * 25,
            PayloadRef::EventsLost {
                lane: Lane::Detail,
                count: i,
                cause: "overwritten",
                first_lost_ns: i * 25,
                last_lost_ns: i * 26,
            },
        ),
    }
}

#[test]
fn encoder_and_writer_do_not_allocate_per_event() {
    // Encoder into a reused buffer.
    let mut buf = Vec::with_capacity(1 << 20);
    let before = allocations();
    for i in 0..10_000 {
        buf.clear();
        encode_delimited(i + 1, &event(i), &mut buf).unwrap();
    }
    assert_eq!(allocations() - before, 0, "encoder allocated");

    // Writer: many buffer write-outs and byte-triggered fdatasyncs.
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        buffer_capacity: 16 * 1024,
        sync: SyncPolicy {
            every_bytes: 256 * 1024,
            every: None,
        },
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(tmp.path(), opts).unwrap();
    for i in 0..1000 {
        w.write(&event(i)).unwrap();
    }
    let before = allocations();
    for i in 0..50_000 {
        w.write(&event(i)).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(allocations() - before, 0, "writer allocated");
    assert!(
        w.bytes_flushed() > 1 << 20,
        "the loop crossed many write-outs"
    );
    w.finalize(TraceSummary::default()).unwrap();
}
