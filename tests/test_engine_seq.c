/* Sequences (params.n_seq, mp_engine_set_seq): each has its own KV cache.
 * On the committed demo model, with experts streamed through a small cache:
 * two prompts evaluated in turns on two sequences, token by token
 * interleaved, give exactly the logits each gives alone on a one-sequence
 * engine; truncating one sequence leaves the other alone; the plan counts
 * the KV once per sequence; out-of-range sequences are refused.
 * The same interleaving on a gpt-oss model whose sliding-window layers keep a
 * window-sized KV that moves (window 16, 256 cells, prompts of 300 tokens in
 * chunks of 16): each sequence slides its own cells. */
#include "mp_test.h"

#include "moepager/moepager.h"

#include <stdlib.h>
#include <string.h>

static int g_n_ctx = 256, g_n_batch = 0;

static mp_engine *open_demo(const char *path, int n_seq)
{
    mp_params p = mp_params_default();
    p.n_ctx = g_n_ctx;
    p.n_batch = g_n_batch;
    p.n_seq = n_seq;
    p.cache_experts = 3; /* stream: the sequences share the expert cache */
    mp_engine *e = NULL;
    mp_err err = {0};
    CHECKF(mp_engine_open(&e, path, &p, &err) == MP_OK, "%s", err.msg);
    return e;
}

/* Logits after each of ids[0..n) (the prompt as one eval, then one token
 * at a time) into out[n_steps][n_vocab], alone. */
static void alone(const char *path, const int32_t *ids, int n_prompt, int n, float *out, int n_vocab)
{
    mp_engine *e = open_demo(path, 1);
    if (!e) return;
    mp_err err = {0};
    CHECKF(mp_engine_eval(e, ids, (size_t)n_prompt, out, (size_t)n_vocab, false, &err) == MP_OK, "%s", err.msg);
    for (int i = n_prompt; i < n; i++)
        CHECKF(mp_engine_eval(e, ids + i, 1, out + (size_t)(i - n_prompt + 1) * n_vocab, (size_t)n_vocab, false, &err) ==
                   MP_OK,
               "%s", err.msg);
    mp_engine_free(e);
}

/* Two sequences of na and nb ids (prompts pa and pb, then one token at a time),
 * interleaved on one engine, against each alone. */
static void interleaved(const char *path, const int32_t *a, int na, int pa, const int32_t *b, int nb, int pb)
{
    mp_engine *e = open_demo(path, 2);
    if (!e) return;
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int V = info.n_vocab;
    mp_err err = {0};
    float *ra = calloc((size_t)(na - pa + 1) * V, sizeof(float)), *rb = calloc((size_t)(nb - pb + 1) * V, sizeof(float));
    float *la = calloc((size_t)(na - pa + 1) * V, sizeof(float)), *lb = calloc((size_t)(nb - pb + 1) * V, sizeof(float));
    alone(path, a, pa, na, ra, V);
    alone(path, b, pb, nb, rb, V);
    CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK && mp_engine_eval(e, a, pa, la, (size_t)V, false, &err) == MP_OK);
    CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK && mp_engine_eval(e, b, pb, lb, (size_t)V, false, &err) == MP_OK);
    for (int i = 0; pa + i < na || pb + i < nb; i++) {
        if (pa + i < na) {
            CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK && mp_engine_n_past(e) == pa + i);
            CHECK(mp_engine_eval(e, a + pa + i, 1, la + (size_t)(i + 1) * V, (size_t)V, false, &err) == MP_OK);
        }
        if (pb + i < nb) {
            CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK && mp_engine_n_past(e) == pb + i);
            CHECK(mp_engine_eval(e, b + pb + i, 1, lb + (size_t)(i + 1) * V, (size_t)V, false, &err) == MP_OK);
        }
    }
    CHECK(memcmp(la, ra, sizeof(float) * (size_t)(na - pa + 1) * V) == 0);
    CHECK(memcmp(lb, rb, sizeof(float) * (size_t)(nb - pb + 1) * V) == 0);
    free(ra), free(rb), free(la), free(lb);
    mp_engine_free(e);
}

static void sliding_window(void)
{
    const char *build = getenv("MP_BUILD");
    char path[4096], cmd[8192];
    snprintf(path, sizeof path, "%s/engine-seq-gptoss.gguf", build ? build : ".");
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' -q --arch gpt-oss --type f16 --n-layer 2 --n-embd 64 --n-head 2 --n-head-kv 1 "
             "--head-dim 32 --n-ff 64 --n-expert 4 --n-expert-used 2 --swa 16 --n-vocab 512 --seed 5 -o '%s'",
             build ? build : ".", path);
    if (system(cmd) != 0) {
        CHECKF(0, "mp-gen failed: %s", cmd);
        return;
    }
    enum { NA = 300, NB = 290 };
    int32_t a[NA], b[NB];
    for (int i = 0; i < NA; i++) a[i] = 1 + (i * 37) % 500;
    for (int i = 0; i < NB; i++) b[i] = 1 + (i * 53 + 7) % 500;
    g_n_ctx = 1024, g_n_batch = 16;
    interleaved(path, a, NA, 280, b, NB, 250);
    g_n_ctx = 256, g_n_batch = 0;
    remove(path);
}

int main(void)
{
    const char *src = getenv("MP_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/demo-stdlib-moe.gguf", src ? src : "..");
    const int32_t a[] = {1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110};
    const int32_t b[] = {1, 50, 60, 70, 80, 90, 40, 41, 42, 43};
    const int na = 12, nb = 10, pa = 5, pb = 3; /* prompt lengths, then one token at a time */

    mp_engine *e = open_demo(path, 2);
    if (!e) return 1;
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int V = info.n_vocab;
    CHECK(info.n_seq == 2 && mp_engine_n_seq(e) == 2 && mp_engine_seq(e) == 0);

    /* the plan counts two KV caches */
    mp_plan_info p1;
    mp_params pp = mp_params_default();
    pp.n_ctx = 256;
    pp.cache_experts = 3;
    mp_err err = {0};
    CHECKF(mp_model_plan(path, &pp, &p1, &err) == MP_OK, "%s", err.msg);
    CHECKF(info.plan.kv == 2 * p1.kv && p1.kv > 0, "kv %llu vs one sequence %llu", (unsigned long long)info.plan.kv,
           (unsigned long long)p1.kv);

    float *ra = calloc((size_t)(na - pa + 1) * V, sizeof(float)), *rb = calloc((size_t)(nb - pb + 1) * V, sizeof(float));
    float *la = calloc((size_t)(na - pa + 1) * V, sizeof(float)), *lb = calloc((size_t)(nb - pb + 1) * V, sizeof(float));
    alone(path, a, pa, na, ra, V);
    alone(path, b, pb, nb, rb, V);

    /* interleaved: prompts first, then one token of each in turn */
    CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK);
    CHECK(mp_engine_eval(e, a, pa, la, (size_t)V, false, &err) == MP_OK);
    CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK);
    CHECK(mp_engine_eval(e, b, pb, lb, (size_t)V, false, &err) == MP_OK);
    for (int i = 0; pa + i < na || pb + i < nb; i++) {
        if (pa + i < na) {
            CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK && mp_engine_n_past(e) == pa + i);
            CHECK(mp_engine_eval(e, a + pa + i, 1, la + (size_t)(i + 1) * V, (size_t)V, false, &err) == MP_OK);
        }
        if (pb + i < nb) {
            CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK && mp_engine_n_past(e) == pb + i);
            CHECK(mp_engine_eval(e, b + pb + i, 1, lb + (size_t)(i + 1) * V, (size_t)V, false, &err) == MP_OK);
        }
    }
    CHECK(memcmp(la, ra, sizeof(float) * (size_t)(na - pa + 1) * V) == 0);
    CHECK(memcmp(lb, rb, sizeof(float) * (size_t)(nb - pb + 1) * V) == 0);

    /* truncating sequence 1 leaves sequence 0 as it was: its next token's
     * logits are those of the one-sequence run */
    CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK && mp_engine_truncate(e, 2, &err) == MP_OK && mp_engine_n_past(e) == 2);
    CHECK(mp_engine_eval(e, b + 2, 1, lb, (size_t)V, false, &err) == MP_OK); /* overwrites position 2 of seq 1 */
    CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK && mp_engine_n_past(e) == na);
    CHECK(mp_engine_truncate(e, na - 1, &err) == MP_OK);
    CHECK(mp_engine_eval(e, a + na - 1, 1, la, (size_t)V, false, &err) == MP_OK);
    CHECK(memcmp(la, ra + (size_t)(na - pa) * V, sizeof(float) * V) == 0);

    CHECK(mp_engine_set_seq(e, 2, &err) == MP_E_RANGE && err.msg[0]);
    CHECK(mp_engine_set_seq(e, -1, &err) == MP_E_RANGE);
    mp_params bad = mp_params_default();
    bad.n_seq = MP_MAX_SEQ + 1;
    mp_engine *e2 = NULL;
    memset(&err, 0, sizeof err);
    int orc = mp_engine_open(&e2, path, &bad, &err);
    CHECKF(orc == MP_E_INVAL && e2 == NULL && strstr(err.msg, "--parallel"), "rc %d: %s", orc, err.msg);
    free(ra), free(rb), free(la), free(lb);
    mp_engine_free(e);
    sliding_window();
    MP_TEST_DONE();
}
