/* op_share_ignore.h - a share folder's .sovaignore (OP_SHARE_IGNORE_FILE),
 * like Syncthing's .stignore: one fnmatch(3) glob a line; '#' starts a
 * comment line, blank lines are skipped, surrounding blanks trimmed (and a
 * CR); a leading '/' anchors the pattern at the folder (matched against
 * the whole relative path), a pattern without '/' matches a name at any
 * depth, one with a '/' inside matches the relative path or any tail of it
 * that starts at a directory; a trailing '/' matches directories only. Not
 * supported: '!' negation, '**', '(?i)', '#include'. At most
 * OP_SHARE_IGNORE_MAX patterns are read.
 *
 * Reading the file blocks (the share worker does it); matching is pure.
 */
#ifndef SOVA_OP_SHARE_IGNORE_H
#define SOVA_OP_SHARE_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct op_share_ignore_pattern {
    char *glob;     /* without the leading '/' and the trailing '/' */
    bool anchored;  /* started with '/' */
    bool dir_only;  /* ended with '/' */
    bool has_slash; /* a '/' inside */
};

/* Patterns owned by the struct; zero it to start. */
struct op_share_ignore {
    struct op_share_ignore_pattern *p;
    size_t n, cap;
};

void op_share_ignore_clear(struct op_share_ignore *ig);
/* Add one line (modified in place: trimmed). 0, or SOVA_ERR_NOMEM. */
int op_share_ignore_add_line(struct op_share_ignore *ig, char *line);
/* Clear ig, then read OP_SHARE_IGNORE_FILE in the folder dfd (none: it
 * ignores nothing). 0, SOVA_ERR_NOMEM, or SOVA_ERR_IO when the file is
 * there but cannot be read (logged, naming folder): the caller must not
 * scan the folder then, or it would share what the file hides. */
int op_share_ignore_load(struct op_share_ignore *ig, int dfd, const char *folder);
/* Is the entry at rel (relative to the folder; name its last component; a
 * directory if is_dir) ignored? */
bool op_share_ignore_match(const struct op_share_ignore *ig, const char *rel, const char *name,
                           bool is_dir);

#endif
