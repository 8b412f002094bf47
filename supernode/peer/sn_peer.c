/* sn_peer.c - ordinary peers on a supernode: REGISTER, PUBLISH, SEARCH,
 * LOCATE, keep-alive. One struct sn_peer per link, created when the link
 * opens; the index entry for a peer ID belongs to the newest session of
 * that ID (a peer that re-attaches, from any address, replaces the old). */
#include "err.h"
#include "log.h"
#include "sn_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_keepalive sn_keepalive_now(const struct sn_daemon *d)
{
    return sn_keepalive_advise(d->s->keepalive_s, d->s->peer_timeout_s, d->s->max_pings_per_s,
                               d->n_peers);
}

/* REGISTERED: where the peer is seen from, and the keep-alive it must keep. */
static void send_registered(struct sn_peer *p, struct sn_keepalive k)
{
    struct msg m = {.type = MSG_REGISTERED};
    m.u.registered.observed = *link_remote_addr(p->link);
    m.u.registered.keepalive_s = k.keepalive_s;
    m.u.registered.peer_timeout_s = k.peer_timeout_s;
    p->told = k;
    link_send(p->link, &m);
}

static void peer_unindex(struct sn_peer *p)
{
    if (p->indexed) {
        p->d->index_changes++;
        sn_index_peer_remove(p->d->index, p->id);
        p->indexed = false;
        p->d->n_primary--;
    }
}

static void on_opened(struct link *l, void *arg)
{
    struct sn_peer *p = arg;
    memcpy(p->id, link_peer(l)->id, WIRE_ID_LEN);
    if (p->handshaking) {
        p->handshaking = false;
        p->d->n_handshaking--;
    }
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE) {
        link_set_max_frames(l, 0); /* the federation's own traffic is not rate-limited */
        p->d->n_supernodes++;
        sn_fed_link_up(p->d, p);
        return;
    }
    if (p->dialed) { /* we dialed a supernode and a peer answered */
        link_close(l, MSG_ERR_PROTOCOL, "expected a supernode");
        return;
    }
    p->d->n_peers++;
}

/* Where others reach p: the addresses it claims, and its observed IP with
 * its claimed port (the address a NAT shows us). Duplicates dropped. */
static void set_addrs(struct sn_peer *p, const struct msg_register *r)
{
    struct wire_addr out[WIRE_MAX_ADDRS];
    size_t n_out = 0;
    const struct wire_addr *seen = link_remote_addr(p->link);
    struct wire_addr cand[WIRE_MAX_ADDRS + 1];
    size_t n = 0;
    if (r->n_addrs > 0 && seen->family != 0) {
        cand[n] = *seen;
        cand[n++].port = r->addrs[0].port;
    }
    for (size_t i = 0; i < r->n_addrs && n < WIRE_MAX_ADDRS + 1; i++)
        cand[n++] = r->addrs[i];
    /* Addresses a dial-back proved go first: downloaders try them first. */
    for (int proved = 1; proved >= 0; proved--) {
        for (size_t i = 0; i < n && n_out < WIRE_MAX_ADDRS; i++) {
            bool dup = false, ok = false;
            for (size_t j = 0; j < n_out; j++)
                dup |= wire_addr_equal(&out[j], &cand[i]);
            for (size_t j = 0; j < p->n_verified; j++)
                ok |= wire_addr_equal(&p->verified[j], &cand[i]);
            if (!dup && ok == (proved == 1))
                out[n_out++] = cand[i];
        }
    }
    if (!sn_peer_set_addr_list(&p->addrs, &p->n_addrs, out, n_out))
        log_error("sn", "%s: out of memory keeping its addresses", link_name(p->link));
}

bool sn_peer_set_addr_list(struct wire_addr **list, size_t *n_list, const struct wire_addr *src,
                           size_t n)
{
    struct wire_addr *copy = NULL;
    if (n > 0 && (copy = malloc(n * sizeof(*copy))) != NULL)
        memcpy(copy, src, n * sizeof(*copy));
    free(*list);
    *list = copy;
    *n_list = copy != NULL ? n : 0;
    return n == 0 || copy != NULL;
}

void sn_peer_free(struct sn_peer *p)
{
    if (p == NULL)
        return;
    free(p->addrs);
    free(p->verified);
    free(p);
}

static const char *reach_str(uint8_t r)
{
    return r == MSG_REACH_PUBLIC        ? "public"
           : r == MSG_REACH_MAPPED      ? "mapped"
           : r == MSG_REACH_UNREACHABLE ? "unreachable"
                                        : "unknown reachability";
}

static void on_register(struct sn_peer *p, const struct msg_register *r)
{
    struct sn_daemon *d = p->d;
    p->session = r->session;
    p->claimed_reach = r->reachability;
    set_addrs(p, r);
    p->reachability = sn_dialback_reachability(p);
    if (r->session == MSG_SESSION_BACKUP) {
        /* A warm standby: known, kept alive, but its files are indexed by
         * its primary supernode, not twice. */
        peer_unindex(p);
    } else if (!p->indexed && sn_index_peer_ctx(d->index, p->id) == NULL &&
               d->n_primary >= d->s->max_peers) {
        log_warn("sn", "%s: refused, %zu peers attached (max-peers)", link_name(p->link),
                 d->n_primary);
        sn_fed_send_overloaded(d, p);
        return;
    } else if (!p->indexed) {
        int rc = sn_index_peer_add(d->index, p->id, p);
        if (rc == SOVA_ERR_PEER_EXISTS) {
            /* The same peer attached again (new address, restart): the new
             * session takes over its records; the old link goes away. */
            struct sn_peer *old = sn_index_peer_ctx(d->index, p->id);
            sn_index_peer_remove(d->index, p->id);
            if (old != NULL && old != p) {
                old->indexed = false;
                log_info("sn", "%s: re-attached from %s, replacing its old session",
                         link_name(p->link), "new address");
                link_close(old->link, MSG_ERR_PROTOCOL, "replaced by a newer session");
            }
            rc = sn_index_peer_add(d->index, p->id, p);
            if (old != NULL && old != p)
                d->n_primary--;
        }
        if (rc != 0) {
            link_close(p->link, MSG_ERR_INTERNAL, "cannot register");
            return;
        }
        p->indexed = true;
        d->n_primary++;
    }
    p->registered = true;
    send_registered(p, sn_keepalive_now(d));
    char where[64];
    wire_addr_format(link_remote_addr(p->link), where, sizeof(where));
    sn_fed_send_sn_list(d, p);
    log_info("sn", "%s: registered%s from %s (%zu addresses, claims %s, advertised %s)",
             link_name(p->link), r->session == MSG_SESSION_BACKUP ? " as backup" : "", where,
             p->n_addrs, reach_str(r->reachability), reach_str(p->reachability));
}

/* A peer's next PING after the advice moved (the peer count grew or shrank
 * by more than an eighth, or a reload) is answered with REGISTERED again,
 * so PINGs stay within max-pings-per-s without telling every peer at once. */
static void on_pinged(struct link *l, void *arg)
{
    struct sn_peer *p = arg;
    if (!p->registered)
        return;
    struct sn_keepalive k = sn_keepalive_now(p->d);
    if (!sn_keepalive_stale(p->told, k))
        return;
    log_debug("sn", "%s: keep-alive now %u s, timeout %u s (was %u s, %u s)", link_name(l),
              k.keepalive_s, k.peer_timeout_s, p->told.keepalive_s, p->told.peer_timeout_s);
    send_registered(p, k);
}

static uint16_t publish_error_code(int rc)
{
    switch (rc) {
    case SOVA_ERR_PEER_FILES:
    case SOVA_ERR_PEER_NAME_BYTES:
    case SOVA_ERR_INDEX_FULL:
        return MSG_ERR_LIMIT_REACHED;
    case SOVA_ERR_BAD_VALUE:
        return MSG_ERR_BAD_VALUE;
    default:
        return MSG_ERR_INTERNAL;
    }
}

/* Over a per-peer rate: ERROR(rate limited) saying when to come back,
 * counted; a log line at most every SN_REFUSALS_LOG_MS per peer. */
static void rate_limited(struct sn_peer *p, uint8_t type, uint64_t wait_ms, const char *what)
{
    p->d->rate_limited++;
    struct msg m = {.type = MSG_ERROR};
    m.u.error = (struct msg_error){.code = MSG_ERR_RATE_LIMITED,
                                   .offending_type = type,
                                   .text = wire_str_from(what),
                                   .has_retry_after = true,
                                   .retry_after_ms = (uint32_t)(wait_ms ? wait_ms : 1)};
    link_send(p->link, &m);
    uint64_t now = link_now_ms();
    if (now - p->rate_logged_ms >= SN_REFUSALS_LOG_MS) {
        p->rate_logged_ms = now;
        log_warn("sn", "%s: %s (%llu rate-limited requests in all)", link_name(p->link), what,
                 (unsigned long long)p->d->rate_limited);
    }
}

static void on_search(struct sn_peer *p, const struct msg_search *q)
{
    uint64_t wait = 0;
    if (sn_rate_take(&p->search_rate, 1, link_now_ms(), &wait) != 0) {
        rate_limited(p, MSG_SEARCH, wait, "too many searches (search-rate)");
        /* ...and an empty final answer, so the asker is not left waiting. */
        struct msg r = {.type = MSG_SEARCH_RESULT};
        r.u.search_result =
            (struct msg_search_result){.query_id = q->query_id, .flags = MSG_RESULT_FINAL};
        link_send(p->link, &r);
        return;
    }
    sn_search_from_peer(p->d, p, q);
}

static void on_publish(struct sn_peer *p, const struct msg_publish *pub)
{
    uint64_t wait = 0;
    if (sn_rate_take(&p->publish_rate, pub->n_records, link_now_ms(), &wait) != 0) {
        rate_limited(p, MSG_PUBLISH, wait, "too many published records (publish-rate)");
        struct msg m = {.type = MSG_PUBLISH_ACK};
        m.u.publish_ack = (struct msg_publish_ack){.rejected = (uint16_t)pub->n_records,
                                                   .first_error = MSG_ERR_RATE_LIMITED};
        link_send(p->link, &m);
        return;
    }
    struct msg m = {.type = MSG_PUBLISH_ACK};
    struct msg_publish_ack *ack = &m.u.publish_ack;
    int first_rc = 0;
    for (size_t i = 0; i < pub->n_records; i++) {
        int rc = sn_index_publish(p->d->index, p->id, &pub->records[i]);
        if (rc == 0) {
            ack->accepted++;
            continue;
        }
        if (ack->rejected++ == 0) {
            first_rc = rc;
            ack->first_error = publish_error_code(rc);
            ack->first_error_index = (uint16_t)i;
        }
    }
    p->d->counters.publishes += ack->accepted;
    p->d->index_changes += ack->accepted;
    link_send(p->link, &m);
    if (ack->rejected > 0) {
        char text[160];
        snprintf(text, sizeof(text),
                 "%u of %zu records rejected: %s (limits: %llu files, %llu "
                 "name bytes per peer)",
                 ack->rejected, pub->n_records, sova_err_str(first_rc),
                 (unsigned long long)p->d->s->max_files_per_peer,
                 (unsigned long long)p->d->s->max_name_bytes_per_peer);
        log_warn("sn", "%s: PUBLISH: %s", link_name(p->link), text);
        link_send_error(p->link, ack->first_error, MSG_PUBLISH, text);
    }
}

static void on_locate(struct sn_peer *p, const struct msg_locate *q)
{
    struct sn_daemon *d = p->d;
    const struct sn_peer *target = sn_index_peer_ctx(d->index, q->peer_id);
    d->counters.locates++;
    if (target == NULL) {
        sn_search_locate(d, p, q); /* attached elsewhere, perhaps */
        return;
    }
    struct msg m = {.type = MSG_LOCATE_RESULT};
    struct msg_locate_result *r = &m.u.locate_result;
    memcpy(r->peer_id, q->peer_id, WIRE_ID_LEN);
    if (target != NULL) {
        r->found = 1;
        r->reachability = target->reachability;
        r->addrs = (struct wire_addr *)target->addrs;
        r->n_addrs = target->n_addrs;
        memcpy(r->sn_id, identity_id(d->id), WIRE_ID_LEN);
    }
    link_send(p->link, &m);
}

static void on_report(struct sn_peer *p, const struct msg_report *r)
{
    struct sn_daemon *d = p->d;
    uint64_t now = link_now_ms();
    if (sn_rate_take(&p->connect_rate, 1, now, NULL) != 0)
        return; /* a flood of accusations is not worth an answer */
    if (!sn_reports_add(d->reports, r->peer_id, p->id, r->reason, now))
        return;
    char who[NODE_ID_STR_LEN + 1];
    node_id_format(r->peer_id, who);
    log_info("sn", "%s: reports %.*s: %s (score %u)", link_name(p->link), NODE_ID_SHORT_LEN, who,
             r->reason == MSG_REPORT_BAD_DATA ? "served data that failed verification"
                                              : "does not serve a file it is listed with",
             sn_reports_score(d->reports, r->peer_id));
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct sn_peer *p = arg;
    if (m->type == MSG_ERROR)
        return;
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE) {
        sn_fed_hook_message(p->d, p, m);
        return;
    }
    if (m->type != MSG_REGISTER && !p->indexed) {
        link_send_error(l, MSG_ERR_NOT_ATTACHED, m->type, "REGISTER first");
        return;
    }
    if (msg_type_family(m->type) == MSG_FAMILY_RELAY) {
        sn_relay_message(p->d, p, m);
        return;
    }
    switch (m->type) {
    case MSG_REGISTER:
        on_register(p, &m->u.reg);
        return;
    case MSG_PUBLISH:
        on_publish(p, &m->u.publish);
        return;
    case MSG_SEARCH:
        on_search(p, &m->u.search);
        return;
    case MSG_LOCATE:
        on_locate(p, &m->u.locate);
        return;
    case MSG_DIALBACK:
        sn_dialback_request(p->d, p, &m->u.dialback);
        return;
    case MSG_CONNECT:
        sn_connect_from_peer(p->d, p, &m->u.connect);
        return;
    case MSG_REPORT:
        on_report(p, &m->u.report);
        return;
    case MSG_RECEIPTS:
    case MSG_CREDIT:
        sn_credit_peer_message(p->d, p, m);
        return;
    default: /* valid, but not for a supernode (e.g. GOSSIP from a peer): ERROR 100, closed */
        link_send_error(l, MSG_ERR_PROTOCOL, m->type, "not served by this supernode");
        link_close(l, 0, NULL);
    }
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct sn_peer *p = arg;
    struct sn_daemon *d = p->d;
    uint8_t role = link_remote_role(l);
    const char *reason = why ? sova_err_str(why) : "closed";
    if (p->handshaking)
        d->n_handshaking--;
    if (p->counted_ip)
        sn_ipcount_del(d->ipcount, &p->from);
    sn_search_peer_gone(d, p);
    sn_dialback_peer_gone(d, p);
    sn_connect_peer_gone(d, p);
    sn_relay_link_gone(d, p);
    sn_credit_peer_gone(d, p);
    if (role == MSG_ROLE_PEER) {
        d->n_peers--;
        size_t files = p->indexed ? sn_index_peer_files(d->index, p->id) : 0;
        peer_unindex(p);
        log_info("sn", "%s: peer left (%s), %zu files leave the index", link_name(l), reason,
                 files);
    } else {
        if (role == MSG_ROLE_SUPERNODE)
            d->n_supernodes--;
        log_info("sn", "%s: disconnected (%s)", link_name(l), reason);
    }
    if (role == MSG_ROLE_SUPERNODE || p->dialed)
        sn_fed_link_down(d, p);
    d->counters.bytes_in_closed += link_bytes_in(l);
    d->counters.bytes_out_closed += link_bytes_out(l);
    sn_peer_free(p);
}

static void on_drained(struct link *l, void *arg)
{
    struct sn_peer *p = arg;
    (void)l;
    if (p->relay_legs != NULL)
        sn_relay_link_drained(p->d, p);
}

static const struct link_hooks hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .drained = on_drained,
    .pinged = on_pinged,
};

const struct link_hooks *sn_link_hooks(void)
{
    return &hooks;
}

/* A connection turned away before TLS (no ERROR can reach it yet): counted,
 * and logged at most every SN_REFUSALS_LOG_MS with the totals. */
static void refuse_connection(struct sn_daemon *d, uint64_t *counter, evutil_socket_t fd, SSL *ssl)
{
    (*counter)++;
    SSL_free(ssl);
    evutil_closesocket(fd);
    uint64_t now = link_now_ms(), total = d->refused_handshakes + d->refused_ip;
    if (now - d->refusals_logged_ms < SN_REFUSALS_LOG_MS)
        return;
    log_warn("sn",
             "refused %llu connections since the last report: %llu in all over max-handshakes "
             "(%llu), %llu over max-conns-per-ip (%llu)",
             (unsigned long long)(total - d->refusals_at_log),
             (unsigned long long)d->refused_handshakes, (unsigned long long)d->s->max_handshakes,
             (unsigned long long)d->refused_ip, (unsigned long long)d->s->max_conns_per_ip);
    d->refusals_logged_ms = now;
    d->refusals_at_log = total;
}

void sn_peer_accept(struct sn_daemon *d, evutil_socket_t fd, SSL *ssl, const struct sockaddr *sa,
                    socklen_t len)
{
    struct wire_addr from;
    bool known = wire_addr_from_sockaddr(&from, sa, len) == 0;
    if (d->n_handshaking >= d->s->max_handshakes) {
        refuse_connection(d, &d->refused_handshakes, fd, ssl);
        return;
    }
    if (known && !sn_ipcount_add(d->ipcount, &from, (unsigned)d->s->max_conns_per_ip)) {
        refuse_connection(d, &d->refused_ip, fd, ssl);
        return;
    }
    struct sn_peer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        if (known)
            sn_ipcount_del(d->ipcount, &from);
        log_error("sn", "out of memory accepting a connection");
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    sn_peer_init(d, p);
    p->counted_ip = known;
    p->from = from;
    p->handshaking = true;
    d->n_handshaking++;
    p->link = link_accept(evloop_base(d->loop), fd, ssl, sa, len, &d->link_params, &hooks, p);
    if (p->link == NULL) {
        d->n_handshaking--;
        if (known)
            sn_ipcount_del(d->ipcount, &from);
        free(p);
    }
}

void sn_peer_set_relay_rate(struct sn_daemon *d, struct sn_peer *p, uint64_t now_ms)
{
    uint64_t rate = d->s->relay_peer_kbps * 1000;
    sn_rate_init(&p->relay_bucket, rate, rate / 4 > 65536 ? rate / 4 : 65536, now_ms);
}

void sn_peer_init(struct sn_daemon *d, struct sn_peer *p)
{
    uint64_t now = link_now_ms();
    p->d = d;
    sn_peer_set_relay_rate(d, p, now);
    sn_rate_init(&p->connect_rate, SN_CONNECT_RATE_PER_S, SN_CONNECT_RATE_BURST, now);
    /* Bursts of a whole share, and never less than one full PUBLISH frame. */
    uint64_t burst = d->s->max_files_per_peer > d->limits.max_publish_records
                         ? d->s->max_files_per_peer
                         : d->limits.max_publish_records;
    sn_rate_init(&p->publish_rate, d->s->publish_rate, burst, now);
    sn_rate_init(&p->search_rate, d->s->search_rate, 2 * d->s->search_rate, now);
}

void sn_peer_sweep(struct sn_daemon *d)
{
    uint64_t now = link_now_ms();
    /* The timeout in force now: the configured one, longer with many peers
     * (sn_keepalive.h). A peer told a longer one earlier keeps that. */
    uint64_t limit = (uint64_t)sn_keepalive_now(d).peer_timeout_s * 1000;
    for (struct link *l = link_group_first(&d->links); l; l = link_group_next(l)) {
        /* The link's own time first: the walk then touches one struct per
         * link, not two (at 100,000 links every cache miss counts). */
        if (now - link_last_heard_ms(l) <= limit)
            continue;
        /* A handshake has its own deadline (handshake-timeout-ms), and no
         * ERROR can reach a remote before TLS is up. */
        const struct sn_peer *p = link_arg(l);
        if (p->handshaking)
            continue;
        if (now - link_last_heard_ms(l) <= (uint64_t)p->told.peer_timeout_s * 1000)
            continue;
        log_info("sn", "%s: silent for %llu s, dropping it", link_name(l),
                 (unsigned long long)((now - link_last_heard_ms(l)) / 1000));
        link_close(l, MSG_ERR_TIMEOUT, "keep-alive timeout");
    }
}
