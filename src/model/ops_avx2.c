/* F16C row conversions; compiled with -mavx2 -mf16c, called only when CPUID
 * reports AVX2 (which implies F16C on every CPU we dispatch to). */
#include <immintrin.h>
#include <stdint.h>

#include "common/types.h"

void mp_f16_to_f32_row_f16c(const uint16_t *x, float *y, int64_t n);
void mp_f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n);

void mp_f16_to_f32_row_f16c(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = mp_fp16_to_fp32(x[i]);
}

void mp_f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = mp_fp32_to_fp16(x[i]);
}
