/* loadgen.h - private header of sova_loadgen (bench/, not a library).
 *
 * sova_loadgen plays many ordinary peers against one running sova-supernode
 * over real TLS 1.3 links made with common/link.h, so it speaks exactly the
 * wire protocol of sova-peer. The files:
 *   sova_loadgen.c   the run (attach -> publish -> measured phases -> hold)
 *                    and its reports; loadgen_options.c its command line;
 *   loadgen_peer.c   one peer's link: REGISTER, PUBLISH batches, SEARCH /
 *                    LOCATE / PING requests in flight, keep-alive;
 *   loadgen_words.c  deterministic randomness, the Zipf vocabulary, file
 *                    records and queries, latency percentiles.
 * Everything runs on one libevent loop in one thread; nothing blocks after
 * the identities are loaded.
 */
#ifndef SOVA_BENCH_LOADGEN_H
#define SOVA_BENCH_LOADGEN_H

#include "link.h"
#include "msg.h"
#include "tls.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_MAX_PHASES        8
#define LG_PUBLISH_BATCH_MAX 512 /* records per PUBLISH frame */
#define LG_NAME_MAX          96  /* bytes of a generated file name, NUL included */
#define LG_QUERY_WORDS_MAX   2

/* ---- deterministic randomness and the vocabulary (loadgen_words.c) ---------- */
struct lg_rng {
    uint64_t state;
};

void lg_rng_seed(struct lg_rng *r, uint64_t seed, uint64_t stream);
uint64_t lg_rng_next(struct lg_rng *r);
double lg_rng_unit(struct lg_rng *r); /* [0, 1) */

/* Zipf (s = 1) over ranks 0..n-1. */
struct lg_zipf {
    size_t n;
    double *cdf;
};
int lg_zipf_init(struct lg_zipf *z, size_t n);
void lg_zipf_free(struct lg_zipf *z);
size_t lg_zipf_draw(const struct lg_zipf *z, struct lg_rng *r);

struct lg_words {
    struct lg_zipf vocab;   /* word ranks: "w<rank+1>" */
    struct lg_zipf popular; /* which popular file a shared record copies */
    uint64_t seed;
    unsigned shared_pct; /* records that copy a popular file (so hits have several sources) */
};
int lg_words_init(struct lg_words *w, size_t vocab, size_t popular, unsigned shared_pct,
                  uint64_t seed);
void lg_words_free(struct lg_words *w);
/* Record j of peer i: the same bytes on every run with the same seed. name
 * must hold LG_NAME_MAX bytes; rec->name points into it. */
void lg_words_record(const struct lg_words *w, unsigned peer, unsigned j,
                     struct msg_publish_record *rec, char *name);
/* 1..LG_QUERY_WORDS_MAX words drawn like names' words; returns the count.
 * bufs[k] holds word k (16 bytes each); kw[k] points at it. */
size_t lg_words_query(const struct lg_words *w, struct lg_rng *r, char bufs[][16],
                      struct wire_str *kw);

/* Latency samples of one phase, nanoseconds. */
struct lg_samples {
    uint32_t *ns;
    size_t n, cap;
};
void lg_samples_add(struct lg_samples *s, uint64_t ns);
void lg_samples_sort(struct lg_samples *s);
/* Percentile p in [0, 100] of sorted samples, microseconds; 0 for none. */
double lg_samples_pct_us(const struct lg_samples *s, double p);
void lg_samples_free(struct lg_samples *s);

/* ---- options --------------------------------------------------------------- */
enum lg_kind { LG_SEARCH, LG_LOCATE, LG_PING, LG_IDLE };

struct lg_phase_spec {
    enum lg_kind kind;
    double seconds;
    double rate;   /* requests per second offered; 0 = as fast as answers come */
    bool rate_pct; /* rate is a percentage of the last unpaced phase of this kind */
};

struct lg_options {
    const char *supernode;
    const char *federation_ca;
    const char *keys_dir;
    unsigned peers, files, searchers, pipeline;
    unsigned connect_window; /* TLS handshakes in flight while attaching */
    unsigned publish_window; /* PUBLISH frames in flight per peer */
    unsigned batch;          /* records per PUBLISH */
    unsigned max_results;
    unsigned ping_batch; /* PINGs per LOCATE marker in ping phases */
    unsigned vocab, popular, shared_pct;
    uint64_t seed;
    double duration, rate;
    double hold;          /* seconds to stay attached after the phases */
    double stage_timeout; /* seconds attach or publish may take */
    struct lg_phase_spec phases[LG_MAX_PHASES];
    size_t n_phases;
    bool has_source_base;
    uint32_t source_base;   /* host order */
    unsigned per_addr;      /* peers sharing one source address (1) */
    bool publish_on_attach; /* publish as soon as registered: attach = TLS..PUBLISH_ACK */
    long sn_pid;            /* 0: unknown */
    bool progress;          /* a line a second while a phase runs */
    int log_level;
};

/* loadgen_options.c: 0, 1 after --help (exit 0), -1 on a usage error
 * (already explained on stderr). */
int lg_parse_options(int argc, char **argv, struct lg_options *o);

/* ---- peers (loadgen_peer.c) ---------------------------------------------------- */
enum lg_peer_state {
    LG_PEER_IDLE,
    LG_PEER_DIALING,
    LG_PEER_OPEN,
    LG_PEER_REGISTERED,
    LG_PEER_FAILED, /* never registered */
    LG_PEER_LOST,   /* registered, then the link closed */
};

struct lg_slot {
    bool used;
    uint64_t seq;      /* order of sending: LOCATE answers come back in order */
    uint64_t query_id; /* SEARCH */
    uint64_t t_ns;
    uint32_t hits;
    unsigned phase;
};

struct loadgen;

struct lg_peer {
    struct loadgen *lg;
    unsigned index;
    struct link *link;
    SSL *ssl; /* until dialed */
    uint8_t id[NODE_ID_LEN];
    enum lg_peer_state state;
    struct sockaddr_in bind_addr; /* when --source-base */
    struct wire_addr claimed;     /* the address it says it listens on */
    unsigned files_sent, batches_out;
    bool published;
    struct lg_slot *slots; /* searchers: pipeline entries */
    unsigned busy;
    uint64_t seq;
    struct lg_rng rng;
};

/* Start the TLS connection; false (peer failed, nothing to wait for) if it
 * could not even start. */
bool lg_peer_dial(struct lg_peer *p);
/* Queue PUBLISH frames up to the window. */
void lg_peer_publish_more(struct lg_peer *p);
/* Send one request of the running phase's kind in a free slot: false if
 * there is none or the peer cannot send. */
bool lg_peer_send_op(struct lg_peer *p);
void lg_peer_ping(struct lg_peer *p);
/* Forget requests still in flight (at the end of a phase's drain). */
void lg_peer_drop_slots(struct lg_peer *p);

/* ---- the run (sova_loadgen.c) -------------------------------------------------- */
enum lg_stage {
    LG_STAGE_ATTACH,
    LG_STAGE_PUBLISH,
    LG_STAGE_MEASURE,
    LG_STAGE_DRAIN,
    LG_STAGE_HOLD
};

struct lg_phase_stats {
    uint64_t sent, done, done_in_window, hits, frames, errors, unanswered;
    struct lg_samples lat;
    uint64_t t0_ns, t1_ns;
    double cpu0, cpu1;       /* our own CPU seconds */
    double sn_cpu0, sn_cpu1; /* the supernode's, with --sn-pid */
    double busy0, busy1;     /* the whole machine's */
    double offered;          /* requests per second asked for; 0 = unpaced */
};

struct loadgen {
    struct lg_options opt;
    struct event_base *base; /* ours, with precise timers */
    struct event *sigint, *sigterm;
    int stop_signal; /* that stopped the run, 0 if none */
    struct wire_limits limits;
    struct link_params params;
    struct link_group links;
    struct sockaddr_storage sn_addr;
    socklen_t sn_len;
    struct lg_peer *peers;
    struct tls_ctx *tls; /* the client context every peer's SSL comes from */
    struct lg_words words;
    struct msg_publish_record *pub_recs; /* LG_PUBLISH_BATCH_MAX, scratch for one PUBLISH */
    char (*pub_names)[LG_NAME_MAX];
    enum lg_stage stage;
    bool failed_badly;
    /* attach */
    unsigned next_dial, dialing, registered, attach_failed, lost;
    uint64_t attach_t0, attach_t1;
    unsigned keepalive_s;
    unsigned keepalive_cursor; /* next peer to PING: keep-alives are spread evenly */
    double keepalive_credit;   /* PINGs due and not sent yet */
    /* publish */
    unsigned published_peers;
    uint64_t records_sent, accepted, rejected, publish_errors;
    uint16_t first_reject_code;
    uint64_t publish_t0, publish_t1;
    long sn_rss_kb; /* after publish, with --sn-pid */
    /* measured phases */
    size_t phase; /* index into opt.phases of the running one */
    struct lg_phase_stats stats[LG_MAX_PHASES];
    uint64_t next_query_id;
    uint64_t inflight; /* requests sent and not yet answered, all peers */
    double pace_credit;
    uint64_t pace_last_ns;
    unsigned pace_cursor;
    unsigned n_searchers;
    /* timers */
    struct event *stage_timer, *pace_timer, *keepalive_timer, *progress_timer;
    uint64_t prog_ns, prog_done; /* --progress: the last line's figures */
    double prog_cpu, prog_sn;
};

uint64_t lg_now_ns(void);
/* A request of phase `phase` finished (answer received) with hits hits. */
void lg_op_done(struct loadgen *lg, unsigned phase, uint64_t t_send_ns, uint32_t hits,
                unsigned frames);
void lg_op_failed(struct loadgen *lg, unsigned phase);
/* Peer events that move the run forward. */
void lg_peer_registered(struct loadgen *lg, struct lg_peer *p, unsigned keepalive_s);
/* The supernode told a peer its keep-alive (REGISTERED, first or again):
 * every peer PINGs at that interval from now on (they are all told the
 * same once the peer count settles). */
void lg_keepalive_told(struct loadgen *lg, unsigned keepalive_s);
void lg_peer_gone(struct loadgen *lg, struct lg_peer *p, bool was_registered);
void lg_peer_published(struct loadgen *lg, struct lg_peer *p);
/* A slot of p became free during an unpaced phase. */
void lg_slot_free(struct loadgen *lg, struct lg_peer *p);

#endif
