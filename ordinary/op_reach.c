/* op_reach.c - the peer's reachability (op_reach.h): port mapping, dial-back,
 * and what REGISTER claims. */
#include "op_reach.h"
#include "err.h"
#include "log.h"
#include "nat_announce.h"
#include "nat_path.h"
#include "nat_upnp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_REACH_MAX_LOCAL 16 /* interface addresses looked at */
#define OP_REACH_CLAIM_MAX 4  /* addresses claimed in REGISTER */

struct op_reach {
    struct op_reach_config cfg;
    struct wire_addr listen;
    struct nat_upnp *upnp;
    struct nat_upnp_status map; /* last snapshot */
    bool have_mapped;
    struct wire_addr mapped; /* the router's mapping, when map.state is MAPPED */
    /* the IPv6 firewall pinhole (PCP), for a peer listening on IPv6 */
    struct nat_upnp *upnp6;
    struct nat_upnp_status map6;
    bool have_pinhole;
    struct wire_addr pinhole; /* our global IPv6 address and port, when map6 is MAPPED */
    char pinhole_words[200];
    struct wire_addr observed;
    bool have_observed;
    /* dial-back */
    uint64_t nonce;
    bool asking;         /* a DIALBACK is out */
    bool again;          /* something changed meanwhile: ask again after the answer */
    struct event *timer; /* retry, answer deadline, periodic re-check */
    struct msg_dialback_probe probes[WIRE_MAX_ADDRS];
    size_t n_probes;
    struct nat_reach result;
    bool checked; /* result holds a dial-back's verdict */
    bool fresh;   /* attached to a supernode that has not yet heard a proved claim */
    /* the host's addresses when last looked (op_reach_network_changed) */
    struct wire_addr host[OP_REACH_MAX_LOCAL];
    size_t n_host;
    /* the gateway's announcements (nat_announce.h): SSDP, NAT-PMP */
    evutil_socket_t ann_fd[2];
    struct event *ann_ev[2];
    struct nat_announce ann_last[2]; /* what each said last, and when */
    uint64_t ann_ms[2];
    uint64_t lost_map_ms; /* a dial-back last found our mapping dead (0: never) */
    char mapping_words[200];
    char state_words[420]; /* mapping_words, and pinhole_words when there is a pinhole to keep */
};

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static bool unspecified(const struct wire_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == WIRE_ADDR_IPV4 ? 4 : 16) == 0;
}

static bool is_loopback(const struct wire_addr *a)
{
    static const uint8_t v6_loop[16] = {[15] = 1};
    return (a->family == WIRE_ADDR_IPV4 && a->ip[0] == 127) ||
           (a->family == WIRE_ADDR_IPV6 && memcmp(a->ip, v6_loop, 16) == 0);
}

static bool link_local(const struct wire_addr *a);
static void describe_pinhole(struct op_reach *r);

/* Every interface's address into out, in the order getifaddrs gives them;
 * with host_only, not loopback nor IPv6 link-local. */
static size_t iface_addrs(struct wire_addr *out, size_t cap, bool host_only)
{
    size_t n = 0;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        socklen_t len = i->ifa_addr->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
                        : i->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : 0;
        if (len != 0 && wire_addr_from_sockaddr(&out[n], i->ifa_addr, len) == 0 &&
            (!host_only || (!is_loopback(&out[n]) && !link_local(&out[n]))))
            n++;
    }
    freeifaddrs(ifs);
    return n;
}

/* Our interface addresses, for telling "public" from "forwarded". */
static size_t local_addrs(const struct op_reach *r, struct wire_addr *out, size_t cap)
{
    size_t n = 0;
    if (!unspecified(&r->listen))
        out[n++] = r->listen;
    return n + iface_addrs(out + n, cap - n, false);
}

/* The host's own addresses: every interface's but loopback and IPv6
 * link-local. */
static size_t host_addrs(struct wire_addr *out, size_t cap)
{
    return iface_addrs(out, cap, true);
}

static bool same_set(const struct wire_addr *a, size_t na, const struct wire_addr *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = wire_addr_same_ip(&a[i], &b[j]);
        if (!found)
            return false;
    }
    return true;
}

/* ---- the verdict ------------------------------------------------------------------- */

static void describe_mapping(struct op_reach *r)
{
    const struct nat_upnp_status *m = &r->map;
    if (r->upnp == NULL)
        snprintf(r->mapping_words, sizeof(r->mapping_words), "%s",
                 r->cfg.upnp ? "no port mapping (listening on loopback)"
                             : "no port mapping (upnp = no)");
    else if (m->state == NAT_MAP_MAPPED)
        snprintf(r->mapping_words, sizeof(r->mapping_words), "%s mapping %s:%u",
                 m->method ? m->method : "router", m->external_ip, m->external_port);
    else if (m->state == NAT_MAP_NO_GATEWAY)
        snprintf(r->mapping_words, sizeof(r->mapping_words), "no UPnP or NAT-PMP gateway%s%s",
                 m->error[0] ? ": " : "", m->error);
    else if (m->state == NAT_MAP_FAILED)
        snprintf(r->mapping_words, sizeof(r->mapping_words), "the router refused a mapping: %s",
                 m->error);
    else if (m->state == NAT_MAP_MAPPING)
        snprintf(r->mapping_words, sizeof(r->mapping_words), "asking the router for a mapping");
    else
        snprintf(r->mapping_words, sizeof(r->mapping_words), "port mapping: %s",
                 nat_map_state_str(m->state));
    describe_pinhole(r);
}

static void describe_pinhole(struct op_reach *r)
{
    const struct nat_upnp_status *m = &r->map6;
    if (r->upnp6 == NULL)
        r->pinhole_words[0] = '\0';
    else if (m->state == NAT_MAP_MAPPED)
        snprintf(r->pinhole_words, sizeof(r->pinhole_words), "IPv6 pinhole [%s]:%u by %s",
                 m->external_ip, m->external_port, m->method ? m->method : "router");
    else if (m->state == NAT_MAP_NO_GATEWAY)
        snprintf(r->pinhole_words, sizeof(r->pinhole_words), "no IPv6 pinhole (no PCP router%s%s)",
                 m->error[0] ? ": " : "", m->error);
    else if (m->state == NAT_MAP_FAILED)
        snprintf(r->pinhole_words, sizeof(r->pinhole_words),
                 "the router refused an IPv6 pinhole: %s", m->error);
    else
        snprintf(r->pinhole_words, sizeof(r->pinhole_words), "IPv6 pinhole: %s",
                 nat_map_state_str(m->state));
    snprintf(r->state_words, sizeof(r->state_words), "%s%s%s", r->mapping_words,
             r->pinhole_words[0] ? "; " : "", r->pinhole_words);
}

static bool link_local(const struct wire_addr *a)
{
    return (a->family == WIRE_ADDR_IPV4 && a->ip[0] == 169 && a->ip[1] == 254) ||
           (a->family == WIRE_ADDR_IPV6 && a->ip[0] == 0xfe && (a->ip[1] & 0xc0) == 0x80);
}

/* What REGISTER claims: the proved address first, then where we listen
 * (our interface addresses for a wildcard listener): others on our own
 * network can use those. */
static void claim(struct op_reach *r, bool tell_primary)
{
    struct wire_addr addrs[OP_REACH_CLAIM_MAX], local[OP_REACH_MAX_LOCAL];
    size_t n = 0;
    if (r->result.reach == MSG_REACH_PUBLIC || r->result.reach == MSG_REACH_MAPPED)
        addrs[n++] = r->result.proved;
    /* A specific listen address is the only one we can be reached at. */
    size_t n_local = unspecified(&r->listen) ? local_addrs(r, local, OP_REACH_MAX_LOCAL) : 0;
    if (!unspecified(&r->listen))
        local[n_local++] = r->listen;
    for (size_t i = 0; i < n_local && n < OP_REACH_CLAIM_MAX; i++) {
        struct wire_addr a = local[i];
        a.port = r->listen.port;
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup |= wire_addr_equal(&addrs[j], &a);
        if (!dup && !unspecified(&a) && !link_local(&a) &&
            (!is_loopback(&a) || !unspecified(&r->listen)))
            addrs[n++] = a;
    }
    op_session_set_claim(r->cfg.session, r->checked ? r->result.reach : MSG_REACH_UNKNOWN, addrs, n,
                         tell_primary);
}

/* The supernode could not reach us through the mapping the router says
 * it holds (refused, or no answer): a router that lost its mappings
 * without a word (a reboot we did not hear, a firewall reset). Ask it
 * again now rather than at the next check; at most once a minute, so a
 * router that keeps the mapping but drops the traffic is not asked in a
 * loop. */
static void mapping_probe_failed(struct op_reach *r)
{
    for (size_t i = 0; i < r->n_probes; i++) {
        const struct msg_dialback_probe *p = &r->probes[i];
        struct nat_upnp *which = r->have_mapped && wire_addr_equal(&p->addr, &r->mapped) ? r->upnp
                                 : r->have_pinhole && wire_addr_equal(&p->addr, &r->pinhole)
                                     ? r->upnp6
                                     : NULL;
        if (which == NULL ||
            (p->outcome != MSG_DIALBACK_REFUSED && p->outcome != MSG_DIALBACK_TIMEOUT))
            continue;
        uint64_t now = link_now_ms();
        if (r->lost_map_ms != 0 && now - r->lost_map_ms < OP_REACH_LOST_MAP_MS)
            return;
        r->lost_map_ms = now;
        char where[64];
        log_info("reach",
                 "the supernode could not reach us through our %s %s (%s): asking "
                 "the router again",
                 which == r->upnp ? "mapping" : "IPv6 pinhole",
                 wire_addr_format(&p->addr, where, sizeof(where)),
                 msg_dialback_outcome_str(p->outcome));
        nat_upnp_refresh(which);
        return;
    }
}

static void on_result(struct op_reach *r, const struct msg_dialback_result *res)
{
    r->n_probes = res->n_probes < WIRE_MAX_ADDRS ? res->n_probes : WIRE_MAX_ADDRS;
    memcpy(r->probes, res->probes, r->n_probes * sizeof(r->probes[0]));
    struct wire_addr local[OP_REACH_MAX_LOCAL];
    struct nat_reach_facts f = {
        .probes = r->probes,
        .n_probes = r->n_probes,
        .mapped = r->have_mapped ? &r->mapped : NULL,
        .pinhole = r->have_pinhole ? &r->pinhole : NULL,
        .mapping_state = r->state_words,
        .local = local,
        .n_local = local_addrs(r, local, OP_REACH_MAX_LOCAL),
    };
    struct nat_reach before = r->result;
    bool was_checked = r->checked;
    nat_reach_classify(&f, &r->result);
    r->checked = true;
    if (!was_checked || before.reach != r->result.reach || strcmp(before.why, r->result.why) != 0)
        log_info("reach", "reachability: %s", r->result.why);
    /* The first proof a supernode made of us since we attached to it (a
     * failover to the backup, a re-attach): it believes a claim only at a
     * REGISTER after the proof, so it hears the claim again even when the
     * claim is what it was at the old supernode. */
    claim(r, r->fresh && res->n_probes > 0);
    if (res->n_probes > 0)
        r->fresh = false;
    mapping_probe_failed(r);
}

/* The router is being looked for or asked: a dial-back now would try
 * yesterday's mapping (3 s lost on a timeout after a network change). */
static bool mapping_unsettled(const struct op_reach *r)
{
    return r->upnp != NULL &&
           (r->map.state == NAT_MAP_DISCOVERING || r->map.state == NAT_MAP_MAPPING);
}

static void ask(struct op_reach *r)
{
    if (!op_session_attached(r->cfg.session) || mapping_unsettled(r))
        return; /* attached() or the mapping's outcome (on_mapping) asks again */
    if (r->asking) {
        r->again = true;
        return;
    }
    struct wire_addr cand[WIRE_MAX_ADDRS];
    size_t n = nat_reach_candidates(r->have_mapped ? &r->mapped : NULL, &r->listen,
                                    r->have_observed ? &r->observed : NULL, r->listen.port, cand,
                                    WIRE_MAX_ADDRS);
    if (n == 0) {
        struct msg_dialback_result none = {0};
        on_result(r, &none);
        return;
    }
    RAND_bytes((unsigned char *)&r->nonce, sizeof(r->nonce));
    struct msg m = {.type = MSG_DIALBACK};
    m.u.dialback = (struct msg_dialback){.nonce = r->nonce, .addrs = cand, .n_addrs = n};
    if (op_session_send(r->cfg.session, &m) != 0)
        return;
    r->asking = true;
    r->again = false;
    set_timer_ms(r->timer, OP_REACH_ANSWER_MS);
    log_debug("reach", "asked the supernode to dial back %zu addresses", n);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct op_reach *r = arg;
    (void)fd, (void)what;
    r->asking = false; /* an answer lost, a retry due, or the periodic check */
    ask(r);
    if (!r->asking)
        set_timer_ms(r->timer, OP_REACH_RECHECK_S * 1000u);
}

/* ---- the port mapping -------------------------------------------------------------- */

static void on_mapping(const struct nat_upnp_status *st, void *arg)
{
    struct op_reach *r = arg;
    bool had = r->have_mapped, was_unsettled = mapping_unsettled(r);
    struct wire_addr before = r->mapped;
    r->map = *st;
    r->have_mapped = false;
    if (st->state == NAT_MAP_MAPPED && st->external_port != 0) {
        memset(&r->mapped, 0, sizeof(r->mapped));
        r->mapped.family = WIRE_ADDR_IPV4;
        r->mapped.port = st->external_port;
        r->have_mapped = inet_pton(AF_INET, st->external_ip, r->mapped.ip) == 1;
    }
    describe_mapping(r);
    if (had != r->have_mapped || (had && !wire_addr_equal(&before, &r->mapped))) {
        log_info("reach", "%s", r->mapping_words);
        ask(r); /* reachability rests on it: check again */
    } else if (was_unsettled && !mapping_unsettled(r)) {
        ask(r); /* settled without a mapping (no gateway, refused): the deferred check */
    }
}

static void on_pinhole(const struct nat_upnp_status *st, void *arg)
{
    struct op_reach *r = arg;
    bool had = r->have_pinhole;
    struct wire_addr before = r->pinhole;
    r->map6 = *st;
    r->have_pinhole = false;
    if (st->state == NAT_MAP_MAPPED && st->external_port != 0) {
        memset(&r->pinhole, 0, sizeof(r->pinhole));
        r->pinhole.family = WIRE_ADDR_IPV6;
        r->pinhole.port = st->external_port;
        r->have_pinhole = inet_pton(AF_INET6, st->external_ip, r->pinhole.ip) == 1;
    }
    describe_pinhole(r);
    if (had != r->have_pinhole || (had && !wire_addr_equal(&before, &r->pinhole))) {
        log_info("reach", "%s", r->pinhole_words);
        ask(r); /* reachability over IPv6 rests on it */
    }
}

/* ---- the router's announcements ---------------------------------------------------------- */

/* The gateway's IPv4 address: the host of its control URL, or NAT-PMP's. */
static bool gateway_ip(const char *gw, struct in_addr *out)
{
    char host[64];
    const char *p = strstr(gw, "://");
    p = p ? p + 3 : gw;
    size_t n = strcspn(p, ":/");
    if (n == 0 || n >= sizeof(host))
        return false;
    memcpy(host, p, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, out) == 1;
}

static void on_announce(evutil_socket_t fd, short what, void *arg)
{
    struct op_reach *r = arg;
    (void)what;
    int which = fd == r->ann_fd[0] ? 0 : 1;
    for (int i = 0; i < 16; i++) { /* bounded: the loop comes back for more */
        uint8_t buf[NAT_ANNOUNCE_MAX];
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n <= 0)
            break;
        struct nat_announce a;
        struct in_addr gw;
        nat_announce_parse(buf, (size_t)n, &a);
        if (a.kind == NAT_ANNOUNCE_NONE || flen < sizeof(from) || from.sin_family != AF_INET ||
            !gateway_ip(r->map.gateway, &gw) || gw.s_addr != from.sin_addr.s_addr)
            continue; /* not our gateway's, or not an announcement */
        uint64_t now = link_now_ms();
        uint64_t mapped_s = r->map.state == NAT_MAP_MAPPED && r->map.mapped_since_ms
                                ? (now - r->map.mapped_since_ms) / 1000
                                : 0;
        bool restarted =
            nat_announce_restarted(&a, &r->ann_last[which], (now - r->ann_ms[which]) / 1000) ||
            (mapped_s > 0 && nat_announce_younger_than(&a, mapped_s));
        r->ann_last[which] = a;
        r->ann_ms[which] = now;
        if (!restarted)
            continue;
        log_info("reach", "the router %s (%s): asking it again for our mapping",
                 a.kind == NAT_ANNOUNCE_BYEBYE ? "is going down" : "restarted",
                 a.kind == NAT_ANNOUNCE_NATPMP   ? "its NAT-PMP epoch began again"
                 : a.kind == NAT_ANNOUNCE_BYEBYE ? "SSDP ssdp:byebye"
                                                 : "SSDP ssdp:alive with a new boot");
        nat_upnp_refresh(r->upnp);
    }
}

/* A UDP socket on port, in group, shared with other listeners of the
 * host (SO_REUSEADDR: each gets every datagram). -1 if it cannot be. */
static evutil_socket_t announce_socket(const char *group, uint16_t port)
{
    evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct ip_mreq mreq = {.imr_interface.s_addr = htonl(INADDR_ANY)};
    inet_pton(AF_INET, group, &mreq.imr_multiaddr);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
        log_info("reach",
                 "cannot hear the router's announcements on %s:%u (%s): a router that "
                 "restarts is noticed at the periodic check",
                 group, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void announce_start(struct op_reach *r)
{
    static const struct {
        const char *group;
        uint16_t port;
    } where[2] = {{NAT_ANNOUNCE_SSDP_GROUP, NAT_ANNOUNCE_SSDP_PORT},
                  {NAT_ANNOUNCE_NATPMP_GROUP, NAT_ANNOUNCE_NATPMP_PORT}};
    for (int i = 0; i < 2; i++) {
        r->ann_fd[i] = announce_socket(where[i].group, where[i].port);
        if (r->ann_fd[i] < 0)
            continue;
        r->ann_ev[i] = event_new(r->cfg.base, r->ann_fd[i], EV_READ | EV_PERSIST, on_announce, r);
        if (r->ann_ev[i] == NULL || event_add(r->ann_ev[i], NULL) != 0)
            log_warn("reach", "out of memory: not listening to the router's announcements");
    }
}

/* ---- API ------------------------------------------------------------------------------ */

int op_reach_new(const struct op_reach_config *cfg, struct op_reach **out)
{
    struct op_reach *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return SOVA_ERR_NOMEM;
    r->cfg = *cfg;
    r->listen = *cfg->listen;
    r->ann_fd[0] = r->ann_fd[1] = -1;
    r->timer = evtimer_new(cfg->base, on_timer, r);
    if (r->timer == NULL) {
        free(r);
        return SOVA_ERR_NOMEM;
    }
    /* A peer bound to loopback cannot be mapped (and must not ask the
     * network around it): no UPnP then. */
    if (cfg->upnp && !is_loopback(&r->listen)) {
        struct nat_upnp_config uc = {
            .base = cfg->base,
            .internal_port = r->listen.port,
            .lease_s = cfg->upnp_lease_s,
            .check_interval_s = cfg->upnp_check_s,
            .description = cfg->description,
            .natpmp = true,
            .pcp = true,
            .changed = on_mapping,
            .arg = r,
        };
        int rc = nat_upnp_new(&uc, &r->upnp);
        /* Listening on IPv6: the router's IPv6 firewall drops connections
         * to us unless it keeps a pinhole open (PCP). */
        if (rc == 0 && r->listen.family == WIRE_ADDR_IPV6 && !link_local(&r->listen)) {
            uc.ipv6 = true;
            uc.changed = on_pinhole;
            rc = nat_upnp_new(&uc, &r->upnp6);
        }
        if (rc != 0) {
            op_reach_free(r);
            return rc;
        }
    }
    describe_mapping(r);
    snprintf(r->result.why, sizeof(r->result.why), "not checked yet");
    r->n_host = host_addrs(r->host, OP_REACH_MAX_LOCAL);
    *out = r;
    return 0;
}

void op_reach_start(struct op_reach *r)
{
    if (r->upnp != NULL) {
        announce_start(r);
        nat_upnp_start(r->upnp);
    }
    if (r->upnp6 != NULL)
        nat_upnp_start(r->upnp6);
}

void op_reach_free(struct op_reach *r)
{
    if (r == NULL)
        return;
    nat_upnp_free(r->upnp);
    nat_upnp_free(r->upnp6);
    for (int i = 0; i < 2; i++) {
        if (r->ann_ev[i])
            event_free(r->ann_ev[i]);
        if (r->ann_fd[i] >= 0)
            close(r->ann_fd[i]);
    }
    if (r->timer)
        event_free(r->timer);
    free(r);
}

void op_reach_attached(struct op_reach *r)
{
    const struct wire_addr *seen = op_session_observed(r->cfg.session);
    if (seen != NULL) {
        /* Seen from another address than before: our network changed (a
         * new public address, another router). Ask the router again. */
        if (r->have_observed && !wire_addr_same_ip(&r->observed, seen) && r->upnp != NULL) {
            log_info("reach", "our public address changed: asking the router again");
            nat_upnp_refresh(r->upnp);
            if (r->upnp6 != NULL)
                nat_upnp_refresh(r->upnp6);
        }
        r->observed = *seen;
        r->have_observed = true;
    }
    r->asking = false; /* a question to the old supernode is lost */
    r->fresh = true;
    ask(r);
}

void op_reach_network_changed(struct op_reach *r)
{
    struct wire_addr now[OP_REACH_MAX_LOCAL];
    size_t n = host_addrs(now, OP_REACH_MAX_LOCAL);
    if (same_set(now, n, r->host, r->n_host))
        return; /* a route or an address of no interest */
    char list[OP_REACH_MAX_LOCAL * 48] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        char a[64];
        wire_addr_format(&now[i], a, sizeof(a));
        char *colon = now[i].family == WIRE_ADDR_IPV4 ? strrchr(a, ':') : NULL;
        if (colon != NULL)
            *colon = '\0'; /* the port means nothing here */
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", a);
        if (w > 0 && (size_t)w < sizeof(list) - used)
            used += (size_t)w;
    }
    log_info("reach",
             "our network changed (addresses now: %s): re-attaching, asking the router "
             "again, proving reachability again",
             n ? list : "none");
    memcpy(r->host, now, n * sizeof(now[0]));
    r->n_host = n;
    op_session_addresses_changed(r->cfg.session, now, n);
    if (r->upnp != NULL)
        nat_upnp_refresh(r->upnp); /* the gateway, seen from the new address */
    if (r->upnp6 != NULL)
        nat_upnp_refresh(r->upnp6);
    r->asking = false;
    r->fresh = true;
    ask(r); /* still attached (our link's address stayed): prove the rest again */
}

void op_reach_message(struct op_reach *r, const struct msg *m)
{
    if (m->type == MSG_DIALBACK_RESULT && r->asking && m->u.dialback_result.nonce == r->nonce) {
        r->asking = false;
        on_result(r, &m->u.dialback_result);
        if (r->again) {
            set_timer_ms(r->timer, OP_REACH_RETRY_MS); /* the supernode allows one per 2 s */
            return;
        }
        set_timer_ms(r->timer, OP_REACH_RECHECK_S * 1000u);
        return;
    }
    if (m->type == MSG_ERROR && m->u.error.offending_type == MSG_DIALBACK && r->asking) {
        r->asking = false;
        unsigned wait = m->u.error.has_retry_after ? m->u.error.retry_after_ms : OP_REACH_RETRY_MS;
        set_timer_ms(r->timer, wait < 100 ? 100 : wait);
    }
}

uint8_t op_reach_self(const struct op_reach *r)
{
    return r->checked ? r->result.reach : MSG_REACH_UNKNOWN;
}

const struct wire_addr *op_reach_public_addr(const struct op_reach *r)
{
    uint8_t s = op_reach_self(r);
    return s == MSG_REACH_PUBLIC || s == MSG_REACH_MAPPED ? &r->result.proved : NULL;
}

static json_t *addr_json(const struct wire_addr *a)
{
    char buf[64];
    return a ? json_string(wire_addr_format(a, buf, sizeof(buf))) : json_null();
}

json_t *op_reach_json(const struct op_reach *r)
{
    const struct nat_upnp_status *m = &r->map;
    json_t *mapping = json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:i, s:i, s:i, s:s, s:i}", "state",
        r->upnp ? nat_map_state_str(m->state) : "off", "words", r->mapping_words, "method",
        m->method ? json_string(m->method) : json_null(), "gateway", m->gateway, "external_ip",
        m->external_ip, "external_port", (int)m->external_port, "lease_s", (int)m->lease_s,
        "error_code", m->error_code, "error", m->error, "remaps", (int)m->remaps);
    const struct nat_upnp_status *h = &r->map6;
    json_t *pinhole =
        r->upnp6 == NULL
            ? json_null()
            : json_pack("{s:s, s:s, s:o, s:s, s:o, s:i, s:s, s:i}", "state",
                        nat_map_state_str(h->state), "words", r->pinhole_words, "method",
                        h->method ? json_string(h->method) : json_null(), "gateway", h->gateway,
                        "address", r->have_pinhole ? addr_json(&r->pinhole) : json_null(),
                        "lease_s", (int)h->lease_s, "error", h->error, "remaps", (int)h->remaps);
    json_t *probes = json_array();
    for (size_t i = 0; i < r->n_probes; i++) {
        json_array_append_new(probes,
                              json_pack("{s:o, s:s}", "addr", addr_json(&r->probes[i].addr),
                                        "outcome", msg_dialback_outcome_str(r->probes[i].outcome)));
    }
    struct wire_addr seen[2], local[2];
    size_t n = op_session_nat_sample(r->cfg.session, seen, local);
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s}", "state",
                     nat_reach_str(op_reach_self(r)), "why", r->result.why, "address",
                     addr_json(op_reach_public_addr(r)), "mapping", mapping, "pinhole", pinhole,
                     "dialback", probes, "nat", nat_type_str(nat_type_guess(seen, local, n)));
}
