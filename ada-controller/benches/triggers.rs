//! What triggers cost the traced thread (issue 12), same run, with 100 symbol and message
//! triggers published by the controller and a live drain:
//! - `enter` on an untriggered callsite (one load of the cached id+verdict word, one branch on
//!   the verdict) next to `enter_id(SITE.id())`, which is exactly what `enter` did before
//!   triggers existed (the same load, a branch on "registered", the index record);
//! - `enter` on a triggered callsite (adds the trigger's mark record on the detail lane);
//! - matching a callsite name against 100 patterns, as registration does once per callsite
//!   (goal: < 1 µs), next to a policy with no symbol triggers.
//!
//! `cargo bench -p ada-controller --bench triggers`

use ada_controller::{ControllerBuilder, SessionInfo};
use ada_persist::{MarkingPolicy, TriggerSet};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// 100 triggers: literal names, qualified names, regexes (case-sensitive and not), messages.
fn hundred_triggers() -> TriggerSet {
    let specs: Vec<String> = (0..100)
        .map(|i| match i % 5 {
            0 => format!("symbol=slow_request_{i}"),
            1 => format!("symbol=service{i}::handler"),
            2 => format!("symbol~=^db::query_{i}_(read|write)$"),
            3 => format!("symbol~i=timeout{i}"),
            _ => format!("message~=error code {i}[0-9]+"),
        })
        .collect();
    TriggerSet::parse(&specs).expect("valid triggers")
}

fn bench(c: &mut Criterion) {
    let out = tempfile::tempdir().unwrap();
    let triggers = hundred_triggers();
    let controller = ControllerBuilder::new()
        .capacity(4)
        .output_dir(out.path())
        .triggers(triggers.clone())
        .create()
        .unwrap();
    let agent = ada_agent::Agent::from_registry(controller.registry().clone());
    assert!(agent.policy().is_some(), "{:?}", agent.trigger_error());
    ada_agent::install(agent).expect("first agent of this process");
    let running = controller
        .start_default(SessionInfo::new(std::process::id()))
        .unwrap();
    static PLAIN: ada_agent::Callsite = ada_agent::Callsite::new("bench::plain_request");
    static SLOW: ada_agent::Callsite = ada_agent::Callsite::new("bench::slow_request_0");
    assert_eq!(PLAIN.trigger(), None);
    assert!(SLOW.trigger().is_some());

    let mut g = c.benchmark_group("triggers");
    g.bench_function("enter_untriggered_100_triggers", |b| {
        b.iter(|| ada_agent::enter(black_box(&PLAIN)))
    });
    g.bench_function("enter_before_triggers_baseline", |b| {
        b.iter(|| ada_agent::enter_id(black_box(&PLAIN).id()))
    });
    g.bench_function("enter_triggered_writes_mark", |b| {
        b.iter(|| ada_agent::enter(black_box(&SLOW)))
    });
    let policy = MarkingPolicy::compile(&triggers).unwrap();
    let none = MarkingPolicy::compile(&TriggerSet::parse(&["message=x"]).unwrap()).unwrap();
    for name in ["service::plain_request_handler", "db::query_42_read"] {
        g.bench_function(format!("verdict_100_patterns/{name}"), |b| {
            b.iter(|| policy.symbol_verdict(black_box(name)))
        });
    }
    g.bench_function("verdict_no_symbol_triggers", |b| {
        b.iter(|| none.symbol_verdict(black_box("service::plain_request_handler")))
    });
    g.finish();
    let report = running.stop(None).unwrap();
    eprintln!(
        "triggers bench: {} events persisted, {} dropped",
        report.persisted(),
        report.dropped()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
