/* `sova-peer join` (ordinary/op_join.h) on bundles made here with the
 * OpenSSL API: a good bundle is imported and then serves as bootstrap and
 * federation-ca; a changed, forged, truncated or malformed one, a root that
 * is not a CA, a root that is not --root-id or not the one in use are
 * refused with the reason and write nothing. */
#include "cunit_main.h"
#include "err.h"
#include "identity.h"
#include "op_config.h"
#include "op_join.h"

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char err[CONFIG_ERR_MAX], msg[1024];

struct root {
    EVP_PKEY *key;
    X509 *cert;
    char pem[4096];
    char id[NODE_ID_STR_LEN + 1];
};

static struct root fed, other;

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A self-signed certificate of a new Ed25519 key; a CA or not. */
static int make_root(struct root *r, const char *cn, bool ca)
{
    r->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    r->cert = X509_new();
    X509_NAME *name = r->cert ? X509_get_subject_name(r->cert) : NULL;
    int ok =
        r->key != NULL && name != NULL && X509_set_version(r->cert, X509_VERSION_3) == 1 &&
        ASN1_INTEGER_set(X509_get_serialNumber(r->cert), 1) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) == 1 &&
        X509_set_issuer_name(r->cert, name) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(r->cert), -3600) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(r->cert), 86400) != NULL &&
        X509_set_pubkey(r->cert, r->key) == 1 &&
        add_ext(r->cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
        add_ext(r->cert, NID_key_usage, ca ? "critical,keyCertSign" : "digitalSignature") &&
        X509_sign(r->cert, r->key, NULL) > 0;
    BIO *bio = BIO_new(BIO_s_mem());
    ok = ok && bio != NULL && PEM_write_bio_X509(bio, r->cert) == 1;
    int n = ok ? BIO_read(bio, r->pem, sizeof(r->pem) - 1) : -1;
    BIO_free(bio);
    uint8_t id[NODE_ID_LEN];
    if (n <= 0 || node_id_from_x509(r->cert, id) != 0)
        return -1;
    r->pem[n] = '\0';
    node_id_format(id, r->id);
    return 0;
}

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_op_join.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    /* No config file of whoever runs the test. */
    setenv("HOME", dir, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    return make_root(&fed, "fed root", true) || make_root(&other, "other root", true);
}

static int suite_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    X509_free(fed.cert);
    X509_free(other.cert);
    EVP_PKEY_free(fed.key);
    EVP_PKEY_free(other.key);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write dir/NAME: body, then the signature of signer over it (and after it
 * the text tail). */
static const char *write_bundle(const char *name, const char *body, EVP_PKEY *signer,
                                const char *tail)
{
    static char path[128];
    unsigned char sig[64], b64[128];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, signer) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)body, strlen(body)) == 1;
    EVP_MD_CTX_free(ctx);
    CU_ASSERT_TRUE_FATAL(ok);
    EVP_EncodeBlock(b64, sig, (int)siglen);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%ssignature %s\n%s", body, b64, tail);
    fclose(f);
    return path;
}

static void body_of(char *buf, size_t cap, const char *head, const struct root *r)
{
    snprintf(buf, cap, "# a bundle\n%s%s", head, r->pem);
}

/* join path into dir/STATE with federation_ca (NULL: none set). */
static int join(const char *state, const char *path, const char *federation_ca, const char *root_id,
                bool force)
{
    struct op_settings s;
    memset(&s, 0, sizeof(s));
    char sd[128];
    snprintf(sd, sizeof(sd), "%s/%s", dir, state);
    s.state_dir = sd;
    s.federation_ca = (char *)federation_ca;
    struct op_join_opts o = {.root_id = root_id, .force = force};
    err[0] = '\0';
    return op_join(&s, path, &o, msg, sizeof(msg), err, sizeof(err));
}

static bool exists(const char *state, const char *file)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s/%s", dir, state, file);
    return access(p, F_OK) == 0;
}

static void test_good_bundle_is_imported_and_used(void)
{
    char body[8192];
    body_of(body, sizeof(body), "sova-bundle 1\nbootstrap 127.0.0.1:7070\nbootstrap [::1]:7070\n",
            &fed);
    const char *b = write_bundle("good.bundle", body, fed.key, "");
    CU_ASSERT_EQUAL(join("good", b, NULL, fed.id, false), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, fed.id));
    CU_ASSERT_TRUE(exists("good", OP_JOINED_CA));
    CU_ASSERT_TRUE(exists("good", OP_JOINED_CONF));
    /* the settings now take bootstrap and federation-ca from the join */
    char sd[128], *argv[1];
    snprintf(sd, sizeof(sd), "--state-dir=%s/good", dir);
    argv[0] = sd;
    struct op_settings s;
    CU_ASSERT_EQUAL_FATAL(op_settings_load(&s, 1, argv, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(s.bootstrap, "127.0.0.1:7070,[::1]:7070");
    CU_ASSERT_PTR_NOT_NULL(strstr(s.federation_ca, OP_JOINED_CA));
    /* joining the same federation again is fine; another is refused */
    CU_ASSERT_EQUAL(join("good", b, s.federation_ca, NULL, false), 0);
    body_of(body, sizeof(body), "sova-bundle 1\nbootstrap 127.0.0.1:9\n", &other);
    const char *o = write_bundle("other.bundle", body, other.key, "");
    CU_ASSERT_EQUAL(join("good", o, s.federation_ca, NULL, false), SOVA_ERR_ID_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "wrong root"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--force"));
    /* --force switches from a joined root, never from one the config names */
    CU_ASSERT_EQUAL(join("good", o, s.federation_ca, NULL, true), 0);
    op_settings_free(&s);
    char ca[128];
    snprintf(ca, sizeof(ca), "%s/fed-root.crt", dir);
    FILE *f = fopen(ca, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(fed.pem, f);
    fclose(f);
    CU_ASSERT_EQUAL(join("cfg", o, ca, NULL, true), SOVA_ERR_ID_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "set federation-ca in your config"));
    CU_ASSERT_FALSE(exists("cfg", OP_JOINED_DIR));
}

static void test_bad_bundles_change_nothing(void)
{
    static const struct {
        const char *name, *head, *tail, *want;
        bool other_signs, change_after;
    } cases[] = {
        {"changed", "sova-bundle 1\nbootstrap 127.0.0.1:7070\n", "", "bad signature", false, true},
        {"forged", "sova-bundle 1\nbootstrap 127.0.0.1:7070\n", "", "bad signature", true, false},
        {"trailing", "sova-bundle 1\nbootstrap 127.0.0.1:7070\n", "more\n", "base64", false, false},
        {"format", "sova-bundle 2\nbootstrap 127.0.0.1:7070\n", "", "expected 'sova-bundle 1'",
         false, false},
        {"nobootstrap", "sova-bundle 1\n", "", "no bootstrap supernode", false, false},
        {"badbootstrap", "sova-bundle 1\nbootstrap nohost\n", "", "is not HOST:PORT", false, false},
        {"port0", "sova-bundle 1\nbootstrap a:0\n", "", "is not HOST:PORT", false, false},
        {"junk", "sova-bundle 1\nbootstrap a:1\nrm -rf /\n", "", "unexpected line", false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[8192];
        body_of(body, sizeof(body), cases[i].head, &fed);
        const char *b = write_bundle(cases[i].name, body,
                                     cases[i].other_signs ? other.key : fed.key, cases[i].tail);
        if (cases[i].change_after) {
            FILE *f = fopen(b, "r+");
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            fseek(f, (long)strlen("# a bundle\nsova-bundle 1\nbootstrap 127.0.0.1:70"), SEEK_SET);
            fputc('8', f);
            fclose(f);
        }
        int rc = join("bad", b, NULL, NULL, false);
        CU_ASSERT_EQUAL(rc, SOVA_ERR_BAD_VALUE);
        if (strstr(err, cases[i].want) == NULL)
            fprintf(stderr, "%s: expected '%s' in '%s'\n", cases[i].name, cases[i].want, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
        CU_ASSERT_FALSE(exists("bad", OP_JOINED_DIR));
    }
}

static void test_roots_that_are_not_expected(void)
{
    struct root leaf;
    CU_ASSERT_EQUAL_FATAL(make_root(&leaf, "not a ca", false), 0);
    char body[8192];
    body_of(body, sizeof(body), "sova-bundle 1\nbootstrap 127.0.0.1:7070\n", &leaf);
    const char *b = write_bundle("leaf.bundle", body, leaf.key, "");
    CU_ASSERT_EQUAL(join("root", b, NULL, NULL, false), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a self-signed CA"));
    X509_free(leaf.cert);
    EVP_PKEY_free(leaf.key);
    body_of(body, sizeof(body), "sova-bundle 1\nbootstrap 127.0.0.1:7070\n", &other);
    b = write_bundle("other-root.bundle", body, other.key, "");
    CU_ASSERT_EQUAL(join("root", b, NULL, fed.id, false), SOVA_ERR_ID_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "wrong root"));
    CU_ASSERT_EQUAL(join("root", b, NULL, "not-an-id", false), SOVA_ERR_USAGE);
    CU_ASSERT_FALSE(exists("root", OP_JOINED_DIR));
    CU_ASSERT_EQUAL(join("root", "/nonexistent/bundle", NULL, NULL, false), SOVA_ERR_IO);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_join", suite_init, suite_cleanup);
    if (s == NULL)
        return -1;
    CU_add_test(s, "a good bundle is imported and used", test_good_bundle_is_imported_and_used);
    CU_add_test(s, "bad bundles change nothing", test_bad_bundles_change_nothing);
    CU_add_test(s, "roots that are not expected", test_roots_that_are_not_expected);
    return 0;
}
