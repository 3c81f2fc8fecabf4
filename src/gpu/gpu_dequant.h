/* One weight element, dequantised: the same arithmetic compiled twice, as C
 * for the CPU (tests/test_gpu_dequant.c checks it against the kernels'
 * reference mp_dequantize_row on random blocks of every type, so the CUDA
 * kernels' block decoding is tested in CI without a device) and as CUDA
 * device code for the GPU kernels (src/gpu/gpu_cuda.cu).
 *
 * Layouts: ggml's, as in kernels/kernels.h (byte offsets written out here so
 * the header needs no struct shared with the CUDA compiler). Valid C11 and
 * C++: no designated initialisers, no implicit void* conversions. */
#ifndef MP_GPU_DEQUANT_H
#define MP_GPU_DEQUANT_H

#include <stdint.h>

#ifdef __CUDACC__
#define MP_HD __host__ __device__ static inline
#else
#define MP_HD static inline
#endif

/* ggml type ids (common/types.h numbers them the same; repeated so the CUDA
 * compiler needs no C header) */
enum {
    MP_GD_F32 = 0, MP_GD_F16 = 1, MP_GD_Q4_0 = 2, MP_GD_Q8_0 = 8, MP_GD_Q2_K = 10, MP_GD_Q3_K = 11,
    MP_GD_Q4_K = 12, MP_GD_Q5_K = 13, MP_GD_Q6_K = 14, MP_GD_IQ4_NL = 20, MP_GD_IQ4_XS = 23, MP_GD_BF16 = 30,
    MP_GD_MXFP4 = 39
};

MP_HD float mp_gd_f32_bits(uint32_t bits)
{
    union { uint32_t u; float f; } v;
    v.u = bits;
    return v.f;
}

MP_HD float mp_gd_h2f(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return mp_gd_f32_bits(sign);
        int e = -1;
        do { e++; man <<= 1; } while (!(man & 0x400));
        return mp_gd_f32_bits(sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13));
    }
    if (exp == 0x1f) return mp_gd_f32_bits(sign | 0x7f800000u | (man << 13));
    return mp_gd_f32_bits(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

MP_HD uint16_t mp_gd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* kvalues_iq4nl and the doubled E2M1 table (kernels/kernels.h) */
MP_HD int mp_gd_iq4nl(int i)
{
    const int8_t k[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return k[i];
}
MP_HD int mp_gd_mxfp4(int i)
{
    const int8_t k[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    return k[i];
}

/* 2^(e-128) (ggml's GGML_E8M0_TO_FP32_HALF) */
MP_HD float mp_gd_e8m0_half(uint8_t e)
{
    return mp_gd_f32_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j (0..7) from the 12 scale bytes */
MP_HD void mp_gd_k4_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Elements per block and bytes per block; 0 for a type this header lacks. */
MP_HD int mp_gd_block(uint32_t type, int *bytes)
{
    switch (type) {
    case MP_GD_F32: *bytes = 4; return 1;
    case MP_GD_F16: case MP_GD_BF16: *bytes = 2; return 1;
    case MP_GD_Q4_0: *bytes = 18; return 32;
    case MP_GD_Q8_0: *bytes = 34; return 32;
    case MP_GD_IQ4_NL: *bytes = 18; return 32;
    case MP_GD_MXFP4: *bytes = 17; return 32;
    case MP_GD_Q2_K: *bytes = 84; return 256;
    case MP_GD_Q3_K: *bytes = 110; return 256;
    case MP_GD_Q4_K: *bytes = 144; return 256;
    case MP_GD_Q5_K: *bytes = 176; return 256;
    case MP_GD_Q6_K: *bytes = 210; return 256;
    case MP_GD_IQ4_XS: *bytes = 136; return 256;
    default: *bytes = 0; return 0;
    }
}

/* Element j (0 .. block size) of the block at b. */
MP_HD float mp_gd_elem_in_block(uint32_t type, const uint8_t *b, int j)
{
    switch (type) {
    case MP_GD_F32: {
        const uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        return mp_gd_f32_bits(u);
    }
    case MP_GD_F16: return mp_gd_h2f(mp_gd_u16(b));
    case MP_GD_BF16: return mp_gd_f32_bits((uint32_t)mp_gd_u16(b) << 16);
    case MP_GD_Q4_0: { /* d, then 16 bytes: low nibbles elements 0..15, high 16..31 */
        const int q = j < 16 ? b[2 + j] & 0xF : b[2 + j - 16] >> 4;
        return (float)(q - 8) * mp_gd_h2f(mp_gd_u16(b));
    }
    case MP_GD_Q8_0: return (float)(int8_t)b[2 + j] * mp_gd_h2f(mp_gd_u16(b));
    case MP_GD_IQ4_NL: {
        const int q = j < 16 ? b[2 + j] & 0xF : b[2 + j - 16] >> 4;
        return mp_gd_h2f(mp_gd_u16(b)) * (float)mp_gd_iq4nl(q);
    }
    case MP_GD_MXFP4: { /* e first, then 16 bytes of E2M1 codes */
        const int q = j < 16 ? b[1 + j] & 0xF : b[1 + j - 16] >> 4;
        return (float)mp_gd_mxfp4(q) * mp_gd_e8m0_half(b[0]);
    }
    case MP_GD_Q2_K: { /* scales[16] qs[64] d dmin */
        const uint8_t sc = b[j / 16];
        const int q = (b[16 + 32 * (j / 128) + j % 32] >> (2 * ((j % 128) / 32))) & 3;
        const float d = mp_gd_h2f(mp_gd_u16(b + 80)), dmin = mp_gd_h2f(mp_gd_u16(b + 82));
        return d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
    }
    case MP_GD_Q3_K: { /* hmask[32] qs[64] scales[12] d */
        const uint8_t *sc = b + 96;
        const int s = j / 16;
        const int lo = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
        const int scale = (lo | ((sc[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
        const int q2 = (b[32 + 32 * (j / 128) + j % 32] >> (2 * ((j % 128) / 32))) & 3;
        const int q = q2 - ((b[j % 32] >> (j / 32)) & 1 ? 0 : 4);
        return mp_gd_h2f(mp_gd_u16(b + 108)) * (float)scale * (float)q;
    }
    case MP_GD_Q4_K: case MP_GD_Q5_K: { /* d dmin scales[12] (qh[32]) qs[128] */
        const int five = type == MP_GD_Q5_K;
        const uint8_t *qs = b + (five ? 48 : 16);
        const int c = j / 64, hi = (j % 64) / 32, l = j % 32; /* 64 elements per 32 qs bytes */
        int sc, m;
        mp_gd_k4_scale_min(2 * c + hi, b + 4, &sc, &m);
        int q = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
        if (five && (b[16 + l] >> (2 * c + hi)) & 1) q += 16;
        const float d = mp_gd_h2f(mp_gd_u16(b)), dmin = mp_gd_h2f(mp_gd_u16(b + 2));
        return d * (float)sc * (float)q - dmin * (float)m;
    }
    case MP_GD_Q6_K: { /* ql[128] qh[64] scales[16] d */
        const int h = j / 128, r = j % 128, quarter = r / 32, l = r % 32;
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
        const int lo = quarter == 0 ? ql[l] & 0xF : quarter == 1 ? ql[l + 32] & 0xF : quarter == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
        const int q = (lo | ((qh[l] >> (2 * quarter)) & 3) << 4) - 32;
        return mp_gd_h2f(mp_gd_u16(b + 208)) * (float)sc[l / 16 + 2 * quarter] * (float)q;
    }
    case MP_GD_IQ4_XS: { /* d scales_h scales_l[4] qs[128] */
        const int ib = j / 32, e = j % 32;
        const uint16_t sh = mp_gd_u16(b + 2);
        const int scale = (((b[4 + ib / 2] >> 4 * (ib % 2)) & 0xF) | ((sh >> 2 * ib) & 3) << 4) - 32;
        const uint8_t *qs = b + 8 + 16 * ib;
        const int q = e < 16 ? qs[e] & 0xF : qs[e - 16] >> 4;
        return mp_gd_h2f(mp_gd_u16(b)) * (float)scale * (float)mp_gd_iq4nl(q);
    }
    default: return 0.0f;
    }
}

/* Element i of a row of `type` (row: its first byte). */
MP_HD float mp_gd_elem(uint32_t type, const uint8_t *row, int64_t i)
{
    int bytes;
    const int bs = mp_gd_block(type, &bytes);
    return mp_gd_elem_in_block(type, row + (i / bs) * bytes, (int)(i % bs));
}

#endif
