//! Whether another process is there: the checks every part of ADA makes about the processes a
//! segment names (its creator, its drain holder, the owners of its slots), in one place.
//!
//! A pid read from a segment is untrusted: anything that is not a positive `i32` is no
//! process. Nothing here follows or opens anything but `/proc/<pid>/stat`.

/// Whether process `pid` exists (a signal-0 probe; a process of another user, which refuses the
/// probe, exists). A zombie (exited, not yet reaped) exists too: see [`running`].
pub fn exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Whether process `pid` has exited and waits to be reaped: its `/proc/<pid>/stat` state is
/// `Z` (zombie) or `X` (dead). Unknown (no such file, unreadable) is `false`.
pub fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the comm may hold spaces and parentheses, so the state is the
    // first field after the last `)`.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_ascii_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// Whether process `pid` exists and has not exited: [`exists`] and not [`is_zombie`].
pub fn running(pid: u32) -> bool {
    exists(pid) && !is_zombie(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_impossible_pids_do_not() {
        assert!(running(std::process::id()));
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert!(!exists(pid) && !running(pid), "{pid}");
        }
    }

    #[test]
    fn an_unreaped_child_exists_as_a_zombie_and_a_reaped_one_does_not() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Wait for it to exit without reaping it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "the child exited");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(exists(pid) && !running(pid));
        child.wait().unwrap();
        assert!(!exists(pid));
    }
}
