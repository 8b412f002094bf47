/* sn_daemon.h - the sova-supernode daemon.
 *
 * sn_daemon_run() loads the supernode's identity, listens, and serves peers
 * and supernodes until SIGINT/SIGTERM. It blocks its caller (main) and
 * returns 0 after a clean stop or a negative enum sova_err, logged.
 *
 * s is main's and stays valid while the daemon runs; on SIGHUP the daemon
 * loads argc/argv (the options s came from) again and changes in s what may
 * change at run time (docs/OPERATIONS.md). */
#ifndef SOVA_SN_DAEMON_H
#define SOVA_SN_DAEMON_H

#include "sn_config.h"

int sn_daemon_run(struct sn_settings *s, int argc, char *const *argv);

#endif
