/* op_metrics.c - the peer's numbers in the Prometheus text format: returned
 * by the control socket's "metrics" command (`sova-peer metrics`) and served
 * at http://<metrics-listen>/metrics when that option is set.
 * docs/OPERATIONS.md lists them. */
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "op_internal.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

#define P "sova_peer_"

static void count_download(const struct op_fetch_progress *p, void *arg)
{
    uint64_t *by_state = arg;
    if ((unsigned)p->state < OP_FETCH_N_STATES)
        by_state[p->state]++;
}

static void render_reach(struct evbuffer *out, const struct op_daemon *d)
{
    static const char *const states[] = {"public", "mapped", "unreachable", "unknown"};
    const char *now = nat_reach_str(op_reach_self(d->reach));
    metrics_family(out, P "reachability", METRICS_GAUGE,
                   "1 for the reachability the dial-back found (docs/NAT.md)");
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        metrics_sample_labels(out, P "reachability", strcmp(now, states[i]) == 0, 1,
                              (const char *const[]){"state", states[i]});
    json_t *reach = op_reach_json(d->reach);
    json_t *mapping = json_object_get(reach, "mapping");
    const char *map_state = json_string_value(json_object_get(mapping, "state"));
    json_int_t remaps = json_integer_value(json_object_get(mapping, "remaps"));
    metrics_gauge(out, P "port_mapped", "1 while the router holds our port mapping",
                  map_state != NULL && strcmp(map_state, "mapped") == 0);
    metrics_counter(out, P "port_mapping_remaps_total",
                    "Port mappings made again (router restart, new address)",
                    remaps > 0 ? (uint64_t)remaps : 0);
    json_decref(reach);
}

static void render_transfers(struct evbuffer *out, const struct op_daemon *d)
{
    uint64_t by_state[OP_FETCH_N_STATES] = {0};
    op_fetch_foreach(d->fetcher, count_download, by_state);
    metrics_family(out, P "downloads", METRICS_GAUGE, "Downloads of this run, by state");
    for (size_t i = 0; i < OP_FETCH_N_STATES; i++)
        metrics_sample_labels(out, P "downloads", by_state[i], 1,
                              (const char *const[]){"state", op_fetch_state_name(i)});
    struct op_server_stats ss;
    op_server_stats(d->server, &ss);
    metrics_gauge(out, P "upload_links", "Peers connected to us to download", ss.links);
    metrics_gauge(out, P "uploads_active", "Of them, with a request in progress", ss.uploading);
    metrics_counter(out, P "upload_bytes_total", "File bytes sent to other peers", ss.bytes_sent);
    metrics_counter(out, P "upload_chunks_total", "Chunks sent to other peers", ss.chunks_sent);
    struct nat_relay_stats rs;
    nat_relay_stats(d->relay, &rs);
    metrics_gauge(out, P "relay_circuits", "Relay circuits open or opening now", rs.circuits);
    metrics_counter(out, P "relay_circuits_opened_total", "Relay circuits we opened", rs.opened);
    metrics_counter(out, P "relay_circuits_accepted_total", "Relay circuits opened to us",
                    rs.accepted);
    metrics_counter(out, P "relay_received_bytes_total", "Bytes received through relay circuits",
                    rs.bytes_in);
    metrics_counter(out, P "relay_sent_bytes_total", "Bytes sent through relay circuits",
                    rs.bytes_out);
}

void op_metrics_render(struct evbuffer *out, void *arg)
{
    const struct op_daemon *d = arg;
    metrics_family(out, P "info", METRICS_GAUGE, "Version and node ID of this peer");
    metrics_sample_labels(
        out, P "info", 1, 2,
        (const char *const[]){"version", SOVA_VERSION, "id", identity_id_str(d->id)});
    metrics_gauge(out, P "uptime_seconds", "Seconds since the peer started",
                  (link_now_ms() - d->started_ms) / 1000);
    metrics_gauge(out, P "attached", "1 while attached to a primary supernode",
                  op_session_attached(d->session));
    metrics_gauge(out, P "backup_attached", "1 while a backup supernode session is up",
                  op_session_backup_id(d->session) != NULL);
    metrics_gauge(out, P "supernodes_known", "Supernodes in the host cache",
                  op_session_candidates(d->session));
    render_reach(out, d);
    const struct op_share_result *res = d->share ? op_share_current(d->share) : NULL;
    uint64_t bytes = 0;
    for (size_t i = 0; res && i < res->n_files; i++)
        bytes += res->files[i].size;
    metrics_gauge(out, P "shared_files", "Files in the share folder", res ? res->n_files : 0);
    metrics_gauge(out, P "shared_bytes", "Bytes in the share folder", bytes);
    metrics_gauge(out, P "published_records", "File records the supernode accepted", d->published);
    struct op_folders_stats fs;
    op_folders_stats(d->folders, &fs);
    metrics_gauge(out, P "share_folders", "Share folders (configured and added)", fs.folders);
    metrics_gauge(out, P "share_folders_missing", "Share folders missing at the last scan",
                  fs.missing);
    metrics_counter(out, P "share_watch_rescans_total",
                    "Rescans asked for by inotify events in the share folders", fs.events);
    struct op_hook_stats hs;
    op_hook_stats(d->hook, &hs);
    metrics_counter(out, P "hooks_started_total", "on-complete commands started", hs.started);
    metrics_counter(out, P "hooks_failed_total",
                    "on-complete commands that failed, were killed or could not start", hs.failed);
    metrics_gauge(out, P "hooks_running", "on-complete commands running", hs.running);
    metrics_counter(out, P "searches_sent_total", "Searches sent to the supernode",
                    op_queries_sent(d->queries));
    render_transfers(out, d);
    metrics_link_counters(out, "sova_peer", &d->link_counters);
    struct link_budget_stats bs;
    link_budget_stats(d->budget, &bs);
    metrics_link_budget(out, "sova_peer", &bs, evloop_accept_errors(d->loop));
    metrics_counter(out, P "reloads_total", "Configuration reloads (SIGHUP) applied", d->reloads);
    metrics_counter(out, P "reload_failures_total",
                    "Reloads refused because the configuration did not load", d->reload_failures);
}

int op_metrics_start(struct op_daemon *d, char *err, size_t errlen)
{
    if (d->s->metrics_listen == NULL)
        return 0;
    char bound[64];
    int rc = metrics_http_new(evloop_base(d->loop), d->s->metrics_listen, op_metrics_render, d,
                              &d->metrics, bound, sizeof(bound), err, errlen);
    if (rc == 0)
        log_info("op", "metrics at http://%s/metrics", bound);
    return rc;
}

void op_metrics_stop(struct op_daemon *d)
{
    metrics_http_free(d->metrics);
    d->metrics = NULL;
}
