/* fuzz_config.c - the config file parser (inih + the option tables) on
 * arbitrary text, for both daemons. Checked: no crash or leak, and a file
 * that loads prints as a file that loads to the same settings. */
#include "config.h"
#include "op_config.h"
#include "sn_config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_settings(const struct config_schema *schema, const void *settings)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (mem == NULL)
        abort();
    config_print(schema, settings, mem);
    fclose(mem);
    return buf;
}

/* settings_a and settings_b are zeroed structs of the schema's daemon. */
static void check(const struct config_schema *schema, const char *text, void *a, void *b)
{
    char err[CONFIG_ERR_MAX];
    if (config_defaults(schema, a, err, sizeof(err)) != 0)
        abort();
    if (config_load_string(schema, a, text, "fuzz.conf", err, sizeof(err)) == 0) {
        char *once = print_settings(schema, a);
        if (config_defaults(schema, b, err, sizeof(err)) != 0 ||
            config_load_string(schema, b, once, "printed", err, sizeof(err)) != 0)
            abort(); /* what we print must load */
        char *twice = print_settings(schema, b);
        if (strcmp(once, twice) != 0)
            abort(); /* and load to the same settings */
        free(once);
        free(twice);
    }
    config_free(schema, a);
    config_free(schema, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct sn_settings sa = {0}, sb = {0};
    check(&sn_config_schema, text, &sa, &sb);
    struct op_settings oa = {0}, ob = {0};
    check(&op_config_schema, text, &oa, &ob);
    free(text);
    return 0;
}
