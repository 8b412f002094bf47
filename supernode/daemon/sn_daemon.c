/* sn_daemon.c - start, run and stop the supernode: identity, TLS, index,
 * listener, control socket, keep-alive sweep, and every feature in the
 * order they depend on each other (docs/SUPERNODE.md). Links are wired to
 * the features in sn_dispatch.c. */
#define SOVA_SN_DAEMON_INTERNAL
#include "sn_daemon.h"
#include "err.h"
#include "log.h"
#include "sn_accept.h"
#include "sn_attach.h"
#include "sn_connect.h"
#include "sn_credit_net.h"
#include "sn_daemon_int.h"
#include "sn_dialback.h"
#include "sn_relay.h"
#include "sn_search.h"
#include "statedir.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Output a remote may leave unread before it is dropped. */
#define SN_MAX_OUTPUT_BYTES (4u * 1024 * 1024)
/* How often silent peers are looked for, at most. */
#define SN_SWEEP_MAX_MS 5000

static void on_accept(evutil_socket_t fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
    struct sn_daemon *d = arg;
    sn_accept_conn(&d->ctx, fd, sa, len);
}

/* How often the walk over every link looks for silent peers: a quarter of
 * the timeout peers are told now (sn_keepalive.h), but at most every
 * SN_SWEEP_MAX_MS or a twentieth of it, whichever is longer. A silent peer
 * goes within 5 s (or 5 %) of its timeout; a supernode whose timeout grew
 * with its peers walks them less often. */
static unsigned sweep_interval_ms(const struct sn_daemon *d)
{
    uint64_t timeout_ms = (uint64_t)sn_ctx_keepalive(&d->ctx).peer_timeout_s * 1000;
    uint64_t ms = timeout_ms / 4, most = timeout_ms / 20;
    if (most < SN_SWEEP_MAX_MS)
        most = SN_SWEEP_MAX_MS;
    /* Links waiting for REGISTER go within a quarter of their timeout too. */
    uint64_t reg_ms = d->ctx.s->register_timeout_s * 1000 / 4;
    if (most > reg_ms)
        most = reg_ms > 1000 ? reg_ms : 1000;
    return ms > most ? (unsigned)most : (unsigned)(ms ? ms : 1);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct sn_daemon *d = arg;
    (void)fd;
    (void)what;
    sn_attach_sweep(&d->ctx);
    sn_accept_sweep(&d->ctx, link_now_ms());
    sn_timer_ms(d->sweep, sweep_interval_ms(d));
}

/* The state folder: made 0700 if missing, and this user's alone
 * (common/statedir.h), or the supernode does not start. */
static int make_state_dir(const char *path)
{
    char err[512];
    int rc = statedir_prepare(path, err, sizeof(err));
    if (rc != 0)
        log_error("sn", "state directory: %s", err);
    return rc;
}

static int make_index(struct sn_ctx *d)
{
    struct sn_index_limits lim = sn_index_limits_default();
    lim.max_files_per_peer = (uint32_t)d->s->max_files_per_peer;
    lim.max_name_bytes_per_peer = (uint32_t)d->s->max_name_bytes_per_peer;
    lim.max_results = (uint32_t)d->s->max_results;
    lim.max_records = (uint32_t)d->s->max_records;
    /* Keyed hashing: a remote cannot choose names that collide. */
    if (RAND_bytes(lim.hash_key, sizeof(lim.hash_key)) != 1)
        return SOVA_ERR_CRYPTO;
    d->index = sn_index_new(&lim);
    uint8_t key[SN_HASHTAB_KEYLEN];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return SOVA_ERR_CRYPTO;
    d->reports = sn_reports_new(SN_REPORTS_MAX_PEERS, key);
    d->intros = sn_intro_new(SN_INTRO_MAX_DEFAULT, key);
    d->records = fair_pool_new(0, d->s->max_records_per_prefix, FAIR_VICTIM_OLDEST);
    return d->index && d->reports && d->intros && d->records ? 0 : SOVA_ERR_NOMEM;
}

static int sn_daemon_start(struct sn_daemon *dm)
{
    struct sn_ctx *d = &dm->ctx;
    char err[512] = "";
    int rc = identity_load_files(d->s->cert, d->s->key, &d->id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(d->id, d->s->federation_ca, TLS_CTX_SUPERNODE, &d->tls, err, sizeof(err));
    if (rc != 0) {
        log_error("sn", "%s", err);
        return rc;
    }
    sova_log_set_node(identity_short_id(d->id));
    d->started_ms = link_now_ms();
    rc = make_state_dir(d->s->state_dir);
    if (rc == 0)
        rc = make_index(d);
    if (rc == 0)
        rc = evloop_new(&d->loop);
    if (rc != 0)
        return rc;
    d->limits = wire_limits_default();
    d->limits.max_frame = d->s->max_frame;
    struct link_budget_config budget = sn_settings_link_budget(d->s);
    d->budget = link_budget_new(evloop_base(d->loop), &budget);
    if (d->budget == NULL)
        return SOVA_ERR_NOMEM;
    d->link_hooks = sn_dispatch_link_hooks();
    d->link_params = (struct link_params){
        .limits = &d->limits,
        .local_role = MSG_ROLE_SUPERNODE,
        .capabilities =
            MSG_CAP_DIALBACK | MSG_CAP_CONNECT | MSG_CAP_PUNCH | (d->s->relay ? MSG_CAP_RELAY : 0),
        .handshake_timeout_ms = (unsigned)d->s->handshake_timeout_ms,
        .max_output = SN_MAX_OUTPUT_BYTES,
        .max_frames_per_s = (unsigned)d->s->max_frames_per_s,
        .group = &d->links,
        .counters = &d->link_counters,
        .budget = d->budget,
    };
    rc = sn_control_start(dm, err, sizeof(err));
    if (rc != 0) {
        log_error("sn", "%s", err);
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len;
    rc = evloop_listen(d->loop, d->s->listen, on_accept, dm, &bound, &bound_len, err, sizeof(err));
    if (rc != 0) {
        log_error("sn", "%s", err);
        return rc;
    }
    struct wire_addr addr;
    snprintf(d->listen_addr, sizeof(d->listen_addr), "?");
    if (wire_addr_from_sockaddr(&addr, (struct sockaddr *)&bound, bound_len) == 0) {
        wire_addr_format(&addr, d->listen_addr, sizeof(d->listen_addr));
        static const uint8_t zero[16];
        /* A specific address is one peers and supernodes can be told. */
        d->has_self_addr = memcmp(addr.ip, zero, addr.family == WIRE_ADDR_IPV4 ? 4 : 16) != 0;
        d->self_addr = addr;
    }
    dm->sweep = evtimer_new(evloop_base(d->loop), on_sweep, dm);
    if (dm->sweep == NULL)
        return SOVA_ERR_NOMEM;
    on_sweep(-1, 0, dm);
    /* The features, lowest first (docs/SUPERNODE.md): each may use those
     * started before it. The seeds are dialed last, once all can serve. */
    struct sn_membership_hooks mh = sn_dispatch_membership_hooks(dm);
    struct sn_fed_links_hooks fh = sn_dispatch_fed_links_hooks(dm);
    struct sn_search_hooks sh = sn_dispatch_search_hooks(dm);
    rc = sn_accept_start(d);
    if (rc == 0)
        rc = sn_membership_start(d, &mh);
    if (rc == 0)
        rc = sn_search_start(d, &sh);
    if (rc == 0)
        rc = sn_dialback_start(d);
    if (rc == 0)
        rc = sn_relay_start(d);
    if (rc == 0)
        rc = sn_credit_start(d);
    if (rc == 0) {
        sn_connect_start(d);
        rc = sn_metrics_start(dm, err, sizeof(err));
    }
    if (rc == 0)
        rc = sn_fed_links_start(d, &fh);
    if (rc != 0) {
        log_error("sn", "cannot start: %s", err[0] ? err : sova_err_str(rc));
        return rc;
    }
    log_info("sn", "supernode %s listening on %s", identity_id_str(d->id), d->listen_addr);
    sn_service_check_nofile(dm);
    return sn_service_start(dm); /* READY=1 once the seeds were contacted */
}

static void sn_daemon_stop(struct sn_daemon *dm)
{
    struct sn_ctx *d = &dm->ctx;
    sn_service_stop(dm);
    sn_metrics_stop(dm);
    ctl_server_free(dm->ctl);
    sn_fed_links_stop(d);
    sn_relay_stop(d); /* before search: it cancels its own pending locates */
    sn_credit_stop(d);
    sn_dialback_stop(d);
    sn_search_stop(d);
    sn_membership_stop(d);
    for (struct link *l = link_group_first(&d->links); l; l = link_group_next(l))
        sn_conn_free(link_arg(l)); /* the sn_conn of each connection */
    link_group_free_all(&d->links);
    sn_accept_stop(d);
    if (dm->sweep)
        event_free(dm->sweep);
    sn_index_free(d->index);
    sn_reports_free(d->reports);
    sn_intro_free(d->intros);
    fair_pool_free(d->records);
    link_budget_free(d->budget);
    tls_ctx_free(d->tls);
    identity_free(d->id);
}

int sn_daemon_run(struct sn_settings *s, int argc, char *const *argv)
{
    struct sn_daemon d = {.ctx = {.s = s}, .argc = argc, .argv = argv};
    int rc = sn_daemon_start(&d);
    if (rc == 0) {
        evloop_run(d.ctx.loop);
        sn_service_farewell(&d);
        log_info("sn", "stopped");
    }
    sn_daemon_stop(&d);
    evloop_free(d.ctx.loop);
    return rc;
}
