/* service.h - a daemon and its service manager (systemd), through
 * sd_notify(3) of libsystemd: readiness, reload, stop, a status line, and
 * the watchdog keep-alive.
 *
 * The keep-alive runs from a timer on the daemon's own event loop, so a
 * loop that is stuck (a blocking call, an endless callback) stops the pings
 * and systemd restarts the daemon (WatchdogSec= in the unit). It pings at
 * half the interval systemd asks for ($WATCHDOG_USEC), the first time at
 * once.
 *
 * Without $NOTIFY_SOCKET (started by hand, by a test, by another manager)
 * every call is a cheap no-op and no timer runs. A notification is one
 * datagram to the manager's socket; nothing here waits for an answer.
 *
 * Ownership: struct service is the daemon's; the status callback borrows
 * the daemon's state and is called from the loop only.
 */
#ifndef SOVA_SERVICE_H
#define SOVA_SERVICE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

/* How often the status line is refreshed when no watchdog is asked for. */
#define SERVICE_STATUS_INTERVAL_MS 10000

struct service;

/* Write a one-line status ("412 peers, 3 supernodes") into buf. */
typedef void service_status_fn(char *buf, size_t cap, void *arg);

/* Start talking to the manager on base. status may be NULL. *out is NULL
 * (and 0 returned) when no manager listens. 0 or SOVA_ERR_NOMEM. */
int service_new(struct event_base *base, service_status_fn *status, void *arg,
                struct service **out);
/* NULL is fine. */
void service_free(struct service *svc);

/* The daemon serves now: READY=1 with the status line. */
void service_ready(struct service *svc);
/* A reload begins (RELOADING=1); service_ready() ends it. */
void service_reloading(const struct service *svc);
/* The daemon is stopping (STOPPING=1): no more keep-alives are needed. */
void service_stopping(struct service *svc);
/* Whether a watchdog keep-alive runs, and its period in milliseconds. */
bool service_watchdog(const struct service *svc, unsigned *period_ms);

#endif
