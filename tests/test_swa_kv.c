/* Sliding-window layers keep a window-sized KV cache (issue 12 leftover):
 * gpt-oss's sliding layers hold their window plus one batch of cells, not
 * n_ctx, and slide that run forward as positions pass. Checked here through
 * the public API on an mp-gen gpt-oss model (window 16, 3 layers, two of them
 * sliding) at n_ctx 1024, n_batch 64:
 *   - mp_model_inspect counts 256 cells for each sliding layer (pad(16 - 1 +
 *     64 + 63, 256)) and n_ctx for the full one, and kv_bytes is that;
 *   - 600 tokens (the cells slide on twice) evaluated in one call (64-token
 *     chunks inside) and in calls of 64 give the same logits byte for byte;
 *     llama.cpp parity for long prompts, also at -b 64, is test_parity_gptoss;
 *   - truncating to a position whose window slid away is refused with
 *     MP_E_RANGE and changes nothing; truncating inside the kept window and
 *     re-evaluating gives the same logits as before (the same chunks: the
 *     prompt's attention takes another path for 64+ queries, as llama.cpp's);
 *     truncating to 0 and evaluating everything again gives the same logits.
 * Needs mp-gen from the build tree. */
#include "moepager/moepager.h"
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 600

static int32_t ids[N];

/* Evaluates ids[from, to) in calls of `step` tokens; the last call's logits in lg. */
static bool eval_range(mp_engine *e, int from, int to, int step, float *lg, int V)
{
    mp_err err = {0};
    for (int s = from; s < to; s += step) {
        const int n = to - s < step ? to - s : step;
        if (mp_engine_eval(e, ids + s, (size_t)n, lg, (size_t)V, false, &err) != MP_OK) {
            fprintf(stderr, "eval at %d: %s\n", s, err.msg);
            return false;
        }
    }
    return true;
}

int main(void)
{
    char dir[] = "/tmp/mp-swa-kv.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char model[256], cmd[1024];
    snprintf(model, sizeof model, "%s/go.gguf", dir);
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch gpt-oss --type q8_0 --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 64 "
             "--n-layer 3 --n-expert 4 --n-expert-used 2 --swa 16 --n-ctx 4096 --n-vocab 300 -q -o '%s'",
             mp_test_build_dir(), model);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }
    for (int i = 0; i < N; i++) ids[i] = 3 + (i * 37 + 11) % 290;

    mp_params p = mp_params_default();
    p.n_ctx = 1024;
    p.n_batch = 64;
    p.n_threads = 2;
    mp_err err = {0};

    /* the planner's view: layers 0 and 2 slide (the default pattern 2) */
    mp_model_info mi;
    CHECKF(mp_model_inspect(model, &p, &mi, &err) == MP_OK, "%s", err.msg);
    CHECKF(mi.n_swa == 16 && mi.n_swa_layers == 2 && mi.swa_cells == 256, "n_swa %u, layers %u, cells %d", mi.n_swa,
           mi.n_swa_layers, mi.swa_cells);
    const uint64_t per_cell = 2u /* kv heads */ * (32 + 32) * 2 /* f16 */;
    CHECKF(mi.kv_bytes == (1024u + 2 * 256u) * per_cell, "kv bytes %llu", (unsigned long long)mi.kv_bytes);

    mp_engine *e = NULL;
    if (mp_engine_open(&e, model, &p, &err) != MP_OK) {
        fprintf(stderr, "open %s: %s\n", model, err.msg);
        return 1;
    }
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int V = info.n_vocab;
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b), *c = malloc((size_t)V * sizeof *c);
    if (!a || !b || !c) return 1;

    /* one call (64-token chunks inside) vs calls of 64 */
    CHECK(eval_range(e, 0, N, N, a, V));
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK && mp_engine_n_past(e) == 0);
    CHECK(eval_range(e, 0, N, 64, b, V));
    CHECK(!memcmp(a, b, (size_t)V * sizeof *a));

    /* the window for position 100 slid away long ago: refused, nothing changed */
    CHECK(mp_engine_truncate(e, 100, &err) == MP_E_RANGE && mp_engine_n_past(e) == N);
    CHECKF(strstr(err.msg, "sliding-window") != NULL, "%s", err.msg);
    printf("refused: %s\n", err.msg);
    /* inside the kept window: the same logits again (N - 5, then 5 more; twice) */
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK);
    CHECK(eval_range(e, 0, N - 5, 64, b, V) && eval_range(e, N - 5, N, 5, b, V));
    CHECK(mp_engine_truncate(e, N - 5, &err) == MP_OK && mp_engine_n_past(e) == N - 5);
    CHECK(eval_range(e, N - 5, N, 5, c, V));
    CHECK(!memcmp(b, c, (size_t)V * sizeof *b));
    /* from 0 */
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK);
    CHECK(eval_range(e, 0, N, 64, c, V));
    CHECK(!memcmp(a, c, (size_t)V * sizeof *a));

    mp_engine_free(e);
    free(a);
    free(b);
    free(c);
    unlink(model);
    rmdir(dir);
    MP_TEST_DONE();
}
