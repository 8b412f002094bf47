#include "op_config.h"

#include "err.h"
#include "nat_path.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT(n, t, def, lo, hi, field, h)                                                           \
    {                                                                                              \
        .name = n, .type = t, .default_value = def, .min = lo, .max = hi,                          \
        .offset = offsetof(struct op_settings, field), .help = h                                   \
    }

static const struct config_option op_options[] = {
    OPT("state-dir", CONFIG_PATH, NULL, 0, 0, state_dir,
        "identity, state and control socket (default: $XDG_STATE_HOME/sova or "
        "~/.local/state/sova)"),
    OPT("bootstrap", CONFIG_ENDPOINTS, NULL, 0, 0, bootstrap, "supernode(s) to attach to"),
    OPT("federation-ca", CONFIG_PATH, NULL, 0, 0, federation_ca,
        "federation root certificate supernodes must chain to"),
    OPT("listen", CONFIG_ENDPOINT, "0.0.0.0:7071", 0, 0, listen,
        "address and port to accept other peers on"),
    OPT("share", CONFIG_PATH, NULL, 0, 0, share, "folder whose files are shared"),
    OPT("downloads", CONFIG_PATH, NULL, 0, 0, downloads, "folder for finished downloads"),
    OPT("log-level", CONFIG_LOGLEVEL, "info", 0, 0, log_level, "error, warn, info or debug"),
    OPT("log-file", CONFIG_PATH, NULL, 0, 0, log_file,
        "append log lines to this file instead of stderr; reopened on SIGHUP"),
    OPT("metrics-listen", CONFIG_ENDPOINT, NULL, 0, 0, metrics_listen,
        "serve Prometheus metrics at http://ADDR:PORT/metrics (default: off)"),
    OPT("max-frame", CONFIG_UINT, "1048576", 4096, 16777216, max_frame,
        "largest frame accepted or sent, bytes"),
    OPT("handshake-timeout-ms", CONFIG_UINT, "10000", 100, 600000, handshake_timeout_ms,
        "time allowed for TLS handshake and HELLO"),
    OPT("max-handshakes", CONFIG_UINT, "64", 1, 100000, max_handshakes,
        "connections from other peers in their TLS handshake at once, shared fairly by address "
        "prefix (/24, /56); beyond, the oldest of the prefix holding the most gives way to a "
        "newcomer from another, else the newcomer is closed"),
    OPT("max-conns-per-ip", CONFIG_UINT, "16", 0, 100000, max_conns_per_ip,
        "connections from one address, an IPv6 /64 counting as one (0: no limit)"),
    OPT("max-buffered-bytes", CONFIG_UINT, "67108864", 0, UINT64_MAX / 2, max_buffered_bytes,
        "bytes of incomplete frames all links may hold; when short, the link holding the most "
        "in the prefix holding the most is closed (0: no limit)"),
    OPT("max-buffered-bytes-per-prefix", CONFIG_UINT, "16777216", 0, UINT64_MAX / 2,
        max_buffered_bytes_per_prefix,
        "bytes of incomplete frames the links from one /24 or /56 may hold (0: no cap; at "
        "least 2 frames)"),
    OPT("max-buffered-bytes-per-id", CONFIG_UINT, "8388608", 0, UINT64_MAX / 2,
        max_buffered_bytes_per_id,
        "bytes of incomplete frames the links of one identity may hold (0: no cap; at least 2 "
        "frames)"),
    OPT("rescan-interval-s", CONFIG_UINT, "60", 1, 86400, rescan_interval_s,
        "how often the share folder is checked for added, changed or removed files, seconds"),
    OPT("upload-limit-kbps", CONFIG_UINT, "0", 0, 100000000, upload_limit_kbps,
        "total upload rate to other peers, kilobytes per second (0: unlimited)"),
    OPT("upnp", CONFIG_BOOL, "yes", 0, 0, upnp,
        "ask the home router for a port mapping (UPnP IGD, else NAT-PMP)"),
    OPT("upnp-lease-s", CONFIG_UINT, "3600", 60, 604800, upnp_lease_s,
        "lease asked for the port mapping, renewed at half, seconds"),
    OPT("upnp-check-s", CONFIG_UINT, "60", 1, 86400, upnp_check_s,
        "how often the router is asked whether the mapping still exists, seconds"),
    OPT("direct-timeout-ms", CONFIG_UINT, "3000", 100, 600000, direct_timeout_ms,
        "a direct connection to a source must be up (TCP, TLS, HELLO) within this"),
    OPT("reversal-timeout-ms", CONFIG_UINT, "5000", 100, 600000, reversal_timeout_ms,
        "a source asked to connect to us (reversal) must do so within this"),
    OPT("ways", CONFIG_STRING, "direct,reversal,relay", 0, 0, ways,
        "ways a download may reach a source, cheapest first: any of direct, reversal, relay "
        "(relay alone: no direct connection; sources still learn our ID and can look up our "
        "address, so it is not anonymity)"),
    OPT("relay-timeout-ms", CONFIG_UINT, "10000", 100, 600000, relay_timeout_ms,
        "a relay circuit to a source must open within this"),
    OPT("upload-slots", CONFIG_UINT, "4", 1, 1024, upload_slots,
        "peers served at once; the others wait, the one with the most credit first"),
    OPT("upload-max-wait-s", CONFIG_UINT, "20", 1, 3600, upload_max_wait_s,
        "a waiting peer is served next, whatever its credit, after waiting this long"),
    OPT("download-chunk-kib", CONFIG_UINT, "1024", 64, 16384, download_chunk_kib,
        "chunk size new downloads ask sources for, KiB: a power of two; each chunk is checked "
        "against the file ID"),
};

const struct config_schema op_config_schema = {
    .section = "peer",
    .options = op_options,
    .count = sizeof(op_options) / sizeof(op_options[0]),
};

int op_settings_load(struct op_settings *s, int argc, char *const *argv, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    int rc = config_load_argv(&op_config_schema, s, argc, argv, err, errlen);
    if (rc == 0)
        rc = op_settings_ways(s, &s->ways_mask, err, errlen);
    if (rc == 0 && (s->download_chunk_kib & (s->download_chunk_kib - 1)) != 0) {
        snprintf(err, errlen, "option 'download-chunk-kib': %llu is not a power of two",
                 (unsigned long long)s->download_chunk_kib);
        rc = SOVA_ERR_CONFIG;
    }
    if (rc != 0 || s->state_dir != NULL)
        return rc;
    /* No --state-dir: the XDG state directory of the user running the peer. */
    char path[4096];
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(path, sizeof(path), "%s/sova", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(path, sizeof(path), "%s/.local/state/sova", home);
    else {
        snprintf(err, errlen, "no --state-dir given and neither XDG_STATE_HOME nor HOME is set");
        return SOVA_ERR_CONFIG;
    }
    return config_set(&op_config_schema, s, "state-dir", path, err, errlen);
}

int op_settings_ways(const struct op_settings *s, unsigned *mask, char *err, size_t errlen)
{
    static const char *const names[] = {
        [NAT_PATH_DIRECT] = "direct", [NAT_PATH_REVERSAL] = "reversal", [NAT_PATH_RELAY] = "relay"};
    *mask = 0;
    const char *p = s->ways ? s->ways : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (int i = NAT_PATH_DIRECT; i <= NAT_PATH_RELAY; i++)
            if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
                bit = 1u << i;
        if (bit == 0) {
            snprintf(err, errlen, "option 'ways': '%.*s' is not direct, reversal or relay", (int)n,
                     p);
            return SOVA_ERR_CONFIG;
        }
        *mask |= bit;
        p += n + (p[n] == ',');
    }
    if (*mask == 0) {
        snprintf(err, errlen, "option 'ways': name at least one of direct, reversal, relay");
        return SOVA_ERR_CONFIG;
    }
    return 0;
}

void op_settings_free(struct op_settings *s)
{
    config_free(&op_config_schema, s);
}
