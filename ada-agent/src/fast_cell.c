/*
 * The calling thread's writer cell (`FAST` in tls.rs) in initial-exec TLS, for builds with the
 * `initial-exec-tls` feature (the C library of ada-agent-c).
 *
 * Rust's thread-locals in a shared library use the general-dynamic TLS model: every access is a
 * call to `__tls_get_addr`. Stable Rust cannot ask for another model, C can: an initial-exec
 * variable is one load relative to the thread pointer. The cost is that the library must be
 * loaded at program start (linked, or LD_PRELOAD, as `ada trace --functions` does) or fit in
 * glibc's static TLS surplus when loaded with dlopen (8 bytes here; dlopen fails cleanly with
 * "cannot allocate memory in static TLS block" when it does not fit). LTTng-UST's per-thread
 * state makes the same choice.
 *
 * The cell holds a `*mut ThreadWriter` (null: none, or in use); Rust reads and writes it as a
 * `Cell<*mut ThreadWriter>` through the address `ada_agent_fast_cell` returns, with the same
 * protocol as the Rust thread-local it replaces.
 */
__attribute__((visibility("hidden"))) __thread void *ada_agent_fast
    __attribute__((tls_model("initial-exec")));

__attribute__((visibility("hidden"))) void **ada_agent_fast_cell(void) {
    return &ada_agent_fast;
}
