/* fileid.c - content-bound file IDs (fileid.h). */
#include "fileid.h"
#include "err.h"
#include "sova_assert.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "sova file id v2"

static void sha256(const void *data, size_t len, uint8_t out[FILEID_LEN])
{
    unsigned int n = 0;
    int ok = EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
    SOVA_ASSERT(ok == 1 && n == FILEID_LEN); /* SHA-256 of a buffer cannot fail */
}

static void node(const uint8_t left[FILEID_LEN], const uint8_t right[FILEID_LEN],
                 uint8_t out[FILEID_LEN])
{
    uint8_t both[2 * FILEID_LEN];
    memcpy(both, left, FILEID_LEN);
    memcpy(both + FILEID_LEN, right, FILEID_LEN);
    sha256(both, sizeof(both), out);
}

int fileid_height_of(uint64_t chunk_size)
{
    for (int h = 0; h <= FILEID_MAX_HEIGHT; h++)
        if (chunk_size == (uint64_t)FILEID_BLOCK << h)
            return h;
    return -1;
}

uint64_t fileid_chunks(uint64_t size, unsigned height)
{
    uint64_t chunk = (uint64_t)FILEID_BLOCK << height;
    return size / chunk + (size % chunk != 0);
}

void fileid_make(uint64_t size, const uint8_t root[FILEID_LEN], uint8_t id[FILEID_LEN])
{
    uint8_t buf[sizeof(DOMAIN) + 8 + FILEID_LEN];
    memcpy(buf, DOMAIN, sizeof(DOMAIN)); /* with its NUL */
    for (int i = 0; i < 8; i++)
        buf[sizeof(DOMAIN) + i] = (uint8_t)(size >> (56 - 8 * i));
    memcpy(buf + sizeof(DOMAIN) + 8, root, FILEID_LEN);
    sha256(buf, sizeof(buf), id);
}

bool fileid_check(const uint8_t id[FILEID_LEN], uint64_t size, const uint8_t root[FILEID_LEN])
{
    if (size > FILEID_MAX_SIZE)
        return false;
    uint8_t want[FILEID_LEN];
    fileid_make(size, root, want);
    return memcmp(want, id, FILEID_LEN) == 0;
}

void fileid_pad_hash(unsigned height, uint8_t out[FILEID_LEN])
{
    memset(out, 0, FILEID_LEN);
    for (unsigned h = 0; h < height; h++)
        node(out, out, out);
}

/* Pair up the n hashes of a level at height h in place (the odd one out
 * with the padding of that height): returns the count one level up. */
static size_t level_up(uint8_t (*v)[FILEID_LEN], size_t n, unsigned h)
{
    uint8_t pad[FILEID_LEN];
    fileid_pad_hash(h, pad);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 2, m++)
        node(v[i], i + 1 < n ? v[i + 1] : pad, v[m]);
    return m;
}

/* The hash at height `up` (up <= 6) of the leaves of len bytes at p. */
static void group_hash(const uint8_t *p, size_t len, unsigned up, uint8_t out[FILEID_LEN])
{
    uint8_t v[64][FILEID_LEN];
    size_t n = (len + FILEID_BLOCK - 1) / FILEID_BLOCK;
    for (size_t i = 0; i < n; i++) {
        size_t take = len - i * FILEID_BLOCK < FILEID_BLOCK ? len - i * FILEID_BLOCK : FILEID_BLOCK;
        sha256(p + i * FILEID_BLOCK, take, v[i]);
    }
    for (unsigned h = 0; h < up; h++)
        n = level_up(v, n, h);
    memcpy(out, v[0], FILEID_LEN);
}

void fileid_chunk_hash(const void *data, size_t len, unsigned height, uint8_t out[FILEID_LEN])
{
    SOVA_ASSERT(height <= FILEID_MAX_HEIGHT && len >= 1 && len <= (size_t)FILEID_BLOCK << height);
    if (height <= 6) {
        group_hash(data, len, height, out);
        return;
    }
    /* Groups of 64 leaves (1 MiB) hashed up to height 6, then those. */
    uint8_t mid[1u << (FILEID_MAX_HEIGHT - 6)][FILEID_LEN];
    const size_t group = (size_t)FILEID_BLOCK << 6;
    size_t n = (len + group - 1) / group;
    for (size_t g = 0; g < n; g++)
        group_hash((const uint8_t *)data + g * group,
                   len - g * group < group ? len - g * group : group, 6, mid[g]);
    for (unsigned h = 6; h < height; h++)
        n = level_up(mid, n, h);
    memcpy(out, mid[0], FILEID_LEN);
}

int fileid_root_from_layer(const uint8_t (*layer)[FILEID_LEN], size_t n, unsigned height,
                           uint8_t root[FILEID_LEN])
{
    if (n == 0) {
        fileid_pad_hash(FILEID_ROOT_HEIGHT, root);
        return 0;
    }
    uint8_t(*v)[FILEID_LEN] = malloc(n * FILEID_LEN);
    if (v == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(v, layer, n * FILEID_LEN);
    for (unsigned h = height; h < FILEID_ROOT_HEIGHT; h++)
        n = level_up(v, n, h);
    memcpy(root, v[0], FILEID_LEN);
    free(v);
    return 0;
}

bool fileid_check_layer(const uint8_t id[FILEID_LEN], uint64_t size,
                        const uint8_t (*layer)[FILEID_LEN], size_t n, unsigned height)
{
    uint8_t root[FILEID_LEN];
    return height <= FILEID_MAX_HEIGHT && size <= FILEID_MAX_SIZE &&
           n == fileid_chunks(size, height) &&
           fileid_root_from_layer(layer, n, height, root) == 0 && fileid_check(id, size, root);
}

/* The hash at height from + d of the k (1..2^d) hashes in[0..k) at height
 * from, the missing ones padding (pads[i] = fileid_pad_hash(from + i)).
 * A binary counter: one pending hash per level, never more memory than
 * d + 1 hashes, whatever k. */
static void subtree_up(const uint8_t (*in)[FILEID_LEN], size_t k, unsigned d,
                       const uint8_t (*pads)[FILEID_LEN], uint8_t out[FILEID_LEN])
{
    uint8_t pend[FILEID_ROOT_HEIGHT + 1][FILEID_LEN], cur[FILEID_LEN];
    bool has[FILEID_ROOT_HEIGHT + 1] = {false};
    for (size_t i = 0; i < k; i++) {
        memcpy(cur, in[i], FILEID_LEN);
        unsigned lv = 0;
        for (; has[lv]; lv++) { /* k <= 2^d: lv never passes d */
            node(pend[lv], cur, cur);
            has[lv] = false;
        }
        memcpy(pend[lv], cur, FILEID_LEN);
        has[lv] = true;
    }
    /* Close what is left from the bottom: a pending left child meets the
     * part above it (or the padding), a lone part meets the padding. */
    bool carry = false;
    for (unsigned lv = 0; lv < d; lv++) {
        if (has[lv]) {
            node(pend[lv], carry ? cur : pads[lv], cur);
            carry = true;
        } else if (carry) {
            node(cur, pads[lv], cur);
        }
    }
    memcpy(out, carry ? cur : pend[d], FILEID_LEN);
}

size_t fileid_layer_up(const uint8_t (*in)[FILEID_LEN], size_t n, unsigned from, unsigned to,
                       uint8_t (*out)[FILEID_LEN])
{
    SOVA_ASSERT(from <= to && to <= FILEID_ROOT_HEIGHT);
    unsigned d = to - from;
    if (d == 0) {
        if (n > 0)
            memcpy(out, in, n * FILEID_LEN);
        return n;
    }
    uint8_t pads[FILEID_ROOT_HEIGHT][FILEID_LEN];
    fileid_pad_hash(from, pads[0]);
    for (unsigned i = 1; i < d; i++)
        node(pads[i - 1], pads[i - 1], pads[i]);
    /* Each output hash is the subtree of 2^d input hashes: only the
     * returned count is ever written to out. */
    const size_t group = (size_t)1 << d;
    size_t m = 0;
    for (size_t i = 0; i < n; i += group, m++)
        subtree_up(in + i, n - i < group ? n - i : group, d, (const uint8_t(*)[FILEID_LEN])pads,
                   out[m]);
    return m;
}

/* ---- hashing a file in order ------------------------------------------------------ */

struct fileid_hasher {
    unsigned keep;               /* height of the kept layer */
    uint64_t size;               /* bytes fed */
    uint8_t block[FILEID_BLOCK]; /* the block being filled */
    size_t in_block;
    uint8_t (*leaves)[FILEID_LEN]; /* leaves of the chunk being filled (2^keep) */
    size_t n_leaves;
    uint8_t (*layer)[FILEID_LEN]; /* the kept layer so far */
    size_t n_layer, cap_layer;
    bool failed; /* out of memory on the way */
};

int fileid_hasher_new(unsigned keep_height, struct fileid_hasher **out)
{
    *out = NULL;
    if (keep_height > FILEID_MAX_HEIGHT)
        return SOVA_ERR_INVALID;
    struct fileid_hasher *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->leaves = malloc(((size_t)1 << keep_height) * FILEID_LEN)) == NULL) {
        free(h);
        return SOVA_ERR_NOMEM;
    }
    h->keep = keep_height;
    *out = h;
    return 0;
}

/* The chunk being filled is complete (or the file ended): its hash joins
 * the kept layer. */
static void end_chunk(struct fileid_hasher *h)
{
    if (h->n_leaves == 0)
        return;
    size_t n = h->n_leaves;
    for (unsigned lv = 0; lv < h->keep; lv++)
        n = level_up(h->leaves, n, lv);
    h->n_leaves = 0;
    if (h->n_layer == h->cap_layer) {
        size_t cap = h->cap_layer ? 2 * h->cap_layer : 64;
        void *grown = realloc(h->layer, cap * FILEID_LEN);
        if (grown == NULL) {
            h->failed = true;
            return;
        }
        h->layer = grown;
        h->cap_layer = cap;
    }
    memcpy(h->layer[h->n_layer++], h->leaves[0], FILEID_LEN);
}

static void end_block(struct fileid_hasher *h)
{
    sha256(h->block, h->in_block, h->leaves[h->n_leaves++]);
    h->in_block = 0;
    if (h->n_leaves == (size_t)1 << h->keep)
        end_chunk(h);
}

void fileid_hasher_update(struct fileid_hasher *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    h->size += len;
    while (len > 0) {
        if (h->in_block == 0 && len >= FILEID_BLOCK) { /* a whole block: no copy */
            sha256(p, FILEID_BLOCK, h->leaves[h->n_leaves++]);
            if (h->n_leaves == (size_t)1 << h->keep)
                end_chunk(h);
            p += FILEID_BLOCK;
            len -= FILEID_BLOCK;
            continue;
        }
        size_t take = FILEID_BLOCK - h->in_block < len ? FILEID_BLOCK - h->in_block : len;
        memcpy(h->block + h->in_block, p, take);
        h->in_block += take;
        p += take;
        len -= take;
        if (h->in_block == FILEID_BLOCK)
            end_block(h);
    }
}

int fileid_hasher_final(struct fileid_hasher *h, uint8_t id[FILEID_LEN], uint8_t root[FILEID_LEN],
                        uint64_t *size, uint8_t (**layer)[FILEID_LEN], size_t *n_layer)
{
    if (h->in_block > 0)
        end_block(h);
    end_chunk(h);
    if (h->failed || fileid_root_from_layer((const uint8_t(*)[FILEID_LEN])h->layer, h->n_layer,
                                            h->keep, root) != 0)
        return SOVA_ERR_NOMEM;
    fileid_make(h->size, root, id);
    *size = h->size;
    *layer = h->layer;
    *n_layer = h->n_layer;
    h->layer = NULL;
    h->n_layer = h->cap_layer = 0;
    return 0;
}

void fileid_hasher_free(struct fileid_hasher *h)
{
    if (h == NULL)
        return;
    free(h->leaves);
    free(h->layer);
    free(h);
}
