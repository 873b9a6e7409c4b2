//! A single-producer single-consumer queue of `u32` values (ring indices) whose control words
//! can live anywhere: inside a lane in shared memory, or on the heap.
//!
//! Provenance: the algorithm is rtrb's (mgeier/rtrb) reduced to `u32` items: free-running `u32`
//! positions (`index = position & mask`, full when `tail - head == capacity`), so there is no
//! ABA and no sentinel slot; each endpoint keeps a private copy of its own position and a cached
//! copy of the other side's, and reloads the other side (Acquire) only when the queue looks full
//! or empty, so the fast path touches no cache line the other side writes.
//!
//! Ownership: the producer alone writes `tail` and the slots between `tail` and `head +
//! capacity`; the consumer alone writes `head`. Neither side ever writes the other's index.
//! There is exactly one [`Producer`] and one [`Consumer`] per queue, as in rtrb: a heap queue
//! hands both out once from [`HeapQueue::split`] (an exclusive borrow), a lane's queues are
//! split once at registration (the thread's ends) and once by the drain claim (the drain's
//! ends), see `crate::endpoints`. The unchecked constructors ([`QueueRef::producer`],
//! [`QueueRef::consumer`]) are `unsafe fn`s for the code that builds those guarantees.
//! Slots are atomics written `Relaxed`: the Release store of `tail` (or `head`) orders them.
//! Because slots are atomics, a peer in another process that misbehaves can corrupt values but
//! can never cause a data race; the consumer detects impossible positions
//! ([`QueueCorrupt`]) and callers validate every value they pop.

use ada_shm::sync::{AtomicU32, Ordering};

/// The positions read from the shared words are impossible (`tail - head > capacity`): the
/// other side is broken or hostile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SPSC queue positions are inconsistent (head {head}, tail {tail}, capacity {capacity})")]
pub struct QueueCorrupt {
    /// Consumer position.
    pub head: u32,
    /// Producer position.
    pub tail: u32,
    /// Queue capacity.
    pub capacity: u32,
}

/// The queue is full; the value is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SPSC queue is full")]
pub struct QueueFull(pub u32);

/// Borrowed view of one queue's control words and slots.
#[derive(Debug, Clone, Copy)]
pub struct QueueRef<'a> {
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    slots: &'a [AtomicU32],
    mask: u32,
}

impl<'a> QueueRef<'a> {
    /// A queue over `slots` (its length must be a power of two, at most 2^31).
    pub fn new(head: &'a AtomicU32, tail: &'a AtomicU32, slots: &'a [AtomicU32]) -> Self {
        let cap = slots.len();
        assert!(
            cap.is_power_of_two() && cap <= 1 << 31,
            "SPSC capacity must be a power of two <= 2^31, got {cap}"
        );
        QueueRef {
            head,
            tail,
            slots,
            mask: cap as u32 - 1,
        }
    }

    /// Maximum number of queued values.
    pub fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// Empties the queue. Only for the party that owns both ends at the moment (a registering
    /// thread before it publishes its slot); never while a producer or consumer is running.
    pub fn reset(&self) {
        // Relaxed: the caller owns both ends; publication happens through the slot state.
        self.head.store(0, Ordering::Relaxed);
        // Relaxed: as above.
        self.tail.store(0, Ordering::Relaxed);
    }

    /// Values currently queued, as seen now (either side may move it right after).
    pub fn len(&self) -> u32 {
        // Acquire (both): a snapshot consistent with the values published so far.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    /// `len() == 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The producer endpoint, without checking that it is the only one.
    ///
    /// # Safety
    /// No other [`Producer`] of this queue may exist while the returned one is used, in this
    /// process or another. The ring pool hands ring ownership through these queues (a ring index
    /// popped from a queue is the popper's alone), and everything built on them, including
    /// `unsafe` code that writes a ring because it owns it, relies on that.
    pub unsafe fn producer(self) -> Producer<'a> {
        // Relaxed: the producer is the only writer of `tail`, so it reads its own last value.
        let tail = self.tail.load(Ordering::Relaxed);
        // Acquire: pairs with the consumer's Release store of `head`; the slots it freed are ours.
        let head_cache = self.head.load(Ordering::Acquire);
        Producer {
            q: self,
            tail,
            head_cache,
        }
    }

    /// The consumer endpoint, without checking that it is the only one.
    ///
    /// # Safety
    /// No other [`Consumer`] of this queue may exist while the returned one is used, in this
    /// process or another (see [`producer`](Self::producer)).
    pub unsafe fn consumer(self) -> Consumer<'a> {
        // Relaxed: the consumer is the only writer of `head`.
        let head = self.head.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's Release store of `tail`; slots below it are written.
        let tail_cache = self.tail.load(Ordering::Acquire);
        // An impossible position is not trusted as a cache: the first pop reloads and reports it.
        let tail_cache = if tail_cache.wrapping_sub(head) > self.capacity() {
            head
        } else {
            tail_cache
        };
        Consumer {
            q: self,
            head,
            tail_cache,
        }
    }
}

/// The producing end of a [`QueueRef`].
#[derive(Debug)]
pub struct Producer<'a> {
    q: QueueRef<'a>,
    tail: u32,
    head_cache: u32,
}

impl Producer<'_> {
    /// Appends `value`, or hands it back if the queue is full. Wait-free.
    ///
    /// ```
    /// use ada_registry::spsc::{HeapQueue, QueueFull};
    ///
    /// let mut queue = HeapQueue::new(2);
    /// let (mut producer, mut consumer) = queue.split();
    /// assert_eq!(producer.push(1), Ok(()));
    /// assert_eq!(producer.push(2), Ok(()));
    /// assert_eq!(producer.push(3), Err(QueueFull(3)), "full: the value comes back");
    /// assert_eq!(consumer.pop(), Ok(Some(1)));
    /// assert_eq!(producer.push(3), Ok(()), "the consumer freed a slot");
    /// ```
    #[inline]
    pub fn push(&mut self, value: u32) -> Result<(), QueueFull> {
        let cap = self.q.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) >= cap {
            // Acquire: pairs with the consumer's Release of `head`: the slots it freed are ours.
            self.head_cache = self.q.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) >= cap {
                return Err(QueueFull(value));
            }
        }
        self.slot(self.tail).store(value, Ordering::Relaxed);
        self.tail = self.tail.wrapping_add(1);
        // Release: the consumer that acquires this tail sees the slot written above.
        self.q.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    #[inline(always)]
    fn slot(&self, position: u32) -> &AtomicU32 {
        let index = (position & self.q.mask) as usize;
        debug_assert!(index < self.q.slots.len());
        // SAFETY: `QueueRef::new` checked `slots.len() == mask + 1`, so `position & mask` is
        // always a valid index.
        unsafe { self.q.slots.get_unchecked(index) }
    }

    /// Appends as many of `values` as fit, publishing them with one store; returns how many.
    pub fn push_slice(&mut self, values: &[u32]) -> usize {
        let mut free = self.free_slots();
        if (free as usize) < values.len() {
            // Acquire: as in `free_slots`; a batch is worth one reload to fill it completely.
            self.head_cache = self.q.head.load(Ordering::Acquire);
            free = self
                .q
                .capacity()
                .saturating_sub(self.tail.wrapping_sub(self.head_cache));
        }
        let n = (free as usize).min(values.len());
        for (i, &v) in values[..n].iter().enumerate() {
            let pos = self.tail.wrapping_add(i as u32);
            // Relaxed: published by the Release store of `tail` below.
            self.slot(pos).store(v, Ordering::Relaxed);
        }
        if n > 0 {
            self.tail = self.tail.wrapping_add(n as u32);
            // Release: publishes all n slots at once.
            self.q.tail.store(self.tail, Ordering::Release);
        }
        n
    }

    /// Re-reads both positions from the shared words, after the party that owns the whole
    /// queue (a thread registering a reused slot) reset them. Keeps this endpoint the only one.
    pub fn resync(&mut self) {
        // Relaxed: we are the only writer of `tail`; the reset we pick up was published by the
        // Release store that made the slot live, which the caller acquired.
        self.tail = self.q.tail.load(Ordering::Relaxed);
        // Acquire: pairs with the consumer's Release store of `head`.
        self.head_cache = self.q.head.load(Ordering::Acquire);
    }

    /// Free slots, reloading the consumer's position only if the cached one says "full".
    #[inline]
    pub fn free_slots(&mut self) -> u32 {
        let cap = self.q.capacity();
        let used = self.tail.wrapping_sub(self.head_cache);
        if used < cap {
            return cap - used;
        }
        // Acquire: pairs with the consumer's Release of `head`: the slots it released are free.
        self.head_cache = self.q.head.load(Ordering::Acquire);
        cap.saturating_sub(self.tail.wrapping_sub(self.head_cache))
    }
}

/// The consuming end of a [`QueueRef`].
#[derive(Debug)]
pub struct Consumer<'a> {
    q: QueueRef<'a>,
    head: u32,
    tail_cache: u32,
}

impl Consumer<'_> {
    /// Removes the oldest value. Wait-free. `Ok(None)` when empty; [`QueueCorrupt`] when the
    /// shared positions are impossible (a broken or hostile producer).
    ///
    /// ```
    /// use ada_registry::spsc::HeapQueue;
    ///
    /// let mut queue = HeapQueue::new(4);
    /// let (mut producer, mut consumer) = queue.split();
    /// assert_eq!(consumer.pop(), Ok(None), "empty");
    /// assert_eq!(producer.push_slice(&[5, 6]), 2);
    /// assert_eq!(consumer.pop(), Ok(Some(5)), "oldest first");
    /// assert_eq!(consumer.pop(), Ok(Some(6)));
    /// assert_eq!(consumer.pop(), Ok(None));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<Option<u32>, QueueCorrupt> {
        if self.head == self.tail_cache {
            // Acquire: pairs with the producer's Release of `tail`: slots below it are written.
            self.tail_cache = self.q.tail.load(Ordering::Acquire);
            if self.head == self.tail_cache {
                return Ok(None);
            }
            let capacity = self.q.mask + 1;
            let tail = self.tail_cache;
            if tail.wrapping_sub(self.head) > capacity {
                // Never kept as the cache: the next call would pop up to 2^32 values below it
                // without looking at the shared word again. Reloaded (and reported) next time.
                self.tail_cache = self.head;
                // By value, not `&self`: a call taking the endpoint's address would pin the
                // endpoint in memory for the whole caller loop (measured: reloads per item).
                return Err(corrupt(self.head, tail, capacity));
            }
        }
        let value = self.slot(self.head).load(Ordering::Relaxed);
        self.head = self.head.wrapping_add(1);
        // Release: the producer that acquires this head may reuse the slot we just read.
        self.q.head.store(self.head, Ordering::Release);
        Ok(Some(value))
    }

    #[inline(always)]
    fn slot(&self, position: u32) -> &AtomicU32 {
        let index = (position & self.q.mask) as usize;
        debug_assert!(index < self.q.slots.len());
        // SAFETY: `QueueRef::new` checked `slots.len() == mask + 1`, so `position & mask` is
        // always a valid index.
        unsafe { self.q.slots.get_unchecked(index) }
    }

    /// Removes up to `out.len()` values with one store; returns how many.
    pub fn pop_into(&mut self, out: &mut [u32]) -> Result<usize, QueueCorrupt> {
        let mut avail = self.available()?;
        if (avail as usize) < out.len() {
            // Acquire: as in `available`; a batch is worth one reload to take everything queued.
            self.tail_cache = self.q.tail.load(Ordering::Acquire);
            avail = self.checked_available()?;
        }
        let n = (avail as usize).min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            let pos = self.head.wrapping_add(i as u32);
            // Relaxed: ordered after the Acquire load of `tail` in `available`.
            *slot = self.slot(pos).load(Ordering::Relaxed);
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n as u32);
            // Release: returns all n slots to the producer at once.
            self.q.head.store(self.head, Ordering::Release);
        }
        Ok(n)
    }

    /// Values ready to pop, always reloading the producer's position (a count that is current,
    /// for decisions such as a backpressure state; [`available`](Self::available) is cheaper).
    pub fn available_now(&mut self) -> Result<u32, QueueCorrupt> {
        // Acquire: pairs with the producer's Release of `tail`: slots below it are written.
        self.tail_cache = self.q.tail.load(Ordering::Acquire);
        let avail = self.tail_cache.wrapping_sub(self.head);
        if avail > self.q.capacity() {
            let e = self.corrupt();
            // Not kept as the cache (see `pop`).
            self.tail_cache = self.head;
            return Err(e);
        }
        Ok(avail)
    }

    /// Whether the queue still looks empty from the producer's shared position alone (one
    /// load, no cache update, no check): a hint for a hot path that polls a queue it found
    /// empty, which takes [`available`](Self::available) or [`pop`](Self::pop) once this says
    /// `false` (a corrupt position also says `false`, and those report it).
    #[inline(always)]
    pub fn looks_empty(&self) -> bool {
        // Relaxed: only a hint; nothing is read on its strength (whoever acts on `false`
        // reloads the position with Acquire first).
        self.q.tail.load(Ordering::Relaxed) == self.head
    }

    /// Values ready to pop, reloading the producer's position only if the cache says "empty".
    #[inline]
    pub fn available(&mut self) -> Result<u32, QueueCorrupt> {
        let mut avail = self.tail_cache.wrapping_sub(self.head);
        if avail == 0 {
            // Acquire: pairs with the producer's Release of `tail`: slots below it are written.
            self.tail_cache = self.q.tail.load(Ordering::Acquire);
            avail = self.tail_cache.wrapping_sub(self.head);
        }
        if avail > self.q.capacity() {
            let e = self.corrupt();
            // Not kept as the cache (see `pop`).
            self.tail_cache = self.head;
            return Err(e);
        }
        Ok(avail)
    }

    /// Re-reads both positions from the shared words (see [`Producer::resync`]).
    pub fn resync(&mut self) {
        // Relaxed: we are the only writer of `head`; see `Producer::resync`.
        self.head = self.q.head.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's Release store of `tail`.
        let tail = self.q.tail.load(Ordering::Acquire);
        // An impossible position is not trusted as a cache: the next pop reloads and reports it.
        self.tail_cache = if tail.wrapping_sub(self.head) > self.q.capacity() {
            self.head
        } else {
            tail
        };
    }

    fn checked_available(&mut self) -> Result<u32, QueueCorrupt> {
        let avail = self.tail_cache.wrapping_sub(self.head);
        if avail > self.q.capacity() {
            let e = self.corrupt();
            // Not kept as the cache (see `pop`).
            self.tail_cache = self.head;
            Err(e)
        } else {
            Ok(avail)
        }
    }

    fn corrupt(&self) -> QueueCorrupt {
        corrupt(self.head, self.tail_cache, self.q.capacity())
    }
}

#[cold]
#[inline(never)]
fn corrupt(head: u32, tail: u32, capacity: u32) -> QueueCorrupt {
    QueueCorrupt {
        head,
        tail,
        capacity,
    }
}

/// A heap-allocated queue with head and tail on separate cache lines, for tests, model checking
/// and benchmarks (the lanes embed their queues in shared memory instead).
#[derive(Debug)]
pub struct HeapQueue {
    head: ada_shm::CacheLine<AtomicU32>,
    tail: ada_shm::CacheLine<AtomicU32>,
    slots: Box<[AtomicU32]>,
}

impl HeapQueue {
    /// A queue of `capacity` slots (a power of two).
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(capacity, 0)
    }

    /// A queue whose positions start at `position`, to test wraparound of the `u32` counters.
    pub fn starting_at(capacity: usize, position: u32) -> Self {
        HeapQueue {
            head: ada_shm::CacheLine::new(AtomicU32::new(position)),
            tail: ada_shm::CacheLine::new(AtomicU32::new(position)),
            slots: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The borrowed view (length, emptiness; the unchecked endpoint constructors).
    pub fn queue(&self) -> QueueRef<'_> {
        QueueRef::new(&self.head, &self.tail, &self.slots)
    }

    /// The queue's one producer and one consumer. The exclusive borrow keeps a second pair from
    /// existing while these are alive.
    ///
    /// ```
    /// use ada_registry::spsc::HeapQueue;
    ///
    /// let mut queue = HeapQueue::new(4);
    /// let (mut producer, mut consumer) = queue.split();
    /// producer.push(7).unwrap();
    /// assert_eq!(consumer.pop(), Ok(Some(7)));
    /// assert_eq!(consumer.pop(), Ok(None));
    /// ```
    ///
    /// A second producer cannot be made while the first is alive:
    ///
    /// ```compile_fail
    /// use ada_registry::spsc::HeapQueue;
    ///
    /// let mut queue = HeapQueue::new(4);
    /// let (mut producer, _consumer) = queue.split();
    /// let (mut second, _) = queue.split(); // error: `queue` is already borrowed
    /// producer.push(1).unwrap();
    /// second.push(2).unwrap();
    /// ```
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        let q = QueueRef::new(&self.head, &self.tail, &self.slots);
        // SAFETY: `&mut self` is held by the returned endpoints, so no other endpoint of this
        // queue can be made (safe code has no other way to reach the words) while they live.
        unsafe { (q.producer(), q.consumer()) }
    }

    /// Overwrites the tail word, to simulate a corrupt peer in tests.
    #[doc(hidden)]
    pub fn corrupt_tail(&self, value: u32) {
        // Relaxed: test-only corruption.
        self.tail.store(value, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_empty_and_batches() {
        let mut q = HeapQueue::new(4);
        let (mut p, mut c) = q.split();
        assert_eq!(c.pop(), Ok(None));
        for v in 0..4 {
            p.push(v).unwrap();
        }
        assert_eq!(p.push(9), Err(QueueFull(9)));
        assert_eq!(c.available(), Ok(4));
        assert_eq!(c.pop(), Ok(Some(0)));
        p.push(4).unwrap();
        let mut out = [0; 8];
        assert_eq!(c.pop_into(&mut out), Ok(4));
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
        assert_eq!(p.push_slice(&[5, 6, 7, 8, 9]), 4);
        assert_eq!(c.pop_into(&mut out), Ok(4));
        assert_eq!(&out[..4], &[5, 6, 7, 8]);
        assert_eq!(c.available(), Ok(0));
    }

    #[test]
    fn looks_empty_follows_the_producer_without_touching_the_cache() {
        let mut q = HeapQueue::starting_at(4, u32::MAX);
        let (mut p, mut c) = q.split();
        assert!(c.looks_empty());
        p.push(7).unwrap();
        // Seen from the shared position alone, across the wrap of the positions.
        assert!(!c.looks_empty());
        assert_eq!(c.pop(), Ok(Some(7)));
        assert!(c.looks_empty());
        p.push(8).unwrap();
        assert!(!c.looks_empty());
        assert_eq!(c.available(), Ok(1));
    }

    #[test]
    fn positions_wrap_around_u32() {
        let mut q = HeapQueue::starting_at(8, u32::MAX - 5);
        let (mut p, mut c) = q.split();
        for round in 0..10u32 {
            for i in 0..7 {
                p.push(round * 10 + i).unwrap();
            }
            for i in 0..7 {
                assert_eq!(c.pop(), Ok(Some(round * 10 + i)));
            }
        }
    }

    /// A corrupt tail is reported and never kept: the consumer neither pops values below it
    /// (up to 2^32 of them) nor reports a full queue's worth; it reloads the word each time.
    #[test]
    fn a_corrupt_tail_is_not_trusted_after_it_was_reported() {
        let mut q = HeapQueue::new(4);
        q.corrupt_tail(1000);
        let (_, mut c) = q.split();
        for _ in 0..3 {
            assert!(c.pop().is_err());
            assert!(c.available().is_err());
            assert!(c.pop_into(&mut [0; 4]).is_err());
        }
        // The peer puts a possible position back: the queue works from the shared words again.
        q.corrupt_tail(2);
        let (_, mut c) = q.split();
        assert_eq!(c.pop(), Ok(Some(0)));
        assert_eq!(c.pop(), Ok(Some(0)));
        assert_eq!(c.pop(), Ok(None));
    }

    #[test]
    fn consumer_detects_impossible_positions() {
        let mut q = HeapQueue::new(4);
        q.corrupt_tail(100);
        let (_, mut c) = q.split();
        assert!(matches!(
            c.pop(),
            Err(QueueCorrupt {
                tail: 100,
                capacity: 4,
                ..
            })
        ));
    }
}
