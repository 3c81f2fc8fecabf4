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
