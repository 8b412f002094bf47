/* sova-supernode: the always-on daemon that peers attach to.
 *
 * main() owns the settings and hands them to sn_daemon_run(); everything
 * else happens on the daemon's event loop. */
#include "cfgcheck.h"
#include "cli.h"
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

static void print_version(FILE *out)
{
    fprintf(out, "sova-supernode %s (%s, libevent %s)\n", SOVA_VERSION, OPENSSL_VERSION_TEXT,
            event_get_version());
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
    /* a refusal is the error ctl_client_request reports */
    if (!json_is_true(json_object_get(line, "done")) || !json_is_true(json_object_get(line, "ok")))
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
    json_t *disk = json_object_get(ledger, "disk"), *rep = json_object_get(ledger, "reports");
    printf("disk       %lld records read at start, %lld written, %lld waiting, %lld checkpoints, "
           "%lld errors\n",
           R(disk, "loaded"), R(disk, "records_written"), R(disk, "pending"),
           R(disk, "checkpoints"), R(disk, "errors"));
    printf("reports    %lld counted by weight; not counted: %lld from strangers, %lld without "
           "credit at the source\n",
           R(rep, "weighed"), R(rep, "unintroduced"), R(rep, "weightless"));
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
    if (json_is_true(json_object_get(line, "done")) && json_is_true(json_object_get(line, "ok")) &&
        text != NULL)
        fputs(text, stdout);
    return 0;
}

/* `sova-supernode status` and `metrics`: ask the running daemon over its
 * control socket. */
static int cmd_client(const struct cli_parsed *p, void *ctx)
{
    bool json = cli_flag_set(p, "json");
    (void)ctx;
    struct sn_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = sn_settings_load(&settings, p->config_argc, p->config_argv, err, sizeof(err));
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
    bool metrics = strcmp(p->cmd->name, "metrics") == 0;
    rc = ctl_client_request(path, "is sova-supernode running? give --control SOCKET",
                            json_pack("{s:s}", "cmd", p->cmd->name),
                            metrics ? print_metrics : print_status, &json, 10000, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-supernode: %s\n", err);
        return 1;
    }
    return 0;
}

/* The daemon, or with --print-config (or as print-config) its settings,
 * or with --check-config (or as check-config) what is wrong with them. A
 * configuration error is exit status 2, also when found at start (the
 * unit's RestartPreventExitStatus=2 does not restart it); a failure of the
 * running daemon is 1. */
static int cmd_run(const struct cli_parsed *p, void *ctx)
{
    bool print_config =
        cli_flag_set(p, "print-config") || strcmp(p->cmd->name, "print-config") == 0;
    bool check_config =
        cli_flag_set(p, "check-config") || strcmp(p->cmd->name, "check-config") == 0;
    (void)ctx;
    struct sn_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = sn_settings_load(&settings, p->config_argc, p->config_argv, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%ssova-supernode: %s\n", sova_log_prefix(SOVA_LOG_ERROR), err);
        sn_settings_free(&settings);
        return 2;
    }
    struct cfgcheck *check = cfgcheck_new();
    if (check == NULL) {
        fprintf(stderr, "sova-supernode: out of memory\n");
        sn_settings_free(&settings);
        return 1;
    }
    if (print_config)
        config_print(&sn_config_schema, &settings, stdout);
    if (print_config && !check_config)
        sn_settings_check_files(&settings, check); /* what is printed names real files */
    else
        sn_settings_check_all(&settings, check);
    int status = 0;
    if (cfgcheck_print(check, "sova-supernode", stderr) > 0) {
        status = 2;
    } else if (check_config) {
        printf("sova-supernode: configuration OK\n");
    } else if (!print_config) {
        sova_log_set_level((enum sova_log_level)settings.log_level);
        if (settings.log_file != NULL &&
            sova_log_open_file(settings.log_file, err, sizeof(err)) != 0) {
            fprintf(stderr, "%ssova-supernode: %s\n", sova_log_prefix(SOVA_LOG_ERROR), err);
            status = 2;
        } else {
            /* the options are loaded again on SIGHUP */
            status = sn_daemon_run(&settings, p->config_argc, p->config_argv) == 0 ? 0 : 1;
        }
    }
    cfgcheck_free(check);
    sn_settings_free(&settings);
    return status;
}

static const struct cli_flag run_flags[] = {
    {"print-config", NULL,
     "print the effective configuration and exit (2 if a file it names does not exist)"},
    {"check-config", NULL,
     "check the configuration as the daemon would start with it (files, key mode, key and "
     "certificate, root, addresses), print every problem and exit: 0 fine, 2 not"},
    {NULL, NULL, NULL},
};

static const struct cli_flag json_flag[] = {
    {"json", NULL, "print the daemon's reply as JSON, for scripts"},
    {NULL, NULL, NULL},
};

/* The commands of sova-supernode (common/cli.h): to add one, add its row. */
static const struct cli_command commands[] = {
    {.name = "run",
     .args = "",
     .summary = "run the supernode (the command when none is given)",
     .flags = run_flags,
     .config = CLI_CONFIG_ALL,
     .run = cmd_run},
    {.name = "status",
     .args = "",
     .summary = "what the running supernode is doing: peers, index, relay, federation",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = cmd_client},
    {.name = "metrics",
     .args = "",
     .summary = "the running supernode's metrics (Prometheus text)",
     .config = CLI_CONFIG_LOCATE,
     .run = cmd_client},
    {.name = "print-config",
     .args = "",
     .summary = "print the effective configuration (a valid config file)",
     .config = CLI_CONFIG_ALL,
     .run = cmd_run},
    {.name = "check-config",
     .args = "",
     .summary = "check the configuration; every problem on stderr, exit 2 if any",
     .config = CLI_CONFIG_ALL,
     .run = cmd_run},
};

static const char *const locate_options[] = {"control", "state-dir", NULL};

static const struct cli_program program = {
    .name = "sova-supernode",
    .about = "Runs a Sova supernode: accepts ordinary peers and other supernodes over\n"
             "TLS 1.3 on one port. Options may be given in a config file (see\n"
             "sova.conf(5) and deploy/examples/) or on the command line, which wins.\n"
             "SIGHUP reloads what may change at run time and reopens --log-file;\n"
             "SIGTERM leaves the federation and stops. See sova-supernode(8).",
    .schema = &sn_config_schema,
    .locate_options = locate_options,
    .commands = commands,
    .n_commands = sizeof(commands) / sizeof(commands[0]),
    .default_command = "run",
    .print_version = print_version,
};

int main(int argc, char **argv)
{
    return cli_main(&program, argc, argv, NULL);
}
