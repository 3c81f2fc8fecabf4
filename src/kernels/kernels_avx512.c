/* AVX-512 (F/BW/VL/DQ/VNNI) kernels: the 256-bit kernels of x86_impl.h with
 * VNNI int8 dots, 512-bit interleaved-layout kernels (x86_repack512.h), plus 512-bit float dots (AVX512-BF16 ones picked at run
 * time where the CPU has it). */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

#define MP_SFX avx512
#define MP_VNNI 1
#include "kernels/x86_impl.h"
#include "kernels/x86_repack.h"
#include "kernels/x86_repack512.h"

/* Float dots in the summation order of ggml-cpu's AVX-512 build (vec.cpp,
 * simd-mappings.h), bit-identical to llama.cpp on these CPUs:
 *   F32/F16: 4 accumulators of 16 lanes over 64-element steps (fma), folded
 *     (a0 + a2) + (a1 + a3), then _mm512_reduce_add_ps; the n % 64 tail one
 *     element at a time (F32: float sum, see dot_f32_512; F16: double sum).
 *   BF16 with AVX512-BF16: two vdpbf16ps accumulators over 64-element steps
 *     (elements [0, 32) and [32, 64) of each step), each reduced, summed and
 *     tail-added in double; without it: two 16-lane fma accumulators over
 *     32-element steps, the same double sum. */

static inline __m512 ld16_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 ld16_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

#define MP_DOT4_512(LDA, LDB)                                                                       \
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;                       \
    for (; i + 64 <= n; i += 64) {                                                                  \
        acc0 = _mm512_fmadd_ps(LDA(a + i), LDB(b + i), acc0);                                       \
        acc1 = _mm512_fmadd_ps(LDA(a + i + 16), LDB(b + i + 16), acc1);                             \
        acc2 = _mm512_fmadd_ps(LDA(a + i + 32), LDB(b + i + 32), acc2);                             \
        acc3 = _mm512_fmadd_ps(LDA(a + i + 48), LDB(b + i + 48), acc3);                             \
    }                                                                                               \
    const __m512 fold = _mm512_add_ps(_mm512_add_ps(acc0, acc2), _mm512_add_ps(acc1, acc3));

static void dot_f32_512(int64_t n, float *s, const void *w, const void *xq)
{
    const float *a = w, *b = xq;
    int64_t i = 0;
    MP_DOT4_512(_mm512_loadu_ps, _mm512_loadu_ps)
    float sum = _mm512_reduce_add_ps(fold);
    /* llama.cpp's compiler vectorised the tail's products in blocks of 16 and
     * 8 (each product rounded, then added in order) and fused the last n % 8 */
    for (; i < (n & ~(int64_t)7); i++) sum += mp_mul_nofma(a[i], b[i]);
    for (; i < n; i++) sum = fmaf(a[i], b[i], sum);
    *s = sum;
}

static void dot_f16_512(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    int64_t i = 0;
    MP_DOT4_512(ld16_f16, ld16_f16)
    double sum = _mm512_reduce_add_ps(fold);
    for (; i < n; i++) sum += (double)(mp_fp16_to_fp32(a[i]) * mp_fp16_to_fp32(b[i]));
    *s = (float)sum;
}
#undef MP_DOT4_512

static void dot_bf16_512(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    __m512 c1 = _mm512_setzero_ps(), c2 = c1;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        c1 = _mm512_fmadd_ps(ld16_bf16(a + i), ld16_bf16(b + i), c1);
        c2 = _mm512_fmadd_ps(ld16_bf16(a + i + 16), ld16_bf16(b + i + 16), c2);
    }
    double sum = _mm512_reduce_add_ps(c1);
    sum += _mm512_reduce_add_ps(c2);
    for (; i < n; i++) sum += (double)(mp_bf16_to_fp32(a[i]) * mp_bf16_to_fp32(b[i]));
    *s = (float)sum;
}

#define MP_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

static inline MP_BF16_TARGET __m512bh ld32_bh(const uint16_t *p)
{
    return (__m512bh)_mm512_loadu_si512((const void *)p);
}

static MP_BF16_TARGET void dot_bf16_512bf(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    __m512 c1 = _mm512_setzero_ps(), c2 = c1;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, ld32_bh(a + i), ld32_bh(b + i));
        c2 = _mm512_dpbf16_ps(c2, ld32_bh(a + i + 32), ld32_bh(b + i + 32));
    }
    double sum = _mm512_reduce_add_ps(c1);
    sum += _mm512_reduce_add_ps(c2);
    for (; i < n; i++) sum += (double)(mp_bf16_to_fp32(a[i]) * mp_bf16_to_fp32(b[i]));
    *s = (float)sum;
}

/* GEMM order (llamafile tinyBLAS, AVX-512 build): one 16-lane accumulator
 * per output, one step of KN elements at a time in order (F32/F16/BF16: fma
 * over 16; BF16 with AVX512-BF16: vdpbf16ps over 32), then
 * _mm512_reduce_add_ps. Tiles of MP_TILE_R rows x C tokens. */
#define MP_DEF_GEMM_512(NAME, ATTR, TYPE, KN, VT, LD, MADD)                                         \
    static inline __attribute__((always_inline)) ATTR void NAME##_body(                             \
        int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy, const int R, \
        const int C)                                                                                \
    {                                                                                               \
        __m512 acc[MP_TILE_R][MP_TILE_C];                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                         \
            _Pragma("GCC unroll 4") for (int t = 0; t < C; t++) acc[r][t] = _mm512_setzero_ps();    \
        for (int64_t l = 0; l < n; l += KN) {                                                       \
            VT av[MP_TILE_R];                                                                       \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                     \
                av[r] = LD((const TYPE *)((const uint8_t *)W + r * ws) + l);                        \
            _Pragma("GCC unroll 4") for (int t = 0; t < C; t++) {                                   \
                const VT bv = LD((const TYPE *)((const uint8_t *)X + t * xs) + l);                  \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) acc[r][t] = MADD(av[r], bv, acc[r][t]); \
            }                                                                                       \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int t = 0; t < C; t++)                                         \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]); \
    }                                                                                               \
    static ATTR void NAME##_4x1(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    { NAME##_body(n, W, ws, X, xs, Y, ldy, 4, 1); }                                                 \
    static ATTR void NAME##_4x2(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    { NAME##_body(n, W, ws, X, xs, Y, ldy, 4, 2); }                                                 \
    static ATTR void NAME##_4x3(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    { NAME##_body(n, W, ws, X, xs, Y, ldy, 4, 3); }                                                 \
    static ATTR void NAME##_4x4(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    { NAME##_body(n, W, ws, X, xs, Y, ldy, 4, 4); }                                                 \
    static ATTR void NAME##_1x1(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    { NAME##_body(n, W, ws, X, xs, Y, ldy, 1, 1); }

#define MP_FMA512(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MP_DPBF16(a, b, c) _mm512_dpbf16_ps(c, a, b)
MP_DEF_GEMM_512(gemm_f32_512, , float, 16, __m512, _mm512_loadu_ps, MP_FMA512)
MP_DEF_GEMM_512(gemm_f16_512, , uint16_t, 16, __m512, ld16_f16, MP_FMA512)
MP_DEF_GEMM_512(gemm_bf16_512, , uint16_t, 16, __m512, ld16_bf16, MP_FMA512)
MP_DEF_GEMM_512(gemm_bf16_512bf, MP_BF16_TARGET, uint16_t, 32, __m512bh, ld32_bh, MP_DPBF16)
#undef MP_DEF_GEMM_512

/* MXFP4 register tile, 512-bit: dot_mxfp4's two 8-lane accumulators (even
 * and odd blocks) are the two halves of one zmm, so a block pair costs one
 * dpbusd, one conversion, one multiply for the scale and one fma per output
 * instead of two of each. Each lane sees the same operations as in
 * tile_mxfp4_body (x86_impl.h): the weight made unsigned (+12), the lane
 * started at -12 * sum(y), the scale y.d * 2^(e-128) rounded once; then the
 * halves are added and reduced as there, an odd last block fused in scalar
 * code. */
/* Blocks i and i + 1 of MXFP4 as 64 unsigned levels + 12 (0..24) in element
 * order: 128-bit lanes hold block i's low nibbles (elements 0..15), its high
 * ones, then block i + 1's. */
static inline __m512i mxfp4_pair_u12(const mp_block_mxfp4 *blk)
{
    const __m512i tab = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i r0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)blk[0].qs));
    const __m256i r1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)blk[1].qs));
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(r0), r1, 1);
    return _mm512_shuffle_epi8(
        tab, _mm512_mask_blend_epi64(0xCC, _mm512_and_si512(raw, m4), _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4)));
}

/* The 64 bytes of Q8_0 blocks i and i + 1 */
static inline __m512i q8_pair(const mp_block_q8_0 *yb)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)yb[0].qs)),
                              _mm256_loadu_si256((const __m256i *)yb[1].qs), 1);
}

/* a in the low 8 lanes, b in the high 8 */
static inline __m512 pair_ps(float a, float b)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

/* dot_mxfp4 (x86_impl.h) with its even/odd-block accumulators as the halves
 * of one zmm: the scale product rounded once per block as there, the lanes'
 * integers the same (unsigned weight, lane started at -12 * sum(y)). */
static void dot_mxfp4_512(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_mxfp4 *a = w;
    const mp_block_q8_0 *b = xq;
    const __m512i twelve = _mm512_set1_epi8(12);
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m512i y = q8_pair(b + i);
        const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), twelve, y));
        const __m512 d = pair_ps(h2f_avx512(b[i].d) * mp_e8m0_half(a[i].e), h2f_avx512(b[i + 1].d) * mp_e8m0_half(a[i + 1].e));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, mxfp4_pair_u12(a + i), y)), acc);
    }
    float sum = hsum_ps_avx512(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
    if (i < nb) {
        const float d = h2f_avx512(b[i].d) * mp_e8m0_half(a[i].e);
        sum = fmaf(d, (float)hsum_epi32_avx512(mxfp4_lanes_avx512(a + i, b + i)), sum);
    }
    *s = sum;
}

static inline __attribute__((always_inline)) void FN(tile_mxfp4_512_body)(int64_t n, const void *W, size_t ws,
                                                                      const void *X, size_t xs, float *Y, int64_t ldy,
                                                                      const int C)
{
    __m512 acc[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm512_setzero_ps();
    const __m512i twelve = _mm512_set1_epi8(12);
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m512i q[MP_TILE_R];
        __m512 dw[MP_TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const mp_block_mxfp4 *blk = (const mp_block_mxfp4 *)((const uint8_t *)W + r * ws) + i;
            q[r] = mxfp4_pair_u12(blk);
            dw[r] = pair_ps(mp_e8m0_half(blk[0].e), mp_e8m0_half(blk[1].e));
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m512i y = q8_pair(yb);
            const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), twelve, y));
            const __m512 dx = pair_ps(h2f_avx512(yb[0].d), h2f_avx512(yb[1].d));
#pragma GCC unroll 4
            for (int r = 0; r < MP_TILE_R; r++)
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dw[r]), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, q[r], y)),
                                            acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            float sum = hsum_ps_avx512(_mm256_add_ps(_mm512_castps512_ps256(acc[r][t]), _mm512_extractf32x8_ps(acc[r][t], 1)));
            if (i < nb) {
                const mp_block_mxfp4 *a = (const mp_block_mxfp4 *)((const uint8_t *)W + r * ws) + i;
                const mp_block_q8_0 *b = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
                sum = fmaf(h2f_avx512(b->d) * mp_e8m0_half(a->e), (float)hsum_epi32_avx512(mxfp4_lanes_avx512(a, b)), sum);
            }
            Y[t * ldy + r] = sum;
        }
}

MP_DEF_TILES(tile_mxfp4_512, tile_mxfp4_512_body)

#define MP_SET_GEMM(TY, NAME, STEP)                                                                 \
    do {                                                                                            \
        t->gemm[TY][0] = NAME##_4x1;                                                                \
        t->gemm[TY][1] = NAME##_4x2;                                                                \
        t->gemm[TY][2] = NAME##_4x3;                                                                \
        t->gemm[TY][3] = NAME##_4x4;                                                                \
        t->gemm1[TY] = NAME##_1x1;                                                                  \
        t->gemm_step[TY] = STEP;                                                                    \
    } while (0)

void mp_kernels_fill_avx512(mp_kernel_table *t)
{
    fill_common_avx512(t);
    fill_repack_avx512(t);
    fill_repack512(t); /* the 512-bit ones over the 256-bit ones */
    t->vec_dot[MP_TYPE_F32] = dot_f32_512;
    t->vec_dot[MP_TYPE_MXFP4] = dot_mxfp4_512;
    MP_SET_TILES(t, MP_TYPE_MXFP4, tile_mxfp4_512);
    t->vec_dot[MP_TYPE_F16] = dot_f16_512;
    MP_SET_GEMM(MP_TYPE_F32, gemm_f32_512, 16);
    MP_SET_GEMM(MP_TYPE_F16, gemm_f16_512, 16);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) { /* llama.cpp's zen4/sapphirerapids/cooperlake builds */
        t->vec_dot[MP_TYPE_BF16] = dot_bf16_512bf;
        MP_SET_GEMM(MP_TYPE_BF16, gemm_bf16_512bf, 32);
    } else {
        t->vec_dot[MP_TYPE_BF16] = dot_bf16_512;
        MP_SET_GEMM(MP_TYPE_BF16, gemm_bf16_512, 16);
    }
}
