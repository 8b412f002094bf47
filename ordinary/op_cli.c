/* op_cli.c - the client commands of sova-peer: they talk to the running
 * daemon over STATE_DIR/control.sock (docs/CONTROL.md) and print for people
 * (or JSON for scripts with --json). Blocking is fine here: this is a
 * short-lived CLI process, not the daemon. */
#include "op_cli.h"
#include "ctl.h"
#include "text.h"
#include "err.h"
#include "op_daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_TIMEOUT_MS  10000  /* a reply line must come within this */
#define CLI_GET_IDLE_MS 120000 /* a get waits this long without progress lines */
#define CLI_HINT        "is `sova-peer run` running with this --state-dir?"

struct cli_opts {
    bool json;
    const char *out;
    const char *name;
    long max;
    long timeout_ms;
    const char *words[CTL_MAX_WORDS + 1];
    size_t n_words;
};

static void human_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int64_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Strings shown on a terminal: whatever came from the network (file names
 * above all) may hold control characters or bidirectional overrides, so
 * every one is escaped (common/text.h) into one of these buffers, enough
 * for the strings of one printed line. --json output stays exact. */
#define CLI_TEXT_SLOTS 8
struct cli_text {
    char buf[CLI_TEXT_SLOTS][1024];
    unsigned next;
};

static const char *safe(struct cli_text *t, const char *s)
{
    char *out = t->buf[t->next++ % CLI_TEXT_SLOTS];
    text_escape(out, sizeof(t->buf[0]), s, strlen(s));
    return out;
}

static const char *jtext(struct cli_text *t, json_t *o, const char *key)
{
    return safe(t, jstr(o, key));
}

/* Send one request and hand every reply line to on_line. */
static int request(const char *state_dir, json_t *req, ctl_line_fn *on_line, void *arg,
                   int timeout_ms)
{
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof(path), "%s/%s", state_dir, OP_CONTROL_SOCKET);
    int rc = ctl_client_request(path, CLI_HINT, req, on_line, arg, timeout_ms, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "sova-peer: %s\n", safe(&(struct cli_text){.next = 0}, err));
    return rc;
}

static int print_json_line(json_t *line, void *arg)
{
    (void)arg;
    if (json_is_true(json_object_get(line, "done"))) {
        json_object_del(line, "done");
        json_dumpf(line, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    }
    return 0;
}

/* ---- status ------------------------------------------------------------------- */

static int print_status(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    (void)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    json_t *sn = json_object_get(line, "supernode");
    json_t *shares = json_object_get(line, "shares");
    json_t *up = json_object_get(line, "uploads");
    char shared[32], sent[32];
    human_size((uint64_t)jint(shares, "bytes"), shared, sizeof(shared));
    human_size((uint64_t)jint(up, "bytes_sent"), sent, sizeof(sent));
    printf("peer          %s\n", jtext(&tx, line, "id"));
    printf("listening     %s\n", jtext(&tx, line, "listen"));
    if (json_is_true(json_object_get(sn, "attached")))
        printf("supernode     %s at %s\n", jtext(&tx, sn, "id"), jtext(&tx, sn, "endpoint"));
    else
        printf("supernode     not attached (trying %s)\n", jtext(&tx, sn, "endpoint"));
    const char *backup = json_string_value(json_object_get(sn, "backup"));
    printf("backup        %s\n", backup ? backup : "none yet");
    const char *observed = json_string_value(json_object_get(line, "observed"));
    printf("observed as   %s\n", observed ? observed : "-");
    json_t *reach = json_object_get(line, "reach");
    printf("reachability  %s\n", jtext(&tx, line, "reachability_reason"));
    printf("port mapping  %s\n", jtext(&tx, json_object_get(reach, "mapping"), "words"));
    printf("dial-back    ");
    size_t i;
    json_t *probe;
    json_array_foreach(json_object_get(reach, "dialback"), i, probe)
    {
        printf(" %s %s", jtext(&tx, probe, "addr"), jtext(&tx, probe, "outcome"));
    }
    printf("%s\n", json_array_size(json_object_get(reach, "dialback")) ? "" : " not done yet");
    printf("NAT           %s\n", jtext(&tx, reach, "nat"));
    printf("shares        %" PRId64 " files, %s%s; %" PRId64 " published\n", jint(shares, "files"),
           shared, json_is_true(json_object_get(shares, "scanning")) ? " (scanning)" : "",
           jint(line, "published"));
    printf("transfers     %" PRId64 " downloads running; %" PRId64
           " peers connected to us, %" PRId64 " uploading, %s sent\n",
           jint(line, "downloads_running"), jint(up, "connected"), jint(up, "active"), sent);
    json_t *t;
    json_array_foreach(json_object_get(line, "transfers"), i, t)
    {
        printf("  %-8s via %-16s %s\n", jtext(&tx, t, "state"), jtext(&tx, t, "via"),
               jtext(&tx, t, "name"));
    }
    json_t *cr = json_object_get(line, "credit"), *rc = json_object_get(cr, "receipts");
    char credit[32], upl[32], downl[32];
    human_size((uint64_t)jint(cr, "credit"), credit, sizeof(credit));
    human_size((uint64_t)jint(cr, "uploaded"), upl, sizeof(upl));
    human_size((uint64_t)jint(cr, "downloaded"), downl, sizeof(downl));
    if (json_is_true(json_object_get(cr, "known")))
        printf("credit        %s (uploaded %s, downloaded %s, online %" PRId64 " s)\n", credit, upl,
               downl, jint(cr, "uptime_s"));
    else
        printf("credit        not known yet (the supernode has not answered)\n");
    json_t *rej = json_object_get(rc, "rejected");
    printf("receipts      %" PRId64 " signed; %" PRId64 " received, %" PRId64
           " handed to the supernode; refused: %" PRId64 " forged, %" PRId64 " wrong key, %" PRId64
           " replayed, %" PRId64 " misdirected\n",
           jint(rc, "signed"), jint(rc, "received"), jint(rc, "submitted"), jint(rej, "forged"),
           jint(rej, "wrong_key"), jint(rej, "replayed"), jint(rej, "misdirected"));
    printf("uptime        %" PRId64 " s\n", jint(line, "uptime_s"));
    return 0;
}

/* ---- search ------------------------------------------------------------------- */

static int print_hits(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    (void)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    json_t *hits = json_object_get(line, "hits");
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
    {
        int64_t n = jint(h, "sources");
        printf("%s  %12" PRId64 "  %s  (%" PRId64 " source%s)\n", jtext(&tx, h, "hash"),
               jint(h, "size"), jtext(&tx, h, "name"), n, n == 1 ? "" : "s");
    }
    if (json_array_size(hits) == 0)
        fprintf(stderr, "no matches\n");
    return 0;
}

/* ---- get ---------------------------------------------------------------------- */

struct get_state {
    bool tty, json;
    bool drew;
};

static void draw_bar(struct get_state *g, json_t *p)
{
    int64_t have = jint(p, "bytes_have"), size = jint(p, "size"), rate = jint(p, "rate_bps");
    int pct = size > 0 ? (int)(have * 100 / size) : 100;
    char r[32], eta[32] = "--:--";
    human_size((uint64_t)rate, r, sizeof(r));
    if (rate > 0) {
        int64_t s = (size - have) / rate;
        snprintf(eta, sizeof(eta), "%" PRId64 ":%02" PRId64, s / 60, s % 60);
    }
    int fill = pct * 30 / 100;
    fprintf(stderr, "\r[%.*s%.*s] %3d%%  %s/s  ETA %s  sources %" PRId64 "/%" PRId64 "   ", fill,
            "##############################", 30 - fill, "..............................", pct, r,
            eta, jint(json_object_get(p, "sources"), "connected"),
            jint(json_object_get(p, "sources"), "known"));
    g->drew = true;
}

static int follow_get(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    struct get_state *g = arg;
    json_t *p = json_object_get(line, "progress");
    if (p != NULL) {
        if (g->tty && !g->json)
            draw_bar(g, p);
        return 0;
    }
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    if (g->drew)
        fputc('\n', stderr);
    if (g->json)
        return print_json_line(line, NULL);
    json_t *dl = json_object_get(line, "download");
    if (dl != NULL) {
        char sz[32];
        human_size((uint64_t)jint(dl, "size"), sz, sizeof(sz));
        printf("saved %s (%s, verified, via %s)\n", jtext(&tx, dl, "path"), sz,
               jtext(&tx, dl, "via"));
    }
    return 0;
}

/* ---- downloads ------------------------------------------------------------------ */

static int print_downloads(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    (void)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(line, "downloads"), i, d)
    {
        int64_t n = jint(d, "chunks");
        printf("%s  %-8s %3d%%  %s\n", jtext(&tx, d, "hash"), jtext(&tx, d, "state"),
               n ? (int)(jint(d, "chunks_have") * 100 / n) : 100, jtext(&tx, d, "name"));
    }
    return 0;
}

/* `sova-peer metrics`: the Prometheus text as the daemon wrote it. */
static int print_metrics(json_t *line, void *arg)
{
    (void)arg;
    const char *text = json_string_value(json_object_get(line, "metrics"));
    if (json_is_true(json_object_get(line, "done")) && text != NULL)
        fputs(text, stdout);
    return 0;
}

/* ---- argument handling ------------------------------------------------------------ */

/* Take the command's own arguments out of argv; what is left are daemon
 * options (--state-dir, --config ...), compacted into argv. */
static int take_args(int *argc, char **argv, struct cli_opts *o)
{
    int kept = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < *argc;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--out") == 0 && has_next) {
            o->out = argv[++i];
        } else if (strcmp(a, "--name") == 0 && has_next) {
            o->name = argv[++i];
        } else if ((strcmp(a, "--max") == 0 || strcmp(a, "--timeout-ms") == 0) && has_next) {
            char *end;
            errno = 0;
            long v = strtol(argv[i + 1], &end, 10);
            if (errno || *end || v <= 0) {
                fprintf(stderr, "sova-peer: %s needs a positive number\n", a);
                return SOVA_ERR_USAGE;
            }
            *(a[2] == 'm' ? &o->max : &o->timeout_ms) = v;
            i++;
        } else if (strncmp(a, "--", 2) == 0) {
            argv[kept++] = argv[i];
            if (strchr(a, '=') == NULL && has_next)
                argv[kept++] = argv[++i];
        } else if (o->n_words < CTL_MAX_WORDS + 1) {
            o->words[o->n_words++] = a;
        } else {
            fprintf(stderr, "sova-peer: too many words (at most %d)\n", CTL_MAX_WORDS);
            return SOVA_ERR_USAGE;
        }
    }
    *argc = kept;
    return 0;
}

static json_t *build_request(const char *cmd, const struct cli_opts *o)
{
    json_t *req = json_pack("{s:s}", "cmd", cmd);
    if (strcmp(cmd, "search") == 0) {
        json_t *words = json_array();
        for (size_t i = 0; i < o->n_words; i++)
            json_array_append_new(words, json_string(o->words[i]));
        json_object_set_new(req, "words", words);
        if (o->max)
            json_object_set_new(req, "max", json_integer(o->max));
        if (o->timeout_ms)
            json_object_set_new(req, "timeout_ms", json_integer(o->timeout_ms));
    } else if (strcmp(cmd, "get") == 0) {
        json_object_set_new(req, "hash", json_string(o->n_words ? o->words[0] : ""));
        if (o->out) {
            char abs[PATH_MAX];
            if (o->out[0] != '/' && getcwd(abs, sizeof(abs)) != NULL) {
                size_t n = strlen(abs);
                snprintf(abs + n, sizeof(abs) - n, "/%s", o->out);
                json_object_set_new(req, "out", json_string(abs));
            } else {
                json_object_set_new(req, "out", json_string(o->out));
            }
        }
        if (o->name)
            json_object_set_new(req, "name", json_string(o->name));
    }
    return req;
}

bool op_cli_is_command(const char *cmd)
{
    static const char *const cmds[] = {"status", "search", "get", "downloads", "metrics"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd, cmds[i]) == 0)
            return true;
    return false;
}

int op_cli_run(const char *cmd, int argc, char **argv,
               int (*load)(int argc, char **argv, char **state_dir))
{
    struct cli_opts o = {0};
    if (take_args(&argc, argv, &o) != 0)
        return 2;
    bool wants_words = strcmp(cmd, "search") == 0 || strcmp(cmd, "get") == 0;
    if ((wants_words && o.n_words == 0) || (!wants_words && o.n_words > 0) ||
        (strcmp(cmd, "get") == 0 && o.n_words != 1)) {
        fprintf(stderr, "sova-peer: usage: sova-peer %s%s\n", cmd,
                strcmp(cmd, "search") == 0 ? " WORDS... [--max N] [--json]"
                : strcmp(cmd, "get") == 0  ? " HASH [--out PATH] [--name NAME] [--json]"
                                           : " [--json]");
        return 2;
    }
    char *state_dir = NULL;
    if (load(argc, argv, &state_dir) != 0)
        return 2;
    json_t *req = build_request(cmd, &o);
    /* Check the request as the daemon will, to report a mistake before connecting. */
    char *line = json_dumps(req, JSON_COMPACT);
    struct ctl_request parsed;
    char err[CTL_ERR_MAX];
    int rc =
        line ? ctl_request_decode(line, strlen(line), &parsed, err, sizeof(err)) : SOVA_ERR_NOMEM;
    free(line);
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s\n", rc == SOVA_ERR_NOMEM ? "out of memory" : err);
        json_decref(req);
        free(state_dir);
        return 2;
    }
    struct get_state g = {.tty = isatty(STDERR_FILENO) == 1, .json = o.json};
    ctl_line_fn *fn = o.json                          ? print_json_line
                      : strcmp(cmd, "status") == 0    ? print_status
                      : strcmp(cmd, "search") == 0    ? print_hits
                      : strcmp(cmd, "downloads") == 0 ? print_downloads
                      : strcmp(cmd, "metrics") == 0   ? print_metrics
                                                      : NULL;
    int timeout = CLI_TIMEOUT_MS;
    if (strcmp(cmd, "get") == 0) {
        fn = follow_get;
        timeout = CLI_GET_IDLE_MS;
    }
    rc = request(state_dir, req, fn, &g, timeout);
    free(state_dir);
    return rc == 0 ? 0 : 1;
}
