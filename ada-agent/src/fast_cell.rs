//! The calling thread's writer cell (`FAST`, see [`crate::tls`]): a const-initialised
//! `Cell<*mut ThreadWriter>` without a destructor, so it is accessible at any point of the
//! thread's life, including its other thread-locals' destructors.
//!
//! By default it is a Rust `thread_local!`. With the `initial-exec-tls` feature (the C library
//! of `ada-agent-c`) it lives in C, in initial-exec TLS (`src/fast_cell.c`): in a shared library
//! a Rust thread-local costs a `__tls_get_addr` call per access, on every recorded event.

use crate::thread::ThreadWriter;
use std::cell::Cell;

/// The cell's type.
pub(crate) type Fast = Cell<*mut ThreadWriter<'static>>;

/// Runs `f` with the calling thread's cell.
#[cfg(not(feature = "initial-exec-tls"))]
#[inline(always)]
pub(crate) fn with_fast<R>(f: impl FnOnce(&Fast) -> R) -> R {
    thread_local! {
        static FAST: Fast = const { Cell::new(core::ptr::null_mut()) };
    }
    FAST.with(f)
}

/// Runs `f` with the calling thread's cell.
#[cfg(feature = "initial-exec-tls")]
#[inline(always)]
pub(crate) fn with_fast<R>(f: impl FnOnce(&Fast) -> R) -> R {
    let cell = cell_address();
    // SAFETY: `Cell<*mut T>` has the layout of `*mut T`, which is that of `void *`; the
    // variable belongs to this thread and is only ever accessed through this function, by this
    // thread, so the shared reference (which cannot leave this call: `Cell` is not `Sync`)
    // aliases no other reference.
    f(unsafe { &*cell.cast::<Fast>() })
}

/// The address of the calling thread's cell: on x86-64, the thread pointer plus the variable's
/// initial-exec offset, read inline (what a C compiler emits for it); elsewhere a call to C.
#[cfg(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
))]
#[inline(always)]
fn cell_address() -> *mut *mut core::ffi::c_void {
    // SAFETY: src/fast_cell.c defines `ada_agent_fast` as a `__thread void *` with exactly this
    // type; only its address is taken (in the `asm!` below), never its value read from Rust.
    unsafe extern "C" {
        /// The cell (src/fast_cell.c), an initial-exec TLS variable.
        static ada_agent_fast: *mut core::ffi::c_void;
    }
    let address: *mut *mut core::ffi::c_void;
    // SAFETY: the initial-exec access sequence of the x86-64 ELF TLS ABI: the variable's offset
    // from the thread pointer (a GOT entry the dynamic linker fills), plus the thread pointer
    // (`%fs:0` holds its own address). It reads the GOT and this thread's control block only,
    // touches no stack and leaves the flags as they are not relied on.
    unsafe {
        core::arch::asm!(
            "mov {a}, qword ptr [rip + {cell}@GOTTPOFF]",
            "add {a}, qword ptr fs:[0]",
            a = out(reg) address,
            cell = sym ada_agent_fast,
            options(pure, readonly, nostack),
        );
    }
    address
}

/// The address of the calling thread's cell, from C.
#[cfg(all(
    feature = "initial-exec-tls",
    not(all(target_arch = "x86_64", target_os = "linux"))
))]
#[inline(always)]
fn cell_address() -> *mut *mut core::ffi::c_void {
    // SAFETY: src/fast_cell.c defines `void **ada_agent_fast_cell(void)` with exactly this
    // signature (no arguments, a pointer to a `void *` returned).
    unsafe extern "C" {
        /// The address of the calling thread's cell (src/fast_cell.c).
        fn ada_agent_fast_cell() -> *mut *mut core::ffi::c_void;
    }
    // SAFETY: `ada_agent_fast_cell` has no preconditions; it returns the address of this
    // thread's `void *` TLS variable, valid (and zero-initialised) for the thread's whole life.
    unsafe { ada_agent_fast_cell() }
}
