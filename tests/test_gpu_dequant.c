/* The GPU kernels' block decoding (src/gpu/gpu_dequant.h), compiled here as
 * C, against the kernels' reference mp_dequantize_row: every weight type,
 * rows quantised by the reference quantiser from random data and rows of
 * random bytes (odd scale bits; non-finite halves replaced), element by
 * element. Runs in every build, device or not: the CUDA kernels decode with
 * exactly this code. */
#include "gpu/gpu_dequant.h"
#include "common/err.h"
#include "kernels/kernels.h"
#include "mp_test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

static const uint32_t types[] = {MP_TYPE_F32,  MP_TYPE_F16,  MP_TYPE_BF16,   MP_TYPE_Q4_0,   MP_TYPE_Q8_0,
                                 MP_TYPE_Q2_K, MP_TYPE_Q3_K, MP_TYPE_Q4_K,   MP_TYPE_Q5_K,   MP_TYPE_Q6_K,
                                 MP_TYPE_IQ4_NL, MP_TYPE_IQ4_XS, MP_TYPE_MXFP4};

/* Compares every element of one row; returns the number that differ. */
static int compare_row(uint32_t t, const uint8_t *row, int64_t n, const char *what)
{
    static float ref[4096];
    CHECK(mp_dequantize_row(t, row, ref, n) == MP_OK);
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(ref[i]));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float g = mp_gd_elem(t, row, i);
        /* one rounding apart at most: the compilers may contract a*b - c*d
         * into an FMA in one copy and not in the other */
        const float tol = 1e-6f * (amax > 1 ? amax : 1);
        if (!(fabsf(g - ref[i]) <= tol) && !(isnan(g) && isnan(ref[i])) && g != ref[i]) {
            if (bad++ < 3)
                fprintf(stderr, "%s %s: element %lld: gpu %.9g, reference %.9g\n", mp_type_name(t), what, (long long)i,
                        g, ref[i]);
        }
    }
    return bad;
}

int main(void)
{
    enum { N = 1024 };
    static float x[N];
    static uint8_t row[N * 4];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const uint32_t t = types[k];
        int bytes;
        const int bs = mp_gd_block(t, &bytes);
        CHECKF(bs == (int)mp_type_get(t)->blck_size && bytes == (int)mp_type_get(t)->type_size,
               "%s: block %d x %d bytes, types.c says %u x %u", mp_type_name(t), bs, bytes,
               mp_type_get(t)->blck_size, mp_type_get(t)->type_size);
        for (int rep = 0; rep < 8; rep++) {
            const float scale = rep < 4 ? 1.0f : 100.0f;
            for (int i = 0; i < N; i++) x[i] = frand() * scale;
            CHECK(mp_quantize_row_ref(t, x, row, N) == MP_OK);
            CHECKF(compare_row(t, row, N, "quantised") == 0, "%s: quantised rows differ", mp_type_name(t));
        }
        /* random bytes: every scale bit pattern; halves that are not finite
         * replaced (their products are NaN either way) */
        const size_t rb = mp_row_size(t, N);
        for (int rep = 0; rep < 8; rep++) {
            for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)rnd();
            float ref[N];
            mp_dequantize_row(t, row, ref, N);
            int finite = 1;
            for (int i = 0; i < N; i++) finite &= isfinite(ref[i]);
            if (!finite) continue;
            CHECKF(compare_row(t, row, N, "random bytes") == 0, "%s: random rows differ", mp_type_name(t));
        }
    }
    /* halves: every bit pattern */
    for (uint32_t h = 0; h < 65536; h++) {
        const float a = mp_gd_h2f((uint16_t)h), b = mp_fp16_to_fp32((uint16_t)h);
        if (memcmp(&a, &b, 4)) {
            CHECKF(0, "half 0x%04x: %g vs %g", h, a, b);
            break;
        }
    }
    for (int e = 0; e < 256; e++) CHECKF(mp_gd_e8m0_half((uint8_t)e) == mp_e8m0_half((uint8_t)e), "e8m0 %d", e);
    MP_TEST_DONE();
}
