/* Recurrent-state checkpoints (params.n_checkpoints, mp_engine_resume_point)
 * on a random qwen35moe model (Gated DeltaNet layers) from mp-gen:
 * - a prompt, some decoded tokens, then back to the prompt's end and a new
 *   continuation gives exactly the logits of an engine that never left it;
 * - without checkpoints the resume point is 0 and truncating there fails;
 * - truncating drops checkpoints past the new end; the lowest position is
 *   replaced first; each sequence has its own;
 * - the plan counts n_checkpoints copies of the state per sequence;
 * - an attention-only model (the demo) resumes anywhere;
 * - n_checkpoints out of range is refused. */
#include "mp_test.h"

#include "moepager/moepager.h"

#include <stdlib.h>
#include <string.h>

static mp_engine *open_model(const char *path, int n_ckpt, int n_seq)
{
    mp_params p = mp_params_default();
    p.n_ctx = 256;
    p.n_checkpoints = n_ckpt;
    p.n_seq = n_seq;
    p.mmap = true;
    mp_engine *e = NULL;
    mp_err err = {0};
    CHECKF(mp_engine_open(&e, path, &p, &err) == MP_OK, "%s", err.msg);
    return e;
}

static int eval(mp_engine *e, const int32_t *ids, int n, float *logits, int V)
{
    mp_err err = {0};
    const int rc = mp_engine_eval(e, ids, (size_t)n, logits, logits ? (size_t)V : 0, false, &err);
    CHECKF(rc == MP_OK, "eval %d tokens at %d: %s", n, mp_engine_n_past(e), err.msg);
    return rc;
}

static void recurrent(const char *path)
{
    enum { NP = 20, ND = 5, NX = 10 };
    int32_t p1[NP], d[ND], x[NX], p2[7];
    for (int i = 0; i < NP; i++) p1[i] = 1 + (i * 37) % 400;
    for (int i = 0; i < ND; i++) d[i] = 2 + (i * 11) % 300;
    for (int i = 0; i < NX; i++) x[i] = 3 + (i * 53) % 450;
    for (int i = 0; i < 7; i++) p2[i] = 5 + i * 19;

    mp_engine *ref = open_model(path, 0, 1), *e = open_model(path, 2, 1);
    if (!ref || !e) {
        mp_engine_free(ref);
        mp_engine_free(e);
        return;
    }
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    const int V = info.n_vocab;
    float *lr = malloc(sizeof(float) * (size_t)V), *le = malloc(sizeof(float) * (size_t)V);
    mp_err err = {0};

    /* the reference: the prompt, then the continuation, nothing in between */
    eval(ref, p1, NP, NULL, V);
    eval(ref, x, NX, lr, V);

    /* with checkpoints: the prompt, decoded tokens one by one, then back */
    eval(e, p1, NP, NULL, V);
    for (int i = 0; i < ND; i++) eval(e, d + i, 1, le, V);
    CHECK(mp_engine_n_past(e) == NP + ND);
    CHECKF(mp_engine_resume_point(e, NP + 3) == NP, "resume point %d", mp_engine_resume_point(e, NP + 3));
    CHECK(mp_engine_resume_point(e, NP - 1) == 0);
    CHECK(mp_engine_resume_point(e, NP + ND + 7) == NP + ND);
    CHECK(mp_engine_truncate(e, NP + 3, &err) == MP_E_UNSUPPORTED && strstr(err.msg, "resume_point (20)"));
    CHECK(mp_engine_n_past(e) == NP + ND); /* nothing changed */
    CHECKF(mp_engine_truncate(e, NP, &err) == MP_OK, "%s", err.msg);
    eval(e, x, NX, le, V);
    CHECK(memcmp(lr, le, sizeof(float) * (size_t)V) == 0);

    /* checkpoints now at NP and NP + NX: back to NP drops the later one */
    CHECK(mp_engine_resume_point(e, NP + NX) == NP + NX);
    CHECK(mp_engine_truncate(e, NP, &err) == MP_OK);
    CHECK(mp_engine_resume_point(e, NP + NX) == NP);
    eval(e, x, NX, le, V);
    CHECK(memcmp(lr, le, sizeof(float) * (size_t)V) == 0);
    /* two more prompts: the lowest position (NP) goes first */
    eval(e, p2, 7, NULL, V);
    CHECK(mp_engine_resume_point(e, NP + 1) == 0 && mp_engine_resume_point(e, NP + NX) == NP + NX);
    CHECK(mp_engine_resume_point(e, NP + NX + 7) == NP + NX + 7);
    /* a single token is not a prompt: no checkpoint */
    eval(e, d, 1, NULL, V);
    eval(e, d + 1, 1, NULL, V);
    CHECK(mp_engine_resume_point(e, NP + NX + 8) == NP + NX + 7);
    /* 0 clears them all */
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK && mp_engine_resume_point(e, 0) == 0);
    eval(e, p1, NP, NULL, V);
    CHECK(mp_engine_resume_point(e, NP + NX) == NP);

    /* without checkpoints */
    CHECK(mp_engine_resume_point(ref, NP) == 0);
    CHECK(mp_engine_truncate(ref, NP, &err) == MP_E_UNSUPPORTED);
    mp_engine_free(e);
    mp_engine_free(ref);

    /* each sequence keeps its own */
    e = open_model(path, 1, 2);
    if (e) {
        CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK);
        eval(e, p1, NP, NULL, V);
        eval(e, d, 1, NULL, V);
        CHECK(mp_engine_set_seq(e, 1, &err) == MP_OK);
        eval(e, p2, 7, NULL, V);
        eval(e, d, 1, NULL, V);
        CHECK(mp_engine_resume_point(e, 7) == 7 && mp_engine_resume_point(e, 6) == 0);
        CHECK(mp_engine_set_seq(e, 0, &err) == MP_OK);
        CHECK(mp_engine_resume_point(e, NP) == NP && mp_engine_truncate(e, NP, &err) == MP_OK);
        eval(e, x, NX, le, V);
        CHECK(memcmp(lr, le, sizeof(float) * (size_t)V) == 0);
        mp_engine_free(e);
    }

    /* the plan: n_checkpoints copies of the state per sequence */
    mp_params pp = mp_params_default();
    pp.n_ctx = 256;
    pp.mem = 1ull << 30;
    mp_plan_info a, b;
    mp_model_info mi;
    CHECKF(mp_model_plan(path, &pp, &a, &err) == MP_OK, "%s", err.msg);
    CHECKF(mp_model_inspect(path, &pp, &mi, &err) == MP_OK, "%s", err.msg);
    pp.n_checkpoints = 3;
    pp.n_seq = 2;
    CHECKF(mp_model_plan(path, &pp, &b, &err) == MP_OK, "%s", err.msg);
    CHECKF(mi.state_bytes > 0 && b.kv == 2 * (a.kv + 3 * mi.state_bytes), "kv %llu, one sequence %llu, state %llu",
           (unsigned long long)b.kv, (unsigned long long)a.kv, (unsigned long long)mi.state_bytes);

    /* out of range */
    pp.n_checkpoints = MP_MAX_CHECKPOINTS + 1;
    mp_engine *bad = NULL;
    CHECK(mp_engine_open(&bad, path, &pp, &err) == MP_E_INVAL && strstr(err.msg, "--ctx-checkpoints") && !bad);
    pp.n_checkpoints = -1;
    CHECK(mp_engine_open(&bad, path, &pp, &err) == MP_E_INVAL && !bad);
    free(lr);
    free(le);
}

/* attention only: any prefix is kept */
static void attention_only(const char *path)
{
    mp_engine *e = open_model(path, 2, 1);
    if (!e) return;
    const int32_t ids[] = {1, 100, 101, 102, 103, 104, 105, 106};
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    eval(e, ids, 8, NULL, info.n_vocab);
    CHECK(mp_engine_resume_point(e, 5) == 5 && mp_engine_resume_point(e, 0) == 0 && mp_engine_resume_point(e, 9) == 8);
    mp_err err = {0};
    CHECK(mp_engine_truncate(e, 5, &err) == MP_OK && mp_engine_n_past(e) == 5);
    mp_engine_free(e);
}

int main(void)
{
    const char *build = getenv("MP_BUILD"), *src = getenv("MP_SRC");
    char path[4096], cmd[8192];
    snprintf(path, sizeof path, "%s/state-ckpt-qwen35moe.gguf", build ? build : ".");
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' -q --arch qwen35moe --type f32 --n-embd 128 --n-head 4 --n-head-kv 2 --head-dim 32 "
             "--n-ff 128 --n-ff-exp 64 --n-ff-shexp 96 --n-layer 4 --n-expert 8 --n-expert-used 2 --n-vocab 512 "
             "--seed 9 -o '%s'",
             build ? build : ".", path);
    if (system(cmd) != 0) {
        CHECKF(0, "mp-gen failed: %s", cmd);
        MP_TEST_DONE();
    }
    recurrent(path);
    remove(path);
    snprintf(path, sizeof path, "%s/models/demo-stdlib-moe.gguf", src ? src : "..");
    attention_only(path);
    MP_TEST_DONE();
}
