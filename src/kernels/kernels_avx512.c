/* AVX-512 (F/BW/VL/DQ/VNNI) kernels: the 256-bit kernels of x86_impl.h with
 * VNNI int8 dots, plus 512-bit float dots. */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

#define MP_SFX avx512
#define MP_VNNI 1
#include "kernels/x86_impl.h"

static void dot_f32_512(int64_t n, float *s, const void *w, const void *xq)
{
    const float *a = w, *b = xq;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) { /* masked tail */
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

static inline __m512 ld16_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 ld16_f16_mask(__mmask16 k, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
}
static inline __m512 ld16_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static inline __m512 ld16_bf16_mask(__mmask16 k, const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p)), 16));
}

#define MP_DEF_DOT_H512(NAME, LD, LDM)                                                              \
    static void NAME(int64_t n, float *s, const void *w, const void *xq)                            \
    {                                                                                               \
        const uint16_t *a = w, *b = xq;                                                             \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;                   \
        int64_t i = 0;                                                                              \
        for (; i + 64 <= n; i += 64) {                                                              \
            acc0 = _mm512_fmadd_ps(LD(a + i), LD(b + i), acc0);                                     \
            acc1 = _mm512_fmadd_ps(LD(a + i + 16), LD(b + i + 16), acc1);                           \
            acc2 = _mm512_fmadd_ps(LD(a + i + 32), LD(b + i + 32), acc2);                           \
            acc3 = _mm512_fmadd_ps(LD(a + i + 48), LD(b + i + 48), acc3);                           \
        }                                                                                           \
        for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(LD(a + i), LD(b + i), acc0);            \
        if (i < n) {                                                                                \
            const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);                                   \
            acc1 = _mm512_fmadd_ps(LDM(k, a + i), LDM(k, b + i), acc1);                             \
        }                                                                                           \
        *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3))); \
    }
MP_DEF_DOT_H512(dot_f16_512, ld16_f16, ld16_f16_mask)
MP_DEF_DOT_H512(dot_bf16_512, ld16_bf16, ld16_bf16_mask)

void mp_kernels_fill_avx512(mp_kernel_table *t)
{
    fill_common_avx512(t);
    t->vec_dot[MP_TYPE_F32] = dot_f32_512;
    t->vec_dot[MP_TYPE_F16] = dot_f16_512;
    t->vec_dot[MP_TYPE_BF16] = dot_bf16_512;
}
