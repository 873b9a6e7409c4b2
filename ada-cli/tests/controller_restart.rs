//! Controller restart (issue 14): `ada trace` is SIGKILLed while its workload runs; the workload
//! keeps recording; `ada attach SEGMENT` takes the dead controller's drain over and the
//! workload's later events land in a new trace, a continuation (epoch 2, the previous
//! controller's pid), whose accounting balances with what the old controller had counted
//! (`beforeAttach`). Also: the registry is ready before `ada trace`'s command starts.

mod common;

use common::{ada, children_of, read_seq_trace, trace_dir};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `ADA_SHM` variable in process `pid`'s environment.
fn ada_shm_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("ADA_SHM=").map(str::to_owned))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|st| st != "Z")
        })
        .unwrap_or(false)
}

#[test]
fn the_registry_is_ready_before_the_traced_command_starts() {
    let out = tempfile::tempdir().unwrap();
    // The command's first act: ask the segment it was given whether it is ready.
    let r = ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .args(["--", "sh", "-c", "exec \"$0\" status \"$ADA_SHM\""])
        .arg(env!("CARGO_BIN_EXE_ada"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(text.contains("ready true, epoch 1, mode warm-up"), "{text}");
    assert!(text.contains("drain held by pid"), "{text}");
    assert!(
        !text.contains("heartbeat 0 ns"),
        "the heartbeat ticks already: {text}"
    );
}

#[test]
fn a_killed_controller_is_replaced_by_ada_attach_and_later_events_reach_the_new_trace() {
    // When its `ada trace` dies, the workload is re-parented to this process (a child
    // subreaper), which can then reap it and see how it ended.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    const THREADS: usize = 2;
    const EVENTS: u64 = 3_000;
    // 4 KiB index rings (about 120 records): at the workload's rate each thread swaps rings
    // every ~120 ms, the slow path where it notices a new epoch and registers again.
    let mut controller = ada()
        .args(["trace", "--index-ring-kib", "4", "-o"])
        .arg(a.path())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--seq", "--threads", "2"])
        .args(["--events", &EVENTS.to_string(), "--rate", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ada_pid = controller.id();
    // `ada trace` announces the segment before it spawns the command.
    let mut stderr = BufReader::new(controller.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let segment = line
        .strip_prefix("ada: segment ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no segment announced: {line:?}"))
        .to_owned();
    assert!(line.contains("ready (epoch 1)"), "{line}");
    assert!(line.contains(&format!("ada attach {segment}")), "{line}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let workload = loop {
        // Once it has exec'd: a child caught between fork and exec has `ada trace`'s own
        // environment.
        if let [pid] = children_of(ada_pid)[..]
            && ada_shm_of(pid).is_some()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the workload never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(ada_shm_of(workload).as_deref(), Some(segment.as_str()));
    // A second of the workload's three under the first controller, then SIGKILL.
    std::thread::sleep(Duration::from_millis(1_000));
    controller.kill().unwrap();
    controller.wait().unwrap();
    drop(stderr);
    // No controller for a while: the workload keeps running, its events wait in its rings.
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(workload), "the workload survives its controller");
    // The dead controller's segment is stale, but a cleaner keeps it while the workload
    // records into it.
    let clean = ada().args(["status", "--clean"]).output().unwrap();
    let said = String::from_utf8_lossy(&clean.stderr);
    assert!(
        said.contains(&format!("kept segment {segment}"))
            && said.contains(&format!("process {workload} still uses it")),
        "{said}"
    );
    assert!(segment_exists(&segment));

    let attach = ada()
        .args(["attach", &segment, "-o"])
        .arg(b.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The workload ends by itself, normally.
    let pid = rustix::process::Pid::from_raw(workload as i32).unwrap();
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(status.exit_status(), Some(0), "the workload exits normally");
    let attached = attach.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&attached.stderr);
    assert_eq!(attached.status.code(), Some(0), "{text}");
    assert!(text.contains("(epoch 2)"), "{text}");
    assert!(text.contains("every traced process has exited"), "{text}");
    assert!(
        text.contains(&format!("previous controller pid {ada_pid}, now epoch 2")),
        "{text}"
    );
    assert!(!text.contains("UNBALANCED"), "{text}");

    // The new trace: a continuation of the session, under the workload's pid.
    let dir = trace_dir(b.path());
    assert!(
        dir.ends_with(format!("pid_{workload}")),
        "{}",
        dir.display()
    );
    let t = read_seq_trace(&dir, THREADS);
    let c = t.manifest.continuation.clone().expect("a continuation");
    assert_eq!(
        (c.segment.as_str(), c.epoch, c.previous_controller_pid),
        (segment.as_str(), 2, ada_pid)
    );
    assert_eq!(t.manifest.readiness.as_ref().map(|r| r.epoch), Some(2));
    // The workload's later events are there: each thread's last one, and a good stretch
    // before it (two of its three seconds were recorded after the kill).
    assert_eq!(
        t.max_seq,
        vec![EVENTS; THREADS],
        "every thread's last event"
    );
    assert!(
        t.calls >= THREADS as u64 * EVENTS / 2,
        "{} calls in the continuation",
        t.calls
    );
    // The agent noticed the new epoch, and each workload thread registered again with the new
    // controller at its next ring swap: its old slot (inherited from the first controller,
    // which had its first events) and its new one.
    let stats = t.manifest.agent_stats.expect("agent statistics");
    assert_eq!(stats.reattaches, 1, "{stats:?}");
    assert_eq!(t.manifest.threads.len(), 2 * THREADS);
    let mut by_tid: std::collections::BTreeMap<u64, Vec<&ada_atf::ThreadSummary>> =
        Default::default();
    for thread in &t.manifest.threads {
        by_tid
            .entry(thread.os_tid.unwrap())
            .or_default()
            .push(thread);
    }
    assert_eq!(by_tid.len(), THREADS);
    for entries in by_tid.values() {
        // Its accounting balances: what it counted is persisted here, lost (its loss
        // counters), or was counted before the take-over (`beforeAttach`: the old trace's).
        for thread in entries {
            for lane in &thread.lanes {
                assert!(lane.is_balanced(), "{thread:?}");
            }
            assert_eq!(thread.verified, Some(true), "{thread:?}");
        }
        let inherited: Vec<_> = entries
            .iter()
            .filter(|th| th.lanes[0].before_attach.is_some_and(|n| n > 0))
            .collect();
        assert_eq!(inherited.len(), 1, "one old slot: {entries:?}");
        let written: u64 = entries.iter().map(|th| th.lanes[0].written).sum();
        assert_eq!(written, EVENTS, "{entries:?}");
    }
    // Everything the threads counted after the take-over is in the continuation, once.
    let after: u64 = t
        .manifest
        .threads
        .iter()
        .map(|th| {
            th.lanes[0].written - th.lanes[0].before_attach.unwrap_or(0) - th.lanes[0].dropped
        })
        .sum();
    let distinct: u64 = (0..THREADS).map(|k| t.ledger.distinct(k)).sum();
    assert_eq!((distinct, t.ledger.duplicates()), (after, 0));
    assert_eq!(t.calls, after);
    assert!(
        !segment_exists(&segment),
        "attach removed the segment at the end"
    );
}

fn segment_exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists()
}
