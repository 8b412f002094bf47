/* op_check.h - what `sova-peer run --check-config` checks (common/cfgcheck.h):
 * the federation (bootstrap and federation-ca set, the root readable), the
 * state folder and the identity in it, the listen addresses, the HTTP
 * API's address and TLS pair, the log file. `sova-peer run` runs the same
 * checks before it starts and exits 2 on any problem.
 *
 * Blocking file-system calls: the command line only, never the loop. */
#ifndef SOVA_OP_CHECK_H
#define SOVA_OP_CHECK_H

#include "cfgcheck.h"
#include "op_config.h"

/* Every problem of s into c. */
void op_check_settings(const struct op_settings *s, struct cfgcheck *c);
/* What `print-config` checks: the files s names exist. */
void op_check_files(const struct op_settings *s, struct cfgcheck *c);

#endif
