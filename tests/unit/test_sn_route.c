/* test_sn_route.c - routed search in the federation (sn_route.h): summaries
 * kept per supernode, routing only to those that may match, limited
 * flooding with duplicate suppression, per-origin rate limits, the merge
 * of the hits, and a 16-supernode federation's fan-out. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"
#include "sn_index.h"
#include "sn_route.h"
#include "sn_summary.h"

#define MAX_SN 16

static uint8_t ids[MAX_SN][WIRE_ID_LEN]; /* ids[n]: supernode n; 0 is "self" */

static int setup(void)
{
    for (unsigned n = 0; n < MAX_SN; n++) {
        memset(ids[n], 0x5a, WIRE_ID_LEN);
        ids[n][0] = (uint8_t)n;
    }
    return 0;
}

/* The SN whose ID is id, or -1. */
static int sn_of(const uint8_t *id)
{
    for (int n = 0; n < MAX_SN; n++) {
        if (memcmp(ids[n], id, WIRE_ID_LEN) == 0)
            return n;
    }
    return -1;
}

static struct sn_route *new_route(unsigned self, const struct sn_route_limits *lim)
{
    struct sn_route_limits def = sn_route_limits_default();
    struct sn_route *r = sn_route_new(lim ? lim : &def, ids[self]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

/* A summary of SN n holding the given normalized keywords (space-separated). */
static struct sn_summary *summary_of(unsigned n, uint64_t version, const char *words)
{
    struct sn_summary_params p = sn_summary_params_default();
    struct sn_summary *s = sn_summary_new(ids[n], version, 8, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (const char *w = words; *w;) {
        size_t len = strcspn(w, " ");
        sn_summary_add(s, w, len);
        w += len + (w[len] == ' ');
    }
    return s;
}

/* Hand route r the SUMMARY of SN n (through the codec, as it would arrive). */
static int give_summary(struct sn_route *r, unsigned n, uint64_t version, const char *words,
                        uint64_t now_ms)
{
    struct sn_summary *s = summary_of(n, version, words);
    struct msg m = {.type = MSG_SUMMARY}, got;
    sn_summary_to_msg(s, &m.u.summary);
    struct wire_limits lim = wire_limits_default();
    struct wire_buf buf;
    size_t used;
    wire_buf_init(&buf);
    CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &buf, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(msg_decode_frame(buf.data, buf.len, &lim, &got, &used, NULL), 0);
    int rc = sn_route_update(r, &got.u.summary, now_ms);
    msg_clear(&got);
    wire_buf_free(&buf);
    sn_summary_free(s);
    return rc;
}

static struct msg_search search_of(struct wire_str *kw, const char *words)
{
    struct msg_search q = {.query_id = 1, .max_results = 100, .keywords = kw};
    kw[0] = wire_str_from(words);
    q.n_keywords = words ? 1 : 0;
    return q;
}

/* The targets as "n/ttl[*]" words ("*": flooded), in order. */
static const char *describe(const struct sn_route_target *t, size_t n)
{
    static char out[MAX_SN * 12];
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%d/%u%s", i ? " " : "",
                                 sn_of(t[i].sn_id), t[i].ttl, t[i].flooded ? "*" : "");
    return out;
}

static const char *route_query(const struct sn_route *r, const char *words, size_t n_alive,
                               uint64_t now_ms, size_t max_out, struct sn_route_plan *plan)
{
    struct wire_str kw[1];
    struct msg_search q = search_of(kw, words);
    struct sn_route_target out[MAX_SN];
    size_t n = sn_route_targets(r, &q, (const uint8_t(*)[WIRE_ID_LEN])ids, n_alive, now_ms, out,
                                max_out, plan);
    return describe(out, n);
}

/* ---- summaries and targets ------------------------------------------------------------ */
static void test_targets_only_matching(void)
{
    struct sn_route *r = new_route(0, NULL);
    CU_ASSERT_EQUAL(give_summary(r, 1, 10, "holiday video mp4", 0), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 2, 10, "holiday beach jpg", 0), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 3, 10, "lebowski mkv", 0), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 4, 10, "", 0), SN_ROUTE_SUMMARY_NEW); /* no files */
    /* SN 5 sent nothing yet; SN 0 is self. */
    struct sn_route_plan plan;
    CU_ASSERT_STRING_EQUAL(route_query(r, "Holiday", 6, 1000, MAX_SN, &plan), "1/0 2/0 5/1*");
    CU_ASSERT_EQUAL(plan.matched, 2);
    CU_ASSERT_EQUAL(plan.flooded, 1);
    CU_ASSERT_EQUAL(plan.skipped, 2);
    CU_ASSERT_STRING_EQUAL(route_query(r, "holiday-VIDEO", 6, 1000, MAX_SN, NULL), "1/0 5/1*");
    CU_ASSERT_STRING_EQUAL(route_query(r, "big lebowski", 6, 1000, MAX_SN, NULL), "5/1*");
    /* A void query goes nowhere, not even blind. */
    CU_ASSERT_STRING_EQUAL(route_query(r, "a - b", 6, 1000, MAX_SN, NULL), "");
    /* Only members of alive are targets: SN 5 unknown to membership. */
    CU_ASSERT_STRING_EQUAL(route_query(r, "holiday", 5, 1000, MAX_SN, NULL), "1/0 2/0");
    /* Matched targets first; past max_out the rest is counted. */
    CU_ASSERT_STRING_EQUAL(route_query(r, "holiday", 6, 1000, 2, &plan), "1/0 2/0");
    CU_ASSERT_EQUAL(plan.dropped, 1);

    /* A hash-only query: every SN with any keyword, and the unknown ones. */
    struct wire_str kw[1];
    struct msg_search q = search_of(kw, NULL);
    q.has_hash = true;
    struct sn_route_target out[MAX_SN];
    size_t n =
        sn_route_targets(r, &q, (const uint8_t(*)[WIRE_ID_LEN])ids, 6, 1000, out, MAX_SN, NULL);
    CU_ASSERT_STRING_EQUAL(describe(out, n), "1/0 2/0 3/0 5/1*");
    q.has_hash = false; /* neither keywords nor hash */
    CU_ASSERT_EQUAL(
        sn_route_targets(r, &q, (const uint8_t(*)[WIRE_ID_LEN])ids, 6, 1000, out, MAX_SN, NULL), 0);

    /* A summary not refreshed for summary_max_age_ms counts as unknown. */
    uint64_t stale = SN_ROUTE_SUMMARY_MAX_AGE_MS_DEFAULT;
    CU_ASSERT_EQUAL(give_summary(r, 1, 10, "holiday video mp4", stale), SN_ROUTE_SUMMARY_REFRESHED);
    CU_ASSERT_STRING_EQUAL(route_query(r, "holiday", 6, stale, MAX_SN, NULL),
                           "1/0 2/0 5/1*"); /* 2, 3, 4 are just at the limit */
    CU_ASSERT_STRING_EQUAL(route_query(r, "holiday", 6, stale + 1, MAX_SN, NULL),
                           "1/0 2/1* 3/1* 4/1* 5/1*");
    sn_route_free(r);
}

static void test_summary_versions(void)
{
    struct sn_route_limits lim = sn_route_limits_default();
    lim.max_summaries = 3;
    lim.summary_max_age_ms = 1000;
    struct sn_route *r = new_route(0, &lim);
    CU_ASSERT_EQUAL(give_summary(r, 0, 1, "mine", 0), SN_ROUTE_SUMMARY_SELF);
    CU_ASSERT_EQUAL(sn_route_summaries(r), 0);
    CU_ASSERT_EQUAL(give_summary(r, 1, 5, "old", 0), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 1, 4, "older", 10), SN_ROUTE_SUMMARY_OLDER);
    CU_ASSERT_EQUAL(sn_summary_version(sn_route_summary(r, ids[1])), 5);
    CU_ASSERT_EQUAL(give_summary(r, 1, 5, "old", 300), SN_ROUTE_SUMMARY_REFRESHED);
    CU_ASSERT_EQUAL(sn_route_summary_age(r, ids[1], 350), 50);
    CU_ASSERT_EQUAL(give_summary(r, 1, 6, "new", 400), SN_ROUTE_SUMMARY_REPLACED);
    CU_ASSERT_STRING_EQUAL(route_query(r, "new", 2, 400, MAX_SN, NULL), "1/0");
    CU_ASSERT_STRING_EQUAL(route_query(r, "old", 2, 400, MAX_SN, NULL), "");
    /* Once stale, any version is taken (a sender whose clock went back). */
    CU_ASSERT_EQUAL(give_summary(r, 1, 2, "restarted", 1401), SN_ROUTE_SUMMARY_REPLACED);
    CU_ASSERT_EQUAL(sn_summary_version(sn_route_summary(r, ids[1])), 2);

    /* An inconsistent summary is refused and changes nothing. */
    uint8_t bits[2] = {0xff, 0xff};
    struct msg_summary bad = {.version = 99, .hash_count = 0, .bit_count = 16, .bits = {bits, 2}};
    memcpy(bad.sn_id, ids[1], WIRE_ID_LEN);
    CU_ASSERT_EQUAL(sn_route_update(r, &bad, 1500), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_EQUAL(sn_summary_version(sn_route_summary(r, ids[1])), 2);

    /* Full table: a new SN evicts the summary received least recently. */
    CU_ASSERT_EQUAL(give_summary(r, 2, 1, "two", 1500), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 3, 1, "three", 1600), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(give_summary(r, 4, 1, "four", 1700), SN_ROUTE_SUMMARY_NEW);
    CU_ASSERT_EQUAL(sn_route_summaries(r), 3);
    CU_ASSERT_PTR_NULL(sn_route_summary(r, ids[1]));
    CU_ASSERT_EQUAL(sn_route_summary_age(r, ids[1], 1700), UINT64_MAX);
    /* A dead SN is forgotten: it is flooded again until it sends a summary. */
    CU_ASSERT(sn_route_forget(r, ids[3]));
    CU_ASSERT_FALSE(sn_route_forget(r, ids[3]));
    CU_ASSERT_EQUAL(sn_route_summaries(r), 2);
    CU_ASSERT_STRING_EQUAL(route_query(r, "four", 5, 1700, MAX_SN, NULL), "4/0 1/1* 3/1*");
    CU_ASSERT_EQUAL(sn_summary_version(sn_route_summary(r, ids[4])), 1);
    sn_route_free(r);
}

/* ---- limited flooding -------------------------------------------------------------------- */
static void test_relay_targets(void)
{
    struct sn_route *r = new_route(0, NULL); /* flood_ttl 1 */
    give_summary(r, 2, 1, "known", 0);
    struct msg_fwd_search fwd = {.ttl = 1, .deadline_ms = 2000};
    memcpy(fwd.origin_sn, ids[1], WIRE_ID_LEN);
    struct sn_route_target out[MAX_SN];
    uint32_t child;
    struct sn_route_plan plan;
    /* From SN 3 on behalf of origin 1: on to the members without a summary
     * here (4, 5), never back to 1 or 3, and not to 2 (the origin routes by
     * summaries itself). */
    size_t n = sn_route_relay_targets(r, &fwd, ids[3], (const uint8_t(*)[WIRE_ID_LEN])ids, 6, 0,
                                      out, MAX_SN, &child, &plan);
    CU_ASSERT_STRING_EQUAL(describe(out, n), "4/0* 5/0*");
    CU_ASSERT_EQUAL(child, 1500);
    CU_ASSERT_EQUAL(plan.flooded, 2);
    /* ttl 0: answer only. */
    fwd.ttl = 0;
    CU_ASSERT_EQUAL(sn_route_relay_targets(r, &fwd, ids[3], (const uint8_t(*)[WIRE_ID_LEN])ids, 6,
                                           0, out, MAX_SN, &child, NULL),
                    0);
    CU_ASSERT_EQUAL(child, 0);
    /* A TTL above our flood_ttl acts as flood_ttl. */
    fwd.ttl = 200;
    n = sn_route_relay_targets(r, &fwd, ids[3], (const uint8_t(*)[WIRE_ID_LEN])ids, 6, 0, out,
                               MAX_SN, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(describe(out, n), "4/0* 5/0*");
    /* Too little time left to ask anyone else. */
    fwd.ttl = 1;
    fwd.deadline_ms = 133; /* 3/4 is 99 < 100 */
    CU_ASSERT_EQUAL(sn_route_relay_targets(r, &fwd, ids[3], (const uint8_t(*)[WIRE_ID_LEN])ids, 6,
                                           0, out, MAX_SN, &child, NULL),
                    0);
    sn_route_free(r);
}

/* A federation in a test: SN n knows the members in links[n] (its alive
 * list) and the summaries in its route; FWD_SEARCH frames go through a
 * queue, duplicates are dropped by sn_route_seen(). */
struct sim {
    struct sn_route *route[MAX_SN];
    uint8_t alive[MAX_SN][MAX_SN][WIRE_ID_LEN];
    size_t n_alive[MAX_SN];
    unsigned served[MAX_SN]; /* FWD_SEARCH answered from the local index */
    unsigned dups, frames;
};

struct frame {
    unsigned to, from;
    struct msg_fwd_search fwd;
};

static void sim_link(struct sim *s, unsigned a, unsigned b)
{
    memcpy(s->alive[a][s->n_alive[a]++], ids[b], WIRE_ID_LEN);
}

static void sim_search(struct sim *s, unsigned origin, uint64_t query_id, const char *words)
{
    struct frame queue[MAX_SN * MAX_SN];
    size_t head = 0, tail = 0;
    struct wire_str kw[1];
    struct sn_route_target out[MAX_SN];
    struct msg_search q = search_of(kw, words);
    q.query_id = query_id;
    CU_ASSERT_FALSE(sn_route_seen(s->route[origin], ids[origin], query_id, 0));
    size_t n =
        sn_route_targets(s->route[origin], &q, (const uint8_t(*)[WIRE_ID_LEN])s->alive[origin],
                         s->n_alive[origin], 0, out, MAX_SN, NULL);
    for (size_t i = 0; i < n; i++) {
        struct frame *f = &queue[tail++];
        *f = (struct frame){.to = (unsigned)sn_of(out[i].sn_id), .from = origin};
        f->fwd = (struct msg_fwd_search){.ttl = out[i].ttl, .deadline_ms = 2000, .search = q};
        memcpy(f->fwd.origin_sn, ids[origin], WIRE_ID_LEN);
    }
    while (head < tail) {
        struct frame f = queue[head++];
        s->frames++;
        struct sn_route *r = s->route[f.to];
        if (sn_route_seen(r, f.fwd.origin_sn, f.fwd.search.query_id, 0)) {
            s->dups++;
            continue;
        }
        CU_ASSERT(sn_route_admit(r, f.fwd.origin_sn, 0));
        s->served[f.to]++;
        uint32_t child;
        n = sn_route_relay_targets(r, &f.fwd, ids[f.from],
                                   (const uint8_t(*)[WIRE_ID_LEN])s->alive[f.to], s->n_alive[f.to],
                                   0, out, MAX_SN, &child, NULL);
        for (size_t i = 0; i < n && tail < sizeof(queue) / sizeof(queue[0]); i++) {
            struct frame *g = &queue[tail++];
            *g = (struct frame){.to = (unsigned)sn_of(out[i].sn_id), .from = f.to, .fwd = f.fwd};
            g->fwd.ttl = out[i].ttl;
            g->fwd.deadline_ms = child;
        }
    }
}

static void test_flood_ttl_and_dedup(void)
{
    /* Five SNs that know no summaries yet. SN 0 is linked to 1, 2, 3;
     * SN 4 only to 3 (and 3 to everyone): the flood reaches it in two hops. */
    struct sim s = {0};
    for (unsigned a = 0; a < 5; a++)
        s.route[a] = new_route(a, NULL);
    for (unsigned b = 1; b <= 3; b++) {
        sim_link(&s, 0, b);
        sim_link(&s, b, 0);
    }
    sim_link(&s, 1, 2);
    sim_link(&s, 2, 1);
    for (unsigned b = 0; b < 5; b++) {
        if (b != 3)
            sim_link(&s, 3, b);
    }
    sim_link(&s, 4, 3);
    sim_link(&s, 1, 3);
    sim_link(&s, 2, 3);

    sim_search(&s, 0, 77, "holiday");
    /* Every other SN answers exactly once; SN 4 through SN 3. */
    for (unsigned n = 1; n < 5; n++)
        CU_ASSERT_EQUAL(s.served[n], 1);
    CU_ASSERT_EQUAL(s.served[0], 0);
    /* Hop 1: 0 -> 1, 2, 3 (ttl 1). Hop 2 (ttl 0): 1 -> 2, 3; 2 -> 1, 3; 3 -> 1, 2, 4;
     * all but 3 -> 4 are duplicates. */
    CU_ASSERT_EQUAL(s.frames, 10);
    CU_ASSERT_EQUAL(s.dups, 6);

    /* The same query again is a duplicate everywhere; another id is not. */
    memset(s.served, 0, sizeof(s.served));
    s.dups = s.frames = 0;
    sim_search(&s, 0, 78, "holiday");
    CU_ASSERT_EQUAL(s.served[4], 1);

    /* Once summaries are known, nothing is flooded: only SN 2 may match. */
    for (unsigned a = 0; a < 5; a++) {
        for (unsigned b = 0; b < 5; b++)
            give_summary(s.route[a], b, 1, b == 2 ? "holiday" : "other", 0);
    }
    memset(s.served, 0, sizeof(s.served));
    s.dups = s.frames = 0;
    sim_search(&s, 0, 79, "holiday");
    CU_ASSERT_EQUAL(s.frames, 1);
    CU_ASSERT_EQUAL(s.served[2], 1);
    for (unsigned a = 0; a < 5; a++)
        sn_route_free(s.route[a]);
}

static void test_seen_window_and_cap(void)
{
    struct sn_route_limits lim = sn_route_limits_default();
    lim.seen_max = 4;
    lim.seen_window_ms = 1000;
    struct sn_route *r = new_route(0, &lim);
    CU_ASSERT_FALSE(sn_route_seen(r, ids[1], 7, 0));
    CU_ASSERT(sn_route_seen(r, ids[1], 7, 10));
    CU_ASSERT_FALSE(sn_route_seen(r, ids[2], 7, 20)); /* another origin */
    CU_ASSERT_FALSE(sn_route_seen(r, ids[1], 8, 30)); /* another query */
    CU_ASSERT(sn_route_seen(r, ids[1], 7, 999));
    /* The window ends 1000 ms after the first sighting. */
    CU_ASSERT_FALSE(sn_route_seen(r, ids[1], 7, 1000));
    CU_ASSERT(sn_route_seen(r, ids[2], 7, 1010));
    /* (2,7) has left the window at 1020; held: (1,8) (1,7) and two more. */
    CU_ASSERT_FALSE(sn_route_seen(r, ids[3], 1, 1020));
    CU_ASSERT_FALSE(sn_route_seen(r, ids[3], 2, 1020));
    CU_ASSERT_FALSE(sn_route_seen(r, ids[2], 7, 1020));
    /* That fifth entry pushed out the oldest, (1,8), inside its window. */
    CU_ASSERT(sn_route_seen(r, ids[3], 1, 1020));
    CU_ASSERT(sn_route_seen(r, ids[1], 7, 1020));
    CU_ASSERT_FALSE(sn_route_seen(r, ids[1], 8, 1020));
    /* Many queries, each arriving twice: the ring keeps working. */
    unsigned dups = 0;
    for (uint64_t q = 0; q < 10000; q++)
        dups += sn_route_seen(r, ids[q % 2], 100 + q / 4, 2000 + q);
    CU_ASSERT_EQUAL(dups, 5000);
    sn_route_free(r);
}

static void test_rate_limit(void)
{
    struct sn_route_limits lim = sn_route_limits_default();
    lim.rate_per_s = 10; /* a token every 100 ms */
    lim.burst = 3;
    lim.max_origins = 2;
    struct sn_route *r = new_route(0, &lim);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(sn_route_admit(r, ids[1], 1000));
    CU_ASSERT_FALSE(sn_route_admit(r, ids[1], 1000));
    CU_ASSERT_FALSE(sn_route_admit(r, ids[1], 1099));
    CU_ASSERT(sn_route_admit(r, ids[1], 1100));
    CU_ASSERT_FALSE(sn_route_admit(r, ids[1], 1100));
    /* Other origins have their own bucket. */
    CU_ASSERT(sn_route_admit(r, ids[2], 1100));
    /* A long pause fills the bucket up to burst, no more. */
    unsigned ok = 0;
    for (int i = 0; i < 10; i++)
        ok += sn_route_admit(r, ids[1], 100000);
    CU_ASSERT_EQUAL(ok, 3);
    /* A clock that goes back refills nothing. */
    CU_ASSERT_FALSE(sn_route_admit(r, ids[1], 50));
    /* Only 2 buckets: origin 3 evicts the one used least recently (2); 1 keeps its empty one. */
    CU_ASSERT(sn_route_admit(r, ids[3], 100000));
    CU_ASSERT_FALSE(sn_route_admit(r, ids[1], 100000));
    ok = 0;
    for (int i = 0; i < 5; i++)
        ok += sn_route_admit(r, ids[2], 100000); /* comes back with a full bucket */
    CU_ASSERT_EQUAL(ok, 3);
    /* Sustained: 10 a second over 10 s (plus the burst). */
    ok = 0;
    for (uint64_t t = 200000; t < 210000; t += 10)
        ok += sn_route_admit(r, ids[4], t);
    CU_ASSERT(ok >= 100 && ok <= 103);
    sn_route_free(r);
}

/* ---- merging hits ------------------------------------------------------------------------ */
/* Sources for test hits: peer p, one address 192.0.2.p. */
static struct wire_addr addr_pool[64];
static struct msg_source source_pool[64];

static void make_sources(void)
{
    for (unsigned p = 0; p < 64; p++) {
        addr_pool[p] = (struct wire_addr){
            .family = WIRE_ADDR_IPV4, .ip = {192, 0, 2, (uint8_t)p}, .port = 7071};
        memset(source_pool[p].peer_id, 0x70, WIRE_ID_LEN);
        source_pool[p].peer_id[0] = (uint8_t)p;
        source_pool[p].reachability = MSG_REACH_PUBLIC;
        source_pool[p].addrs = &addr_pool[p];
        source_pool[p].n_addrs = 1;
    }
}

/* A hit for file f (hash f, size 1000 + f unless given) with sources
 * first .. first + n - 1. The name lives in a buffer the test overwrites. */
static char name_buf[8][32];

static struct msg_hit hit_of(unsigned slot, unsigned f, uint64_t size, unsigned first, unsigned n)
{
    struct msg_hit h = {.size = size ? size : 1000 + f};
    memset(h.hash, 0, WIRE_HASH_LEN);
    h.hash[0] = (uint8_t)f;
    snprintf(name_buf[slot], sizeof(name_buf[slot]), "file-%u.bin", f);
    h.name = wire_str_from(name_buf[slot]);
    h.sources = &source_pool[first];
    h.n_sources = n;
    return h;
}

static void test_merge_dedup_union_order(void)
{
    make_sources();
    struct sn_route_merge *m = sn_route_merge_new(3, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(sn_route_merge_expect(m, ids[1]), 0);
    CU_ASSERT_EQUAL(sn_route_merge_expect(m, ids[2]), 0);
    CU_ASSERT_EQUAL(sn_route_merge_expect(m, ids[2]), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(sn_route_merge_waiting(m), 2);

    /* Local: file 5 (peers 0, 1), file 9 (peer 2). */
    struct msg_hit hits[4] = {hit_of(0, 5, 0, 0, 2), hit_of(1, 9, 0, 2, 1)};
    struct msg_search_result r = {.hits = hits, .n_hits = 2};
    CU_ASSERT_EQUAL(sn_route_merge_add(m, NULL, &r), 0);
    /* SN 1, not final: file 9 again (peers 2, 3: one new), file 5 with
     * another size (the same file ID: the same hit, peer 10 claims 42),
     * file 7 (peers 4, 5, 6). */
    hits[0] = hit_of(0, 9, 0, 2, 2);
    hits[1] = hit_of(1, 5, 42, 10, 1);
    hits[2] = hit_of(2, 7, 0, 4, 3);
    r.n_hits = 3;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[1], &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_files(m), 3);
    CU_ASSERT_FALSE(sn_route_merge_done(m, 100));
    /* The frames the hits came from go away: the merge kept copies. */
    memset(name_buf, 'X', sizeof(name_buf));
    memset(hits, 0, sizeof(hits));
    /* SN 2, final: file 5 (peers 1, 3: peer 3 new). */
    hits[0] = hit_of(0, 5, 0, 1, 3);
    r.n_hits = 1;
    r.flags = MSG_RESULT_FINAL;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[2], &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[2], &r), SOVA_ERR_NOT_FOUND); /* after FINAL */
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[3], &r), SOVA_ERR_NOT_FOUND); /* not asked */
    CU_ASSERT_EQUAL(sn_route_merge_waiting(m), 1);
    CU_ASSERT_FALSE(sn_route_merge_done(m, 4999));
    CU_ASSERT(sn_route_merge_done(m, 5000)); /* the deadline */
    r.n_hits = 0;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[1], &r), 0);
    CU_ASSERT(sn_route_merge_done(m, 0)); /* everyone answered */

    /* Order: sources (5: 0 1 10 2 3 -> 5; 7: 3; 9: 2). */
    struct msg_search_result out;
    CU_ASSERT_EQUAL_FATAL(sn_route_merge_result(m, NULL, NULL, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.n_hits, 3);
    CU_ASSERT_EQUAL(out.hits[0].hash[0], 5);
    CU_ASSERT_EQUAL(out.hits[0].size, 1005); /* what its first source claims */
    CU_ASSERT_EQUAL(out.hits[0].n_sources, 5);
    CU_ASSERT(wire_str_eq(out.hits[0].name, "file-5.bin"));
    static const unsigned order5[5] = {0, 1, 10, 2, 3}; /* first received first */
    for (unsigned i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(out.hits[0].sources[i].peer_id[0], order5[i]);
        CU_ASSERT_EQUAL(out.hits[0].sources[i].addrs[0].ip[3], order5[i]);
    }
    CU_ASSERT_EQUAL(out.hits[1].hash[0], 7);
    CU_ASSERT_EQUAL(out.hits[1].n_sources, 3);
    CU_ASSERT_EQUAL(out.hits[2].hash[0], 9);
    CU_ASSERT_EQUAL(out.hits[2].n_sources, 2);
    CU_ASSERT(wire_str_eq(out.hits[2].name, "file-9.bin"));

    /* The result encodes as a SEARCH_RESULT. */
    struct msg msg = {.type = MSG_SEARCH_RESULT, .u.search_result = out};
    struct wire_limits lim = wire_limits_default();
    struct wire_buf buf;
    wire_buf_init(&buf);
    CU_ASSERT_EQUAL(msg_encode(&msg, &lim, &buf, NULL), 0);
    wire_buf_free(&buf);
    sn_route_merge_free(m);
}

static void test_merge_caps(void)
{
    make_sources();
    struct sn_route_merge *m = sn_route_merge_new(2, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(sn_route_merge_expect(m, ids[1]), 0);
    /* Sources: 40 peers across answers, at most WIRE_MAX_SOURCES_DEFAULT kept. */
    struct msg_hit hits[8];
    struct msg_search_result r = {.hits = hits, .n_hits = 1};
    hits[0] = hit_of(0, 1, 0, 0, 20);
    CU_ASSERT_EQUAL(sn_route_merge_add(m, NULL, &r), 0);
    /* An answer counts at most max_results hits; files beyond keep (2 * 2)
     * are dropped. SN 1 sends 8: only the first 2 count. */
    for (unsigned i = 0; i < 8; i++)
        hits[i] = hit_of(i, 1 + i, 0, 20 + i, 1);
    r.n_hits = 8;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[1], &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_files(m), 2);
    r.n_hits = 1; /* and nothing after that from SN 1 */
    hits[0] = hit_of(0, 50, 0, 0, 1);
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[1], &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_files(m), 2);
    /* Local answer has its own count: 2 more files fill keep, then no more. */
    for (unsigned i = 0; i < 2; i++)
        hits[i] = hit_of(i, 60 + i, 0, 30, 1);
    r.n_hits = 2;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, NULL, &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_files(m), 3); /* local counted 1 + 2 > 2: only 60 */

    struct msg_search_result out;
    CU_ASSERT_EQUAL_FATAL(sn_route_merge_result(m, NULL, NULL, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.n_hits, 2);
    CU_ASSERT_EQUAL(out.hits[0].hash[0], 1);
    CU_ASSERT_EQUAL(out.hits[0].n_sources, WIRE_MAX_SOURCES_DEFAULT);
    CU_ASSERT_EQUAL(out.hits[1].hash[0], 2); /* 1 source each: lowest hash first */

    /* keep caps the distinct files whatever the answers. */
    struct sn_route_merge *m2 = sn_route_merge_new(1, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
    for (unsigned sn = 1; sn < 6; sn++) {
        CU_ASSERT_EQUAL(sn_route_merge_expect(m2, ids[sn]), 0);
        hits[0] = hit_of(0, 100 + sn, 0, sn, 1);
        struct msg_search_result one = {.hits = hits, .n_hits = 1};
        CU_ASSERT_EQUAL(sn_route_merge_add(m2, ids[sn], &one), 0);
    }
    CU_ASSERT_EQUAL(sn_route_merge_files(m2), SN_ROUTE_MERGE_KEEP_FACTOR * 1);
    CU_ASSERT_PTR_NULL(sn_route_merge_new(0, 100));
    sn_route_merge_free(m2);
    sn_route_merge_free(m);
}

/* A rank as search gives it: sources 20..29 verified, 40..49 dropped, the
 * rest bare claims. */
static uint32_t test_rank(void *arg, const uint8_t id[WIRE_ID_LEN])
{
    (void)arg;
    if (id[0] >= 40 && id[0] < 50)
        return SN_ROUTE_RANK_DROP;
    return id[0] >= 20 && id[0] < 30 ? 0 : SN_ROUTE_RANK_UNVERIFIED;
}

/* Size poisoning (issue 13, finding 2): two identities without data claim
 * a real ID with a size of 4 TiB; the hit is still one, its size the one
 * its verified source claims, and a file with verified sources comes
 * before one with more bare claims. */
static void test_merge_ranked(void)
{
    make_sources();
    struct sn_route_merge *m = sn_route_merge_new(8, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(sn_route_merge_expect(m, ids[1]), 0);
    const uint64_t tib4 = 4ull << 40;
    struct msg_hit hits[4] = {hit_of(0, 1, tib4, 10, 2), /* file 1: liars 10, 11 */
                              hit_of(1, 2, 0, 12, 3),    /* file 2: 3 bare claims */
                              hit_of(2, 3, 0, 40, 2)};   /* file 3: only dropped sources */
    struct msg_search_result r = {.hits = hits, .n_hits = 3};
    CU_ASSERT_EQUAL(sn_route_merge_add(m, NULL, &r), 0);
    hits[0] = hit_of(0, 1, 777, 20, 1); /* file 1 from a verified source, its true size */
    hits[1] = hit_of(1, 4, 0, 21, 1);   /* file 4: one verified source */
    hits[2] = hit_of(2, 2, 0, 42, 1);   /* file 2 also from a dropped source */
    r.n_hits = 3;
    r.flags = MSG_RESULT_FINAL;
    CU_ASSERT_EQUAL(sn_route_merge_add(m, ids[1], &r), 0);
    CU_ASSERT_EQUAL(sn_route_merge_files(m), 4);
    struct msg_search_result out;
    CU_ASSERT_EQUAL_FATAL(sn_route_merge_result(m, test_rank, NULL, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.n_hits, 3); /* file 3 is gone: every source dropped */
    /* File 1: one verified source of three, first; its size. */
    CU_ASSERT_EQUAL(out.hits[0].hash[0], 1);
    CU_ASSERT_EQUAL(out.hits[0].size, 777);
    CU_ASSERT_EQUAL_FATAL(out.hits[0].n_sources, 3);
    CU_ASSERT_EQUAL(out.hits[0].sources[0].peer_id[0], 20);
    CU_ASSERT_EQUAL(out.hits[0].sources[1].peer_id[0], 10);
    CU_ASSERT_EQUAL(out.hits[0].sources[2].peer_id[0], 11);
    /* File 4 (1 verified source) before file 2 (3 bare claims). */
    CU_ASSERT_EQUAL(out.hits[1].hash[0], 4);
    CU_ASSERT_EQUAL(out.hits[2].hash[0], 2);
    CU_ASSERT_EQUAL(out.hits[2].n_sources, 3); /* 42 dropped */
    for (size_t i = 0; i < out.hits[2].n_sources; i++)
        CU_ASSERT_NOT_EQUAL(out.hits[2].sources[i].peer_id[0], 42);
    /* Without the verified source, the liars' size would show: ranking is
     * what keeps it out. */
    struct sn_route_merge *m2 = sn_route_merge_new(8, 100);
    struct msg_hit two[2] = {hit_of(0, 1, tib4, 10, 2), hit_of(1, 1, 777, 20, 1)};
    struct msg_search_result r2 = {.hits = two, .n_hits = 2};
    CU_ASSERT_EQUAL(sn_route_merge_add(m2, NULL, &r2), 0);
    CU_ASSERT_EQUAL_FATAL(sn_route_merge_result(m2, NULL, NULL, &out), 0);
    CU_ASSERT_EQUAL(out.hits[0].size, tib4); /* unranked: the first received */
    CU_ASSERT_EQUAL_FATAL(sn_route_merge_result(m2, test_rank, NULL, &out), 0);
    CU_ASSERT_EQUAL(out.hits[0].size, 777);
    sn_route_merge_free(m2);
    sn_route_merge_free(m);
}

/* ---- a federation of 16 -------------------------------------------------------------------- */
#define FED_FILES 1000u /* per SN, each name with 2 words of its own and 1 shared */

static uint64_t fed_rng = 88172645463325252ULL;

static uint64_t rng(void)
{
    fed_rng ^= fed_rng << 13;
    fed_rng ^= fed_rng >> 7;
    fed_rng ^= fed_rng << 17;
    return fed_rng;
}

static void test_fanout_16(void)
{
    struct sn_route *r = new_route(0, NULL);
    struct sn_index_limits ilim = sn_index_limits_default();
    struct sn_summary_params sp = sn_summary_params_default();
    uint8_t peer[WIRE_ID_LEN] = {0xee};
    char name[96];
    for (unsigned sn = 0; sn < MAX_SN; sn++) {
        struct sn_index *idx = sn_index_new(&ilim);
        CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
        CU_ASSERT_EQUAL_FATAL(sn_index_peer_add(idx, peer, NULL), 0);
        for (unsigned f = 0; f < FED_FILES; f++) {
            snprintf(name, sizeof(name), "Own%ux%u Other%uy%u shared%u.mp3", sn, f, sn, f, f % 50);
            struct msg_publish_record rec = {.action = MSG_PUBLISH_ADD,
                                             .size = f + 1,
                                             .chunk_size = 1,
                                             .name = wire_str_from(name)};
            rec.hash[0] = (uint8_t)f;
            rec.hash[1] = (uint8_t)(f >> 8);
            CU_ASSERT_EQUAL_FATAL(sn_index_publish(idx, peer, &rec), 0);
        }
        struct sn_summary *s = sn_summary_build(idx, ids[sn], 1, &sp);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        struct msg_summary m;
        sn_summary_to_msg(s, &m);
        CU_ASSERT_EQUAL(sn_route_update(r, &m, 0),
                        sn ? SN_ROUTE_SUMMARY_NEW : SN_ROUTE_SUMMARY_SELF);
        sn_summary_free(s);
        sn_index_free(idx);
    }

    struct sn_route_target out[MAX_SN];
    size_t total = 0, found = 0;
    for (unsigned q = 0; q < 1000; q++) {
        unsigned holder = 1 + (unsigned)(rng() % (MAX_SN - 1));
        unsigned f = (unsigned)(rng() % FED_FILES);
        snprintf(name, sizeof(name), q % 2 ? "own%ux%u" : "OTHER%uY%u", holder, f);
        struct wire_str kw[1];
        struct msg_search search = search_of(kw, name);
        size_t n = sn_route_targets(r, &search, (const uint8_t(*)[WIRE_ID_LEN])ids, MAX_SN, 0, out,
                                    MAX_SN, NULL);
        total += n;
        for (size_t i = 0; i < n; i++)
            found += sn_of(out[i].sn_id) == (int)holder;
    }
    double mean = (double)total / 1000;
    printf("\n    16 SNs x %u files: mean fan-out %.3f over 1000 single-SN queries ", FED_FILES,
           mean);
    CU_ASSERT_EQUAL(found, 1000); /* never a false negative */
    CU_ASSERT(mean <= 2.0);
    /* A word every SN has goes to all 15 others. */
    struct sn_route_plan plan;
    route_query(r, "shared7", MAX_SN, 0, MAX_SN, &plan);
    CU_ASSERT_EQUAL(plan.matched, MAX_SN - 1);
    sn_route_free(r);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_route", setup, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "merge: one hit per ID, ranked sources, its best source's size",
                test_merge_ranked);
    CU_add_test(s, "targets: only SNs whose summary may match, unknown ones blind",
                test_targets_only_matching);
    CU_add_test(s, "summaries: newest version per SN, stale, forget, table cap",
                test_summary_versions);
    CU_add_test(s, "relay: TTL, origin and sender left out, child deadline", test_relay_targets);
    CU_add_test(s, "limited flooding reaches everyone once; duplicates dropped",
                test_flood_ttl_and_dedup);
    CU_add_test(s, "duplicate window and cap", test_seen_window_and_cap);
    CU_add_test(s, "per-origin token bucket; bounded origins", test_rate_limit);
    CU_add_test(s, "merge: de-dup by (hash, size), source union, order, copies",
                test_merge_dedup_union_order);
    CU_add_test(s, "merge: source, per-answer and file caps", test_merge_caps);
    CU_add_test(s, "16 SNs: a keyword on one SN goes to ~1 SN", test_fanout_16);
    return 0;
}
