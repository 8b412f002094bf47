/* sn_daemon.h - the sova-supernode daemon.
 *
 * sn_daemon_run() loads the supernode's identity, listens, and serves peers
 * and supernodes until SIGINT/SIGTERM. It blocks its caller (main) and
 * returns 0 after a clean stop or a negative enum sova_err, logged. */
#ifndef SOVA_SN_DAEMON_H
#define SOVA_SN_DAEMON_H

#include "sn_config.h"

int sn_daemon_run(const struct sn_settings *s);

#endif
