/* sn_attach.c - ordinary peers on a supernode: REGISTER, PUBLISH,
 * keep-alive (sn_attach.h). One struct sn_conn per link, made when the link
 * opens; the index entry for a peer ID belongs to the newest session of
 * that ID (a peer that re-attaches, from any address, replaces the old). */
#include "sn_attach.h"
#include "sn_accept.h"
#include "err.h"
#include "log.h"
#include "sn_dialback.h"
#include "sn_membership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* REGISTERED: where the peer is seen from, and the keep-alive it must keep. */
static void send_registered(struct sn_conn *p, struct sn_keepalive k)
{
    struct msg m = {.type = MSG_REGISTERED};
    m.u.registered.observed = *link_remote_addr(p->link);
    m.u.registered.keepalive_s = k.keepalive_s;
    m.u.registered.peer_timeout_s = k.peer_timeout_s;
    p->told = k;
    link_send(p->link, &m);
}

static void peer_unindex(struct sn_ctx *ctx, struct sn_conn *p)
{
    if (p->indexed) {
        ctx->index_changes++;
        sn_index_peer_remove(ctx->index, p->id);
        fair_leave(ctx->records, &p->records);
        p->indexed = false;
        ctx->n_primary--;
    }
}

/* An indexed session counts its records in its address prefix's share of
 * max-records-per-prefix (whatever the identities of that prefix). Out of
 * memory: not counted (the index's own limits still hold). */
static void count_records(struct sn_ctx *ctx, struct sn_conn *p)
{
    uint8_t key[FAIR_KEY_MAX];
    size_t n = fair_key_prefix(link_remote_addr(p->link), key);
    (void)fair_join(ctx->records, &p->records, key, n, sn_index_peer_files(ctx->index, p->id), p);
}

static bool in_list(const struct wire_addr *list, size_t n, const struct wire_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (wire_addr_equal(&list[i], a))
            return true;
    return false;
}

/* Where others reach p, never a bare claim (so a peer cannot make others
 * connect to a third party, docs/NAT.md): addresses a dial-back proved
 * (first: downloaders try them first), its observed IP with its first
 * claimed port (the address a NAT shows us), and claimed addresses on that
 * IP; claimed LAN addresses (wire_addr_is_local) go in front, handed only
 * to peers behind the same public IP (sn_conn_addrs_for); any other claim
 * is dropped. Duplicates dropped. */
static void set_addrs(struct sn_conn *p, const struct msg_register *r)
{
    const struct wire_addr *seen = link_remote_addr(p->link);
    struct wire_addr cand[WIRE_MAX_ADDRS + 1], pub[WIRE_MAX_ADDRS] = {{0}},
                                               lan[WIRE_MAX_ADDRS] = {{0}};
    size_t n = 0, n_pub = 0, n_lan = 0, dropped = 0;
    if (r->n_addrs > 0 && seen->family != 0) {
        cand[n] = *seen;
        cand[n++].port = r->addrs[0].port;
    }
    for (size_t i = 0; i < r->n_addrs && n < WIRE_MAX_ADDRS + 1; i++)
        cand[n++] = r->addrs[i];
    for (size_t i = 0; i < n && n_pub < WIRE_MAX_ADDRS; i++)
        if (in_list(p->verified, p->n_verified, &cand[i]) && !in_list(pub, n_pub, &cand[i]))
            pub[n_pub++] = cand[i];
    for (size_t i = 0; i < n; i++) {
        if (in_list(pub, n_pub, &cand[i]) || in_list(lan, n_lan, &cand[i]))
            continue;
        if (wire_addr_same_ip(&cand[i], seen) && n_pub < WIRE_MAX_ADDRS)
            pub[n_pub++] = cand[i];
        else if (wire_addr_is_local(&cand[i]) && n_lan < WIRE_MAX_ADDRS)
            lan[n_lan++] = cand[i];
        else
            dropped++;
    }
    if (n_lan > WIRE_MAX_ADDRS - n_pub)
        n_lan = WIRE_MAX_ADDRS - n_pub;
    struct wire_addr out[WIRE_MAX_ADDRS];
    memcpy(out, lan, n_lan * sizeof(out[0]));
    memcpy(out + n_lan, pub, n_pub * sizeof(out[0]));
    p->n_lan = 0;
    if (!sn_conn_set_addr_list(&p->addrs, &p->n_addrs, out, n_lan + n_pub))
        log_error("sn", "%s: out of memory keeping its addresses", link_name(p->link));
    else
        p->n_lan = n_lan;
    if (dropped > 0)
        log_info("sn", "%s: %zu claimed addresses neither proved nor on its own IP: not handed out",
                 link_name(p->link), dropped);
}

static const char *reach_str(uint8_t r)
{
    return r == MSG_REACH_PUBLIC        ? "public"
           : r == MSG_REACH_MAPPED      ? "mapped"
           : r == MSG_REACH_UNREACHABLE ? "unreachable"
                                        : "unknown reachability";
}

void sn_attach_on_register(struct sn_ctx *ctx, struct sn_conn *p, const struct msg *m)
{
    const struct msg_register *r = &m->u.reg;
    p->session = r->session;
    p->claimed_reach = r->reachability;
    set_addrs(p, r);
    p->reachability = sn_dialback_reachability(p);
    if (r->session == MSG_SESSION_BACKUP) {
        /* A warm standby: known, kept alive, but its files are indexed by
         * its primary supernode, not twice. */
        peer_unindex(ctx, p);
    } else if (!p->indexed && sn_index_peer_ctx(ctx->index, p->id) == NULL &&
               ctx->n_primary >= ctx->s->max_peers) {
        log_warn("sn", "%s: refused, %zu peers attached (max-peers)", link_name(p->link),
                 ctx->n_primary);
        sn_membership_send_overloaded(ctx, p);
        return;
    } else if (!p->indexed) {
        int rc = sn_index_peer_add(ctx->index, p->id, p);
        if (rc == SOVA_ERR_PEER_EXISTS) {
            /* The same peer attached again (new address, restart): the new
             * session takes over its records; the old link goes away. */
            struct sn_conn *old = sn_index_peer_ctx(ctx->index, p->id);
            sn_index_peer_remove(ctx->index, p->id);
            if (old != NULL && old != p) {
                old->indexed = false;
                fair_leave(ctx->records, &old->records);
                log_info("sn", "%s: re-attached from %s, replacing its old session",
                         link_name(p->link), "new address");
                link_close(old->link, MSG_ERR_PROTOCOL, "replaced by a newer session");
            }
            rc = sn_index_peer_add(ctx->index, p->id, p);
            if (old != NULL && old != p)
                ctx->n_primary--;
        }
        if (rc != 0) {
            link_close_about(p->link, MSG_ERR_INTERNAL, MSG_REGISTER, "cannot register");
            return;
        }
        p->indexed = true;
        ctx->n_primary++;
        count_records(ctx, p);
    }
    p->registered = true;
    sn_accept_registered(ctx, p);
    send_registered(p, sn_ctx_keepalive(ctx));
    char where[64];
    wire_addr_format(link_remote_addr(p->link), where, sizeof(where));
    sn_membership_send_sn_list(ctx, p);
    log_info("sn", "%s: registered%s from %s (%zu addresses, claims %s, advertised %s)",
             link_name(p->link), r->session == MSG_SESSION_BACKUP ? " as backup" : "", where,
             p->n_addrs, reach_str(r->reachability), reach_str(p->reachability));
}

/* A peer's next PING after the advice moved (the peer count grew or shrank
 * by more than an eighth, or a reload) is answered with REGISTERED again,
 * so PINGs stay within max-pings-per-s without telling every peer at once. */
void sn_attach_pinged(struct sn_ctx *ctx, struct sn_conn *p)
{
    if (!p->registered)
        return;
    struct sn_keepalive k = sn_ctx_keepalive(ctx);
    if (sn_keepalive_stale(p->told, k)) {
        log_debug("sn", "%s: keep-alive now %u s, timeout %u s (was %u s, %u s)",
                  link_name(p->link), k.keepalive_s, k.peer_timeout_s, p->told.keepalive_s,
                  p->told.peer_timeout_s);
        send_registered(p, k);
    }
    /* Our load moved by a quarter (and two peers) since its last SN_LIST:
     * a fresh one, so that it can spread the load (docs/FEDERATION.md,
     * "Load spread"); one peer at a time, at its own PINGs. */
    uint32_t now = (uint32_t)ctx->n_primary, was = p->told_load;
    uint32_t moved = now > was ? now - was : was - now, bar = was / 4 > 2 ? was / 4 : 2;
    if (moved >= bar)
        sn_membership_send_sn_list(ctx, p);
}

static uint16_t publish_error_code(int rc)
{
    switch (rc) {
    case SOVA_ERR_PEER_FILES:
    case SOVA_ERR_PEER_NAME_BYTES:
    case SOVA_ERR_INDEX_FULL:
    case SOVA_ERR_PREFIX_RECORDS:
        return MSG_ERR_LIMIT_REACHED;
    case SOVA_ERR_BAD_VALUE:
        return MSG_ERR_BAD_VALUE;
    case SOVA_ERR_UNSAFE_NAME:
        return MSG_ERR_UNSAFE_NAME;
    default:
        return MSG_ERR_INTERNAL;
    }
}

void sn_attach_on_publish(struct sn_ctx *ctx, struct sn_conn *p, const struct msg *msg)
{
    const struct msg_publish *pub = &msg->u.publish;
    uint64_t wait = 0;
    if (sn_rate_take(&p->lim.publish, pub->n_records, link_now_ms(), &wait) != 0) {
        sn_conn_rate_limited(p, MSG_PUBLISH, wait, "too many published records (publish-rate)");
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
        const struct msg_publish_record *rec = &pub->records[i];
        struct fair_holder *none;
        int rc;
        /* A new record of a network at its share is refused; a replaced or
         * removed one is not (it does not make the index grow). */
        if (rec->action == MSG_PUBLISH_ADD &&
            fair_check(ctx->records, &p->records, 1, &none) == FAIR_OVER_SHARE &&
            !sn_index_peer_has(ctx->index, p->id, rec->hash)) {
            rc = SOVA_ERR_PREFIX_RECORDS;
            ctx->counters.publish_prefix_refused++;
        } else {
            rc = sn_index_publish(ctx->index, p->id, rec);
            fair_set(ctx->records, &p->records, sn_index_peer_files(ctx->index, p->id));
        }
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
    ctx->counters.publishes += ack->accepted;
    ctx->index_changes += ack->accepted;
    link_send(p->link, &m);
    if (ack->rejected > 0) {
        char text[256];
        snprintf(text, sizeof(text),
                 "%u of %zu records rejected: %s (limits: %llu files, %llu name bytes per peer; "
                 "%llu records per network, max-records-per-prefix)",
                 ack->rejected, pub->n_records, sova_err_str(first_rc),
                 (unsigned long long)ctx->s->max_files_per_peer,
                 (unsigned long long)ctx->s->max_name_bytes_per_peer,
                 (unsigned long long)ctx->s->max_records_per_prefix);
        log_warn("sn", "%s: PUBLISH: %s", link_name(p->link), text);
        link_send_error(p->link, ack->first_error, MSG_PUBLISH, text);
    }
}

size_t sn_attach_conn_gone(struct sn_ctx *ctx, struct sn_conn *p)
{
    size_t files = p->indexed ? sn_index_peer_files(ctx->index, p->id) : 0;
    peer_unindex(ctx, p);
    return files;
}

void sn_attach_sweep(struct sn_ctx *ctx)
{
    uint64_t now = link_now_ms();
    /* The timeout in force now: the configured one, longer with many peers
     * (sn_keepalive.h). A peer told a longer one earlier keeps that. */
    uint64_t limit = (uint64_t)sn_ctx_keepalive(ctx).peer_timeout_s * 1000;
    for (struct link *l = link_group_first(&ctx->links); l; l = link_group_next(l)) {
        /* The link's own time first: the walk then touches one struct per
         * link, not two (at 100,000 links every cache miss counts). */
        if (now - link_last_heard_ms(l) <= limit)
            continue;
        /* A handshake has its own deadline (handshake-timeout-ms), and no
         * ERROR can reach a remote before TLS is up. */
        const struct sn_conn *p = link_arg(l);
        if (p->handshaking)
            continue;
        if (now - link_last_heard_ms(l) <= (uint64_t)p->told.peer_timeout_s * 1000)
            continue;
        log_info("sn", "%s: silent for %llu s, dropping it", link_name(l),
                 (unsigned long long)((now - link_last_heard_ms(l)) / 1000));
        link_close(l, MSG_ERR_TIMEOUT, "keep-alive timeout");
    }
}
