/* sova-supernode: the always-on daemon that peers attach to.
 *
 * main() owns the settings and hands them to sn_daemon_run(); everything
 * else happens on the daemon's event loop. */
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
    fprintf(out, "Usage: sova-supernode [--config FILE] [OPTION VALUE]...\n"
                 "       sova-supernode --print-config [--config FILE] [OPTION VALUE]...\n"
                 "       sova-supernode --version | --help\n"
                 "\n"
                 "Runs a Sova supernode: accepts ordinary peers and other supernodes over\n"
                 "TLS 1.3 on one port. Options may be given in a config file (see\n"
                 "sova.conf(5) and deploy/examples/) or on the command line, which wins.\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE                      read options from FILE first\n"
                 "  --print-config                     print the effective configuration and exit\n");
    config_print_help(&sn_config_schema, out);
}

int main(int argc, char **argv)
{
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
    free(args);
    if (rc == 0 && !print_config)
        rc = sn_settings_check(&settings, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-supernode: %s\n", err);
        sn_settings_free(&settings);
        return 2;
    }
    if (print_config) {
        config_print(&sn_config_schema, &settings, stdout);
        sn_settings_free(&settings);
        return 0;
    }
    sova_log_set_level((enum sova_log_level)settings.log_level);
    rc = sn_daemon_run(&settings);
    sn_settings_free(&settings);
    return rc == 0 ? 0 : 1;
}
