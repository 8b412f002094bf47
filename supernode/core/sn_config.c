#include "sn_config.h"
#include "cfgcheck.h"
#include "err.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define OPT(n, t, def, lo, hi, field, h)                                                           \
    {                                                                                              \
        .name = n, .type = t, .default_value = def, .min = lo, .max = hi,                          \
        .offset = offsetof(struct sn_settings, field), .help = h                                   \
    }

static const struct config_option sn_options[] = {
    OPT("listen", CONFIG_ENDPOINT, "0.0.0.0:7070", 0, 0, listen,
        "address and port to accept peers and supernodes on"),
    OPT("cert", CONFIG_PATH, NULL, 0, 0, cert,
        "supernode certificate (from deploy/sova-federation issue)"),
    OPT("key", CONFIG_PATH, NULL, 0, 0, key, "supernode private key, mode 0600"),
    OPT("federation-ca", CONFIG_PATH, NULL, 0, 0, federation_ca,
        "federation root certificate (root.crt)"),
    OPT("state-dir", CONFIG_PATH, "/var/lib/sova-supernode", 0, 0, state_dir,
        "directory for persistent state"),
    OPT("control", CONFIG_PATH, NULL, 0, 0, control,
        "control socket (default: STATE-DIR/control.sock)"),
    OPT("log-level", CONFIG_LOGLEVEL, "info", 0, 0, log_level, "error, warn, info or debug"),
    OPT("log-file", CONFIG_PATH, NULL, 0, 0, log_file,
        "append log lines to this file instead of stderr; reopened on SIGHUP"),
    OPT("metrics-listen", CONFIG_ENDPOINT, NULL, 0, 0, metrics_listen,
        "serve Prometheus metrics at http://ADDR:PORT/metrics (default: off)"),
    OPT("max-frame", CONFIG_UINT, "1048576", 4096, 16777216, max_frame,
        "largest frame accepted or sent, bytes"),
    OPT("handshake-timeout-ms", CONFIG_UINT, "10000", 100, 600000, handshake_timeout_ms,
        "time allowed for TLS handshake and HELLO"),
    OPT("keepalive-s", CONFIG_UINT, "30", 1, 3600, keepalive_s,
        "peers are told to PING at least this often, seconds"),
    OPT("peer-timeout-s", CONFIG_UINT, "90", 2, 86400, peer_timeout_s,
        "a peer silent this long is dropped and its files leave the index, seconds"),
    OPT("max-pings-per-s", CONFIG_UINT, "800", 0, 1000000, max_pings_per_s,
        "keep-alive budget: beyond it the interval (and timeout) told to peers grows "
        "with their number; 0: always keepalive-s"),
    OPT("max-files-per-peer", CONFIG_UINT, "5000", 1, 1000000, max_files_per_peer,
        "file records one peer may publish"),
    OPT("max-name-bytes-per-peer", CONFIG_UINT, "262144", 256, 67108864, max_name_bytes_per_peer,
        "bytes of file names one peer may publish"),
    OPT("max-records", CONFIG_UINT, "4000000", 1, 2147483632, max_records,
        "file records in the index, of all attached peers"),
    OPT("max-records-per-prefix", CONFIG_UINT, "100000", 0, 2147483632, max_records_per_prefix,
        "file records of all the peers attached from one address prefix (/24, /56), whatever "
        "their identities; beyond, PUBLISH gets ERROR(limit reached) (0: no cap)"),
    OPT("max-results", CONFIG_UINT, "100", 1, 256, max_results, "hits returned per search"),
    OPT("peers", CONFIG_ENDPOINTS, NULL, 0, 0, peers,
        "seed supernodes of the federation, HOST:PORT[,HOST:PORT...]"),
    OPT("max-peers", CONFIG_UINT, "100000", 1, 10000000, max_peers,
        "attached peers before new ones are pointed to other supernodes"),
    OPT("summary-interval-ms", CONFIG_UINT, "10000", 100, 3600000, summary_interval_ms,
        "the keyword summary gossiped to other supernodes is rebuilt at most this often"),
    OPT("dialback-timeout-ms", CONFIG_UINT, "3000", 100, 60000, dialback_timeout_ms,
        "one dial-back probe (TCP connect, TLS, HELLO) must finish within this"),
    OPT("relay", CONFIG_BOOL, "yes", 0, 0, relay,
        "offer relay circuits to peers that cannot reach each other"),
    OPT("relay-max-circuits", CONFIG_UINT, "1024", 0, 1000000, relay_max_circuits,
        "relay circuits through this supernode at once"),
    OPT("relay-max-peer-circuits", CONFIG_UINT, "16", 0, 65536, relay_max_peer_circuits,
        "relay circuits one attached peer may have at once"),
    OPT("relay-max-prefix-circuits", CONFIG_UINT, "256", 0, 1000000, relay_max_prefix_circuits,
        "relay circuits the peers of one address prefix (/24, /56) may have at once; when "
        "relay-max-circuits is full, a newcomer from a prefix holding fewer displaces the least "
        "recently active circuit of the prefix holding the most (0: no cap)"),
    OPT("relay-idle-timeout-s", CONFIG_UINT, "60", 0, 86400, relay_idle_timeout_s,
        "a relay circuit that carried no data either way this long is closed; PINGs do not count "
        "(0: never)"),
    OPT("relay-max-bytes", CONFIG_UINT, "0", 0, UINT64_MAX / 2, relay_max_bytes,
        "bytes one relay circuit may carry, both ways (0: no limit)"),
    OPT("relay-max-duration-s", CONFIG_UINT, "3600", 0, 31536000, relay_max_duration_s,
        "seconds one relay circuit may stay open (0: no limit)"),
    OPT("relay-peer-kbps", CONFIG_UINT, "0", 0, 100000000, relay_peer_kbps,
        "relay bandwidth of one attached peer, kilobytes per second (0: no limit)"),
    OPT("relay-total-kbps", CONFIG_UINT, "0", 0, 100000000, relay_total_kbps,
        "relay bandwidth of this supernode, kilobytes per second (0: no limit)"),
    OPT("max-handshakes", CONFIG_UINT, "1024", 1, 1000000, max_handshakes,
        "TLS handshakes in progress at once, shared fairly by address prefix (/24, /56): when "
        "all are taken the oldest of the prefix holding the most gives way to a newcomer from "
        "another, else the newcomer is closed (slow-loris)"),
    OPT("federation-handshakes", CONFIG_UINT, "64", 0, 100000, federation_handshakes,
        "handshake slots beyond max-handshakes for supernodes only (addresses that showed a "
        "federation certificate or that the federation lists)"),
    OPT("max-unregistered", CONFIG_UINT, "4096", 1, 10000000, max_unregistered,
        "peers' links through TLS and HELLO that have not sent REGISTER yet, shared fairly by "
        "address prefix: when all are taken the oldest of the prefix holding the most is closed "
        "for a newcomer from another, else the newcomer is closed"),
    OPT("register-timeout-s", CONFIG_UINT, "30", 1, 3600, register_timeout_s,
        "a peer's link that has not sent REGISTER this long after its HELLO is closed, seconds"),
    OPT("max-conns-per-ip", CONFIG_UINT, "64", 0, 1000000, max_conns_per_ip,
        "connections from one address, an IPv6 /64 counting as one (0: no limit)"),
    OPT("max-buffered-bytes", CONFIG_UINT, "268435456", 0, UINT64_MAX / 2, max_buffered_bytes,
        "bytes of incomplete frames all links may hold; when short, the link holding the most "
        "in the prefix holding the most is closed (0: no limit)"),
    OPT("max-buffered-bytes-per-prefix", CONFIG_UINT, "33554432", 0, UINT64_MAX / 2,
        max_buffered_bytes_per_prefix,
        "bytes of incomplete frames the links from one /24 or /56 may hold; beyond, the link "
        "is closed with ERROR(limit reached) (0: no cap; at least 2 frames)"),
    OPT("max-buffered-bytes-per-id", CONFIG_UINT, "8388608", 0, UINT64_MAX / 2,
        max_buffered_bytes_per_id,
        "bytes of incomplete frames the links of one identity may hold (0: no cap; at least 2 "
        "frames)"),
    OPT("max-frames-per-s", CONFIG_UINT, "5000", 0, 10000000, max_frames_per_s,
        "frames a second one peer may send; beyond, its link is read more slowly (0: no limit)"),
    OPT("publish-rate", CONFIG_UINT, "2000", 1, 10000000, publish_rate,
        "PUBLISH records a second one peer may send, in bursts of max-files-per-peer"),
    OPT("search-rate", CONFIG_UINT, "20", 1, 1000000, search_rate,
        "SEARCHes a second one peer may send, in bursts of twice that"),
    OPT("relay-open-timeout-ms", CONFIG_UINT, "10000", 100, 600000, relay_open_timeout_ms,
        "the far end of a new relay circuit must accept it within this"),
    OPT("ledger-replicas", CONFIG_UINT, "3", 1, 8, ledger_replicas,
        "supernodes that hold each peer's credit record; the same on every supernode"),
    OPT("ledger-max-records", CONFIG_UINT, "100000", 1, 100000000, ledger_max_records,
        "credit records this supernode holds at most; new ones beyond are dropped"),
    OPT("credit-cap-mb", CONFIG_UINT, "1024", 1, 16777216, credit_cap_mb,
        "the most credit one peer has as seen by any other, MiB"),
    OPT("relay-credit-floor-pct", CONFIG_UINT, "20", 0, 100, relay_credit_floor_pct,
        "share of relay-total-kbps split equally among relaying peers; the rest goes by credit"),
};

const struct config_schema sn_config_schema = {
    .section = "supernode",
    .options = sn_options,
    .count = sizeof(sn_options) / sizeof(sn_options[0]),
};

int sn_settings_load(struct sn_settings *s, int argc, char *const *argv, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    return config_load_argv(&sn_config_schema, s, argc, argv, err, errlen);
}

/* The files a supernode cannot run without. */
static const struct {
    size_t offset;
    const char *name;
} sn_required[] = {
    {offsetof(struct sn_settings, cert), "cert"},
    {offsetof(struct sn_settings, key), "key"},
    {offsetof(struct sn_settings, federation_ca), "federation-ca"},
};

#define SN_N_REQUIRED (sizeof(sn_required) / sizeof(sn_required[0]))

static const char *required_path(const struct sn_settings *s, size_t i)
{
    return *(char *const *)((const char *)s + sn_required[i].offset);
}

int sn_settings_check(const struct sn_settings *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < SN_N_REQUIRED; i++) {
        if (required_path(s, i) == NULL) {
            snprintf(err, errlen, "option --%s is required", sn_required[i].name);
            return SOVA_ERR_CONFIG;
        }
    }
    return 0;
}

void sn_settings_check_all(const struct sn_settings *s, struct cfgcheck *c)
{
    for (size_t i = 0; i < SN_N_REQUIRED; i++)
        if (required_path(s, i) == NULL)
            cfgcheck_add(c, "option --%s is required", sn_required[i].name);
    if (s->cert != NULL && s->key != NULL)
        cfgcheck_identity(c, s->cert, s->key, s->federation_ca);
    else if (s->federation_ca != NULL)
        cfgcheck_root(c, s->federation_ca);
    cfgcheck_listen(c, "listen", s->listen, NULL);
    if (s->metrics_listen != NULL)
        cfgcheck_listen(c, "metrics-listen", s->metrics_listen, NULL);
    cfgcheck_state_dir(c, "state-dir", s->state_dir);
    if (s->log_file != NULL)
        cfgcheck_log_file(c, s->log_file);
}

void sn_settings_check_files(const struct sn_settings *s, struct cfgcheck *c)
{
    for (size_t i = 0; i < SN_N_REQUIRED; i++)
        if (required_path(s, i) != NULL)
            cfgcheck_exists(c, sn_required[i].name, required_path(s, i));
}

void sn_settings_free(struct sn_settings *s)
{
    config_free(&sn_config_schema, s);
}

struct link_budget_config sn_settings_link_budget(const struct sn_settings *s)
{
    return (struct link_budget_config){
        .max_handshakes = (unsigned)s->max_handshakes,
        .reserved_handshakes = (unsigned)s->federation_handshakes,
        .max_conns_per_ip = (unsigned)s->max_conns_per_ip,
        .max_buffered = s->max_buffered_bytes,
        .max_buffered_prefix = s->max_buffered_bytes_per_prefix,
        .max_buffered_id = s->max_buffered_bytes_per_id,
        .max_frame = (size_t)s->max_frame,
    };
}
