/* The command-line parser of both binaries (common/cli.h), on a small
 * program of its own: options in any position, help and --version
 * everywhere, unknown options named with exit 2, daemon options handed on
 * as "--name=value", boolean options, "--", argument counts, the default
 * command and the completion script. */
#include "cli.h"
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fake_settings {
    char *state_dir;
    bool upnp;
    uint64_t max_frame;
};

static const struct config_option fake_options[] = {
    {.name = "state-dir",
     .type = CONFIG_PATH,
     .offset = offsetof(struct fake_settings, state_dir),
     .help = "state"},
    {.name = "upnp",
     .type = CONFIG_BOOL,
     .default_value = "yes",
     .offset = offsetof(struct fake_settings, upnp),
     .help = "upnp"},
    {.name = "max-frame",
     .type = CONFIG_UINT,
     .default_value = "4096",
     .min = 1,
     .max = 1 << 20,
     .offset = offsetof(struct fake_settings, max_frame),
     .help = "frame"},
};

static const struct config_schema fake_schema = {
    .section = "peer", .options = fake_options, .count = 3};

/* What the last run() saw. */
static struct {
    int calls;
    char cmd[32];
    int argc;
    char argv[4][32];
    int config_argc;
    char config[4][64];
    bool json;
    char out[64];
    int load_rc; /* the daemon options loaded as a daemon loads them */
    struct fake_settings settings;
    char state_dir[64];
} seen;

static int record(const struct cli_parsed *p, void *ctx)
{
    (void)ctx;
    seen.calls++;
    snprintf(seen.cmd, sizeof(seen.cmd), "%s", p->cmd->name);
    seen.argc = p->argc;
    for (int i = 0; i < p->argc && i < 4; i++)
        snprintf(seen.argv[i], sizeof(seen.argv[i]), "%s", p->argv[i]);
    seen.config_argc = p->config_argc;
    for (int i = 0; i < p->config_argc && i < 4; i++)
        snprintf(seen.config[i], sizeof(seen.config[i]), "%s", p->config_argv[i]);
    seen.json = cli_flag_set(p, "json");
    const char *out = cli_flag(p, "out");
    snprintf(seen.out, sizeof(seen.out), "%s", out ? out : "");
    char err[CONFIG_ERR_MAX];
    seen.load_rc = config_load_argv(&fake_schema, &seen.settings, p->config_argc, p->config_argv,
                                    err, sizeof(err));
    snprintf(seen.state_dir, sizeof(seen.state_dir), "%s",
             seen.settings.state_dir ? seen.settings.state_dir : "");
    config_free(&fake_schema, &seen.settings);
    return 0;
}

static const struct cli_flag json_flag[] = {{"json", NULL, "as JSON"}, {NULL, NULL, NULL}};
static const struct cli_flag get_flags[] = {
    {"out", "PATH", "where"}, {"json", NULL, "as JSON"}, {NULL, NULL, NULL}};

static const struct cli_command fake_commands[] = {
    {.name = "run", .args = "", .summary = "run it", .config = CLI_CONFIG_ALL, .run = record},
    {.name = "status",
     .args = "",
     .summary = "status",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = record},
    {.name = "get",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .summary = "get",
     .flags = get_flags,
     .config = CLI_CONFIG_LOCATE,
     .run = record},
    {.name = "hash",
     .args = "FILE...",
     .min_args = 1,
     .max_args = -1,
     .summary = "hash",
     .flags = json_flag,
     .config = CLI_CONFIG_NONE,
     .complete = "file",
     .run = record},
    /* a group: "share add", "share list", "share remove" */
    {.name = "share add",
     .args = "PATH",
     .min_args = 1,
     .max_args = 1,
     .summary = "share a folder",
     .config = CLI_CONFIG_LOCATE,
     .complete = "file",
     .run = record},
    {.name = "share list",
     .args = "",
     .summary = "the shared folders",
     .flags = json_flag,
     .config = CLI_CONFIG_LOCATE,
     .run = record},
    {.name = "share remove",
     .args = "PATH",
     .min_args = 1,
     .max_args = 1,
     .summary = "stop sharing a folder",
     .config = CLI_CONFIG_LOCATE,
     .run = record},
};

static const char *const locate[] = {"state-dir", NULL};

static void fake_version(FILE *out)
{
    fprintf(out, "fake 1.0\n");
}

static const struct cli_program fake = {
    .name = "fake",
    .about = "A fake program.",
    .schema = &fake_schema,
    .locate_options = locate,
    .commands = fake_commands,
    .n_commands = sizeof(fake_commands) / sizeof(fake_commands[0]),
    .print_version = fake_version,
};

static const struct cli_program fake_daemon = {
    .name = "faked",
    .about = "A fake daemon.",
    .schema = &fake_schema,
    .locate_options = locate,
    .commands = fake_commands,
    .n_commands = sizeof(fake_commands) / sizeof(fake_commands[0]),
    .default_command = "run",
    .print_version = fake_version,
};

static char out_text[16384], err_text[16384];

static void slurp(int fd, char *buf, size_t cap)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Run cli_main on the words of line (after the program's name), with
 * stdout and stderr caught in out_text and err_text. */
static int parse(const struct cli_program *prog, const char *line)
{
    char copy[512], *argv[32];
    int argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    argv[argc++] = (char *)prog->name;
    for (char *w = strtok(copy, " "); w != NULL && argc < 31; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    memset(&seen, 0, sizeof(seen));
    char out_path[] = "/tmp/test_cli_out.XXXXXX", err_path[] = "/tmp/test_cli_err.XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    unlink(out_path);
    unlink(err_path);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    int rc = cli_main(prog, argc, argv, NULL);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp(out_fd, out_text, sizeof(out_text));
    slurp(err_fd, err_text, sizeof(err_text));
    return rc;
}

static void test_options_in_any_position(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "--json status"), 0);
    CU_ASSERT_EQUAL(seen.calls, 1);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "status");
    CU_ASSERT_TRUE(seen.json);
    CU_ASSERT_EQUAL(parse(&fake, "status --json"), 0);
    CU_ASSERT_TRUE(seen.json);
    CU_ASSERT_EQUAL(parse(&fake, "--state-dir /x status"), 0);
    CU_ASSERT_EQUAL(seen.config_argc, 1);
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--state-dir=/x");
    CU_ASSERT_EQUAL(parse(&fake, "status --state-dir=/y"), 0);
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--state-dir=/y");
    CU_ASSERT_EQUAL(parse(&fake, "--out /o get ID --state-dir /s"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "get");
    CU_ASSERT_STRING_EQUAL(seen.out, "/o");
    CU_ASSERT_EQUAL(seen.argc, 1);
    CU_ASSERT_STRING_EQUAL(seen.argv[0], "ID");
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--state-dir=/s");
}

static void test_help_and_version_everywhere(void)
{
    const char *const lines[] = {"status --help", "run --help", "--help status", "get -h"};
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(parse(&fake, lines[i]), 0);
        CU_ASSERT_EQUAL(seen.calls, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "Usage: fake "));
        CU_ASSERT_PTR_NULL(strstr(err_text, "needs a value"));
    }
    CU_ASSERT_EQUAL(parse(&fake, "get --help"), 0);
    char get_help[sizeof(out_text)];
    snprintf(get_help, sizeof(get_help), "%s", out_text);
    CU_ASSERT_PTR_NOT_NULL(strstr(get_help, "--out PATH"));
    CU_ASSERT_EQUAL(parse(&fake, "help get"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, get_help);
    CU_ASSERT_EQUAL(parse(&fake, "help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "completion SHELL"));
    CU_ASSERT_EQUAL(parse(&fake, "status --version"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, "fake 1.0\n");
    CU_ASSERT_EQUAL(parse(&fake, "--version"), 0);
    CU_ASSERT_EQUAL(parse(&fake, "help nothing"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown command 'nothing'"));
}

static void test_unknown_options_are_named(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "status --jsn"), CLI_EXIT_USAGE);
    CU_ASSERT_EQUAL(seen.calls, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown option --jsn (did you mean --json?)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "Usage: fake status"));
    CU_ASSERT_EQUAL(parse(&fake, "--frobnicate"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown option --frobnicate\n"));
    CU_ASSERT_PTR_NULL(strstr(err_text, "no command"));
    CU_ASSERT_EQUAL(parse(&fake, "hash --state-dir /x f"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "hash takes no option --state-dir"));
    CU_ASSERT_EQUAL(parse(&fake, "status --json=1"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "option --json takes no value"));
    CU_ASSERT_EQUAL(parse(&fake, "get ID --out"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "option --out needs a value"));
    CU_ASSERT_EQUAL(parse(&fake, "frob"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown command 'frob'"));
    CU_ASSERT_EQUAL(parse(&fake, "--state-dir /x"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "no command given"));
    CU_ASSERT_EQUAL(parse(&fake_daemon, "--bogus 1"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown option --bogus"));
}

static void test_arguments_are_counted(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "get"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "get needs ID"));
    CU_ASSERT_EQUAL(parse(&fake, "get a b"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "get takes ID, not 2 arguments"));
    CU_ASSERT_EQUAL(parse(&fake, "status x"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "status takes no argument ('x' given)"));
    CU_ASSERT_EQUAL(parse(&fake, "hash a b c"), 0);
    CU_ASSERT_EQUAL(seen.argc, 3);
    CU_ASSERT_EQUAL(parse(&fake, "get -- --weird"), 0);
    CU_ASSERT_EQUAL(seen.argc, 1);
    CU_ASSERT_STRING_EQUAL(seen.argv[0], "--weird");
}

static void test_bool_options(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "run --upnp"), 0);
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--upnp=true");
    CU_ASSERT_EQUAL(parse(&fake, "run --upnp no"), 0);
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--upnp=no");
    CU_ASSERT_EQUAL(seen.argc, 0);
    CU_ASSERT_EQUAL(parse(&fake, "--upnp run"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "run");
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--upnp=true");
    CU_ASSERT_EQUAL(parse(&fake, "--upnp off status --max-frame 9"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "status");
    CU_ASSERT_EQUAL(seen.config_argc, 2);
    CU_ASSERT_STRING_EQUAL(seen.config[1], "--max-frame=9");
    /* what run() hands the daemon loads as the daemon loads it */
    CU_ASSERT_EQUAL(seen.load_rc, 0);
    CU_ASSERT_FALSE(seen.settings.upnp);
    CU_ASSERT_EQUAL(seen.settings.max_frame, 9);
    CU_ASSERT_EQUAL(parse(&fake, "run --state-dir /a/b --upnp"), 0);
    CU_ASSERT_EQUAL(seen.load_rc, 0);
    CU_ASSERT_TRUE(seen.settings.upnp);
    CU_ASSERT_STRING_EQUAL(seen.state_dir, "/a/b");
}

static void test_default_command(void)
{
    CU_ASSERT_EQUAL(parse(&fake_daemon, "--state-dir /x"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "run");
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--state-dir=/x");
    CU_ASSERT_EQUAL(parse(&fake_daemon, ""), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "run");
    CU_ASSERT_EQUAL(parse(&fake, ""), CLI_EXIT_USAGE); /* no default: the help, exit 2 */
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "Usage: fake COMMAND"));
}

static void test_groups_of_commands(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "share add /x"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "share add");
    CU_ASSERT_EQUAL(seen.argc, 1);
    CU_ASSERT_STRING_EQUAL(seen.argv[0], "/x");
    CU_ASSERT_EQUAL(parse(&fake, "--json share --state-dir /s list"), 0);
    CU_ASSERT_STRING_EQUAL(seen.cmd, "share list");
    CU_ASSERT_TRUE(seen.json);
    CU_ASSERT_STRING_EQUAL(seen.config[0], "--state-dir=/s");
    CU_ASSERT_EQUAL(parse(&fake, "share"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "share needs a subcommand"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "share remove PATH"));
    CU_ASSERT_EQUAL(parse(&fake, "share frob"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown command 'share frob'"));
    CU_ASSERT_EQUAL(parse(&fake, "share list --jsn"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "Usage: fake share list [--json]"));
    CU_ASSERT_EQUAL(parse(&fake, "share --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "share add PATH"));
    CU_ASSERT_EQUAL(parse(&fake, "help share"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "share list"));
    CU_ASSERT_EQUAL(parse(&fake, "share add --help"), 0);
    char add_help[sizeof(out_text)];
    snprintf(add_help, sizeof(add_help), "%s", out_text);
    CU_ASSERT_PTR_NOT_NULL(strstr(add_help, "Usage: fake share add PATH"));
    CU_ASSERT_EQUAL(parse(&fake, "help share add"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, add_help);
    CU_ASSERT_EQUAL(parse(&fake, "share add"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "share add needs PATH"));
}

static void test_completion(void)
{
    CU_ASSERT_EQUAL(parse(&fake, "completion bash"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "complete -F _fake fake\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "'status') opts+=' --json --config --state-dir"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "'hash') opts+=' --json' ;;"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out_text, "local commands='run status get hash share help completion'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "local groups=' share '"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "'share') COMPREPLY=($(compgen -W 'add list remove'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "'share list') opts+=' --json --config"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "--upnp) COMPREPLY=($(compgen -W 'yes no'"));
    CU_ASSERT_EQUAL(parse(&fake, "completion zsh"), CLI_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "no completion for the shell 'zsh'"));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("cli", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "options in any position", test_options_in_any_position);
    CU_add_test(s, "help and version everywhere", test_help_and_version_everywhere);
    CU_add_test(s, "unknown options are named", test_unknown_options_are_named);
    CU_add_test(s, "arguments are counted", test_arguments_are_counted);
    CU_add_test(s, "bool options", test_bool_options);
    CU_add_test(s, "default command", test_default_command);
    CU_add_test(s, "groups of commands", test_groups_of_commands);
    CU_add_test(s, "completion", test_completion);
    return 0;
}
