/* Bit-exactness against llama.cpp's CPU backend on this machine: dlopens the
 * peer's libggml-base.so and the libggml-cpu-<variant>.so that ggml's loader
 * would pick (highest ggml_backend_score), then on random rows of several
 * sizes checks, for every weight type the matmul supports:
 *   - mp_quantize_act writes the same bytes as ggml's from_float;
 *   - the dispatched vec_dot returns the same float bits as ggml's vec_dot;
 *   - mp_matmul_rows (vec_dot order, as ggml's MUL_MAT_ID and decode) and
 *     mp_matmul_rows_ex(MP_MM_GEMM) (as ggml's MUL_MAT over T >= 2 tokens,
 *     where llamafile's tinyBLAS takes F32/F16/BF16/Q8_0/Q4_0/Q5_0/IQ4_NL, and its
 *     IQ panel GEMM IQ4_XS from 8 tokens) give the bits
 *     of a one-node ggml graph (mul_mat, computed with ggml_graph_compute_with_ctx,
 *     so without CPU_REPACK buffers, as llama_logits --no-repack);
 *   - mp_matmul_rows_ex(MP_MM_ID) per expert gives the bits of a ggml
 *     mul_mat_id node (experts with 4, 12 and 16 rows);
 *   - our reference quantisers write the bytes of ggml's quantize_row_*_ref.
 * $MP_GGML_VARIANT=haswell (or another variant this CPU runs) checks that
 * variant instead, against our kernels of the same ISA (AVX2 for haswell).
 * Skips (77) when no peer is found ($MP_PEER, $MP_BUILD/peer/llamacpp, $MP_SRC/build/peer/llamacpp
 * (tools/test.sh builds it there) or $MP_SRC/../shared/peers/llamacpp; or $MP_GGML_BINS, the
 * directory holding the .so files) or when
 * our kernels lack the variant's ISA. */
#include "kernels/kernels.h"
#include "moepager/status.h"
#include "helpers/test_util.h"
#include "mp_test.h"

#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The few ggml entry points used, declared here (ABI of the peer's snapshot:
 * ggml.h / ggml-cpu.h). */
typedef void (*g_from_float_t)(const float *x, void *y, int64_t k);
typedef void (*g_vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
typedef struct g_type_traits_cpu {
    g_from_float_t from_float;
    g_vec_dot_t vec_dot;
    int vec_dot_type;
    int64_t nrows;
} g_type_traits_cpu;
typedef struct g_init_params {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
} g_init_params;

static struct {
    const g_type_traits_cpu *(*traits)(int type);
    void *(*init)(g_init_params p);
    void (*free)(void *ctx);
    void *(*new_tensor_2d)(void *ctx, int type, int64_t ne0, int64_t ne1);
    void *(*mul_mat)(void *ctx, void *a, void *b);
    void *(*mul_mat_id)(void *ctx, void *as, void *b, void *ids);
    void *(*new_tensor_3d)(void *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2);
    void *(*new_graph)(void *ctx);
    void (*build_forward_expand)(void *graph, void *tensor);
    int (*compute)(void *ctx, void *graph, int n_threads);
    void *(*get_data)(const void *tensor);
} g;

static mp_test_rng rng = {0x2545f4914f6cdd1dull};
#define k_types mp_test_weight_types
#define N_TYPES MP_TEST_N_WEIGHT_TYPES

static const char *type_name(uint32_t t)
{
    switch (t) {
    case MP_TYPE_F32: return "f32";
    case MP_TYPE_F16: return "f16";
    case MP_TYPE_BF16: return "bf16";
    case MP_TYPE_Q8_0: return "q8_0";
    case MP_TYPE_Q4_0: return "q4_0";
    case MP_TYPE_Q4_K: return "q4_K";
    case MP_TYPE_Q5_K: return "q5_K";
    case MP_TYPE_Q6_K: return "q6_K";
    case MP_TYPE_Q2_K: return "q2_K";
    case MP_TYPE_Q3_K: return "q3_K";
    case MP_TYPE_IQ4_NL: return "iq4_nl";
    case MP_TYPE_IQ4_XS: return "iq4_xs";
    case MP_TYPE_MXFP4: return "mxfp4";
    case MP_TYPE_Q5_0: return "q5_0";
    case MP_TYPE_Q5_1: return "q5_1";
    }
    return "?";
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Opens base + the best-scoring CPU variant in dir; false if none loads. */
static const char *g_variant;
static void *g_base;

static bool load_ggml(const char *dir)
{
    static const char *variants[] = {"zen4", "sapphirerapids", "cooperlake", "icelake", "cascadelake",
                                     "skylakex", "cannonlake", "alderlake", "haswell", "x64"};
    const char *force = getenv("MP_GGML_VARIANT");
    char path[4200];
    if (strlen(dir) > 4000) return false;
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    void *base = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!base) return false;
    g_base = base;
    void *best = NULL;
    int best_score = 0;
    const char *best_name = NULL;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        snprintf(path, sizeof path, "%s/libggml-cpu-%s.so", dir, variants[i]);
        if ((force && strcmp(force, variants[i])) || access(path, R_OK)) continue;
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        int (*score)(void) = (int (*)(void))dlsym(h, "ggml_backend_score");
        const int s = score ? score() : 0;
        if (s > best_score) {
            best_score = s;
            best = h;
            best_name = variants[i];
        }
    }
    if (!best) return false;
    fprintf(stderr, "ggml cpu variant: %s (score %d)\n", best_name, best_score);
    g_variant = best_name;
    void (*cpu_init)(void) = (void (*)(void))dlsym(best, "ggml_cpu_init");
    if (cpu_init) cpu_init();
    *(void **)&g.traits = dlsym(best, "ggml_get_type_traits_cpu");
    *(void **)&g.compute = dlsym(best, "ggml_graph_compute_with_ctx");
    *(void **)&g.init = dlsym(base, "ggml_init");
    *(void **)&g.free = dlsym(base, "ggml_free");
    *(void **)&g.new_tensor_2d = dlsym(base, "ggml_new_tensor_2d");
    *(void **)&g.mul_mat = dlsym(base, "ggml_mul_mat");
    *(void **)&g.mul_mat_id = dlsym(base, "ggml_mul_mat_id");
    *(void **)&g.new_tensor_3d = dlsym(base, "ggml_new_tensor_3d");
    *(void **)&g.new_graph = dlsym(base, "ggml_new_graph");
    *(void **)&g.build_forward_expand = dlsym(base, "ggml_build_forward_expand");
    *(void **)&g.get_data = dlsym(base, "ggml_get_data");
    return g.traits && g.compute && g.init && g.free && g.new_tensor_2d && g.mul_mat && g.new_graph &&
           g.mul_mat_id && g.new_tensor_3d &&
           g.build_forward_expand && g.get_data;
}

static bool find_bins(char *out, size_t cap)
{
    const char *env = getenv("MP_GGML_BINS");
    if (env) {
        snprintf(out, cap, "%s", env);
        return true;
    }
    const char *src = mp_test_src_dir();
    char built[4096], built_src[4096], shared[4096];
    snprintf(built, sizeof built, "%s/peer/llamacpp", mp_test_build_dir());
    snprintf(built_src, sizeof built_src, "%s/build/peer/llamacpp", src);
    snprintf(shared, sizeof shared, "%s/../shared/peers/llamacpp", src);
    const char *peers[] = {getenv("MP_PEER"), built, built_src, shared};
    for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
        if (!peers[i]) continue;
        snprintf(out, cap, "%s/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64", peers[i]);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/libggml-base.so", out);
        if (!access(probe, R_OK)) return true;
    }
    return false;
}

/* Random weight rows of type t (quantised from gaussian floats with a few
 * outliers, as mp-gen makes them). */
static void make_weights(uint32_t t, void *w, int64_t nrows, int64_t ncols)
{
    float *f = malloc(sizeof(float) * ncols);
    const size_t rs = mp_row_size(t, ncols);
    for (int64_t r = 0; r < nrows; r++) {
        const float scale = 0.02f + 0.2f * mp_rng_unit(&rng);
        for (int64_t i = 0; i < ncols; i++) f[i] = scale * mp_rng_gauss(&rng) * ((mp_rng_u32(&rng) & 63) ? 1.f : 6.f);
        CHECK(mp_quantize_row_ref(t, f, (uint8_t *)w + r * rs, ncols) == MP_OK);
    }
    free(f);
}

static void make_acts(float *x, int64_t n)
{
    const float scale = 0.1f + 3.f * mp_rng_unit(&rng);
    for (int64_t i = 0; i < n; i++) x[i] = scale * mp_rng_gauss(&rng) * ((mp_rng_u32(&rng) & 31) ? 1.f : 8.f);
}

/* from_float and vec_dot of one type over several row lengths. */
static void test_vec_dot(uint32_t t)
{
    const g_type_traits_cpu *tr = g.traits((int)t);
    if (!tr || !tr->vec_dot) {
        CHECKF(0, "ggml has no vec_dot for %s", type_name(t));
        return;
    }
    const int64_t blk = mp_type_get(t)->blck_size;
    static const int64_t sizes[] = {256, 512, 768, 1024, 1280, 2048, 2816, 4096, 32, 64, 96, 160, 33, 47, 100, 1000};
    const mp_vec_dot_fn dot = mp_get_vec_dot(t);
    int mism_q = 0, mism_d = 0, total = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si];
        if (n % blk) continue;
        const size_t ws = mp_row_size(t, n), xs = mp_act_row_size(t, n);
        uint8_t *w = malloc(ws), *xq = malloc(xs), *xg = malloc(xs);
        float *x = malloc(sizeof(float) * n);
        for (int rep = 0; rep < 24; rep++) {
            make_weights(t, w, 1, n);
            make_acts(x, n);
            mp_quantize_act(t, x, xq, n);
            if (tr->from_float) {
                const g_type_traits_cpu *at = g.traits(tr->vec_dot_type);
                if (t == MP_TYPE_F32) memcpy(xg, x, xs);
                else at->from_float(x, xg, n);
                if (memcmp(xq, xg, xs)) mism_q++;
            } else {
                memcpy(xg, xq, xs);
            }
            float so = 0, sg = 0;
            dot(n, &so, w, xg);
            tr->vec_dot((int)n, &sg, 0, w, 0, xg, 0, 1);
            total++;
            if (fbits(so) != fbits(sg)) {
                if (mism_d < 3)
                    fprintf(stderr, "  %s n=%lld: ours %.9g ggml %.9g\n", type_name(t), (long long)n, so, sg);
                mism_d++;
            }
        }
        free(w);
        free(xq);
        free(xg);
        free(x);
    }
    fprintf(stderr, "%-5s vec_dot: %d/%d differ, act quant: %d differ\n", type_name(t), mism_d, total, mism_q);
    CHECKF(mism_q == 0, "%s: activation bytes differ from ggml's from_float", type_name(t));
    CHECKF(mism_d == 0, "%s: vec_dot bits differ from ggml's", type_name(t));
}

/* Our reference quantiser writes the bytes of ggml's quantize_row_<type>_ref
 * (libggml-base) on random rows, zero and tiny blocks included. */
static void test_quantize_ref(void *base)
{
    static const struct { uint32_t t; const char *sym; } q[] = {
        {MP_TYPE_Q8_0, "quantize_row_q8_0_ref"}, {MP_TYPE_Q4_0, "quantize_row_q4_0_ref"},
        {MP_TYPE_Q2_K, "quantize_row_q2_K_ref"}, {MP_TYPE_Q3_K, "quantize_row_q3_K_ref"},
        {MP_TYPE_Q4_K, "quantize_row_q4_K_ref"}, {MP_TYPE_Q5_K, "quantize_row_q5_K_ref"},
        {MP_TYPE_Q6_K, "quantize_row_q6_K_ref"}, {MP_TYPE_IQ4_NL, "quantize_row_iq4_nl_ref"},
        {MP_TYPE_IQ4_XS, "quantize_row_iq4_xs_ref"}, {MP_TYPE_MXFP4, "quantize_row_mxfp4_ref"},
        {MP_TYPE_Q5_0, "quantize_row_q5_0_ref"}, {MP_TYPE_Q5_1, "quantize_row_q5_1_ref"},
    };
    enum { N = 4096 };
    float *x = malloc(sizeof(float) * N);
    uint8_t *a = malloc(N * 2), *b = malloc(N * 2);
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        void (*ref)(const float *, void *, int64_t) = (void (*)(const float *, void *, int64_t))dlsym(base, q[k].sym);
        if (!ref) {
            CHECKF(0, "libggml-base has no %s", q[k].sym);
            continue;
        }
        const size_t bytes = mp_row_size(q[k].t, N);
        int bad_rows = 0;
        for (int rep = 0; rep < 16; rep++) {
            const float scale = rep % 4 == 3 ? 1e-3f : 0.02f + mp_rng_unit(&rng);
            for (int i = 0; i < N; i++) x[i] = scale * mp_rng_gauss(&rng) * ((mp_rng_u32(&rng) & 63) ? 1.f : 6.f);
            if (rep == 1) memset(x + 256, 0, sizeof(float) * 512); /* all-zero blocks (not for iq4_nl: see kernels.h) */
            if (rep == 2) for (int i = 0; i < 64; i++) x[i] = (float)(i % 5) - 2.f; /* ties */
            CHECK(mp_quantize_row_ref(q[k].t, x, a, N) == MP_OK);
            memset(b, 0, bytes);
            ref(x, b, N);
            if (q[k].t == MP_TYPE_IQ4_NL && rep == 1) continue;
            if (memcmp(a, b, bytes)) bad_rows++;
        }
        fprintf(stderr, "%-6s quantize_row_ref: %d/16 rows differ\n", type_name(q[k].t), bad_rows);
        CHECKF(bad_rows == 0, "%s: our quantize_row_ref bytes differ from ggml's %s", type_name(q[k].t), q[k].sym);
    }
    free(x);
    free(a);
    free(b);
}

/* One ggml mul_mat node (W: nrows x ncols of t, X: T x ncols f32) against
 * mp_matmul_rows_ex with the matching mode. */
static void test_matmul(uint32_t t, int64_t nrows, int64_t ncols, int64_t T)
{
    const size_t ws = mp_row_size(t, ncols) * nrows, xs = mp_act_row_size(t, ncols);
    g_init_params ip = {ws + sizeof(float) * (size_t)(ncols * T + nrows * T) + (4u << 20), NULL, false};
    void *ctx = g.init(ip);
    if (!ctx) {
        CHECK(ctx != NULL);
        return;
    }
    void *W = g.new_tensor_2d(ctx, (int)t, ncols, nrows);
    void *X = g.new_tensor_2d(ctx, MP_TYPE_F32, ncols, T);
    make_weights(t, g.get_data(W), nrows, ncols);
    float *x = g.get_data(X);
    for (int64_t i = 0; i < T; i++) make_acts(x + i * ncols, ncols);
    void *Y = g.mul_mat(ctx, W, X);
    void *gf = g.new_graph(ctx);
    g.build_forward_expand(gf, Y);
    CHECK(g.compute(ctx, gf, 1) == 0);
    const float *yg = g.get_data(Y); /* (T, nrows) */

    uint8_t *xq = malloc(xs * T);
    float *yo = malloc(sizeof(float) * nrows * T);
    for (int64_t i = 0; i < T; i++) mp_quantize_act(t, x + i * ncols, xq + i * xs, ncols);
    mp_matmul_rows_ex(t, g.get_data(W), ncols, nrows, 0, nrows, xq, T, yo, nrows, MP_MM_GEMM);
    int mism = 0;
    for (int64_t i = 0; i < nrows * T; i++) mism += fbits(yo[i]) != fbits(yg[i]);
    if (mism && getenv("MP_DEBUG_MM")) { /* which order ggml took: its vec_dot's bits or others */
        const g_type_traits_cpu *tr = g.traits((int)t);
        int shown = 0;
        for (int64_t i = 0; i < nrows * T && shown < 8; i++) {
            if (fbits(yo[i]) == fbits(yg[i])) continue;
            const int64_t tok = i / nrows, r = i % nrows;
            float sg;
            tr->vec_dot((int)ncols, &sg, 0, (const uint8_t *)g.get_data(W) + r * mp_row_size(t, ncols), 0, xq + tok * xs, 0, 1);
            fprintf(stderr, "  t=%lld r=%lld ours %.9g ggml-mm %.9g ggml-vecdot %.9g\n", (long long)tok, (long long)r, yo[i], yg[i], sg);
            shown++;
        }
    }
    CHECKF(mism == 0, "%s mul_mat %lldx%lld T=%lld: %d of %lld outputs differ from ggml", type_name(t),
           (long long)nrows, (long long)ncols, (long long)T, mism, (long long)(nrows * T));

    /* vec_dot order (MUL_MAT_ID, decode): the same bits as vec_dot per (row, token) */
    const mp_vec_dot_fn dot = mp_get_vec_dot(t);
    mp_matmul_rows(t, g.get_data(W), ncols, 0, nrows, xq, T, yo, nrows);
    const size_t wr = mp_row_size(t, ncols);
    int mism_v = 0;
    for (int64_t i = 0; i < T; i++)
        for (int64_t r = 0; r < nrows; r++) {
            float s;
            dot(ncols, &s, (const uint8_t *)g.get_data(W) + r * wr, xq + i * xs);
            mism_v += fbits(s) != fbits(yo[i * nrows + r]);
        }
    CHECKF(mism_v == 0, "%s matmul_rows %lldx%lld T=%lld: %d outputs differ from vec_dot", type_name(t),
           (long long)nrows, (long long)ncols, (long long)T, mism_v);
    free(xq);
    free(yo);
    g.free(ctx);
}

/* One ggml mul_mat_id node (3 experts of nrows x ncols, 2 slots x 16
 * tokens; the experts get 12, 4 and 16 rows, so IQ4_XS's panel order applies
 * to two of them) against mp_matmul_rows_ex(MP_MM_ID) per expert over its
 * gathered rows. */
static void test_matmul_id(uint32_t t, int64_t nrows, int64_t ncols)
{
    enum { NE = 3, NU = 2, NT = 16 };
    const size_t wrow = mp_row_size(t, ncols), xs = mp_act_row_size(t, ncols);
    g_init_params ip = {wrow * nrows * NE + sizeof(float) * (size_t)(ncols + nrows) * NU * NT + (4u << 20), NULL, false};
    void *ctx = g.init(ip);
    if (!ctx) {
        CHECK(ctx != NULL);
        return;
    }
    void *As = g.new_tensor_3d(ctx, (int)t, ncols, nrows, NE);
    void *B = g.new_tensor_3d(ctx, MP_TYPE_F32, ncols, NU, NT);
    void *Ids = g.new_tensor_2d(ctx, MP_TYPE_I32, NU, NT);
    make_weights(t, g.get_data(As), nrows * NE, ncols);
    float *x = g.get_data(B);
    for (int64_t i = 0; i < NU * NT; i++) make_acts(x + i * ncols, ncols);
    int32_t *ids = g.get_data(Ids);
    for (int tok = 0; tok < NT; tok++) {
        ids[tok * NU + 0] = tok < 12 ? 0 : 1;
        ids[tok * NU + 1] = 2;
    }
    void *Y = g.mul_mat_id(ctx, As, B, Ids); /* (nrows, NU, NT) */
    void *gf = g.new_graph(ctx);
    g.build_forward_expand(gf, Y);
    CHECK(g.compute(ctx, gf, 1) == 0);
    const float *yg = g.get_data(Y);

    uint8_t *xq = malloc(xs * NU * NT);
    float *yo = malloc(sizeof(float) * nrows * NU * NT);
    int mism = 0;
    for (int e = 0; e < NE; e++) {
        int rows[NU * NT], n = 0; /* (token, slot) pairs routed to e, as slot + NU * token */
        for (int i = 0; i < NU * NT; i++)
            if (ids[i] == e) rows[n++] = i;
        for (int k = 0; k < n; k++) mp_quantize_act(t, x + (size_t)rows[k] * ncols, xq + (size_t)k * xs, ncols);
        mp_matmul_rows_ex(t, (const uint8_t *)g.get_data(As) + (size_t)e * wrow * nrows, ncols, nrows, 0, nrows, xq, n,
                          yo, nrows, MP_MM_ID);
        for (int k = 0; k < n; k++)
            for (int64_t r = 0; r < nrows; r++) mism += fbits(yo[k * nrows + r]) != fbits(yg[(size_t)rows[k] * nrows + r]);
    }
    CHECKF(mism == 0, "%s mul_mat_id %lldx%lld: %d of %d outputs differ from ggml", type_name(t), (long long)nrows,
           (long long)ncols, mism, (int)(nrows * NU * NT));
    free(xq);
    free(yo);
    g.free(ctx);
}

int main(void)
{
    char dir[4096];
    if (!find_bins(dir, sizeof dir) || !load_ggml(dir)) MP_TEST_SKIP("no llama.cpp peer libggml-cpu-*.so found");
    /* the ISA that matches the variant: AVX2 builds (haswell, alderlake,
     * x64 is generic) against ours capped at avx2, the rest against avx512 */
    const bool avx2_variant = !strcmp(g_variant, "haswell") || !strcmp(g_variant, "alderlake");
    if (!strcmp(g_variant, "x64")) MP_TEST_SKIP("ggml variant x64 has no SIMD counterpart here");
    const mp_isa want = avx2_variant ? MP_ISA_AVX2 : MP_ISA_AVX512;
    if (!mp_kernels_set_isa(want)) MP_TEST_SKIP("kernels lack ISA %s on this CPU/build", mp_isa_name(want));
    fprintf(stderr, "isa: %s\n", mp_isa_name(want));
    for (size_t i = 0; i < N_TYPES; i++) test_vec_dot(k_types[i]);
    test_quantize_ref(g_base);
    /* 30 and 9 rows: tinyBLAS takes IQ4_NL (and Q8_0/Q4_0) whatever nrows % 4; IQ4_XS takes the
     * IQ panel order from T = 8 when nrows % 8 == 0 (128x768x64, 24x256x8), not at 36 rows */
    static const int64_t shapes[][3] = {{64, 256, 1}, {64, 256, 2}, {36, 512, 7}, {128, 768, 64}, {20, 1024, 5},
                                        {8, 4096, 3}, {30, 512, 6}, {9, 1280, 2}, {36, 512, 9}, {24, 256, 8}};
    for (size_t i = 0; i < N_TYPES; i++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            test_matmul(k_types[i], shapes[s][0], shapes[s][1], shapes[s][2]);
    for (size_t i = 0; i < N_TYPES; i++) {
        test_matmul_id(k_types[i], 64, 512);
        test_matmul_id(k_types[i], 36, 256); /* rows not in panels of 8: vec_dot order */
    }
    MP_TEST_DONE();
}
