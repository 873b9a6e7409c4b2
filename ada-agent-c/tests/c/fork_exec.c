/*
 * fork_exec.c: a -finstrument-functions program that forks and execs. The parent calls
 * step() 100 times, forks a child that calls step() 50 times and then execs this program
 * again (argument "exec"), which calls step() 20 times and exits; the parent waits for it and
 * calls step() 100 more times. Each image prints step()'s address in it and the calls made
 * there: the exec'd one `exec_step ADDRESS 20`, the parent `step ADDRESS 250` (its own calls and
 * the forked child's, which shares its addresses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) int step(int x) {
    return x * 2;
}

__attribute__((noinline)) int steps(int n) {
    int s = 0;
    for (int i = 0; i < n; i++) {
        s += step(i);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        steps(20);
        /* A new image: loaded at an address of its own. */
        printf("exec_step %p 20\n", (void *)step);
        return 0;
    }
    steps(100);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        return 1;
    }
    if (child == 0) {
        steps(50);
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        _exit(3);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fork_exec: the child failed (status %d)\n", status);
        return 1;
    }
    steps(100);
    /* The parent's and the forked child's calls of step() (the exec'd image printed its own). */
    printf("step %p 250\n", (void *)step);
    return 0;
}
