/* sn_control.c - the supernode's control socket: `sova-supernode status`. */
#define SOVA_SN_DAEMON_INTERNAL
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "sn_accept.h"
#include "sn_credit_net.h"
#include "sn_daemon_int.h"
#include "sn_relay.h"
#include "sn_search.h"

#include <malloc.h>
#include <stdio.h>

/* Bytes the allocator has handed out now (not pages the process holds):
 * what benchmarks divide by peers or circuits. -1 where unknown. */
static json_int_t heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    return (json_int_t)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

static json_t *status_json(const struct sn_daemon *d)
{
    struct sn_index_stats st;
    sn_index_stats(d->ctx.index, &st);
    uint64_t in = d->ctx.counters.bytes_in_closed, out = d->ctx.counters.bytes_out_closed;
    for (const struct link *l = link_group_first(&d->ctx.links); l; l = link_group_next(l)) {
        in += link_bytes_in(l);
        out += link_bytes_out(l);
    }
    struct sn_keepalive ka = sn_ctx_keepalive(&d->ctx);
    return json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "role",
        "supernode", "id", identity_id_str(d->ctx.id), "listen", d->ctx.listen_addr, "uptime_s",
        (json_int_t)((link_now_ms() - d->ctx.started_ms) / 1000), "peers",
        (json_int_t)d->ctx.n_peers, "keepalive_s", (int)ka.keepalive_s, "peer_timeout_s",
        (int)ka.peer_timeout_s, "supernodes", (json_int_t)d->ctx.n_supernodes, "files_indexed",
        (json_int_t)st.records, "distinct_files", (json_int_t)st.files, "keywords",
        (json_int_t)st.keywords, "searches_served", (json_int_t)d->ctx.counters.searches,
        "locates_served", (json_int_t)d->ctx.counters.locates, "bytes_in", (json_int_t)in,
        "bytes_out", (json_int_t)out);
}

/* Handshake failures (both directions) and ERRORs sent, where not zero. */
static json_t *links_json(const struct link_counters *c)
{
    json_t *failures = json_object(), *errors = json_object();
    for (int why = 0; why < LINK_HS_N; why++) {
        uint64_t n = c->handshake_failures[0][why] + c->handshake_failures[1][why];
        if (n)
            json_object_set_new(failures, link_hs_failure_name(why), json_integer((json_int_t)n));
    }
    for (unsigned code = 0; code < LINK_ERROR_SLOTS; code++) {
        char key[8];
        snprintf(key, sizeof(key), "%u", code);
        if (c->errors_sent[code])
            json_object_set_new(errors, code ? key : "other",
                                json_integer((json_int_t)c->errors_sent[code]));
    }
    return json_pack("{s:I, s:I, s:o, s:o}", "opened_in", (json_int_t)c->opened[0], "opened_out",
                     (json_int_t)c->opened[1], "handshake_failures", failures, "errors_sent",
                     errors);
}

static void on_request(struct ctl_conn *conn, const struct ctl_request *req, void *arg)
{
    struct sn_daemon *d = arg;
    if (req->cmd == CTL_CMD_METRICS) {
        metrics_ctl_reply(conn, sn_metrics_render, d);
        return;
    }
    if (req->cmd != CTL_CMD_STATUS) {
        ctl_reply_error(conn, "a supernode answers only \"status\" and \"metrics\", not \"%s\"",
                        ctl_cmd_name(req->cmd));
        return;
    }
    json_t *o = status_json(d);
    json_object_set_new(o, "members", sn_membership_json(&d->ctx));
    /* What a supernode holds of the federation (issue 17's bounds): its open
     * supernode links and its membership entries (any state). */
    json_object_set_new(o, "federation",
                        json_pack("{s:I, s:I}", "links", (json_int_t)sn_fed_links_count(&d->ctx),
                                  "view", (json_int_t)sn_membership_count(&d->ctx)));
    struct sn_index_stats st;
    sn_index_stats(d->ctx.index, &st);
    json_object_set_new(o, "index_bytes", json_integer((json_int_t)st.bytes));
    json_object_set_new(o, "index_prefixes",
                        json_pack("{s:I, s:I, s:I, s:I}", "prefixes",
                                  (json_int_t)fair_groups(d->ctx.records), "top_prefix_records",
                                  (json_int_t)fair_top(d->ctx.records), "max_records_per_prefix",
                                  (json_int_t)d->ctx.s->max_records_per_prefix, "refused",
                                  (json_int_t)d->ctx.counters.publish_prefix_refused));
    uint64_t forwarded, relayed;
    size_t summaries;
    sn_search_stats(&d->ctx, &forwarded, &relayed, &summaries);
    json_object_set_new(o, "searches_forwarded", json_integer((json_int_t)forwarded));
    json_object_set_new(o, "searches_relayed", json_integer((json_int_t)relayed));
    json_object_set_new(o, "summaries_known", json_integer((json_int_t)summaries));
    uint64_t gossip_sent, gossip_bytes;
    sn_membership_gossip_stats(&d->ctx, &gossip_sent, &gossip_bytes);
    json_object_set_new(o, "gossip",
                        json_pack("{s:I, s:I}", "messages_sent", (json_int_t)gossip_sent,
                                  "bytes_sent", (json_int_t)gossip_bytes));
    json_object_set_new(o, "relay", sn_relay_status_json(&d->ctx));
    json_object_set_new(o, "ledger", sn_credit_status_json(&d->ctx));
    json_object_set_new(o, "reachability",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "dialbacks",
                                  (json_int_t)d->ctx.counters.dialbacks, "dialbacks_ok",
                                  (json_int_t)d->ctx.counters.dialbacks_ok, "connects",
                                  (json_int_t)d->ctx.counters.connects, "connects_failed",
                                  (json_int_t)d->ctx.counters.connects_failed, "punches",
                                  (json_int_t)d->ctx.counters.punches, "punches_failed",
                                  (json_int_t)d->ctx.counters.punches_failed));
    struct sn_reports_stats rs;
    sn_reports_stats(d->ctx.reports, &rs);
    json_object_set_new(o, "reports",
                        json_pack("{s:I, s:I, s:I}", "received", (json_int_t)rs.received, "counted",
                                  (json_int_t)rs.counted, "peers_reported", (json_int_t)rs.peers));
    struct link_budget_stats bs;
    link_budget_stats(d->ctx.budget, &bs);
    json_t *abuse = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "handshaking", (json_int_t)bs.handshaking,
        "handshaking_reserved", (json_int_t)bs.handshaking_reserved, "addresses",
        (json_int_t)bs.addresses, "refused_handshakes", (json_int_t)bs.refused_handshakes,
        "refused_per_ip", (json_int_t)bs.refused_ip, "displaced_handshakes",
        (json_int_t)bs.displaced_handshakes, "trusted_addresses", (json_int_t)bs.trusted,
        "rate_limited", (json_int_t)d->ctx.counters.rate_limited, "throttled",
        (json_int_t)d->ctx.link_counters.throttled);
    json_object_set_new(abuse, "accept_errors",
                        json_integer((json_int_t)evloop_accept_errors(d->ctx.loop)));
    const struct sn_counters *ct = &d->ctx.counters;
    json_object_set_new(abuse, "unregistered",
                        json_pack("{s:I, s:I, s:I, s:I}", "waiting",
                                  (json_int_t)sn_accept_unregistered(&d->ctx), "refused",
                                  (json_int_t)ct->unregistered_refused, "displaced",
                                  (json_int_t)ct->unregistered_displaced, "timeouts",
                                  (json_int_t)ct->register_timeouts));
    json_object_set_new(
        abuse, "buffered",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "bytes", (json_int_t)bs.buffered,
                  "top_prefix_bytes", (json_int_t)bs.buffered_top, "prefixes",
                  (json_int_t)bs.buffered_prefixes, "closed_over_share",
                  (json_int_t)bs.closed_over_share, "displaced", (json_int_t)bs.displaced_buffered,
                  "trims", (json_int_t)bs.trims));
    json_object_set_new(o, "abuse", abuse);
    json_object_set_new(o, "heap_bytes", json_integer(heap_bytes()));
    json_object_set_new(o, "links", links_json(&d->ctx.link_counters));
    json_object_set_new(o, "ready", json_boolean(d->ready));
    json_object_set_new(o, "metrics",
                        d->ctx.s->metrics_listen ? json_string(d->ctx.s->metrics_listen)
                                                 : json_null());
    ctl_reply(conn, o, true);
}

int sn_control_start(struct sn_daemon *d, char *err, size_t errlen)
{
    char path[4096];
    if (d->ctx.s->control)
        snprintf(path, sizeof(path), "%s", d->ctx.s->control);
    else
        snprintf(path, sizeof(path), "%s/control.sock", d->ctx.s->state_dir);
    int rc = ctl_server_new(evloop_base(d->ctx.loop), path, on_request, d, &d->ctl, err, errlen);
    if (rc == 0)
        log_info("sn", "control socket %s", path);
    return rc;
}
