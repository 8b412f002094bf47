/* op_cli.c - the client commands of sova-peer: they talk to the running
 * daemon over STATE_DIR/control.sock (docs/CONTROL.md) and print for people
 * (or JSON for scripts with --json). Blocking is fine here: this is a
 * short-lived CLI process, not the daemon. */
#include "op_cli.h"
#include "ctl.h"
#include "text.h"
#include "err.h"
#include "op_config.h"
#include "op_daemon.h"
#include "op_share.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_TIMEOUT_MS  10000  /* a reply line must come within this */
#define CLI_GET_IDLE_MS 120000 /* a get waits this long without progress lines */
#define CLI_HINT        "is `sova-peer run` running with this --state-dir?"

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
    if (json_is_string(json_object_get(line, "api")))
        printf("http api      http://%s/api/v1/ (key: sova-peer api-key)\n",
               jtext(&tx, line, "api"));
    if (json_is_true(json_object_get(sn, "attached")))
        printf("supernode     %s at %s\n", jtext(&tx, sn, "id"), jtext(&tx, sn, "endpoint"));
    else if (json_is_string(json_object_get(sn, "refused")))
        printf("supernode     not attached: %s\n", jtext(&tx, sn, "refused"));
    else
        printf("supernode     not attached (trying %s)\n", jtext(&tx, sn, "endpoint"));
    const char *backup = json_string_value(json_object_get(sn, "backup"));
    printf("backup        %s\n", backup ? backup : "none yet");
    const char *observed = json_string_value(json_object_get(line, "observed"));
    printf("observed as   %s\n", observed ? observed : "-");
    json_t *reach = json_object_get(line, "reach");
    printf("reachability  %s\n", jtext(&tx, line, "reachability_reason"));
    printf("port mapping  %s\n", jtext(&tx, json_object_get(reach, "mapping"), "words"));
    json_t *pinhole = json_object_get(reach, "pinhole");
    if (json_is_object(pinhole))
        printf("pinhole       %s\n", jtext(&tx, pinhole, "words"));
    printf("dial-back    ");
    size_t i;
    json_t *probe;
    json_array_foreach(json_object_get(reach, "dialback"), i, probe)
    {
        printf(" %s %s", jtext(&tx, probe, "addr"), jtext(&tx, probe, "outcome"));
    }
    printf("%s\n", json_array_size(json_object_get(reach, "dialback")) ? "" : " not done yet");
    printf("NAT           %s\n", jtext(&tx, reach, "nat"));
    json_t *folders = json_object_get(shares, "folders"), *fo;
    size_t n_folders = json_array_size(folders), n_missing = 0;
    json_array_foreach(folders, i, fo)
    {
        n_missing += strcmp(jstr(fo, "state"), "missing") == 0;
    }
    if (n_folders == 0)
        printf("shares        no share folder: nothing is shared (sova-peer share add DIR)\n");
    else if (n_missing == n_folders)
        printf("shares        nothing is shared: %s missing\n",
               n_folders == 1 ? "the share folder is" : "every share folder is");
    else
        printf("shares        %" PRId64 " files, %s%s; %" PRId64 " published%s\n",
               jint(shares, "files"), shared,
               json_is_true(json_object_get(shares, "scanning")) ? " (scanning)" : "",
               jint(line, "published"), n_missing ? "; a folder is missing" : "");
    json_array_foreach(folders, i, fo)
    {
        if (strcmp(jstr(fo, "state"), "missing") == 0)
            printf("  folder      %s is MISSING (%s): its files are not shared; bring it back, or"
                   " stop sharing it with `sova-peer share remove %s`\n",
                   jtext(&tx, fo, "path"), jtext(&tx, fo, "error"), jtext(&tx, fo, "path"));
        else if (json_array_size(folders) > 1 || jint(fo, "ignored") > 0)
            printf("  folder      %s: %" PRId64 " files%s\n", jtext(&tx, fo, "path"),
                   jint(fo, "files"),
                   jint(fo, "ignored") > 0 ? " (some ignored: .sovaignore)" : "");
    }
    printf("transfers     %" PRId64 " downloads running; %" PRId64
           " peers connected to us, %" PRId64 " uploading, %s sent\n",
           jint(line, "downloads_running"), jint(up, "connected"), jint(up, "active"), sent);
    json_t *t;
    json_array_foreach(json_object_get(line, "transfers"), i, t)
    {
        printf("  %-8s via %-16s %s\n", jtext(&tx, t, "state"), jtext(&tx, t, "via"),
               jtext(&tx, t, "name"));
        if (json_is_string(json_object_get(t, "route")))
            printf("           %s\n", jtext(&tx, t, "route"));
        if (json_object_get(t, "sha256") != NULL)
            printf("           sha256 %s\n", jtext(&tx, t, "sha256"));
        if (json_object_get(t, "waiting") != NULL)
            printf("           waiting: %s\n", jtext(&tx, t, "waiting"));
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
    const char *cmd;   /* the command's name (print_xfer words its answer by it) */
    bool no_browser;   /* ui --no-browser */
    char waiting[512]; /* the reason last shown, not to repeat it */
};

static void draw_bar(struct get_state *g, json_t *p)
{
    int64_t have = jint(p, "bytes_have"), size = jint(p, "size"), rate = jint(p, "rate_bps");
    if (strcmp(jstr(p, "state"), "queued") == 0) {
        fprintf(stderr, "\rqueued: position %" PRId64 " (max-active-downloads are running)   ",
                jint(p, "queue_position"));
        g->drew = true;
        return;
    }
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
        /* Why it does not progress (a full disk): said once on a line of
         * its own, whether or not a bar is drawn. */
        const char *waiting = jstr(p, "waiting");
        if (!g->json && strcmp(waiting, g->waiting) != 0) {
            snprintf(g->waiting, sizeof(g->waiting), "%s", waiting);
            if (waiting[0] != '\0')
                fprintf(stderr, "%swaiting: %s\n", g->drew ? "\n" : "", safe(&tx, waiting));
            g->drew = false;
        }
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
               json_is_string(json_object_get(dl, "route")) ? jtext(&tx, dl, "route")
                                                            : jtext(&tx, dl, "via"));
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
            char queue[48] = "";
            if (json_object_get(d, "queue_position") != NULL)
                snprintf(queue, sizeof(queue), "  (queue position %" PRId64 ")",
                         jint(d, "queue_position"));
            const char *prio = jstr(d, "priority");
            printf("%s  %-8s %s  %s%s%s%s\n", jtext(&tx, d, "id"), jtext(&tx, d, "state"), pct,
                   jtext(&tx, d, "name"), queue,
                   prio[0] && strcmp(prio, "normal") != 0 ? "  priority " : "",
                   prio[0] && strcmp(prio, "normal") != 0 ? jtext(&tx, d, "priority") : "");
            if (json_object_get(d, "sha256") != NULL)
                printf("    sha256 %s  %s\n", jtext(&tx, d, "sha256"), jtext(&tx, d, "path"));
        }
        if (jint(d, "limit_kbps") > 0)
            printf("    limited to %" PRId64 " kB/s (sova-peer limit ID 0 lifts it)%s\n",
                   jint(d, "limit_kbps"),
                   json_is_true(json_object_get(d, "throttled")) ? ", waiting for it now" : "");
        else if (json_is_true(json_object_get(d, "throttled")))
            printf("    held to the download limit (sova-peer limits)\n");
        if (json_object_get(d, "error") != NULL)
            printf("    last attempt failed: %s\n", jtext(&tx, d, "error"));
        if (json_object_get(d, "waiting") != NULL)
            printf("    waiting: %s\n", jtext(&tx, d, "waiting"));
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

/* ---- peers -------------------------------------------------------------------------- */

/* One line per peer: who, which way the data goes, how it was reached
 * (and through which supernode for a relay), how fast, how much, its
 * credit; a source also names its download. */
static int print_peers(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    (void)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    json_t *peers = json_object_get(line, "peers");
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        char rate[32], bytes[32], credit[32], path[160];
        human_size((uint64_t)jint(p, "rate_bps"), rate, sizeof(rate));
        human_size((uint64_t)jint(p, "bytes"), bytes, sizeof(bytes));
        human_size((uint64_t)jint(p, "credit"), credit, sizeof(credit));
        json_t *relay = json_object_get(p, "relay");
        if (relay != NULL)
            snprintf(path, sizeof(path), "relay via %.16s at %s", jtext(&tx, relay, "supernode"),
                     jtext(&tx, relay, "address"));
        else
            snprintf(path, sizeof(path), "%s %s",
                     json_is_null(json_object_get(p, "address")) ? "-" : jtext(&tx, p, "address"),
                     jtext(&tx, p, "path"));
        printf("%.16s  %-8s %-8s %-10s %s, %s/s, %s, credit %s", jtext(&tx, p, "id"),
               jtext(&tx, p, "direction"), jtext(&tx, p, "connection"), jtext(&tx, p, "state"),
               path, rate, bytes, credit);
        json_t *dl = json_object_get(p, "download");
        if (dl != NULL)
            printf("  %s", jtext(&tx, dl, "name"));
        putchar('\n');
    }
    if (json_array_size(peers) == 0)
        fprintf(stderr, "no peers connected, no download running\n");
    return 0;
}

/* ---- transfer control ------------------------------------------------------------ */

/* What pause, resume, cancel, remove, priority and get --background did. */
static int print_xfer(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    const struct get_state *g = arg;
    const char *cmd = g->cmd;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    json_t *d = json_object_get(line, "download");
    if (d == NULL)
        d = json_object_get(line, "accepted");
    const char *state = jstr(d, "state");
    const char *name = json_object_get(d, "name") ? jtext(&tx, d, "name") : jtext(&tx, d, "id");
    char where[64] = "";
    if (strcmp(state, "queued") == 0)
        snprintf(where, sizeof(where), " (queue position %" PRId64 ")", jint(d, "queue_position"));
    if (strcmp(cmd, "cancel") == 0)
        printf("cancelled %s: its partial data is deleted\n", jtext(&tx, d, "id"));
    else if (strcmp(cmd, "remove") == 0)
        printf("removed %s from the downloads\n", jtext(&tx, d, "id"));
    else
        printf("%s: %s%s, priority %s, %" PRId64 " of %" PRId64 " chunks verified\n", name, state,
               where, json_object_get(d, "priority") ? jtext(&tx, d, "priority") : "-",
               jint(d, "chunks_have"), jint(d, "chunks"));
    if (json_object_get(d, "deleted") != NULL)
        printf("deleted %s\n", jtext(&tx, d, "deleted"));
    return 0;
}

/* Ctrl-C on a foreground get cancels its download: SIGINT is taken by a
 * thread of its own (sigwait), which asks the daemon to cancel and exits;
 * the main thread goes on waiting for replies meanwhile. */
struct interrupt {
    char state_dir[PATH_MAX];
    char id[CTL_HEX32_LEN + 1];
    sigset_t set;
    atomic_bool taken; /* SIGINT came: the thread ends the process */
};

static void *cancel_on_interrupt(void *arg)
{
    struct interrupt *in = arg;
    int sig = 0;
    if (sigwait(&in->set, &sig) != 0)
        return NULL;
    atomic_store(&in->taken, true);
    fprintf(stderr, "\ninterrupted: cancelling the download of %s\n", in->id);
    int rc = request(in->state_dir, json_pack("{s:s, s:s}", "cmd", "cancel", "id", in->id), NULL,
                     NULL, CLI_TIMEOUT_MS);
    fprintf(stderr, rc == 0 ? "cancelled: its partial data is deleted\n"
                            : "the download was not cancelled\n");
    fflush(stdout);
    fflush(stderr);
    _exit(130); /* 128 + SIGINT, as a shell reports an interrupted command */
}

static int cancel_on_sigint(struct interrupt *in)
{
    sigemptyset(&in->set);
    sigaddset(&in->set, SIGINT);
    /* A shell starts background commands with SIGINT ignored, and an
     * ignored signal is never pending: back to the default first. */
    signal(SIGINT, SIG_DFL);
    if (pthread_sigmask(SIG_BLOCK, &in->set, NULL) != 0)
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, cancel_on_interrupt, in) != 0)
        return -1;
    pthread_detach(t);
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

/* `sova-peer limits`: the limits set and those in force. */
static void print_kbps(const char *what, json_int_t v)
{
    if (v == 0)
        printf("%-18s unlimited\n", what);
    else
        printf("%-18s %" JSON_INTEGER_FORMAT " kB/s\n", what, v);
}

static int print_limits(json_t *line, void *arg)
{
    (void)arg;
    json_t *l = json_object_get(line, "limits");
    if (l == NULL)
        return 0;
    struct cli_text tx = {.next = 0};
    print_kbps("upload", jint(l, "upload_kbps"));
    print_kbps("download", jint(l, "download_kbps"));
    print_kbps("alt upload", jint(l, "alt_upload_kbps"));
    print_kbps("alt download", jint(l, "alt_download_kbps"));
    json_t *sched = json_object_get(l, "schedule");
    printf("%-18s %s (%s; schedule %s)\n", "alternative",
           json_is_true(json_object_get(l, "turtle_active")) ? "in force" : "not in force",
           jtext(&tx, l, "turtle"), json_is_string(sched) ? jtext(&tx, l, "schedule") : "none");
    json_t *f = json_object_get(l, "in_force");
    print_kbps("in force: upload", jint(f, "upload_kbps"));
    print_kbps("in force: download", jint(f, "download_kbps"));
    return 0;
}

static int print_limit(json_t *line, void *arg)
{
    (void)arg;
    struct cli_text tx = {.next = 0};
    if (json_object_get(line, "id") == NULL)
        return 0;
    json_int_t k = jint(line, "limit_kbps");
    if (k == 0)
        printf("%.16s: no limit of its own\n", jtext(&tx, line, "id"));
    else
        printf("%.16s: at most %" JSON_INTEGER_FORMAT " kB/s\n", jtext(&tx, line, "id"), k);
    return 0;
}

/* ---- the web UI ------------------------------------------------------------------ */

/* The default browser, when there is a desktop to show it on: xdg-open,
 * not waited for (it hands the link to the browser and exits). */
static bool open_browser(const char *url)
{
    if (getenv("DISPLAY") == NULL && getenv("WAYLAND_DISPLAY") == NULL)
        return false;
    pid_t pid = fork();
    if (pid != 0)
        return pid > 0;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    setsid();
    execlp("xdg-open", "xdg-open", url, (char *)NULL);
    _exit(127);
}

static int print_ui(json_t *line, void *arg)
{
    const struct get_state *g = arg;
    struct cli_text tx = {.next = 0};
    if (!json_is_string(json_object_get(line, "url")))
        return 0;
    const char *url = jtext(&tx, line, "url");
    printf("The web UI is at %s://%s/\n", strncmp(url, "https:", 6) == 0 ? "https" : "http",
           jtext(&tx, line, "address"));
    printf("Open this link to log in (it works once, for %" PRId64 " minutes):\n\n"
           "    %s\n\n",
           jint(line, "expires_s") / 60, url);
    if (!g->no_browser && open_browser(url))
        printf("(opening it in your browser)\n");
    return 0;
}

/* ---- share folders ---------------------------------------------------------------- */

/* One line per folder: path, state, files, bytes, where it comes from. */
static int print_folders(json_t *line, void *arg)
{
    struct cli_text tx = {.next = 0};
    (void)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(line, "folders"), i, f)
    {
        const char *state = jstr(f, "state");
        const char *origin = strcmp(jstr(f, "origin"), "config") == 0 ? "  (--share)" : "";
        if (strcmp(state, "missing") == 0) {
            printf("%s  MISSING (%s): its files are not shared until it is back%s\n",
                   jtext(&tx, f, "path"), jtext(&tx, f, "error"), origin);
        } else if (strcmp(state, "scanning") == 0) {
            printf("%s  scanning%s\n", jtext(&tx, f, "path"), origin);
        } else {
            char size[32], ignored[64] = "";
            human_size((uint64_t)jint(f, "bytes"), size, sizeof(size));
            if (jint(f, "ignored") > 0)
                snprintf(ignored, sizeof(ignored), ", %" PRId64 " ignored (.sovaignore)",
                         jint(f, "ignored"));
            printf("%s  %" PRId64 " files, %s%s%s\n", jtext(&tx, f, "path"), jint(f, "files"), size,
                   ignored, origin);
        }
    }
    if (json_array_size(json_object_get(line, "folders")) == 0)
        printf("no share folder (sova-peer share add DIR)\n");
    return 0;
}

/* The folder argument as the daemon wants it: absolute, links resolved
 * when it exists (the daemon's working directory is not ours). */
static void folder_arg(const char *given, char *out, size_t cap)
{
    char real[PATH_MAX];
    if (realpath(given, real) != NULL) {
        snprintf(out, cap, "%s", real);
    } else if (given[0] != '/' && getcwd(real, sizeof(real)) != NULL) {
        int n = snprintf(out, cap, "%s/%s", strcmp(real, "/") == 0 ? "" : real, given);
        if (n < 0 || (size_t)n >= cap)
            snprintf(out, cap, "%s", given); /* too long: the daemon says so */
    } else {
        snprintf(out, cap, "%s", given);
    }
}

/* ---- argument handling ------------------------------------------------------------ */

/* A flag's value into the request: "--timeout-ms N" is "timeout_ms": N;
 * a PATH is made absolute (the daemon has another working directory). */
static int add_flag(json_t *req, const struct cli_parsed *p, const struct cli_flag *f,
                    const char *value)
{
    char key[64];
    snprintf(key, sizeof(key), "%s%s", f->name, strcmp(f->metavar, "KBPS") == 0 ? "_kbps" : "");
    for (char *c = key; *c; c++)
        if (*c == '-')
            *c = '_';
    if (strcmp(f->metavar, "KBPS") == 0) { /* --upload 500: "upload_kbps": 500 */
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || value[0] == '\0' || v < 0 || v > (long)CTL_KBPS_MAX)
            return cli_usage_error(p, "option --%s needs kB/s from 0 (unlimited) to %u, not '%s'",
                                   f->name, CTL_KBPS_MAX,
                                   safe(&(struct cli_text){.next = 0}, value));
        json_object_set_new(req, key, json_integer(v));
    } else if (strcmp(f->metavar, "N") == 0 || strcmp(f->metavar, "MS") == 0) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || v <= 0)
            return cli_usage_error(p, "option --%s needs a positive number, not '%s'", f->name,
                                   safe(&(struct cli_text){.next = 0}, value));
        json_object_set_new(req, key, json_integer(v));
    } else if (strcmp(f->metavar, "PATH") == 0 && value[0] != '/') {
        char abs[PATH_MAX];
        if (getcwd(abs, sizeof(abs)) == NULL) {
            fprintf(stderr, "sova-peer: cannot tell the current directory: %s\n", strerror(errno));
            return 1;
        }
        size_t n = strlen(abs);
        snprintf(abs + n, sizeof(abs) - n, "/%s", value);
        json_object_set_new(req, key, json_string(abs));
    } else {
        json_object_set_new(req, key, json_string(value));
    }
    return 0;
}

/* The request of a client command: its name, its arguments under
 * spec->arg_key, its flags but --json. */
static int build_request(const struct cli_parsed *p, const struct op_cli_request *spec,
                         json_t **out)
{
    json_t *req = json_pack("{s:s}", "cmd", spec->cmd ? spec->cmd : p->cmd->name);
    if (req == NULL)
        return 1;
    if (spec->arg_key != NULL && strcmp(spec->arg_key, "words") == 0) {
        json_t *words = json_array();
        for (int i = 0; i < p->argc; i++)
            json_array_append_new(words, json_string(p->argv[i]));
        json_object_set_new(req, "words", words);
    } else if (spec->arg_key != NULL && p->argc > 0 && strcmp(spec->arg_key, "path") == 0) {
        char path[PATH_MAX];
        folder_arg(p->argv[0], path, sizeof(path));
        json_object_set_new(req, spec->arg_key, json_string(path));
    } else if (spec->arg_key != NULL && p->argc > 0) {
        json_object_set_new(req, spec->arg_key, json_string(p->argv[0]));
        if (spec->arg2_key != NULL && p->argc > 1) {
            /* limit ID KBPS: a number if it is one (else the decoder names it) */
            char *end;
            errno = 0;
            long v = spec->arg2_int ? strtol(p->argv[1], &end, 10) : 0;
            bool num = spec->arg2_int && !errno && *end == '\0' && p->argv[1][0] != '\0';
            json_object_set_new(req, spec->arg2_key,
                                num ? json_integer(v) : json_string(p->argv[1]));
        }
    }
    for (size_t i = 0; p->cmd->flags != NULL && p->cmd->flags[i].name != NULL; i++) {
        const struct cli_flag *f = &p->cmd->flags[i];
        const char *value = cli_flag(p, f->name);
        if (value == NULL)
            continue;
        if (f->metavar == NULL) { /* --background: "background": true; --json is the CLI's */
            if (strcmp(f->name, "json") != 0 && strcmp(f->name, "no-browser") != 0) {
                char key[64];
                snprintf(key, sizeof(key), "%s", f->name);
                for (char *c = key; *c; c++)
                    if (*c == '-')
                        *c = '_';
                json_object_set_new(req, key, json_true());
            }
            continue;
        }
        int rc = add_flag(req, p, f, value);
        if (rc != 0) {
            json_decref(req);
            return rc;
        }
    }
    *out = req;
    return 0;
}

/* Human output only for a reply that succeeded: a refusal is the error
 * ctl_client_request reports, never an empty result ("no matches"). */
struct printer {
    ctl_line_fn *fn;
    void *arg;
};

static int print_if_ok(json_t *line, void *arg)
{
    const struct printer *pr = arg;
    if (json_is_true(json_object_get(line, "done")) && !json_is_true(json_object_get(line, "ok")))
        return 0;
    return pr->fn ? pr->fn(line, pr->arg) : 0;
}

const struct op_cli_request op_cli_status = {.print = print_status};
const struct op_cli_request op_cli_search = {.arg_key = "words", .print = print_hits};
const struct op_cli_request op_cli_get = {
    .arg_key = "id", .print = follow_get, .timeout_ms = CLI_GET_IDLE_MS, .progress = true};
const struct op_cli_request op_cli_downloads = {.print = print_downloads};
const struct op_cli_request op_cli_xfer = {.arg_key = "id", .print = print_xfer};
const struct op_cli_request op_cli_priority = {
    .arg_key = "id", .arg2_key = "priority", .print = print_xfer};
const struct op_cli_request op_cli_peers = {.print = print_peers};
const struct op_cli_request op_cli_share_add = {
    .cmd = "share_add", .arg_key = "path", .print = print_folders};
const struct op_cli_request op_cli_share_remove = {
    .cmd = "share_remove", .arg_key = "path", .print = print_folders};
const struct op_cli_request op_cli_share_list = {.cmd = "shares", .print = print_folders};
const struct op_cli_request op_cli_metrics = {.print = print_metrics};
const struct op_cli_request op_cli_limits = {.print = print_limits};
const struct op_cli_request op_cli_ui = {.cmd = "ui_login", .print = print_ui};
const struct op_cli_request op_cli_limit = {
    .arg_key = "id", .arg2_key = "kbps", .arg2_int = true, .print = print_limit};

int op_cli_state_dir(const struct cli_parsed *p, char **state_dir)
{
    struct op_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = op_settings_load(&settings, p->config_argc, p->config_argv, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "sova-peer: %s\n", err);
    else if ((*state_dir = strdup(settings.state_dir)) == NULL)
        rc = SOVA_ERR_NOMEM;
    op_settings_free(&settings);
    return rc;
}

int op_cli_client(const struct cli_parsed *p, void *ctx)
{
    const struct op_cli_request *spec = p->cmd->data;
    bool json = cli_flag_set(p, "json");
    (void)ctx;
    if (p->argc > CTL_MAX_WORDS)
        return cli_usage_error(p, "too many words (at most %d)", CTL_MAX_WORDS);
    json_t *req = NULL;
    int rc = build_request(p, spec, &req);
    if (rc != 0)
        return rc;
    char *state_dir = NULL;
    if (op_cli_state_dir(p, &state_dir) != 0) {
        json_decref(req);
        return 2;
    }
    /* Check the request as the daemon will, to report a mistake before connecting. */
    char *line = json_dumps(req, JSON_COMPACT);
    struct ctl_request parsed;
    char err[CTL_ERR_MAX];
    rc = line ? ctl_request_decode(line, strlen(line), &parsed, err, sizeof(err)) : SOVA_ERR_NOMEM;
    free(line);
    if (rc != 0) {
        json_decref(req);
        free(state_dir);
        /* A malformed ID: say which argument, then what is wrong with it. */
        if (rc != SOVA_ERR_NOMEM && spec->arg_key && strcmp(spec->arg_key, "id") == 0 &&
            p->argc > 0 && strstr(err, "\"id\"") != NULL)
            return cli_usage_error(p, "\"%s\" is not a file ID: %s",
                                   safe(&(struct cli_text){.next = 0}, p->argv[0]), err);
        if (rc != SOVA_ERR_NOMEM && strstr(err, "\"priority\"") != NULL) {
            const char *level =
                spec->arg2_key && p->argc > 1 ? p->argv[1] : cli_flag(p, "priority");
            return cli_usage_error(p, "the priority is high, normal or low, not \"%s\"",
                                   safe(&(struct cli_text){.next = 0}, level ? level : ""));
        }
        return cli_usage_error(p, "%s", rc == SOVA_ERR_NOMEM ? "out of memory" : err);
    }
    struct get_state g = {.tty = isatty(STDERR_FILENO) == 1,
                          .json = json,
                          .cmd = p->cmd->name,
                          .no_browser = cli_flag_set(p, "no-browser")};
    struct printer pr = {.fn = spec->print, .arg = &g};
    int timeout = spec->timeout_ms ? spec->timeout_ms : CLI_TIMEOUT_MS;
    /* static: the thread may outlive this frame (a SIGINT while exiting) */
    static struct interrupt in;
    atomic_init(&in.taken, false);
    if (spec == &op_cli_get && cli_flag_set(p, "background")) {
        /* get --background: the daemon's acceptance is the answer */
        pr.fn = json ? print_json_line : print_xfer;
        timeout = CLI_TIMEOUT_MS;
    } else if (spec == &op_cli_get) {
        snprintf(in.state_dir, sizeof(in.state_dir), "%s", state_dir);
        ctl_hex32(parsed.u.get.id, in.id);
        if (cancel_on_sigint(&in) != 0)
            fprintf(stderr, "sova-peer: Ctrl-C will not cancel the download (no thread)\n");
    } else if (json && !spec->progress) {
        pr.fn = print_json_line;
    }
    rc = request(state_dir, req, print_if_ok, &pr, timeout);
    /* Interrupted: the daemon's answer to the cancel ended our request
     * too; the thread says how the cancel went and exits 130. */
    while (atomic_load(&in.taken))
        pause();
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

int op_cli_hash(const struct cli_parsed *p, void *ctx)
{
    bool as_json = cli_flag_set(p, "json");
    (void)ctx;
    uint8_t *buf = malloc(OP_SHARE_READ_BYTES);
    if (buf == NULL) {
        fprintf(stderr, "sova-peer: out of memory\n");
        return 1;
    }
    int status = 0;
    for (int i = 0; i < p->argc; i++)
        if (hash_one(p->argv[i], as_json, buf) != 0)
            status = 1;
    free(buf);
    return status;
}
