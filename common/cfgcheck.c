/* cfgcheck.c - the checks of --check-config (cfgcheck.h). */
#include "cfgcheck.h"
#include "config.h"
#include "identity.h"
#include "log.h"
#include "statedir.h"
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

struct cfgcheck {
    size_t count;
    char lines[CFGCHECK_MAX_PROBLEMS][CFGCHECK_LINE_MAX];
};

struct cfgcheck *cfgcheck_new(void)
{
    return calloc(1, sizeof(struct cfgcheck));
}

void cfgcheck_free(struct cfgcheck *c)
{
    free(c);
}

void cfgcheck_add(struct cfgcheck *c, const char *fmt, ...)
{
    if (c->count < CFGCHECK_MAX_PROBLEMS) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->lines[c->count], CFGCHECK_LINE_MAX, fmt, ap);
        va_end(ap);
    }
    c->count++;
}

size_t cfgcheck_count(const struct cfgcheck *c)
{
    return c->count;
}

const char *cfgcheck_problem(const struct cfgcheck *c, size_t i)
{
    return i < c->count && i < CFGCHECK_MAX_PROBLEMS ? c->lines[i] : NULL;
}

size_t cfgcheck_print(const struct cfgcheck *c, const char *prog, FILE *out)
{
    const char *prefix = sova_log_prefix(SOVA_LOG_ERROR);
    for (size_t i = 0; i < c->count && i < CFGCHECK_MAX_PROBLEMS; i++)
        fprintf(out, "%s%s: %s\n", prefix, prog, c->lines[i]);
    if (c->count > CFGCHECK_MAX_PROBLEMS)
        fprintf(out, "%s%s: and %zu more problems\n", prefix, prog,
                c->count - CFGCHECK_MAX_PROBLEMS);
    return c->count;
}

void cfgcheck_root(struct cfgcheck *c, const char *root_path)
{
    char err[CFGCHECK_LINE_MAX];
    STACK_OF(X509) *roots = NULL;
    if (identity_read_certs(root_path, &roots, err, sizeof(err)) != 0)
        cfgcheck_add(c, "federation root: %s", err);
    else
        sk_X509_pop_free(roots, X509_free);
}

/* The chain check of a supernode's TLS context: the same code. */
static void check_chain(struct cfgcheck *c, const char *cert_path, const char *key_path,
                        const char *root_path)
{
    char err[CFGCHECK_LINE_MAX];
    struct sova_identity *id = NULL;
    struct tls_ctx *tls = NULL;
    int rc = identity_load_files(cert_path, key_path, &id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(id, root_path, TLS_CTX_SUPERNODE, &tls, err, sizeof(err));
    if (rc != 0)
        cfgcheck_add(c, "%s", err);
    tls_ctx_free(tls);
    identity_free(id);
}

void cfgcheck_identity(struct cfgcheck *c, const char *cert_path, const char *key_path,
                       const char *root_path)
{
    char err[CFGCHECK_LINE_MAX];
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    size_t before = c->count;
    if (identity_read_certs(cert_path, &certs, err, sizeof(err)) != 0)
        cfgcheck_add(c, "%s", err);
    if (identity_read_key(key_path, &key, err, sizeof(err)) != 0)
        cfgcheck_add(c, "%s", err);
    if (certs != NULL && key != NULL && X509_check_private_key(sk_X509_value(certs, 0), key) != 1)
        cfgcheck_add(c, "key %s does not match certificate %s (they are not one identity)",
                     key_path, cert_path);
    sk_X509_pop_free(certs, X509_free);
    EVP_PKEY_free(key);
    if (root_path == NULL)
        return;
    size_t mine = c->count;
    cfgcheck_root(c, root_path);
    if (c->count == mine && mine == before) /* all readable and one identity */
        check_chain(c, cert_path, key_path, root_path);
}

void cfgcheck_state_identity(struct cfgcheck *c, const char *state_dir)
{
    char key[PATH_MAX], cert[PATH_MAX];
    struct stat st;
    snprintf(key, sizeof(key), "%s/%s", state_dir, IDENTITY_KEY_FILE);
    snprintf(cert, sizeof(cert), "%s/%s", state_dir, IDENTITY_CERT_FILE);
    bool have_key = lstat(key, &st) == 0, have_cert = lstat(cert, &st) == 0;
    if (have_key && have_cert) {
        cfgcheck_identity(c, cert, key, NULL);
    } else if (have_cert) {
        cfgcheck_add(c,
                     "%s exists but its key %s does not; restore the key, or remove %s to "
                     "create a new identity (a new node ID)",
                     cert, key, cert);
    } else if (have_key) {
        char err[CFGCHECK_LINE_MAX];
        EVP_PKEY *k = NULL;
        if (identity_read_key(key, &k, err, sizeof(err)) != 0)
            cfgcheck_add(c, "%s", err);
        EVP_PKEY_free(k);
    }
}

/* The nearest existing folder above path (path itself excluded) into out. */
static void existing_parent(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    for (;;) {
        char *slash = strrchr(out, '/');
        if (slash == NULL) {
            snprintf(out, cap, ".");
            return;
        }
        if (slash == out) {
            out[1] = '\0';
            return;
        }
        *slash = '\0';
        struct stat st;
        if (stat(out, &st) == 0)
            return;
    }
}

void cfgcheck_state_dir(struct cfgcheck *c, const char *option, const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) == 0) {
        char err[CFGCHECK_LINE_MAX];
        if (statedir_check(dir, err, sizeof(err)) != 0)
            cfgcheck_add(c, "option '%s': %s", option, err);
        return;
    }
    if (errno != ENOENT) {
        cfgcheck_add(c, "option '%s': cannot use folder %s: %s", option, dir, strerror(errno));
        return;
    }
    char parent[PATH_MAX];
    existing_parent(dir, parent, sizeof(parent));
    if (access(parent, W_OK | X_OK) != 0)
        cfgcheck_add(c, "option '%s': folder %s does not exist and cannot be created in %s: %s",
                     option, dir, parent, strerror(errno));
}

void cfgcheck_listen(struct cfgcheck *c, const char *option, const char *endpoint, bool *loopback)
{
    char host[256];
    uint16_t port;
    if (loopback != NULL)
        *loopback = false;
    if (config_parse_endpoint(endpoint, host, sizeof(host), &port) != 0) {
        cfgcheck_add(c, "option '%s': '%s' is not ADDR:PORT", option, endpoint);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port_str[8];
    snprintf(port_str, sizeof(port_str), "%u", port);
    if (getaddrinfo(host, port_str, &hints, &ai) != 0 || ai == NULL) {
        cfgcheck_add(c, "option '%s': listen address '%s': host must be a numeric address", option,
                     endpoint);
        return;
    }
    if (loopback != NULL) {
        if (ai->ai_family == AF_INET)
            *loopback = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
        else if (ai->ai_family == AF_INET6)
            *loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    }
    freeaddrinfo(ai);
}

void cfgcheck_log_file(struct cfgcheck *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            cfgcheck_add(c, "option 'log-file': %s is a folder", path);
        else if (access(path, W_OK) != 0)
            cfgcheck_add(c, "option 'log-file': cannot write to %s: %s", path, strerror(errno));
        return;
    }
    /* the daemon makes the file, not its folder */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        cfgcheck_add(c, "option 'log-file': cannot create %s: folder %s does not exist", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        cfgcheck_add(c, "option 'log-file': cannot create %s in %s: %s", path, dir,
                     strerror(errno));
}

void cfgcheck_exists(struct cfgcheck *c, const char *option, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        cfgcheck_add(c, "option '%s': %s: %s", option, path, strerror(errno));
}
