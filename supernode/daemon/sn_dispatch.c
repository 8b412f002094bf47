/* sn_dispatch.c - where the supernode's features meet: the hooks of every
 * link, a table that routes each message type to the feature serving it
 * (from peers and from supernodes), and the events one feature raises for
 * others (a link closing, a supernode link up, a member gone). Features
 * never call each other back; the daemon wires them here. */
#define SOVA_SN_DAEMON_INTERNAL
#include "err.h"
#include "log.h"
#include "sn_accept.h"
#include "sn_attach.h"
#include "sn_connect.h"
#include "sn_credit_net.h"
#include "sn_daemon_int.h"
#include "sn_dialback.h"
#include "sn_punch.h"
#include "sn_relay.h"
#include "sn_search.h"

#include <string.h>

/* ---- messages ---------------------------------------------------------------------------- */

typedef void sn_msg_fn(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);

struct route {
    sn_msg_fn *from_peer; /* on an ordinary peer's link */
    sn_msg_fn *from_sn;   /* on a supernode link */
};

/* Every message a supernode serves, by type; the RELAY_* family goes to
 * relay/ from either side. Anything else closes the link. */
static const struct route routes[256] = {
    [MSG_REGISTER] = {sn_attach_on_register, NULL},
    [MSG_PUBLISH] = {sn_attach_on_publish, NULL},
    [MSG_REPORT] = {sn_credit_on_report, NULL},
    [MSG_SEARCH] = {sn_search_on_search, NULL},
    [MSG_LOCATE] = {sn_search_on_locate, NULL},
    [MSG_DIALBACK] = {sn_dialback_on_request, NULL},
    [MSG_CONNECT] = {sn_connect_on_connect, NULL},
    [MSG_PUNCH] = {sn_punch_on_punch, NULL},
    [MSG_RECEIPTS] = {sn_credit_on_peer_message, NULL},
    [MSG_CREDIT] = {sn_credit_on_peer_message, NULL},
    [MSG_GOSSIP] = {NULL, sn_membership_on_gossip},
    [MSG_FWD_CONNECT] = {NULL, sn_connect_on_forwarded},
    [MSG_FWD_PUNCH] = {NULL, sn_punch_on_forwarded},
    [MSG_SUMMARY] = {NULL, sn_search_on_fed_message},
    [MSG_FWD_SEARCH] = {NULL, sn_search_on_fed_message},
    [MSG_FWD_HITS] = {NULL, sn_search_on_fed_message},
    [MSG_FWD_LOCATE] = {NULL, sn_search_on_fed_message},
    [MSG_FWD_LOCATE_RESULT] = {NULL, sn_search_on_fed_message},
    [MSG_LEDGER_QUERY] = {NULL, sn_credit_on_fed_message},
    [MSG_LEDGER_ANSWER] = {NULL, sn_credit_on_fed_message},
    [MSG_LEDGER_UPDATE] = {NULL, sn_credit_on_fed_message},
    [MSG_LEDGER_UPTIME] = {NULL, sn_credit_on_fed_message},
    [MSG_LEDGER_PUT] = {NULL, sn_credit_on_fed_message},
};

static void on_fed_message(struct sn_conn *c, const struct msg *m)
{
    if (msg_type_family(m->type) == MSG_FAMILY_RELAY) {
        sn_relay_on_message(c->ctx, c, m); /* the SN<->SN leg of a circuit */
        return;
    }
    if (routes[m->type].from_sn != NULL) {
        routes[m->type].from_sn(c->ctx, c, m);
        return;
    }
    log_warn("fed", "%s: sent %s, which supernode links do not carry", link_name(c->link),
             msg_type_name(m->type));
    link_close_about(c->link, MSG_ERR_PROTOCOL, m->type, "not served on supernode links");
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct sn_conn *c = arg;
    if (m->type == MSG_ERROR)
        return;
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE) {
        on_fed_message(c, m);
        return;
    }
    if (m->type != MSG_REGISTER && !c->indexed) {
        link_send_error(l, MSG_ERR_NOT_ATTACHED, m->type, "REGISTER first");
        return;
    }
    if (msg_type_family(m->type) == MSG_FAMILY_RELAY) {
        sn_relay_on_message(c->ctx, c, m);
        return;
    }
    if (routes[m->type].from_peer != NULL) {
        routes[m->type].from_peer(c->ctx, c, m);
        return;
    }
    /* valid, but not for a supernode (e.g. GOSSIP from a peer): ERROR 100, closed */
    link_send_error(l, MSG_ERR_PROTOCOL, m->type, "not served by this supernode");
    link_close(l, 0, NULL);
}

/* ---- events for the features ------------------------------------------------------------- */

/* What each feature is told besides its messages; called in this order. */
struct feature {
    /* a link is closing: drop what refers to it */
    void (*conn_gone)(struct sn_ctx *ctx, struct sn_conn *c);
    /* a supernode link came up */
    void (*link_up)(struct sn_ctx *ctx, struct sn_conn *c);
    /* a member is dead or left */
    void (*member_gone)(struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN]);
    /* the membership changed in any way */
    void (*members_changed)(struct sn_ctx *ctx);
};

static const struct feature features[] = {
    {.conn_gone = sn_search_conn_gone,
     .link_up = sn_search_link_up,
     .member_gone = sn_search_forget},
    {.conn_gone = sn_dialback_conn_gone},
    {.conn_gone = sn_connect_conn_gone},
    {.conn_gone = sn_relay_conn_gone},
    {.conn_gone = sn_credit_conn_gone,
     .link_up = sn_credit_link_up,
     .members_changed = sn_credit_membership_changed},
};
#define N_FEATURES (sizeof(features) / sizeof(features[0]))

static void on_fed_link_up(void *arg, struct sn_conn *c, const struct wire_addr *listen, size_t n)
{
    struct sn_daemon *d = arg;
    /* It dials from, and is dialed at, these: its handshakes take the
     * reserved slots there (federation-handshakes). */
    link_budget_trust(d->ctx.budget, link_remote_addr(c->link));
    for (size_t i = 0; i < n; i++)
        link_budget_trust(d->ctx.budget, &listen[i]);
    sn_membership_link_up(&d->ctx, c, listen, n);
    for (size_t i = 0; i < N_FEATURES; i++)
        if (features[i].link_up != NULL)
            features[i].link_up(&d->ctx, c);
    sn_membership_changed(&d->ctx);
}

static void on_fed_link_down(void *arg, struct sn_conn *c)
{
    struct sn_daemon *d = arg;
    sn_membership_link_down(&d->ctx, c);
    sn_membership_changed(&d->ctx);
}

static void on_fed_changed(void *arg)
{
    struct sn_daemon *d = arg;
    sn_membership_changed(&d->ctx);
}

static void on_seed_contacted(void *arg)
{
    sn_service_check_ready(arg);
}

struct sn_fed_links_hooks sn_dispatch_fed_links_hooks(struct sn_daemon *d)
{
    return (struct sn_fed_links_hooks){.arg = d,
                                       .link_up = on_fed_link_up,
                                       .link_down = on_fed_link_down,
                                       .changed = on_fed_changed,
                                       .seed_contacted = on_seed_contacted};
}

static void on_member_state(void *arg, const uint8_t id[WIRE_ID_LEN], uint8_t prev, uint8_t state)
{
    struct sn_daemon *d = arg;
    (void)prev;
    for (size_t i = 0; i < N_FEATURES; i++) {
        if (features[i].member_gone != NULL && state != MSG_SN_ALIVE && state != MSG_SN_SUSPECT)
            features[i].member_gone(&d->ctx, id);
        if (features[i].members_changed != NULL)
            features[i].members_changed(&d->ctx);
    }
}

static uint32_t relay_kbps(void *arg)
{
    struct sn_daemon *d = arg;
    return d->ctx.relay ? sn_relay_kbps(&d->ctx) : 0;
}

/* Search ranks sources it may not ask credit about itself (credit is above
 * search): whether others' receipts verified a source's uploads. */
static bool source_verified(void *arg, const uint8_t peer_id[WIRE_ID_LEN])
{
    struct sn_daemon *d = arg;
    return sn_credit_source_verified(&d->ctx, peer_id);
}

struct sn_search_hooks sn_dispatch_search_hooks(struct sn_daemon *d)
{
    return (struct sn_search_hooks){.arg = d, .verified = source_verified};
}

struct sn_membership_hooks sn_dispatch_membership_hooks(struct sn_daemon *d)
{
    return (struct sn_membership_hooks){
        .arg = d, .member_state = on_member_state, .relay_kbps = relay_kbps};
}

/* ---- the link hooks ---------------------------------------------------------------------- */

static void on_opened(struct link *l, void *arg)
{
    struct sn_conn *c = arg;
    struct sn_ctx *ctx = c->ctx;
    memcpy(c->id, link_peer(l)->id, WIRE_ID_LEN);
    sn_accept_handshake_done(ctx, c);
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE) {
        link_set_max_frames(l, 0); /* the federation's own traffic is not rate-limited */
        link_budget_trust(ctx->budget, link_remote_addr(l)); /* it showed a federation cert */
        ctx->n_supernodes++;
        sn_fed_links_opened(ctx, c);
        return;
    }
    if (sn_fed_links_dialed(c)) { /* we dialed a supernode and a peer answered */
        link_close(l, MSG_ERR_PROTOCOL, "expected a supernode");
        return;
    }
    ctx->n_peers++;
    sn_accept_opened(ctx, c); /* it waits for its REGISTER, within max-unregistered */
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct sn_conn *c = arg;
    struct sn_ctx *ctx = c->ctx;
    uint8_t role = link_remote_role(l);
    const char *reason = why ? sova_err_str(why) : "closed";
    sn_accept_conn_gone(ctx, c);
    for (size_t i = 0; i < N_FEATURES; i++)
        features[i].conn_gone(ctx, c);
    if (role == MSG_ROLE_PEER) {
        ctx->n_peers--;
        size_t files = sn_attach_conn_gone(ctx, c);
        log_info("sn", "%s: peer left (%s), %zu files leave the index", link_name(l), reason,
                 files);
    } else if (role == MSG_ROLE_SUPERNODE) {
        ctx->n_supernodes--;
        log_info("sn", "%s: disconnected (%s)", link_name(l), reason);
    } /* else it never opened: link.c logged that (within its budget) and counted it */
    sn_fed_links_closed(ctx, c); /* (nothing for a link it neither dialed nor took up) */
    ctx->counters.bytes_in_closed += link_bytes_in(l);
    ctx->counters.bytes_out_closed += link_bytes_out(l);
    sn_conn_free(c);
}

static void on_drained(struct link *l, void *arg)
{
    struct sn_conn *c = arg;
    (void)l;
    sn_relay_conn_drained(c->ctx, c);
}

static void on_pinged(struct link *l, void *arg)
{
    struct sn_conn *c = arg;
    (void)l;
    sn_attach_pinged(c->ctx, c);
}

static const struct link_hooks hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .drained = on_drained,
    .pinged = on_pinged,
};

const struct link_hooks *sn_dispatch_link_hooks(void)
{
    return &hooks;
}
