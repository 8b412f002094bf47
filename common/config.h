/* config.h - one configuration format for both daemons.
 *
 * A daemon describes its options in one table of struct config_option (name,
 * type, default, bounds, help, where the value lives in the daemon's own
 * settings struct). The same table serves the config file, the command line
 * (--name value, which wins over the file), --help and --print-config.
 *
 * File format (INI, parsed by inih): "name = value" lines, '#' or ';'
 * comments. Keys before any section apply to every daemon; a [supernode] or
 * [peer] section applies only to that daemon, so one file can serve both.
 * Unknown options, unknown sections, duplicates and bad values are errors
 * naming the file, the line and the option.
 *
 * Ownership: string values are heap copies owned by the settings struct and
 * released by config_free(). Nothing here blocks except reading the file.
 */
#ifndef SOVA_CONFIG_H
#define SOVA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
    CONFIG_STRING,   /* char *  */
    CONFIG_PATH,     /* char *, non-empty */
    CONFIG_UINT,     /* uint64_t within [min, max] */
    CONFIG_BOOL,     /* bool: true/false/yes/no/on/off/1/0 */
    CONFIG_LOGLEVEL, /* int (enum sova_log_level): error/warn/info/debug */
    CONFIG_ENDPOINT, /* char *: HOST:PORT or [V6]:PORT to listen on; port 0 = any free */
    CONFIG_ENDPOINTS /* char *: comma-separated HOST:PORT to dial, port 1..65535 */
};

struct config_option {
    const char *name; /* lower-case, dashes: "peer-timeout" */
    enum config_type type;
    const char *default_value; /* as text; NULL = unset (strings only) */
    uint64_t min, max;         /* CONFIG_UINT bounds, inclusive */
    size_t offset;             /* offsetof(settings struct, field) */
    const char *help;          /* one line for --help */
};

/* A daemon's schema: its option table and its section name in the file. */
struct config_schema {
    const char *section; /* "supernode" or "peer" */
    const struct config_option *options;
    size_t count;
};

#define CONFIG_ERR_MAX  512
#define CONFIG_MAX_LINE 196       /* bytes of one line (inih's buffer is 200) */
#define CONFIG_MAX_FILE (1 << 20) /* bytes of a config file */

/* Set every option of settings to its default. Returns 0 or SOVA_ERR_*
 * (a bad default is a programming error reported the same way). */
int config_defaults(const struct config_schema *schema, void *settings, char *err, size_t errlen);

/* Apply a config file on top of settings. err gets "FILE:LINE: ..." */
int config_load_file(const struct config_schema *schema, void *settings, const char *path,
                     char *err, size_t errlen);

/* Same as config_load_file on a string; `origin` names it in errors. */
int config_load_string(const struct config_schema *schema, void *settings, const char *text,
                       const char *origin, char *err, size_t errlen);

/* Apply one option by name (command line). err gets "option --NAME: ...". */
int config_set(const struct config_schema *schema, void *settings, const char *name,
               const char *value, char *err, size_t errlen);

/* The whole command line of a daemon (argv[0] excluded by the caller):
 * defaults, then the file named by "--config FILE" (if any), then every
 * "--name value" / "--name=value" (a bool may be given as a bare "--name").
 * Positional arguments are errors. */
int config_load_argv(const struct config_schema *schema, void *settings, int argc,
                     char *const *argv, char *err, size_t errlen);

/* Find an option by name; NULL if none. */
const struct config_option *config_find(const struct config_schema *schema, const char *name);

/* Write the effective settings in file format (a valid config file). */
void config_print(const struct config_schema *schema, const void *settings, FILE *out);

/* Write "  --name VALUE   help (default: x)" lines for --help. */
void config_print_help(const struct config_schema *schema, FILE *out);

/* Reload (SIGHUP): compare two settings of one schema. fn runs for every
 * option whose value differs, with both values as text ("(unset)" for a
 * string that is not set). Returns how many differ. */
typedef void config_change_fn(const struct config_option *opt, const char *before,
                              const char *after, void *arg);
size_t config_diff(const struct config_schema *schema, const void *before, const void *after,
                   config_change_fn *fn, void *arg);
/* Copy one option's value from src to dst (a string is duplicated and the
 * old one freed). 0 or SOVA_ERR_NOMEM (dst unchanged). */
int config_copy(const struct config_option *opt, void *dst, const void *src);

/* Free the strings held by settings; settings itself is the caller's. */
void config_free(const struct config_schema *schema, void *settings);

/* Split "HOST:PORT" / "[V6]:PORT" (port 0..65535); host copied into host
 * (NUL-terminated). Returns 0 or SOVA_ERR_INVALID. Pure; used by the daemons
 * to bind/dial. */
int config_parse_endpoint(const char *text, char *host, size_t hostlen, uint16_t *port);

#endif
