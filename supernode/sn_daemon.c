#include "sn_daemon.h"
#include "err.h"
#include "evloop.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Output a remote may leave unread before it is dropped. */
#define SN_MAX_OUTPUT_BYTES (4u * 1024 * 1024)

struct sn_daemon {
    const struct sn_settings *s;
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params link_params;
    struct link_group links; /* every accepted connection */
    size_t n_peers, n_supernodes;
};

static void on_opened(struct link *l, void *arg)
{
    struct sn_daemon *d = arg;
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE)
        d->n_supernodes++;
    else
        d->n_peers++;
    log_info("sn", "%s: %s connected (%zu peers, %zu supernodes)", link_name(l),
             link_remote_role(l) == MSG_ROLE_SUPERNODE ? "supernode" : "peer", d->n_peers,
             d->n_supernodes);
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    (void)arg;
    if (m->type == MSG_ERROR)
        return;
    /* The overlay's messages (REGISTER, PUBLISH, SEARCH ...) are served from
     * the overlay issue on; until then say so instead of staying silent. */
    link_send_error(l, MSG_ERR_PROTOCOL, m->type, "message not served by this supernode");
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct sn_daemon *d = arg;
    uint8_t role = link_remote_role(l);
    if (role == MSG_ROLE_SUPERNODE)
        d->n_supernodes--;
    else if (role == MSG_ROLE_PEER)
        d->n_peers--;
    log_info("sn", "%s: disconnected (%s)", link_name(l), why ? sova_err_str(why) : "closed");
}

static const struct link_hooks sn_hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
};

static void on_accept(evutil_socket_t fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
    struct sn_daemon *d = arg;
    SSL *ssl = NULL;
    if (tls_ctx_server(d->tls, NULL, &ssl) != 0) {
        log_error("sn", "out of memory accepting a connection");
        evutil_closesocket(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    if (link_accept(evloop_base(d->loop), fd, ssl, sa, len, &d->link_params, &sn_hooks, d) == NULL)
        log_error("sn", "out of memory accepting a connection");
}

static int make_state_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        log_error("sn", "cannot create state directory %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    return 0;
}

static int sn_daemon_start(struct sn_daemon *d)
{
    char err[512];
    int rc = identity_load_files(d->s->cert, d->s->key, &d->id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(d->id, d->s->federation_ca, TLS_CTX_SUPERNODE, &d->tls, err, sizeof(err));
    if (rc != 0) {
        log_error("sn", "%s", err);
        return rc;
    }
    sova_log_set_node(identity_short_id(d->id));
    rc = make_state_dir(d->s->state_dir);
    if (rc == 0)
        rc = evloop_new(&d->loop);
    if (rc != 0)
        return rc;
    d->limits = wire_limits_default();
    d->limits.max_frame = d->s->max_frame;
    d->link_params = (struct link_params){
        .limits = &d->limits,
        .local_role = MSG_ROLE_SUPERNODE,
        .capabilities = 0,
        .handshake_timeout_ms = (unsigned)d->s->handshake_timeout_ms,
        .max_output = SN_MAX_OUTPUT_BYTES,
        .group = &d->links,
    };
    struct sockaddr_storage bound;
    socklen_t bound_len;
    rc = evloop_listen(d->loop, d->s->listen, on_accept, d, &bound, &bound_len, err, sizeof(err));
    if (rc != 0) {
        log_error("sn", "%s", err);
        return rc;
    }
    struct wire_addr addr;
    char where[64] = "?";
    if (wire_addr_from_sockaddr(&addr, (struct sockaddr *)&bound, bound_len) == 0)
        wire_addr_format(&addr, where, sizeof(where));
    log_info("sn", "supernode %s listening on %s", identity_id_str(d->id), where);
    return 0;
}

static void sn_daemon_stop(struct sn_daemon *d)
{
    link_group_free_all(&d->links);
    tls_ctx_free(d->tls);
    identity_free(d->id);
}

int sn_daemon_run(const struct sn_settings *s)
{
    struct sn_daemon d = {.s = s};
    int rc = sn_daemon_start(&d);
    if (rc == 0) {
        evloop_run(d.loop);
        log_info("sn", "stopped");
    }
    sn_daemon_stop(&d);
    evloop_free(d.loop);
    return rc;
}
