/* The tiled flash attention of the prompt path (src/kernels/ops.c): the one-
 * query kernel (mp_attend_f16_masked) and the GQA-group kernel
 * (mp_attend_f16_group) of every ISA this CPU and build have, against the
 * scalar reference loop bit for bit. Their numerics are llama.cpp's (the
 * parity tests check that end to end), so a SIMD path that differs in one
 * bit breaks parity: each lane must keep the scalar FMA chain in its order.
 * Covers windows (keys before j0 masked, whole tiles skipped), sinks (below
 * and above the running max), GQA groups of 1..16 queries, dk != dv, MLA's
 * latent cache (dk 576, values the first 512 dims of the key rows), dims
 * that are not multiples of 8, odd n_kv and partial tiles. Also checks the
 * scalar reference against a double-precision softmax, and the decode
 * path's value accumulation (acc16_run: ggml's f16 accumulator over a run of
 * keys, some raising the max) of every ISA against its scalar reference. */
#include "helpers/test_util.h"
#include "mp_test.h"

#include "common/types.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mp_test_rng rng = {0x243f6a8885a308d3ull};
static float rnd(float lo, float hi) { return lo + (hi - lo) * mp_rng_unit(&rng); }

typedef struct shape {
    int dk, dv, mla; /* mla: values are the first dv dims of the key rows */
} shape;

enum { NQ_MAX = 16, NKV_MAX = 300, HKV = 2 /* key/value heads in the cache rows: strides > dk */ };

typedef struct attn_case {
    shape sh;
    int n_q, n_kv, j0, sinks; /* sinks: 0 none, 1 small, 2 large (above every score) */
} attn_case;

/* One case: inputs from a fixed seed, outputs of the group call and of
 * n_q one-query calls, under the ISA in use. */
static void run_case(const attn_case *c, float *grp, float *one, const uint16_t *kc, const float *qv,
                     const float *sinks)
{
    const int dk = c->sh.dk, dv = c->sh.dv;
    const int64_t ks = (int64_t)HKV * dk, vs = c->sh.mla ? ks : (int64_t)HKV * dv;
    const uint16_t *k = kc + dk; /* the second kv head */
    const uint16_t *v = c->sh.mla ? k : kc + (int64_t)NKV_MAX * ks + dv;
    const float scale = 1.0f / sqrtf((float)dk);
    float scores[64], kbuf[1024];
    mp_attend_f16_group(grp, dv, qv, dk, c->n_q, k, ks, v, vs, c->n_kv, dk, dv, scale, c->j0,
                        c->sinks ? sinks : NULL, scores, kbuf);
    for (int r = 0; r < c->n_q; r++) {
        const mp_attn_mask mk = {c->j0, c->sinks ? sinks + r : NULL};
        if (c->j0 == 0 && !c->sinks)
            mp_attend_f16(one + r * dv, qv + r * dk, k, ks, v, vs, c->n_kv, dk, dv, scale, scores, kbuf);
        else
            mp_attend_f16_masked(one + r * dv, qv + r * dk, k, ks, v, vs, c->n_kv, dk, dv, scale, &mk, scores,
                                 kbuf);
    }
}

/* double-precision softmax attention with window and sink for query r */
static double ref_err(const attn_case *c, const float *o, const uint16_t *kc, const float *qv, const float *sinks,
                      int r)
{
    const int dk = c->sh.dk, dv = c->sh.dv;
    const int64_t ks = (int64_t)HKV * dk, vs = c->sh.mla ? ks : (int64_t)HKV * dv;
    const uint16_t *k = kc + dk;
    const uint16_t *v = c->sh.mla ? k : kc + (int64_t)NKV_MAX * ks + dv;
    const double scale = 1.0 / sqrt((double)dk);
    static double s[NKV_MAX];
    double mx = -INFINITY, sum = 0.0;
    for (int j = c->j0; j < c->n_kv; j++) {
        double dot = 0.0;
        for (int d = 0; d < dk; d++) dot += (double)qv[r * dk + d] * mp_fp16_to_fp32(k[j * ks + d]);
        s[j] = dot * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    const double sk = c->sinks ? sinks[r] : -INFINITY;
    if (sk > mx) mx = sk;
    for (int j = c->j0; j < c->n_kv; j++) sum += (s[j] = exp(s[j] - mx));
    if (c->sinks) sum += exp(sk - mx);
    double err = 0.0;
    for (int d = 0; d < dv; d++) {
        double want = 0.0;
        for (int j = c->j0; j < c->n_kv; j++) want += s[j] / sum * mp_fp16_to_fp32(v[j * vs + d]);
        err = fmax(err, fabs(o[r * dv + d] - want));
    }
    return err;
}

/* acc16_run of every ISA against the scalar one, bit for bit: value widths
 * with SIMD tails, runs of 1..64 keys, strided value rows, a few keys
 * raising the max (ms < 1, and ms == 1 exactly). Returns differing runs. */
static int check_acc16_run(const mp_isa *isas, int n_isa)
{
    static const int dvs[] = {8, 20, 36, 64, 128, 512};
    static const int ns[] = {1, 7, 33, 64};
    enum { STRIDE = 520 };
    uint16_t *v = malloc(sizeof *v * 64 * STRIDE);
    float ms[64], vs[64], acc0[512], ref[512], got[512];
    int n_diff = 0;
    for (int i = 0; i < 64 * STRIDE; i++) v[i] = mp_fp32_to_fp16(rnd(-2.0f, 2.0f));
    for (size_t a = 0; a < sizeof dvs / sizeof dvs[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int dv = dvs[a], n = ns[b];
            for (int d = 0; d < dv; d++) acc0[d] = mp_fp16_to_fp32(mp_fp32_to_fp16(rnd(-4.0f, 4.0f)));
            for (int i = 0; i < n; i++) {
                const int kind = i % 5; /* 0: the max rose; 1: rose by a hair (ms 1); else below it */
                ms[i] = kind == 0 ? rnd(0.01f, 0.99f) : 1.0f;
                vs[i] = kind <= 1 ? 1.0f : rnd(0.0f, 1.0f);
            }
            mp_kernels_set_isa(MP_ISA_SCALAR);
            memcpy(ref, acc0, sizeof(float) * (size_t)dv);
            mp_kernels_table()->acc16_run(ref, v + 3, STRIDE, ms, vs, n, dv);
            for (int j = 1; j < n_isa; j++) {
                mp_kernels_set_isa(isas[j]);
                memcpy(got, acc0, sizeof(float) * (size_t)dv);
                mp_kernels_table()->acc16_run(got, v + 3, STRIDE, ms, vs, n, dv);
                const bool diff = memcmp(got, ref, sizeof(float) * (size_t)dv) != 0;
                n_diff += diff;
                CHECKF(!diff, "%s: acc16_run differs from the scalar reference (dv %d, %d keys)", mp_isa_name(isas[j]), dv, n);
            }
            /* the reference is ggml's key-by-key update */
            float want[512];
            memcpy(want, acc0, sizeof(float) * (size_t)dv);
            for (int i = 0; i < n; i++)
                for (int d = 0; d < dv; d++) {
                    if (ms[i] != 1.0f) want[d] = mp_fp16_to_fp32(mp_fp32_to_fp16(want[d] * ms[i]));
                    want[d] = mp_fp16_to_fp32(mp_fp32_to_fp16(fmaf(mp_fp16_to_fp32(v[3 + i * STRIDE + d]), vs[i], want[d])));
                }
            CHECKF(!memcmp(want, ref, sizeof(float) * (size_t)dv), "scalar acc16_run is not the key-by-key update (dv %d)", dv);
        }
    free(v);
    return n_diff;
}

int main(void)
{
    static const shape shapes[] = {
        {64, 64, 0},   /* gpt-oss */
        {128, 128, 0}, /* llama, mixtral */
        {36, 36, 0},   /* SIMD tails in both dims */
        {80, 48, 0},   /* dk != dv */
        {20, 68, 0},   /* dv > dk, dv % 8 != 0 */
        {576, 512, 1}, /* MLA's latent cache */
    };
    static const int nqs[] = {1, 2, 3, 4, 5, 8, 9, 16};
    static const int nkvs[] = {1, 7, 63, 64, 65, 129, 200, 257};
    const mp_isa start = mp_kernels_isa();
    int n_isa = 0, n_cases = 0, n_diff = 0;
    mp_isa isas[3];
    for (int isa = MP_ISA_SCALAR; isa <= MP_ISA_AVX512; isa++)
        if (mp_kernels_set_isa((mp_isa)isa)) isas[n_isa++] = (mp_isa)isa;
    CHECK(n_isa >= 1 && isas[0] == MP_ISA_SCALAR);
    fprintf(stderr, "ISAs:");
    for (int i = 0; i < n_isa; i++) fprintf(stderr, " %s", mp_isa_name(isas[i]));
    fputc('\n', stderr);

    const size_t kc_n = (size_t)NKV_MAX * HKV * 576 * 2; /* keys, then values (or unused) */
    uint16_t *kc = malloc(kc_n * sizeof *kc);
    float *qv = malloc(sizeof(float) * NQ_MAX * 576), sinks[NQ_MAX];
    float *ref_g = malloc(sizeof(float) * NQ_MAX * 512), *ref_1 = malloc(sizeof(float) * NQ_MAX * 512);
    float *got_g = malloc(sizeof(float) * NQ_MAX * 512), *got_1 = malloc(sizeof(float) * NQ_MAX * 512);
    for (size_t i = 0; i < kc_n; i++) {
        /* mostly small, a few large keys so some tiles raise the max */
        const float x = i % 97 == 0 ? rnd(-6.0f, 6.0f) : rnd(-1.5f, 1.5f);
        kc[i] = mp_fp32_to_fp16(x);
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t a = 0; a < sizeof nqs / sizeof nqs[0]; a++)
            for (size_t b = 0; b < sizeof nkvs / sizeof nkvs[0]; b++)
                for (int m = 0; m < 4; m++) {
                    /* m: 0 plain; 1 window inside the first tile, small sinks;
                     * 2 window past whole tiles, no sink; 3 no window, sinks above the max */
                    const int n_kv = nkvs[b];
                    int j0 = m == 1 ? n_kv / 3 : m == 2 ? n_kv - n_kv / 4 - 1 : 0;
                    if (m == 2 && n_kv > 130) j0 = 130;
                    attn_case c = {shapes[s], nqs[a], n_kv, j0 > 0 ? j0 : 0, m == 1 ? 1 : m == 3 ? 2 : 0};
                    if (c.sh.mla && c.n_q > 5 && n_kv != 257 && n_kv != 65) continue; /* keep it fast */
                    for (int i = 0; i < c.n_q * c.sh.dk; i++) qv[i] = rnd(-3.0f, 3.0f);
                    for (int r = 0; r < c.n_q; r++) sinks[r] = c.sinks == 2 ? rnd(30.0f, 40.0f) : rnd(-3.0f, 3.0f);
                    const size_t no = (size_t)c.n_q * c.sh.dv * sizeof(float);
                    mp_kernels_set_isa(MP_ISA_SCALAR);
                    run_case(&c, ref_g, ref_1, kc, qv, sinks);
                    n_cases++;
                    CHECKF(!memcmp(ref_g, ref_1, no), "scalar: group != one-query calls (dk %d dv %d n_q %d n_kv %d)",
                           c.sh.dk, c.sh.dv, c.n_q, n_kv);
                    for (int r = 0; r < c.n_q; r++) {
                        const double e = ref_err(&c, ref_1, kc, qv, sinks, r);
                        CHECKF(e < 4e-6 * (c.sh.dk > 128 ? c.sh.dk / 128.0 : 1.0), "scalar reference off by %g (dk %d dv %d n_kv %d j0 %d sinks %d)", e,
                               c.sh.dk, c.sh.dv, n_kv, c.j0, c.sinks);
                    }
                    for (int i = 1; i < n_isa; i++) {
                        CHECK(mp_kernels_set_isa(isas[i]));
                        memset(got_g, 0xff, no); /* NaN: a value not written shows */
                        memset(got_1, 0xff, no);
                        run_case(&c, got_g, got_1, kc, qv, sinks);
                        const bool dg = memcmp(got_g, ref_1, no) != 0, d1 = memcmp(got_1, ref_1, no) != 0;
                        n_diff += dg + d1;
                        CHECKF(!dg && !d1,
                               "%s: %s differ from the scalar reference (dk %d dv %d mla %d n_q %d n_kv %d j0 %d "
                               "sinks %d)",
                               mp_isa_name(isas[i]), dg && d1 ? "group and one-query" : dg ? "group" : "one-query",
                               c.sh.dk, c.sh.dv, c.sh.mla, c.n_q, n_kv, c.j0, c.sinks);
                    }
                }
    fprintf(stderr, "%d cases x %d ISAs, %d differing results\n", n_cases, n_isa, n_diff);
    fprintf(stderr, "acc16_run: %d differing runs\n", check_acc16_run(isas, n_isa));
    mp_kernels_set_isa(start);
    free(kc);
    free(qv);
    free(ref_g);
    free(ref_1);
    free(got_g);
    free(got_1);
    MP_TEST_DONE();
}
