/* sn_flow.h - credit seen from an evaluator (docs/CREDITS.md, "Credit"):
 * what a peer's uploads are worth to one other peer, from the ledger's
 * records of the two. Pure integers, no I/O.
 *
 * The graph: f(A->B) is the bytes A uploaded to B as B's own signed
 * receipts say. The ledger has them twice: A's record, upload entry for B,
 * and B's record, download entry for A. The credit of X as seen by E is
 * the flow from X to E over paths of at most two hops (BarterCast's
 * maxflow, as Tribler bounds it), capped:
 *
 *     credit_E(X) = min(cap, f(X->E) + sum over I of min(f(X->I), f(I->E)))
 *
 * with f(X->E) and f(X->I) from X's upload entries (f(X->E) also from E's
 * download entry for X: the larger), and f(I->E) from E's download entries.
 * Every term is bounded by what E itself signed for, so identities that
 * only sign for each other add nothing at an E they never served: the
 * credit of any X at E is at most min(cap, the bytes E downloaded from X
 * and from the peers X uploaded to), however many identities sign for X.
 * Folded entries (a record keeps its 128 most recent counterparties a
 * direction; older ones are only totals) count nothing here: a view can
 * only lose by folding, never gain.
 *
 * Records come as LEDGER_PUT bodies (sn_ledger_export(), or merged
 * LEDGER_ANSWERs); NULL is a record with nothing in it. Nothing allocates:
 * the cost is O(|X's uploads| x |E's downloads|) <= 128 x 128 comparisons.
 */
#ifndef SOVA_SN_FLOW_H
#define SOVA_SN_FLOW_H

#include "msg.h"

#include <stdint.h>

/* credit_E(X) above, x_id and e_id naming X and E (their records may be
 * NULL). 0 when X is E. Never above cap; no sum wraps. */
uint64_t sn_flow_credit(const uint8_t x_id[WIRE_ID_LEN], const struct msg_ledger_put *x,
                        const uint8_t e_id[WIRE_ID_LEN], const struct msg_ledger_put *e,
                        uint64_t cap);

/* What X's own record says about it when X asks about itself: the sum,
 * over the peers it uploaded to, of the credit each of them sees from
 * that direct service alone (min(cap, f(X->I))). Informative only (it is
 * X's own receipts, which a farm can sign): no decision reads it. */
uint64_t sn_flow_self(const struct msg_ledger_put *x, uint64_t cap);

/* f(A->B) as A's upload entries say (0 when there is none). */
uint64_t sn_flow_uploaded_to(const struct msg_ledger_put *a, const uint8_t b_id[WIRE_ID_LEN]);
/* f(A->B) as B's download entries say (0 when there is none). */
uint64_t sn_flow_downloaded_from(const struct msg_ledger_put *b, const uint8_t a_id[WIRE_ID_LEN]);

#endif
