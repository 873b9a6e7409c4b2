//! With the `initial-exec-tls` feature, compiles `src/fast_cell.c`: the thread's writer cell in
//! initial-exec TLS (see `src/fast_cell.rs`).

fn main() {
    println!("cargo::rerun-if-changed=src/fast_cell.c");
    #[cfg(feature = "initial-exec-tls")]
    cc::Build::new()
        .file("src/fast_cell.c")
        .compile("ada_agent_fast_cell");
}
