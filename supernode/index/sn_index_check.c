/* sn_index_check.c - sn_index_check(): every invariant of sn_index_impl.h,
 * checked the slow way, for tests. */
#define SN_INDEX_IMPL
#include "sn_index_impl.h"

#include "err.h"
#include "sn_keywords.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return SOVA_ERR_INTERNAL;                                                              \
    } while (0)

/* The ids a table holds, as flags over the pool's slots (*live, calloc'd);
 * checks the table holds each id once and as many as the pool has live.
 * With files, each id in the table heads a chain (next_size) of ids. */
static int live_ids(const struct sn_index *idx, const struct sn_hashtab *t, const struct sn_pool *p,
                    uint8_t **live)
{
    bool chains = p == &idx->files;
    *live = calloc(p->len + 1, 1);
    if (*live == NULL)
        return SOVA_ERR_NOMEM;
    uint32_t pos = 0, head, n = 0, heads = 0;
    while ((head = sn_hashtab_next(t, &pos)) != SN_NONE) {
        heads++;
        for (uint32_t id = head; id != SN_NONE;
             id = chains ? file_at(idx, id)->next_size : SN_NONE) {
            CHECK(id < p->len && !(*live)[id]);
            CHECK(!chains ||
                  memcmp(file_at(idx, id)->hash, file_at(idx, head)->hash, WIRE_HASH_LEN) == 0);
            CHECK(!chains || sn_index_file_first(idx, file_at(idx, id)->hash) == head);
            (*live)[id] = 1;
            n++;
        }
    }
    CHECK(heads == t->count && n == p->live);
    return 0;
}

static size_t vec_heap_bytes(const struct sn_vec *v, size_t size)
{
    return sn_vec_on_heap(v, size) ? v->cap * size : 0;
}

struct live {
    uint8_t *peers, *files, *records, *names, *keywords;
    uint32_t *refs; /* records per name, counted from the records */
};

static int check_peers(const struct sn_index *idx, const struct live *lv)
{
    uint32_t records = 0;
    for (uint32_t pid = 0; pid < idx->peers.len; pid++) {
        if (!lv->peers[pid])
            continue;
        const struct peer_slot *p = peer_at(idx, pid);
        uint32_t n = 0, bytes = 0, prev = SN_NONE;
        for (uint32_t rid = p->first_rec; rid != SN_NONE; rid = record_at(idx, rid)->peer_next) {
            CHECK(rid < idx->records.len && lv->records[rid] && n <= idx->records.live);
            const struct record_slot *r = record_at(idx, rid);
            CHECK(r->peer == pid && r->peer_prev == prev);
            bytes += name_at(idx, r->name)->len;
            prev = rid;
            n++;
        }
        CHECK(n == p->n_files && bytes == p->name_bytes);
        records += n;
    }
    CHECK(records == idx->records.live);
    return 0;
}

static int check_records_and_files(const struct sn_index *idx, const struct live *lv, size_t *heap)
{
    for (uint32_t rid = 0; rid < idx->records.len; rid++) {
        if (!lv->records[rid])
            continue;
        const struct record_slot *r = record_at(idx, rid);
        CHECK(lv->peers[r->peer] && lv->files[r->file] && lv->names[r->name]);
        CHECK(name_at(idx, r->name)->file == r->file);
        const struct file_slot *f = file_at(idx, r->file);
        CHECK(r->file_pos < f->sources.n && vec_ids(&f->sources)[r->file_pos] == r->peer);
        CHECK(sn_index_record_find(idx, r->peer, f->hash) == rid);
        lv->refs[r->name]++;
    }
    for (uint32_t fid = 0; fid < idx->files.len; fid++) {
        if (!lv->files[fid])
            continue;
        const struct file_slot *f = file_at(idx, fid);
        const struct sn_vec *src = &f->sources;
        CHECK(src->n >= 1 && src->n <= src->cap);
        for (uint32_t i = 0; i < src->n; i++) {
            uint32_t pid = vec_ids(src)[i];
            CHECK(pid < idx->peers.len && lv->peers[pid]);
            uint32_t rid = sn_index_record_find(idx, pid, f->hash);
            CHECK(rid != SN_NONE && record_at(idx, rid)->file == fid &&
                  record_at(idx, rid)->file_pos == i);
        }
        *heap += vec_heap_bytes(src, sizeof(uint32_t));
    }
    return 0;
}

/* Each name is in the posting list of exactly the keywords of its text. */
static int check_names(const struct sn_index *idx, const struct live *lv, size_t *heap,
                       size_t *postings)
{
    for (uint32_t nid = 0; nid < idx->names.len; nid++) {
        if (!lv->names[nid])
            continue;
        const struct name_entry *ne = name_at(idx, nid);
        CHECK(ne->refs >= 1 && ne->refs == lv->refs[nid]);
        struct sn_keywords words;
        sn_keywords_from_name(&words, name_entry_text(ne), ne->len);
        CHECK(words.n == ne->n_kw);
        uint32_t sig = 0;
        for (size_t i = 0; i < ne->n_kw; i++)
            sig |= keyword_sig(ne->kw[i]);
        for (size_t i = 0; i < ne->n_kw; i++) {
            uint32_t kid = ne->kw[i], pos = ne->kw[ne->n_kw + i];
            CHECK(kid < idx->keywords.len && lv->keywords[kid]);
            const struct keyword_slot *kw = keyword_at(idx, kid);
            struct wire_str w = sn_keywords_word(&words, i);
            CHECK(kw->len == w.len && memcmp(kw->text, w.ptr, w.len) == 0);
            CHECK(pos < kw->postings.n && vec_postings(&kw->postings)[pos].name == nid &&
                  vec_postings(&kw->postings)[pos].sig == sig);
        }
        *heap += sizeof(*ne) + 2 * (size_t)ne->n_kw * sizeof(uint32_t) + ne->len;
        *postings += ne->n_kw;
    }
    return 0;
}

static int check_keywords(const struct sn_index *idx, const struct live *lv, size_t *heap,
                          size_t *postings)
{
    for (uint32_t kid = 0; kid < idx->keywords.len; kid++) {
        if (!lv->keywords[kid])
            continue;
        const struct keyword_slot *kw = keyword_at(idx, kid);
        CHECK(kw->postings.n >= 1 && kw->len >= SN_KEYWORD_MIN_LEN &&
              kw->len <= SN_KEYWORD_MAX_LEN);
        CHECK(sn_index_keyword_find(idx, (struct wire_str){kw->text, kw->len}) == kid);
        for (uint32_t i = 0; i < kw->postings.n; i++)
            CHECK(lv->names[vec_postings(&kw->postings)[i].name]);
        *heap += vec_heap_bytes(&kw->postings, sizeof(struct posting)) + kw->len;
        *postings += kw->postings.n;
    }
    return 0;
}

static int check_all(const struct sn_index *idx, struct live *lv)
{
    int rc;
    if ((rc = live_ids(idx, &idx->peer_tab, &idx->peers, &lv->peers)) != 0 ||
        (rc = live_ids(idx, &idx->file_tab, &idx->files, &lv->files)) != 0 ||
        (rc = live_ids(idx, &idx->record_tab, &idx->records, &lv->records)) != 0 ||
        (rc = live_ids(idx, &idx->name_tab, &idx->names, &lv->names)) != 0 ||
        (rc = live_ids(idx, &idx->keyword_tab, &idx->keywords, &lv->keywords)) != 0)
        return rc;
    lv->refs = calloc(idx->names.len + 1, sizeof(uint32_t));
    if (lv->refs == NULL)
        return SOVA_ERR_NOMEM;
    size_t heap = 0, name_postings = 0, keyword_postings = 0;
    if ((rc = check_peers(idx, lv)) != 0 || (rc = check_records_and_files(idx, lv, &heap)) != 0 ||
        (rc = check_names(idx, lv, &heap, &name_postings)) != 0 ||
        (rc = check_keywords(idx, lv, &heap, &keyword_postings)) != 0)
        return rc;
    CHECK(name_postings == idx->postings && keyword_postings == idx->postings);
    CHECK(heap == idx->heap_bytes);
    return 0;
}

int sn_index_check(const struct sn_index *idx)
{
    struct live lv = {0};
    int rc = check_all(idx, &lv);
    free(lv.peers);
    free(lv.files);
    free(lv.records);
    free(lv.names);
    free(lv.keywords);
    free(lv.refs);
    return rc;
}
