//! loom: the `consumed` word protocol. The drain copies a thread's active ring while the thread
//! keeps writing and then recycles the ring on exhaustion (drop-oldest). Whatever the
//! interleaving, each record is either delivered once (the drain's CAS won) or counted as dropped
//! (the thread's recycle won), never both and never neither.
#![cfg(loom)]

use ada_ringpool::RingHeader;
use ada_shm::sync::{Arc, thread};
use ada_testkit::model::Witness;

#[test]
fn drain_copy_and_owner_recycle_count_each_record_once() {
    let (copied, recycled) = (Witness::new(), Witness::new());
    let (drain_won, owner_won) = (copied.clone(), recycled.clone());
    ada_testkit::model::check(move || {
        let header = Arc::new(RingHeader::default());
        let h = header.clone();
        // The owner commits 2 records (positions in units of one record), then recycles.
        let owner = thread::spawn(move || {
            let generation = 0; // a fresh header
            h.publish_position(generation, 1);
            h.publish_position(generation, 2);
            let ended = h.begin_recycle();
            let read = ended.read_pos.min(2);
            let dropped = 2 - read;
            h.reset_contents(ended.generation.wrapping_add(1));
            dropped
        });
        // The drain copies whatever is committed and claims it.
        let seen = header.consumed();
        let position = header.position();
        let upto = position.write_pos;
        let same_fill = position.generation == seen.generation;
        let delivered = if same_fill && upto > seen.read_pos && header.commit_read(seen, upto) {
            upto - seen.read_pos
        } else {
            0
        };
        let dropped = owner.join().unwrap();
        assert_eq!(
            delivered + dropped,
            2,
            "delivered {delivered}, dropped {dropped}"
        );
        if delivered > 0 {
            drain_won.hit();
        }
        if dropped > 0 {
            owner_won.hit();
        }
    });
    copied.expect_reached("the drain's claim delivered records");
    recycled.expect_reached("the owner's recycle dropped records");
}
