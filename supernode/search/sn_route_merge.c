/* sn_route_merge.c - the hits of one routed search, merged (sn_route.h).
 *
 * Hits arrive borrowing from decoded frames (names, address arrays), so
 * every file kept is a deep copy: its name, its source array (room for
 * WIRE_MAX_SOURCES_DEFAULT from the start, with the size each claimed) and
 * each source's addresses. Files are found by content hash (the file ID)
 * through an sn_hashtab; there are at most keep =
 * SN_ROUTE_MERGE_KEEP_FACTOR * max_results of them, which also bounds a
 * probe sequence whatever hashes the answers carry.
 */
#include "sn_route.h"

#include "err.h"
#include "sn_hashtab.h"

#include <stdlib.h>
#include <string.h>

#define MERGE_MAX_RESULTS 1024 /* SN_INDEX_MAX_RESULTS_CAP: more is never asked of an SN */

struct merged_hit {
    struct msg_hit hit;         /* hit.name.ptr is name, hit.sources is sources */
    char *name;                 /* owned */
    struct msg_source *sources; /* owned, WIRE_MAX_SOURCES_DEFAULT slots; each owns its addrs */
    uint64_t *sizes;            /* what each source claims (same slots) */
    uint32_t *ranks;            /* scratch for the result */
    size_t n_all;               /* sources held (hit.n_sources: those not dropped) */
};

struct expected {
    uint8_t sn_id[WIRE_ID_LEN];
    bool final;
    size_t hits; /* counted so far, <= max_results */
};

struct sn_route_merge {
    size_t max_results, keep;
    uint64_t deadline_ms;
    struct merged_hit *files;
    size_t n_files, cap_files;
    struct sn_hashtab tab; /* index in files by (hash, size) */
    struct expected *expected;
    size_t n_expected, cap_expected, n_waiting;
    size_t local_hits;
    struct msg_hit *result; /* the sorted view handed out */
};

/* A fixed key: at most keep files, so even colliding hashes cost O(keep). */
static const uint8_t merge_hash_key[SN_HASHTAB_KEYLEN];

static uint32_t file_hash(const uint8_t hash[WIRE_HASH_LEN])
{
    return (uint32_t)sn_hashtab_siphash(merge_hash_key, hash, WIRE_HASH_LEN);
}

static bool file_eq(const void *ctx, uint32_t i, const void *key)
{
    const struct sn_route_merge *m = ctx;
    return memcmp(m->files[i].hit.hash, key, WIRE_HASH_LEN) == 0;
}

struct sn_route_merge *sn_route_merge_new(size_t max_results, uint64_t deadline_ms)
{
    if (max_results == 0)
        return NULL;
    struct sn_route_merge *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->max_results = max_results < MERGE_MAX_RESULTS ? max_results : MERGE_MAX_RESULTS;
    m->keep = SN_ROUTE_MERGE_KEEP_FACTOR * m->max_results;
    m->deadline_ms = deadline_ms;
    sn_hashtab_init(&m->tab);
    return m;
}

static void free_sources(struct msg_source *sources, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(sources[i].addrs);
    free(sources);
}

void sn_route_merge_free(struct sn_route_merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_files; i++) {
        free(m->files[i].name);
        free_sources(m->files[i].sources, m->files[i].n_all);
        free(m->files[i].sizes);
        free(m->files[i].ranks);
    }
    free(m->files);
    sn_hashtab_free(&m->tab);
    free(m->expected);
    free(m->result);
    free(m);
}

/* Grow *arr (of *cap items of size) to hold at least need items. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    if (n < need)
        n = need;
    void *p = realloc(*arr, n * size);
    if (p == NULL)
        return SOVA_ERR_NOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

int sn_route_merge_expect(struct sn_route_merge *m, const uint8_t sn_id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < m->n_expected; i++) {
        if (memcmp(m->expected[i].sn_id, sn_id, WIRE_ID_LEN) == 0)
            return SOVA_ERR_INVALID;
    }
    if (m->n_expected == SN_ROUTE_MERGE_MAX_EXPECTED)
        return SOVA_ERR_INVALID;
    void *arr = m->expected;
    int rc = grow(&arr, &m->cap_expected, m->n_expected + 1, sizeof(*m->expected));
    m->expected = arr;
    if (rc != 0)
        return rc;
    struct expected *e = &m->expected[m->n_expected++];
    memcpy(e->sn_id, sn_id, WIRE_ID_LEN);
    e->final = false;
    e->hits = 0;
    m->n_waiting++;
    return 0;
}

/* ---- merging one hit -------------------------------------------------------------- */
/* Append a copy of src (claiming size) to h's sources; false when memory
 * is short. */
static bool copy_source(struct merged_hit *h, const struct msg_source *src, uint64_t size)
{
    struct msg_source *dst = &h->sources[h->n_all];
    *dst = *src;
    dst->addrs = NULL;
    dst->n_addrs = 0;
    if (src->n_addrs > 0) {
        /* A decoded list holds at most WIRE_MAX_ADDRS; a local one is cut there. */
        size_t n = src->n_addrs < WIRE_MAX_ADDRS ? src->n_addrs : WIRE_MAX_ADDRS;
        dst->addrs = malloc(n * sizeof(*dst->addrs));
        if (dst->addrs == NULL)
            return false;
        memcpy(dst->addrs, src->addrs, n * sizeof(*dst->addrs));
        dst->n_addrs = n;
    }
    h->sizes[h->n_all++] = size;
    h->hit.n_sources = h->n_all;
    return true;
}

/* Add the sources of src that h lacks, up to WIRE_MAX_SOURCES_DEFAULT. */
static int union_sources(struct merged_hit *h, const struct msg_hit *src)
{
    for (size_t i = 0; i < src->n_sources && h->n_all < WIRE_MAX_SOURCES_DEFAULT; i++) {
        bool known = false;
        for (size_t j = 0; j < h->n_all && !known; j++)
            known = memcmp(h->sources[j].peer_id, src->sources[i].peer_id, WIRE_ID_LEN) == 0;
        if (!known && !copy_source(h, &src->sources[i], src->size))
            return SOVA_ERR_NOMEM;
    }
    return 0;
}

/* A new file from src (no sources yet) at the end of files; the caller
 * has checked that there is room under keep. */
static struct merged_hit *add_file(struct sn_route_merge *m, const struct msg_hit *src,
                                   uint32_t hash)
{
    void *arr = m->files;
    int rc = grow(&arr, &m->cap_files, m->n_files + 1, sizeof(*m->files));
    m->files = arr;
    if (rc != 0)
        return NULL;
    struct merged_hit *h = &m->files[m->n_files];
    memset(h, 0, sizeof(*h));
    h->name = malloc(src->name.len + 1);
    h->sources = calloc(WIRE_MAX_SOURCES_DEFAULT, sizeof(*h->sources));
    h->sizes = calloc(WIRE_MAX_SOURCES_DEFAULT, sizeof(*h->sizes));
    h->ranks = calloc(WIRE_MAX_SOURCES_DEFAULT, sizeof(*h->ranks));
    if (h->name == NULL || h->sources == NULL || h->sizes == NULL || h->ranks == NULL ||
        sn_hashtab_insert(&m->tab, hash, (uint32_t)m->n_files) != 0) {
        free(h->name);
        free(h->sources);
        free(h->sizes);
        free(h->ranks);
        return NULL;
    }
    memcpy(h->name, src->name.ptr, src->name.len);
    h->name[src->name.len] = '\0';
    memcpy(h->hit.hash, src->hash, WIRE_HASH_LEN);
    h->hit.size = src->size;
    h->hit.name.ptr = h->name;
    h->hit.name.len = src->name.len;
    h->hit.sources = h->sources;
    m->n_files++;
    return h;
}

static int merge_hit(struct sn_route_merge *m, const struct msg_hit *src)
{
    uint32_t hash = file_hash(src->hash);
    uint32_t i = sn_hashtab_find(&m->tab, hash, file_eq, m, src->hash);
    struct merged_hit *h;
    if (i != SN_HASHTAB_NONE) {
        h = &m->files[i];
    } else if (m->n_files < m->keep) {
        h = add_file(m, src, hash);
        if (h == NULL)
            return SOVA_ERR_NOMEM;
    } else {
        return 0; /* full: a file first seen now is dropped */
    }
    return union_sources(h, src);
}

int sn_route_merge_add(struct sn_route_merge *m, const uint8_t *from,
                       const struct msg_search_result *r)
{
    size_t *counted = &m->local_hits;
    struct expected *e = NULL;
    if (from != NULL) {
        for (size_t i = 0; i < m->n_expected && e == NULL; i++) {
            if (memcmp(m->expected[i].sn_id, from, WIRE_ID_LEN) == 0)
                e = &m->expected[i];
        }
        if (e == NULL || e->final)
            return SOVA_ERR_NOT_FOUND;
        counted = &e->hits;
        if (r->flags & MSG_RESULT_FINAL) {
            e->final = true;
            m->n_waiting--;
        }
    }
    for (size_t i = 0; i < r->n_hits && *counted < m->max_results; i++) {
        (*counted)++;
        int rc = merge_hit(m, &r->hits[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- state and result ----------------------------------------------------------------- */
size_t sn_route_merge_waiting(const struct sn_route_merge *m)
{
    return m->n_waiting;
}

bool sn_route_merge_done(const struct sn_route_merge *m, uint64_t now_ms)
{
    return m->n_waiting == 0 || now_ms >= m->deadline_ms;
}

uint64_t sn_route_merge_deadline(const struct sn_route_merge *m)
{
    return m->deadline_ms;
}

size_t sn_route_merge_files(const struct sn_route_merge *m)
{
    return m->n_files;
}

/* ---- ranking -------------------------------------------------------------------------- */

size_t sn_route_rank_sources(struct msg_hit *h, uint64_t *sizes, uint32_t *ranks)
{
    struct msg_source *src = h->sources;
    size_t n = h->n_sources;
    /* Insertion sort, stable: at most WIRE_MAX_SOURCES_DEFAULT (64) each. */
    for (size_t i = 1; i < n; i++) {
        struct msg_source s = src[i];
        uint64_t z = sizes[i];
        uint32_t r = ranks[i];
        size_t j = i;
        for (; j > 0 && ranks[j - 1] > r; j--) {
            src[j] = src[j - 1];
            sizes[j] = sizes[j - 1];
            ranks[j] = ranks[j - 1];
        }
        src[j] = s;
        sizes[j] = z;
        ranks[j] = r;
    }
    size_t kept = 0, verified = 0;
    while (kept < n && ranks[kept] != SN_ROUTE_RANK_DROP) {
        verified += !(ranks[kept] & SN_ROUTE_RANK_UNVERIFIED);
        kept++;
    }
    h->n_sources = kept;
    if (kept > 0)
        h->size = sizes[0]; /* the size its best source claims */
    return verified;
}

struct hit_key {
    struct msg_hit hit;
    size_t verified;
};

/* More verified sources, then more sources, then hash: a total order on
 * distinct files (one hit per hash). */
static int hit_order(const void *pa, const void *pb)
{
    const struct hit_key *a = pa, *b = pb;
    if (a->verified != b->verified)
        return a->verified > b->verified ? -1 : 1;
    if (a->hit.n_sources != b->hit.n_sources)
        return a->hit.n_sources > b->hit.n_sources ? -1 : 1;
    return memcmp(a->hit.hash, b->hit.hash, WIRE_HASH_LEN);
}

void sn_route_order_hits(struct msg_hit *hits, size_t *verified, size_t n)
{
    if (n < 2)
        return;
    struct hit_key *k = malloc(n * sizeof(*k));
    if (k == NULL)
        return; /* left as it is: still every hit */
    for (size_t i = 0; i < n; i++)
        k[i] = (struct hit_key){hits[i], verified[i]};
    qsort(k, n, sizeof(*k), hit_order);
    for (size_t i = 0; i < n; i++) {
        hits[i] = k[i].hit;
        verified[i] = k[i].verified;
    }
    free(k);
}

int sn_route_merge_result(struct sn_route_merge *m, sn_route_rank_fn *rank, void *arg,
                          struct msg_search_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = m->n_files ? m->n_files : 1;
    struct msg_hit *view = realloc(m->result, cap * sizeof(*view));
    size_t *verified = malloc(cap * sizeof(*verified));
    if (view == NULL || verified == NULL) {
        if (view != NULL)
            m->result = view;
        free(verified);
        return SOVA_ERR_NOMEM;
    }
    m->result = view;
    size_t n = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        struct merged_hit *f = &m->files[i];
        f->hit.n_sources = f->n_all;
        for (size_t j = 0; j < f->n_all; j++)
            f->ranks[j] = rank ? rank(arg, f->sources[j].peer_id) : 0;
        size_t v = sn_route_rank_sources(&f->hit, f->sizes, f->ranks);
        if (f->hit.n_sources == 0)
            continue; /* every source dropped */
        view[n] = f->hit;
        verified[n++] = v;
    }
    sn_route_order_hits(view, verified, n);
    free(verified);
    out->hits = view;
    out->n_hits = n < m->max_results ? n : m->max_results;
    return 0;
}
