/* test_sn_hashtab.c - the open-addressing table and SipHash under the
 * supernode's index (sn_hashtab.h). */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdlib.h>

#include "sn_hashtab.h"

static void test_siphash_reference_vectors(void)
{
    uint8_t key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    /* SipHash-2-4 paper, appendix A, and the reference vectors.h. */
    CU_ASSERT_EQUAL(sn_hashtab_siphash(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    CU_ASSERT_EQUAL(sn_hashtab_siphash(key, msg, 15), 0xa129ca6149be45e5ULL);
}

static bool eq_id(const void *ctx, uint32_t id, const void *key)
{
    return id == *(const uint32_t *)key;
}

static void test_hashtab_collisions_and_removal(void)
{
    /* Every id under one of 3 hashes: long clusters, wrapping around; the
     * backward-shift deletion must keep every other id findable. */
    struct sn_hashtab t;
    sn_hashtab_init(&t);
    bool in[300] = {false};
    for (uint32_t id = 0; id < 300; id++) {
        CU_ASSERT_EQUAL_FATAL(sn_hashtab_insert(&t, 0xfffffff0u + id % 3, id), 0);
        in[id] = true;
    }
    srand(7);
    for (int round = 0; round < 2000; round++) {
        uint32_t id = (uint32_t)rand() % 300;
        if (in[id])
            sn_hashtab_remove(&t, 0xfffffff0u + id % 3, id);
        else
            CU_ASSERT_EQUAL(sn_hashtab_insert(&t, 0xfffffff0u + id % 3, id), 0);
        in[id] = !in[id];
        uint32_t probe = (uint32_t)rand() % 300;
        uint32_t want = in[probe] ? probe : SN_HASHTAB_NONE;
        CU_ASSERT_EQUAL(sn_hashtab_find(&t, 0xfffffff0u + probe % 3, eq_id, NULL, &probe), want);
    }
    uint32_t count = 0, pos = 0;
    while (sn_hashtab_next(&t, &pos) != SN_HASHTAB_NONE)
        count++;
    CU_ASSERT_EQUAL(count, t.count);

    /* Replace keeps the place; emptying the table gives memory back. */
    uint32_t live = 0;
    while (!in[live])
        live++;
    sn_hashtab_replace(&t, 0xfffffff0u + live % 3, live, 1000 + live);
    uint32_t key = 1000 + live;
    CU_ASSERT_EQUAL(sn_hashtab_find(&t, 0xfffffff0u + live % 3, eq_id, NULL, &key), key);
    CU_ASSERT_EQUAL(sn_hashtab_find(&t, 0xfffffff0u + live % 3, eq_id, NULL, &live),
                    SN_HASHTAB_NONE);
    sn_hashtab_replace(&t, 0xfffffff0u + live % 3, 1000 + live, live);
    size_t full = sn_hashtab_bytes(&t);
    for (uint32_t id = 0; id < 300; id++) {
        if (in[id])
            sn_hashtab_remove(&t, 0xfffffff0u + id % 3, id);
    }
    CU_ASSERT_EQUAL(t.count, 0);
    CU_ASSERT(sn_hashtab_bytes(&t) < full);
    sn_hashtab_free(&t);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_hashtab", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "SipHash-2-4 matches the reference vectors", test_siphash_reference_vectors);
    CU_add_test(s, "collisions, wrap-around and removals", test_hashtab_collisions_and_removal);
    return 0;
}
