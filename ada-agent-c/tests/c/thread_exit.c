/*
 * thread_exit.c: a -finstrument-functions program that ends through exit() called by a
 * worker thread while the main thread is still recording. The worker calls leaf() 1000 times,
 * then exit(7); an atexit handler calls leaf() 5 more times on the worker, whose agent storage
 * is torn down by then (those events are counted as lost, never written).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) int leaf(int x) {
    return x + 1;
}

__attribute__((noinline)) void at_exit(void) {
    int s = 0;
    for (int i = 0; i < 5; i++) {
        s += leaf(i);
    }
    if (s < 0) {
        puts("unreachable");
    }
}

__attribute__((noinline)) void *worker(void *arg) {
    (void)arg;
    int s = 0;
    for (int i = 0; i < 1000; i++) {
        s += leaf(i);
    }
    printf("worker done %d\n", s);
    fflush(stdout);
    exit(7);
}

int main(void) {
    atexit(at_exit);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) {
        return 1;
    }
    for (;;) {
        leaf(0);
        usleep(100);
    }
}
