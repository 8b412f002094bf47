/* op_query.h - the searches a peer sends its supernode, and the hits they
 * bring back.
 *
 * The daemon (op_daemon.c) owns one struct op_queries, wires its send hook
 * to the primary session and hands it every SEARCH_RESULT
 * (op_queries_result). Whoever needs an answer sends through it: the
 * control socket (op_control.c) for `sova-peer search` and `get`, the
 * daemon for the fetcher's find_sources. Every answer's hits are
 * remembered first (the last OP_QUERY_HIT_CACHE_MAX file IDs, the entry
 * seen longest ago replaced first) so `sova-peer get ID` knows a hit's
 * name, size and sources; then the query that asked, if one waits,
 * is done. Answers nobody waits for (late, cancelled, fire and forget)
 * still fill the cache.
 *
 * Ownership:
 *  - A query sent with a done callback is the set's until exactly one of:
 *    done runs (with the answer, or NULL when timeout_ms passed without
 *    one), or its waiter calls op_query_cancel() (its client left; done
 *    then never runs). The query is freed before done is called, so done
 *    forgets its handle and may send again; it must not cancel it.
 *  - A query sent without done is fire and forget: no handle, no timer.
 *  - op_queries_free() frees the queries still in flight without calling
 *    their done: their waiters are freed first (the daemon frees the
 *    control socket, whose clients cancel theirs, before this).
 *  - A hit from op_queries_hit() is borrowed until the next
 *    op_queries_result() or op_queries_free(); its sources and their
 *    addresses are deep copies owned by the cache.
 *
 * Nothing blocks: sending is the send hook, timeouts are libevent timers.
 * The cache holds at most OP_QUERY_HIT_CACHE_MAX hits; lookups are linear.
 */
#ifndef SOVA_OP_QUERY_H
#define SOVA_OP_QUERY_H

#include "msg.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#define OP_QUERY_HIT_CACHE_MAX   1024 /* search hits remembered for `get ID` */
#define OP_QUERY_HIT_SOURCES_MAX 64   /* sources remembered per file ID */

struct op_queries_config {
    struct event_base *base; /* for the answer timeouts */
    /* Send to the primary supernode: 0, or an error when not attached. */
    int (*send)(const struct msg *m, void *arg);
    void *arg;
};

/* A search hit remembered so `sova-peer get ID` knows name, size, sources.
 * Hits of one ID in one answer (claiming different sizes) are merged: the
 * first one's name and size (a hint), every one's sources. */
struct op_query_hit {
    uint8_t hash[WIRE_HASH_LEN]; /* the file ID */
    uint64_t size;               /* as the first hit claimed: a hint */
    char *name;
    struct msg_source *sources; /* deep copy: addrs owned; at most OP_QUERY_HIT_SOURCES_MAX */
    size_t n_sources;
    uint64_t seen_ms;
    uint64_t query_id; /* the answer it came in */
};

struct op_queries; /* the queries in flight and the hit cache */
struct op_query;   /* one query someone waits for */

/* 0, or SOVA_ERR_NOMEM. */
int op_queries_new(const struct op_queries_config *cfg, struct op_queries **out);
/* NULL is fine. See the ownership rule above. */
void op_queries_free(struct op_queries *qs);

/* A search's answer, or its timeout (res NULL). The query is gone by then:
 * its waiter forgets the handle and may send another. */
typedef void op_query_done_fn(const struct msg_search_result *res, void *arg);

/* Send search (its query_id is chosen here). With done, the query waits
 * for its answer until timeout_ms and *out is the handle for
 * op_query_cancel(); without done, the SEARCH is sent and forgotten (*out
 * NULL, out may be NULL). On an error (SOVA_ERR_NOMEM, or the send hook's)
 * nothing waits and done never runs. */
int op_query_send(struct op_queries *qs, const struct msg_search *search, unsigned timeout_ms,
                  op_query_done_fn *done, void *arg, struct op_query **out);
/* The waiter gives up: q is freed and its done never runs. */
void op_query_cancel(struct op_query *q);

/* A SEARCH_RESULT from the supernode: remember its hits (seen at now_ms),
 * then the query it answers, if one waits, is done. */
void op_queries_result(struct op_queries *qs, const struct msg_search_result *r, uint64_t now_ms);
/* The remembered hit for a file ID, or NULL (borrowed; see above). */
const struct op_query_hit *op_queries_hit(const struct op_queries *qs,
                                          const uint8_t id[WIRE_HASH_LEN]);
/* SEARCHes sent to the supernode since op_queries_new(). */
uint64_t op_queries_sent(const struct op_queries *qs);

#endif
