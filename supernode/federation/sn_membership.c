/* sn_membership.c - what the federation does with its supernode links:
 * SWIM membership (sn_member.c) driven by the links and a timer, the SN_LIST
 * peers are given, and turning peers away when full. Routed search is in
 * sn_search.c. */
#include "err.h"
#include "log.h"
#include "sn_ctx.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#define SN_LIST_MAX          64  /* supernodes named in one SN_LIST */
#define SN_ANNOUNCE_DELAY_MS 500 /* gather federation changes before telling peers */
#define SN_LEAVE_FLUSH_MS    300 /* time given to the LEFT announcement to go out */

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

static void schedule_tick(struct sn_daemon *d)
{
    uint64_t due = sn_member_next_deadline(d->fed.member);
    if (due == UINT64_MAX)
        return;
    uint64_t now = link_now_ms();
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->fed.tick, &tv);
}

/* Carry out what the membership module asked for. */
static void drain(struct sn_daemon *d)
{
    struct sn_member_out out;
    while (sn_member_next_output(d->fed.member, &out)) {
        switch (out.kind) {
        case SN_MEMBER_SEND: {
            struct msg m = {.type = MSG_GOSSIP};
            m.u.gossip = out.msg;
            struct sn_peer *p = sn_fed_link(d, out.id);
            if (p == NULL)
                break;
            uint64_t before = link_bytes_out(p->link);
            link_send(p->link, &m);
            d->counters.gossip_sent++; /* status "gossip": its cost per supernode */
            d->counters.gossip_bytes_sent += link_bytes_out(p->link) - before;
            break;
        }
        case SN_MEMBER_CONNECT:
            sn_fed_dial_addrs(d, out.id, out.addrs, out.n_addrs);
            break;
        case SN_MEMBER_STATE: {
            char id[NODE_ID_STR_LEN + 1];
            node_id_format(out.id, id);
            log_info("fed", "member %.*s: %s -> %s (incarnation %llu)", NODE_ID_SHORT_LEN, id,
                     state_name(out.prev_state), state_name(out.state),
                     (unsigned long long)out.incarnation);
            if (out.state != MSG_SN_ALIVE && out.state != MSG_SN_SUSPECT)
                sn_search_forget(d, out.id);
            sn_fed_changed(d);
            sn_credit_membership_changed(d); /* credit records move with it */
            break;
        }
        }
    }
    schedule_tick(d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_daemon *d = arg;
    (void)fd;
    (void)what;
    sn_member_set_load(d->fed.member, (uint32_t)d->n_primary, (uint32_t)d->s->max_peers,
                       sn_relay_kbps(d));
    sn_member_tick(d->fed.member, link_now_ms());
    drain(d);
}

int sn_federation_start(struct sn_daemon *d)
{
    struct sn_member_config cfg = sn_member_config_default();
    memcpy(cfg.self_id, identity_id(d->id), WIRE_ID_LEN);
    if (d->has_self_addr) {
        cfg.self_addrs[0] = d->self_addr;
        cfg.n_self_addrs = 1;
    }
    /* Nothing is persisted: the wall clock makes a restart's incarnation
     * beat the previous run's (docs/FEDERATION.md). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cfg.incarnation = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (RAND_bytes((unsigned char *)&cfg.seed, sizeof(cfg.seed)) != 1)
        return SOVA_ERR_CRYPTO;
    d->fed.member = sn_member_new(&cfg);
    d->fed.tick = evtimer_new(evloop_base(d->loop), on_tick, d);
    if (d->fed.member == NULL || d->fed.tick == NULL)
        return SOVA_ERR_NOMEM;
    schedule_tick(d);
    return 0;
}

/* SIGTERM: tell the others we leave (LEFT, not dead), give it a moment. */
void sn_federation_leave(struct sn_daemon *d)
{
    if (d->fed.member == NULL || d->fed.n_links == 0)
        return;
    sn_member_leave(d->fed.member, link_now_ms());
    drain(d);
    log_info("fed", "leaving the federation: told %zu supernodes", d->fed.n_links);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SN_LEAVE_FLUSH_MS * 1000};
    event_base_loopexit(evloop_base(d->loop), &tv);
    event_base_dispatch(evloop_base(d->loop));
}

void sn_federation_stop(struct sn_daemon *d)
{
    if (d->fed.tick)
        event_free(d->fed.tick);
    d->fed.tick = NULL;
    sn_member_free(d->fed.member);
    d->fed.member = NULL;
}

void sn_fed_hook_link_up(struct sn_daemon *d, struct sn_peer *p, const struct wire_addr *addr,
                         size_t n_addr)
{
    sn_member_link_up(d->fed.member, link_now_ms(), p->id, addr, n_addr);
    drain(d);
    sn_search_link_up(d, p);
    sn_credit_link_up(d, p);
}

void sn_fed_hook_link_down(struct sn_daemon *d, struct sn_peer *p)
{
    log_info("fed", "%s: supernode link down", link_name(p->link));
    sn_member_link_down(d->fed.member, link_now_ms(), p->id);
    drain(d);
}

void sn_fed_hook_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m)
{
    if (msg_type_family(m->type) == MSG_FAMILY_RELAY) {
        sn_relay_message(d, p, m); /* the SN<->SN leg of a circuit */
        return;
    }
    switch (m->type) {
    case MSG_GOSSIP:
        sn_member_receive(d->fed.member, link_now_ms(), p->id, &m->u.gossip);
        drain(d);
        return;
    case MSG_ERROR:
        return;
    case MSG_FWD_CONNECT:
        sn_connect_forwarded(d, p, &m->u.fwd_connect);
        return;
    default:
        if (sn_search_message(d, p, m) || sn_credit_fed_message(d, p, m))
            return;
        log_warn("fed", "%s: sent %s, which supernode links do not carry", link_name(p->link),
                 msg_type_name(m->type));
        link_close(p->link, MSG_ERR_PROTOCOL, "not served on supernode links");
    }
}

/* Fill entries with the federation: this supernode, then every alive member
 * whose addresses are known. Returns how many. */
static size_t collect_supernodes(const struct sn_daemon *d, struct msg_sn_info *entries, size_t cap)
{
    size_t n = 0;
    struct sn_member_view v;
    sn_member_self(d->fed.member, &v);
    entries[n] = v.info;
    entries[n].attached_peers = (uint32_t)d->n_primary;
    entries[n].capacity = (uint32_t)d->s->max_peers;
    n++;
    for (size_t i = 0; n < cap && sn_member_get(d->fed.member, i, &v); i++)
        if (v.info.state == MSG_SN_ALIVE && v.info.n_addrs > 0)
            entries[n++] = v.info;
    return n;
}

void sn_fed_send_sn_list(struct sn_daemon *d, struct sn_peer *p)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct msg m = {.type = MSG_SN_LIST};
    m.u.sn_list.entries = entries;
    m.u.sn_list.n_entries = collect_supernodes(d, entries, SN_LIST_MAX);
    link_send(p->link, &m);
}

void sn_fed_send_overloaded(struct sn_daemon *d, struct sn_peer *p)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct wire_addr redirect[WIRE_MAX_ADDRS];
    size_t n = collect_supernodes(d, entries, SN_LIST_MAX), k = 0;
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
    link_send(p->link, &m);
    link_close(p->link, 0, NULL);
}

static void on_announce(evutil_socket_t fd, short what, void *arg)
{
    struct sn_daemon *d = arg;
    (void)fd;
    (void)what;
    for (struct link *l = link_group_first(&d->links); l; l = link_group_next(l)) {
        struct sn_peer *p = link_arg(l);
        if (p->registered && link_remote_role(l) == MSG_ROLE_PEER)
            sn_fed_send_sn_list(d, p);
    }
}

void sn_fed_changed(struct sn_daemon *d)
{
    if (d->fed.announce == NULL)
        d->fed.announce = evtimer_new(evloop_base(d->loop), on_announce, d);
    if (d->fed.announce == NULL || evtimer_pending(d->fed.announce, NULL))
        return;
    struct timeval tv = {.tv_sec = 0, .tv_usec = SN_ANNOUNCE_DELAY_MS * 1000};
    evtimer_add(d->fed.announce, &tv);
}

json_t *sn_federation_members_json(const struct sn_daemon *d)
{
    json_t *list = json_array();
    uint64_t now = link_now_ms();
    struct sn_member_view v;
    for (size_t i = 0; sn_member_get(d->fed.member, i, &v); i++) {
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
