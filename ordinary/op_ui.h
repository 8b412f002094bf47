/* op_ui.h - the peer's web UI (docs/UI.md): pages and their files served
 * at "/" by the HTTP API's server (op_api.c), logins and sessions.
 *
 * Who may see it: a browser logs in once with a one-time token (`sova-peer
 * ui` asks the daemon for one over the control socket and prints the link,
 * as Jupyter does) or with the API key typed into the login page; it then
 * holds a session cookie (HttpOnly, SameSite=Strict, Secure over TLS),
 * named after the port, so two peers on one machine keep theirs apart. A
 * session authenticates API requests in place of the key; a POST must also
 * carry the session's CSRF token in X-Sova-CSRF (the page reads it from its
 * own HTML). Every page is sent with a strict Content-Security-Policy (no
 * inline script), and never framed.
 *
 * Owned by the HTTP API (op_api.c), which checks Host and Origin before it
 * hands a request here. Tokens and sessions live in memory only: a restart
 * logs every browser out. Nothing blocks; the pure parts (tokens, sessions,
 * cookies) take the time as an argument so tests drive them.
 */
#ifndef SOVA_OP_UI_H
#define SOVA_OP_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OP_UI_SECRET_BYTES    32 /* a token, a session ID or a CSRF token: RAND_bytes */
#define OP_UI_SECRET_HEX      64
#define OP_UI_TOKEN_TTL_MS    (10 * 60 * 1000) /* a login link works once, for 10 minutes */
#define OP_UI_MAX_TOKENS      8                /* links not yet used; the oldest gives way */
#define OP_UI_MAX_SESSIONS    32               /* browsers logged in; the least recent gives way */
#define OP_UI_SESSION_IDLE_MS (7ull * 24 * 3600 * 1000) /* a session unused this long ends */
#define OP_UI_MAX_LOGIN_BODY  1024                      /* bytes of the login form's body */
#define OP_UI_CSP                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

struct op_ui;
struct op_ui_session;
struct evhttp_request;
struct evkeyvalq;

/* A UI for the API whose key is key (copied) on port; tls: cookies are
 * Secure. NULL when out of memory. */
struct op_ui *op_ui_new(const char *key, unsigned port, bool tls);
void op_ui_free(struct op_ui *ui);

/* A new one-time login token into out (OP_UI_SECRET_HEX hex digits and a
 * NUL), valid OP_UI_TOKEN_TTL_MS from now_ms. 0, or SOVA_ERR_INTERNAL if
 * the random generator failed. */
int op_ui_token_new(struct op_ui *ui, uint64_t now_ms, char out[OP_UI_SECRET_HEX + 1]);
/* Use up token: true (and it is gone) when it is one of ours and not
 * expired. Constant time in the token's bytes. */
bool op_ui_token_take(struct op_ui *ui, const char *token, uint64_t now_ms);

/* A new session, made at now_ms (the least recently used one gives way
 * when OP_UI_MAX_SESSIONS are open). NULL if the random generator failed. */
struct op_ui_session *op_ui_session_new(struct op_ui *ui, uint64_t now_ms);
/* The session the Cookie header value names (NULL: none, unknown or idle
 * too long); it counts as used at now_ms. */
struct op_ui_session *op_ui_session_find(struct op_ui *ui, const char *cookie_header,
                                         uint64_t now_ms);
void op_ui_session_end(struct op_ui *ui, struct op_ui_session *s);
/* Does given (an X-Sova-CSRF header value, may be NULL) match s's token? */
bool op_ui_csrf_matches(const struct op_ui_session *s, const char *given);
const char *op_ui_session_id(const struct op_ui_session *s);
const char *op_ui_session_csrf(const struct op_ui_session *s);
/* The cookie's name ("sova_session_PORT"). */
const char *op_ui_cookie_name(const struct op_ui *ui);

/* Answer a request for a path outside /api/ (Host and Origin already
 * checked): "/" (the app, or a redirect to the login page), "/login" (GET:
 * the page, or with ?token= a login; POST: a login with the key),
 * "/logout" (POST, with the session and its CSRF token) and "/ui/FILE".
 * Returns 0 when it answered; otherwise an HTTP status with why written,
 * for the caller to refuse (and log) the request. */
int op_ui_serve(struct op_ui *ui, struct evhttp_request *req, const char *path, uint64_t now_ms,
                char *why, size_t whylen);

#endif
