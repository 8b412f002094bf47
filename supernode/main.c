/* sova-supernode: the always-on daemon that peers attach to.
 *
 * main() owns the settings and hands them to sn_daemon_run(); everything
 * else happens on the daemon's event loop. */
#include "ctl.h"
#include "err.h"
#include "log.h"
#include "sn_config.h"
#include "sn_daemon.h"
#include "version.h"

#include <event2/event.h>
#include <openssl/opensslv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_version(void)
{
    printf("sova-supernode %s (%s, libevent %s)\n", SOVA_VERSION, OPENSSL_VERSION_TEXT,
           event_get_version());
}

static void print_help(FILE *out)
{
    fprintf(out,
            "Usage: sova-supernode [--config FILE] [OPTION VALUE]...\n"
            "       sova-supernode --print-config [--config FILE] [OPTION VALUE]...\n"
            "       sova-supernode status [--control SOCKET | --config FILE] [--json]\n"
            "       sova-supernode metrics [--control SOCKET | --config FILE]\n"
            "       sova-supernode --version | --help\n"
            "\n"
            "Runs a Sova supernode: accepts ordinary peers and other supernodes over\n"
            "TLS 1.3 on one port. Options may be given in a config file (see\n"
            "sova.conf(5) and deploy/examples/) or on the command line, which wins.\n"
            "SIGHUP reloads what may change at run time and reopens --log-file;\n"
            "SIGTERM leaves the federation and stops. See sova-supernode(8).\n"
            "\n"
            "Options:\n"
            "  --config FILE                      read options from FILE first\n"
            "  --print-config                     print the effective configuration and exit\n");
    config_print_help(&sn_config_schema, out);
}

static void human_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int print_status(json_t *line, void *arg)
{
    bool json = *(bool *)arg;
    if (!json_is_true(json_object_get(line, "done")))
        return 0;
    json_object_del(line, "done");
    if (json) {
        json_dumpf(line, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        return 0;
    }
#define I(k) (long long)json_integer_value(json_object_get(line, k))
    char in[32], out[32];
    human_bytes((uint64_t)I("bytes_in"), in, sizeof(in));
    human_bytes((uint64_t)I("bytes_out"), out, sizeof(out));
    long long up = I("uptime_s");
    printf("supernode  %s\n", json_string_value(json_object_get(line, "id")));
    printf("listening  %s\n", json_string_value(json_object_get(line, "listen")));
    printf("uptime     %lldd %02lldh %02lldm %02llds\n", up / 86400, up / 3600 % 24, up / 60 % 60,
           up % 60);
    printf("peers      %lld attached, told to PING every %lld s (dropped after %lld s)\n",
           I("peers"), I("keepalive_s"), I("peer_timeout_s"));
    printf("files      %lld indexed (%lld distinct, %lld keywords)\n", I("files_indexed"),
           I("distinct_files"), I("keywords"));
    printf("searches   %lld served\n", I("searches_served"));
    printf("traffic    %s in, %s out\n", in, out);
    json_t *relay = json_object_get(line, "relay"), *reach = json_object_get(line, "reachability");
#define R(o, k) (long long)json_integer_value(json_object_get(o, k))
    printf("relay      %s, %lld circuits open, %lld opened, %lld refused, %lld kB/s\n",
           json_is_true(json_object_get(relay, "enabled")) ? "on" : "off", R(relay, "circuits"),
           R(relay, "opened"), R(relay, "refused"), R(relay, "kbps"));
    printf("reach      %lld dial-backs (%lld reached), %lld reversals (%lld not found)\n",
           R(reach, "dialbacks"), R(reach, "dialbacks_ok"), R(reach, "connects"),
           R(reach, "connects_failed"));
    json_t *links = json_object_get(line, "links");
    printf("links      %lld accepted, %lld dialed; handshake failures:", R(links, "opened_in"),
           R(links, "opened_out"));
    const char *key;
    json_t *v;
    size_t failures = 0;
    json_object_foreach(json_object_get(links, "handshake_failures"), key, v)
    {
        printf(" %s %lld", key, (long long)json_integer_value(v));
        failures++;
    }
    printf("%s\n", failures ? "" : " none");
    json_t *ledger = json_object_get(line, "ledger"), *rc = json_object_get(ledger, "receipts");
    json_t *rej = json_object_get(rc, "rejected");
    printf("ledger     %lld credit records, %lld replicas over %lld supernodes; receipts %lld "
           "counted, refused: %lld forged, %lld wrong key, %lld replayed, %lld stale, "
           "%lld misdirected, %lld bad size\n",
           R(ledger, "records"), R(ledger, "replicas"), R(ledger, "supernodes"), R(rc, "counted"),
           R(rej, "forged"), R(rej, "wrong_key"), R(rej, "replayed"), R(rej, "stale"),
           R(rej, "misdirected"), R(rej, "bad_size"));
#undef R
    json_t *members = json_object_get(line, "members");
    printf("members    %zu other supernodes\n", json_array_size(members));
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        long long ago = (long long)json_integer_value(json_object_get(m, "last_heard_ms_ago"));
        char heard[48] = "never heard";
        if (ago >= 0)
            snprintf(heard, sizeof(heard), "heard %lld ms ago", ago);
        printf("  %.16s  %-22s %-8s %6lld/%-8lld peers  %s\n",
               json_string_value(json_object_get(m, "id")),
               json_string_value(json_object_get(m, "address")),
               json_string_value(json_object_get(m, "state")),
               (long long)json_integer_value(json_object_get(m, "peers")),
               (long long)json_integer_value(json_object_get(m, "capacity")), heard);
    }
#undef I
    return 0;
}

static int print_metrics(json_t *line, void *arg)
{
    (void)arg;
    const char *text = json_string_value(json_object_get(line, "metrics"));
    if (json_is_true(json_object_get(line, "done")) && text != NULL)
        fputs(text, stdout);
    return 0;
}

/* `sova-supernode status` and `metrics`: ask the running daemon over its
 * control socket. */
static int run_client(const char *cmd, int argc, char **argv)
{
    bool json = false;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0;
    if (rest == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            rest[nrest++] = argv[i];
    }
    struct sn_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = sn_settings_load(&settings, nrest, rest, err, sizeof(err));
    free(rest);
    if (rc != 0) {
        fprintf(stderr, "sova-supernode: %s\n", err);
        sn_settings_free(&settings);
        return 2;
    }
    char path[4096];
    if (settings.control)
        snprintf(path, sizeof(path), "%s", settings.control);
    else
        snprintf(path, sizeof(path), "%s/control.sock", settings.state_dir);
    sn_settings_free(&settings);
    bool metrics = strcmp(cmd, "metrics") == 0;
    rc = ctl_client_request(path, "is sova-supernode running? give --control SOCKET",
                            json_pack("{s:s}", "cmd", cmd), metrics ? print_metrics : print_status,
                            &json, 10000, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-supernode: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "metrics") == 0))
        return run_client(argv[1], argc - 2, argv + 2);
    bool print_config = false;
    char **args = calloc((size_t)argc + 1, sizeof(char *));
    int nargs = 0;
    if (args == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            print_version();
            free(args);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            free(args);
            return 0;
        }
        if (strcmp(argv[i], "--print-config") == 0)
            print_config = true;
        else
            args[nargs++] = argv[i];
    }

    struct sn_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = sn_settings_load(&settings, nargs, args, err, sizeof(err));
    if (rc == 0 && !print_config)
        rc = sn_settings_check(&settings, err, sizeof(err));
    if (rc != 0 || print_config) {
        if (rc != 0)
            fprintf(stderr, "sova-supernode: %s\n", err);
        else
            config_print(&sn_config_schema, &settings, stdout);
        sn_settings_free(&settings);
        free(args);
        return rc != 0 ? 2 : 0;
    }
    sova_log_set_level((enum sova_log_level)settings.log_level);
    if (settings.log_file != NULL && sova_log_open_file(settings.log_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "sova-supernode: %s\n", err);
        rc = SOVA_ERR_IO;
    } else {
        rc = sn_daemon_run(&settings, nargs, args); /* args: loaded again on SIGHUP */
    }
    sn_settings_free(&settings);
    free(args);
    return rc == 0 ? 0 : 1;
}
