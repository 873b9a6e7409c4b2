//! A child process attaches to the parent's segment by name and registers threads; the parent
//! sees them (with the child's pid) while they run, and sees them exit.
//!
//! The child is this same test binary, re-run with a filter that selects `child_entry` and an
//! environment variable carrying the segment name; without that variable `child_entry` does
//! nothing.

use ada_registry::{Registry, RegistryConfig, SlotOwner, SlotState};
use ada_shm::{AttachOptions, SegmentName};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

const ENV: &str = "ADA_TEST_CHILD_SEGMENT";
const THREADS: usize = 4;

#[test]
fn child_entry() {
    let Ok(name) = std::env::var(ENV) else { return };
    let reg = Registry::attach(
        &SegmentName::parse(&name).unwrap(),
        AttachOptions::default(),
    )
    .unwrap();
    let barrier = std::sync::Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let registration = reg.view().register(SlotOwner::current_thread()).unwrap();
                barrier.wait(); // registered
                barrier.wait(); // parent has looked
                drop(registration); // unregisters
            });
        }
        barrier.wait();
        println!("READY");
        std::io::stdout().flush().unwrap();
        // Wait until the parent closes our stdin.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        barrier.wait();
    });
    println!("DONE");
}

#[test]
fn parent_sees_threads_registered_by_a_child_process() {
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 8,
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ENV, reg.segment().name().as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("READY"));
    assert!(ready.is_some(), "child never became ready");
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), THREADS);
    let mut tids: Vec<_> = live.iter().map(|v| v.owner.thread_id).collect();
    tids.sort();
    tids.dedup();
    assert_eq!(tids.len(), THREADS, "distinct threads");
    for v in &live {
        assert_eq!(v.state, SlotState::Active);
        assert_eq!(v.owner.pid, child.id());
    }
    drop(child.stdin.take());
    // Read to the end so the child never writes into a closed pipe.
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l.contains("DONE")), "{rest:?}");
    assert!(child.wait().unwrap().success());
    let states: Vec<_> = reg.view().live_slots().map(|v| v.state).collect();
    assert_eq!(states, vec![SlotState::Exited; THREADS]);
}
