/* op_api_events.h - the HTTP API's event stream (GET /api/v1/events,
 * docs/API.md): Server-Sent Events of the downloads' progress and ends.
 *
 * op_api.c makes it, hands it the requests that passed its checks, and
 * frees it before its evhttp. While a client is connected, a timer looks at
 * the downloads every OP_API_EVENTS_TICK_MS (op_fetch_foreach) and tells
 * every client what moved; it stops with the last client. A client that
 * does not read is dropped at OP_API_EVENTS_MAX_OUTPUT queued bytes. Calls
 * go one way: this calls op_fetch and op_control_progress_json, nothing
 * calls back but libevent. Nothing blocks.
 */
#ifndef SOVA_OP_API_EVENTS_H
#define SOVA_OP_API_EVENTS_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

struct op_daemon;
struct op_api_events;

/* NULL on allocation failure. d must outlive it. */
struct op_api_events *op_api_events_new(struct event_base *base, struct op_daemon *d);
/* Forget every client (the caller's evhttp_free() closes them). NULL is fine. */
void op_api_events_free(struct op_api_events *ev);
/* Start a stream on req (a GET that passed the API's checks): 0, or the
 * HTTP status to refuse it with (503: too many clients) and err filled. */
int op_api_events_open(struct op_api_events *ev, struct evhttp_request *req, char *err,
                       size_t errlen);

#endif
