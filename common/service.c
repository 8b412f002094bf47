/* service.c - sd_notify(3) readiness, status and watchdog on the loop. */
#include "service.h"
#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#define SERVICE_STATUS_MAX 200

struct service {
    struct event *tick;
    service_status_fn *status;
    void *arg;
    uint64_t watchdog_usec; /* 0: no watchdog asked for */
    bool stopping;
    char last_status[SERVICE_STATUS_MAX];
};

static void send_state(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_warn("svc", "cannot notify the service manager: %s", strerror(-rc));
}

/* "STATUS=..." when the line changed since the last one sent, or always
 * with force; "" if not. */
static void status_field(struct service *svc, bool force, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (svc->status == NULL)
        return;
    char now[SERVICE_STATUS_MAX];
    now[0] = '\0';
    svc->status(now, sizeof(now), svc->arg);
    if (!force && strcmp(now, svc->last_status) == 0)
        return;
    memcpy(svc->last_status, now, sizeof(now));
    snprintf(buf, cap, "STATUS=%s", now);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct service *svc = arg;
    (void)fd;
    (void)what;
    if (svc->stopping)
        return;
    char status[SERVICE_STATUS_MAX + 16], msg[SERVICE_STATUS_MAX + 32];
    status_field(svc, false, status, sizeof(status));
    snprintf(msg, sizeof(msg), "%s%s%s", svc->watchdog_usec ? "WATCHDOG=1" : "",
             svc->watchdog_usec && status[0] ? "\n" : "", status);
    if (msg[0] != '\0')
        send_state(msg);
}

int service_new(struct event_base *base, service_status_fn *status, void *arg, struct service **out)
{
    *out = NULL;
    const char *sock = getenv("NOTIFY_SOCKET");
    if (sock == NULL || sock[0] == '\0')
        return 0;
    struct service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return SOVA_ERR_NOMEM;
    svc->status = status;
    svc->arg = arg;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        svc->watchdog_usec = usec;
    svc->tick = event_new(base, -1, EV_PERSIST, on_tick, svc);
    if (svc->tick == NULL) {
        free(svc);
        return SOVA_ERR_NOMEM;
    }
    uint64_t period =
        svc->watchdog_usec ? svc->watchdog_usec / 2 : (uint64_t)SERVICE_STATUS_INTERVAL_MS * 1000;
    struct timeval tv = {.tv_sec = (time_t)(period / 1000000),
                         .tv_usec = (suseconds_t)(period % 1000000)};
    event_add(svc->tick, &tv);
    if (svc->watchdog_usec) {
        log_info("svc", "watchdog: keep-alive every %" PRIu64 " ms", period / 1000);
        send_state("WATCHDOG=1");
    }
    *out = svc;
    return 0;
}

void service_free(struct service *svc)
{
    if (svc == NULL)
        return;
    event_free(svc->tick);
    free(svc);
}

void service_ready(struct service *svc)
{
    if (svc == NULL)
        return;
    char status[SERVICE_STATUS_MAX + 16], msg[SERVICE_STATUS_MAX + 32];
    status_field(svc, true, status, sizeof(status));
    snprintf(msg, sizeof(msg), "READY=1%s%s", status[0] ? "\n" : "", status);
    send_state(msg);
}

void service_reloading(const struct service *svc)
{
    if (svc == NULL)
        return;
    /* MONOTONIC_USEC: what Type=notify-reload (systemd 253) wants with it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    send_state(msg);
}

void service_stopping(struct service *svc)
{
    if (svc == NULL || svc->stopping)
        return;
    svc->stopping = true;
    event_del(svc->tick);
    send_state("STOPPING=1");
}

bool service_watchdog(const struct service *svc, unsigned *period_ms)
{
    if (svc == NULL || svc->watchdog_usec == 0)
        return false;
    *period_ms = (unsigned)(svc->watchdog_usec / 2000);
    return true;
}
