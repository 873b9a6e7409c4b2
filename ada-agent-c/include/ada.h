/*
 * ada.h: the C ABI of the ADA tracer's in-process agent (the ada-agent-c crate).
 *
 * Link with libada_agent_c.so (-lada_agent_c) or libada_agent_c.a (then also -lpthread -ldl
 * -lm), or preload the shared library. Run the program under `ada trace -- ./prog`: the agent
 * attaches to the controller's segment named by the ADA_SHM environment variable on its first
 * call. Without ADA_SHM every function here is a near-free no-op.
 *
 * Recording (ada_enter, ada_exit, ada_message, ada_mark) on a registered thread never blocks,
 * never takes a lock and makes no system call. The exceptions are first uses: the process's
 * first call attaches to the segment (open, mmap; other threads wait for it meanwhile), and a
 * thread's first event registers it, which allocates through the program's malloc (so an
 * instrumented malloc runs; the events it records meanwhile are counted as dropped, and an
 * event recorded by the attaching thread while it attaches is not recorded). An event recorded
 * by a signal handler while the same thread is recording is counted as dropped. Nothing here
 * panics or unwinds.
 *
 * Functions compiled with -finstrument-functions call __cyg_profile_func_enter/exit, which
 * this library provides: each function's entry and exit is recorded with its address as its
 * id (`ada trace --functions -- ./prog` preloads the library for that).
 */
#ifndef ADA_H
#define ADA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The id ada_callsite returns when it registers nothing (untraced process, NULL name). */
#define ADA_NO_ID ((uint64_t)0)

/*
 * Registers `name` (a NUL-terminated string; bytes that are not UTF-8 are shown replaced by
 * U+FFFD) and returns its id: the same name always gives the same id. ADA_NO_ID when the
 * process is not traced or `name` is NULL. Takes a lock and may allocate: call it once per
 * name and keep the id; not from a signal handler, nor in the child of a fork() made while
 * another thread was inside it.
 *
 * The id is the function id the trace shows, unless one of the controller's symbol triggers
 * names the callsite: then its top bit is set (the trigger below it, the function id in the low
 * 47 bits). Pass it back unchanged. An id of your own (not from ada_callsite) must be below
 * 2^63 and is recorded as it is.
 */
uint64_t ada_callsite(const char *name);

/*
 * Records entry into callsite `id` on the calling thread's index lane (and, when a symbol
 * trigger names the callsite, a trigger mark on its detail lane).
 */
void ada_enter(uint64_t id);

/* Records exit from callsite `id` on the calling thread's index lane. */
void ada_exit(uint64_t id);

/*
 * Records a message at callsite `id` on the calling thread's detail lane. `text` is a
 * NUL-terminated string (NULL: empty), cut at 1024 bytes.
 */
void ada_message(uint64_t id, const char *text);

/*
 * Records a mark at callsite `id`: the controller persists the window of detail events around
 * it. `text` (NULL: none) is its message, cut at 1024 bytes.
 */
void ada_mark(uint64_t id, const char *text);

/* Publishes the calling thread's counters now (also done at ring swaps and thread exit). */
void ada_flush(void);

/* 1 when the process is traced (the agent attached to ADA_SHM's segment), else 0. */
int ada_enabled(void);

/* The -finstrument-functions hooks (not called directly). */
void __cyg_profile_func_enter(void *function, void *call_site);
void __cyg_profile_func_exit(void *function, void *call_site);

#ifdef __cplusplus
}
#endif

#endif /* ADA_H */
