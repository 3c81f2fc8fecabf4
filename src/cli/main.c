/* moepager: run Mixture-of-Experts models that do not fit in memory. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "chat with a model in the terminal (its chat template, KV kept across turns)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions)"},
    {"logits", cmd_logits, "evaluate token ids and write the logits (parity checks)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"inspect", cmd_inspect, "describe a model: architecture, sizes, memory needed"},
    {"pack", cmd_pack, "rewrite a GGUF as a packed expert file (.moepack)"},
    {"bench", cmd_bench, "sweep cache sizes and prefetch settings; replay routing traces"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: moepager COMMAND [options]   (moepager COMMAND --help for its options)\n"
               "       moepager --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("moepager %s\n", mp_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
