/* op_cli.c - the client commands of sova-peer: they talk to the running
 * daemon over STATE_DIR/control.sock (docs/CONTROL.md) and print for people
 * (or JSON for scripts with --json). Blocking is fine here: this is a
 * short-lived CLI process, not the daemon. */
#include "op_cli.h"
#include "ctl.h"
#include "text.h"
#include "err.h"
#include "op_daemon.h"
#include "op_share.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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
        if (json_object_get(t, "sha256") != NULL)
            printf("           sha256 %s\n", jtext(&tx, t, "sha256"));
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
           " replayed, %" PRId64 " misdirected, %" PRId64 " bad size\n",
           jint(rc, "signed"), jint(rc, "received"), jint(rc, "submitted"), jint(rej, "forged"),
           jint(rej, "wrong_key"), jint(rej, "replayed"), jint(rej, "misdirected"),
           jint(rej, "bad_size"));
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
        printf("%s  %12" PRId64 "  %s  (%" PRId64 " source%s)\n", jtext(&tx, h, "id"),
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
    if (json_is_null(json_object_get(p, "size"))) {
        fprintf(stderr,
                "\rchecking a manifest against the file ID ...  sources %" PRId64 "/%" PRId64 "   ",
                jint(json_object_get(p, "sources"), "connected"),
                jint(json_object_get(p, "sources"), "known"));
        g->drew = true;
        return;
    }
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
        printf("sha256 %s\n", jtext(&tx, dl, "sha256"));
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
        if (json_is_true(json_object_get(d, "legacy"))) {
            printf("%s  %-8s       %s  (sha256: made by an older Sova)\n", jtext(&tx, d, "sha256"),
                   jtext(&tx, d, "state"), jtext(&tx, d, "name"));
        } else {
            int64_t n = jint(d, "chunks");
            bool sized = !json_is_null(json_object_get(d, "size"));
            char pct[8] = "  ?%";
            if (sized)
                snprintf(pct, sizeof(pct), "%3d%%",
                         n ? (int)(jint(d, "chunks_have") * 100 / n) : 100);
            printf("%s  %-8s %s  %s\n", jtext(&tx, d, "id"), jtext(&tx, d, "state"), pct,
                   jtext(&tx, d, "name"));
            if (json_object_get(d, "sha256") != NULL)
                printf("    sha256 %s  %s\n", jtext(&tx, d, "sha256"), jtext(&tx, d, "path"));
        }
        if (json_object_get(d, "error") != NULL)
            printf("    last attempt failed: %s\n", jtext(&tx, d, "error"));
        size_t j;
        json_t *b;
        json_array_foreach(json_object_get(d, "bad_sources"), j, b)
        {
            char failures[32] = "";
            if (!json_is_true(json_object_get(b, "banned")))
                snprintf(failures, sizeof(failures), " (%" PRId64 " bad chunk%s)",
                         jint(b, "failures"), jint(b, "failures") == 1 ? "" : "s");
            printf("    source %.16s %s%s: %s\n", jtext(&tx, b, "peer"),
                   json_is_true(json_object_get(b, "banned")) ? "banned" : "failed", failures,
                   jtext(&tx, b, "reason"));
        }
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
        json_object_set_new(req, "id", json_string(o->n_words ? o->words[0] : ""));
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
                : strcmp(cmd, "get") == 0  ? " ID [--out PATH] [--name NAME] [--json]"
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

/* ---- hash: a file's ID and SHA-256, locally ------------------------------------------ */

static int hash_one(const char *path, bool as_json, uint8_t *buf)
{
    struct cli_text tx = {.next = 0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "sova-peer: %s: %s\n", safe(&tx, path),
                fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    struct op_share_hashes h;
    int rc = op_share_hash_fd(fd, (uint64_t)st.st_size, FILEID_MAX_HEIGHT, NULL, buf, &h, NULL);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s: %s\n", safe(&tx, path),
                rc == SOVA_ERR_IO ? strerror(errno) : sova_err_str(rc));
        return 1;
    }
    char id[CTL_HEX32_LEN + 1], sha[CTL_HEX32_LEN + 1];
    ctl_hex32(h.id, id);
    ctl_hex32(h.sha256, sha);
    if (as_json) {
        json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "file", path, "size", (json_int_t)h.size,
                              "id", id, "sha256", sha);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("id      %s  %s\n", id, safe(&tx, path));
        printf("sha256  %s  %s\n", sha, safe(&tx, path));
    }
    op_share_hashes_clear(&h);
    return 0;
}

int op_cli_hash(int argc, char **argv)
{
    bool as_json = false;
    int files = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "sova-peer: hash takes no option %s\n",
                    safe(&(struct cli_text){.next = 0}, argv[i]));
            return 2;
        } else
            files++;
    }
    if (files == 0) {
        fprintf(stderr, "sova-peer: usage: sova-peer hash FILE... [--json]\n");
        return 2;
    }
    uint8_t *buf = malloc(OP_SHARE_READ_BYTES);
    if (buf == NULL) {
        fprintf(stderr, "sova-peer: out of memory\n");
        return 1;
    }
    int status = 0;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "--", 2) != 0 && hash_one(argv[i], as_json, buf) != 0)
            status = 1;
    free(buf);
    return status;
}
