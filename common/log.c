#include "log.h"
#include "text.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX   1024
#define LOG_NODE_SHORT 8

static enum sova_log_level log_level = SOVA_LOG_INFO;
static char log_node[LOG_NODE_SHORT + 1];
static int log_saved_stderr = -1; /* a copy of the original stderr once a log file is used */
/* Whether stderr is the journal: -1 not looked at yet (the first line
 * does), 0 no, 1 yes. Atomic: a worker thread's first line may race the
 * loop's, and a SIGHUP's log file reopen changes it while workers log. */
static atomic_int log_journal = -1;

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

bool sova_log_journal_matches(const char *journal_stream, dev_t dev, ino_t ino)
{
    if (journal_stream == NULL || journal_stream[0] < '0' || journal_stream[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long d = strtoull(journal_stream, &end, 10);
    if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long i = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    return d == (unsigned long long)dev && i == (unsigned long long)ino;
}

static int journal_detect(void)
{
    struct stat st;
    const char *env = getenv("JOURNAL_STREAM");
    if (env == NULL || fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return sova_log_journal_matches(env, st.st_dev, st.st_ino) ? 1 : 0;
}

bool sova_log_to_journal(void)
{
    int j = atomic_load_explicit(&log_journal, memory_order_relaxed);
    if (j < 0) {
        j = journal_detect();
        atomic_store_explicit(&log_journal, j, memory_order_relaxed);
    }
    return j == 1;
}

/* sd-daemon(3) priorities: SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG. */
static const char *const level_prefixes[] = {"<3>", "<4>", "<6>", "<7>"};

const char *sova_log_prefix(enum sova_log_level level)
{
    if (!sova_log_to_journal())
        return "";
    if ((unsigned)level >= sizeof(level_prefixes) / sizeof(level_prefixes[0]))
        return "<6>";
    return level_prefixes[level];
}

/* stderr to the file at path, or back to the original stderr (NULL). */
static int redirect_stderr(const char *path, char *err, size_t errlen)
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

int sova_log_open_file(const char *path, char *err, size_t errlen)
{
    int rc = redirect_stderr(path, err, errlen);
    /* stderr may have become a file, or the journal again */
    atomic_store_explicit(&log_journal, journal_detect(), memory_order_relaxed);
    return rc;
}

size_t sova_log_format(char *buf, size_t cap, bool journal, const struct timespec *now,
                       enum sova_log_level level, const char *module, const char *node,
                       const char *msg, size_t msglen)
{
    bool has_node = node != NULL && node[0] != '\0';
    int n;
    if (journal) {
        n = snprintf(buf, cap, "%s%-5s %s%s%s%s ",
                     (unsigned)level < sizeof(level_prefixes) / sizeof(level_prefixes[0])
                         ? level_prefixes[level]
                         : "<6>",
                     sova_log_level_name(level), module, has_node ? " [" : "", has_node ? node : "",
                     has_node ? "]" : "");
    } else {
        struct tm tm;
        gmtime_r(&now->tv_sec, &tm);
        n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s%s%s%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now->tv_nsec / 1000000, sova_log_level_name(level), module,
                     has_node ? " [" : "", has_node ? node : "", has_node ? "]" : "");
    }
    size_t used = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    /* What a message carries from the network (names above all) may hold
     * control characters or bidirectional overrides: escaped (text.h), so
     * a log line is one line and shows what it says. */
    if (msglen > 0 && used < cap - 1)
        used += text_escape(buf + used, cap - used, msg, msglen);
    if (used >= cap - 1)
        used = cap - 2;
    buf[used++] = '\n';
    return used;
}

void sova_log(enum sova_log_level level, const char *module, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t msglen = m <= 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    struct timespec ts = {0};
    bool journal = sova_log_to_journal();
    if (!journal)
        clock_gettime(CLOCK_REALTIME, &ts);
    char line[LOG_LINE_MAX];
    size_t used =
        sova_log_format(line, sizeof(line), journal, &ts, level, module, log_node, msg, msglen);
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
