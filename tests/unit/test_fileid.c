/* test_fileid.c - content-bound file IDs (common/fileid.h): golden IDs
 * from an independent implementation of the definition (Python hashlib,
 * below), the same ID whatever layer is kept or how the bytes are fed,
 * layers that climb to each other, chunk hashes that are the layer's
 * entries, and a layer, size or chunk that is not the file's refused. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileid.h"

/* The definition in 20 lines of Python, for the golden values:
 *   B = 16384; R = 48; H = lambda b: hashlib.sha256(b).digest()
 *   pads = [b'\0' * 32]; [pads.append(H(pads[-1] + pads[-1])) for _ in range(R)]
 *   def root(data):
 *       v = [H(data[i:i + B]) for i in range(0, len(data), B)]
 *       if not v: return pads[R]
 *       for lv in range(R):
 *           v = [H(v[i] + (v[i + 1] if i + 1 < len(v) else pads[lv]))
 *                for i in range(0, len(v), 2)]
 *       return v[0]
 *   fid = lambda d: H(b"sova file id v2\0" + len(d).to_bytes(8, 'big') + root(d))
 *   pat(n) = bytes((i * 7 + (i >> 8)) & 0xff for i in range(n)) */
struct golden {
    const char *name;
    size_t size;
    int kind; /* 0 pattern, 1 'x', 2 "a" */
    const char *id;
};
static const struct golden goldens[] = {
    {"empty", 0, 0, "bc4fffa7c66d559aa73f374dcdc592df186c669c7ff41236004e2bd6933bb620"},
    {"a", 1, 2, "e883134920478909c753f0c9e22ba32186e7c39a41fa4f1921eb55f371fb1c13"},
    {"one block", 16384, 1, "3a6838e1b5fa98ee33630261d1a9429b967281485aaa0abe865ab13a1bee4029"},
    {"block + 1", 16385, 1, "79c86c707e73741fa2aa3feab9aa591a3af79b1cfeb779270c1724fa5c71c619"},
    {"1 MiB + 1", 1048577, 0, "6e73b5db1d3526f32f51eda5c0aecb182f844bf1420aeee45d3b3f5c73e000ff"},
};

static uint8_t *make(const struct golden *g)
{
    uint8_t *d = malloc(g->size ? g->size : 1);
    for (size_t i = 0; i < g->size; i++)
        d[i] = g->kind == 1 ? 'x' : g->kind == 2 ? 'a' : (uint8_t)((i * 7 + (i >> 8)) & 0xff);
    return d;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

/* Hash data with a kept layer at height keep, fed in pieces of `step`. */
static void hash_all(const uint8_t *data, size_t size, unsigned keep, size_t step,
                     uint8_t id[FILEID_LEN], uint8_t (**layer)[FILEID_LEN], size_t *n)
{
    struct fileid_hasher *h = NULL;
    CU_ASSERT_EQUAL_FATAL(fileid_hasher_new(keep, &h), 0);
    for (size_t at = 0; at < size; at += step)
        fileid_hasher_update(h, data + at, size - at < step ? size - at : step);
    uint8_t root[FILEID_LEN];
    uint64_t got = 0;
    CU_ASSERT_EQUAL_FATAL(fileid_hasher_final(h, id, root, &got, layer, n), 0);
    CU_ASSERT_EQUAL(got, size);
    CU_ASSERT(fileid_check(id, size, root));
    fileid_hasher_free(h);
}

static void test_golden(void)
{
    for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
        uint8_t *d = make(&goldens[g]);
        for (unsigned keep = 0; keep <= 7; keep += 1) {
            uint8_t id[FILEID_LEN], (*layer)[FILEID_LEN] = NULL;
            size_t n = 0;
            hash_all(d, goldens[g].size, keep, keep % 2 ? 1000 : 65536, id, &layer, &n);
            char got[2 * FILEID_LEN + 1];
            hex(id, FILEID_LEN, got);
            if (strcmp(got, goldens[g].id) != 0)
                printf("\n    %s, layer %u: got %s\n", goldens[g].name, keep, got);
            CU_ASSERT_STRING_EQUAL(got, goldens[g].id);
            CU_ASSERT_EQUAL(n, fileid_chunks(goldens[g].size, keep));
            CU_ASSERT(fileid_check_layer(id, goldens[g].size, (const uint8_t(*)[FILEID_LEN])layer,
                                         n, keep));
            free(layer);
        }
        free(d);
    }
}

static void test_layers_and_chunks(void)
{
    const struct golden g = {"3 MiB + 5", 3 * 1048576 + 5, 0, NULL};
    uint8_t *d = make(&g);
    uint8_t id[FILEID_LEN], (*l2)[FILEID_LEN] = NULL, (*l6)[FILEID_LEN] = NULL;
    size_t n2, n6;
    hash_all(d, g.size, 2, 4096, id, &l2, &n2);
    uint8_t id6[FILEID_LEN];
    hash_all(d, g.size, 6, g.size, id6, &l6, &n6);
    CU_ASSERT_EQUAL(memcmp(id, id6, FILEID_LEN), 0);
    CU_ASSERT_EQUAL(n2, 49); /* 64 KiB chunks */
    CU_ASSERT_EQUAL(n6, 4);  /* 1 MiB chunks, the last of 5 bytes */
    /* climbing the 64 KiB layer gives the 1 MiB layer */
    uint8_t up[49][FILEID_LEN];
    CU_ASSERT_EQUAL(fileid_layer_up((const uint8_t(*)[FILEID_LEN])l2, n2, 2, 6, up), n6);
    CU_ASSERT_EQUAL(memcmp(up, l6, n6 * FILEID_LEN), 0);
    /* each chunk's own hash is its entry */
    for (size_t c = 0; c < n6; c++) {
        size_t off = c * 1048576, len = g.size - off < 1048576 ? g.size - off : 1048576;
        uint8_t h[FILEID_LEN];
        fileid_chunk_hash(d + off, len, 6, h);
        CU_ASSERT_EQUAL(memcmp(h, l6[c], FILEID_LEN), 0);
    }
    /* a chunk of 4 MiB (height 8) hashes the whole file in one */
    uint8_t big[FILEID_LEN], l8[1][FILEID_LEN];
    fileid_chunk_hash(d, g.size, 8, big);
    CU_ASSERT_EQUAL(fileid_layer_up((const uint8_t(*)[FILEID_LEN])l6, n6, 6, 8, l8), 1);
    CU_ASSERT_EQUAL(memcmp(big, l8[0], FILEID_LEN), 0);
    CU_ASSERT(fileid_check_layer(id, g.size, (const uint8_t(*)[FILEID_LEN])l8, 1, 8));
    free(l2);
    free(l6);
    free(d);
}

static void test_lies_refused(void)
{
    const struct golden g = {"2 MiB", 2 * 1048576, 0, NULL};
    uint8_t *d = make(&g);
    uint8_t id[FILEID_LEN], (*l)[FILEID_LEN] = NULL;
    size_t n;
    hash_all(d, g.size, 6, 100000, id, &l, &n);
    CU_ASSERT(fileid_check_layer(id, g.size, (const uint8_t(*)[FILEID_LEN])l, n, 6));
    /* a manifest of garbage served consistently */
    uint8_t(*bad)[FILEID_LEN] = malloc(n * FILEID_LEN);
    memcpy(bad, l, n * FILEID_LEN);
    bad[1][7] ^= 1;
    CU_ASSERT(!fileid_check_layer(id, g.size, (const uint8_t(*)[FILEID_LEN])bad, n, 6));
    /* another size: 4 TiB claimed for the same ID, or one byte more */
    CU_ASSERT(!fileid_check_layer(id, 4ull << 40, (const uint8_t(*)[FILEID_LEN])l, n, 6));
    CU_ASSERT(!fileid_check_layer(id, g.size + 1, (const uint8_t(*)[FILEID_LEN])l, n, 6));
    CU_ASSERT(!fileid_check_layer(id, g.size - 1048576, (const uint8_t(*)[FILEID_LEN])l, 1, 6));
    /* the right hashes at the wrong height */
    CU_ASSERT(!fileid_check_layer(id, g.size, (const uint8_t(*)[FILEID_LEN])l, n, 5));
    /* past the largest size */
    uint8_t root[FILEID_LEN];
    CU_ASSERT(!fileid_check(id, FILEID_MAX_SIZE + 1, root));
    /* a chunk of other data does not match its entry */
    uint8_t h[FILEID_LEN];
    d[1048576 + 5] ^= 0x80;
    fileid_chunk_hash(d + 1048576, 1048576, 6, h);
    CU_ASSERT(memcmp(h, l[1], FILEID_LEN) != 0);
    free(bad);
    free(l);
    free(d);
}

static void test_heights(void)
{
    CU_ASSERT_EQUAL(fileid_height_of(16384), 0);
    CU_ASSERT_EQUAL(fileid_height_of(1048576), 6);
    CU_ASSERT_EQUAL(fileid_height_of(1ull << 30), 16);
    CU_ASSERT_EQUAL(fileid_height_of(1ull << 31), -1);
    CU_ASSERT_EQUAL(fileid_height_of(1000000), -1);
    CU_ASSERT_EQUAL(fileid_height_of(8192), -1);
    CU_ASSERT_EQUAL(fileid_chunks(0, 6), 0);
    CU_ASSERT_EQUAL(fileid_chunks(1, 6), 1);
    CU_ASSERT_EQUAL(fileid_chunks(1048576, 6), 1);
    CU_ASSERT_EQUAL(fileid_chunks(1048577, 6), 2);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("fileid", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "golden IDs of an independent implementation, any kept layer", test_golden);
    CU_add_test(s, "layers climb to each other; chunk hashes are the layer",
                test_layers_and_chunks);
    CU_add_test(s, "a false manifest, size or chunk is refused", test_lies_refused);
    CU_add_test(s, "chunk sizes and counts", test_heights);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
