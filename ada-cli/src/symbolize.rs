//! Names for function ids that are code addresses, for `ada inspect` and `ada export`.
//!
//! A trace of functions traced by address (`-finstrument-functions`) carries each function's
//! address as its function id and no name for it; its manifest lists the modules each traced
//! process had loaded (`loadedModules`). [`Namer`] names such an id, after the run, with
//! [`ada_symbols`]: a function id that has no name in the trace (no symbol in the event, none
//! in the manifest's or the stream's symbol table) and lies in a module of its thread's process
//! gets the function's demangled name, else `module+0x<offset>` (a stripped module, or a
//! module file that cannot be read now: [`NamerStats`] counts both, and `ada inspect` says
//! so); an id in no module of a process whose modules were recorded shows as its hex
//! address. Traces without recorded modules are named exactly as before.
//!
//! Every module file is read at most once per run of the tool, and every (process, id) is
//! resolved at most once (up to [`MAX_RESOLVED`]; past that, ids are resolved again each time,
//! so memory stays bounded).

use std::borrow::Cow;
use std::collections::HashMap;

use ada_atf::{Manifest, StreamNames};
use ada_symbols::{Module, Problem, Resolved, Symbolizer};

/// Distinct (process, function id) resolutions [`Namer`] keeps.
pub const MAX_RESOLVED: usize = 1 << 20;

/// What a [`Namer`] found, over the distinct ids it resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamerStats {
    /// Ids named with a function name.
    pub named: u64,
    /// Ids in a module that has no symbol for them (stripped): shown as `module+0x<offset>`.
    pub no_symbol: u64,
    /// Ids in a module whose file cannot be read now, or changed since the run.
    pub unreadable: u64,
    /// The first reason a module could not be used.
    pub first_problem: Option<String>,
    /// Ids of processes with recorded modules that lie in none of them.
    pub outside: u64,
}

/// Resolves function ids to names through the trace's recorded modules (see the
/// [module docs](self)).
#[derive(Debug, Default)]
pub struct Namer {
    by_pid: HashMap<u32, Vec<Module>>,
    symbolizer: Symbolizer,
    resolved: HashMap<(u32, u64), Option<Resolved>>,
    /// The last resolution not kept (past [`MAX_RESOLVED`]).
    overflow: Option<Resolved>,
    stats: NamerStats,
}

impl Namer {
    /// A namer for the modules `manifest` lists (none without a manifest).
    pub fn new(manifest: Option<&Manifest>) -> Self {
        let mut by_pid: HashMap<u32, Vec<Module>> = HashMap::new();
        for m in manifest
            .map(|m| m.loaded_modules.as_slice())
            .unwrap_or_default()
        {
            let mut module = Module::new(&m.path, m.start, m.end, m.file_offset);
            if let Some(id) = m.build_id.as_deref().and_then(ada_symbols::parse_hex) {
                module = module.with_build_id(id);
            }
            by_pid.entry(m.pid).or_default().push(module);
        }
        Namer {
            by_pid,
            ..Namer::default()
        }
    }

    /// Whether the trace recorded any module.
    pub fn has_modules(&self) -> bool {
        !self.by_pid.is_empty()
    }

    /// Modules recorded (mappings), and the processes they belong to.
    pub fn module_counts(&self) -> (usize, usize) {
        (self.by_pid.values().map(Vec::len).sum(), self.by_pid.len())
    }

    /// What was resolved so far.
    pub fn stats(&self) -> &NamerStats {
        &self.stats
    }

    /// How naming went, in one sentence (`None` for a trace without recorded modules):
    /// `2 with a function name, 1 without one (no symbol in the module: stripped?), shown as
    /// module+offset, …`. Module paths and reasons in it come from the trace: escape it
    /// before it reaches a terminal.
    pub fn summary(&self) -> Option<String> {
        if !self.has_modules() {
            return None;
        }
        let s = &self.stats;
        let mut text = format!("{} with a function name", s.named);
        if s.no_symbol > 0 {
            text.push_str(&format!(
                ", {} without one (no symbol in the module: stripped?), shown as module+offset",
                s.no_symbol
            ));
        }
        if s.unreadable > 0 {
            text.push_str(&format!(
                ", {} in modules that cannot be used, shown as module+offset",
                s.unreadable
            ));
            if let Some(p) = &s.first_problem {
                text.push_str(&format!(" ({p})"));
            }
        }
        if s.outside > 0 {
            text.push_str(&format!(
                ", {} outside every module, shown as addresses",
                s.outside
            ));
        }
        Some(text)
    }

    /// The process whose modules name thread `thread_id`'s ids: the thread's pid, or the only
    /// process with modules when the trace does not say.
    fn pid_of(&self, thread_id: i32, names: &StreamNames) -> Option<u32> {
        match names.thread(thread_id).and_then(|t| t.pid) {
            Some(pid) => Some(pid),
            None if self.by_pid.len() == 1 => self.by_pid.keys().next().copied(),
            None => None,
        }
    }

    /// Whether `function_id` needs this namer: no name in the event (`symbol`) or the trace.
    fn unnamed(symbol: &str, function_id: u64, names: &StreamNames) -> bool {
        symbol.is_empty()
            && function_id != 0
            && names
                .symbol(function_id)
                .is_none_or(|s| s.symbol.is_empty())
    }

    /// The process and resolution of thread `thread_id`'s unnamed `function_id` (`None` when
    /// it has a name in the trace, or its process has no recorded modules; `(pid, None)` when
    /// it lies in none of the process's modules).
    pub fn resolve(
        &mut self,
        symbol: &str,
        function_id: u64,
        thread_id: i32,
        names: &StreamNames,
    ) -> Option<(u32, Option<&Resolved>)> {
        if !self.has_modules() || !Self::unnamed(symbol, function_id, names) {
            return None;
        }
        let pid = self.pid_of(thread_id, names)?;
        let key = (pid, function_id);
        if !self.resolved.contains_key(&key) {
            let modules = self.by_pid.get(&pid)?;
            let r = self.symbolizer.symbolize(modules, function_id);
            self.count(r.as_ref());
            if self.resolved.len() >= MAX_RESOLVED {
                // Not kept: resolved again next time (the module files stay cached).
                self.overflow = r;
                return Some((pid, self.overflow.as_ref()));
            }
            self.resolved.insert(key, r);
        }
        Some((pid, self.resolved.get(&key).and_then(Option::as_ref)))
    }

    /// Counts a new resolution in the stats.
    fn count(&mut self, r: Option<&Resolved>) {
        match r {
            None => self.stats.outside += 1,
            Some(found) => match &found.problem {
                None => self.stats.named += 1,
                Some(Problem::NoSymbol) => self.stats.no_symbol += 1,
                Some(p) => {
                    self.stats.unreadable += 1;
                    if self.stats.first_problem.is_none() {
                        self.stats.first_problem = Some(p.to_string());
                    }
                }
            },
        }
    }

    /// The name to show for an event's function: the event's symbol, else the trace's name for
    /// its id, else the resolved function name or `module+0x<offset>`, else (a process with
    /// recorded modules) the hex address, else `fn#<id>` (or the event's address when the id is 0),
    /// as before.
    pub fn name<'a>(
        &mut self,
        symbol: &'a str,
        function_id: u64,
        address: u64,
        thread_id: i32,
        names: &'a StreamNames,
    ) -> Cow<'a, str> {
        match self.resolve(symbol, function_id, thread_id, names) {
            Some((_, Some(r))) => Cow::Owned(r.label()),
            Some((_, None)) => Cow::Owned(format!("0x{function_id:x}")),
            None => crate::inspect::function_name(symbol, function_id, address, names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ada_atf::ModuleEntry;

    fn manifest_with(modules: Vec<ModuleEntry>) -> Manifest {
        let text = r#"{"os":"linux","arch":"x86_64","pid":7,"sessionId":1,"timeStartNs":1,
            "timeEndNs":2,"eventCount":0,"bytesWritten":0,"modules":[]}"#;
        let mut m = Manifest::from_json_slice(text.as_bytes()).unwrap();
        m.loaded_modules = modules;
        m
    }

    #[test]
    fn names_fall_back_in_order() {
        let m = manifest_with(vec![ModuleEntry {
            pid: 7,
            path: "/nonexistent/libgone.so".into(),
            start: 0x10_000,
            end: 0x20_000,
            file_offset: 0x1000,
            build_id: None,
            deleted: false,
        }]);
        let mut names = StreamNames::new(Some(&m));
        names.observe(&ada_atf::EventRef::symbol_def(0, 5, "named", 0, "").to_event(1));
        let mut n = Namer::new(Some(&m));
        assert!(n.has_modules());
        assert_eq!(n.module_counts(), (1, 1));
        // A name in the event or the trace wins; ids 0 are not addresses.
        assert_eq!(n.name("f", 0x10_010, 0, 1, &names), "f");
        assert_eq!(n.name("", 5, 0, 1, &names), "named");
        assert_eq!(n.name("", 0, 0x44, 1, &names), "0x44");
        // In a module that cannot be read: module+offset from its base (0x10000 - 0x1000).
        assert_eq!(n.name("", 0x10_010, 0, 1, &names), "libgone.so+0x1010");
        // In no module of a process with modules: the hex address.
        assert_eq!(n.name("", 0x99_999, 0, 1, &names), "0x99999");
        let s = n.stats();
        assert_eq!(
            (s.named, s.no_symbol, s.unreadable, s.outside),
            (0, 0, 1, 1)
        );
        assert!(s.first_problem.as_deref().unwrap().contains("cannot read"));
        // Cached: counted once.
        let _ = n.name("", 0x10_010, 0, 1, &names);
        assert_eq!(n.stats().unreadable, 1);
        // Without modules, as before.
        let mut plain = Namer::new(None);
        assert_eq!(plain.name("", 8, 0, 1, &names), "fn#8");
    }
}
