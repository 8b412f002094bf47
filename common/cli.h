/* cli.h - one command-line parser for both binaries.
 *
 * A program (sova-peer, sova-supernode) is a table of commands. Each
 * command names its positional arguments, its own flags (--json, --out
 * PATH ...) and whether it takes the daemon's configuration options; those
 * come from the daemon's config schema (common/config.h), so the options of
 * the file, of the command line, of --help and of the shell completion are
 * one list. Adding a command is one struct cli_command in the program's
 * table. A name of two words makes a group: rows "share add", "share list"
 * and "share remove" are parsed as `PROG share add PATH`, and `PROG share`
 * alone (or `help share`, `share --help`) lists the group.
 *
 * The parser (cli_main):
 * - takes options in any position, before or after the command, as
 *   "--name value" or "--name=value"; "--" ends the options;
 * - answers `--version`, `--help`/`-h` (of the command when one is given),
 *   `help [COMMAND]` and `completion bash` itself, for every program;
 * - names an unknown option (with a near spelling if there is one), a
 *   missing value, an unknown command or a wrong number of arguments, with
 *   the command's usage, and returns 2;
 * - hands the command's run() its arguments, its flags and the daemon
 *   options as "--name=value" strings for config_load_argv() (which a
 *   daemon keeps to load the same settings again on SIGHUP).
 *
 * Exit statuses: 0 done, 1 the command failed, 2 a bad command line.
 * Nothing here blocks but writing to stdout/stderr.
 */
#ifndef SOVA_CLI_H
#define SOVA_CLI_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2
#define CLI_MAX_FLAGS  16 /* flags of one command (a bigger table is a bug: aborts) */

/* A flag of one command. Its name is never an option of the schema (nor
 * "config"): cli_main aborts on such a table. */
struct cli_flag {
    const char *name;    /* "json" for --json */
    const char *metavar; /* NULL: takes no value; else what the value is: "PATH", "N" */
    const char *help;
};

enum cli_config_use {
    CLI_CONFIG_NONE,   /* takes no daemon option (hash, completion) */
    CLI_CONFIG_LOCATE, /* takes them all, to find the daemon; help lists the program's
                        * locate options only (--config, --state-dir ...) */
    CLI_CONFIG_ALL,    /* takes them all; help lists them all (run, print-config) */
};

struct cli_parsed;
/* A command's body: returns the exit status. ctx is cli_main's. */
typedef int cli_run_fn(const struct cli_parsed *p, void *ctx);

struct cli_command {
    const char *name;             /* "status", or two words for a command of a group: "share add" */
    const char *args;             /* synopsis of the positional arguments: "ID", "WORDS...", "" */
    int min_args, max_args;       /* how many; max -1: no limit */
    const char *summary;          /* one line for the command list */
    const char *help;             /* more for its --help, after the summary; NULL: none */
    const struct cli_flag *flags; /* its flags, ended by {NULL}; NULL: none */
    enum cli_config_use config;
    const char *complete; /* what its positional arguments complete to: "file", "command",
                           * a space-separated word list, or NULL (nothing) */
    cli_run_fn *run;
    const void *data; /* the program's own, for run() (e.g. which request to send) */
};

struct cli_program {
    const char *name;  /* "sova-peer" */
    const char *about; /* a paragraph for `help` */
    const struct config_schema *schema;
    const char *const *locate_options; /* schema options help shows for CLI_CONFIG_LOCATE,
                                        * ended by NULL */
    const char *config_default;        /* what --config defaults to, for help; NULL: nothing */
    const struct cli_command *commands;
    size_t n_commands;
    const char *default_command; /* run when none is given; NULL: a command is needed */
    void (*print_version)(FILE *out);
};

struct cli_parsed {
    const struct cli_program *prog;
    const struct cli_command *cmd;
    int argc; /* positional arguments */
    char **argv;
    int config_argc; /* daemon options, each "--name=value" (config_load_argv) */
    char **config_argv;
    const char *flags[CLI_MAX_FLAGS]; /* per cmd->flags entry: its value ("" for a flag
                                       * without one) or NULL when not given */
};

/* Parse argv (argv[0] is the program's name) and run the command. Returns
 * the exit status. */
int cli_main(const struct cli_program *prog, int argc, char **argv, void *ctx);

/* The value of the command's flag NAME, "" if it takes none and was given,
 * NULL if it was not given (or the command has no such flag). */
const char *cli_flag(const struct cli_parsed *p, const char *name);
bool cli_flag_set(const struct cli_parsed *p, const char *name);

/* "PROG: MESSAGE" on stderr, then the command's usage line and where its
 * help is (for a bad value found after parsing). Returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_parsed *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The help of a command (cmd NULL: of the program). */
void cli_print_help(const struct cli_program *prog, const struct cli_command *cmd, FILE *out);

/* A bash completion script for prog, generated from its table and schema:
 * what `PROG completion bash` prints. */
void cli_print_bash_completion(const struct cli_program *prog, FILE *out);
/* The same from prog and the n commands it has with the built-in ones
 * (cli_complete.c, which the above calls). */
void cli_write_bash_completion(const struct cli_program *prog,
                               const struct cli_command *const *cmds, size_t n, FILE *out);

#endif
