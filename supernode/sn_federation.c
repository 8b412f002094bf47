/* sn_federation.c - what the federation does with its supernode links.
 * (Membership gossip, summaries and forwarded search plug in here.) */
#include "log.h"
#include "sn_internal.h"

#include <string.h>

#define SN_LIST_MAX          64  /* supernodes named in one SN_LIST */
#define SN_ANNOUNCE_DELAY_MS 500 /* gather federation changes before telling peers */

void sn_fed_hook_link_up(struct sn_daemon *d, struct sn_peer *p, const struct wire_addr *addr,
                         size_t n_addr)
{
    (void)d;
    (void)p;
    (void)addr;
    (void)n_addr;
}

void sn_fed_hook_link_down(struct sn_daemon *d, struct sn_peer *p)
{
    (void)d;
    log_info("fed", "%s: supernode link down", link_name(p->link));
}

void sn_fed_hook_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m)
{
    (void)d;
    if (m->type != MSG_ERROR)
        link_send_error(p->link, MSG_ERR_PROTOCOL, m->type, "not served on supernode links yet");
}

/* Fill entries with what we know of the federation: this supernode, then
 * the others (their addresses and load). Returns how many. */
static size_t collect_supernodes(const struct sn_daemon *d, struct msg_sn_info *entries,
                                 struct wire_addr *addrs, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    struct msg_sn_info *self = &entries[n++];
    memset(self, 0, sizeof(*self));
    memcpy(self->sn_id, identity_id(d->id), WIRE_ID_LEN);
    self->state = MSG_SN_ALIVE;
    self->attached_peers = (uint32_t)d->n_primary;
    self->capacity = (uint32_t)d->s->max_peers;
    if (d->has_self_addr) {
        addrs[0] = d->self_addr;
        self->addrs = &addrs[0];
        self->n_addrs = 1;
    }
    for (size_t i = 0; i < d->fed.n_links && n < cap; i++) {
        const struct sn_peer *p = d->fed.links[i];
        if (!p->has_listen_addr)
            continue; /* its listening address comes with gossip */
        struct msg_sn_info *e = &entries[n];
        memset(e, 0, sizeof(*e));
        memcpy(e->sn_id, p->id, WIRE_ID_LEN);
        e->state = MSG_SN_ALIVE;
        addrs[n] = p->listen_addr;
        e->addrs = &addrs[n];
        e->n_addrs = 1;
        n++;
    }
    return n;
}

void sn_fed_send_sn_list(struct sn_daemon *d, struct sn_peer *p)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct wire_addr addrs[SN_LIST_MAX];
    struct msg m = {.type = MSG_SN_LIST};
    m.u.sn_list.entries = entries;
    m.u.sn_list.n_entries = collect_supernodes(d, entries, addrs, SN_LIST_MAX);
    link_send(p->link, &m);
}

void sn_fed_send_overloaded(struct sn_daemon *d, struct sn_peer *p)
{
    struct msg_sn_info entries[SN_LIST_MAX];
    struct wire_addr addrs[SN_LIST_MAX], redirect[WIRE_MAX_ADDRS];
    size_t n = collect_supernodes(d, entries, addrs, SN_LIST_MAX), k = 0;
    for (size_t i = 1; i < n && k < WIRE_MAX_ADDRS; i++) /* not ourselves */
        if (entries[i].n_addrs)
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
