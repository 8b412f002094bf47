/* sn_dialback.c - reachability proofs: a peer asks (DIALBACK) and the
 * supernode connects back to the addresses it names, runs a TLS handshake
 * that must show the peer's own key (peer<->peer policy with the ID from
 * the peer's session), and reports each outcome (DIALBACK_RESULT).
 *
 * Policy, so a supernode cannot be made to knock on strangers' doors: only
 * addresses on the IP the peer's connection comes from are dialed (its own
 * public address, or the NAT it sits behind, which a UPnP mapping opens);
 * others are answered "not tried". One dial-back per peer at a time, and
 * at most one every SN_DIALBACK_INTERVAL_MS. Each probe is bounded by
 * dialback-timeout-ms (TCP connect, TLS, HELLO).
 *
 * What a dial-back proved is kept with the session (sn_conn.verified): a
 * REGISTER claiming public or mapped reachability is believed only for an
 * address proved this way, so search hits never advertise a reachability
 * nobody checked. */
#include "sn_dialback.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define SN_DIALBACK_INTERVAL_MS 2000 /* between two dial-backs of one peer */

struct probe {
    struct sn_dialback *db;
    struct wire_addr addr;
    uint8_t outcome; /* enum msg_dialback_outcome; 0 while running */
    struct link *link;
};

struct sn_dialback {
    struct sn_ctx *d;
    struct sn_dialback *next; /* the daemon's running dial-backs */
    struct sn_conn *asker;    /* NULL once its link went */
    uint8_t peer_id[WIRE_ID_LEN];
    uint64_t nonce;
    struct probe probes[WIRE_MAX_ADDRS];
    size_t n, running; /* probes, and of them without an outcome yet */
    size_t links;      /* probe links not yet closed */
    bool reported;
    struct link_params params;
};

/* The running dial-backs (ctx->dialbacks). */
struct sn_dialbacks {
    struct sn_dialback *running;
};

/* SN_EXT_DIALBACK: what this module keeps of a peer's link. */
struct db_conn {
    struct sn_dialback *running; /* the probe running for it, if any */
    uint64_t last_ms;            /* when its last dial-back started */
};

static struct db_conn *dbconn(const struct sn_conn *c)
{
    return c->ext[SN_EXT_DIALBACK];
}

static void dbconn_free(void *ext)
{
    free(ext);
}

static uint8_t outcome_of(int why)
{
    switch (why) {
    case SOVA_ERR_TIMEOUT:
        return MSG_DIALBACK_TIMEOUT;
    case SOVA_ERR_REFUSED:
    case SOVA_ERR_UNREACHABLE:
    case SOVA_ERR_IO:
        return MSG_DIALBACK_REFUSED;
    case SOVA_ERR_ID_MISMATCH:
        return MSG_DIALBACK_ID_MISMATCH;
    default:
        return MSG_DIALBACK_TLS_FAILED;
    }
}

static void dialback_unlink(struct sn_dialback *db)
{
    struct sn_dialback **pp = &db->d->dialbacks->running;
    while (*pp && *pp != db)
        pp = &(*pp)->next;
    if (*pp)
        *pp = db->next;
}

/* Every probe has its outcome: tell the peer and remember what was proved. */
static void report(struct sn_dialback *db)
{
    struct sn_ctx *d = db->d;
    struct sn_conn *p = db->asker;
    struct msg_dialback_probe out[WIRE_MAX_ADDRS];
    struct wire_addr proved[WIRE_MAX_ADDRS];
    char summary[512] = "";
    size_t used = 0, ok = 0;
    for (size_t i = 0; i < db->n; i++) {
        out[i] = (struct msg_dialback_probe){.addr = db->probes[i].addr,
                                             .outcome = db->probes[i].outcome};
        char a[64];
        wire_addr_format(&out[i].addr, a, sizeof(a));
        int w = snprintf(summary + used, sizeof(summary) - used, "%s%s %s", i ? ", " : "", a,
                         msg_dialback_outcome_str(out[i].outcome));
        if (w > 0 && (size_t)w < sizeof(summary) - used)
            used += (size_t)w;
        if (out[i].outcome == MSG_DIALBACK_OK)
            proved[ok++] = out[i].addr;
    }
    if (p != NULL && !sn_conn_set_addr_list(&p->verified, &p->n_verified, proved, ok))
        log_error("sn", "%s: out of memory keeping its proved addresses", link_name(p->link));
    d->counters.dialbacks++;
    d->counters.dialbacks_ok += ok > 0;
    if (p != NULL) {
        log_info("sn", "%s: dial-back: %s", link_name(p->link), summary);
        struct msg m = {.type = MSG_DIALBACK_RESULT};
        m.u.dialback_result = (struct msg_dialback_result){db->nonce, out, db->n};
        link_send(p->link, &m);
        dbconn(p)->running = NULL;
    }
    db->asker = NULL;
}

/* A probe knows its outcome; once all do, the peer is told. The struct
 * lives on until the last probe link is gone (an opened probe is closed at
 * once but frees itself from the loop). */
static void maybe_finish(struct sn_dialback *db)
{
    if (db->running == 0 && !db->reported) {
        db->reported = true;
        report(db);
    }
    if (db->running == 0 && db->links == 0) {
        dialback_unlink(db);
        free(db);
    }
}

static void probe_done(struct probe *pr, uint8_t outcome)
{
    struct sn_dialback *db = pr->db;
    if (pr->outcome == 0) {
        pr->outcome = outcome;
        db->running--;
    }
    maybe_finish(db);
}

static void on_probe_opened(struct link *l, void *arg)
{
    struct probe *pr = arg;
    link_close(l, 0, NULL);
    probe_done(pr, MSG_DIALBACK_OK);
}

static void on_probe_message(struct link *l, const struct msg *m, void *arg)
{
    (void)l, (void)m, (void)arg; /* nothing is expected; the link closes */
}

static void on_probe_closed(struct link *l, int why, void *arg)
{
    struct probe *pr = arg;
    (void)l;
    pr->link = NULL;
    pr->db->links--;
    probe_done(pr, outcome_of(why));
}

static const struct link_hooks probe_hooks = {
    .opened = on_probe_opened,
    .message = on_probe_message,
    .closed = on_probe_closed,
};

static void probe_start(struct sn_ctx *d, struct probe *pr, const uint8_t peer_id[WIRE_ID_LEN])
{
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(&pr->addr, &ss);
    SSL *ssl = NULL;
    if (len == 0 || tls_ctx_client(d->tls, TLS_EXPECT_PEER_ID, peer_id, &ssl) != 0) {
        pr->outcome = MSG_DIALBACK_NOT_TRIED;
        return;
    }
    pr->link = link_connect(evloop_base(d->loop), (struct sockaddr *)&ss, len, ssl, &pr->db->params,
                            &probe_hooks, pr);
    if (pr->link == NULL) {
        pr->outcome = MSG_DIALBACK_REFUSED;
        return;
    }
    pr->db->running++;
    pr->db->links++;
}

void sn_dialback_on_request(struct sn_ctx *d, struct sn_conn *p, const struct msg *msg)
{
    const struct msg_dialback *q = &msg->u.dialback;
    uint64_t now = link_now_ms();
    if (p->ext[SN_EXT_DIALBACK] == NULL &&
        (p->ext[SN_EXT_DIALBACK] = calloc(1, sizeof(struct db_conn))) == NULL) {
        link_send_error(p->link, MSG_ERR_INTERNAL, MSG_DIALBACK, "out of memory");
        return;
    }
    struct db_conn *dc = dbconn(p);
    if (dc->running != NULL || (dc->last_ms != 0 && now - dc->last_ms < SN_DIALBACK_INTERVAL_MS)) {
        struct msg m = {.type = MSG_ERROR};
        m.u.error = (struct msg_error){.code = MSG_ERR_RATE_LIMITED,
                                       .offending_type = MSG_DIALBACK,
                                       .text = wire_str_from("one dial-back at a time"),
                                       .has_retry_after = true,
                                       .retry_after_ms = SN_DIALBACK_INTERVAL_MS};
        link_send(p->link, &m);
        return;
    }
    struct sn_dialback *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        link_send_error(p->link, MSG_ERR_INTERNAL, MSG_DIALBACK, "out of memory");
        return;
    }
    dc->last_ms = now;
    dc->running = db;
    db->d = d;
    db->next = d->dialbacks->running;
    d->dialbacks->running = db;
    db->asker = p;
    db->nonce = q->nonce;
    memcpy(db->peer_id, p->id, WIRE_ID_LEN);
    db->params = d->link_params;
    db->params.group = NULL;    /* not an attached connection: no sweeps, no status */
    db->params.counters = NULL; /* its outcomes are counted as dial-backs, not handshakes */
    db->params.handshake_timeout_ms = (unsigned)d->s->dialback_timeout_ms;
    const struct wire_addr *seen = link_remote_addr(p->link);
    db->n = q->n_addrs < WIRE_MAX_ADDRS ? q->n_addrs : WIRE_MAX_ADDRS;
    db->running = 1; /* held until every probe has started */
    for (size_t i = 0; i < db->n; i++) {
        struct probe *pr = &db->probes[i];
        pr->db = db;
        pr->addr = q->addrs[i];
        if (!wire_addr_same_ip(&pr->addr, seen))
            pr->outcome = MSG_DIALBACK_NOT_TRIED;
        else
            probe_start(d, pr, db->peer_id);
    }
    db->running--;
    maybe_finish(db);
}

void sn_dialback_conn_gone(struct sn_ctx *d, struct sn_conn *p)
{
    (void)d;
    struct db_conn *dc = dbconn(p);
    if (dc != NULL && dc->running != NULL)
        dc->running->asker = NULL;
    if (dc != NULL)
        dc->running = NULL;
}

uint8_t sn_dialback_reachability(const struct sn_conn *p)
{
    if (p->claimed_reach == MSG_REACH_UNKNOWN || p->claimed_reach == MSG_REACH_UNREACHABLE)
        return p->claimed_reach;
    for (size_t i = 0; i < p->n_verified; i++)
        for (size_t j = 0; j < p->n_addrs; j++)
            if (wire_addr_equal(&p->verified[i], &p->addrs[j]))
                return p->claimed_reach;
    return MSG_REACH_UNREACHABLE;
}

int sn_dialback_start(struct sn_ctx *d)
{
    d->dialbacks = calloc(1, sizeof(*d->dialbacks));
    d->ext_free[SN_EXT_DIALBACK] = dbconn_free;
    return d->dialbacks ? 0 : SOVA_ERR_NOMEM;
}

void sn_dialback_stop(struct sn_ctx *d)
{
    if (d->dialbacks == NULL)
        return;
    while (d->dialbacks->running != NULL) {
        struct sn_dialback *db = d->dialbacks->running;
        d->dialbacks->running = db->next;
        if (db->asker != NULL && dbconn(db->asker) != NULL)
            dbconn(db->asker)->running = NULL;
        for (size_t i = 0; i < db->n; i++)
            link_free_now(db->probes[i].link);
        free(db);
    }
    free(d->dialbacks);
    d->dialbacks = NULL;
}
