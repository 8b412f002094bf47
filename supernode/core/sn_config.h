/* sn_config.h - sova-supernode's settings and their one option table.
 *
 * Every limit and timer of the supernode is a named option here, with its
 * default, bounds and help; docs/CONFIG.md lists them. Strings are owned by
 * the struct and freed by sn_settings_free().
 */
#ifndef SOVA_SN_CONFIG_H
#define SOVA_SN_CONFIG_H

#include "config.h"
#include "link.h"

#include <stdbool.h>
#include <stdint.h>

struct sn_settings {
    char *listen;        /* HOST:PORT to accept peers and supernodes on */
    char *cert;          /* certificate issued by deploy/sova-federation */
    char *key;           /* its private key (mode 0600) */
    char *federation_ca; /* the federation root certificate */
    char *state_dir;     /* persistent state */
    char *control;       /* control socket path; default <state-dir>/control.sock */
    int log_level;
    char *log_file;                /* log lines go here instead of stderr; NULL: stderr */
    char *metrics_listen;          /* HOST:PORT of the metrics endpoint; NULL: none */
    uint64_t max_frame;            /* bytes */
    uint64_t handshake_timeout_ms; /* TLS handshake + HELLO */
    uint64_t keepalive_s;          /* peers PING at least this often */
    uint64_t peer_timeout_s;       /* a peer silent this long is dropped */
    uint64_t max_pings_per_s;      /* keep-alive budget (sn_keepalive.h); 0: none */
    uint64_t max_files_per_peer;   /* records one peer may publish */
    uint64_t max_name_bytes_per_peer;
    uint64_t max_records;            /* records in the index, all peers */
    uint64_t max_records_per_prefix; /* ... of the peers attached from one /24 or /56 */
    uint64_t max_results;            /* hits per search */
    char *peers;                     /* seed supernodes: HOST:PORT[,HOST:PORT...] */
    uint64_t max_peers;              /* attached peers before new ones are turned away */
    uint64_t summary_interval_ms;    /* keyword summary rebuilt at most this often */
    /* reachability and relaying (docs/NAT.md) */
    uint64_t dialback_timeout_ms;       /* one dial-back probe: TCP + TLS + HELLO */
    bool relay;                         /* offer relay circuits */
    uint64_t relay_max_circuits;        /* circuits through this supernode at once */
    uint64_t relay_max_peer_circuits;   /* circuits one attached peer may have */
    uint64_t relay_max_prefix_circuits; /* circuits of the peers of one /24 or /56, 0 = no cap */
    uint64_t relay_idle_timeout_s;      /* a circuit without RELAY_DATA this long closes */
    uint64_t relay_max_bytes;           /* bytes one circuit may carry, 0 = no limit */
    uint64_t relay_max_duration_s;      /* seconds one circuit may live, 0 = no limit */
    uint64_t relay_peer_kbps;           /* relay bandwidth of one attached peer, 0 = no limit */
    uint64_t relay_total_kbps;          /* relay bandwidth of this supernode, 0 = no limit */
    uint64_t relay_open_timeout_ms;     /* the far end must accept a circuit within this */
    /* abuse limits (docs/LIMITS.md) */
    uint64_t max_handshakes;        /* TLS handshakes in progress at once, fair per prefix */
    uint64_t federation_handshakes; /* more, for supernodes' addresses only */
    uint64_t max_conns_per_ip;      /* connections from one address (IPv6: one /64) */
    uint64_t max_buffered_bytes;    /* bytes of incomplete frames, all links */
    uint64_t max_buffered_bytes_per_prefix; /* ... of the links from one /24 or /56 */
    uint64_t max_buffered_bytes_per_id;     /* ... of the links of one identity */
    uint64_t max_unregistered;              /* peers' links through HELLO waiting for REGISTER */
    uint64_t register_timeout_s;            /* ... closed after this */
    uint64_t max_frames_per_s;              /* frames a second one peer may send */
    uint64_t publish_rate;                  /* PUBLISH records a second per peer */
    uint64_t search_rate;                   /* SEARCHes a second per peer */
    /* credit (docs/CREDITS.md) */
    uint64_t ledger_replicas;        /* supernodes holding each credit record (R) */
    uint64_t ledger_max_records;     /* credit records this supernode holds at most */
    uint64_t credit_cap_mb;          /* the most credit one peer has as seen by another, MiB */
    uint64_t relay_credit_floor_pct; /* relay-total-kbps shared equally; the rest by credit */
};

extern const struct config_schema sn_config_schema;

/* Load defaults, the --config file and the command line into s. */
int sn_settings_load(struct sn_settings *s, int argc, char *const *argv, char *err, size_t errlen);
/* Check that the options needed to run are present; err names the first
 * missing one. */
int sn_settings_check(const struct sn_settings *s, char *err, size_t errlen);
/* Everything --check-config checks (common/cfgcheck.h): the options
 * required, the certificate, key and federation root as the daemon loads
 * them (key mode, key matching the certificate, the chain to the root),
 * the listen addresses, the state folder, the log file. Every problem goes
 * into c. Blocking file-system calls: main only. */
struct cfgcheck;
void sn_settings_check_all(const struct sn_settings *s, struct cfgcheck *c);
/* What --print-config checks: the certificate, key and federation root
 * named exist. */
void sn_settings_check_files(const struct sn_settings *s, struct cfgcheck *c);
void sn_settings_free(struct sn_settings *s);
/* The links' budget (common/link.h) the settings ask for. */
struct link_budget_config sn_settings_link_budget(const struct sn_settings *s);

#endif
