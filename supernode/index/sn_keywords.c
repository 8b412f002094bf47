/* sn_keywords.c - splitting names and queries into keywords (sn_keywords.h). */
#include "sn_keywords.h"

#include <string.h>

static bool is_word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static void keywords_init(struct sn_keywords *kw)
{
    kw->n = 0;
    kw->truncated = false;
    kw->too_long = false;
    kw->buf_used = 0;
}

/* Keep w[0..len) lowercased unless it is too short, too long or known. */
static void add_word(struct sn_keywords *kw, const char *w, size_t len)
{
    if (len < SN_KEYWORD_MIN_LEN)
        return;
    if (len > SN_KEYWORD_MAX_LEN) {
        kw->too_long = true;
        return;
    }
    char low[SN_KEYWORD_MAX_LEN];
    for (size_t i = 0; i < len; i++)
        low[i] = ascii_lower(w[i]);
    for (size_t i = 0; i < kw->n; i++) {
        if (kw->word[i].len == len && memcmp(kw->buf + kw->word[i].off, low, len) == 0)
            return;
    }
    if (kw->n == SN_KEYWORDS_MAX) {
        kw->truncated = true;
        return;
    }
    /* n < SN_KEYWORDS_MAX words of <= SN_KEYWORD_MAX_LEN bytes: buf has room. */
    memcpy(kw->buf + kw->buf_used, low, len);
    kw->word[kw->n].off = (uint16_t)kw->buf_used;
    kw->word[kw->n].len = (uint16_t)len;
    kw->buf_used += len;
    kw->n++;
}

static void add_text(struct sn_keywords *kw, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_word_byte((unsigned char)text[i]))
            i++;
        size_t start = i;
        while (i < len && is_word_byte((unsigned char)text[i]))
            i++;
        if (i > start)
            add_word(kw, text + start, i - start);
    }
}

void sn_keywords_from_name(struct sn_keywords *kw, const char *name, size_t len)
{
    keywords_init(kw);
    /* The extension goes first, so the SN_KEYWORDS_MAX cap never drops it. */
    size_t ext = len;
    while (ext > 0 && is_word_byte((unsigned char)name[ext - 1]))
        ext--;
    if (ext > 0 && ext < len && name[ext - 1] == '.')
        add_word(kw, name + ext, len - ext);
    add_text(kw, name, len);
}

void sn_keywords_from_query(struct sn_keywords *kw, const struct wire_str *keywords, size_t n)
{
    keywords_init(kw);
    for (size_t i = 0; i < n; i++)
        add_text(kw, keywords[i].ptr, keywords[i].len);
}

bool sn_keywords_query_void(const struct sn_keywords *kw)
{
    return kw->n == 0 || kw->too_long || kw->truncated;
}

struct wire_str sn_keywords_word(const struct sn_keywords *kw, size_t i)
{
    struct wire_str s = {kw->buf + kw->word[i].off, kw->word[i].len};
    return s;
}
