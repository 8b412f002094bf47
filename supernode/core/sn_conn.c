/* sn_conn.c - the record of one link and the helpers every feature uses
 * (sn_ctx.h). */
#include "err.h"
#include "log.h"
#include "sn_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_conn *sn_conn_new(struct sn_ctx *ctx)
{
    struct sn_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    uint64_t now = link_now_ms();
    const struct sn_settings *s = ctx->s;
    c->ctx = ctx;
    sn_rate_init(&c->lim.connect, SN_CONNECT_RATE_PER_S, SN_CONNECT_RATE_BURST, now);
    /* Bursts of a whole share, and never less than one full PUBLISH frame. */
    uint64_t burst = s->max_files_per_peer > ctx->limits.max_publish_records
                         ? s->max_files_per_peer
                         : ctx->limits.max_publish_records;
    sn_rate_init(&c->lim.publish, s->publish_rate, burst, now);
    sn_rate_init(&c->lim.search, s->search_rate, 2 * s->search_rate, now);
    return c;
}

void sn_conn_free(struct sn_conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < SN_EXT_COUNT; i++)
        if (c->ext[i] != NULL && c->ctx->ext_free[i] != NULL)
            c->ctx->ext_free[i](c->ext[i]);
    free(c->addrs);
    free(c->verified);
    free(c);
}

bool sn_conn_set_addr_list(struct wire_addr **list, size_t *n_list, const struct wire_addr *src,
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

const struct wire_addr *sn_conn_addrs_for(const struct sn_conn *c, const struct wire_addr *asker,
                                          size_t *n)
{
    if (c->n_lan > 0 && asker != NULL && c->link != NULL &&
        wire_addr_same_ip(asker, link_remote_addr(c->link))) {
        *n = c->n_addrs;
        return c->addrs;
    }
    *n = c->n_addrs - c->n_lan;
    return c->addrs != NULL ? c->addrs + c->n_lan : NULL; /* none registered: no list */
}

bool sn_conn_is_peer(const struct sn_conn *c)
{
    return c != NULL && link_remote_role(c->link) == MSG_ROLE_PEER;
}

void sn_conn_rate_limited(struct sn_conn *c, uint8_t type, uint64_t wait_ms, const char *what)
{
    struct sn_ctx *ctx = c->ctx;
    ctx->counters.rate_limited++;
    struct msg m = {.type = MSG_ERROR};
    m.u.error = (struct msg_error){.code = MSG_ERR_RATE_LIMITED,
                                   .offending_type = type,
                                   .text = wire_str_from(what),
                                   .has_retry_after = true,
                                   .retry_after_ms = (uint32_t)(wait_ms ? wait_ms : 1)};
    link_send(c->link, &m);
    uint64_t now = link_now_ms();
    if (now - c->lim.logged_ms >= SN_REFUSALS_LOG_MS) {
        c->lim.logged_ms = now;
        log_warn("sn", "%s: %s (%llu rate-limited requests in all)", link_name(c->link), what,
                 (unsigned long long)ctx->counters.rate_limited);
    }
}

struct sn_keepalive sn_ctx_keepalive(const struct sn_ctx *ctx)
{
    return sn_keepalive_advise(ctx->s->keepalive_s, ctx->s->peer_timeout_s, ctx->s->max_pings_per_s,
                               ctx->n_peers);
}

const char *sn_short_id(const uint8_t id[WIRE_ID_LEN], char *buf)
{
    char full[NODE_ID_STR_LEN + 1];
    node_id_format(id, full);
    snprintf(buf, NODE_ID_SHORT_LEN + 1, "%.*s", NODE_ID_SHORT_LEN, full);
    return buf;
}

void sn_timer_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}
