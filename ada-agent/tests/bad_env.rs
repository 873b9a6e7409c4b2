//! `ADA_SHM` set to something that is not a shared-memory segment name: the agent refuses it,
//! stays disabled (every call a no-op), and `attach_error` says why, naming the variable and the
//! value. (A well-formed name of a segment that does not exist is `missing_segment.rs`.)
//!
//! One `#[test]`: the global agent is once per process.

use ada_agent::Callsite;

static SITE: Callsite = Callsite::new("bad_env::site");

/// Not a POSIX shared-memory name: a `/` after the first character. (A name like
/// `"not a segment"` is a valid POSIX name and would fail at attach instead.)
const BAD: &str = "not/a/segment";

#[test]
fn a_malformed_ada_shm_disables_tracing_with_a_reason() {
    // SAFETY: this is the first statement of the only test in this process; the harness's
    // main thread only waits for it, so no other thread reads or writes the environment now.
    unsafe { std::env::set_var(ada_agent::ENV_SEGMENT, BAD) };

    assert!(!ada_agent::is_enabled());
    let err = ada_agent::attach_error().expect("an attach error is kept");
    assert!(err.contains("ADA_SHM"), "names the variable: {err}");
    assert!(err.contains(BAD), "names the value: {err}");
    assert!(err.contains("not an ADA segment name"), "{err}");

    // Disabled means no-op, not panic.
    {
        let _span = ada_agent::span(&SITE);
        ada_agent::enter_id(1);
        ada_agent::exit_id(1);
        ada_agent::message(&SITE, "m");
        ada_agent::mark(&SITE, "k");
        ada_agent::flush();
    }
    assert_eq!(SITE.id(), 0);
    assert!(!ada_agent::unregister_current_thread());
    // Resolved once: the same message, not re-read from the environment.
    assert_eq!(ada_agent::attach_error(), Some(err));
}
