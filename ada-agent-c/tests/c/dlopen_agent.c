/*
 * dlopen_agent.c: loads the agent library with dlopen (not linked, not preloaded) and records
 * through it, from the main thread and from a second thread started after the load:
 *
 *   dlopen_agent LIBRARY CALLS
 *
 * The library keeps its thread's writer in initial-exec TLS, which a library loaded with dlopen
 * takes from glibc's static TLS surplus: this program checks that such a load works and that
 * its events are recorded. Prints "id 0x<function id> calls <n per thread>" and exits 0, or
 * says why it failed and exits 1.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*hook_fn)(void *, void *);
static hook_fn enter_hook, exit_hook;
static long calls;

static void *work(void *arg) {
    for (long i = 0; i < calls; i++) {
        enter_hook(arg, NULL);
        exit_hook(arg, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dlopen_agent LIBRARY CALLS\n");
        return 1;
    }
    calls = atol(argv[2]);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return 1;
    }
    enter_hook = (hook_fn)dlsym(lib, "__cyg_profile_func_enter");
    exit_hook = (hook_fn)dlsym(lib, "__cyg_profile_func_exit");
    if (!enter_hook || !exit_hook) {
        fprintf(stderr, "dlsym failed: %s\n", dlerror());
        return 1;
    }
    /* Any number works as the id; an address in this program is what the hooks would get. */
    void *id = (void *)(uintptr_t)&work;
    pthread_t t;
    if (pthread_create(&t, NULL, work, id) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    work(id);
    pthread_join(t, NULL);
    printf("id 0x%" PRIxPTR " calls %ld\n", (uintptr_t)id, calls);
    return 0;
}
