//! A hostile writer rewrites slot owner fields and the symbol table of a live segment (through
//! the segment's file in `/dev/shm`, as another process of the user could). The controller must
//! still produce a trace whose manifest, report and stream agree:
//!
//! - every event's `thread_id` is a thread of the manifest (the controller's own numbering,
//!   never the id a record carries), and for every thread `persisted` equals the number of its
//!   events in `events.bin`;
//! - a thread claiming a process the controller does not trace is drained but flagged
//!   unverified, its name is not read, and it is counted as corruption in `trace.json`;
//! - a slot whose owner fields are rewritten mid-run ends its thread (`Displaced`) instead of
//!   orphaning its account;
//! - damaged symbol entries are skipped, later ones still name their events, and a scribbled
//!   `refused` counter never reaches the report as a count.

use ada_atf::{Manifest, TraceReader};
use ada_controller::{
    AtfSink, ControllerBuilder, Drainer, ProcessTrust, Report, SessionInfo, Sink, ThreadEnd,
};
use ada_registry::{LaneKind, Registration, Registry, SlotOwner, ThreadSlot};
use ada_ringpool::{DropOldest, EventKind, IndexRecord, LaneWriter, SegmentStore};
use ada_shm::RegionKind;
use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};

/// Bytes of one slot (`ThreadLaneSet`) in the registry region.
const SLOT_BYTES: u64 = 896;

fn overwrite(reg: &Registry, offset: u64, bytes: &[u8]) {
    let path = format!("/dev/shm{}", reg.segment().name().as_str());
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Segment offset of slot `index`'s header (state word, slot index, pid, thread id).
fn slot_offset(reg: &Registry, index: u32) -> u64 {
    let region = reg.segment().region(RegionKind::Registry).unwrap();
    let header = region.size - u64::from(reg.capacity()) * SLOT_BYTES;
    region.offset + header + u64::from(index) * SLOT_BYTES
}

fn rewrite_owner(reg: &Registry, index: u32, pid: u32, tid: u64) {
    let at = slot_offset(reg, index);
    overwrite(reg, at + 12, &pid.to_le_bytes());
    overwrite(reg, at + 16, &tid.to_le_bytes());
}

fn rewrite_generation(reg: &Registry, index: u32, generation: u32) {
    overwrite(reg, slot_offset(reg, index) + 4, &generation.to_le_bytes());
}

type Writer<'r> = LaneWriter<'r, SegmentStore<'r>, DropOldest>;

/// The slot handle and an index-lane writer of a registration.
fn writer<'r>(reg: &'r Registry, r: Registration<'r>) -> (ThreadSlot<'r>, Writer<'r>) {
    let store = SegmentStore::new(reg, r.slot.index(), LaneKind::Index).unwrap();
    (r.slot, LaneWriter::new(r.index, store, DropOldest))
}

fn record(function_id: u64, seq: u64) -> IndexRecord {
    IndexRecord {
        timestamp_ns: 1_000 + seq,
        function_id,
        // What the record claims about its thread: garbage the trace must not use.
        thread_id: 0xdead_beef,
        kind: EventKind::Call as u32,
        call_depth: 1,
        reserved: 0,
    }
}

/// Events per `thread_id` in the trace's stream, TraceStart/TraceEnd (thread 0) and loss
/// announcements (not records of the thread) left out.
fn events_per_thread(reader: &TraceReader) -> HashMap<i32, u64> {
    let mut per = HashMap::new();
    for ev in reader.events() {
        let ev = ev.unwrap();
        let lost = matches!(
            ev.payload,
            Some(ada_atf::schema::event::Payload::EventsLost(_))
        );
        if ev.thread_id != 0 && !lost {
            *per.entry(ev.thread_id).or_default() += 1;
        }
    }
    per
}

fn persisted(t: &ada_atf::ThreadSummary) -> u64 {
    t.lanes.iter().map(|l| l.persisted).sum()
}

/// The trace agrees with itself: every thread's persisted count is its number of events in
/// the stream and every event belongs to a listed thread.
fn assert_counts_agree(manifest: &Manifest, stream: &HashMap<i32, u64>) {
    for t in &manifest.threads {
        assert_eq!(
            stream.get(&t.thread_id).copied().unwrap_or(0),
            persisted(t),
            "thread {}: manifest and stream disagree",
            t.thread_id
        );
    }
    for (id, n) in stream {
        assert!(
            manifest.threads.iter().any(|t| t.thread_id == *id),
            "{n} event(s) of thread {id}, which the manifest does not list"
        );
    }
}

#[test]
fn identities_are_verified_rewritten_slots_are_accounted_and_the_trace_agrees() {
    let out = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let controller = ControllerBuilder::new().capacity(8).create().unwrap();
    let reg = controller.registry();
    let mut sink = AtfSink::create(out.path(), me).unwrap();
    sink.begin(&SessionInfo::new(me)).unwrap();
    let dir = sink.dir().to_path_buf();
    let mut drainer = Drainer::new(reg, sink).unwrap();
    drainer.trust(&ProcessTrust::SessionProcess, me);

    // A: this very thread, honestly registered.
    let (a, mut wa) = writer(
        reg,
        reg.view().register(SlotOwner::current_thread()).unwrap(),
    );
    // B: claims to be thread 1 of pid 1, which this test does not trace.
    let liar = SlotOwner {
        pid: 1,
        thread_id: 1,
        ..SlotOwner::current_thread()
    };
    let (b, mut wb) = writer(reg, reg.view().register(liar).unwrap());
    // C and D: honest at first; C's pid and tid, and D's generation, are rewritten mid-run.
    let (c, mut wc) = writer(
        reg,
        reg.view().register(SlotOwner::current_thread()).unwrap(),
    );
    let (d, mut wd) = writer(
        reg,
        reg.view().register(SlotOwner::current_thread()).unwrap(),
    );
    for seq in 0..100 {
        wa.write_index(&record(1, seq));
    }
    for seq in 0..50 {
        wb.write_index(&record(1, seq));
    }
    for seq in 0..30 {
        wc.write_index(&record(1, seq));
        wd.write_index(&record(1, seq));
    }
    drainer.pass();
    rewrite_owner(reg, c.index(), 1, 77);
    rewrite_generation(reg, d.index(), d.generation().wrapping_add(7));
    for seq in 30..50 {
        wc.write_index(&record(1, seq));
        wd.write_index(&record(1, seq));
    }
    for w in [&wa, &wb, &wc, &wd] {
        w.flush_counters();
    }
    drainer.pass();
    drainer.pass();
    a.unregister().unwrap();
    b.unregister().unwrap();
    // C and D no longer match their slots' words: their owners cannot unregister them.
    std::mem::forget(c);
    std::mem::forget(d);
    let (report, mut sink): (Report, AtfSink) = drainer.finish(&[], Report::default());
    sink.finish(&report).unwrap();

    let reader = TraceReader::open(&dir).unwrap();
    let manifest = reader.manifest().unwrap().clone();
    let stream = events_per_thread(&reader);
    assert_counts_agree(&manifest, &stream);
    assert_eq!(
        stream.values().sum::<u64>(),
        report.persisted(),
        "the report's persisted count is the stream's"
    );
    assert_eq!(manifest.threads.len() as u64, report.thread_count());
    let numbers: Vec<i32> = manifest.threads.iter().map(|t| t.thread_id).collect();
    assert!(
        !numbers.contains(&(0xdead_beef_u32 as i32)),
        "the records' own thread ids are not identities: {numbers:?}"
    );

    let tid = SlotOwner::current_thread().thread_id;
    let honest = manifest
        .threads
        .iter()
        .find(|t| persisted(t) == 100)
        .unwrap();
    assert_eq!(
        (honest.pid, honest.os_tid, honest.verified),
        (Some(me), Some(tid), Some(true))
    );
    assert!(honest.name.is_some(), "a verified thread's name is read");
    let liar = manifest
        .threads
        .iter()
        .find(|t| persisted(t) == 50)
        .unwrap();
    assert_eq!((liar.pid, liar.verified), (Some(1), Some(false)));
    assert_eq!(liar.name, None, "an unverified thread's name is never read");

    // C: its first 30 events under its verified identity (ended Displaced), the rest under a
    // new, refuted one. D: likewise under a new generation.
    let displaced: Vec<_> = report
        .threads
        .iter()
        .filter(|t| t.end == ThreadEnd::Displaced)
        .collect();
    assert_eq!(displaced.len(), 2, "{:#?}", report.threads);
    for t in &displaced {
        assert!(t.info.verified);
        assert_eq!(t.lane(LaneKind::Index).persisted, 30);
        assert!(t.lane(LaneKind::Index).is_balanced());
    }
    let refuted: Vec<(u32, u64)> = report
        .threads
        .iter()
        .filter(|t| t.refuted)
        .map(|t| (t.info.pid, t.info.os_tid))
        .collect();
    assert_eq!(refuted, [(1, 1), (1, 77)], "B, and C's rewritten claim");
    assert!(
        report
            .threads
            .iter()
            .any(|t| (t.info.pid, t.info.os_tid, t.info.verified) == (1, 77, false)),
        "{:#?}",
        report.threads
    );
    assert_eq!(report.corruption.displaced_threads, 2);
    assert_eq!(
        report.corruption.unverified_threads, 2,
        "B, and C's new claim"
    );
    assert_eq!(manifest.corruption["displacedThreads"], 2);
    assert_eq!(manifest.corruption["unverifiedThreads"], 2);
}

#[test]
fn a_damaged_symbol_table_is_skipped_counted_and_never_a_raw_count() {
    let out = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let reg = controller.registry();
    let symbols = reg.symbols();
    let ids: Vec<u64> = (0..6)
        .map(|i| symbols.register(&format!("fn_{i}"), 0x1000 + i).unwrap())
        .collect();
    let region = reg.segment().region(RegionKind::Symbols).unwrap();
    let entry = |i: u64| region.offset + 256 + 24 * i;
    // Entry 1: an unknown state; entry 2: a name far outside the names area; entry 3: a name
    // longer than any name may be. Entries 0, 4 and 5 are intact.
    overwrite(reg, entry(1), &77u32.to_le_bytes());
    overwrite(reg, entry(2) + 4, &u32::MAX.to_le_bytes());
    overwrite(reg, entry(3) + 8, &100_000u32.to_le_bytes());
    // The refusal counter: a 20-digit number.
    overwrite(
        reg,
        region.offset + 144,
        &12_345_678_901_234_567_890u64.to_le_bytes(),
    );

    let mut sink = AtfSink::create(out.path(), me).unwrap();
    sink.begin(&SessionInfo::new(me)).unwrap();
    let dir = sink.dir().to_path_buf();
    let mut drainer = Drainer::new(reg, sink).unwrap();
    drainer.trust(&ProcessTrust::SessionProcess, me);
    let r = reg.view().register(SlotOwner::current_thread()).unwrap();
    let (slot, index) = (r.slot, r.index);
    let store = SegmentStore::new(reg, slot.index(), LaneKind::Index).unwrap();
    let mut w = LaneWriter::new(index, store, DropOldest);
    for (seq, id) in ids.iter().enumerate() {
        w.write_index(&record(*id, seq as u64));
    }
    w.flush_counters();
    drainer.pass();
    // The claim counter, rewound below what was read already.
    overwrite(reg, region.offset + 128, &0u64.to_le_bytes());
    slot.unregister().unwrap();
    let (report, mut sink): (Report, AtfSink) = drainer.finish(&[], Report::default());
    sink.finish(&report).unwrap();

    assert_eq!(
        report.symbols_refused, 0,
        "the scribbled counter is not a count"
    );
    assert_eq!(
        report.corruption.symbol_counters, 2,
        "refused, and the rewound claims"
    );
    assert_eq!(report.corruption.symbol_entries, 3);
    assert_eq!(report.symbols, 3);
    let manifest = Manifest::read(&dir.join("trace.json")).unwrap();
    let named: Vec<&str> = manifest.symbols.iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(
        named,
        ["fn_0", "fn_4", "fn_5"],
        "entries after damaged ones are read"
    );
    assert_eq!(manifest.corruption["symbolEntries"], 3);
    assert_eq!(manifest.corruption["symbolCounters"], 2);
}

/// 100 000 threads, each registered, recording a few events and unregistering (registry calls
/// from this thread: the drain cannot tell them from real short-lived threads, and they run in
/// seconds). The drainer's retained per-thread state stays bounded by the slots plus
/// `DETAILED_THREADS` (before folding it held every thread ever seen: 100 000 reports, about
/// 200 bytes each), while the report and the manifest still account for every thread and
/// every event.
#[test]
fn a_hundred_thousand_short_lived_threads_are_folded_into_bounded_totals() {
    const THREADS: u64 = 100_000;
    const SLOTS: u32 = 8;
    let out = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let controller = ControllerBuilder::new().capacity(SLOTS).create().unwrap();
    let reg = controller.registry();
    let mut sink = AtfSink::create(out.path(), me).unwrap();
    sink.begin(&SessionInfo::new(me)).unwrap();
    let dir = sink.dir().to_path_buf();
    let mut drainer = Drainer::new(reg, sink).unwrap();
    drainer.trust(&ProcessTrust::SessionProcess, me);
    let bound = SLOTS as usize + ada_controller::drain::DETAILED_THREADS;
    let mut most = 0;
    for t in 0..THREADS {
        let (slot, mut w) = writer(
            reg,
            reg.view().register(SlotOwner::current_thread()).unwrap(),
        );
        for seq in 0..(1 + t % 3) {
            w.write_index(&record(1, seq));
        }
        w.flush_counters();
        slot.unregister().unwrap();
        if t % u64::from(SLOTS) == u64::from(SLOTS) - 1 {
            drainer.pass();
            most = most.max(drainer.retained_threads());
        }
    }
    assert!(
        most <= bound,
        "the drainer held {most} threads (bound {bound})"
    );
    let (report, mut sink): (Report, AtfSink) = drainer.finish(&[], Report::default());
    sink.finish(&report).unwrap();

    let events: u64 = (0..THREADS).map(|t| 1 + t % 3).sum();
    assert_eq!(report.thread_count(), THREADS);
    assert_eq!(
        report.threads.len(),
        ada_controller::drain::DETAILED_THREADS
    );
    assert_eq!(report.persisted(), events);
    assert!(report.is_balanced(), "folded totals balance too");
    let reader = TraceReader::open(&dir).unwrap();
    let manifest = reader.manifest().unwrap().clone();
    assert_eq!(manifest.thread_count(), THREADS);
    let folded = manifest.folded_threads.clone().unwrap();
    assert_eq!(folded.threads, THREADS - manifest.threads.len() as u64);
    // Listed threads agree one by one; the rest of the stream is the folded threads'.
    let mut stream = events_per_thread(&reader);
    for t in &manifest.threads {
        assert_eq!(stream.remove(&t.thread_id).unwrap_or(0), persisted(t));
    }
    assert!(stream.len() as u64 <= folded.threads);
    let folded_persisted: u64 = folded.lanes.iter().map(|l| l.persisted).sum();
    assert_eq!(stream.values().sum::<u64>(), folded_persisted);
}

/// Random words written over the registry (slot headers, lanes, queues) and the symbol table
/// between drain passes, for many seeds: the drain neither panics nor hangs (every pass is
/// bounded, however large a rewritten queue position), and the finished trace still agrees
/// with itself (every event belongs to a listed thread whose persisted count is its number of
/// events).
#[test]
fn random_scribbles_never_make_the_trace_disagree_with_itself() {
    let me = std::process::id();
    for seed in 1..=32u64 {
        let out = tempfile::tempdir().unwrap();
        let controller = ControllerBuilder::new().capacity(4).create().unwrap();
        let reg = controller.registry();
        for i in 0..8 {
            let _ = reg.symbols().register(&format!("site_{i}"), i);
        }
        let mut sink = AtfSink::create(out.path(), me).unwrap();
        sink.begin(&SessionInfo::new(me)).unwrap();
        let dir = sink.dir().to_path_buf();
        let mut drainer = Drainer::new(reg, sink).unwrap();
        drainer.trust(&ProcessTrust::SessionProcess, me);
        let mut slots = Vec::new();
        for t in 0..3u64 {
            let (slot, mut w) = writer(
                reg,
                reg.view().register(SlotOwner::current_thread()).unwrap(),
            );
            for seq in 0..(200 + 50 * t) {
                w.write_index(&record(1 + seq % 8, seq));
            }
            w.flush_counters();
            slots.push((slot, w));
        }
        drainer.pass();
        // xorshift64: a fixed sequence per seed.
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let registry = reg.segment().region(RegionKind::Registry).unwrap();
        let symbols = reg.segment().region(RegionKind::Symbols).unwrap();
        for round in 0..60 {
            let region = if round % 4 == 3 { &symbols } else { &registry };
            let at = region.offset + (next() % (region.size / 8)) * 8;
            // Small values (plausible indices, states, generations) as often as wild ones.
            let value = if next() % 2 == 0 { next() % 8 } else { next() };
            overwrite(reg, at, &value.to_le_bytes());
            let t0 = std::time::Instant::now();
            drainer.pass();
            // A pass over 4 slots takes microseconds; one that followed a rewritten queue
            // position through billions of entries took minutes.
            let took = t0.elapsed();
            assert!(
                took < std::time::Duration::from_secs(2),
                "seed {seed} round {round}: {value:#x} at {at} made a pass take {took:?}"
            );
        }
        for (slot, _) in slots {
            // A slot whose words were rewritten may refuse its owner: that is the point.
            std::mem::forget(slot);
        }
        let (report, mut sink): (Report, AtfSink) = drainer.finish(&[me], Report::default());
        sink.finish(&report).unwrap();
        let reader = TraceReader::open(&dir).unwrap();
        let manifest = reader.manifest().unwrap().clone();
        let stream = events_per_thread(&reader);
        assert_counts_agree(&manifest, &stream);
        assert_eq!(
            stream.values().sum::<u64>(),
            report.persisted(),
            "seed {seed}"
        );
    }
}
