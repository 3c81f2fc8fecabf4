/* moepager tokenize: print the token ids of a text. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: moepager tokenize -m MODEL [-p TEXT | -f FILE] [--no-bos] [--pieces] [--special]\n\n"
           "Prints the token ids of the text (from -p, -f FILE, or standard input),\n"
           "space-separated. Works on vocab-only GGUF files.\n\n"
           "  -m, --model FILE   model or vocabulary GGUF\n"
           "  -p, --prompt TEXT  text to tokenize\n"
           "  -f, --file FILE    read the text from FILE ('-' for standard input)\n"
           "  --no-bos           do not add BOS/EOS even if the vocabulary asks for it\n"
           "  --special          parse special-token texts such as <s> in the input\n"
           "  --pieces           print id:'piece' pairs, one per line\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool bos = true, pieces = false, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            help();
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-bos")) {
            bos = false;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else {
            return cli_error("tokenize: unknown option '%s' (see moepager tokenize --help)", a);
        }
    }
    cli_model_opts mo = {.model = model};
    if (cli_resolve_model(&mo)) return 1;
    if (prompt && file) return cli_error("tokenize: give -p or -f, not both");

    int rc = 1;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    mp_engine *e = NULL;
    mp_err err = {0};
    mp_params p = mp_params_default();
    p.vocab_only = true; /* the tokenizer alone: vocab-only files work, nothing is mapped */
    if (mp_engine_open(&e, mo.model, &p, &err)) {
        cli_fail(&err);
        goto done;
    }
    if (prompt) {
        len = strlen(prompt);
    } else {
        if (!(text = cli_read_file(file ? file : "-", &len))) goto done;
        prompt = text;
    }
    const unsigned flags = (bos ? MP_TOKENIZE_ADD_SPECIAL : 0) | (special ? MP_TOKENIZE_PARSE_SPECIAL : 0);
    size_t n = 0;
    int trc = mp_engine_tokenize(e, prompt, len, flags, NULL, 0, &n, NULL);
    if (trc != MP_OK && trc != MP_E_RANGE) {
        cli_error("%s: tokenization failed", mo.model);
        goto done;
    }
    ids = malloc(sizeof *ids * (n ? n : 1));
    if (!ids) goto done;
    if (mp_engine_tokenize(e, prompt, len, flags, ids, n, &n, &err)) {
        cli_fail(&err);
        goto done;
    }
    char piece[512];
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            size_t pl = 0;
            int prc = mp_engine_token_to_piece(e, ids[i], true, piece, sizeof piece, &pl, NULL);
            if (prc != MP_OK && prc != MP_E_RANGE) pl = 0;
            if (pl > sizeof piece) pl = sizeof piece;
            printf("%d:'%.*s'\n", ids[i], (int)pl, piece);
        } else {
            printf("%s%d", i ? " " : "", ids[i]);
        }
    }
    if (!pieces) printf("\n");
    rc = 0;
done:
    free(text);
    free(ids);
    mp_engine_free(e);
    return rc;
}
