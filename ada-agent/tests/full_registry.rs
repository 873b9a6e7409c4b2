//! A registry with one slot: the first thread to record holds it; another thread's index events
//! go to the shared fallback ring, tagged with its process and thread and nested at their own
//! depths, and its detail events are each counted in `unregistered_drops`; once the holder
//! gives the slot back and the drain frees it, the refused thread registers on its next event
//! (continuing its nesting), and after that a brand-new thread can too.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::{Agent, Callsite};
use ada_registry::{Registry, SlotState};
use common::{
    CALL, RETURN, drain_fallback, drain_slot, free_slot, gettid, in_process_registry, shape,
};
use std::sync::mpsc;

static SITE: Callsite = Callsite::new("full_registry::site");

const MAIN_ID: u64 = 0x1000;
const REFUSED_ID: u64 = 0x2000;
const RETRY_ID: u64 = 0x3000;
const NEW_ID: u64 = 0x4000;

/// The one slot's state.
fn state(reg: &Registry) -> SlotState {
    reg.view().slot(0).unwrap().state().unwrap()
}

#[test]
fn a_thread_without_a_slot_counts_its_events_as_dropped() {
    let reg = in_process_registry(1);
    ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");

    // The main thread takes the only slot.
    ada_agent::enter_id(MAIN_ID);
    assert_eq!(state(&reg), SlotState::Active);
    assert_eq!(reg.view().slot(0).unwrap().owner().thread_id, gettid());
    assert_eq!(reg.header().counters().registrations, 1);

    // A second thread is refused; each of its events is counted, none is written.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let refused = std::thread::spawn(move || {
        ada_agent::enter_id(REFUSED_ID); // 1
        {
            let _span = ada_agent::span(&SITE); // 2, 3
        }
        ada_agent::message(&SITE, "lost"); // 4
        ada_agent::mark(&SITE, "lost too"); // 5
        ada_agent::exit_id(REFUSED_ID); // 6
        ada_agent::flush(); // not an event: nothing to publish, nothing counted
        assert!(!ada_agent::unregister_current_thread());
        done_tx.send(gettid()).unwrap();
        // Wait until the drain has freed the slot, then record again.
        go_rx.recv().unwrap();
        ada_agent::enter_id(RETRY_ID);
        ada_agent::exit_id(RETRY_ID);
        done_tx.send(0).unwrap();
        go_rx.recv().unwrap();
        // Thread exit gives the slot back.
    });
    let refused_tid = done_rx.recv().unwrap();
    let c = reg.header().counters();
    // The message and the mark are detail events: counted (the `no_slot` cause).
    assert_eq!(c.unregistered_drops, 2, "{c:?}");
    assert_eq!(c.unregistered_by_lane, [0, 2], "{c:?}");
    // The entry, the span's entry and exit and the exit went to the fallback ring.
    let fallback = drain_fallback(&reg);
    let site = SITE.id();
    let records: Vec<_> = fallback.iter().map(|(_, _, r)| *r).collect();
    assert_eq!(
        shape(&records),
        vec![
            (CALL, REFUSED_ID, 1),
            (CALL, site, 2),
            (RETURN, site, 2),
            (RETURN, REFUSED_ID, 1)
        ]
    );
    assert!(fallback.iter().all(
        |(pid, tid, r)| (*pid, *tid) == (std::process::id(), refused_tid)
            && u64::from(r.thread_id) == refused_tid
    ));
    // Refused once; later events do not rescan the registry until a slot is freed.
    assert_eq!(c.capacity_failures, 1, "{c:?}");
    assert_eq!(c.registrations, 1);

    // Only the main thread's event is in the slot.
    let d = drain_slot(&reg, 0);
    assert_eq!(shape(&d.index), vec![(CALL, MAIN_ID, 1)]);
    assert_eq!(u64::from(d.index[0].thread_id), gettid());
    assert!(d.detail.is_empty(), "{:?}", d.detail);

    // The main thread gives the slot back; the drain drains and frees it.
    assert_eq!(state(&reg), SlotState::Active);
    assert!(ada_agent::unregister_current_thread());
    assert_eq!(state(&reg), SlotState::Exited);
    let d = drain_slot(&reg, 0);
    assert!(
        d.index.is_empty() && d.detail.is_empty(),
        "drained once already"
    );
    let epoch = reg.header().reclaim_epoch();
    free_slot(&reg, 0);
    assert_eq!(state(&reg), SlotState::Free);
    assert_eq!(reg.header().reclaim_epoch(), epoch + 1);

    // The refused thread now registers on its next event.
    go_tx.send(()).unwrap();
    assert_eq!(done_rx.recv().unwrap(), 0);
    assert_eq!(state(&reg), SlotState::Active);
    assert_eq!(reg.view().slot(0).unwrap().owner().thread_id, refused_tid);
    let c = reg.header().counters();
    assert_eq!((c.registrations, c.unregistered_drops), (2, 2), "{c:?}");
    go_tx.send(()).unwrap();
    refused.join().unwrap();
    assert_eq!(state(&reg), SlotState::Exited);
    let d = drain_slot(&reg, 0);
    assert_eq!(
        shape(&d.index),
        vec![(CALL, RETRY_ID, 1), (RETURN, RETRY_ID, 1)],
        "only what it recorded after registering"
    );
    assert!(
        d.index
            .iter()
            .all(|r| u64::from(r.thread_id) == refused_tid)
    );
    assert!(d.detail.is_empty());
    assert!(drain_fallback(&reg).is_empty(), "nothing else went there");
    free_slot(&reg, 0);

    // And a brand-new thread registers and records.
    let new_tid = std::thread::spawn(|| {
        ada_agent::enter_id(NEW_ID);
        ada_agent::mark(&SITE, "new");
        ada_agent::exit_id(NEW_ID);
        gettid()
    })
    .join()
    .unwrap();
    assert_eq!(state(&reg), SlotState::Exited);
    assert_eq!(reg.view().slot(0).unwrap().owner().thread_id, new_tid);
    let d = drain_slot(&reg, 0);
    assert_eq!(
        shape(&d.index),
        vec![(CALL, NEW_ID, 1), (RETURN, NEW_ID, 1)]
    );
    assert_eq!(d.detail.len(), 1);
    assert!(d.detail[0].marked && d.detail[0].ring_marked);
    assert_eq!(u64::from(d.detail[0].thread_id), new_tid);
    let c = reg.header().counters();
    assert_eq!(
        (c.registrations, c.capacity_failures, c.unregistered_drops),
        (3, 1, 2),
        "{c:?}"
    );
}
