//! Names for addresses, end to end on real binaries: a small C program (a PIE, built with
//! `-g` by the system C compiler) `dlopen`s a shared library, prints the addresses of a few
//! of its own and the library's functions and waits. The test reads its modules with the
//! controller's module reader and checks that the symbolizer names each address with its
//! file and line; a stripped copy gives module+offset and no name, and says so; a non-ELF
//! file, a FIFO and a changed build id give clear results. Then a trace whose function ids
//! are those addresses (written with the ATF writer, the modules in its manifest) is named by
//! `ada inspect --top` and `ada export --chrome`.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ada_atf::{
    EventRef, ModuleEntry, PayloadRef, ThreadSummary, TraceSummary, TraceWriter, WriterOptions,
};
use ada_controller::ModuleReader;
use ada_symbols::{Module, Problem, Symbolizer};

const LIB_C: &str = r#"#include <stddef.h>
static int lib_hidden(int x) {
    return x * 3 + 1;
}
int lib_visible(int x) {
    return lib_hidden(x) + 2;
}
void *lib_hidden_address(void) {
    return (void *)&lib_hidden;
}
"#;

const MAIN_C: &str = r#"#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int exe_alpha(int x) {
    return x + 1;
}
static int exe_beta(int x) {
    return exe_alpha(x) * 2;
}
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    void *visible = dlsym(lib, "lib_visible");
    void *(*hidden)(void) = (void *(*)(void))dlsym(lib, "lib_hidden_address");
    if (!visible || !hidden) return 1;
    printf("exe_alpha %p\nexe_beta %p\nlib_visible %p\nlib_hidden %p\n",
           (void *)&exe_alpha, (void *)&exe_beta, visible, hidden());
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {}
    return exe_beta(1) > 0 ? 0 : 1;
}
"#;

/// Where each function starts in its source (the line the compiler gives its entry).
const LINES: [(&str, &str, u32); 4] = [
    ("exe_alpha", "main.c", 4),
    ("exe_beta", "main.c", 7),
    ("lib_visible", "lib.c", 5),
    ("lib_hidden", "lib.c", 2),
];

struct Built {
    dir: tempfile::TempDir,
}

impl Built {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The program and library, built with `-g`, and stripped copies when `strip` exists.
fn build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.c"), LIB_C).unwrap();
    std::fs::write(dir.path().join("main.c"), MAIN_C).unwrap();
    run(Command::new("cc").current_dir(dir.path()).args([
        "-g",
        "-O0",
        "-fPIC",
        "-shared",
        "-o",
        "libdemo.so",
        "lib.c",
    ]));
    run(Command::new("cc")
        .current_dir(dir.path())
        .args(["-g", "-O0", "-fPIE", "-pie", "-o", "prog", "main.c", "-ldl"]));
    Built { dir }
}

/// Strips copies of both; `false` (after saying why) when there is no `strip`.
fn strip(b: &Built) -> bool {
    for (from, to) in [
        ("prog", "prog.stripped"),
        ("libdemo.so", "libdemo.stripped.so"),
    ] {
        match Command::new("strip")
            .arg("-o")
            .arg(b.path(to))
            .arg(b.path(from))
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("strip: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIPPED: the stripped-binary case needs `strip` ({e})");
                return false;
            }
        }
    }
    true
}

/// A running copy of the program: its addresses, until it is dropped.
struct Running {
    child: Child,
    addresses: HashMap<String, u64>,
}

impl Running {
    fn start(prog: &Path, lib: &Path) -> Running {
        let mut child = Command::new(prog)
            .arg(lib)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut addresses = HashMap::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..4 {
            let line = lines.next().expect("four addresses").unwrap();
            let (name, addr) = line.split_once(' ').unwrap();
            let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
            addresses.insert(name.to_owned(), addr);
        }
        Running { child, addresses }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn modules(&self) -> Vec<ada_controller::Module> {
        ModuleReader::new().read(self.pid()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn symbols_modules(modules: &[ada_controller::Module]) -> Vec<Module> {
    modules
        .iter()
        .map(|m| {
            let mut s = Module::new(&m.path, m.start, m.end, m.file_offset);
            if let Some(id) = &m.build_id {
                s = s.with_build_id(id.clone());
            }
            s
        })
        .collect()
}

#[test]
fn a_pie_and_a_dlopened_library_are_named_with_file_and_line() {
    let b = build();
    let running = Running::start(&b.path("prog"), &b.path("libdemo.so"));
    let recorded = running.modules();
    for file in ["prog", "libdemo.so"] {
        let m = recorded
            .iter()
            .find(|m| Path::new(&m.path) == b.path(file))
            .unwrap_or_else(|| panic!("{file} in {recorded:?}"));
        assert!(m.build_id.is_some(), "{file} was linked with a build id");
    }
    let modules = symbols_modules(&recorded);
    let mut s = Symbolizer::new();
    for (name, file, line) in LINES {
        let addr = running.addresses[name];
        let r = s
            .symbolize(&modules, addr)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(r.function.as_deref(), Some(name), "{r:?}");
        assert_eq!(r.problem, None);
        assert!(
            r.file.as_deref().is_some_and(|f| f.ends_with(file)),
            "{name}: {r:?}"
        );
        assert_eq!(r.line, Some(line), "{name}: {r:?}");
        assert_eq!(
            r.file_line().unwrap(),
            format!("{}:{line}", r.file.clone().unwrap())
        );
        let expected_module = if file == "lib.c" {
            "libdemo.so"
        } else {
            "prog"
        };
        assert_eq!(r.module, b.path(expected_module));
    }
    // An address in no module.
    assert!(s.symbolize(&modules, 8).is_none());
}

#[test]
fn a_stripped_copy_gives_module_and_offset_and_says_the_name_is_missing() {
    let b = build();
    if !strip(&b) {
        return;
    }
    let running = Running::start(&b.path("prog.stripped"), &b.path("libdemo.stripped.so"));
    let modules = symbols_modules(&running.modules());
    let mut s = Symbolizer::new();
    for name in ["exe_alpha", "exe_beta", "lib_hidden"] {
        let addr = running.addresses[name];
        let r = s.symbolize(&modules, addr).unwrap();
        assert_eq!(r.function, None, "{name}: {r:?}");
        assert_eq!(r.problem, Some(Problem::NoSymbol), "{name}");
        assert!(r.problem.as_ref().unwrap().to_string().contains("no name"));
        let module = modules.iter().find(|m| m.contains(addr)).unwrap();
        assert_eq!(r.offset, addr - module.base());
        assert!(r.label().contains("+0x"), "{}", r.label());
        assert_eq!((r.file.as_deref(), r.line), (None, None));
    }
    // An exported function keeps its name through the dynamic symbol table.
    let r = s
        .symbolize(&modules, running.addresses["lib_visible"])
        .unwrap();
    assert_eq!(r.function.as_deref(), Some("lib_visible"));
}

#[test]
fn a_non_elf_file_a_fifo_and_a_changed_build_id_give_clear_results() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not a program\n").unwrap();
    let fifo = tmp.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let mut s = Symbolizer::new();
    for (path, says) in [
        (&text, "not an ELF file"),
        (&fifo, "not a regular file"),
        (&tmp.path().join("gone"), "No such file"),
    ] {
        let modules = [Module::new(path, 0x1000, 0x2000, 0)];
        let r = s.symbolize(&modules, 0x1010).unwrap();
        assert_eq!((r.function.as_deref(), r.offset), (None, 0x10));
        match &r.problem {
            Some(p @ Problem::CannotRead(why)) => {
                assert!(why.contains(says), "{why}");
                assert!(p.to_string().starts_with("cannot read the module"));
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    // The program's own file with another build id than recorded: no names, said why.
    let b = build();
    let running = Running::start(&b.path("prog"), &b.path("libdemo.so"));
    let mut modules = symbols_modules(&running.modules());
    for m in &mut modules {
        m.build_id = Some(vec![0xab; 20]);
    }
    let r = s
        .symbolize(&modules, running.addresses["exe_alpha"])
        .unwrap();
    assert_eq!(r.function, None);
    assert!(
        matches!(&r.problem, Some(Problem::BuildIdMismatch { recorded, found: Some(_) }) if recorded == &vec![0xab; 20]),
        "{r:?}"
    );
    assert!(
        r.problem
            .unwrap()
            .to_string()
            .contains("changed since the run")
    );
}

/// A trace of thread 1 of `running`'s process calling each function (ids = addresses), the
/// modules in its manifest; returns the trace directory.
fn trace_of(root: &Path, running: &Running) -> PathBuf {
    let pid = running.pid();
    let mut w = TraceWriter::create(
        root,
        WriterOptions {
            pid,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let mut ts = 1_000;
    // exe_alpha called 3 times (10 ns each), lib_visible once (50 ns).
    let calls = [
        ("exe_alpha", 10),
        ("exe_alpha", 10),
        ("exe_alpha", 10),
        ("lib_visible", 50),
    ];
    for (name, dur) in calls {
        let id = running.addresses[name];
        let call = PayloadRef::FunctionCall {
            symbol: "",
            address: 0,
            argument_registers: &[],
            stack_shallow_copy: &[],
        };
        let ret = PayloadRef::FunctionReturn {
            symbol: "",
            address: 0,
            return_registers: &[],
        };
        w.write(&EventRef::new(1, ts, call).with_function(id, 1))
            .unwrap();
        w.write(&EventRef::new(1, ts + dur, ret).with_function(id, 1))
            .unwrap();
        ts += 100;
    }
    let loaded = running
        .modules()
        .into_iter()
        .map(|m| ModuleEntry {
            pid,
            path: m.path,
            start: m.start,
            end: m.end,
            file_offset: m.file_offset,
            build_id: m.build_id.as_deref().map(ada_symbols::hex),
            deleted: m.deleted,
        })
        .collect();
    w.finalize(TraceSummary {
        loaded_modules: loaded,
        threads: vec![ThreadSummary {
            thread_id: 1,
            name: None,
            os_tid: Some(u64::from(pid)),
            pid: Some(pid),
            verified: Some(true),
            lanes: Vec::new(),
        }],
        ..TraceSummary::default()
    })
    .unwrap()
    .dir
}

fn ada(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ada"))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// `ada export --chrome` of the trace in `dir`, written into `tmp`, parsed.
fn export_chrome(dir: &std::path::Path, tmp: &std::path::Path) -> serde_json::Value {
    let json = tmp.join("out.json");
    ada(&[
        "export".as_ref(),
        "--chrome".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        json.as_os_str(),
    ]);
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

#[test]
fn inspect_top_and_the_chrome_export_name_traced_addresses() {
    let b = build();
    let tmp = tempfile::tempdir().unwrap();
    let running = Running::start(&b.path("prog"), &b.path("libdemo.so"));
    let dir = trace_of(tmp.path(), &running);
    drop(running);
    let text = ada(&[
        "inspect".as_ref(),
        dir.as_os_str(),
        "--top".as_ref(),
        "5".as_ref(),
    ]);
    assert!(
        text.contains("addresses named from the modules: 2 with a function name"),
        "{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("top 5 functions by calls"))
        .skip(2)
        .take(2)
        .collect();
    assert!(
        rows[0].ends_with(" exe_alpha") && rows[0].trim_start().starts_with("3 "),
        "{text}"
    );
    assert!(
        rows[1].ends_with(" lib_visible") && rows[1].contains("50 ns"),
        "{text}"
    );
    assert!(text.contains("call exe_alpha depth 1"), "{text}");

    let v = export_chrome(&dir, tmp.path());
    let names: Vec<&str> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "B")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["exe_alpha", "exe_alpha", "exe_alpha", "lib_visible"]
    );
}

#[test]
fn a_stripped_trace_shows_module_offsets_and_says_why() {
    let b = build();
    if !strip(&b) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let running = Running::start(&b.path("prog.stripped"), &b.path("libdemo.stripped.so"));
    let alpha = running.addresses["exe_alpha"];
    let dir = trace_of(tmp.path(), &running);
    let base = running
        .modules()
        .iter()
        .find(|m| m.start <= alpha && alpha < m.end)
        .unwrap()
        .base();
    drop(running);
    let text = ada(&[
        "inspect".as_ref(),
        dir.as_os_str(),
        "--top".as_ref(),
        "5".as_ref(),
    ]);
    let label = format!("prog.stripped+0x{:x}", alpha - base);
    assert!(
        text.contains(&format!("call {label} depth 1")),
        "{label}\n{text}"
    );
    assert!(
        text.contains("1 with a function name, 1 without one (no symbol in the module: stripped?)"),
        "{text}"
    );
    // The export names it the same way and says so in otherData.
    let v = export_chrome(&dir, tmp.path());
    assert!(
        v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["ph"] == "B" && e["name"] == label.as_str()),
        "{v}"
    );
    let said = v["otherData"]["addressNames"].as_str().unwrap();
    assert!(
        said.contains("1 without one (no symbol in the module: stripped?)"),
        "{said}"
    );
}
