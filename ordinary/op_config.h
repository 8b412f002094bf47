/* op_config.h - sova-peer's settings and their one option table.
 *
 * Strings are owned by the struct and freed by op_settings_free().
 */
#ifndef SOVA_OP_CONFIG_H
#define SOVA_OP_CONFIG_H

#include "config.h"

#include <stdbool.h>
#include <stdint.h>

struct op_settings {
    char *state_dir;     /* identity, SQLite state, control socket */
    char *bootstrap;     /* HOST:PORT[,HOST:PORT...] of supernodes */
    char *federation_ca; /* the federation root certificate */
    char *listen;        /* HOST:PORT to accept other peers on */
    char *share;         /* shared folder */
    char *downloads;     /* where finished downloads go */
    int log_level;
    char *log_file;                /* log lines go here instead of stderr; NULL: stderr */
    char *metrics_listen;          /* HOST:PORT of the metrics endpoint; NULL: none */
    char *api_listen;              /* HOST:PORT of the HTTP API (op_api.h); NULL: none */
    bool api_allow_remote;         /* the HTTP API may listen on a non-loopback address */
    char *api_tls_cert;            /* PEM chain: the API and UI over https (NULL: http) */
    char *api_tls_key;             /* its private key */
    bool ui;                       /* the web UI at "/" of the API (op_ui.h) */
    uint64_t max_frame;            /* bytes */
    uint64_t handshake_timeout_ms; /* TLS handshake + HELLO */
    /* what strangers' connections may hold (common/link.h, docs/LIMITS.md) */
    uint64_t max_handshakes;     /* accepted connections in TLS + HELLO, fair per prefix */
    uint64_t max_conns_per_ip;   /* accepted connections from one address (IPv6: /64) */
    uint64_t max_buffered_bytes; /* bytes of incomplete frames, all links */
    uint64_t max_buffered_bytes_per_prefix; /* ... of the links from one /24 or /56 */
    uint64_t max_buffered_bytes_per_id;     /* ... of the links of one identity */
    uint64_t rescan_interval_s;             /* share folder rescan period */
    uint64_t upload_limit_kbps;             /* 0 = unlimited */
    uint64_t download_limit_kbps;           /* 0 = unlimited */
    uint64_t alt_upload_limit_kbps;         /* the alternative pair ("turtle") */
    uint64_t alt_download_limit_kbps;
    char *alt_limits_schedule;  /* "mon-fri 09:00-17:00" (op_bw.h); NULL: none */
    bool upnp;                  /* ask the router for a port mapping */
    uint64_t upnp_lease_s;      /* lease asked for */
    uint64_t upnp_check_s;      /* is the mapping still there? this often */
    uint64_t direct_timeout_ms; /* connection ladder (docs/NAT.md) */
    uint64_t reversal_timeout_ms;
    uint64_t punch_timeout_ms;
    uint64_t relay_timeout_ms;
    char *ways;         /* "direct,reversal,holepunch,relay": the ways a download may take */
    unsigned ways_mask; /* the same as bits 1 << enum nat_path (op_settings_ways) */
    /* upload slots (docs/CREDITS.md): peers served at once, and how long
     * one waits at most */
    uint64_t upload_slots;
    uint64_t upload_max_wait_s;
    /* the chunk size new downloads ask sources for, KiB: a power of two,
     * 64..16384 (docs/TRANSFERS.md) */
    uint64_t download_chunk_kib;
    /* downloads running at once, the rest queued (docs/TRANSFERS.md); 0: no limit */
    uint64_t max_active_downloads;
    /* run by /bin/sh -c when a download completes (op_hook.h); NULL: none */
    char *on_complete;
    uint64_t on_complete_timeout_s; /* then it is killed; 0: never */
};

extern const struct config_schema op_config_schema;

/* What `sova-peer join` writes in the state directory: the federation's
 * root certificate and the options it gives (bootstrap, federation-ca). */
#define OP_JOINED_DIR  "federation"
#define OP_JOINED_CONF "federation/joined.conf"
#define OP_JOINED_CA   "federation/root.crt"

/* Defaults, the --config file (without one: the user's peer.conf if there
 * is one, else /etc/sova/peer.conf; ordinary/op_paths.h), then the command
 * line, into s. Then what is still unset: state-dir and downloads from the
 * XDG folders, bootstrap and federation-ca from what `sova-peer join`
 * imported into the state directory. */
int op_settings_load(struct op_settings *s, int argc, char *const *argv, char *err, size_t errlen);
void op_settings_free(struct op_settings *s);
/* Parse s->ways into *mask (bits 1 << enum nat_path); SOVA_ERR_CONFIG with
 * err naming a word that is not a way. */
int op_settings_ways(const struct op_settings *s, unsigned *mask, char *err, size_t errlen);

#endif
