//! Triggers end to end in-process (this test acts as the controller): the agent reads the
//! triggers the segment publishes, caches each callsite's verdict, and writes trigger marks:
//! a triggered callsite's entries and detail/message events are preceded by a marked `Mark`
//! record whose one register is the trigger's index + 1; a message whose text matches a message
//! trigger is itself marked; untriggered callsites and raw ids write no marks; explicit marks
//! keep working (no registers). The segment's triggers region is untrusted: a bad length, bad
//! bytes or an unknown layout version leave the agent without triggers, with a reason, and
//! never panic.
//!
//! `triggered_callsites_write_marks` installs the global agent (once per process); the others
//! use agents of their own.

mod common;

use ada_agent::{Agent, Callsite, Detail};
use ada_persist::{MAX_ENCODED_LEN, TriggerId, TriggerSet};
use ada_ringpool::EventKind;
use common::{
    DetailEvent, drain_slot, registry_with_triggers, registry_with_triggers_region, shape,
};

static COLD: Callsite = Callsite::new("svc::cold_path");
static HOT: Callsite = Callsite::new("svc::hot_path");
static SLOW: Callsite = Callsite::new("trig::slow_request");
static LOG: Callsite = Callsite::new("svc::log");
static MARK: Callsite = Callsite::new("svc::explicit");

const SPECS: [&str; 4] = [
    "message~=deadline exceeded",
    "symbol=hot_path",
    "symbol~=^trig::slow_",
    "message=never sent",
];

fn ev(kind: EventKind, site: &Callsite, registers: &[u64], message: &str, marked: bool) -> Key {
    (
        kind,
        site.id(),
        registers.to_vec(),
        message.as_bytes().to_vec(),
        marked,
    )
}

type Key = (EventKind, u64, Vec<u64>, Vec<u8>, bool);

fn key(e: &DetailEvent) -> Key {
    (
        e.kind,
        e.function_id,
        e.registers.clone(),
        e.message.clone(),
        e.marked,
    )
}

#[test]
fn triggered_callsites_write_marks() {
    let set = TriggerSet::parse(&SPECS).unwrap();
    let reg = registry_with_triggers(1, &set);
    let agent = Agent::from_registry(reg.clone());
    assert_eq!(agent.trigger_error(), None);
    let policy = agent.policy().expect("the published triggers compiled");
    assert_eq!(policy.triggers(), &set);
    ada_agent::install(agent).expect("first install");

    std::thread::spawn(|| {
        ada_agent::enter(&COLD);
        ada_agent::enter(&HOT);
        ada_agent::detail(
            &HOT,
            Detail {
                registers: &[42, 43],
                ..Detail::default()
            },
        );
        ada_agent::message(&LOG, "all fine");
        ada_agent::message(&LOG, "request 7: deadline exceeded after 5 ms");
        ada_agent::message(&HOT, "from the hot path");
        ada_agent::exit(&HOT);
        {
            let _slow = ada_agent::span(&SLOW);
            ada_agent::detail(&COLD, Detail::default());
        }
        ada_agent::enter_id(0x00ad_a000_0000_0001);
        ada_agent::exit_id(0x00ad_a000_0000_0001);
        ada_agent::mark(&MARK, "explicit");
        ada_agent::mark(&MARK, "deadline exceeded, marked by hand");
        ada_agent::exit(&COLD);
    })
    .join()
    .unwrap();

    // Verdicts, cached with the callsites; ids never carry verdict bits.
    assert_eq!(HOT.trigger(), TriggerId::new(1));
    assert_eq!(SLOW.trigger(), TriggerId::new(2));
    for site in [&COLD, &LOG, &MARK] {
        assert_eq!(site.trigger(), None, "{}", site.name());
    }
    for site in [&COLD, &HOT, &SLOW, &LOG, &MARK] {
        assert!(
            (1..1000).contains(&site.id()),
            "{}: {}",
            site.name(),
            site.id()
        );
    }

    let d = drain_slot(&reg, 0);
    let (cold, hot, slow) = (COLD.id(), HOT.id(), SLOW.id());
    assert_eq!(
        shape(&d.index),
        vec![
            (common::CALL, cold, 1),
            (common::CALL, hot, 2),
            (common::RETURN, hot, 2),
            (common::CALL, slow, 2),
            (common::RETURN, slow, 2),
            (common::CALL, 0x00ad_a000_0000_0001, 2),
            (common::RETURN, 0x00ad_a000_0000_0001, 2),
            (common::RETURN, cold, 1),
        ],
        "the index lane is unchanged by triggers"
    );
    let detail: Vec<Key> = d.detail.iter().map(key).collect();
    use EventKind::{Call, Mark, Message};
    assert_eq!(
        detail,
        vec![
            // enter(HOT): trigger 1's mark.
            ev(Mark, &HOT, &[2], "", true),
            // detail(HOT): a mark, then the record as given.
            ev(Mark, &HOT, &[2], "", true),
            ev(Call, &HOT, &[42, 43], "", false),
            ev(Message, &LOG, &[], "all fine", false),
            // A message trigger (0) marks the message itself.
            ev(
                Message,
                &LOG,
                &[1],
                "request 7: deadline exceeded after 5 ms",
                true
            ),
            // message(HOT, ..) not matching a message trigger: the callsite's mark first.
            ev(Mark, &HOT, &[2], "", true),
            ev(Message, &HOT, &[], "from the hot path", false),
            // span(SLOW): trigger 2's mark at entry; the exit writes none.
            ev(Mark, &SLOW, &[3], "", true),
            ev(Call, &COLD, &[], "", false),
            // An explicit mark: no registers.
            ev(Mark, &MARK, &[], "explicit", true),
            // A mark whose text a message trigger (0) matches names that trigger.
            ev(Mark, &MARK, &[1], "deadline exceeded, marked by hand", true),
        ]
    );
    // Marks sit at the depth of the entered function.
    assert_eq!(d.detail[0].call_depth, 2);
    assert_eq!(d.detail[7].call_depth, 2);
}

fn assert_no_triggers(reg: ada_registry::Registry, why: &str) {
    let agent = Agent::from_registry(reg);
    assert!(agent.policy().is_none(), "{why}: a policy was compiled");
    let error = agent
        .trigger_error()
        .unwrap_or_else(|| panic!("{why}: no reason given"));
    assert!(error.contains("trigger"), "{why}: {error}");
}

#[test]
fn corrupt_triggers_region_means_no_triggers() {
    let good = TriggerSet::parse(&["symbol=x"]).unwrap().encode();
    let version = ada_shm::TRIGGERS_REGION_VERSION;
    let with_len = |len: u64, body: &[u8]| {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    };
    // A length past the region's end.
    let bytes = with_len(4096, &good);
    assert_no_triggers(
        registry_with_triggers_region(1, version, 16, &bytes),
        "length past the region",
    );
    // A length past MAX_ENCODED_LEN in a region that is large enough.
    let words = (MAX_ENCODED_LEN as u64 + 64) / 8;
    let bytes = with_len(MAX_ENCODED_LEN as u64 + 8, &good);
    assert_no_triggers(
        registry_with_triggers_region(1, version, words, &bytes),
        "length past MAX_ENCODED_LEN",
    );
    // u64::MAX as the length.
    let bytes = with_len(u64::MAX, &good);
    assert_no_triggers(
        registry_with_triggers_region(1, version, 16, &bytes),
        "u64::MAX length",
    );
    // Garbage bytes of a plausible length.
    let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let bytes = with_len(garbage.len() as u64, &garbage);
    assert_no_triggers(
        registry_with_triggers_region(1, version, 16, &bytes),
        "garbage bytes",
    );
    // The right bytes, cut short.
    let bytes = with_len(good.len() as u64 - 3, &good);
    assert_no_triggers(
        registry_with_triggers_region(1, version, 16, &bytes),
        "truncated encoding",
    );
    // An unknown layout version.
    let bytes = with_len(good.len() as u64, &good);
    assert_no_triggers(
        registry_with_triggers_region(1, version + 1, 16, &bytes),
        "unknown region version",
    );
    // And the same bytes under the right version compile.
    let agent = Agent::from_registry(registry_with_triggers_region(1, version, 16, &bytes));
    assert_eq!(agent.trigger_error(), None);
    assert!(agent.policy().is_some());
}

#[test]
fn no_region_or_empty_set_means_no_triggers_and_no_error() {
    let agent = Agent::from_registry(common::in_process_registry(1));
    assert!(agent.policy().is_none());
    assert_eq!(agent.trigger_error(), None);
    let empty = TriggerSet::default();
    let agent = Agent::from_registry(registry_with_triggers(1, &empty));
    assert!(agent.policy().is_none());
    assert_eq!(agent.trigger_error(), None);
}
