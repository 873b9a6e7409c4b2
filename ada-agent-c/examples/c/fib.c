/*
 * fib.c: a call-heavy program for -finstrument-functions tracing. Build and trace it:
 *
 *   cc -O1 -finstrument-functions -pthread fib.c -o fib
 *   ada trace --functions -- ./fib 20 4
 *
 * Arguments: N (fib(N) per thread, default 20) and THREADS (default 1: the main thread only;
 * more start THREADS - 1 workers). Each thread runs work(): recursive fib(N), 100 calls of a
 * short function and 10 of a long one; a constructor calls the short one once more before main.
 * Prints each function's address and the number of calls the program made of it (the tests
 * compare the trace with it).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

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

static int n_arg = 20;
static long early;

/* Runs before main: traced like any other function (the agent attaches on its first event). */
__attribute__((constructor, noinline)) static void before_main(void) {
    early = short_fn(1);
}

__attribute__((noinline)) void *worker(void *arg) {
    *(long *)arg = work(n_arg);
    return NULL;
}

/* The calls fib(n) makes of itself, counting the first. */
static long fib_calls(int n) __attribute__((no_instrument_function));
static long fib_calls(int n) {
    return n < 2 ? 1 : 1 + fib_calls(n - 1) + fib_calls(n - 2);
}

int main(int argc, char **argv) {
    n_arg = argc > 1 ? atoi(argv[1]) : 20;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (n_arg < 0 || n_arg > 40 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: fib [N<=40] [THREADS<=64]\n");
        return 2;
    }
    pthread_t tids[64];
    long results[64];
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, worker, &results[t]) != 0) {
            fprintf(stderr, "fib: pthread_create failed\n");
            return 1;
        }
    }
    results[0] = work(n_arg);
    for (int t = 1; t < threads; t++) {
        pthread_join(tids[t], NULL);
    }
    printf("main %p 1\n", (void *)main);
    printf("worker %p %d\n", (void *)worker, threads - 1);
    printf("work %p %d\n", (void *)work, threads);
    printf("fib %p %ld\n", (void *)fib, fib_calls(n_arg) * threads);
    printf("before_main %p 1\n", (void *)before_main);
    printf("short_fn %p %d\n", (void *)short_fn, 100 * threads + 1);
    printf("long_fn %p %d\n", (void *)long_fn, 10 * threads);
    printf("result %ld\n", results[0] + early);
    return 0;
}
