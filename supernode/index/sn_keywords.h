/* sn_keywords.h - the words a file name is found by.
 *
 * One rule serves names and queries, so that a query finds a name exactly
 * when every word of the query is one of the name's keywords:
 *   - a word is a maximal run of ASCII letters, ASCII digits and non-ASCII
 *     bytes (so UTF-8 sequences stay whole); every other ASCII byte
 *     separates words: space, '.', '_', '-', '(', '[', ',' ...;
 *   - ASCII letters are lowercased; every other byte is kept as it is;
 *   - words shorter than SN_KEYWORD_MIN_LEN bytes are dropped;
 *   - a word longer than SN_KEYWORD_MAX_LEN bytes is never a keyword: it is
 *     dropped from a name, and a query containing one matches nothing;
 *   - repeated words count once; a name keeps at most SN_KEYWORDS_MAX
 *     distinct words, in order, and its extension (the last word, when a
 *     '.' comes right before it) is always among them. A query with more
 *     distinct words than that matches nothing.
 * Example: "Holiday_Video-2019.MP4" -> mp4, holiday, video, 2019.
 *
 * Pure functions over the caller's struct; no allocation, no global state.
 */
#ifndef SOVA_SN_KEYWORDS_H
#define SOVA_SN_KEYWORDS_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_KEYWORD_MIN_LEN 2                            /* bytes; shorter words are dropped */
#define SN_KEYWORD_MAX_LEN WIRE_MAX_KEYWORD_LEN_DEFAULT /* bytes; longer words never match */
#define SN_KEYWORDS_MAX    16                           /* distinct keywords per name */

/* The keywords of one name or query. Fill it with sn_keywords_from_name()
 * or sn_keywords_from_query(); read word i with sn_keywords_word(). */
struct sn_keywords {
    size_t n;       /* distinct keywords kept, <= SN_KEYWORDS_MAX */
    bool truncated; /* more distinct words were seen than SN_KEYWORDS_MAX */
    bool too_long;  /* a word longer than SN_KEYWORD_MAX_LEN was seen */
    struct {
        uint16_t off, len; /* into buf */
    } word[SN_KEYWORDS_MAX];
    size_t buf_used;
    char buf[SN_KEYWORDS_MAX * SN_KEYWORD_MAX_LEN]; /* the lowercased words */
};

/* The keywords of a file name (name[0..len), need not be NUL-terminated). */
void sn_keywords_from_name(struct sn_keywords *kw, const char *name, size_t len);
/* The words of a query: every keyword string is split by the same rule and
 * the words of all of them are gathered (the query is their AND). */
void sn_keywords_from_query(struct sn_keywords *kw, const struct wire_str *keywords, size_t n);
/* True when the query can match no name at all: no word, a word that is
 * too long, or more distinct words than a name can have. */
bool sn_keywords_query_void(const struct sn_keywords *kw);
/* Word i (i < kw->n), borrowed from kw. */
struct wire_str sn_keywords_word(const struct sn_keywords *kw, size_t i);

#endif
