/* op_ui.c - the web UI's pages, logins and sessions (op_ui.h, docs/UI.md). */
#include "op_ui.h"
#include "err.h"
#include "log.h"
#include "op_ui_assets.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOD "ui"

struct op_ui_token {
    char hex[OP_UI_SECRET_HEX + 1]; /* "" when the slot is free */
    uint64_t expires_ms;
};

struct op_ui_session {
    char id[OP_UI_SECRET_HEX + 1]; /* "" when the slot is free */
    char csrf[OP_UI_SECRET_HEX + 1];
    uint64_t used_ms;
};

struct op_ui {
    char key[OP_UI_SECRET_HEX + 1]; /* the API key: the login page takes it too */
    char cookie[40];                /* "sova_session_PORT" */
    bool tls;
    struct op_ui_token tokens[OP_UI_MAX_TOKENS];
    struct op_ui_session sessions[OP_UI_MAX_SESSIONS];
};

/* ---- secrets ------------------------------------------------------------------------ */

static int random_hex(char out[OP_UI_SECRET_HEX + 1])
{
    unsigned char raw[OP_UI_SECRET_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return SOVA_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

/* given (NUL-terminated, any length) against a secret of ours. */
static bool secret_equal(const char *given, size_t given_len, const char *ours)
{
    return ours[0] != '\0' && given_len == OP_UI_SECRET_HEX &&
           CRYPTO_memcmp(given, ours, OP_UI_SECRET_HEX) == 0;
}

struct op_ui *op_ui_new(const char *key, unsigned port, bool tls)
{
    struct op_ui *ui = calloc(1, sizeof(*ui));
    if (ui == NULL)
        return NULL;
    snprintf(ui->key, sizeof(ui->key), "%s", key);
    snprintf(ui->cookie, sizeof(ui->cookie), "sova_session_%u", port);
    ui->tls = tls;
    return ui;
}

void op_ui_free(struct op_ui *ui)
{
    if (ui == NULL)
        return;
    OPENSSL_cleanse(ui, sizeof(*ui));
    free(ui);
}

const char *op_ui_cookie_name(const struct op_ui *ui)
{
    return ui->cookie;
}

/* ---- one-time login tokens -------------------------------------------------------------- */

int op_ui_token_new(struct op_ui *ui, uint64_t now_ms, char out[OP_UI_SECRET_HEX + 1])
{
    struct op_ui_token *slot = &ui->tokens[0];
    for (size_t i = 0; i < OP_UI_MAX_TOKENS; i++) {
        struct op_ui_token *t = &ui->tokens[i];
        if (t->hex[0] == '\0' || t->expires_ms <= now_ms) {
            slot = t;
            break;
        }
        if (t->expires_ms < slot->expires_ms)
            slot = t; /* the oldest gives way */
    }
    if (random_hex(slot->hex) != 0) {
        slot->hex[0] = '\0';
        return SOVA_ERR_INTERNAL;
    }
    slot->expires_ms = now_ms + OP_UI_TOKEN_TTL_MS;
    memcpy(out, slot->hex, sizeof(slot->hex));
    return 0;
}

bool op_ui_token_take(struct op_ui *ui, const char *token, uint64_t now_ms)
{
    size_t len = token ? strnlen(token, OP_UI_SECRET_HEX + 1) : 0;
    bool found = false;
    for (size_t i = 0; i < OP_UI_MAX_TOKENS; i++) { /* every slot: no early exit */
        struct op_ui_token *t = &ui->tokens[i];
        if (token != NULL && secret_equal(token, len, t->hex) && t->expires_ms > now_ms) {
            OPENSSL_cleanse(t, sizeof(*t));
            found = true;
        }
    }
    return found;
}

/* ---- sessions ------------------------------------------------------------------------------ */

struct op_ui_session *op_ui_session_new(struct op_ui *ui, uint64_t now_ms)
{
    struct op_ui_session *slot = &ui->sessions[0];
    for (size_t i = 0; i < OP_UI_MAX_SESSIONS; i++) {
        struct op_ui_session *s = &ui->sessions[i];
        if (s->id[0] == '\0') {
            slot = s;
            break;
        }
        if (s->used_ms < slot->used_ms)
            slot = s;
    }
    if (random_hex(slot->id) != 0 || random_hex(slot->csrf) != 0) {
        OPENSSL_cleanse(slot, sizeof(*slot));
        return NULL;
    }
    slot->used_ms = now_ms;
    return slot;
}

/* The value of cookie name in a Cookie header ("a=1; b=2"), into out. */
static bool cookie_value(const char *header, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = header;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (vlen >= cap)
                return false;
            memcpy(out, p + nlen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

struct op_ui_session *op_ui_session_find(struct op_ui *ui, const char *cookie_header,
                                         uint64_t now_ms)
{
    char given[OP_UI_SECRET_HEX + 2];
    if (cookie_header == NULL || !cookie_value(cookie_header, ui->cookie, given, sizeof(given)))
        return NULL;
    size_t len = strlen(given);
    struct op_ui_session *found = NULL;
    for (size_t i = 0; i < OP_UI_MAX_SESSIONS; i++) {
        struct op_ui_session *s = &ui->sessions[i];
        if (!secret_equal(given, len, s->id))
            continue;
        if (now_ms - s->used_ms > OP_UI_SESSION_IDLE_MS) {
            OPENSSL_cleanse(s, sizeof(*s)); /* idle too long: over */
            continue;
        }
        s->used_ms = now_ms;
        found = s;
    }
    OPENSSL_cleanse(given, sizeof(given));
    return found;
}

void op_ui_session_end(struct op_ui *ui, struct op_ui_session *s)
{
    (void)ui;
    OPENSSL_cleanse(s, sizeof(*s));
}

bool op_ui_csrf_matches(const struct op_ui_session *s, const char *given)
{
    return given != NULL && secret_equal(given, strnlen(given, OP_UI_SECRET_HEX + 1), s->csrf);
}

const char *op_ui_session_id(const struct op_ui_session *s)
{
    return s->id;
}

const char *op_ui_session_csrf(const struct op_ui_session *s)
{
    return s->csrf;
}

/* ---- pages ---------------------------------------------------------------------------------- */

static const struct op_ui_asset *asset(const char *name)
{
    for (unsigned i = 0; i < op_ui_n_assets; i++)
        if (strcmp(op_ui_assets[i].name, name) == 0)
            return &op_ui_assets[i];
    return NULL;
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (dot && strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

/* The headers of every UI response: no framing, no inline script, nothing
 * cached (a page holds a CSRF token), no referrer leaving the page. */
static void page_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (type != NULL)
        evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Content-Security-Policy", OP_UI_CSP);
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    evhttp_add_header(h, "Cache-Control", "no-store");
}

/* File name of ours with code; in index.html "@CSRF@" becomes csrf. */
static int send_asset(struct evhttp_request *req, int code, const char *name, const char *csrf,
                      char *why, size_t whylen)
{
    const struct op_ui_asset *a = asset(name);
    struct evbuffer *body = evbuffer_new();
    if (a == NULL || body == NULL) {
        if (body)
            evbuffer_free(body);
        snprintf(why, whylen, a == NULL ? "the UI's %s is not built in" : "out of memory", name);
        return 500;
    }
    const char *text = (const char *)a->data;
    const char *mark = csrf ? strstr(text, "@CSRF@") : NULL;
    int rc = 0;
    if (mark != NULL) {
        rc |= evbuffer_add(body, text, (size_t)(mark - text));
        rc |= evbuffer_add(body, csrf, strlen(csrf));
        rc |= evbuffer_add(body, mark + 6, a->len - (size_t)(mark + 6 - text));
    } else {
        rc = evbuffer_add(body, a->data, a->len);
    }
    if (rc != 0) {
        evbuffer_free(body);
        snprintf(why, whylen, "out of memory");
        return 500;
    }
    page_headers(req, content_type(name));
    evhttp_send_reply(req, code, NULL, body);
    evbuffer_free(body);
    return 0;
}

static void redirect(struct evhttp_request *req, const char *to)
{
    page_headers(req, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", to);
    evhttp_send_reply(req, 303, "See Other", NULL);
}

/* A new session for this browser, and on to the app. */
static int log_in(struct op_ui *ui, struct evhttp_request *req, uint64_t now_ms, const char *how,
                  char *why, size_t whylen)
{
    struct op_ui_session *s = op_ui_session_new(ui, now_ms);
    if (s == NULL) {
        snprintf(why, whylen, "the random generator failed");
        return 500;
    }
    char cookie[160];
    snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict%s", ui->cookie,
             s->id, ui->tls ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    log_info(MOD, "a browser logged in to the web UI (%s)", how);
    redirect(req, "/");
    return 0;
}

/* POST /login with key=... (a form), or GET /login?token=... (the link). */
static int serve_login(struct op_ui *ui, struct evhttp_request *req, uint64_t now_ms, char *why,
                       size_t whylen)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    int code = 0;
    if (method == EVHTTP_REQ_GET && (query == NULL || *query == '\0'))
        return send_asset(req, 200, "login.html", NULL, why, whylen);
    if (method == EVHTTP_REQ_GET) {
        const char *token = evhttp_parse_query_str(query, &params) == 0
                                ? evhttp_find_header(&params, "token")
                                : NULL;
        if (token != NULL && op_ui_token_take(ui, token, now_ms))
            code = log_in(ui, req, now_ms, "a one-time link", why, whylen);
        else
            code = -403;
    } else if (method == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        char body[OP_UI_MAX_LOGIN_BODY + 1];
        const char *type =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
            snprintf(why, whylen, "the login form is application/x-www-form-urlencoded");
            return 415;
        }
        if (len > OP_UI_MAX_LOGIN_BODY) {
            snprintf(why, whylen, "login form too long (%zu bytes)", len);
            return 413;
        }
        evbuffer_copyout(in, body, len);
        body[len] = '\0';
        const char *key =
            evhttp_parse_query_str(body, &params) == 0 ? evhttp_find_header(&params, "key") : NULL;
        if (key != NULL && secret_equal(key, strnlen(key, OP_UI_SECRET_HEX + 1), ui->key))
            code = log_in(ui, req, now_ms, "the API key", why, whylen);
        else
            code = -401;
        OPENSSL_cleanse(body, sizeof(body));
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
        snprintf(why, whylen, "/login takes GET or POST");
        code = 405;
    }
    evhttp_clear_headers(&params);
    if (code < 0) { /* the login page again, with the refusal's status */
        log_warn(MOD, "a web UI login was refused (%s)",
                 code == -403 ? "an unknown, used or expired link" : "a wrong API key");
        code = send_asset(req, -code, "login.html", NULL, why, whylen);
    }
    return code;
}

int op_ui_serve(struct op_ui *ui, struct evhttp_request *req, const char *path, uint64_t now_ms,
                char *why, size_t whylen)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (strcmp(path, "/login") == 0)
        return serve_login(ui, req, now_ms, why, whylen);
    struct op_ui_session *s = op_ui_session_find(ui, evhttp_find_header(in, "Cookie"), now_ms);
    if (strcmp(path, "/logout") == 0) {
        if (method != EVHTTP_REQ_POST) {
            evhttp_add_header(out, "Allow", "POST");
            snprintf(why, whylen, "/logout takes POST");
            return 405;
        }
        if (s == NULL || !op_ui_csrf_matches(s, evhttp_find_header(in, "X-Sova-CSRF"))) {
            snprintf(why, whylen, "log out needs the session and its X-Sova-CSRF token");
            return 403;
        }
        op_ui_session_end(ui, s);
        char cookie[96];
        snprintf(cookie, sizeof(cookie), "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                 ui->cookie);
        evhttp_add_header(out, "Set-Cookie", cookie);
        page_headers(req, NULL);
        evhttp_send_reply(req, 204, "No Content", NULL);
        return 0;
    }
    if (method != EVHTTP_REQ_GET) {
        evhttp_add_header(out, "Allow", "GET");
        snprintf(why, whylen, "%.60s takes GET", path);
        return 405;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        if (s == NULL) {
            redirect(req, "/login");
            return 0;
        }
        return send_asset(req, 200, "index.html", s->csrf, why, whylen);
    }
    static const char prefix[] = "/ui/";
    const char *name = strncmp(path, prefix, sizeof(prefix) - 1) == 0 ? path + 4 : NULL;
    /* only the page's own files (not the HTML pages, which go through the checks above) */
    if (name != NULL && (strcmp(name, "app.js") == 0 || strcmp(name, "app.css") == 0 ||
                         strcmp(name, "icon.svg") == 0))
        return send_asset(req, 200, name, NULL, why, whylen);
    if (strcmp(path, "/favicon.ico") == 0) { /* asked by browsers before they read the page */
        redirect(req, "/ui/icon.svg");
        return 0;
    }
    snprintf(why, whylen, "no such page: %.60s", path);
    return 404;
}
