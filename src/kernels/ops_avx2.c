/* F16C row conversions; compiled with -mavx2 -mf16c, called only when CPUID
 * reports AVX2 (which implies F16C on every CPU we dispatch to). */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/types.h"
#include "kernels/kernels_internal.h"


static void mp_f16_to_f32_row_f16c(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = mp_fp16_to_fp32(x[i]);
}

static void mp_f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = mp_fp32_to_fp16(x[i]);
}

/* ggml's AVX-512 exp approximation (ggml_v_expf), lane for lane in AVX2+FMA:
 * the same FMA sequence; 2^n applied with one multiply (as VSCALEFPS rounds
 * once) while 2^n is a float, else lane by lane with ldexpf. */
static __m256 mp_expf_ggml8(__m256 x)
{
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256 lo = _mm256_set1_ps(-149.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 out = _mm256_or_ps(_mm256_cmp_ps(n, lo, _CMP_LT_OQ), _mm256_cmp_ps(n, hi, _CMP_GT_OQ));
    if (_mm256_movemask_ps(out) == 0) {
        /* 2^n as a float: exponent bits for n >= -126, else a subnormal power */
        const __m256i ni = _mm256_cvtps_epi32(n);
        const __m256i nrm = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
        const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(1), _mm256_add_epi32(ni, _mm256_set1_epi32(149)));
        const __m256i isn = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), ni);
        const __m256 p2 = _mm256_castsi256_ps(_mm256_blendv_epi8(nrm, sub, isn));
        return _mm256_mul_ps(j, p2);
    }
    /* some lane past the float powers of two (a masked score's -INF, an
     * overflow): ldexpf(j, n) for |n| <= 192 is j * 2^n rounded once, which
     * the double product (exact) then its conversion give; |n| > 192: 0 or
     * infinity. NaN lanes stay NaN through j. */
    const __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n), _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 nc = _mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-192.0f)), _mm256_set1_ps(192.0f));
    const __m256i ni = _mm256_cvtps_epi32(nc);
    const __m256i bias = _mm256_set1_epi64x(1023);
    const __m256d p_lo = _mm256_castsi256_pd(
        _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ni)), bias), 52));
    const __m256d p_hi = _mm256_castsi256_pd(
        _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(ni, 1)), bias), 52));
    const __m128 r_lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(j)), p_lo));
    const __m128 r_hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(j, 1)), p_hi));
    const __m256 sat = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(INFINITY));
    return _mm256_blendv_ps(_mm256_set_m128(r_hi, r_lo), sat, big);
}


static void mp_swiglu_ggml_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 8) { /* whole 16-wide blocks, as ggml's AVX-512 loop */
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = mp_expf_ggml8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
        i += 8;
        const __m256 x2 = _mm256_loadu_ps(g + i);
        const __m256 e2 = mp_expf_ggml8(_mm256_sub_ps(_mm256_setzero_ps(), x2));
        const __m256 s2 = _mm256_div_ps(x2, _mm256_add_ps(_mm256_set1_ps(1.0f), e2));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s2, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* y[0..16) = exp(x - max) as ggml_vec_soft_max_f32's AVX-512 step, and the
 * 16 values reduced in _mm512_reduce_add_ps's order, added to *sum in double. */
static void mp_exp_sum16_ggml_avx2(float *y, const float *x, float max, double *sum)
{
    const __m256 m = _mm256_set1_ps(max);
    const __m256 a = mp_expf_ggml8(_mm256_sub_ps(_mm256_loadu_ps(x), m));
    const __m256 b = mp_expf_ggml8(_mm256_sub_ps(_mm256_loadu_ps(x + 8), m));
    _mm256_storeu_ps(y, a);
    _mm256_storeu_ps(y + 8, b);
    const __m256 t3 = _mm256_add_ps(b, a);
    const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    *sum += (double)(_mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1)));
}


/* f32 lanes rounded to f16 and back */
static inline __m256 mp_round16(__m256 a) { return _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT)); }

/* W values of acc16_run held in registers over all n keys (W / 8 chains:
 * each value's updates depend on the key before, so the chains side by
 * side are what runs in parallel) */
#define MP_ACC16_RUN_W(W)                                                                                              \
    for (; d + (W) <= dv; d += (W)) {                                                                                  \
        __m256 a[(W) / 8];                                                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < (W) / 8; r++) a[r] = _mm256_loadu_ps(acc + d + 8 * r);            \
        for (int i = 0; i < n; i++) {                                                                                  \
            const uint16_t *vi = v + (int64_t)i * v_stride + d;                                                        \
            if (ms[i] != 1.0f) {                                                                                       \
                const __m256 m = _mm256_set1_ps(ms[i]);                                                                \
                _Pragma("GCC unroll 8") for (int r = 0; r < (W) / 8; r++) a[r] = mp_round16(_mm256_mul_ps(a[r], m));   \
            }                                                                                                          \
            const __m256 s = _mm256_set1_ps(vs[i]);                                                                    \
            _Pragma("GCC unroll 8") for (int r = 0; r < (W) / 8; r++) a[r] =                                           \
                mp_round16(_mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vi + 8 * r))), s, a[r])); \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int r = 0; r < (W) / 8; r++) _mm256_storeu_ps(acc + d + 8 * r, a[r]);            \
    }

/* acc16_run (kernels_internal.h): 64 values at a time held in registers
 * over all n keys, then 32, then 8, then one; each lane does the scalar
 * reference's multiply or fma and f16 rounding, key by key. */
static void mp_acc16_run_f16c(float *acc, const uint16_t *v, int64_t v_stride, const float *ms, const float *vs,
                              int n, int64_t dv)
{
    int64_t d = 0;
    MP_ACC16_RUN_W(64)
    MP_ACC16_RUN_W(32)
    MP_ACC16_RUN_W(8)
    for (; d < dv; d++) {
        float a = acc[d];
        for (int i = 0; i < n; i++) {
            if (ms[i] != 1.0f) a = mp_fp16_to_fp32(mp_fp32_to_fp16(a * ms[i]));
            a = mp_fp16_to_fp32(mp_fp32_to_fp16(__builtin_fmaf(mp_fp16_to_fp32(v[(int64_t)i * v_stride + d]), vs[i], a)));
        }
        acc[d] = a;
    }
}

/* The softmax step of one tile: scores[0..64) = exp(scores - Mnew), summed
 * 16 at a time into *sum (ggml's order). A block of 16 masked keys (-INF)
 * gives exact zeros, which leave the sum as it is: a block past the tile's
 * kt keys is skipped (its p are never read), one before the window (keys
 * < jw, in the tile's numbering) written as zeros. Not when Mnew is -INF
 * (every key so far masked or -INF): there exp gives NaN, as in ops.c. */
static inline void mp_exp_tile(float *scores, float Mnew, int kt, int jw, double *sum)
{
    for (int i = 0; i < 64; i += 16) {
        if (Mnew != -INFINITY && i >= kt) break;
        if (Mnew != -INFINITY && i + 16 <= jw) {
            _mm256_storeu_ps(scores + i, _mm256_setzero_ps());
            _mm256_storeu_ps(scores + i + 8, _mm256_setzero_ps());
            continue;
        }
        mp_exp_sum16_ggml_avx2(scores + i, scores + i, Mnew, sum);
    }
}

/* c[i] lane j = r[j] lane i (r is clobbered) */
static inline void mp_transpose8(__m256 r[8], __m256 c[8])
{
    __m256 t[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j += 4) {
        r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        c[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        c[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
}

/* mp_attend_f16_masked (ops.c) vectorised: q.k for 8 keys at once (each
 * key's sum still one FMA chain over the dims, in dim order), values
 * accumulated over the dims 8 at a time. Same bits as the scalar version. */
static void mp_attend_f16_avx2(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                               int64_t v_stride, int n_kv, int dk, int dv, float scale, int j0, const float *sink,
                               float *scores)
{
    enum { TILE = 64 };
    float kt[8 * 8] __attribute__((aligned(32))); /* dims past the last 8: kt[(d - d0) * 8 + key] */
    float M = -INFINITY, S = 0.0f;
    for (int d = 0; d < dv; d++) out[d] = 0.0f;
    for (int ic = 0; ic < n_kv; ic += TILE) {
        const int kt_n = n_kv - ic < TILE ? n_kv - ic : TILE;
        if (ic + kt_n <= j0) continue; /* every key before the window: ggml skips the tile */
        for (int g = 0; g < TILE; g += 8) {
            if (g >= kt_n || ic + g + 8 <= j0) {
                _mm256_storeu_ps(scores + g, _mm256_set1_ps(-INFINITY));
                continue;
            }
            const int nk = kt_n - g < 8 ? kt_n - g : 8;
            const uint16_t *kr[8];
            for (int j = 0; j < 8; j++) kr[j] = k + (int64_t)(ic + g + (j < nk ? j : 0)) * k_stride;
            __m256 acc = _mm256_setzero_ps();
            int d0 = 0;
            for (; d0 + 8 <= dk; d0 += 8) { /* 8 keys x 8 dims, transposed: c[i] lane j = key j, dim d0 + i */
                __m256 r[8], c[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr[j] + d0)));
                mp_transpose8(r, c);
                for (int i = 0; i < 8; i++) acc = _mm256_fmadd_ps(c[i], _mm256_set1_ps(q[d0 + i]), acc);
            }
            if (d0 < dk) {
                for (int j = 0; j < 8; j++)
                    for (int d = d0; d < dk; d++) kt[(d - d0) * 8 + j] = mp_fp16_to_fp32(kr[j][d]);
                for (int d = d0; d < dk; d++)
                    acc = _mm256_fmadd_ps(_mm256_load_ps(kt + (d - d0) * 8), _mm256_set1_ps(q[d]), acc);
            }
            acc = _mm256_mul_ps(acc, _mm256_set1_ps(scale));
            _mm256_storeu_ps(scores + g, acc);
            for (int j = nk; j < 8; j++) scores[g + j] = -INFINITY;
            for (int j = 0; j < 8 && ic + g + j < j0; j++) scores[g + j] = -INFINITY;
        }
        float tile_max = -INFINITY;
        for (int tk = 0; tk < TILE; tk++) tile_max = scores[tk] > tile_max ? scores[tk] : tile_max;
        const float Mnew = fmaxf(M, tile_max);
        if (Mnew > M) {
            const float ms = expf(M - Mnew);
            for (int d = 0; d < dv; d++) out[d] *= ms;
            S *= ms;
        }
        M = Mnew;
        double sum = 0.0;
        mp_exp_tile(scores, Mnew, kt_n, j0 - ic, &sum);
        S = (float)((double)S + sum);
        for (int tk = 0; tk < kt_n; tk++) {
            const uint16_t *vr = v + (int64_t)(ic + tk) * v_stride;
            const __m256 p = _mm256_set1_ps(scores[tk]);
            int d = 0;
            for (; d + 8 <= dv; d += 8) {
                const __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + d)));
                _mm256_storeu_ps(out + d, _mm256_fmadd_ps(vv, p, _mm256_loadu_ps(out + d)));
            }
            for (; d < dv; d++) out[d] = fmaf(mp_fp16_to_fp32(vr[d]), scores[tk], out[d]);
        }
    }
    if (sink) mp_attn_apply_sink(out, &M, &S, *sink, dv);
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] *= inv;
}

/* A GQA group's tiled attention: up to 8 queries that share the keys, the
 * values and the window, each the computation of mp_attend_f16_masked.
 * Scores: the queries in the 8 lanes (q transposed once per call), 8 keys'
 * chains side by side (each lane still one FMA chain per key over the dims
 * in dim order: the same bits); a key row is converted once for the group.
 * Values: NQ queries x NCH chunks of 8 dims kept in registers over a tile's
 * keys, each lane one FMA chain over the keys in key order, as the scalar
 * out[d] = fma(v[d], p, out[d]). */
enum { MP_GT = 64 }; /* ggml's key tile */

#define MP_DEF_VPASS(NQ, NCH)                                                                                    \
    static void mp_vpass_##NQ##x##NCH(float *const *o, const float *p, const uint16_t *v, int64_t v_stride,    \
                                      int kt, int d0)                                                           \
    {                                                                                                           \
        __m256 acc[NQ][NCH];                                                                                    \
        _Pragma("GCC unroll 8") for (int r = 0; r < NQ; r++) _Pragma("GCC unroll 8") for (int c = 0; c < NCH;  \
                                                                                          c++) acc[r][c] =      \
            _mm256_loadu_ps(o[r] + d0 + 8 * c);                                                                 \
        for (int tk = 0; tk < kt; tk++) {                                                                       \
            const uint16_t *vr = v + (int64_t)tk * v_stride + d0;                                               \
            __m256 x[NCH];                                                                                      \
            _Pragma("GCC unroll 8") for (int c = 0; c < NCH; c++) x[c] =                                        \
                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + 8 * c)));                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < NQ; r++)                                                \
            {                                                                                                   \
                const __m256 pr = _mm256_broadcast_ss(p + r * MP_GT + tk);                                      \
                _Pragma("GCC unroll 8") for (int c = 0; c < NCH; c++) acc[r][c] =                               \
                    _mm256_fmadd_ps(x[c], pr, acc[r][c]);                                                       \
            }                                                                                                   \
        }                                                                                                       \
        _Pragma("GCC unroll 8") for (int r = 0; r < NQ; r++) _Pragma("GCC unroll 8") for (int c = 0; c < NCH;  \
                                                                                          c++)                  \
            _mm256_storeu_ps(o[r] + d0 + 8 * c, acc[r][c]);                                                     \
    }
MP_DEF_VPASS(8, 1)
MP_DEF_VPASS(4, 2)
MP_DEF_VPASS(4, 1)
MP_DEF_VPASS(2, 4)
MP_DEF_VPASS(2, 1)
#undef MP_DEF_VPASS

static void mp_attend_group8_avx2(float *out, int64_t out_stride, const float *q, int64_t q_stride, int nq,
                                  const uint16_t *k, int64_t k_stride, const uint16_t *v, int64_t v_stride, int n_kv,
                                  int dk, int dv, float scale, int j0, const float *sinks)
{
    /* scratch on the stack, sized by the head (dk, dv <= MP_ATTN_GROUP_MAXD:
     * at most 68 KiB; 4.5 KiB for 64-dim heads) */
    float qT[8 * dk];                                 /* qT[d * 8 + r] = q_r[d]; 0 past nq */
    float kf[8 * dk];                                 /* 8 key rows in f32, dk apart */
    float pad[dv];                                    /* output of the lanes past nq */
    float sc[8 * MP_GT] __attribute__((aligned(32))); /* sc[r * 64 + tk]: scores, then p */
    float M[8], S[8];
    float *o[8];
    /* the value pass: 8 queries (padded), or fewer with more dims per pass */
    const int vq = nq > 4 ? 8 : nq > 2 ? 4 : 2;
    for (int r = 0; r < 8; r++) {
        o[r] = r < nq ? out + r * out_stride : pad;
        M[r] = -INFINITY;
        S[r] = 0.0f;
        for (int d = 0; d < dk; d++) qT[d * 8 + r] = r < nq ? q[r * q_stride + d] : 0.0f;
    }
    memset(pad, 0, (size_t)dv * sizeof(float));
    for (int r = 0; r < nq; r++) memset(o[r], 0, (size_t)dv * sizeof(float));
    for (int ic = 0; ic < n_kv; ic += MP_GT) {
        const int kt = n_kv - ic < MP_GT ? n_kv - ic : MP_GT;
        if (ic + kt <= j0) continue; /* every key before the window: ggml skips the tile */
        for (int g = 0; g < MP_GT; g += 8) {
            if (g >= kt || ic + g + 8 <= j0) {
                for (int r = 0; r < 8; r++) _mm256_store_ps(sc + r * MP_GT + g, _mm256_set1_ps(-INFINITY));
                continue;
            }
            for (int j = 0; j < 8; j++) {
                float *kr = kf + j * dk;
                const int key = ic + g + j;
                if (g + j >= kt || key < j0) { /* masked: its score is replaced below */
                    memset(kr, 0, (size_t)dk * sizeof(float));
                    continue;
                }
                const uint16_t *ks = k + (int64_t)key * k_stride;
                int d = 0;
                for (; d + 8 <= dk; d += 8)
                    _mm256_storeu_ps(kr + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ks + d))));
                for (; d < dk; d++) kr[d] = mp_fp16_to_fp32(ks[d]);
            }
            __m256 a[8], c[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
            for (int d = 0; d < dk; d++) {
                const __m256 qd = _mm256_loadu_ps(qT + d * 8);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(kf + j * dk + d), qd, a[j]);
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) a[j] = _mm256_mul_ps(a[j], _mm256_set1_ps(scale));
            mp_transpose8(a, c); /* c[r] lane j: query r, key g + j */
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) _mm256_store_ps(sc + r * MP_GT + g, c[r]);
            for (int j = 0; j < 8; j++)
                if (g + j >= kt || ic + g + j < j0)
                    for (int r = 0; r < 8; r++) sc[r * MP_GT + g + j] = -INFINITY;
        }
        for (int r = 0; r < 8; r++) {
            float *s = sc + r * MP_GT;
            if (r >= nq) { /* padding lanes: p = 0 */
                memset(s, 0, MP_GT * sizeof(float));
                continue;
            }
            float tile_max = -INFINITY;
            for (int tk = 0; tk < MP_GT; tk++) tile_max = s[tk] > tile_max ? s[tk] : tile_max;
            const float Mnew = fmaxf(M[r], tile_max);
            if (Mnew > M[r]) {
                const float ms = expf(M[r] - Mnew);
                for (int d = 0; d < dv; d++) o[r][d] *= ms;
                S[r] *= ms;
            }
            M[r] = Mnew;
            double sum = 0.0;
            mp_exp_tile(s, Mnew, kt, j0 - ic, &sum);
            S[r] = (float)((double)S[r] + sum);
        }
        const uint16_t *vt = v + (int64_t)ic * v_stride;
        int d0 = 0;
        if (vq == 8) {
            for (; d0 + 8 <= dv; d0 += 8) mp_vpass_8x1(o, sc, vt, v_stride, kt, d0);
        } else if (vq == 4) {
            for (; d0 + 16 <= dv; d0 += 16) mp_vpass_4x2(o, sc, vt, v_stride, kt, d0);
            for (; d0 + 8 <= dv; d0 += 8) mp_vpass_4x1(o, sc, vt, v_stride, kt, d0);
        } else {
            for (; d0 + 32 <= dv; d0 += 32) mp_vpass_2x4(o, sc, vt, v_stride, kt, d0);
            for (; d0 + 8 <= dv; d0 += 8) mp_vpass_2x1(o, sc, vt, v_stride, kt, d0);
        }
        for (int r = 0; r < nq; r++)
            for (int tk = 0; tk < kt; tk++)
                for (int d = d0; d < dv; d++)
                    o[r][d] = fmaf(mp_fp16_to_fp32(vt[(int64_t)tk * v_stride + d]), sc[r * MP_GT + tk], o[r][d]);
    }
    for (int r = 0; r < nq; r++) {
        if (sinks) mp_attn_apply_sink(o[r], &M[r], &S[r], sinks[r], dv);
        const float inv = S[r] == 0.0f ? 0.0f : 1.0f / S[r];
        for (int d = 0; d < dv; d++) o[r][d] *= inv;
    }
}

static void mp_attend_group_avx2(float *out, int64_t out_stride, const float *q, int64_t q_stride, int n_q,
                                 const uint16_t *k, int64_t k_stride, const uint16_t *v, int64_t v_stride, int n_kv,
                                 int dk, int dv, float scale, int j0, const float *sinks)
{
    for (int r0 = 0; r0 < n_q; r0 += 8)
        mp_attend_group8_avx2(out + r0 * out_stride, out_stride, q + r0 * q_stride, q_stride,
                              n_q - r0 < 8 ? n_q - r0 : 8, k, k_stride, v, v_stride, n_kv, dk, dv, scale, j0,
                              sinks ? sinks + r0 : NULL);
}

void mp_ops_fill_avx2(mp_kernel_table *t)
{
    t->f16_to_f32_row = mp_f16_to_f32_row_f16c;
    t->f32_to_f16_row = mp_f32_to_f16_row_f16c;
    t->swiglu = mp_swiglu_ggml_avx2;
    t->exp_sum16 = mp_exp_sum16_ggml_avx2;
    t->acc16_run = mp_acc16_run_f16c;
    t->attend_tiled = mp_attend_f16_avx2;
    t->attend_group = mp_attend_group_avx2;
}
