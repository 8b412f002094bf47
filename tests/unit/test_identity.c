/* test_identity.c - peer identities on disk, key file modes, supernode files,
 * and node IDs agreeing with `deploy/sova-federation id`. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "identity.h"

static char tmp_root[256];    /* per-run scratch directory */
static char script[PATH_MAX]; /* deploy/sova-federation in the source tree */

/* path = tmp_root/name */
static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmp_root, name);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* Run a shell command built with printf; returns its exit status. */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* The node ID that `sova-federation id cert` prints (openssl CLI pipeline). */
static int script_id(const char *cert, char out[NODE_ID_STR_LEN + 1])
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "'%s' id '%s'", script, cert);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char line[128] = "";
    char *got = fgets(line, sizeof(line), p);
    int st = pclose(p);
    if (got == NULL || st != 0)
        return -1;
    line[strcspn(line, "\n")] = '\0';
    snprintf(out, NODE_ID_STR_LEN + 1, "%s", line);
    return strlen(line) == NODE_ID_STR_LEN ? 0 : -1;
}

static int suite_init(void)
{
    const char *data = getenv("SOVA_TEST_DATA"); /* <src>/tests/data */
    const char *suffix = "/tests/data";
    if (data == NULL || strlen(data) < strlen(suffix) ||
        strcmp(data + strlen(data) - strlen(suffix), suffix) != 0) {
        fprintf(stderr, "SOVA_TEST_DATA must be <source root>/tests/data\n");
        return -1;
    }
    snprintf(script, sizeof(script), "%.*s/deploy/sova-federation",
             (int)(strlen(data) - strlen(suffix)), data);
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof(tmp_root), "%s/sova-test-identity-XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(tmp_root) != NULL ? 0 : -1;
}

static int suite_clean(void)
{
    return shell("rm -rf '%s'", tmp_root) == 0 ? 0 : -1;
}

static void test_create_then_reload_same_id(void)
{
    char dir[PATH_MAX], key[PATH_MAX + 16], crt[PATH_MAX + 16], err[512] = "";
    tmp_path(dir, sizeof(dir), "create/state/peer"); /* parents do not exist yet */
    snprintf(key, sizeof(key), "%s/node.key", dir);
    snprintf(crt, sizeof(crt), "%s/node.crt", dir);

    /* Even with umask 0 the key must never be readable by others. */
    mode_t old_umask = umask(0);
    struct sova_identity *id = NULL;
    int rc = identity_load_or_create(dir, &id, err, sizeof(err));
    umask(old_umask);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(file_mode(key), 0600);
    CU_ASSERT_EQUAL(file_mode(crt), 0644);
    CU_ASSERT_EQUAL(file_mode(dir), 0700);

    /* Exactly the two files: no temporary file left behind. */
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            entries++;
    closedir(d);
    CU_ASSERT_EQUAL(entries, 2);

    CU_ASSERT_EQUAL(EVP_PKEY_get_id(identity_key(id)), EVP_PKEY_ED25519);
    CU_ASSERT_EQUAL(strlen(identity_id_str(id)), NODE_ID_STR_LEN);
    CU_ASSERT_EQUAL(strlen(identity_short_id(id)), NODE_ID_SHORT_LEN);
    CU_ASSERT(strncmp(identity_id_str(id), identity_short_id(id), NODE_ID_SHORT_LEN) == 0);
    CU_ASSERT_PTR_NULL(identity_chain(id));
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(identity_cert(id)), NID_commonName, cn,
                              sizeof(cn));
    CU_ASSERT_STRING_EQUAL(cn, "sova-peer");
    uint8_t from_cert[NODE_ID_LEN];
    CU_ASSERT_EQUAL(node_id_from_x509(identity_cert(id), from_cert), 0);
    CU_ASSERT(memcmp(from_cert, identity_id(id), NODE_ID_LEN) == 0);

    /* Second start: the same files, the same ID, through both loaders. */
    struct sova_identity *again = NULL, *files = NULL;
    CU_ASSERT_EQUAL_FATAL(identity_load_or_create(dir, &again, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(identity_id_str(again), identity_id_str(id));
    CU_ASSERT_EQUAL_FATAL(identity_load_files(crt, key, &files, err, sizeof(err)), 0);
    CU_ASSERT(memcmp(identity_id(files), identity_id(id), NODE_ID_LEN) == 0);

    /* The openssl CLI computes the same ID from the certificate. */
    char cli[NODE_ID_STR_LEN + 1] = "";
    CU_ASSERT_EQUAL(script_id(crt, cli), 0);
    CU_ASSERT_STRING_EQUAL(cli, identity_id_str(id));

    identity_free(id);
    identity_free(again);
    identity_free(files);
    identity_free(NULL);
}

/* A fresh peer state directory under tmp_root/name; returns its ID string. */
static void make_peer(const char *name, char *dir, size_t size, char id_out[NODE_ID_STR_LEN + 1])
{
    char err[512] = "";
    tmp_path(dir, size, name);
    struct sova_identity *id = NULL;
    int rc = identity_load_or_create(dir, &id, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "\n  %s\n", err);
        return;
    }
    snprintf(id_out, NODE_ID_STR_LEN + 1, "%s", identity_id_str(id));
    identity_free(id);
}

static void test_key_readable_by_others_is_refused(void)
{
    char dir[PATH_MAX], key[PATH_MAX + 16], id_str[NODE_ID_STR_LEN + 1] = "";
    make_peer("perms", dir, sizeof(dir), id_str);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    static const mode_t refused[] = {0644, 0640, 0604, 0660, 0602, 0610, 0666};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(chmod(key, refused[i]), 0);
        struct sova_identity *id = NULL;
        char err[512] = "", mode_text[16];
        CU_ASSERT_EQUAL(identity_load_or_create(dir, &id, err, sizeof(err)), SOVA_ERR_KEY_PERMS);
        CU_ASSERT_PTR_NULL(id);
        snprintf(mode_text, sizeof(mode_text), "mode %04o", (unsigned)refused[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, key));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, mode_text));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
        if (i == 0)
            printf("\n    refusal reads: %s\n", err);
    }
    /* Owner-only modes are fine, and the ID did not change. */
    static const mode_t accepted[] = {0400, 0600};
    for (size_t i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(chmod(key, accepted[i]), 0);
        struct sova_identity *id = NULL;
        char err[512] = "";
        CU_ASSERT_EQUAL_FATAL(identity_load_or_create(dir, &id, err, sizeof(err)), 0);
        CU_ASSERT_STRING_EQUAL(identity_id_str(id), id_str);
        identity_free(id);
    }
}

static void test_key_not_regular_file_is_refused(void)
{
    char dir[PATH_MAX], key[PATH_MAX + 16], id_str[NODE_ID_STR_LEN + 1] = "";
    make_peer("special", dir, sizeof(dir), id_str);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    CU_ASSERT_EQUAL_FATAL(unlink(key), 0);
    /* A FIFO must not make open() wait for a writer. */
    CU_ASSERT_EQUAL_FATAL(mkfifo(key, 0600), 0);
    struct sova_identity *id = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL(identity_load_or_create(dir, &id, err, sizeof(err)), SOVA_ERR_KEY_PERMS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
    CU_ASSERT_EQUAL_FATAL(unlink(key), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(key, 0700), 0);
    CU_ASSERT_EQUAL(identity_load_or_create(dir, &id, err, sizeof(err)), SOVA_ERR_KEY_PERMS);
    CU_ASSERT_PTR_NULL(id);
}

static void test_missing_files_recovery(void)
{
    char dir[PATH_MAX], key[PATH_MAX + 16], crt[PATH_MAX + 16], id_str[NODE_ID_STR_LEN + 1] = "";
    make_peer("recover", dir, sizeof(dir), id_str);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    snprintf(crt, sizeof(crt), "%s/node.crt", dir);
    struct sova_identity *id = NULL;
    char err[512] = "";

    /* Lost certificate: a new one for the same key, so the same ID. */
    CU_ASSERT_EQUAL_FATAL(unlink(crt), 0);
    CU_ASSERT_EQUAL_FATAL(identity_load_or_create(dir, &id, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(identity_id_str(id), id_str);
    CU_ASSERT_EQUAL(file_mode(crt), 0644);
    identity_free(id);
    id = NULL;

    /* Lost key: refuse instead of silently becoming another node. */
    CU_ASSERT_EQUAL_FATAL(unlink(key), 0);
    CU_ASSERT_EQUAL(identity_load_or_create(dir, &id, err, sizeof(err)), SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(id);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, key));
    CU_ASSERT_EQUAL(access(key, F_OK), -1);
}

static void test_load_files_errors(void)
{
    char dir_a[PATH_MAX], dir_b[PATH_MAX], ida[NODE_ID_STR_LEN + 1] = "",
                                                                 idb[NODE_ID_STR_LEN + 1] = "";
    make_peer("files-a", dir_a, sizeof(dir_a), ida);
    make_peer("files-b", dir_b, sizeof(dir_b), idb);
    CU_ASSERT_STRING_NOT_EQUAL(ida, idb);
    char crt_a[PATH_MAX + 16], key_b[PATH_MAX + 16], bad[PATH_MAX + 16], enc[PATH_MAX + 16];
    snprintf(crt_a, sizeof(crt_a), "%s/node.crt", dir_a);
    snprintf(key_b, sizeof(key_b), "%s/node.key", dir_b);
    snprintf(bad, sizeof(bad), "%s/garbage.key", dir_a);
    snprintf(enc, sizeof(enc), "%s/encrypted.key", dir_a);
    struct sova_identity *id = NULL;
    char err[512] = "";

    CU_ASSERT_EQUAL(identity_load_files(crt_a, key_b, &id, err, sizeof(err)), SOVA_ERR_CRYPTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not match"));

    CU_ASSERT_EQUAL(shell("umask 077; echo not a key > '%s'", bad), 0);
    CU_ASSERT_EQUAL(identity_load_files(crt_a, bad, &id, err, sizeof(err)), SOVA_ERR_CRYPTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad));

    /* An encrypted key is refused, without prompting for a passphrase. */
    CU_ASSERT_EQUAL(shell("umask 077; openssl genpkey -algorithm ed25519 -aes256 -pass pass:x "
                          "-out '%s' </dev/null",
                          enc),
                    0);
    CU_ASSERT_EQUAL(identity_load_files(crt_a, enc, &id, err, sizeof(err)), SOVA_ERR_CRYPTO);

    /* A key given as the certificate: no certificate in it. */
    CU_ASSERT_EQUAL(identity_load_files(key_b, key_b, &id, err, sizeof(err)), SOVA_ERR_CRYPTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no PEM certificate"));

    CU_ASSERT_EQUAL(identity_load_files("/nonexistent/sn.crt", key_b, &id, err, sizeof(err)),
                    SOVA_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/sn.crt"));
    CU_ASSERT_PTR_NULL(id);
}

/* A supernode certificate from the script: loads, and C and CLI agree on the
 * ID (for the root too). */
static void test_supernode_files_match_script_id(void)
{
    char fed[PATH_MAX];
    tmp_path(fed, sizeof(fed), "federation");
    CU_ASSERT_EQUAL_FATAL(shell("'%s' init '%s' >/dev/null", script, fed), 0);
    CU_ASSERT_EQUAL_FATAL(shell("'%s' issue '%s' sn1 >/dev/null", script, fed), 0);
    char crt[PATH_MAX + 16], key[PATH_MAX + 16], root[PATH_MAX + 16], err[512] = "";
    snprintf(crt, sizeof(crt), "%s/sn1.crt", fed);
    snprintf(key, sizeof(key), "%s/sn1.key", fed);
    snprintf(root, sizeof(root), "%s/root.crt", fed);
    CU_ASSERT_EQUAL(file_mode(key), 0600);

    struct sova_identity *id = NULL;
    int rc = identity_load_files(crt, key, &id, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char cli[NODE_ID_STR_LEN + 1] = "";
    CU_ASSERT_EQUAL(script_id(crt, cli), 0);
    CU_ASSERT_STRING_EQUAL(cli, identity_id_str(id));
    printf("\n    sn1 node ID: C %s, CLI %s\n", identity_id_str(id), cli);
    identity_free(id);

    STACK_OF(X509) *certs = NULL;
    CU_ASSERT_EQUAL_FATAL(identity_read_certs(root, &certs, err, sizeof(err)), 0);
    uint8_t rid[NODE_ID_LEN];
    char rid_str[NODE_ID_STR_LEN + 1];
    CU_ASSERT_EQUAL(node_id_from_x509(sk_X509_value(certs, 0), rid), 0);
    node_id_format(rid, rid_str);
    CU_ASSERT_EQUAL(script_id(root, cli), 0);
    CU_ASSERT_STRING_EQUAL(cli, rid_str);
    sk_X509_pop_free(certs, X509_free);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("identity", suite_init, suite_clean);
    if (s == NULL)
        return -1;
    CU_add_test(s, "create 0600 key, reload with the same ID", test_create_then_reload_same_id);
    CU_add_test(s, "key readable by group/others is refused",
                test_key_readable_by_others_is_refused);
    CU_add_test(s, "key that is not a regular file is refused",
                test_key_not_regular_file_is_refused);
    CU_add_test(s, "lost cert is remade, lost key is an error", test_missing_files_recovery);
    CU_add_test(s, "load_files: mismatch, garbage, encrypted, missing", test_load_files_errors);
    CU_add_test(s, "supernode files load; C ID equals sova-federation id",
                test_supernode_files_match_script_id);
    return 0;
}
