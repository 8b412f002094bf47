/* op_control.h - the peer's control socket (docs/CONTROL.md): what
 * `sova-peer status/search/get/downloads/metrics` ask, answered from the
 * daemon's parts.
 *
 * The daemon (op_daemon.c) starts it and owns the server it makes (d->ctl):
 * it frees that before the parts the commands use, so a client still
 * waiting for a search (op_query.h) or following a download (op_fetch.h)
 * cancels it first. Calls go one way: op_control calls the modules it
 * answers from, and is called back only through their hooks (a search's
 * done, a download's progress) and the control server's. Nothing blocks.
 */
#ifndef SOVA_OP_CONTROL_H
#define SOVA_OP_CONTROL_H

#include "ctl.h"

#include <jansson.h>
#include <stddef.h>

struct op_daemon;
struct op_fetch_progress;

/* Listen on OP_CONTROL_SOCKET in the state directory; d->ctl is the
 * server. 0, or a negative enum sova_err with err set. */
int op_control_start(struct op_daemon *d, char *err, size_t errlen);

/* The handler of every command, for the control socket and for other
 * transports of the same requests (the HTTP API, op_api.h): arg is the
 * daemon. Replies through conn (ctl.h's lifetime rule). */
void op_control_request(struct ctl_conn *conn, const struct ctl_request *req, void *arg);

/* What `status` answers (a new reference; NULL on allocation failure). */
json_t *op_control_status_json(struct op_daemon *d);

/* A download as get's progress lines and downloads show it (new reference;
 * NULL on allocation failure). */
json_t *op_control_progress_json(const struct op_fetch_progress *p);

#endif
