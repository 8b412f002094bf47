/* sn_search.h - SEARCH and LOCATE across the federation.
 *
 * A SEARCH from an attached peer is answered from the local index and sent
 * on, in one hop and in parallel, to the supernodes whose keyword summary
 * may match (sn_route.h decides; members without a summary yet get it
 * blind, with a TTL). Their FWD_HITS are merged with the local hits,
 * de-duplicated by content hash, and the peer gets one SEARCH_RESULT when
 * all have answered or the deadline passes. Each supernode gossips its own
 * summary (sn_summary.h) on every link, rebuilt when its index changed.
 * LOCATE (where is peer X attached) is answered from the index, else asked
 * of every linked supernode; other features locate peers through
 * sn_search_locate_cb().
 *
 * Hits are one per file ID (content hash), whatever sizes sources claim;
 * sources are ranked (sn_route.h): those reported by downloaders that
 * count go last (guard/sn_reports.h), dropped past its threshold, and
 * those whose uploads others verified (a hook: credit/ knows, and search
 * may not call it) before bare claims; the size shown is the one the best
 * source claims, and files with more verified sources come first. A hit
 * handed to a peer for a SEARCH by hash introduces it to the sources named
 * (guard/sn_intro.h), as a LOCATE does: a report of them may then count.
 *
 * Ownership: the state is ctx->search (start/stop). Pending questions hold
 * a pointer to the asking conn until sn_search_conn_gone() says it went. */
#ifndef SOVA_SN_SEARCH_H
#define SOVA_SN_SEARCH_H

#include "sn_ctx.h"

/* What search asks of the features above it (the daemon wires them). */
struct sn_search_hooks {
    void *arg;
    /* Have others' receipts verified uploads of peer_id (as far as known
     * now)? May start finding out, for later searches. */
    bool (*verified)(void *arg, const uint8_t peer_id[WIRE_ID_LEN]);
};

int sn_search_start(struct sn_ctx *ctx, const struct sn_search_hooks *hooks);
void sn_search_stop(struct sn_ctx *ctx);

/* Messages: SEARCH and LOCATE from an attached peer; SUMMARY, FWD_SEARCH,
 * FWD_HITS, FWD_LOCATE, FWD_LOCATE_RESULT from a supernode. */
void sn_search_on_search(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
void sn_search_on_locate(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
void sn_search_on_fed_message(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);

/* c's link is closing: its pending questions are answered into the void. */
void sn_search_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* A supernode link came up: it gets our summary. */
void sn_search_link_up(struct sn_ctx *ctx, struct sn_conn *c);
/* A member is dead or gone: its summary is forgotten. */
void sn_search_forget(struct sn_ctx *ctx, const uint8_t sn_id[WIRE_ID_LEN]);

/* Find the supernode a peer is attached to, for another feature (relaying,
 * reversal): fn runs once, with found NULL when no one answered by the
 * deadline (also at once, when there is no other supernode). Cancel with
 * the same arg before arg goes away. */
typedef void sn_located_fn(struct sn_ctx *ctx, const struct msg_locate_result *found, void *arg);
void sn_search_locate_cb(struct sn_ctx *ctx, const uint8_t peer_id[WIRE_ID_LEN], sn_located_fn *fn,
                         void *arg);
void sn_search_locate_cancel(struct sn_ctx *ctx, const void *arg);

void sn_search_stats(const struct sn_ctx *ctx, uint64_t *forwarded, uint64_t *relayed,
                     size_t *summaries);

#endif
