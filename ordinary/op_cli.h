/* op_cli.h - sova-peer's client commands (status, search, get, downloads),
 * which talk to the running daemon over its control socket. */
#ifndef SOVA_OP_CLI_H
#define SOVA_OP_CLI_H

#include <stdbool.h>

bool op_cli_is_command(const char *cmd);

/* Run cmd with its arguments (argv without the program and command names;
 * modified in place). load() turns the remaining daemon options into the
 * state directory (malloc'd). Returns the process exit status: 0 done,
 * 1 the daemon reported a failure or could not be reached, 2 usage. */
int op_cli_run(const char *cmd, int argc, char **argv,
               int (*load)(int argc, char **argv, char **state_dir));

/* `sova-peer hash FILE... [--json]`: each file's Sova file ID (what `get`
 * takes and search hits show) and its SHA-256 (what sha256sum prints), read
 * here, without a daemon. Blocks while it reads. Exit status: 0, 1 when a
 * file could not be read, 2 usage. */
int op_cli_hash(int argc, char **argv);

#endif
