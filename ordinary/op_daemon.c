/* op_daemon.c - the sova-peer daemon: starts its parts and wires them.
 *
 *   op_share   scans and hashes the share folder (worker thread)
 *   op_session keeps us attached to a supernode
 *   op_server  serves our files to other peers
 *   op_fetcher downloads
 *   op_queries searches sent to the supernode, and the hits they brought
 *   op_control the control socket of the CLI
 * This file connects them: publish what the share holds whenever we
 * (re)attach or the share changes; route supernode answers to whoever asked.
 */
#include "op_daemon.h"
#include "err.h"
#include "log.h"
#include "nat_netwatch.h"
#include "op_api.h"
#include "op_control.h"
#include "op_fetch_file.h"
#include "op_internal.h"

#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OP_MAX_OUTPUT_BYTES (8u * 1024 * 1024)

/* ---- publishing --------------------------------------------------------------- */

static void record_from_file(struct msg_publish_record *r, const struct op_share_file *f,
                             uint8_t action)
{
    memset(r, 0, sizeof(*r));
    r->action = action;
    memcpy(r->hash, f->id, WIRE_HASH_LEN);
    r->size = f->size;
    r->chunk_size = OP_SHARE_KEEP_CHUNK;
    r->name = wire_str_from(f->name);
}

/* Collects records and sends them in PUBLISH batches. */
struct publisher {
    struct op_daemon *d;
    struct msg_publish_record recs[OP_PUBLISH_BATCH];
    size_t n;
    size_t total;
};

static void publisher_flush(struct publisher *p)
{
    if (p->n == 0)
        return;
    struct msg m = {.type = MSG_PUBLISH};
    m.u.publish.records = p->recs;
    m.u.publish.n_records = p->n;
    op_session_send(p->d->session, &m);
    p->total += p->n;
    p->n = 0;
}

static void publisher_add(struct publisher *p, const struct op_share_file *f, uint8_t action)
{
    record_from_file(&p->recs[p->n++], f, action);
    if (p->n == OP_PUBLISH_BATCH)
        publisher_flush(p);
}

static void publish_all(struct op_daemon *d)
{
    const struct op_share_result *res = d->share ? op_share_current(d->share) : NULL;
    if (res == NULL || !op_session_attached(d->session))
        return;
    struct publisher *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    p->d = d;
    for (size_t i = 0; i < res->n_files; i++)
        publisher_add(p, &res->files[i], MSG_PUBLISH_ADD);
    publisher_flush(p);
    log_info("op", "published %zu shared files", p->total);
    free(p);
}

/* The share changed: tell the supernode what was added and what is gone. A
 * file ID still present under another path is not removed. With every_file,
 * every file is (re)published, not only the added ones: the first result of
 * a replaced worker is compared with the store, whose rows may hold files a
 * cancelled scan hashed but no result published (the supernode takes a
 * record it has once). */
static void publish_changes(struct op_daemon *d, const struct op_share_result *res, bool every_file)
{
    if (!op_session_attached(d->session))
        return; /* everything is published on attach */
    struct publisher *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    p->d = d;
    for (size_t i = 0; i < res->n_removed; i++)
        if (op_share_result_lookup(res, res->removed[i].id) == NULL)
            publisher_add(p, &res->removed[i], MSG_PUBLISH_REMOVE);
    for (size_t i = 0; i < res->n_changed; i++) {
        if (op_share_result_lookup(res, res->changed[i].before.id) == NULL)
            publisher_add(p, &res->changed[i].before, MSG_PUBLISH_REMOVE);
        publisher_add(p, res->changed[i].now, MSG_PUBLISH_ADD);
    }
    if (every_file) {
        for (size_t i = 0; i < res->n_files; i++)
            publisher_add(p, &res->files[i], MSG_PUBLISH_ADD);
    } else {
        for (size_t i = 0; i < res->n_added; i++)
            publisher_add(p, res->added[i], MSG_PUBLISH_ADD);
    }
    publisher_flush(p);
    if (p->total)
        log_info("op", "share changed: %zu added, %zu changed, %zu removed", res->n_added,
                 res->n_changed, res->n_removed);
    free(p);
}

static void on_share_done(const struct op_share_result *res, void *arg)
{
    struct op_daemon *d = arg;
    if (res->status != 0) {
        log_warn("op", "share scan failed: %s", res->error);
        return;
    }
    if (!d->share_ready)
        log_info("op", "share scanned: %zu files, %u hashed (%llu bytes), %u skipped", res->n_files,
                 res->files_hashed, (unsigned long long)res->bytes_hashed, res->files_skipped);
    if (!d->share_ready) {
        /* The first scan: everything is news to the supernode. */
        d->share_ready = true;
        d->share_replaced = false;
        publish_all(d);
        return;
    }
    publish_changes(d, res, d->share_replaced);
    d->share_replaced = false;
}

/* ---- searches ------------------------------------------------------------------------ */

/* Every answer's sources go to the fetcher too: a download in progress may
 * want them, whoever asked. */
static void on_search_result(struct op_daemon *d, const struct msg_search_result *r)
{
    for (size_t i = 0; i < r->n_hits; i++)
        op_fetch_add_sources(d->fetcher, r->hits[i].hash, r->hits[i].sources, r->hits[i].n_sources);
    op_queries_result(d->queries, r, link_now_ms());
}

/* ---- what the fetcher asks of the supernode ------------------------------------------- */

static void fetch_locate(const uint8_t peer_id[WIRE_ID_LEN], void *arg)
{
    struct op_daemon *d = arg;
    struct msg m = {.type = MSG_LOCATE};
    memcpy(m.u.locate.peer_id, peer_id, WIRE_ID_LEN);
    op_session_send(d->session, &m);
}

static void fetch_find_sources(const uint8_t id[WIRE_HASH_LEN], const char *name, void *arg)
{
    struct op_daemon *d = arg;
    (void)name;
    /* Every hit of the ID, not the first: hits that claim another size
     * for it name sources too (a checked manifest tells the size). */
    struct msg_search search = {.max_results = OP_FETCH_SOURCES_SEARCH, .has_hash = true};
    memcpy(search.hash, id, WIRE_HASH_LEN);
    /* Nobody waits: the answer reaches the fetcher in on_search_result. */
    op_query_send(d->queries, &search, 0, NULL, NULL, NULL);
}

/* ---- the supernode session ----------------------------------------------------------- */

/* The host's addresses or routes changed (nat_netwatch). */
static void on_network_changed(void *arg)
{
    struct op_daemon *d = arg;
    op_reach_network_changed(d->reach);
}

static void on_attached(void *arg)
{
    struct op_daemon *d = arg;
    d->published = 0;
    publish_all(d);
    op_reach_attached(d->reach);
    op_credit_attached(d->credit);
}

static void on_detached(void *arg)
{
    struct op_daemon *d = arg;
    nat_relay_link_down(d->relay); /* circuits run over the primary session */
}

/* Not while a relay circuit runs over the primary session: moving would cut it. */
static bool may_move(void *arg)
{
    struct op_daemon *d = arg;
    struct nat_relay_stats st;
    nat_relay_stats(d->relay, &st);
    return st.circuits == 0;
}

/* ---- the connection ladder: reversal and relay ---------------------------------------- */

/* What our NAT does to ports, from our supernode sessions (nat_path.h). */
static enum nat_type our_nat(const struct op_daemon *d)
{
    struct wire_addr seen[2], local[2];
    size_t n = op_session_nat_sample(d->session, seen, local);
    return nat_type_guess(seen, local, n);
}

static bool punch_keeps_ports(void *arg)
{
    enum nat_type t = our_nat(arg);
    return t == NAT_TYPE_PRESERVES || t == NAT_TYPE_NONE;
}

static int punch_send(const struct msg_punch *note, void *arg)
{
    struct op_daemon *d = arg;
    return op_session_send(d->session, &(struct msg){.type = MSG_PUNCH, .u.punch = *note});
}

static void fetch_self(struct op_fetch_self *out, void *arg)
{
    struct op_daemon *d = arg;
    out->reach = op_reach_self(d->reach);
    out->attached = op_session_attached(d->session);
    out->relay_offered = op_session_relay_offered(d->session);
    out->punch_offered = op_session_sn_offers(d->session, MSG_CAP_PUNCH);
    out->nat = (uint8_t)our_nat(d);
    const struct wire_addr *seen = op_session_observed(d->session);
    out->has_observed = seen != NULL;
    if (seen)
        out->observed = *seen;
}

static int fetch_reverse(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                         void *arg)
{
    struct op_daemon *d = arg;
    const struct wire_addr *me = op_reach_public_addr(d->reach);
    if (me == NULL)
        return SOVA_ERR_NOT_FOUND;
    struct msg m = {.type = MSG_CONNECT};
    memcpy(m.u.connect.peer_id, peer_id, WIRE_ID_LEN);
    memcpy(m.u.connect.token, token, WIRE_TOKEN_LEN);
    m.u.connect.addrs = (struct wire_addr *)me;
    m.u.connect.n_addrs = 1;
    return op_session_send(d->session, &m);
}

static int fetch_relay(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                       unsigned timeout_ms, nat_relay_open_fn *fn, void *fn_arg,
                       struct nat_relay_circuit **out, void *arg)
{
    struct op_daemon *d = arg;
    return nat_relay_open(d->relay, identity_id(d->id), peer_id, token, timeout_ms, fn, fn_arg,
                          out);
}

static void fetch_report(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t id[WIRE_HASH_LEN],
                         uint8_t reason, void *arg)
{
    struct op_daemon *d = arg;
    struct msg m = {.type = MSG_REPORT};
    memcpy(m.u.report.peer_id, peer_id, WIRE_ID_LEN);
    memcpy(m.u.report.hash, id, WIRE_HASH_LEN);
    m.u.report.reason = reason;
    op_session_send(d->session, &m);
}

/* A download completed: the on-complete hook, if configured (op_hook.h). */
static void fetch_completed(const struct op_fetch_progress *p, void *arg)
{
    struct op_daemon *d = arg;
    struct op_hook_file file = {
        .path = p->path, .name = p->name, .id = p->id, .sha256 = p->sha256, .size = p->size};
    if (p->path != NULL)
        op_hook_run(d->hook, d->s->on_complete, d->s->on_complete_timeout_s, &file);
}

/* ---- credit (docs/CREDITS.md) ---------------------------------------------------------- */

static int fetch_receipt(const uint8_t source_id[WIRE_ID_LEN], const uint8_t id[WIRE_HASH_LEN],
                         uint64_t size, const uint8_t root[WIRE_HASH_LEN], uint64_t bytes,
                         struct msg_receipt *out, void *arg)
{
    struct op_daemon *d = arg;
    return op_credit_sign(d->credit, source_id, id, size, root, bytes, out);
}

static uint64_t serve_credit_of(const uint8_t peer_id[WIRE_ID_LEN], void *arg)
{
    struct op_daemon *d = arg;
    return op_credit_of(d->credit, peer_id);
}

static void serve_receipt(const uint8_t peer_id[WIRE_ID_LEN], const struct msg_receipt *r,
                          void *arg)
{
    struct op_daemon *d = arg;
    op_credit_receipt_in(d->credit, peer_id, r);
}

static void credit_known(const uint8_t peer_id[WIRE_ID_LEN], uint64_t credit, void *arg)
{
    struct op_daemon *d = arg;
    op_server_credit_known(d->server, peer_id, credit);
}

static int relay_send(const struct msg *m, void *arg)
{
    struct op_daemon *d = arg;
    return op_session_send(d->session, m);
}

/* Someone reaches us through a relay circuit: serve it like any peer, over
 * TLS inside the circuit, expecting the origin's key. */
static void relay_incoming(struct bufferevent *stream, const uint8_t origin_id[WIRE_ID_LEN],
                           const uint8_t token[WIRE_TOKEN_LEN], void *arg)
{
    struct op_daemon *d = arg;
    (void)token;
    SSL *ssl = NULL;
    if (tls_ctx_server(d->tls, origin_id, &ssl) != 0) {
        bufferevent_free(stream);
        return;
    }
    char id[NODE_ID_STR_LEN + 1], name[NODE_ID_SHORT_LEN + 8];
    node_id_format(origin_id, id);
    snprintf(name, sizeof(name), "%.*s", NODE_ID_SHORT_LEN, id);
    log_info("op", "%s: reaches us through a relay circuit", name);
    op_server_wrap(d->server, stream, ssl, name);
}

static bool adopt_reversal(struct link *l, void *arg)
{
    struct op_daemon *d = arg;
    return op_fetch_adopt(d->fetcher, l);
}

/* SN_LIST: remember every supernode of the federation for later starts. */
static void on_supernode_seen(const struct msg_sn_info *sn, void *arg)
{
    struct op_daemon *d = arg;
    char addrs[OP_SESSION_ENDPOINT_MAX * 4] = "";
    size_t used = 0;
    for (size_t i = 0; i < sn->n_addrs && i < 4; i++) {
        char one[64];
        wire_addr_format(&sn->addrs[i], one, sizeof(one));
        int w = snprintf(addrs + used, sizeof(addrs) - used, "%s%s", used ? "," : "", one);
        if (w < 0 || (size_t)w >= sizeof(addrs) - used)
            break;
        used += (size_t)w;
    }
    if (used > 0 && op_store_host_put(d->store, sn->sn_id, addrs) != 0)
        log_warn("op", "cannot remember supernode: %s", op_store_errmsg(d->store));
}

/* The host cache: supernodes from earlier runs are candidates too. */
static int add_cached_supernode(const struct op_store_host *h, void *arg)
{
    struct op_daemon *d = arg;
    const char *comma = strchr(h->addrs, ',');
    char first[OP_SESSION_ENDPOINT_MAX];
    snprintf(first, sizeof(first), "%.*s", comma ? (int)(comma - h->addrs) : (int)strlen(h->addrs),
             h->addrs);
    op_session_add_candidate(d->session, h->sn_id, first, h->failures);
    return 0;
}

static void on_sn_message(const struct msg *m, void *arg)
{
    struct op_daemon *d = arg;
    if (msg_type_family(m->type) == MSG_FAMILY_RELAY) {
        nat_relay_message(d->relay, m); /* circuits run over the primary session */
        return;
    }
    switch (m->type) {
    case MSG_SEARCH_RESULT:
        on_search_result(d, &m->u.search_result);
        return;
    case MSG_LOCATE_RESULT:
        if (m->u.locate_result.found)
            op_fetch_located(d->fetcher, m->u.locate_result.peer_id,
                             m->u.locate_result.reachability, m->u.locate_result.addrs,
                             m->u.locate_result.n_addrs);
        return;
    case MSG_DIALBACK_RESULT:
        op_reach_message(d->reach, m);
        return;
    case MSG_CONNECT_REQUEST: {
        const struct msg_connect *c = &m->u.connect_request;
        op_server_reverse(d->server, d->tls, c->peer_id, c->token, c->addrs, c->n_addrs);
        return;
    }
    case MSG_PUNCH_NOTE:
        /* READY and NO answer our punches as a downloader; OFFER and SYNC
         * ask us as a source */
        if (!op_fetch_punch_note(d->fetcher, &m->u.punch_note) && d->punch != NULL)
            op_punch_note(d->punch, &m->u.punch_note);
        return;
    case MSG_ERROR:
        op_reach_message(d->reach, m); /* a refused DIALBACK, perhaps */
        return;
    case MSG_CREDIT:
        op_credit_message(d->credit, m);
        return;
    case MSG_PUBLISH_ACK:
        d->published += m->u.publish_ack.accepted;
        if (m->u.publish_ack.rejected)
            log_warn("op", "supernode rejected %u published records (first: %s)",
                     m->u.publish_ack.rejected, msg_error_code_str(m->u.publish_ack.first_error));
        /* Refused for its rate (not its content): publish everything again a
         * little later; the supernode takes a record it has once. */
        if (m->u.publish_ack.first_error == MSG_ERR_RATE_LIMITED &&
            !evtimer_pending(d->republish, NULL)) {
            struct timeval tv = {.tv_sec = OP_REPUBLISH_RETRY_MS / 1000,
                                 .tv_usec = (OP_REPUBLISH_RETRY_MS % 1000) * 1000};
            evtimer_add(d->republish, &tv);
        }
        return;
    default:
        return; /* ERRORs are logged by the link */
    }
}

/* ---- start and stop -------------------------------------------------------------------- */

static void on_accept(evutil_socket_t fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
    struct op_daemon *d = arg;
    if (!link_admit(d->budget, sa, len)) {
        evutil_closesocket(fd); /* refused before TLS: counted and logged by the budget */
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_server(d->tls, NULL, &ssl) != 0) {
        evutil_closesocket(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    op_server_accept(d->server, fd, ssl, sa, len);
}

static bool addr_is_unspecified(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return true;
}

/* What REGISTER claims: our listen address; for a wildcard listener only
 * the port is ours to claim, and the supernode adds the address it sees. */
static void set_listen_addrs(struct op_daemon *d)
{
    struct wire_addr a;
    if (wire_addr_from_sockaddr(&a, (struct sockaddr *)&d->listen_ss, d->listen_len) != 0)
        return;
    wire_addr_format(&a, d->listen_str, sizeof(d->listen_str));
    if (!addr_is_unspecified(&d->listen_ss)) {
        d->listen_addrs[0] = a;
        d->n_listen_addrs = 1;
        /* Dial from the address we listen on, so others see one address. */
        d->sn_params.bind_addr = (struct sockaddr *)&d->bind_ss;
        memcpy(&d->bind_ss, &d->listen_ss, sizeof(d->bind_ss));
        if (d->bind_ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&d->bind_ss)->sin_port = 0;
        else
            ((struct sockaddr_in6 *)&d->bind_ss)->sin6_port = 0;
        d->sn_params.bind_len = d->listen_len;
        d->peer_params.bind_addr = d->sn_params.bind_addr;
        d->peer_params.bind_len = d->sn_params.bind_len;
    }
}

static int make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    return 0;
}

/* The share folders changed: serve and report from the new worker. */
static void on_share_replaced(struct op_share *now, void *arg)
{
    struct op_daemon *d = arg;
    d->share = now;
    d->share_replaced = true;
    if (d->server != NULL)
        op_server_set_share(d->server, now);
}

static int start_share(struct op_daemon *d, char *err, size_t errlen)
{
    char db[PATH_MAX], partial[PATH_MAX];
    snprintf(db, sizeof(db), "%s/%s", d->s->state_dir, OP_STORE_FILENAME);
    /* Never shared: the part files, and the state (the identity's key). */
    const char *exclude[2] = {d->s->state_dir};
    size_t n_exclude = 1;
    if (d->s->downloads) {
        snprintf(partial, sizeof(partial), "%s/%s", d->s->downloads, FETCH_PARTIAL_DIR);
        exclude[n_exclude++] = partial;
    }
    struct op_folders_config cfg = {
        .base = evloop_base(d->loop),
        .store = d->store,
        .db_path = db,
        .config_folder = d->s->share,
        .state_dir = d->s->state_dir,
        .exclude_dirs = exclude,
        .n_exclude_dirs = n_exclude,
        .done = on_share_done,
        .replaced = on_share_replaced,
        .arg = d,
    };
    return op_folders_new(&cfg, &d->folders, err, errlen);
}

static void on_republish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    publish_all(arg);
}

static void on_rescan(evutil_socket_t fd, short what, void *arg)
{
    struct op_daemon *d = arg;
    (void)fd;
    (void)what;
    op_folders_rescan(d->folders);
}

static int op_daemon_start(struct op_daemon *d)
{
    char err[512];
    if (d->s->bootstrap == NULL || d->s->federation_ca == NULL) {
        log_error("op", "options --bootstrap and --federation-ca are required to run");
        return SOVA_ERR_CONFIG;
    }
    d->started_ms = link_now_ms();
    int rc = identity_load_or_create(d->s->state_dir, &d->id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(d->id, d->s->federation_ca, TLS_CTX_PEER, &d->tls, err, sizeof(err));
    char db[PATH_MAX];
    snprintf(db, sizeof(db), "%s/%s", d->s->state_dir, OP_STORE_FILENAME);
    if (rc == 0)
        rc = op_store_open(db, &d->store, err, sizeof(err));
    if (rc == 0 && d->s->downloads)
        rc = make_dir(d->s->downloads, 0755, err, sizeof(err));
    if (rc == 0)
        rc = evloop_new(&d->loop) == 0 ? 0 : SOVA_ERR_NOMEM;
    if (rc != 0) {
        log_error("op", "%s", rc == SOVA_ERR_NOMEM ? "out of memory" : err);
        return rc;
    }
    sova_log_set_node(identity_short_id(d->id));
    uint64_t nofile, nofile_max;
    if (evloop_raise_nofile(&nofile, &nofile_max) != 0)
        log_warn("op", "cannot raise the open files limit from %llu to %llu",
                 (unsigned long long)nofile, (unsigned long long)nofile_max);
    else
        log_info("op", "open files limit %llu", (unsigned long long)nofile);
    d->limits = wire_limits_default();
    d->limits.max_frame = d->s->max_frame;
    /* The supernode's protections, sized for a desktop (docs/LIMITS.md). */
    struct link_budget_config budget = {
        .max_handshakes = (unsigned)d->s->max_handshakes,
        .max_conns_per_ip = (unsigned)d->s->max_conns_per_ip,
        .max_buffered = d->s->max_buffered_bytes,
        .max_buffered_prefix = d->s->max_buffered_bytes_per_prefix,
        .max_buffered_id = d->s->max_buffered_bytes_per_id,
        .max_frame = (size_t)d->s->max_frame,
    };
    d->budget = link_budget_new(evloop_base(d->loop), &budget);
    if (d->budget == NULL)
        return SOVA_ERR_NOMEM;
    d->sn_params = (struct link_params){
        .limits = &d->limits,
        .local_role = MSG_ROLE_PEER,
        .handshake_timeout_ms = (unsigned)d->s->handshake_timeout_ms,
        .max_output = OP_MAX_OUTPUT_BYTES,
        .expect_supernode = true,
        .capabilities = MSG_CAP_PUNCH, /* we take PUNCH_NOTEs (op_punch.h) */
        .counters = &d->link_counters,
        .budget = d->budget,
    };
    d->peer_params = d->sn_params;
    d->peer_params.expect_supernode = false;
    struct event_base *base = evloop_base(d->loop);
    rc = op_control_start(d, err, sizeof(err));
    if (rc == 0)
        rc = evloop_listen(d->loop, d->s->listen, on_accept, d, &d->listen_ss, &d->listen_len, err,
                           sizeof(err));
    if (rc == 0)
        rc = start_share(d, err, sizeof(err));
    if (rc != 0) {
        log_error("op", "%s", err);
        return rc;
    }
    set_listen_addrs(d);
    d->server = op_server_new(base, d->share, &d->peer_params, d->s->upload_limit_kbps * 1000);
    struct op_queries_config qc = {.base = base, .send = relay_send, .arg = d};
    if (op_queries_new(&qc, &d->queries) != 0)
        return SOVA_ERR_NOMEM;
    struct op_fetch_env env = {
        .base = base,
        .tls = d->tls,
        .store = d->store,
        .params = &d->peer_params,
        .downloads_dir = d->s->downloads,
        .locate = fetch_locate,
        .find_sources = fetch_find_sources,
        .self = fetch_self,
        .reverse = fetch_reverse,
        .relay = fetch_relay,
        .punch = punch_send,
        .direct_timeout_ms = (unsigned)d->s->direct_timeout_ms,
        .reversal_timeout_ms = (unsigned)d->s->reversal_timeout_ms,
        .punch_timeout_ms = (unsigned)d->s->punch_timeout_ms,
        .relay_timeout_ms = (unsigned)d->s->relay_timeout_ms,
        .ways = d->s->ways_mask,
        .chunk_size = (uint32_t)d->s->download_chunk_kib * 1024,
        .max_active = (unsigned)d->s->max_active_downloads,
        .report = fetch_report,
        .receipt = fetch_receipt,
        .completed = fetch_completed,
        .arg = d,
    };
    d->fetcher = op_fetcher_new(&env);
    struct op_punch_env pe = {
        .base = base,
        .tls = d->tls,
        .server = d->server,
        .bind_addr = d->peer_params.bind_addr,
        .bind_len = d->peer_params.bind_len,
        .send = punch_send,
        .keeps_ports = punch_keeps_ports,
        .arg = d,
    };
    if (d->server != NULL && (d->punch = op_punch_new(&pe)) == NULL)
        return SOVA_ERR_NOMEM;
    if ((d->hook = op_hook_new(base)) == NULL)
        return SOVA_ERR_NOMEM;
    if (d->server && d->fetcher)
        d->bw = op_limits_new(base, d->s, d->server, d->fetcher);
    struct op_session_config sc = {
        .loop = d->loop,
        .tls = d->tls,
        .params = &d->sn_params,
        .bootstrap = d->s->bootstrap,
        .addrs = d->listen_addrs,
        .n_addrs = d->n_listen_addrs,
        .reachability = MSG_REACH_UNKNOWN,
        .backup = true,
        .hooks = {.attached = on_attached,
                  .detached = on_detached,
                  .supernode_seen = on_supernode_seen,
                  .message = on_sn_message,
                  .may_move = may_move},
        .arg = d,
    };
    d->rescan = event_new(base, -1, EV_PERSIST, on_rescan, d);
    d->republish = evtimer_new(base, on_republish, d);
    if (!d->server || !d->fetcher || !d->bw || !d->rescan || !d->republish ||
        op_session_new(&sc, &d->session) != 0)
        return SOVA_ERR_NOMEM;
    op_server_set_adopt(d->server, adopt_reversal, d);
    struct op_credit_config cc = {.base = base,
                                  .key = identity_key(d->id),
                                  .self_id = identity_id(d->id),
                                  .limits = &d->limits,
                                  .send = relay_send,
                                  .credit_known = credit_known,
                                  .arg = d};
    if (op_credit_new(&cc, &d->credit) != 0)
        return SOVA_ERR_NOMEM;
    op_server_set_credit(d->server, serve_credit_of, serve_receipt, d);
    op_server_set_slots(d->server, (unsigned)d->s->upload_slots, d->s->upload_max_wait_s * 1000);
    struct nat_relay_hooks rh = {.send = relay_send, .incoming = relay_incoming};
    d->relay = nat_relay_new(base, &d->limits, &rh, d);
    struct wire_addr listen_addr = {0};
    wire_addr_from_sockaddr(&listen_addr, (struct sockaddr *)&d->listen_ss, d->listen_len);
    char description[64];
    snprintf(description, sizeof(description), "sova-peer %s", identity_short_id(d->id));
    struct op_reach_config rc_cfg = {
        .base = base,
        .session = d->session,
        .listen = &listen_addr,
        .upnp = d->s->upnp,
        .upnp_lease_s = (unsigned)d->s->upnp_lease_s,
        .upnp_check_s = (unsigned)d->s->upnp_check_s,
        .description = description,
    };
    if (d->relay == NULL || op_reach_new(&rc_cfg, &d->reach) != 0)
        return SOVA_ERR_NOMEM;
    op_reach_start(d->reach);
    char nw_err[128];
    if (nat_netwatch_new(base, on_network_changed, d, &d->netwatch, nw_err, sizeof(nw_err)) != 0)
        log_warn("op",
                 "cannot watch the network (%s): a new address is noticed only by the "
                 "periodic checks",
                 nw_err);
    struct timeval every = {.tv_sec = (time_t)d->s->rescan_interval_s};
    evtimer_add(d->rescan, &every);
    op_store_host_foreach(d->store, add_cached_supernode, d);
    log_info("op", "peer %s listening on %s (%zu supernodes known)", identity_id_str(d->id),
             d->listen_str, op_session_candidates(d->session));
    op_session_start(d->session);
    op_fetcher_resume_all(d->fetcher);
    rc = op_metrics_start(d, err, sizeof(err));
    if (rc == 0)
        rc = op_api_start(d, err, sizeof(err));
    if (rc != 0) {
        log_error("op", "%s", err);
        return rc;
    }
    return op_service_start(d); /* READY=1: listening, control socket up */
}

static void op_daemon_stop(struct op_daemon *d)
{
    op_service_stop(d);
    op_metrics_stop(d);
    op_api_stop(d);          /* like the control socket: its waiting clients cancel first */
    ctl_server_free(d->ctl); /* first: its clients cancel their queries and watches */
    op_queries_free(d->queries);
    /* Downloads first (they hold circuits and adopted links), then what
     * they use; the session last (circuits say goodbye over it). */
    op_limits_free(d->bw);
    op_fetcher_free(d->fetcher);
    op_hook_free(d->hook);
    op_punch_free(d->punch);
    d->punch = NULL;
    op_server_free(d->server);
    op_credit_free(d->credit);
    nat_relay_free(d->relay);
    nat_netwatch_free(d->netwatch);
    op_reach_free(d->reach); /* deletes the router's port mapping */
    op_session_free(d->session);
    op_folders_free(d->folders);
    d->share = NULL;
    if (d->rescan)
        event_free(d->rescan);
    if (d->republish)
        event_free(d->republish);
    link_budget_free(d->budget); /* every link is gone */
    op_store_close(d->store);
    tls_ctx_free(d->tls);
    identity_free(d->id);
    evloop_free(d->loop);
}

int op_daemon_run(struct op_settings *s, int argc, char *const *argv)
{
    struct op_daemon *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return SOVA_ERR_NOMEM;
    d->s = s;
    d->argc = argc;
    d->argv = argv;
    int rc = op_daemon_start(d);
    if (rc == 0) {
        evloop_run(d->loop);
        op_service_stopping(d); /* the port mapping goes in op_daemon_stop */
        log_info("op", "stopped");
    }
    op_daemon_stop(d);
    free(d);
    return rc;
}

int op_print_id(const struct op_settings *s)
{
    char err[512];
    struct sova_identity *id = NULL;
    int rc = identity_load_or_create(s->state_dir, &id, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s\n", err);
        return rc;
    }
    printf("%s\n", identity_id_str(id));
    identity_free(id);
    return 0;
}
