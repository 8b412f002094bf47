/* sn_flow.c - credit seen from an evaluator (sn_flow.h). */
#include "sn_flow.h"
#include "sn_credit.h"
#include "sova_assert.h"

#include <string.h>

static uint64_t entry_bytes(const struct msg_ledger_entry *v, size_t n,
                            const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(v[i].peer_id, id, WIRE_ID_LEN) == 0)
            return v[i].bytes;
    return 0;
}

uint64_t sn_flow_uploaded_to(const struct msg_ledger_put *a, const uint8_t b_id[WIRE_ID_LEN])
{
    return a ? entry_bytes(a->uploads, a->n_uploads, b_id) : 0;
}

uint64_t sn_flow_downloaded_from(const struct msg_ledger_put *b, const uint8_t a_id[WIRE_ID_LEN])
{
    return b ? entry_bytes(b->downloads, b->n_downloads, a_id) : 0;
}

uint64_t sn_flow_credit(const uint8_t x_id[WIRE_ID_LEN], const struct msg_ledger_put *x,
                        const uint8_t e_id[WIRE_ID_LEN], const struct msg_ledger_put *e,
                        uint64_t cap)
{
    if (memcmp(x_id, e_id, WIRE_ID_LEN) == 0)
        return 0;
    /* One hop: X uploaded to E. Both records saw the same receipts, but a
     * replica may lag: the larger says more of what E signed. */
    uint64_t direct = sn_flow_uploaded_to(x, e_id), by_e = sn_flow_downloaded_from(e, x_id);
    uint64_t flow = direct > by_e ? direct : by_e;
    /* Two hops: X -> I -> E, at most what each hop carried. Only E's
     * download entries name an I here, so only peers E downloaded from
     * (and so E signed for) can carry anything. */
    for (size_t i = 0; x && e && i < x->n_uploads && flow < cap; i++) {
        const struct msg_ledger_entry *xi = &x->uploads[i];
        if (memcmp(xi->peer_id, e_id, WIRE_ID_LEN) == 0 ||
            memcmp(xi->peer_id, x_id, WIRE_ID_LEN) == 0)
            continue;
        uint64_t ie = entry_bytes(e->downloads, e->n_downloads, xi->peer_id);
        flow = sn_sat_add(flow, sn_min_u64(xi->bytes, ie));
    }
    uint64_t credit = sn_min_u64(flow, cap);
    SOVA_ASSERT(credit <= cap); /* priorities and shares rely on the cap */
    return credit;
}

uint64_t sn_flow_self(const struct msg_ledger_put *x, uint64_t cap)
{
    uint64_t sum = 0;
    for (size_t i = 0; x && i < x->n_uploads; i++)
        if (memcmp(x->uploads[i].peer_id, x->peer_id, WIRE_ID_LEN) != 0)
            sum = sn_sat_add(sum, sn_min_u64(x->uploads[i].bytes, cap));
    return sum;
}
