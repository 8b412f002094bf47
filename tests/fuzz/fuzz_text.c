/* fuzz_text.c - common/text.h on arbitrary bytes: no crash, no read or
 * write past a buffer, and what text_escape() writes is always safe text
 * (text_check() says so) and NUL-terminated within its buffer, for any cap;
 * a safe input comes out unchanged (but for its backslashes). */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    enum text_verdict v = text_check(data, size, &at);
    if (v != TEXT_OK && at >= size)
        abort();
    size_t caps[] = {1, 2, 5, 17, 4 * size + 16};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        char *out = malloc(caps[i]);
        if (out == NULL)
            return 0;
        size_t n = text_escape(out, caps[i], data, size);
        if (n >= caps[i] || out[n] != '\0' || strlen(out) != n)
            abort();
        if (text_check(out, n, NULL) != TEXT_OK)
            abort();
        if (i == 4 && v == TEXT_OK && memchr(data, '\\', size) == NULL &&
            (n != size || memcmp(out, data, size) != 0))
            abort();
        free(out);
    }
    return 0;
}
