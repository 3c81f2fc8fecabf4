/* mp-ref-logits: the reference forward pass (tests/helpers/ref_forward.c) as a
 * command with the same contract as `moepager logits`:
 *
 *   mp-ref-logits -m MODEL --ids 1,300,301 -o OUT.f32 [--all] [-n N] [--exact|--kv-double|--act-exact]
 *
 * writes the last position's logits (every position's with --all) as raw
 * little-endian float32, n_vocab per position, and with -n N greedily
 * generates N tokens and prints one line `gen_ids: a,b,c`. */
#include "helpers/ref_forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mp-ref-logits -m MODEL --ids ID,ID,... [-o OUT.f32] [--all] [-n N] [--exact|--kv-double|--act-exact]\n"
            "  Double-precision reference forward pass (slow; for tests).\n"
            "  -o FILE    write logits as raw little-endian float32 (n_vocab per position)\n"
            "  --all      write every position's logits, not only the last one\n"
            "  -n N       greedily generate N tokens and print 'gen_ids: a,b,c'\n"
            "  --kv-double  keep K and V in double (default: rounded to half precision\n"
            "             as in llama.cpp's default F16 KV cache)\n"
            "  --act-exact  do not round activations to the weights' dot type\n"
            "             (default: F16/BF16/Q8_0/Q8_K as llama.cpp's CPU backend does)\n"
            "  --exact    both: a pure double-precision forward pass\n");
}

static int parse_ids(const char *s, int32_t **out, int *n)
{
    int cap = 16, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    while (ids && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) { free(ids); return -1; }
        if (k == cap) {
            int32_t *nids = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!nids) { free(ids); return -1; }
            ids = nids;
        }
        ids[k++] = (int32_t)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) { free(ids); return -1; }
    }
    if (!ids || k == 0) { free(ids); return -1; }
    *out = ids;
    *n = k;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *out_path = NULL, *ids_arg = NULL;
    int all = 0, n_gen = 0, ret = 1;
    mp_ref_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--kv-double")) opts.kv_double = true;
        else if (!strcmp(a, "--act-exact")) opts.act_exact = true;
        else if (!strcmp(a, "--exact")) opts.kv_double = opts.act_exact = true;
        else if (i + 1 < argc && !strcmp(a, "-m")) model = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "-o")) out_path = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--ids")) ids_arg = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "-n")) n_gen = atoi(argv[++i]);
        else { fprintf(stderr, "error: unknown or incomplete option '%s'\n", a); usage(stderr); return 2; }
    }
    int32_t *ids = NULL;
    int n = 0;
    if (!model || !ids_arg) { usage(stderr); return 2; }
    if (parse_ids(ids_arg, &ids, &n)) { fprintf(stderr, "error: bad --ids '%s'\n", ids_arg); return 2; }
    if (n_gen < 0) n_gen = 0;
    opts.n_ctx = n + n_gen + 1;

    mp_err err = {0};
    mp_ref_model *m = NULL;
    float *logits = NULL, *last = NULL;
    int32_t *gen = NULL;
    if (mp_ref_model_load(&m, model, &opts, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto done;
    }
    const int nv = mp_ref_n_vocab(m);
    const size_t npos = all ? (size_t)n : 1;
    logits = malloc(npos * nv * sizeof(float));
    last = malloc((size_t)nv * sizeof(float));
    gen = malloc((size_t)(n_gen + 1) * sizeof(int32_t));
    if (!logits || !last || !gen) { fprintf(stderr, "error: out of memory\n"); goto done; }
    if (mp_ref_eval(m, ids, n, logits, all, &err)) { fprintf(stderr, "error: %s\n", err.msg); goto done; }
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(logits, sizeof(float), npos * nv, f) != npos * nv || fclose(f)) {
            fprintf(stderr, "error: cannot write %s\n", out_path);
            goto done;
        }
    }
    if (n_gen > 0) {
        memcpy(last, logits + (npos - 1) * nv, (size_t)nv * sizeof(float));
        printf("gen_ids:");
        for (int g = 0; g < n_gen; g++) {
            gen[g] = mp_ref_argmax(last, nv);
            printf("%s%d", g ? "," : " ", gen[g]);
            if (g + 1 < n_gen && mp_ref_eval(m, &gen[g], 1, last, 0, &err)) {
                fprintf(stderr, "\nerror: %s\n", err.msg);
                goto done;
            }
        }
        printf("\n");
    }
    ret = 0;
done:
    free(ids);
    free(logits);
    free(last);
    free(gen);
    mp_ref_model_free(m);
    return ret;
}
