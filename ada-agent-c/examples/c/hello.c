/*
 * hello.c: the ADA C API by hand. Build and trace it:
 *
 *   cc -Iada-agent-c/include hello.c -Ltarget/release -lada_agent_c -o hello
 *   ada trace -- ./hello 10
 *
 * Each round enters `outer`, which calls `inner` three times, then records a message; the
 * program ends with a mark. Prints what it recorded (the tests compare the trace with it).
 */
#include <ada.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t outer_id, inner_id, note_id;

static int inner(int i) {
    ada_enter(inner_id);
    int r = i * 2 + 1;
    ada_exit(inner_id);
    return r;
}

static int outer(int n) {
    ada_enter(outer_id);
    int sum = 0;
    for (int i = 0; i < n; i++) {
        sum += inner(i);
    }
    ada_message(note_id, "outer done");
    ada_exit(outer_id);
    return sum;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    outer_id = ada_callsite("outer");
    inner_id = ada_callsite("inner");
    note_id = ada_callsite("note");
    /* One id per name, however often it is asked for; NULL registers nothing. */
    if (ada_callsite("outer") != outer_id || ada_callsite(NULL) != ADA_NO_ID) {
        fprintf(stderr, "hello: ada_callsite broke its contract\n");
        return 3;
    }
    /* NULL texts are allowed. */
    ada_message(note_id, NULL);
    long total = 0;
    for (int r = 0; r < rounds; r++) {
        total += outer(3);
    }
    ada_mark(note_id, "finished");
    ada_flush();
    printf("traced=%d outer=%d inner=%d total=%ld\n", ada_enabled(), rounds, rounds * 3, total);
    return 0;
}
