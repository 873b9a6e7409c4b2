//! The recording API end to end, with this test acting as the controller in-process: three
//! threads record nested spans, raw ids, a detail event, a message and a mark through the global
//! agent; after they exit (slots `EXITED`), draining every slot yields exactly their events with
//! the right kinds, depths, thread ids and payloads, the ids name the callsites through the
//! symbol table, the lane counters agree with what was drained, and a thread that gives its slot
//! back registers a new one on its next event.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::{Agent, Callsite, Detail};
use ada_registry::{LaneKind, SlotState};
use ada_ringpool::EventKind;
use common::{CALL, RETURN, drain_slot, free_slot, gettid, in_process_registry, shape, symbols};
use std::collections::HashMap;
use std::sync::Barrier;

static OUTER: Callsite = Callsite::new("record::outer");
static INNER: Callsite = Callsite::with_address("record::inner", 0x1234_5678);
static DETAIL: Callsite = Callsite::new("record::detail");
static MESSAGE: Callsite = Callsite::new("record::message");
static MARK: Callsite = Callsite::new("record::mark");

const THREADS: u64 = 3;
/// Raw ids (far above any symbol-table id) used with `enter_id` / `exit_id`.
const RAW: u64 = 0x00ad_a000_0000_0000;
const MAIN_FIRST: u64 = RAW + 100;
const MAIN_SECOND: u64 = RAW + 101;

fn registers(t: u64) -> [u64; 3] {
    [t, 0xdead_beef_0000 + t, u64::MAX - t]
}

fn stack(t: u64) -> Vec<u8> {
    (0..40u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(t as u8))
        .collect()
}

fn detail_text(t: u64) -> String {
    format!("detail from thread {t}")
}

/// What one worker thread records. Returns its OS thread id.
fn worker(t: u64, start: &Barrier) -> u64 {
    // The first event registers the thread; the barrier then releases every thread at once onto
    // the callsites' first use, so they race to register the names.
    ada_agent::enter_id(RAW + t);
    ada_agent::exit_id(RAW + t);
    start.wait();
    {
        let _outer = ada_agent::span(&OUTER);
        {
            let _inner = ada_agent::span(&INNER);
            let (regs, stack, text) = (registers(t), stack(t), detail_text(t));
            ada_agent::detail(
                &DETAIL,
                Detail {
                    registers: &regs,
                    stack: &stack,
                    message: text.as_bytes(),
                },
            );
        }
    }
    ada_agent::message(&MESSAGE, &format!("message {t}"));
    ada_agent::mark(&MARK, &format!("mark {t}"));
    gettid()
}

#[test]
fn threads_record_and_the_drain_sees_exactly_their_events() {
    let reg = in_process_registry(8);
    let installed = ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");
    assert_eq!(installed.registry().uid(), reg.uid());
    assert!(ada_agent::is_enabled());
    assert!(ada_agent::attach_error().is_none());
    assert!(
        ada_agent::install(Agent::from_registry(reg.clone())).is_err(),
        "the global agent is set once"
    );
    assert_eq!(
        reg.view().live_slots().count(),
        0,
        "nothing registers eagerly"
    );
    // A thread that only flushes has nothing to publish: it neither claims a slot nor counts
    // a dropped event.
    std::thread::spawn(ada_agent::flush).join().unwrap();
    ada_agent::flush();
    assert_eq!(
        reg.view().live_slots().count(),
        0,
        "flush does not register"
    );
    assert_eq!(reg.header().counters(), Default::default());

    // --- three recording threads -------------------------------------------------------------
    let start = Barrier::new(THREADS as usize);
    let tids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let start = &start;
                s.spawn(move || worker(t, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let pid = std::process::id();

    // Thread exit handed every slot to the drain.
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), THREADS as usize, "{live:?}");
    let mut slot_of = HashMap::new();
    for v in &live {
        assert_eq!(
            v.state,
            SlotState::Exited,
            "slot {} after thread exit",
            v.index
        );
        assert_eq!(v.owner.pid, pid);
        let t = tids
            .iter()
            .position(|&tid| tid == v.owner.thread_id)
            .unwrap_or_else(|| panic!("slot {} owned by an unknown thread {:?}", v.index, v.owner));
        assert!(
            slot_of.insert(t as u64, v.index).is_none(),
            "one slot per thread"
        );
    }
    assert_eq!(reg.header().counters().registrations, THREADS);
    assert_eq!(reg.header().counters().unregistered_drops, 0);

    // --- the symbol table ----------------------------------------------------------------------
    let table = symbols(&reg);
    let mut by_id: HashMap<u64, (String, u64)> = HashMap::new();
    for (id, name, address) in &table {
        assert!(
            by_id.insert(*id, (name.clone(), *address)).is_none(),
            "id {id} delivered twice"
        );
    }
    let sites = [&OUTER, &INNER, &DETAIL, &MESSAGE, &MARK];
    for site in sites {
        let id = site.id(); // cached: the id every thread used
        assert_ne!(id, 0);
        let (name, address) = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("{}'s id {id} is not in the symbol table", site.name()));
        assert_eq!(name, site.name());
        let expected_address = if std::ptr::eq(site, &INNER) {
            0x1234_5678
        } else {
            0
        };
        assert_eq!(*address, expected_address, "{}", site.name());
        // Racing first uses may each claim an entry (the losers' entries are never referenced;
        // see `Callsite::register`), but never more than one per racing thread.
        let entries = table.iter().filter(|(_, n, _)| n == site.name()).count();
        assert!(
            (1..=THREADS as usize).contains(&entries),
            "{}: {entries} table entries",
            site.name()
        );
        if entries > 1 {
            eprintln!(
                "{}: {entries} table entries (registration race)",
                site.name()
            );
        }
    }
    let names: Vec<&str> = sites.iter().map(|s| s.name()).collect();
    assert!(
        table.iter().all(|(_, n, _)| names.contains(&n.as_str())),
        "only callsite names are registered (raw ids never are): {table:?}"
    );

    // --- what each thread recorded --------------------------------------------------------------
    let (outer, inner) = (OUTER.id(), INNER.id());
    for t in 0..THREADS {
        let slot = slot_of[&t];
        let tid = tids[t as usize];
        let d = drain_slot(&reg, slot);

        assert_eq!(
            shape(&d.index),
            vec![
                (CALL, RAW + t, 1),
                (RETURN, RAW + t, 1),
                (CALL, outer, 1),
                (CALL, inner, 2),
                (RETURN, inner, 2),
                (RETURN, outer, 1),
            ],
            "thread {t}'s index lane"
        );
        // Every Call is closed by a Return of the same function at the same depth.
        let mut open: Vec<(u64, u32)> = Vec::new();
        for r in &d.index {
            match r.kind {
                CALL => {
                    assert_eq!(r.call_depth as usize, open.len() + 1);
                    open.push((r.function_id, r.call_depth));
                }
                RETURN => assert_eq!(open.pop(), Some((r.function_id, r.call_depth))),
                k => panic!("unexpected kind {k}"),
            }
        }
        assert!(open.is_empty());
        for r in &d.index {
            assert_eq!(u64::from(r.thread_id), tid, "index record's thread id");
            assert_eq!(r.reserved, 0);
        }
        assert!(
            d.index
                .windows(2)
                .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns),
            "timestamps never go back"
        );
        assert!(!d.index_ring_marked, "index rings are never marked");

        assert_eq!(
            d.detail.len(),
            3,
            "thread {t}'s detail lane: {:?}",
            d.detail
        );
        let (det, msg, mark) = (&d.detail[0], &d.detail[1], &d.detail[2]);
        assert_eq!(
            (det.kind, det.function_id, det.call_depth, det.marked),
            (EventKind::Call, DETAIL.id(), 2, false)
        );
        assert_eq!(det.registers, registers(t));
        assert_eq!(det.stack, stack(t));
        assert_eq!(det.message, detail_text(t).as_bytes());
        assert_eq!(
            (msg.kind, msg.function_id, msg.call_depth, msg.marked),
            (EventKind::Message, MESSAGE.id(), 0, false)
        );
        assert_eq!(msg.message, format!("message {t}").as_bytes());
        assert!(msg.registers.is_empty() && msg.stack.is_empty());
        assert_eq!(
            (mark.kind, mark.function_id, mark.call_depth, mark.marked),
            (EventKind::Mark, MARK.id(), 0, true)
        );
        assert_eq!(mark.message, format!("mark {t}").as_bytes());
        assert!(mark.ring_marked, "the ring holding the mark carries MARKED");
        for e in &d.detail {
            assert_eq!(u64::from(e.thread_id), tid, "detail record's thread id");
        }

        // The counters the thread published at exit match what was drained.
        let lanes = reg.view().slot(slot).unwrap();
        let ic = lanes.lane(LaneKind::Index).counters();
        let dc = lanes.lane(LaneKind::Detail).counters();
        assert_eq!(
            (ic.events_written, ic.events_dropped),
            (d.index.len() as u64, 0)
        );
        assert_eq!(
            (dc.events_written, dc.events_dropped),
            (d.detail.len() as u64, 0)
        );

        // A second drain finds nothing: every record was delivered once.
        let again = drain_slot(&reg, slot);
        assert!(again.index.is_empty() && again.detail.is_empty());
        free_slot(&reg, slot);
    }
    assert_eq!(reg.view().census()[SlotState::Free as usize], 8);

    // --- giving the slot back -----------------------------------------------------------------
    let main_tid = gettid();
    assert!(
        !ada_agent::unregister_current_thread(),
        "this thread has not registered yet"
    );
    ada_agent::enter_id(MAIN_FIRST);
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), 1);
    let first = live[0].index;
    assert_eq!(live[0].state, SlotState::Active);
    assert_eq!(live[0].owner.thread_id, main_tid);

    assert!(ada_agent::unregister_current_thread());
    assert_eq!(
        reg.view().slot(first).unwrap().state(),
        Ok(SlotState::Exited)
    );
    assert!(
        !ada_agent::unregister_current_thread(),
        "already given back"
    );

    ada_agent::enter_id(MAIN_SECOND);
    let second: Vec<_> = reg
        .view()
        .live_slots()
        .filter(|v| v.state == SlotState::Active)
        .collect();
    assert_eq!(second.len(), 1, "a new slot was claimed");
    let second = second[0].index;
    assert_ne!(
        second, first,
        "the EXITED slot is not reused before the drain frees it"
    );
    assert_eq!(reg.view().slot(second).unwrap().owner().thread_id, main_tid);
    assert_eq!(reg.header().counters().registrations, THREADS + 2);

    let d = drain_slot(&reg, first);
    assert_eq!(shape(&d.index), vec![(CALL, MAIN_FIRST, 1)]);
    assert_eq!(
        reg.view()
            .lane(first, LaneKind::Index)
            .unwrap()
            .counters()
            .events_written,
        1
    );
    free_slot(&reg, first);
    // The new writer starts at depth 0 again, and writes only to the new slot.
    let d = drain_slot(&reg, second);
    assert_eq!(shape(&d.index), vec![(CALL, MAIN_SECOND, 1)]);
    assert_eq!(u64::from(d.index[0].thread_id), main_tid);
    assert!(d.detail.is_empty());
    assert!(ada_agent::unregister_current_thread());
}
