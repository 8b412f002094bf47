/* sn_kwdir.c - the keyword directory of an owner supernode (sn_kwdir.h):
 * its entries, updates and expiry; what is read of it is in sn_kwdir_query.c.
 *
 * The entries and how they link are in sn_kwdir_impl.h.
 *
 * A new posting is made in steps that each can fail (name copy, keyword,
 * file, holder, posting); on a failure the entries made so far are
 * released by the same "release if empty" calls removal uses, so the
 * directory is as it was.
 */
#define SN_KWDIR_IMPL
#include "sn_kwdir_impl.h"

#include "err.h"
#include "sn_keywords.h"
#include "sova_assert.h"
#include "text.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ------------------------------------------------------------------ */
struct sn_kwdir_config sn_kwdir_config_default(void)
{
    struct sn_kwdir_config c = {
        .max_per_keyword = SN_KWDIR_MAX_PER_KEYWORD_DEFAULT,
        .max_per_holder = SN_KWDIR_MAX_PER_HOLDER_DEFAULT,
        .max_postings = SN_KWDIR_MAX_POSTINGS_DEFAULT,
        .ttl_ms = SN_KWDIR_TTL_MS_DEFAULT,
        .max_scan = SN_KWDIR_MAX_SCAN_DEFAULT,
        .max_expire_per_call = SN_KWDIR_MAX_EXPIRE_PER_CALL_DEFAULT,
    };
    return c;
}

/* ---- hashes ------------------------------------------------------------------ */
/* SHA-256 of a then b, in md (an EVP_MD_CTX the caller made; reusing one
 * for several hashes saves an allocation and a fetch each). */
static bool sha256_in(EVP_MD_CTX *md, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t out[32])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) &&
           EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
}

static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && sha256_in(md, a, alen, b, blen, out);
    EVP_MD_CTX_free(md);
    return ok ? 0 : SOVA_ERR_CRYPTO;
}

static const char keyword_prefix[8] = "sova-kw"; /* and its NUL */

int sn_kwdir_keyword_hash(const char *word, size_t len, uint8_t out[KEY])
{
    return sha256_parts(keyword_prefix, sizeof(keyword_prefix), word, len, out);
}

int sn_kwdir_name_keywords(const char *name, size_t len, uint8_t (*out)[KEY])
{
    struct sn_keywords kw;
    sn_keywords_from_name(&kw, name, len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL;
    for (size_t i = 0; i < kw.n && ok; i++) {
        struct wire_str w = sn_keywords_word(&kw, i);
        ok = sha256_in(md, keyword_prefix, sizeof(keyword_prefix), w.ptr, w.len, out[i]);
    }
    EVP_MD_CTX_free(md);
    return ok ? (int)kw.n : SOVA_ERR_CRYPTO;
}

/* A posting's share of its keyword's digest. */
int sn_kwdir_posting_share(const uint8_t *kw, const uint8_t *file, const uint8_t *holder,
                           uint8_t share[SN_KWDIR_DIGEST_LEN])
{
    static const char prefix[8] = "sova-kp";
    uint8_t key[KEY + WIRE_HASH_LEN + WIRE_ID_LEN], h[32];
    memcpy(key, kw, KEY);
    memcpy(key + KEY, file, WIRE_HASH_LEN);
    memcpy(key + KEY + WIRE_HASH_LEN, holder, WIRE_ID_LEN);
    int rc = sha256_parts(prefix, sizeof(prefix), key, sizeof(key), h);
    memcpy(share, h, SN_KWDIR_DIGEST_LEN);
    return rc;
}

/* acc += v (sub: acc -= v), little-endian, modulo 2^(8 * SN_KWDIR_DIGEST_LEN). */
void sn_kwdir_digest_add(uint8_t *acc, const uint8_t *v, bool sub)
{
    unsigned carry = sub ? 1 : 0; /* a - b = a + ~b + 1 */
    for (size_t i = 0; i < SN_KWDIR_DIGEST_LEN; i++) {
        unsigned s = acc[i] + (unsigned)(sub ? (uint8_t)~v[i] : v[i]) + carry;
        acc[i] = (uint8_t)s;
        carry = s >> 8;
    }
}

/* ---- keys ------------------------------------------------------------------ */
static uint32_t key_hash(const struct sn_kwdir *d, const void *key, size_t len)
{
    return (uint32_t)sn_hashtab_siphash(d->cfg.hash_key, key, len);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t file_hash(const struct sn_kwdir *d, uint32_t kw, const uint8_t *id)
{
    uint8_t key[4 + WIRE_HASH_LEN];
    put_le32(key, kw);
    memcpy(key + 4, id, WIRE_HASH_LEN);
    return key_hash(d, key, sizeof(key));
}

static uint32_t posting_hash(const struct sn_kwdir *d, uint32_t file, uint32_t holder)
{
    uint8_t key[8];
    put_le32(key, file);
    put_le32(key + 4, holder);
    return key_hash(d, key, sizeof(key));
}

static bool kw_eq(const void *ctx, uint32_t id, const void *key)
{
    return memcmp(kw_at(ctx, id)->hash, key, KEY) == 0;
}

static bool holder_eq(const void *ctx, uint32_t id, const void *key)
{
    return memcmp(holder_at(ctx, id)->id, key, WIRE_ID_LEN) == 0;
}

struct file_key {
    uint32_t kw;
    const uint8_t *id;
};

static bool file_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct file_slot *f = file_at(ctx, id);
    const struct file_key *k = key;
    return f->kw == k->kw && memcmp(f->id, k->id, WIRE_HASH_LEN) == 0;
}

struct posting_key {
    uint32_t file, holder;
};

static bool posting_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct posting_slot *p = posting_at(ctx, id);
    const struct posting_key *k = key;
    return p->file == k->file && p->holder == k->holder;
}

uint32_t sn_kwdir_kw_find(const struct sn_kwdir *d, const uint8_t *hash)
{
    return sn_hashtab_find(&d->kw_tab, key_hash(d, hash, KEY), kw_eq, d, hash);
}

uint32_t sn_kwdir_holder_find(const struct sn_kwdir *d, const uint8_t *id)
{
    return sn_hashtab_find(&d->holder_tab, key_hash(d, id, WIRE_ID_LEN), holder_eq, d, id);
}

uint32_t sn_kwdir_file_find(const struct sn_kwdir *d, uint32_t kw, const uint8_t *id)
{
    struct file_key k = {kw, id};
    return sn_hashtab_find(&d->file_tab, file_hash(d, kw, id), file_eq, d, &k);
}

uint32_t sn_kwdir_posting_find(const struct sn_kwdir *d, uint32_t file, uint32_t holder)
{
    struct posting_key k = {file, holder};
    return sn_hashtab_find(&d->posting_tab, posting_hash(d, file, holder), posting_eq, d, &k);
}

/* ---- a keyword's files, sorted by file ID ------------------------------------------ */
/* The first position whose file ID is not below id. */
static uint32_t files_lower_bound(const struct sn_kwdir *d, const struct kw_slot *k,
                                  const uint8_t *id)
{
    uint32_t lo = 0, hi = k->n_files;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (memcmp(file_at(d, k->files[mid])->id, id, WIRE_HASH_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int files_insert(struct sn_kwdir *d, struct kw_slot *k, uint32_t file)
{
    if (k->n_files == k->cap_files) {
        uint32_t cap = k->cap_files ? k->cap_files * 2 : 4;
        uint32_t *a = realloc(k->files, cap * sizeof(uint32_t));
        if (a == NULL)
            return SOVA_ERR_NOMEM;
        d->heap_bytes += (size_t)(cap - k->cap_files) * sizeof(uint32_t);
        k->files = a;
        k->cap_files = cap;
    }
    uint32_t pos = files_lower_bound(d, k, file_at(d, file)->id);
    memmove(k->files + pos + 1, k->files + pos, (k->n_files - pos) * sizeof(uint32_t));
    k->files[pos] = file;
    k->n_files++;
    return 0;
}

static void files_remove(struct sn_kwdir *d, struct kw_slot *k, uint32_t file)
{
    uint32_t pos = files_lower_bound(d, k, file_at(d, file)->id);
    SOVA_ASSERT(pos < k->n_files && k->files[pos] == file);
    memmove(k->files + pos, k->files + pos + 1, (k->n_files - pos - 1) * sizeof(uint32_t));
    k->n_files--;
    if (k->cap_files > 4 && k->n_files < k->cap_files / 4) {
        uint32_t cap = k->cap_files / 2;
        uint32_t *a = realloc(k->files, cap * sizeof(uint32_t));
        if (a != NULL) { /* else keep the larger array */
            d->heap_bytes -= (size_t)(k->cap_files - cap) * sizeof(uint32_t);
            k->files = a;
            k->cap_files = cap;
        }
    }
}

/* ---- entries made and released ------------------------------------------------------ */
static int kw_get(struct sn_kwdir *d, const uint8_t *hash, uint32_t *out)
{
    *out = sn_kwdir_kw_find(d, hash);
    if (*out != NONE)
        return 0;
    uint32_t id;
    int rc = sn_pool_alloc(&d->kws, &id);
    if (rc != 0)
        return rc;
    rc = sn_hashtab_insert(&d->kw_tab, key_hash(d, hash, KEY), id);
    if (rc != 0) {
        sn_pool_release(&d->kws, id);
        return rc;
    }
    memcpy(kw_at(d, id)->hash, hash, KEY);
    *out = id;
    return 0;
}

static void kw_release_if_empty(struct sn_kwdir *d, uint32_t id)
{
    struct kw_slot *k = kw_at(d, id);
    if (k->n_files > 0)
        return;
    SOVA_ASSERT(k->postings == 0);
    sn_hashtab_remove(&d->kw_tab, key_hash(d, k->hash, KEY), id);
    free(k->files);
    d->heap_bytes -= (size_t)k->cap_files * sizeof(uint32_t);
    sn_pool_release(&d->kws, id);
}

static int file_get(struct sn_kwdir *d, uint32_t kw, const uint8_t *file_id, uint32_t *out)
{
    *out = sn_kwdir_file_find(d, kw, file_id);
    if (*out != NONE)
        return 0;
    uint32_t id;
    int rc = sn_pool_alloc(&d->files, &id);
    if (rc != 0)
        return rc;
    struct file_slot *f = file_at(d, id);
    memcpy(f->id, file_id, WIRE_HASH_LEN);
    f->kw = kw;
    f->first = NONE;
    rc = sn_hashtab_insert(&d->file_tab, file_hash(d, kw, file_id), id);
    if (rc == 0) {
        rc = files_insert(d, kw_at(d, kw), id);
        if (rc != 0)
            sn_hashtab_remove(&d->file_tab, file_hash(d, kw, file_id), id);
    }
    if (rc != 0) {
        sn_pool_release(&d->files, id);
        return rc;
    }
    *out = id;
    return 0;
}

static void file_release_if_empty(struct sn_kwdir *d, uint32_t id)
{
    struct file_slot *f = file_at(d, id);
    if (f->holders > 0)
        return;
    files_remove(d, kw_at(d, f->kw), id);
    sn_hashtab_remove(&d->file_tab, file_hash(d, f->kw, f->id), id);
    sn_pool_release(&d->files, id);
}

static int holder_get(struct sn_kwdir *d, const uint8_t *holder, uint32_t *out)
{
    *out = sn_kwdir_holder_find(d, holder);
    if (*out != NONE)
        return 0;
    uint32_t id;
    int rc = sn_pool_alloc(&d->holders, &id);
    if (rc != 0)
        return rc;
    rc = sn_hashtab_insert(&d->holder_tab, key_hash(d, holder, WIRE_ID_LEN), id);
    if (rc != 0) {
        sn_pool_release(&d->holders, id);
        return rc;
    }
    memcpy(holder_at(d, id)->id, holder, WIRE_ID_LEN);
    holder_at(d, id)->first = NONE;
    *out = id;
    return 0;
}

static void holder_release_if_empty(struct sn_kwdir *d, uint32_t id)
{
    struct holder_slot *h = holder_at(d, id);
    if (h->postings > 0)
        return;
    sn_hashtab_remove(&d->holder_tab, key_hash(d, h->id, WIRE_ID_LEN), id);
    sn_pool_release(&d->holders, id);
}

/* ---- the expiry list ---------------------------------------------------------------- */
static void expiry_unlink(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    if (p->eprev != NONE)
        posting_at(d, p->eprev)->enext = p->enext;
    else
        d->exp_head = p->enext;
    if (p->enext != NONE)
        posting_at(d, p->enext)->eprev = p->eprev;
    else
        d->exp_tail = p->eprev;
}

/* Put the posting at the tail, expiring ttl_ms after now (or with the tail,
 * if the clock went back: the list stays ordered). */
static void expiry_append(struct sn_kwdir *d, uint32_t id, uint64_t now_ms)
{
    struct posting_slot *p = posting_at(d, id);
    uint64_t at = now_ms > UINT64_MAX - d->cfg.ttl_ms ? UINT64_MAX : now_ms + d->cfg.ttl_ms;
    if (d->exp_tail != NONE && posting_at(d, d->exp_tail)->expires > at)
        at = posting_at(d, d->exp_tail)->expires;
    p->expires = at;
    p->eprev = d->exp_tail;
    p->enext = NONE;
    if (d->exp_tail != NONE)
        posting_at(d, d->exp_tail)->enext = id;
    else
        d->exp_head = id;
    d->exp_tail = id;
}

/* ---- postings ---------------------------------------------------------------------- */
/* Link a new posting into its file's list, in holder ID order. */
static void file_link(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    struct file_slot *f = file_at(d, p->file);
    const uint8_t *hid = holder_at(d, p->holder)->id;
    uint32_t *link = &f->first;
    while (*link != NONE &&
           memcmp(holder_at(d, posting_at(d, *link)->holder)->id, hid, WIRE_ID_LEN) < 0)
        link = &posting_at(d, *link)->next_in_file;
    p->next_in_file = *link;
    *link = id;
    f->holders++;
}

static void file_unlink(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    struct file_slot *f = file_at(d, p->file);
    uint32_t *link = &f->first;
    while (*link != id) {
        SOVA_ASSERT(*link != NONE); /* the posting is on its file's list */
        link = &posting_at(d, *link)->next_in_file;
    }
    *link = p->next_in_file;
    f->holders--;
}

static void holder_link(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    struct holder_slot *h = holder_at(d, p->holder);
    p->hprev = NONE;
    p->hnext = h->first;
    if (h->first != NONE)
        posting_at(d, h->first)->hprev = id;
    h->first = id;
    h->postings++;
}

static void holder_unlink(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    struct holder_slot *h = holder_at(d, p->holder);
    if (p->hprev != NONE)
        posting_at(d, p->hprev)->hnext = p->hnext;
    else
        h->first = p->hnext;
    if (p->hnext != NONE)
        posting_at(d, p->hnext)->hprev = p->hprev;
    h->postings--;
}

/* Remove a posting and whatever is left empty by it. Never fails. */
static void posting_remove(struct sn_kwdir *d, uint32_t id)
{
    struct posting_slot *p = posting_at(d, id);
    uint32_t file = p->file, holder = p->holder;
    uint32_t kw = file_at(d, file)->kw;
    struct kw_slot *k = kw_at(d, kw);
    expiry_unlink(d, id);
    holder_unlink(d, id);
    file_unlink(d, id);
    sn_kwdir_digest_add(k->digest, p->share, true);
    k->postings--;
    sn_hashtab_remove(&d->posting_tab, posting_hash(d, file, holder), id);
    free(p->name);
    d->heap_bytes -= p->name_len;
    sn_pool_release(&d->postings, id);
    file_release_if_empty(d, file);
    kw_release_if_empty(d, kw);
    holder_release_if_empty(d, holder);
}

/* Whether name has the keyword hashed to kw among its keywords. */
static int name_has_keyword(const struct wire_str name, const uint8_t *kw)
{
    uint8_t hashes[SN_KEYWORDS_MAX][KEY];
    int n = sn_kwdir_name_keywords(name.ptr, name.len, hashes);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        if (memcmp(hashes[i], kw, KEY) == 0)
            return 0;
    }
    return SOVA_ERR_BAD_VALUE;
}

static int check_add(const struct sn_kwdir_delta *dl)
{
    if (dl->name.len == 0 || dl->name.len > SN_KWDIR_MAX_NAME_LEN || dl->name.ptr == NULL ||
        dl->sources == 0)
        return SOVA_ERR_BAD_VALUE;
    if (text_check(dl->name.ptr, dl->name.len, NULL) != TEXT_OK)
        return SOVA_ERR_UNSAFE_NAME;
    return 0;
}

static char *copy_name(struct sn_kwdir *d, struct wire_str name)
{
    char *s = malloc(name.len);
    if (s != NULL) {
        memcpy(s, name.ptr, name.len);
        d->heap_bytes += name.len;
    }
    return s;
}

static void free_name(struct sn_kwdir *d, char *s, size_t len)
{
    free(s);
    d->heap_bytes -= len;
}

/* Refresh an existing posting: new name, size and sources, expiry pushed. */
static int posting_refresh(struct sn_kwdir *d, uint32_t id, const struct sn_kwdir_delta *dl,
                           uint64_t now_ms)
{
    struct posting_slot *p = posting_at(d, id);
    if (p->name_len != dl->name.len || memcmp(p->name, dl->name.ptr, dl->name.len) != 0) {
        int rc = name_has_keyword(dl->name, dl->keyword);
        if (rc != 0)
            return rc;
        char *name = copy_name(d, dl->name);
        if (name == NULL)
            return SOVA_ERR_NOMEM;
        free_name(d, p->name, p->name_len);
        p->name = name;
        p->name_len = (uint32_t)dl->name.len;
    }
    p->size = dl->size;
    p->sources = dl->sources;
    expiry_unlink(d, id);
    expiry_append(d, id, now_ms);
    d->counts.refreshed++;
    return 0;
}

static int posting_add(struct sn_kwdir *d, const uint8_t *holder, const struct sn_kwdir_delta *dl,
                       uint64_t now_ms)
{
    uint32_t kw = sn_kwdir_kw_find(d, dl->keyword), h = sn_kwdir_holder_find(d, holder);
    uint32_t file = kw != NONE ? sn_kwdir_file_find(d, kw, dl->file_id) : NONE;
    if (file != NONE && h != NONE) {
        uint32_t id = sn_kwdir_posting_find(d, file, h);
        if (id != NONE)
            return posting_refresh(d, id, dl, now_ms);
    }
    int rc = name_has_keyword(dl->name, dl->keyword);
    if (rc != 0)
        return rc;
    if (h != NONE && holder_at(d, h)->postings >= d->cfg.max_per_holder) {
        d->counts.refused_holder++;
        return SOVA_ERR_HOLDER_FULL;
    }
    if (kw != NONE && kw_at(d, kw)->postings >= d->cfg.max_per_keyword) {
        d->counts.refused_keyword++;
        return SOVA_ERR_KEYWORD_FULL;
    }
    if (d->postings.live >= d->cfg.max_postings) {
        d->counts.refused_full++;
        return SOVA_ERR_INDEX_FULL;
    }
    uint8_t share[SN_KWDIR_DIGEST_LEN];
    rc = sn_kwdir_posting_share(dl->keyword, dl->file_id, holder, share);
    if (rc != 0)
        return rc;
    char *name = copy_name(d, dl->name);
    if (name == NULL)
        return SOVA_ERR_NOMEM;
    uint32_t id = NONE;
    kw = file = h = NONE;
    rc = kw_get(d, dl->keyword, &kw);
    if (rc == 0)
        rc = file_get(d, kw, dl->file_id, &file);
    if (rc == 0)
        rc = holder_get(d, holder, &h);
    if (rc == 0)
        rc = sn_pool_alloc(&d->postings, &id);
    if (rc == 0) {
        rc = sn_hashtab_insert(&d->posting_tab, posting_hash(d, file, h), id);
        if (rc != 0)
            sn_pool_release(&d->postings, id);
    }
    if (rc != 0) { /* undo: release what this call made (what was there stays) */
        free_name(d, name, dl->name.len);
        if (file != NONE)
            file_release_if_empty(d, file);
        if (kw != NONE)
            kw_release_if_empty(d, kw);
        if (h != NONE)
            holder_release_if_empty(d, h);
        return rc;
    }
    struct posting_slot *p = posting_at(d, id);
    p->file = file;
    p->holder = h;
    p->name = name;
    p->name_len = (uint32_t)dl->name.len;
    p->size = dl->size;
    p->sources = dl->sources;
    memcpy(p->share, share, sizeof(share));
    file_link(d, id);
    holder_link(d, id);
    expiry_append(d, id, now_ms);
    struct kw_slot *k = kw_at(d, kw);
    k->postings++;
    sn_kwdir_digest_add(k->digest, share, false);
    d->counts.added++;
    return 0;
}

static int posting_delete(struct sn_kwdir *d, const uint8_t *holder,
                          const struct sn_kwdir_delta *dl)
{
    uint32_t kw = sn_kwdir_kw_find(d, dl->keyword), h = sn_kwdir_holder_find(d, holder);
    uint32_t file = kw != NONE ? sn_kwdir_file_find(d, kw, dl->file_id) : NONE;
    uint32_t id = file != NONE && h != NONE ? sn_kwdir_posting_find(d, file, h) : NONE;
    if (id != NONE) {
        posting_remove(d, id);
        d->counts.removed++;
    }
    return 0;
}

/* ---- the public calls ------------------------------------------------------------ */
static uint32_t clamp(uint64_t v, uint64_t dflt, uint64_t cap)
{
    if (v == 0)
        v = dflt;
    return (uint32_t)(v > cap ? cap : v);
}

struct sn_kwdir *sn_kwdir_new(const struct sn_kwdir_config *cfg)
{
    struct sn_kwdir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    struct sn_kwdir_config c = cfg != NULL ? *cfg : sn_kwdir_config_default();
    c.max_postings =
        clamp(c.max_postings, SN_KWDIR_MAX_POSTINGS_DEFAULT, SN_KWDIR_MAX_POSTINGS_CAP);
    c.max_per_keyword =
        clamp(c.max_per_keyword, SN_KWDIR_MAX_PER_KEYWORD_DEFAULT, SN_KWDIR_MAX_POSTINGS_CAP);
    c.max_per_holder =
        clamp(c.max_per_holder, SN_KWDIR_MAX_PER_HOLDER_DEFAULT, SN_KWDIR_MAX_POSTINGS_CAP);
    c.max_scan = clamp(c.max_scan, SN_KWDIR_MAX_SCAN_DEFAULT, UINT32_MAX);
    c.max_expire_per_call =
        clamp(c.max_expire_per_call, SN_KWDIR_MAX_EXPIRE_PER_CALL_DEFAULT, UINT32_MAX);
    if (c.ttl_ms == 0)
        c.ttl_ms = SN_KWDIR_TTL_MS_DEFAULT;
    d->cfg = c;
    sn_pool_init(&d->kws, sizeof(struct kw_slot));
    sn_pool_init(&d->files, sizeof(struct file_slot));
    sn_pool_init(&d->holders, sizeof(struct holder_slot));
    sn_pool_init(&d->postings, sizeof(struct posting_slot));
    sn_hashtab_init(&d->kw_tab);
    sn_hashtab_init(&d->file_tab);
    sn_hashtab_init(&d->holder_tab);
    sn_hashtab_init(&d->posting_tab);
    d->exp_head = d->exp_tail = NONE;
    return d;
}

void sn_kwdir_free(struct sn_kwdir *d)
{
    if (d == NULL)
        return;
    for (uint32_t id = d->exp_head; id != NONE; id = posting_at(d, id)->enext)
        free(posting_at(d, id)->name);
    uint32_t pos = 0, id;
    while ((id = sn_hashtab_next(&d->kw_tab, &pos)) != NONE)
        free(kw_at(d, id)->files);
    sn_pool_free(&d->kws);
    sn_pool_free(&d->files);
    sn_pool_free(&d->holders);
    sn_pool_free(&d->postings);
    sn_hashtab_free(&d->kw_tab);
    sn_hashtab_free(&d->file_tab);
    sn_hashtab_free(&d->holder_tab);
    sn_hashtab_free(&d->posting_tab);
    free(d);
}

int sn_kwdir_update(struct sn_kwdir *d, const uint8_t holder[WIRE_ID_LEN],
                    const struct sn_kwdir_delta *delta, uint64_t now_ms)
{
    int rc;
    if (delta->op == SN_KWDIR_REMOVE)
        return posting_delete(d, holder, delta);
    if (delta->op != SN_KWDIR_ADD)
        rc = SOVA_ERR_BAD_VALUE;
    else if ((rc = check_add(delta)) == 0)
        rc = posting_add(d, holder, delta, now_ms);
    if (rc != 0 && rc != SOVA_ERR_HOLDER_FULL && rc != SOVA_ERR_KEYWORD_FULL &&
        rc != SOVA_ERR_INDEX_FULL)
        d->counts.refused_other++;
    return rc;
}

int sn_kwdir_apply(struct sn_kwdir *d, const uint8_t holder[WIRE_ID_LEN],
                   const struct sn_kwdir_delta *delta, size_t n, uint64_t now_ms, int *results)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = sn_kwdir_update(d, holder, &delta[i], now_ms);
        if (results != NULL)
            results[i] = rc;
        if (first == 0)
            first = rc;
    }
    return first;
}

size_t sn_kwdir_drop_holder(struct sn_kwdir *d, const uint8_t holder[WIRE_ID_LEN])
{
    uint32_t h = sn_kwdir_holder_find(d, holder);
    if (h == NONE)
        return 0;
    size_t n = holder_at(d, h)->postings; /* the holder goes with its last posting */
    for (size_t i = 0; i < n; i++)
        posting_remove(d, holder_at(d, h)->first);
    d->counts.removed += n;
    return n;
}

size_t sn_kwdir_drop_keyword(struct sn_kwdir *d, const uint8_t keyword[KEY])
{
    uint32_t kw = sn_kwdir_kw_find(d, keyword);
    if (kw == NONE)
        return 0;
    size_t n = kw_at(d, kw)->postings; /* the keyword goes with its last posting */
    for (size_t i = 0; i < n; i++) {
        const struct kw_slot *k = kw_at(d, kw);
        posting_remove(d, file_at(d, k->files[k->n_files - 1])->first);
    }
    d->counts.removed += n;
    return n;
}

size_t sn_kwdir_expire(struct sn_kwdir *d, uint64_t now_ms)
{
    size_t n = 0;
    while (n < d->cfg.max_expire_per_call && d->exp_head != NONE &&
           posting_at(d, d->exp_head)->expires <= now_ms) {
        posting_remove(d, d->exp_head);
        n++;
    }
    d->counts.expired += n;
    return n;
}

uint64_t sn_kwdir_next_expiry(const struct sn_kwdir *d)
{
    return d->exp_head == NONE ? UINT64_MAX : posting_at(d, d->exp_head)->expires;
}
