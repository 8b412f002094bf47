/* ctl.h - the local control channel of both daemons: a UNIX stream socket
 * speaking newline-delimited JSON (the way transmission-remote talks to
 * transmission-daemon). docs/CONTROL.md is the protocol reference.
 *
 * One request per connection: the client sends one line {"cmd": ...}; the
 * daemon answers with one or more lines, each a JSON object with "done"; the
 * last one has "done": true and "ok": true plus results, or "ok": false and
 * "error". Lines before it ("done": false) carry progress.
 *
 * Three parts:
 *  - a pure, bounded request decoder (ctl_request_decode) that turns a line
 *    into a plain C struct, so daemons never touch raw request JSON;
 *  - the server, on the daemon's event loop (never blocks);
 *  - the client, for the short-lived CLI processes (blocking, with a timeout).
 *
 * Lifetime of a connection on the server (struct ctl_conn):
 *  - The request callback receives conn and req. From then on the owner holds
 *    conn until EITHER it sends the final reply (ctl_reply(..., true) or
 *    ctl_reply_error()) - after that call returns, whatever it returned, conn
 *    is no longer the owner's and its closed callback will never run - OR the
 *    closed callback runs (the client went away, stopped reading, or the
 *    server is being freed); conn is invalid once that callback returns.
 *  - The closed callback never runs from inside a ctl_* call made by the
 *    owner: it runs from the event loop (or from ctl_server_free()). So it is
 *    safe to reply from any callback, and an owner that replies later (after
 *    a network search, a timer...) only has to drop its pointer in the closed
 *    callback.
 *  - req stays valid as long as conn does.
 *  - "Went away" means the client closed its socket (or stopped reading, or
 *    a write to it failed). A client that only shuts its sending side
 *    (shutdown(SHUT_WR), as socat and nc do) still gets its replies.
 */
#ifndef SOVA_CTL_H
#define SOVA_CTL_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits (docs/CONTROL.md lists each) --------------------------------- */

#define CTL_MAX_REQUEST            65536 /* bytes in a request line, without '\n' (64 KiB) */
#define CTL_MAX_WORDS              8     /* search words per request */
#define CTL_MAX_WORD_LEN           64    /* bytes per search word */
#define CTL_MAX_PATH               4096  /* bytes in get's "out" */
#define CTL_MAX_NAME               255   /* bytes in get's "name" */
#define CTL_SEARCH_MAX_DEFAULT     100   /* search "max" when not given */
#define CTL_SEARCH_MAX_LIMIT       1000  /* largest search "max" */
#define CTL_SEARCH_TIMEOUT_DEFAULT 3000  /* search "timeout_ms" when not given */
#define CTL_SEARCH_TIMEOUT_LIMIT   60000 /* largest search "timeout_ms" */
/* Server side. */
#define CTL_MAX_OUTPUT         4194304 /* queued reply bytes before a client is dropped (4 MiB) */
#define CTL_MAX_CLIENTS        128     /* concurrent connections */
#define CTL_REQUEST_TIMEOUT_MS 10000   /* a connected client must send its line by then */
#define CTL_FLUSH_TIMEOUT_MS   5000    /* to flush the final reply before closing */
/* Client side: longest reply line it accepts (a reply never exceeds what the
 * server will queue). */
#define CTL_MAX_REPLY_LINE CTL_MAX_OUTPUT

#define CTL_HASH_LEN  32  /* bytes of a file ID (or any SHA-256) */
#define CTL_HEX32_LEN 64  /* hex characters for CTL_HASH_LEN bytes */
#define CTL_ERR_MAX   256 /* a decoder error message fits in this */

/* ---- requests ------------------------------------------------------------ */

enum ctl_cmd {
    CTL_CMD_STATUS,
    CTL_CMD_SEARCH,
    CTL_CMD_GET,
    CTL_CMD_DOWNLOADS,
    CTL_CMD_PEERS,
    CTL_CMD_METRICS, /* the daemon's metrics as Prometheus text */
    /* transfer control of one download (struct ctl_xfer) */
    CTL_CMD_PAUSE,
    CTL_CMD_RESUME,
    CTL_CMD_CANCEL,       /* stop it and delete its partial data */
    CTL_CMD_REMOVE,       /* forget a finished or failed one (delete_data: its file too) */
    CTL_CMD_PRIORITY,     /* its place in the queue */
    CTL_CMD_SHARE_ADD,    /* share one more folder (peer) */
    CTL_CMD_SHARE_REMOVE, /* stop sharing a folder (peer) */
    CTL_CMD_SHARES,       /* the share folders and their state (peer) */
    CTL_CMD_LIMITS,       /* show or change the bandwidth limits */
    CTL_CMD_LIMIT,        /* one download's own limit */
    CTL_CMD_UI_LOGIN,     /* a one-time link that logs a browser in to the web UI */
};

#define CTL_UNSET      0xffffffffu /* a ctl_limits field that was not given */
#define CTL_KBPS_MAX   100000000u  /* kB/s, the options' bound */
#define CTL_MAX_TURTLE 8

/* Each field CTL_UNSET when not given; turtle "" when not given. */
struct ctl_limits {
    unsigned upload_kbps, download_kbps, alt_upload_kbps, alt_download_kbps;
    char turtle[CTL_MAX_TURTLE + 1]; /* "on", "off" or "auto" (checked by the daemon) */
};

struct ctl_limit {
    uint8_t id[CTL_HASH_LEN];
    unsigned kbps; /* 0: none of its own */
};

/* Priorities ("low", "normal", "high" on the wire); CTL_PRIORITY_UNSET when
 * a get does not say (a new download is normal, a known one keeps its). */
enum ctl_priority {
    CTL_PRIORITY_LOW,
    CTL_PRIORITY_NORMAL,
    CTL_PRIORITY_HIGH,
    CTL_PRIORITY_UNSET,
};
/* "low", "normal", "high"; "?" otherwise. */
const char *ctl_priority_name(unsigned priority);

struct ctl_search {
    size_t n_words;                                  /* 1..CTL_MAX_WORDS */
    char words[CTL_MAX_WORDS][CTL_MAX_WORD_LEN + 1]; /* NUL-terminated, non-empty */
    unsigned max;                                    /* 1..CTL_SEARCH_MAX_LIMIT */
    unsigned timeout_ms;                             /* 1..CTL_SEARCH_TIMEOUT_LIMIT */
};

struct ctl_get {
    uint8_t id[CTL_HASH_LEN];    /* the file ID */
    char out[CTL_MAX_PATH + 1];  /* absolute path, or "" when not given */
    char name[CTL_MAX_NAME + 1]; /* a file name (no '/'), or "" when not given */
    unsigned priority;           /* enum ctl_priority */
    bool background;             /* answer once the download is accepted, not when done */
};

/* pause, resume, cancel, remove, priority */
struct ctl_xfer {
    uint8_t id[CTL_HASH_LEN]; /* the file ID of the download */
    bool delete_data;         /* remove: delete the finished file too */
    unsigned priority;        /* priority: enum ctl_priority (not UNSET) */
};

struct ctl_share_folder {
    char path[CTL_MAX_PATH + 1]; /* absolute path */
};

/* Owns nothing outside itself: fixed arrays sized by the limits. */
struct ctl_request {
    enum ctl_cmd cmd;
    union {
        struct ctl_search search;
        struct ctl_get get;
        struct ctl_xfer xfer;
        struct ctl_share_folder folder; /* share_add, share_remove */
        struct ctl_limits limits;
        struct ctl_limit limit;
    } u;
};

/* "status", "search", ...; "?" for a value outside the enum. */
const char *ctl_cmd_name(enum ctl_cmd cmd);

/* Decode one request line (without its '\n'). Pure and bounded: len above
 * CTL_MAX_REQUEST is refused before parsing. On error returns
 * SOVA_ERR_TOO_LARGE (line too long), SOVA_ERR_UNKNOWN_TYPE (unknown command)
 * or SOVA_ERR_BAD_VALUE (anything else), and writes a message naming the
 * field into err (printable ASCII, at most CTL_ERR_MAX bytes needed). out is
 * zeroed first, so it is always safe to clear. A CLI may run this on its own
 * request to report a mistake before it connects. */
int ctl_request_decode(const char *line, size_t len, struct ctl_request *out, char *err,
                       size_t errlen);
/* Release what req owns (nothing today) and zero it. */
void ctl_request_clear(struct ctl_request *req);

/* ---- small JSON helpers for replies -------------------------------------- */

/* Lowercase hex of a 32-byte hash; out has CTL_HEX32_LEN + 1 bytes. */
void ctl_hex32(const uint8_t hash[CTL_HASH_LEN], char out[CTL_HEX32_LEN + 1]);
/* Parse exactly CTL_HEX32_LEN hex digits (either case). 0 or
 * SOVA_ERR_BAD_LENGTH / SOVA_ERR_BAD_VALUE. */
int ctl_hex32_decode(const char *hex, size_t len, uint8_t out[CTL_HASH_LEN]);
/* A new JSON string with the hex of hash (NULL on allocation failure; the
 * reply functions accept that). */
json_t *ctl_json_hex32(const uint8_t hash[CTL_HASH_LEN]);

/* ---- server (on the daemon's loop; nothing blocks) ----------------------- */

struct ctl_server;
struct ctl_conn;

/* A decoded request. Reply now or later; see the lifetime rule above. */
typedef void ctl_request_fn(struct ctl_conn *conn, const struct ctl_request *req, void *arg);
/* The client of conn went away before the final reply (or the server is
 * being freed). conn is invalid after this returns. */
typedef void ctl_closed_fn(struct ctl_conn *conn, void *arg);

/* Listen on a UNIX socket at path, mode 0600. The socket is bound under
 * umask 0177 (bind(2) is the only moment its mode is set), so it is never
 * wider, even briefly: call this before starting threads that create files.
 * A stale socket file (nobody accepts on it) is replaced; a live one fails
 * with "another daemon is running on <path>"; a path that exists but is not
 * a socket is never removed. The process must ignore SIGPIPE (evloop_new()
 * does). cb must not be NULL. 0, or SOVA_ERR_INVALID / SOVA_ERR_IO /
 * SOVA_ERR_NOMEM with err filled. */
int ctl_server_new(struct event_base *base, const char *path, ctl_request_fn *cb, void *arg,
                   struct ctl_server **out, char *err, size_t errlen);
/* Close every client (running the closed callback of those an owner holds),
 * stop listening and unlink the socket file if it is still the one we made.
 * NULL is fine. Never call it from inside a ctl callback. */
void ctl_server_free(struct ctl_server *srv);
/* Clients connected right now. */
size_t ctl_server_client_count(const struct ctl_server *srv);

/* Be told when the client goes away (see the lifetime rule). fn may be NULL
 * to stop being told. */
void ctl_conn_set_closed_cb(struct ctl_conn *conn, ctl_closed_fn *fn, void *arg);

/* Send obj (stolen; NULL counts as an allocation failure) as one line after
 * adding "done". A final line (done) without "ok" gets "ok": true; after it
 * the output is flushed and the connection closed. Returns 0, or
 * SOVA_ERR_INVALID (obj is not an object), SOVA_ERR_NOMEM, SOVA_ERR_TOO_LARGE
 * (the client is not reading: it is being dropped) or SOVA_ERR_IO (the client
 * is already gone). After SOVA_ERR_TOO_LARGE or SOVA_ERR_IO on a non-final
 * reply the closed callback follows from the loop, and further replies fail
 * harmlessly until then. A final reply whose obj cannot be encoded is
 * replaced by an "internal error" line, so a client that reads always gets a
 * final line. */
int ctl_reply(struct ctl_conn *conn, json_t *obj, bool done);
/* Final reply {"ok": false, "error": <formatted text>}. */
int ctl_reply_error(struct ctl_conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- other transports (the HTTP API) -------------------------------------- */

/* A connection whose replies go to a function instead of a socket, so
 * another transport (the peer's HTTP API, ordinary/op_api.h) hands its
 * requests to the same request callback and handlers. For the handler it is
 * a ctl_conn like any other: the lifetime rule above holds unchanged.
 *
 * fn gets each reply object with "done" (and "ok" on a final line) added,
 * borrowed for the call. It returns 0, or non-zero when it could not deliver
 * a final line (then it is called once more with the "internal error" line).
 * After fn has taken the final line, the conn is freed (before ctl_reply()
 * returns, or at the end of ctl_sink_conn_dispatch() when the final reply
 * comes inside it): the transport forgets it in fn. */
typedef int ctl_sink_fn(json_t *line, bool done, void *arg);

/* A conn for req (copied), replying through fn. NULL on allocation failure.
 * Hand it to the request callback: cb(conn, ctl_conn_request(conn), arg). */
struct ctl_conn *ctl_sink_conn_new(const struct ctl_request *req, ctl_sink_fn *fn, void *arg);
/* The request as the conn holds it (valid as long as conn). */
const struct ctl_request *ctl_conn_request(const struct ctl_conn *conn);
/* cb(conn, its request, arg): a final reply inside the call frees conn
 * only when cb returns, so cb may still read the request it was handed
 * (as a socket conn allows); a final reply after it frees conn at once. */
void ctl_sink_conn_dispatch(struct ctl_conn *conn, ctl_request_fn *cb, void *arg);
/* The transport's client went away (or the transport is being freed) before
 * the final line: the owner's closed callback runs now, fn is never called
 * again, and conn is freed. Call it from the loop (a transport's close
 * callback) or the transport's free, never from inside fn. */
void ctl_sink_conn_gone(struct ctl_conn *conn);

/* ---- client (CLI processes; blocking) ------------------------------------ */

/* One reply line (borrowed for the call). Return 0 to go on; anything else
 * stops the exchange and becomes ctl_client_request()'s return value. */
typedef int ctl_line_fn(json_t *line, void *arg);

/* Connect to path, send req (stolen) as one line, and call on_line for every
 * reply line, the final one included, until "done": true. timeout_ms (> 0)
 * bounds connecting, sending, and each wait for the next line - an idle
 * timeout, so a long download that reports progress keeps going; 0 (or
 * less) waits forever.
 *
 * Returns 0 when the final line says "ok": true. When it says "ok": false,
 * returns SOVA_ERR_INVALID with the daemon's error text in err. Otherwise
 * SOVA_ERR_IO (cannot connect: err reads "cannot reach the daemon at <path>:
 * <reason> (<unreachable_hint>)", e.g. "is `sova-peer run` running?"; or the
 * daemon hung up early), SOVA_ERR_TIMEOUT, SOVA_ERR_TOO_LARGE (request or a
 * reply line too long), SOVA_ERR_BAD_VALUE (a malformed reply), SOVA_ERR_NOMEM,
 * or on_line's non-zero value. err is always filled on failure except for
 * on_line's own value. unreachable_hint may be NULL. */
int ctl_client_request(const char *path, const char *unreachable_hint, json_t *req,
                       ctl_line_fn *on_line, void *arg, int timeout_ms, char *err, size_t errlen);

#endif
