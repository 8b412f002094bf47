/* sn_index_query.c - what reads the index without changing it: search,
 * the keyword walk and the invariant check (sn_index.h). */
#define SN_INDEX_IMPL
#include "sn_index_impl.h"

#include "err.h"
#include "sn_keywords.h"

#include <string.h>

/* ---- search ----------------------------------------------------------------- */
/* Candidate names fetched together: enough cache misses in flight to hide
 * most of the memory latency, few enough to waste little when a search
 * stops early. */
#define SCAN_BATCH 16

struct found {
    const struct file_slot *file;
    const struct name_entry *name; /* the first matching name seen */
    uint32_t n_sources;            /* file->sources.n, read once for the sort */
    uint64_t hash_prefix;          /* the first 8 bytes of the hash, big-endian */
};

/* Most sources first, then hash, then size: a total order, since a file
 * is one (hash, size). */
static bool found_before(const struct found *x, const struct found *y)
{
    if (x->n_sources != y->n_sources)
        return x->n_sources > y->n_sources;
    if (x->hash_prefix != y->hash_prefix)
        return x->hash_prefix < y->hash_prefix;
    int c = memcmp(x->file->hash, y->file->hash, WIRE_HASH_LEN);
    return c != 0 ? c < 0 : x->file->size < y->file->size;
}

/* Shell sort (Ciura's gaps): no allocation, unlike glibc's qsort, and
 * quick enough for SN_INDEX_MAX_RESULTS_CAP items. */
static void found_sort(struct found *a, size_t n)
{
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            struct found x = a[i];
            size_t j = i;
            for (; j >= gap && found_before(&x, &a[j - gap]); j -= gap)
                a[j] = a[j - gap];
            a[j] = x;
        }
    }
}

/* The files one search has taken already: an open-addressing set of
 * file id + 1, at most half full. */
struct file_set {
    uint32_t mask;
    uint32_t slots[2 * SN_INDEX_MAX_RESULTS_CAP];
};

static void file_set_init(struct file_set *s, size_t max_items)
{
    uint32_t cap = 16;
    while (cap < 2 * max_items)
        cap *= 2;
    s->mask = cap - 1;
    memset(s->slots, 0, cap * sizeof(s->slots[0]));
}

/* Add id; false if it was there. */
static bool file_set_add(struct file_set *s, uint32_t id)
{
    uint32_t i = (id * 0x9e3779b1u) >> 7 & s->mask;
    while (s->slots[i] != 0) {
        if (s->slots[i] == id + 1)
            return false;
        i = (i + 1) & s->mask;
    }
    s->slots[i] = id + 1;
    return true;
}

static bool name_has_keywords(const struct name_entry *ne, const uint32_t *kw, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < ne->n_kw && ne->kw[j] != kw[i])
            j++;
        if (j == ne->n_kw)
            return false;
    }
    return true;
}

/* The query's keyword ids, rarest first. False when the query can match
 * nothing (a word no name has). */
static bool query_keywords(const struct sn_index *idx, const struct sn_keywords *words,
                           uint32_t *ids)
{
    for (size_t i = 0; i < words->n; i++) {
        ids[i] = sn_index_keyword_find(idx, sn_keywords_word(words, i));
        if (ids[i] == SN_NONE)
            return false;
        if (keyword_at(idx, ids[i])->postings.n < keyword_at(idx, ids[0])->postings.n) {
            uint32_t rarest = ids[i];
            ids[i] = ids[0];
            ids[0] = rarest;
        }
    }
    return true;
}

static size_t shown_sources(const struct sn_index *idx, const struct found *f)
{
    return f->n_sources < idx->lim.max_sources ? f->n_sources : idx->lim.max_sources;
}

static int deliver(const struct sn_index *idx, const struct found *f, sn_index_hit_fn *cb,
                   void *arg)
{
    struct sn_index_source sources[SN_INDEX_MAX_SOURCES_CAP];
    const uint32_t *peers = vec_ids(&f->file->sources);
    size_t n = shown_sources(idx, f);
    for (size_t i = 0; i < n; i++) {
        const struct peer_slot *p = peer_at(idx, peers[i]);
        sources[i].peer_id = p->id;
        sources[i].peer_ctx = p->ctx;
    }
    struct sn_index_hit hit = {
        .hash = f->file->hash,
        .size = f->file->size,
        .name = {name_entry_text(f->name), f->name->len},
        .total_sources = f->n_sources,
        .sources = sources,
        .n_sources = n,
    };
    return cb(arg, &hit);
}

/* Sort the hits and hand them to cb; the count, or what cb stopped with.
 * The files, their source arrays, the peers and the callers' contexts of
 * the peers (which cb is likely to read) are fetched in four passes, so
 * each pass has all its cache misses in flight together. */
static int deliver_all(const struct sn_index *idx, struct found *found, size_t n_found,
                       sn_index_hit_fn *cb, void *arg)
{
    for (size_t h = 0; h < n_found; h++)
        SN_PREFETCH(found[h].file);
    for (size_t h = 0; h < n_found; h++) {
        const struct sn_vec *src = &found[h].file->sources;
        found[h].n_sources = src->n;
        found[h].hash_prefix = 0;
        for (size_t b = 0; b < 8; b++)
            found[h].hash_prefix = found[h].hash_prefix << 8 | found[h].file->hash[b];
        SN_PREFETCH(vec_ids(src));
    }
    for (size_t h = 0; h < n_found; h++) {
        const uint32_t *peers = vec_ids(&found[h].file->sources);
        for (size_t i = 0, n = shown_sources(idx, &found[h]); i < n; i++) {
            const struct peer_slot *p = peer_at(idx, peers[i]);
            SN_PREFETCH(p);
            SN_PREFETCH((const char *)(p + 1) - 1);
        }
    }
    found_sort(found, n_found);
    for (size_t h = 0; h < n_found; h++) {
        const uint32_t *peers = vec_ids(&found[h].file->sources);
        for (size_t i = 0, n = shown_sources(idx, &found[h]); i < n; i++)
            SN_PREFETCH(peer_at(idx, peers[i])->ctx);
    }
    for (size_t h = 0; h < n_found; h++) {
        int rc = deliver(idx, &found[h], cb, arg);
        if (rc != 0)
            return rc;
    }
    return (int)n_found;
}

/* The filters of q other than keywords. */
static bool file_wanted(const struct sn_index_query *q, const struct file_slot *f)
{
    if (q->has_size_range && (f->size < q->min_size || f->size > q->max_size))
        return false;
    return q->hash == NULL || memcmp(f->hash, q->hash, WIRE_HASH_LEN) == 0;
}

/* Files with content hash q->hash: one per size claimed for it. */
static size_t find_by_hash(const struct sn_index *idx, const struct sn_index_query *q, size_t max,
                           struct found *found)
{
    size_t n_found = 0;
    for (uint32_t fid = sn_index_file_first(idx, q->hash); fid != SN_NONE && n_found < max;
         fid = file_at(idx, fid)->next_size) {
        const struct file_slot *f = file_at(idx, fid);
        if (!file_wanted(q, f))
            continue;
        uint32_t rid = sn_index_record_find(idx, vec_ids(&f->sources)[0], f->hash);
        found[n_found].file = f;
        found[n_found].name = name_at(idx, record_at(idx, rid)->name);
        n_found++;
    }
    return n_found;
}

/* Walk the posting list of the rarest word, kw[0]. An entry is a candidate
 * when its signature has the bits of the other words; a candidate's name is
 * fetched (SCAN_BATCH at a time) and matches when every other word is in
 * its keyword list (at most SN_KEYWORDS_MAX ids): no other posting list is
 * read at all. */
static size_t find_by_keywords(const struct sn_index *idx, const struct sn_index_query *q,
                               const uint32_t *kw, size_t n_kw, size_t max, struct found *found,
                               struct sn_index_search_info *info)
{
    size_t n_found = 0;
    struct file_set seen;
    file_set_init(&seen, max);
    uint32_t want = 0;
    for (size_t k = 1; k < n_kw; k++)
        want |= keyword_sig(kw[k]);
    const struct sn_vec *list = &keyword_at(idx, kw[0])->postings;
    const struct posting *entries = vec_postings(list);
    struct name_entry *const *names = (struct name_entry *const *)(const void *)idx->names.items;
    size_t end = list->n < idx->lim.max_scan ? list->n : idx->lim.max_scan;
    size_t i = 0;
    while (i < end && n_found < max) {
        size_t cand[SCAN_BATCH], n_cand = 0;
        for (; i < end && n_cand < SCAN_BATCH; i++) {
            if ((entries[i].sig & want) == want) {
                SN_PREFETCH(&names[entries[i].name]);
                cand[n_cand++] = i;
            }
        }
        for (size_t c = 0; c < n_cand; c++)
            SN_PREFETCH(names[entries[cand[c]].name]);
        for (size_t c = 0; c < n_cand; c++) {
            const struct name_entry *ne = names[entries[cand[c]].name];
            if (!name_has_keywords(ne, kw + 1, n_kw - 1) || !file_wanted(q, file_at(idx, ne->file)))
                continue;
            if (!file_set_add(&seen, ne->file))
                continue;
            found[n_found].file = file_at(idx, ne->file);
            found[n_found].name = ne;
            if (++n_found == max) {
                i = cand[c] + 1; /* the rest of the batch was not looked at */
                break;
            }
        }
    }
    info->scanned = i;
    info->more = n_found == max && i < list->n;
    info->budget_hit = n_found < max && i < list->n;
    return n_found;
}

int sn_index_search(const struct sn_index *idx, const struct sn_index_query *q, sn_index_hit_fn *cb,
                    void *arg, struct sn_index_search_info *info)
{
    struct sn_index_search_info unused;
    if (info == NULL)
        info = &unused;
    memset(info, 0, sizeof(*info));
    size_t max = idx->lim.max_results;
    if (q->max_results > 0 && q->max_results < max)
        max = q->max_results;
    struct found found[SN_INDEX_MAX_RESULTS_CAP];
    size_t n_found;
    if (q->n_keywords == 0) {
        if (q->hash == NULL)
            return 0;
        n_found = find_by_hash(idx, q, max, found);
    } else {
        struct sn_keywords words;
        uint32_t kw[SN_KEYWORDS_MAX];
        sn_keywords_from_query(&words, q->keywords, q->n_keywords);
        if (sn_keywords_query_void(&words) || !query_keywords(idx, &words, kw))
            return 0;
        n_found = find_by_keywords(idx, q, kw, words.n, max, found, info);
    }
    return deliver_all(idx, found, n_found, cb, arg);
}

int sn_index_lookup_hash(const struct sn_index *idx, const uint8_t hash[WIRE_HASH_LEN],
                         sn_index_hit_fn *cb, void *arg)
{
    struct sn_index_query q = {.hash = hash};
    return sn_index_search(idx, &q, cb, arg, NULL);
}

/* ---- keyword walk ------------------------------------------------------------- */
int sn_index_foreach_keyword(const struct sn_index *idx, sn_index_keyword_fn *cb, void *arg)
{
    uint32_t pos = 0, id;
    while ((id = sn_hashtab_next(&idx->keyword_tab, &pos)) != SN_NONE) {
        const struct keyword_slot *kw = keyword_at(idx, id);
        int rc = cb(arg, kw->text, kw->len);
        if (rc != 0)
            return rc;
    }
    return 0;
}
