//! A hostile writer against a live segment (issue 11): `ada trace` runs the bundled
//! multi-threaded workload (index and detail events, marks, messages, symbols) while this test
//! process, a second process of the same user, maps the same segment and writes into it:
//! random words anywhere, and targeted writes to every region (control block; slot headers:
//! state, generation, pid, tid; lane words: active ring, queue heads, tails and slots,
//! counters; ring headers: positions, generations, flags; record bytes: length fields huge,
//! zero, odd or wrapping, with the controller stopped so the rings fill and recycle; the
//! symbol table).
//!
//! Whatever it writes: the controller and the traced program both exit in time (no hang) and
//! neither dies by a signal; the trace is readable; its counts agree with its contents: the
//! manifest's `eventCount` is the number of events in `events.bin`, every event of a traced
//! thread names a thread of the manifest, and each manifest thread's persisted counts are the
//! events attributed to it.
//!
//! Seeded and reproducible: each round prints its seed; `ADA_HOSTILE_SEED=<n>` replays one.

mod common;

use ada_atf::TraceReader;
use ada_atf::schema::event::Payload;
use ada_registry::{LaneKind, Registry};
use ada_shm::sync::{AtomicU64, Ordering};
use ada_shm::{AttachOptions, Off, RegionKind, SegmentName};
use common::{ada, children_of, trace_dir};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `ada trace` may take for a workload of about half a second.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);
/// Longest hostile phase.
const HOSTILE_FOR: Duration = Duration::from_secs(2);
/// Workload threads.
const THREADS: u32 = 4;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A value a hostile writer likes: extremes, small numbers, plausible-looking garbage.
    fn nasty(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(16),
            3 => u64::from(u32::MAX) - self.below(64),
            4 => (self.next() & 0xffff_ffff) << 32,
            5 => self.below(1 << 20) * 8,
            _ => self.next(),
        }
    }
}

/// What a round writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Random words anywhere in the segment (each region equally likely).
    Random,
    /// The control block.
    Control,
    /// Slot headers: state and generation, pid (1, 0, ours, garbage), tid, registration time.
    SlotHeaders,
    /// Lane words: active ring, queue heads, tails and slots, counters.
    LaneWords,
    /// Ring headers: position (generation, write position), flags, sequence, consumed.
    RingHeaders,
    /// Record length fields, walked record by record, with the controller stopped (SIGSTOP)
    /// for part of the phase so rings fill and the threads recycle them.
    RecordLengths,
    /// The symbol table: claim counters, entries, name bytes.
    Symbols,
}

/// The seed of round `round` (`ADA_HOSTILE_SEED` overrides the random base).
fn seed_for(round: u64) -> u64 {
    let base = match std::env::var("ADA_HOSTILE_SEED") {
        Ok(s) => s.parse().expect("ADA_HOSTILE_SEED is a u64"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    };
    base.wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The live segment of the `ada trace` process `pid` (its name is `/ada_<pid>_<session>`).
fn attach_live(pid: u32, deadline: Instant) -> Registry {
    let prefix = format!("ada_{pid}_");
    loop {
        assert!(
            Instant::now() < deadline,
            "no segment of ada pid {pid} appeared"
        );
        let found = std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(&prefix));
        if let Some(name) = found {
            let name = SegmentName::parse(&name).unwrap();
            if let Ok(registry) = Registry::attach(&name, AttachOptions::default()) {
                return registry;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The segment's mapping as words (every byte of it, as `AtomicU64`s).
fn words(registry: &Registry) -> &[AtomicU64] {
    let seg = registry.segment();
    seg.view_slice(Off::<AtomicU64>::new(0), seg.len() / 8)
        .expect("the whole mapping")
}

/// Offset and size of region `kind`.
fn region(registry: &Registry, kind: RegionKind) -> (u64, u64) {
    let r = registry.segment().region(kind).unwrap();
    (r.offset, r.size)
}

fn store_u32(words: &[AtomicU64], byte_offset: u64, value: u32) {
    let word = &words[(byte_offset / 8) as usize];
    let shift = (byte_offset % 8) * 8;
    let old = word.load(Ordering::Relaxed);
    // Relaxed: a hostile write; nobody is meant to be synchronised by it.
    word.store(
        (old & !(0xffff_ffffu64 << shift)) | (u64::from(value) << shift),
        Ordering::Relaxed,
    );
}

fn store_u64(words: &[AtomicU64], byte_offset: u64, value: u64) {
    // Relaxed: a hostile write.
    words[(byte_offset / 8) as usize].store(value, Ordering::Relaxed);
}

/// Byte offset of slot `slot`'s header (the registry region: a 256-byte header, then 896-byte
/// slots: a 128-byte slot header, the index lane at 128 and the detail lane at 512).
fn slot_offset(registry: &Registry, slot: u32) -> u64 {
    region(registry, RegionKind::Registry).0 + 256 + u64::from(slot) * 896
}

fn lane_offset(registry: &Registry, slot: u32, kind: LaneKind) -> u64 {
    slot_offset(registry, slot)
        + match kind {
            LaneKind::Index => 128,
            LaneKind::Detail => 512,
        }
}

/// Every ring of the segment: (offset, bytes, lane).
fn rings(registry: &Registry) -> Vec<(u64, u32, LaneKind)> {
    let mut all = Vec::new();
    for slot in 0..registry.capacity() {
        for kind in LaneKind::ALL {
            let mut ring = 0;
            while let Some((offset, bytes)) = registry.ring_location(slot, kind, ring) {
                all.push((offset, bytes, kind));
                ring += 1;
            }
        }
    }
    all
}

/// One burst of hostile writes.
fn strike(registry: &Registry, rng: &mut Rng, target: Target) {
    let w = words(registry);
    let cap = registry.capacity();
    match target {
        Target::Random => {
            let kinds = [
                None,
                Some(RegionKind::Control),
                Some(RegionKind::Registry),
                Some(RegionKind::Rings),
                Some(RegionKind::Symbols),
            ];
            for _ in 0..64 {
                let (start, size) = match kinds[rng.below(kinds.len() as u64) as usize] {
                    None => (0, 256),
                    Some(kind) => region(registry, kind),
                };
                let value = rng.nasty();
                store_u64(w, start + rng.below(size / 8) * 8, value);
            }
        }
        Target::Control => {
            let (start, size) = region(registry, RegionKind::Control);
            for _ in 0..16 {
                let value = rng.nasty();
                store_u64(w, start + rng.below(size.min(512) / 8) * 8, value);
            }
        }
        Target::SlotHeaders => {
            let slot = slot_offset(registry, rng.below(u64::from(cap)) as u32);
            let state = (rng.nasty() << 32) | rng.below(6);
            match rng.below(5) {
                0 => store_u64(w, slot, state),
                1 => {
                    let pid = [1, 0, u32::MAX, std::process::id(), rng.next() as u32];
                    store_u32(w, slot + 12, pid[rng.below(5) as usize]);
                }
                2 => store_u32(w, slot + 8, rng.nasty() as u32),
                3 => {
                    let tid = rng.nasty();
                    store_u64(w, slot + 16, tid);
                }
                _ => {
                    let ns = rng.nasty();
                    store_u64(w, slot + 24, ns);
                }
            }
        }
        Target::LaneWords => {
            let kind = LaneKind::ALL[rng.below(2) as usize];
            let lane = lane_offset(registry, rng.below(u64::from(cap)) as u32, kind);
            // active_ring, marked, submit_tail, free_head; counters; submit_head, free_tail;
            // queue slots.
            let u32s = [0u64, 4, 8, 12, 128, 132];
            match rng.below(3) {
                0 => {
                    let at = lane + u32s[rng.below(u32s.len() as u64) as usize];
                    store_u32(w, at, rng.nasty() as u32);
                }
                1 => {
                    let value = rng.nasty();
                    store_u64(w, lane + 16 + rng.below(4) * 8, value);
                }
                _ => store_u32(w, lane + 256 + rng.below(16) * 4, rng.nasty() as u32),
            }
        }
        Target::RingHeaders => {
            let all = rings(registry);
            let (ring, _, _) = all[rng.below(all.len() as u64) as usize];
            let field = [0u64, 8, 16, 64][rng.below(4) as usize];
            let value = rng.nasty();
            store_u64(w, ring + field, value);
        }
        Target::RecordLengths => {
            // A record of a live thread's ring, below what it has written so far (found by
            // walking the length fields as written), gets a bad length: half the time the one
            // that wraps a 32-bit cursor stepping over it back to the start of the ring.
            let live: Vec<u32> = registry.view().live_slots().map(|s| s.index).collect();
            if live.is_empty() {
                return;
            }
            let slot = live[rng.below(live.len() as u64) as usize];
            let kind = LaneKind::ALL[rng.below(2) as usize];
            let pool: Vec<(u64, u32)> = (0..8)
                .map_while(|ring| registry.ring_location(slot, kind, ring))
                .collect();
            let (ring, bytes) = pool[rng.below(pool.len() as u64) as usize];
            let data = ring + 128;
            let written = (w[(ring / 8) as usize].load(Ordering::Relaxed) & 0xffff_ffff)
                .min(u64::from(bytes - 128));
            let mut at = 0u64;
            for _ in 0..1 + rng.below(64) {
                let len = match kind {
                    LaneKind::Index => 32,
                    LaneKind::Detail => {
                        w[((data + at) / 8) as usize].load(Ordering::Relaxed) & 0xffff_ffff
                    }
                };
                if len < 8 || len % 8 != 0 || at + len >= written {
                    break;
                }
                at += len;
            }
            let bad = match rng.below(16) {
                0 => 0,
                1 => u32::MAX,
                2 => 1 + 2 * rng.below(20) as u32,
                3 => bytes * 2,
                _ => 0u32.wrapping_sub(at as u32),
            };
            store_u32(w, data + at, bad);
        }
        Target::Symbols => {
            let (start, size) = region(registry, RegionKind::Symbols);
            match rng.below(4) {
                // next_entry, next_word, refused
                0 => store_u64(w, start + 128 + rng.below(3) * 8, rng.nasty()),
                // an entry's fields
                1 => {
                    let entries = u64::from(registry.symbols().capacity());
                    let entry = start + 256 + rng.below(entries.min(64)) * 24;
                    store_u64(w, entry + rng.below(3) * 8, rng.nasty());
                }
                // name bytes: terminal escapes and bidi overrides, or garbage
                2 => {
                    let names = start + 256 + u64::from(registry.symbols().capacity()) * 24;
                    let at = names + rng.below(((start + size - names) / 8).min(512)) * 8;
                    let value = [
                        u64::from_le_bytes(*b"\x1b[2J\x1b]0;"),
                        u64::from_le_bytes(*b"\xe2\x80\xaeevil!"),
                        rng.next(),
                    ][rng.below(3) as usize];
                    store_u64(w, at, value);
                }
                // the sizes (read once, at attach)
                _ => store_u32(w, start + rng.below(2) * 4, rng.nasty() as u32),
            }
        }
    }
}

/// The threads of process `pid` right now.
fn tasks_of(pid: u32) -> BTreeSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` until `deadline`; on timeout kills it and its children and fails.
fn wait_or_fail(child: &mut Child, deadline: Instant, what: &str) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let pid = child.id();
            let stuck = children_of(pid);
            for c in &stuck {
                signal(*c, "-KILL");
            }
            signal(pid, "-CONT");
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: `ada trace` (and its command {stuck:?}) did not exit: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One round: trace the workload while writing into its segment, then check the trace.
fn round(target: Target, seed: u64) {
    eprintln!("hostile round {target:?}: seed {seed} (replay: ADA_HOSTILE_SEED={seed})");
    let mut rng = Rng::new(seed);
    let out = tempfile::tempdir().unwrap();
    let log = |name: &str| std::fs::File::create(out.path().join(name)).unwrap();
    let mut child = ada()
        .args(["trace", "-q", "-o"])
        .arg(out.path())
        .args([
            "--threads",
            "16",
            "--index-ring-kib",
            "4",
            "--detail-ring-kib",
            "4",
        ])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ada"))
        .args(["workload", "--threads", &THREADS.to_string()])
        .args(["--events", "1000", "--rate", "2000"])
        .stdout(log("stdout.txt"))
        .stderr(log("stderr.txt"))
        .spawn()
        .unwrap();
    let ada_pid = child.id();
    let start = Instant::now();
    let registry = attach_live(ada_pid, start + Duration::from_secs(10));
    // Let the threads register (or the program end) before the first write. The workload's
    // threads are sampled from the start: a short-lived one may be gone by the hostile phase.
    let mut seen_tids = BTreeSet::new();
    loop {
        for pid in children_of(ada_pid) {
            seen_tids.extend(tasks_of(pid));
        }
        if registry.header().counters().registrations >= u64::from(THREADS)
            || start.elapsed() >= Duration::from_secs(5)
            || child.try_wait().unwrap().is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let workload = children_of(ada_pid);
    let hostile_start = Instant::now();
    let mut strikes = 0u64;
    if target == Target::RecordLengths {
        // The case: the controller stopped (its drain with it), so the rings fill and
        // the threads recycle them; bad lengths for 150 ms, then 150 ms in which nothing
        // rewrites them again (a later write could end a walk that went wrong), then the
        // controller continues and the hostile phase ends.
        signal(ada_pid, "-STOP");
        let quiet_at = hostile_start + Duration::from_millis(150);
        while Instant::now() < quiet_at {
            strike(&registry, &mut rng, target);
            strikes += 1;
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(Duration::from_millis(150));
        for &pid in &workload {
            seen_tids.extend(tasks_of(pid));
        }
        signal(ada_pid, "-CONT");
    }
    while target != Target::RecordLengths
        && hostile_start.elapsed() < HOSTILE_FOR
        && child.try_wait().unwrap().is_none()
    {
        for _ in 0..32 {
            strike(&registry, &mut rng, target);
            strikes += 1;
        }
        for &pid in &workload {
            seen_tids.extend(tasks_of(pid));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    drop(registry);
    let status = wait_or_fail(
        &mut child,
        Instant::now() + EXIT_DEADLINE,
        &format!("seed {seed}"),
    );
    let stderr = std::fs::read_to_string(out.path().join("stderr.txt")).unwrap();
    eprintln!("{target:?} seed {seed}: {strikes} hostile writes, ada {status:?}\n{stderr}");

    // Neither process died by a signal: `ada trace` itself, and the command (whose signal
    // death `ada trace` reports as 128 + N).
    assert_eq!(
        status.signal(),
        None,
        "seed {seed}: ada trace died by a signal"
    );
    let code = status.code().unwrap();
    assert!(
        code < 128,
        "seed {seed}: the traced program died by signal {}",
        code - 128
    );

    // The trace is readable and complete, and its counts agree with its contents.
    let dir = trace_dir(out.path());
    // Targets that leave the lanes' counter words alone: a thread's drops are counted from what
    // it wrote itself, so they never exceed what it wrote.
    let counters_untouched = !matches!(target, Target::Random | Target::LaneWords);
    check_trace(&dir, seed, &seen_tids, counters_untouched);
    assert_eq!(code, 0, "seed {seed}: the workload and the trace succeed");
}

/// The counts of the trace at `dir` agree with its events.
fn check_trace(dir: &Path, seed: u64, workload_tids: &BTreeSet<u64>, counters_untouched: bool) {
    let reader = TraceReader::open(dir).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let manifest = reader.manifest().cloned().expect("a finalized manifest");
    let mut stream = reader.events();
    let mut events = 0u64;
    let mut per_thread: BTreeMap<i32, u64> = BTreeMap::new();
    for ev in &mut stream {
        let ev = ev.unwrap_or_else(|e| panic!("seed {seed}: an event does not decode: {e}"));
        events += 1;
        // The events made from ring records; the controller's own (start, end, windows,
        // losses) belong to no traced thread.
        let from_a_ring = matches!(
            ev.payload,
            Some(Payload::FunctionCall(_) | Payload::FunctionReturn(_) | Payload::Custom(_))
        );
        if from_a_ring {
            *per_thread.entry(ev.thread_id).or_default() += 1;
        }
    }
    assert!(stream.torn_tail().is_none(), "seed {seed}: torn tail");
    assert_eq!(
        manifest.event_count, events,
        "seed {seed}: the manifest's eventCount is the number of events in events.bin"
    );
    let mut persisted: BTreeMap<i32, u64> = BTreeMap::new();
    for t in &manifest.threads {
        for l in &t.lanes {
            assert!(
                !counters_untouched || l.dropped <= l.written,
                "seed {seed}: thread {}: more events dropped than written: {l:?}",
                t.thread_id
            );
        }
        // Through its rings, or spilled into the shared fallback ring (a pool the hostile
        // writer wedged runs dry).
        let sum: u64 = t
            .lanes
            .iter()
            .map(|l| l.persisted + l.via_fallback.unwrap_or(0))
            .sum();
        assert!(
            persisted.insert(t.thread_id, sum).is_none(),
            "seed {seed}: thread {} listed twice in the manifest",
            t.thread_id
        );
    }
    for (thread, n) in &per_thread {
        assert!(
            persisted.contains_key(thread),
            "seed {seed}: {n} events attributed to thread {thread}, which the manifest does not \
             list (manifest threads: {:?})",
            persisted.keys().collect::<Vec<_>>()
        );
    }
    for (thread, sum) in &persisted {
        assert_eq!(
            per_thread.get(thread).copied().unwrap_or(0),
            *sum,
            "seed {seed}: thread {thread}: the manifest's persisted counts vs its events"
        );
    }
    // A thread the controller verified (`verified: true` in trace.json) is one of the
    // workload's threads: identity comes from what the controller can check, not from the
    // slot's words.
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("trace.json")).unwrap()).unwrap();
    if let Some(threads) = raw["threads"].as_array() {
        for t in threads {
            if t["verified"] == serde_json::Value::Bool(true)
                && let Some(tid) = t["osTid"].as_u64()
                && !workload_tids.is_empty()
            {
                assert!(
                    workload_tids.contains(&tid),
                    "seed {seed}: verified thread {t} is not a thread of the workload \
                     {workload_tids:?}"
                );
            }
        }
    }
}

#[test]
fn random_writes_anywhere() {
    for r in 0..3 {
        round(Target::Random, seed_for(r));
    }
}

#[test]
fn control_block() {
    round(Target::Control, seed_for(10));
}

#[test]
fn slot_headers() {
    round(Target::SlotHeaders, seed_for(20));
}

#[test]
fn lane_words() {
    round(Target::LaneWords, seed_for(30));
}

#[test]
fn ring_headers() {
    round(Target::RingHeaders, seed_for(40));
}

#[test]
fn record_lengths_with_the_controller_stopped() {
    round(Target::RecordLengths, seed_for(50));
}

#[test]
fn symbol_table() {
    round(Target::Symbols, seed_for(60));
}
