/* op_api_events.c - the HTTP API's event stream (op_api_events.h). */
#include "op_api_events.h"
#include "log.h"
#include "op_api.h"
#include "op_control.h"
#include "op_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An event stream. */
struct api_client {
    struct op_api_events *ev;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct api_client *prev, *next;
};

/* What the stream last said of a download. */
struct api_seen {
    uint8_t id[WIRE_HASH_LEN];
    int state; /* enum op_fetch_state; -1 before any */
    uint64_t bytes_have;
    uint64_t gen; /* the tick that last saw it */
};

struct op_api_events {
    struct op_daemon *d;
    struct api_client *clients;
    size_t n_clients;
    struct event *tick;
    uint64_t last_heartbeat_ms;
    struct api_seen *seen; /* linear: a daemon runs tens of downloads, not thousands */
    size_t n_seen, cap_seen;
    uint64_t gen;
    bool priming;       /* the first look after a quiet time: record, tell no ends */
    uint64_t status_ms; /* when the status was last looked at */
    char *status_last;  /* ... and what it said, but for its uptime (malloc'd) */
};

static void client_free(struct api_client *c)
{
    struct op_api_events *api = c->ev;
    if (c->prev)
        c->prev->next = c->next;
    else
        api->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    api->n_clients--;
    evhttp_connection_set_closecb(c->evcon, NULL, NULL);
    free(c);
}

static void client_gone(struct evhttp_connection *evcon, void *arg)
{
    struct api_client *c = arg;
    struct evhttp_request *req = c->req;
    (void)evcon;
    client_free(c);
    /* A stream is never finished, so evhttp detaches it when its client
     * leaves rather than free it: it is ours then (as in op_api.c). */
    if (evhttp_request_get_connection(req) == NULL)
        evhttp_request_free(req);
}

/* text to every event client; one that does not read is dropped. */
static void broadcast(struct op_api_events *api, const char *text, size_t len)
{
    struct api_client *next;
    for (struct api_client *c = api->clients; c != NULL; c = next) {
        next = c->next;
        struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
        if (bev != NULL &&
            evbuffer_get_length(bufferevent_get_output(bev)) + len > OP_API_EVENTS_MAX_OUTPUT) {
            log_warn("api", "an event client is not reading (%zu bytes queued): dropping it",
                     evbuffer_get_length(bufferevent_get_output(bev)));
            struct evhttp_connection *evcon = c->evcon;
            client_free(c);
            evhttp_connection_free(evcon);
            continue;
        }
        struct evbuffer *chunk = evbuffer_new();
        if (chunk == NULL)
            continue;
        evbuffer_add(chunk, text, len);
        evhttp_send_reply_chunk(c->req, chunk);
        evbuffer_free(chunk);
    }
}

static void send_event(struct op_api_events *api, const char *name, json_t *data)
{
    if (data == NULL)
        return;
    char *json = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (json == NULL)
        return;
    size_t cap = strlen(json) + strlen(name) + 32;
    char *text = malloc(cap);
    if (text != NULL) {
        int n = snprintf(text, cap, "event: %s\ndata: %s\n\n", name, json);
        broadcast(api, text, (size_t)n);
    }
    free(text);
    free(json);
}

static struct api_seen *seen_find(struct op_api_events *api, const uint8_t id[WIRE_HASH_LEN])
{
    for (size_t i = 0; i < api->n_seen; i++)
        if (memcmp(api->seen[i].id, id, WIRE_HASH_LEN) == 0)
            return &api->seen[i];
    if (api->n_seen == api->cap_seen) {
        size_t cap = api->cap_seen ? 2 * api->cap_seen : 16;
        struct api_seen *bigger = realloc(api->seen, cap * sizeof(*bigger));
        if (bigger == NULL)
            return NULL;
        api->seen = bigger;
        api->cap_seen = cap;
    }
    struct api_seen *s = &api->seen[api->n_seen++];
    memcpy(s->id, id, WIRE_HASH_LEN);
    s->state = -1;
    s->bytes_have = 0;
    return s;
}

/* One download at a tick: progress while it runs (when it moved), its end
 * once. */
static void look_at(const struct op_fetch_progress *p, void *arg)
{
    struct op_api_events *api = arg;
    struct api_seen *s = seen_find(api, p->id);
    if (s == NULL)
        return;
    s->gen = api->gen;
    bool changed = s->state != (int)p->state;
    if (p->state == OP_FETCH_RUNNING || p->state == OP_FETCH_QUEUED) {
        if (changed || s->bytes_have != p->bytes_have)
            send_event(api, "progress",
                       json_pack("{s:o}", "download", op_control_progress_json(p)));
    } else if (changed && !api->priming) {
        const char *name = p->cancelled                  ? "cancelled"
                           : p->state == OP_FETCH_DONE   ? "complete"
                           : p->state == OP_FETCH_PAUSED ? "paused"
                                                         : "failed";
        send_event(api, name, json_pack("{s:o}", "download", op_control_progress_json(p)));
    }
    s->state = (int)p->state;
    s->bytes_have = p->bytes_have;
}

/* A status event when the status changed (its uptime does not count), so
 * a page follows attach, reachability and shares without asking. */
static void look_at_status(struct op_api_events *api, uint64_t now)
{
    api->status_ms = now;
    json_t *st = op_control_status_json(api->d);
    json_t *uptime = st ? json_incref(json_object_get(st, "uptime_s")) : NULL;
    if (st != NULL)
        json_object_del(st, "uptime_s");
    char *text = st ? json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text == NULL || (api->status_last != NULL && strcmp(text, api->status_last) == 0)) {
        free(text);
        json_decref(uptime);
        json_decref(st);
        return;
    }
    free(api->status_last);
    api->status_last = text;
    if (uptime != NULL)
        json_object_set_new(st, "uptime_s", uptime);
    send_event(api, "status", st); /* takes st */
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct op_api_events *api = arg;
    (void)fd;
    (void)what;
    api->gen++;
    op_fetch_foreach(api->d->fetcher, look_at, api);
    /* Gone from the list: cancel drops an active one, remove a finished one. */
    size_t kept = 0;
    for (size_t i = 0; i < api->n_seen; i++) {
        struct api_seen *s = &api->seen[i];
        if (s->gen == api->gen) {
            api->seen[kept++] = *s;
            continue;
        }
        if (api->priming)
            continue;
        const char *name =
            s->state == OP_FETCH_DONE || s->state == OP_FETCH_FAILED ? "removed" : "cancelled";
        send_event(
            api, name,
            json_pack("{s:{s:o, s:s}}", "download", "id", ctl_json_hex32(s->id), "state", name));
    }
    api->n_seen = kept;
    api->priming = false;
    uint64_t now = link_now_ms();
    if (now - api->status_ms >= OP_API_STATUS_MS)
        look_at_status(api, now);
    if (now - api->last_heartbeat_ms >= OP_API_HEARTBEAT_MS) {
        static const char beat[] = ": heartbeat\n\n";
        broadcast(api, beat, sizeof(beat) - 1);
        api->last_heartbeat_ms = now;
    }
    if (api->n_clients == 0)
        return; /* the tick stops with the last client */
    struct timeval tv = {.tv_sec = 0, .tv_usec = OP_API_EVENTS_TICK_MS * 1000};
    evtimer_add(api->tick, &tv);
}

int op_api_events_open(struct op_api_events *api, struct evhttp_request *req, char *err,
                       size_t errlen)
{
    if (api->n_clients >= OP_API_EVENTS_MAX_CLIENTS) {
        snprintf(err, errlen, "too many event clients (at most %d)", OP_API_EVENTS_MAX_CLIENTS);
        return 503;
    }
    struct api_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    c->ev = api;
    c->req = req;
    c->evcon = evhttp_request_get_connection(req);
    c->next = api->clients;
    if (api->clients)
        api->clients->prev = c;
    api->clients = c;
    api->n_clients++;
    evhttp_connection_set_closecb(c->evcon, client_gone, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply_start(req, 200, "OK");
    /* The stream stays open: no idle timeout (the heartbeat finds a dead client). */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    if (bev != NULL)
        bufferevent_set_timeouts(bev, NULL, NULL);
    struct evbuffer *hello = evbuffer_new();
    if (hello != NULL) {
        evbuffer_add_printf(hello, "retry: 3000\n: sova events\n\n");
        evhttp_send_reply_chunk(req, hello);
        evbuffer_free(hello);
    }
    api->status_ms = 0; /* a new client hears the status at the next tick */
    free(api->status_last);
    api->status_last = NULL;
    if (!evtimer_pending(api->tick, NULL)) {
        api->priming = true;
        api->last_heartbeat_ms = link_now_ms();
        event_active(api->tick, EV_TIMEOUT, 1);
    }
    return 0;
}

struct op_api_events *op_api_events_new(struct event_base *base, struct op_daemon *d)
{
    struct op_api_events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return NULL;
    ev->d = d;
    ev->tick = evtimer_new(base, tick_cb, ev);
    if (ev->tick == NULL) {
        free(ev);
        return NULL;
    }
    return ev;
}

void op_api_events_free(struct op_api_events *ev)
{
    if (ev == NULL)
        return;
    while (ev->clients != NULL)
        client_free(ev->clients);
    event_free(ev->tick);
    free(ev->status_last);
    free(ev->seen);
    free(ev);
}
