/* sn_metrics.c - the supernode's numbers in the Prometheus text format:
 * served at http://<metrics-listen>/metrics and by the control socket's
 * "metrics" command (`sova-supernode metrics`). docs/OPERATIONS.md lists
 * them. Everything comes from counters the daemon keeps anyway, or from the
 * same JSON `status` shows, so the two never disagree. */
#define SOVA_SN_DAEMON_INTERNAL
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "sn_accept.h"
#include "sn_daemon_int.h"
#include "sn_relay.h"
#include "sn_search.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

#define P "sova_supernode_"

static uint64_t jint(const json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

static void render_index(struct evbuffer *out, const struct sn_daemon *d)
{
    struct sn_index_stats st;
    sn_index_stats(d->ctx.index, &st);
    metrics_gauge(out, P "peers", "Ordinary peers attached now (primary and backup sessions)",
                  d->ctx.n_peers);
    metrics_gauge(out, P "peers_primary", "Attached peers whose primary supernode this is",
                  d->ctx.n_primary);
    metrics_gauge(out, P "peers_max", "Attached peers allowed (max-peers)", d->ctx.s->max_peers);
    metrics_gauge(out, P "files_indexed", "File records of attached peers in the index",
                  st.records);
    metrics_gauge(out, P "files_distinct", "Distinct files (content hash and size) in the index",
                  st.files);
    metrics_gauge(out, P "keywords", "Distinct keywords in the index", st.keywords);
    metrics_gauge(out, P "index_bytes", "Memory the index holds, bytes", st.bytes);
    metrics_counter(out, P "publish_records_total", "PUBLISH records applied to the index",
                    d->ctx.counters.publishes);
    metrics_counter(out, P "publish_prefix_refused_total",
                    "PUBLISH records refused: their network's share (max-records-per-prefix)",
                    d->ctx.counters.publish_prefix_refused);
    metrics_gauge(out, P "index_top_prefix_records",
                  "Index records of the address prefix holding the most", fair_top(d->ctx.records));
}

static void render_search(struct evbuffer *out, const struct sn_daemon *d)
{
    uint64_t forwarded, relayed;
    size_t summaries;
    sn_search_stats(&d->ctx, &forwarded, &relayed, &summaries);
    metrics_family(out, P "searches_received_total", METRICS_COUNTER,
                   "Searches answered: from attached peers, or forwarded by other supernodes");
    metrics_sample_labels(out, P "searches_received_total", d->ctx.counters.searches, 1,
                          (const char *const[]){"from", "peer"});
    metrics_sample_labels(out, P "searches_received_total", d->ctx.counters.fwd_searches_in, 1,
                          (const char *const[]){"from", "supernode"});
    metrics_counter(out, P "searches_forwarded_total",
                    "Forwarded queries sent to other supernodes (one per supernode asked)",
                    forwarded);
    metrics_counter(out, P "searches_relayed_total",
                    "Forwarded queries passed on to further supernodes", relayed);
    metrics_gauge(out, P "summaries_known", "Keyword summaries of other supernodes held",
                  summaries);
    metrics_counter(out, P "locates_total", "LOCATE requests answered", d->ctx.counters.locates);
}

static void render_federation(struct evbuffer *out, const struct sn_daemon *d)
{
    static const char *const states[] = {"alive", "suspect", "dead", "left"};
    uint64_t count[4] = {0};
    json_t *members = sn_membership_json(&d->ctx);
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *state = json_string_value(json_object_get(m, "state"));
        for (size_t k = 0; state && k < 4; k++)
            count[k] += strcmp(state, states[k]) == 0;
    }
    json_decref(members);
    metrics_family(out, P "members", METRICS_GAUGE,
                   "Other supernodes known by gossip, by membership state");
    for (size_t k = 0; k < 4; k++)
        metrics_sample_labels(out, P "members", count[k], 1,
                              (const char *const[]){"state", states[k]});
    metrics_gauge(out, P "supernode_links", "Open links to other supernodes",
                  sn_fed_links_count(&d->ctx));
}

static void render_relay(struct evbuffer *out, const struct sn_daemon *d)
{
    static const char *const reasons[] = {"off",       "limit",        "rate",
                                          "not_found", "unauthorized", "timeout"};
    json_t *r = sn_relay_status_json(&d->ctx);
    json_t *by = json_object_get(r, "refused_by");
    metrics_gauge(out, P "relay_enabled", "Relay circuits offered (option relay)",
                  json_is_true(json_object_get(r, "enabled")));
    metrics_gauge(out, P "relay_circuits", "Relay circuits open now", jint(r, "circuits"));
    metrics_counter(out, P "relay_circuits_opened_total", "Relay circuits opened",
                    jint(r, "opened"));
    metrics_family(out, P "relay_circuits_refused_total", METRICS_COUNTER,
                   "Relay circuits refused, by reason");
    for (size_t k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
        metrics_sample_labels(out, P "relay_circuits_refused_total", jint(by, reasons[k]), 1,
                              (const char *const[]){"reason", reasons[k]});
    metrics_counter(out, P "relay_circuits_closed_by_limit_total",
                    "Relay circuits closed for their byte or time limit",
                    jint(r, "closed_by_limit"));
    metrics_counter(out, P "relay_circuits_closed_idle_total",
                    "Relay circuits closed after relay-idle-timeout-s without data",
                    jint(r, "closed_idle"));
    metrics_counter(out, P "relay_circuits_displaced_total",
                    "Relay circuits closed to let in one from a prefix holding fewer",
                    jint(r, "displaced"));
    metrics_counter(out, P "relay_bytes_total", "Bytes relayed (RELAY_DATA payload)",
                    jint(r, "bytes"));
    metrics_gauge(out, P "relay_kbps", "Relay traffic now, kilobytes per second", jint(r, "kbps"));
    /* The operator's relay limits in force (0: no limit), next to what they limit. */
    static const char *const limits[][2] = {{"max_circuits", "relay-max-circuits"},
                                            {"max_peer_circuits", "relay-max-peer-circuits"},
                                            {"max_bytes", "relay-max-bytes"},
                                            {"max_duration_s", "relay-max-duration-s"},
                                            {"peer_kbps", "relay-peer-kbps"},
                                            {"total_kbps", "relay-total-kbps"},
                                            {"max_prefix_circuits", "relay-max-prefix-circuits"},
                                            {"idle_timeout_s", "relay-idle-timeout-s"}};
    json_t *lim = json_object_get(r, "limits");
    metrics_family(out, P "relay_limit", METRICS_GAUGE,
                   "Relay limits in force, by option (0: no limit)");
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++)
        metrics_sample_labels(out, P "relay_limit", jint(lim, limits[k][0]), 1,
                              (const char *const[]){"option", limits[k][1]});
    json_decref(r);
    metrics_counter(out, P "dialbacks_total", "Dial-back probes run for attached peers",
                    d->ctx.counters.dialbacks);
    metrics_counter(out, P "dialbacks_ok_total", "Dial-backs that reached at least one address",
                    d->ctx.counters.dialbacks_ok);
    metrics_counter(out, P "connects_total", "Connection reversals (CONNECT) delivered",
                    d->ctx.counters.connects);
    metrics_counter(out, P "connects_failed_total", "CONNECTs whose target was not found",
                    d->ctx.counters.connects_failed);
    metrics_counter(out, P "punches_total", "Hole-punch notes (PUNCH) delivered",
                    d->ctx.counters.punches);
    metrics_counter(out, P "punches_failed_total",
                    "Hole-punch notes sent back as NO (target not attached or not punching)",
                    d->ctx.counters.punches_failed);
}

void sn_metrics_render(struct evbuffer *out, void *arg)
{
    const struct sn_daemon *d = arg;
    metrics_family(out, P "info", METRICS_GAUGE, "Version and node ID of this supernode");
    metrics_sample_labels(
        out, P "info", 1, 2,
        (const char *const[]){"version", SOVA_VERSION, "id", identity_id_str(d->ctx.id)});
    metrics_gauge(out, P "uptime_seconds", "Seconds since the supernode started",
                  (link_now_ms() - d->ctx.started_ms) / 1000);
    metrics_gauge(out, P "ready", "1 once the supernode told systemd it is ready", d->ready);
    render_index(out, d);
    render_search(out, d);
    render_federation(out, d);
    render_relay(out, d);
    uint64_t in = d->ctx.counters.bytes_in_closed, sent = d->ctx.counters.bytes_out_closed;
    for (const struct link *l = link_group_first(&d->ctx.links); l; l = link_group_next(l)) {
        in += link_bytes_in(l);
        sent += link_bytes_out(l);
    }
    metrics_counter(out, P "received_bytes_total", "Frame bytes received on all links", in);
    metrics_counter(out, P "sent_bytes_total", "Frame bytes sent on all links", sent);
    metrics_link_counters(out, "sova_supernode", &d->ctx.link_counters);
    struct link_budget_stats bs;
    link_budget_stats(d->ctx.budget, &bs);
    metrics_link_budget(out, "sova_supernode", &bs, evloop_accept_errors(d->ctx.loop));
    metrics_gauge(out, P "unregistered_links",
                  "Peers' links through HELLO waiting for their REGISTER (max-unregistered)",
                  sn_accept_unregistered(&d->ctx));
    metrics_family(out, P "unregistered_closed_total", METRICS_COUNTER,
                   "Peers' links closed before REGISTER: refused, displaced, timed out");
    const struct sn_counters *ct = &d->ctx.counters;
    metrics_sample_labels(out, P "unregistered_closed_total", ct->unregistered_refused, 1,
                          (const char *const[]){"reason", "refused"});
    metrics_sample_labels(out, P "unregistered_closed_total", ct->unregistered_displaced, 1,
                          (const char *const[]){"reason", "displaced"});
    metrics_sample_labels(out, P "unregistered_closed_total", ct->register_timeouts, 1,
                          (const char *const[]){"reason", "timeout"});
    metrics_counter(out, P "reloads_total", "Configuration reloads (SIGHUP) applied",
                    d->ctx.counters.reloads);
    metrics_counter(out, P "reload_failures_total",
                    "Reloads refused because the configuration did not load",
                    d->ctx.counters.reload_failures);
}

int sn_metrics_start(struct sn_daemon *d, char *err, size_t errlen)
{
    if (d->ctx.s->metrics_listen == NULL)
        return 0;
    char bound[64];
    int rc = metrics_http_new(evloop_base(d->ctx.loop), d->ctx.s->metrics_listen, sn_metrics_render,
                              d, &d->metrics, bound, sizeof(bound), err, errlen);
    if (rc == 0)
        log_info("sn", "metrics at http://%s/metrics", bound);
    return rc;
}

void sn_metrics_stop(struct sn_daemon *d)
{
    metrics_http_free(d->metrics);
    d->metrics = NULL;
}
