/* text.c - text from the network made safe (text.h). */
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The code point of the UTF-8 sequence at p (n bytes left) and its length
 * in *len; -1 (and *len 1) when the bytes there are not valid UTF-8. */
static int32_t utf8_next(const uint8_t *p, size_t n, size_t *len)
{
    *len = 1;
    uint8_t b = p[0];
    if (b < 0x80)
        return b;
    size_t need;
    int32_t cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return -1; /* a continuation byte, an overlong lead (C0, C1) or past U+10FFFF */
    }
    if (n < need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = need;
    return cp;
}

static bool is_control(int32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

static bool is_bidi(int32_t cp)
{
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

enum text_verdict text_check(const void *in, size_t n, size_t *at)
{
    const uint8_t *p = in;
    for (size_t i = 0; i < n;) {
        size_t len;
        int32_t cp = utf8_next(p + i, n - i, &len);
        enum text_verdict v = cp < 0           ? TEXT_BAD_UTF8
                              : is_control(cp) ? TEXT_CONTROL
                              : is_bidi(cp)    ? TEXT_BIDI
                                               : TEXT_OK;
        if (v != TEXT_OK) {
            if (at != NULL)
                *at = i;
            return v;
        }
        i += len;
    }
    return TEXT_OK;
}

const char *text_verdict_str(enum text_verdict v)
{
    switch (v) {
    case TEXT_OK:
        return "safe";
    case TEXT_BAD_UTF8:
        return "not valid UTF-8";
    case TEXT_CONTROL:
        return "a control character";
    case TEXT_BIDI:
        return "a bidirectional formatting character";
    }
    return "?";
}

size_t text_escape(char *out, size_t cap, const void *in, size_t n)
{
    const uint8_t *p = in;
    size_t used = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        int32_t cp = utf8_next(p + i, n - i, &len);
        char esc[16];
        const char *piece;
        size_t plen;
        if (cp == '\\') {
            piece = "\\\\", plen = 2;
        } else if (cp == '\n' || cp == '\r' || cp == '\t' || cp == 0x1B) {
            piece = cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : "\\e";
            plen = 2;
        } else if (cp < 0 || (cp < 0x80 && is_control(cp))) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\x%02X", p[i]);
            piece = esc;
        } else if (is_control(cp) || is_bidi(cp)) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\u{%04X}", (unsigned)cp);
            piece = esc;
        } else {
            piece = (const char *)p + i, plen = len;
        }
        if (used + plen >= cap)
            break;
        memcpy(out + used, piece, plen);
        used += plen;
        i += len;
    }
    out[used] = '\0';
    return used;
}
