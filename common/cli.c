/* cli.c - the table-driven command line of both binaries (cli.h). */
#include "cli.h"
#include "sova_assert.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLI_NAME_MAX 64

static int run_help(const struct cli_parsed *p, void *ctx);
static int run_completion(const struct cli_parsed *p, void *ctx);

/* Commands every program has. */
static const struct cli_command builtins[] = {
    {.name = "help",
     .args = "[COMMAND]",
     .min_args = 0,
     .max_args = 2, /* a command of a group: "help share add" */
     .summary = "this help, or the help of COMMAND",
     .config = CLI_CONFIG_NONE,
     .complete = "command",
     .run = run_help},
    {.name = "completion",
     .args = "SHELL",
     .min_args = 1,
     .max_args = 1,
     .summary = "print the completion script of SHELL (bash)",
     .config = CLI_CONFIG_NONE,
     .complete = "bash",
     .run = run_completion},
};

#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static const struct cli_command *cli_builtin(size_t i)
{
    return i < N_BUILTINS ? &builtins[i] : NULL;
}

static size_t cli_builtin_count(void)
{
    return N_BUILTINS;
}

void cli_print_bash_completion(const struct cli_program *prog, FILE *out)
{
    size_t n = prog->n_commands + N_BUILTINS;
    const struct cli_command **cmds = calloc(n, sizeof(*cmds));
    if (cmds == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog->name);
        return;
    }
    for (size_t i = 0; i < n; i++)
        cmds[i] = i < prog->n_commands ? &prog->commands[i] : &builtins[i - prog->n_commands];
    cli_write_bash_completion(prog, cmds, n, out);
    free(cmds);
}

static const struct cli_command *find_command(const struct cli_program *prog, const char *name)
{
    for (size_t i = 0; i < prog->n_commands; i++)
        if (strcmp(prog->commands[i].name, name) == 0)
            return &prog->commands[i];
    for (size_t i = 0; i < cli_builtin_count(); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

/* Whether word names a group of commands ("share" of "share add",
 * "share list"). */
static bool is_group(const struct cli_program *prog, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i < prog->n_commands; i++)
        if (strncmp(prog->commands[i].name, word, n) == 0 && prog->commands[i].name[n] == ' ')
            return true;
    return false;
}

static void print_group_help(const struct cli_program *prog, const char *group, FILE *out)
{
    size_t n = strlen(group);
    fprintf(out, "Usage: %s %s SUBCOMMAND [ARGS]... [OPTIONS]...\n\nCommands:\n", prog->name,
            group);
    for (size_t i = 0; i < prog->n_commands; i++) {
        const struct cli_command *c = &prog->commands[i];
        if (strncmp(c->name, group, n) != 0 || c->name[n] != ' ')
            continue;
        char head[64];
        snprintf(head, sizeof(head), "%s %s", c->name, c->args ? c->args : "");
        fprintf(out, "  %-24s %s\n", head, c->summary);
    }
    fprintf(out, "\n'%s help %s SUBCOMMAND' lists its options.\n", prog->name, group);
}

static const struct cli_flag *find_flag(const struct cli_command *cmd, const char *name, size_t *at)
{
    for (size_t i = 0; cmd != NULL && cmd->flags != NULL && cmd->flags[i].name != NULL; i++) {
        if (strcmp(cmd->flags[i].name, name) == 0) {
            if (at != NULL)
                *at = i;
            return &cmd->flags[i];
        }
    }
    return NULL;
}

static bool is_bool_word(const char *v)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(v, words[i]) == 0)
            return true;
    return false;
}

/* How an option NAME reads its value, whatever the command. */
enum arity { ARITY_UNKNOWN, ARITY_NONE, ARITY_ONE, ARITY_BOOL };

static enum arity flag_arity(const struct cli_flag *f)
{
    return f->metavar ? ARITY_ONE : ARITY_NONE;
}

static enum arity option_arity(const struct cli_program *prog, const struct cli_command *cmd,
                               const char *name)
{
    if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0)
        return ARITY_NONE;
    const struct cli_flag *f = find_flag(cmd, name, NULL);
    if (f != NULL)
        return flag_arity(f);
    if (cmd == NULL) /* before the command: any command's flag */
        for (size_t i = 0; i < prog->n_commands; i++)
            if ((f = find_flag(&prog->commands[i], name, NULL)) != NULL)
                return flag_arity(f);
    if (cmd != NULL && cmd->config == CLI_CONFIG_NONE)
        return ARITY_UNKNOWN;
    if (strcmp(name, "config") == 0)
        return ARITY_ONE;
    const struct config_option *o = config_find(prog->schema, name);
    if (o == NULL)
        return ARITY_UNKNOWN;
    return o->type == CONFIG_BOOL ? ARITY_BOOL : ARITY_ONE;
}

/* "--name[=value]" into name (false: not an option). */
static bool split_option(const char *arg, char *name, size_t cap, const char **value)
{
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        if (strcmp(arg, "-h") == 0) {
            snprintf(name, cap, "help");
            *value = NULL;
            return true;
        }
        return false;
    }
    const char *eq = strchr(arg + 2, '=');
    size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    snprintf(name, cap, "%.*s", (int)n, arg + 2);
    *value = eq ? eq + 1 : NULL;
    return true;
}

/* How many argv slots the option at argv[i] takes (1 or 2). */
static int option_slots(const struct cli_program *prog, const struct cli_command *cmd, int argc,
                        char **argv, int i)
{
    char name[CLI_NAME_MAX];
    const char *value;
    split_option(argv[i], name, sizeof(name), &value);
    if (value != NULL || i + 1 >= argc)
        return 1;
    switch (option_arity(prog, cmd, name)) {
    case ARITY_ONE:
        return 2;
    case ARITY_BOOL:
        return is_bool_word(argv[i + 1]) ? 2 : 1;
    default:
        return 1;
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= CLI_NAME_MAX || lb >= CLI_NAME_MAX)
        return CLI_NAME_MAX;
    size_t row[CLI_NAME_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void consider(const char *candidate, const char *name, const char **best, size_t *dist)
{
    size_t d = edit_distance(name, candidate);
    if (d < *dist) {
        *dist = d;
        *best = candidate;
    }
}

/* The option the user probably meant by --name, or NULL. */
static const char *near_option(const struct cli_program *prog, const struct cli_command *cmd,
                               const char *name)
{
    const char *best = NULL;
    size_t dist = strlen(name) > 4 ? 3 : 2; /* at most 2 edits (1 for short names) */
    consider("help", name, &best, &dist);
    consider("version", name, &best, &dist);
    for (size_t i = 0; cmd != NULL && cmd->flags != NULL && cmd->flags[i].name != NULL; i++)
        consider(cmd->flags[i].name, name, &best, &dist);
    if (cmd == NULL || cmd->config != CLI_CONFIG_NONE) {
        consider("config", name, &best, &dist);
        for (size_t i = 0; i < prog->schema->count; i++)
            consider(prog->schema->options[i].name, name, &best, &dist);
    }
    return best;
}

static void print_synopsis(const struct cli_program *prog, const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "%s %s", prog->name, cmd->name);
    if (cmd->args != NULL && cmd->args[0] != '\0')
        fprintf(out, " %s", cmd->args);
    for (size_t i = 0; cmd->flags != NULL && cmd->flags[i].name != NULL; i++) {
        const struct cli_flag *f = &cmd->flags[i];
        fprintf(out, " [--%s%s%s]", f->name, f->metavar ? " " : "", f->metavar ? f->metavar : "");
    }
    if (cmd->config == CLI_CONFIG_ALL)
        fprintf(out, " [--config FILE] [--OPTION VALUE]...");
    else if (cmd->config == CLI_CONFIG_LOCATE)
        for (size_t i = 0; prog->locate_options && prog->locate_options[i]; i++)
            fprintf(out, " [--%s %s]", prog->locate_options[i],
                    strcmp(prog->locate_options[i], "config") == 0 ? "FILE" : "PATH");
    fputc('\n', out);
}

static void print_usage_hint(const struct cli_program *prog, const struct cli_command *cmd)
{
    if (cmd != NULL) {
        fprintf(stderr, "Usage: ");
        print_synopsis(prog, cmd, stderr);
        fprintf(stderr, "Try '%s help %s'.\n", prog->name, cmd->name);
    } else {
        fprintf(stderr, "Usage: %s COMMAND [ARGS]... [OPTIONS]...\nTry '%s help'.\n", prog->name,
                prog->name);
    }
}

static int usage_error(const struct cli_program *prog, const struct cli_command *cmd,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int usage_error(const struct cli_program *prog, const struct cli_command *cmd,
                       const char *fmt, ...)
{
    fprintf(stderr, "%s: ", prog->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_usage_hint(prog, cmd);
    return CLI_EXIT_USAGE;
}

int cli_usage_error(const struct cli_parsed *p, const char *fmt, ...)
{
    fprintf(stderr, "%s: ", p->prog->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_usage_hint(p->prog, p->cmd);
    return CLI_EXIT_USAGE;
}

static void print_flag(const char *name, const char *metavar, const char *help, FILE *out)
{
    char flag[96];
    snprintf(flag, sizeof(flag), "--%s%s%s", name, metavar ? " " : "", metavar ? metavar : "");
    fprintf(out, "  %-34s %s\n", flag, help);
}

static void print_locate_help(const struct cli_program *prog, FILE *out)
{
    for (size_t i = 0; prog->locate_options && prog->locate_options[i]; i++) {
        const struct config_option *o = config_find(prog->schema, prog->locate_options[i]);
        if (o != NULL)
            print_flag(o->name, "PATH", o->help, out);
    }
}

void cli_print_help(const struct cli_program *prog, const struct cli_command *cmd, FILE *out)
{
    char config_help[256];
    snprintf(config_help, sizeof(config_help), "read options from FILE first%s%s%s",
             prog->config_default ? " (default: " : "",
             prog->config_default ? prog->config_default : "", prog->config_default ? ")" : "");
    if (cmd == NULL) {
        fprintf(out, "Usage: %s COMMAND [ARGS]... [OPTIONS]...\n", prog->name);
        if (prog->default_command != NULL)
            fprintf(out, "       %s [OPTIONS]...   (the same as %s %s)\n", prog->name, prog->name,
                    prog->default_command);
        fprintf(out, "       %s help [COMMAND] | --version\n\n%s\n\nCommands:\n", prog->name,
                prog->about);
        for (size_t i = 0; i < prog->n_commands + cli_builtin_count(); i++) {
            const struct cli_command *c =
                i < prog->n_commands ? &prog->commands[i] : cli_builtin(i - prog->n_commands);
            char head[64];
            snprintf(head, sizeof(head), "%s %s", c->name, c->args ? c->args : "");
            fprintf(out, "  %-24s %s\n", head, c->summary);
        }
        const struct cli_command *def =
            prog->default_command ? find_command(prog, prog->default_command) : NULL;
        for (size_t i = 0; def != NULL && def->flags != NULL && def->flags[i].name != NULL; i++) {
            if (i == 0)
                fprintf(out, "\nOptions of %s:\n", def->name);
            print_flag(def->flags[i].name, def->flags[i].metavar, def->flags[i].help, out);
        }
        fprintf(out,
                "\nOptions go before or after the command. Every command takes --help;\n"
                "'%s help COMMAND' lists its options.\n"
                "\nOptions of the daemon (also valid in the config file, see sova.conf(5)):\n",
                prog->name);
        print_flag("config", "FILE", config_help, out);
        config_print_help(prog->schema, out);
        return;
    }
    fprintf(out, "Usage: ");
    print_synopsis(prog, cmd, out);
    fprintf(out, "\n%s\n", cmd->summary);
    if (cmd->help != NULL)
        fprintf(out, "\n%s", cmd->help);
    bool any = cmd->flags != NULL && cmd->flags[0].name != NULL;
    if (any)
        fprintf(out, "\nOptions:\n");
    for (size_t i = 0; any && cmd->flags[i].name != NULL; i++)
        print_flag(cmd->flags[i].name, cmd->flags[i].metavar, cmd->flags[i].help, out);
    if (cmd->config == CLI_CONFIG_LOCATE) {
        fprintf(out, "\nWhere the daemon is (any option of the daemon is taken too):\n");
        print_flag("config", "FILE", config_help, out);
        print_locate_help(prog, out);
    } else if (cmd->config == CLI_CONFIG_ALL) {
        fprintf(out,
                "\nOptions of the daemon (also valid in the config file, see sova.conf(5)):\n");
        print_flag("config", "FILE", config_help, out);
        config_print_help(prog->schema, out);
    }
    print_flag("help", NULL, "this help", out);
}

static int run_help(const struct cli_parsed *p, void *ctx)
{
    (void)ctx;
    const struct cli_command *cmd = NULL;
    char name[2 * CLI_NAME_MAX];
    snprintf(name, sizeof(name), "%s%s%s", p->argc > 0 ? p->argv[0] : "", p->argc > 1 ? " " : "",
             p->argc > 1 ? p->argv[1] : "");
    if (p->argc == 1 && is_group(p->prog, name)) {
        print_group_help(p->prog, name, stdout);
        return CLI_EXIT_OK;
    }
    if (p->argc > 0 && (cmd = find_command(p->prog, name)) == NULL)
        return usage_error(p->prog, p->cmd, "unknown command '%s'", name);
    cli_print_help(p->prog, cmd, stdout);
    return CLI_EXIT_OK;
}

static int run_completion(const struct cli_parsed *p, void *ctx)
{
    (void)ctx;
    if (strcmp(p->argv[0], "bash") != 0)
        return cli_usage_error(p, "no completion for the shell '%s' (there is one for bash)",
                               p->argv[0]);
    cli_print_bash_completion(p->prog, stdout);
    return CLI_EXIT_OK;
}

const char *cli_flag(const struct cli_parsed *p, const char *name)
{
    size_t at;
    if (find_flag(p->cmd, name, &at) == NULL || at >= CLI_MAX_FLAGS)
        return NULL;
    return p->flags[at];
}

bool cli_flag_set(const struct cli_parsed *p, const char *name)
{
    return cli_flag(p, name) != NULL;
}

/* The first pass: where the command is, and whether --help or --version
 * was asked for anywhere (before "--"). */
struct scan {
    int cmd_at; /* -1: none */
    int sub_at; /* the command's second word, in a group; -1: none */
    bool group; /* argv[cmd_at] names a group */
    bool help, version;
    const char *unknown; /* the first option no command or the schema knows */
};

static void scan_args(const struct cli_program *prog, int argc, char **argv, struct scan *s)
{
    s->cmd_at = s->sub_at = -1;
    s->group = false;
    s->help = s->version = false;
    s->unknown = NULL;
    const struct cli_command *cmd = NULL;
    for (int i = 1; i < argc;) {
        char name[CLI_NAME_MAX];
        const char *value;
        if (strcmp(argv[i], "--") == 0) {
            if (s->cmd_at < 0 && i + 1 < argc)
                s->cmd_at = i + 1;
            break;
        }
        if (!split_option(argv[i], name, sizeof(name), &value)) {
            if (s->cmd_at < 0) {
                s->cmd_at = i;
                s->group = is_group(prog, argv[i]);
                cmd = s->group ? NULL : find_command(prog, argv[i]);
            } else if (s->group && s->sub_at < 0) {
                char full[2 * CLI_NAME_MAX];
                snprintf(full, sizeof(full), "%s %s", argv[s->cmd_at], argv[i]);
                s->sub_at = i;
                cmd = find_command(prog, full);
            }
            i++;
            continue;
        }
        s->help |= strcmp(name, "help") == 0;
        s->version |= strcmp(name, "version") == 0;
        if (s->unknown == NULL && option_arity(prog, cmd, name) == ARITY_UNKNOWN)
            s->unknown = argv[i];
        i += option_slots(prog, cmd, argc, argv, i);
    }
}

static int unknown_option(const struct cli_program *prog, const struct cli_command *cmd,
                          const char *arg)
{
    char name[CLI_NAME_MAX];
    const char *value;
    split_option(arg, name, sizeof(name), &value);
    const char *near = near_option(prog, cmd, name);
    if (cmd != NULL && option_arity(prog, NULL, name) != ARITY_UNKNOWN)
        return usage_error(prog, cmd, "%s takes no option --%s", cmd->name, name);
    return usage_error(prog, cmd, "unknown option --%s%s%s%s", name,
                       near ? " (did you mean --" : "", near ? near : "", near ? "?)" : "");
}

/* The second pass, the command known: its flags, its daemon options
 * (normalised to "--name=value"), its positional arguments. */
static int parse_command(const struct cli_program *prog, int argc, char **argv,
                         const struct scan *s, struct cli_parsed *p)
{
    const struct cli_command *cmd = p->cmd;
    bool options = true;
    for (int i = 1; i < argc; i++) {
        char name[CLI_NAME_MAX];
        const char *value;
        if (i == s->cmd_at || i == s->sub_at)
            continue;
        if (options && strcmp(argv[i], "--") == 0) {
            options = false;
            continue;
        }
        if (!options || !split_option(argv[i], name, sizeof(name), &value)) {
            p->argv[p->argc++] = argv[i];
            continue;
        }
        if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0)
            continue;
        enum arity a = option_arity(prog, cmd, name);
        if (a == ARITY_UNKNOWN)
            return unknown_option(prog, cmd, argv[i]);
        if (value != NULL && a == ARITY_NONE)
            return usage_error(prog, cmd, "option --%s takes no value", name);
        if (value == NULL && a != ARITY_NONE) {
            if (a == ARITY_BOOL && (i + 1 >= argc || !is_bool_word(argv[i + 1])))
                value = "true";
            else if (i + 1 >= argc)
                return usage_error(prog, cmd, "option --%s needs a value", name);
            else
                value = argv[++i];
        }
        size_t at;
        if (find_flag(cmd, name, &at) != NULL) {
            p->flags[at] = value ? value : ""; /* at < CLI_MAX_FLAGS: check_table */
            continue;
        }
        size_t n = strlen(name) + strlen(value) + 4;
        char *opt = malloc(n);
        if (opt == NULL) {
            fprintf(stderr, "%s: out of memory\n", prog->name);
            return CLI_EXIT_FAIL;
        }
        snprintf(opt, n, "--%s=%s", name, value);
        p->config_argv[p->config_argc++] = opt;
    }
    if (p->argc < cmd->min_args || (cmd->max_args >= 0 && p->argc > cmd->max_args)) {
        if (p->argc > 0 && cmd->max_args == 0)
            return usage_error(prog, cmd, "%s takes no argument ('%s' given)", cmd->name,
                               p->argv[0]);
        if (p->argc > cmd->min_args)
            return usage_error(prog, cmd, "%s takes %s, not %d arguments", cmd->name, cmd->args,
                               p->argc);
        return usage_error(prog, cmd, "%s needs %s", cmd->name, cmd->args);
    }
    return CLI_EXIT_OK;
}

static void parsed_free(struct cli_parsed *p)
{
    for (int i = 0; i < p->config_argc; i++)
        free(p->config_argv[i]);
    free(p->config_argv);
    free(p->argv);
}

/* The table's own rules, which the parser relies on: a flag is not also a
 * config option (its arity before the command would be ambiguous), and a
 * command has at most CLI_MAX_FLAGS flags. A broken table is a bug. */
static void check_table(const struct cli_program *prog)
{
    for (size_t i = 0; i < prog->n_commands; i++) {
        const struct cli_command *c = &prog->commands[i];
        size_t n = 0;
        for (; c->flags != NULL && c->flags[n].name != NULL; n++)
            SOVA_ASSERT(config_find(prog->schema, c->flags[n].name) == NULL &&
                        strcmp(c->flags[n].name, "config") != 0);
        SOVA_ASSERT(n <= CLI_MAX_FLAGS);
    }
}

int cli_main(const struct cli_program *prog, int argc, char **argv, void *ctx)
{
    check_table(prog);
    struct scan s;
    scan_args(prog, argc, argv, &s);
    const struct cli_command *cmd = NULL;
    char name[2 * CLI_NAME_MAX] = "";
    if (s.cmd_at >= 0)
        snprintf(name, sizeof(name), "%s%s%s", argv[s.cmd_at], s.sub_at >= 0 ? " " : "",
                 s.sub_at >= 0 ? argv[s.sub_at] : "");
    if (s.group && s.sub_at < 0) {
        if (s.help || s.version) {
            print_group_help(prog, name, stdout);
            return CLI_EXIT_OK;
        }
        fprintf(stderr, "%s: %s needs a subcommand\n", prog->name, name);
        print_group_help(prog, name, stderr);
        return CLI_EXIT_USAGE;
    }
    if (s.cmd_at >= 0 && (cmd = find_command(prog, name)) == NULL) {
        /* "--bogus 1": the word after an unknown option is no command */
        if (s.unknown != NULL)
            return unknown_option(prog, NULL, s.unknown);
        if (s.group) { /* "share frobnicate": what the group has */
            fprintf(stderr, "%s: unknown command '%s'\n", prog->name, name);
            print_group_help(prog, argv[s.cmd_at], stderr);
            return CLI_EXIT_USAGE;
        }
        return usage_error(prog, NULL, "unknown command '%s'", name);
    }
    if (s.version) {
        prog->print_version(stdout);
        return CLI_EXIT_OK;
    }
    if (s.help) {
        cli_print_help(prog, cmd, stdout);
        return CLI_EXIT_OK;
    }
    if (cmd == NULL && prog->default_command != NULL)
        cmd = find_command(prog, prog->default_command);
    if (cmd == NULL) {
        if (s.unknown != NULL)
            return unknown_option(prog, NULL, s.unknown);
        if (argc < 2) {
            cli_print_help(prog, NULL, stderr);
            return CLI_EXIT_USAGE;
        }
        return usage_error(prog, NULL, "no command given");
    }
    struct cli_parsed p = {.prog = prog, .cmd = cmd};
    p.argv = calloc((size_t)argc + 1, sizeof(char *));
    p.config_argv = calloc((size_t)argc + 1, sizeof(char *));
    int status = CLI_EXIT_FAIL;
    if (p.argv == NULL || p.config_argv == NULL)
        fprintf(stderr, "%s: out of memory\n", prog->name);
    else if ((status = parse_command(prog, argc, argv, &s, &p)) == CLI_EXIT_OK)
        status = cmd->run(&p, ctx);
    parsed_free(&p);
    return status;
}
