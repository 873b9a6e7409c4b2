/*
 * names.c: the C API's edge cases. Registers names that are not UTF-8 (twice the same, once
 * another), the empty name and NULL; records a call of each, and of an id of its own with bit
 * 62 set; records a message that is not UTF-8 and a mark with a NULL text and one with a text
 * over the 1024-byte limit. Prints each id in hex, one `NAME ID` line each.
 */
#include <ada.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    uint64_t bad = ada_callsite("bad\xff name");
    uint64_t bad_again = ada_callsite("bad\xff name");
    uint64_t other = ada_callsite("bad\xfe name");
    uint64_t empty = ada_callsite("");
    uint64_t none = ada_callsite(NULL);
    uint64_t own = ((uint64_t)1 << 62) | 5;
    if (bad != bad_again || bad == other || none != ADA_NO_ID) {
        fprintf(stderr, "names: ada_callsite broke its contract\n");
        return 3;
    }
    uint64_t ids[] = {bad, other, empty, own};
    for (int i = 0; i < 4; i++) {
        ada_enter(ids[i]);
        ada_exit(ids[i]);
    }
    ada_message(bad, "not \xc3 UTF-8");
    ada_mark(empty, NULL);
    /* 600 two-byte characters: 1200 bytes, cut at 1024, a character boundary. */
    static char long_text[1201];
    for (int i = 0; i < 600; i++) {
        memcpy(long_text + 2 * i, "\xc3\xa9", 2);
    }
    ada_mark(other, long_text);
    printf("bad %" PRIx64 "\nother %" PRIx64 "\nempty %" PRIx64 "\nown %" PRIx64 "\n", bad, other,
           empty, own);
    return 0;
}
