/* sn_service.c - the supernode as a system service.
 *
 *  - READY=1 (sd_notify) once the listener accepts and every federation seed
 *    was contacted (its link came up or its first attempt failed), or at
 *    the latest handshake-timeout-ms + SN_READY_GRACE_MS after the start;
 *    the watchdog keep-alive and a status line come from common/service.c.
 *  - SIGHUP: the options are loaded again from the same file and command
 *    line; what can change at run time is applied, each change logged on one
 *    line, and every other change is named as needing a restart.
 *  - SIGTERM: STOPPING=1, attached peers get ERROR(shutting down) so they
 *    fail over at once, and the federation hears that we left.
 * docs/OPERATIONS.md describes all three for operators. */
#define SOVA_SN_DAEMON_INTERNAL
#include "err.h"
#include "log.h"
#include "service.h"
#include "sn_accept.h"
#include "sn_credit_net.h"
#include "sn_daemon_int.h"
#include "sn_relay.h"

#include <stdio.h>
#include <string.h>

#define SN_READY_GRACE_MS    5000 /* beyond the handshake timeout, for DNS */
#define SN_FAREWELL_FLUSH_MS 300  /* for the ERRORs to peers to go out */

static void status_line(char *buf, size_t cap, void *arg)
{
    const struct sn_daemon *d = arg;
    struct sn_index_stats st;
    sn_index_stats(d->ctx.index, &st);
    snprintf(buf, cap, "%zu peers, %zu supernodes linked, %zu files indexed", d->ctx.n_peers,
             sn_fed_links_count(&d->ctx), (size_t)st.records);
}

static void send_ready(struct sn_daemon *d, const char *why)
{
    if (d->ready)
        return;
    d->ready = true;
    evtimer_del(d->ready_timer);
    service_ready(d->svc);
    log_info("sn", "ready (%s)", why);
}

void sn_service_check_ready(struct sn_daemon *d)
{
    if (d->ready_timer == NULL || d->ready || !sn_fed_links_seeds_contacted(&d->ctx))
        return;
    send_ready(d, sn_fed_links_seeds(&d->ctx) ? "listening, every seed supernode contacted"
                                              : "listening");
}

static void on_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sn_daemon *d = arg;
    (void)fd;
    (void)what;
    log_warn("sn", "not every seed supernode answered in time; ready anyway, still dialing");
    send_ready(d, "listening, some seeds not contacted yet");
}

/* ---- SIGHUP ---------------------------------------------------------------------------- */

enum reload_apply {
    APPLY_LOG_LEVEL = 1 << 0,
    APPLY_LOG_FILE = 1 << 1,
    APPLY_INDEX = 1 << 2,
    APPLY_RELAY_RATES = 1 << 3,
    APPLY_SEEDS = 1 << 4,
    APPLY_LINKS = 1 << 5,
    APPLY_CREDIT = 1 << 6,
    APPLY_BUDGET = 1 << 7,
    APPLY_UNREGISTERED = 1 << 8,
    APPLY_RELAY_LIMITS = 1 << 9,
};

/* The options a SIGHUP changes in the running daemon, and what must follow.
 * Everything else (listen, cert, key, federation-ca, state-dir, control,
 * max-frame, metrics-listen, summary-interval-ms) needs a restart. */
static const struct {
    const char *name;
    unsigned apply;
} reloadable[] = {
    {"log-level", APPLY_LOG_LEVEL},
    {"log-file", APPLY_LOG_FILE},
    {"max-peers", 0}, /* read at each REGISTER and gossiped as capacity */
    {"max-files-per-peer", APPLY_INDEX},
    {"max-name-bytes-per-peer", APPLY_INDEX},
    {"max-records-per-prefix", APPLY_INDEX},
    {"max-results", APPLY_INDEX},
    {"keepalive-s", 0},     /* told to peers at their next PING (sn_keepalive.h) */
    {"peer-timeout-s", 0},  /* likewise; and read by the sweep */
    {"max-pings-per-s", 0}, /* likewise */
    {"handshake-timeout-ms", APPLY_LINKS},
    {"max-handshakes", APPLY_BUDGET},
    {"federation-handshakes", APPLY_BUDGET},
    {"max-conns-per-ip", APPLY_BUDGET},
    {"max-buffered-bytes", APPLY_BUDGET},
    {"max-buffered-bytes-per-prefix", APPLY_BUDGET},
    {"max-buffered-bytes-per-id", APPLY_BUDGET},
    {"max-unregistered", APPLY_UNREGISTERED},
    {"register-timeout-s", 0}, /* read at each sweep */
    {"dialback-timeout-ms", 0},
    {"peers", APPLY_SEEDS},
    {"relay", APPLY_LINKS}, /* RELAY_OPENs are refused from now on; HELLO says so */
    {"relay-max-circuits", APPLY_RELAY_LIMITS},
    {"relay-max-peer-circuits", 0},
    {"relay-max-prefix-circuits", APPLY_RELAY_LIMITS},
    {"relay-idle-timeout-s", APPLY_RELAY_LIMITS}, /* open circuits too */
    {"relay-max-bytes", 0},
    {"relay-max-duration-s", 0}, /* circuits opened from now on */
    {"relay-peer-kbps", APPLY_RELAY_RATES},
    {"relay-total-kbps", APPLY_RELAY_RATES},
    {"relay-open-timeout-ms", 0},
    {"credit-cap-mb", APPLY_CREDIT}, /* receipts counted from now on */
    {"relay-credit-floor-pct", 0},   /* read at each share (every 2 s) */
};

struct reload {
    struct sn_daemon *d;
    const struct sn_settings *fresh;
    unsigned apply;
    size_t applied, kept;
    int rc;
};

static void on_change(const struct config_option *opt, const char *before, const char *after,
                      void *arg)
{
    struct reload *r = arg;
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++) {
        if (strcmp(reloadable[i].name, opt->name) != 0)
            continue;
        if (config_copy(opt, r->d->ctx.s, r->fresh) != 0) {
            log_error("sn", "reload: out of memory applying %s", opt->name);
            r->rc = SOVA_ERR_NOMEM;
            return;
        }
        r->apply |= reloadable[i].apply;
        r->applied++;
        log_info("sn", "reload: %s %s -> %s", opt->name, before, after);
        return;
    }
    r->kept++;
    log_warn("sn", "reload: %s changed (%s -> %s) but needs a restart; still %s", opt->name, before,
             after, before);
}

static void apply(struct sn_daemon *d, unsigned what)
{
    const struct sn_settings *s = d->ctx.s;
    if (what & APPLY_LOG_LEVEL)
        sova_log_set_level((enum sova_log_level)s->log_level);
    if (what & APPLY_INDEX) {
        sn_index_set_peer_limits(d->ctx.index, (uint32_t)s->max_files_per_peer,
                                 (uint32_t)s->max_name_bytes_per_peer, (uint32_t)s->max_results);
        fair_pool_set_limits(d->ctx.records, 0, s->max_records_per_prefix);
    }
    if (what & APPLY_RELAY_RATES)
        sn_relay_rates_changed(&d->ctx);
    if (what & APPLY_RELAY_LIMITS)
        sn_relay_limits_changed(&d->ctx);
    if (what & APPLY_SEEDS)
        sn_fed_links_reload_seeds(&d->ctx);
    if (what & APPLY_CREDIT)
        sn_credit_settings_changed(&d->ctx);
    if (what & APPLY_BUDGET) {
        struct link_budget_config budget = sn_settings_link_budget(s);
        link_budget_configure(d->ctx.budget, &budget);
    }
    if (what & APPLY_UNREGISTERED)
        sn_accept_settings_changed(&d->ctx);
    if (what & APPLY_LINKS) {
        d->ctx.link_params.handshake_timeout_ms = (unsigned)s->handshake_timeout_ms;
        if (s->relay)
            d->ctx.link_params.capabilities |= MSG_CAP_RELAY;
        else
            d->ctx.link_params.capabilities &= ~(uint32_t)MSG_CAP_RELAY;
    }
}

/* The log file is reopened on every SIGHUP (logrotate moved it), first, so
 * that the lines about the reload land in the new file. */
static void reopen_log(struct sn_daemon *d, const struct sn_settings *fresh)
{
    const char *path = fresh ? fresh->log_file : d->ctx.s->log_file;
    if (path == NULL && d->ctx.s->log_file == NULL)
        return;
    char err[512];
    if (sova_log_open_file(path, err, sizeof(err)) != 0)
        log_error("sn", "reload: %s", err);
}

static void on_reload(void *arg)
{
    struct sn_daemon *d = arg;
    service_reloading(d->svc);
    struct sn_settings fresh;
    char err[CONFIG_ERR_MAX];
    int rc = sn_settings_load(&fresh, d->argc, d->argv, err, sizeof(err));
    if (rc == 0)
        rc = sn_settings_check(&fresh, err, sizeof(err));
    if (rc != 0) {
        reopen_log(d, NULL);
        log_error("sn", "reload: %s; keeping the running configuration", err);
        d->ctx.counters.reload_failures++;
    } else {
        reopen_log(d, &fresh);
        struct reload r = {.d = d, .fresh = &fresh};
        config_diff(&sn_config_schema, d->ctx.s, &fresh, on_change, &r);
        apply(d, r.apply);
        log_info("sn", "reload: %zu options changed, %zu need a restart", r.applied, r.kept);
        d->ctx.counters.reloads++;
    }
    sn_settings_free(&fresh);
    service_ready(d->svc);
}

/* ---- start and stop ---------------------------------------------------------------------- */

/* Each attached peer holds a socket (a peer keeps a primary and a backup
 * session, so a supernode may see up to two per peer it counts), plus
 * supernode links, relay circuits' peers, control clients, files. */
#define SN_NOFILE_SPARE 1024

void sn_service_check_nofile(struct sn_daemon *d)
{
    /* Every daemon raises its soft limit to the hard one (evloop.h); a
     * limit still short of what max-peers needs is worth a warning. */
    uint64_t soft, hard, need = d->ctx.s->max_peers * 2 + SN_NOFILE_SPARE;
    if (evloop_raise_nofile(&soft, &hard) != 0)
        log_warn("sn", "cannot raise the open files limit from %llu to %llu",
                 (unsigned long long)soft, (unsigned long long)hard);
    if (soft < need)
        log_warn("sn",
                 "open files limited to %llu, max-peers %llu may need %llu: raise LimitNOFILE= "
                 "(ulimit -n) or lower max-peers",
                 (unsigned long long)soft, (unsigned long long)d->ctx.s->max_peers,
                 (unsigned long long)need);
    else
        log_info("sn", "open files limit %llu", (unsigned long long)soft);
}

int sn_service_start(struct sn_daemon *d)
{
    int rc = service_new(evloop_base(d->ctx.loop), status_line, d, &d->svc);
    if (rc != 0)
        return rc;
    evloop_on_reload(d->ctx.loop, on_reload, d);
    d->ready_timer = evtimer_new(evloop_base(d->ctx.loop), on_ready_timeout, d);
    if (d->ready_timer == NULL)
        return SOVA_ERR_NOMEM;
    unsigned ms = (unsigned)d->ctx.s->handshake_timeout_ms + SN_READY_GRACE_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->ready_timer, &tv);
    sn_service_check_ready(d);
    return 0;
}

void sn_service_farewell(struct sn_daemon *d)
{
    service_stopping(d->svc);
    size_t told = 0;
    for (struct link *l = link_group_first(&d->ctx.links); l; l = link_group_next(l)) {
        if (link_remote_role(l) != MSG_ROLE_PEER)
            continue;
        link_close(l, MSG_ERR_SHUTTING_DOWN, "supernode shutting down");
        told++;
    }
    if (told)
        log_info("sn", "stopping: told %zu peers to fail over", told);
    bool federated = d->ctx.membership != NULL && sn_fed_links_count(&d->ctx) > 0;
    sn_membership_leave(&d->ctx); /* runs the loop a moment when there is anyone to tell */
    if (told && !federated) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = SN_FAREWELL_FLUSH_MS * 1000};
        event_base_loopexit(evloop_base(d->ctx.loop), &tv);
        event_base_dispatch(evloop_base(d->ctx.loop));
    }
}

void sn_service_stop(struct sn_daemon *d)
{
    if (d->ready_timer)
        event_free(d->ready_timer);
    d->ready_timer = NULL;
    service_free(d->svc);
    d->svc = NULL;
}
