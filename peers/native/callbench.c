/*
 * callbench.c: the call-heavy program of `cargo xtask bench-native` (issue 16: per-call cost of
 * function tracing). Built with -finstrument-functions, run bare (glibc's no-op
 * __cyg_profile_func_enter/exit), with the bare ring hook (ring_floor.c), under
 * `ada trace --functions` and under `uftrace record`.
 *
 *   callbench N THREADS
 *
 * Each of THREADS threads runs work(N): recursive fib(N), 100 calls of a short function and
 * 10 of a long one, and measures its own CPU time around it (CLOCK_THREAD_CPUTIME_ID: what the
 * tracer's hooks cost the thread, whatever the scheduler does with THREADS threads on fewer
 * cores). Prints one line:
 *
 *   callbench threads=T calls_per_thread=C cpu_ns_per_thread=X
 *
 * with C the instrumented calls inside the timed region (work, fib, short_fn, long_fn) and X
 * the threads' mean.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) long fib(int n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) int short_fn(int x) {
    return x * 3 + 1;
}

__attribute__((noinline)) long long_fn(int n) {
    volatile long s = 0;
    for (int i = 0; i < n; i++) {
        s += i % 7;
    }
    return s;
}

__attribute__((noinline)) long work(int n) {
    long r = fib(n);
    for (int i = 0; i < 100; i++) {
        r += short_fn(i);
    }
    for (int i = 0; i < 10; i++) {
        r += long_fn(10000);
    }
    return r;
}

static long fib_calls(int n) __attribute__((no_instrument_function));
static long fib_calls(int n) {
    return n < 2 ? 1 : 1 + fib_calls(n - 1) + fib_calls(n - 2);
}

static long long cpu_ns(void) __attribute__((no_instrument_function));
static long long cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct job {
    int n;
    long result;
    long long ns;
};

static void *run(void *arg) __attribute__((no_instrument_function));
static void *run(void *arg) {
    struct job *j = arg;
    long long t0 = cpu_ns();
    j->result = work(j->n);
    j->ns = cpu_ns() - t0;
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 27;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 1 || n > 40 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: callbench [N<=40] [THREADS<=64]\n");
        return 2;
    }
    pthread_t tids[64];
    struct job jobs[64];
    for (int t = 0; t < threads; t++) {
        jobs[t].n = n;
        if (pthread_create(&tids[t], NULL, run, &jobs[t]) != 0) {
            fprintf(stderr, "callbench: pthread_create failed\n");
            return 1;
        }
    }
    long long sum = 0;
    long check = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        sum += jobs[t].ns;
        check += jobs[t].result;
    }
    long calls = 1 + fib_calls(n) + 100 + 10;
    printf("callbench threads=%d calls_per_thread=%ld cpu_ns_per_thread=%lld check=%ld\n", threads,
           calls, sum / threads, check);
    return 0;
}
