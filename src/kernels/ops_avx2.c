/* F16C row conversions; compiled with -mavx2 -mf16c, called only when CPUID
 * reports AVX2 (which implies F16C on every CPU we dispatch to). */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

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
    float nv[8], jv[8], res[8];
    _mm256_storeu_ps(nv, n);
    _mm256_storeu_ps(jv, j);
    for (int i = 0; i < 8; i++) {
        if (fabsf(nv[i]) > 192.0f) res[i] = nv[i] <= 0.0f ? 0.0f : INFINITY;
        else res[i] = ldexpf(jv[i], (int)nv[i]);
    }
    return _mm256_loadu_ps(res);
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


/* acc = fp16(acc * ms), as ggml_vec_scale_f16 on an f16 accumulator */
static void mp_acc16_scale_f16c(float *acc, float ms, int64_t n)
{
    const __m256 m = _mm256_set1_ps(ms);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(acc + i), m);
        _mm256_storeu_ps(acc + i, _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; i < n; i++) acc[i] = mp_fp16_to_fp32(mp_fp32_to_fp16(acc[i] * ms));
}

/* acc = fp16(fma(v, vs, acc)), as ggml_vec_mad_f16 */
static void mp_acc16_mad_f16c(float *acc, const uint16_t *v, float vs, int64_t n)
{
    const __m256 s = _mm256_set1_ps(vs);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        __m256 a = _mm256_fmadd_ps(x, s, _mm256_loadu_ps(acc + i));
        _mm256_storeu_ps(acc + i, _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; i < n; i++) acc[i] = mp_fp16_to_fp32(mp_fp32_to_fp16(__builtin_fmaf(mp_fp16_to_fp32(v[i]), vs, acc[i])));
}

/* mp_attend_f16 (ops.c) vectorised: q.k for 8 keys at once (each key's sum
 * still one FMA chain over the dims, in dim order), values accumulated over
 * the dims 8 at a time. Same bits as the scalar version. */

static void mp_attend_f16_avx2(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                        int64_t v_stride, int n_kv, int dk, int dv, float scale, float *scores)
{
    enum { TILE = 64 };
    float kt[8 * 8] __attribute__((aligned(32))); /* dims past the last 8: kt[(d - d0) * 8 + key] */
    float M = -INFINITY, S = 0.0f;
    for (int d = 0; d < dv; d++) out[d] = 0.0f;
    for (int ic = 0; ic < n_kv; ic += TILE) {
        const int kt_n = n_kv - ic < TILE ? n_kv - ic : TILE;
        for (int g = 0; g < TILE; g += 8) {
            if (g >= kt_n) {
                _mm256_storeu_ps(scores + g, _mm256_set1_ps(-INFINITY));
                continue;
            }
            const int nk = kt_n - g < 8 ? kt_n - g : 8;
            const uint16_t *kr[8];
            for (int j = 0; j < 8; j++) kr[j] = k + (int64_t)(ic + g + (j < nk ? j : 0)) * k_stride;
            __m256 acc = _mm256_setzero_ps();
            int d0 = 0;
            for (; d0 + 8 <= dk; d0 += 8) { /* 8 keys x 8 dims, transposed: c[i] lane j = key j, dim d0 + i */
                __m256 r[8], t[8], c[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr[j] + d0)));
                for (int j = 0; j < 8; j += 2) {
                    t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
                    t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
                }
                for (int j = 0; j < 8; j += 4) {
                    r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
                    r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
                    r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
                    r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
                }
                for (int i = 0; i < 4; i++) {
                    c[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
                    c[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
                }
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
        for (int i = 0; i < TILE; i += 16) mp_exp_sum16_ggml_avx2(scores + i, scores + i, Mnew, &sum);
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
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] *= inv;
}

void mp_ops_fill_avx2(mp_kernel_table *t)
{
    t->f16_to_f32_row = mp_f16_to_f32_row_f16c;
    t->f32_to_f16_row = mp_f32_to_f16_row_f16c;
    t->swiglu = mp_swiglu_ggml_avx2;
    t->exp_sum16 = mp_exp_sum16_ggml_avx2;
    t->acc16_scale = mp_acc16_scale_f16c;
    t->acc16_mad = mp_acc16_mad_f16c;
    t->attend_tiled = mp_attend_f16_avx2;
}
