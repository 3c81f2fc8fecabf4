#include "helpers/test_util.h"

#include "common/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void *mp_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

uint32_t mp_rng_u32(mp_test_rng *r)
{
    r->state ^= r->state << 13;
    r->state ^= r->state >> 7;
    r->state ^= r->state << 17;
    return (uint32_t)(r->state >> 16);
}

float mp_rng_unit(mp_test_rng *r) { return (float)((mp_rng_u32(r) & 0xffffff) / 16777216.0); }

float mp_rng_gauss(mp_test_rng *r)
{
    float u = mp_rng_unit(r) + 1e-7f, v = mp_rng_unit(r);
    return sqrtf(-2.f * logf(u)) * cosf(6.2831853f * v);
}

const uint32_t mp_test_weight_types[MP_TEST_N_WEIGHT_TYPES] = {
    MP_TYPE_F32,  MP_TYPE_F16,  MP_TYPE_BF16, MP_TYPE_Q8_0,   MP_TYPE_Q4_0,  MP_TYPE_Q4_K,
    MP_TYPE_Q5_K, MP_TYPE_Q6_K, MP_TYPE_Q2_K, MP_TYPE_Q3_K, MP_TYPE_IQ4_NL, MP_TYPE_IQ4_XS,
    MP_TYPE_MXFP4, MP_TYPE_Q5_0,  MP_TYPE_Q5_1};
