/* text.h - text from the network made safe: which names may be published,
 * and how anything else is shown.
 *
 * A name is safe when it is valid UTF-8 (shortest forms, no surrogates, at
 * most U+10FFFF) and holds no C0 control (U+0000-U+001F), DEL (U+007F), C1
 * control (U+0080-U+009F) or Unicode bidirectional formatting character
 * (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): nothing that can
 * move a terminal's cursor, ring its bell, retitle it, forge a line, or
 * show "gpj.exe" as "exe.jpg". Supernodes refuse other names at PUBLISH
 * (ERROR 111, docs/PROTOCOL.md); whatever still reaches a terminal or a
 * log is escaped with text_escape().
 *
 * Pure functions over byte buffers; thread-safe. */
#ifndef SOVA_TEXT_H
#define SOVA_TEXT_H

#include <stdbool.h>
#include <stddef.h>

enum text_verdict {
    TEXT_OK = 0,
    TEXT_BAD_UTF8, /* not valid UTF-8 */
    TEXT_CONTROL,  /* a C0 or C1 control character or DEL */
    TEXT_BIDI,     /* a bidirectional formatting character */
};

/* The verdict on n bytes of text, and in *at (may be NULL) the offset of
 * the first offending byte. */
enum text_verdict text_check(const void *p, size_t n, size_t *at);
const char *text_verdict_str(enum text_verdict v);

/* Copy n bytes of text into out (cap bytes, cap >= 1), always
 * NUL-terminated, with every byte or character that is not safe (see
 * above), and the backslash, written as an escape: \\ for a backslash,
 * \n \r \t \e for those controls, \xHH for another control byte or an
 * invalid UTF-8 byte, \u{XXXX} for a C1 control or a bidirectional
 * character. What does not fit is cut at a character boundary. Returns the
 * length written. */
size_t text_escape(char *out, size_t cap, const void *in, size_t n);

#endif
