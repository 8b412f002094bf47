/* op_hook.c - the completion hook (op_hook.h). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np (glibc 2.34) */
#include "op_hook.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOD "hook"

extern char **environ;

struct run {
    struct op_hook *h;
    pid_t pid; /* 0: slot free */
    char id[17];
    struct event *timeout;
    bool killed; /* for its timeout */
    uint64_t timeout_s;
};

struct op_hook {
    struct event_base *base;
    struct event *sigchld;
    struct run runs[OP_HOOK_MAX_RUNNING];
    struct op_hook_stats stats;
};

static void run_end(struct run *r, int status)
{
    struct op_hook *h = r->h;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        h->stats.succeeded++;
        log_info(MOD, "%s: on-complete hook finished (exit status 0)", r->id);
    } else {
        h->stats.failed++;
        if (r->killed)
            log_warn(MOD, "%s: on-complete hook still running after %llu s: killed", r->id,
                     (unsigned long long)r->timeout_s);
        else if (WIFEXITED(status))
            log_warn(MOD, "%s: on-complete hook failed: exit status %d%s", r->id,
                     WEXITSTATUS(status),
                     WEXITSTATUS(status) == 127   ? " (command not found)"
                     : WEXITSTATUS(status) == 126 ? " (not executable)"
                                                  : "");
        else
            log_warn(MOD, "%s: on-complete hook killed by signal %d", r->id, WTERMSIG(status));
    }
    if (r->timeout != NULL)
        event_free(r->timeout);
    r->timeout = NULL;
    r->pid = 0;
    h->stats.running--;
}

/* SIGCHLD: reap each of our children that ended (signals coalesce). */
static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct op_hook *h = arg;
    (void)sig, (void)what;
    for (size_t i = 0; i < OP_HOOK_MAX_RUNNING; i++) {
        struct run *r = &h->runs[i];
        int status;
        if (r->pid > 0 && waitpid(r->pid, &status, WNOHANG) == r->pid)
            run_end(r, status);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    (void)fd, (void)what;
    r->killed = true;
    kill(-r->pid, SIGKILL); /* its process group: what it started too */
}

struct op_hook *op_hook_new(struct event_base *base)
{
    struct op_hook *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->base = base;
    for (size_t i = 0; i < OP_HOOK_MAX_RUNNING; i++)
        h->runs[i].h = h;
    h->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, h);
    if (h->sigchld == NULL || event_add(h->sigchld, NULL) != 0) {
        op_hook_free(h);
        return NULL;
    }
    return h;
}

void op_hook_free(struct op_hook *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < OP_HOOK_MAX_RUNNING; i++)
        if (h->runs[i].timeout != NULL)
            event_free(h->runs[i].timeout);
    if (h->sigchld != NULL)
        event_free(h->sigchld);
    free(h);
}

static void hex(const uint8_t *b, char *out)
{
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* environ plus the SOVA_FILE_* variables (replacing inherited ones). */
static char **make_env(const struct op_hook_file *file, char vars[5][4200])
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 6, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SOVA_FILE_", 10) != 0)
            env[k++] = environ[i];
    char id[65], sha[65];
    hex(file->id, id);
    snprintf(vars[0], sizeof(vars[0]), "SOVA_FILE_PATH=%s", file->path);
    snprintf(vars[1], sizeof(vars[1]), "SOVA_FILE_NAME=%s", file->name);
    snprintf(vars[2], sizeof(vars[2]), "SOVA_FILE_ID=%s", id);
    snprintf(vars[3], sizeof(vars[3]), "SOVA_FILE_SIZE=%llu", (unsigned long long)file->size);
    if (file->sha256 != NULL)
        hex(file->sha256, sha);
    snprintf(vars[4], sizeof(vars[4]), "SOVA_FILE_SHA256=%s", file->sha256 ? sha : "");
    for (size_t i = 0; i < 5; i++)
        env[k++] = vars[i];
    return env;
}

void op_hook_run(struct op_hook *h, const char *command, uint64_t timeout_s,
                 const struct op_hook_file *file)
{
    if (h == NULL || command == NULL || command[0] == '\0')
        return;
    char id[17];
    for (size_t i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", file->id[i]);
    struct run *r = NULL;
    for (size_t i = 0; i < OP_HOOK_MAX_RUNNING && r == NULL; i++)
        if (h->runs[i].pid == 0)
            r = &h->runs[i];
    if (r == NULL) {
        log_warn(MOD, "%s: on-complete hook not run: %d hooks are running already", id,
                 OP_HOOK_MAX_RUNNING);
        h->stats.failed++;
        return;
    }
    char vars[5][4200];
    char **env = make_env(file, vars);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    /* Nothing of the daemon's but stdout and stderr, even a descriptor
     * opened without O_CLOEXEC: a hook that outlives it must not hold its
     * sockets or its database. */
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    /* Its own process group (to kill all of it), default signals and an
     * empty mask (the daemon's own dispositions are not the hook's). */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    pid_t pid = 0;
    int rc = env == NULL ? ENOMEM : posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    if (rc != 0) {
        log_warn(MOD, "%s: cannot start the on-complete hook: %s", id, strerror(rc));
        h->stats.failed++;
        return;
    }
    *r = (struct run){.h = h, .pid = pid, .timeout_s = timeout_s};
    memcpy(r->id, id, sizeof(r->id));
    h->stats.started++;
    h->stats.running++;
    log_info(MOD, "%s: on-complete hook started (pid %ld) for %s", id, (long)pid, file->path);
    if (timeout_s > 0) {
        r->timeout = evtimer_new(h->base, on_timeout, r);
        struct timeval tv = {.tv_sec = (time_t)timeout_s};
        if (r->timeout != NULL)
            evtimer_add(r->timeout, &tv);
    }
}

void op_hook_stats(const struct op_hook *h, struct op_hook_stats *out)
{
    *out = h != NULL ? h->stats : (struct op_hook_stats){0};
}
