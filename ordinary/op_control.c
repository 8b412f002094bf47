/* op_control.c - what `sova-peer status/search/get/downloads` ask the
 * daemon, answered over the control socket (docs/CONTROL.md). */
#include "op_control.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "op_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- status ------------------------------------------------------------------- */

static json_t *addr_json(const struct wire_addr *a)
{
    char buf[64];
    return a ? json_string(wire_addr_format(a, buf, sizeof(buf))) : json_null();
}

/* The way each download of this run took, for "why am I relayed?". */
static void add_transfer(const struct op_fetch_progress *p, void *arg)
{
    static const char *const states[] = {"running", "complete", "failed"};
    json_array_append_new(arg,
                          json_pack("{s:s, s:s, s:s}", "name", p->name, "state", states[p->state],
                                    "via", p->via && p->via[0] ? p->via : "not connected yet"));
}

static void reply_status(struct op_daemon *d, struct ctl_conn *conn)
{
    const struct op_share_result *res = d->share ? op_share_current(d->share) : NULL;
    uint64_t bytes = 0;
    for (size_t i = 0; res && i < res->n_files; i++)
        bytes += res->files[i].size;
    struct op_server_stats ss;
    op_server_stats(d->server, &ss);
    const char *sn = op_session_sn_id(d->session);
    json_t *reach = op_reach_json(d->reach);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:{s:o, s:s, s:b}, s:o, s:s, s:s, s:{s:I, s:I, s:b}, s:I, "
        "s:{s:I, s:I, s:I}, s:I}",
        "role", "peer", "id", identity_id_str(d->id), "listen", d->listen_str, "supernode", "id",
        sn ? json_string(sn) : json_null(), "endpoint", op_session_endpoint(d->session), "attached",
        op_session_attached(d->session), "observed", addr_json(op_session_observed(d->session)),
        "reachability", nat_reach_str(op_reach_self(d->reach)), "reachability_reason",
        json_string_value(json_object_get(reach, "why")), "shares", "files",
        (json_int_t)(res ? res->n_files : 0), "bytes", (json_int_t)bytes, "scanning",
        d->share ? op_share_busy(d->share) : false, "published", (json_int_t)d->published,
        "uploads", "connected", (json_int_t)ss.links, "active", (json_int_t)ss.uploading,
        "bytes_sent", (json_int_t)ss.bytes_sent, "uptime_s",
        (json_int_t)((link_now_ms() - d->started_ms) / 1000));
    const char *backup = op_session_backup_id(d->session);
    json_object_set_new(json_object_get(o, "supernode"), "backup",
                        backup ? json_string(backup) : json_null());
    json_object_set_new(json_object_get(o, "supernode"), "keepalive_s",
                        json_integer(op_session_keepalive_s(d->session)));
    json_object_set_new(o, "downloads_running",
                        json_integer((json_int_t)op_fetch_running(d->fetcher)));
    json_object_set_new(o, "reach", reach);
    json_object_set_new(o, "credit", op_credit_status_json(d->credit));
    json_object_set_new(json_object_get(o, "uploads"), "waiting",
                        json_integer((json_int_t)ss.waiting));
    struct nat_relay_stats rs;
    nat_relay_stats(d->relay, &rs);
    json_object_set_new(o, "relay",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "circuits", (json_int_t)rs.circuits,
                                  "opened", (json_int_t)rs.opened, "accepted",
                                  (json_int_t)rs.accepted, "bytes_in", (json_int_t)rs.bytes_in,
                                  "bytes_out", (json_int_t)rs.bytes_out));
    struct link_budget_stats bs;
    link_budget_stats(d->budget, &bs);
    json_object_set_new(
        o, "abuse",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}}", "handshaking",
                  (json_int_t)bs.handshaking, "addresses", (json_int_t)bs.addresses,
                  "refused_handshakes", (json_int_t)bs.refused_handshakes, "refused_per_ip",
                  (json_int_t)bs.refused_ip, "displaced_handshakes",
                  (json_int_t)bs.displaced_handshakes, "accept_errors",
                  (json_int_t)evloop_accept_errors(d->loop), "buffered", "bytes",
                  (json_int_t)bs.buffered, "closed_over_share", (json_int_t)bs.closed_over_share,
                  "displaced", (json_int_t)bs.displaced_buffered, "trims", (json_int_t)bs.trims));
    json_t *transfers = json_array();
    op_fetch_foreach(d->fetcher, add_transfer, transfers);
    json_object_set_new(o, "transfers", transfers);
    ctl_reply(conn, o, true);
}

/* ---- downloads ---------------------------------------------------------------- */

static json_t *progress_json(const struct op_fetch_progress *p)
{
    static const char *const states[] = {"running", "complete", "failed"};
    json_t *o = json_pack(
        "{s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:{s:I, s:I, s:I}}", "hash",
        ctl_json_hex32(p->hash), "name", p->name, "size", (json_int_t)p->size, "bytes_have",
        (json_int_t)p->bytes_have, "chunks_have", (json_int_t)p->chunks_have, "chunks",
        (json_int_t)p->n_chunks, "chunks_fetched", (json_int_t)p->chunks_fetched, "chunks_failed",
        (json_int_t)p->chunks_failed, "rate_bps", (json_int_t)p->rate_bps, "state",
        states[p->state], "sources", "known", (json_int_t)p->sources_known, "connected",
        (json_int_t)p->sources_connected, "banned", (json_int_t)p->sources_banned);
    if (o && p->path)
        json_object_set_new(o, "path", json_string(p->path));
    if (o && p->via)
        json_object_set_new(o, "via", json_string(p->via));
    if (o && p->error)
        json_object_set_new(o, "error", json_string(p->error));
    return o;
}

static void add_running(const struct op_fetch_progress *p, void *arg)
{
    json_t *list = arg;
    json_array_append_new(list, progress_json(p));
}

static bool listed(json_t *list, const uint8_t hash[WIRE_HASH_LEN])
{
    char hex[CTL_HEX32_LEN + 1];
    ctl_hex32(hash, hex);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "hash")), hex) == 0)
            return true;
    }
    return false;
}

static int add_stored(const struct op_store_download *row, void *arg)
{
    json_t *list = arg;
    if (listed(list, row->hash))
        return 0; /* this run's view is fresher */
    uint64_t have = (uint64_t)row->n_have * row->chunk_size;
    json_t *o = json_pack("{s:o, s:s, s:I, s:I, s:I, s:I, s:s}", "hash", ctl_json_hex32(row->hash),
                          "name", row->name, "size", (json_int_t)row->size, "bytes_have",
                          (json_int_t)(have > row->size ? row->size : have), "chunks_have",
                          (json_int_t)row->n_have, "chunks", (json_int_t)row->n_chunks, "state",
                          op_download_state_name(row->state));
    json_array_append_new(list, o);
    return 0;
}

static void reply_downloads(struct op_daemon *d, struct ctl_conn *conn)
{
    json_t *list = json_array();
    op_fetch_foreach(d->fetcher, add_running, list);
    op_store_download_foreach(d->store, false, add_stored, list);
    ctl_reply(conn, json_pack("{s:o}", "downloads", list), true);
}

/* ---- get ------------------------------------------------------------------------ */

/* A CLI following one download. */
struct get_follow {
    struct ctl_conn *conn;
    struct op_fetch_watch *watch;
};

static void on_get_client_gone(struct ctl_conn *conn, void *arg)
{
    struct get_follow *g = arg;
    (void)conn;
    op_fetch_unwatch(g->watch);
    free(g);
}

static void on_get_progress(const struct op_fetch_progress *p, void *arg)
{
    struct get_follow *g = arg;
    if (p->state == OP_FETCH_RUNNING) {
        ctl_reply(g->conn, json_pack("{s:o}", "progress", progress_json(p)), false);
        return;
    }
    ctl_conn_set_closed_cb(g->conn, NULL, NULL);
    if (p->state == OP_FETCH_DONE)
        ctl_reply(g->conn, json_pack("{s:o}", "download", progress_json(p)), true);
    else
        ctl_reply_error(g->conn, "download of %s failed: %s", p->name, p->error);
    free(g); /* the watch ends with the final report */
}

static void start_get(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_get *req,
                      const char *name, uint64_t size)
{
    struct get_follow *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        ctl_reply_error(conn, "out of memory");
        return;
    }
    g->conn = conn;
    char err[256];
    const char *use_name = req->name[0] ? req->name : name;
    int rc = op_fetch_get(d->fetcher, req->hash, use_name, size, req->out[0] ? req->out : NULL,
                          on_get_progress, g, &g->watch, err, sizeof(err));
    if (rc != 0) {
        free(g);
        ctl_reply_error(conn, "%s", err);
        return;
    }
    const struct op_query_hit *hit = op_queries_hit(d->queries, req->hash);
    if (hit != NULL)
        op_fetch_add_sources(d->fetcher, req->hash, hit->sources, hit->n_sources);
    if (g->watch != NULL) /* NULL: it was complete already and g is freed */
        ctl_conn_set_closed_cb(conn, on_get_client_gone, g);
}

/* A CLI waiting for the supernode's answer: to a search, or to a get that
 * needs sources first. Freed when the answer or the timeout comes, or when
 * the client leaves (the answer, if it comes, still fills the hit cache). */
struct search_wait {
    struct op_daemon *d;
    struct ctl_conn *conn;
    struct op_query *query; /* ours to cancel until it is done */
    bool for_get;           /* a get waiting for sources of get.hash */
    struct ctl_get get;
};

static void on_search_client_gone(struct ctl_conn *conn, void *arg)
{
    struct search_wait *w = arg;
    (void)conn;
    op_query_cancel(w->query);
    free(w);
}

static void on_search_done(const struct msg_search_result *res, void *arg);

/* Send s and keep w->conn waiting for the answer. On an error w is freed
 * and the client told fail. */
static void wait_for_answer(struct search_wait *w, const struct msg_search *s, unsigned timeout_ms,
                            const char *fail)
{
    if (op_query_send(w->d->queries, s, timeout_ms, on_search_done, w, &w->query) != 0) {
        ctl_reply_error(w->conn, "%s", fail);
        free(w);
        return;
    }
    ctl_conn_set_closed_cb(w->conn, on_search_client_gone, w);
}

static void handle_get(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_get *req)
{
    if (d->s->downloads == NULL) {
        ctl_reply_error(conn, "no downloads folder: start the daemon with --downloads DIR");
        return;
    }
    const struct op_query_hit *hit = op_queries_hit(d->queries, req->hash);
    if (hit != NULL) {
        start_get(d, conn, req, hit->name, hit->size);
        return;
    }
    struct op_store_download row = {0};
    bool found = false;
    if (op_store_download_get(d->store, req->hash, &row, &found) == 0 && found) {
        start_get(d, conn, req, row.name, row.size); /* resume: sources come by hash */
        op_store_download_clear(&row);
        struct msg_search s = {.max_results = 1, .has_hash = true};
        memcpy(s.hash, req->hash, WIRE_HASH_LEN);
        op_query_send(d->queries, &s, 0, NULL, NULL, NULL); /* the answer reaches the fetcher */
        return;
    }
    /* Never seen: ask the supernode who has it, then start. */
    if (!op_session_attached(d->session)) {
        ctl_reply_error(conn, "not attached to a supernode yet (trying %s); try again shortly",
                        op_session_endpoint(d->session));
        return;
    }
    struct search_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        ctl_reply_error(conn, "out of memory");
        return;
    }
    w->d = d;
    w->conn = conn;
    w->for_get = true;
    w->get = *req;
    struct msg_search s = {.max_results = 1, .has_hash = true};
    memcpy(s.hash, req->hash, WIRE_HASH_LEN);
    wait_for_answer(w, &s, CTL_SEARCH_TIMEOUT_DEFAULT, "cannot ask the supernode");
}

/* ---- search ---------------------------------------------------------------------- */

static json_t *hits_json(const struct msg_search_result *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n_hits; i++) {
        const struct msg_hit *h = &r->hits[i];
        json_t *peers = json_array();
        for (size_t j = 0; j < h->n_sources; j++) {
            char id[NODE_ID_STR_LEN + 1];
            node_id_format(h->sources[j].peer_id, id);
            json_array_append_new(peers, json_pack("{s:s, s:s}", "id", id, "reachability",
                                                   nat_reach_str(h->sources[j].reachability)));
        }
        json_array_append_new(list, json_pack("{s:o, s:I, s:s%, s:I, s:o}", "hash",
                                              ctl_json_hex32(h->hash), "size", (json_int_t)h->size,
                                              "name", h->name.ptr, h->name.len, "sources",
                                              (json_int_t)h->n_sources, "peers", peers));
    }
    return list;
}

static void on_search_done(const struct msg_search_result *res, void *arg)
{
    struct search_wait *w = arg;
    struct ctl_conn *conn = w->conn;
    ctl_conn_set_closed_cb(conn, NULL, NULL);
    if (res == NULL) {
        ctl_reply_error(conn, "the supernode did not answer in time");
    } else if (w->for_get) {
        const struct op_query_hit *hit = op_queries_hit(w->d->queries, w->get.hash);
        if (hit == NULL || hit->n_sources == 0) {
            char hex[CTL_HEX32_LEN + 1];
            ctl_hex32(w->get.hash, hex);
            ctl_reply_error(conn, "no peer shares %s right now", hex);
        } else {
            start_get(w->d, conn, &w->get, hit->name, hit->size);
        }
    } else {
        ctl_reply(conn, json_pack("{s:o}", "hits", hits_json(res)), true);
    }
    free(w);
}

static void handle_search(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_search *req)
{
    if (!op_session_attached(d->session)) {
        ctl_reply_error(conn, "not attached to a supernode yet (trying %s); try again shortly",
                        op_session_endpoint(d->session));
        return;
    }
    struct wire_str words[CTL_MAX_WORDS];
    for (size_t i = 0; i < req->n_words; i++)
        words[i] = wire_str_from(req->words[i]);
    struct msg_search s = {
        .max_results = (uint16_t)req->max, .keywords = words, .n_keywords = req->n_words};
    struct search_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        ctl_reply_error(conn, "out of memory");
        return;
    }
    w->d = d;
    w->conn = conn;
    wait_for_answer(w, &s, req->timeout_ms, "cannot send the search to the supernode");
}

/* ---- dispatch ---------------------------------------------------------------------- */

static void on_request(struct ctl_conn *conn, const struct ctl_request *req, void *arg)
{
    struct op_daemon *d = arg;
    switch (req->cmd) {
    case CTL_CMD_STATUS:
        reply_status(d, conn);
        return;
    case CTL_CMD_SEARCH:
        handle_search(d, conn, &req->u.search);
        return;
    case CTL_CMD_GET:
        handle_get(d, conn, &req->u.get);
        return;
    case CTL_CMD_DOWNLOADS:
        reply_downloads(d, conn);
        return;
    case CTL_CMD_PEERS:
        ctl_reply_error(conn, "\"peers\" is not served by this version");
        return;
    case CTL_CMD_METRICS:
        metrics_ctl_reply(conn, op_metrics_render, d);
        return;
    }
}

int op_control_start(struct op_daemon *d, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", d->s->state_dir, OP_CONTROL_SOCKET);
    return ctl_server_new(evloop_base(d->loop), path, on_request, d, &d->ctl, err, errlen);
}
