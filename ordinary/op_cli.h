/* op_cli.h - sova-peer's client commands (status, search, get, downloads,
 * metrics ...), which talk to the running daemon over its control socket,
 * and `hash`, which needs no daemon. Their rows in the command table are in
 * ordinary/main.c (common/cli.h). */
#ifndef SOVA_OP_CLI_H
#define SOVA_OP_CLI_H

#include "cli.h"
#include "ctl.h"

#include <stdbool.h>

/* What a client command sends and how it prints the answer: the .data of
 * its row in the command table, whose .run is op_cli_client. The request is
 * {"cmd": NAME}, the positional arguments under arg_key ("words": all of
 * them as an array; any other key: the first as a string; NULL: none), and
 * every flag that takes a value under its name with '-' as '_' (metavar N
 * or MS: a positive number; PATH: made absolute). --json prints the final
 * reply as JSON instead of calling print. */
struct op_cli_request {
    const char *cmd;      /* the control command; NULL: the row's name */
    const char *arg_key;  /* "path": made absolute, links resolved */
    const char *arg2_key; /* the second positional argument (priority ID LEVEL); NULL: none */
    bool arg2_int;        /* ... sent as an integer when it is one (limit ID KBPS) */
    ctl_line_fn *print;   /* human output of each reply line; NULL: nothing */
    int timeout_ms;       /* for each reply line; 0: 10 s */
    bool progress;        /* print sees every line, also with --json (get) */
};

extern const struct op_cli_request op_cli_status, op_cli_search, op_cli_get, op_cli_downloads,
    op_cli_metrics, op_cli_peers;
/* pause, resume, cancel, remove: ID; priority: ID LEVEL */
extern const struct op_cli_request op_cli_xfer, op_cli_priority;
/* share add DIR, share remove DIR, share list */
extern const struct op_cli_request op_cli_share_add, op_cli_share_remove, op_cli_share_list;
/* limits [--upload KBPS ...], limit ID KBPS */
extern const struct op_cli_request op_cli_limits, op_cli_limit;
/* ui [--no-browser]: a one-time login link to the web UI, opened in the browser */
extern const struct op_cli_request op_cli_ui;

/* run() of a client command: the request in p->cmd->data, sent to the
 * daemon found from the daemon options (op_cli_state_dir). Returns the
 * exit status: 0 done, 1 the daemon refused (its reason is printed) or
 * could not be reached, 2 usage. */
int op_cli_client(const struct cli_parsed *p, void *ctx);

/* The state directory the daemon options of p name (malloc'd); prints the
 * error and returns non-zero if they are bad. */
int op_cli_state_dir(const struct cli_parsed *p, char **state_dir);

/* `sova-peer hash FILE... [--json]`: each file's Sova file ID (what `get`
 * takes and search hits show) and its SHA-256 (what sha256sum prints), read
 * here, without a daemon. Blocks while it reads. Exit status: 0, 1 when a
 * file could not be read. */
int op_cli_hash(const struct cli_parsed *p, void *ctx);

#endif
