/* sn_relay_life.c - relay circuits (sn_relay.h): a link's relay state (its
 * circuits, its relay bandwidth), and the feature's start, stop, reloads
 * and status. The circuits themselves are sn_relay.c. */
#define SN_RELAY_INTERNAL
#include "err.h"
#include "log.h"
#include "sn_relay_int.h"

#include <stdlib.h>

/* ---- links' own state ------------------------------------------------------------ */

static void relay_conn_rate_init(const struct sn_ctx *d, struct relay_conn *rc, uint64_t now_ms)
{
    uint64_t rate = d->s->relay_peer_kbps * 1000;
    sn_rate_init(&rc->bucket, rate, rate / 4 > RELAY_MIN_BURST ? rate / 4 : RELAY_MIN_BURST,
                 now_ms);
}

struct relay_conn *relay_conn_make(struct sn_conn *p)
{
    if (p->ext[SN_EXT_RELAY] == NULL) {
        struct relay_conn *rc = calloc(1, sizeof(*rc));
        if (rc == NULL)
            return NULL;
        relay_conn_rate_init(p->ctx, rc, link_now_ms());
        p->ext[SN_EXT_RELAY] = rc;
    }
    return p->ext[SN_EXT_RELAY];
}

static void rconn_free(void *ext)
{
    free(ext);
}

unsigned sn_relay_conn_circuits(const struct sn_conn *p)
{
    return rconn(p) ? rconn(p)->circuits : 0;
}

size_t sn_relay_conn_far_ends(const struct sn_conn *p, uint8_t (*out)[WIRE_ID_LEN], size_t cap)
{
    size_t n = 0;
    for (const struct sn_relay_leg *l = rconn(p) ? rconn(p)->legs : NULL; l && n < cap;
         l = l->next_on_link) {
        const struct sn_circuit *c = l->c;
        const uint8_t *far =
            memcmp(c->origin_id, p->id, WIRE_ID_LEN) == 0 ? c->target_id : c->origin_id;
        bool dup = memcmp(far, p->id, WIRE_ID_LEN) == 0;
        for (size_t i = 0; i < n && !dup; i++)
            dup = memcmp(out[i], far, WIRE_ID_LEN) == 0;
        if (!dup)
            memcpy(out[n++], far, WIRE_ID_LEN);
    }
    return n;
}

void sn_relay_conn_set_rate(struct sn_conn *p, uint64_t rate, uint64_t now_ms)
{
    struct relay_conn *rc = rconn(p);
    if (rc != NULL)
        sn_rate_set(&rc->bucket, rate ? rate : 1,
                    rate / 4 > RELAY_MIN_BURST ? rate / 4 : RELAY_MIN_BURST, now_ms);
}

/* ---- life and status ----------------------------------------------------------------- */

int sn_relay_start(struct sn_ctx *d)
{
    struct sn_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return SOVA_ERR_NOMEM;
    r->d = d;
    r->retry = evtimer_new(evloop_base(d->loop), relay_on_retry, r);
    if (r->retry == NULL) {
        free(r);
        return SOVA_ERR_NOMEM;
    }
    uint64_t rate = d->s->relay_total_kbps * 1000;
    sn_rate_init(&r->total, rate,
                 rate / 4 > RELAY_FLOW_GRANT_BYTES ? rate / 4 : RELAY_FLOW_GRANT_BYTES,
                 link_now_ms());
    r->rate_ms = link_now_ms();
    r->pool = fair_pool_new(d->s->relay_max_circuits, d->s->relay_max_prefix_circuits,
                            FAIR_VICTIM_OLDEST);
    if (r->pool == NULL) {
        event_free(r->retry);
        free(r);
        return SOVA_ERR_NOMEM;
    }
    d->relay = r;
    d->ext_free[SN_EXT_RELAY] = rconn_free;
    return 0;
}

void sn_relay_rates_changed(struct sn_ctx *d)
{
    uint64_t now = link_now_ms(), rate = d->s->relay_total_kbps * 1000;
    sn_rate_init(&d->relay->total, rate,
                 rate / 4 > RELAY_FLOW_GRANT_BYTES ? rate / 4 : RELAY_FLOW_GRANT_BYTES, now);
    for (struct link *l = link_group_first(&d->links); l; l = link_group_next(l)) {
        const struct sn_conn *p = link_arg(l);
        if (rconn(p) != NULL)
            relay_conn_rate_init(d, rconn(p), now);
    }
}

void sn_relay_limits_changed(struct sn_ctx *d)
{
    struct sn_relay *r = d->relay;
    fair_pool_set_limits(r->pool, d->s->relay_max_circuits, d->s->relay_max_prefix_circuits);
    /* A new idle timeout holds for open circuits at once. */
    uint64_t now = link_now_ms();
    for (struct sn_circuit *c = r->circuits; c; c = c->next) {
        if (c->state != CIRC_OPEN)
            continue;
        c->clock.idle_ms = d->s->relay_idle_timeout_s * 1000;
        relay_arm_open_timer(c, now);
    }
}

void sn_relay_stop(struct sn_ctx *d)
{
    struct sn_relay *r = d->relay;
    if (r == NULL)
        return;
    while (r->circuits != NULL)
        relay_circuit_free(r->circuits);
    fair_pool_free(r->pool);
    event_free(r->retry);
    free(r);
    d->relay = NULL;
}

uint32_t sn_relay_kbps(const struct sn_ctx *d)
{
    struct sn_relay *r = d->relay;
    uint64_t now = link_now_ms();
    if (now - r->rate_ms >= RELAY_RATE_WINDOW_MS) {
        uint64_t bytes = r->counters.bytes - r->rate_bytes;
        r->kbps = (uint32_t)(bytes / (now - r->rate_ms)); /* bytes per ms = kB/s */
        r->rate_bytes = r->counters.bytes;
        r->rate_ms = now;
    }
    return r->kbps;
}

json_t *sn_relay_status_json(const struct sn_ctx *d)
{
    const struct sn_relay *r = d->relay;
    const struct sn_settings *s = d->s;
    json_t *o = json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:{s:I, s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
        "enabled", s->relay, "circuits", (json_int_t)r->n, "opened", (json_int_t)r->counters.opened,
        "refused", (json_int_t)r->counters.refused, "closed_by_limit",
        (json_int_t)r->counters.closed_limit, "bytes", (json_int_t)r->counters.bytes, "dialbacks",
        (json_int_t)d->counters.dialbacks, "kbps", (int)sn_relay_kbps(d), "refused_by", "off",
        (json_int_t)r->refused_by[MSG_ERR_RELAY_REFUSED], "limit",
        (json_int_t)r->refused_by[MSG_ERR_LIMIT_REACHED], "rate",
        (json_int_t)r->refused_by[MSG_ERR_RATE_LIMITED], "not_found",
        (json_int_t)r->refused_by[MSG_ERR_NOT_FOUND], "unauthorized",
        (json_int_t)r->refused_by[MSG_ERR_UNAUTHORIZED], "timeout",
        (json_int_t)r->refused_by[MSG_ERR_TIMEOUT], "limits", "max_circuits",
        (json_int_t)s->relay_max_circuits, "max_peer_circuits",
        (json_int_t)s->relay_max_peer_circuits, "max_bytes", (json_int_t)s->relay_max_bytes,
        "max_duration_s", (json_int_t)s->relay_max_duration_s, "peer_kbps",
        (json_int_t)s->relay_peer_kbps, "total_kbps", (json_int_t)s->relay_total_kbps);
    json_t *lim = json_object_get(o, "limits");
    json_object_set_new(lim, "max_prefix_circuits",
                        json_integer((json_int_t)s->relay_max_prefix_circuits));
    json_object_set_new(lim, "idle_timeout_s", json_integer((json_int_t)s->relay_idle_timeout_s));
    json_object_set_new(o, "closed_idle", json_integer((json_int_t)r->counters.closed_idle));
    json_object_set_new(o, "displaced", json_integer((json_int_t)r->counters.displaced));
    json_object_set_new(o, "prefixes", json_integer((json_int_t)fair_groups(r->pool)));
    json_object_set_new(o, "top_prefix_circuits", json_integer((json_int_t)fair_top(r->pool)));
    return o;
}
