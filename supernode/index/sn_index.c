/* sn_index.c - the supernode's keyword index: peers, records and the upkeep
 * of files, names and keywords (sn_index.h; layout in sn_index_impl.h).
 *
 * Every change is built from a few pairs of functions that undo each other
 * (create/destroy of a name, link/unlink of a source, ...). A change that
 * fails half-way runs the undo half of what it did, so the index is never
 * left inconsistent, not even when malloc fails.
 */
#define SN_INDEX_IMPL
#include "sn_index_impl.h"

#include "err.h"
#include "sn_keywords.h"
#include "sova_assert.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------ */
static uint32_t key_hash(const struct sn_index *idx, const void *key, size_t len)
{
    return (uint32_t)sn_hashtab_siphash(idx->lim.hash_key, key, len);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t peer_hash(const struct sn_index *idx, const uint8_t id[WIRE_ID_LEN])
{
    return key_hash(idx, id, WIRE_ID_LEN);
}

static uint32_t file_hash(const struct sn_index *idx, const uint8_t *hash)
{
    return key_hash(idx, hash, WIRE_HASH_LEN);
}

static uint32_t record_hash(const struct sn_index *idx, uint32_t peer, const uint8_t *hash)
{
    uint8_t key[4 + WIRE_HASH_LEN];
    put_le32(key, peer);
    memcpy(key + 4, hash, WIRE_HASH_LEN);
    return key_hash(idx, key, sizeof(key));
}

static uint32_t name_hash(const struct sn_index *idx, uint32_t file, const char *name, size_t len)
{
    uint8_t key[4 + SN_INDEX_MAX_NAME_LEN];
    if (len > SN_INDEX_MAX_NAME_LEN) /* publish refuses such names; hash a prefix anyway */
        len = SN_INDEX_MAX_NAME_LEN;
    put_le32(key, file);
    memcpy(key + 4, name, len);
    return key_hash(idx, key, 4 + len);
}

static bool peer_eq(const void *ctx, uint32_t id, const void *key)
{
    return memcmp(peer_at(ctx, id)->id, key, WIRE_ID_LEN) == 0;
}

static bool file_eq(const void *ctx, uint32_t id, const void *key)
{
    return memcmp(file_at(ctx, id)->hash, key, WIRE_HASH_LEN) == 0;
}

struct record_key {
    uint32_t peer;
    const uint8_t *hash;
};

static bool record_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct record_slot *r = record_at(ctx, id);
    const struct record_key *k = key;
    return r->peer == k->peer && memcmp(file_at(ctx, r->file)->hash, k->hash, WIRE_HASH_LEN) == 0;
}

struct name_key {
    uint32_t file;
    struct wire_str name;
};

static bool name_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct name_entry *ne = name_at(ctx, id);
    const struct name_key *k = key;
    return ne->file == k->file && ne->len == k->name.len &&
           memcmp(name_entry_text(ne), k->name.ptr, k->name.len) == 0;
}

static bool keyword_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct keyword_slot *kw = keyword_at(ctx, id);
    const struct wire_str *w = key;
    return kw->len == w->len && memcmp(kw->text, w->ptr, w->len) == 0;
}

static uint32_t peer_find(const struct sn_index *idx, const uint8_t id[WIRE_ID_LEN])
{
    return sn_hashtab_find(&idx->peer_tab, peer_hash(idx, id), peer_eq, idx, id);
}

uint32_t sn_index_file_first(const struct sn_index *idx, const uint8_t hash[WIRE_HASH_LEN])
{
    return sn_hashtab_find(&idx->file_tab, file_hash(idx, hash), file_eq, idx, hash);
}

uint32_t sn_index_keyword_find(const struct sn_index *idx, struct wire_str word)
{
    return sn_hashtab_find(&idx->keyword_tab, key_hash(idx, word.ptr, word.len), keyword_eq, idx,
                           &word);
}

/* ---- keywords ---------------------------------------------------------------- */
static int keyword_get(struct sn_index *idx, struct wire_str word, uint32_t *out)
{
    uint32_t hash = key_hash(idx, word.ptr, word.len);
    uint32_t id = sn_hashtab_find(&idx->keyword_tab, hash, keyword_eq, idx, &word);
    if (id != SN_NONE) {
        *out = id;
        return 0;
    }
    char *text = malloc(word.len);
    if (text == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(text, word.ptr, word.len);
    int rc = sn_pool_alloc(&idx->keywords, &id);
    if (rc == 0) {
        rc = sn_hashtab_insert(&idx->keyword_tab, hash, id);
        if (rc != 0)
            sn_pool_release(&idx->keywords, id);
    }
    if (rc != 0) {
        free(text);
        return rc;
    }
    struct keyword_slot *kw = keyword_at(idx, id);
    sn_vec_init(&kw->postings, sizeof(struct posting));
    kw->text = text;
    kw->len = (uint32_t)word.len;
    idx->heap_bytes += word.len;
    *out = id;
    return 0;
}

static void keyword_release_if_unused(struct sn_index *idx, uint32_t id)
{
    struct keyword_slot *kw = keyword_at(idx, id);
    if (kw->postings.n > 0)
        return;
    sn_hashtab_remove(&idx->keyword_tab, key_hash(idx, kw->text, kw->len), id);
    idx->heap_bytes -= kw->len;
    free(kw->text);
    sn_vec_free(idx, &kw->postings, sizeof(struct posting));
    sn_pool_release(&idx->keywords, id);
}

/* ---- names -------------------------------------------------------------------- */
/* Take name id out of the posting lists of its first n keywords. */
static void name_unlink_keywords(struct sn_index *idx, uint32_t id, size_t n)
{
    struct name_entry *ne = name_at(idx, id);
    for (size_t i = 0; i < n; i++) {
        uint32_t kid = ne->kw[i], pos = ne->kw[ne->n_kw + i];
        struct keyword_slot *kw = keyword_at(idx, kid);
        struct posting moved;
        idx->postings--;
        if (sn_vec_swap_remove(idx, &kw->postings, sizeof(moved), pos, &moved)) {
            /* Tell the name that moved where it now sits. */
            struct name_entry *other = name_at(idx, moved.name);
            for (size_t j = 0; j < other->n_kw; j++) {
                if (other->kw[j] == kid) {
                    other->kw[other->n_kw + j] = pos;
                    break;
                }
            }
        }
        keyword_release_if_unused(idx, kid);
    }
}

/* Release the keywords ne->kw[from..to) if no posting list holds them. */
static void keywords_release_if_unused(struct sn_index *idx, const struct name_entry *ne,
                                       size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        keyword_release_if_unused(idx, ne->kw[i]);
}

/* Put name id into the posting lists of its keywords: first find or make
 * every keyword (the signature needs all their ids), then append. */
static int name_link_keywords(struct sn_index *idx, uint32_t id, const struct sn_keywords *words)
{
    struct name_entry *ne = name_at(idx, id);
    struct posting entry = {id, 0};
    for (size_t i = 0; i < words->n; i++) {
        int rc = keyword_get(idx, sn_keywords_word(words, i), &ne->kw[i]);
        if (rc != 0) {
            keywords_release_if_unused(idx, ne, 0, i);
            return rc;
        }
        entry.sig |= keyword_sig(ne->kw[i]);
    }
    for (size_t i = 0; i < words->n; i++) {
        struct keyword_slot *kw = keyword_at(idx, ne->kw[i]);
        int rc = sn_vec_push(idx, &kw->postings, sizeof(entry), &entry);
        if (rc != 0) {
            name_unlink_keywords(idx, id, i);
            keywords_release_if_unused(idx, ne, i, words->n);
            return rc;
        }
        ne->kw[ne->n_kw + i] = kw->postings.n - 1;
        idx->postings++;
    }
    return 0;
}

/* The name entry of (file, name), created with refs 0 if needed. */
static int name_get(struct sn_index *idx, uint32_t file, struct wire_str name, uint32_t *out)
{
    struct name_key key = {file, name};
    uint32_t hash = name_hash(idx, file, name.ptr, name.len);
    uint32_t id = sn_hashtab_find(&idx->name_tab, hash, name_eq, idx, &key);
    if (id != SN_NONE) {
        *out = id;
        return 0;
    }
    struct sn_keywords words;
    sn_keywords_from_name(&words, name.ptr, name.len);
    size_t size = sizeof(struct name_entry) + 2 * words.n * sizeof(uint32_t) + name.len;
    struct name_entry *ne = malloc(size);
    if (ne == NULL)
        return SOVA_ERR_NOMEM;
    ne->file = file;
    ne->refs = 0;
    ne->len = (uint16_t)name.len;
    ne->n_kw = (uint8_t)words.n;
    memcpy((char *)(ne->kw + 2 * words.n), name.ptr, name.len);
    int rc = sn_pool_alloc(&idx->names, &id);
    if (rc != 0) {
        free(ne);
        return rc;
    }
    ((struct name_entry **)(void *)idx->names.items)[id] = ne;
    idx->heap_bytes += size;
    rc = name_link_keywords(idx, id, &words);
    if (rc == 0) {
        rc = sn_hashtab_insert(&idx->name_tab, hash, id);
        if (rc != 0)
            name_unlink_keywords(idx, id, words.n);
    }
    if (rc != 0) {
        idx->heap_bytes -= size;
        free(ne);
        sn_pool_release(&idx->names, id);
        return rc;
    }
    *out = id;
    return 0;
}

static void name_release_if_unused(struct sn_index *idx, uint32_t id)
{
    struct name_entry *ne = name_at(idx, id);
    if (ne->refs > 0)
        return;
    name_unlink_keywords(idx, id, ne->n_kw);
    sn_hashtab_remove(&idx->name_tab, name_hash(idx, ne->file, name_entry_text(ne), ne->len), id);
    idx->heap_bytes -= sizeof(*ne) + 2 * (size_t)ne->n_kw * sizeof(uint32_t) + ne->len;
    free(ne);
    sn_pool_release(&idx->names, id);
}

/* ---- files -------------------------------------------------------------------- */
/* The file (hash, size), created without sources if needed. */
static int file_get(struct sn_index *idx, const uint8_t *hash, uint64_t size, uint32_t *out)
{
    uint32_t first = sn_index_file_first(idx, hash);
    for (uint32_t id = first; id != SN_NONE; id = file_at(idx, id)->next_size) {
        if (file_at(idx, id)->size == size) {
            *out = id;
            return 0;
        }
    }
    uint32_t id;
    int rc = sn_pool_alloc(&idx->files, &id);
    if (rc != 0)
        return rc;
    if (first == SN_NONE) {
        rc = sn_hashtab_insert(&idx->file_tab, file_hash(idx, hash), id);
        if (rc != 0) {
            sn_pool_release(&idx->files, id);
            return rc;
        }
    }
    struct file_slot *f = file_at(idx, id);
    sn_vec_init(&f->sources, sizeof(uint32_t));
    f->size = size;
    memcpy(f->hash, hash, WIRE_HASH_LEN);
    f->next_size = SN_NONE;
    if (first != SN_NONE) { /* second in the chain: the table keeps pointing at first */
        f->next_size = file_at(idx, first)->next_size;
        file_at(idx, first)->next_size = id;
    }
    *out = id;
    return 0;
}

/* Call only after the names of the file were released. */
static void file_release_if_unused(struct sn_index *idx, uint32_t id)
{
    struct file_slot *f = file_at(idx, id);
    if (f->sources.n > 0)
        return;
    uint32_t h = file_hash(idx, f->hash);
    uint32_t first = sn_index_file_first(idx, f->hash);
    if (first == id) {
        if (f->next_size != SN_NONE)
            sn_hashtab_replace(&idx->file_tab, h, id, f->next_size);
        else
            sn_hashtab_remove(&idx->file_tab, h, id);
    } else {
        uint32_t prev = first;
        while (file_at(idx, prev)->next_size != id)
            prev = file_at(idx, prev)->next_size;
        file_at(idx, prev)->next_size = f->next_size;
    }
    sn_vec_free(idx, &f->sources, sizeof(uint32_t));
    sn_pool_release(&idx->files, id);
}

/* ---- records ----------------------------------------------------------------- */
uint32_t sn_index_record_find(const struct sn_index *idx, uint32_t peer,
                              const uint8_t hash[WIRE_HASH_LEN])
{
    struct record_key key = {peer, hash};
    return sn_hashtab_find(&idx->record_tab, record_hash(idx, peer, hash), record_eq, idx, &key);
}

/* Make the peer of record rid a source of file fid (the record's file field
 * is set by the caller). */
static int file_link_source(struct sn_index *idx, uint32_t fid, uint32_t rid)
{
    struct file_slot *f = file_at(idx, fid);
    int rc = sn_vec_push(idx, &f->sources, sizeof(uint32_t), &record_at(idx, rid)->peer);
    if (rc == 0)
        record_at(idx, rid)->file_pos = f->sources.n - 1;
    return rc;
}

static void file_unlink_source(struct sn_index *idx, uint32_t fid, uint32_t pos)
{
    struct file_slot *f = file_at(idx, fid);
    uint32_t moved;
    if (sn_vec_swap_remove(idx, &f->sources, sizeof(moved), pos, &moved))
        /* a peer has one record per content hash */
        record_at(idx, sn_index_record_find(idx, moved, f->hash))->file_pos = pos;
}

static int record_create(struct sn_index *idx, uint32_t pid, const uint8_t *hash, uint32_t fid,
                         uint32_t nid)
{
    uint32_t rid;
    int rc = sn_pool_alloc(&idx->records, &rid);
    if (rc != 0)
        return rc;
    record_at(idx, rid)->peer = pid;
    rc = file_link_source(idx, fid, rid);
    if (rc == 0) {
        rc = sn_hashtab_insert(&idx->record_tab, record_hash(idx, pid, hash), rid);
        if (rc != 0)
            file_unlink_source(idx, fid, record_at(idx, rid)->file_pos);
    }
    if (rc != 0) {
        sn_pool_release(&idx->records, rid);
        return rc;
    }
    struct record_slot *r = record_at(idx, rid);
    struct peer_slot *p = peer_at(idx, pid);
    struct name_entry *ne = name_at(idx, nid);
    r->file = fid;
    r->name = nid;
    r->peer_prev = SN_NONE;
    r->peer_next = p->first_rec;
    if (p->first_rec != SN_NONE)
        record_at(idx, p->first_rec)->peer_prev = rid;
    p->first_rec = rid;
    p->n_files++;
    p->name_bytes += ne->len;
    ne->refs++;
    return 0;
}

/* Point an existing record at another file and/or name. */
static int record_rebind(struct sn_index *idx, uint32_t rid, uint32_t fid, uint32_t nid)
{
    struct record_slot *r = record_at(idx, rid);
    uint32_t old_file = r->file, old_pos = r->file_pos, old_name = r->name;
    if (fid != old_file) {
        int rc = file_link_source(idx, fid, rid);
        if (rc != 0)
            return rc;
        file_unlink_source(idx, old_file, old_pos);
    }
    r = record_at(idx, rid);
    r->file = fid;
    r->name = nid;
    struct peer_slot *p = peer_at(idx, r->peer);
    struct name_entry *ne = name_at(idx, nid), *old = name_at(idx, old_name);
    p->name_bytes = p->name_bytes - old->len + ne->len;
    ne->refs++;
    SOVA_ASSERT(old->refs > 0); /* a record pointed at it */
    old->refs--;
    name_release_if_unused(idx, old_name);
    if (fid != old_file)
        file_release_if_unused(idx, old_file);
    return 0;
}

static void record_destroy(struct sn_index *idx, uint32_t rid)
{
    struct record_slot *r = record_at(idx, rid);
    struct peer_slot *p = peer_at(idx, r->peer);
    uint32_t fid = r->file, nid = r->name;
    struct name_entry *ne = name_at(idx, nid);
    if (r->peer_prev != SN_NONE)
        record_at(idx, r->peer_prev)->peer_next = r->peer_next;
    else
        p->first_rec = r->peer_next;
    if (r->peer_next != SN_NONE)
        record_at(idx, r->peer_next)->peer_prev = r->peer_prev;
    SOVA_ASSERT(p->n_files > 0 && p->name_bytes >= ne->len);
    p->n_files--;
    p->name_bytes -= ne->len;
    sn_hashtab_remove(&idx->record_tab, record_hash(idx, r->peer, file_at(idx, fid)->hash), rid);
    file_unlink_source(idx, fid, r->file_pos);
    sn_pool_release(&idx->records, rid);
    SOVA_ASSERT(ne->refs > 0); /* this record pointed at it */
    ne->refs--;
    name_release_if_unused(idx, nid);
    file_release_if_unused(idx, fid);
}

/* ---- publish ----------------------------------------------------------------- */
static bool add_record_valid(const struct msg_publish_record *rec)
{
    return rec->name.len > 0 && rec->name.len <= SN_INDEX_MAX_NAME_LEN && rec->chunk_size > 0 &&
           memchr(rec->name.ptr, '\0', rec->name.len) == NULL;
}

static int publish_add(struct sn_index *idx, uint32_t pid, const struct msg_publish_record *rec)
{
    uint32_t rid = sn_index_record_find(idx, pid, rec->hash);
    const struct peer_slot *p = peer_at(idx, pid);
    size_t old_len = 0;
    if (rid != SN_NONE) {
        const struct record_slot *r = record_at(idx, rid);
        const struct name_entry *ne = name_at(idx, r->name);
        if (file_at(idx, r->file)->size == rec->size && ne->len == rec->name.len &&
            memcmp(name_entry_text(ne), rec->name.ptr, ne->len) == 0)
            return 0; /* nothing changes */
        old_len = ne->len;
    } else if (p->n_files >= idx->lim.max_files_per_peer) {
        return SOVA_ERR_PEER_FILES;
    }
    if (p->name_bytes - old_len + rec->name.len > idx->lim.max_name_bytes_per_peer)
        return SOVA_ERR_PEER_NAME_BYTES;
    if (rid == SN_NONE && idx->records.live >= idx->lim.max_records)
        return SOVA_ERR_INDEX_FULL;

    uint32_t fid, nid;
    int rc = file_get(idx, rec->hash, rec->size, &fid);
    if (rc != 0)
        return rc;
    rc = name_get(idx, fid, rec->name, &nid);
    if (rc == 0) {
        if (rid == SN_NONE)
            rc = record_create(idx, pid, rec->hash, fid, nid);
        else
            rc = record_rebind(idx, rid, fid, nid);
        if (rc != 0)
            name_release_if_unused(idx, nid);
    }
    if (rc != 0)
        file_release_if_unused(idx, fid);
    return rc;
}

int sn_index_publish(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN],
                     const struct msg_publish_record *rec)
{
    uint32_t pid = peer_find(idx, peer_id);
    if (pid == SN_NONE)
        return SOVA_ERR_UNKNOWN_PEER;
    switch (rec->action) {
    case MSG_PUBLISH_ADD:
        if (!add_record_valid(rec))
            return SOVA_ERR_BAD_VALUE;
        /* Names reach terminals and logs: nothing that controls them. */
        if (text_check(rec->name.ptr, rec->name.len, NULL) != TEXT_OK)
            return SOVA_ERR_UNSAFE_NAME;
        return publish_add(idx, pid, rec);
    case MSG_PUBLISH_REMOVE: {
        uint32_t rid = sn_index_record_find(idx, pid, rec->hash);
        if (rid != SN_NONE)
            record_destroy(idx, rid);
        return 0;
    }
    default:
        return SOVA_ERR_BAD_VALUE;
    }
}

/* ---- peers -------------------------------------------------------------------- */
int sn_index_peer_add(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN], void *peer_ctx)
{
    if (peer_find(idx, peer_id) != SN_NONE)
        return SOVA_ERR_PEER_EXISTS;
    uint32_t pid;
    int rc = sn_pool_alloc(&idx->peers, &pid);
    if (rc != 0)
        return rc;
    rc = sn_hashtab_insert(&idx->peer_tab, peer_hash(idx, peer_id), pid);
    if (rc != 0) {
        sn_pool_release(&idx->peers, pid);
        return rc;
    }
    struct peer_slot *p = peer_at(idx, pid);
    p->first_rec = SN_NONE;
    memcpy(p->id, peer_id, WIRE_ID_LEN);
    p->ctx = peer_ctx;
    return 0;
}

int sn_index_peer_set_ctx(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN], void *peer_ctx)
{
    uint32_t pid = peer_find(idx, peer_id);
    if (pid == SN_NONE)
        return SOVA_ERR_UNKNOWN_PEER;
    peer_at(idx, pid)->ctx = peer_ctx;
    return 0;
}

int sn_index_peer_remove(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN])
{
    uint32_t pid = peer_find(idx, peer_id);
    if (pid == SN_NONE)
        return SOVA_ERR_UNKNOWN_PEER;
    while (peer_at(idx, pid)->first_rec != SN_NONE)
        record_destroy(idx, peer_at(idx, pid)->first_rec);
    sn_hashtab_remove(&idx->peer_tab, peer_hash(idx, peer_id), pid);
    sn_pool_release(&idx->peers, pid);
    return 0;
}

void *sn_index_peer_ctx(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN])
{
    uint32_t pid = peer_find(idx, peer_id);
    return pid == SN_NONE ? NULL : peer_at(idx, pid)->ctx;
}

size_t sn_index_peer_files(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN])
{
    uint32_t pid = peer_find(idx, peer_id);
    return pid == SN_NONE ? 0 : peer_at(idx, pid)->n_files;
}

bool sn_index_peer_has(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN],
                       const uint8_t hash[WIRE_HASH_LEN])
{
    uint32_t pid = peer_find(idx, peer_id);
    return pid != SN_NONE && sn_index_record_find(idx, pid, hash) != SN_NONE;
}

/* ---- lifetime ---------------------------------------------------------------- */
struct sn_index_limits sn_index_limits_default(void)
{
    struct sn_index_limits lim = {
        .max_files_per_peer = SN_INDEX_MAX_FILES_PER_PEER_DEFAULT,
        .max_name_bytes_per_peer = SN_INDEX_MAX_NAME_BYTES_PER_PEER_DEFAULT,
        .max_records = SN_INDEX_MAX_RECORDS_DEFAULT,
        .max_results = SN_INDEX_MAX_RESULTS_DEFAULT,
        .max_sources = SN_INDEX_MAX_SOURCES_DEFAULT,
        .max_scan = SN_INDEX_MAX_SCAN_DEFAULT,
        .hash_key = {0},
    };
    return lim;
}

static uint32_t clamp_limit(uint32_t v, uint32_t cap)
{
    return v < 1 ? 1 : v > cap ? cap : v;
}

void sn_index_set_peer_limits(struct sn_index *idx, uint32_t max_files_per_peer,
                              uint32_t max_name_bytes_per_peer, uint32_t max_results)
{
    idx->lim.max_files_per_peer = clamp_limit(max_files_per_peer, SN_INDEX_MAX_RECORDS_CAP);
    idx->lim.max_name_bytes_per_peer = clamp_limit(max_name_bytes_per_peer, UINT32_MAX);
    idx->lim.max_results = clamp_limit(max_results, SN_INDEX_MAX_RESULTS_CAP);
}

struct sn_index *sn_index_new(const struct sn_index_limits *lim)
{
    struct sn_index *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->lim = *lim;
    idx->lim.max_files_per_peer = clamp_limit(lim->max_files_per_peer, SN_INDEX_MAX_RECORDS_CAP);
    idx->lim.max_name_bytes_per_peer = clamp_limit(lim->max_name_bytes_per_peer, UINT32_MAX);
    idx->lim.max_records = clamp_limit(lim->max_records, SN_INDEX_MAX_RECORDS_CAP);
    idx->lim.max_results = clamp_limit(lim->max_results, SN_INDEX_MAX_RESULTS_CAP);
    idx->lim.max_sources = clamp_limit(lim->max_sources, SN_INDEX_MAX_SOURCES_CAP);
    idx->lim.max_scan = clamp_limit(lim->max_scan, UINT32_MAX);
    sn_pool_init(&idx->peers, sizeof(struct peer_slot));
    sn_pool_init(&idx->files, sizeof(struct file_slot));
    sn_pool_init(&idx->records, sizeof(struct record_slot));
    sn_pool_init(&idx->names, sizeof(struct name_entry *));
    sn_pool_init(&idx->keywords, sizeof(struct keyword_slot));
    sn_hashtab_init(&idx->peer_tab);
    sn_hashtab_init(&idx->file_tab);
    sn_hashtab_init(&idx->record_tab);
    sn_hashtab_init(&idx->name_tab);
    sn_hashtab_init(&idx->keyword_tab);
    return idx;
}

void sn_index_free(struct sn_index *idx)
{
    if (idx == NULL)
        return;
    /* The tables list what is live; free what those entries own. */
    uint32_t pos = 0, id;
    while ((id = sn_hashtab_next(&idx->name_tab, &pos)) != SN_NONE)
        free(name_at(idx, id));
    pos = 0;
    while ((id = sn_hashtab_next(&idx->keyword_tab, &pos)) != SN_NONE) {
        free(keyword_at(idx, id)->text);
        sn_vec_free(idx, &keyword_at(idx, id)->postings, sizeof(struct posting));
    }
    pos = 0;
    while ((id = sn_hashtab_next(&idx->file_tab, &pos)) != SN_NONE) {
        for (uint32_t fid = id; fid != SN_NONE; fid = file_at(idx, fid)->next_size)
            sn_vec_free(idx, &file_at(idx, fid)->sources, sizeof(uint32_t));
    }
    struct sn_pool *pools[] = {&idx->peers, &idx->files, &idx->records, &idx->names,
                               &idx->keywords};
    struct sn_hashtab *tabs[] = {&idx->peer_tab, &idx->file_tab, &idx->record_tab, &idx->name_tab,
                                 &idx->keyword_tab};
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
        sn_pool_free(pools[i]);
        sn_hashtab_free(tabs[i]);
    }
    free(idx);
}

void sn_index_stats(const struct sn_index *idx, struct sn_index_stats *out)
{
    const struct sn_pool *pools[] = {&idx->peers, &idx->files, &idx->records, &idx->names,
                                     &idx->keywords};
    const struct sn_hashtab *tabs[] = {&idx->peer_tab, &idx->file_tab, &idx->record_tab,
                                       &idx->name_tab, &idx->keyword_tab};
    memset(out, 0, sizeof(*out));
    out->peers = idx->peers.live;
    out->records = idx->records.live;
    out->files = idx->files.live;
    out->names = idx->names.live;
    out->keywords = idx->keywords.live;
    out->postings = idx->postings;
    out->bytes = sizeof(*idx) + idx->heap_bytes;
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
        out->bytes += sn_pool_bytes(pools[i]) + sn_hashtab_bytes(tabs[i]);
}
