/* log.h - one line per event to stderr.
 *
 * Format: "<iso8601 time> <LEVEL> <module> [<node id short>] message\n".
 * When stderr is the systemd journal (below), "<N><LEVEL> <module> [<node
 * id short>] message\n" instead: N is the sd-daemon(3) priority of the
 * level (3 error, 4 warning, 6 info, 7 debug), which journald strips and
 * stores (`journalctl -p warning` finds warnings and errors), and there is
 * no timestamp, since the journal stamps every line itself.
 *
 * Stderr is the journal when JOURNAL_STREAM ("DEVICE:INODE", set by systemd
 * for a service whose stderr it connected to the journal) names the file
 * stderr is (fstat), as sd-daemon(3) recommends: a child that inherited the
 * variable but writes elsewhere keeps the plain format. It is looked at on
 * the first line and again whenever sova_log_open_file() moves stderr.
 * The process-wide level and node ID are set once by main() (they are the only
 * process-wide state in common/, documented here: logging is a sink, not a
 * protocol state). Lines are written with one write(2) so lines from several
 * processes sharing a journal do not interleave. Never blocks the caller for
 * longer than a write to stderr.
 */
#ifndef SOVA_LOG_H
#define SOVA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

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

/* Whether stderr is the journal now (see above). */
bool sova_log_to_journal(void);
/* What a line a daemon writes to stderr itself (a message before logging
 * is set up, a --check-config problem) starts with so that the journal
 * stores it at level: "<3>" for an error, ... when stderr is the journal,
 * else "". Never NULL; a constant. */
const char *sova_log_prefix(enum sova_log_level level);

/* Pure, for tests: whether a JOURNAL_STREAM value ("DEVICE:INODE", both
 * decimal) names the file (dev, ino). NULL or malformed: false. */
bool sova_log_journal_matches(const char *journal_stream, dev_t dev, ino_t ino);
/* Pure, for tests: one log line (the message escaped, text.h; cut to fit,
 * always ending in '\n') into buf of cap bytes (at least 2) in the journal's
 * format or the plain one with the time now. node may be NULL or "".
 * Returns the length, '\n' included; no NUL is written after it. */
size_t sova_log_format(char *buf, size_t cap, bool journal, const struct timespec *now,
                       enum sova_log_level level, const char *module, const char *node,
                       const char *msg, size_t msglen);

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
