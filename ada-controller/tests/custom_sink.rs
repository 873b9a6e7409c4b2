//! A custom controller: the library's builder and drain with a sink of our own, and the agent
//! recording in the same process. The sink sees `begin` first, each symbol before the first
//! record naming it, every record exactly once, and `finish` last with balanced accounting.

use ada_atf::{RecordKind, RingRecord};
use ada_controller::{
    ControllerBuilder, Report, SessionInfo, Sink, SinkError, SinkOutput, ThreadEnd, ThreadInfo,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Seen {
    began: bool,
    finished: bool,
    names: HashMap<u64, String>,
    calls: HashMap<(u64, String), u64>,
    returns: u64,
    marks: Vec<String>,
    flushes: u64,
    unnamed: u64,
    threads: HashSet<u64>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Sink for Recorder {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(!s.began);
        assert_eq!(session.pid, std::process::id());
        s.began = true;
        Ok(())
    }
    fn symbol(&mut self, id: u64, name: &str, _address: u64) -> Result<(), SinkError> {
        let prev = self.0.lock().unwrap().names.insert(id, name.to_owned());
        assert!(prev.is_none(), "symbol {id} delivered twice");
        Ok(())
    }
    fn record(&mut self, thread: &ThreadInfo, r: &RingRecord<'_>) -> Result<(), SinkError> {
        let mut s = self.0.lock().unwrap();
        assert!(s.began && !s.finished);
        assert_eq!(u64::from(r.thread_id as u32), thread.os_tid & 0xffff_ffff);
        s.threads.insert(thread.os_tid);
        let Some(name) = s.names.get(&r.function_id).cloned() else {
            s.unnamed += 1;
            return Ok(());
        };
        match r.kind {
            RecordKind::Call => *s.calls.entry((thread.os_tid, name)).or_default() += 1,
            RecordKind::Return => s.returns += 1,
            RecordKind::Mark => s
                .marks
                .push(String::from_utf8_lossy(r.message).into_owned()),
            _ => {}
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.lock().unwrap().flushes += 1;
        Ok(())
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        let mut s = self.0.lock().unwrap();
        s.finished = true;
        assert!(report.is_balanced(), "{report:?}");
        Ok(SinkOutput {
            complete: true,
            events: report.persisted(),
            ..SinkOutput::default()
        })
    }
}

static WORK: ada_agent::Callsite = ada_agent::Callsite::new("work");
static STEP: ada_agent::Callsite = ada_agent::Callsite::new("step");
static MARK: ada_agent::Callsite = ada_agent::Callsite::new("the moment");

#[test]
fn custom_sink_sees_everything_in_order_and_accounts_balance() {
    const THREADS: u64 = 3;
    const ITERS: u64 = 3_000;
    let controller = ControllerBuilder::new().capacity(8).create().unwrap();
    let agent = ada_agent::Agent::from_registry(controller.registry().clone());
    ada_agent::install(agent).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let session = SessionInfo {
        pid: std::process::id(),
        ..SessionInfo::default()
    };
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
    for w in workers {
        w.join().unwrap();
    }
    let report = running.stop().unwrap();
    assert_eq!(report.dropped(), 0, "paced: the drain kept up: {report:?}");
    let s = seen.lock().unwrap();
    assert!(s.finished);
    assert_eq!(s.unnamed, 0, "every record's symbol arrived before it");
    assert_eq!(s.threads.len(), THREADS as usize);
    for tid in &s.threads {
        assert_eq!(s.calls[&(*tid, "work".to_owned())], ITERS);
        assert_eq!(s.calls[&(*tid, "step".to_owned())], ITERS);
    }
    assert_eq!(s.returns, 2 * ITERS * THREADS);
    assert_eq!(s.marks.len(), THREADS as usize);
    assert!(s.flushes > 0);
    assert_eq!(report.threads.len(), THREADS as usize);
    for t in &report.threads {
        assert_eq!(t.end, ThreadEnd::Exited);
        assert_eq!(t.lanes[0].written, 4 * ITERS);
        assert_eq!(t.lanes[0].persisted, 4 * ITERS, "nothing dropped: {t:?}");
        assert_eq!(t.lanes[1].written, 1);
    }
    assert_eq!(report.symbols, 3);
    assert!(report.is_balanced());
    assert_eq!(
        report.output.as_ref().unwrap().events,
        4 * ITERS * THREADS + THREADS
    );
}
