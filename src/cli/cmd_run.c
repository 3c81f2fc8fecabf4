/* moepager run: generate text from a prompt, streaming tokens. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: moepager run [-m MODEL] -p TEXT [-n N] [options]\n\n"
           "Generates text, streaming tokens as they come, then prints one stats line\n"
           "(prompt tok/s, generation tok/s, peak RSS) on stderr.\n\n"
           "  -p, --prompt TEXT      the prompt\n"
           "  -f, --file FILE        read the prompt from FILE\n"
           "  -n, --n-predict N      tokens to generate (default 128; -1: until end of text or context)\n"
           "  --temp T               temperature (default 0.8; 0 = greedy)\n"
           "  --top-k N              (default 40; 0 = off)\n"
           "  --top-p P              (default 0.95; 1 = off)\n"
           "  --min-p P              (default 0.05; 0 = off)\n"
           "  --repeat-penalty R     (default 1.0 = off)\n"
           "  --repeat-last-n N      tokens the penalty looks back over (default 64)\n"
           "  -s, --seed N           sampling seed (default 0)\n"
           "  --ignore-eos           keep generating past end-of-text tokens\n"
           "  --no-display-prompt    do not echo the prompt\n"
           "%s",
           cli_model_opts_help);
}

int cmd_run(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *prompt = NULL, *pfile = NULL;
    int n_predict = 128;
    bool ignore_eos = false, echo = true;
    mp_sampler_params sp = mp_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_take_model_opt(&mo, argc, argv, &i);
        if (r == 0) r = cli_take_sampler_opt(&sp, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (cli_is_help(a)) {
            help();
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(pfile = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, -1, 1 << 24, &n_predict)) return 1;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
        } else if (!strcmp(a, "--no-display-prompt")) {
            echo = false;
        } else {
            return cli_error("run: unknown option '%s' (see moepager run --help)", a);
        }
    }
    if (prompt && pfile) return cli_error("run: give -p or -f, not both");
    if (cli_resolve_model(&mo)) return 1;

    int rc = 1;
    char *text = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    mp_sampler *smp = NULL;
    mp_engine *e = NULL;
    mp_err err = {0};
    if (pfile) {
        if (!(text = cli_read_file(pfile, NULL))) return 1;
        prompt = text;
    }
    if (!prompt) prompt = "";

    if (!(e = cli_open_engine(&mo, true, 0))) goto done;
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int n_ctx = mp_engine_n_ctx(e);
    size_t n = 0;
    int trc = mp_engine_tokenize(e, prompt, strlen(prompt), MP_TOKENIZE_ADD_SPECIAL, NULL, 0, &n, NULL);
    if (trc != MP_OK && trc != MP_E_RANGE) {
        cli_error("%s: cannot tokenize the prompt", mo.model);
        goto done;
    }
    if (n == 0) {
        cli_error("run: empty prompt and the vocabulary adds no BOS token: give -p TEXT");
        goto done;
    }
    if (n >= (size_t)n_ctx) {
        cli_error("run: the prompt has %lld tokens but the context holds %d (use -c)", (long long)n, n_ctx);
        goto done;
    }
    ids = malloc(sizeof *ids * n);
    logits = malloc(sizeof *logits * (size_t)info.n_vocab);
    if (!ids || !logits || mp_sampler_open(&smp, &sp, info.n_vocab, &err)) {
        cli_error("out of memory");
        goto done;
    }
    if (mp_engine_tokenize(e, prompt, strlen(prompt), MP_TOKENIZE_ADD_SPECIAL, ids, n, &n, &err)) {
        cli_fail(&err);
        goto done;
    }
    for (size_t i = 0; i < n; i++) mp_sampler_accept(smp, ids[i]);
    if (echo) {
        fputs(prompt, stdout);
        fflush(stdout);
    }

    double t0 = mp_time_s();
    if (mp_engine_eval(e, ids, n, logits, (size_t)info.n_vocab, false, &err)) {
        printf("\n");
        cli_fail(&err);
        goto done;
    }
    double t_prompt = mp_time_s() - t0;
    mp_engine_stats_mark(e, MP_PHASE_DECODE);

    int n_gen = 0;
    double tg0 = mp_time_s();
    char piece[256];
    while (n_predict < 0 || n_gen < n_predict) {
        int32_t tok = mp_sampler_sample(smp, logits);
        mp_sampler_accept(smp, tok);
        n_gen++;
        if (!ignore_eos && mp_engine_is_eog(e, tok)) break;
        size_t len = 0;
        int prc = mp_engine_token_to_piece(e, tok, false, piece, sizeof piece, &len, NULL);
        if ((prc == MP_OK || prc == MP_E_RANGE) && len > 0) fwrite(piece, 1, len < sizeof piece ? len : sizeof piece, stdout);
        fflush(stdout);
        if (n_predict >= 0 && n_gen >= n_predict) break;
        if (mp_engine_n_past(e) >= n_ctx) {
            fprintf(stderr, "\nmoepager: context full (%d tokens)\n", n_ctx);
            break;
        }
        if (mp_engine_eval(e, &tok, 1, logits, (size_t)info.n_vocab, false, &err)) {
            printf("\n");
            cli_fail(&err);
            goto done;
        }
    }
    double t_gen = mp_time_s() - tg0;
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "prompt: %lld tokens, %.2f tok/s | generation: %d tokens, %.2f tok/s | peak RSS: %.1f MiB\n",
            (long long)n, n / t_prompt, n_gen, n_gen > 0 && t_gen > 0 ? n_gen / t_gen : 0.0,
            mp_peak_rss_bytes() / 1048576.0);
    cli_print_cache_stats(e, t_prompt + t_gen, (int)n + n_gen);
    /* the first generated token came from the prompt's logits: n_gen - 1 decode steps */
    cli_print_phase_stats(e, t_prompt, (int)n, t_gen, n_gen - 1, mo.layer_stats);
    rc = 0;
done:
    free(text);
    free(ids);
    free(logits);
    mp_sampler_free(smp);
    mp_engine_free(e);
    return rc;
}
