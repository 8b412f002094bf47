/* sn_kwdir_query.c - what is read of the keyword directory (sn_kwdir.h):
 * counts and digests, the bounded and seeded query, the handoff export,
 * stats and the invariants check. */
#define SN_KWDIR_IMPL
#include "sn_kwdir_impl.h"

#include "err.h"
#include "sn_keywords.h"

#include <string.h>

size_t sn_kwdir_count(const struct sn_kwdir *d, const uint8_t keyword[KEY])
{
    uint32_t kw = sn_kwdir_kw_find(d, keyword);
    return kw == NONE ? 0 : kw_at(d, kw)->n_files;
}

size_t sn_kwdir_keyword_postings(const struct sn_kwdir *d, const uint8_t keyword[KEY])
{
    uint32_t kw = sn_kwdir_kw_find(d, keyword);
    return kw == NONE ? 0 : kw_at(d, kw)->postings;
}

size_t sn_kwdir_holder_postings(const struct sn_kwdir *d, const uint8_t holder[WIRE_ID_LEN])
{
    uint32_t h = sn_kwdir_holder_find(d, holder);
    return h == NONE ? 0 : holder_at(d, h)->postings;
}

void sn_kwdir_digest(const struct sn_kwdir *d, const uint8_t keyword[KEY],
                     uint8_t out[SN_KWDIR_DIGEST_LEN])
{
    uint32_t kw = sn_kwdir_kw_find(d, keyword);
    if (kw == NONE)
        memset(out, 0, SN_KWDIR_DIGEST_LEN);
    else
        memcpy(out, kw_at(d, kw)->digest, SN_KWDIR_DIGEST_LEN);
}

/* ---- query ------------------------------------------------------------------------ */
/* Whether every word of q is among the keywords of name. */
static bool name_matches(const struct sn_keywords *q, const char *name, size_t len)
{
    struct sn_keywords nk;
    sn_keywords_from_name(&nk, name, len);
    for (size_t i = 0; i < q->n; i++) {
        struct wire_str w = sn_keywords_word(q, i);
        bool found = false;
        for (size_t j = 0; j < nk.n && !found; j++) {
            struct wire_str v = sn_keywords_word(&nk, j);
            found = v.len == w.len && memcmp(v.ptr, w.ptr, w.len) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

/* Where the walk starts: the position, among the keyword's files in ID
 * order, drawn from (seed, keyword) under a public key, so that replicas
 * holding the same files and asked with the same seed start at the same
 * file, and that the start is spread over the files however their IDs
 * are spread (a publisher may choose IDs close together). */
static uint32_t walk_start(const struct kw_slot *k, uint64_t seed)
{
    static const uint8_t public_key[SN_HASHTAB_KEYLEN] = {'s', 'o', 'v', 'a', '-', 'k', 'w', 'd',
                                                          'i', 'r', '-', 'w', 'a', 'l', 'k'};
    uint8_t buf[8 + KEY];
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(seed >> (8 * i));
    memcpy(buf + 8, k->hash, KEY);
    return (uint32_t)(sn_hashtab_siphash(public_key, buf, sizeof(buf)) % k->n_files);
}

static void fill_holders(const struct sn_kwdir *d, const struct file_slot *f,
                         struct sn_kwdir_result *r)
{
    r->file_id = f->id;
    r->total_holders = f->holders;
    r->n_holders = 0;
    for (uint32_t id = f->first; id != NONE && r->n_holders < SN_KWDIR_MAX_HOLDERS_OUT;
         id = posting_at(d, id)->next_in_file) {
        const struct posting_slot *p = posting_at(d, id);
        r->holders[r->n_holders].id = holder_at(d, p->holder)->id;
        r->holders[r->n_holders].sources = p->sources;
        r->n_holders++;
    }
}

size_t sn_kwdir_query(const struct sn_kwdir *d, const uint8_t keyword[KEY],
                      const struct wire_str *words, size_t n_words, size_t max_results,
                      uint64_t sample_seed, struct sn_kwdir_result *out,
                      struct sn_kwdir_query_info *info)
{
    struct sn_kwdir_query_info dummy;
    if (info == NULL)
        info = &dummy;
    memset(info, 0, sizeof(*info));
    uint32_t kw = sn_kwdir_kw_find(d, keyword);
    if (kw == NONE || max_results == 0)
        return 0;
    const struct kw_slot *k = kw_at(d, kw);
    info->files = k->n_files;
    struct sn_keywords q;
    q.n = 0;
    if (n_words > 0) {
        sn_keywords_from_query(&q, words, n_words);
        if (sn_keywords_query_void(&q))
            return 0;
    }
    uint32_t start = walk_start(k, sample_seed), visited = 0;
    size_t n = 0;
    while (visited < k->n_files && n < max_results && !info->budget_hit) {
        const struct file_slot *f = file_at(d, k->files[(start + visited) % k->n_files]);
        const struct posting_slot *match = NULL;
        for (uint32_t id = f->first; id != NONE && match == NULL;
             id = posting_at(d, id)->next_in_file) {
            if (info->scanned == d->cfg.max_scan) {
                info->budget_hit = true;
                break;
            }
            info->scanned++;
            const struct posting_slot *p = posting_at(d, id);
            if (q.n == 0 || name_matches(&q, p->name, p->name_len))
                match = p;
        }
        if (info->budget_hit)
            break;
        visited++;
        if (match == NULL)
            continue;
        struct sn_kwdir_result *r = &out[n++];
        r->name.ptr = match->name;
        r->name.len = match->name_len;
        r->size = match->size;
        fill_holders(d, f, r);
    }
    info->sampled = visited < k->n_files;
    return n;
}

/* ---- handoff ------------------------------------------------------------------------ */
int sn_kwdir_export(const struct sn_kwdir *d, sn_kwdir_pick_fn *pick, sn_kwdir_posting_fn *emit,
                    void *arg)
{
    uint32_t pos = 0, kw;
    while ((kw = sn_hashtab_next(&d->kw_tab, &pos)) != NONE) {
        const struct kw_slot *k = kw_at(d, kw);
        if (pick != NULL && !pick(arg, k->hash, k->n_files))
            continue;
        for (uint32_t i = 0; i < k->n_files; i++) {
            const struct file_slot *f = file_at(d, k->files[i]);
            for (uint32_t id = f->first; id != NONE; id = posting_at(d, id)->next_in_file) {
                const struct posting_slot *p = posting_at(d, id);
                struct sn_kwdir_posting v = {
                    .keyword = k->hash,
                    .file_id = f->id,
                    .holder = holder_at(d, p->holder)->id,
                    .name = {p->name, p->name_len},
                    .size = p->size,
                    .sources = p->sources,
                    .expires_ms = p->expires,
                };
                int rc = emit(arg, &v);
                if (rc != 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* ---- introspection ------------------------------------------------------------------ */
void sn_kwdir_stats(const struct sn_kwdir *d, struct sn_kwdir_stats *out)
{
    *out = d->counts;
    out->postings = d->postings.live;
    out->keywords = d->kws.live;
    out->files = d->files.live;
    out->holders = d->holders.live;
    out->bytes = sizeof(*d) + d->heap_bytes + sn_pool_bytes(&d->kws) + sn_pool_bytes(&d->files) +
                 sn_pool_bytes(&d->holders) + sn_pool_bytes(&d->postings) +
                 sn_hashtab_bytes(&d->kw_tab) + sn_hashtab_bytes(&d->file_tab) +
                 sn_hashtab_bytes(&d->holder_tab) + sn_hashtab_bytes(&d->posting_tab);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return SOVA_ERR_INTERNAL;                                                              \
    } while (0)

static int check_keyword(const struct sn_kwdir *d, uint32_t kw, size_t *files, size_t *postings)
{
    const struct kw_slot *k = kw_at(d, kw);
    uint8_t digest[SN_KWDIR_DIGEST_LEN] = {0};
    uint32_t sum = 0;
    CHECK(k->n_files > 0 && k->n_files <= k->cap_files);
    for (uint32_t i = 0; i < k->n_files; i++) {
        const struct file_slot *f = file_at(d, k->files[i]);
        CHECK(f->kw == kw && f->holders > 0);
        CHECK(i == 0 || memcmp(file_at(d, k->files[i - 1])->id, f->id, WIRE_HASH_LEN) < 0);
        CHECK(sn_kwdir_file_find(d, kw, f->id) == k->files[i]);
        uint32_t n = 0;
        const uint8_t *prev = NULL;
        for (uint32_t id = f->first; id != NONE; id = posting_at(d, id)->next_in_file, n++) {
            const struct posting_slot *p = posting_at(d, id);
            const uint8_t *hid = holder_at(d, p->holder)->id;
            CHECK(p->file == k->files[i] && sn_kwdir_posting_find(d, p->file, p->holder) == id);
            CHECK(prev == NULL || memcmp(prev, hid, WIRE_ID_LEN) < 0);
            uint8_t share[SN_KWDIR_DIGEST_LEN];
            CHECK(sn_kwdir_posting_share(k->hash, f->id, hid, share) == 0);
            CHECK(memcmp(share, p->share, sizeof(share)) == 0);
            sn_kwdir_digest_add(digest, share, false);
            prev = hid;
        }
        CHECK(n == f->holders);
        sum += n;
    }
    CHECK(sum == k->postings && memcmp(digest, k->digest, sizeof(digest)) == 0);
    *files += k->n_files;
    *postings += sum;
    return 0;
}

int sn_kwdir_check(const struct sn_kwdir *d)
{
    size_t files = 0, postings = 0, by_holder = 0, n_exp = 0;
    uint32_t pos = 0, id;
    while ((id = sn_hashtab_next(&d->kw_tab, &pos)) != NONE) {
        CHECK(sn_kwdir_kw_find(d, kw_at(d, id)->hash) == id);
        CHECK(check_keyword(d, id, &files, &postings) == 0);
    }
    pos = 0;
    while ((id = sn_hashtab_next(&d->holder_tab, &pos)) != NONE) {
        const struct holder_slot *h = holder_at(d, id);
        uint32_t n = 0, prev = NONE;
        for (uint32_t p = h->first; p != NONE; prev = p, p = posting_at(d, p)->hnext, n++)
            CHECK(posting_at(d, p)->holder == id && posting_at(d, p)->hprev == prev);
        CHECK(n == h->postings && n > 0 && n <= d->cfg.max_per_holder);
        by_holder += n;
    }
    uint64_t last = 0;
    for (id = d->exp_head; id != NONE; id = posting_at(d, id)->enext, n_exp++) {
        CHECK(posting_at(d, id)->expires >= last);
        last = posting_at(d, id)->expires;
        CHECK(posting_at(d, id)->enext != NONE || d->exp_tail == id);
    }
    CHECK(d->kw_tab.count == d->kws.live && d->file_tab.count == d->files.live);
    CHECK(d->holder_tab.count == d->holders.live && d->posting_tab.count == d->postings.live);
    CHECK(files == d->files.live && postings == d->postings.live);
    CHECK(by_holder == postings && n_exp == postings && postings <= d->cfg.max_postings);
    return 0;
}
