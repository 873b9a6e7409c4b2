//! `fork` while a thread holds a slot: the child starts with a copy of the parent thread's cached
//! writer, whose slot is the parent's. The agent's `pthread_atfork` child handler forgets that
//! copy, so the child's first event registers a slot of its own (owned by the child's pid) and
//! the parent's slot, rings and counters are untouched.
//!
//! One `#[test]`: the global agent is once per process.

mod common;

use ada_agent::Agent;
use ada_registry::{LaneKind, SlotState};
use common::{CALL, RETURN, drain_slot, gettid, in_process_registry, shape};

const PARENT_ID: u64 = 0x0051_0000;
const PARENT_AFTER_ID: u64 = 0x0052_0000;
/// Recorded by the child only.
const CHILD_ID: u64 = 0x00c4_11d0_0000_0001;

#[test]
fn a_forked_child_records_into_its_own_slot() {
    let reg = in_process_registry(4);
    ada_agent::install(Agent::from_registry(reg.clone())).expect("first install");
    let parent_pid = std::process::id();
    let parent_tid = gettid();

    ada_agent::enter_id(PARENT_ID);
    ada_agent::exit_id(PARENT_ID);
    ada_agent::flush();
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), 1);
    let parent_slot = live[0].index;
    let parent_owner = live[0].owner;
    assert_eq!(
        (parent_owner.pid, parent_owner.thread_id),
        (parent_pid, parent_tid)
    );
    let lanes = reg.view().slot(parent_slot).unwrap();
    let before = (
        lanes.lane(LaneKind::Index).counters(),
        lanes.lane(LaneKind::Detail).counters(),
    );
    assert_eq!(before.0.events_written, 2);

    // The child below only records one event (through the agent, after its atfork handler
    // ran) and leaves with `_exit`, running no destructors and no test-harness code.
    // SAFETY: `fork` has no preconditions; the child allocates only through glibc (fork-safe).
    let child = unsafe { libc::fork() };
    assert!(
        child >= 0,
        "fork failed: {}",
        std::io::Error::last_os_error()
    );
    if child == 0 {
        let ok = std::panic::catch_unwind(|| ada_agent::enter_id(CHILD_ID)).is_ok();
        // SAFETY: `_exit` ends the child at once; nothing after it runs.
        unsafe { libc::_exit(if ok { 0 } else { 3 }) };
    }
    let mut status = 0;
    // SAFETY: `child` is our child's pid and `status` is a valid `c_int` to write.
    let waited = unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(waited, child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    let child_pid = child as u32;

    // Two live slots: the parent's, unchanged, and a new one owned by the child.
    let live: Vec<_> = reg.view().live_slots().collect();
    assert_eq!(live.len(), 2, "{live:?}");
    let parent_view = live.iter().find(|v| v.index == parent_slot).unwrap();
    assert_eq!(parent_view.state, SlotState::Active);
    assert_eq!(
        parent_view.owner, parent_owner,
        "the parent's slot is still the parent's"
    );
    let child_view = live.iter().find(|v| v.index != parent_slot).unwrap();
    assert_eq!(
        child_view.state,
        SlotState::Active,
        "_exit runs no TLS destructor: the child's slot stays ACTIVE"
    );
    assert_eq!(child_view.owner.pid, child_pid);
    assert_eq!(
        child_view.owner.thread_id,
        u64::from(child_pid),
        "single-threaded child"
    );
    assert_eq!(reg.header().counters().registrations, 2);
    assert_eq!(reg.header().counters().unregistered_drops, 0);

    // The parent's counters were not disturbed by the child.
    let after = (
        lanes.lane(LaneKind::Index).counters(),
        lanes.lane(LaneKind::Detail).counters(),
    );
    assert_eq!(after, before);

    // The child's event is in the child's slot, and only there.
    let d = drain_slot(&reg, child_view.index);
    assert_eq!(shape(&d.index), vec![(CALL, CHILD_ID, 1)]);
    assert_eq!(d.index[0].thread_id, child_pid);
    assert!(d.detail.is_empty());
    let child_lanes = reg.view().slot(child_view.index).unwrap();
    assert_eq!(
        child_lanes.lane(LaneKind::Index).counters().events_written,
        1
    );

    // The parent keeps recording into its own slot after the fork.
    ada_agent::enter_id(PARENT_AFTER_ID);
    ada_agent::exit_id(PARENT_AFTER_ID);
    let d = drain_slot(&reg, parent_slot);
    assert_eq!(
        shape(&d.index),
        vec![
            (CALL, PARENT_ID, 1),
            (RETURN, PARENT_ID, 1),
            (CALL, PARENT_AFTER_ID, 1),
            (RETURN, PARENT_AFTER_ID, 1),
        ],
        "no child event in the parent's slot"
    );
    assert!(d.index.iter().all(|r| u64::from(r.thread_id) == parent_tid));
    assert!(d.detail.is_empty());

    // The drain can tell the child is gone and retire its slot.
    assert_eq!(reg.view().mark_process_dead(child_pid), 1);
    assert_eq!(
        child_lanes.state(),
        Ok(SlotState::Exited),
        "the dead child's slot is handed to the drain"
    );
}
