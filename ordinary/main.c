/* sova-peer: the ordinary peer. `sova-peer run` is the daemon; the other
 * commands act on a state directory (and, from the overlay issue on, talk to
 * the running daemon over its control socket). */
#include "err.h"
#include "log.h"
#include "op_cli.h"
#include "op_config.h"
#include "op_daemon.h"
#include "version.h"

#include <event2/event.h>
#include <openssl/opensslv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_version(void)
{
    printf("sova-peer %s (%s, libevent %s)\n", SOVA_VERSION, OPENSSL_VERSION_TEXT,
           event_get_version());
}

static void print_help(FILE *out)
{
    fprintf(out, "Usage: sova-peer [--state-dir DIR] COMMAND [ARGS]...\n"
                 "       sova-peer --version | --help\n"
                 "\n"
                 "Commands:\n"
                 "  run [--config FILE] [OPTION VALUE]...  run the peer daemon\n"
                 "  status [--json]                        what the daemon is doing\n"
                 "  search WORDS... [--max N] [--json]     files whose names have all WORDS\n"
                 "  get ID [--out PATH] [--json]           download a file by its file ID;\n"
                 "                                         exits 0 only once it is verified\n"
                 "  downloads [--json]                     downloads, running and past\n"
                 "  metrics                                the daemon's metrics (Prometheus text)\n"
                 "  hash FILE... [--json]                  a file's Sova ID and its SHA-256\n"
                 "                                         (as sha256sum prints it); no daemon\n"
                 "  id                                     print this peer's node ID\n"
                 "                                         (creates the identity on first use)\n"
                 "  print-config [OPTION VALUE]...         print the effective configuration\n"
                 "\n"
                 "Options of run (also valid in the config file, see sova.conf(5)):\n"
                 "  --config FILE                      read options from FILE first\n");
    config_print_help(&op_config_schema, out);
}

/* For the client commands: the options left after theirs give the state
 * directory. */
static int load_state_dir(int argc, char **argv, char **state_dir)
{
    struct op_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = op_settings_load(&settings, argc, argv, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "sova-peer: %s\n", err);
    else if ((*state_dir = strdup(settings.state_dir)) == NULL)
        rc = SOVA_ERR_NOMEM;
    op_settings_free(&settings);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(stdout);
        return 0;
    }
    /* Global options before the command are options of the command too:
     * "sova-peer --state-dir D id" == "sova-peer id --state-dir D". */
    int cmd = 1;
    while (cmd < argc && strncmp(argv[cmd], "--", 2) == 0)
        cmd += strchr(argv[cmd], '=') ? 1 : 2;
    if (cmd >= argc) {
        fprintf(stderr, "sova-peer: no command given (see --help)\n");
        return 2;
    }
    const char *command = argv[cmd];
    char **args = calloc((size_t)argc, sizeof(char *));
    if (args == NULL)
        return 1;
    int nargs = 0;
    for (int i = 1; i < argc; i++)
        if (i != cmd)
            args[nargs++] = argv[i];
    if (strcmp(command, "hash") == 0) {
        int status = op_cli_hash(nargs, args);
        free(args);
        return status;
    }
    if (op_cli_is_command(command)) {
        int status = op_cli_run(command, nargs, args, load_state_dir);
        free(args);
        return status;
    }

    struct op_settings settings;
    char err[CONFIG_ERR_MAX];
    int rc = op_settings_load(&settings, nargs, args, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s\n", err);
        op_settings_free(&settings);
        free(args);
        return 2;
    }
    sova_log_set_level((enum sova_log_level)settings.log_level);
    int status;
    if (strcmp(command, "run") == 0 && settings.log_file != NULL &&
        sova_log_open_file(settings.log_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "sova-peer: %s\n", err);
        status = 1;
    } else if (strcmp(command, "run") == 0) {
        /* args: loaded again on SIGHUP */
        status = op_daemon_run(&settings, nargs, args) == 0 ? 0 : 1;
    } else if (strcmp(command, "id") == 0) {
        status = op_print_id(&settings) == 0 ? 0 : 1;
    } else if (strcmp(command, "print-config") == 0) {
        config_print(&op_config_schema, &settings, stdout);
        status = 0;
    } else {
        fprintf(stderr, "sova-peer: unknown command '%s' (see --help)\n", command);
        status = 2;
    }
    op_settings_free(&settings);
    free(args);
    return status;
}
