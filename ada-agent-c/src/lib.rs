//! `ada-agent-c`: the ADA tracer's in-process agent ([`ada_agent`]) for C and C++ programs.
//!
//! What it is:
//! - A C ABI over the global agent, built as a shared library (`libada_agent_c.so`) and a
//!   static one (`libada_agent_c.a`), declared by the hand-written header `include/ada.h`:
//!   [`ada_callsite`] registers a name once and returns its id; [`ada_enter`] / [`ada_exit`]
//!   record entry and exit on the calling thread's index lane; [`ada_message`] and
//!   [`ada_mark`] record a message or a mark on its detail lane; [`ada_flush`] publishes the
//!   thread's counters; [`ada_enabled`] says whether the process is traced. Each is the Rust
//!   API's call ([`ada_agent::enter_word`], [`ada_agent::exit_word`],
//!   [`ada_agent::message_word`], [`ada_agent::mark_word`], [`ada_agent::flush`]) with the same
//!   semantics and costs: the agent attaches from `ADA_SHM` on first use, registers each thread
//!   lazily, and without `ADA_SHM` every call is a near-free no-op.
//! - The `-finstrument-functions` hooks [`__cyg_profile_func_enter`] and
//!   [`__cyg_profile_func_exit`]: a program compiled with `-finstrument-functions` and run with
//!   this library preloaded (`ada trace --functions -- ./prog`, which sets `LD_PRELOAD`) or
//!   linked to it records every function entry and exit on the index lane, the function's
//!   address as its id ([`ada_agent::enter_id`] / [`ada_agent::exit_id`]). The hot path is the
//!   agent's: one thread-local load, a clock read and a 32-byte store; no allocation, no lock,
//!   no system call.
//!
//! What it is not: it names nothing (addresses are turned into names after the run, by the
//! tools that read the trace, never in the traced process), and it adds no guarantee beyond the
//! Rust agent's. In particular:
//! - Re-entrancy and signals: an event recorded by a signal handler (or any code the recording
//!   call itself runs) while the same thread is recording is counted as dropped; one recorded
//!   while the thread is attaching the agent (its first event) is not recorded at all. A thread's
//!   first event registers it, which allocates: a handler that interrupts `malloc` and records
//!   the thread's very first event can deadlock, as with the Rust agent.
//! - Thread start and exit: events of a thread whose agent storage is already torn down (code
//!   run by later thread-exit destructors, `atexit` handlers after `main` returned) are counted
//!   as dropped (`no_slot`), never written to freed memory. Events before `main` (constructors)
//!   are recorded like any other: the agent attaches on the first one.
//! - Panics: no call here panics on any input, and none may unwind into C (a Rust panic in an
//!   `extern "C"` function aborts the process instead).
//! - Strings: `ada_callsite`, `ada_message` and `ada_mark` read NUL-terminated strings; a
//!   pointer that is not one is undefined behaviour, as for any C function taking a string.
//!   `NULL` is allowed (see each function); bytes that are not UTF-8 are accepted.
//!
//! ```c
//! #include <ada.h>
//!
//! static uint64_t parse_id;
//!
//! int parse(const char *s) {
//!     ada_enter(parse_id);
//!     int n = (int)strlen(s);
//!     ada_exit(parse_id);
//!     return n;
//! }
//!
//! int main(void) {
//!     parse_id = ada_callsite("parse"); // once; 0 when untraced (recording is then a no-op)
//!     return parse("abc") == 3 ? 0 : 1;
//! }
//! ```
//!
//! The Rust items below are the same functions, for Rust programs that want to call them
//! directly (they are `unsafe` where they read C strings).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Mutex;

/// The id [`ada_callsite`] returns when it registers nothing: the process is not traced, or the
/// name is `NULL`. Recording with it is a no-op when untraced; in a traced process it records
/// function id 0, which names nothing.
pub const ADA_NO_ID: u64 = 0;

/// The names [`ada_callsite`] registered, by their bytes: each name's callsite word.
static CALLSITES: Mutex<Option<HashMap<Box<[u8]>, u64>>> = Mutex::new(None);

/// Registers `name` as a callsite (once per process: the same name always returns the same id)
/// and returns its id, to pass to [`ada_enter`], [`ada_exit`], [`ada_message`] and
/// [`ada_mark`]. The id is the function id the trace shows, unless a symbol trigger fires for
/// the name: then its top bit is set, the trigger in the bits below it, and the function id in
/// its low 47 bits (pass it back unchanged).
///
/// Returns [`ADA_NO_ID`] (0) when the process is not traced or `name` is `NULL`. A name that is
/// not UTF-8 is registered with each invalid sequence replaced by U+FFFD (its id is still its
/// own: the same bytes give the same id). Takes a process-wide lock and may allocate: call it
/// once per name (at start-up, say) and keep the id; never from a signal handler, nor in the
/// child of a `fork` made while another thread was inside it.
///
/// # Safety
///
/// `name` is `NULL` or points to a NUL-terminated string that stays valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ada_callsite(name: *const c_char) -> u64 {
    if name.is_null() || !ada_agent::is_enabled() {
        return ADA_NO_ID;
    }
    // SAFETY: `name` is not null, and the caller promises a NUL-terminated string that stays
    // valid for the call.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    // A poisoned lock only means another registration panicked (nothing here does); the map is
    // still a valid map of registered names.
    let mut guard = CALLSITES.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(&word) = map.get(bytes) {
        return word;
    }
    let word = ada_agent::register_callsite(&String::from_utf8_lossy(bytes), 0);
    if word != ADA_NO_ID {
        map.insert(bytes.into(), word);
    }
    word
}

/// Records entry into the callsite `id` (from [`ada_callsite`], or any number below 2⁶³ the
/// program maps to names itself, recorded as it is) on the calling thread's index lane; when a
/// symbol trigger fires for the callsite, also writes a trigger mark on its detail lane.
#[unsafe(no_mangle)]
pub extern "C" fn ada_enter(id: u64) {
    ada_agent::enter_word(id);
}

/// Records exit from the callsite `id` on the calling thread's index lane.
#[unsafe(no_mangle)]
pub extern "C" fn ada_exit(id: u64) {
    ada_agent::exit_word(id);
}

/// Records a free-form message at the callsite `id` on the calling thread's detail lane (a
/// `NULL` text is an empty message; a text over 1024 bytes is cut there). Message triggers are
/// matched against the text, as by the Rust agent's `message`.
///
/// # Safety
///
/// `text` is `NULL` or points to a NUL-terminated string that stays valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ada_message(id: u64, text: *const c_char) {
    // SAFETY: the caller's contract, passed on.
    ada_agent::message_word(id, unsafe { text_bytes(text) });
}

/// Records a mark at the callsite `id` (the moment that matters: the controller persists the
/// window around it) with `text` as its message (`NULL`: none).
///
/// # Safety
///
/// `text` is `NULL` or points to a NUL-terminated string that stays valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ada_mark(id: u64, text: *const c_char) {
    // SAFETY: the caller's contract, passed on.
    ada_agent::mark_word(id, unsafe { text_bytes(text) });
}

/// Publishes the calling thread's counters now (they are also published at every ring swap and
/// at thread exit). Does nothing for a thread that has recorded nothing.
#[unsafe(no_mangle)]
pub extern "C" fn ada_flush() {
    ada_agent::flush();
}

/// 1 when the process is traced (the agent attached to the segment `ADA_SHM` names), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn ada_enabled() -> c_int {
    c_int::from(ada_agent::is_enabled())
}

/// The `-finstrument-functions` entry hook: records entry into the function at `function`
/// (its address is its id) on the calling thread's index lane. `call_site` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn __cyg_profile_func_enter(function: *mut c_void, call_site: *mut c_void) {
    let _ = call_site;
    ada_agent::enter_id(function as u64);
}

/// The `-finstrument-functions` exit hook: records exit from the function at `function`.
#[unsafe(no_mangle)]
pub extern "C" fn __cyg_profile_func_exit(function: *mut c_void, call_site: *mut c_void) {
    let _ = call_site;
    ada_agent::exit_id(function as u64);
}

/// The bytes of the NUL-terminated `text`, empty for `NULL`.
///
/// # Safety
///
/// `text` is `NULL` or points to a NUL-terminated string that stays valid for `'a`.
unsafe fn text_bytes<'a>(text: *const c_char) -> &'a [u8] {
    if text.is_null() {
        return &[];
    }
    // SAFETY: not null, and the caller promises a NUL-terminated string valid for `'a`.
    unsafe { CStr::from_ptr(text) }.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Untraced (the test process has no `ADA_SHM`): every call is a no-op, `ada_callsite`
    /// answers `ADA_NO_ID` for any name, NULL texts and names are fine, and nothing panics.
    #[test]
    fn untraced_calls_are_no_ops_and_null_is_allowed() {
        assert!(std::env::var_os(ada_agent::ENV_SEGMENT).is_none());
        assert_eq!(ada_enabled(), 0);
        // SAFETY: NULL and NUL-terminated literals, as the contract allows.
        unsafe {
            assert_eq!(ada_callsite(std::ptr::null()), ADA_NO_ID);
            assert_eq!(ada_callsite(c"parse".as_ptr()), ADA_NO_ID);
            assert_eq!(ada_callsite(c"bad\xff".as_ptr()), ADA_NO_ID);
            ada_message(1, std::ptr::null());
            ada_mark(1, c"text".as_ptr());
        }
        ada_enter(1);
        ada_exit(1);
        ada_enter(u64::MAX);
        ada_exit(u64::MAX);
        __cyg_profile_func_enter(std::ptr::null_mut(), std::ptr::null_mut());
        __cyg_profile_func_exit(std::ptr::null_mut(), std::ptr::null_mut());
        ada_flush();
    }

    #[test]
    fn text_bytes_reads_up_to_the_nul_and_null_is_empty() {
        // SAFETY: NULL and a NUL-terminated literal.
        unsafe {
            assert_eq!(text_bytes(std::ptr::null()), b"");
            assert_eq!(text_bytes(c"a\xffb".as_ptr()), b"a\xffb");
        }
    }
}
