//! The modules a traced process has loaded, read from `/proc/<pid>/maps`, so that addresses in
//! the trace (function ids of functions traced by address) can be named after the run.
//!
//! A [`Module`] is one file-backed executable mapping: the file's path, the mapping's address
//! range and file offset (its [`base`](Module::base), the address file offset 0 would have, is
//! `start - file_offset`) and the file's ELF build id (the `.note.gnu.build-id` note, read with
//! the `object` crate without mapping or reading the whole file; `None` when the file has
//! none, is gone, is not ELF, or is no longer the file that was mapped: its device and inode
//! differ from the mapping's).
//!
//! [`ModuleReader::read`] reads one process's modules; it caches build ids per (device, inode,
//! path), so a re-read of an unchanged process costs one read of its `maps` file. Everything it
//! reads is untrusted: a line that does not parse is skipped, a file that cannot be read is
//! recorded without a build id, and sizes are bounded ([`MAX_MAPS_BYTES`],
//! [`MAX_MODULES_PER_PROCESS`]); nothing here panics on what it reads.
//!
//! During a session the controller runs a watcher thread (`ada-modules`) that reads each
//! traced process (the session's process from the start, and every pid that owns a registry
//! slot, which the drain loop looks for every 100 ms, when the session trusts it: see
//! [`ProcessTrust`](crate::ProcessTrust)) when the drain first sees it,
//! again after 10, 20, 40, … ms while the dynamic loader is at work, then every second while
//! it lives (so libraries loaded with `dlopen` are caught), and once more before the final
//! drain. New modules reach the sink as [`Sink::modules`](crate::Sink::modules), between
//! chunks, on the drain thread; the watcher itself never blocks the drain. A library a
//! process loads and unloads between two reads, or loads after the last read before it exits,
//! is not seen, nor is a process that ends before the drain loop sees it: polling is all
//! `/proc` offers. At most [`MAX_PROCESSES`] processes are followed per session.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use crate::identity::Verifier;

/// The longest `/proc/<pid>/maps` read: 16 MiB (a process with that many mappings is cut off
/// there; what was read is used).
pub const MAX_MAPS_BYTES: u64 = 16 << 20;

/// The most modules recorded per process (the rest are ignored).
pub const MAX_MODULES_PER_PROCESS: usize = 8192;

/// The most processes the watcher follows in one session.
pub const MAX_PROCESSES: usize = 1024;

/// The longest build id kept (GNU build ids are 20 bytes; anything past this is not one).
const MAX_BUILD_ID: usize = 64;

/// Build ids a [`ModuleReader`] caches before it forgets them all.
const MAX_CACHED_IDS: usize = 16_384;
/// While the final read runs, how often [`ModuleWatch::finish`] gives the drain a turn.
const FINAL_SLICE: Duration = Duration::from_millis(1);

/// One file-backed executable mapping of a process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Module {
    /// The mapped file's path, as the kernel shows it (a `" (deleted)"` suffix removed:
    /// see [`deleted`](Module::deleted)).
    pub path: String,
    /// First address of the mapping.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// File offset the mapping starts at.
    pub file_offset: u64,
    /// The file's ELF build id, if it has one and could be read.
    pub build_id: Option<Vec<u8>>,
    /// The file was deleted (or replaced) after it was mapped.
    pub deleted: bool,
}

impl Module {
    /// A module (for sinks' own tests; the reader makes the real ones).
    pub fn new(path: impl Into<String>, start: u64, end: u64, file_offset: u64) -> Self {
        Module {
            path: path.into(),
            start,
            end,
            file_offset,
            build_id: None,
            deleted: false,
        }
    }

    /// The address file offset 0 would be mapped at: `start - file_offset` (wrapping).
    pub fn base(&self) -> u64 {
        self.start.wrapping_sub(self.file_offset)
    }

    /// Bytes mapped.
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// One line of `/proc/<pid>/maps` that describes a file-backed executable mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// File offset.
    pub file_offset: u64,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Inode.
    pub inode: u64,
    /// Path (without a `" (deleted)"` suffix).
    pub path: String,
    /// The line ended in `" (deleted)"`.
    pub deleted: bool,
}

/// Parses one `maps` line; `None` unless it is a well-formed, file-backed (an absolute path
/// and a non-zero inode), executable (`x`) mapping with `start < end`.
pub fn parse_maps_line(line: &str) -> Option<MapsEntry> {
    // start-end perms offset major:minor inode [path]; the path may hold spaces.
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        (!f.is_empty()).then_some(f)
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let dev = field()?;
    let inode = field()?;
    let path = rest.trim_start_matches(' ');
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    if perms.as_bytes().get(2) != Some(&b'x') || start >= end {
        return None;
    }
    let file_offset = u64::from_str_radix(offset, 16).ok()?;
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    let inode: u64 = inode.parse().ok()?;
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(MapsEntry {
        start,
        end,
        file_offset,
        major,
        minor,
        inode,
        path: path.to_owned(),
        deleted,
    })
}

/// Why [`ModuleReader::read`] found nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModulesError {
    /// The pid is 0 or beyond the kernel's range: no `/proc` path is made of it.
    #[error("{0} is not a process id")]
    BadPid(u32),
    /// `/proc/<pid>/maps` could not be read (the process is gone, or not ours).
    #[error("cannot read /proc/{pid}/maps: {source}")]
    Maps {
        /// The process.
        pid: u32,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// Reads processes' modules, caching build ids (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct ModuleReader {
    ids: HashMap<(u32, u32, u64, String), Option<Vec<u8>>>,
}

impl ModuleReader {
    /// A reader with nothing cached.
    pub fn new() -> Self {
        ModuleReader::default()
    }

    /// The file-backed executable mappings of process `pid`, in address order, at most
    /// [`MAX_MODULES_PER_PROCESS`].
    pub fn read(&mut self, pid: u32) -> Result<Vec<Module>, ModulesError> {
        const PID_MAX_LIMIT: u32 = 1 << 22;
        if pid == 0 || pid > PID_MAX_LIMIT {
            return Err(ModulesError::BadPid(pid));
        }
        let maps = read_maps(pid).map_err(|source| ModulesError::Maps { pid, source })?;
        let text = String::from_utf8_lossy(&maps);
        let mut modules = Vec::new();
        for entry in text.lines().filter_map(parse_maps_line) {
            if modules.len() >= MAX_MODULES_PER_PROCESS {
                break;
            }
            let build_id = if entry.deleted {
                None
            } else {
                self.build_id(&entry)
            };
            modules.push(Module {
                path: entry.path,
                start: entry.start,
                end: entry.end,
                file_offset: entry.file_offset,
                build_id,
                deleted: entry.deleted,
            });
        }
        Ok(modules)
    }

    fn build_id(&mut self, entry: &MapsEntry) -> Option<Vec<u8>> {
        let key = (entry.major, entry.minor, entry.inode, entry.path.clone());
        if let Some(id) = self.ids.get(&key) {
            return id.clone();
        }
        if self.ids.len() >= MAX_CACHED_IDS {
            self.ids.clear();
        }
        let id = build_id_of(entry);
        self.ids.insert(key, id.clone());
        id
    }
}

/// `/proc/<pid>/maps`, at most [`MAX_MAPS_BYTES`].
fn read_maps(pid: u32) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(format!("/proc/{pid}/maps"))?;
    let mut bytes = Vec::with_capacity(16 << 10);
    file.take(MAX_MAPS_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The build id of the file `entry` maps, if the file at its path is still that file (same
/// device and inode), a regular file, ELF, and has one.
fn build_id_of(entry: &MapsEntry) -> Option<Vec<u8>> {
    use object::Object as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&entry.path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    if !meta.file_type().is_file()
        || meta.ino() != entry.inode
        || rustix::fs::major(dev) != entry.major
        || rustix::fs::minor(dev) != entry.minor
    {
        return None;
    }
    // Reads only the headers and the notes it needs.
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache).ok()?;
    let id = parsed.build_id().ok().flatten()?;
    (!id.is_empty() && id.len() <= MAX_BUILD_ID).then(|| id.to_vec())
}

/// What the watcher sends the drain loop.
pub(crate) enum Found {
    /// Modules of a process not reported before.
    Modules(u32, Vec<Module>),
    /// The final read is done.
    Done,
}

enum Request {
    Watch(u32),
    Final,
}

/// When a process is read again after its `reads`-th read: 10 ms, 20 ms, 40 ms, … up to 1 s.
fn reread_after(reads: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(10);
    const EVERY: Duration = Duration::from_secs(1);
    FIRST
        .checked_mul(
            1u32.checked_shl(reads.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .map_or(EVERY, |d| d.min(EVERY))
}

struct Watched {
    reads: u32,
    next: Instant,
    /// Modules reported, by (path, start, end, file offset).
    reported: HashSet<(String, u64, u64, u64)>,
}

/// The watcher thread's side (see the [module docs](self)).
struct Watcher {
    verifier: Verifier,
    reader: ModuleReader,
    processes: HashMap<u32, Watched>,
    /// Pids asked about already (watched, refused or gone): each is looked at once.
    seen: HashSet<u32>,
    found: Sender<Found>,
}

impl Watcher {
    fn run(mut self, requests: &Receiver<Request>) {
        loop {
            let now = Instant::now();
            let wait = self
                .processes
                .values()
                .map(|w| w.next.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(1));
            match requests.recv_timeout(wait) {
                Ok(Request::Watch(pid)) => self.watch(pid),
                Ok(Request::Final) => {
                    let pids: Vec<u32> = self.processes.keys().copied().collect();
                    for pid in pids {
                        self.read(pid);
                    }
                    let _ = self.found.send(Found::Done);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let due: Vec<u32> = self
                .processes
                .iter()
                .filter(|(_, w)| w.next <= now)
                .map(|(&pid, _)| pid)
                .collect();
            for pid in due {
                self.read(pid);
            }
        }
    }

    fn watch(&mut self, pid: u32) {
        if self.seen.len() >= MAX_PROCESSES * 4 || !self.seen.insert(pid) {
            return;
        }
        if self.processes.len() >= MAX_PROCESSES || !self.verifier.trusts_process(pid) {
            return;
        }
        self.processes.insert(
            pid,
            Watched {
                reads: 0,
                next: Instant::now(),
                reported: HashSet::new(),
            },
        );
        self.read(pid);
    }

    /// Reads `pid` and sends what is new; forgets a process that is gone.
    fn read(&mut self, pid: u32) {
        let Ok(modules) = self.reader.read(pid) else {
            self.processes.remove(&pid);
            return;
        };
        let Some(w) = self.processes.get_mut(&pid) else {
            return;
        };
        w.reads = w.reads.saturating_add(1);
        w.next = Instant::now() + reread_after(w.reads);
        let new: Vec<Module> = modules
            .into_iter()
            .filter(|m| {
                w.reported.len() < MAX_MODULES_PER_PROCESS
                    && w.reported
                        .insert((m.path.clone(), m.start, m.end, m.file_offset))
            })
            .collect();
        if !new.is_empty() {
            let _ = self.found.send(Found::Modules(pid, new));
        }
    }
}

/// The drain loop's handle on the watcher thread.
pub(crate) struct ModuleWatch {
    requests: Sender<Request>,
    found: Receiver<Found>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ModuleWatch {
    /// Starts the `ada-modules` thread, trusting what `verifier` trusts; `None` if no thread
    /// could be started (the session then records no modules).
    pub(crate) fn start(verifier: Verifier) -> Option<ModuleWatch> {
        let (requests, asked) = channel();
        let (found_tx, found) = channel();
        let watcher = Watcher {
            verifier,
            reader: ModuleReader::new(),
            processes: HashMap::new(),
            seen: HashSet::new(),
            found: found_tx,
        };
        let thread = std::thread::Builder::new()
            .name("ada-modules".into())
            .spawn(move || watcher.run(&asked))
            .ok()?;
        Some(ModuleWatch {
            requests,
            found,
            thread: Some(thread),
        })
    }

    /// Asks the watcher to follow `pid` (once per pid; cheap to repeat).
    pub(crate) fn watch(&self, pid: u32) {
        let _ = self.requests.send(Request::Watch(pid));
    }

    /// Modules found since the last call, without waiting.
    pub(crate) fn take(&self, mut each: impl FnMut(u32, Vec<Module>)) {
        while let Ok(Found::Modules(pid, modules)) = self.found.try_recv() {
            each(pid, modules);
        }
    }

    /// The final read of every process still watched: waits for it (at most `patience`) and
    /// hands on what it found (`each(Some(..))`); while it waits, `each(None)` every
    /// [`FINAL_SLICE`] (the drain keeps passing meanwhile: threads that still write must get
    /// their rings back). The thread then ends.
    pub(crate) fn finish(
        mut self,
        patience: Duration,
        mut each: impl FnMut(Option<(u32, Vec<Module>)>),
    ) {
        if self.requests.send(Request::Final).is_ok() {
            let deadline = Instant::now() + patience;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.found.recv_timeout(left.min(FINAL_SLICE)) {
                    Ok(Found::Modules(pid, modules)) => each(Some((pid, modules))),
                    Ok(Found::Done) | Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => each(None),
                }
            }
        }
        // Joined only when it is done; one stuck on a file is left to end on its own.
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_or_are_skipped() {
        let e = parse_maps_line(
            "7f12a000-7f12b000 r-xp 00001000 fd:01 1234567    /usr/lib/libx 1.so (deleted)",
        )
        .unwrap();
        assert_eq!(
            (e.start, e.end, e.file_offset),
            (0x7f12a000, 0x7f12b000, 0x1000)
        );
        assert_eq!((e.major, e.minor, e.inode), (0xfd, 1, 1234567));
        assert_eq!(e.path, "/usr/lib/libx 1.so");
        assert!(e.deleted);
        for bad in [
            "",
            "garbage",
            "7f12a000-7f12b000 r--p 00000000 fd:01 12 /usr/lib/libx.so",
            "7f12a000-7f12b000 r-xp 00000000 00:00 0 [vdso]",
            "7f12a000-7f12b000 r-xp 00000000 00:00 0",
            "7f12b000-7f12a000 r-xp 00000000 fd:01 12 /x",
            "zz-7f12b000 r-xp 00000000 fd:01 12 /x",
            "7f12a000-7f12b000 r-xp 0000000g fd:01 12 /x",
            "7f12a000-7f12b000 r-xp 00000000 fd01 12 /x",
            "7f12a000-7f12b000 r-xp 00000000 fd:01 -1 /x",
            "7f12a000-7f12b000 x 00000000 fd:01 12 /x",
            "7f12a000-7f12b000 r-xp 00000000 fd:01 12 relative",
            "7f12a000-ffffffffffffffffff r-xp 00000000 fd:01 12 /x",
        ] {
            assert_eq!(parse_maps_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_has_its_executable_with_a_build_id_and_bad_pids_are_errors() {
        let mut reader = ModuleReader::new();
        let modules = reader.read(std::process::id()).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let own = modules
            .iter()
            .find(|m| std::path::Path::new(&m.path) == exe)
            .expect("the test binary is mapped");
        assert!(own.start < own.end && own.base() <= own.start);
        assert!(own.build_id.is_some(), "rustc links with a build id");
        assert!(modules.windows(2).all(|w| w[0].start < w[1].start));
        assert!(matches!(reader.read(0), Err(ModulesError::BadPid(0))));
        assert!(matches!(
            reader.read(u32::MAX),
            Err(ModulesError::BadPid(_))
        ));
        assert!(matches!(
            reader.read((1 << 22) - 1),
            Err(ModulesError::Maps { .. })
        ));
    }

    #[test]
    fn rereads_back_off_to_a_second() {
        let after: Vec<u64> = (1..10)
            .map(|r| reread_after(r).as_millis() as u64)
            .collect();
        assert_eq!(after, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(reread_after(0), Duration::from_millis(10));
        assert_eq!(reread_after(u32::MAX), Duration::from_secs(1));
    }
}
