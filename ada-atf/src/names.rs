//! [`StreamNames`]: function and thread names gathered from a trace's own event stream
//! (`SymbolDef` and `ThreadDef` events, payload members 18 and 19) and, when it has one, from
//! its manifest.
//!
//! A writer puts each definition in the stream before the first event that uses it, so a
//! reader that feeds every event to [`StreamNames::observe`] in file order can name each event
//! as it reaches it — also in a trace whose controller died before writing `trace.json`.
//!
//! The first definition of an id wins: the manifest's (given at construction), then the
//! stream's. A later, different definition of the same id is not applied; it is counted in
//! [`StreamNames::conflicts`] (a well-formed trace has none).

use std::collections::HashMap;

use crate::manifest::Manifest;
use crate::schema::{Event, event::Payload};

/// What a trace says about one of its threads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadIdentity {
    /// The process, when known.
    pub pid: Option<u32>,
    /// The operating system's thread id, when known.
    pub os_tid: Option<u64>,
    /// The thread's name, when known.
    pub name: Option<String>,
    /// Whether the controller verified `pid` and `os_tid` (`false` when the trace does not say).
    pub verified: bool,
}

/// One function's name and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolName {
    /// The symbol.
    pub symbol: String,
    /// Its address, 0 when unknown.
    pub address: u64,
    /// Where it is defined in the source, when the trace says.
    pub source: Option<SourceLocation>,
}

/// A function's place in the source: a file and a line in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// The file, as registered (a `tracing` callsite's `file!()`).
    pub file: String,
    /// The line, from 1.
    pub line: u32,
}

impl SourceLocation {
    /// The location of a definition whose file is `file` and line `line`: none unless both are
    /// known (a non-empty file and a line from 1).
    pub fn of(file: &str, line: u32) -> Option<SourceLocation> {
        (!file.is_empty() && line != 0).then(|| SourceLocation {
            file: file.to_owned(),
            line,
        })
    }
}

/// Names of a trace's functions and threads; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct StreamNames {
    symbols: HashMap<u64, SymbolName>,
    threads: HashMap<i32, ThreadIdentity>,
    from_stream: u64,
    conflicts: u64,
}

impl StreamNames {
    /// Names from `manifest` (if any); the stream's definitions are added by
    /// [`observe`](Self::observe).
    pub fn new(manifest: Option<&Manifest>) -> Self {
        let mut names = StreamNames::default();
        if let Some(m) = manifest {
            for s in &m.symbols {
                names.symbols.entry(s.function_id).or_insert(SymbolName {
                    symbol: s.symbol.clone(),
                    address: s.address.unwrap_or(0),
                    source: SourceLocation::of(
                        s.file.as_deref().unwrap_or(""),
                        s.line.unwrap_or(0),
                    ),
                });
            }
            for t in &m.threads {
                names.threads.entry(t.thread_id).or_insert(ThreadIdentity {
                    pid: t.pid,
                    os_tid: t.os_tid,
                    name: t.name.clone(),
                    verified: t.verified.unwrap_or(false),
                });
            }
        }
        names
    }

    /// Takes in `event` if it is a definition; returns whether it was one (a definition
    /// describes other events and is not itself an event of the traced program).
    pub fn observe(&mut self, event: &Event) -> bool {
        match &event.payload {
            Some(Payload::SymbolDef(d)) => {
                self.from_stream += 1;
                let new = SymbolName {
                    symbol: d.symbol.clone(),
                    address: d.address,
                    source: SourceLocation::of(&d.file, d.line),
                };
                match self.symbols.get(&d.function_id) {
                    Some(old) if *old != new => self.conflicts += 1,
                    Some(_) => {}
                    None => {
                        self.symbols.insert(d.function_id, new);
                    }
                }
                true
            }
            Some(Payload::ThreadDef(d)) => {
                self.from_stream += 1;
                let new = ThreadIdentity {
                    pid: Some(d.pid),
                    os_tid: Some(d.os_tid),
                    name: (!d.name.is_empty()).then(|| d.name.clone()),
                    verified: d.verified,
                };
                match self.threads.get_mut(&d.thread_id) {
                    // The manifest's entry lacks pid and verification: the stream completes it.
                    Some(old) if old.os_tid == new.os_tid && old.pid.is_none() => {
                        old.pid = new.pid;
                        old.verified = new.verified;
                        if old.name.is_none() {
                            old.name = new.name;
                        }
                    }
                    Some(old) if *old != new => self.conflicts += 1,
                    Some(_) => {}
                    None => {
                        self.threads.insert(d.thread_id, new);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// The name of `function_id`, if defined so far.
    pub fn symbol(&self, function_id: u64) -> Option<&SymbolName> {
        self.symbols.get(&function_id)
    }

    /// What is known of thread `thread_id` so far.
    pub fn thread(&self, thread_id: i32) -> Option<&ThreadIdentity> {
        self.threads.get(&thread_id)
    }

    /// The thread numbers known, in no particular order.
    pub fn thread_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.threads.keys().copied()
    }

    /// Symbols known.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// Threads known.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Definitions seen in the stream.
    pub fn definitions_seen(&self) -> u64 {
        self.from_stream
    }

    /// Stream definitions that contradicted an earlier definition of the same id (not applied).
    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::EventRef;

    fn ev(e: EventRef<'_>) -> Event {
        e.to_event(1)
    }

    #[test]
    fn definitions_name_later_events_first_wins() {
        let mut n = StreamNames::new(None);
        assert!(n.observe(&ev(EventRef::symbol_def(5, 42, "main", 0x1000, ""))));
        assert!(n.observe(&ev(EventRef::thread_def(6, 3, 100, 101, "worker", true))));
        let call = EventRef::new(3, 7, crate::PayloadRef::TraceEnd { exit_code: 0 });
        assert!(!n.observe(&ev(call)));
        assert_eq!(n.symbol(42).unwrap().symbol, "main");
        assert_eq!(n.symbol(42).unwrap().address, 0x1000);
        let t = n.thread(3).unwrap();
        assert_eq!((t.pid, t.os_tid, t.verified), (Some(100), Some(101), true));
        assert_eq!(t.name.as_deref(), Some("worker"));
        // A contradicting redefinition is counted, not applied.
        n.observe(&ev(EventRef::symbol_def(8, 42, "evil", 0, "")));
        n.observe(&ev(EventRef::thread_def(9, 3, 1, 1, "x", false)));
        assert_eq!(n.symbol(42).unwrap().symbol, "main");
        assert_eq!(n.thread(3).unwrap().os_tid, Some(101));
        assert_eq!(n.conflicts(), 2);
        assert_eq!(n.definitions_seen(), 4);
        // The same definition again is no conflict.
        n.observe(&ev(EventRef::symbol_def(10, 42, "main", 0x1000, "")));
        assert_eq!(n.conflicts(), 2);
        assert_eq!((n.symbol_count(), n.thread_count()), (1, 1));
    }

    #[test]
    fn a_definition_carries_its_source_location_when_it_has_both_parts() {
        let mut n = StreamNames::new(None);
        n.observe(&ev(
            EventRef::symbol_def(1, 1, "a", 0, "").at_source("src/a.rs", 12)
        ));
        n.observe(&ev(EventRef::symbol_def(2, 2, "b", 0, "")));
        n.observe(&ev(
            EventRef::symbol_def(3, 3, "c", 0, "").at_source("src/c.rs", 0)
        ));
        n.observe(&ev(EventRef::symbol_def(4, 4, "d", 0, "").at_source("", 9)));
        let at = n.symbol(1).unwrap().source.clone().unwrap();
        assert_eq!((at.file.as_str(), at.line), ("src/a.rs", 12));
        for id in 2..=4 {
            assert_eq!(n.symbol(id).unwrap().source, None, "function {id}");
        }
        // A location on a non-definition is ignored.
        let end = EventRef::new(0, 5, crate::PayloadRef::TraceEnd { exit_code: 0 });
        assert_eq!(end.at_source("x.rs", 1), end);
    }
}
