#include "op_config.h"
#include "op_bw.h"

#include "err.h"
#include "nat_path.h"
#include "op_paths.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPT(n, t, def, lo, hi, field, h)                                                           \
    {                                                                                              \
        .name = n, .type = t, .default_value = def, .min = lo, .max = hi,                          \
        .offset = offsetof(struct op_settings, field), .help = h                                   \
    }

static const struct config_option op_options[] = {
    OPT("state-dir", CONFIG_PATH, NULL, 0, 0, state_dir,
        "identity, state and control socket (default: $XDG_STATE_HOME/sova or "
        "~/.local/state/sova)"),
    OPT("bootstrap", CONFIG_ENDPOINTS, NULL, 0, 0, bootstrap,
        "supernode(s) to attach to (default: those of the federation joined with `sova-peer "
        "join`)"),
    OPT("federation-ca", CONFIG_PATH, NULL, 0, 0, federation_ca,
        "federation root certificate supernodes must chain to (default: the joined one)"),
    OPT("listen", CONFIG_ENDPOINT, "0.0.0.0:7071", 0, 0, listen,
        "address and port to accept other peers on"),
    OPT("share", CONFIG_PATH, NULL, 0, 0, share,
        "a folder whose files are shared (more with `sova-peer share add DIR`)"),
    OPT("downloads", CONFIG_PATH, NULL, 0, 0, downloads,
        "folder for finished downloads (default: the XDG download folder, ~/Downloads)"),
    OPT("log-level", CONFIG_LOGLEVEL, "info", 0, 0, log_level, "error, warn, info or debug"),
    OPT("log-file", CONFIG_PATH, NULL, 0, 0, log_file,
        "append log lines to this file instead of stderr; reopened on SIGHUP"),
    OPT("metrics-listen", CONFIG_ENDPOINT, NULL, 0, 0, metrics_listen,
        "serve Prometheus metrics at http://ADDR:PORT/metrics (default: off)"),
    OPT("api-listen", CONFIG_ENDPOINT, NULL, 0, 0, api_listen,
        "serve the local HTTP API (docs/API.md) at http://ADDR:PORT/api/v1/, a loopback "
        "address, port 0 for a free one (default: off)"),
    OPT("api-allow-remote", CONFIG_BOOL, "no", 0, 0, api_allow_remote,
        "let api-listen be an address other than loopback; it then needs api-tls-cert and "
        "api-tls-key (the API key and session cookies never cross a network in clear)"),
    OPT("api-tls-cert", CONFIG_PATH, NULL, 0, 0, api_tls_cert,
        "serve the HTTP API and web UI over TLS (https) with this certificate chain (PEM); "
        "required off loopback"),
    OPT("api-tls-key", CONFIG_PATH, NULL, 0, 0, api_tls_key,
        "the private key (PEM) of api-tls-cert"),
    OPT("ui", CONFIG_BOOL, "yes", 0, 0, ui,
        "serve the web UI (docs/UI.md) at the root of api-listen; `sova-peer ui` prints a link "
        "that logs in"),
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
    OPT("on-complete", CONFIG_STRING, NULL, 0, 0, on_complete,
        "command run (by /bin/sh -c) when a download completes, with SOVA_FILE_PATH, "
        "SOVA_FILE_NAME, SOVA_FILE_ID, SOVA_FILE_SIZE and SOVA_FILE_SHA256 in its environment"),
    OPT("on-complete-timeout-s", CONFIG_UINT, "300", 0, 86400, on_complete_timeout_s,
        "an on-complete command still running after this is killed, seconds (0: never)"),
    OPT("rescan-interval-s", CONFIG_UINT, "60", 1, 86400, rescan_interval_s,
        "how often the share folders are checked for changes, seconds (a fallback: inotify "
        "sees them at once)"),
    OPT("upload-limit-kbps", CONFIG_UINT, "0", 0, 100000000, upload_limit_kbps,
        "total upload rate to other peers, kilobytes per second (0: unlimited)"),
    OPT("download-limit-kbps", CONFIG_UINT, "0", 0, 100000000, download_limit_kbps,
        "total download rate from other peers, kilobytes per second (0: unlimited)"),
    OPT("alt-upload-limit-kbps", CONFIG_UINT, "50", 0, 100000000, alt_upload_limit_kbps,
        "the alternative ('turtle') upload limit, in force by hand (sova-peer limits --turtle "
        "on) or on alt-limits-schedule, kilobytes per second (0: unlimited)"),
    OPT("alt-download-limit-kbps", CONFIG_UINT, "50", 0, 100000000, alt_download_limit_kbps,
        "the alternative ('turtle') download limit, kilobytes per second (0: unlimited)"),
    OPT("alt-limits-schedule", CONFIG_STRING, NULL, 0, 0, alt_limits_schedule,
        "when the alternative limits are in force by themselves, local time: DAYS HH:MM-HH:MM, "
        "DAYS 'daily' or days and ranges (mon-fri, sat,sun); may cross midnight"),
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
    OPT("ways", CONFIG_STRING, "direct,reversal,holepunch,relay", 0, 0, ways,
        "ways a download may reach a source, cheapest first: any of direct, reversal, holepunch, "
        "relay "
        "(relay alone: no direct connection; sources still learn our ID and can look up our "
        "address, so it is not anonymity)"),
    OPT("punch-timeout-ms", CONFIG_UINT, "5000", 100, 600000, punch_timeout_ms,
        "a hole punch with a source must connect within this of asking"),
    OPT("relay-timeout-ms", CONFIG_UINT, "10000", 100, 600000, relay_timeout_ms,
        "a relay circuit to a source must open within this"),
    OPT("upload-slots", CONFIG_UINT, "4", 1, 1024, upload_slots,
        "peers served at once; the others wait, the one with the most credit first"),
    OPT("upload-max-wait-s", CONFIG_UINT, "20", 1, 3600, upload_max_wait_s,
        "a waiting peer is served next, whatever its credit, after waiting this long"),
    OPT("download-chunk-kib", CONFIG_UINT, "1024", 64, 16384, download_chunk_kib,
        "chunk size new downloads ask sources for, KiB: a power of two; each chunk is checked "
        "against the file ID"),
    OPT("max-active-downloads", CONFIG_UINT, "5", 0, 1000, max_active_downloads,
        "downloads running at once; the others wait in the queue, the highest priority first, "
        "then the oldest (0: no limit)"),
};

const struct config_schema op_config_schema = {
    .section = "peer",
    .options = op_options,
    .count = sizeof(op_options) / sizeof(op_options[0]),
};

/* Whether argv names a config file. */
static bool has_config(int argc, char *const *argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0)
            return true;
    return false;
}

/* What `sova-peer join` imported (op_join.h) fills bootstrap and
 * federation-ca when neither the file nor the command line set them. */
static int apply_joined(struct op_settings *s, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", s->state_dir, OP_JOINED_CONF);
    if (access(path, F_OK) != 0)
        return 0;
    struct op_settings joined;
    memset(&joined, 0, sizeof(joined));
    int rc = config_load_file(&op_config_schema, &joined, path, err, errlen);
    static const char *const names[] = {"bootstrap", "federation-ca"};
    for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
        const struct config_option *o = config_find(&op_config_schema, names[i]);
        if (*(char **)((char *)s + o->offset) == NULL)
            rc = config_copy(o, s, &joined);
    }
    config_free(&op_config_schema, &joined);
    return rc;
}

static int load_argv(struct op_settings *s, int argc, char *const *argv, char *err, size_t errlen)
{
    char conf[4096];
    if (has_config(argc, argv) || !op_paths_find_config(conf, sizeof(conf)))
        return config_load_argv(&op_config_schema, s, argc, argv, err, errlen);
    /* No --config: the user's (or the system's) peer.conf, first. */
    char **all = calloc((size_t)argc + 2, sizeof(char *));
    size_t n = strlen(conf) + sizeof("--config=");
    char *opt = malloc(n);
    int rc = SOVA_ERR_NOMEM;
    if (all != NULL && opt != NULL) {
        snprintf(opt, n, "--config=%s", conf);
        all[0] = opt;
        for (int i = 0; i < argc; i++)
            all[i + 1] = argv[i];
        rc = config_load_argv(&op_config_schema, s, argc + 1, all, err, errlen);
    }
    free(opt);
    free(all);
    return rc;
}

int op_settings_load(struct op_settings *s, int argc, char *const *argv, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    int rc = load_argv(s, argc, argv, err, errlen);
    if (rc == 0)
        rc = op_settings_ways(s, &s->ways_mask, err, errlen);
    if (rc == 0) {
        struct op_bw_schedule sched;
        char why[256];
        if (op_bw_schedule_parse(s->alt_limits_schedule, &sched, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "option 'alt-limits-schedule': %s", why);
            rc = SOVA_ERR_CONFIG;
        }
    }
    if (rc == 0 && (s->download_chunk_kib & (s->download_chunk_kib - 1)) != 0) {
        snprintf(err, errlen, "option 'download-chunk-kib': %llu is not a power of two",
                 (unsigned long long)s->download_chunk_kib);
        rc = SOVA_ERR_CONFIG;
    }
    char path[4096], why[256];
    /* No --state-dir: the XDG state directory of the user running the peer. */
    if (rc == 0 && s->state_dir == NULL) {
        rc = op_paths_state_dir(path, sizeof(path), why, sizeof(why));
        if (rc != 0)
            snprintf(err, errlen, "no --state-dir given and %s", why);
        else
            rc = config_set(&op_config_schema, s, "state-dir", path, err, errlen);
    }
    if (rc == 0 && s->downloads == NULL &&
        op_paths_downloads(path, sizeof(path), why, sizeof(why)) == 0)
        rc = config_set(&op_config_schema, s, "downloads", path, err, errlen);
    if (rc == 0 && (s->bootstrap == NULL || s->federation_ca == NULL))
        rc = apply_joined(s, err, errlen);
    return rc;
}

int op_settings_ways(const struct op_settings *s, unsigned *mask, char *err, size_t errlen)
{
    static const char *const names[] = {[NAT_PATH_DIRECT] = "direct",
                                        [NAT_PATH_REVERSAL] = "reversal",
                                        [NAT_PATH_PUNCH] = "holepunch",
                                        [NAT_PATH_RELAY] = "relay"};
    *mask = 0;
    const char *p = s->ways ? s->ways : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (int i = NAT_PATH_DIRECT; i <= NAT_PATH_RELAY; i++)
            if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
                bit = 1u << i;
        if (bit == 0) {
            snprintf(err, errlen,
                     "option 'ways': '%.*s' is not direct, reversal, holepunch or relay", (int)n,
                     p);
            return SOVA_ERR_CONFIG;
        }
        *mask |= bit;
        p += n + (p[n] == ',');
    }
    if (*mask == 0) {
        snprintf(err, errlen,
                 "option 'ways': name at least one of direct, reversal, holepunch, relay");
        return SOVA_ERR_CONFIG;
    }
    return 0;
}

void op_settings_free(struct op_settings *s)
{
    config_free(&op_config_schema, s);
}
