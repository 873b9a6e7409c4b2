//! Backpressure through the `ada` command line: the drop policies in force (defaults,
//! `--drop-policy`, the `ADA_DROP_POLICY` override) reach the manifest; with losses forced on
//! both lanes (tiny rings, a slow drain) every lane balances by cause, the trace's `EventsLost`
//! events add up to the counted losses cause by cause and sit at the gaps, and the Chrome export
//! has an instant for each; bad values are usage errors, never panics.

mod common;

use ada_atf::schema::event::Payload;
use ada_atf::{Manifest, TraceReader};
use common::{ada, trace_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Geometry and drain settings that make the workload lose events on both lanes: two 1 KiB
/// rings per lane and a drain that sleeps 20 ms when a pass finds nothing. Everything is
/// persisted (no windows), so the detail lane's stream shows its gaps too.
const LOSSY: &[&str] = &[
    "--persist-all",
    "--index-rings",
    "2",
    "--index-ring-kib",
    "1",
    "--detail-rings",
    "2",
    "--detail-ring-kib",
    "1",
    "--drain-interval",
    "20ms",
];

/// The workload: two threads as fast as they can (spans on the index lane, one detail record
/// per request), then a pause in which the drain returns rings and one more event per lane, so
/// the loss a burst ended in is marked in the stream.
const WORKLOAD: &[&str] = &[
    "workload",
    "--threads",
    "2",
    "--events",
    "3000",
    "--slow-every",
    "0",
    "--linger",
    "200",
];

/// `ada trace -q -o OUT ARGS -- ada WORKLOAD`, with `env` set; the output and the trace
/// directory (when one was written).
fn trace(out: &Path, args: &[&str], env: Option<&str>) -> (Output, Option<PathBuf>) {
    let mut cmd = ada();
    cmd.args(["trace", "-q", "-o", out.to_str().unwrap()])
        .args(args)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(WORKLOAD);
    cmd.env_remove(ada_controller::ENV_DROP_POLICY);
    if let Some(value) = env {
        cmd.env(ada_controller::ENV_DROP_POLICY, value);
    }
    let output = cmd.output().expect("run ada");
    let dir = out
        .join(ada_atf::writer::TRACES_DIR)
        .exists()
        .then(|| trace_dir(out));
    (output, dir)
}

/// Traces the workload and returns the finalized manifest (the run must succeed).
fn traced(args: &[&str], env: Option<&str>) -> (tempfile::TempDir, PathBuf, Manifest) {
    let out = tempfile::tempdir().unwrap();
    let (output, dir) = trace(out.path(), args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let dir = dir.expect("a trace");
    let manifest = Manifest::read(&dir.join("trace.json")).expect("manifest");
    (out, dir, manifest)
}

fn policies(m: &Manifest) -> (String, String) {
    let p = m
        .drop_policies
        .clone()
        .expect("dropPolicies in the manifest");
    (p.index, p.detail)
}

#[test]
fn the_default_and_drop_policy_detail_newest_both_run_and_the_manifest_says_which() {
    let (_out, _, m) = traced(&[], None);
    assert_eq!(policies(&m), ("newest".into(), "oldest".into()));
    assert_eq!(m.stability_ns, Some(10_000_000));
    assert!(m.unregistered_by_lane.is_some());
    let (_out, _, m) = traced(
        &["--drop-policy", "detail=newest", "--stability", "3ms"],
        None,
    );
    assert_eq!(policies(&m), ("newest".into(), "newest".into()));
    assert_eq!(m.stability_ns, Some(3_000_000));
    // A lane the flag names replaces the config file's; the other keeps the file's.
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("ada.toml");
    std::fs::write(&path, "drop-policy = \"index=oldest,detail=newest\"\n").unwrap();
    let (_out, _, m) = traced(
        &[
            "--config",
            path.to_str().unwrap(),
            "--drop-policy",
            "detail=oldest",
        ],
        None,
    );
    assert_eq!(policies(&m), ("oldest".into(), "oldest".into()));
}

#[test]
fn the_env_override_beats_the_flag() {
    let (_out, _, m) = traced(&["--drop-policy", "index=newest"], Some("index=oldest"));
    assert_eq!(policies(&m), ("oldest".into(), "oldest".into()));
}

/// What the stream says about one (thread, lane): lost events by cause, from `EventsLost`.
type Losses = BTreeMap<(i32, String), BTreeMap<String, u64>>;

/// Reads the stream: sums `EventsLost` counts by thread, lane and cause, and checks that each
/// lies in a gap of its thread and lane: no persisted event of theirs falls strictly between
/// its first and last lost times (time order, not stream order: a thread's events spilled into
/// the shared fallback ring reach the stream out of order with its ring events). Returns the
/// sums and the losses in stream order `(thread, lane, cause, count)`.
fn stream_losses(dir: &Path) -> (Losses, Vec<(i32, String, String, u64)>) {
    let reader = TraceReader::open(dir).unwrap();
    let mut sums = Losses::new();
    let mut order = Vec::new();
    // Per (thread, lane): persisted event times, and the (first, last) lost times of losses.
    let mut events: BTreeMap<(i32, u32), Vec<u64>> = BTreeMap::new();
    let mut spans: BTreeMap<(i32, u32), Vec<(u64, u64)>> = BTreeMap::new();
    let mut stream = reader.events();
    for ev in &mut stream {
        let ev = ev.expect("every event decodes");
        let ts = ev.timestamp.and_then(|t| t.to_nanos()).unwrap_or(0);
        match &ev.payload {
            Some(Payload::EventsLost(l)) => {
                assert!(l.count > 0, "an empty loss marker: {l:?}");
                // A thread's own marker knows both times of its loss; the drain's announcement
                // at the end of a thread whose marker found no room (the drain starved past the
                // workload's linger) knows neither.
                assert_eq!(l.first_lost_ns == 0, l.last_lost_ns == 0, "{l:?}");
                assert!(l.first_lost_ns <= l.last_lost_ns, "{l:?}");
                if l.first_lost_ns != 0 {
                    assert_eq!(ts, l.first_lost_ns, "stamped at the first lost event");
                    spans
                        .entry((ev.thread_id, l.lane))
                        .or_default()
                        .push((l.first_lost_ns, l.last_lost_ns));
                }
                let lane = ada_atf::Lane::from_u32(l.lane).expect("a known lane");
                *sums
                    .entry((ev.thread_id, lane.as_str().to_owned()))
                    .or_default()
                    .entry(l.cause.clone())
                    .or_default() += l.count;
                order.push((
                    ev.thread_id,
                    lane.as_str().to_owned(),
                    l.cause.clone(),
                    l.count,
                ));
            }
            Some(Payload::FunctionCall(_) | Payload::FunctionReturn(_) | Payload::Custom(_)) => {
                events.entry((ev.thread_id, ev.lane)).or_default().push(ts);
            }
            _ => {}
        }
    }
    assert!(stream.torn_tail().is_none());
    for (key, spans) in &spans {
        let mut times = events.get(key).cloned().unwrap_or_default();
        times.sort_unstable();
        for &(first, last) in spans {
            // The first persisted event after the loss began must come at or after its end.
            let after = times.partition_point(|&t| t <= first);
            if let Some(&t) = times.get(after) {
                assert!(
                    t >= last,
                    "thread {} lane {}: a persisted event at {t} lies inside the loss {first}..={last}",
                    key.0,
                    key.1
                );
            }
        }
    }
    (sums, order)
}

/// The Chrome export of `dir`: its `events lost (…)` instants as `(tid, lane, cause, count)`,
/// in order, and `otherData`.
fn chrome_losses(dir: &Path) -> (Vec<(i32, String, String, u64)>, Value) {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("trace.json");
    let o = ada()
        .args(["export", "--chrome"])
        .arg(dir)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let losses = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("events lost ("))
        })
        .map(|e| {
            assert_eq!((e["ph"].as_str(), e["s"].as_str()), (Some("i"), Some("t")));
            let cause = e["args"]["cause"].as_str().unwrap().to_owned();
            assert_eq!(e["name"], format!("events lost ({cause})"));
            (
                i32::try_from(e["tid"].as_i64().unwrap()).unwrap(),
                e["args"]["lane"].as_str().unwrap().to_owned(),
                cause,
                e["args"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    (losses, json["otherData"].clone())
}

/// Forces losses on both lanes under `args`' policies and checks, for every thread and lane,
/// the balance by cause, the stream's markers against the counts, and the Chrome instants.
/// `causes` are the causes expected on (index, detail).
fn losses_balance_and_are_marked(args: &[&str], causes: (&str, &str)) {
    let mut all: Vec<&str> = LOSSY.to_vec();
    all.extend_from_slice(args);
    let (_out, dir, m) = traced(&all, None);
    assert!(!m.threads.is_empty());
    let mut lost_on = BTreeMap::<&str, u64>::new();
    let mut expected = Losses::new();
    for t in &m.threads {
        for lane in &t.lanes {
            let lost = lane.lost.expect("lost by cause in the manifest");
            let name = lane.lane.as_str();
            // written = persisted + spilled + discarded + Σ lost by cause.
            assert_eq!(
                lane.written,
                lane.persisted
                    + lane.spilled.unwrap_or(0)
                    + lane.discarded
                    + lost.overwritten
                    + lost.refused
                    + lost.too_large,
                "thread {} {name}: {lane:?}",
                t.thread_id
            );
            assert_eq!(lane.dropped, lost.total());
            *lost_on.entry(name).or_default() += lost.total();
            let by_cause = expected.entry((t.thread_id, name.to_owned())).or_default();
            for (cause, n) in [
                ("overwritten", lost.overwritten),
                ("refused", lost.refused),
                ("too_large", lost.too_large),
            ] {
                if n > 0 {
                    by_cause.insert(cause.to_owned(), n);
                }
            }
            if lost.total() > 0 {
                assert!(
                    lane.state_entries.is_some_and(|e| e.dropping > 0),
                    "a lane that lost events entered DROPPING: {lane:?}"
                );
                assert!(lane.markers.is_some_and(|n| n > 0), "{lane:?}");
            }
        }
    }
    expected.retain(|_, v| !v.is_empty());
    assert!(
        lost_on.get("index").is_some_and(|&n| n > 0)
            && lost_on.get("detail").is_some_and(|&n| n > 0),
        "losses forced on both lanes: {lost_on:?}"
    );
    for ((_, lane), by_cause) in &expected {
        let want = if lane == "index" { causes.0 } else { causes.1 };
        assert_eq!(
            by_cause.keys().collect::<Vec<_>>(),
            [want],
            "{lane} loses by its policy"
        );
    }
    let (marked, order) = stream_losses(&dir);
    assert_eq!(
        marked, expected,
        "the EventsLost events add up to the counted losses, thread by thread, lane by lane, cause by cause"
    );
    let markers: u64 = m
        .threads
        .iter()
        .flat_map(|t| &t.lanes)
        .map(|l| l.markers.unwrap_or(0))
        .sum();
    assert_eq!(order.len() as u64, markers, "one EventsLost per marker");
    let (instants, other) = chrome_losses(&dir);
    assert_eq!(
        instants, order,
        "one Chrome instant per EventsLost, on its thread"
    );
    let total: u64 = order.iter().map(|l| l.3).sum();
    assert_eq!(other["eventsLostInStream"], total.to_string());
    let cause_key = |c: &str| match c {
        "overwritten" => "lostOverwritten",
        "refused" => "lostRefused",
        _ => "lostTooLarge",
    };
    for (lane, cause) in [("index", causes.0), ("detail", causes.1)] {
        let counted: u64 = expected
            .iter()
            .filter(|((_, l), _)| l == lane)
            .map(|(_, c)| c[cause])
            .sum();
        assert!(counted > 0);
        assert!(
            other[cause_key(cause)]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= counted
        );
    }
}

#[test]
fn default_policies_losses_balance_and_are_marked_at_the_gaps() {
    losses_balance_and_are_marked(&[], ("refused", "overwritten"));
}

#[test]
fn swapped_policies_losses_balance_and_are_marked_at_the_gaps() {
    losses_balance_and_are_marked(
        &["--drop-policy", "index=oldest,detail=newest"],
        ("overwritten", "refused"),
    );
}

/// A one-line usage error (exit 2) containing every needle; nothing ran, no trace was left.
fn assert_refused(args: &[&str], env: Option<&str>, needles: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let (o, dir) = trace(out.path(), args, env);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ada: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(dir.is_none(), "nothing written");
}

#[test]
fn bad_drop_policies_and_stability_periods_are_usage_errors() {
    assert_refused(
        &["--drop-policy", "index=newest,detail=sideways"],
        None,
        &["--drop-policy", "byte 20", "\"sideways\""],
    );
    assert_refused(&["--drop-policy", ""], None, &["--drop-policy", "empty"]);
    assert_refused(
        &["--drop-policy", "index=oldest,index=newest"],
        None,
        &["byte 13", "given twice"],
    );
    assert_refused(&["--stability", "2h"], None, &["--stability", "1m"]);
    assert_refused(&["--stability", "soon"], None, &["--stability"]);
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("ada.toml");
    std::fs::write(&path, "drop-policy = \"detail\"\n").unwrap();
    assert_refused(
        &["--config", path.to_str().unwrap()],
        None,
        &["drop-policy", "byte 0", "no policy"],
    );
    std::fs::write(&path, "stability = \"-1s\"\n").unwrap();
    assert_refused(&["--config", path.to_str().unwrap()], None, &["stability"]);
    // The start-up override: refused by the controller, the same kind of usage error.
    assert_refused(
        &[],
        Some("index=newest,,detail=oldest"),
        &["ADA_DROP_POLICY", "byte 13", "empty part"],
    );
    assert_refused(&[], Some(""), &["ADA_DROP_POLICY", "empty"]);
}

#[test]
fn status_shows_live_lane_states_loss_by_cause_and_the_policies() {
    use ada_controller::{ControllerBuilder, DropPolicy, LanePolicies, RingGeometry};
    // A segment nobody drains: the workload's threads fill their rings and lose events by
    // their lanes' policies, then linger registered while `ada status` looks.
    let controller = ControllerBuilder::new()
        .capacity(4)
        .geometry(RingGeometry {
            index_rings: 2,
            index_ring_bytes: 1 << 10,
            detail_rings: 2,
            detail_ring_bytes: 1 << 10,
        })
        .drop_policies(LanePolicies {
            index: DropPolicy::DropOldest,
            detail: DropPolicy::DropNewest,
        })
        .stability(std::time::Duration::from_millis(4))
        .create()
        .unwrap();
    // Ready (so the workload's thread registers and records into its own rings), but no drain
    // and no heartbeat after the first.
    let control = controller.registry().control();
    control.tick_heartbeat(ada_shm::clock::MonotonicClock::read());
    control.publish_ready(ada_registry::RegistryMode::PerThreadOnly);
    let segment = controller.segment_name().to_owned();
    let mut workload = std::process::Command::new(env!("CARGO_BIN_EXE_ada"))
        .args([
            "workload",
            "--threads",
            "1",
            "--events",
            "500",
            "--slow-every",
            "0",
            "--linger",
            "20000",
        ])
        .env(ada_controller::ENV_SEGMENT, &segment)
        .env_remove(ada_controller::ENV_DROP_POLICY)
        .spawn()
        .unwrap();
    // Until the thread has lost events on both lanes (it lingers long after).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let out = ada().args(["status", &segment]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("index   state") && text.matches("lost: none").count() == 0 {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no loss seen:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = workload.kill();
    let _ = workload.wait();
    assert!(
        text.contains(
            "drop policies: index=oldest,detail=newest (stability 4.0 ms); events of threads with \
             no slot (no_slot): index 0, detail 0"
        ),
        "{text}"
    );
    let index = text.lines().find(|l| l.contains("index   state")).unwrap();
    let detail = text.lines().find(|l| l.contains("detail  state")).unwrap();
    assert!(index.contains("lost: overwritten "), "{index}");
    assert!(detail.contains("lost: refused "), "{detail}");
    for line in [index, detail] {
        // A lane that lost events left NORMAL: its state and the states it entered are named.
        assert!(line.contains("DROPPING"), "{line}");
        assert!(!line.contains("differs"), "{line}");
    }
}
