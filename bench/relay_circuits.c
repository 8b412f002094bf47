/* relay_circuits.c - holds many idle relay circuits open through one
 * sova-supernode, so bench/bench_relay.sh can read the supernode's memory
 * per idle circuit. PAIRS pairs of peers attach over real TLS (common/link.h,
 * the code sova-peer runs); each origin opens CIRCUITS circuits to its
 * target, which accepts them; then everything stays open and idle until
 * SIGTERM. Prints "attached N" once every peer is registered, then waits
 * for SIGUSR1 (the script reads the supernode's RSS meanwhile) before it
 * opens the circuits; prints "open N" once every circuit is open.
 *
 * usage: relay_circuits SN_HOST:PORT ROOT_CRT KEYS_DIR PAIRS CIRCUITS
 * Identities are created in KEYS_DIR/<i> on the first run and reused.
 */
#include "err.h"
#include "evloop.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "tls.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct rc_peer {
    struct rc_run *run;
    unsigned index;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct link *link;
    bool registered;
    unsigned opened; /* origin: RELAY_OPENED received */
};

struct rc_run {
    struct evloop *loop;
    struct wire_limits limits;
    struct link_params params;
    struct rc_peer *peers;
    unsigned pairs, circuits, registered, open;
    bool started;
};

static void start_circuits(evutil_socket_t sig, short what, void *arg)
{
    struct rc_run *run = arg;
    (void)sig, (void)what;
    if (run->started || run->registered < 2 * run->pairs)
        return;
    run->started = true;
    for (unsigned i = 0; i < run->pairs; i++) {
        struct rc_peer *origin = &run->peers[2 * i], *target = &run->peers[2 * i + 1];
        for (unsigned c = 0; c < run->circuits; c++) {
            struct msg m = {.type = MSG_RELAY_OPEN};
            m.u.relay_open.circuit_id = 2 * c + 1; /* we dialed: odd ids */
            memcpy(m.u.relay_open.target_id, identity_id(target->id), WIRE_ID_LEN);
            memcpy(m.u.relay_open.origin_id, identity_id(origin->id), WIRE_ID_LEN);
            link_send(origin->link, &m);
        }
    }
}

static void on_opened(struct link *l, void *arg)
{
    (void)arg;
    struct msg m = {.type = MSG_REGISTER};
    m.u.reg.session = MSG_SESSION_PRIMARY;
    m.u.reg.reachability = MSG_REACH_UNREACHABLE;
    link_send(l, &m);
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct rc_peer *p = arg;
    struct rc_run *run = p->run;
    switch (m->type) {
    case MSG_REGISTERED:
        if (!p->registered && ++run->registered == 2 * run->pairs) {
            printf("attached %u\n", 2 * run->pairs);
            fflush(stdout);
        }
        p->registered = true;
        return;
    case MSG_RELAY_OPEN: { /* we are a target: accept */
        struct msg a = {.type = MSG_RELAY_ACCEPT};
        a.u.relay_accept.circuit_id = m->u.relay_open.circuit_id;
        link_send(l, &a);
        return;
    }
    case MSG_RELAY_OPENED:
        p->opened++;
        if (++run->open == run->pairs * run->circuits) {
            printf("open %u\n", run->open);
            fflush(stdout);
        }
        return;
    case MSG_RELAY_CLOSE:
        fprintf(stderr, "circuit %u closed: %s\n", m->u.relay_close.circuit_id,
                msg_error_code_str(m->u.relay_close.reason));
        return;
    default:
        return;
    }
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct rc_peer *p = arg;
    (void)l;
    p->link = NULL;
    fprintf(stderr, "peer %u: link closed: %s\n", p->index, why ? sova_err_str(why) : "closed");
    evloop_stop(p->run->loop);
}

static const struct link_hooks hooks = {
    .opened = on_opened, .message = on_message, .closed = on_closed};

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: relay_circuits SN_HOST:PORT ROOT_CRT KEYS_DIR PAIRS CIRCUITS\n");
        return 2;
    }
    sova_log_set_level(SOVA_LOG_WARN);
    struct rc_run run = {.pairs = (unsigned)strtoul(argv[4], NULL, 10),
                         .circuits = (unsigned)strtoul(argv[5], NULL, 10)};
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char host[64];
    unsigned port = 0;
    if (sscanf(argv[1], "%63[^:]:%u", host, &port) != 2 || run.pairs == 0 ||
        evloop_new(&run.loop) != 0) {
        fprintf(stderr, "relay_circuits: bad arguments\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    run.limits = wire_limits_default();
    run.params = (struct link_params){.limits = &run.limits,
                                      .local_role = MSG_ROLE_PEER,
                                      .handshake_timeout_ms = 60000,
                                      .max_output = 1u << 24,
                                      .expect_supernode = true};
    run.peers = calloc(2 * run.pairs, sizeof(*run.peers));
    for (unsigned i = 0; run.peers && i < 2 * run.pairs; i++) {
        struct rc_peer *p = &run.peers[i];
        char dir[4200], err[512];
        snprintf(dir, sizeof(dir), "%s/%u", argv[3], i);
        p->run = &run;
        p->index = i;
        SSL *ssl = NULL;
        if (identity_load_or_create(dir, &p->id, err, sizeof(err)) != 0 ||
            tls_ctx_new(p->id, argv[2], TLS_CTX_PEER, &p->tls, err, sizeof(err)) != 0 ||
            tls_ctx_client(p->tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) != 0) {
            fprintf(stderr, "peer %u: %s\n", i, err);
            free(run.peers);
            return 1;
        }
        p->link = link_connect(evloop_base(run.loop), (struct sockaddr *)&sa, sizeof(sa), ssl,
                               &run.params, &hooks, p);
    }
    struct event *usr1 = evsignal_new(evloop_base(run.loop), SIGUSR1, start_circuits, &run);
    evsignal_add(usr1, NULL);
    evloop_run(run.loop);
    event_free(usr1);
    for (unsigned i = 0; i < 2 * run.pairs; i++) {
        link_free_now(run.peers[i].link);
        tls_ctx_free(run.peers[i].tls);
        identity_free(run.peers[i].id);
    }
    free(run.peers);
    evloop_free(run.loop);
    return 0;
}
