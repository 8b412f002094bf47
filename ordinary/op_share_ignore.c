/* op_share_ignore.c - a share folder's .sovaignore (op_share_ignore.h). */
#include "op_share_ignore.h"
#include "err.h"
#include "log.h"
#include "op_share.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "share"

void op_share_ignore_clear(struct op_share_ignore *ig)
{
    for (size_t i = 0; i < ig->n; i++)
        free(ig->p[i].glob);
    free(ig->p);
    *ig = (struct op_share_ignore){0};
}

int op_share_ignore_add_line(struct op_share_ignore *ig, char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    while (*line == ' ' || *line == '\t')
        line++, n--;
    if (n == 0 || line[0] == '#' || ig->n >= OP_SHARE_IGNORE_MAX)
        return 0;
    struct op_share_ignore_pattern p = {0};
    if (line[0] == '/') {
        p.anchored = true;
        line++, n--;
    }
    if (n > 0 && line[n - 1] == '/') {
        p.dir_only = true;
        line[--n] = '\0';
    }
    if (n == 0)
        return 0;
    p.has_slash = strchr(line, '/') != NULL;
    if (ig->n == ig->cap) {
        size_t cap = ig->cap ? ig->cap * 2 : 16;
        void *grown = realloc(ig->p, cap * sizeof(*ig->p));
        if (grown == NULL)
            return SOVA_ERR_NOMEM;
        ig->p = grown;
        ig->cap = cap;
    }
    if ((p.glob = strdup(line)) == NULL)
        return SOVA_ERR_NOMEM;
    ig->p[ig->n++] = p;
    return 0;
}

int op_share_ignore_load(struct op_share_ignore *ig, int dfd, const char *folder)
{
    op_share_ignore_clear(ig);
    int fd = openat(dfd, OP_SHARE_IGNORE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) { /* sharing what the user meant to hide is worse than not scanning */
        log_warn(MOD, "cannot read %s/%s: %s", folder, OP_SHARE_IGNORE_FILE, strerror(errno));
        return SOVA_ERR_IO;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return SOVA_ERR_NOMEM;
    }
    char line[PATH_MAX];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        rc = op_share_ignore_add_line(ig, line);
    }
    if (rc == 0 && ferror(f)) {
        log_warn(MOD, "cannot read %s/%s: %s", folder, OP_SHARE_IGNORE_FILE, strerror(errno));
        rc = SOVA_ERR_IO;
    }
    fclose(f);
    return rc;
}

bool op_share_ignore_match(const struct op_share_ignore *ig, const char *rel, const char *name,
                           bool is_dir)
{
    for (size_t i = 0; i < ig->n; i++) {
        const struct op_share_ignore_pattern *p = &ig->p[i];
        if (p->dir_only && !is_dir)
            continue;
        if (p->anchored) {
            if (fnmatch(p->glob, rel, FNM_PATHNAME) == 0)
                return true;
        } else if (!p->has_slash) {
            if (fnmatch(p->glob, name, 0) == 0)
                return true;
        } else {
            for (const char *tail = rel; tail != NULL; tail = strchr(tail, '/')) {
                if (*tail == '/')
                    tail++;
                if (fnmatch(p->glob, tail, FNM_PATHNAME) == 0)
                    return true;
            }
        }
    }
    return false;
}
