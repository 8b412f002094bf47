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
    bool upnp;                              /* ask the router for a port mapping */
    uint64_t upnp_lease_s;                  /* lease asked for */
    uint64_t upnp_check_s;                  /* is the mapping still there? this often */
    uint64_t direct_timeout_ms;             /* connection ladder (docs/NAT.md) */
    uint64_t reversal_timeout_ms;
    uint64_t relay_timeout_ms;
    char *ways;         /* "direct,reversal,relay": the ways a download may take */
    unsigned ways_mask; /* the same as bits 1 << enum nat_path (op_settings_ways) */
    /* upload slots (docs/CREDITS.md): peers served at once, and how long
     * one waits at most */
    uint64_t upload_slots;
    uint64_t upload_max_wait_s;
    /* the chunk size new downloads ask sources for, KiB: a power of two,
     * 64..16384 (docs/TRANSFERS.md) */
    uint64_t download_chunk_kib;
};

extern const struct config_schema op_config_schema;

/* Defaults, the --config file, then the command line, into s. */
int op_settings_load(struct op_settings *s, int argc, char *const *argv, char *err, size_t errlen);
void op_settings_free(struct op_settings *s);
/* Parse s->ways into *mask (bits 1 << enum nat_path); SOVA_ERR_CONFIG with
 * err naming a word that is not a way. */
int op_settings_ways(const struct op_settings *s, unsigned *mask, char *err, size_t errlen);

#endif
