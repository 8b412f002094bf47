/* sn_membership.c - what the federation does with its supernode links:
 * SWIM membership (sn_member.c) driven by the links and a timer, the SN_LIST
 * peers are given, and turning peers away when full (sn_membership.h).
 * Routed search is in search/sn_search.c. */
#include "sn_membership.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sn_fed_links.h"
#include "sn_member.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SN_LIST_MAX          64  /* supernodes named in one SN_LIST */
#define SN_ANNOUNCE_DELAY_MS 500 /* gather federation changes before telling peers */
#define SN_LEAVE_FLUSH_MS    300 /* time given to the LEFT announcement to go out */

struct sn_membership {
    struct sn_ctx *ctx;
    struct sn_membership_hooks hooks;
    struct sn_member *member;                /* SWIM membership */
    struct event *tick;                      /* membership timers */
    struct event *announce;                  /* debounced SN_LIST to every attached peer */
    uint64_t gossip_sent, gossip_bytes_sent; /* GOSSIP frames to supernodes, their bytes */
};

static const char *state_name(uint8_t state)
{
    switch (state) {
    case MSG_SN_ALIVE:
        return "alive";
    case MSG_SN_SUSPECT:
        return "suspect";
    case MSG_SN_DEAD:
        return "dead";
    case MSG_SN_LEFT:
        return "left";
    default:
        return "gone";
    }
}

static void schedule_tick(struct sn_membership *ms)
{
    uint64_t due = sn_member_next_deadline(ms->member);
    if (due == UINT64_MAX)
        return;
    uint64_t now = link_now_ms();
    sn_timer_ms(ms->tick, due > now ? due - now : 0);
}

/* Carry out what the membership module asked for. */
static void drain(struct sn_membership *ms)
{
    struct sn_ctx *ctx = ms->ctx;
    struct sn_member_out out;
    while (sn_member_next_output(ms->member, &out)) {
        switch (out.kind) {
        case SN_MEMBER_SEND: {
            struct msg m = {.type = MSG_GOSSIP};
            m.u.gossip = out.msg;
            struct sn_conn *c = sn_fed_link(ctx, out.id);
            if (c == NULL)
                break;
            uint64_t before = link_bytes_out(c->link);
            link_send(c->link, &m);
            ms->gossip_sent++; /* status "gossip": its cost per supernode */
            ms->gossip_bytes_sent += link_bytes_out(c->link) - before;
            break;
        }
        case SN_MEMBER_CONNECT:
            sn_fed_dial_addrs(ctx, out.id, out.addrs, out.n_addrs);
            break;
        case SN_MEMBER_STATE: {
            char id[NODE_ID_SHORT_LEN + 1];
            log_info("fed", "member %s: %s -> %s (incarnation %llu)", sn_short_id(out.id, id),
                     state_name(out.prev_state), state_name(out.state),
                     (unsigned long long)out.incarnation);
            sn_membership_changed(ctx);
            if (ms->hooks.member_state != NULL)
                ms->hooks.member_state(ms->hooks.arg, out.id, out.prev_state, out.state);
            break;
        }
        }
    }
    schedule_tick(ms);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_membership *ms = arg;
    struct sn_ctx *ctx = ms->ctx;
    (void)fd;
    (void)what;
    uint32_t kbps = ms->hooks.relay_kbps ? ms->hooks.relay_kbps(ms->hooks.arg) : 0;
    sn_member_set_load(ms->member, (uint32_t)ctx->n_primary, (uint32_t)ctx->s->max_peers, kbps);
    sn_member_tick(ms->member, link_now_ms());
    drain(ms);
}

int sn_membership_start(struct sn_ctx *ctx, const struct sn_membership_hooks *hooks)
{
    struct sn_membership *ms = calloc(1, sizeof(*ms));
    if (ms == NULL)
        return SOVA_ERR_NOMEM;
    ms->ctx = ctx;
    ms->hooks = *hooks;
    ctx->membership = ms;
    struct sn_member_config cfg = sn_member_config_default();
    memcpy(cfg.self_id, identity_id(ctx->id), WIRE_ID_LEN);
    if (ctx->has_self_addr) {
        cfg.self_addrs[0] = ctx->self_addr;
        cfg.n_self_addrs = 1;
    }
    /* Nothing is persisted: the wall clock makes a restart's incarnation
     * beat the previous run's (docs/FEDERATION.md). */
    cfg.incarnation = sova_wall_ms();
    if (RAND_bytes((unsigned char *)&cfg.seed, sizeof(cfg.seed)) != 1)
        return SOVA_ERR_CRYPTO;
    ms->member = sn_member_new(&cfg);
    ms->tick = evtimer_new(evloop_base(ctx->loop), on_tick, ms);
    if (ms->member == NULL || ms->tick == NULL)
        return SOVA_ERR_NOMEM;
    schedule_tick(ms);
    return 0;
}

void sn_membership_leave(struct sn_ctx *ctx)
{
    struct sn_membership *ms = ctx->membership;
    size_t links = sn_fed_links_count(ctx);
    if (ms == NULL || ms->member == NULL || links == 0)
        return;
    sn_member_leave(ms->member, link_now_ms());
    drain(ms);
    log_info("fed", "leaving the federation: told %zu supernodes", links);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SN_LEAVE_FLUSH_MS * 1000};
    event_base_loopexit(evloop_base(ctx->loop), &tv);
    event_base_dispatch(evloop_base(ctx->loop));
}

void sn_membership_stop(struct sn_ctx *ctx)
{
    struct sn_membership *ms = ctx->membership;
    if (ms == NULL)
        return;
    if (ms->tick)
        event_free(ms->tick);
    if (ms->announce)
        event_free(ms->announce);
    sn_member_free(ms->member);
    free(ms);
    ctx->membership = NULL;
}

void sn_membership_link_up(struct sn_ctx *ctx, struct sn_conn *c, const struct wire_addr *listen,
                           size_t n)
{
    struct sn_membership *ms = ctx->membership;
    sn_member_link_up(ms->member, link_now_ms(), c->id, listen, n);
    drain(ms);
}

void sn_membership_link_down(struct sn_ctx *ctx, struct sn_conn *c)
{
    struct sn_membership *ms = ctx->membership;
    sn_member_link_down(ms->member, link_now_ms(), c->id);
    drain(ms);
}

void sn_membership_on_gossip(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m)
{
    struct sn_membership *ms = ctx->membership;
    sn_member_receive(ms->member, link_now_ms(), c->id, &m->u.gossip);
    drain(ms);
}

size_t sn_membership_count(const struct sn_ctx *ctx)
{
    return ctx->membership ? sn_member_count(ctx->membership->member) : 0;
}

size_t sn_membership_live(const struct sn_ctx *ctx, uint8_t (*out)[WIRE_ID_LEN], size_t cap,
                          bool linked_only)
{
    size_t n = 0;
    struct sn_member_view v;
    for (size_t i = 0; n < cap && sn_member_get(ctx->membership->member, i, &v); i++)
        if ((v.info.state == MSG_SN_ALIVE || v.info.state == MSG_SN_SUSPECT) &&
            (!linked_only || sn_fed_link(ctx, v.info.sn_id) != NULL))
            memcpy(out[n++], v.info.sn_id, WIRE_ID_LEN);
    return n;
}

void sn_membership_gossip_stats(const struct sn_ctx *ctx, uint64_t *messages, uint64_t *bytes)
{
    *messages = ctx->membership->gossip_sent;
    *bytes = ctx->membership->gossip_bytes_sent;
}

/* Fill entries with the federation: this supernode, then every alive member
 * whose addresses are known. Returns how many. */
static size_t collect_supernodes(const struct sn_ctx *ctx, struct msg_sn_info *entries, size_t cap)
{
    const struct sn_member *member = ctx->membership->member;
    size_t n = 0;
    struct sn_member_view v;
    sn_member_self(member, &v);
    entries[n] = v.info;
    entries[n].attached_peers = (uint32_t)ctx->n_primary;
    entries[n].capacity = (uint32_t)ctx->s->max_peers;
    n++;
    for (size_t i = 0; n < cap && sn_member_get(member, i, &v); i++)
        if (v.info.state == MSG_SN_ALIVE && v.info.n_addrs > 0)
            entries[n++] = v.info;
    return n;
}

void sn_membership_send_sn_list(struct sn_ctx *ctx, struct sn_conn *c)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct msg m = {.type = MSG_SN_LIST};
    m.u.sn_list.entries = entries;
    m.u.sn_list.n_entries = collect_supernodes(ctx, entries, SN_LIST_MAX);
    c->told_load = (uint32_t)ctx->n_primary;
    link_send(c->link, &m);
}

void sn_membership_send_overloaded(struct sn_ctx *ctx, struct sn_conn *c)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct wire_addr redirect[WIRE_MAX_ADDRS];
    size_t n = collect_supernodes(ctx, entries, SN_LIST_MAX), k = 0;
    for (size_t i = 1; i < n && k < WIRE_MAX_ADDRS; i++) /* not ourselves */
        if (entries[i].attached_peers < entries[i].capacity || entries[i].capacity == 0)
            redirect[k++] = entries[i].addrs[0];
    struct msg m = {.type = MSG_ERROR};
    m.u.error.code = MSG_ERR_OVERLOADED;
    m.u.error.offending_type = MSG_REGISTER;
    m.u.error.text = wire_str_from("this supernode is full; try another");
    m.u.error.has_redirect = k > 0;
    m.u.error.redirect = redirect;
    m.u.error.n_redirect = k;
    link_send(c->link, &m);
    link_close(c->link, 0, NULL);
}

static void on_announce(evutil_socket_t fd, short what, void *arg)
{
    struct sn_ctx *ctx = arg;
    (void)fd;
    (void)what;
    for (struct link *l = link_group_first(&ctx->links); l; l = link_group_next(l)) {
        struct sn_conn *c = link_arg(l);
        if (c->registered && link_remote_role(l) == MSG_ROLE_PEER)
            sn_membership_send_sn_list(ctx, c);
    }
}

void sn_membership_changed(struct sn_ctx *ctx)
{
    struct sn_membership *ms = ctx->membership;
    if (ms == NULL)
        return;
    if (ms->announce == NULL)
        ms->announce = evtimer_new(evloop_base(ctx->loop), on_announce, ctx);
    if (ms->announce == NULL || evtimer_pending(ms->announce, NULL))
        return;
    sn_timer_ms(ms->announce, SN_ANNOUNCE_DELAY_MS);
}

json_t *sn_membership_json(const struct sn_ctx *ctx)
{
    json_t *list = json_array();
    uint64_t now = link_now_ms();
    struct sn_member_view v;
    for (size_t i = 0; sn_member_get(ctx->membership->member, i, &v); i++) {
        char id[NODE_ID_STR_LEN + 1], addr[64] = "-";
        node_id_format(v.info.sn_id, id);
        if (v.info.n_addrs)
            wire_addr_format(&v.info.addrs[0], addr, sizeof(addr));
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "id", id, "address", addr,
                      "state", state_name(v.info.state), "incarnation",
                      (json_int_t)v.info.incarnation, "peers", (json_int_t)v.info.attached_peers,
                      "capacity", (json_int_t)v.info.capacity, "last_heard_ms_ago",
                      v.last_heard_ms ? (json_int_t)(now - v.last_heard_ms) : (json_int_t)-1,
                      "linked", v.linked));
    }
    return list;
}
