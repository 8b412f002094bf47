#include "op_sched.h"

#include <stdlib.h>
#include <string.h>

/* Per chunk: which sources have it in flight (bit per source), which sources
 * served it wrongly (never ask them again for it). */
struct chunk_state {
    uint16_t inflight; /* bit per source */
    uint16_t failed;   /* bit per source */
};

struct source_state {
    unsigned inflight;
    unsigned failures;
    bool banned;
};

struct op_sched {
    uint32_t n_chunks;
    uint32_t have_count;
    uint32_t first_missing; /* no chunk below this is missing */
    uint8_t *have;          /* bitmap */
    struct chunk_state *chunks;
    struct source_state sources[OP_SCHED_MAX_SOURCES];
};

/* Same layout as op_store's bitmaps: chunk i is byte i / 8, mask 0x80 >> (i % 8). */
static bool bit_get(const uint8_t *map, uint32_t i)
{
    return (map[i / 8] & (0x80u >> (i % 8))) != 0;
}

static void bit_set(uint8_t *map, uint32_t i)
{
    map[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

struct op_sched *op_sched_new(uint32_t n_chunks, const uint8_t *have)
{
    struct op_sched *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t map_len = ((size_t)n_chunks + 7) / 8;
    s->n_chunks = n_chunks;
    s->have = calloc(map_len ? map_len : 1, 1);
    s->chunks = calloc(n_chunks ? n_chunks : 1, sizeof(*s->chunks));
    if (s->have == NULL || s->chunks == NULL) {
        op_sched_free(s);
        return NULL;
    }
    for (uint32_t i = 0; have != NULL && i < n_chunks; i++) {
        if (bit_get(have, i)) {
            bit_set(s->have, i);
            s->have_count++;
        }
    }
    while (s->first_missing < n_chunks && bit_get(s->have, s->first_missing))
        s->first_missing++;
    return s;
}

void op_sched_free(struct op_sched *s)
{
    if (s == NULL)
        return;
    free(s->have);
    free(s->chunks);
    free(s);
}

static void take(struct op_sched *s, uint32_t chunk, unsigned source)
{
    s->chunks[chunk].inflight |= (uint16_t)(1u << source);
    s->sources[source].inflight++;
}

static void release(struct op_sched *s, uint32_t chunk, unsigned source)
{
    uint16_t bit = (uint16_t)(1u << source);
    if (s->chunks[chunk].inflight & bit) {
        s->chunks[chunk].inflight &= (uint16_t)~bit;
        s->sources[source].inflight--;
    }
}

int64_t op_sched_next(struct op_sched *s, unsigned source)
{
    if (source >= OP_SCHED_MAX_SOURCES)
        return -1;
    struct source_state *src = &s->sources[source];
    if (src->banned || src->inflight >= OP_SCHED_PIPELINE)
        return -1;
    uint16_t bit = (uint16_t)(1u << source);
    int64_t duplicate = -1;
    for (uint32_t i = s->first_missing; i < s->n_chunks; i++) {
        const struct chunk_state *c = &s->chunks[i];
        if (bit_get(s->have, i) || (c->failed & bit) || (c->inflight & bit))
            continue;
        if (c->inflight == 0) {
            take(s, i, source);
            return i;
        }
        if (duplicate < 0)
            duplicate = i; /* the oldest chunk in flight elsewhere */
    }
    /* End game: only chunks in flight elsewhere remain. Duplicate one, but
     * only from an idle source, so duplicates stay rare. */
    if (duplicate >= 0 && src->inflight == 0) {
        take(s, (uint32_t)duplicate, source);
        return duplicate;
    }
    return -1;
}

static void mark_have(struct op_sched *s, uint32_t chunk)
{
    bit_set(s->have, chunk);
    s->have_count++;
    while (s->first_missing < s->n_chunks && bit_get(s->have, s->first_missing))
        s->first_missing++;
}

bool op_sched_done(struct op_sched *s, uint32_t chunk, unsigned source, bool ok)
{
    if (chunk >= s->n_chunks || source >= OP_SCHED_MAX_SOURCES)
        return false;
    release(s, chunk, source);
    struct source_state *src = &s->sources[source];
    if (!ok) {
        s->chunks[chunk].failed |= (uint16_t)(1u << source);
        if (++src->failures >= OP_SCHED_MAX_FAILURES && !src->banned) {
            src->banned = true;
            return true;
        }
        return false;
    }
    if (bit_get(s->have, chunk))
        return false; /* a duplicate arrived second */
    mark_have(s, chunk);
    return false;
}

void op_sched_mark(struct op_sched *s, uint32_t chunk)
{
    if (chunk < s->n_chunks && !bit_get(s->have, chunk))
        mark_have(s, chunk);
}

void op_sched_release(struct op_sched *s, uint32_t chunk, unsigned source)
{
    if (chunk < s->n_chunks && source < OP_SCHED_MAX_SOURCES)
        release(s, chunk, source);
}

void op_sched_source_lost(struct op_sched *s, unsigned source)
{
    if (source >= OP_SCHED_MAX_SOURCES)
        return;
    /* From 0: a duplicate in flight may sit below first_missing. */
    for (uint32_t i = 0; i < s->n_chunks && s->sources[source].inflight; i++)
        release(s, i, source);
}

void op_sched_source_forget(struct op_sched *s, unsigned source)
{
    if (source >= OP_SCHED_MAX_SOURCES)
        return;
    op_sched_source_lost(s, source);
    uint16_t bit = (uint16_t)(1u << source);
    for (uint32_t i = 0; i < s->n_chunks; i++)
        s->chunks[i].failed &= (uint16_t)~bit;
    memset(&s->sources[source], 0, sizeof(s->sources[source]));
}

bool op_sched_banned(const struct op_sched *s, unsigned source)
{
    return source < OP_SCHED_MAX_SOURCES && s->sources[source].banned;
}

bool op_sched_have(const struct op_sched *s, uint32_t chunk)
{
    return chunk < s->n_chunks && bit_get(s->have, chunk);
}

uint32_t op_sched_have_count(const struct op_sched *s)
{
    return s->have_count;
}

uint32_t op_sched_chunks(const struct op_sched *s)
{
    return s->n_chunks;
}

bool op_sched_complete(const struct op_sched *s)
{
    return s->have_count == s->n_chunks;
}

unsigned op_sched_inflight(const struct op_sched *s, unsigned source)
{
    return source < OP_SCHED_MAX_SOURCES ? s->sources[source].inflight : 0;
}

const uint8_t *op_sched_bitmap(const struct op_sched *s)
{
    return s->have;
}
