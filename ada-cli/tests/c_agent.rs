//! C and C++ programs traced through the C agent (`ada-agent-c`), end to end with the `ada`
//! binary: the C API example linked to the shared library, and `-finstrument-functions`
//! programs under `ada trace --functions` (recursive fib on several threads, `exit()` from a
//! worker thread, `fork` + `exec`), each read back with `ada_atf`'s reader and checked against
//! the call counts the program itself prints. The programs are built here with the system C
//! compiler (`$CC`, else `cc`); without one, each test says so on stderr and checks nothing.
//!
//! The agent library is the one this build made: `ada-cli` dev-depends on `ada-agent-c`, so
//! cargo builds its `cdylib` into the test binaries' own directory (`target/<profile>/deps/`).

mod common;

use ada_atf::schema::event::Payload;
use ada_atf::{Manifest, TraceReader};
use common::{ada, trace_dir};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `ada-agent-c` directory (examples, header, test programs).
fn agent_c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("ada-agent-c")
}

/// The C compiler, or `None` (said on stderr) when there is none.
fn c_compiler(test: &str) -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let found = Command::new(&cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED {test}: no C compiler ({cc} --version failed); nothing was checked");
        return None;
    }
    Some(cc)
}

/// `libada_agent_c.so` of this build, next to the test binary (see the module docs).
fn agent_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let lib = exe
        .parent()
        .expect("deps directory")
        .join("libada_agent_c.so");
    assert!(
        lib.is_file(),
        "{} missing: ada-cli's dev-dependency on ada-agent-c builds it",
        lib.display()
    );
    lib
}

/// The flags that link a program to [`agent_lib`]: its directory on the search path and in the
/// program's run path.
fn link_flags() -> Vec<String> {
    let lib = agent_lib();
    let dir = lib.parent().expect("the library's directory").display();
    vec![
        format!("-I{}", agent_c_dir().join("include").display()),
        format!("-L{dir}"),
        format!("-Wl,-rpath,{dir}"),
        "-lada_agent_c".to_owned(),
    ]
}

/// `ada` for a command linked to [`agent_lib`]: `LD_LIBRARY_PATH` (which cargo and nextest set
/// for tests, and which beats a run path) names only its directory, so the command cannot load
/// another build's copy (the one cargo puts in `target/<profile>/`, possibly stale when only
/// `ada-cli` was built).
fn ada_for_linked() -> Command {
    let mut cmd = ada();
    cmd.env(
        "LD_LIBRARY_PATH",
        agent_lib().parent().expect("a directory"),
    );
    cmd
}

/// Compiles `sources` into `out` with `flags`.
fn compile<S: AsRef<std::ffi::OsStr>>(cc: &str, sources: &[PathBuf], out: &Path, flags: &[S]) {
    let r = Command::new(cc)
        .args(sources)
        .args(flags)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run the C compiler");
    assert!(
        r.status.success(),
        "{cc} failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Compiles one of `ada-agent-c`'s C programs with `-finstrument-functions` into `dir`.
fn instrumented(cc: &str, source: &Path, dir: &Path) -> PathBuf {
    let exe = dir.join(source.file_stem().expect("a file name"));
    compile(
        cc,
        &[source.to_path_buf()],
        &exe,
        &["-O1", "-finstrument-functions", "-pthread"],
    );
    exe
}

/// `ada trace -q --functions --agent-lib LIB --index-ring-kib 4096 -o OUT -- ARGS` (rings
/// large enough that these small programs lose nothing).
fn trace_functions(out: &Path, args: &[&std::ffi::OsStr]) -> Output {
    ada()
        .args(["trace", "-q", "--functions", "--agent-lib"])
        .arg(agent_lib())
        .args(["--index-ring-kib", "4096", "-o"])
        .arg(out)
        .arg("--")
        .args(args)
        .output()
        .expect("run ada")
}

/// What a trace's index lane held, read back event by event.
#[derive(Debug, Default)]
struct Calls {
    /// Calls per (trace thread, function id).
    calls: HashMap<(i32, u64), u64>,
    /// Returns per (trace thread, function id).
    returns: HashMap<(i32, u64), u64>,
    /// Each thread's index events in stream order: (is a call, function id, call depth).
    sequence: BTreeMap<i32, Vec<(bool, u64, u32)>>,
    /// Symbol names from the stream's definitions, by function id.
    names: HashMap<u64, String>,
    /// `custom` payloads (name, text).
    custom: Vec<(String, String)>,
    /// The manifest.
    manifest: Option<Manifest>,
}

impl Calls {
    fn read(dir: &Path) -> Calls {
        let reader = TraceReader::open(dir).expect("open trace");
        let mut c = Calls {
            manifest: reader.manifest().cloned(),
            ..Calls::default()
        };
        let mut stream = reader.events();
        for ev in &mut stream {
            let ev = ev.expect("every event decodes");
            match ev.payload {
                Some(Payload::FunctionCall(_)) => {
                    *c.calls.entry((ev.thread_id, ev.function_id)).or_default() += 1;
                    c.sequence.entry(ev.thread_id).or_default().push((
                        true,
                        ev.function_id,
                        ev.call_depth,
                    ));
                }
                Some(Payload::FunctionReturn(_)) => {
                    *c.returns.entry((ev.thread_id, ev.function_id)).or_default() += 1;
                    c.sequence.entry(ev.thread_id).or_default().push((
                        false,
                        ev.function_id,
                        ev.call_depth,
                    ));
                }
                Some(Payload::SymbolDef(def)) => {
                    c.names.insert(def.function_id, def.symbol);
                }
                Some(Payload::Custom(custom)) => c.custom.push((
                    custom.name,
                    String::from_utf8_lossy(&custom.data).into_owned(),
                )),
                _ => {}
            }
        }
        assert!(stream.torn_tail().is_none(), "a finalized trace is whole");
        c
    }

    fn manifest(&self) -> &Manifest {
        self.manifest
            .as_ref()
            .expect("a finalized trace has a manifest")
    }

    /// Calls of `function` summed over threads.
    fn calls_of(&self, function: u64) -> u64 {
        sum_of(&self.calls, function)
    }

    /// Returns from `function` summed over threads.
    fn returns_of(&self, function: u64) -> u64 {
        sum_of(&self.returns, function)
    }

    /// The id of the symbol named `name`.
    fn id_of(&self, name: &str) -> u64 {
        let ids: Vec<u64> = self
            .names
            .iter()
            .filter(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids.len(), 1, "one definition of {name}: {:?}", self.names);
        ids[0]
    }

    /// Every thread's calls and returns nest: each return is of the innermost open call, at
    /// its depth, and each call is one deeper than the one it is in (a thread's first events
    /// may return from calls entered before its recording began: a forked child's).
    fn assert_nesting(&self) {
        for (thread, events) in &self.sequence {
            let mut stack: Vec<(u64, u32)> = Vec::new();
            for &(is_call, id, depth) in events {
                if is_call {
                    if let Some(&(_, outer)) = stack.last() {
                        assert_eq!(depth, outer + 1, "thread {thread}: call of {id:#x}");
                    }
                    stack.push((id, depth));
                } else if let Some((open, at)) = stack.pop() {
                    assert_eq!(open, id, "thread {thread}: return from the innermost call");
                    assert_eq!(at, depth, "thread {thread}: return at its call's depth");
                }
            }
        }
    }
}

fn sum_of(map: &HashMap<(i32, u64), u64>, function: u64) -> u64 {
    map.iter()
        .filter(|((_, id), _)| *id == function)
        .map(|(_, n)| n)
        .sum()
}

/// Every lane of every thread balances (`written = persisted + spilled + dropped + discarded`)
/// and the trace is complete; returns the index lane's (written, persisted, lost) summed.
fn assert_accounted(m: &Manifest) -> (u64, u64, u64) {
    assert_eq!(m.complete, Some(true), "{m:?}");
    let (mut written, mut persisted, mut lost) = (0, 0, 0);
    for t in &m.threads {
        for lane in &t.lanes {
            assert!(lane.is_balanced(), "{t:?}");
        }
        let index = &t.lanes[0];
        written += index.written;
        persisted += index.persisted + index.via_fallback.unwrap_or(0);
        lost += index.dropped + index.discarded;
    }
    (written, persisted, lost)
}

/// The `NAME ADDRESS COUNT` lines a program printed: address and count by name.
fn printed_counts(stdout: &[u8]) -> HashMap<String, (u64, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let address = u64::from_str_radix(words.next()?.strip_prefix("0x")?, 16).ok()?;
            let count = words.next()?.parse().ok()?;
            Some((name.to_owned(), (address, count)))
        })
        .collect()
}

/// The C API example (`examples/c/hello.c`), linked to the shared library (no preload), traced
/// by `ada trace`: its callsites are named, each call is in the trace once with its return,
/// `inner` nested in `outer`, and its messages and mark reached the detail lane.
#[test]
fn c_api_example_is_traced_end_to_end() {
    let Some(cc) = c_compiler("c_api_example_is_traced_end_to_end") else {
        return;
    };
    const ROUNDS: u64 = 50;
    let work = tempfile::tempdir().unwrap();
    let hello = work.path().join("hello");
    let mut flags: Vec<String> = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
        .map(String::from)
        .into();
    flags.extend(link_flags());
    compile(
        &cc,
        &[agent_c_dir().join("examples/c/hello.c")],
        &hello,
        &flags,
    );
    let out = work.path().join("out");
    let r = ada_for_linked()
        .args(["trace", "-q", "-o"])
        .arg(&out)
        .arg("--")
        .arg(&hello)
        .arg(ROUNDS.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("traced=1 outer={ROUNDS} inner={} total=450", ROUNDS * 3)
    );
    let t = Calls::read(&trace_dir(&out));
    let (written, persisted, lost) = assert_accounted(t.manifest());
    assert_eq!((written, persisted, lost), (ROUNDS * 8, ROUNDS * 8, 0));
    let (outer, inner) = (t.id_of("outer"), t.id_of("inner"));
    assert_eq!((t.calls_of(outer), t.returns_of(outer)), (ROUNDS, ROUNDS));
    assert_eq!(
        (t.calls_of(inner), t.returns_of(inner)),
        (ROUNDS * 3, ROUNDS * 3)
    );
    t.assert_nesting();
    let depths: Vec<(bool, u64, u32)> = t.sequence.values().flatten().copied().collect();
    assert!(
        depths
            .iter()
            .all(|&(_, id, d)| (id == outer && d == 1) || (id == inner && d == 2)),
        "outer at depth 1, inner at depth 2"
    );
    // The detail lane: the NULL message, one per round, and the mark, all written; the mark
    // (always persisted) holds its text.
    let detail = &t.manifest().threads[0].lanes[1];
    assert_eq!(detail.written, ROUNDS + 2, "{detail:?}");
    assert!(
        t.custom
            .iter()
            .any(|(name, text)| name == "mark" && text == "finished"),
        "{:?}",
        t.custom
    );
}

/// `ada trace --functions` of a `-finstrument-functions` program (recursive fib plus short and
/// long functions on 3 threads, and a constructor that runs before `main`): every call and
/// return is in the trace, under the function's address, as often as the program made it,
/// properly nested, and the accounting balances.
#[test]
fn functions_flag_records_every_call_of_an_instrumented_program() {
    let Some(cc) = c_compiler("functions_flag_records_every_call_of_an_instrumented_program")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let fib = instrumented(&cc, &agent_c_dir().join("examples/c/fib.c"), work.path());
    let out = work.path().join("out");
    let r = trace_functions(&out, &[fib.as_os_str(), "18".as_ref(), "3".as_ref()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let expected = printed_counts(&r.stdout);
    assert_eq!(expected.len(), 7, "{}", String::from_utf8_lossy(&r.stdout));
    // Before main: the constructor and its call of short_fn.
    assert_eq!(expected["before_main"].1, 1);
    // fib(18) makes 8361 calls of itself.
    assert_eq!(expected["fib"].1, 8361 * 3);
    let t = Calls::read(&trace_dir(&out));
    let (written, persisted, lost) = assert_accounted(t.manifest());
    let calls: u64 = expected.values().map(|(_, n)| n).sum();
    assert_eq!(written, 2 * calls, "one entry and one exit per call");
    assert_eq!((persisted, lost), (written, 0), "the rings were big enough");
    assert_eq!(t.manifest().threads.len(), 3);
    for (name, (address, count)) in &expected {
        assert_eq!(t.calls_of(*address), *count, "calls of {name}");
        assert_eq!(t.returns_of(*address), *count, "returns from {name}");
    }
    t.assert_nesting();
    // The whole path: the controller recorded the program's modules, and `ada inspect
    // --top 10` names the hooked addresses with their functions and counts.
    let inspect = Command::new(env!("CARGO_BIN_EXE_ada"))
        .args(["inspect", "--top", "10"])
        .arg(trace_dir(&out))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{text}");
    let by_calls: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("top 10 functions by calls"))
        .skip(2)
        .take_while(|l| !l.starts_with("top 10"))
        .collect();
    assert!(
        by_calls.first().is_some_and(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&(8361 * 3).to_string().as_str()) && cols.last() == Some(&"fib")
        }),
        "fib first, named, with its count:\n{text}"
    );
    for name in ["short_fn", "long_fn", "work", "worker", "main"] {
        assert!(
            by_calls
                .iter()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "{name} named:\n{text}"
        );
    }
}

/// `--functions` finds the library next to the `ada` executable when neither `--agent-lib` nor
/// `ADA_AGENT_LIB` names one, and a library that cannot be found is a one-line error before
/// anything runs.
#[test]
fn functions_flag_finds_the_library_next_to_ada_or_says_where_it_looked() {
    let Some(cc) =
        c_compiler("functions_flag_finds_the_library_next_to_ada_or_says_where_it_looked")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let fib = instrumented(&cc, &agent_c_dir().join("examples/c/fib.c"), work.path());
    // A copy of `ada` with the library beside it.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let ada_copy = bin.join("ada");
    std::fs::copy(env!("CARGO_BIN_EXE_ada"), &ada_copy).unwrap();
    std::os::unix::fs::symlink(agent_lib(), bin.join("libada_agent_c.so")).unwrap();
    let out = work.path().join("out");
    let r = Command::new(&ada_copy)
        .env("ADA_KEEP_STALE_SEGMENTS", "1")
        .env_remove("ADA_AGENT_LIB")
        .args(["trace", "-q", "--functions", "-o"])
        .arg(&out)
        .arg("--")
        .args([fib.as_os_str(), "10".as_ref()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let expected = printed_counts(&r.stdout);
    let t = Calls::read(&trace_dir(&out));
    assert_eq!(t.calls_of(expected["fib"].0), expected["fib"].1);

    // A library that is not there (named through the environment, which the lookup takes
    // before the executable's directory).
    let missing = work.path().join("no-such-lib.so");
    let marker = work.path().join("ran");
    let r = ada()
        .env("ADA_AGENT_LIB", &missing)
        .args(["trace", "-q", "--functions", "-o"])
        .arg(work.path().join("out2"))
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ada: error: cannot preload the agent library")
            && err.contains("no-such-lib.so")
            && err.contains("ADA_AGENT_LIB")
            && err.contains("--agent-lib"),
        "{err}"
    );
    assert!(!marker.exists(), "nothing ran");
    assert!(!work.path().join("out2").exists(), "nothing was written");

    // `--agent-lib` means nothing without `--functions`: a usage error.
    let r = ada()
        .args(["trace", "--agent-lib", "x.so", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
}

/// A program whose worker thread calls `exit()` while the main thread still records: no hang,
/// the command's exit code, a complete trace whose every lane balances, the worker's calls all
/// there, and the events of the `atexit` handler (run on the worker after its agent storage
/// was torn down) counted as lost (`no_slot`) rather than written anywhere.
#[test]
fn exit_from_a_worker_thread_ends_the_trace_with_every_event_accounted() {
    let Some(cc) =
        c_compiler("exit_from_a_worker_thread_ends_the_trace_with_every_event_accounted")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let exe = instrumented(
        &cc,
        &agent_c_dir().join("tests/c/thread_exit.c"),
        work.path(),
    );
    let out = work.path().join("out");
    let started = std::time::Instant::now();
    let r = trace_functions(&out, &[exe.as_os_str()]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "no hang"
    );
    assert_eq!(
        r.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let t = Calls::read(&trace_dir(&out));
    let m = t.manifest();
    let (written, persisted, lost) = assert_accounted(m);
    assert_eq!((persisted, lost), (written, 0));
    assert_eq!(m.exit_code, Some(7));
    // The worker: its own entry (it never returns) and 1000 calls of leaf.
    let worker = m
        .threads
        .iter()
        .find(|th| th.lanes[0].written == 2001)
        .unwrap_or_else(|| panic!("the worker's 2001 events: {:?}", m.threads));
    assert_eq!(worker.lanes[0].persisted, 2001);
    // at_exit and its 5 calls of leaf, entries and exits: no slot any more.
    let no_slot = m
        .unregistered_by_lane
        .as_ref()
        .map_or(m.unregistered_drops, |l| l.index);
    assert_eq!(no_slot, 12, "{m:?}");
    t.assert_nesting();
}

/// A program that forks, whose child execs the program again: no crash, and every process's
/// calls are in the one trace (the child's and the exec'd image's threads under the child's
/// pid), each as often as it made them.
#[test]
fn fork_and_exec_children_are_traced_and_accounted() {
    let Some(cc) = c_compiler("fork_and_exec_children_are_traced_and_accounted") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let exe = instrumented(&cc, &agent_c_dir().join("tests/c/fork_exec.c"), work.path());
    let out = work.path().join("out");
    let r = trace_functions(&out, &[exe.as_os_str()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let printed = printed_counts(&r.stdout);
    let stdout = String::from_utf8_lossy(&r.stdout);
    let (Some(&(step, 250)), Some(&(exec_step, 20))) =
        (printed.get("step"), printed.get("exec_step"))
    else {
        panic!("both images' lines: {stdout}");
    };
    let t = Calls::read(&trace_dir(&out));
    let m = t.manifest();
    let (written, persisted, lost) = assert_accounted(m);
    assert_eq!((persisted, lost), (written, 0));
    // Per thread: the parent's 200 calls, the forked child's 50 before its exec (at the
    // parent's addresses), the exec'd image's 20 (at its own).
    let calls = |th: &ada_atf::ThreadSummary| {
        let at = |f| t.calls.get(&(th.thread_id, f)).copied().unwrap_or(0);
        (th.pid, at(step), at(exec_step))
    };
    let mut by_thread: Vec<(Option<u32>, u64, u64)> = m.threads.iter().map(calls).collect();
    by_thread.sort_by_key(|&(_, n, e)| std::cmp::Reverse((n, e)));
    let child = by_thread.get(1).and_then(|&(pid, _, _)| pid);
    assert_eq!(
        by_thread,
        [(Some(m.pid), 200, 0), (child, 50, 0), (child, 0, 20)],
        "{m:?}"
    );
    assert_ne!(child, Some(m.pid), "the child has a pid of its own");
    assert_eq!(t.calls_of(step), t.returns_of(step));
    assert_eq!(t.calls_of(exec_step), t.returns_of(exec_step));
}

/// A program with its own allocator compiled with `-finstrument-functions`: the agent's own
/// allocations (attaching, registering the thread, its thread-locals' destructors) run
/// instrumented code that re-enters the hooks. Preloaded (`--functions`) or linked with its
/// first call `ada_enabled()`, it neither recurses until its stack overflows nor waits for
/// itself: the re-entered events are counted as lost (`no_slot`), the program's own calls are
/// all in the trace.
#[test]
fn an_instrumented_allocator_reentering_the_agent_neither_crashes_nor_hangs() {
    let Some(cc) =
        c_compiler("an_instrumented_allocator_reentering_the_agent_neither_crashes_nor_hangs")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let source = agent_c_dir().join("tests/c/own_malloc.c");
    let preloaded = instrumented(&cc, &source, work.path());
    let linked = work.path().join("own_malloc_linked");
    let lib = agent_lib();
    let mut flags: Vec<String> = [
        "-O1",
        "-finstrument-functions",
        "-pthread",
        "-DWITH_ADA_API",
    ]
    .map(String::from)
    .into();
    flags.extend(link_flags());
    compile(&cc, &[source], &linked, &flags);
    for (case, functions) in [(&preloaded, true), (&linked, false)] {
        let out = work.path().join(format!("out-{functions}"));
        let mut cmd = ada_for_linked();
        cmd.args([
            "trace",
            "-q",
            "--duration",
            "30s",
            "--index-ring-kib",
            "4096",
        ]);
        if functions {
            cmd.arg("--functions").arg("--agent-lib").arg(&lib);
        }
        let r = cmd
            .arg("-o")
            .arg(&out)
            .arg("--")
            .arg(case)
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&r.stderr)
        );
        let expected = printed_counts(&r.stdout);
        let (fib, count) = expected["fib"];
        let t = Calls::read(&trace_dir(&out));
        let m = t.manifest();
        let (written, persisted, lost) = assert_accounted(m);
        assert_eq!((persisted, lost), (written, 0));
        assert_eq!((t.calls_of(fib), t.returns_of(fib)), (count, count));
        assert!(m.unregistered_drops > 0, "the re-entered events: {m:?}");
        t.assert_nesting();
    }
}

/// The C API's edge cases, traced: names that are not UTF-8 are registered with U+FFFD (the
/// same bytes the same id, other bytes another), `NULL` registers nothing, an id of the
/// program's own with bit 62 set is recorded as it is on entry and exit, and texts that are
/// `NULL`, not UTF-8 or over the limit are recorded (cut at 1024 bytes on a character
/// boundary).
#[test]
fn c_api_edge_cases_are_recorded_as_documented() {
    let Some(cc) = c_compiler("c_api_edge_cases_are_recorded_as_documented") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("names");
    let mut flags: Vec<String> = ["-Wall", "-Werror"].map(String::from).into();
    flags.extend(link_flags());
    compile(&cc, &[agent_c_dir().join("tests/c/names.c")], &exe, &flags);
    let out = work.path().join("out");
    let r = ada_for_linked()
        .args(["trace", "-q", "--persist-all", "-o"])
        .arg(&out)
        .arg("--")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let ids: HashMap<String, u64> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter_map(|l| {
            let (name, id) = l.split_once(' ')?;
            Some((name.to_owned(), u64::from_str_radix(id, 16).ok()?))
        })
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let t = Calls::read(&trace_dir(&out));
    assert_eq!(t.names[&ids["bad"]], "bad\u{FFFD} name");
    assert_eq!(t.names[&ids["other"]], "bad\u{FFFD} name");
    assert_eq!(t.names[&ids["empty"]], "");
    assert_eq!(ids["own"], (1 << 62) | 5);
    for (name, id) in &ids {
        assert_eq!((t.calls_of(*id), t.returns_of(*id)), (1, 1), "{name}");
    }
    let (written, persisted, lost) = assert_accounted(t.manifest());
    assert_eq!((written, persisted, lost), (8, 8, 0));
    let texts: Vec<&str> = t.custom.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts.len(), 3, "{:?}", t.custom);
    assert_eq!(texts[0], "not \u{FFFD} UTF-8");
    assert_eq!(texts[1], "");
    assert_eq!(texts[2], "\u{e9}".repeat(512), "cut at 1024 bytes");
}

/// The agent library loaded with `dlopen` by a program that neither links nor preloads it: the
/// load works (its writer cell is in initial-exec TLS, which such a load takes from glibc's
/// static TLS surplus) and the main thread's and a later thread's events are all recorded.
#[test]
fn the_agent_library_loaded_with_dlopen_records_every_call() {
    let Some(cc) = c_compiler("the_agent_library_loaded_with_dlopen_records_every_call") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("dlopen_agent");
    compile(
        &cc,
        &[agent_c_dir().join("tests/c/dlopen_agent.c")],
        &exe,
        &["-O1", "-pthread", "-ldl"],
    );
    let out = work.path().join("out");
    let r = ada()
        .args(["trace", "-q", "--index-ring-kib", "4096", "-o"])
        .arg(&out)
        .arg("--")
        .arg(&exe)
        .arg(agent_lib())
        .arg("5000")
        .output()
        .expect("run ada");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("id 0x"))
        .unwrap_or_else(|| panic!("the program's id line: {stdout}"));
    let id = u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap();
    let t = Calls::read(&trace_dir(&out));
    let (written, persisted, lost) = assert_accounted(t.manifest());
    assert_eq!((written, persisted, lost), (20_000, 20_000, 0));
    assert_eq!((t.calls_of(id), t.returns_of(id)), (10_000, 10_000));
    let threads: Vec<u64> = t
        .calls
        .iter()
        .filter(|((_, f), _)| *f == id)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(
        threads,
        [5000, 5000],
        "two threads, each with all its calls"
    );
    t.assert_nesting();
}
