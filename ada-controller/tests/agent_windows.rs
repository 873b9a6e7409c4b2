//! End to end in one process: threads record through `ada-agent` (messages, and one explicit
//! `mark()` each), the controller built with `persistence(Persistence::Windows(..))` drains
//! them into the default sink (`AtfSink` behind `Pipelined`), and the trace holds exactly one
//! window per thread with the mark in it; every other detail event is counted as discarded.

use ada_atf::schema::event::Payload;
use ada_controller::{
    ControllerBuilder, LaneKind, Persistence, PreRoll, SessionInfo, WindowConfig,
};

static NOTE: ada_agent::Callsite = ada_agent::Callsite::new("note");
static MOMENT: ada_agent::Callsite = ada_agent::Callsite::new("the moment");

#[test]
fn an_explicit_mark_opens_a_window_and_the_rest_is_discarded() {
    const THREADS: usize = 3;
    const NOTES: u64 = 100;
    let out = tempfile::tempdir().unwrap();
    // No pre-roll, a 2 ms post-roll: a window is the mark alone when nothing follows it soon.
    let controller = ControllerBuilder::new()
        .capacity(8)
        .output_dir(out.path())
        .persistence(Persistence::Windows(WindowConfig {
            pre_roll: PreRoll::Duration(0),
            post_roll_ns: 2_000_000,
            ..WindowConfig::default()
        }))
        .create()
        .unwrap();
    let agent = ada_agent::Agent::from_registry(controller.registry().clone());
    ada_agent::install(agent).unwrap();
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..NOTES {
                    ada_agent::message(&NOTE, &format!("before {i}"));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                ada_agent::mark(&MOMENT, &format!("thread {t}"));
                std::thread::sleep(std::time::Duration::from_millis(20));
                for i in 0..NOTES {
                    ada_agent::message(&NOTE, &format!("after {i}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let report = running.stop(Some(0)).unwrap();
    assert!(report.is_balanced(), "{report:?}");
    let detail = report.total(LaneKind::Detail);
    assert_eq!(detail.written, THREADS as u64 * (2 * NOTES + 1));
    assert_eq!(detail.persisted, THREADS as u64, "the marks alone");
    assert_eq!(detail.discarded, THREADS as u64 * 2 * NOTES);
    assert_eq!(detail.windows, THREADS as u64);

    let dir = report.output.as_ref().unwrap().dir.clone().unwrap();
    let reader = ada_atf::TraceReader::open(&dir).unwrap();
    let windows = reader.windows().unwrap();
    assert_eq!(windows.len(), THREADS);
    let mut threads: Vec<i32> = windows.iter().map(|w| w.thread_id).collect();
    threads.sort_unstable();
    threads.dedup();
    assert_eq!(threads.len(), THREADS, "one window per thread: {windows:?}");
    for w in &windows {
        assert_eq!((w.window_id, w.trigger, w.total_events), (1, None, 1));
        assert_eq!(w.discarded_events, NOTES);
        assert_eq!(w.first_mark_ns, w.start_ns);
    }
    let mut marks = 0;
    let mut window_marks = 0;
    for ev in reader.events() {
        match ev.unwrap().payload {
            Some(Payload::WindowMark(_)) => window_marks += 1,
            Some(Payload::Custom(c)) => {
                assert_eq!(c.name, "mark", "only the marks reach the trace");
                marks += 1;
            }
            _ => {}
        }
    }
    assert_eq!((marks, window_marks), (THREADS, THREADS));
    let manifest = reader.manifest().unwrap();
    let discarded: u64 = manifest
        .threads
        .iter()
        .flat_map(|t| &t.lanes)
        .map(|l| l.discarded)
        .sum();
    assert_eq!(discarded, THREADS as u64 * 2 * NOTES);
}
