/* test_op_query.c - the peer's searches (ordinary/op_query.h): an answer
 * reaches the query that asked it and fills the hit cache, a cancelled or
 * fire-and-forget query still fills the cache, a silent supernode times the
 * waiter out, a failed send leaves nothing waiting, and the cache replaces
 * the hit seen longest ago when full. */
#include "cunit_main.h"
#include "err.h"
#include "op_query.h"

#include <CUnit/CUnit.h>
#include <string.h>

/* What the supernode was sent: the last SEARCH's query id. */
struct fake_session {
    int fail; /* what send returns */
    unsigned sent;
    uint64_t last_id;
};

static int fake_send(const struct msg *m, void *arg)
{
    struct fake_session *fs = arg;
    CU_ASSERT_EQUAL(m->type, MSG_SEARCH);
    fs->sent++;
    fs->last_id = m->u.search.query_id;
    return fs->fail;
}

/* A waiter: how often it heard, and what. */
struct waiter {
    unsigned calls;
    bool timed_out;
    size_t n_hits;
};

static void on_done(const struct msg_search_result *res, void *arg)
{
    struct waiter *w = arg;
    w->calls++;
    w->timed_out = res == NULL;
    w->n_hits = res ? res->n_hits : 0;
}

static struct op_queries *new_queries(struct event_base *base, struct fake_session *fs)
{
    struct op_queries_config cfg = {.base = base, .send = fake_send, .arg = fs};
    struct op_queries *qs = NULL;
    CU_ASSERT_EQUAL_FATAL(op_queries_new(&cfg, &qs), 0);
    return qs;
}

static void hash_of(uint8_t hash[WIRE_HASH_LEN], unsigned n)
{
    memset(hash, 0, WIRE_HASH_LEN);
    memcpy(hash, &n, sizeof(n));
}

/* One hit for hash n, with two sources of one address each. */
struct one_hit {
    struct wire_addr addrs[2];
    struct msg_source sources[2];
    struct msg_hit hit;
};

static void one_hit_init(struct one_hit *h, unsigned n, const char *name)
{
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < 2; i++) {
        h->addrs[i] = (struct wire_addr){
            .family = WIRE_ADDR_IPV4, .ip = {10, 0, 0, (uint8_t)i}, .port = (uint16_t)(4000 + i)};
        memset(h->sources[i].peer_id, (int)(i + 1), WIRE_ID_LEN);
        h->sources[i].addrs = &h->addrs[i];
        h->sources[i].n_addrs = 1;
    }
    hash_of(h->hit.hash, n);
    h->hit.size = 1000 + n;
    h->hit.name = wire_str_from(name);
    h->hit.sources = h->sources;
    h->hit.n_sources = 2;
}

static const struct msg_search KEYWORD_SEARCH = {.max_results = 10};

static void test_answer_reaches_waiter(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {0};
    struct op_queries *qs = new_queries(base, &fs);
    struct waiter a = {0}, b = {0};
    struct op_query *qa = NULL, *qb = NULL;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 5000, on_done, &a, &qa), 0);
    uint64_t id_a = fs.last_id;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 5000, on_done, &b, &qb), 0);
    CU_ASSERT_PTR_NOT_NULL(qa);
    CU_ASSERT_PTR_NOT_NULL(qb);
    CU_ASSERT_NOT_EQUAL(fs.last_id, id_a); /* each query its own id */
    CU_ASSERT_EQUAL(op_queries_sent(qs), 2);

    struct one_hit h;
    one_hit_init(&h, 7, "song.ogg");
    struct msg_search_result r = {.query_id = id_a, .hits = &h.hit, .n_hits = 1};
    op_queries_result(qs, &r, 100);
    CU_ASSERT_EQUAL(a.calls, 1);
    CU_ASSERT_FALSE(a.timed_out);
    CU_ASSERT_EQUAL(a.n_hits, 1);
    CU_ASSERT_EQUAL(b.calls, 0); /* not its answer */

    /* The hit is a deep copy: the message may go. */
    memset(&h, 0xee, sizeof(h));
    uint8_t hash[WIRE_HASH_LEN];
    hash_of(hash, 7);
    const struct op_query_hit *hit = op_queries_hit(qs, hash);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
    CU_ASSERT_STRING_EQUAL(hit->name, "song.ogg");
    CU_ASSERT_EQUAL(hit->size, 1007);
    CU_ASSERT_EQUAL_FATAL(hit->n_sources, 2);
    CU_ASSERT_EQUAL(hit->sources[1].n_addrs, 1);
    CU_ASSERT_EQUAL(hit->sources[1].addrs[0].port, 4001);
    CU_ASSERT_EQUAL(hit->sources[1].peer_id[0], 2);

    /* The same answer again finds nobody waiting: a's query is gone. */
    op_queries_result(qs, &(struct msg_search_result){.query_id = id_a}, 200);
    CU_ASSERT_EQUAL(a.calls, 1);
    op_queries_free(qs); /* b still waits: freed without a call */
    CU_ASSERT_EQUAL(b.calls, 0);
    event_base_free(base);
}

static void test_cancel_and_forget_still_fill_the_cache(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {0};
    struct op_queries *qs = new_queries(base, &fs);
    struct waiter a = {0};
    struct op_query *qa = NULL;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 5000, on_done, &a, &qa), 0);
    uint64_t id_a = fs.last_id;
    op_query_cancel(qa); /* its client left */

    struct op_query *qf = (struct op_query *)&qf; /* must come back NULL */
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 0, NULL, NULL, &qf), 0);
    CU_ASSERT_PTR_NULL(qf);
    uint64_t id_f = fs.last_id;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 0, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(fs.sent, 3);

    struct one_hit h1, h2;
    one_hit_init(&h1, 1, "one");
    one_hit_init(&h2, 2, "two");
    op_queries_result(
        qs, &(struct msg_search_result){.query_id = id_a, .hits = &h1.hit, .n_hits = 1}, 10);
    op_queries_result(
        qs, &(struct msg_search_result){.query_id = id_f, .hits = &h2.hit, .n_hits = 1}, 20);
    CU_ASSERT_EQUAL(a.calls, 0);
    uint8_t hash[WIRE_HASH_LEN];
    hash_of(hash, 1);
    CU_ASSERT_PTR_NOT_NULL(op_queries_hit(qs, hash));
    hash_of(hash, 2);
    CU_ASSERT_PTR_NOT_NULL(op_queries_hit(qs, hash));
    hash_of(hash, 3);
    CU_ASSERT_PTR_NULL(op_queries_hit(qs, hash));
    /* Nothing waits now: the loop has no timer left to run. */
    CU_ASSERT_EQUAL(event_base_loop(base, EVLOOP_NONBLOCK), 1);
    op_queries_free(qs);
    event_base_free(base);
}

static void test_silent_supernode_times_out(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {0};
    struct op_queries *qs = new_queries(base, &fs);
    struct waiter a = {0};
    struct op_query *qa = NULL;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 20, on_done, &a, &qa), 0);
    uint64_t id_a = fs.last_id;
    /* Run the loop until the waiter hears (its timer is all there is). */
    for (int turns = 0; a.calls == 0 && turns < 1000; turns++)
        event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT_EQUAL(a.calls, 1);
    CU_ASSERT_TRUE(a.timed_out);
    /* A late answer finds nobody. */
    op_queries_result(qs, &(struct msg_search_result){.query_id = id_a}, 100);
    CU_ASSERT_EQUAL(a.calls, 1);
    op_queries_free(qs);
    event_base_free(base);
}

static void test_failed_send_leaves_nothing_waiting(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {.fail = SOVA_ERR_NOT_FOUND}; /* not attached */
    struct op_queries *qs = new_queries(base, &fs);
    struct waiter a = {0};
    struct op_query *qa = (struct op_query *)&qa;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 20, on_done, &a, &qa), SOVA_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(qa);
    CU_ASSERT_EQUAL(event_base_loop(base, EVLOOP_NONBLOCK), 1); /* no timer */
    op_queries_result(qs, &(struct msg_search_result){.query_id = fs.last_id}, 100);
    CU_ASSERT_EQUAL(a.calls, 0);
    op_queries_free(qs);
    event_base_free(base);
}

/* A waiter that sends again from inside its done, as a get that retries. */
struct resender {
    struct op_queries *qs;
    struct waiter next;
    struct op_query *next_q;
    unsigned calls;
};

static void on_done_resend(const struct msg_search_result *res, void *arg)
{
    struct resender *r = arg;
    (void)res;
    r->calls++;
    CU_ASSERT_EQUAL(op_query_send(r->qs, &KEYWORD_SEARCH, 5000, on_done, &r->next, &r->next_q), 0);
}

static void test_done_may_send_again(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {0};
    struct op_queries *qs = new_queries(base, &fs);
    struct resender r = {.qs = qs};
    struct op_query *q = NULL;
    CU_ASSERT_EQUAL(op_query_send(qs, &KEYWORD_SEARCH, 5000, on_done_resend, &r, &q), 0);
    op_queries_result(qs, &(struct msg_search_result){.query_id = fs.last_id}, 10);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_PTR_NOT_NULL(r.next_q);
    op_queries_result(qs, &(struct msg_search_result){.query_id = fs.last_id}, 20);
    CU_ASSERT_EQUAL(r.next.calls, 1);
    CU_ASSERT_EQUAL(r.calls, 1);
    op_queries_free(qs);
    event_base_free(base);
}

static void test_cache_replaces_the_oldest(void)
{
    struct event_base *base = event_base_new();
    struct fake_session fs = {0};
    struct op_queries *qs = new_queries(base, &fs);
    struct one_hit h;
    /* Fill the cache; hash 0 is seen last of all, so hash 1 is the oldest. */
    for (unsigned n = 0; n < OP_QUERY_HIT_CACHE_MAX; n++) {
        one_hit_init(&h, n, "f");
        op_queries_result(qs, &(struct msg_search_result){.hits = &h.hit, .n_hits = 1}, 1000 + n);
    }
    one_hit_init(&h, 0, "renamed");
    op_queries_result(qs, &(struct msg_search_result){.hits = &h.hit, .n_hits = 1}, 5000);
    uint8_t hash[WIRE_HASH_LEN];
    hash_of(hash, 0);
    const struct op_query_hit *hit = op_queries_hit(qs, hash);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
    CU_ASSERT_STRING_EQUAL(hit->name, "renamed"); /* replaced in place, not added */
    /* One more hash: the oldest (1) goes, the others stay. */
    one_hit_init(&h, OP_QUERY_HIT_CACHE_MAX, "new");
    op_queries_result(qs, &(struct msg_search_result){.hits = &h.hit, .n_hits = 1}, 6000);
    hash_of(hash, 1);
    CU_ASSERT_PTR_NULL(op_queries_hit(qs, hash));
    hash_of(hash, OP_QUERY_HIT_CACHE_MAX);
    CU_ASSERT_PTR_NOT_NULL(op_queries_hit(qs, hash));
    for (unsigned n = 2; n < OP_QUERY_HIT_CACHE_MAX; n += 97) {
        hash_of(hash, n);
        CU_ASSERT_PTR_NOT_NULL(op_queries_hit(qs, hash));
    }
    hash_of(hash, 0);
    CU_ASSERT_PTR_NOT_NULL(op_queries_hit(qs, hash));
    op_queries_free(qs);
    event_base_free(base);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_query", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "an answer reaches the query that asked and fills the hit cache",
                test_answer_reaches_waiter);
    CU_add_test(s, "a cancelled or fire-and-forget query still fills the cache",
                test_cancel_and_forget_still_fill_the_cache);
    CU_add_test(s, "a silent supernode times the waiter out", test_silent_supernode_times_out);
    CU_add_test(s, "a failed send leaves nothing waiting", test_failed_send_leaves_nothing_waiting);
    CU_add_test(s, "a waiter may send again from its done", test_done_may_send_again);
    CU_add_test(s, "a full cache replaces the hit seen longest ago",
                test_cache_replaces_the_oldest);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
