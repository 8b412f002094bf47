/* op_api.c - the local HTTP API (op_api.h, docs/API.md): evhttp in front of
 * the control socket's decoder and handlers, and an event stream. */
#include "op_api.h"
#include "op_api_events.h"
#include "cfgcheck.h"
#include "config.h"
#include "ctl.h"
#include "err.h"
#include "log.h"
#include "op_control.h"
#include "op_internal.h"
#include "op_ui.h"
#include "wire.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define API_PREFIX    "/api/v1/"
#define API_MAX_CMD   32 /* bytes of a command name in a path */
#define API_N_ALLOWED 4  /* Host values this API answers to */

/* A POST waiting for its handler's final reply. */
struct api_call {
    struct op_api *api;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct ctl_conn *conn;
    struct api_call *prev, *next;
};

struct op_api {
    struct op_daemon *d;
    struct evhttp *http;
    char key[OP_API_KEY_HEX + 1];
    char address[64];
    char allowed[API_N_ALLOWED][80]; /* Host values */
    size_t n_allowed;
    struct api_call *calls;
    struct op_api_events *events;
    struct op_ui *ui; /* the web UI at "/" (NULL: ui = no) */
    SSL_CTX *tls_ctx; /* api-tls-cert: https (NULL: http) */
    unsigned port;
    bool tls;
    uint64_t refusals, refusals_at_log, logged_ms; /* one log line per OP_API_LOG_MS */
};

/* ---- the key ----------------------------------------------------------------------- */

static int key_create(const char *path, char key[OP_API_KEY_HEX + 1], char *err, size_t errlen)
{
    unsigned char raw[OP_API_KEY_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        snprintf(err, errlen, "cannot make an API key: no randomness from OpenSSL");
        return SOVA_ERR_CRYPTO;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(key + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    char line[OP_API_KEY_HEX + 2];
    snprintf(line, sizeof(line), "%s\n", key);
    ssize_t n = write(fd, line, OP_API_KEY_HEX + 1);
    int rc = n == OP_API_KEY_HEX + 1 && fsync(fd) == 0 ? 0 : SOVA_ERR_IO;
    if (close(fd) != 0)
        rc = SOVA_ERR_IO;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
    } else {
        log_info("api", "made a new API key in %s", path);
    }
    return rc;
}

int op_api_key_load(const char *state_dir, bool create, char key[OP_API_KEY_HEX + 1], char *err,
                    size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", state_dir, OP_API_KEY_FILE);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (create)
            return key_create(path, key, err, errlen);
        snprintf(err, errlen,
                 "no API key in %s: the daemon makes one when it starts with api-listen set", path);
        return SOVA_ERR_NOT_FOUND;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    struct stat st;
    char buf[OP_API_KEY_HEX + 3] = {0};
    ssize_t n;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        rc = SOVA_ERR_INVALID;
    } else if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s belongs to user %ld, not to this user (%ld)", path,
                 (long)st.st_uid, (long)geteuid());
        rc = SOVA_ERR_INVALID;
    } else if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s may be read by others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        rc = SOVA_ERR_KEY_PERMS;
    } else if ((n = read(fd, buf, sizeof(buf) - 1)) < OP_API_KEY_HEX || n > OP_API_KEY_HEX + 1 ||
               (n == OP_API_KEY_HEX + 1 && buf[OP_API_KEY_HEX] != '\n') ||
               strspn(buf, "0123456789abcdef") != OP_API_KEY_HEX) {
        snprintf(err, errlen, "%s does not hold a key (64 lowercase hex digits)", path);
        rc = SOVA_ERR_INVALID;
    }
    close(fd);
    if (rc == 0) {
        memcpy(key, buf, OP_API_KEY_HEX);
        key[OP_API_KEY_HEX] = '\0';
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* ---- replies ----------------------------------------------------------------------- */

static void add_common_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

static int add_to_evbuffer(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* obj (borrowed) as the body, with code. */
static void reply_json(struct evhttp_request *req, int code, json_t *obj)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL || obj == NULL ||
        json_dump_callback(obj, add_to_evbuffer, body, JSON_COMPACT) != 0 ||
        evbuffer_add(body, "\n", 1) != 0) {
        if (body != NULL)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    add_common_headers(req, "application/json");
    evhttp_send_reply(req, code, NULL, body);
    evbuffer_free(body);
}

static void reply_error(struct evhttp_request *req, int code, const char *text)
{
    json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", text);
    if (o == NULL) /* text not UTF-8: it quotes what the client sent */
        o = json_pack("{s:b, s:s}", "ok", 0, "error", "refused");
    reply_json(req, code, o);
    json_decref(o);
}

/* A refusal before any handler: nothing changed. Logged once per
 * OP_API_LOG_MS with the count, so a hostile page cannot fill the log. */
static void refuse(struct op_api *api, struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(struct op_api *api, struct evhttp_request *req, int code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    uint64_t now = link_now_ms();
    api->refusals++;
    if (api->logged_ms == 0 || now - api->logged_ms >= OP_API_LOG_MS) {
        char safe[512];
        snprintf(safe, sizeof(safe), "%s", text);
        for (char *p = safe; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        log_warn("api", "refused a request (%d): %s (%llu refused since the last report)", code,
                 safe, (unsigned long long)(api->refusals - api->refusals_at_log));
        api->logged_ms = now;
        api->refusals_at_log = api->refusals;
    }
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    reply_error(req, code, text);
}

/* The status of a handler's refusal, by what it says (docs/API.md). */
static int refusal_code(const char *error)
{
    static const struct {
        const char *prefix;
        int code;
    } codes[] = {
        {"no download with ID", 404},
        {"no running download", 404},
        {"no peer shares", 404},
        {"the download of ", 409},
        {"download of ", 409},
        {"not attached to a supernode", 503},
        {"the supernode did not answer", 504},
        {"internal error", 500},
        {"out of memory", 500},
    };
    for (size_t i = 0; error != NULL && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(error, codes[i].prefix, strlen(codes[i].prefix)) == 0)
            return codes[i].code;
    return 422;
}

/* ---- commands ---------------------------------------------------------------------- */

static void call_unlink(struct api_call *call)
{
    struct op_api *api = call->api;
    if (call->prev)
        call->prev->next = call->next;
    else
        api->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    evhttp_connection_set_closecb(call->evcon, NULL, NULL);
}

/* The handler's reply (ctl_sink_fn): only the final line is the answer. */
static int call_line(json_t *line, bool done, void *arg)
{
    struct api_call *call = arg;
    if (!done)
        return 0;
    call_unlink(call);
    json_object_del(line, "done");
    int code = 200;
    if (!json_is_true(json_object_get(line, "ok")))
        code = refusal_code(json_string_value(json_object_get(line, "error")));
    reply_json(call->req, code, line);
    free(call);
    return 0; /* answered, whatever happened: the conn is freed next */
}

/* The client closed its connection before the answer (evhttp close callback). */
static void call_gone(struct evhttp_connection *evcon, void *arg)
{
    struct api_call *call = arg;
    (void)evcon;
    call_unlink(call);
    ctl_sink_conn_gone(call->conn);
    /* evhttp lets go of a request we hold when its client leaves (it
     * detaches it from the connection): then it is ours to free. */
    if (evhttp_request_get_connection(call->req) == NULL)
        evhttp_request_free(call->req);
    free(call);
}

static void dispatch(struct op_api *api, struct evhttp_request *req, const struct ctl_request *r)
{
    struct api_call *call = calloc(1, sizeof(*call));
    if (call == NULL || (call->conn = ctl_sink_conn_new(r, call_line, call)) == NULL) {
        free(call);
        reply_error(req, 500, "out of memory");
        return;
    }
    call->api = api;
    call->req = req;
    call->evcon = evhttp_request_get_connection(req);
    call->next = api->calls;
    if (api->calls)
        api->calls->prev = call;
    api->calls = call;
    evhttp_connection_set_closecb(call->evcon, call_gone, call);
    log_debug("api", "request \"%s\"", ctl_cmd_name(r->cmd));
    /* may answer at once (call is freed then) or later; the handler may
     * read its request after answering (the conn is freed after it) */
    ctl_sink_conn_dispatch(call->conn, op_control_request, api->d);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* {"cmd": "NAME", ...the body's fields}: the body is an object; its
 * fields follow "cmd" as they are, so the decoder sees what the client
 * sent (a "cmd" field of its own is a duplicate key). A body that is not
 * an object goes to the decoder as it is, which says what it is instead. */
static int build_line(struct evbuffer *out, const char *name, const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && is_space(body[i]))
        i++;
    if (i < len && body[i] != '{')
        return evbuffer_add(out, body, len);
    evbuffer_add_printf(out, "{\"cmd\":\"%s\"", name);
    if (i == len)
        return evbuffer_add(out, "}", 1);
    size_t j = i + 1;
    while (j < len && is_space(body[j]))
        j++;
    if (j < len && body[j] != '}' && evbuffer_add(out, ",", 1) != 0)
        return -1;
    return evbuffer_add(out, body + i + 1, len - i - 1);
}

static bool known_command(const char *name, enum ctl_cmd *cmd)
{
    for (int c = CTL_CMD_STATUS; c <= CTL_CMD_LIMIT; c++)
        if (strcmp(ctl_cmd_name((enum ctl_cmd)c), name) == 0) {
            *cmd = (enum ctl_cmd)c;
            return true;
        }
    return false;
}

static bool get_allowed(enum ctl_cmd cmd)
{
    return cmd == CTL_CMD_STATUS || cmd == CTL_CMD_DOWNLOADS || cmd == CTL_CMD_PEERS ||
           cmd == CTL_CMD_SHARES || cmd == CTL_CMD_LIMITS;
}

static bool is_json_type(const char *type)
{
    static const char want[] = "application/json";
    if (type == NULL || strncasecmp(type, want, sizeof(want) - 1) != 0)
        return false;
    char next = type[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

static void handle_command(struct op_api *api, struct evhttp_request *req, const char *name)
{
    enum ctl_cmd cmd;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (!known_command(name, &cmd)) {
        refuse(api, req, 404, "unknown command \"%.40s\" (see docs/API.md)", name);
        return;
    }
    if (method == EVHTTP_REQ_GET && !get_allowed(cmd)) {
        evhttp_add_header(out, "Allow", "POST");
        refuse(api, req, 405, "%s takes POST", name);
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_POST) {
        evhttp_add_header(out, "Allow", get_allowed(cmd) ? "GET, POST" : "POST");
        refuse(api, req, 405, "%s takes %s", name, get_allowed(cmd) ? "GET or POST" : "POST");
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = method == EVHTTP_REQ_POST ? evbuffer_get_length(body) : 0;
    if (method == EVHTTP_REQ_POST) {
        const char *type =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (!is_json_type(type)) {
            refuse(api, req, 415, "a POST must be Content-Type: application/json, not %.60s",
                   type ? type : "none");
            return;
        }
        if (len > OP_API_MAX_BODY) {
            refuse(api, req, 413, "body too long (%zu bytes, at most %d)", len, OP_API_MAX_BODY);
            return;
        }
    }
    struct evbuffer *line = evbuffer_new();
    const char *bytes = len ? (const char *)evbuffer_pullup(body, (ev_ssize_t)len) : "";
    if (line == NULL || bytes == NULL || build_line(line, name, bytes, len) != 0) {
        if (line)
            evbuffer_free(line);
        reply_error(req, 500, "out of memory");
        return;
    }
    size_t n = evbuffer_get_length(line);
    const char *text = (const char *)evbuffer_pullup(line, (ev_ssize_t)n);
    struct ctl_request r;
    char err[CTL_ERR_MAX];
    int rc = text ? ctl_request_decode(text, n, &r, err, sizeof(err)) : SOVA_ERR_NOMEM;
    evbuffer_free(line);
    if (rc != 0) {
        refuse(api, req,
               rc == SOVA_ERR_TOO_LARGE      ? 413
               : rc == SOVA_ERR_NOMEM        ? 500
               : rc == SOVA_ERR_UNKNOWN_TYPE ? 404
                                             : 400,
               "%s", rc == SOVA_ERR_NOMEM ? "out of memory" : err);
        return;
    }
    if (r.cmd == CTL_CMD_GET)
        r.u.get.background = true; /* an HTTP request is not held for a whole download */
    dispatch(api, req, &r);
    ctl_request_clear(&r);
}

/* ---- events ------------------------------------------------------------------------ */

static void open_events(struct op_api *api, struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        refuse(api, req, 405, "events takes GET");
        return;
    }
    char err[128];
    int code = op_api_events_open(api->events, req, err, sizeof(err));
    if (code != 0)
        refuse(api, req, code, "%s", err);
}

/* ---- who may ask ------------------------------------------------------------------- */

static bool host_allowed(const struct op_api *api, const char *host)
{
    for (size_t i = 0; host != NULL && i < api->n_allowed; i++)
        if (strcasecmp(host, api->allowed[i]) == 0)
            return true;
    return false;
}

static bool origin_allowed(const struct op_api *api, const char *origin)
{
    const char *scheme = api->tls ? "https://" : "http://";
    size_t n = strlen(scheme);
    return strncasecmp(origin, scheme, n) == 0 && host_allowed(api, origin + n);
}

static bool key_matches(const struct op_api *api, struct evkeyvalq *in)
{
    const char *given = evhttp_find_header(in, "X-API-Key");
    const char *auth = evhttp_find_header(in, "Authorization");
    if (given == NULL && auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        given = auth + 7;
    return given != NULL && strlen(given) == OP_API_KEY_HEX &&
           CRYPTO_memcmp(given, api->key, OP_API_KEY_HEX) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct op_api *api = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *host = evhttp_find_header(in, "Host");
    const char *origin = evhttp_find_header(in, "Origin");
    if (!host_allowed(api, host)) {
        refuse(api, req, 403,
               "the Host header (%.80s) is not this API's: use %s (Host check against DNS "
               "rebinding)",
               host ? host : "none", api->allowed[0]);
        return;
    }
    if (origin != NULL && !origin_allowed(api, origin)) {
        refuse(api, req, 403, "the Origin %.80s is not this API's: cross-site requests are refused",
               origin);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path != NULL && strncmp(path, "/api/", 5) != 0) { /* the web UI's pages */
        char why[160] = "";
        int code = api->ui ? op_ui_serve(api->ui, req, path, link_now_ms(), why, sizeof(why)) : 404;
        if (api->ui == NULL)
            snprintf(why, sizeof(why), "the web UI is off (ui = no); the API is at " API_PREFIX);
        if (code != 0)
            refuse(api, req, code, "%s", why);
        return;
    }
    if (!key_matches(api, in)) {
        /* A browser of the web UI: its session, and for anything but GET the
         * session's CSRF token in a header no other site can send. */
        struct op_ui_session *s =
            api->ui ? op_ui_session_find(api->ui, evhttp_find_header(in, "Cookie"), link_now_ms())
                    : NULL;
        if (s == NULL) {
            refuse(api, req, 401,
                   "missing or wrong API key: send X-API-Key: KEY (`sova-peer api-key` prints "
                   "it), or log in to the web UI");
            return;
        }
        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
            !op_ui_csrf_matches(s, evhttp_find_header(in, "X-Sova-CSRF"))) {
            refuse(api, req, 403,
                   "a request of the web UI's session needs its X-Sova-CSRF token (CSRF check)");
            return;
        }
    }
    size_t plen = sizeof(API_PREFIX) - 1;
    if (path == NULL || strncmp(path, API_PREFIX, plen) != 0 || strlen(path + plen) == 0 ||
        strlen(path + plen) > API_MAX_CMD ||
        strspn(path + plen, "abcdefghijklmnopqrstuvwxyz_") != strlen(path + plen)) {
        refuse(api, req, 404, "no such path: the API is at " API_PREFIX "CMD");
        return;
    }
    if (strcmp(path + plen, "events") == 0)
        open_events(api, req);
    else
        handle_command(api, req, path + plen);
}

/* ---- start and stop ---------------------------------------------------------------- */

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* ---- TLS (api-tls-cert) ------------------------------------------------------------------ */

/* evhttp's bufferevent for a new connection: TLS, accepting. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL)
        SSL_free(ssl);
    return bev;
}

/* The SSL context of api-tls-cert and api-tls-key; *ctx NULL when neither
 * is set. */
static int tls_load(const struct op_settings *s, SSL_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    if (s->api_tls_cert == NULL && s->api_tls_key == NULL)
        return 0;
    if (s->api_tls_cert == NULL || s->api_tls_key == NULL) {
        snprintf(err, errlen, "api-tls-cert and api-tls-key go together");
        return SOVA_ERR_CONFIG;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, s->api_tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, s->api_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        snprintf(err, errlen,
                 "api-tls-cert %s and api-tls-key %s: cannot load them as a PEM certificate chain "
                 "and its private key",
                 s->api_tls_cert, s->api_tls_key);
        return SOVA_ERR_CONFIG;
    }
    *out = ctx;
    return 0;
}

static int tls_setup(struct op_api *api, const struct op_settings *s, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int rc = tls_load(s, &ctx, err, errlen);
    if (rc != 0 || ctx == NULL)
        return rc;
    api->tls_ctx = ctx;
    api->tls = true;
    evhttp_set_bevcb(api->http, tls_bev, ctx);
    return 0;
}

/* Off loopback only when asked for, and then over TLS. */
static int listen_rules(const char *endpoint, bool loopback, bool allow_remote, bool tls, char *err,
                        size_t errlen)
{
    if (!loopback && !allow_remote) {
        snprintf(err, errlen,
                 "api-listen '%s' is not a loopback address: the API would be open to the "
                 "network; use 127.0.0.1, or set api-allow-remote = yes with api-tls-cert and "
                 "api-tls-key",
                 endpoint);
        return SOVA_ERR_CONFIG;
    }
    if (!loopback && !tls) {
        snprintf(err, errlen,
                 "api-listen '%s' is not a loopback address and there is no api-tls-cert: the "
                 "API key and session cookies would cross the network in clear",
                 endpoint);
        return SOVA_ERR_CONFIG;
    }
    return 0;
}

void op_api_check(const struct op_settings *s, struct cfgcheck *c)
{
    char err[512];
    SSL_CTX *ctx;
    if (tls_load(s, &ctx, err, sizeof(err)) != 0)
        cfgcheck_add(c, "%s", err);
    SSL_CTX_free(ctx);
    if (s->api_listen == NULL)
        return;
    bool loopback;
    size_t before = cfgcheck_count(c);
    cfgcheck_listen(c, "api-listen", s->api_listen, &loopback);
    if (cfgcheck_count(c) == before && listen_rules(s->api_listen, loopback, s->api_allow_remote,
                                                    s->api_tls_cert != NULL, err, sizeof(err)) != 0)
        cfgcheck_add(c, "%s", err);
}

static int api_listen(struct op_api *api, struct event_base *base, const char *endpoint,
                      bool allow_remote, char *err, size_t errlen)
{
    char host[256], port_str[8];
    uint16_t port;
    if (config_parse_endpoint(endpoint, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "api-listen '%s' is not ADDR:PORT", endpoint);
        return SOVA_ERR_INVALID;
    }
    snprintf(port_str, sizeof(port_str), "%u", port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *ai = NULL;
    if (evutil_getaddrinfo(host, port_str, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "api-listen '%s': the host must be a numeric address", endpoint);
        return SOVA_ERR_INVALID;
    }
    bool loopback = is_loopback(ai->ai_addr);
    int rc = listen_rules(endpoint, loopback, allow_remote, api->tls, err, errlen);
    if (rc != 0) {
        evutil_freeaddrinfo(ai);
        return rc;
    }
    struct evconnlistener *lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 16,
        ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (lev == NULL) {
        snprintf(err, errlen, "cannot listen for the API on %s: %s", endpoint, strerror(errno));
        return SOVA_ERR_IO;
    }
    if (evhttp_bind_listener(api->http, lev) == NULL) {
        evconnlistener_free(lev);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct wire_addr a;
    snprintf(api->address, sizeof(api->address), "%s", endpoint);
    if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &len) == 0 &&
        wire_addr_from_sockaddr(&a, (struct sockaddr *)&ss, len) == 0) {
        wire_addr_format(&a, api->address, sizeof(api->address));
        port = a.port;
    }
    api->port = port;
    snprintf(api->allowed[0], sizeof(api->allowed[0]), "127.0.0.1:%u", port);
    snprintf(api->allowed[1], sizeof(api->allowed[1]), "localhost:%u", port);
    snprintf(api->allowed[2], sizeof(api->allowed[2]), "[::1]:%u", port);
    api->n_allowed = 3;
    if (!loopback) {
        snprintf(api->allowed[3], sizeof(api->allowed[3]), "%s", api->address);
        api->n_allowed = 4;
        log_warn("api",
                 "the HTTP API listens on %s, not loopback (api-allow-remote): anyone who can "
                 "reach it may try; it takes the API key or a UI session, over TLS only",
                 api->address);
    }
    return 0;
}

static void api_free(struct op_api *api)
{
    if (api == NULL)
        return;
    /* Waiting handlers first: their closed callbacks cancel searches. */
    while (api->calls != NULL) {
        struct api_call *call = api->calls;
        call_unlink(call);
        ctl_sink_conn_gone(call->conn);
        free(call);
    }
    op_api_events_free(api->events);
    op_ui_free(api->ui);
    if (api->http)
        evhttp_free(api->http);
    SSL_CTX_free(api->tls_ctx);
    OPENSSL_cleanse(api->key, sizeof(api->key));
    free(api);
}

int op_api_start(struct op_daemon *d, char *err, size_t errlen)
{
    if (d->s->api_listen == NULL)
        return 0;
    struct event_base *base = evloop_base(d->loop);
    struct op_api *api = calloc(1, sizeof(*api));
    if (api == NULL || (api->http = evhttp_new(base)) == NULL ||
        (api->events = op_api_events_new(base, d)) == NULL) {
        api_free(api);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    api->d = d;
    int rc = op_api_key_load(d->s->state_dir, true, api->key, err, errlen);
    if (rc == 0)
        rc = tls_setup(api, d->s, err, errlen);
    if (rc == 0)
        rc = api_listen(api, base, d->s->api_listen, d->s->api_allow_remote, err, errlen);
    if (rc == 0 && d->s->ui && (api->ui = op_ui_new(api->key, api->port, api->tls)) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = SOVA_ERR_NOMEM;
    }
    if (rc != 0) {
        api_free(api);
        return rc;
    }
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(api->http, OP_API_MAX_HEADERS);
    /* evhttp's own cap is a backstop; a body over OP_API_MAX_BODY gets our 413 */
    evhttp_set_max_body_size(api->http, 16 * OP_API_MAX_BODY);
    evhttp_set_timeout(api->http, OP_API_TIMEOUT_S);
    evhttp_set_gencb(api->http, on_request, api);
    d->api = api;
    snprintf(d->api_address, sizeof(d->api_address), "%s", api->address);
    d->ui = api->ui;
    snprintf(d->ui_base, sizeof(d->ui_base), "http%s://%s", api->tls ? "s" : "", api->allowed[0]);
    log_info("api", "HTTP API at http%s://%s" API_PREFIX " (key in %s/%s)", api->tls ? "s" : "",
             api->address, d->s->state_dir, OP_API_KEY_FILE);
    if (api->ui)
        log_info("ui", "web UI at http%s://%s/ (`sova-peer ui` prints a link that logs in)",
                 api->tls ? "s" : "", api->address);
    return 0;
}

void op_api_stop(struct op_daemon *d)
{
    d->ui = NULL;
    d->ui_base[0] = '\0';
    api_free(d->api);
    d->api = NULL;
    d->api_address[0] = '\0';
}
