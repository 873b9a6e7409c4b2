//! With `ADA_SHM` unset the process is untraced: the global agent resolves to `None`, every
//! recording call is a no-op that neither panics nor registers the thread, callsites have id 0
//! (and do not cache it), there is no attach error, and a later `install` cannot switch tracing
//! on behind the recording calls' back.
//!
//! One `#[test]`: the global agent is once per process.

use ada_agent::{Agent, Callsite, Detail};
use ada_registry::{Registry, RegistryConfig};

static SITE: Callsite = Callsite::new("untraced::site");

#[test]
fn without_ada_shm_every_call_is_a_no_op() {
    // SAFETY: this is the first statement of the only test in this process; the harness's
    // main thread only waits for it, so no other thread reads or writes the environment now.
    unsafe { std::env::remove_var(ada_agent::ENV_SEGMENT) };

    assert!(!ada_agent::is_enabled());
    assert!(ada_agent::global().is_none());
    assert_eq!(ada_agent::attach_error(), None);
    assert_eq!(SITE.id(), 0);

    ada_agent::enter(&SITE);
    ada_agent::exit(&SITE);
    ada_agent::enter_id(42);
    ada_agent::exit_id(42);
    ada_agent::exit_id(42); // unbalanced: still nothing
    {
        let _span = ada_agent::span(&SITE);
        let _nested = ada_agent::span(&SITE);
    }
    ada_agent::detail(
        &SITE,
        Detail {
            registers: &[1, 2, 3],
            stack: &[0xaa; 64],
            message: b"detail",
        },
    );
    // Over every limit: refused quietly, not a panic.
    ada_agent::detail(
        &SITE,
        Detail {
            registers: &[0; 40],
            stack: &[0; 4096],
            message: &[b'x'; 8192],
        },
    );
    ada_agent::message(&SITE, "hello");
    ada_agent::message(&SITE, &"é".repeat(4000));
    ada_agent::mark(&SITE, "the moment");
    ada_agent::flush();
    std::thread::spawn(|| {
        let _span = ada_agent::span(&SITE);
        ada_agent::mark(&SITE, "from another thread");
        assert!(!ada_agent::unregister_current_thread());
    })
    .join()
    .unwrap();

    assert_eq!(SITE.id(), 0, "no id was registered or cached");
    assert_eq!(SITE.name(), "untraced::site");
    assert!(
        !ada_agent::unregister_current_thread(),
        "no recording call registered this thread"
    );
    assert!(!ada_agent::is_enabled());
    assert_eq!(ada_agent::attach_error(), None);

    // The global resolved to "untraced" once and for all: installing now is refused, so the
    // calls above could not have been racing a late install.
    let reg = Registry::create(
        &RegistryConfig {
            capacity: 1,
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    assert!(ada_agent::install(Agent::from_registry(reg.clone())).is_err());
    ada_agent::enter_id(7);
    assert!(!ada_agent::is_enabled());
    assert_eq!(reg.view().live_slots().count(), 0);
    assert_eq!(reg.header().counters().registrations, 0);
    assert_eq!(reg.header().counters().unregistered_drops, 0);
    assert!(reg.symbols().claimed() == 0);
}
