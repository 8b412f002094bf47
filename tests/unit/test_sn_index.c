/* test_sn_index.c - the supernode's keyword index: search semantics, peers
 * and records, limits, and a randomized comparison against a brute-force
 * model. The keyword rules are in test_sn_keywords.c, the table under the
 * index in test_sn_hashtab.c. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sn_index.h"
#include "sn_keywords.h"

/* ---- helpers ----------------------------------------------------------------- */
static void make_id(uint8_t out[WIRE_ID_LEN], unsigned n, uint8_t fill)
{
    memset(out, fill, WIRE_ID_LEN);
    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
}

static int ctx_of_peer[256]; /* &ctx_of_peer[n] is peer n's context */

static struct sn_index *new_index(uint32_t max_files, uint32_t max_name_bytes, uint32_t max_records)
{
    struct sn_index_limits lim = sn_index_limits_default();
    lim.max_files_per_peer = max_files;
    lim.max_name_bytes_per_peer = max_name_bytes;
    lim.max_records = max_records;
    lim.max_results = SN_INDEX_MAX_RESULTS_CAP;
    memcpy(lim.hash_key, "test hash key 16", 16);
    struct sn_index *idx = sn_index_new(&lim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    return idx;
}

static struct sn_index *new_default_index(void)
{
    return new_index(1000, 100000, 100000);
}

static int add_peer(struct sn_index *idx, unsigned peer)
{
    uint8_t id[WIRE_ID_LEN];
    make_id(id, peer, 0xab);
    return sn_index_peer_add(idx, id, &ctx_of_peer[peer]);
}

static int remove_peer(struct sn_index *idx, unsigned peer)
{
    uint8_t id[WIRE_ID_LEN];
    make_id(id, peer, 0xab);
    return sn_index_peer_remove(idx, id);
}

static size_t peer_files(const struct sn_index *idx, unsigned peer)
{
    uint8_t id[WIRE_ID_LEN];
    make_id(id, peer, 0xab);
    return sn_index_peer_files(idx, id);
}

static int publish(struct sn_index *idx, unsigned peer, uint8_t action, unsigned file,
                   uint64_t size, const char *name)
{
    uint8_t id[WIRE_ID_LEN];
    make_id(id, peer, 0xab);
    struct msg_publish_record rec = {.action = action, .size = size, .chunk_size = 65536};
    make_id(rec.hash, file, 0xcd);
    rec.name = wire_str_from(name);
    return sn_index_publish(idx, id, &rec);
}

static int add(struct sn_index *idx, unsigned peer, unsigned file, const char *name)
{
    return publish(idx, peer, MSG_PUBLISH_ADD, file, 1000 + file, name);
}

static int del(struct sn_index *idx, unsigned peer, unsigned file)
{
    return publish(idx, peer, MSG_PUBLISH_REMOVE, file, 0, "x");
}

/* A copy of one hit, made inside the callback. */
struct got_hit {
    unsigned file; /* from the hash */
    uint64_t size;
    char name[SN_INDEX_MAX_NAME_LEN + 1];
    size_t total, n;
    unsigned peers[SN_INDEX_MAX_SOURCES_CAP];
};

struct got {
    size_t n;
    int stop_with; /* returned by the callback when nonzero */
    struct got_hit hits[SN_INDEX_MAX_RESULTS_CAP];
};

static int collect(void *arg, const struct sn_index_hit *hit)
{
    struct got *g = arg;
    struct got_hit *h = &g->hits[g->n++];
    h->file = (unsigned)hit->hash[0] << 8 | hit->hash[1];
    h->size = hit->size;
    memcpy(h->name, hit->name.ptr, hit->name.len);
    h->name[hit->name.len] = '\0';
    h->total = hit->total_sources;
    h->n = hit->n_sources;
    for (size_t i = 0; i < hit->n_sources; i++) {
        unsigned peer = (unsigned)hit->sources[i].peer_id[0] << 8 | hit->sources[i].peer_id[1];
        h->peers[i] = peer;
        CU_ASSERT_PTR_EQUAL(hit->sources[i].peer_ctx, &ctx_of_peer[peer]);
    }
    return g->stop_with;
}

static struct got got_buf; /* big: kept out of the stack */

/* The space-separated parts of query, as the keywords of a SEARCH. */
static size_t split_query(const char *query, struct wire_str kws[WIRE_MAX_KEYWORDS_DEFAULT])
{
    size_t n = 0;
    for (const char *p = query; *p != '\0' && n < WIRE_MAX_KEYWORDS_DEFAULT;) {
        size_t len = strcspn(p, " ");
        if (len > 0)
            kws[n++] = (struct wire_str){p, len};
        p += len + (p[len] == ' ');
    }
    return n;
}

/* What a SEARCH may add to its keywords. */
struct filter {
    bool ranged;
    uint64_t min_size, max_size;
    bool by_hash;
    unsigned file; /* the hash of add(..., file, ...) */
};

/* Search for the space-separated words of query (each one a keyword). */
static const struct got *search_ex(const struct sn_index *idx, const char *query, size_t max,
                                   const struct filter *flt, struct sn_index_search_info *info)
{
    struct wire_str kws[WIRE_MAX_KEYWORDS_DEFAULT];
    size_t n = split_query(query, kws);
    struct sn_index_query q = {.keywords = kws, .n_keywords = n, .max_results = max};
    /* cppcheck-suppress variableScope ; q.hash points at it until the search below */
    uint8_t hash[WIRE_HASH_LEN];
    if (flt != NULL) {
        q.has_size_range = flt->ranged;
        q.min_size = flt->min_size;
        q.max_size = flt->max_size;
        make_id(hash, flt->file, 0xcd);
        q.hash = flt->by_hash ? hash : NULL;
    }
    got_buf.n = 0;
    got_buf.stop_with = 0;
    int rc = sn_index_search(idx, &q, collect, &got_buf, info);
    CU_ASSERT_EQUAL(rc, (int)got_buf.n);
    return &got_buf;
}

static const struct got *search(const struct sn_index *idx, const char *query)
{
    return search_ex(idx, query, 0, NULL, NULL);
}

static bool has_file(const struct got *g, unsigned file)
{
    for (size_t i = 0; i < g->n; i++) {
        if (g->hits[i].file == file)
            return true;
    }
    return false;
}

static void expect_consistent(const struct sn_index *idx)
{
    CU_ASSERT_EQUAL(sn_index_check(idx), 0);
}

/* ---- search semantics ------------------------------------------------------------ */
static void test_and_semantics(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 10, "red apple.jpg"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 11, "green apple.jpg"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 12, "red car.png"), 0);
    const struct got *g = search(idx, "apple");
    CU_ASSERT_EQUAL(g->n, 2);
    CU_ASSERT(has_file(g, 10) && has_file(g, 11));
    g = search(idx, "red apple");
    CU_ASSERT_EQUAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].file, 10);
    CU_ASSERT_STRING_EQUAL(g->hits[0].name, "red apple.jpg");
    CU_ASSERT_EQUAL(g->hits[0].size, 1010);
    CU_ASSERT_EQUAL(search(idx, "red")->n, 2);
    CU_ASSERT_EQUAL(search(idx, "apple car")->n, 0);
    CU_ASSERT_EQUAL(search(idx, "blue")->n, 0);
    CU_ASSERT_EQUAL(search(idx, "red blue")->n, 0);
    CU_ASSERT_EQUAL(search(idx, "")->n, 0);
    CU_ASSERT_EQUAL(search(idx, "a")->n, 0);
    /* Words are whole: no prefix matching. */
    CU_ASSERT_EQUAL(search(idx, "app")->n, 0);
    sn_index_free(idx);
}

static void test_case_and_punctuation(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "The.Big-Lebowski_(1998)[x264].MKV"), 0);
    const char *queries[] = {"lebowski", "LEBOWSKI", "LeBowski 1998", "big.lebowski",
                             "x264",     "(1998)",   "the_big",       "Lebowski-1998-mkv"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        const struct got *g = search(idx, queries[i]);
        CU_ASSERT_EQUAL(g->n, 1);
        if (g->n != 1)
            fprintf(stderr, "query '%s' found %zu hits\n", queries[i], g->n);
    }
    CU_ASSERT_EQUAL(search(idx, "lebowski 1999")->n, 0);
    sn_index_free(idx);
}

static void test_extension_is_keyword(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "Holiday_Video-2019.MP4"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "holiday photo.jpg"), 0);
    CU_ASSERT_EQUAL(search(idx, "mp4")->n, 1);
    CU_ASSERT_EQUAL(search(idx, "holiday mp4")->n, 1);
    CU_ASSERT_EQUAL(search(idx, "holiday")->n, 2);
    CU_ASSERT_EQUAL(search(idx, "2019 video")->n, 1);
    sn_index_free(idx);
}

static void test_grouping_by_hash(void)
{
    struct sn_index *idx = new_default_index();
    for (unsigned p = 1; p <= 4; p++)
        CU_ASSERT_EQUAL(add_peer(idx, p), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 7, "song one.mp3"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 7, "Song_One.mp3"), 0);
    CU_ASSERT_EQUAL(add(idx, 3, 7, "one song (live).mp3"), 0);
    CU_ASSERT_EQUAL(add(idx, 4, 8, "song two.mp3"), 0);
    const struct got *g = search(idx, "song");
    CU_ASSERT_EQUAL_FATAL(g->n, 2);
    /* Most sources first. */
    CU_ASSERT_EQUAL(g->hits[0].file, 7);
    CU_ASSERT_EQUAL(g->hits[0].total, 3);
    CU_ASSERT_EQUAL(g->hits[0].n, 3);
    unsigned seen = 0;
    for (size_t i = 0; i < g->hits[0].n; i++)
        seen |= 1u << g->hits[0].peers[i];
    CU_ASSERT_EQUAL(seen, (1u << 1) | (1u << 2) | (1u << 3));
    CU_ASSERT_EQUAL(g->hits[1].file, 8);
    CU_ASSERT_EQUAL(g->hits[1].total, 1);
    CU_ASSERT_EQUAL(g->hits[1].peers[0], 4);
    /* One name matched "live": the hit still lists every source of the file. */
    g = search(idx, "live");
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_STRING_EQUAL(g->hits[0].name, "one song (live).mp3");
    CU_ASSERT_EQUAL(g->hits[0].total, 3);
    /* Same hash, another size: another file. */
    CU_ASSERT_EQUAL(publish(idx, 4, MSG_PUBLISH_ADD, 7, 5, "song one.mp3"), 0);
    g = search(idx, "song one");
    CU_ASSERT_EQUAL_FATAL(g->n, 2);
    CU_ASSERT_EQUAL(g->hits[0].size, 1007);
    CU_ASSERT_EQUAL(g->hits[1].size, 5);
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.peers, 4);
    CU_ASSERT_EQUAL(st.records, 5);
    CU_ASSERT_EQUAL(st.files, 3);
    CU_ASSERT_EQUAL(st.names, 5);
    CU_ASSERT(st.bytes > 0);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_peer_removal(void)
{
    struct sn_index *idx = new_default_index();
    for (unsigned p = 1; p <= 3; p++)
        CU_ASSERT_EQUAL(add_peer(idx, p), 0);
    for (unsigned f = 0; f < 50; f++) {
        char name[64];
        snprintf(name, sizeof(name), "common track %u.ogg", f);
        CU_ASSERT_EQUAL(add(idx, 1, f, name), 0);
        if (f % 2 == 0)
            CU_ASSERT_EQUAL(add(idx, 2, f, name), 0);
    }
    CU_ASSERT_EQUAL(add(idx, 1, 100, "only peer one.ogg"), 0);
    CU_ASSERT_EQUAL(add(idx, 3, 101, "peer three.ogg"), 0);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 51);
    CU_ASSERT_EQUAL(search(idx, "common")->n, 50);

    CU_ASSERT_EQUAL(remove_peer(idx, 1), 0);
    expect_consistent(idx);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 0);
    const struct got *g = search(idx, "ogg");
    CU_ASSERT_EQUAL(g->n, 26); /* peer 2's 25 copies and peer 3's file */
    for (size_t i = 0; i < g->n; i++) {
        CU_ASSERT_EQUAL(g->hits[i].total, 1);
        CU_ASSERT_NOT_EQUAL(g->hits[i].peers[0], 1);
    }
    CU_ASSERT_EQUAL(search(idx, "only")->n, 0);
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.peers, 2);
    CU_ASSERT_EQUAL(st.records, 26);
    CU_ASSERT_EQUAL(st.files, 26);

    /* Removing a peer twice, or one never added, is reported. */
    CU_ASSERT_EQUAL(remove_peer(idx, 1), SOVA_ERR_UNKNOWN_PEER);
    CU_ASSERT_EQUAL(remove_peer(idx, 2), 0);
    CU_ASSERT_EQUAL(remove_peer(idx, 3), 0);
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.records + st.files + st.names + st.keywords + st.postings + st.peers, 0);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_remove_record(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add_peer(idx, 2), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "lecture notes.pdf"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 1, "lecture notes.pdf"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "lecture slides.pdf"), 0);
    CU_ASSERT_EQUAL(del(idx, 1, 1), 0);
    const struct got *g = search(idx, "notes");
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].total, 1);
    CU_ASSERT_EQUAL(g->hits[0].peers[0], 2);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 1);
    /* What a peer has (an ADD of it replaces; supernode/peer counts shares by it). */
    uint8_t id[WIRE_ID_LEN], hash[WIRE_HASH_LEN], stranger[WIRE_ID_LEN];
    make_id(id, 1, 0xab);
    make_id(stranger, 9, 0xab);
    make_id(hash, 2, 0xcd);
    CU_ASSERT_TRUE(sn_index_peer_has(idx, id, hash));
    CU_ASSERT_FALSE(sn_index_peer_has(idx, stranger, hash));
    make_id(hash, 1, 0xcd);
    CU_ASSERT_FALSE(sn_index_peer_has(idx, id, hash)); /* removed */
    /* Idempotent: what is not there is removed already. */
    CU_ASSERT_EQUAL(del(idx, 1, 1), 0);
    CU_ASSERT_EQUAL(del(idx, 1, 99), 0);
    CU_ASSERT_EQUAL(del(idx, 2, 1), 0);
    CU_ASSERT_EQUAL(search(idx, "notes")->n, 0);
    CU_ASSERT_EQUAL(search(idx, "lecture")->n, 1);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_republish_same_hash(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "draft.txt"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "draft.txt"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "final report.txt"), 0);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 1);
    CU_ASSERT_EQUAL(search(idx, "draft")->n, 0);
    const struct got *g = search(idx, "report");
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].total, 1);
    /* A new size moves the record to another file. */
    CU_ASSERT_EQUAL(publish(idx, 1, MSG_PUBLISH_ADD, 1, 77, "final report.txt"), 0);
    g = search(idx, "report");
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].size, 77);
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.records, 1);
    CU_ASSERT_EQUAL(st.files, 1);
    CU_ASSERT_EQUAL(st.names, 1);
    CU_ASSERT_EQUAL(st.keywords, 3);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_peer_file_limit(void)
{
    struct sn_index *idx = new_index(3, 100000, 100000);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add_peer(idx, 2), 0);
    for (unsigned f = 0; f < 3; f++)
        CU_ASSERT_EQUAL(add(idx, 1, f, "file.bin"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 3, "file.bin"), SOVA_ERR_PEER_FILES);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "renamed file.bin"), 0); /* an update is no new file */
    CU_ASSERT_EQUAL(add(idx, 2, 3, "file.bin"), 0);         /* the limit is per peer */
    CU_ASSERT_EQUAL(del(idx, 1, 0), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 3, "file.bin"), 0);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 3);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_peer_name_bytes_limit(void)
{
    struct sn_index *idx = new_index(100, 20, 100000);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "0123456789"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "abcdefghij"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 3, "x"), SOVA_ERR_PEER_NAME_BYTES);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "abcdefghijk"), SOVA_ERR_PEER_NAME_BYTES);
    CU_ASSERT_EQUAL(search(idx, "abcdefghij")->n, 1); /* unchanged */
    CU_ASSERT_EQUAL(add(idx, 1, 2, "short"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 3, "12345"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 4, "y"), SOVA_ERR_PEER_NAME_BYTES);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_global_cap(void)
{
    struct sn_index *idx = new_index(100, 100000, 5);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add_peer(idx, 2), 0);
    for (unsigned f = 0; f < 3; f++)
        CU_ASSERT_EQUAL(add(idx, 1, f, "one.dat"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 0, "two.dat"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 1, "two.dat"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 2, "two.dat"), SOVA_ERR_INDEX_FULL);
    CU_ASSERT_EQUAL(add(idx, 2, 1, "two renamed.dat"), 0);
    CU_ASSERT_EQUAL(remove_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 2, "two.dat"), 0);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_max_results_and_budget(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    for (unsigned f = 0; f < 40; f++)
        CU_ASSERT_EQUAL(add(idx, 1, f, "photo.jpg"), 0);
    struct sn_index_search_info info;
    const struct got *g = search_ex(idx, "photo", 7, NULL, &info);
    CU_ASSERT_EQUAL(g->n, 7);
    CU_ASSERT(info.more);
    CU_ASSERT_FALSE(info.budget_hit);
    g = search_ex(idx, "photo", 40, NULL, &info);
    CU_ASSERT_EQUAL(g->n, 40);
    CU_ASSERT_FALSE(info.more);
    CU_ASSERT_EQUAL(info.scanned, 40);
    /* Sorted by hash when source counts tie. */
    for (size_t i = 1; i < g->n; i++)
        CU_ASSERT(g->hits[i - 1].file < g->hits[i].file);
    sn_index_free(idx);

    /* The index's own limits cap what the query asks. alpha and beta are
     * on 20 names each and meet on the last two of alpha's. */
    struct sn_index_limits lim = sn_index_limits_default();
    lim.max_results = 5;
    lim.max_scan = 12;
    idx = sn_index_new(&lim);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    for (unsigned f = 0; f < 38; f++)
        CU_ASSERT_EQUAL(add(idx, 1, f,
                            f < 18   ? "alpha only.jpg"
                            : f < 20 ? "alpha beta.jpg"
                                     : "beta only.jpg"),
                        0);
    CU_ASSERT_EQUAL(search_ex(idx, "jpg", 1000, NULL, &info)->n, 5);
    CU_ASSERT(info.more);
    g = search_ex(idx, "alpha beta", 0, NULL, &info);
    CU_ASSERT(info.budget_hit);
    CU_ASSERT_EQUAL(info.scanned, 12);
    CU_ASSERT_EQUAL(g->n, 0);
    sn_index_free(idx);
    lim.max_scan = SN_INDEX_MAX_SCAN_DEFAULT;
    idx = sn_index_new(&lim);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    for (unsigned f = 0; f < 38; f++)
        CU_ASSERT_EQUAL(add(idx, 1, f,
                            f < 18   ? "alpha only.jpg"
                            : f < 20 ? "alpha beta.jpg"
                                     : "beta only.jpg"),
                        0);
    g = search_ex(idx, "alpha beta", 0, NULL, &info);
    CU_ASSERT_FALSE(info.budget_hit);
    CU_ASSERT_EQUAL(g->n, 2);
    sn_index_free(idx);
}

static void test_max_sources_per_hit(void)
{
    struct sn_index *idx = new_default_index();
    for (unsigned p = 0; p < 20; p++) {
        CU_ASSERT_EQUAL(add_peer(idx, p), 0);
        CU_ASSERT_EQUAL(add(idx, p, 1, "popular.iso"), 0);
    }
    const struct got *g = search(idx, "popular");
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].total, 20);
    CU_ASSERT_EQUAL(g->hits[0].n, WIRE_MAX_SOURCES_DEFAULT);
    unsigned seen = 0;
    for (size_t i = 0; i < g->hits[0].n; i++) {
        CU_ASSERT(g->hits[0].peers[i] < 20);
        CU_ASSERT_FALSE(seen & (1u << g->hits[0].peers[i]));
        seen |= 1u << g->hits[0].peers[i];
    }
    sn_index_free(idx);
}

static void test_size_range(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(publish(idx, 1, MSG_PUBLISH_ADD, 1, 100, "clip small.mp4"), 0);
    CU_ASSERT_EQUAL(publish(idx, 1, MSG_PUBLISH_ADD, 2, 5000, "clip big.mp4"), 0);
    struct filter flt = {.ranged = true, .min_size = 1000, .max_size = 10000};
    const struct got *g = search_ex(idx, "clip", 0, &flt, NULL);
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_EQUAL(g->hits[0].file, 2);
    flt.min_size = flt.max_size = 100;
    CU_ASSERT_EQUAL(search_ex(idx, "clip", 0, &flt, NULL)->n, 1);
    sn_index_free(idx);
}

static void test_unknown_peer_and_bad_records(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add(idx, 1, 1, "x.txt"), SOVA_ERR_UNKNOWN_PEER);
    CU_ASSERT_EQUAL(del(idx, 1, 1), SOVA_ERR_UNKNOWN_PEER);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 0);
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add_peer(idx, 1), SOVA_ERR_PEER_EXISTS);
    uint8_t id[WIRE_ID_LEN];
    make_id(id, 9, 0xab);
    CU_ASSERT_EQUAL(sn_index_peer_set_ctx(idx, id, NULL), SOVA_ERR_UNKNOWN_PEER);

    CU_ASSERT_EQUAL(add(idx, 1, 1, ""), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(publish(idx, 1, 3, 1, 1, "x.txt"), SOVA_ERR_BAD_VALUE);
    make_id(id, 1, 0xab);
    struct msg_publish_record rec = {.action = MSG_PUBLISH_ADD, .size = 1, .chunk_size = 0};
    rec.name = wire_str_from("zero chunk.txt");
    CU_ASSERT_EQUAL(sn_index_publish(idx, id, &rec), SOVA_ERR_BAD_VALUE);
    rec.chunk_size = 1;
    rec.name = (struct wire_str){"nul\0byte", 8};
    CU_ASSERT_EQUAL(sn_index_publish(idx, id, &rec), SOVA_ERR_BAD_VALUE);
    char long_name[SN_INDEX_MAX_NAME_LEN + 1];
    memset(long_name, 'n', sizeof(long_name));
    rec.name = (struct wire_str){long_name, sizeof(long_name)};
    CU_ASSERT_EQUAL(sn_index_publish(idx, id, &rec), SOVA_ERR_BAD_VALUE);
    rec.name.len = SN_INDEX_MAX_NAME_LEN; /* one long word: no keyword, but a record */
    CU_ASSERT_EQUAL(sn_index_publish(idx, id, &rec), 0);

    /* A name without keywords is a record nobody can find. */
    CU_ASSERT_EQUAL(add(idx, 1, 2, "a-b.c"), 0);
    CU_ASSERT_EQUAL(peer_files(idx, 1), 2);
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.records, 2);
    CU_ASSERT_EQUAL(st.keywords, 0);
    expect_consistent(idx);
    sn_index_free(idx);
}

static void test_lookup_hash_and_peer_ctx(void)
{
    struct sn_index *idx = new_default_index();
    for (unsigned p = 1; p <= 3; p++)
        CU_ASSERT_EQUAL(add_peer(idx, p), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 5, "first name.iso"), 0);
    CU_ASSERT_EQUAL(add(idx, 2, 5, "second name.iso"), 0);
    CU_ASSERT_EQUAL(publish(idx, 3, MSG_PUBLISH_ADD, 5, 1, "liar.iso"), 0);
    CU_ASSERT_EQUAL(add(idx, 3, 6, "other.iso"), 0);
    struct msg_publish_record rec;
    make_id(rec.hash, 5, 0xcd);
    got_buf.n = 0;
    got_buf.stop_with = 0;
    CU_ASSERT_EQUAL(sn_index_lookup_hash(idx, rec.hash, collect, &got_buf), 2);
    CU_ASSERT_EQUAL_FATAL(got_buf.n, 2);
    CU_ASSERT_EQUAL(got_buf.hits[0].size, 1005); /* two sources before one */
    CU_ASSERT_EQUAL(got_buf.hits[0].total, 2);
    CU_ASSERT(strcmp(got_buf.hits[0].name, "first name.iso") == 0 ||
              strcmp(got_buf.hits[0].name, "second name.iso") == 0);
    CU_ASSERT_EQUAL(got_buf.hits[1].size, 1);
    CU_ASSERT_STRING_EQUAL(got_buf.hits[1].name, "liar.iso");
    make_id(rec.hash, 7, 0xcd);
    got_buf.n = 0;
    CU_ASSERT_EQUAL(sn_index_lookup_hash(idx, rec.hash, collect, &got_buf), 0);
    /* A SEARCH may carry the hash, alone or with keywords and a size range. */
    struct filter flt = {.by_hash = true, .file = 5};
    CU_ASSERT_EQUAL(search_ex(idx, "", 0, &flt, NULL)->n, 2);
    CU_ASSERT_EQUAL(search_ex(idx, "iso", 0, &flt, NULL)->n, 2);
    CU_ASSERT_EQUAL(search_ex(idx, "second", 0, &flt, NULL)->n, 1);
    CU_ASSERT_EQUAL(search_ex(idx, "other", 0, &flt, NULL)->n, 0);
    flt.ranged = true;
    flt.min_size = flt.max_size = 1;
    const struct got *g = search_ex(idx, "", 0, &flt, NULL);
    CU_ASSERT_EQUAL_FATAL(g->n, 1);
    CU_ASSERT_STRING_EQUAL(g->hits[0].name, "liar.iso");
    CU_ASSERT_EQUAL(search_ex(idx, "", 0, NULL, NULL)->n, 0); /* no keyword, no hash */

    uint8_t id[WIRE_ID_LEN];
    make_id(id, 2, 0xab);
    CU_ASSERT_PTR_EQUAL(sn_index_peer_ctx(idx, id), &ctx_of_peer[2]);
    CU_ASSERT_EQUAL(sn_index_peer_set_ctx(idx, id, &ctx_of_peer[9]), 0);
    CU_ASSERT_PTR_EQUAL(sn_index_peer_ctx(idx, id), &ctx_of_peer[9]);
    CU_ASSERT_EQUAL(sn_index_peer_set_ctx(idx, id, &ctx_of_peer[2]), 0);
    make_id(id, 4, 0xab);
    CU_ASSERT_PTR_NULL(sn_index_peer_ctx(idx, id));
    expect_consistent(idx);
    sn_index_free(idx);
}

static int count_keyword(void *arg, const char *kw, size_t len)
{
    size_t *n = arg;
    CU_ASSERT(len >= SN_KEYWORD_MIN_LEN && len <= SN_KEYWORD_MAX_LEN && kw[0] != '\0');
    ++*n;
    return 0;
}

static int stop_at_second(void *arg, const char *kw, size_t len)
{
    size_t *n = arg;
    return ++*n == 2 ? -42 : 0;
}

static void test_keyword_walk_and_callback_stop(void)
{
    struct sn_index *idx = new_default_index();
    CU_ASSERT_EQUAL(add_peer(idx, 1), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 1, "alpha beta.txt"), 0);
    CU_ASSERT_EQUAL(add(idx, 1, 2, "beta gamma.txt"), 0);
    size_t n = 0;
    CU_ASSERT_EQUAL(sn_index_foreach_keyword(idx, count_keyword, &n), 0);
    CU_ASSERT_EQUAL(n, 4); /* alpha beta gamma txt */
    n = 0;
    CU_ASSERT_EQUAL(sn_index_foreach_keyword(idx, stop_at_second, &n), -42);
    CU_ASSERT_EQUAL(n, 2);

    struct wire_str kw = wire_str_from("beta");
    struct sn_index_query q = {.keywords = &kw, .n_keywords = 1};
    got_buf.n = 0;
    got_buf.stop_with = -7;
    CU_ASSERT_EQUAL(sn_index_search(idx, &q, collect, &got_buf, NULL), -7);
    CU_ASSERT_EQUAL(got_buf.n, 1);
    sn_index_free(idx);
}

/* ---- randomized, against a brute-force model ------------------------------------ */
#define M_PEERS    50
#define M_FILES    120
#define M_MAX_FILE 40 /* per peer */
#define M_MAX_NAME 600
#define M_MAX_REC  480

struct m_record {
    bool present;
    uint64_t size;
    char name[80];
    struct sn_keywords kw;
};

struct model {
    bool peer[M_PEERS];
    struct m_record rec[M_PEERS][M_FILES];
    /* what the run went through, so a change cannot make it vacuous */
    size_t rejected[3]; /* PEER_FILES, PEER_NAME_BYTES, INDEX_FULL */
    size_t searches_with_hits, hits, multi_source_hits;
};

static const char *m_vocab[] = {"alpha", "Beta",  "gamma",  "delta", "ECHO", "fox",  "golf",
                                "hotel", "india", "juliet", "kilo",  "lima", "mike", "nov",
                                "x",     "2019",  "live",   "remix", "HD",   "part"};
#define M_VOCAB (sizeof(m_vocab) / sizeof(m_vocab[0]))

static unsigned rnd(unsigned n)
{
    return (unsigned)rand() % n;
}

static void m_random_name(char *out, size_t cap)
{
    static const char *seps[] = {" ", "_", "-", ".", " (", ") "};
    static const char *exts[] = {"mp3", "MKV", "jpg", "txt"};
    size_t used = 0;
    unsigned words = 1 + rnd(4);
    for (unsigned w = 0; w < words; w++) {
        /* One rnd() per statement: argument order is unspecified, and the
         * run must be the same with every compiler. */
        const char *sep = w ? seps[rnd(6)] : "";
        used += (size_t)snprintf(out + used, cap - used, "%s%s", sep, m_vocab[rnd(M_VOCAB)]);
    }
    snprintf(out + used, cap - used, ".%s", exts[rnd(4)]);
}

static int m_expected_add(const struct model *m, unsigned p, unsigned f, uint64_t size,
                          const char *name)
{
    if (!m->peer[p])
        return SOVA_ERR_UNKNOWN_PEER;
    const struct m_record *r = &m->rec[p][f];
    if (r->present && r->size == size && strcmp(r->name, name) == 0)
        return 0;
    size_t files = 0, bytes = 0, total = 0;
    for (unsigned q = 0; q < M_PEERS; q++) {
        for (unsigned g = 0; g < M_FILES; g++) {
            total += m->rec[q][g].present;
            if (q == p && m->rec[q][g].present && g != f) {
                files++;
                bytes += strlen(m->rec[q][g].name);
            }
        }
    }
    if (!r->present && files >= M_MAX_FILE)
        return SOVA_ERR_PEER_FILES;
    if (bytes + strlen(name) > M_MAX_NAME)
        return SOVA_ERR_PEER_NAME_BYTES;
    if (!r->present && total >= M_MAX_REC)
        return SOVA_ERR_INDEX_FULL;
    return 0;
}

static bool m_matches(const struct m_record *r, const struct sn_keywords *q)
{
    for (size_t i = 0; i < q->n; i++) {
        struct wire_str w = sn_keywords_word(q, i);
        size_t j = 0;
        while (j < r->kw.n && !(sn_keywords_word(&r->kw, j).len == w.len &&
                                memcmp(sn_keywords_word(&r->kw, j).ptr, w.ptr, w.len) == 0))
            j++;
        if (j == r->kw.n)
            return false;
    }
    return true;
}

/* Check one index hit against the model. */
static void m_check_hit(const struct model *m, const struct got_hit *h, const struct sn_keywords *q,
                        bool any_name)
{
    size_t total = 0;
    bool name_ok = false;
    for (unsigned p = 0; p < M_PEERS; p++) {
        const struct m_record *r = &m->rec[p][h->file];
        if (!r->present || r->size != h->size)
            continue;
        total++;
        if (strcmp(r->name, h->name) == 0 && (any_name || m_matches(r, q)))
            name_ok = true;
    }
    CU_ASSERT_EQUAL(h->total, total);
    CU_ASSERT_EQUAL(h->n, total < WIRE_MAX_SOURCES_DEFAULT ? total : WIRE_MAX_SOURCES_DEFAULT);
    CU_ASSERT(name_ok);
    uint64_t seen = 0;
    for (size_t i = 0; i < h->n; i++) {
        unsigned p = h->peers[i];
        CU_ASSERT_FATAL(p < M_PEERS);
        CU_ASSERT(m->rec[p][h->file].present && m->rec[p][h->file].size == h->size);
        CU_ASSERT_FALSE(seen & (1ull << p));
        seen |= 1ull << p;
    }
}

static void m_search_and_compare(const struct sn_index *idx, struct model *m)
{
    char query[64] = "";
    unsigned words = 1 + rnd(3);
    size_t used = 0;
    for (unsigned w = 0; w < words; w++)
        used += (size_t)snprintf(query + used, sizeof(query) - used, "%s%s", w ? " " : "",
                                 m_vocab[rnd(M_VOCAB)]);
    struct filter flt = {.ranged = rnd(4) == 0};
    flt.min_size = rnd(2) ? 0 : 1000 + rnd(M_FILES);
    flt.max_size = 1000 + rnd(2 * M_FILES);
    flt.by_hash = rnd(5) == 0;
    flt.file = rnd(M_FILES);
    bool hash_only = flt.by_hash && rnd(2) == 0;
    if (hash_only)
        query[0] = '\0';
    const struct got *g = search_ex(idx, query, 0, &flt, NULL);

    struct wire_str kws[WIRE_MAX_KEYWORDS_DEFAULT];
    struct sn_keywords q;
    sn_keywords_from_query(&q, kws, split_query(query, kws));
    /* Expected: the distinct (file, size) with a matching record. */
    size_t expect = 0;
    for (unsigned f = 0; f < M_FILES; f++) {
        uint64_t sizes[M_PEERS];
        size_t n_sizes = 0;
        for (unsigned p = 0; p < M_PEERS; p++) {
            const struct m_record *r = &m->rec[p][f];
            if (!r->present || (flt.by_hash && f != flt.file))
                continue;
            if (!hash_only && (sn_keywords_query_void(&q) || !m_matches(r, &q)))
                continue;
            if (flt.ranged && (r->size < flt.min_size || r->size > flt.max_size))
                continue;
            size_t k = 0;
            while (k < n_sizes && sizes[k] != r->size)
                k++;
            if (k == n_sizes)
                sizes[n_sizes++] = r->size;
        }
        expect += n_sizes;
    }
    CU_ASSERT_EQUAL(g->n, expect);
    m->searches_with_hits += g->n > 0;
    m->hits += g->n;
    for (size_t i = 0; i < g->n; i++)
        m->multi_source_hits += g->hits[i].total > 1;
    if (g->n != expect)
        fprintf(stderr, "query '%s': %zu hits, model %zu\n", query, g->n, expect);
    for (size_t i = 0; i < g->n; i++) {
        m_check_hit(m, &g->hits[i], &q, hash_only);
        if (i > 0) {
            const struct got_hit *a = &g->hits[i - 1], *b = &g->hits[i];
            CU_ASSERT(a->total > b->total ||
                      (a->total == b->total &&
                       (a->file < b->file || (a->file == b->file && a->size < b->size))));
        }
    }
}

static void m_apply_random_op(struct sn_index *idx, struct model *m)
{
    unsigned p = rnd(M_PEERS), f = rnd(M_FILES), op = rnd(100);
    if (op < 3) { /* a peer leaves */
        CU_ASSERT_EQUAL(remove_peer(idx, p), m->peer[p] ? 0 : SOVA_ERR_UNKNOWN_PEER);
        m->peer[p] = false;
        for (unsigned g = 0; g < M_FILES; g++)
            m->rec[p][g].present = false;
    } else if (op < 8) { /* a peer attaches */
        CU_ASSERT_EQUAL(add_peer(idx, p), m->peer[p] ? SOVA_ERR_PEER_EXISTS : 0);
        m->peer[p] = true;
    } else if (op < 30) { /* a file is unshared */
        CU_ASSERT_EQUAL(del(idx, p, f), m->peer[p] ? 0 : SOVA_ERR_UNKNOWN_PEER);
        m->rec[p][f].present = false;
    } else { /* a file is shared or renamed, now and then with another size */
        char name[80];
        m_random_name(name, sizeof(name));
        uint64_t size = rnd(20) == 0 ? 7 + f : 1000 + f;
        int want = m_expected_add(m, p, f, size, name);
        CU_ASSERT_EQUAL(publish(idx, p, MSG_PUBLISH_ADD, f, size, name), want);
        m->rejected[0] += want == SOVA_ERR_PEER_FILES;
        m->rejected[1] += want == SOVA_ERR_PEER_NAME_BYTES;
        m->rejected[2] += want == SOVA_ERR_INDEX_FULL;
        if (want == 0) {
            struct m_record *r = &m->rec[p][f];
            r->present = true;
            r->size = size;
            snprintf(r->name, sizeof(r->name), "%s", name);
            sn_keywords_from_name(&r->kw, name, strlen(name));
        }
    }
}

static void test_random_against_model(void)
{
    struct sn_index *idx = new_index(M_MAX_FILE, M_MAX_NAME, M_MAX_REC);
    static struct model m;
    memset(&m, 0, sizeof(m));
    srand(20240601);
    for (unsigned p = 0; p < M_PEERS; p++) {
        CU_ASSERT_EQUAL(add_peer(idx, p), 0);
        m.peer[p] = true;
    }
    for (int i = 0; i < 10000; i++) {
        m_apply_random_op(idx, &m);
        m_search_and_compare(idx, &m);
        if (i % 500 == 0)
            expect_consistent(idx);
    }
    size_t records = 0;
    for (unsigned p = 0; p < M_PEERS; p++) {
        size_t files = 0;
        for (unsigned f = 0; f < M_FILES; f++)
            files += m.rec[p][f].present;
        CU_ASSERT_EQUAL(peer_files(idx, p), files);
        records += files;
    }
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    CU_ASSERT_EQUAL(st.records, records);
    expect_consistent(idx);
    sn_index_free(idx);
    /* The run reached every limit and found plenty. */
    CU_ASSERT(m.rejected[0] > 0 && m.rejected[1] > 0 && m.rejected[2] > 0);
    CU_ASSERT(m.searches_with_hits > 5000 && m.hits > 100000 && m.multi_source_hits > 10000);
    if (getenv("SOVA_TEST_VERBOSE") != NULL)
        fprintf(stderr,
                "rejected %zu/%zu/%zu, searches with hits %zu, hits %zu (%zu multi-source)\n",
                m.rejected[0], m.rejected[1], m.rejected[2], m.searches_with_hits, m.hits,
                m.multi_source_hits);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_index", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "search is the AND of its words", test_and_semantics);
    CU_add_test(s, "search ignores case and punctuation", test_case_and_punctuation);
    CU_add_test(s, "the extension is a keyword", test_extension_is_keyword);
    CU_add_test(s, "hits group peers by hash and size", test_grouping_by_hash);
    CU_add_test(s, "removing a peer removes all its records", test_peer_removal);
    CU_add_test(s, "removing a record; removal is idempotent", test_remove_record);
    CU_add_test(s, "republishing a hash updates, never duplicates", test_republish_same_hash);
    CU_add_test(s, "per-peer file limit", test_peer_file_limit);
    CU_add_test(s, "per-peer name bytes limit", test_peer_name_bytes_limit);
    CU_add_test(s, "global record cap", test_global_cap);
    CU_add_test(s, "max results and the scan budget", test_max_results_and_budget);
    CU_add_test(s, "sources per hit are capped", test_max_sources_per_hit);
    CU_add_test(s, "size range filter", test_size_range);
    CU_add_test(s, "unknown peers and bad records", test_unknown_peer_and_bad_records);
    CU_add_test(s, "lookup by hash; peer contexts", test_lookup_hash_and_peer_ctx);
    CU_add_test(s, "keyword walk; a callback stops the walk or search",
                test_keyword_walk_and_callback_stop);
    CU_add_test(s, "10,000 random operations agree with a brute-force model",
                test_random_against_model);
    return 0;
}
