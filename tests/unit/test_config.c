/* Config: defaults, file, command line precedence, and every error naming
 * the file, line and option. Uses the supernode's real schema. */
#include "config.h"
#include "cunit_main.h"
#include "err.h"
#include "log.h"
#include "sn_config.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[CONFIG_ERR_MAX];

static int load_text(struct sn_settings *s, const char *text)
{
    memset(s, 0, sizeof(*s));
    int rc = config_defaults(&sn_config_schema, s, err, sizeof(err));
    if (rc != 0)
        return rc;
    return config_load_string(&sn_config_schema, s, text, "test.conf", err, sizeof(err));
}

static void test_defaults(void)
{
    struct sn_settings s;
    CU_ASSERT_EQUAL(load_text(&s, ""), 0);
    CU_ASSERT_STRING_EQUAL(s.listen, "0.0.0.0:7070");
    CU_ASSERT_EQUAL(s.max_frame, 1048576);
    CU_ASSERT_EQUAL(s.log_level, SOVA_LOG_INFO);
    CU_ASSERT_PTR_NULL(s.cert);
    sn_settings_free(&s);
}

static void test_file_values_and_sections(void)
{
    struct sn_settings s;
    const char *text = "# common\n"
                       "log-level = debug\n"
                       "[peer]\n"
                       "bootstrap = 1.2.3.4:7070\n" /* the peer's; ignored here */
                       "[supernode]\n"
                       "listen = [::1]:7000 ; inline comment\n"
                       "cert = /etc/sova/sn1.crt\n"
                       "max-frame = 65536\n";
    CU_ASSERT_EQUAL_FATAL(load_text(&s, text), 0);
    CU_ASSERT_EQUAL(s.log_level, SOVA_LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(s.listen, "[::1]:7000");
    CU_ASSERT_STRING_EQUAL(s.cert, "/etc/sova/sn1.crt");
    CU_ASSERT_EQUAL(s.max_frame, 65536);
    sn_settings_free(&s);
}

struct bad_case {
    const char *text;
    const char *expect; /* substring of the error */
};

static void test_file_errors_name_line_and_option(void)
{
    static const struct bad_case cases[] = {
        {"listen = 0.0.0.0:7070\nbogus = 1\n", "test.conf:2: unknown option 'bogus'"},
        {"\n\nmax-frame = 12x\n", "test.conf:3: option 'max-frame': '12x' is not a whole number"},
        {"max-frame = 1\n", "test.conf:1: option 'max-frame': '1' is not a whole number in [4096"},
        {"max-frame = -5\n", "option 'max-frame': '-5'"},
        {"max-frame = 99999999999999999999999\n", "option 'max-frame'"},
        {"log-level = loud\n", "test.conf:1: option 'log-level': 'loud' is not one of"},
        {"listen = 7070\n", "test.conf:1: option 'listen': '7070' is not HOST:PORT"},
        {"listen = host:65536\n", "option 'listen'"},
        {"listen = ::1:7070\n", "option 'listen'"},
        {"listen = a:1,b:2\n", "option 'listen'"},
        {"[client]\nlisten = a:1\n", "test.conf:2: unknown section [client]"},
        {"cert = a\ncert = b\n", "test.conf:2: option 'cert' given twice"},
        {"cert = \n", "test.conf:1: option 'cert': empty path"},
        {"just some words\n", "test.conf:1: syntax error"},
        {"listen = 1.2.3.4:7070\n  continued\n", "test.conf:2: syntax error"},
        {"federation-ca =;\n", "test.conf:1: option 'federation-ca': the value starts with ';'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_settings s;
        err[0] = '\0';
        int rc = load_text(&s, cases[i].text);
        if (rc == 0 || strstr(err, cases[i].expect) == NULL)
            fprintf(stderr, "\ncase %zu: expected error containing \"%s\", got rc=%d \"%s\"\n", i,
                    cases[i].expect, rc, err);
        CU_ASSERT_NOT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].expect));
        sn_settings_free(&s);
    }
}

static void test_missing_file(void)
{
    struct sn_settings s;
    memset(&s, 0, sizeof(s));
    int rc = config_load_file(&sn_config_schema, &s, "/nonexistent/sova.conf", err, sizeof(err));
    CU_ASSERT_EQUAL(rc, SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/sova.conf: cannot open"));
    sn_settings_free(&s);
}

static void test_long_lines_and_binary_files(void)
{
    struct sn_settings s;
    char *text = malloc(CONFIG_MAX_LINE + 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int n = snprintf(text, 64, "log-level = info\ncert = /");
    memset(text + n, 'a', CONFIG_MAX_LINE);
    strcpy(text + n + CONFIG_MAX_LINE, "\n");
    CU_ASSERT_EQUAL(load_text(&s, text), SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.conf:2: line longer than 196 bytes"));
    sn_settings_free(&s);
    /* A line of exactly the limit loads whole: "cert = " and a value of
     * CONFIG_MAX_LINE - 7 bytes. */
    text[n + CONFIG_MAX_LINE - 8] = '\0';
    CU_ASSERT_EQUAL(load_text(&s, text), 0);
    CU_ASSERT_EQUAL(strlen(s.cert), (size_t)CONFIG_MAX_LINE - 7);
    sn_settings_free(&s);
    free(text);
}

static char *write_temp(const char *text)
{
    static char path[] = "/tmp/sova-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? path : NULL;
}

static void test_command_line_wins_over_file(void)
{
    char *path = write_temp("listen = 10.0.0.1:1\nmax-frame = 8192\nlog-level = warn\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    char *argv[] = {"--max-frame", "65536", "--config", path, "--log-level=error"};
    struct sn_settings s;
    int rc = sn_settings_load(&s, 5, argv, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(s.listen, "10.0.0.1:1");
    CU_ASSERT_EQUAL(s.max_frame, 65536);
    CU_ASSERT_EQUAL(s.log_level, SOVA_LOG_ERROR);
    sn_settings_free(&s);
    unlink(path);
}

static void test_command_line_errors(void)
{
    struct sn_settings s;
    char *unknown[] = {"--no-such-option", "1"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 2, unknown, err, sizeof(err)), SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option --no-such-option"));
    sn_settings_free(&s);

    char *missing[] = {"--cert"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 1, missing, err, sizeof(err)), SOVA_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--cert needs a value"));
    sn_settings_free(&s);

    char *positional[] = {"stray"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 1, positional, err, sizeof(err)), SOVA_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unexpected argument 'stray'"));
    sn_settings_free(&s);

    char *bad[] = {"--max-frame", "huge"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 2, bad, err, sizeof(err)), SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "command line: option 'max-frame': 'huge'"));
    sn_settings_free(&s);

    /* A value the config file could not carry back is refused. */
    char *commented[] = {"--cert", "/srv/my ;file"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 2, commented, err, sizeof(err)), SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "contains ' ;' or ' #'"));
    sn_settings_free(&s);

    char *ok[] = {"--listen", "127.0.0.1:9"};
    CU_ASSERT_EQUAL(sn_settings_load(&s, 2, ok, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(sn_settings_check(&s, err, sizeof(err)), SOVA_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--cert is required"));
    sn_settings_free(&s);
}

/* parse -> print -> parse gives the same settings (OpenBGPD-style). */
static void test_print_round_trip(void)
{
    struct sn_settings a, b;
    CU_ASSERT_EQUAL_FATAL(load_text(&a, "listen = [::]:7443\ncert = /x.crt\nlog-level = warn\n"),
                          0);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    config_print(&sn_config_schema, &a, mem);
    fclose(mem);
    CU_ASSERT_EQUAL(load_text(&b, buf), 0);
    CU_ASSERT_STRING_EQUAL(a.listen, b.listen);
    CU_ASSERT_STRING_EQUAL(a.cert, b.cert);
    CU_ASSERT_EQUAL(a.log_level, b.log_level);
    CU_ASSERT_EQUAL(a.max_frame, b.max_frame);
    CU_ASSERT_PTR_NULL(b.key);
    free(buf);
    sn_settings_free(&a);
    sn_settings_free(&b);
}

static void test_endpoint_parse(void)
{
    char host[64];
    uint16_t port;
    CU_ASSERT_EQUAL(config_parse_endpoint("127.0.0.1:7070", host, sizeof(host), &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
    CU_ASSERT_EQUAL(port, 7070);
    CU_ASSERT_EQUAL(config_parse_endpoint("[2001:db8::1]:1", host, sizeof(host), &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "2001:db8::1");
    CU_ASSERT_EQUAL(port, 1);
    CU_ASSERT_EQUAL(config_parse_endpoint("sn1.example.org:7070", host, sizeof(host), &port), 0);
    CU_ASSERT_NOT_EQUAL(config_parse_endpoint("[::1]7070", host, sizeof(host), &port), 0);
    CU_ASSERT_NOT_EQUAL(config_parse_endpoint(":7070", host, sizeof(host), &port), 0);
    CU_ASSERT_NOT_EQUAL(config_parse_endpoint("h:", host, sizeof(host), &port), 0);
    CU_ASSERT_NOT_EQUAL(config_parse_endpoint("h:12a", host, sizeof(host), &port), 0);
    CU_ASSERT_NOT_EQUAL(config_parse_endpoint("h o:1", host, sizeof(host), &port), 0);
    /* listen may use port 0 (any free port); a dial list may not */
    struct sn_settings s;
    CU_ASSERT_EQUAL(load_text(&s, "listen = 127.0.0.1:0\n"), 0);
    sn_settings_free(&s);
    struct config_option dial = {.name = "peers", .type = CONFIG_ENDPOINTS};
    char *list = NULL;
    dial.offset = 0;
    struct config_schema one = {.section = "supernode", .options = &dial, .count = 1};
    CU_ASSERT_NOT_EQUAL(config_set(&one, &list, "peers", "a:1,b:0", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(config_set(&one, &list, "peers", "a:1,[::1]:2", err, sizeof(err)), 0);
    free(list);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "file values and sections", test_file_values_and_sections);
    CU_add_test(s, "file errors name file, line and option", test_file_errors_name_line_and_option);
    CU_add_test(s, "missing file", test_missing_file);
    CU_add_test(s, "long lines", test_long_lines_and_binary_files);
    CU_add_test(s, "command line wins over file", test_command_line_wins_over_file);
    CU_add_test(s, "command line errors", test_command_line_errors);
    CU_add_test(s, "print round trip", test_print_round_trip);
    CU_add_test(s, "endpoint parse", test_endpoint_parse);
    return 0;
}
