//! `include/ada.h` against the built libraries, with the system C compiler (`$CC`, else `cc`;
//! without one each test says so on stderr and checks nothing): the header compiles as strict
//! C99 and as C++, the C API example links to the shared and to the static library and runs
//! untraced (every call a no-op, `ada_callsite` answering `ADA_NO_ID`), and the shared library
//! exports exactly the functions the header declares.
//!
//! The libraries are this build's: cargo builds the crate's `cdylib` and `staticlib` next to
//! the test binary (`target/<profile>/deps/`) before running it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The functions `ada.h` declares.
const DECLARED: [&str; 9] = [
    "ada_callsite",
    "ada_enter",
    "ada_exit",
    "ada_message",
    "ada_mark",
    "ada_flush",
    "ada_enabled",
    "__cyg_profile_func_enter",
    "__cyg_profile_func_exit",
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// This build's library `name` (next to the test binary).
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let lib = exe.parent().expect("deps directory").join(name);
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

/// The compiler in `$var` (else `default`), or `None` (said on stderr) when there is none.
fn compiler(var: &str, default: &str, test: &str) -> Option<String> {
    let cc = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let found = Command::new(&cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED {test}: no compiler ({cc} --version failed); nothing was checked");
        return None;
    }
    Some(cc)
}

/// Runs `cc ARGS`, asserting it succeeds.
fn run_compiler(cc: &str, args: &[&std::ffi::OsStr]) {
    let r = Command::new(cc)
        .args(args)
        .output()
        .expect("run the compiler");
    assert!(
        r.status.success(),
        "{cc} {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A translation unit that includes the header and takes every declared function's address
/// with the exact type the header gives it.
const USES_EVERY_DECLARATION: &str = r#"
#include <ada.h>
uint64_t (*p_callsite)(const char *) = ada_callsite;
void (*p_enter)(uint64_t) = ada_enter;
void (*p_exit)(uint64_t) = ada_exit;
void (*p_message)(uint64_t, const char *) = ada_message;
void (*p_mark)(uint64_t, const char *) = ada_mark;
void (*p_flush)(void) = ada_flush;
int (*p_enabled)(void) = ada_enabled;
void (*p_cyg_enter)(void *, void *) = __cyg_profile_func_enter;
void (*p_cyg_exit)(void *, void *) = __cyg_profile_func_exit;
int main(void) { return ADA_NO_ID == 0 ? 0 : 1; }
"#;

#[test]
fn the_header_compiles_as_strict_c99_and_as_cpp() {
    let work = tempfile::tempdir().unwrap();
    let include = crate_dir().join("include");
    let include_flag = format!("-I{}", include.display());
    if let Some(cc) = compiler(
        "CC",
        "cc",
        "the_header_compiles_as_strict_c99_and_as_cpp (C)",
    ) {
        let src = work.path().join("uses.c");
        std::fs::write(&src, USES_EVERY_DECLARATION).unwrap();
        let flags = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-c"];
        let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
        let obj = work.path().join("uses.o");
        args.extend([
            include_flag.as_ref(),
            src.as_os_str(),
            "-o".as_ref(),
            obj.as_os_str(),
        ]);
        run_compiler(&cc, &args);
    }
    if let Some(cxx) = compiler(
        "CXX",
        "c++",
        "the_header_compiles_as_strict_c99_and_as_cpp (C++)",
    ) {
        let src = work.path().join("uses.cpp");
        std::fs::write(&src, USES_EVERY_DECLARATION).unwrap();
        let flags = [
            "-std=c++11",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-c",
        ];
        let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
        let obj = work.path().join("uses_cpp.o");
        args.extend([
            include_flag.as_ref(),
            src.as_os_str(),
            "-o".as_ref(),
            obj.as_os_str(),
        ]);
        run_compiler(&cxx, &args);
    }
}

#[test]
fn the_example_links_to_both_libraries_and_runs_untraced() {
    let Some(cc) = compiler(
        "CC",
        "cc",
        "the_example_links_to_both_libraries_and_runs_untraced",
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let hello = crate_dir().join("examples/c/hello.c");
    let include = format!("-I{}", crate_dir().join("include").display());
    let shared = built("libada_agent_c.so");
    let dir = shared.parent().unwrap();
    let link = format!("-L{}", dir.display());
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    let dynamic = work.path().join("hello_shared");
    run_compiler(
        &cc,
        &[
            hello.as_os_str(),
            include.as_ref(),
            link.as_ref(),
            rpath.as_ref(),
            "-lada_agent_c".as_ref(),
            "-o".as_ref(),
            dynamic.as_os_str(),
        ],
    );
    let fixed = work.path().join("hello_static");
    let archive = built("libada_agent_c.a");
    run_compiler(
        &cc,
        &[
            hello.as_os_str(),
            include.as_ref(),
            archive.as_os_str(),
            "-lpthread".as_ref(),
            "-ldl".as_ref(),
            "-lm".as_ref(),
            "-o".as_ref(),
            fixed.as_os_str(),
        ],
    );
    for exe in [&dynamic, &fixed] {
        let r = Command::new(exe)
            .arg("7")
            .env_remove("ADA_SHM")
            // This build's copy, not another one a library path may name first.
            .env("LD_LIBRARY_PATH", dir)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{}: {}",
            exe.display(),
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&r.stdout).trim(),
            "traced=0 outer=7 inner=21 total=63"
        );
        assert!(r.stderr.is_empty(), "untraced: silent");
    }
}

#[test]
fn the_shared_library_exports_what_the_header_declares() {
    let Some(_) = compiler(
        "NM",
        "nm",
        "the_shared_library_exports_what_the_header_declares",
    ) else {
        return;
    };
    let nm = std::env::var("NM").unwrap_or_else(|_| "nm".to_owned());
    let r = Command::new(&nm)
        .args(["-D", "--defined-only"])
        .arg(built("libada_agent_c.so"))
        .output()
        .unwrap();
    assert!(r.status.success());
    let exported: Vec<String> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_, kind, name) = (w.next()?, w.next()?, w.next()?);
            (kind == "T").then(|| name.to_owned())
        })
        .collect();
    let mut ours: Vec<&str> = exported
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("ada_") || n.starts_with("__cyg_profile_func_"))
        .collect();
    ours.sort_unstable();
    let mut declared = DECLARED.to_vec();
    declared.sort_unstable();
    assert_eq!(ours, declared);
    let header = std::fs::read_to_string(crate_dir().join("include/ada.h")).unwrap();
    for name in DECLARED {
        assert!(header.contains(&format!("{name}(")), "{name} in ada.h");
    }
}
