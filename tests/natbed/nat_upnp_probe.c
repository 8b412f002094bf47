/* nat_upnp_probe.c - run nat/'s port mapping on a real libevent loop, for
 * the NAT test bed (tests/natbed/test_upnp.sh).
 *
 * Prints one JSON object per line on stdout: every status change
 * ("event":"status"), each accepted connection with --listen
 * ("event":"accepted"), and the status after SIGTERM's stop
 * ("event":"stopped", with "stop_ms"). Every line carries "t_ms" (since the
 * probe started) and "mono_ms" (CLOCK_MONOTONIC). SIGUSR1 calls
 * nat_upnp_refresh(); SIGTERM or SIGINT call nat_upnp_stop() and exit 0.
 *
 *   nat_upnp_probe --port N [--lease S] [--check S] [--discover-ms MS]
 *                  [--no-natpmp] [--no-pcp] [--desc TEXT] [--listen] [--debug]
 */
#include "log.h"
#include "nat_upnp.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct probe {
    struct event_base *base;
    struct nat_upnp *nat;
    uint64_t t0_ms;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Adds t_ms and mono_ms, prints obj as one line, steals obj. */
static void emit(struct probe *p, json_t *obj)
{
    if (!obj) {
        fprintf(stderr, "probe: json_pack failed\n");
        return;
    }
    uint64_t now = mono_ms();
    json_object_set_new(obj, "t_ms", json_integer((json_int_t)(now - p->t0_ms)));
    json_object_set_new(obj, "mono_ms", json_integer((json_int_t)now));
    char *line = json_dumps(obj, JSON_COMPACT);
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }
    json_decref(obj);
}

static json_t *status_json(const char *event, const struct nat_upnp_status *st)
{
    return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:i, s:i, s:I, s:i, s:s, s:I, s:i}", "event",
                     event, "state", nat_map_state_str(st->state), "method", st->method, "gateway",
                     st->gateway, "lan_addr", st->lan_addr, "external_ip", st->external_ip,
                     "internal_port", (int)st->internal_port, "external_port",
                     (int)st->external_port, "lease_s", (json_int_t)st->lease_s, "error_code",
                     st->error_code, "error", st->error, "mapped_since_ms",
                     (json_int_t)st->mapped_since_ms, "remaps", (int)st->remaps);
}

static void on_changed(const struct nat_upnp_status *st, void *arg)
{
    emit(arg, status_json("status", st));
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
    struct probe *p = arg;
    emit(p, json_pack("{s:s}", "event", "refresh"));
    nat_upnp_refresh(p->nat);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct probe *p = arg;
    uint64_t t0 = mono_ms();
    nat_upnp_stop(p->nat);
    struct nat_upnp_status st;
    nat_upnp_status(p->nat, &st);
    json_t *obj = status_json("stopped", &st);
    if (obj)
        json_object_set_new(obj, "stop_ms", json_integer((json_int_t)(mono_ms() - t0)));
    emit(p, obj);
    event_base_loopbreak(p->base);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    char addr[INET_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        port = ntohs(in->sin_port);
    }
    char line[64];
    int n = snprintf(line, sizeof(line), "sova-probe %s:%u\n", addr, port);
    ssize_t w = send(fd, line, (size_t)n, MSG_NOSIGNAL); /* fits any fresh socket buffer */
    (void)w;
    evutil_closesocket(fd);
    emit(arg, json_pack("{s:s, s:s, s:i}", "event", "accepted", "from", addr, "port", (int)port));
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: nat_upnp_probe --port N [--lease S] [--check S] [--discover-ms MS]\n"
                    "                      [--no-natpmp] [--no-pcp] [--desc TEXT] [--listen] "
                    "[--debug]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct probe p = {.t0_ms = mono_ms()};
    struct nat_upnp_config cfg = {.natpmp = true, .pcp = true, .description = "sova-probe"};
    bool listen = false;
    for (int i = 1; i < argc; i++) {
        unsigned long v = 0;
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--port") == 0 && has_val && parse_uint(argv[++i], 65535, &v) == 0 && v)
            cfg.internal_port = (uint16_t)v;
        else if (strcmp(a, "--lease") == 0 && has_val && parse_uint(argv[++i], 86400, &v) == 0)
            cfg.lease_s = (unsigned)v;
        else if (strcmp(a, "--check") == 0 && has_val && parse_uint(argv[++i], 86400, &v) == 0)
            cfg.check_interval_s = (unsigned)v;
        else if (strcmp(a, "--discover-ms") == 0 && has_val &&
                 parse_uint(argv[++i], 10000, &v) == 0)
            cfg.discover_timeout_ms = (unsigned)v;
        else if (strcmp(a, "--desc") == 0 && has_val)
            cfg.description = argv[++i];
        else if (strcmp(a, "--no-natpmp") == 0)
            cfg.natpmp = false;
        else if (strcmp(a, "--no-pcp") == 0)
            cfg.pcp = false;
        else if (strcmp(a, "--listen") == 0)
            listen = true;
        else if (strcmp(a, "--debug") == 0)
            sova_log_set_level(SOVA_LOG_DEBUG);
        else
            usage();
    }
    if (!cfg.internal_port)
        usage();
    signal(SIGPIPE, SIG_IGN);
    p.base = event_base_new();
    if (!p.base)
        return 1;
    struct evconnlistener *lst = NULL;
    if (listen) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(cfg.internal_port)};
        lst = evconnlistener_new_bind(p.base, on_accept, &p,
                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 16,
                                      (struct sockaddr *)&sin, sizeof(sin));
        if (!lst) {
            perror("probe: listen");
            return 1;
        }
    }
    cfg.base = p.base;
    cfg.changed = on_changed;
    cfg.arg = &p;
    int rc = nat_upnp_new(&cfg, &p.nat);
    if (rc != 0) {
        fprintf(stderr, "probe: nat_upnp_new: %d\n", rc);
        return 1;
    }
    struct event *usr1 = evsignal_new(p.base, SIGUSR1, on_usr1, &p);
    struct event *term = evsignal_new(p.base, SIGTERM, on_term, &p);
    struct event *intr = evsignal_new(p.base, SIGINT, on_term, &p);
    if (!usr1 || !term || !intr || evsignal_add(usr1, NULL) || evsignal_add(term, NULL) ||
        evsignal_add(intr, NULL))
        return 1;
    emit(&p, json_pack("{s:s, s:i}", "event", "start", "internal_port", (int)cfg.internal_port));
    nat_upnp_start(p.nat);
    event_base_dispatch(p.base);
    nat_upnp_free(p.nat);
    event_free(usr1);
    event_free(term);
    event_free(intr);
    if (lst)
        evconnlistener_free(lst);
    event_base_free(p.base);
    return 0;
}
