/* sova-peer: the ordinary peer. `sova-peer run` is the daemon; the other
 * commands talk to it over its control socket or act on its state.
 *
 * The command line is the table below, read by common/cli.c: to add a
 * command, add its row (and its run function). */
#include "cfgcheck.h"
#include "cli.h"
#include "err.h"
#include "log.h"
#include "op_api.h"
#include "op_check.h"
#include "op_cli.h"
#include "op_config.h"
#include "op_daemon.h"
#include "op_join.h"
#include "op_paths.h"
#include "version.h"

#include <event2/event.h>
#include <openssl/opensslv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_version(FILE *out)
{
    fprintf(out, "sova-peer %s (%s, libevent %s)\n", SOVA_VERSION, OPENSSL_VERSION_TEXT,
            event_get_version());
}

/* The settings the daemon options of p give; prints the error. */
static int load(const struct cli_parsed *p, struct op_settings *s)
{
    char err[CONFIG_ERR_MAX];
    int rc = op_settings_load(s, p->config_argc, p->config_argv, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%ssova-peer: %s\n", sova_log_prefix(SOVA_LOG_ERROR), err);
    return rc;
}

/* The daemon; with --check-config (or as check-config) only what is wrong
 * with its configuration. A configuration error is exit status 2, also
 * when found at start (the unit does not restart it); a failure of the
 * running daemon is 1. */
static int cmd_run(const struct cli_parsed *p, void *ctx)
{
    struct op_settings settings;
    bool check_only = cli_flag_set(p, "check-config") || strcmp(p->cmd->name, "check-config") == 0;
    int status = 2;
    (void)ctx;
    struct cfgcheck *check = NULL;
    if (load(p, &settings) != 0) {
        /* load() said why */
    } else if ((check = cfgcheck_new()) == NULL) {
        fprintf(stderr, "sova-peer: out of memory\n");
        status = 1;
    } else {
        char err[CONFIG_ERR_MAX];
        op_check_settings(&settings, check);
        if (cfgcheck_print(check, "sova-peer", stderr) > 0) {
            /* status 2 */
        } else if (check_only) {
            printf("sova-peer: configuration OK\n");
            status = 0;
        } else {
            sova_log_set_level((enum sova_log_level)settings.log_level);
            if (settings.log_file != NULL &&
                sova_log_open_file(settings.log_file, err, sizeof(err)) != 0)
                fprintf(stderr, "%ssova-peer: %s\n", sova_log_prefix(SOVA_LOG_ERROR), err);
            else /* the options are loaded again on SIGHUP */
                status = op_daemon_run(&settings, p->config_argc, p->config_argv) == 0 ? 0 : 1;
        }
    }
    cfgcheck_free(check);
    op_settings_free(&settings);
    return status;
}

static int cmd_id(const struct cli_parsed *p, void *ctx)
{
    struct op_settings settings;
    int status = 2;
    (void)ctx;
    if (load(p, &settings) == 0)
        status = op_print_id(&settings) == 0 ? 0 : 1;
    op_settings_free(&settings);
    return status;
}

static int cmd_print_config(const struct cli_parsed *p, void *ctx)
{
    struct op_settings settings;
    int status = 2;
    (void)ctx;
    struct cfgcheck *check = NULL;
    if (load(p, &settings) != 0) {
        /* load() said why: status 2 */
    } else if ((check = cfgcheck_new()) == NULL) {
        fprintf(stderr, "sova-peer: out of memory\n");
        status = 1;
    } else {
        config_print(&op_config_schema, &settings, stdout);
        /* what is printed names real files: else 2 (check-config checks all) */
        op_check_files(&settings, check);
        status = cfgcheck_print(check, "sova-peer", stderr) > 0 ? 2 : 0;
    }
    cfgcheck_free(check);
    op_settings_free(&settings);
    return status;
}

/* `init`: a commented config, with the options given on the command line
 * set in it; at --config FILE, else the user's peer.conf. */
static int cmd_init(const struct cli_parsed *p, void *ctx)
{
    char path[4096], err[CONFIG_ERR_MAX];
    const char *target = NULL;
    int setc = 0;
    char **setv = calloc((size_t)p->config_argc + 1, sizeof(char *));
    (void)ctx;
    if (setv == NULL)
        return 1;
    for (int i = 0; i < p->config_argc; i++) {
        if (strncmp(p->config_argv[i], "--config=", 9) == 0)
            target = p->config_argv[i] + 9;
        else
            setv[setc++] = p->config_argv[i];
    }
    /* The options must make a valid config (checked without any file). */
    struct op_settings check;
    memset(&check, 0, sizeof(check));
    int rc = config_load_argv(&op_config_schema, &check, setc, setv, err, sizeof(err));
    config_free(&op_config_schema, &check);
    if (rc == 0 && target == NULL &&
        (rc = op_paths_user_config(path, sizeof(path), err, sizeof(err))) == 0)
        target = path;
    if (rc != 0) {
        free(setv);
        fprintf(stderr, "sova-peer: %s\n", err);
        return 2;
    }
    rc = op_paths_write_config(target, &op_config_schema, setc, setv, cli_flag_set(p, "force"), err,
                               sizeof(err));
    free(setv);
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s\n", err);
        return 1;
    }
    printf("wrote %s\nnext: sova-peer join BUNDLE (from your federation), then sova-peer run\n",
           target);
    return 0;
}

/* `join BUNDLE`: the federation's root and supernodes, checked, into the
 * state directory. */
static int cmd_join(const struct cli_parsed *p, void *ctx)
{
    struct op_settings settings;
    int status = 2;
    (void)ctx;
    if (load(p, &settings) == 0) {
        char msg[1024], err[CONFIG_ERR_MAX];
        struct op_join_opts o = {.root_id = cli_flag(p, "root-id"),
                                 .force = cli_flag_set(p, "force")};
        int rc = op_join(&settings, p->argv[0], &o, msg, sizeof(msg), err, sizeof(err));
        if (rc == 0)
            fputs(msg, stdout);
        else
            fprintf(stderr, "sova-peer: %s\n", err);
        status = rc == 0 ? 0 : rc == SOVA_ERR_USAGE ? 2 : 1;
    }
    op_settings_free(&settings);
    return status;
}

/* `api-key`: the HTTP API's key (docs/API.md), read from the state
 * directory; no daemon needed. */
static int cmd_api_key(const struct cli_parsed *p, void *ctx)
{
    struct op_settings settings;
    int status = 2;
    (void)ctx;
    if (load(p, &settings) == 0) {
        char key[OP_API_KEY_HEX + 1], err[4200];
        int rc = op_api_key_load(settings.state_dir, false, key, err, sizeof(err));
        if (rc == 0)
            printf("%s\n", key);
        else
            fprintf(stderr, "sova-peer: %s\n", err);
        status = rc == 0 ? 0 : 1;
    }
    op_settings_free(&settings);
    return status;
}

static const struct cli_flag run_flags[] = {
    {"check-config", NULL,
     "check the configuration as the daemon would start with it (federation root, identity "
     "and its key mode, addresses), print every problem and exit: 0 fine, 2 not"},
    {NULL, NULL, NULL},
};

static const struct cli_flag init_flags[] = {
    {"force", NULL, "replace an existing config file"},
    {NULL, NULL, NULL},
};

static const struct cli_flag join_flags[] = {
    {"root-id", "ID", "the federation root's node ID you were given: refuse any other"},
    {"force", NULL, "replace the federation of an earlier join"},
    {NULL, NULL, NULL},
};

static const struct cli_flag json_flag[] = {
    {"json", NULL, "print the daemon's reply as JSON, for scripts"},
    {NULL, NULL, NULL},
};

static const struct cli_flag ui_flags[] = {
    {"no-browser", NULL, "only print the link; do not open a browser"},
    {"json", NULL, "print the daemon's reply as JSON, for scripts"},
    {NULL, NULL, NULL},
};

static const struct cli_flag search_flags[] = {
    {"max", "N", "at most N hits"},
    {"timeout-ms", "MS", "wait this long for the supernodes' answers"},
    {"json", NULL, "print the hits as JSON, for scripts"},
    {NULL, NULL, NULL},
};

static const struct cli_flag get_flags[] = {
    {"out", "PATH", "save the file here (default: the downloads folder)"},
    {"name", "NAME", "the file's name in the downloads folder"},
    {"priority", "LEVEL", "its place in the queue: high, normal (the default) or low"},
    {"background", NULL, "return at once, once the daemon accepted the download"},
    {"json", NULL, "print the result as JSON, for scripts (no progress bar)"},
    {NULL, NULL, NULL},
};

static const struct cli_flag remove_flags[] = {
    {"delete-data", NULL, "delete the downloaded file too"},
    {"json", NULL, "print the daemon's reply as JSON, for scripts"},
    {NULL, NULL, NULL},
};

static const struct cli_flag limits_flags[] = {
    {"upload", "KBPS", "the upload limit, kB/s (0: unlimited)"},
    {"download", "KBPS", "the download limit, kB/s (0: unlimited)"},
    {"alt-upload", "KBPS", "the alternative ('turtle') upload limit, kB/s"},
    {"alt-download", "KBPS", "the alternative download limit, kB/s"},
    {"turtle", "on|off|auto",
     "the alternative limits in force (on), not (off), or by the "
     "schedule (auto)"},
    {"json", NULL, "print the daemon's reply as JSON, for scripts"},
    {NULL, NULL, NULL},
};

static const struct cli_flag hash_flags[] = {
    {"json", NULL, "one JSON object a file"},
    {NULL, NULL, NULL},
};

/* The commands of sova-peer. A client command of the control socket is a
 * row with .run = op_cli_client and .data = what it sends and prints
 * (struct op_cli_request, ordinary/op_cli.h). */
static const struct cli_command commands[] = {
    {.name = "run",
     .args = "",
     .summary = "run the peer daemon",
     .flags = run_flags,
     .config = CLI_CONFIG_ALL,
     .run = cmd_run},
    {.name = "init",
     .args = "",
     .summary = "write a commented config file, with the options given set",
     .flags = init_flags,
     .config = CLI_CONFIG_ALL,
     .run = cmd_init},
    {.name = "join",
     .args = "BUNDLE",
     .min_args = 1,
     .max_args = 1,
     .summary = "check a federation's signed bundle, import its root and supernodes",
     .flags = join_flags,
     .config = CLI_CONFIG_LOCATE,
     .complete = "file",
     .run = cmd_join},
    {.name = "status",
     .args = "",
     .summary = "what the daemon is doing, and why it is or is not reachable",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_status},
    {.name = "search",
     .args = "WORDS...",
     .min_args = 1,
     .max_args = -1,
     .summary = "files whose names have all WORDS",
     .flags = search_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_search},
    {.name = "get",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "download a file by its file ID; exits 0 only once it is verified",
     .help = "At most max-active-downloads run; the others wait in the queue, by --priority.\n"
             "Ctrl-C (SIGINT) cancels the download: the daemon stops it and deletes its\n"
             "partial data (exit 130). To stop it and go on later, use `sova-peer pause ID`\n"
             "from another terminal and `sova-peer resume ID`; closing the terminal or a\n"
             "timeout of this command leaves the download running in the daemon.\n",
     .flags = get_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_get},
    {.name = "downloads",
     .args = "",
     .summary = "downloads, running and past",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_downloads},
    {.name = "pause",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "stop a download, keeping its verified chunks (also across a restart)",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_xfer},
    {.name = "resume",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "go on with a paused download from its verified chunks",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_xfer},
    {.name = "cancel",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "stop a download and delete its partial data",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_xfer},
    {.name = "remove",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "forget a finished or failed download (--delete-data: its file too)",
     .flags = remove_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_xfer},
    {.name = "priority",
     .args = "ID LEVEL",
     .min_args = 2,
     .max_args = 2,
     .summary = "move a download in the queue: LEVEL high, normal or low",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .complete = "high normal low",
     .run = op_cli_client,
     .data = &op_cli_priority},
    {.name = "peers",
     .args = "",
     .summary = "peers connected to us and the sources of each download: path, rate, bytes",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_peers},
    {.name = "share add",
     .args = "DIR",
     .min_args = 1,
     .max_args = 1,
     .summary = "share one more folder, now and after restarts",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .complete = "file",
     .run = op_cli_client,
     .data = &op_cli_share_add},
    {.name = "share remove",
     .args = "DIR",
     .min_args = 1,
     .max_args = 1,
     .summary = "stop sharing a folder added with share add",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .complete = "file",
     .run = op_cli_client,
     .data = &op_cli_share_remove},
    {.name = "share list",
     .args = "",
     .summary = "the share folders: files, bytes, missing ones",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_share_list},
    {.name = "limits",
     .args = "",
     .summary = "the bandwidth limits set and in force; change them until a restart or reload",
     .help = "Limits are in kilobytes (1000 bytes) a second, 0 for none. A change lasts until\n"
             "the daemon stops or reloads its configuration; put it in peer.conf to keep it.\n",
     .flags = limits_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_limits},
    {.name = "limit",
     .args = "ID KBPS",
     .min_args = 2,
     .max_args = 2,
     .summary = "a running download's own limit, kB/s (0 lifts it)",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_limit},
    {.name = "ui",
     .args = "",
     .summary = "print a link that logs in to the web UI (once), and open it in the browser",
     .flags = ui_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_ui},
    {.name = "metrics",
     .args = "",
     .summary = "the daemon's metrics (Prometheus text)",
     .config = CLI_CONFIG_LOCATE,
     .run = op_cli_client,
     .data = &op_cli_metrics},
    {.name = "hash",
     .args = "FILE...",
     .min_args = 1,
     .max_args = -1,
     .summary = "a file's Sova ID and its SHA-256 (as sha256sum prints it); no daemon",
     .flags = hash_flags,
     .config = CLI_CONFIG_NONE,
     .complete = "file",
     .run = op_cli_hash},
    {.name = "id",
     .args = "",
     .summary = "print this peer's node ID (creates the identity on first use)",
     .config = CLI_CONFIG_LOCATE,
     .run = cmd_id},
    {.name = "api-key",
     .args = "",
     .summary = "print the HTTP API's key (X-API-Key), made when the daemon first serves the API",
     .config = CLI_CONFIG_LOCATE,
     .run = cmd_api_key},
    {.name = "print-config",
     .args = "",
     .summary = "print the effective configuration (a valid config file)",
     .config = CLI_CONFIG_ALL,
     .run = cmd_print_config},
    {.name = "check-config",
     .args = "",
     .summary = "check the configuration; every problem on stderr, exit 2 if any",
     .config = CLI_CONFIG_ALL,
     .run = cmd_run},
};

static const char *const locate_options[] = {"state-dir", NULL};

static const struct cli_program program = {
    .name = "sova-peer",
    .about = "The Sova peer: `run` is the daemon; the other commands talk to it over the\n"
             "control socket in its state directory (give them the daemon's --state-dir\n"
             "or --config).",
    .schema = &op_config_schema,
    .locate_options = locate_options,
    .config_default = "$XDG_CONFIG_HOME/sova/peer.conf (~/.config/sova/peer.conf), else "
                      "sova.conf there (earlier releases), /etc/sova/peer.conf, "
                      "/etc/sova/sova.conf",
    .commands = commands,
    .n_commands = sizeof(commands) / sizeof(commands[0]),
    .print_version = print_version,
};

int main(int argc, char **argv)
{
    return cli_main(&program, argc, argv, NULL);
}
