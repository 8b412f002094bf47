/* log.h - one line per event to stderr.
 *
 * Format: "<iso8601 time> <LEVEL> <module> [<node id short>] message\n".
 * The process-wide level and node ID are set once by main() (they are the only
 * process-wide state in common/, documented here: logging is a sink, not a
 * protocol state). Lines are written with one write(2) so lines from several
 * processes sharing a journal do not interleave. Never blocks the caller for
 * longer than a write to stderr.
 */
#ifndef SOVA_LOG_H
#define SOVA_LOG_H

#include <stddef.h>

enum sova_log_level {
    SOVA_LOG_ERROR = 0,
    SOVA_LOG_WARN = 1,
    SOVA_LOG_INFO = 2,
    SOVA_LOG_DEBUG = 3,
};

/* Parse "error"/"warn"/"info"/"debug"; returns 0 or SOVA_ERR_INVALID. */
int sova_log_level_parse(const char *name, enum sova_log_level *out);
const char *sova_log_level_name(enum sova_log_level level);

void sova_log_set_level(enum sova_log_level level);
enum sova_log_level sova_log_get_level(void);
/* Short node ID shown on every line; copied; NULL clears it. */
void sova_log_set_node(const char *node_id);

/* Append log lines to the file at path (created mode 0640) instead of the
 * stderr the daemon was started with: the file takes stderr's place
 * (dup2), so whatever a library prints lands there too. Calling it again
 * with the same path reopens it (SIGHUP after logrotate moved the file);
 * path NULL goes back to the original stderr. 0, or SOVA_ERR_IO with err
 * filled (and the old destination kept). */
int sova_log_open_file(const char *path, char *err, size_t errlen);

void sova_log(enum sova_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) sova_log(SOVA_LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  sova_log(SOVA_LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  sova_log(SOVA_LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                                                        \
    do {                                                                                           \
        if (sova_log_get_level() >= SOVA_LOG_DEBUG)                                                \
            sova_log(SOVA_LOG_DEBUG, mod, __VA_ARGS__);                                            \
    } while (0)

#endif
