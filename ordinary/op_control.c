/* op_control.c - what `sova-peer status/search/get/downloads` ask the
 * daemon, answered over the control socket (docs/CONTROL.md). */
#include "op_control.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "op_paths.h"
#include "op_internal.h"
#include "op_ui.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- status ------------------------------------------------------------------- */

static json_t *addr_json(const struct wire_addr *a)
{
    char buf[64];
    return a ? json_string(wire_addr_format(a, buf, sizeof(buf))) : json_null();
}

/* The way each download of this run took, for "why am I relayed?", and
 * the SHA-256 of those finished (what sha256sum prints for the file). */
static void add_transfer(const struct op_fetch_progress *p, void *arg)
{
    json_t *o = json_pack("{s:s, s:o, s:s, s:s}", "name", p->name, "id", ctl_json_hex32(p->id),
                          "state", op_fetch_state_name(p->state), "via",
                          p->via && p->via[0] ? p->via : "not connected yet");
    if (o && p->sha256)
        json_object_set_new(o, "sha256", ctl_json_hex32(p->sha256));
    if (o && p->route && p->route[0])
        json_object_set_new(o, "route", json_string(p->route));
    if (o && p->waiting)
        json_object_set_new(o, "waiting", json_string(p->waiting));
    json_array_append_new(arg, o);
}

json_t *op_control_status_json(struct op_daemon *d)
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
    const char *refusal = op_session_refusal(d->session);
    json_object_set_new(json_object_get(o, "supernode"), "refused",
                        refusal ? json_string(refusal) : json_null());
    json_object_set_new(o, "downloads_running",
                        json_integer((json_int_t)op_fetch_running(d->fetcher)));
    json_object_set_new(o, "downloads_bytes_in",
                        json_integer((json_int_t)op_fetch_bytes_in(d->fetcher)));
    json_object_set_new(o, "reach", reach);
    json_object_set_new(o, "api", d->api_address[0] ? json_string(d->api_address) : json_null());
    json_object_set_new(o, "credit", op_credit_status_json(d->credit));
    json_object_set_new(o, "limits", op_limits_json(d->bw));
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
    json_object_set_new(json_object_get(o, "shares"), "folders", op_folders_json(d->folders));
    json_t *transfers = json_array();
    op_fetch_foreach(d->fetcher, add_transfer, transfers);
    json_object_set_new(o, "transfers", transfers);
    return o;
}

static void reply_status(struct op_daemon *d, struct ctl_conn *conn)
{
    ctl_reply(conn, op_control_status_json(d), true);
}

/* ---- downloads ---------------------------------------------------------------- */

static int add_bad_source(const struct op_store_bad_source *b, void *arg)
{
    char id[NODE_ID_STR_LEN + 1];
    node_id_format(b->peer_id, id);
    json_array_append_new(arg, json_pack("{s:s, s:b, s:I, s:s}", "peer", id, "banned", b->banned,
                                         "failures", (json_int_t)b->failures, "reason", b->reason));
    return 0;
}

/* The sources of download id that lied or refused, with why. */
static json_t *bad_sources_json(struct op_daemon *d, const uint8_t id[WIRE_HASH_LEN])
{
    json_t *list = json_array();
    if (list != NULL && op_store_bad_source_foreach(d->store, id, add_bad_source, list) != 0)
        log_warn("op", "cannot list bad sources: %s", op_store_errmsg(d->store));
    return list;
}

static void set_size(json_t *o, bool known, uint64_t size, uint64_t hint)
{
    json_object_set_new(o, "size", known ? json_integer((json_int_t)size) : json_null());
    json_object_set_new(o, "size_hint", json_integer((json_int_t)hint));
}

static json_t *progress_json(struct op_daemon *d, const struct op_fetch_progress *p)
{
    json_t *o = json_pack(
        "{s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:{s:I, s:I, s:I}}", "id",
        ctl_json_hex32(p->id), "name", p->name, "chunk_size", (json_int_t)p->chunk_size,
        "bytes_have", (json_int_t)p->bytes_have, "chunks_have", (json_int_t)p->chunks_have,
        "chunks", (json_int_t)p->n_chunks, "chunks_fetched", (json_int_t)p->chunks_fetched,
        "chunks_failed", (json_int_t)p->chunks_failed, "rate_bps", (json_int_t)p->rate_bps, "state",
        op_fetch_state_name(p->state), "sources", "known", (json_int_t)p->sources_known,
        "connected", (json_int_t)p->sources_connected, "banned", (json_int_t)p->sources_banned);
    if (o == NULL)
        return NULL;
    set_size(o, p->size_known, p->size, p->size_hint);
    if (p->path)
        json_object_set_new(o, "path", json_string(p->path));
    if (p->sha256)
        json_object_set_new(o, "sha256", ctl_json_hex32(p->sha256));
    if (p->via)
        json_object_set_new(o, "via", json_string(p->via));
    if (p->first_byte_ms)
        json_object_set_new(o, "first_byte_ms", json_integer((json_int_t)p->first_byte_ms));
    if (p->route && p->route[0])
        json_object_set_new(o, "route", json_string(p->route));
    if (p->error)
        json_object_set_new(o, "error", json_string(p->error));
    json_object_set_new(o, "priority", json_string(ctl_priority_name(p->priority)));
    if (p->queue_pos > 0)
        json_object_set_new(o, "queue_position", json_integer(p->queue_pos));
    if (p->waiting)
        json_object_set_new(o, "waiting", json_string(p->waiting));
    json_object_set_new(o, "limit_kbps", json_integer((json_int_t)(p->limit_bps / 1000)));
    json_object_set_new(o, "throttled", json_boolean(p->throttled));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)p->bytes_in));
    if (d != NULL)
        json_object_set_new(o, "bad_sources", bad_sources_json(d, p->id));
    return o;
}

struct listing {
    struct op_daemon *d;
    json_t *list;
};

static void add_running(const struct op_fetch_progress *p, void *arg)
{
    struct listing *l = arg;
    json_array_append_new(l->list, progress_json(l->d, p));
}

static bool listed(json_t *list, const uint8_t id[WIRE_HASH_LEN])
{
    char hex[CTL_HEX32_LEN + 1];
    ctl_hex32(id, hex);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *have = json_string_value(json_object_get(v, "id"));
        if (have != NULL && strcmp(have, hex) == 0)
            return true;
    }
    return false;
}

static int add_stored(const struct op_store_download *row, void *arg)
{
    struct listing *l = arg;
    if (listed(l->list, row->id))
        return 0; /* this run's view is fresher */
    uint64_t have = (uint64_t)row->n_have * row->chunk_size;
    json_t *o = json_pack("{s:o, s:s, s:I, s:I, s:I, s:I, s:s}", "id", ctl_json_hex32(row->id),
                          "name", row->name, "chunk_size", (json_int_t)row->chunk_size,
                          "bytes_have", (json_int_t)(have > row->size ? row->size : have),
                          "chunks_have", (json_int_t)row->n_have, "chunks",
                          (json_int_t)row->n_chunks, "state", op_download_state_name(row->state));
    if (o == NULL)
        return 0;
    set_size(o, row->has_manifest, row->size, row->size_hint);
    if (row->path)
        json_object_set_new(o, "path", json_string(row->path));
    if (row->has_sha256)
        json_object_set_new(o, "sha256", ctl_json_hex32(row->sha256));
    if (row->error)
        json_object_set_new(o, "error", json_string(row->error));
    json_object_set_new(o, "priority", json_string(ctl_priority_name(row->priority)));
    json_object_set_new(o, "bad_sources", bad_sources_json(l->d, row->id));
    json_array_append_new(l->list, o);
    return 0;
}

/* Downloads of a Sova before file IDs: listed by the SHA-256 they had. */
static int add_legacy(const struct op_store_legacy *old, void *arg)
{
    struct listing *l = arg;
    json_t *o = json_pack("{s:o, s:s, s:I, s:s, s:b}", "sha256", ctl_json_hex32(old->sha256),
                          "name", old->name, "size", (json_int_t)old->size, "state",
                          op_download_state_name(old->state), "legacy", true);
    if (o != NULL && old->error != NULL)
        json_object_set_new(o, "error", json_string(old->error));
    json_array_append_new(l->list, o);
    return 0;
}

static void reply_downloads(struct op_daemon *d, struct ctl_conn *conn)
{
    struct listing l = {d, json_array()};
    op_fetch_foreach(d->fetcher, add_running, &l);
    op_store_download_foreach(d->store, false, add_stored, &l);
    op_store_legacy_foreach(d->store, add_legacy, &l);
    ctl_reply(conn, json_pack("{s:o}", "downloads", l.list), true);
}

/* ---- get ------------------------------------------------------------------------ */

static void add_accepted(const struct op_fetch_progress *p, void *arg)
{
    *(json_t **)arg = progress_json(NULL, p);
}

/* get --background: the download as the daemon took it (running, queued
 * and where, or complete already). */
static void reply_accepted(struct op_daemon *d, struct ctl_conn *conn,
                           const uint8_t id[WIRE_HASH_LEN])
{
    json_t *o = NULL;
    if (!op_fetch_lookup(d->fetcher, id, add_accepted, &o)) {
        struct op_store_download row = {0};
        bool found = false;
        if (op_store_download_get(d->store, id, &row, &found) == 0 && found) {
            o = json_pack("{s:o, s:s, s:s}", "id", ctl_json_hex32(id), "name", row.name, "state",
                          op_download_state_name(row.state));
            if (o != NULL && row.path != NULL)
                json_object_set_new(o, "path", json_string(row.path));
        }
        op_store_download_clear(&row);
    }
    if (o == NULL) {
        ctl_reply_error(conn, "the download was accepted but cannot be described");
        return;
    }
    ctl_reply(conn, json_pack("{s:o}", "accepted", o), true);
}

/* Not attached: say why if a supernode refused us. */
static void reply_not_attached(struct op_daemon *d, struct ctl_conn *conn)
{
    const char *refusal = op_session_refusal(d->session);
    if (refusal != NULL)
        ctl_reply_error(conn, "not attached to a supernode: %s", refusal);
    else
        ctl_reply_error(conn, "not attached to a supernode yet (trying %s); try again shortly",
                        op_session_endpoint(d->session));
}

/* A CLI following one download. */
struct get_follow {
    struct op_daemon *d;
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
    if (p->state == OP_FETCH_RUNNING || p->state == OP_FETCH_QUEUED) {
        ctl_reply(g->conn, json_pack("{s:o}", "progress", progress_json(NULL, p)), false);
        return;
    }
    ctl_conn_set_closed_cb(g->conn, NULL, NULL);
    if (p->state == OP_FETCH_DONE)
        ctl_reply(g->conn, json_pack("{s:o}", "download", progress_json(g->d, p)), true);
    else if (p->cancelled)
        ctl_reply_error(g->conn, "download of %s cancelled (its partial data deleted)", p->name);
    else if (p->state == OP_FETCH_PAUSED)
        ctl_reply_error(g->conn, "download of %s paused: `sova-peer resume` continues it", p->name);
    else
        ctl_reply_error(g->conn, "download of %s failed: %s", p->name, p->error);
    free(g); /* the watch ends with the final report */
}

static void start_get(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_get *req,
                      const char *name, uint64_t size_hint)
{
    struct get_follow *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        ctl_reply_error(conn, "out of memory");
        return;
    }
    g->d = d;
    g->conn = conn;
    char err[256];
    const char *use_name = req->name[0] ? req->name : name;
    struct op_fetch_watch *watch = NULL;
    unsigned priority =
        req->priority == CTL_PRIORITY_UNSET ? OP_FETCH_PRIORITY_KEEP : req->priority;
    /* --background: the answer is the download as accepted, not its end */
    op_fetch_watch_fn *fn = req->background ? NULL : on_get_progress;
    int rc = op_fetch_get(d->fetcher, req->id, use_name, size_hint, req->out[0] ? req->out : NULL,
                          priority, fn, g, &watch, err, sizeof(err));
    if (rc != 0) {
        free(g);
        ctl_reply_error(conn, "%s", err);
        return;
    }
    if (req->background) {
        free(g);
        g = NULL;
        reply_accepted(d, conn, req->id);
    }
    /* No watch: it was done already, answered, and g is freed. */
    if (watch != NULL && g != NULL) {
        g->watch = watch;
        ctl_conn_set_closed_cb(conn, on_get_client_gone, g);
    }
    const struct op_query_hit *hit = op_queries_hit(d->queries, req->id);
    if (hit != NULL)
        op_fetch_add_sources(d->fetcher, req->id, hit->sources, hit->n_sources);
}

/* A CLI waiting for the supernode's answer: to a search, or to a get that
 * needs sources first. Freed when the answer or the timeout comes, or when
 * the client leaves (the answer, if it comes, still fills the hit cache). */
struct search_wait {
    struct op_daemon *d;
    struct ctl_conn *conn;
    struct op_query *query; /* ours to cancel until it is done */
    bool for_get;           /* a get waiting for sources of get.id */
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
    const struct op_query_hit *hit = op_queries_hit(d->queries, req->id);
    if (hit != NULL) {
        start_get(d, conn, req, hit->name, hit->size);
        return;
    }
    struct op_store_download row = {0};
    bool found = false;
    if (op_store_download_get(d->store, req->id, &row, &found) == 0 && found) {
        /* Known from an earlier run: sources come by ID (the fetcher asks). */
        start_get(d, conn, req, row.name, row.size_hint);
        op_store_download_clear(&row);
        return;
    }
    /* Never seen: ask the supernode who has it, then start. */
    if (!op_session_attached(d->session)) {
        reply_not_attached(d, conn);
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
    struct msg_search s = {.max_results = OP_FETCH_SOURCES_SEARCH, .has_hash = true};
    memcpy(s.hash, req->id, WIRE_HASH_LEN);
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
        json_array_append_new(list, json_pack("{s:o, s:I, s:s%, s:I, s:o}", "id",
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
        const struct op_query_hit *hit = op_queries_hit(w->d->queries, w->get.id);
        if (hit == NULL || hit->n_sources == 0) {
            char hex[CTL_HEX32_LEN + 1];
            ctl_hex32(w->get.id, hex);
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
        reply_not_attached(d, conn);
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

/* ---- peers ----------------------------------------------------------------------------- */

struct peers_listing {
    struct op_daemon *d;
    json_t *list;
};

/* A relay circuit goes through our primary supernode: which, and where. */
static json_t *relay_json(struct op_daemon *d)
{
    const char *sn = op_session_sn_id(d->session);
    return json_pack("{s:o, s:s}", "supernode", sn ? json_string(sn) : json_null(), "address",
                     op_session_endpoint(d->session));
}

static json_t *peer_json(struct op_daemon *d, const uint8_t peer_id[WIRE_ID_LEN],
                         const struct wire_addr *addr, const char *path, const char *direction,
                         const char *connection, uint64_t rate_bps, uint64_t bytes)
{
    char id[NODE_ID_STR_LEN + 1];
    node_id_format(peer_id, id);
    json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I}", "id", id, "address",
                          addr_json(addr), "path", path, "direction", direction, "connection",
                          connection, "rate_bps", (json_int_t)rate_bps, "bytes", (json_int_t)bytes,
                          "credit", (json_int_t)op_credit_of(d->credit, peer_id));
    if (o != NULL && strcmp(path, "relay") == 0)
        json_object_set_new(o, "relay", relay_json(d));
    return o;
}

static void add_upload_peer(const struct op_server_peer *p, void *arg)
{
    struct peers_listing *l = arg;
    json_t *o = peer_json(l->d, p->peer_id, p->addr, p->path, "upload",
                          strcmp(p->path, "reversal") == 0 ? "outgoing" : "incoming", p->rate_bps,
                          p->bytes_sent);
    if (o != NULL)
        json_object_set_new(o, "state", json_string(p->uploading ? "uploading" : "idle"));
    json_array_append_new(l->list, o);
}

static void add_source(const struct op_fetch_source_info *s, void *arg)
{
    struct peers_listing *l = arg;
    json_t *o = peer_json(l->d, s->peer_id, s->addr, s->path, "download",
                          s->incoming ? "incoming" : "outgoing", s->rate_bps, s->bytes);
    if (o != NULL) {
        json_object_set_new(o, "state", json_string(s->state));
        json_object_set_new(
            o, "download",
            json_pack("{s:o, s:s}", "id", ctl_json_hex32(s->download_id), "name", s->name));
    }
    json_array_append_new(l->list, o);
}

/* `sova-peer peers`: the peers connected to us (uploads) and the sources
 * of each running download. */
static void reply_peers(struct op_daemon *d, struct ctl_conn *conn)
{
    struct peers_listing l = {d, json_array()};
    op_server_foreach_peer(d->server, add_upload_peer, &l);
    op_fetch_foreach_source(d->fetcher, add_source, &l);
    ctl_reply(conn, json_pack("{s:o}", "peers", l.list), true);
}

/* ---- transfer control ----------------------------------------------------------------- */

static void handle_xfer(struct op_daemon *d, struct ctl_conn *conn, enum ctl_cmd cmd,
                        const struct ctl_xfer *req)
{
    char err[512];
    char *deleted = NULL;
    int rc;
    switch (cmd) {
    case CTL_CMD_PAUSE:
        rc = op_fetch_pause(d->fetcher, req->id, err, sizeof(err));
        break;
    case CTL_CMD_RESUME:
        rc = op_fetch_resume(d->fetcher, req->id, err, sizeof(err));
        break;
    case CTL_CMD_CANCEL:
        rc = op_fetch_cancel(d->fetcher, req->id, err, sizeof(err));
        break;
    case CTL_CMD_REMOVE:
        rc = op_fetch_remove(d->fetcher, req->id, req->delete_data, &deleted, err, sizeof(err));
        break;
    case CTL_CMD_PRIORITY:
        rc = op_fetch_set_priority(d->fetcher, req->id, req->priority, err, sizeof(err));
        break;
    default:
        rc = SOVA_ERR_INTERNAL;
        snprintf(err, sizeof(err), "internal error: %s is not transfer control", ctl_cmd_name(cmd));
        break;
    }
    if (rc != 0) {
        ctl_reply_error(conn, "%s", err);
        return;
    }
    json_t *o = NULL;
    if (!op_fetch_lookup(d->fetcher, req->id, add_accepted, &o))
        o = json_pack("{s:o, s:s}", "id", ctl_json_hex32(req->id), "state",
                      cmd == CTL_CMD_CANCEL ? "cancelled" : "removed");
    if (o != NULL && deleted != NULL)
        json_object_set_new(o, "deleted", json_string(deleted));
    free(deleted);
    ctl_reply(conn, json_pack("{s:o}", "download", o), true);
}

/* ---- share folders ------------------------------------------------------------------ */

static void reply_folders(struct op_daemon *d, struct ctl_conn *conn)
{
    ctl_reply(conn, json_pack("{s:o}", "folders", op_folders_json(d->folders)), true);
}

static void handle_folder(struct op_daemon *d, struct ctl_conn *conn, enum ctl_cmd cmd,
                          const char *path)
{
    char err[PATH_MAX + 256];
    int rc = cmd == CTL_CMD_SHARE_ADD ? op_folders_add(d->folders, path, err, sizeof(err))
                                      : op_folders_remove(d->folders, path, err, sizeof(err));
    if (rc != 0)
        ctl_reply_error(conn, "%s", err);
    else
        reply_folders(d, conn);
}

/* ---- limits ------------------------------------------------------------------------ */

static uint64_t given(unsigned v)
{
    return v == CTL_UNSET ? OP_LIMITS_UNSET : v;
}

static void handle_limits(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_limits *req)
{
    struct op_limits_change c = {
        .upload_kbps = given(req->upload_kbps),
        .download_kbps = given(req->download_kbps),
        .alt_upload_kbps = given(req->alt_upload_kbps),
        .alt_download_kbps = given(req->alt_download_kbps),
        .turtle = req->turtle[0] ? req->turtle : NULL,
    };
    bool change = c.upload_kbps != OP_LIMITS_UNSET || c.download_kbps != OP_LIMITS_UNSET ||
                  c.alt_upload_kbps != OP_LIMITS_UNSET || c.alt_download_kbps != OP_LIMITS_UNSET ||
                  c.turtle != NULL;
    char err[256];
    if (change && op_limits_change(d->bw, &c, err, sizeof(err)) != 0) {
        ctl_reply_error(conn, "%s", err);
        return;
    }
    ctl_reply(conn, json_pack("{s:o}", "limits", op_limits_json(d->bw)), true);
}

static void handle_limit(struct op_daemon *d, struct ctl_conn *conn, const struct ctl_limit *req)
{
    char hex[CTL_HEX32_LEN + 1];
    ctl_hex32(req->id, hex);
    if (op_fetch_set_download_limit(d->fetcher, req->id, (uint64_t)req->kbps * 1000) != 0) {
        ctl_reply_error(conn, "no running download %s (see sova-peer downloads)", hex);
        return;
    }
    ctl_reply(conn, json_pack("{s:s, s:I}", "id", hex, "limit_kbps", (json_int_t)req->kbps), true);
}

/* ---- dispatch ---------------------------------------------------------------------- */

json_t *op_control_progress_json(const struct op_fetch_progress *p)
{
    return progress_json(NULL, p);
}

/* ---- the web UI ------------------------------------------------------------------ */

static void handle_ui_login(struct op_daemon *d, struct ctl_conn *conn)
{
    char url[256], token[OP_UI_SECRET_HEX + 1];
    if (d->ui == NULL) {
        ctl_reply_error(conn, d->api_address[0] == '\0'
                                  ? "the web UI is off: set api-listen = " OP_PATHS_INIT_API_LISTEN
                                    " in the peer's configuration and restart the daemon"
                                  : "the web UI is off (ui = no in the configuration)");
        return;
    }
    if (op_ui_token_new(d->ui, link_now_ms(), token) != 0) {
        ctl_reply_error(conn, "the random generator failed");
        return;
    }
    snprintf(url, sizeof(url), "%s/login?token=%s", d->ui_base, token);
    OPENSSL_cleanse(token, sizeof(token));
    ctl_reply(conn,
              json_pack("{s:s, s:s, s:I}", "url", url, "address", d->api_address, "expires_s",
                        (json_int_t)(OP_UI_TOKEN_TTL_MS / 1000)),
              true);
    OPENSSL_cleanse(url, sizeof(url));
}

void op_control_request(struct ctl_conn *conn, const struct ctl_request *req, void *arg)
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
        reply_peers(d, conn);
        return;
    case CTL_CMD_METRICS:
        metrics_ctl_reply(conn, op_metrics_render, d);
        return;
    case CTL_CMD_PAUSE:
    case CTL_CMD_RESUME:
    case CTL_CMD_CANCEL:
    case CTL_CMD_REMOVE:
    case CTL_CMD_PRIORITY:
        handle_xfer(d, conn, req->cmd, &req->u.xfer);
        return;
    case CTL_CMD_SHARE_ADD:
    case CTL_CMD_SHARE_REMOVE:
        handle_folder(d, conn, req->cmd, req->u.folder.path);
        return;
    case CTL_CMD_SHARES:
        reply_folders(d, conn);
        return;
    case CTL_CMD_LIMITS:
        handle_limits(d, conn, &req->u.limits);
        return;
    case CTL_CMD_LIMIT:
        handle_limit(d, conn, &req->u.limit);
        return;
    case CTL_CMD_UI_LOGIN:
        handle_ui_login(d, conn);
        return;
    }
}

int op_control_start(struct op_daemon *d, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", d->s->state_dir, OP_CONTROL_SOCKET);
    return ctl_server_new(evloop_base(d->loop), path, op_control_request, d, &d->ctl, err, errlen);
}
