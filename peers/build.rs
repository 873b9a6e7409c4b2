//! Compiles the LTTng-UST tracepoint provider (`c/ada_peers_tp.c`) when lttng-ust ≥ 2.13 is
//! installed (found through pkg-config) and sets `cfg(ada_peers_lttng)`; without it, or with
//! `ADA_PEERS_LTTNG=0`, the bench is built without its LTTng group and a cargo warning says
//! why.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ada_peers_lttng)");
    println!("cargo::rerun-if-changed=c/ada_peers_tp.c");
    println!("cargo::rerun-if-changed=c/ada_peers_tp.h");
    println!("cargo::rerun-if-env-changed=ADA_PEERS_LTTNG");
    if std::env::var("ADA_PEERS_LTTNG").is_ok_and(|v| v == "0") {
        println!("cargo::warning=LTTng group skipped: ADA_PEERS_LTTNG=0");
        return;
    }
    // The link lines are printed by hand below, after the provider's own archive: rustc links
    // with --as-needed, so a shared library named before the archive that uses it is dropped.
    let lib = match pkg_config::Config::new()
        .atleast_version("2.13")
        .cargo_metadata(false)
        .probe("lttng-ust")
    {
        Ok(lib) => lib,
        Err(e) => {
            let why = e.to_string().replace('\n', " ");
            println!("cargo::warning=LTTng group skipped: lttng-ust >= 2.13 not found ({why})");
            return;
        }
    };
    cc::Build::new()
        .file("c/ada_peers_tp.c")
        .include("c")
        .includes(&lib.include_paths)
        .compile("ada_peers_tp");
    for dir in &lib.link_paths {
        println!("cargo::rustc-link-search=native={}", dir.display());
    }
    for name in &lib.libs {
        println!("cargo::rustc-link-lib={name}");
    }
    // The tracepoint definitions dlopen liblttng-ust-tracepoint at start-up.
    println!("cargo::rustc-link-lib=dl");
    // The provider's callsites live in the `__tracepoints_ptrs` section, found at start-up only
    // through weak `__start_`/`__stop_` symbols, which do not keep a section alive: with
    // rustc's `--gc-sections` the linker drops it and the tracepoint never fires.
    println!("cargo::rustc-link-arg=-Wl,--no-gc-sections");
    println!("cargo::rustc-cfg=ada_peers_lttng");
}
