/* op_limits.h - the peer's bandwidth limits in force (docs/TRANSFERS.md,
 * "Bandwidth"): upload and download limits of all transfers together, the
 * alternative ("turtle") pair used by hand or on a schedule, and what the
 * user changed at run time (`sova-peer limits`, control command "limits").
 *
 * It owns a timer that looks at the local time every OP_LIMITS_CHECK_MS
 * and applies the pair in force to the upload server (op_serve.h) and the
 * fetcher (op_fetch.h); those stay owned by the daemon. A change at run time
 * lasts until the daemon stops or its configuration is reloaded (then the
 * configuration's values are in force again); put a limit in peer.conf to
 * keep it.
 */
#ifndef SOVA_OP_LIMITS_H
#define SOVA_OP_LIMITS_H

#include "op_config.h"
#include "op_fetch.h"
#include "op_serve.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

#define OP_LIMITS_CHECK_MS 5000 /* the schedule is looked at this often */
#define OP_LIMITS_UNSET    UINT64_MAX

/* A change asked at run time: OP_LIMITS_UNSET leaves a value as it is. */
struct op_limits_change {
    uint64_t upload_kbps, download_kbps, alt_upload_kbps, alt_download_kbps;
    const char *turtle; /* "on", "off", "auto", or NULL */
};

struct op_limits;

/* s must outlive the object (the daemon's settings); NULL when out of memory. */
struct op_limits *op_limits_new(struct event_base *base, const struct op_settings *s,
                                struct op_server *server, struct op_fetcher *fetcher);
void op_limits_free(struct op_limits *l);
/* The configuration was reloaded: its values are in force again. */
void op_limits_reload(struct op_limits *l, const struct op_settings *s);
/* Apply a change; SOVA_ERR_BAD_VALUE with err set (and nothing changed)
 * for a value out of range or an unknown turtle word. */
int op_limits_change(struct op_limits *l, const struct op_limits_change *c, char *err,
                     size_t errlen);
/* {"upload_kbps", "download_kbps", "alt_upload_kbps", "alt_download_kbps",
 *  "turtle": "auto|on|off", "turtle_active": bool, "schedule": "..."|null,
 *  "in_force": {"upload_kbps", "download_kbps"}} - 0 meaning unlimited. */
json_t *op_limits_json(const struct op_limits *l);

#endif
