/* op_check.c - the peer's --check-config (op_check.h). */
#include "op_check.h"
#include "op_api.h"

#include <stddef.h>

void op_check_settings(const struct op_settings *s, struct cfgcheck *c)
{
    if (s->bootstrap == NULL || s->federation_ca == NULL)
        /* A first run: say how to get them. */
        cfgcheck_add(c,
                     "no federation: %s not set; import your federation's bundle with "
                     "`sova-peer join BUNDLE`, or set bootstrap and federation-ca in the config "
                     "file (`sova-peer init` writes one) or on the command line",
                     s->bootstrap != NULL       ? "federation-ca is"
                     : s->federation_ca != NULL ? "bootstrap is"
                                                : "bootstrap and federation-ca are");
    if (s->federation_ca != NULL)
        cfgcheck_root(c, s->federation_ca);
    size_t before = cfgcheck_count(c);
    cfgcheck_state_dir(c, "state-dir", s->state_dir);
    if (cfgcheck_count(c) == before)
        cfgcheck_state_identity(c, s->state_dir);
    cfgcheck_listen(c, "listen", s->listen, NULL);
    if (s->metrics_listen != NULL)
        cfgcheck_listen(c, "metrics-listen", s->metrics_listen, NULL);
    op_api_check(s, c);
    if (s->log_file != NULL)
        cfgcheck_log_file(c, s->log_file);
}

void op_check_files(const struct op_settings *s, struct cfgcheck *c)
{
    static const struct {
        const char *name;
        size_t offset;
    } files[] = {
        {"federation-ca", offsetof(struct op_settings, federation_ca)},
        {"api-tls-cert", offsetof(struct op_settings, api_tls_cert)},
        {"api-tls-key", offsetof(struct op_settings, api_tls_key)},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *path = *(char *const *)((const char *)s + files[i].offset);
        if (path != NULL)
            cfgcheck_exists(c, files[i].name, path);
    }
}
