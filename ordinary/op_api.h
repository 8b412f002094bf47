/* op_api.h - the peer's local HTTP API (docs/API.md): a second transport of
 * the control socket's commands, served with libevent's evhttp.
 *
 * One API, not two: POST /api/v1/CMD carries the fields of the control
 * request CMD (docs/CONTROL.md) as a JSON object; the same decoder
 * (ctl_request_decode) checks it and the same handler (op_control_request)
 * answers it, through a ctl_conn whose replies come back here (ctl.h, "other
 * transports"). GET /api/v1/events is a Server-Sent Events stream of the
 * downloads' progress and ends.
 *
 * Who may ask: a request must carry the API key (STATE_DIR/api-key, made at
 * the first start, 0600) and name this API in its Host header (DNS
 * rebinding) and, if it has one, in its Origin (cross-site requests); a POST
 * must be application/json (a plain HTML form cannot send that). No CORS
 * header is ever sent. Loopback only, unless api-allow-remote is set.
 *
 * The daemon (op_daemon.c) starts it after the control socket and frees it
 * before it (d->api): requests still waiting for an answer are told their
 * client went away first. Nothing blocks.
 */
#ifndef SOVA_OP_API_H
#define SOVA_OP_API_H

#include <stdbool.h>
#include <stddef.h>

#define OP_API_KEY_FILE           "api-key" /* in the state directory, mode 0600 */
#define OP_API_KEY_BYTES          32        /* random bytes of the key (RAND_bytes) */
#define OP_API_KEY_HEX            64        /* ... as lowercase hex */
#define OP_API_MAX_BODY           65536     /* bytes of a POST body (413 beyond) */
#define OP_API_MAX_HEADERS        16384     /* bytes of a request's headers */
#define OP_API_TIMEOUT_S          75        /* evhttp read/write timeout: > the longest search */
#define OP_API_EVENTS_MAX_CLIENTS 16        /* event streams at once (503 beyond) */
#define OP_API_EVENTS_MAX_OUTPUT                                                                   \
    1048576                         /* bytes queued to one event client before it is dropped       \
                                     */
#define OP_API_EVENTS_TICK_MS 500   /* downloads are looked at this often: progress at most 2/s */
#define OP_API_HEARTBEAT_MS   15000 /* a comment line to every event client */
#define OP_API_STATUS_MS      2000  /* a status event at most this often, when it changed */
#define OP_API_LOG_MS         10000 /* refused requests: one log line per this */

struct op_daemon;
struct op_api;
struct op_settings;
struct cfgcheck;

/* Listen on d->s->api_listen (nothing when it is NULL); d->api is the API
 * and d->api_address where it listens ("127.0.0.1:PORT", port 0 resolved).
 * Makes the API key if there is none. 0, or a negative enum sova_err with
 * err set (a non-loopback address without api-allow-remote, a port in use,
 * a key file others may read). */
int op_api_start(struct op_daemon *d, char *err, size_t errlen);
/* What op_api_start would refuse in s, found without starting it (for
 * --check-config, common/cfgcheck.h): api-tls-cert and api-tls-key that do
 * not load as a pair, an api-listen that is not numeric, or off loopback
 * without api-allow-remote and TLS. */
void op_api_check(const struct op_settings *s, struct cfgcheck *c);
/* Close every client (those waiting for an answer first) and stop
 * listening. Safe when the API never started. */
void op_api_stop(struct op_daemon *d);

/* The key in STATE_DIR/api-key into key (OP_API_KEY_HEX hex digits and a
 * NUL). With create, a missing file is made (32 random bytes, hex, 0600).
 * 0, or SOVA_ERR_NOT_FOUND (no key and not create), SOVA_ERR_IO or
 * SOVA_ERR_INVALID (not a regular file of ours, readable by others, not a
 * key) with err set. Blocks on the file system: called at start and by the
 * CLI. */
int op_api_key_load(const char *state_dir, bool create, char key[OP_API_KEY_HEX + 1], char *err,
                    size_t errlen);

#endif
