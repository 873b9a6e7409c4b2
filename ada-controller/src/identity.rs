//! Thread identities the controller can verify (see [`ProcessTrust`]).
//!
//! A slot's owner fields are written by the traced side and can be rewritten by any process
//! of the user, so they are claims. [`Verifier::check`] accepts a claim only when the pid is a
//! trusted process or descends from one (the `/proc/<pid>/stat` parent chain, bounded) and the
//! task `/proc/<pid>/task/<tid>` exists; it reads a thread's name only for an accepted claim.

use crate::sink::ProcessTrust;

/// What the drain concluded about a claimed (pid, tid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A trusted process's live thread; its name, if `/proc` had one.
    Verified(Option<String>),
    /// Could not be checked: the claimed process or thread is already gone (a short-lived
    /// thread, or a process that ended, before the drain looked). Not evidence of tampering.
    Gone,
    /// Refuted: the claimed process exists and is not trusted, or the claim is impossible (pid
    /// 0, a tid beyond the kernel's range).
    Refuted,
    /// Not checked: the verifier trusts no process (a [`crate::Drainer`] not told whom to
    /// trust, or an empty [`ProcessTrust::Processes`]). Unverified, and not evidence of anything.
    Unchecked,
}

/// The resolved trust: roots (and their descendants), or anyone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verifier {
    /// `None`: any process.
    roots: Option<Vec<u32>>,
}

impl Verifier {
    /// The verifier for `trust`, `session_pid` being the session's process.
    pub(crate) fn new(trust: &ProcessTrust, session_pid: u32) -> Self {
        let roots = match trust {
            ProcessTrust::SessionProcess => {
                let mut roots: Vec<u32> = [session_pid].into_iter().filter(|&p| p != 0).collect();
                // A descendant whose parent exited (a background job, a double fork) is
                // reparented to the nearest child subreaper. When this process is one, as
                // `ada trace` makes itself before it spawns the command, the session's orphans
                // are its descendants: trust them too. Otherwise they go to init, and their
                // claims are refuted.
                if !roots.is_empty()
                    && rustix::process::child_subreaper().is_ok_and(|s| s.is_some())
                {
                    roots.push(std::process::id());
                }
                Some(roots)
            }
            ProcessTrust::Processes(pids) => {
                Some(pids.iter().copied().filter(|&p| p != 0).collect())
            }
            ProcessTrust::AnyProcess => None,
        };
        Verifier { roots }
    }

    /// A verifier that trusts nobody (a [`crate::Drainer`] made without a session).
    pub(crate) fn nobody() -> Self {
        Verifier {
            roots: Some(Vec::new()),
        }
    }

    /// Checks the claim that thread `tid` of process `pid` registered.
    pub(crate) fn check(&self, pid: u32, tid: u64) -> Verdict {
        // Linux pids and tids are positive and at most 2^22 (PID_MAX_LIMIT); anything else is
        // not a thread, and is never turned into a /proc path.
        const PID_MAX_LIMIT: u64 = 1 << 22;
        if pid == 0 || u64::from(pid) > PID_MAX_LIMIT || tid == 0 || tid > PID_MAX_LIMIT {
            return Verdict::Refuted;
        }
        if self.roots.as_ref().is_some_and(Vec::is_empty) {
            return Verdict::Unchecked;
        }
        match self.trusted(pid) {
            Some(true) => {}
            Some(false) => return Verdict::Refuted,
            None => return Verdict::Gone,
        }
        let task = format!("/proc/{pid}/task/{tid}");
        if std::fs::symlink_metadata(&task).is_err() {
            return Verdict::Gone;
        }
        Verdict::Verified(thread_name(&task))
    }

    /// Whether process `pid` is one whose threads this verifier accepts (a trusted process or
    /// a descendant; any existing process for [`ProcessTrust::AnyProcess`]); `false` when it
    /// cannot be told, or for an impossible pid.
    pub(crate) fn trusts_process(&self, pid: u32) -> bool {
        const PID_MAX_LIMIT: u32 = 1 << 22;
        pid != 0
            && pid <= PID_MAX_LIMIT
            && !self.roots.as_ref().is_some_and(Vec::is_empty)
            && self.trusted(pid) == Some(true)
    }

    /// Whether `pid` is trusted: `Some(true)` / `Some(false)`, `None` when it cannot be told
    /// (the process, or a link of its parent chain, is gone).
    fn trusted(&self, pid: u32) -> Option<bool> {
        let Some(roots) = &self.roots else {
            return std::fs::symlink_metadata(format!("/proc/{pid}"))
                .ok()
                .map(|_| true);
        };
        let mut p = pid;
        for _ in 0..ProcessTrust::MAX_ANCESTRY {
            if roots.contains(&p) {
                return Some(true);
            }
            if p <= 1 {
                return Some(false);
            }
            p = parent(p)?;
        }
        Some(false)
    }
}

/// Whether thread `tid` of process `pid` still exists (its `/proc/<pid>/task/<tid>`); an id no
/// Linux thread can have (0, above `PID_MAX_LIMIT`) does not.
pub(crate) fn task_exists(pid: u32, tid: u64) -> bool {
    const PID_MAX_LIMIT: u64 = 1 << 22;
    pid != 0
        && u64::from(pid) <= PID_MAX_LIMIT
        && tid != 0
        && tid <= PID_MAX_LIMIT
        && std::fs::symlink_metadata(format!("/proc/{pid}/task/{tid}")).is_ok()
}

/// The parent of `pid` from `/proc/<pid>/stat` (`pid (comm) state ppid ...`; the comm may
/// hold spaces and parentheses, so the fields are counted after the last `)`).
fn parent(pid: u32) -> Option<u32> {
    let stat = read_small(&format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// `<task>/comm` without its newline, if not empty.
fn thread_name(task: &str) -> Option<String> {
    let comm = read_small(&format!("{task}/comm"))?;
    let name = comm.trim_end_matches('\n');
    (!name.is_empty()).then(|| name.to_owned())
}

/// A small `/proc` file (at most 4 KiB are read).
fn read_small(path: &str) -> Option<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(512);
    file.take(4096).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_tid() -> u64 {
        rustix::thread::gettid().as_raw_nonzero().get() as u64
    }

    #[test]
    fn own_threads_verify_and_strangers_do_not() {
        let me = std::process::id();
        let session = Verifier::new(&ProcessTrust::SessionProcess, me);
        assert!(matches!(
            session.check(me, own_tid()),
            Verdict::Verified(Some(_))
        ));
        // pid 1 exists and is not a descendant of this test.
        assert_eq!(session.check(1, 1), Verdict::Refuted);
        assert_eq!(session.check(0, 5), Verdict::Refuted);
        assert_eq!(session.check(me, u64::MAX), Verdict::Refuted);
        // A task that does not exist in a trusted process cannot be verified.
        assert_eq!(session.check(me, (1 << 22) - 1), Verdict::Gone);
        // Trusting the parent makes this process a descendant.
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
        let ancestors = Verifier::new(&ProcessTrust::Processes(vec![parent]), 0);
        assert!(matches!(
            ancestors.check(me, own_tid()),
            Verdict::Verified(_)
        ));
        assert_eq!(Verifier::nobody().check(me, own_tid()), Verdict::Unchecked);
        assert_eq!(Verifier::nobody().check(1, 1), Verdict::Unchecked);
        // No session pid: nobody to trust, so nothing is checked (nor counted as corrupt).
        assert_eq!(
            Verifier::new(&ProcessTrust::SessionProcess, 0).check(me, own_tid()),
            Verdict::Unchecked
        );
        let any = Verifier::new(&ProcessTrust::AnyProcess, 0);
        assert!(matches!(any.check(me, own_tid()), Verdict::Verified(_)));
    }
}
