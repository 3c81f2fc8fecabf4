/* moepager logits: evaluate token ids, write raw float32 logits. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: moepager logits -m MODEL (--ids 1,300,301 | -p TEXT) -o FILE [--all] [-n N]\n\n"
           "Evaluates the tokens and writes the logits of the last position (every\n"
           "position with --all) as raw little-endian float32, n_vocab per position.\n"
           "With -n N, then generates N tokens greedily and prints 'gen_ids: a,b,c'.\n\n"
           "  --ids LIST           comma-separated token ids\n"
           "  -p, --prompt TEXT    text to tokenize instead (BOS added as the vocab says)\n"
           "  -o, --output FILE    where to write the logits\n"
           "  --all                logits for every position\n"
           "  -n, --n-predict N    greedy tokens to generate after the prompt (default 0)\n"
           "%s",
           cli_model_opts_help);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int cmd_logits(int argc, char **argv)
{
    cli_model_opts mo = {0};
    double t_dec = 0;
    const char *ids_s = NULL, *prompt = NULL, *out_path = NULL;
    bool all = false;
    int n_gen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_take_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (cli_is_help(a)) {
            help();
            return 0;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_s = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_path = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int(a, v, 0, 1 << 20, &n_gen)) return 1;
        } else {
            return cli_error("logits: unknown option '%s' (see moepager logits --help)", a);
        }
    }
    if (!ids_s == !prompt) return cli_error("logits: give exactly one of --ids or -p");
    if (cli_resolve_model(&mo)) return 1;

    int32_t *ids = NULL;
    int n = 0, rc = 1;
    float *logits = NULL;
    mp_engine *e = NULL;
    mp_err err = {0};
    if (ids_s) {
        int64_t tmp[65536];
        if (mp_parse_int_list(ids_s, tmp, 65536, &n) != MP_OK || n == 0) {
            cli_error("--ids: '%s' is not a comma-separated list of token ids", ids_s);
            goto done;
        }
        ids = malloc(sizeof *ids * (size_t)n);
        for (int i = 0; ids && i < n; i++) {
            if (tmp[i] < 0 || tmp[i] > INT32_MAX) {
                cli_error("--ids: id %lld is out of range", (long long)tmp[i]);
                goto done;
            }
            ids[i] = (int32_t)tmp[i];
        }
    }
    int need = (ids_s ? n : (int)strlen(prompt) + 2) + n_gen; /* enough for prompt + generation, like llama_logits */
    if (!(e = cli_open_engine(&mo, prompt != NULL, need < 256 ? 256 : ((need + 255) / 256) * 256))) goto done;
    if (prompt) {
        size_t cnt = 0;
        int trc = mp_engine_tokenize(e, prompt, strlen(prompt), MP_TOKENIZE_ADD_SPECIAL, NULL, 0, &cnt, NULL);
        if ((trc != MP_OK && trc != MP_E_RANGE) || cnt == 0) {
            cli_error("%s: the prompt tokenized to nothing", mo.model);
            goto done;
        }
        ids = malloc(sizeof *ids * cnt);
        if (!ids) goto done;
        if (mp_engine_tokenize(e, prompt, strlen(prompt), MP_TOKENIZE_ADD_SPECIAL, ids, cnt, &cnt, &err)) {
            cli_fail(&err);
            goto done;
        }
        n = (int)cnt;
    }
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int V = info.n_vocab;
    const size_t n_logits = (size_t)V * (all ? (size_t)n : 1);
    logits = malloc(sizeof *logits * n_logits);
    if (!logits) {
        cli_error("out of memory");
        goto done;
    }
    double t0 = mp_time_s();
    if (mp_engine_eval(e, ids, (size_t)n, logits, n_logits, all, &err)) {
        cli_fail(&err);
        goto done;
    }
    double t1 = mp_time_s();
    mp_engine_stats_mark(e, MP_PHASE_DECODE);
    printf("prompt_eval: %d tokens in %.3f ms = %.2f tok/s\n", n, (t1 - t0) * 1e3, n / (t1 - t0));
    const float *last = logits + (all ? (size_t)(n - 1) * V : 0);
    printf("top: id=%d logit=%.6f\n", argmax(last, V), last[argmax(last, V)]);
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(logits, sizeof(float), n_logits, f) != n_logits || fclose(f) != 0) {
            cli_error("%s: cannot write the logits", out_path);
            goto done;
        }
    }
    if (n_gen > 0) {
        int32_t cur = argmax(last, V);
        printf("gen_ids:");
        double tg = mp_time_s();
        for (int g = 0; g < n_gen; g++) {
            printf("%s%d", g ? "," : " ", cur);
            if (g == n_gen - 1) break;
            if (mp_engine_eval(e, &cur, 1, logits, n_logits, false, &err)) {
                printf("\n");
                cli_fail(&err);
                goto done;
            }
            cur = argmax(logits, V);
        }
        tg = mp_time_s() - tg;
        t_dec = tg;
        printf("\n");
        if (n_gen > 1) printf("gen: %d tokens at %.2f tok/s\n", n_gen - 1, (n_gen - 1) / tg);
    }
    cli_print_cache_stats(e, mp_time_s() - t0, n + n_gen);
    cli_print_phase_stats(e, t1 - t0, n, t_dec, n_gen > 1 ? n_gen - 1 : 0, mo.layer_stats);
    printf("peak_rss_mib: %.1f\n", mp_peak_rss_bytes() / 1048576.0);
    rc = 0;
done:
    free(ids);
    free(logits);
    mp_engine_free(e);
    return rc;
}
