/* test_ctl_decode.c - the control request decoder: a table of good and bad
 * lines, each bad one with the message it must give; the limits at their
 * edges; the hex helpers. (The socket side is tests/unit/test_ctl.c.) */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "err.h"

#define HASH_LOWER "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HASH_MIXED "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddEEFF"

/* ---- decoder ------------------------------------------------------------- */

static int decode_str(const char *line, struct ctl_request *req, char *err, size_t errlen)
{
    return ctl_request_decode(line, strlen(line), req, err, errlen);
}

static void expect_valid(const char *line, struct ctl_request *req)
{
    char err[CTL_ERR_MAX] = "";
    int rc = decode_str(line, req, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\n  decode(%s) failed: %s\n", line, err);
    CU_ASSERT_EQUAL(rc, 0);
}

static void test_decode_no_arg_commands(void)
{
    static const struct {
        const char *line;
        enum ctl_cmd cmd;
    } cases[] = {
        {"{\"cmd\":\"status\"}", CTL_CMD_STATUS},
        {" { \"cmd\" : \"downloads\" } \r", CTL_CMD_DOWNLOADS},
        {"{\"cmd\":\"peers\"}", CTL_CMD_PEERS},
        {"{\"cmd\":\"metrics\"}", CTL_CMD_METRICS},
        {"{\"cmd\":\"shares\"}", CTL_CMD_SHARES},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl_request req;
        expect_valid(cases[i].line, &req);
        CU_ASSERT_EQUAL(req.cmd, cases[i].cmd);
        CU_ASSERT_STRING_EQUAL(ctl_cmd_name(req.cmd), ctl_cmd_name(cases[i].cmd));
        ctl_request_clear(&req);
    }
    CU_ASSERT_STRING_EQUAL(ctl_cmd_name(CTL_CMD_SEARCH), "search");
    CU_ASSERT_STRING_EQUAL(ctl_cmd_name((enum ctl_cmd)99), "?");
}

static void test_decode_share_folder(void)
{
    struct ctl_request req;
    expect_valid("{\"cmd\":\"share_add\",\"path\":\"/home/ann/Music\"}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_SHARE_ADD);
    CU_ASSERT_STRING_EQUAL(req.u.folder.path, "/home/ann/Music");
    ctl_request_clear(&req);
    expect_valid("{\"cmd\":\"share_remove\",\"path\":\"/srv/x\"}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_SHARE_REMOVE);
    CU_ASSERT_STRING_EQUAL(req.u.folder.path, "/srv/x");
    ctl_request_clear(&req);
}

static void test_decode_search(void)
{
    struct ctl_request req;
    expect_valid("{\"cmd\":\"search\",\"words\":[\"ubuntu\",\"iso\"]}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_SEARCH);
    CU_ASSERT_EQUAL(req.u.search.n_words, 2);
    CU_ASSERT_STRING_EQUAL(req.u.search.words[0], "ubuntu");
    CU_ASSERT_STRING_EQUAL(req.u.search.words[1], "iso");
    CU_ASSERT_EQUAL(req.u.search.max, CTL_SEARCH_MAX_DEFAULT);
    CU_ASSERT_EQUAL(req.u.search.timeout_ms, CTL_SEARCH_TIMEOUT_DEFAULT);

    expect_valid("{\"timeout_ms\":60000,\"max\":1000,\"cmd\":\"search\",\"words\":[\"a\"]}", &req);
    CU_ASSERT_EQUAL(req.u.search.max, 1000);
    CU_ASSERT_EQUAL(req.u.search.timeout_ms, 60000);
    expect_valid("{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":1,\"timeout_ms\":1}", &req);
    CU_ASSERT_EQUAL(req.u.search.max, 1);
    CU_ASSERT_EQUAL(req.u.search.timeout_ms, 1);

    /* The limits themselves: 8 words of 64 bytes, UTF-8 counted in bytes. */
    char line[1024], word[CTL_MAX_WORD_LEN + 1];
    memset(word, 'w', CTL_MAX_WORD_LEN);
    word[CTL_MAX_WORD_LEN] = '\0';
    int n = snprintf(line, sizeof(line), "{\"cmd\":\"search\",\"words\":[");
    for (int i = 0; i < CTL_MAX_WORDS; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\"%s\"", i ? "," : "", word);
    snprintf(line + n, sizeof(line) - (size_t)n, "]}");
    expect_valid(line, &req);
    CU_ASSERT_EQUAL(req.u.search.n_words, CTL_MAX_WORDS);
    CU_ASSERT_STRING_EQUAL(req.u.search.words[CTL_MAX_WORDS - 1], word);
    expect_valid("{\"cmd\":\"search\",\"words\":[\"caf\xc3\xa9\"]}", &req);
    CU_ASSERT_STRING_EQUAL(req.u.search.words[0], "caf\xc3\xa9");
}

static void test_decode_get(void)
{
    uint8_t want[CTL_HASH_LEN];
    CU_ASSERT_EQUAL(ctl_hex32_decode(HASH_LOWER, strlen(HASH_LOWER), want), 0);

    struct ctl_request req;
    expect_valid("{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\"}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_GET);
    CU_ASSERT(memcmp(req.u.get.id, want, CTL_HASH_LEN) == 0);
    CU_ASSERT_STRING_EQUAL(req.u.get.out, "");
    CU_ASSERT_STRING_EQUAL(req.u.get.name, "");

    expect_valid("{\"cmd\":\"get\",\"id\":\"" HASH_MIXED "\",\"out\":\"/home/a/Downloads\","
                 "\"name\":\"film.mkv\"}",
                 &req);
    CU_ASSERT(memcmp(req.u.get.id, want, CTL_HASH_LEN) == 0);
    CU_ASSERT_STRING_EQUAL(req.u.get.out, "/home/a/Downloads");
    CU_ASSERT_STRING_EQUAL(req.u.get.name, "film.mkv");
}

struct bad_case {
    const char *line;
    int code;
    const char *message; /* expected substring */
};

static const struct bad_case bad_cases[] = {
    {"", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"{", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"cmd=status", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"{\"cmd\":\"status\"} {}", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"{\"cmd\":\"status\",\"cmd\":\"peers\"}", SOVA_ERR_BAD_VALUE, "duplicate"},
    {"{\"cmd\":\"sta\\u0000tus\"}", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"{\"cmd\":\"status\",\"\xff\":1}", SOVA_ERR_BAD_VALUE, "not valid JSON"},
    {"[\"status\"]", SOVA_ERR_BAD_VALUE, "must be a JSON object, not an array"},
    {"\"status\"", SOVA_ERR_BAD_VALUE, "must be a JSON object, not a string"},
    {"{}", SOVA_ERR_BAD_VALUE, "missing field \"cmd\""},
    {"{\"words\":[\"a\"]}", SOVA_ERR_BAD_VALUE, "missing field \"cmd\""},
    {"{\"cmd\":5}", SOVA_ERR_BAD_VALUE, "field \"cmd\" must be a string, not an integer"},
    {"{\"cmd\":null}", SOVA_ERR_BAD_VALUE, "field \"cmd\" must be a string, not null"},
    {"{\"cmd\":\"reboot\"}", SOVA_ERR_UNKNOWN_TYPE,
     "unknown command \"reboot\" (known: status, search, get, downloads, peers, metrics, pause, "
     "resume, cancel, remove, priority, share_add, share_remove, shares, limits, limit, ui_login)"},
    {"{\"cmd\":\"Status\"}", SOVA_ERR_UNKNOWN_TYPE, "unknown command \"Status\""},
    {"{\"cmd\":\"status\",\"verbose\":true}", SOVA_ERR_BAD_VALUE,
     "unknown field \"verbose\" for command \"status\""},
    {"{\"cmd\":\"search\",\"wrods\":[\"a\"]}", SOVA_ERR_BAD_VALUE,
     "unknown field \"wrods\" for command \"search\""},
    {"{\"cmd\":\"search\",\"w\xc3\xb6rds\":[\"a\"]}", SOVA_ERR_BAD_VALUE,
     "unknown field \"w??rds\""},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"words\":[\"a\"]}", SOVA_ERR_BAD_VALUE,
     "unknown field \"words\" for command \"get\""},
    {"{\"cmd\":\"search\"}", SOVA_ERR_BAD_VALUE, "missing field \"words\" for command \"search\""},
    {"{\"cmd\":\"search\",\"max\":5}", SOVA_ERR_BAD_VALUE, "missing field \"words\""},
    {"{\"cmd\":\"search\",\"words\":\"a b\"}", SOVA_ERR_BAD_VALUE,
     "field \"words\" must be an array of strings, not a string"},
    {"{\"cmd\":\"search\",\"words\":[]}", SOVA_ERR_BAD_VALUE,
     "field \"words\" must hold at least 1 word"},
    {"{\"cmd\":\"search\",\"words\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
     SOVA_ERR_BAD_VALUE, "field \"words\" has 9 words, at most 8"},
    {"{\"cmd\":\"search\",\"words\":[\"a\",\"\"]}", SOVA_ERR_BAD_VALUE,
     "word 2 of \"words\" is empty"},
    {"{\"cmd\":\"search\",\"words\":[\"a\",3]}", SOVA_ERR_BAD_VALUE,
     "word 2 of \"words\" must be a string, not an integer"},
    {"{\"cmd\":\"search\",\"words\":[\"x\",\"" /* 65 bytes */
     "01234567890123456789012345678901234567890123456789012345678901234\"]}",
     SOVA_ERR_BAD_VALUE, "word 2 of \"words\" is 65 bytes, at most 64"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":0}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be between 1 and 1000, got 0"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":1001}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be between 1 and 1000, got 1001"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":-1}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be between 1 and 1000, got -1"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":\"10\"}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be an integer, not a string"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":10.0}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be an integer, not a real number"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":true}", SOVA_ERR_BAD_VALUE,
     "field \"max\" must be an integer, not a boolean"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"max\":99999999999999999999999}", SOVA_ERR_BAD_VALUE,
     "not valid JSON"},
    {"{\"cmd\":\"search\",\"words\":[\"a\"],\"timeout_ms\":60001}", SOVA_ERR_BAD_VALUE,
     "field \"timeout_ms\" must be between 1 and 60000, got 60001"},
    {"{\"cmd\":\"share_add\"}", SOVA_ERR_BAD_VALUE,
     "missing field \"path\" for command \"share_add\""},
    {"{\"cmd\":\"share_add\",\"path\":\"music\"}", SOVA_ERR_BAD_VALUE,
     "field \"path\" must be an absolute path"},
    {"{\"cmd\":\"share_remove\",\"path\":\"\"}", SOVA_ERR_BAD_VALUE, "field \"path\" is empty"},
    {"{\"cmd\":\"share_remove\",\"path\":7}", SOVA_ERR_BAD_VALUE,
     "field \"path\" must be a string"},
    {"{\"cmd\":\"shares\",\"path\":\"/x\"}", SOVA_ERR_BAD_VALUE,
     "unknown field \"path\" for command \"shares\""},
    {"{\"cmd\":\"get\"}", SOVA_ERR_BAD_VALUE, "missing field \"id\" for command \"get\""},
    {"{\"cmd\":\"get\",\"id\":12}", SOVA_ERR_BAD_VALUE,
     "field \"id\" must be a string of 64 hex characters, not an integer"},
    {"{\"cmd\":\"get\",\"id\":\"0011\"}", SOVA_ERR_BAD_VALUE,
     "field \"id\" must be 64 hex characters, got 4"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "0\"}", SOVA_ERR_BAD_VALUE,
     "field \"id\" must be 64 hex characters, got 65"},
    {"{\"cmd\":\"get\",\"id\":"
     "\"001122334g5566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
     SOVA_ERR_BAD_VALUE, "field \"id\" has a character that is not hex at position 10"},
    {"{\"cmd\":\"get\",\"id\":"
     "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeef \"}",
     SOVA_ERR_BAD_VALUE, "not hex at position 64"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"out\":\"\"}", SOVA_ERR_BAD_VALUE,
     "field \"out\" is empty"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"out\":\"Downloads\"}", SOVA_ERR_BAD_VALUE,
     "field \"out\" must be an absolute path"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"out\":[\"/tmp\"]}", SOVA_ERR_BAD_VALUE,
     "field \"out\" must be a string, not an array"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"name\":\"a/b\"}", SOVA_ERR_BAD_VALUE,
     "field \"name\" must be a file name"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"name\":\"..\"}", SOVA_ERR_BAD_VALUE,
     "field \"name\" must be a file name"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"name\":{}}", SOVA_ERR_BAD_VALUE,
     "field \"name\" must be a string, not an object"},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"priority\":\"urgent\"}", SOVA_ERR_BAD_VALUE,
     "field \"priority\" must be \"high\", \"normal\" or \"low\""},
    {"{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\",\"background\":1}", SOVA_ERR_BAD_VALUE,
     "field \"background\" must be true or false, not an integer"},
    {"{\"cmd\":\"pause\"}", SOVA_ERR_BAD_VALUE, "missing field \"id\" for command \"pause\""},
    {"{\"cmd\":\"cancel\",\"id\":\"0011\"}", SOVA_ERR_BAD_VALUE,
     "field \"id\" must be 64 hex characters, got 4"},
    {"{\"cmd\":\"resume\",\"id\":\"" HASH_LOWER "\",\"delete_data\":true}", SOVA_ERR_BAD_VALUE,
     "unknown field \"delete_data\" for command \"resume\""},
    {"{\"cmd\":\"priority\",\"id\":\"" HASH_LOWER "\"}", SOVA_ERR_BAD_VALUE,
     "missing field \"priority\" for command \"priority\""},
};

static void expect_error(const char *line, size_t len, int code, const char *message)
{
    struct ctl_request req;
    char err[CTL_ERR_MAX] = "";
    int rc = ctl_request_decode(line, len, &req, err, sizeof(err));
    if (rc != code || strstr(err, message) == NULL)
        fprintf(stderr, "\n  decode(%.80s): got %d \"%s\", expected %d \"%s\"\n", line, rc, err,
                code, message);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, message));
    for (const char *p = err; *p; p++) /* quotes of hostile input stay printable */
        CU_ASSERT(*p >= 0x20 && *p < 0x7f);
    ctl_request_clear(&req);
}

/* Transfer control: the ID of a download, remove's delete_data, a
 * priority by name; get's priority and background. */
static void test_decode_xfer(void)
{
    struct ctl_request req;
    expect_valid("{\"cmd\":\"pause\",\"id\":\"" HASH_LOWER "\"}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_PAUSE);
    CU_ASSERT_FALSE(req.u.xfer.delete_data);
    expect_valid("{\"cmd\":\"remove\",\"id\":\"" HASH_LOWER "\",\"delete_data\":true}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_REMOVE);
    CU_ASSERT_TRUE(req.u.xfer.delete_data);
    expect_valid("{\"cmd\":\"priority\",\"id\":\"" HASH_LOWER "\",\"priority\":\"high\"}", &req);
    CU_ASSERT_EQUAL(req.cmd, CTL_CMD_PRIORITY);
    CU_ASSERT_EQUAL(req.u.xfer.priority, CTL_PRIORITY_HIGH);
    expect_valid("{\"cmd\":\"get\",\"id\":\"" HASH_LOWER "\"}", &req);
    CU_ASSERT_EQUAL(req.u.get.priority, CTL_PRIORITY_UNSET);
    CU_ASSERT_FALSE(req.u.get.background);
    expect_valid("{\"cmd\":\"get\",\"id\":\"" HASH_LOWER
                 "\",\"priority\":\"low\",\"background\":true}",
                 &req);
    CU_ASSERT_EQUAL(req.u.get.priority, CTL_PRIORITY_LOW);
    CU_ASSERT_TRUE(req.u.get.background);
    CU_ASSERT_STRING_EQUAL(ctl_priority_name(CTL_PRIORITY_NORMAL), "normal");
    CU_ASSERT_STRING_EQUAL(ctl_cmd_name(CTL_CMD_CANCEL), "cancel");
}

static void test_decode_errors(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        expect_error(bad_cases[i].line, strlen(bad_cases[i].line), bad_cases[i].code,
                     bad_cases[i].message);
}

/* A string field of exactly n bytes inside a get request. */
static char *get_with_field(const char *field, char first, size_t n)
{
    char *line = malloc(n + 256);
    int k = snprintf(line, n + 256, "{\"cmd\":\"get\",\"id\":\"%s\",\"%s\":\"", HASH_LOWER, field);
    memset(line + k, 'n', n);
    line[k] = first;
    snprintf(line + k + n, 256, "\"}");
    return line;
}

static void test_decode_string_limits(void)
{
    struct ctl_request req;
    char *line = get_with_field("out", '/', CTL_MAX_PATH);
    expect_valid(line, &req);
    CU_ASSERT_EQUAL(strlen(req.u.get.out), CTL_MAX_PATH);
    free(line);
    line = get_with_field("out", '/', CTL_MAX_PATH + 1);
    expect_error(line, strlen(line), SOVA_ERR_BAD_VALUE,
                 "field \"out\" is 4097 bytes, at most 4096");
    free(line);
    line = get_with_field("name", 'n', CTL_MAX_NAME);
    expect_valid(line, &req);
    CU_ASSERT_EQUAL(strlen(req.u.get.name), CTL_MAX_NAME);
    free(line);
    line = get_with_field("name", 'n', CTL_MAX_NAME + 1);
    expect_error(line, strlen(line), SOVA_ERR_BAD_VALUE,
                 "field \"name\" is 256 bytes, at most 255");
    free(line);
}

/* {"cmd":"status"} padded with spaces to len bytes. */
static char *padded_status(size_t len)
{
    char *line = malloc(len + 2);
    memset(line, ' ', len);
    memcpy(line, "{\"cmd\":\"status\"}", 16);
    line[len] = '\0';
    return line;
}

static void test_decode_length_limit(void)
{
    struct ctl_request req;
    char err[CTL_ERR_MAX];
    char *line = padded_status(CTL_MAX_REQUEST);
    CU_ASSERT_EQUAL(ctl_request_decode(line, CTL_MAX_REQUEST, &req, err, sizeof(err)), 0);
    free(line);
    line = padded_status(CTL_MAX_REQUEST + 1);
    expect_error(line, CTL_MAX_REQUEST + 1, SOVA_ERR_TOO_LARGE, "request too long");
    free(line);
    /* A truncated buffer is just short input, not a read past its end. */
    expect_error("{\"cmd\":\"status\"}", 10, SOVA_ERR_BAD_VALUE, "not valid JSON");
}

static void test_hex32(void)
{
    uint8_t h[CTL_HASH_LEN], back[CTL_HASH_LEN];
    for (size_t i = 0; i < CTL_HASH_LEN; i++)
        h[i] = (uint8_t)(i * 37 + 5);
    char hex[CTL_HEX32_LEN + 1];
    ctl_hex32(h, hex);
    CU_ASSERT_EQUAL(strlen(hex), CTL_HEX32_LEN);
    CU_ASSERT_EQUAL(ctl_hex32_decode(hex, strlen(hex), back), 0);
    CU_ASSERT(memcmp(h, back, CTL_HASH_LEN) == 0);
    CU_ASSERT_EQUAL(ctl_hex32_decode(hex, CTL_HEX32_LEN - 1, back), SOVA_ERR_BAD_LENGTH);
    hex[7] = 'x';
    CU_ASSERT_EQUAL(ctl_hex32_decode(hex, CTL_HEX32_LEN, back), SOVA_ERR_BAD_VALUE);
    json_t *j = ctl_json_hex32(h);
    ctl_hex32(h, hex);
    CU_ASSERT_STRING_EQUAL(json_string_value(j), hex);
    json_decref(j);
}

int test_register(void)
{
    CU_pSuite dec = CU_add_suite("ctl_decode", NULL, NULL);
    if (dec == NULL)
        return -1;
    CU_add_test(dec, "status, downloads, peers, metrics, shares", test_decode_no_arg_commands);
    CU_add_test(dec, "search with defaults and limits", test_decode_search);
    CU_add_test(dec, "get: the file ID in either case, out, name", test_decode_get);
    CU_add_test(dec, "pause, resume, cancel, remove, priority", test_decode_xfer);
    CU_add_test(dec, "share_add and share_remove: an absolute path", test_decode_share_folder);
    CU_add_test(dec, "every error names what is wrong", test_decode_errors);
    CU_add_test(dec, "out and name length limits", test_decode_string_limits);
    CU_add_test(dec, "request length limit", test_decode_length_limit);
    CU_add_test(dec, "hex helpers", test_hex32);
    return 0;
}
