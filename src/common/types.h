/* Tensor element types, numbered exactly as ggml numbers them in GGUF files,
 * with each type's block geometry. Used by the GGUF reader (to size tensors)
 * and by the kernels. A type with blck_size 0 is unknown/removed. */
#ifndef MP_TYPES_H
#define MP_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum mp_type {
    MP_TYPE_F32 = 0,
    MP_TYPE_F16 = 1,
    MP_TYPE_Q4_0 = 2,
    MP_TYPE_Q4_1 = 3,
    MP_TYPE_Q5_0 = 6,
    MP_TYPE_Q5_1 = 7,
    MP_TYPE_Q8_0 = 8,
    MP_TYPE_Q8_1 = 9,
    MP_TYPE_Q2_K = 10,
    MP_TYPE_Q3_K = 11,
    MP_TYPE_Q4_K = 12,
    MP_TYPE_Q5_K = 13,
    MP_TYPE_Q6_K = 14,
    MP_TYPE_Q8_K = 15,
    MP_TYPE_IQ2_XXS = 16,
    MP_TYPE_IQ2_XS = 17,
    MP_TYPE_IQ3_XXS = 18,
    MP_TYPE_IQ1_S = 19,
    MP_TYPE_IQ4_NL = 20,
    MP_TYPE_IQ3_S = 21,
    MP_TYPE_IQ2_S = 22,
    MP_TYPE_IQ4_XS = 23,
    MP_TYPE_I8 = 24,
    MP_TYPE_I16 = 25,
    MP_TYPE_I32 = 26,
    MP_TYPE_I64 = 27,
    MP_TYPE_F64 = 28,
    MP_TYPE_IQ1_M = 29,
    MP_TYPE_BF16 = 30,
    MP_TYPE_TQ1_0 = 34,
    MP_TYPE_TQ2_0 = 35,
    MP_TYPE_MXFP4 = 39,
    MP_TYPE_COUNT = 40
} mp_type;

typedef struct mp_type_info {
    const char *name;    /* "q4_K"; NULL for an unknown id */
    uint32_t blck_size;  /* elements per block; 0 for an unknown id */
    uint32_t type_size;  /* bytes per block */
} mp_type_info;

/* Geometry of a type id; info->blck_size == 0 when the id is unknown.
 * Never NULL (ids >= MP_TYPE_COUNT return the unknown entry). */
const mp_type_info *mp_type_get(uint32_t type);

static inline bool mp_type_known(uint32_t type) { return mp_type_get(type)->blck_size != 0; }
static inline const char *mp_type_name(uint32_t type)
{
    const char *n = mp_type_get(type)->name;
    return n ? n : "unknown";
}

/* Bytes of a row of n elements; 0 if the type is unknown or n is not a
 * multiple of the block size. */
size_t mp_row_size(uint32_t type, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even, like ggml). */
static inline float mp_fp16_to_fp32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t mp_fp32_to_fp16(float f)
{
    /* Same algorithm as ggml's portable fp32->fp16 (round to nearest even). */
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (f < 0 ? -f : f) * scale_to_inf * scale_to_zero;
    uint32_t w, shl1_w, sign, bias;
    memcpy(&w, &f, 4);
    shl1_w = w + w;
    sign = w & 0x80000000u;
    bias = shl1_w & 0xff000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    uint32_t bb = (bias >> 1) + 0x07800000u;
    float fb;
    memcpy(&fb, &bb, 4);
    base = fb + base;
    uint32_t bits;
    memcpy(&bits, &base, 4);
    uint32_t exp_bits = (bits >> 13) & 0x00007c00u, mantissa_bits = bits & 0x00000fffu;
    uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

static inline float mp_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t mp_fp32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
