/* nat_upnp.c - the loop side of port mapping: a libevent timer pulses the
 * state machine (nat_map_fsm.c), jobs go to the worker thread (nat_worker.c),
 * results come back through a socketpair read event. Each status change is
 * logged once and reported through cfg->changed. See nat_upnp.h. */
#include "clock.h"
#include "nat_upnp.h"

#include "err.h"
#include "log.h"
#include "nat_map_fsm.h"
#include "nat_worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD "nat"

struct nat_upnp {
    struct nat_upnp_config cfg; /* description points to our copy */
    char description[80];
    struct nat_map_fsm *fsm;
    struct nat_worker *worker;   /* NULL unless running */
    struct event *timer;         /* pulses the fsm at its wake time */
    struct event *notify;        /* the worker's fd, while running */
    struct nat_upnp_status last; /* as last reported */
};

static uint64_t mono_ms(void)
{
    return sova_mono_ms();
}

/* ---- reporting ---------------------------------------------------------- */

static void log_change(const struct nat_upnp *u, const struct nat_upnp_status *old,
                       const struct nat_upnp_status *st)
{
    const char *method = st->method ? st->method : "-";
    uint64_t wake = nat_map_fsm_wake_ms(u->fsm), now = mono_ms();
    uint64_t retry_s = wake != UINT64_MAX && wake > now ? (wake - now + 999) / 1000 : 0;
    bool moved = old->state != st->state || strcmp(old->external_ip, st->external_ip) != 0 ||
                 old->external_port != st->external_port || strcmp(old->gateway, st->gateway) != 0;
    if (!moved) {
        log_debug(LOG_MOD, "port %u: %s: %s", st->internal_port, nat_map_state_str(st->state),
                  st->error);
        return;
    }
    switch (st->state) {
    case NAT_MAP_MAPPED: {
        bool v6 = strchr(st->external_ip, ':') != NULL; /* an IPv6 pinhole: [addr]:port */
        log_info(LOG_MOD,
                 "port %u: %s %s%s%s:%u -> %s%s%s:%u by %s (%s), lease %" PRIu32 " s%s, remaps %u",
                 st->internal_port, v6 ? "pinhole" : "mapped", v6 ? "[" : "", st->external_ip,
                 v6 ? "]" : "", st->external_port, v6 ? "[" : "", st->lan_addr, v6 ? "]" : "",
                 st->internal_port, method, st->gateway, st->lease_s,
                 st->lease_s ? "" : " (permanent)", st->remaps);
        break;
    }
    case NAT_MAP_MAPPING:
        if (old->external_ip[0] && st->external_ip[0] &&
            strcmp(old->external_ip, st->external_ip) != 0)
            log_info(LOG_MOD, "port %u: external address %s -> %s: mapping external port %u again",
                     st->internal_port, old->external_ip, st->external_ip, st->external_port);
        else
            log_info(LOG_MOD, "port %u: mapping external port %u by %s (%s)%s%s", st->internal_port,
                     st->external_port, method, st->gateway, st->error[0] ? ": after " : "",
                     st->error);
        break;
    case NAT_MAP_DISCOVERING:
        log_info(LOG_MOD, "port %u: discovering the gateway%s%s", st->internal_port,
                 st->error[0] ? ": after " : "", st->error);
        break;
    case NAT_MAP_NO_GATEWAY:
        log_info(LOG_MOD, "port %u: no gateway: %s; again in %" PRIu64 " s", st->internal_port,
                 st->error, retry_s);
        break;
    case NAT_MAP_FAILED:
        log_warn(LOG_MOD, "port %u: mapping failed: %s%s", st->internal_port, st->error,
                 retry_s ? "; trying again later" : "");
        break;
    case NAT_MAP_OFF:
        log_info(LOG_MOD, "port %u: off%s%s", st->internal_port, st->error[0] ? ": " : "",
                 st->error);
        break;
    }
}

static void report(struct nat_upnp *u)
{
    struct nat_upnp_status st;
    nat_map_fsm_status(u->fsm, &st);
    if (!nat_status_differs(&st, &u->last))
        return;
    log_change(u, &u->last, &st);
    u->last = st;
    if (u->cfg.changed)
        u->cfg.changed(&st, u->cfg.arg);
}

/* ---- the pulse ---------------------------------------------------------- */

static void pulse(struct nat_upnp *u)
{
    uint64_t now = mono_ms();
    struct nat_job job;
    if (u->worker && nat_map_fsm_next_job(u->fsm, now, &job)) {
        log_debug(LOG_MOD, "port %u: job %s %s external %u lease %" PRIu32, job.internal_port,
                  nat_job_kind_str(job.kind),
                  nat_method_str(job.method) ? nat_method_str(job.method) : "-", job.external_port,
                  job.lease_s);
        if (!nat_worker_post(u->worker, &job))
            nat_map_fsm_fail(u->fsm, SOVA_ERR_INTERNAL, "worker busy (a bug)");
    }
    uint64_t wake = nat_map_fsm_wake_ms(u->fsm);
    if (wake == UINT64_MAX) {
        evtimer_del(u->timer);
    } else {
        uint64_t delay = wake > now ? wake - now : 0;
        struct timeval tv = {.tv_sec = (time_t)(delay / 1000u),
                             .tv_usec = (suseconds_t)(delay % 1000u) * 1000};
        evtimer_add(u->timer, &tv);
    }
    report(u);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    pulse(arg);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct nat_upnp *u = arg;
    struct nat_job_result r;
    if (!u->worker || !nat_worker_take(u->worker, &r))
        return;
    log_debug(LOG_MOD, "port %u: %s result %d code %d %s", u->cfg.internal_port,
              nat_job_kind_str(r.kind), (int)r.outcome, r.code, r.error);
    nat_map_fsm_on_result(u->fsm, mono_ms(), &r);
    pulse(u);
}

/* ---- API ---------------------------------------------------------------- */

int nat_upnp_new(const struct nat_upnp_config *cfg, struct nat_upnp **out)
{
    *out = NULL;
    if (!cfg || !cfg->base || cfg->internal_port == 0)
        return SOVA_ERR_INVALID;
    if (cfg->discover_timeout_ms &&
        (cfg->discover_timeout_ms < 100 || cfg->discover_timeout_ms > 10000))
        return SOVA_ERR_INVALID;
    struct nat_upnp *u = calloc(1, sizeof(*u));
    if (!u)
        return SOVA_ERR_NOMEM;
    u->cfg = *cfg;
    snprintf(u->description, sizeof(u->description), "%s",
             cfg->description ? cfg->description : "sova");
    u->cfg.description = u->description;
    uint64_t t = sova_mono_ms();
    struct nat_map_fsm_params p = {
        .internal_port = cfg->internal_port,
        .lease_s = cfg->lease_s,
        .check_interval_s = cfg->check_interval_s,
        .discover_ms = cfg->discover_timeout_ms,
        .pcp = cfg->pcp || cfg->ipv6,
        .natpmp = cfg->natpmp && !cfg->ipv6,
        .ipv6 = cfg->ipv6,
        .seed = (uint32_t)t ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(t >> 32),
    };
    int rc = nat_map_fsm_new(&p, &u->fsm);
    if (rc == 0) {
        u->timer = evtimer_new(cfg->base, on_timer, u);
        if (!u->timer)
            rc = SOVA_ERR_NOMEM;
    }
    if (rc != 0) {
        nat_upnp_free(u);
        return rc;
    }
    nat_map_fsm_status(u->fsm, &u->last);
    *out = u;
    return 0;
}

void nat_upnp_start(struct nat_upnp *u)
{
    if (u->worker)
        return;
    char err[160];
    int rc = nat_worker_start(u->description, &u->worker, err, sizeof(err));
    if (rc == 0) {
        u->notify =
            event_new(u->cfg.base, nat_worker_fd(u->worker), EV_READ | EV_PERSIST, on_notify, u);
        if (!u->notify || event_add(u->notify, NULL) != 0) {
            int code;
            bool holds;
            char ignored[8];
            event_free(u->notify);
            u->notify = NULL;
            nat_worker_stop(u->worker, NAT_UPNP_STOP_WAIT_MS, &holds, &code, ignored,
                            sizeof(ignored));
            u->worker = NULL;
            rc = SOVA_ERR_NOMEM;
            snprintf(err, sizeof(err), "cannot watch the worker");
        }
    }
    if (rc != 0) {
        nat_map_fsm_fail(u->fsm, rc, err);
    } else {
        nat_map_fsm_start(u->fsm, mono_ms());
    }
    event_active(u->timer, EV_TIMEOUT, 0); /* pulse and report from the loop */
}

void nat_upnp_refresh(struct nat_upnp *u)
{
    if (!u->worker)
        return;
    log_info(LOG_MOD, "port %u: refresh asked for", u->cfg.internal_port);
    nat_map_fsm_refresh(u->fsm, mono_ms());
    event_active(u->timer, EV_TIMEOUT, 0);
}

void nat_upnp_status(const struct nat_upnp *u, struct nat_upnp_status *out)
{
    nat_map_fsm_status(u->fsm, out);
}

void nat_upnp_stop(struct nat_upnp *u)
{
    if (!u->worker) {
        nat_map_fsm_stop(u->fsm, 0, NULL);
        nat_map_fsm_status(u->fsm, &u->last);
        return;
    }
    struct nat_upnp_status before;
    nat_map_fsm_status(u->fsm, &before);
    event_free(u->notify);
    u->notify = NULL;
    evtimer_del(u->timer);
    uint64_t t0 = mono_ms();
    int code = 0;
    bool holds = false;
    char err[160];
    bool finished =
        nat_worker_stop(u->worker, NAT_UPNP_STOP_WAIT_MS, &holds, &code, err, sizeof(err));
    u->worker = NULL;
    uint64_t took = mono_ms() - t0;
    if (!finished) {
        snprintf(err, sizeof(err), "no answer from the gateway within %u ms at stop%s",
                 NAT_UPNP_STOP_WAIT_MS,
                 holds ? ": the mapping may stay until its lease ends" : " (no mapping held)");
        log_warn(LOG_MOD, "port %u: stop: %s", u->cfg.internal_port, err);
    } else if (err[0]) {
        log_warn(LOG_MOD, "port %u: stop: %s (%" PRIu64 " ms)", u->cfg.internal_port, err, took);
    } else if (before.state == NAT_MAP_MAPPED) {
        log_info(LOG_MOD, "port %u: stopped; mapping %s:%u deleted (%" PRIu64 " ms)",
                 u->cfg.internal_port, before.external_ip, before.external_port, took);
    } else {
        log_info(LOG_MOD, "port %u: stopped (%" PRIu64 " ms)", u->cfg.internal_port, took);
    }
    nat_map_fsm_stop(u->fsm, finished ? code : SOVA_ERR_TIMEOUT, err[0] ? err : NULL);
    nat_map_fsm_status(u->fsm, &u->last);
}

void nat_upnp_free(struct nat_upnp *u)
{
    if (!u)
        return;
    if (u->fsm)
        nat_upnp_stop(u);
    if (u->timer)
        event_free(u->timer);
    nat_map_fsm_free(u->fsm);
    free(u);
}
