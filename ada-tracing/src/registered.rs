//! [`Registered`]: the callsite words this layer has registered, by name and source location,
//! so that one callsite gets one word (and one symbol-table entry) however many threads meet it
//! first at once.
//!
//! `tracing` registers a callsite with the subscriber once, but lets every thread other than
//! the registering one use the callsite before that registration ends; the callsite table
//! (`table.rs`) then misses on each of them, and each would register the name again. The
//! trace would then name one span twice, and `ada inspect --top` would split its calls. So the
//! layer registers through this map: the first registration of a `(name, file, line)` is kept
//! and every later one gets its word. Two callsites with the same name on different lines
//! stay two symbols, each with its own source location.
//!
//! The map sits behind a `Mutex` taken only by registrations (once per callsite, never on the
//! recording path), and never waited on without bound: a registration that cannot take it
//! within [`PATIENCE`] (the holder was preempted for that long, or the lock is held by this
//! very thread, interrupted by a signal handler that records) registers without it, which at
//! worst makes a duplicate entry. A `fork` child never waits at all: a lock held at the fork
//! stays held in the child for good, so the child only tries it once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// The longest a registration waits for another to leave the map: a registration holds it
/// for microseconds, so only a holder preempted for long (or this thread itself, in a signal
/// handler) makes anyone wait this long.
pub(crate) const PATIENCE: Duration = Duration::from_millis(50);

/// `(name, file, line)` to the callsite word its registration gave.
type WordMap = HashMap<(Box<str>, Option<Box<str>>, Option<u32>), u64>;

/// The words registered so far (see the module docs).
#[derive(Debug)]
pub(crate) struct Registered {
    /// The process that made the map: any other is a `fork` child of it.
    owner: u32,
    words: Mutex<WordMap>,
}

impl Registered {
    pub(crate) fn new() -> Registered {
        Registered {
            owner: std::process::id(),
            words: Mutex::new(HashMap::new()),
        }
    }

    /// The word of the callsite `name` at `file`:`line`: the one registered before, else what
    /// `register` gives (kept unless it is 0, "not traced").
    pub(crate) fn get_or_register(
        &self,
        name: &str,
        file: Option<&str>,
        line: Option<u32>,
        register: impl FnOnce() -> u64,
    ) -> u64 {
        let Some(mut words) = self.lock() else {
            return register();
        };
        let key = (Box::<str>::from(name), file.map(Box::<str>::from), line);
        if let Some(&word) = words.get(&key) {
            return word;
        }
        let word = register();
        if word != 0 {
            words.insert(key, word);
        }
        word
    }

    /// Until when a registration waits for the map: `None` (not at all) in a `fork` child.
    fn deadline(&self) -> Option<Instant> {
        (std::process::id() == self.owner).then(|| Instant::now() + PATIENCE)
    }

    /// The map, unless it cannot be had within [`PATIENCE`] (or, in a `fork` child, at once).
    fn lock(&self) -> Option<MutexGuard<'_, WordMap>> {
        let patience = self.deadline();
        loop {
            match self.words.try_lock() {
                Ok(words) => return Some(words),
                // A registration that panicked left the map as it was between two inserts.
                Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => match patience {
                    Some(deadline) if Instant::now() < deadline => std::thread::yield_now(),
                    _ => return None,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::Barrier;

    #[test]
    fn one_callsite_is_registered_once_and_untraced_words_are_not_kept() {
        let map = Registered::new();
        let made = Cell::new(0);
        let register = || {
            made.set(made.get() + 1);
            made.get()
        };
        let at = |line| (Some("src/a.rs"), Some(line));
        let ((file, line), (file2, line2)) = (at(3), at(9));
        assert_eq!(map.get_or_register("f", file, line, register), 1);
        assert_eq!(map.get_or_register("f", file, line, register), 1);
        // Another line, another name, or no location is another callsite.
        assert_eq!(map.get_or_register("f", file2, line2, register), 2);
        assert_eq!(map.get_or_register("g", file, line, register), 3);
        assert_eq!(map.get_or_register("f", None, None, register), 4);
        assert_eq!(map.get_or_register("h", None, None, || 0), 0);
        assert_eq!(
            map.get_or_register("h", None, None, register),
            5,
            "tried again"
        );
        assert_eq!(made.get(), 5);
    }

    #[test]
    fn threads_registering_one_callsite_at_once_share_one_word() {
        const THREADS: usize = 8;
        let map = Registered::new();
        let made = Mutex::new(0);
        let start = Barrier::new(THREADS);
        let got: Vec<u64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        map.get_or_register("worker", Some("src/job.rs"), Some(7), || {
                            // Slow enough that every other thread arrives meanwhile.
                            std::thread::sleep(Duration::from_micros(200));
                            let mut made = made.lock().unwrap();
                            *made += 1;
                            *made
                        })
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(*made.lock().unwrap(), 1, "registered once");
        assert!(got.iter().all(|&word| word == got[0]), "{got:?}");
    }

    #[test]
    fn a_held_map_is_waited_for_a_while_then_passed_by() {
        let map = Registered::new();
        let held = map.words.lock().unwrap();
        let start = Instant::now();
        // The holder is this thread (as for a signal handler that records): no deadlock.
        assert_eq!(map.get_or_register("f", None, None, || 5), 5);
        assert!(start.elapsed() >= PATIENCE);
        drop(held);
        assert_eq!(
            map.get_or_register("f", None, None, || 6),
            6,
            "the word registered without the map was not kept"
        );
    }

    #[test]
    fn a_fork_child_never_waits_for_the_map() {
        let mut map = Registered::new();
        assert!(map.deadline().is_some(), "the process that made it waits");
        // As the map looks from a child: made by another process.
        map.owner = map.owner.wrapping_add(1);
        assert_eq!(map.deadline(), None);
        let held = map.words.lock().unwrap();
        assert_eq!(map.get_or_register("f", None, None, || 5), 5);
        drop(held);
        assert_eq!(map.get_or_register("f", None, None, || 6), 6);
        assert_eq!(
            map.get_or_register("f", None, None, || 7),
            6,
            "kept once free"
        );
    }
}
