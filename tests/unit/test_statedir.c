/* test_statedir.c - a daemon's folders must be its user's alone
 * (common/statedir.h): a missing folder is made 0700 with its parents; a
 * folder writable by group or others, owned by another user, a symbolic
 * link or a file is refused with a reason; the folder of a socket is
 * checked the same way; a node key owned by another user is refused even
 * at mode 0600 (common/identity.c). */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "identity.h"
#include "statedir.h"

static char root[256];

static int suite_init(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/sova-test-statedir-XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", root, name);
    return buf;
}

static void test_prepare_creates_private(void)
{
    char p[512], err[512] = "";
    CU_ASSERT_EQUAL(statedir_prepare(at("a/b/state", p, sizeof(p)), err, sizeof(err)), 0);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
    CU_ASSERT(S_ISDIR(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), 0);
    /* a second prepare of the same folder is fine */
    CU_ASSERT_EQUAL(statedir_prepare(p, err, sizeof(err)), 0);
}

static void test_refused(void)
{
    char p[512], err[512];
    CU_ASSERT_EQUAL(mkdir(at("world", p, sizeof(p)), 0700), 0);
    CU_ASSERT_EQUAL(chmod(p, 01777), 0); /* like /tmp, sticky bit and all */
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "writable by everyone"));
    CU_ASSERT_EQUAL(statedir_prepare(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);

    CU_ASSERT_EQUAL(mkdir(at("group", p, sizeof(p)), 0700), 0);
    CU_ASSERT_EQUAL(chmod(p, 0770), 0);
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "its group"));

    char target[512];
    CU_ASSERT_EQUAL(mkdir(at("real", target, sizeof(target)), 0700), 0);
    CU_ASSERT_EQUAL(symlink(target, at("link", p, sizeof(p))), 0);
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbolic link"));

    int fd = open(at("file", p, sizeof(p)), O_CREAT | O_WRONLY, 0600);
    CU_ASSERT(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);

    CU_ASSERT_EQUAL(statedir_check(at("missing", p, sizeof(p)), err, sizeof(err)), SOVA_ERR_IO);

    /* a socket's folder */
    char sock[512];
    snprintf(sock, sizeof(sock), "%s/world/control.sock", root);
    CU_ASSERT_EQUAL(statedir_check_parent(sock, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    snprintf(sock, sizeof(sock), "%s/real/control.sock", root);
    CU_ASSERT_EQUAL(statedir_check_parent(sock, err, sizeof(err)), 0);
}

/* Owned by another user: needs root to chown (CI runs as root; a run
 * without root says so and checks the rest). */
static void test_other_owner(void)
{
    if (geteuid() != 0) {
        printf("\n    NOT RUN without root: chown to another user\n");
        CU_FAIL("needs root to give a folder to another user");
        return;
    }
    char p[512], err[512];
    CU_ASSERT_EQUAL(mkdir(at("theirs", p, sizeof(p)), 0700), 0);
    CU_ASSERT_EQUAL(chown(p, 65534, 65534), 0);
    CU_ASSERT_EQUAL(statedir_check(p, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "belongs to user 65534"));

    /* a peer identity in such a folder is refused, and so is a node key of
     * another user at mode 0600 */
    struct sova_identity *id = NULL;
    CU_ASSERT_EQUAL(identity_load_or_create(p, &id, err, sizeof(err)), SOVA_ERR_UNSAFE_DIR);
    CU_ASSERT_PTR_NULL(id);
    char mine[512], key[600], crt[600];
    CU_ASSERT_EQUAL_FATAL(
        identity_load_or_create(at("mine", mine, sizeof(mine)), &id, err, sizeof(err)), 0);
    identity_free(id);
    id = NULL;
    snprintf(key, sizeof(key), "%s/node.key", mine);
    snprintf(crt, sizeof(crt), "%s/node.crt", mine);
    CU_ASSERT_EQUAL(chown(key, 65534, 65534), 0);
    CU_ASSERT_EQUAL(identity_load_files(crt, key, &id, err, sizeof(err)), SOVA_ERR_KEY_PERMS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "belongs to user 65534"));
    CU_ASSERT_PTR_NULL(id);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("statedir", suite_init, suite_clean);
    if (!s)
        return -1;
    CU_add_test(s, "a missing state folder is made 0700, parents too",
                test_prepare_creates_private);
    CU_add_test(s, "world- or group-writable, a link, a file: refused with the reason",
                test_refused);
    CU_add_test(s, "another user's folder or key: refused", test_other_owner);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
