//! The `ADA_DROP_POLICY` start-up override: `ControllerBuilder::create` reads it once and it
//! beats the builder's drop policies; a bad value is a typed error, never a panic; later
//! changes to the variable do not reach a created controller.
//!
//! One test function: it sets the process environment, which no other thread of this test
//! binary reads meanwhile.

use ada_controller::{
    ControllerBuilder, ControllerError, DropPolicy, ENV_DROP_POLICY, LanePolicies,
};
use std::error::Error as _;
use std::time::Duration;

fn set_env(value: &str) {
    // SAFETY: this binary's only test runs on one thread, and nothing else in the process
    // reads or writes the environment concurrently.
    unsafe { std::env::set_var(ENV_DROP_POLICY, value) };
}

fn unset_env() {
    // SAFETY: as in `set_env`.
    unsafe { std::env::remove_var(ENV_DROP_POLICY) };
}

#[test]
fn the_env_override_is_applied_once_at_create() {
    let newest = LanePolicies::both(DropPolicy::DropNewest);
    let builder = || {
        ControllerBuilder::new()
            .capacity(2)
            .drop_policies(newest)
            .stability(Duration::from_millis(7))
    };

    // Unset: the builder's policies and stability period are what the segment publishes.
    unset_env();
    let plain = builder().create().unwrap();
    assert_eq!(plain.registry().backpressure().policies, newest);
    assert_eq!(plain.registry().backpressure().stability_ns, 7_000_000);

    // Set: it beats the builder; a lane it does not name takes its default (detail=oldest).
    set_env("index=oldest");
    let overridden = builder().create().unwrap();
    let expected = LanePolicies {
        index: DropPolicy::DropOldest,
        detail: DropPolicy::DropOldest,
    };
    assert_eq!(overridden.registry().backpressure().policies, expected);
    // Read once: changing the variable afterwards changes nothing the controller published.
    set_env("newest");
    assert_eq!(overridden.registry().backpressure().policies, expected);
    let running = overridden
        .start(
            ada_controller::CountingSink::default(),
            ada_controller::SessionInfo::new(0),
        )
        .unwrap();
    let report = running.stop(Some(0)).unwrap();
    assert_eq!(
        report.drop_policies, expected,
        "the report says what was in force"
    );
    assert_eq!(report.stability_ns, 7_000_000);

    // A bad value: a typed error naming the variable and the bad part, before any segment.
    set_env("index=sideways");
    let e = builder().create().unwrap_err();
    assert!(matches!(e, ControllerError::DropPolicyEnv(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(ENV_DROP_POLICY) && text.contains("sideways") && text.contains("byte 6"),
        "{text}"
    );
    assert!(e.source().is_some());
    set_env("");
    assert!(matches!(
        builder().create(),
        Err(ControllerError::DropPolicyEnv(_))
    ));
    unset_env();

    // Out-of-range stability period: refused as a configuration error.
    let e = builder()
        .stability(Duration::from_secs(3600))
        .create()
        .unwrap_err();
    assert!(matches!(e, ControllerError::Config(_)), "{e:?}");
}
