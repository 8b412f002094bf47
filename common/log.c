#include "log.h"
#include "text.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX   1024
#define LOG_NODE_SHORT 8

static enum sova_log_level log_level = SOVA_LOG_INFO;
static char log_node[LOG_NODE_SHORT + 1];
static int log_saved_stderr = -1; /* a copy of the original stderr once a log file is used */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int sova_log_level_parse(const char *name, enum sova_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum sova_log_level)i;
            return 0;
        }
    }
    return SOVA_ERR_INVALID;
}

const char *sova_log_level_name(enum sova_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

void sova_log_set_level(enum sova_log_level level)
{
    log_level = level;
}

enum sova_log_level sova_log_get_level(void)
{
    return log_level;
}

void sova_log_set_node(const char *node_id)
{
    if (node_id == NULL) {
        log_node[0] = '\0';
        return;
    }
    snprintf(log_node, sizeof(log_node), "%s", node_id);
}

int sova_log_open_file(const char *path, char *err, size_t errlen)
{
    if (log_saved_stderr < 0 && path != NULL) /* the stderr we were started with */
        log_saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (path == NULL) {
        if (log_saved_stderr >= 0 && dup2(log_saved_stderr, STDERR_FILENO) < 0) {
            snprintf(err, errlen, "cannot go back to stderr: %s", strerror(errno));
            return SOVA_ERR_IO;
        }
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    /* dup2 swaps the file under stderr in one step: a line written from
     * another thread goes wholly to the old file or wholly to the new. */
    if (fd == STDERR_FILENO)
        return 0; /* stderr was closed: the file took its number already */
    int rc = dup2(fd, STDERR_FILENO) < 0 ? SOVA_ERR_IO : 0;
    if (rc != 0)
        snprintf(err, errlen, "cannot use log file %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

void sova_log(enum sova_log_level level, const char *module, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s%s%s%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, sova_log_level_name(level), module,
                     log_node[0] ? " [" : "", log_node, log_node[0] ? "]" : "");
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    /* What a message carries from the network (names above all) may hold
     * control characters or bidirectional overrides: escaped (text.h), so
     * a log line is one line and shows what it says. */
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m > 0)
        used += text_escape(line + used, sizeof(line) - used, msg,
                            (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1);
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
