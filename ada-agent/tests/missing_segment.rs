//! `ADA_SHM` holds a well-formed ADA segment name (`/ada_<pid>_<16 hex>`) of a segment that does
//! not exist: the agent stays disabled, `attach_error` names the segment, and attaching did not
//! create it.
//!
//! One `#[test]`: the global agent is once per process.

use ada_agent::Callsite;
use ada_shm::SegmentName;

static SITE: Callsite = Callsite::new("missing_segment::site");

#[test]
fn a_missing_segment_disables_tracing_with_a_reason() {
    let (name, _session) = SegmentName::generate(std::process::id()).unwrap();
    assert!(SegmentName::parse(name.as_str()).is_ok(), "well-formed");
    let shm_file = std::path::Path::new("/dev/shm").join(&name.as_str()[1..]);
    assert!(!shm_file.exists(), "a fresh random name names no segment");
    // SAFETY: generating the name spawns no thread; the harness's main thread only waits for
    // this, the only test in the process, so no other thread reads or writes the environment.
    unsafe { std::env::set_var(ada_agent::ENV_SEGMENT, name.as_str()) };

    assert!(!ada_agent::is_enabled());
    let err = ada_agent::attach_error().expect("an attach error is kept");
    assert!(err.contains(name.as_str()), "names the segment: {err}");
    assert!(err.contains("cannot attach"), "{err}");
    assert!(
        !err.contains("not an ADA segment name"),
        "the name itself was fine: {err}"
    );
    assert!(!shm_file.exists(), "attaching never creates the segment");

    {
        let _span = ada_agent::span(&SITE);
        ada_agent::mark(&SITE, "k");
    }
    assert_eq!(SITE.id(), 0);
    assert!(!ada_agent::unregister_current_thread());
}
