//! A custom controller: the library's builder and drain with a sink of our own, and the agent
//! recording in the same process. The sink is written against `ada_controller` alone (no other
//! ADA crate is imported here; the agent is only the traced side). It sees `begin` first with
//! the segment filled in, each symbol before the first record naming it, every record exactly
//! once inside a `chunk_begin`/`chunk_end` pair of its thread and lane, the MARKED flag of the
//! detail ring holding a mark, and `finish` last with balanced accounting.

use ada_controller::{
    ChunkInfo, ControllerBuilder, EventKind, LaneKind, Persistence, Record, Report, SessionInfo,
    Sink, SinkError, SinkOutput, ThreadEnd, ThreadInfo,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Seen {
    session: Option<SessionInfo>,
    finished: bool,
    names: HashMap<u64, String>,
    calls: HashMap<(u64, String), u64>,
    returns: u64,
    marks: Vec<String>,
    messages: u64,
    /// Threads that wrote messages.
    noters: HashSet<u64>,
    flushes: u64,
    unnamed: u64,
    threads: HashSet<u64>,
    /// The chunk between `chunk_begin` and `chunk_end`.
    open: Option<(ThreadInfo, ChunkInfo)>,
    /// Per detail chunk: (thread, ring MARKED, marked records, records).
    detail_chunks: Vec<(u64, bool, u64, u64)>,
    index_chunks: u64,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Sink for Recorder {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.session.is_none());
        s.session = Some(session.clone());
        Ok(())
    }
    fn symbol(&mut self, id: u64, name: &str, _address: u64) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.open.is_none(), "symbols come between chunks");
        let prev = s.names.insert(id, name.to_owned());
        assert!(prev.is_none(), "symbol {id} delivered twice");
        Ok(())
    }
    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.session.is_some() && !s.finished);
        assert!(s.open.is_none(), "chunks never nest");
        assert!(chunk.bytes > 0);
        // Submitted rings have a fill number; the active ring and a run of records from the
        // shared fallback ring (spilled when the thread's pool ran dry) have none.
        assert_eq!(
            chunk.seq.is_none(),
            chunk.from_active || chunk.from_fallback,
            "{chunk:?}"
        );
        s.open = Some((*thread, *chunk));
        match chunk.lane {
            LaneKind::Index => {
                assert!(!chunk.marked, "index rings are never marked");
                s.index_chunks += 1;
            }
            LaneKind::Detail => s.detail_chunks.push((thread.os_tid, chunk.marked, 0, 0)),
        }
        Ok(())
    }
    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        let (open_thread, open_chunk) = s.open.expect("records come inside a chunk");
        assert_eq!((open_thread, open_chunk.lane), (*thread, r.lane));
        assert_eq!(u64::from(r.thread_id), thread.os_tid & 0xffff_ffff);
        s.threads.insert(thread.os_tid);
        if r.lane == LaneKind::Detail {
            let chunk = s.detail_chunks.last_mut().expect("a detail chunk");
            chunk.2 += u64::from(r.marked);
            chunk.3 += 1;
        }
        let Some(name) = s.names.get(&r.function_id).cloned() else {
            s.unnamed += 1;
            return Ok(());
        };
        match r.kind {
            EventKind::Call => *s.calls.entry((thread.os_tid, name)).or_default() += 1,
            EventKind::Return => s.returns += 1,
            EventKind::Mark => s
                .marks
                .push(String::from_utf8_lossy(r.message).into_owned()),
            EventKind::Message => {
                s.messages += 1;
                s.noters.insert(thread.os_tid);
            }
            EventKind::Exception => {}
            EventKind::EventsLost => panic!("loss markers go to events_lost, never to record"),
        }
        Ok(())
    }
    fn chunk_end(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert_eq!(s.open.take(), Some((*thread, *chunk)), "the pair matches");
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.open.is_none(), "flushes come between chunks");
        s.flushes += 1;
        Ok(())
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.open.is_none());
        s.finished = true;
        assert!(report.is_balanced(), "{report:?}");
        Ok(SinkOutput::new(report.persisted()))
    }
}

static WORK: ada_agent::Callsite = ada_agent::Callsite::new("work");
static STEP: ada_agent::Callsite = ada_agent::Callsite::new("step");
static MARK: ada_agent::Callsite = ada_agent::Callsite::new("the moment");
static NOTE: ada_agent::Callsite = ada_agent::Callsite::new("a note");

#[test]
fn custom_sink_sees_everything_in_order_and_accounts_balance() {
    const THREADS: u64 = 3;
    const ITERS: u64 = 3_000;
    // Every detail record is expected in the sink: persist-all, not the flight recorder.
    // 512 KiB index rings: about a second of this paced load per thread, so a drain thread
    // descheduled for a while on a loaded 2-core machine still loses nothing.
    let controller = ControllerBuilder::new()
        .capacity(8)
        .geometry(ada_controller::RingGeometry {
            index_ring_bytes: 512 << 10,
            ..Default::default()
        })
        .persistence(Persistence::All)
        .create()
        .unwrap();
    let segment = controller.segment_name().to_owned();
    let agent = ada_agent::Agent::from_registry(controller.registry().clone());
    ada_agent::install(agent).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let session = SessionInfo::new(std::process::id());
    let running = controller
        .start(Recorder(Arc::clone(&seen)), session)
        .unwrap();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..ITERS {
                    let _w = ada_agent::span(&WORK);
                    let _s = ada_agent::span(&STEP);
                    if i == ITERS / 2 {
                        ada_agent::mark(&MARK, &format!("half way on {t}"));
                    }
                    if i % 16 == 0 {
                        // Keep the producers at a pace an unoptimized drain keeps up with.
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    // One more thread writes detail records that are not marked.
    let noter = std::thread::spawn(|| {
        for i in 0..10 {
            ada_agent::message(&NOTE, &format!("note {i}"));
        }
    });
    for w in workers {
        w.join().unwrap();
    }
    noter.join().unwrap();
    let report = running.stop(None).unwrap();
    assert_eq!(report.dropped(), 0, "paced: the drain kept up: {report:?}");
    let s = seen.lock().unwrap();
    assert!(s.finished);
    let session = s.session.as_ref().unwrap();
    assert_eq!(session.pid, std::process::id());
    assert_eq!(
        session.segment, segment,
        "the controller fills in the segment"
    );
    assert_eq!(s.unnamed, 0, "every record's symbol arrived before it");
    assert_eq!(s.noters.len(), 1);
    let noter_tid = *s.noters.iter().next().unwrap();
    assert_eq!(s.threads.len(), THREADS as usize + 1);
    for tid in s.threads.iter().filter(|&&t| t != noter_tid) {
        assert_eq!(s.calls[&(*tid, "work".to_owned())], ITERS);
        assert_eq!(s.calls[&(*tid, "step".to_owned())], ITERS);
    }
    assert_eq!(s.returns, 2 * ITERS * THREADS);
    assert_eq!(s.marks.len(), THREADS as usize);
    assert_eq!(s.messages, 10);
    assert!(s.flushes > 0);
    assert!(s.index_chunks > 0);
    // Ring boundaries and the MARKED flag reach the sink: the detail ring holding a thread's
    // mark is MARKED (and so is the mark record itself); the noter's ring is not.
    let marked: Vec<_> = s.detail_chunks.iter().filter(|c| c.1).collect();
    assert_eq!(marked.len(), THREADS as usize, "{:?}", s.detail_chunks);
    assert!(
        marked
            .iter()
            .all(|c| c.0 != noter_tid && c.2 == 1 && c.3 == 1)
    );
    let noted: Vec<_> = s
        .detail_chunks
        .iter()
        .filter(|c| c.0 == noter_tid)
        .collect();
    assert!(!noted.is_empty());
    assert!(noted.iter().all(|c| !c.1 && c.2 == 0), "{noted:?}");
    assert_eq!(noted.iter().map(|c| c.3).sum::<u64>(), 10);

    assert_eq!(report.threads.len(), THREADS as usize + 1);
    for t in report.threads.iter().filter(|t| t.info.os_tid != noter_tid) {
        assert_eq!(t.end, ThreadEnd::Exited);
        assert_eq!(t.lane(LaneKind::Index).written, 4 * ITERS);
        assert_eq!(
            t.lane(LaneKind::Index).persisted,
            4 * ITERS,
            "nothing dropped: {t:?}"
        );
        assert_eq!(t.lane(LaneKind::Detail).written, 1);
    }
    // Every callsite's name reached the sink. Two threads whose first uses of one callsite race
    // may both register it (one id wins, the other entry is never used:
    // `Callsite::id` documents this), so the count of entries is at least the four names, and
    // the report counts exactly the entries the sink received.
    let names: HashSet<&str> = s.names.values().map(String::as_str).collect();
    assert_eq!(
        names,
        HashSet::from(["work", "step", "the moment", "a note"]),
        "{:?}",
        s.names
    );
    assert_eq!(report.symbols, s.names.len() as u64);
    assert!(report.symbols >= 4);
    assert!(report.is_balanced());
    assert_eq!(
        report.output.as_ref().unwrap().events,
        4 * ITERS * THREADS + THREADS + 10
    );
}

/// Finishes and records what it was given.
struct Finisher(Arc<Mutex<Option<Report>>>);

impl Sink for Finisher {
    fn record(&mut self, _: &ThreadInfo, _: &Record<'_>) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        *self.0.lock().unwrap() = Some(report.clone());
        Ok(SinkOutput::new(0))
    }
}

#[test]
fn dropping_running_without_stop_still_finishes_the_sink() {
    let controller = ControllerBuilder::new().capacity(2).create().unwrap();
    let finished = Arc::new(Mutex::new(None));
    let running = controller
        .start(Finisher(Arc::clone(&finished)), SessionInfo::new(0))
        .unwrap();
    // The drain thread is up and publishing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running.live().passes == 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    drop(running);
    let report = finished.lock().unwrap().take();
    let report = report.expect("the sink finished when `Running` was dropped");
    assert!(report.passes > 0);
    assert_eq!(report.exit_code, None);
}
