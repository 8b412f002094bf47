/* cli_complete.c - the bash completion of a program, written from the same
 * table the parser reads (cli.h), so the two cannot disagree. */
#include "cli.h"

#include <stdbool.h>
#include <string.h>

/* The program and all its commands (its own and the built-in ones). */
struct completion {
    const struct cli_program *prog;
    const struct cli_command *const *cmds;
    size_t n;
};

/* A shell function name from the program's: "sova-peer" -> "_sova_peer". */
static void function_name(const struct cli_program *prog, char *buf, size_t cap)
{
    snprintf(buf, cap, "_%s", prog->name);
    for (char *c = buf; *c; c++)
        if (*c == '-')
            *c = '_';
}

static void print_config_options(const struct cli_program *prog, FILE *out)
{
    fprintf(out, " --config");
    for (size_t i = 0; i < prog->schema->count; i++)
        fprintf(out, " --%s", prog->schema->options[i].name);
}

/* What the value of a schema option completes to, as a compgen argument. */
static const char *value_words(enum config_type t)
{
    switch (t) {
    case CONFIG_PATH:
        return "-f";
    case CONFIG_BOOL:
        return "-W 'yes no'";
    case CONFIG_LOGLEVEL:
        return "-W 'error warn info debug'";
    default:
        return NULL;
    }
}

static void print_value_cases(const struct completion *cc, FILE *out)
{
    const struct cli_program *prog = cc->prog;
    /* Options that take a value: the word after them is that value. */
    fprintf(out, "    local takes_value=' --config");
    for (size_t i = 0; i < prog->schema->count; i++)
        if (prog->schema->options[i].type != CONFIG_BOOL)
            fprintf(out, " --%s", prog->schema->options[i].name);
    for (size_t i = 0; i < cc->n; i++) {
        const struct cli_command *c = cc->cmds[i];
        for (size_t j = 0; c->flags != NULL && c->flags[j].name != NULL; j++)
            if (c->flags[j].metavar != NULL)
                fprintf(out, " --%s", c->flags[j].name);
    }
    fprintf(out, " '\n");
    fprintf(out, "    case $prev in\n      --config) compopt -o filenames 2>/dev/null; "
                 "COMPREPLY=($(compgen -f -- \"$cur\")); "
                 "return ;;\n");
    for (size_t i = 0; i < prog->schema->count; i++) {
        const char *w = value_words(prog->schema->options[i].type);
        if (w != NULL)
            fprintf(out, "      --%s) %sCOMPREPLY=($(compgen %s -- \"$cur\")); return ;;\n",
                    prog->schema->options[i].name,
                    strcmp(w, "-f") == 0 ? "compopt -o filenames 2>/dev/null; " : "", w);
    }
    for (size_t i = 0; i < cc->n; i++) {
        const struct cli_command *c = cc->cmds[i];
        for (size_t j = 0; c->flags != NULL && c->flags[j].name != NULL; j++)
            if (c->flags[j].metavar != NULL && strcmp(c->flags[j].metavar, "PATH") == 0)
                fprintf(out,
                        "      --%s) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "
                        "\"$cur\")); return ;;\n",
                        c->flags[j].name);
    }
    fprintf(out, "    esac\n"
                 "    if [[ $takes_value == *\" $prev \"* && $prev == --* ]]; then return; fi\n");
}

/* The length of name's first word ("share" of "share add"). */
static size_t first_word(const char *name)
{
    return strcspn(name, " ");
}

/* Whether cmds[i] is the first command whose first word is its own (so
 * each first word is written once). */
static bool first_of_its_word(const struct completion *cc, size_t i)
{
    size_t n = first_word(cc->cmds[i]->name);
    for (size_t j = 0; j < i; j++)
        if (first_word(cc->cmds[j]->name) == n &&
            strncmp(cc->cmds[j]->name, cc->cmds[i]->name, n) == 0)
            return false;
    return true;
}

/* The first words of the commands (grouped: only those of groups). */
static void print_first_words(const struct completion *cc, bool groups_only, FILE *out)
{
    bool any = false;
    for (size_t i = 0; i < cc->n; i++) {
        const char *name = cc->cmds[i]->name;
        if (!first_of_its_word(cc, i) || (groups_only && name[first_word(name)] != ' '))
            continue;
        fprintf(out, "%s%.*s", any ? " " : "", (int)first_word(name), name);
        any = true;
    }
}

/* "share) COMPREPLY=(... 'add list remove' ...)": a group's subcommands. */
static void print_group_cases(const struct completion *cc, FILE *out)
{
    for (size_t i = 0; i < cc->n; i++) {
        const char *name = cc->cmds[i]->name;
        size_t n = first_word(name);
        if (name[n] != ' ' || !first_of_its_word(cc, i))
            continue;
        fprintf(out, "      '%.*s') COMPREPLY=($(compgen -W '", (int)n, name);
        for (size_t j = i; j < cc->n; j++)
            if (strncmp(cc->cmds[j]->name, name, n + 1) == 0)
                fprintf(out, "%s%s", j == i ? "" : " ", cc->cmds[j]->name + n + 1);
        fprintf(out, "' -- \"$cur\")) ;;\n");
    }
}

static void print_positional_case(const struct cli_command *c, FILE *out)
{
    if (c->complete == NULL)
        return;
    if (strcmp(c->complete, "file") == 0)
        fprintf(out,
                "      '%s') compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "
                "\"$cur\")) ;;\n",
                c->name);
    else if (strcmp(c->complete, "command") == 0)
        fprintf(out, "      '%s') COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")) ;;\n",
                c->name);
    else
        fprintf(out, "      '%s') COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", c->name,
                c->complete);
}

void cli_write_bash_completion(const struct cli_program *prog,
                               const struct cli_command *const *cmds, size_t n, FILE *out)
{
    const struct completion all = {.prog = prog, .cmds = cmds, .n = n}, *cc = &all;
    char fn[64];
    function_name(prog, fn, sizeof(fn));
    fprintf(out,
            "# bash completion for %s, made by `%s completion bash` from its own\n"
            "# table of commands and options.\n"
            "%s() {\n"
            "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
            "    COMPREPLY=()\n",
            prog->name, prog->name, fn);
    print_value_cases(cc, out);
    /* The command: the first word that is neither an option nor a value,
     * and the next one too if the first names a group ("share add"). */
    fprintf(out, "    local groups=' ");
    print_first_words(cc, true, out);
    fprintf(out, " '\n"
                 "    local cmd='' i w\n"
                 "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
                 "        w=${COMP_WORDS[i]}\n"
                 "        if [[ $w == -* ]]; then\n"
                 "            [[ $w != *=* && $takes_value == *\" $w \"* ]] && ((i++))\n"
                 "            continue\n"
                 "        fi\n"
                 "        if [[ -z $cmd ]]; then\n"
                 "            cmd=$w\n"
                 "            [[ $groups == *\" $w \"* ]] || break\n"
                 "        else\n"
                 "            cmd+=\" $w\"\n"
                 "            break\n"
                 "        fi\n"
                 "    done\n");
    fprintf(out, "    local opts='--help --version'\n    case $cmd in\n");
    for (size_t i = 0; i < cc->n; i++) {
        const struct cli_command *c = cc->cmds[i];
        fprintf(out, "      '%s') opts+='", c->name);
        for (size_t j = 0; c->flags != NULL && c->flags[j].name != NULL; j++)
            fprintf(out, " --%s", c->flags[j].name);
        if (c->config != CLI_CONFIG_NONE)
            print_config_options(prog, out);
        fprintf(out, "' ;;\n");
    }
    fprintf(out, "      *) opts+='");
    print_config_options(prog, out);
    fprintf(out, "' ;;\n    esac\n");
    fprintf(out, "    if [[ $cur == -* ]]; then\n"
                 "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
                 "        return\n"
                 "    fi\n"
                 "    local commands='");
    print_first_words(cc, false, out);
    fprintf(out, "'\n"
                 "    case $cmd in\n"
                 "      '') COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")) ;;\n");
    print_group_cases(cc, out);
    for (size_t i = 0; i < cc->n; i++)
        print_positional_case(cc->cmds[i], out);
    fprintf(out, "    esac\n}\ncomplete -F %s %s\n", fn, prog->name);
}
