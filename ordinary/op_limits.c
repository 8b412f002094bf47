/* op_limits.c - the bandwidth limits in force (op_limits.h). */
#include "op_limits.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "op_bw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KBPS_MAX 100000000ull /* the options' bound, kB/s */

struct op_limits {
    struct op_server *server;
    struct op_fetcher *fetcher;
    struct event *timer;
    uint64_t up, down, alt_up, alt_down; /* kB/s, 0 = unlimited */
    char *schedule_text;
    struct op_bw_schedule schedule;
    enum op_bw_turtle turtle;
    bool active; /* the alternative pair is in force */
    bool applied_once;
    uint64_t in_force_up, in_force_down;
};

static bool turtle_now(const struct op_limits *l)
{
    time_t t = (time_t)(sova_wall_ms() / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return l->turtle == OP_BW_TURTLE_ON;
    return op_bw_turtle_active(l->turtle, &l->schedule, tm.tm_wday, tm.tm_hour, tm.tm_min);
}

static void apply(struct op_limits *l)
{
    bool active = turtle_now(l);
    uint64_t up = active ? l->alt_up : l->up, down = active ? l->alt_down : l->down;
    if (l->applied_once && active == l->active && up == l->in_force_up && down == l->in_force_down)
        return;
    if (l->applied_once && active != l->active)
        log_info("op",
                 "alternative limits %s (%s): upload %llu kB/s, download %llu kB/s (0: "
                 "unlimited)",
                 active ? "on" : "off",
                 l->turtle == OP_BW_TURTLE_AUTO ? "by the schedule" : "by hand",
                 (unsigned long long)up, (unsigned long long)down);
    l->active = active;
    l->applied_once = true;
    l->in_force_up = up;
    l->in_force_down = down;
    op_server_set_upload_limit(l->server, up * 1000);
    op_fetch_set_limit(l->fetcher, down * 1000);
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    apply(arg);
}

static int take_settings(struct op_limits *l, const struct op_settings *s)
{
    struct op_bw_schedule sched;
    char err[256];
    if (op_bw_schedule_parse(s->alt_limits_schedule, &sched, err, sizeof(err)) != 0) {
        log_error("op", "alt-limits-schedule: %s", err); /* op_settings_load checked it */
        return SOVA_ERR_CONFIG;
    }
    char *text = s->alt_limits_schedule ? strdup(s->alt_limits_schedule) : NULL;
    if (s->alt_limits_schedule && text == NULL)
        return SOVA_ERR_NOMEM;
    free(l->schedule_text);
    l->schedule_text = text;
    l->schedule = sched;
    l->up = s->upload_limit_kbps;
    l->down = s->download_limit_kbps;
    l->alt_up = s->alt_upload_limit_kbps;
    l->alt_down = s->alt_download_limit_kbps;
    l->turtle = OP_BW_TURTLE_AUTO;
    return 0;
}

struct op_limits *op_limits_new(struct event_base *base, const struct op_settings *s,
                                struct op_server *server, struct op_fetcher *fetcher)
{
    struct op_limits *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->server = server;
    l->fetcher = fetcher;
    l->timer = event_new(base, -1, EV_PERSIST, on_check, l);
    if (l->timer == NULL || take_settings(l, s) != 0) {
        op_limits_free(l);
        return NULL;
    }
    struct timeval every = {.tv_sec = OP_LIMITS_CHECK_MS / 1000,
                            .tv_usec = (OP_LIMITS_CHECK_MS % 1000) * 1000};
    evtimer_add(l->timer, &every);
    apply(l);
    return l;
}

void op_limits_free(struct op_limits *l)
{
    if (l == NULL)
        return;
    if (l->timer)
        event_free(l->timer);
    free(l->schedule_text);
    free(l);
}

void op_limits_reload(struct op_limits *l, const struct op_settings *s)
{
    if (take_settings(l, s) == 0)
        apply(l);
}

int op_limits_change(struct op_limits *l, const struct op_limits_change *c, char *err,
                     size_t errlen)
{
    const uint64_t *v[] = {&c->upload_kbps, &c->download_kbps, &c->alt_upload_kbps,
                           &c->alt_download_kbps};
    static const char *const names[] = {"upload", "download", "alternative upload",
                                        "alternative download"};
    for (size_t i = 0; i < 4; i++)
        if (*v[i] != OP_LIMITS_UNSET && *v[i] > KBPS_MAX) {
            snprintf(err, errlen, "%s limit %llu kB/s is out of range (0 to %llu; 0: unlimited)",
                     names[i], (unsigned long long)*v[i], KBPS_MAX);
            return SOVA_ERR_BAD_VALUE;
        }
    int turtle = -1;
    if (c->turtle != NULL && (turtle = op_bw_turtle_parse(c->turtle)) < 0) {
        snprintf(err, errlen, "turtle must be on, off or auto (the schedule), not \"%.16s\"",
                 c->turtle);
        return SOVA_ERR_BAD_VALUE;
    }
    if (c->upload_kbps != OP_LIMITS_UNSET)
        l->up = c->upload_kbps;
    if (c->download_kbps != OP_LIMITS_UNSET)
        l->down = c->download_kbps;
    if (c->alt_upload_kbps != OP_LIMITS_UNSET)
        l->alt_up = c->alt_upload_kbps;
    if (c->alt_download_kbps != OP_LIMITS_UNSET)
        l->alt_down = c->alt_download_kbps;
    if (turtle >= 0)
        l->turtle = (enum op_bw_turtle)turtle;
    log_info("op",
             "limits changed: upload %llu, download %llu, alternative %llu/%llu kB/s, turtle %s "
             "(0: unlimited)",
             (unsigned long long)l->up, (unsigned long long)l->down, (unsigned long long)l->alt_up,
             (unsigned long long)l->alt_down, op_bw_turtle_name(l->turtle));
    apply(l);
    return 0;
}

json_t *op_limits_json(const struct op_limits *l)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:b, s:o, s:{s:I, s:I}}", "upload_kbps",
                     (json_int_t)l->up, "download_kbps", (json_int_t)l->down, "alt_upload_kbps",
                     (json_int_t)l->alt_up, "alt_download_kbps", (json_int_t)l->alt_down, "turtle",
                     op_bw_turtle_name(l->turtle), "turtle_active", l->active, "schedule",
                     l->schedule_text ? json_string(l->schedule_text) : json_null(), "in_force",
                     "upload_kbps", (json_int_t)l->in_force_up, "download_kbps",
                     (json_int_t)l->in_force_down);
}
