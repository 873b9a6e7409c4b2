//! The controller records the traced process's loaded modules (`/proc/<pid>/maps`) and the
//! ATF sink writes them into the manifest's `loadedModules` (their paths also in `modules`),
//! with one drain worker and with several; a process the session does not trust is not read.

use ada_controller::{ControllerBuilder, ProcessTrust, SessionInfo};

/// Traces this process (its threads record nothing: only the modules matter) and returns the
/// manifest.
fn trace_self(workers: usize, trust: ProcessTrust) -> ada_atf::Manifest {
    let out = tempfile::tempdir().unwrap();
    let controller = ControllerBuilder::new()
        .capacity(4)
        .drain_threads(workers)
        .output_dir(out.path())
        .create()
        .unwrap();
    let me = std::process::id();
    let running = controller
        .start_default(SessionInfo::new(me).with_trust(trust))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let report = running.stop(Some(0)).unwrap();
    let dir = report.output.as_ref().unwrap().dir.clone().unwrap();
    ada_atf::Manifest::read(&dir.join("trace.json")).unwrap()
}

fn check_own_modules(m: &ada_atf::Manifest) {
    let me = std::process::id();
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let exe = exe.to_str().unwrap();
    let own: Vec<_> = m.loaded_modules.iter().filter(|l| l.path == exe).collect();
    assert!(!own.is_empty(), "{:?}", m.loaded_modules);
    for l in &own {
        assert_eq!(l.pid, me);
        assert!(l.start < l.end && l.base() <= l.start);
        let id = l
            .build_id
            .as_deref()
            .expect("the test binary has a build id");
        assert!(
            id.len() >= 16
                && id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{id}"
        );
        assert!(!l.deleted);
    }
    // This function's own code lies in one of them.
    let here = check_own_modules as *const () as usize as u64;
    assert!(own.iter().any(|l| l.contains(here)), "{here:#x} in {own:?}");
    // Every module once, and its path in `modules` too.
    let mut keys: Vec<_> = m
        .loaded_modules
        .iter()
        .map(|l| (l.pid, l.path.clone(), l.start))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "no module twice");
    assert!(m.modules.iter().any(|p| p == exe), "{:?}", m.modules);
    let text = m.to_json_pretty();
    assert!(text.contains("\"loadedModules\"") && text.contains("\"fileOffset\""));
}

#[test]
fn one_drain_worker_records_the_traced_process_modules() {
    check_own_modules(&trace_self(1, ProcessTrust::SessionProcess));
}

#[test]
fn several_drain_workers_record_them_too() {
    check_own_modules(&trace_self(3, ProcessTrust::SessionProcess));
}

#[test]
fn a_process_the_session_does_not_trust_is_not_read() {
    let m = trace_self(1, ProcessTrust::Processes(Vec::new()));
    assert!(m.loaded_modules.is_empty(), "{:?}", m.loaded_modules);
    assert!(!m.to_json_pretty().contains("loadedModules"));
}
