/* sova_loadgen - many ordinary peers against one running sova-supernode.
 *
 * Each simulated peer has its own identity (the supernode keeps one session
 * per node ID), dials over TLS 1.3 with the peer->supernode policy and
 * speaks through common/link.h, exactly as sova-peer does. The run:
 *   attach   TLS + HELLO + REGISTER -> REGISTERED for every peer, at most
 *            --connect-window handshakes at a time;
 *   publish  every peer publishes --files records in PUBLISH frames of
 *            --batch records, --publish-window frames in flight per peer;
 *   phases   --mode KIND[:SECONDS[:RATE]],...: the first --searchers peers
 *            keep --pipeline requests in flight each (RATE 0: as fast as
 *            answers come; N: N requests/s offered in total; N%: that share
 *            of the rate the last unpaced phase of the same kind reached).
 *            KIND search: SEARCH of 1-2 Zipf words; locate: LOCATE of the
 *            peer itself (the cheapest request the supernode serves); ping:
 *            --ping-batch PINGs answered by link.c, closed by one LOCATE;
 *            idle: no request at all, only keep-alives (the supernode's CPU
 *            for idle peers);
 *   hold     --hold seconds attached, then a clean exit.
 * With --publish-on-attach each peer publishes as soon as it is registered
 * and attach ends when every PUBLISH is acknowledged: the attach rate then
 * counts TLS + HELLO + REGISTER + PUBLISH.
 * All peers PING at the keep-alive interval the supernode gives, spread
 * evenly over the interval (a tick every 10 ms pings the next slice), as
 * independent peers would. Every peer has its own Ed25519 identity (so its
 * own node ID; --keys-dir keeps them across runs) on one shared client TLS
 * context. One thread,
 * one libevent loop, nothing blocks after the identities are loaded: the
 * loadgen's own ceiling is one CPU core, which its reports show next to the
 * supernode's CPU use (--sn-pid).
 *
 * Exit status: 0; 1 if attaching or publishing failed badly (over 1% of
 * peers or records), so scripts notice; 2 for usage and setup errors.
 * The last line is machine-readable: RESULT key=value ...
 */
#include "err.h"
#include "identity.h"
#include "loadgen.h"
#include "log.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define LG_HANDSHAKE_TIMEOUT_MS 30000
#define LG_MAX_OUTPUT_BYTES     (64u * 1024 * 1024)
#define LG_DRAIN_TIMEOUT_S      3.0
#define LG_PACE_BURST_S         0.0005 /* credit kept while every slot is busy */
#define LG_PACE_MIN_GAP_S       50e-6  /* pace timer granularity (a few requests at 50,000/s) */
#define LG_CLAIMED_PORT         7071
#define LG_FD_RESERVE           32
#define LG_KEEPALIVE_TICK_S     0.01 /* keep-alive PINGs go out in slices this often */

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t t0, uint64_t t1)
{
    return (double)(t1 - t0) / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of another process from /proc/PID/stat; -1 if unknown. */
static double proc_cpu_seconds(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds the whole machine spent busy (all cores, /proc/stat), so a
 * phase can tell how much other processes took from a shared machine. */
static double machine_busy_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5)
        return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* not idle, iowait */
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static void set_timer(struct event *ev, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {.tv_sec = (time_t)seconds,
                         .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(ev, &tv);
}

static const char *kind_name(enum lg_kind k)
{
    return k == LG_SEARCH ? "search" : k == LG_LOCATE ? "locate" : k == LG_PING ? "ping" : "idle";
}

/* ---- the run --------------------------------------------------------------------- */

static void start_publish(struct loadgen *lg);
static void end_publish(struct loadgen *lg);
static void start_phase(struct loadgen *lg, size_t k);
static void pace_send(struct loadgen *lg);
static void on_progress(evutil_socket_t fd, short what, void *arg);

static void dial_more(struct loadgen *lg)
{
    while (lg->stage == LG_STAGE_ATTACH && lg->dialing < lg->opt.connect_window &&
           lg->next_dial < lg->opt.peers) {
        struct lg_peer *p = &lg->peers[lg->next_dial++];
        if (lg_peer_dial(p))
            lg->dialing++;
        else
            lg->attach_failed++;
    }
    if (lg->stage == LG_STAGE_ATTACH && lg->next_dial == lg->opt.peers && lg->dialing == 0)
        set_timer(lg->stage_timer, 0); /* attach is over: move on from the loop */
}

static void end_attach(struct loadgen *lg)
{
    lg->attach_t1 = lg_now_ns();
    double s = secs(lg->attach_t0, lg->attach_t1);
    unsigned pending = lg->opt.peers - lg->registered - lg->attach_failed;
    printf("attach:  %u of %u peers registered in %.2f s (%.0f attaches/s%s), %u failed%s\n",
           lg->registered, lg->opt.peers, s, s > 0 ? lg->registered / s : 0,
           lg->opt.publish_on_attach ? ", TLS + HELLO + REGISTER + PUBLISH" : "", lg->attach_failed,
           pending ? ", some still pending at the timeout" : "");
    fflush(stdout);
    if (lg->registered == 0 || (lg->opt.peers - lg->registered) * 100u > lg->opt.peers)
        lg->failed_badly = true;
    if (lg->registered == 0) {
        event_base_loopbreak(lg->base);
        return;
    }
    if (lg->opt.publish_on_attach) {
        lg->publish_t0 = lg->attach_t0; /* the records went out during attach */
        end_publish(lg);
        return;
    }
    start_publish(lg);
}

void lg_keepalive_told(struct loadgen *lg, unsigned keepalive_s)
{
    if (keepalive_s == 0)
        return;
    if (lg->keepalive_s == 0) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(LG_KEEPALIVE_TICK_S * 1e6)};
        evtimer_add(lg->keepalive_timer, &tv); /* EV_PERSIST: a slice every tick */
    }
    if (keepalive_s != lg->keepalive_s && lg->keepalive_s != 0)
        fprintf(stderr, "sova_loadgen: the supernode now asks for a PING every %u s\n",
                keepalive_s);
    lg->keepalive_s = keepalive_s;
}

void lg_peer_registered(struct loadgen *lg, struct lg_peer *p, unsigned keepalive_s)
{
    lg->registered++;
    bool attaching = lg->stage == LG_STAGE_ATTACH;
    if (lg->stage == LG_STAGE_PUBLISH || (attaching && lg->opt.publish_on_attach))
        lg_peer_publish_more(p); /* late, after the attach timeout; or attach includes it */
    lg_keepalive_told(lg, keepalive_s);
    if (attaching && lg->opt.publish_on_attach && !p->published && lg->opt.files > 0)
        return; /* still attaching until its PUBLISH_ACKs are in */
    if (lg->dialing > 0)
        lg->dialing--;
    dial_more(lg);
}

static unsigned publishing_left(const struct loadgen *lg)
{
    unsigned n = 0;
    for (unsigned i = 0; i < lg->opt.peers; i++) {
        const struct lg_peer *p = &lg->peers[i];
        n += p->state == LG_PEER_REGISTERED && !p->published;
    }
    return n;
}

void lg_peer_gone(struct loadgen *lg, struct lg_peer *p, bool was_registered)
{
    if (!was_registered) {
        lg->attach_failed++;
        if (lg->dialing > 0)
            lg->dialing--;
        dial_more(lg);
        return;
    }
    lg->lost++;
    if (lg->stage == LG_STAGE_PUBLISH && !p->published && publishing_left(lg) == 0)
        set_timer(lg->stage_timer, 0);
    if (lg->stage == LG_STAGE_DRAIN && lg->inflight == 0)
        set_timer(lg->stage_timer, 0);
}

static void start_publish(struct loadgen *lg)
{
    lg->stage = LG_STAGE_PUBLISH;
    lg->publish_t0 = lg_now_ns();
    if (lg->opt.files == 0) {
        set_timer(lg->stage_timer, 0);
        return;
    }
    set_timer(lg->stage_timer, lg->opt.stage_timeout);
    for (unsigned i = 0; i < lg->opt.peers; i++)
        lg_peer_publish_more(&lg->peers[i]);
}

void lg_peer_published(struct loadgen *lg, struct lg_peer *p)
{
    (void)p;
    lg->published_peers++;
    if (lg->stage == LG_STAGE_ATTACH && lg->opt.publish_on_attach) {
        if (lg->dialing > 0)
            lg->dialing--;
        dial_more(lg);
        return;
    }
    if (lg->stage == LG_STAGE_PUBLISH && publishing_left(lg) == 0)
        set_timer(lg->stage_timer, 0);
}

static void end_publish(struct loadgen *lg)
{
    lg->publish_t1 = lg_now_ns();
    double s = secs(lg->publish_t0, lg->publish_t1);
    uint64_t answered = lg->accepted + lg->rejected;
    printf("publish: %" PRIu64 " records from %u peers in %.2f s (%.0f records/s): "
           "%" PRIu64 " accepted, %" PRIu64 " rejected",
           lg->records_sent, lg->published_peers, s, s > 0 ? answered / s : 0, lg->accepted,
           lg->rejected);
    if (lg->rejected > 0)
        printf(" (first: %s)", msg_error_code_str(lg->first_reject_code));
    if (answered < lg->records_sent)
        printf(", %" PRIu64 " unacknowledged", lg->records_sent - answered);
    lg->sn_rss_kb = proc_rss_kb(lg->opt.sn_pid);
    if (lg->sn_rss_kb > 0)
        printf("; supernode RSS %.1f MiB", lg->sn_rss_kb / 1024.0);
    printf("\n");
    fflush(stdout);
    uint64_t wanted = (uint64_t)lg->opt.files * lg->registered;
    if (lg->accepted * 100 < wanted * 99)
        lg->failed_badly = true;
    if (lg->opt.n_phases > 0) {
        start_phase(lg, 0);
        return;
    }
    lg->stage = LG_STAGE_HOLD;
    set_timer(lg->stage_timer, lg->opt.hold);
}

/* The rate a paced phase offers: absolute, or a share of the last unpaced
 * phase of the same kind (unpaced if there was none). */
static double phase_rate(const struct loadgen *lg, size_t k)
{
    const struct lg_phase_spec *ph = &lg->opt.phases[k];
    if (!ph->rate_pct)
        return ph->rate;
    for (size_t j = k; j-- > 0;) {
        const struct lg_phase_stats *st = &lg->stats[j];
        if (lg->opt.phases[j].kind == ph->kind && st->offered == 0 && st->t1_ns > st->t0_ns)
            return ph->rate / 100.0 * (double)st->done_in_window / secs(st->t0_ns, st->t1_ns);
    }
    return 0;
}

static void start_phase(struct loadgen *lg, size_t k)
{
    lg->phase = k;
    lg->stage = LG_STAGE_MEASURE;
    struct lg_phase_stats *st = &lg->stats[k];
    st->offered = phase_rate(lg, k);
    st->cpu0 = cpu_seconds();
    st->sn_cpu0 = proc_cpu_seconds(lg->opt.sn_pid);
    st->busy0 = machine_busy_seconds();
    st->t0_ns = lg_now_ns();
    set_timer(lg->stage_timer, lg->opt.phases[k].seconds);
    if (lg->opt.progress) {
        lg->prog_ns = 0;
        on_progress(-1, 0, lg); /* the starting point */
        struct timeval tv = {.tv_sec = 1};
        evtimer_add(lg->progress_timer, &tv);
    }
    if (st->offered > 0) {
        lg->pace_credit = 1; /* the first request goes now */
        lg->pace_last_ns = st->t0_ns;
        pace_send(lg);
        return;
    }
    for (unsigned i = 0; i < lg->n_searchers; i++) {
        while (lg_peer_send_op(&lg->peers[i]))
            ;
    }
}

void lg_slot_free(struct loadgen *lg, struct lg_peer *p)
{
    if (lg->stage != LG_STAGE_MEASURE)
        return;
    if (lg->stats[lg->phase].offered == 0)
        lg_peer_send_op(p);
    else
        pace_send(lg);
}

void lg_op_done(struct loadgen *lg, unsigned phase, uint64_t t_send_ns, uint32_t hits,
                unsigned frames)
{
    struct lg_phase_stats *st = &lg->stats[phase];
    st->done++;
    st->hits += hits;
    st->frames += frames;
    lg_samples_add(&st->lat, lg_now_ns() - t_send_ns);
    if (lg->stage == LG_STAGE_MEASURE && phase == lg->phase)
        st->done_in_window++;
    if (lg->stage == LG_STAGE_DRAIN && lg->inflight == 0)
        set_timer(lg->stage_timer, 0);
}

void lg_op_failed(struct loadgen *lg, unsigned phase)
{
    lg->stats[phase].errors++;
    if (lg->stage == LG_STAGE_DRAIN && lg->inflight == 0)
        set_timer(lg->stage_timer, 0);
}

/* Paced phases: requests go out evenly spaced at the offered rate. Each
 * call spends the credit the clock has given since the last one, then sets
 * the (precise) pace timer for when the next request is due, at most every
 * LG_PACE_MIN_GAP_S. When every slot is busy the next answer calls again
 * instead; only a little credit is kept meanwhile, so a slow phase does not
 * turn into bursts that would queue at the supernode and inflate the
 * latency measured. */
static void pace_send(struct loadgen *lg)
{
    if (lg->stage != LG_STAGE_MEASURE || lg->n_searchers == 0)
        return;
    double rate = lg->stats[lg->phase].offered;
    uint64_t now = lg_now_ns();
    lg->pace_credit += rate * secs(lg->pace_last_ns, now);
    lg->pace_last_ns = now;
    bool blocked = false;
    while (lg->pace_credit >= 1 && !blocked) {
        bool sent = false;
        for (unsigned tries = 0; tries < lg->n_searchers && !sent; tries++) {
            struct lg_peer *p = &lg->peers[lg->pace_cursor++ % lg->n_searchers];
            sent = lg_peer_send_op(p);
        }
        if (sent)
            lg->pace_credit -= 1;
        blocked = !sent; /* the offered rate is not reached */
    }
    double burst = rate * LG_PACE_BURST_S;
    if (lg->pace_credit > (burst > 1 ? burst : 1))
        lg->pace_credit = burst > 1 ? burst : 1;
    /* A pending timer is never later than the next due time (sending only
     * moves it later), and re-arming costs a timerfd syscall per request. */
    if (!blocked && !evtimer_pending(lg->pace_timer, NULL)) {
        double wait = (1 - lg->pace_credit) / rate;
        set_timer(lg->pace_timer, wait > LG_PACE_MIN_GAP_S ? wait : LG_PACE_MIN_GAP_S);
    }
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pace_send(arg);
}

static void report_phase(struct loadgen *lg, size_t k)
{
    const struct lg_phase_spec *ph = &lg->opt.phases[k];
    struct lg_phase_stats *st = &lg->stats[k];
    double s = secs(st->t0_ns, st->t1_ns);
    double per_s = s > 0 ? st->done_in_window / s : 0;
    double frames_per_op = st->done ? (double)st->frames / (double)st->done : 0;
    lg_samples_sort(&st->lat);
    double p50 = lg_samples_pct_us(&st->lat, 50), p90 = lg_samples_pct_us(&st->lat, 90);
    double p99 = lg_samples_pct_us(&st->lat, 99), pmax = lg_samples_pct_us(&st->lat, 100);
    double cores = s > 0 ? (st->cpu1 - st->cpu0) / s : 0;
    bool sn = st->sn_cpu0 >= 0 && st->sn_cpu1 >= 0 && lg->opt.sn_pid > 0;
    double sn_cores = sn && s > 0 ? (st->sn_cpu1 - st->sn_cpu0) / s : -1;
    double sn_us = sn && st->done_in_window
                       ? (st->sn_cpu1 - st->sn_cpu0) * 1e6 / (double)st->done_in_window
                       : -1;
    /* What neither of us used: other processes on a shared machine. */
    double machine = st->busy0 >= 0 && st->busy1 >= 0 && s > 0 ? (st->busy1 - st->busy0) / s : -1;
    double others = machine >= 0 ? machine - cores - (sn ? sn_cores : 0) : -1;
    if (others < 0 && machine >= 0)
        others = 0; /* tick rounding */
    char offered[48];
    if (st->offered > 0)
        snprintf(offered, sizeof(offered), "%.0f/s offered", st->offered);
    else
        snprintf(offered, sizeof(offered), "unpaced");
    if (ph->kind == LG_IDLE) {
        printf("idle %zu: %.2f s, %u peers attached, %.0f keep-alive PINGs/s; loadgen CPU %.3f "
               "cores",
               k + 1, s, lg->registered - lg->lost,
               lg->keepalive_s ? (double)lg->opt.peers / lg->keepalive_s : 0, cores);
        if (sn)
            printf(", supernode CPU %.4f cores (%.2f%% of one core)", sn_cores, sn_cores * 100);
        if (machine >= 0)
            printf(", other processes %.2f cores", others);
        printf("\n");
    } else {
        printf("%s %zu (%s, %u searchers x %u in flight): %.2f s, %" PRIu64 " answered (%.0f/s",
               kind_name(ph->kind), k + 1, offered, lg->n_searchers, lg->opt.pipeline, s,
               st->done_in_window, per_s);
        if (ph->kind == LG_PING)
            printf(", %.0f frame round trips/s", per_s * frames_per_op);
        printf(")");
        if (ph->kind == LG_SEARCH)
            printf(", %.1f hits/search", st->done ? (double)st->hits / (double)st->done : 0);
        printf("\n    latency us: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f; errors %" PRIu64
               ", unanswered %" PRIu64 "; loadgen CPU %.2f cores",
               p50, p90, p99, pmax, st->errors, st->unanswered, cores);
        if (sn)
            printf(", supernode CPU %.2f cores (%.1f us per request)", sn_cores, sn_us);
        if (machine >= 0)
            printf(", other processes %.2f cores", others);
        printf("\n");
    }
    printf("RESULT_PHASE n=%zu kind=%s offered_per_s=%.0f per_s=%.0f frames_per_s=%.0f "
           "hits_per_op=%.2f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f errors=%" PRIu64
           " unanswered=%" PRIu64
           " loadgen_cores=%.3f sn_cores=%.4f sn_us_per_op=%.2f other_cores=%.2f\n",
           k + 1, kind_name(ph->kind), st->offered, per_s, per_s * frames_per_op,
           st->done ? (double)st->hits / (double)st->done : 0, p50, p90, p99, pmax, st->errors,
           st->unanswered, cores, sn_cores, sn_us, others);
    fflush(stdout);
}

static void end_phase(struct loadgen *lg)
{
    struct lg_phase_stats *st = &lg->stats[lg->phase];
    st->t1_ns = lg_now_ns();
    st->cpu1 = cpu_seconds();
    st->sn_cpu1 = proc_cpu_seconds(lg->opt.sn_pid);
    st->busy1 = machine_busy_seconds();
    evtimer_del(lg->pace_timer);
    evtimer_del(lg->progress_timer);
    lg->stage = LG_STAGE_DRAIN;
    set_timer(lg->stage_timer, lg->inflight == 0 ? 0 : LG_DRAIN_TIMEOUT_S);
}

static void finish_phase(struct loadgen *lg)
{
    for (unsigned i = 0; i < lg->n_searchers; i++)
        lg_peer_drop_slots(&lg->peers[i]);
    report_phase(lg, lg->phase);
    if (lg->phase + 1 < lg->opt.n_phases) {
        start_phase(lg, lg->phase + 1);
        return;
    }
    lg->stage = LG_STAGE_HOLD;
    if (lg->opt.hold > 0) {
        printf("hold:    %u peers stay attached for %g s\n", lg->registered - lg->lost,
               lg->opt.hold);
        fflush(stdout);
    }
    set_timer(lg->stage_timer, lg->opt.hold);
}

static void on_stage_timer(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)fd;
    (void)what;
    switch (lg->stage) {
    case LG_STAGE_ATTACH:
        end_attach(lg);
        return;
    case LG_STAGE_PUBLISH:
        end_publish(lg);
        return;
    case LG_STAGE_MEASURE:
        end_phase(lg);
        return;
    case LG_STAGE_DRAIN:
        finish_phase(lg);
        return;
    case LG_STAGE_HOLD:
        event_base_loopbreak(lg->base);
        return;
    }
}

/* --progress: one line a second while a phase runs. */
static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)fd;
    (void)what;
    if (lg->stage != LG_STAGE_MEASURE)
        return;
    const struct lg_phase_stats *st = &lg->stats[lg->phase];
    uint64_t now = lg_now_ns();
    double cpu = cpu_seconds(), sn = proc_cpu_seconds(lg->opt.sn_pid);
    double dt = secs(lg->prog_ns, now);
    if (lg->prog_ns != 0 && dt > 0) {
        printf("    %5.1f s: %.0f/s, in flight %" PRIu64 ", loadgen %.2f cores",
               secs(st->t0_ns, now), (double)(st->done_in_window - lg->prog_done) / dt,
               lg->inflight, (cpu - lg->prog_cpu) / dt);
        if (sn >= 0 && lg->prog_sn >= 0)
            printf(", supernode %.2f cores", (sn - lg->prog_sn) / dt);
        printf("\n");
        fflush(stdout);
    }
    lg->prog_ns = now;
    lg->prog_done = st->done_in_window;
    lg->prog_cpu = cpu;
    lg->prog_sn = sn;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)what;
    lg->stop_signal = (int)sig;
    event_base_loopbreak(lg->base);
}

/* Every tick pings the next slice of peers, so each peer PINGs once per
 * keep-alive interval and the supernode sees them evenly spread. */
static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)fd;
    (void)what;
    lg->keepalive_credit += (double)lg->opt.peers * LG_KEEPALIVE_TICK_S / lg->keepalive_s;
    while (lg->keepalive_credit >= 1) {
        lg->keepalive_credit -= 1;
        lg_peer_ping(&lg->peers[lg->keepalive_cursor]);
        lg->keepalive_cursor = (lg->keepalive_cursor + 1) % lg->opt.peers;
    }
}

/* ---- setup ------------------------------------------------------------------------ */

static int raise_fd_limit(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        fprintf(stderr, "sova_loadgen: %u peers need %u file descriptors, the hard limit is %llu\n",
                need - LG_FD_RESERVE, need, (unsigned long long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

/* Identity and a client SSL per peer: the SSL comes from one client TLS
 * context shared by all peers (made with the first identity) and carries
 * the peer's own certificate and key, so each peer has its own node ID
 * without a context of its own. The identity is dropped again (the SSL
 * keeps references). Blocking file I/O, before the loop runs. */
static int prepare_peer(struct loadgen *lg, unsigned i, uint32_t *next_ip)
{
    struct lg_peer *p = &lg->peers[i];
    p->lg = lg;
    p->index = i;
    char dir[4096], err[512];
    snprintf(dir, sizeof(dir), "%s/peer-%u", lg->opt.keys_dir, i);
    struct sova_identity *id = NULL;
    int rc = identity_load_or_create(dir, &id, err, sizeof(err));
    if (rc == 0 && lg->tls == NULL)
        rc = tls_ctx_new(id, lg->opt.federation_ca, TLS_CTX_PEER, &lg->tls, err, sizeof(err));
    if (rc == 0 && (tls_ctx_client(lg->tls, TLS_EXPECT_SUPERNODE, NULL, &p->ssl) != 0 ||
                    SSL_use_certificate(p->ssl, identity_cert(id)) != 1 ||
                    SSL_use_PrivateKey(p->ssl, identity_key(id)) != 1)) {
        snprintf(err, sizeof(err), "cannot make an SSL object with its identity");
        rc = SOVA_ERR_CRYPTO;
    }
    if (rc == 0)
        memcpy(p->id, identity_id(id), NODE_ID_LEN);
    identity_free(id);
    if (rc != 0) {
        fprintf(stderr, "sova_loadgen: peer %u: %s\n", i, err);
        return rc;
    }
    p->claimed.family = WIRE_ADDR_IPV4;
    if (lg->opt.has_source_base) {
        while ((*next_ip & 0xff) == 0 || (*next_ip & 0xff) == 0xff)
            (*next_ip)++;
        p->bind_addr.sin_family = AF_INET;
        p->bind_addr.sin_addr.s_addr = htonl(*next_ip);
        memcpy(p->claimed.ip, &p->bind_addr.sin_addr, 4);
        /* Peers sharing an address claim ports of their own. */
        p->claimed.port = (uint16_t)(LG_CLAIMED_PORT + i % lg->opt.per_addr);
        if ((i + 1) % lg->opt.per_addr == 0)
            (*next_ip)++;
    } else {
        static const uint8_t loopback[4] = {127, 0, 0, 1};
        memcpy(p->claimed.ip, loopback, 4);
        p->claimed.port = (uint16_t)(20000 + i % 40000);
    }
    if (i < lg->opt.searchers) {
        p->slots = calloc(lg->opt.pipeline, sizeof(*p->slots));
        if (p->slots == NULL)
            return SOVA_ERR_NOMEM;
        lg_rng_seed(&p->rng, lg->opt.seed, 0x717565727900ULL + i); /* "query" */
    }
    return 0;
}

static int setup(struct loadgen *lg)
{
    const struct lg_options *o = &lg->opt;
    int len = (int)sizeof(lg->sn_addr);
    if (evutil_parse_sockaddr_port(o->supernode, (struct sockaddr *)&lg->sn_addr, &len) != 0) {
        fprintf(stderr, "sova_loadgen: --supernode wants a numeric ADDR:PORT, not %s\n",
                o->supernode);
        return -1;
    }
    lg->sn_len = (socklen_t)len;
    if (lg_words_init(&lg->words, o->vocab, o->popular, o->shared_pct, o->seed) != 0)
        return -1;
    /* Not evloop_new(): pacing needs timers on the precise clock, where
     * libevent's default follows the coarse one (a few milliseconds). */
    struct event_config *cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0) {
        event_config_free(cfg);
        return -1;
    }
    lg->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (lg->base == NULL)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* a closed socket must not kill us */
    lg->sigint = evsignal_new(lg->base, SIGINT, on_signal, lg);
    lg->sigterm = evsignal_new(lg->base, SIGTERM, on_signal, lg);
    if (lg->sigint == NULL || lg->sigterm == NULL || event_add(lg->sigint, NULL) != 0 ||
        event_add(lg->sigterm, NULL) != 0)
        return -1;
    lg->limits = wire_limits_default();
    lg->params = (struct link_params){
        .limits = &lg->limits,
        .local_role = MSG_ROLE_PEER,
        .handshake_timeout_ms = LG_HANDSHAKE_TIMEOUT_MS,
        .max_output = LG_MAX_OUTPUT_BYTES,
        .expect_supernode = true,
        .group = &lg->links,
    };
    lg->pub_recs = calloc(LG_PUBLISH_BATCH_MAX, sizeof(*lg->pub_recs));
    lg->pub_names = calloc(LG_PUBLISH_BATCH_MAX, sizeof(*lg->pub_names));
    lg->peers = calloc(o->peers, sizeof(*lg->peers));
    lg->stage_timer = evtimer_new(lg->base, on_stage_timer, lg);
    lg->pace_timer = evtimer_new(lg->base, on_pace, lg);
    lg->keepalive_timer = event_new(lg->base, -1, EV_PERSIST, on_keepalive, lg);
    lg->progress_timer = event_new(lg->base, -1, EV_PERSIST, on_progress, lg);
    if (!lg->pub_recs || !lg->pub_names || !lg->peers || !lg->stage_timer || !lg->pace_timer ||
        !lg->keepalive_timer || !lg->progress_timer)
        return -1;
    uint64_t t0 = lg_now_ns();
    uint32_t next_ip = o->source_base + 1;
    for (unsigned i = 0; i < o->peers; i++) {
        if (prepare_peer(lg, i, &next_ip) != 0)
            return -1;
    }
    lg->n_searchers = o->searchers;
    printf("setup:   %u identities in %s ready in %.2f s\n", o->peers, o->keys_dir,
           secs(t0, lg_now_ns()));
    return 0;
}

static void teardown(struct loadgen *lg)
{
    link_group_free_all(&lg->links);
    if (lg->peers != NULL) {
        for (unsigned i = 0; i < lg->opt.peers; i++) {
            SSL_free(lg->peers[i].ssl);
            free(lg->peers[i].slots);
        }
    }
    free(lg->peers);
    tls_ctx_free(lg->tls);
    for (size_t k = 0; k < LG_MAX_PHASES; k++)
        lg_samples_free(&lg->stats[k].lat);
    if (lg->stage_timer)
        event_free(lg->stage_timer);
    if (lg->pace_timer)
        event_free(lg->pace_timer);
    if (lg->keepalive_timer)
        event_free(lg->keepalive_timer);
    if (lg->progress_timer)
        event_free(lg->progress_timer);
    free(lg->pub_recs);
    free(lg->pub_names);
    lg_words_free(&lg->words);
    if (lg->sigint)
        event_free(lg->sigint);
    if (lg->sigterm)
        event_free(lg->sigterm);
    if (lg->base)
        event_base_free(lg->base);
}

static void print_result(struct loadgen *lg)
{
    double at = secs(lg->attach_t0, lg->attach_t1), pt = secs(lg->publish_t0, lg->publish_t1);
    printf("RESULT peers=%u registered=%u attach_failed=%u lost=%u attach_per_s=%.0f "
           "records=%" PRIu64 " accepted=%" PRIu64 " rejected=%" PRIu64 " publish_per_s=%.0f "
           "sn_rss_kb=%ld",
           lg->opt.peers, lg->registered, lg->attach_failed, lg->lost,
           lg->attach_t1 && at > 0 ? lg->registered / at : 0, lg->records_sent, lg->accepted,
           lg->rejected, lg->publish_t1 && pt > 0 ? (lg->accepted + lg->rejected) / pt : 0,
           lg->sn_rss_kb);
    /* The first search phase, if it ran, under the names scripts look for. */
    for (size_t k = 0; k < lg->opt.n_phases; k++) {
        struct lg_phase_stats *st = &lg->stats[k];
        if (lg->opt.phases[k].kind != LG_SEARCH || st->t1_ns == 0)
            continue;
        double s = secs(st->t0_ns, st->t1_ns);
        lg_samples_sort(&st->lat);
        printf(" searches_per_s=%.0f hits_per_search=%.2f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
               "max_us=%.1f search_errors=%" PRIu64,
               s > 0 ? st->done_in_window / s : 0,
               st->done ? (double)st->hits / (double)st->done : 0, lg_samples_pct_us(&st->lat, 50),
               lg_samples_pct_us(&st->lat, 90), lg_samples_pct_us(&st->lat, 99),
               lg_samples_pct_us(&st->lat, 100), st->errors);
        break;
    }
    printf(" failed_badly=%d\n", lg->failed_badly ? 1 : 0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct loadgen lg = {0};
    int rc = lg_parse_options(argc, argv, &lg.opt);
    if (rc != 0)
        return rc > 0 ? 0 : 2; /* --help, or a usage error */
    sova_log_set_level((enum sova_log_level)lg.opt.log_level);
    if (raise_fd_limit(lg.opt.peers + LG_FD_RESERVE) != 0) {
        fprintf(stderr, "sova_loadgen: cannot raise the open file limit\n");
        return 2;
    }
    printf("sova_loadgen: %u peers x %u files -> %s; %u searchers x %u in flight; one thread\n",
           lg.opt.peers, lg.opt.files, lg.opt.supernode, lg.opt.searchers, lg.opt.pipeline);
    fflush(stdout);
    if (setup(&lg) != 0) {
        teardown(&lg);
        return 2;
    }
    lg.stage = LG_STAGE_ATTACH;
    lg.attach_t0 = lg_now_ns();
    set_timer(lg.stage_timer, lg.opt.stage_timeout);
    dial_more(&lg);
    event_base_dispatch(lg.base);
    if (lg.stop_signal != 0)
        printf("interrupted by signal %d\n", lg.stop_signal);
    print_result(&lg);
    bool bad = lg.failed_badly;
    teardown(&lg);
    return bad ? 1 : 0;
}
