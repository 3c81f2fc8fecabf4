#include "ops.h"

#include "common/types.h"
#include "kernels/kernels_internal.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

void mp_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void mp_rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float freq_base, float freq_scale,
             int neox)
{
    /* Angles computed as ggml does: theta_0 = pos, theta_{i+1} = theta_i * theta_scale. */
    float cs[1024];
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float t = freq_scale * theta;
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            /* ggml's CPU build contracts these to FMAs (x0 * c fused, x1 * s rounded) */
            v[a] = fmaf(x0, c, -(x1 * s));
            v[b] = fmaf(x0, s, x1 * c);
        }
    }
}

/* As ggml_compute_forward_soft_max_f32 on llama.cpp's CPU build for this
 * class of machine: ggml_vec_soft_max_f32 takes blocks of 16 with the
 * vector exp and a tree-ordered sum, the tail with expf, summing in double;
 * then one multiply by the float 1/sum. (A router of 16 or more experts
 * differed by ~1e-6 of the largest logit with expf throughout.) */
void mp_softmax(float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    int64_t i = 0;
    for (const mp_kernel_table *tab = mp_kernels_table(); i + 16 <= n; i += 16) tab->exp_sum16(x + i, x + i, max, &sum);
    for (; i < n; i++) {
        const float e = expf(x[i] - max);
        sum += (double)e;
        x[i] = e;
    }
    const float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++) x[i] *= inv;
}

/* ggml's AVX-512 ggml_v_expf for one lane (its CPU build on this class of
 * machine computes SwiGLU and flash-attention softmax with it). */
static float expf_ggml(float x)
{
    const float r = 0x1.8p23f;
    const float n = fmaf(x, 0x1.715476p+0f, r) - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

/* y = exp(x - max) for 16 values, and their sum in _mm512_reduce_add_ps's
 * order added to *sum in double (one step of ggml_vec_soft_max_f32). */
static void exp_sum16_ref(float *y, const float *x, float max, double *sum)
{
    float t[8];
    for (int i = 0; i < 16; i++) y[i] = expf_ggml(x[i] - max);
    for (int i = 0; i < 8; i++) t[i] = y[8 + i] + y[i];
    for (int i = 0; i < 4; i++) t[i] = t[4 + i] + t[i];
    *sum += (double)((t[0] + t[2]) + (t[1] + t[3]));
}

void mp_swiglu(float *g, const float *u, int64_t n) { mp_kernels_table()->swiglu(g, u, n); }

static void swiglu_ref(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    /* 16-wide blocks with the vector exp, the tail with expf, as ggml_vec_swiglu_f32 */
    for (const int64_t nb = n - n % 16; i < nb; i++) g[i] = g[i] / (1.0f + expf_ggml(-g[i])) * u[i];
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void mp_swiglu_oai(float *g, const float *u, int64_t n)
{
    const float alpha = 1.702f, limit = 7.0f;
    for (int64_t i = 0; i < n; i++) {
        const float x = limit < g[i] ? limit : g[i];                          /* std::min(g, limit) */
        const float y = u[i] < -limit ? -limit : limit < u[i] ? limit : u[i]; /* std::clamp */
        const float glu = x / (1.f + expf(mp_mul_nofma(alpha, -x)));
        g[i] = glu * (y + 1.f);
    }
}

void mp_f16_to_f32_row(const uint16_t *x, float *y, int64_t n) { mp_kernels_table()->f16_to_f32_row(x, y, n); }
void mp_f32_to_f16_row(const float *x, uint16_t *y, int64_t n) { mp_kernels_table()->f32_to_f16_row(x, y, n); }

static void f16_to_f32_row_ref(const uint16_t *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = mp_fp16_to_fp32(x[i]);
}

static void f32_to_f16_row_ref(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = mp_fp32_to_fp16(x[i]);
}

/* The f16 accumulator of ggml's small-batch flash attention, kept as floats
 * that are always f16 values: ggml_vec_scale_f16 and ggml_vec_mad_f16 round
 * every element back to f16 after the update. */
static void acc16_scale_ref(float *acc, float ms, int64_t n)
{
    for (int64_t i = 0; i < n; i++) acc[i] = mp_fp16_to_fp32(mp_fp32_to_fp16(acc[i] * ms));
}

static void acc16_mad_ref(float *acc, const uint16_t *v, float vs, int64_t n)
{
    for (int64_t i = 0; i < n; i++) acc[i] = mp_fp16_to_fp32(mp_fp32_to_fp16(fmaf(mp_fp16_to_fp32(v[i]), vs, acc[i])));
}

static void acc16_run_ref(float *acc, const uint16_t *v, int64_t v_stride, const float *ms, const float *vs, int n,
                          int64_t dv)
{
    for (int i = 0; i < n; i++) {
        if (ms[i] != 1.0f) acc16_scale_ref(acc, ms[i], dv);
        acc16_mad_ref(acc, v + (int64_t)i * v_stride, vs[i], dv);
    }
}

/* The sink joins the running max M and sum S of a finished (unnormalised)
 * accumulator out (ggml: after the keys; the f32 scale, S = S * ms + vs
 * contracted to an FMA as its CPU build compiles it). */
void mp_attn_apply_sink(float *out, float *M, float *S, float sink, int dv)
{
    float ms = 1.0f, vs = 1.0f;
    if (sink > *M) {
        ms = expf(*M - sink);
        *M = sink;
        for (int d = 0; d < dv; d++) out[d] *= ms;
    } else {
        vs = expf(sink - *M);
    }
    *S = fmaf(*S, ms, vs);
}

void mp_attend_f16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                   int64_t v_stride, int n_kv, int dk, int dv, float scale, float *scores, float *kbuf)
{
    mp_attend_f16_masked(out, q, k, k_stride, v, v_stride, n_kv, dk, dv, scale, NULL, scores, kbuf);
}

void mp_attend_f16_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                          int64_t v_stride, int n_kv, int dk, int dv, float scale, const mp_attn_mask *mask,
                          float *scores, float *kbuf)
{
    const mp_kernel_table *tab = mp_kernels_table();
    const int j0 = mask ? mask->j0 : 0;
    const float *sink = mask ? mask->sink : NULL;
    if (tab->attend_tiled) {
        tab->attend_tiled(out, q, k, k_stride, v, v_stride, n_kv, dk, dv, scale, j0, sink, scores);
        return;
    }
    /* ggml's tiled flash attention, one query row: keys in tiles of 64; q.k
     * an FMA chain over the dims; per tile an online-softmax rescale (expf)
     * then the vector exp summed in blocks of 16; values accumulated by an
     * FMA chain over the tile's keys. Masked keys add exact zeros; a tile
     * with every key masked (keys before the window) is skipped, as ggml
     * skips a row whose tile maximum is -INF. Tiles stay aligned to key 0. */
    enum { TILE = 64 };
    float M = -INFINITY, S = 0.0f;
    memset(out, 0, (size_t)dv * sizeof(float));
    for (int ic = 0; ic < n_kv; ic += TILE) {
        const int kt = n_kv - ic < TILE ? n_kv - ic : TILE;
        if (ic + kt <= j0) continue;
        float tile_max = -INFINITY;
        for (int tk = 0; tk < TILE; tk++) {
            float s = -INFINITY;
            if (tk < kt && ic + tk >= j0) {
                mp_f16_to_f32_row(k + (int64_t)(ic + tk) * k_stride, kbuf, dk);
                s = 0.0f;
                for (int d = 0; d < dk; d++) s = fmaf(kbuf[d], q[d], s);
                s *= scale;
            }
            scores[tk] = s;
            tile_max = s > tile_max ? s : tile_max;
        }
        const float Mnew = fmaxf(M, tile_max);
        if (Mnew > M) {
            const float ms = expf(M - Mnew);
            for (int d = 0; d < dv; d++) out[d] *= ms;
            S *= ms;
        }
        M = Mnew;
        double sum = 0.0;
        for (int i = 0; i < TILE; i += 16) tab->exp_sum16(scores + i, scores + i, Mnew, &sum);
        S = (float)((double)S + sum);
        for (int tk = 0; tk < kt; tk++) {
            mp_f16_to_f32_row(v + (int64_t)(ic + tk) * v_stride, kbuf, dv);
            const float p = scores[tk];
            for (int d = 0; d < dv; d++) out[d] = fmaf(kbuf[d], p, out[d]);
        }
    }
    if (sink) mp_attn_apply_sink(out, &M, &S, *sink, dv);
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] *= inv;
}

void mp_attend_f16_group(float *out, int64_t out_stride, const float *q, int64_t q_stride, int n_q, const uint16_t *k,
                         int64_t k_stride, const uint16_t *v, int64_t v_stride, int n_kv, int dk, int dv, float scale,
                         int j0, const float *sinks, float *scores, float *kbuf)
{
    const mp_kernel_table *tab = mp_kernels_table();
    if (n_q > 1 && tab->attend_group && dk <= MP_ATTN_GROUP_MAXD && dv <= MP_ATTN_GROUP_MAXD) {
        tab->attend_group(out, out_stride, q, q_stride, n_q, k, k_stride, v, v_stride, n_kv, dk, dv, scale,
                          j0 > 0 ? j0 : 0, sinks);
        return;
    }
    for (int r = 0; r < n_q; r++) {
        const mp_attn_mask mk = {j0 > 0 ? j0 : 0, sinks ? sinks + r : NULL};
        mp_attend_f16_masked(out + r * out_stride, q + r * q_stride, k, k_stride, v, v_stride, n_kv, dk, dv, scale,
                             &mk, scores, kbuf);
    }
}

/* Keys per step of acc16_range: their scores, then their softmax factors,
 * then their values. */
#define MP_ACC16_KEYS 64

/* ggml's one_chunk loop over keys [j0, j1): acc (f32 view of the f16
 * accumulator, zeroed here), running max *M and sum *S; not normalised.
 * Key by key, ggml computes the score, the new max with its factors, and
 * rescales and adds to the accumulator; here MP_ACC16_KEYS keys at a time go
 * through each stage, so the value stage (acc16_run) keeps the accumulator
 * in registers across keys. Every value sees the same operations in the
 * same order, so the bits are the key-by-key loop's. */
static void acc16_range(float *acc, float *Mp, float *Sp, const uint16_t *q16, const uint16_t *k, int64_t k_stride,
                        const uint16_t *v, int64_t v_stride, int j0, int j1, int dk, int dv, float scale, float *kbuf,
                        uint16_t *acc16)
{
    (void)kbuf, (void)acc16;
    const mp_vec_dot_fn dot = mp_get_vec_dot(MP_TYPE_F16);
    const mp_kernel_table *kt = mp_kernels_table();
    memset(acc, 0, (size_t)dv * sizeof(float));
    float M = -INFINITY, S = 0.0f;
    float s[MP_ACC16_KEYS], ms[MP_ACC16_KEYS], vs[MP_ACC16_KEYS];
    for (int b = j0; b < j1; b += MP_ACC16_KEYS) {
        const int n = j1 - b < MP_ACC16_KEYS ? j1 - b : MP_ACC16_KEYS;
        for (int i = 0; i < n; i++) {
            dot(dk, &s[i], k + (int64_t)(b + i) * k_stride, q16);
            s[i] *= scale;
        }
        for (int i = 0; i < n; i++) {
            ms[i] = 1.0f, vs[i] = 1.0f;
            if (s[i] > M) {
                const float Mold = M;
                M = s[i];
                ms[i] = expf(Mold - M); /* ggml_vec_scale_f16 of the accumulator */
            } else {
                vs[i] = expf(s[i] - M);
            }
            S = S * ms[i] + vs[i];
        }
        kt->acc16_run(acc, v + (int64_t)b * v_stride, v_stride, ms, vs, n, dv); /* ggml_vec_mad_f16 */
    }
    *Mp = M;
    *Sp = S;
}

void mp_attend_f16_acc16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int dk, int dv, float scale, float *qbuf, float *kbuf,
                         uint16_t *acc16)
{
    mp_attend_f16_acc16_masked(out, q, k, k_stride, v, v_stride, n_kv, dk, dv, scale, NULL, qbuf, kbuf, acc16);
}

void mp_attend_f16_acc16_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                                int64_t v_stride, int n_kv, int dk, int dv, float scale, const mp_attn_mask *mask,
                                float *qbuf, float *kbuf, uint16_t *acc16)
{
    /* q in f16, and q.k with the F16 dot product, as ggml's one_chunk path */
    uint16_t *q16 = (uint16_t *)qbuf;
    mp_f32_to_f16_row(q, q16, dk);
    float M, S;
    const int j0 = mask && mask->j0 > 0 ? mask->j0 : 0;
    acc16_range(out, &M, &S, q16, k, k_stride, v, v_stride, j0 < n_kv ? j0 : n_kv, n_kv, dk, dv, scale, kbuf, acc16);
    if (mask && mask->sink) mp_attn_apply_sink(out, &M, &S, *mask->sink, dv);
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] *= inv;
}

void mp_attend_f16_split(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int n_view, int n_chunks, int dk, int dv, float scale,
                         float *qbuf, float *kbuf, uint16_t *acc16, float *part)
{
    mp_attend_f16_split_masked(out, q, k, k_stride, v, v_stride, n_kv, n_view, n_chunks, dk, dv, scale, NULL, qbuf,
                               kbuf, acc16, part);
}

void mp_attend_f16_split_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                                int64_t v_stride, int n_kv, int n_view, int n_chunks, int dk, int dv, float scale,
                                const mp_attn_mask *mask, float *qbuf, float *kbuf, uint16_t *acc16, float *part)
{
    uint16_t *q16 = (uint16_t *)qbuf;
    mp_f32_to_f16_row(q, q16, dk);
    const int cs = (n_view + n_chunks - 1) / n_chunks;
    const int jw = mask && mask->j0 > 0 ? mask->j0 : 0;
    const float *sink = mask ? mask->sink : NULL;
    float M = -INFINITY, S = 0.0f;
    memset(out, 0, (size_t)dv * sizeof(float));
    for (int c = 0; c < n_chunks; c++) {
        int j0 = c * cs, j1 = j0 + cs < n_kv ? j0 + cs : n_kv; /* keys past n_kv are masked */
        if (j0 < jw) j0 = jw < j1 ? jw : j1;                   /* and keys before the window */
        if (j0 >= j1 && !(c == 0 && sink)) continue;
        float Mc, Sc;
        acc16_range(part, &Mc, &Sc, q16, k, k_stride, v, v_stride, j0, j1, dk, dv, scale, kbuf, acc16);
        if (c == 0 && sink) mp_attn_apply_sink(part, &Mc, &Sc, *sink, dv);
        if (Sc == 0.0f) continue;
        const float Mn = fmaxf(M, Mc);
        const float so = expf(M - Mn), sn = expf(Mc - Mn);
        /* as ggml's CPU build contracts them: the first product fused */
        for (int d = 0; d < dv; d++) out[d] = fmaf(out[d], so, part[d] * sn);
        S = fmaf(S, so, Sc * sn);
        M = Mn;
    }
    if (S != 0.0f) {
        const float inv = 1.0f / S;
        for (int d = 0; d < dv; d++) out[d] *= inv;
    }
}

void mp_ops_fill_scalar(mp_kernel_table *t)
{
    t->f16_to_f32_row = f16_to_f32_row_ref;
    t->f32_to_f16_row = f32_to_f16_row_ref;
    t->swiglu = swiglu_ref;
    t->exp_sum16 = exp_sum16_ref;
    t->acc16_run = acc16_run_ref;
    t->attend_tiled = NULL; /* mp_attend_f16_masked's own loop, the reference */
    t->attend_group = NULL; /* one query at a time */
}
