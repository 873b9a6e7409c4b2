/*
 * own_malloc.c: a -finstrument-functions program with its own allocator (a bump allocator
 * over a static arena), so the agent's own allocations, the very first ones included (while it
 * attaches), call instrumented code that re-enters the hooks. Then it calls fib(15) and
 * prints fib's address and calls, like fib.c. Built with -DWITH_ADA_API (and linked to the
 * agent library), its first call is ada_enabled(), so the agent attaches from a C API call
 * rather than from a hook.
 */
#ifdef WITH_ADA_API
#include <ada.h>
#endif
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define ARENA (64u << 20)
static _Alignas(64) unsigned char arena[ARENA];
static size_t used;

/* Each block starts 16 bytes in, its size just before it (for realloc). */
void *malloc(size_t size) {
    size_t need = (size + 16 + 15) & ~(size_t)15;
    size_t at = __atomic_fetch_add(&used, need, __ATOMIC_RELAXED);
    if (at + need > ARENA) {
        errno = ENOMEM;
        return NULL;
    }
    *(size_t *)(arena + at) = size;
    return arena + at + 16;
}

void free(void *p) {
    (void)p;
}

void *calloc(size_t n, size_t size) {
    if (size != 0 && n > (size_t)-1 / size) {
        errno = ENOMEM;
        return NULL;
    }
    /* The arena is never reused: still zero. */
    return malloc(n * size);
}

void *realloc(void *p, size_t size) {
    void *q = malloc(size);
    if (p != NULL && q != NULL) {
        size_t old = *(size_t *)((unsigned char *)p - 16);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

int posix_memalign(void **out, size_t align, size_t size) {
    void *p = malloc(size + align);
    if (p == NULL) {
        return ENOMEM;
    }
    size_t a = ((size_t)p + align - 1) & ~(align - 1);
    /* realloc reads the size before the block: keep one there. */
    *(size_t *)(a - 16) = size;
    *out = (void *)a;
    return 0;
}

void *aligned_alloc(size_t align, size_t size) {
    void *p = NULL;
    return posix_memalign(&p, align < 16 ? 16 : align, size) == 0 ? p : NULL;
}

void *memalign(size_t align, size_t size) {
    return aligned_alloc(align, size);
}

__attribute__((noinline)) long fib(int n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(void) {
#ifdef WITH_ADA_API
    if (!ada_enabled()) {
        fprintf(stderr, "own_malloc: not traced\n");
        return 4;
    }
#endif
    long r = fib(15);
    printf("fib %p 1973\n", (void *)fib);
    return r == 610 ? 0 : 1;
}
