/* metrics.h - Prometheus metrics: the text exposition format (0.0.4) and a
 * small HTTP endpoint for it on libevent's evhttp.
 *
 * A daemon renders its numbers into an evbuffer with the writers below
 * (HELP and TYPE line once per family, then its samples); the same text is
 * served at GET /metrics on the `metrics-listen` address and returned by
 * the control socket's "metrics" command. docs/OPERATIONS.md lists every
 * metric.
 *
 * The endpoint never blocks the loop: evhttp reads and writes without
 * waiting, a request is answered at once from counters the daemon already
 * keeps, headers are bounded (METRICS_HTTP_MAX_HEADERS), a request body is
 * refused, an idle connection is closed after METRICS_HTTP_TIMEOUT_S. There
 * is no authentication: bind it to loopback or to an address only the
 * monitoring host can reach.
 */
#ifndef SOVA_METRICS_H
#define SOVA_METRICS_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_HTTP_MAX_HEADERS 8192 /* bytes of request line and headers */
#define METRICS_HTTP_TIMEOUT_S   10   /* a slow client is dropped after this */
#define METRICS_CONTENT_TYPE     "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE };

/* "# HELP name help" and "# TYPE name counter|gauge": once per family,
 * before its samples. A counter's name ends in _total. */
void metrics_family(struct evbuffer *out, const char *name, enum metrics_type type,
                    const char *help);
/* One sample without labels. */
void metrics_sample(struct evbuffer *out, const char *name, uint64_t value);
/* One sample with n_labels label pairs: kv = {key1, value1, key2, value2, ...};
 * values are escaped (backslash, double quote, newline). */
void metrics_sample_labels(struct evbuffer *out, const char *name, uint64_t value, size_t n_labels,
                           const char *const *kv);
/* A family of one unlabelled sample. */
void metrics_counter(struct evbuffer *out, const char *name, const char *help, uint64_t value);
void metrics_gauge(struct evbuffer *out, const char *name, const char *help, uint64_t value);

/* The counters of a daemon's links (link.h) as PREFIX_links_opened_total,
 * PREFIX_handshake_failures_total{direction,reason} (every reason, zeros
 * included) and PREFIX_errors_sent_total{code,name} (every known code). */
struct link_counters;
void metrics_link_counters(struct evbuffer *out, const char *prefix, const struct link_counters *c);

/* What a daemon's links hold together (link.h, struct link_budget) and the
 * accept errors of its listeners (evloop.h), as PREFIX_handshakes,
 * PREFIX_connections_refused_total{reason}, PREFIX_handshakes_displaced_total,
 * PREFIX_buffered_bytes, PREFIX_buffered_links_closed_total{reason},
 * PREFIX_accept_errors_total. */
struct link_budget_stats;
void metrics_link_budget(struct evbuffer *out, const char *prefix,
                         const struct link_budget_stats *st, uint64_t accept_errors);

/* ---- the HTTP endpoint -------------------------------------------------- */

struct metrics_http;
/* Append the daemon's metrics text to out; runs on the loop per request. */
typedef void metrics_render_fn(struct evbuffer *out, void *arg);

/* Serve GET (and HEAD) /metrics on the numeric "ADDR:PORT" endpoint (port 0
 * picks one); other paths get 404, other methods 501 (evhttp's answer to a
 * method it is told not to allow). The address actually
 * bound is written to bound (may be NULL). 0, or SOVA_ERR_INVALID /
 * SOVA_ERR_IO / SOVA_ERR_NOMEM with err filled. */
int metrics_http_new(struct event_base *base, const char *endpoint, metrics_render_fn *render,
                     void *arg, struct metrics_http **out, char *bound, size_t boundlen, char *err,
                     size_t errlen);
/* Close the listener and every connection. NULL is fine. */
void metrics_http_free(struct metrics_http *m);

/* The control socket's "metrics" command: the final reply
 * {"metrics": "<the text>"} (docs/CONTROL.md). */
struct ctl_conn;
void metrics_ctl_reply(struct ctl_conn *conn, metrics_render_fn *render, void *arg);

#endif
