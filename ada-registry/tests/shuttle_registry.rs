//! shuttle: 64 threads register and unregister concurrently against a 16-slot registry while a
//! drain thread reclaims exited slots. No two live threads ever share a slot, every thread gets
//! registered eventually, and the registry ends empty.
#![cfg(shuttle)]

use ada_registry::{HeapRegistry, RingGeometry, SlotOwner, SlotState};
use ada_shm::sync::{Arc, AtomicU32, AtomicU64, Ordering, thread};

const THREADS: u64 = 64;
const CAPACITY: u32 = 16;

#[test]
fn sixty_four_threads_register_and_unregister() {
    ada_testkit::model::check(|| {
        let geometry = RingGeometry {
            index_rings: 2,
            index_ring_bytes: 256,
            detail_rings: 2,
            detail_ring_bytes: 256,
        };
        let reg = Arc::new(HeapRegistry::new(CAPACITY, geometry));
        // owners[i] = thread id currently holding slot i (0 = none): detects double ownership.
        let owners: Arc<Vec<AtomicU64>> =
            Arc::new((0..CAPACITY).map(|_| AtomicU64::new(0)).collect());
        let finished = Arc::new(AtomicU32::new(0));
        let workers: Vec<_> = (1..=THREADS)
            .map(|tid| {
                let (reg, owners, finished) = (reg.clone(), owners.clone(), finished.clone());
                thread::spawn(move || {
                    let slot = loop {
                        match reg.view().register(SlotOwner {
                            thread_id: tid,
                            pid: 1,
                            generation: 0,
                            registered_ns: 0,
                        }) {
                            Ok(slot) => break slot,
                            Err(_) => thread::yield_now(),
                        }
                    };
                    let index = slot.slot.index() as usize;
                    let prev = owners[index].swap(tid, Ordering::SeqCst);
                    assert_eq!(prev, 0, "slot {index} owned by {prev} and {tid}");
                    assert_eq!(slot.slot.lanes().owner().thread_id, tid);
                    thread::yield_now();
                    owners[index].store(0, Ordering::SeqCst);
                    slot.slot.unregister().unwrap();
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // The drain: reclaim EXITED slots until every worker is done and nothing is left.
        loop {
            let view = reg.view();
            for i in 0..CAPACITY {
                view.reclaim(i);
            }
            if finished.load(Ordering::SeqCst) == THREADS as u32
                && view.census()[SlotState::Exited as usize] == 0
            {
                break;
            }
            thread::yield_now();
        }
        for w in workers {
            w.join().unwrap();
        }
        let census = reg.view().census();
        assert_eq!(
            census[SlotState::Free as usize],
            CAPACITY,
            "census {census:?}"
        );
        assert_eq!(reg.view().header().counters().registrations, THREADS);
    });
}
