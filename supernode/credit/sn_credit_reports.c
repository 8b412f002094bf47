/* sn_credit_reports.c - reports that count, and what ranking asks of the
 * ledger (sn_credit_int.h; docs/INDEX.md "Reports", docs/CREDITS.md).
 *
 * A REPORT says a source served bad data or refused a file it is listed
 * with. Anyone can send one, so before it moves anything:
 *  - the reporter must have been introduced to the source here
 *    (guard/sn_intro.h: this supernode handed it the source for that file
 *    in a SEARCH by hash, or saw it LOCATE, CONNECT or open a circuit to
 *    it), or hold the source's receipt (the ledger shows bytes the source
 *    uploaded to it);
 *  - its weight is its credit as seen by the source (sn_flow.h), full at
 *    CREDIT_REPORT_FULL_BYTES: what it has uploaded to the source, or to
 *    the peers the source downloaded from. A fresh identity has none, so 8
 *    of them (or 8000) cannot move an honest source; a farm gains weight
 *    only by serving the source's own neighbourhood for real.
 * Counted reports go to guard/sn_reports.h, which ranks and drops. */
#define SOVA_SN_CREDIT_INTERNAL
#include "clock.h"
#include "log.h"
#include "sn_credit_int.h"
#include "sn_flow.h"

#include <stdlib.h>
#include <string.h>

#define CREDIT_REPORT_FULL_BYTES (4ull * 1024 * 1024) /* standing for a full-weight report */

struct report_wait {
    uint8_t reporter[WIRE_ID_LEN], source[WIRE_ID_LEN];
    uint8_t reason;
    bool introduced;
};

static const char *reason_text(uint8_t reason)
{
    return reason == MSG_REPORT_BAD_DATA ? "served data that failed verification"
                                         : "does not serve a file it is listed with";
}

/* The records of the reporter and the source are read: weigh and count. */
static void report_weighed(struct sn_ctx *d, struct lookup *l, void *arg)
{
    struct sn_credit *c = d->credit;
    struct report_wait *w = arg;
    (void)l;
    struct msg_ledger_put rb, sb;
    const struct msg_ledger_put *rr = credit_record(c, w->reporter, &rb),
                                *sr = credit_record(c, w->source, &sb);
    bool receipt =
        sn_flow_uploaded_to(sr, w->reporter) > 0 || sn_flow_downloaded_from(rr, w->source) > 0;
    char rep[NODE_ID_SHORT_LEN + 1], src[NODE_ID_SHORT_LEN + 1];
    sn_short_id(w->reporter, rep);
    sn_short_id(w->source, src);
    if (!w->introduced && !receipt) {
        c->ct.reports_unintroduced++;
        log_info("credit", "report by %s of %s not counted: never introduced to it here", rep, src);
        free(w);
        return;
    }
    uint64_t standing = sn_flow_credit(w->reporter, rr, w->source, sr, c->cap);
    uint64_t weight = standing >= CREDIT_REPORT_FULL_BYTES
                          ? SN_REPORTS_WEIGHT_FULL
                          : standing * SN_REPORTS_WEIGHT_FULL / CREDIT_REPORT_FULL_BYTES;
    if (weight == 0) {
        c->ct.reports_weightless++;
        log_info("credit", "report by %s of %s not counted: no credit at it", rep, src);
        free(w);
        return;
    }
    c->ct.reports_weighed++;
    if (sn_reports_add(d->reports, w->source, w->reporter, w->reason, (unsigned)weight,
                       link_now_ms()))
        log_info("credit", "%s reports %s: %s (weight %llu, score %u%s)", rep, src,
                 reason_text(w->reason), (unsigned long long)weight,
                 sn_reports_score(d->reports, w->source),
                 sn_reports_dropped(d->reports, w->source) ? ", out of hits" : "");
    free(w);
}

void sn_credit_on_report(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    const struct msg_report *r = &m->u.report;
    struct sn_credit *c = d->credit;
    uint64_t now = link_now_ms();
    if (sn_rate_take(&p->lim.connect, 1, now, NULL) != 0)
        return; /* a flood of accusations is not worth an answer */
    if (memcmp(r->peer_id, p->id, WIRE_ID_LEN) == 0)
        return;
    struct report_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return;
    memcpy(w->reporter, p->id, WIRE_ID_LEN);
    memcpy(w->source, r->peer_id, WIRE_ID_LEN);
    w->reason = r->reason;
    w->introduced = sn_intro_has(d->intros, p->id, r->peer_id, r->hash, now);
    uint8_t ids[2][WIRE_ID_LEN];
    memcpy(ids[0], p->id, WIRE_ID_LEN);
    memcpy(ids[1], r->peer_id, WIRE_ID_LEN);
    credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ids, 2, report_weighed, w);
}
