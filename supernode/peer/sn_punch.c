/* sn_punch.c - carrying hole-punch notes between peers (sn_punch.h). */
#include "sn_punch.h"
#include "log.h"
#include "sn_fed_links.h"
#include "sn_search.h"

#include <stdlib.h>
#include <string.h>

/* Notes waiting for a locate, at most this many at once (each is small and
 * waits at most the locate's deadline). */
#define SN_PUNCH_MAX_WAITS 1024

/* A note waiting to learn where its target is attached. */
struct punch_wait {
    uint8_t target_id[WIRE_ID_LEN];
    struct msg_punch_note note;
    bool bounce; /* if not found, a NO goes back to the sender */
};

static void route(struct sn_ctx *d, const uint8_t target_id[WIRE_ID_LEN],
                  const struct msg_punch_note *note, bool bounce);

/* The note could not be delivered: the sender hears NO from the target (a
 * NO itself is never bounced). */
static void bounce_no(struct sn_ctx *d, const uint8_t target_id[WIRE_ID_LEN],
                      const struct msg_punch_note *note, const char *why)
{
    char who[NODE_ID_SHORT_LEN + 1];
    log_info("sn", "punch note for %s not delivered: %s", sn_short_id(target_id, who), why);
    d->counters.punches_failed++;
    if (note->step == MSG_PUNCH_NO)
        return;
    struct msg_punch_note no = *note;
    no.step = MSG_PUNCH_NO;
    memcpy(no.peer_id, target_id, WIRE_ID_LEN);
    route(d, note->peer_id, &no, false);
}

static void on_located(struct sn_ctx *d, const struct msg_locate_result *found, void *arg)
{
    struct punch_wait *w = arg;
    d->punch_waits--;
    if (found == NULL || !found->found) {
        if (w->bounce && found != NULL) /* NULL: no answer (or shutting down): no new locate */
            bounce_no(d, w->target_id, &w->note, "not attached to the federation");
        else if (w->bounce) {
            struct sn_conn *sender = sn_index_peer_ctx(d->index, w->note.peer_id);
            if (sender != NULL && w->note.step != MSG_PUNCH_NO) {
                struct msg m = {.type = MSG_PUNCH_NOTE, .u.punch_note = w->note};
                m.u.punch_note.step = MSG_PUNCH_NO;
                memcpy(m.u.punch_note.peer_id, w->target_id, WIRE_ID_LEN);
                link_send(sender->link, &m);
            }
        }
    } else {
        struct msg m = {.type = MSG_FWD_PUNCH};
        memcpy(m.u.fwd_punch.target_id, w->target_id, WIRE_ID_LEN);
        m.u.fwd_punch.note = w->note;
        if (sn_fed_send(d, found->sn_id, &m) != 0 && w->bounce)
            bounce_no(d, w->target_id, &w->note, "no link to its supernode");
        else
            d->counters.punches++;
    }
    free(w);
}

static void route(struct sn_ctx *d, const uint8_t target_id[WIRE_ID_LEN],
                  const struct msg_punch_note *note, bool bounce)
{
    struct sn_conn *target = sn_index_peer_ctx(d->index, target_id);
    if (target != NULL) {
        if (!(link_remote_caps(target->link) & MSG_CAP_PUNCH)) {
            if (bounce)
                bounce_no(d, target_id, note, "it does not take punch notes");
            return;
        }
        link_send(target->link, &(struct msg){.type = MSG_PUNCH_NOTE, .u.punch_note = *note});
        d->counters.punches++;
        return;
    }
    struct punch_wait *w = d->punch_waits < SN_PUNCH_MAX_WAITS ? calloc(1, sizeof(*w)) : NULL;
    if (w == NULL) {
        if (bounce)
            bounce_no(d, target_id, note, "too many notes being located");
        return;
    }
    memcpy(w->target_id, target_id, WIRE_ID_LEN);
    w->note = *note;
    w->bounce = bounce;
    d->punch_waits++;
    sn_search_locate_cb(d, target_id, on_located, w);
}

void sn_punch_on_punch(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    const struct msg_punch *pu = &m->u.punch;
    uint64_t wait_ms = 0;
    if (sn_rate_take(&p->lim.connect, 1, link_now_ms(), &wait_ms) != 0) {
        sn_conn_rate_limited(p, MSG_PUNCH, wait_ms, "PUNCH");
        return;
    }
    if (memcmp(pu->peer_id, p->id, WIRE_ID_LEN) == 0) {
        link_send_error(p->link, MSG_ERR_NOT_FOUND, MSG_PUNCH, "cannot punch to yourself");
        return;
    }
    const struct wire_addr *seen = link_remote_addr(p->link);
    if (seen == NULL || seen->family == 0) {
        link_send_error(p->link, MSG_ERR_INTERNAL, MSG_PUNCH, "your address is not known");
        return;
    }
    /* The sender is who its TLS identity says; its address is the IP its
     * connection comes from, with the port it names (or, with none, the
     * port of that connection). */
    struct msg_punch_note note = {.step = pu->step, .addr = *seen};
    memcpy(note.peer_id, p->id, WIRE_ID_LEN);
    memcpy(note.token, pu->token, WIRE_TOKEN_LEN);
    if (pu->port != 0)
        note.addr.port = pu->port;
    /* It reached for that peer: a report of it may count (sn_intro.h). */
    sn_intro_add(d->intros, p->id, pu->peer_id, NULL, link_now_ms());
    route(d, pu->peer_id, &note, true);
}

void sn_punch_on_forwarded(struct sn_ctx *d, struct sn_conn *from, const struct msg *m)
{
    (void)from;
    const struct msg_fwd_punch *f = &m->u.fwd_punch;
    route(d, f->target_id, &f->note, true);
}
