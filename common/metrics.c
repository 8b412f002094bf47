/* metrics.c - Prometheus text format writers and the evhttp endpoint. */
#include "metrics.h"
#include "config.h"
#include "ctl.h"
#include "err.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "wire.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_HOST_MAX 256

/* ---- text format ----------------------------------------------------------- */

void metrics_family(struct evbuffer *out, const char *name, enum metrics_type type,
                    const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type == METRICS_COUNTER ? "counter" : "gauge");
}

void metrics_sample(struct evbuffer *out, const char *name, uint64_t value)
{
    evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, value);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void add_label_value(struct evbuffer *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(out, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, v, 1);
    }
}

void metrics_sample_labels(struct evbuffer *out, const char *name, uint64_t value, size_t n_labels,
                           const char *const *kv)
{
    evbuffer_add_printf(out, "%s{", name);
    for (size_t i = 0; i < n_labels; i++) {
        evbuffer_add_printf(out, "%s%s=\"", i ? "," : "", kv[2 * i]);
        add_label_value(out, kv[2 * i + 1]);
        evbuffer_add(out, "\"", 1);
    }
    evbuffer_add_printf(out, "} %" PRIu64 "\n", value);
}

void metrics_counter(struct evbuffer *out, const char *name, const char *help, uint64_t value)
{
    metrics_family(out, name, METRICS_COUNTER, help);
    metrics_sample(out, name, value);
}

void metrics_gauge(struct evbuffer *out, const char *name, const char *help, uint64_t value)
{
    metrics_family(out, name, METRICS_GAUGE, help);
    metrics_sample(out, name, value);
}

void metrics_link_counters(struct evbuffer *out, const char *prefix, const struct link_counters *c)
{
    static const char *const direction[2] = {"in", "out"};
    char name[96];
    snprintf(name, sizeof(name), "%s_links_opened_total", prefix);
    metrics_family(out, name, METRICS_COUNTER,
                   "Connections through TLS and HELLO, accepted (in) or dialed (out)");
    for (int dir = 0; dir < 2; dir++)
        metrics_sample_labels(out, name, c->opened[dir], 1,
                              (const char *const[]){"direction", direction[dir]});
    snprintf(name, sizeof(name), "%s_handshake_failures_total", prefix);
    metrics_family(out, name, METRICS_COUNTER,
                   "Connections that failed before TLS and HELLO were done, by reason");
    for (int dir = 0; dir < 2; dir++)
        for (int why = 0; why < LINK_HS_N; why++)
            metrics_sample_labels(out, name, c->handshake_failures[dir][why], 2,
                                  (const char *const[]){"direction", direction[dir], "reason",
                                                        link_hs_failure_name(why)});
    snprintf(name, sizeof(name), "%s_errors_sent_total", prefix);
    metrics_family(out, name, METRICS_COUNTER, "ERROR frames sent, by code (docs/PROTOCOL.md)");
    for (unsigned code = 1; code < LINK_ERROR_SLOTS; code++) {
        const char *text = msg_error_code_str((uint16_t)code);
        if (strcmp(text, "unknown error code") == 0 && c->errors_sent[code] == 0)
            continue;
        char num[8], label[64];
        snprintf(num, sizeof(num), "%u", code);
        snprintf(label, sizeof(label), "%s", text);
        for (char *p = label; *p; p++) /* "timed out" -> "timed_out" */
            if (*p == ' ' || *p == '-')
                *p = '_';
        metrics_sample_labels(out, name, c->errors_sent[code], 2,
                              (const char *const[]){"code", num, "name", label});
    }
    if (c->errors_sent[0] != 0)
        metrics_sample_labels(out, name, c->errors_sent[0], 2,
                              (const char *const[]){"code", "other", "name", "other"});
}

void metrics_ctl_reply(struct ctl_conn *conn, metrics_render_fn *render, void *arg)
{
    struct evbuffer *text = evbuffer_new();
    if (text == NULL) {
        ctl_reply_error(conn, "out of memory");
        return;
    }
    render(text, arg);
    size_t len = evbuffer_get_length(text);
    const char *bytes = (const char *)evbuffer_pullup(text, -1);
    ctl_reply(conn, json_pack("{s:s%}", "metrics", bytes ? bytes : "", bytes ? len : 0), true);
    evbuffer_free(text);
}

/* ---- HTTP ------------------------------------------------------------------- */

struct metrics_http {
    struct evhttp *http;
    metrics_render_fn *render;
    void *arg;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(body, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct metrics_http *m = arg; /* only GET and HEAD get here (allowed methods) */
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || strcmp(path, "/metrics") != 0) {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "not found: the metrics are at /metrics\n");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    m->render(body, m->arg);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", METRICS_CONTENT_TYPE);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(req, HTTP_OK, "OK", body); /* evhttp leaves out the body of a HEAD */
    evbuffer_free(body);
}

int metrics_http_new(struct event_base *base, const char *endpoint, metrics_render_fn *render,
                     void *arg, struct metrics_http **out, char *bound, size_t boundlen, char *err,
                     size_t errlen)
{
    char host[METRICS_HOST_MAX], port_str[8];
    uint16_t port;
    *out = NULL;
    if (config_parse_endpoint(endpoint, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "metrics address '%s' is not ADDR:PORT", endpoint);
        return SOVA_ERR_INVALID;
    }
    snprintf(port_str, sizeof(port_str), "%u", port);
    /* A numeric address only: a name would need a blocking lookup. */
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *ai = NULL;
    if (evutil_getaddrinfo(host, port_str, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "metrics address '%s': host must be a numeric address", endpoint);
        return SOVA_ERR_INVALID;
    }
    struct metrics_http *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->http = evhttp_new(base)) == NULL) {
        evutil_freeaddrinfo(ai);
        free(m);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    m->render = render;
    m->arg = arg;
    struct evconnlistener *lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 16,
        ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (lev == NULL) {
        snprintf(err, errlen, "cannot listen for metrics on %s: %s", endpoint, strerror(errno));
        metrics_http_free(m);
        return SOVA_ERR_IO;
    }
    if (evhttp_bind_listener(m->http, lev) == NULL) {
        evconnlistener_free(lev);
        metrics_http_free(m);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(m->http, METRICS_HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_timeout(m->http, METRICS_HTTP_TIMEOUT_S);
    evhttp_set_gencb(m->http, on_request, m);
    if (bound != NULL && boundlen > 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        struct wire_addr a;
        snprintf(bound, boundlen, "%s", endpoint);
        if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &len) == 0 &&
            wire_addr_from_sockaddr(&a, (struct sockaddr *)&ss, len) == 0)
            wire_addr_format(&a, bound, boundlen);
    }
    *out = m;
    return 0;
}

void metrics_http_free(struct metrics_http *m)
{
    if (m == NULL)
        return;
    if (m->http)
        evhttp_free(m->http);
    free(m);
}

void metrics_link_budget(struct evbuffer *out, const char *prefix,
                         const struct link_budget_stats *st, uint64_t accept_errors)
{
    char name[96];
    snprintf(name, sizeof(name), "%s_handshakes", prefix);
    metrics_gauge(out, name, "Accepted connections in their TLS handshake now", st->handshaking);
    snprintf(name, sizeof(name), "%s_connections_refused_total", prefix);
    metrics_family(out, name, METRICS_COUNTER,
                   "Connections closed before TLS: max-handshakes, max-conns-per-ip");
    metrics_sample_labels(out, name, st->refused_handshakes, 1,
                          (const char *const[]){"reason", "handshakes"});
    metrics_sample_labels(out, name, st->refused_ip, 1, (const char *const[]){"reason", "per_ip"});
    snprintf(name, sizeof(name), "%s_handshakes_displaced_total", prefix);
    metrics_counter(out, name, "Handshakes closed to let in a newcomer from a prefix holding fewer",
                    st->displaced_handshakes);
    snprintf(name, sizeof(name), "%s_buffered_bytes", prefix);
    metrics_gauge(out, name, "Bytes of incomplete frames the links hold now", st->buffered);
    snprintf(name, sizeof(name), "%s_buffered_links_closed_total", prefix);
    metrics_family(out, name, METRICS_COUNTER,
                   "Links closed for incomplete frames: over a prefix's or identity's share, or "
                   "displaced when max-buffered-bytes was short");
    metrics_sample_labels(out, name, st->closed_over_share, 1,
                          (const char *const[]){"reason", "share"});
    metrics_sample_labels(out, name, st->displaced_buffered, 1,
                          (const char *const[]){"reason", "displaced"});
    snprintf(name, sizeof(name), "%s_accept_errors_total", prefix);
    metrics_counter(out, name,
                    "Accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM); each paused the listener",
                    accept_errors);
}
