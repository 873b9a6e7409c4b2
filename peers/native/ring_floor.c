/*
 * ring_floor.c: the floor of function tracing, for `cargo xtask bench-native`: the cheapest
 * hook that records every entry and exit, a 32-byte record stamped with the time-stamp counter
 * stored into a thread-local ring (overwritten when it wraps; nothing is drained, counted or
 * published). Preloaded (LD_PRELOAD) onto a -finstrument-functions program, it replaces
 * glibc's no-op __cyg_profile_func_enter/exit. A tracer's per-call cost is compared with this.
 */
#include <stdint.h>
#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t ticks(void) { return __rdtsc(); }
#elif defined(__aarch64__)
static inline uint64_t ticks(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
#else
#include <time.h>
static inline uint64_t ticks(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}
#endif

struct record {
    uint64_t ts;
    uint64_t fn;
    uint64_t site;
    uint64_t kind;
};

#define RING_RECORDS 1024 /* 32 KiB, one of ADA's default index rings */

static __thread struct record ring[RING_RECORDS] __attribute__((tls_model("initial-exec")));
static __thread uint32_t pos __attribute__((tls_model("initial-exec")));

static inline void put(void *fn, void *site, uint64_t kind) {
    struct record *r = &ring[pos++ & (RING_RECORDS - 1)];
    r->ts = ticks();
    r->fn = (uint64_t)(uintptr_t)fn;
    r->site = (uint64_t)(uintptr_t)site;
    r->kind = kind;
}

void __cyg_profile_func_enter(void *fn, void *site) { put(fn, site, 0); }
void __cyg_profile_func_exit(void *fn, void *site) { put(fn, site, 1); }
