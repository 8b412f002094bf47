/* test_sn_kwdir.c - the keyword directory an owner supernode keeps
 * (sn_kwdir.h, issue 17): one posting per (keyword, file, holder) however
 * often it is published, removal, a holder dropped, soft-state expiry, every
 * cap, queries filtered by the whole query, bounded and seeded samples, the
 * replicas' digest, handoff on churn, and a random run against a model. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "sn_kwdir.h"

#define NOW 1000000u

static void make_id(uint8_t out[32], uint8_t tag, unsigned i)
{
    memset(out, 0, 32);
    out[0] = tag;
    out[1] = (uint8_t)(i >> 8);
    out[2] = (uint8_t)i;
}

static void kwh(const char *word, uint8_t out[32])
{
    CU_ASSERT_EQUAL_FATAL(sn_kwdir_keyword_hash(word, strlen(word), out), 0);
}

static struct sn_kwdir_delta delta(int op, const char *word, unsigned file, const char *name,
                                   uint32_t sources)
{
    struct sn_kwdir_delta d = {.op = (uint8_t)op, .size = 1000u + file, .sources = sources};
    kwh(word, d.keyword);
    make_id(d.file_id, 'f', file);
    d.name = wire_str_from(name);
    return d;
}

static int add(struct sn_kwdir *dir, unsigned holder, const char *word, unsigned file,
               const char *name, uint32_t sources, uint64_t now)
{
    uint8_t h[32];
    make_id(h, 'h', holder);
    struct sn_kwdir_delta d = delta(SN_KWDIR_ADD, word, file, name, sources);
    return sn_kwdir_update(dir, h, &d, now);
}

static int rm(struct sn_kwdir *dir, unsigned holder, const char *word, unsigned file)
{
    uint8_t h[32];
    make_id(h, 'h', holder);
    struct sn_kwdir_delta d = delta(SN_KWDIR_REMOVE, word, file, "", 0);
    return sn_kwdir_update(dir, h, &d, NOW);
}

static size_t count(const struct sn_kwdir *dir, const char *word)
{
    uint8_t k[32];
    kwh(word, k);
    return sn_kwdir_count(dir, k);
}

static size_t kw_postings(const struct sn_kwdir *dir, const char *word)
{
    uint8_t k[32];
    kwh(word, k);
    return sn_kwdir_keyword_postings(dir, k);
}

static struct sn_kwdir_stats stats(const struct sn_kwdir *dir)
{
    struct sn_kwdir_stats s;
    sn_kwdir_stats(dir, &s);
    return s;
}

/* Query word's files with the query q (NULL: no filter). */
static size_t query(const struct sn_kwdir *dir, const char *word, const char *q, size_t max,
                    uint64_t seed, struct sn_kwdir_result *out, struct sn_kwdir_query_info *info)
{
    uint8_t k[32];
    kwh(word, k);
    struct wire_str w = q != NULL ? wire_str_from(q) : (struct wire_str){NULL, 0};
    return sn_kwdir_query(dir, k, &w, q != NULL ? 1 : 0, max, seed, out, info);
}

static struct sn_kwdir *new_dir(uint32_t per_kw, uint32_t per_holder, uint32_t total, uint8_t key)
{
    struct sn_kwdir_config c = sn_kwdir_config_default();
    c.max_per_keyword = per_kw;
    c.max_per_holder = per_holder;
    c.max_postings = total;
    c.ttl_ms = 1000;
    memset(c.hash_key, key, sizeof(c.hash_key));
    struct sn_kwdir *dir = sn_kwdir_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    return dir;
}

/* ---- keys ------------------------------------------------------------------------ */
static void test_keyword_hash(void)
{
    /* SHA-256("sova-kw\0holiday"), from: printf 'sova-kw\0holiday' | sha256sum */
    static const uint8_t want[8] = {0x24, 0x6a, 0xdf, 0x2a, 0xc5, 0x9d, 0xc3, 0xbe};
    uint8_t k[32], names[16][32];
    kwh("holiday", k);
    CU_ASSERT_EQUAL(memcmp(k, want, sizeof(want)), 0);
    int n = sn_kwdir_name_keywords("Holiday_Video-2019.MP4", 22, names);
    CU_ASSERT_EQUAL_FATAL(n, 4); /* mp4, holiday, video, 2019 */
    CU_ASSERT_EQUAL(memcmp(names[1], k, 32), 0);
    kwh("mp4", k);
    CU_ASSERT_EQUAL(memcmp(names[0], k, 32), 0);
}

/* ---- add, refresh, remove ------------------------------------------------------------ */
static void test_add_refresh_no_duplicate(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 1);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 7, "Holiday Video.mp4", 2, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 7, "Holiday Video.mp4", 2, NOW + 10), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 7, "Holiday Video.mp4", 2, NOW + 20), 0);
    CU_ASSERT_EQUAL(count(dir, "video"), 1);
    CU_ASSERT_EQUAL(kw_postings(dir, "video"), 1);
    struct sn_kwdir_stats s = stats(dir);
    CU_ASSERT_EQUAL(s.postings, 1);
    CU_ASSERT_EQUAL(s.added, 1);
    CU_ASSERT_EQUAL(s.refreshed, 2);
    CU_ASSERT_EQUAL(sn_kwdir_next_expiry(dir), NOW + 20 + 1000); /* the refresh pushed it */

    /* A second holder: still one file, now with two holders (in ID order). */
    CU_ASSERT_EQUAL(add(dir, 3, "video", 7, "holiday video.mp4", 5, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 7, "Holiday Video.mp4", 4, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 7, "Holiday Video.mp4", 9, NOW), 0); /* new sources */
    CU_ASSERT_EQUAL(count(dir, "video"), 1);
    CU_ASSERT_EQUAL(kw_postings(dir, "video"), 3);
    struct sn_kwdir_result r[4];
    CU_ASSERT_EQUAL_FATAL(query(dir, "video", "video", 4, 1, r, NULL), 1);
    CU_ASSERT_EQUAL(r[0].total_holders, 3);
    CU_ASSERT_EQUAL_FATAL(r[0].n_holders, 3);
    uint8_t id[32];
    for (unsigned i = 0; i < 3; i++) {
        make_id(id, 'h', i + 1);
        CU_ASSERT_EQUAL(memcmp(r[0].holders[i].id, id, 32), 0);
    }
    CU_ASSERT_EQUAL(r[0].holders[0].sources, 2);
    CU_ASSERT_EQUAL(r[0].holders[1].sources, 9);
    CU_ASSERT_EQUAL(r[0].holders[2].sources, 5);
    make_id(id, 'f', 7);
    CU_ASSERT_EQUAL(memcmp(r[0].file_id, id, 32), 0);
    CU_ASSERT_EQUAL(r[0].size, 1007);
    CU_ASSERT(wire_str_eq(r[0].name, "Holiday Video.mp4"));

    /* The same file under another of its words is another posting. */
    CU_ASSERT_EQUAL(add(dir, 1, "holiday", 7, "Holiday Video.mp4", 2, NOW), 0);
    CU_ASSERT_EQUAL(stats(dir).postings, 4);
    CU_ASSERT_EQUAL(stats(dir).keywords, 2);
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

static void test_remove(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 2);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 7, "cat video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 7, "cat video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 8, "dog video", 1, NOW), 0);
    CU_ASSERT_EQUAL(rm(dir, 1, "video", 7), 0);
    CU_ASSERT_EQUAL(count(dir, "video"), 2); /* holder 2 still has file 7 */
    CU_ASSERT_EQUAL(kw_postings(dir, "video"), 2);
    CU_ASSERT_EQUAL(rm(dir, 1, "video", 7), 0); /* not there: nothing happens */
    CU_ASSERT_EQUAL(rm(dir, 9, "video", 8), 0);
    CU_ASSERT_EQUAL(rm(dir, 2, "nosuch", 8), 0);
    CU_ASSERT_EQUAL(kw_postings(dir, "video"), 2);
    CU_ASSERT_EQUAL(stats(dir).holders, 1); /* holder 1 went with its last posting */
    CU_ASSERT_EQUAL(rm(dir, 2, "video", 7), 0);
    CU_ASSERT_EQUAL(rm(dir, 2, "video", 8), 0);
    struct sn_kwdir_stats s = stats(dir);
    CU_ASSERT_EQUAL(count(dir, "video"), 0);
    CU_ASSERT_EQUAL(s.postings + s.keywords + s.files + s.holders, 0);
    CU_ASSERT_EQUAL(s.removed, 3);
    CU_ASSERT_EQUAL(sn_kwdir_next_expiry(dir), UINT64_MAX);
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

static void test_apply_batch(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 3);
    struct sn_kwdir_delta d[4] = {
        delta(SN_KWDIR_ADD, "video", 1, "a video", 1),
        delta(SN_KWDIR_ADD, "video", 2, "a photo", 1), /* "video" is not its word */
        delta(SN_KWDIR_ADD, "video", 3, "b video", 1),
        delta(SN_KWDIR_REMOVE, "video", 1, "", 0),
    };
    uint8_t h[32];
    make_id(h, 'h', 1);
    int res[4];
    CU_ASSERT_EQUAL(sn_kwdir_apply(dir, h, d, 4, NOW, res), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(res[0], 0);
    CU_ASSERT_EQUAL(res[1], SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(res[2], 0);
    CU_ASSERT_EQUAL(res[3], 0);
    CU_ASSERT_EQUAL(count(dir, "video"), 1); /* 3 only */
    CU_ASSERT_EQUAL(stats(dir).refused_other, 1);
    sn_kwdir_free(dir);
}

static void test_bad_deltas(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 4);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "", 1, NOW), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "video", 0, NOW), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "videos", 1, NOW), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a\x01 video", 1, NOW), SOVA_ERR_UNSAFE_NAME);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    memcpy(long_name, "video ", 6);
    long_name[sizeof(long_name) - 1] = 0;
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, long_name, 1, NOW), SOVA_ERR_BAD_VALUE);
    uint8_t h[32];
    make_id(h, 'h', 1);
    struct sn_kwdir_delta d = delta(7, "video", 1, "video", 1);
    CU_ASSERT_EQUAL(sn_kwdir_update(dir, h, &d, NOW), SOVA_ERR_BAD_VALUE);
    /* A refresh to a name without the word is refused and keeps the old one. */
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "Video one", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "photo one", 1, NOW), SOVA_ERR_BAD_VALUE);
    struct sn_kwdir_result r[1];
    CU_ASSERT_EQUAL_FATAL(query(dir, "video", NULL, 1, 0, r, NULL), 1);
    CU_ASSERT(wire_str_eq(r[0].name, "Video one"));
    struct sn_kwdir_stats s = stats(dir);
    CU_ASSERT_EQUAL(s.postings, 1);
    CU_ASSERT_EQUAL(s.refused_other, 7);
    sn_kwdir_free(dir);
}

/* ---- holders, expiry -------------------------------------------------------------- */
static void test_drop_holder(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 5);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "cat video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "cat", 1, "cat video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 2, "dog video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 1, "cat video", 3, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "dog", 3, "dog days", 3, NOW), 0);
    uint8_t h1[32], h2[32];
    make_id(h1, 'h', 1);
    make_id(h2, 'h', 2);
    CU_ASSERT_EQUAL(sn_kwdir_holder_postings(dir, h1), 3);
    CU_ASSERT_EQUAL(sn_kwdir_drop_holder(dir, h1), 3);
    CU_ASSERT_EQUAL(sn_kwdir_drop_holder(dir, h1), 0);
    CU_ASSERT_EQUAL(sn_kwdir_holder_postings(dir, h1), 0);
    CU_ASSERT_EQUAL(sn_kwdir_holder_postings(dir, h2), 2);
    CU_ASSERT_EQUAL(count(dir, "video"), 1);
    CU_ASSERT_EQUAL(count(dir, "cat"), 0);
    CU_ASSERT_EQUAL(count(dir, "dog"), 1);
    struct sn_kwdir_stats s = stats(dir);
    CU_ASSERT_EQUAL(s.postings, 2);
    CU_ASSERT_EQUAL(s.keywords, 2);
    CU_ASSERT_EQUAL(s.holders, 1);
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

static void test_expiry(void)
{
    struct sn_kwdir_config c = sn_kwdir_config_default();
    c.ttl_ms = 1000;
    c.max_expire_per_call = 2;
    struct sn_kwdir *dir = sn_kwdir_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    for (unsigned f = 0; f < 6; f++)
        CU_ASSERT_EQUAL(add(dir, 1, "video", f, "a video", 1, NOW + f), 0);
    CU_ASSERT_EQUAL(sn_kwdir_next_expiry(dir), NOW + 1000);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 0, "a video", 1, NOW + 600), 0); /* refreshed */
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 999), 0);
    CU_ASSERT_EQUAL(sn_kwdir_next_expiry(dir), NOW + 1001);
    /* Files 1..5 are due at NOW + 1005; two at a time. */
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 1005), 2);
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 1005), 2);
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 1005), 1);
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 1005), 0);
    CU_ASSERT_EQUAL(count(dir, "video"), 1);
    CU_ASSERT_EQUAL(sn_kwdir_next_expiry(dir), NOW + 1600);
    /* A clock that goes back never makes an earlier expiry than the tail's. */
    CU_ASSERT_EQUAL(add(dir, 2, "video", 9, "b video", 1, NOW), 0);
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    CU_ASSERT_EQUAL(sn_kwdir_expire(dir, NOW + 1600), 2);
    CU_ASSERT_EQUAL(stats(dir).expired, 7);
    CU_ASSERT_EQUAL(stats(dir).postings, 0);
    sn_kwdir_free(dir);
}

/* ---- caps --------------------------------------------------------------------------- */
/* Everything a refused call must leave as it was. */
struct snapshot {
    struct sn_kwdir_stats s;
    uint8_t digest[SN_KWDIR_DIGEST_LEN];
    size_t n;
};

static struct snapshot snap(const struct sn_kwdir *dir, const char *word)
{
    struct snapshot x;
    uint8_t k[32];
    kwh(word, k);
    sn_kwdir_stats(dir, &x.s);
    sn_kwdir_digest(dir, k, x.digest);
    x.n = sn_kwdir_count(dir, k);
    return x;
}

static void same_but_refusals(const struct snapshot *a, const struct snapshot *b)
{
    CU_ASSERT_EQUAL(a->s.postings, b->s.postings);
    CU_ASSERT_EQUAL(a->s.keywords, b->s.keywords);
    CU_ASSERT_EQUAL(a->s.files, b->s.files);
    CU_ASSERT_EQUAL(a->s.holders, b->s.holders);
    CU_ASSERT_EQUAL(a->s.bytes, b->s.bytes);
    CU_ASSERT_EQUAL(a->s.added, b->s.added);
    CU_ASSERT_EQUAL(memcmp(a->digest, b->digest, sizeof(a->digest)), 0);
    CU_ASSERT_EQUAL(a->n, b->n);
}

static void test_cap_per_keyword(void)
{
    struct sn_kwdir *dir = new_dir(3, 0, 0, 6);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 2, "b video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 2, "b video", 1, NOW), 0);
    struct snapshot before = snap(dir, "video");
    CU_ASSERT_EQUAL(add(dir, 1, "video", 3, "c video", 1, NOW), SOVA_ERR_KEYWORD_FULL);
    CU_ASSERT_EQUAL(add(dir, 3, "video", 1, "a video", 1, NOW), SOVA_ERR_KEYWORD_FULL);
    struct snapshot after = snap(dir, "video");
    same_but_refusals(&before, &after);
    CU_ASSERT_EQUAL(after.s.refused_keyword, 2);
    CU_ASSERT_EQUAL(after.s.refused_holder + after.s.refused_full + after.s.refused_other, 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a video", 5, NOW), 0); /* refresh: never refused */
    CU_ASSERT_EQUAL(add(dir, 1, "cat", 3, "cat video", 1, NOW), 0); /* another keyword */
    CU_ASSERT_EQUAL(rm(dir, 2, "video", 2), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 3, "c video", 1, NOW), 0); /* room again */
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

static void test_cap_per_holder(void)
{
    struct sn_kwdir *dir = new_dir(0, 2, 0, 7);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "cat", 2, "cat", 1, NOW), 0);
    struct snapshot before = snap(dir, "video");
    CU_ASSERT_EQUAL(add(dir, 1, "video", 2, "b video", 1, NOW), SOVA_ERR_HOLDER_FULL);
    CU_ASSERT_EQUAL(add(dir, 1, "dog", 2, "dog", 1, NOW), SOVA_ERR_HOLDER_FULL);
    struct snapshot after = snap(dir, "video");
    same_but_refusals(&before, &after);
    CU_ASSERT_EQUAL(after.s.refused_holder, 2);
    CU_ASSERT_EQUAL(count(dir, "dog"), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a video", 1, NOW), 0); /* refresh */
    CU_ASSERT_EQUAL(add(dir, 2, "video", 2, "b video", 1, NOW), 0); /* another holder */
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

static void test_cap_total(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 3, 8);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "a video", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "cat", 2, "cat", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 3, "dog", 3, "dog", 1, NOW), 0);
    struct snapshot before = snap(dir, "video");
    CU_ASSERT_EQUAL(add(dir, 4, "video", 1, "a video", 1, NOW), SOVA_ERR_INDEX_FULL);
    CU_ASSERT_EQUAL(add(dir, 1, "emu", 1, "emu", 1, NOW), SOVA_ERR_INDEX_FULL);
    struct snapshot after = snap(dir, "video");
    same_but_refusals(&before, &after);
    CU_ASSERT_EQUAL(after.s.refused_full, 2);
    CU_ASSERT_EQUAL(add(dir, 2, "cat", 2, "cat", 1, NOW), 0); /* refresh */
    CU_ASSERT_EQUAL(sn_kwdir_check(dir), 0);
    sn_kwdir_free(dir);
}

/* ---- query ----------------------------------------------------------------------- */
static void test_query_filters_whole_query(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 9);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 1, "Holiday Video 2019.mp4", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "video", 2, "Cat video.avi", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 2, "video", 3, "cat video.avi", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 3, "video", 3, "dog video.mkv", 1, NOW), 0);
    CU_ASSERT_EQUAL(add(dir, 1, "holiday", 4, "Holiday photo", 1, NOW), 0);
    struct sn_kwdir_result r[8];
    struct sn_kwdir_query_info info;
    CU_ASSERT_EQUAL(query(dir, "video", "holiday video", 8, 1, r, &info), 1);
    CU_ASSERT(wire_str_eq(r[0].name, "Holiday Video 2019.mp4"));
    CU_ASSERT_EQUAL(info.files, 3);
    CU_ASSERT_FALSE(info.sampled);
    CU_ASSERT_EQUAL(query(dir, "video", "VIDEO", 8, 1, r, NULL), 3);
    CU_ASSERT_EQUAL(query(dir, "video", NULL, 8, 1, r, NULL), 3);
    CU_ASSERT_EQUAL(query(dir, "video", "cat video", 8, 1, r, NULL), 2);
    /* File 3 is named differently by its two holders: either name finds it,
     * and the result carries the name that matched, with both holders. */
    CU_ASSERT_EQUAL_FATAL(query(dir, "video", "dog video", 8, 1, r, NULL), 1);
    CU_ASSERT(wire_str_eq(r[0].name, "dog video.mkv"));
    CU_ASSERT_EQUAL(r[0].n_holders, 2);
    CU_ASSERT_EQUAL(query(dir, "video", "video mp4", 8, 1, r, NULL), 1);
    CU_ASSERT_EQUAL(query(dir, "video", "video photo", 8, 1, r, NULL), 0);
    CU_ASSERT_EQUAL(query(dir, "video", "vid", 8, 1, r, NULL), 0); /* words, not prefixes */
    char too_long[80];
    memset(too_long, 'x', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = 0;
    CU_ASSERT_EQUAL(query(dir, "video", too_long, 8, 1, r, NULL), 0);
    CU_ASSERT_EQUAL(query(dir, "nosuch", "nosuch", 8, 1, r, &info), 0);
    CU_ASSERT_EQUAL(info.files, 0);
    CU_ASSERT_EQUAL(query(dir, "video", "video", 2, 1, r, &info), 2);
    CU_ASSERT(info.sampled);
    sn_kwdir_free(dir);
}

static void test_holders_listed_are_bounded(void)
{
    struct sn_kwdir *dir = new_dir(0, 0, 0, 10);
    for (unsigned h = 40; h > 0; h--)
        CU_ASSERT_EQUAL(add(dir, h, "video", 1, "a video", h, NOW), 0);
    struct sn_kwdir_result r[1];
    CU_ASSERT_EQUAL_FATAL(query(dir, "video", "video", 1, 0, r, NULL), 1);
    CU_ASSERT_EQUAL(r[0].total_holders, 40);
    CU_ASSERT_EQUAL_FATAL(r[0].n_holders, SN_KWDIR_MAX_HOLDERS_OUT);
    for (unsigned i = 0; i < SN_KWDIR_MAX_HOLDERS_OUT; i++)
        CU_ASSERT_EQUAL(r[0].holders[i].sources, i + 1); /* the lowest IDs, in order */
    sn_kwdir_free(dir);
}

/* Fill a keyword with n files, holder h, in the order given by step. */
static void fill(struct sn_kwdir *dir, unsigned n, unsigned step)
{
    char name[64];
    for (unsigned i = 0; i < n; i++) {
        unsigned f = (i * step) % n;
        snprintf(name, sizeof(name), "common file%u %s", f, f % 3 == 0 ? "rare" : "other");
        CU_ASSERT_EQUAL(add(dir, 1 + f % 4, "common", f, name, 1, NOW), 0);
    }
}

static void ids_of(const struct sn_kwdir_result *r, size_t n, uint8_t (*out)[32])
{
    for (size_t i = 0; i < n; i++)
        memcpy(out[i], r[i].file_id, 32);
}

static void test_sample_bounded_and_seeded(void)
{
    /* Two replicas: other hash keys, the files published in other orders. */
    struct sn_kwdir *a = new_dir(0, 0, 0, 11), *b = new_dir(0, 0, 0, 12);
    fill(a, 600, 1);
    fill(b, 600, 7);
    struct sn_kwdir_result r[10];
    uint8_t first[10][32], again[10][32], other[10][32];
    struct sn_kwdir_query_info info;
    CU_ASSERT_EQUAL_FATAL(query(a, "common", "common", 10, 42, r, &info), 10);
    CU_ASSERT(info.sampled);
    CU_ASSERT_FALSE(info.budget_hit);
    CU_ASSERT_EQUAL(info.scanned, 10);
    ids_of(r, 10, first);
    CU_ASSERT_EQUAL_FATAL(query(b, "common", "common", 10, 42, r, NULL), 10);
    ids_of(r, 10, again);
    CU_ASSERT_EQUAL(memcmp(first, again, sizeof(first)), 0); /* the same sample on a replica */
    unsigned differ = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        CU_ASSERT_EQUAL_FATAL(query(a, "common", "common", 10, seed, r, NULL), 10);
        ids_of(r, 10, other);
        differ += memcmp(first, other, sizeof(first)) != 0;
        bool same_first = memcmp(first[0], other[0], 32) == 0;
        CU_ASSERT_FALSE(same_first); /* another seed, another place */
    }
    CU_ASSERT_EQUAL(differ, 8);
    /* Filtered by the whole query: a third of the files match. */
    CU_ASSERT_EQUAL_FATAL(query(a, "common", "common rare", 10, 5, r, &info), 10);
    CU_ASSERT(info.scanned >= 10 && info.scanned <= 40);
    for (size_t i = 0; i < 10; i++)
        CU_ASSERT(r[i].name.len > 4 && memcmp(r[i].name.ptr + r[i].name.len - 4, "rare", 4) == 0);
    /* No match at all: every file is looked at, once. */
    CU_ASSERT_EQUAL(query(a, "common", "common nothing", 10, 5, r, &info), 0);
    CU_ASSERT_FALSE(info.budget_hit);
    CU_ASSERT_FALSE(info.sampled);
    CU_ASSERT_EQUAL(info.scanned, 600);
    sn_kwdir_free(a);
    sn_kwdir_free(b);
}

static void test_scan_budget(void)
{
    struct sn_kwdir_config c = sn_kwdir_config_default();
    c.max_scan = 100;
    struct sn_kwdir *dir = sn_kwdir_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    fill(dir, 600, 1);
    struct sn_kwdir_result r[10];
    struct sn_kwdir_query_info info;
    CU_ASSERT_EQUAL(query(dir, "common", "common nothing", 10, 5, r, &info), 0);
    CU_ASSERT(info.budget_hit);
    CU_ASSERT(info.sampled);
    CU_ASSERT_EQUAL(info.scanned, 100);
    CU_ASSERT_EQUAL(info.files, 600);
    /* A third match: at most 100 names read, whatever max_results asks. */
    CU_ASSERT_EQUAL(query(dir, "common", "common rare", 10, 5, r, &info), 10);
    CU_ASSERT(info.scanned <= 40);
    struct sn_kwdir_result many[600];
    size_t n = query(dir, "common", "common rare", 600, 5, many, &info);
    CU_ASSERT(info.budget_hit);
    CU_ASSERT_EQUAL(info.scanned, 100);
    CU_ASSERT(n >= 30 && n <= 36);
    sn_kwdir_free(dir);
}

/* ---- digest ------------------------------------------------------------------------ */
static void digest_of(const struct sn_kwdir *dir, const char *word, uint8_t out[16])
{
    uint8_t k[32];
    kwh(word, k);
    sn_kwdir_digest(dir, k, out);
}

static void test_digest(void)
{
    struct sn_kwdir *a = new_dir(0, 0, 0, 13), *b = new_dir(0, 0, 0, 14);
    static const uint8_t zero[SN_KWDIR_DIGEST_LEN];
    uint8_t da[SN_KWDIR_DIGEST_LEN], db[SN_KWDIR_DIGEST_LEN];
    digest_of(a, "video", da);
    CU_ASSERT_EQUAL(memcmp(da, zero, sizeof(da)), 0);
    for (unsigned i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(add(a, 1 + i % 3, "video", i / 2, "a video", 1, NOW), 0);
    for (unsigned i = 50; i-- > 0;)
        CU_ASSERT_EQUAL(add(b, 1 + i % 3, "video", i / 2, "b video", 7, NOW), 0);
    digest_of(a, "video", da);
    digest_of(b, "video", db);
    CU_ASSERT_EQUAL(memcmp(da, db, sizeof(da)), 0); /* names and sources are not in it */
    CU_ASSERT_NOT_EQUAL(memcmp(da, zero, sizeof(da)), 0);
    CU_ASSERT_EQUAL(rm(b, 2, "video", 5), 0); /* b dropped one */
    digest_of(b, "video", db);
    CU_ASSERT_NOT_EQUAL(memcmp(da, db, sizeof(da)), 0);
    CU_ASSERT_EQUAL(add(b, 2, "video", 5, "a video", 1, NOW), 0);
    digest_of(b, "video", db);
    CU_ASSERT_EQUAL(memcmp(da, db, sizeof(da)), 0);
    CU_ASSERT_EQUAL(add(b, 9, "video", 5, "a video", 1, NOW), 0); /* b invented one */
    digest_of(b, "video", db);
    CU_ASSERT_NOT_EQUAL(memcmp(da, db, sizeof(da)), 0);
    CU_ASSERT_EQUAL(rm(b, 9, "video", 5), 0);
    CU_ASSERT_EQUAL(add(b, 2, "video", 99, "a video", 1, NOW), 0); /* same count, other file */
    CU_ASSERT_EQUAL(rm(b, 2, "video", 5), 0);
    digest_of(b, "video", db);
    CU_ASSERT_NOT_EQUAL(memcmp(da, db, sizeof(da)), 0);
    CU_ASSERT_EQUAL(sn_kwdir_check(a), 0);
    CU_ASSERT_EQUAL(sn_kwdir_check(b), 0);
    sn_kwdir_free(a);
    sn_kwdir_free(b);
}

/* ---- handoff ----------------------------------------------------------------------- */
static bool pick_even(void *arg, const uint8_t keyword[32], size_t n_files)
{
    (void)arg;
    return n_files > 0 && keyword[0] % 2 == 0;
}

static int move_posting(void *arg, const struct sn_kwdir_posting *p)
{
    struct sn_kwdir_delta d = {
        .op = SN_KWDIR_ADD, .name = p->name, .size = p->size, .sources = p->sources};
    memcpy(d.keyword, p->keyword, 32);
    memcpy(d.file_id, p->file_id, 32);
    return sn_kwdir_update(arg, p->holder, &d, NOW);
}

struct handoff {
    uint8_t keys[64][32];
    size_t n;
};

static bool note_even(void *arg, const uint8_t keyword[32], size_t n_files)
{
    struct handoff *h = arg;
    if (!pick_even(NULL, keyword, n_files))
        return false;
    CU_ASSERT_FATAL(h->n < 64);
    memcpy(h->keys[h->n++], keyword, 32);
    return false;
}

static void test_handoff(void)
{
    struct sn_kwdir *a = new_dir(0, 0, 0, 15), *b = new_dir(0, 0, 0, 16);
    char word[16], name[64];
    uint8_t k[32], da[SN_KWDIR_DIGEST_LEN], db[SN_KWDIR_DIGEST_LEN];
    for (unsigned w = 0; w < 30; w++) {
        snprintf(word, sizeof(word), "word%u", w);
        for (unsigned f = 0; f <= w % 5; f++) {
            snprintf(name, sizeof(name), "%s file%u", word, f);
            CU_ASSERT_EQUAL(add(a, 1 + f % 2, word, f, name, 1, NOW), 0);
        }
    }
    struct sn_kwdir_stats before = stats(a);
    struct handoff h = {.n = 0};
    CU_ASSERT_EQUAL(sn_kwdir_export(a, note_even, NULL, &h), 0); /* only lists them */
    CU_ASSERT(h.n > 0 && h.n < 30);
    CU_ASSERT_EQUAL(sn_kwdir_export(a, pick_even, move_posting, b), 0);
    size_t moved = 0;
    for (size_t i = 0; i < h.n; i++) {
        sn_kwdir_digest(a, h.keys[i], da);
        sn_kwdir_digest(b, h.keys[i], db);
        CU_ASSERT_EQUAL(memcmp(da, db, sizeof(da)), 0);
        CU_ASSERT_EQUAL(sn_kwdir_count(a, h.keys[i]), sn_kwdir_count(b, h.keys[i]));
        moved += sn_kwdir_drop_keyword(a, h.keys[i]);
        CU_ASSERT_EQUAL(sn_kwdir_count(a, h.keys[i]), 0);
    }
    struct sn_kwdir_stats sa = stats(a), sb = stats(b);
    CU_ASSERT_EQUAL(sb.postings, moved);
    CU_ASSERT_EQUAL(sa.postings + sb.postings, before.postings);
    CU_ASSERT_EQUAL(sb.keywords, h.n);
    CU_ASSERT_EQUAL(sa.keywords + sb.keywords, 30);
    for (unsigned w = 0; w < 30; w++) { /* each keyword lives in exactly one */
        snprintf(word, sizeof(word), "word%u", w);
        kwh(word, k);
        CU_ASSERT_EQUAL((sn_kwdir_count(a, k) > 0) + (sn_kwdir_count(b, k) > 0), 1);
        CU_ASSERT_EQUAL(sn_kwdir_count(a, k) + sn_kwdir_count(b, k), 1 + w % 5);
    }
    CU_ASSERT_EQUAL(sn_kwdir_check(a), 0);
    CU_ASSERT_EQUAL(sn_kwdir_check(b), 0);
    sn_kwdir_free(a);
    sn_kwdir_free(b);
}

/* ---- random operations against a model ---------------------------------------------- */
#define M_KW     6
#define M_FILES  30
#define M_HOLD   5
#define M_PER_KW 40
#define M_PER_H  50
#define M_TOTAL  150
#define M_TTL    1000

static const char *const m_words[M_KW] = {"alpha", "beta", "gamma", "delta", "eps", "zeta"};

struct model {
    bool live[M_KW][M_FILES][M_HOLD];
    uint32_t sources[M_KW][M_FILES][M_HOLD];
    uint64_t expires[M_KW][M_FILES][M_HOLD];
    unsigned per_kw[M_KW], per_h[M_HOLD], total;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static void model_del(struct model *m, unsigned k, unsigned f, unsigned h)
{
    if (!m->live[k][f][h])
        return;
    m->live[k][f][h] = false;
    m->per_kw[k]--;
    m->per_h[h]--;
    m->total--;
}

static int model_add(struct model *m, unsigned k, unsigned f, unsigned h, uint32_t src,
                     uint64_t now)
{
    if (!m->live[k][f][h]) {
        if (m->per_h[h] >= M_PER_H)
            return SOVA_ERR_HOLDER_FULL;
        if (m->per_kw[k] >= M_PER_KW)
            return SOVA_ERR_KEYWORD_FULL;
        if (m->total >= M_TOTAL)
            return SOVA_ERR_INDEX_FULL;
        m->live[k][f][h] = true;
        m->per_kw[k]++;
        m->per_h[h]++;
        m->total++;
    }
    m->sources[k][f][h] = src;
    m->expires[k][f][h] = now + M_TTL;
    return 0;
}

/* Compare everything the directory reports with the model. */
static void model_compare(const struct sn_kwdir *dir, const struct model *m)
{
    struct sn_kwdir_result r[M_FILES + 1];
    uint8_t id[32];
    for (unsigned k = 0; k < M_KW; k++) {
        unsigned files = 0;
        for (unsigned f = 0; f < M_FILES; f++) {
            bool any = false;
            for (unsigned h = 0; h < M_HOLD; h++)
                any |= m->live[k][f][h];
            files += any;
        }
        CU_ASSERT_EQUAL(count(dir, m_words[k]), files);
        CU_ASSERT_EQUAL(kw_postings(dir, m_words[k]), m->per_kw[k]);
        size_t n = query(dir, m_words[k], m_words[k], M_FILES + 1, rng(), r, NULL);
        CU_ASSERT_EQUAL(n, files);
        for (size_t i = 0; i < n; i++) {
            unsigned f = (unsigned)r[i].file_id[1] << 8 | r[i].file_id[2];
            CU_ASSERT_FATAL(f < M_FILES);
            unsigned holders = 0;
            for (unsigned h = 0; h < M_HOLD; h++)
                holders += m->live[k][f][h];
            CU_ASSERT_EQUAL(r[i].total_holders, holders);
            CU_ASSERT_EQUAL_FATAL(r[i].n_holders, holders);
            for (size_t j = 0; j < r[i].n_holders; j++) {
                unsigned h = r[i].holders[j].id[2];
                CU_ASSERT_FATAL(h < M_HOLD);
                CU_ASSERT(m->live[k][f][h]);
                CU_ASSERT_EQUAL(r[i].holders[j].sources, m->sources[k][f][h]);
            }
        }
        /* Only the files whose name has "odd" (odd file numbers). */
        char q[32];
        snprintf(q, sizeof(q), "%s odd", m_words[k]);
        unsigned odd = 0;
        for (unsigned f = 1; f < M_FILES; f += 2) {
            bool any = false;
            for (unsigned h = 0; h < M_HOLD; h++)
                any |= m->live[k][f][h];
            odd += any;
        }
        n = query(dir, m_words[k], q, M_FILES + 1, rng(), r, NULL);
        CU_ASSERT_EQUAL(n, odd);
        for (size_t i = 0; i < n; i++)
            CU_ASSERT_EQUAL(r[i].file_id[2] % 2, 1);
    }
    for (unsigned h = 0; h < M_HOLD; h++) {
        make_id(id, 'h', h);
        CU_ASSERT_EQUAL(sn_kwdir_holder_postings(dir, id), m->per_h[h]);
    }
    CU_ASSERT_EQUAL(stats(dir).postings, m->total);
}

static void test_random_against_model(void)
{
    struct sn_kwdir_config c = sn_kwdir_config_default();
    c.max_per_keyword = M_PER_KW;
    c.max_per_holder = M_PER_H;
    c.max_postings = M_TOTAL;
    c.ttl_ms = M_TTL;
    memset(c.hash_key, 0x5a, sizeof(c.hash_key));
    struct sn_kwdir *dir = sn_kwdir_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    static struct model m;
    memset(&m, 0, sizeof(m));
    uint64_t now = NOW;
    unsigned refused = 0;
    char name[64];
    for (unsigned op = 0; op < 6000; op++) {
        unsigned k = (unsigned)(rng() % M_KW), f = (unsigned)(rng() % M_FILES);
        unsigned h = (unsigned)(rng() % M_HOLD), what = (unsigned)(rng() % 100);
        if (what < 70) {
            uint32_t src = 1 + (uint32_t)(rng() % 9);
            snprintf(name, sizeof(name), "%s file%u %s v%u", m_words[k], f, f % 2 ? "odd" : "even",
                     (unsigned)(rng() % 3));
            int want = model_add(&m, k, f, h, src, now);
            int got = add(dir, h, m_words[k], f, name, src, now);
            CU_ASSERT_EQUAL(got, want);
            refused += want != 0;
        } else if (what < 88) {
            model_del(&m, k, f, h);
            CU_ASSERT_EQUAL(rm(dir, h, m_words[k], f), 0);
        } else if (what < 89) {
            uint8_t id[32];
            make_id(id, 'h', h);
            size_t want = m.per_h[h];
            for (unsigned kk = 0; kk < M_KW; kk++)
                for (unsigned ff = 0; ff < M_FILES; ff++)
                    model_del(&m, kk, ff, h);
            CU_ASSERT_EQUAL(sn_kwdir_drop_holder(dir, id), want);
        } else if (what < 90) {
            uint8_t kw[32];
            kwh(m_words[k], kw);
            size_t want = m.per_kw[k];
            for (unsigned ff = 0; ff < M_FILES; ff++)
                for (unsigned hh = 0; hh < M_HOLD; hh++)
                    model_del(&m, k, ff, hh);
            CU_ASSERT_EQUAL(sn_kwdir_drop_keyword(dir, kw), want);
        } else {
            now += rng() % 40;
            size_t want = 0;
            for (unsigned kk = 0; kk < M_KW; kk++)
                for (unsigned ff = 0; ff < M_FILES; ff++)
                    for (unsigned hh = 0; hh < M_HOLD; hh++)
                        if (m.live[kk][ff][hh] && m.expires[kk][ff][hh] <= now) {
                            model_del(&m, kk, ff, hh);
                            want++;
                        }
            CU_ASSERT_EQUAL(sn_kwdir_expire(dir, now), want);
        }
        if (op % 100 == 99) {
            model_compare(dir, &m);
            CU_ASSERT_EQUAL_FATAL(sn_kwdir_check(dir), 0);
        }
    }
    model_compare(dir, &m);
    struct sn_kwdir_stats s = stats(dir);
    printf("\n  random run: %u refusals (holder %llu, keyword %llu, total %llu); %zu postings, "
           "%zu bytes held\n",
           refused, (unsigned long long)s.refused_holder, (unsigned long long)s.refused_keyword,
           (unsigned long long)s.refused_full, s.postings, s.bytes);
    CU_ASSERT(refused > 50); /* the caps were reached, each of them */
    CU_ASSERT(s.refused_holder > 0 && s.refused_keyword > 0 && s.refused_full > 0);
    CU_ASSERT_EQUAL(s.refused_holder + s.refused_keyword + s.refused_full, refused);
    sn_kwdir_free(dir);
}

/* ---- memory ------------------------------------------------------------------------- */
static void test_memory_per_posting(void)
{
    struct sn_kwdir *dir = sn_kwdir_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char word[16];
    uint8_t h[32];
    make_id(h, 'h', 1);
    size_t n = 0;
    for (unsigned w = 0; w < 2000; w++) {
        snprintf(word, sizeof(word), "w%u", w);
        for (unsigned f = 0; f < 50; f++, n++) {
            struct sn_kwdir_delta d = delta(SN_KWDIR_ADD, word, w * 50 + f, word, 1);
            CU_ASSERT_EQUAL_FATAL(sn_kwdir_update(dir, h, &d, NOW), 0);
        }
    }
    struct sn_kwdir_stats s = stats(dir);
    CU_ASSERT_EQUAL(s.postings, n);
    size_t names = 0;
    for (unsigned w = 0; w < 2000; w++) {
        snprintf(word, sizeof(word), "w%u", w);
        names += 50 * strlen(word);
    }
    double per = (double)(s.bytes - names) / (double)n;
    printf("\n  %zu postings: %zu bytes, %.0f a posting besides its name\n", n, s.bytes, per);
    CU_ASSERT(per < SN_KWDIR_BYTES_PER_POSTING * 1.5); /* the header's figure holds */
    CU_ASSERT(per > SN_KWDIR_BYTES_PER_POSTING * 0.5);
    /* A second holder of each file: a posting without a new file. */
    make_id(h, 'h', 2);
    for (unsigned w = 0; w < 2000; w++) {
        snprintf(word, sizeof(word), "w%u", w);
        for (unsigned f = 0; f < 50; f++) {
            struct sn_kwdir_delta d = delta(SN_KWDIR_ADD, word, w * 50 + f, word, 1);
            CU_ASSERT_EQUAL_FATAL(sn_kwdir_update(dir, h, &d, NOW), 0);
        }
    }
    struct sn_kwdir_stats s2 = stats(dir);
    double second = (double)(s2.bytes - s.bytes - names) / (double)n;
    printf("  a second holder of each: %.0f bytes a posting besides its name\n", second);
    CU_ASSERT(second < per);
    sn_kwdir_free(dir);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_kwdir", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "the keyword hash and a name's keywords", test_keyword_hash);
    CU_add_test(s, "re-publishing refreshes, never duplicates; holders of one file",
                test_add_refresh_no_duplicate);
    CU_add_test(s, "remove deletes that holder's posting only", test_remove);
    CU_add_test(s, "a batch of deltas: a refused one does not stop the rest", test_apply_batch);
    CU_add_test(s, "bad deltas and names without the keyword are refused", test_bad_deltas);
    CU_add_test(s, "drop a holder: all its postings, nobody else's", test_drop_holder);
    CU_add_test(s, "soft state: expiry, refresh, bounded work per call", test_expiry);
    CU_add_test(s, "cap per keyword: refused, nothing else changed", test_cap_per_keyword);
    CU_add_test(s, "cap per holder: refused, nothing else changed", test_cap_per_holder);
    CU_add_test(s, "cap on all postings: refused, nothing else changed", test_cap_total);
    CU_add_test(s, "a query is filtered by the whole query", test_query_filters_whole_query);
    CU_add_test(s, "holders listed per file are bounded, lowest IDs first",
                test_holders_listed_are_bounded);
    CU_add_test(s, "a sample: bounded work, the same on replicas, another per seed",
                test_sample_bounded_and_seeded);
    CU_add_test(s, "a query examines at most max_scan postings", test_scan_budget);
    CU_add_test(s, "digest: order-independent, sees a dropped or invented posting", test_digest);
    CU_add_test(s, "handoff: export a share of the keywords, drop them", test_handoff);
    CU_add_test(s, "6000 random operations against a model", test_random_against_model);
    CU_add_test(s, "memory a posting takes", test_memory_per_posting);
    return 0;
}
