/* Engine speed with the whole model in RAM, measured the way llama-bench
 * measures: ppN = one N-token prompt from an empty context, tgN = N single
 * token decode steps; -r repetitions, mean and stddev in tokens/s.
 *
 *   bench_engine -m MODEL [-p 512] [-n 128] [-r 3] [-t 2] [-b 512] [--gpu KIND] [--vram SIZE]
 *
 * --gpu / --vram as moepager's (a VRAM tier; its statistics after the runs).
 * Prints one line per test: "pp512: 183.2 +- 3.1 tok/s". */
#include "common/parse.h"
#include "common/sysinfo.h"
#include "gpu/backend.h"
#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report(const char *name, int n, const double *s, int r)
{
    double mean = 0, var = 0;
    for (int i = 0; i < r; i++) mean += n / s[i];
    mean /= r;
    for (int i = 0; i < r; i++) var += (n / s[i] - mean) * (n / s[i] - mean);
    printf("%s%d: %.2f +- %.2f tok/s\n", name, n, mean, r > 1 ? sqrt(var / (r - 1)) : 0.0);
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int np = 512, ng = 128, reps = 3, threads = 2, batch = 512;
    const char *gpu = NULL;
    uint64_t vram = 0;
    bool vram_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: bench_engine -m MODEL [-p 512] [-n 128] [-r 3] [-t 2] [-b 512] [--gpu KIND] [--vram SIZE]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "error: %s needs a value\n", a);
            return 1;
        }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-p")) np = atoi(v);
        else if (!strcmp(a, "-n")) ng = atoi(v);
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-b")) batch = atoi(v);
        else if (!strcmp(a, "--gpu")) gpu = v;
        else if (!strcmp(a, "--vram")) {
            if (mp_parse_size(v, &vram) != MP_OK) {
                fprintf(stderr, "error: --vram: '%s' is not a size\n", v);
                return 1;
            }
            vram_given = true;
        } else {
            fprintf(stderr, "error: unknown option %s\n", a);
            return 1;
        }
        i++;
    }
    if (!model || np < 0 || ng < 0 || reps < 1 || reps > 100) {
        fprintf(stderr, "error: need -m MODEL and sane -p/-n/-r\n");
        return 1;
    }
    mp_session *s = NULL;
    mp_err err = {0};
    mp_session_params sp = {.model_path = model, .n_ctx = np + ng + 16, .n_batch = batch, .n_threads = threads,
                            .device = gpu, .vram = vram, .vram_given = vram_given};
    if (mp_session_open(&s, &sp, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (s->note[0]) printf("%s\n", s->note);
    const int V = (int)s->model->hp.n_vocab;
    int32_t *ids = malloc(sizeof *ids * (size_t)(np > 1 ? np : 1));
    float *logits = malloc(sizeof *logits * (size_t)V);
    double *t = calloc((size_t)reps, sizeof *t);
    for (int i = 0; i < np; i++) ids[i] = (int32_t)((i * 7919 + 1) % V);
    /* warm-up: touch every weight once */
    mp_ctx_eval(s->ctx, ids, np > 16 ? 16 : (np ? np : 1), logits, false, &err);
    mp_ctx_truncate(s->ctx, 0);
    if (np > 0) {
        for (int r = 0; r < reps; r++) {
            mp_ctx_truncate(s->ctx, 0);
            double t0 = mp_time_s();
            if (mp_ctx_eval(s->ctx, ids, np, logits, false, &err)) goto fail;
            t[r] = mp_time_s() - t0;
        }
        report("pp", np, t, reps);
    }
    if (ng > 0) {
        for (int r = 0; r < reps; r++) {
            mp_ctx_truncate(s->ctx, 0);
            int32_t tok = 1;
            double t0 = mp_time_s();
            for (int g = 0; g < ng; g++) {
                if (mp_ctx_eval(s->ctx, &tok, 1, logits, false, &err)) goto fail;
                tok = (int32_t)((tok * 31 + 7) % V);
            }
            t[r] = mp_time_s() - t0;
        }
        report("tg", ng, t, reps);
    }
    if (s->backend) {
        mp_tier_stats_gpu g;
        mp_tier_get_stats(mp_backend_tier(s->backend), &g);
        printf("vram: %llu uses, %llu hits, %llu promoted (%.1f MB up), %llu evicted, GPU %llu CPU %llu runs, "
               "copy stall %.1f ms\n",
               (unsigned long long)g.demands, (unsigned long long)g.hits, (unsigned long long)g.promotions,
               g.bytes_up / 1e6, (unsigned long long)g.evictions, (unsigned long long)g.run_gpu,
               (unsigned long long)g.run_cpu, g.stall_s * 1e3);
    }
    printf("peak_rss_mib: %.1f\n", mp_peak_rss_bytes() / 1048576.0);
    mp_session_free(s);
    free(ids);
    free(logits);
    free(t);
    return 0;
fail:
    fprintf(stderr, "error: %s\n", err.msg);
    return 1;
}
