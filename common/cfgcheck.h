/* cfgcheck.h - what `--check-config` looks at beyond the option table.
 *
 * The option table (config.h) checks each value's syntax and bounds; a
 * daemon can still fail to start on what the values name: a certificate or
 * key that cannot be read, a key that others may read, a key that is not
 * the certificate's, a certificate that does not chain to the federation
 * root, a listen address that is not numeric, a log file or state folder
 * it cannot use. These checks do what the daemon's start does, in the same
 * words, without creating or changing anything, and report every problem
 * found rather than the first: the daemon's main runs them for
 * --check-config and before it starts (a problem is then exit status 2, a
 * configuration error, which systemd's RestartPreventExitStatus=2 does not
 * restart).
 *
 * A struct cfgcheck collects the problems, one line each (no newline),
 * in the order found; the caller prints them.
 *
 * Blocking: file-system calls and getaddrinfo() on numeric hosts (no DNS).
 * For the command line and start-up, never on the event loop.
 */
#ifndef SOVA_CFGCHECK_H
#define SOVA_CFGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CFGCHECK_MAX_PROBLEMS 32  /* kept; more are counted only */
#define CFGCHECK_LINE_MAX     640 /* bytes of one problem's line */

/* Opaque; owns its lines. */
struct cfgcheck;

/* NULL when out of memory. */
struct cfgcheck *cfgcheck_new(void);
/* NULL is accepted. */
void cfgcheck_free(struct cfgcheck *c);

/* Add a problem (printf-style, one line). */
void cfgcheck_add(struct cfgcheck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How many were added (also those beyond CFGCHECK_MAX_PROBLEMS). */
size_t cfgcheck_count(const struct cfgcheck *c);
/* The i-th kept problem, i < CFGCHECK_MAX_PROBLEMS; NULL past the last
 * kept. Borrowed: valid until cfgcheck_free. */
const char *cfgcheck_problem(const struct cfgcheck *c, size_t i);

/* Each problem as a line "PROG: PROBLEM" on out, with the journal's
 * priority prefix of an error when stderr is the journal (log.h). Returns
 * how many there were. */
size_t cfgcheck_print(const struct cfgcheck *c, const char *prog, FILE *out);

/* A node's certificate and key as identity_load_files() loads them: each
 * readable, the key this user's and mode 0600 or narrower, an Ed25519 key
 * that matches the certificate's public key. With root_path not NULL (a
 * supernode), also the federation root (cfgcheck_root) and that the
 * certificate chains to it, as the supernode's TLS context checks. */
void cfgcheck_identity(struct cfgcheck *c, const char *cert_path, const char *key_path,
                       const char *root_path);
/* The federation root file: readable, one or more PEM certificates. */
void cfgcheck_root(struct cfgcheck *c, const char *root_path);
/* A peer's identity in its state folder (identity.h): none yet is fine (the
 * first start makes one); a key alone is checked alone; a certificate
 * without its key is a problem; both as cfgcheck_identity without root. */
void cfgcheck_state_identity(struct cfgcheck *c, const char *state_dir);
/* A state folder: if it exists, this user's alone (statedir.h); if not,
 * its nearest existing parent must let this user create it. */
void cfgcheck_state_dir(struct cfgcheck *c, const char *option, const char *dir);
/* An address to listen on (option names it): a numeric HOST:PORT, as
 * evloop_listen() takes. *loopback (may be NULL) is set when it is a
 * loopback address. */
void cfgcheck_listen(struct cfgcheck *c, const char *option, const char *endpoint, bool *loopback);
/* A log file: writable if it exists, else its folder lets this user make it. */
void cfgcheck_log_file(struct cfgcheck *c, const char *path);
/* That a file an option names exists (what --print-config checks): stat()
 * only, not whether it can be read or used. */
void cfgcheck_exists(struct cfgcheck *c, const char *option, const char *path);

#endif
