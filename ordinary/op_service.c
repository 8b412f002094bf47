/* op_service.c - the peer as a (user) service: READY=1 once it listens and
 * serves its control socket, the watchdog keep-alive and a status line
 * (common/service.h), STOPPING=1 on SIGTERM (the port mapping is deleted by
 * op_reach_free() as the daemon stops), and SIGHUP: the options are loaded
 * again, what can change at run time is applied, each change logged on one
 * line, and every other change is named as needing a restart. */
#include "err.h"
#include "log.h"
#include "op_internal.h"
#include "service.h"

#include <stdio.h>
#include <string.h>

static void status_line(char *buf, size_t cap, void *arg)
{
    const struct op_daemon *d = arg;
    const struct op_share_result *res = d->share ? op_share_current(d->share) : NULL;
    snprintf(buf, cap, "%s, %s, %zu files shared, %zu downloads running",
             op_session_attached(d->session) ? "attached" : "not attached",
             nat_reach_str(op_reach_self(d->reach)), res ? res->n_files : (size_t)0,
             (size_t)op_fetch_running(d->fetcher));
}

/* ---- SIGHUP ---------------------------------------------------------------------------- */

enum reload_apply {
    APPLY_LOG_LEVEL = 1 << 0,
    APPLY_RESCAN = 1 << 1,
    APPLY_UPLOAD = 1 << 2,
    APPLY_SLOTS = 1 << 3,
    APPLY_QUEUE = 1 << 4,
};

/* The options a SIGHUP changes in the running peer; every other option
 * (state-dir, bootstrap, listen, share, downloads, upnp, ways, timeouts...)
 * needs a restart. log-file is reopened on every SIGHUP. */
static const struct {
    const char *name;
    unsigned apply;
} reloadable[] = {
    {"log-level", APPLY_LOG_LEVEL},
    {"log-file", 0},
    {"rescan-interval-s", APPLY_RESCAN},
    {"upload-limit-kbps", APPLY_UPLOAD},
    {"upload-slots", APPLY_SLOTS},         /* a smaller count: holders yield at a chunk */
    {"upload-max-wait-s", APPLY_SLOTS},    /* waiters rank by it from now on */
    {"max-active-downloads", APPLY_QUEUE}, /* fewer: the last in the queue's order wait again */
    {"on-complete", 0},                    /* read at each completion */
    {"on-complete-timeout-s", 0},
    {"download-limit-kbps", APPLY_UPLOAD},
    {"alt-upload-limit-kbps", APPLY_UPLOAD},
    {"alt-download-limit-kbps", APPLY_UPLOAD},
    {"alt-limits-schedule", APPLY_UPLOAD},
};

struct reload {
    struct op_daemon *d;
    const struct op_settings *fresh;
    unsigned apply;
    size_t applied, kept;
};

static void on_change(const struct config_option *opt, const char *before, const char *after,
                      void *arg)
{
    struct reload *r = arg;
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++) {
        if (strcmp(reloadable[i].name, opt->name) != 0)
            continue;
        if (config_copy(opt, r->d->s, r->fresh) != 0) {
            log_error("op", "reload: out of memory applying %s", opt->name);
            return;
        }
        r->apply |= reloadable[i].apply;
        r->applied++;
        log_info("op", "reload: %s %s -> %s", opt->name, before, after);
        return;
    }
    r->kept++;
    log_warn("op", "reload: %s changed (%s -> %s) but needs a restart; still %s", opt->name, before,
             after, before);
}

static void apply(struct op_daemon *d, unsigned what)
{
    if (what & APPLY_LOG_LEVEL)
        sova_log_set_level((enum sova_log_level)d->s->log_level);
    if (what & APPLY_RESCAN) {
        struct timeval every = {.tv_sec = (time_t)d->s->rescan_interval_s};
        evtimer_add(d->rescan, &every);
    }
    if (what & APPLY_UPLOAD) /* the configured limits in force again */
        op_limits_reload(d->bw, d->s);
    if (what & APPLY_SLOTS)
        op_server_set_slots(d->server, (unsigned)d->s->upload_slots,
                            d->s->upload_max_wait_s * 1000);
    if (what & APPLY_QUEUE)
        op_fetch_set_max_active(d->fetcher, (unsigned)d->s->max_active_downloads);
}

static void reopen_log(struct op_daemon *d, const struct op_settings *fresh)
{
    const char *path = fresh ? fresh->log_file : d->s->log_file;
    if (path == NULL && d->s->log_file == NULL)
        return;
    char err[512];
    if (sova_log_open_file(path, err, sizeof(err)) != 0)
        log_error("op", "reload: %s", err);
}

static void on_reload(void *arg)
{
    struct op_daemon *d = arg;
    service_reloading(d->svc);
    struct op_settings fresh;
    char err[CONFIG_ERR_MAX];
    int rc = op_settings_load(&fresh, d->argc, d->argv, err, sizeof(err));
    if (rc != 0) {
        reopen_log(d, NULL);
        log_error("op", "reload: %s; keeping the running configuration", err);
        d->reload_failures++;
    } else {
        reopen_log(d, &fresh);
        struct reload r = {.d = d, .fresh = &fresh};
        config_diff(&op_config_schema, d->s, &fresh, on_change, &r);
        apply(d, r.apply | APPLY_UPLOAD); /* limits changed at run time end with a reload */
        log_info("op", "reload: %zu options changed, %zu need a restart", r.applied, r.kept);
        d->reloads++;
    }
    op_settings_free(&fresh);
    service_ready(d->svc);
}

/* ---- start and stop ---------------------------------------------------------------------- */

int op_service_start(struct op_daemon *d)
{
    int rc = service_new(evloop_base(d->loop), status_line, d, &d->svc);
    if (rc != 0)
        return rc;
    evloop_on_reload(d->loop, on_reload, d);
    service_ready(d->svc);
    return 0;
}

void op_service_stopping(struct op_daemon *d)
{
    service_stopping(d->svc);
}

void op_service_stop(struct op_daemon *d)
{
    service_free(d->svc);
    d->svc = NULL;
}
