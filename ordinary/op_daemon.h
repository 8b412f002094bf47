/* op_daemon.h - the sova-peer daemon (`sova-peer run`) and its identity.
 *
 * op_daemon_run() owns the event loop until SIGINT/SIGTERM; it blocks its
 * caller (main) and returns 0 on a clean stop or a negative enum sova_err. */
#ifndef SOVA_OP_DAEMON_H
#define SOVA_OP_DAEMON_H

#include "op_config.h"

/* The control socket inside the state directory. */
#define OP_CONTROL_SOCKET "control.sock"

/* s is main's and stays valid while the daemon runs; on SIGHUP the daemon
 * loads argc/argv (the options s came from) again and changes in s what may
 * change at run time. */
int op_daemon_run(struct op_settings *s, int argc, char *const *argv);

/* Print the peer's node ID (creating its identity in the state directory on
 * first use) to stdout. */
int op_print_id(const struct op_settings *s);

#endif
