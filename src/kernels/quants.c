/* Block formats: reference (de)quantisation and the scalar vec_dot kernels.
 *
 * Bit layouts are ggml's (ggml-common.h); the quantisers follow ggml's *_ref
 * algorithms step by step (including the K-quants' scale search) so that a
 * row quantised here dequantises like one quantised by llama.cpp. */
#include "kernels/kernels_internal.h"

#include "moepager/status.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

static_assert(sizeof(mp_block_q4_0) == 18, "q4_0 block");
static_assert(sizeof(mp_block_q8_0) == 34, "q8_0 block");
static_assert(sizeof(mp_block_q4_K) == 144, "q4_K block");
static_assert(sizeof(mp_block_q5_K) == 176, "q5_K block");
static_assert(sizeof(mp_block_q6_K) == 210, "q6_K block");
static_assert(sizeof(mp_block_q8_K) == 292, "q8_K block");
static_assert(sizeof(mp_block_q2_K) == 84, "q2_K block");
static_assert(sizeof(mp_block_q3_K) == 110, "q3_K block");
static_assert(sizeof(mp_block_iq4_nl) == 18, "iq4_nl block");
static_assert(sizeof(mp_block_iq4_xs) == 136, "iq4_xs block");
static_assert(sizeof(mp_block_q5_0) == 22 && offsetof(mp_block_q5_0, qs) == 6, "q5_0 block: d, qh, qs");
static_assert(sizeof(mp_block_q5_1) == 24 && offsetof(mp_block_q5_1, qs) == 8, "q5_1 block: d, m, qh, qs");
static_assert(sizeof(mp_block_q8_1) == 36 && offsetof(mp_block_q8_1, qs) == 4, "q8_1 block: d, s, qs");
static_assert(sizeof(mp_block_mxfp4) == 17 && offsetof(mp_block_mxfp4, qs) == 1, "mxfp4 block: e first");
static_assert(offsetof(mp_block_q6_K, d) == 208, "q6_K d last");
static_assert(offsetof(mp_block_q2_K, d) == 80, "q2_K d, dmin last");
static_assert(offsetof(mp_block_q3_K, d) == 108, "q3_K d last");
static_assert(offsetof(mp_block_iq4_xs, qs) == 8, "iq4_xs qs after the scales");

const int8_t mp_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t mp_kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
static_assert(offsetof(mp_block_q5_K, qs) == 48, "q5_K qs after qh");

#define MP_GROUP_MAX_EPS 1e-15f

static inline float h2f(uint16_t h) { return mp_fp16_to_fp32(h); }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- dequantise */

static void dq_q4_0(const mp_block_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;      /* low nibbles: elements 0..15 */
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;  /* high nibbles: 16..31 */
        }
    }
}

/* The 5-bit value of element j (0..31) of a Q5_0/Q5_1 block: nibble | qh bit j << 4. */
static inline int q5_val(const uint8_t *qs, const uint8_t *qh4, int j)
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
    return lo | (int)((qh >> j) & 1) << 4;
}

static void dq_q5_0(const mp_block_q5_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)(q5_val(b[i].qs, b[i].qh, j) - 16) * d;
    }
}

/* ggml's dequantize_row_q5_1: x*d + m, the product rounded before the add
 * (ggml-base is built without FMA) */
static void dq_q5_1(const mp_block_q5_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < 32; j++) y[j] = mp_mul_nofma((float)q5_val(b[i].qs, b[i].qh, j), d) + m;
    }
}

/* Q8_1 as Q8_0 (s is a by-product: d * sum(qs), for Q5_1's min term) */
static void dq_q8_1(const mp_block_q8_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

static void dq_q8_0(const mp_block_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

/* One super-block of Q4_K or Q5_K: the same layout but for Q5_K's qh, the
 * fifth bit of every element (NULL for Q4_K). 256 values into y. */
static void dq_k4_block(uint16_t dh, uint16_t dminh, const uint8_t *scales, const uint8_t *ql, const uint8_t *qh,
                        float *y)
{
    const float d = h2f(dh), dmin = h2f(dminh);
    for (int c = 0; c < 4; c++, ql += 32) { /* 64 elements per 32 qs bytes */
        uint8_t sc, m;
        mp_k4_scale_min(2 * c, scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        mp_k4_scale_min(2 * c + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
    }
}

static void dq_q4_K(const mp_block_q4_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 256) dq_k4_block(b[i].d, b[i].dmin, b[i].scales, b[i].qs, NULL, y);
}

static void dq_q5_K(const mp_block_q5_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 256) dq_k4_block(b[i].d, b[i].dmin, b[i].scales, b[i].qs, b[i].qh, y);
}

static void dq_q6_K(const mp_block_q6_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int s = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[s] * q1;
                y[l + 32] = d * sc[s + 2] * q2;
                y[l + 64] = d * sc[s + 4] * q3;
                y[l + 96] = d * sc[s + 6] * q4;
            }
        }
    }
}

/* Q2_K: element e of a block lies in sub-block e/16, at bits 2*((e%128)/32)
 * of qs[32*(e/128) + e%32]. */
static void dq_q2_K(const mp_block_q2_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int e = 0; e < 256; e++) {
            const uint8_t sc = b[i].scales[e / 16];
            const int q = (b[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
            *y++ = dl * q - ml;
        }
    }
}

/* Signed 6-bit scale j (0..15) of a Q3_K block, -32..31. */
static inline int q3_K_scale(const uint8_t *sc, int j)
{
    const int lo = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
    const int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* Q3_K element e: Q2_K's two low bits, minus 4 unless bit e/32 of hmask[e%32] is set. */
static inline int q3_K_q(const mp_block_q3_K *b, int e)
{
    const int lo = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    return lo - ((b->hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
}

static void dq_q3_K(const mp_block_q3_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d);
        for (int e = 0; e < 256; e++) {
            const float dl = d * q3_K_scale(b[i].scales, e / 16);
            *y++ = dl * q3_K_q(&b[i], e);
        }
    }
}

static void dq_iq4_nl(const mp_block_iq4_nl *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * mp_kvalues_iq4nl[b[i].qs[j] & 0xF];
            y[j + 16] = d * mp_kvalues_iq4nl[b[i].qs[j] >> 4];
        }
    }
}

static void dq_mxfp4(const mp_block_mxfp4 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = mp_e8m0_half(b[i].e);
        for (int j = 0; j < 16; j++) {
            y[j] = mp_kvalues_mxfp4[b[i].qs[j] & 0xF] * d;
            y[j + 16] = mp_kvalues_mxfp4[b[i].qs[j] >> 4] * d;
        }
    }
}

/* Signed 6-bit scale of IQ4_XS sub-block ib (0..7), -32..31. */
static inline int iq4_xs_scale(const mp_block_iq4_xs *b, int ib)
{
    return (((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((b->scales_h >> 2 * ib) & 3) << 4)) - 32;
}

static void dq_iq4_xs(const mp_block_iq4_xs *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            const float dl = d * iq4_xs_scale(&b[i], ib);
            const uint8_t *qs = b[i].qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * mp_kvalues_iq4nl[qs[j] & 0xF];
                y[j + 16] = dl * mp_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

static void dq_q8_K(const mp_block_q8_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < 256; j++) *y++ = b[i].d * b[i].qs[j];
}

int mp_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const mp_type_info *ti = mp_type_get(type);
    if (ti->blck_size == 0 || n < 0 || n % ti->blck_size) return MP_E_UNSUPPORTED;
    const int64_t nb = n / ti->blck_size;
    switch (type) {
    case MP_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return MP_OK;
    case MP_TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = mp_fp16_to_fp32(h[i]);
        return MP_OK;
    }
    case MP_TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = mp_bf16_to_fp32(h[i]);
        return MP_OK;
    }
    case MP_TYPE_Q4_0: dq_q4_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q8_0: dq_q8_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q4_K: dq_q4_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_K: dq_q5_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q6_K: dq_q6_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q8_K: dq_q8_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q2_K: dq_q2_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q3_K: dq_q3_K(src, dst, nb); return MP_OK;
    case MP_TYPE_IQ4_NL: dq_iq4_nl(src, dst, nb); return MP_OK;
    case MP_TYPE_IQ4_XS: dq_iq4_xs(src, dst, nb); return MP_OK;
    case MP_TYPE_MXFP4: dq_mxfp4(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_0: dq_q5_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_1: dq_q5_1(src, dst, nb); return MP_OK;
    case MP_TYPE_Q8_1: dq_q8_1(src, dst, nb); return MP_OK;
    default: return MP_E_UNSUPPORTED;
    }
}

/* ------------------------------------------------------------------ quantise */

static void q_q4_0(const float *x, mp_block_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest |x| */
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            const int a = imin(15, (int8_t)(x[j] * id + 8.5f));
            const int b = imin(15, (int8_t)(x[j + 16] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* ggml's quantize_row_q5_0_ref: d = max / -16 (max the signed value of
 * largest magnitude), q = min(31, (int8_t)(x/d + 16.5)) (truncation). */
static void q_q5_0(const float *x, mp_block_q5_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t a = (uint8_t)imin(31, (int8_t)(mp_mul_nofma(x[j], id) + 16.5f));
            const uint8_t b = (uint8_t)imin(31, (int8_t)(mp_mul_nofma(x[j + 16], id) + 16.5f));
            y[i].qs[j] = (uint8_t)((a & 0xF) | (b & 0xF) << 4);
            qh |= (uint32_t)(a >> 4 & 1) << j | (uint32_t)(b >> 4 & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

/* ggml's quantize_row_q5_1_ref: d = (max - min) / 31, m = min,
 * q = (uint8_t)((x - min)/d + 0.5). */
static void q_q5_1(const float *x, mp_block_q5_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        y[i].m = mp_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t a = (uint8_t)(mp_mul_nofma(x[j] - min, id) + 0.5f);
            const uint8_t b = (uint8_t)(mp_mul_nofma(x[j + 16] - min, id) + 0.5f);
            y[i].qs[j] = (uint8_t)((a & 0xF) | (b & 0xF) << 4);
            qh |= (uint32_t)(a >> 4 & 1) << j | (uint32_t)(b >> 4 & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void q_q8_0(const float *x, mp_block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* ggml's make_qkx2_quants: an asymmetric (scale, min) fit of n values to
 * 0..nmax, starting from the min/max fit and trying nstep+1 rescaled grids,
 * keeping the one with the least weighted squared error (weighted absolute
 * error with use_mad, as Q2_K asks). Returns the scale; *the_min receives
 * -min (>= 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)imax(0, imin(nmax, mp_nearest_int(iscale * (x[i] - min))));
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(0, imin(nmax, mp_nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
            }
            if (err < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml's make_qx_quants with rmse_type 1 (weights x^2), no importance: a
 * symmetric scale for n values to -nmax..nmax-1 (stored +nmax in L), trying
 * 19 rescaled grids around nmax / max. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < MP_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, mp_nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, mp_nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, mp_nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Shared by Q4_K and Q5_K: per 32-element sub-block (scale, min) fits, their
 * 6-bit packing into scales[12], the fp16 super-scales, and the final levels
 * L[256] in 0..nmax against the quantised scales. */
static void k4_fit_block(const float *x, int nmax, float rmin, int nstep, uint8_t scales_out[12],
                         uint16_t *d_out, uint16_t *dmin_out, uint8_t L[256])
{
    float mins[8], scales[8], weights[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                  0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)mp_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)mp_nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) { /* bytes 0..3: scales 0..3, bytes 4..7: mins 0..3 (6 bits each) */
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {     /* bytes 8..11: low 4 bits of scale|min 4..7; top 2 bits in bytes 0..7 */
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = mp_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = mp_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        mp_k4_scale_min(j, scales_out, &sc, &m);
        const float d = h2f(*d_out) * sc;
        if (!d) continue;
        const float dm = h2f(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, mp_nearest_int((x[32 * j + ii] + dm) / d)));
    }
}

static void q_q4_K(const float *x, mp_block_q4_K *y, int64_t nb)
{
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        k4_fit_block(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + l + 32] << 4));
    }
}

static void q_q5_K(const float *x, mp_block_q5_K *y, int64_t nb)
{
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        k4_fit_block(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        memset(y[i].qh, 0, 32);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int a = L[64 * c + l], b = L[64 * c + l + 32];
                /* bit 2c of qh[l] is bit 4 of element 64c+l; bit 2c+1 of element 64c+32+l */
                y[i].qh[l] |= (uint8_t)(((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1)));
                y[i].qs[32 * c + l] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            }
        }
    }
}

static void q_q6_K(const float *x, mp_block_q6_K *y, int64_t nb)
{
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = fit_scale_sym(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < MP_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = mp_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)imin(127, mp_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, mp_nearest_int(x[16 * j + ii] / d))) + 32);
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
            const int8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

/* 2-bit fields of 256 levels (0..3) into qs[64]: element e at bits
 * 2*((e%128)/32) of qs[32*(e/128) + e%32] (Q2_K and Q3_K). */
static void pack_2bit(const uint8_t *L, uint8_t qs[64])
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *Lh = L + 128 * h;
            qs[32 * h + l] = (uint8_t)(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
        }
}

/* quantize_row_q2_K_ref: per 16-element sub-block an asymmetric fit to
 * 0..3 (weights |x|, absolute error), scales and mins to 4 bits against
 * fp16 super-scales, then the levels against the quantised scales. */
static void q_q2_K(const float *x, mp_block_q2_K *y, int64_t nb)
{
    uint8_t L[256], Laux[16];
    float weights[16], mins[16], scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)mp_nearest_int(iscale * scales[j]);
            y[i].d = mp_fp32_to_fp16(max_scale / 15.f);
        } else {
            memset(y[i].scales, 0, 16);
            y[i].d = mp_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)(mp_nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = mp_fp32_to_fp16(max_min / 15.f);
        } else {
            y[i].dmin = mp_fp32_to_fp16(0.f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = h2f(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, mp_nearest_int((x[16 * j + ii] + dm) / d)));
        }
        pack_2bit(L, y[i].qs);
    }
}

/* ggml's make_q3_quants with do_rmse: a symmetric fit of n values to
 * -nmax..nmax-1 (stored +nmax in L), then up to 5 passes moving single
 * levels while the weighted (x^2) fit improves. Returns the scale. */
static float fit_scale_q3(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < MP_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, mp_nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                const int new_l = imax(-nmax, imin(nmax - 1, mp_nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* quantize_row_q3_K_ref: per 16-element sub-block a symmetric fit to -4..3,
 * scales to signed 6 bits against an fp16 super-scale, then the levels. */
static void q_q3_K(const float *x, mp_block_q3_K *y, int64_t nb)
{
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = imax(-32, imin(31, (int8_t)mp_nearest_int(iscale * scales[j]))) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = mp_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = mp_fp32_to_fp16(0.f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[i].d) * q3_K_scale(y[i].scales, j);
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(imax(-4, imin(3, mp_nearest_int(x[16 * j + ii] / d))) + 4);
        }
        /* third bit of element e at bit e/32 of hmask[e%32]; the low two bits stay in L */
        memset(y[i].hmask, 0, 32);
        uint8_t Lu[256];
        for (int e = 0; e < 256; e++) {
            int l = L[e];
            if (l > 3) {
                y[i].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
                l -= 4;
            }
            Lu[e] = (uint8_t)l;
        }
        pack_2bit(Lu, y[i].qs);
    }
}

/* ggml's best_index_int8: the index of the level of val[16] (ascending)
 * nearest x, ties to the lower one. */
static int iq4_nearest(float x)
{
    const int8_t *val = mp_kvalues_iq4nl;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < val[mid]) hi = mid;
        else lo = mid;
    }
    return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

/* ggml's quantize_row_iq4_nl_impl without importance weights (w = x^2) for
 * one super-block of nsub 32-element sub-blocks: per sub-block a scale
 * from the largest |x| mapped to level -127, refined over the 2*ntry+1
 * grids (itry + kvalues[0]) / max (none when ntry < 0). With nsub 1 (IQ4_NL)
 * *d_out is that scale; with nsub 8 (IQ4_XS) the scales become signed 6-bit
 * multiples of d = -max_scale/32 and the levels are re-picked against them.
 * qs receives the 4-bit indices (low nibbles elements 0..15 of each 32). */
static void iq4_fit(const float *x, int nsub, int ntry, uint16_t *d_out, uint16_t *scales_h, uint8_t *scales_l,
                    uint8_t *qs)
{
    const int8_t *values = mp_kvalues_iq4nl;
    uint8_t L[256] = {0}; /* an all-zero IQ4_NL block keeps index 0 (ggml: the previous block's) */
    float scales[8], weight[32];
    memset(qs, 0, (size_t)nsub * 16);
    *d_out = mp_fp32_to_fp16(0.f);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < nsub; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        for (int j = 0; j < 32; j++) weight[j] = xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < MP_GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = ntry > 0 ? -max / values[0] : max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_nearest(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = values[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; itry++) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                const float q = values[iq4_nearest(id * xb[j])], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (nsub > 1) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        *d_out = mp_fp32_to_fp16(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nsub; ib++) {
            int l = imax(-32, imin(31, mp_nearest_int(id * scales[ib])));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_nearest(idl * x[32 * ib + j]);
            l += 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xF);
            else scales_l[ib / 2] |= (uint8_t)((l & 0xF) << 4);
            *scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
    } else {
        *d_out = mp_fp32_to_fp16(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_nearest(id * x[j]);
        }
    }
    for (int ib = 0; ib < nsub; ib++)
        for (int j = 0; j < 16; j++) qs[16 * ib + j] = (uint8_t)(L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
}

static void q_iq4_nl(const float *x, mp_block_iq4_nl *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) iq4_fit(x, 1, -1, &y[i].d, NULL, NULL, y[i].qs);
}

static void q_iq4_xs(const float *x, mp_block_iq4_xs *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 256) iq4_fit(x, 8, 7, &y[i].d, &y[i].scales_h, y[i].scales_l, y[i].qs);
}

/* ggml's quantize_row_mxfp4_ref: e = floor(log2(amax)) - 2 + 127 (the
 * largest E2M1 value is 6 = 1.5 * 2^2), each element the nearest of the 16
 * levels (first of equals). ggml converts the exponent float straight to
 * uint8 (undefined outside 0..255); here it is clamped, which gives the same
 * bytes wherever ggml's are defined. */
static void q_mxfp4(const float *x, mp_block_mxfp4 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]);
        int e = 0;
        if (amax > 0) {
            const float ef = floorf(log2f(amax)) - 2 + 127;
            e = ef < 0 ? 0 : ef > 255 ? 255 : (int)ef;
        }
        const float d = mp_e8m0_half((uint8_t)e);
        y[i].e = (uint8_t)e;
        for (int j = 0; j < 16; j++) {
            int idx[2];
            for (int h = 0; h < 2; h++) {
                const float v = x[j + 16 * h];
                int best = 0;
                float best_err = fabsf(mp_mul_nofma((float)mp_kvalues_mxfp4[0], d) - v);
                for (int k = 1; k < 16; k++) {
                    const float err = fabsf(mp_mul_nofma((float)mp_kvalues_mxfp4[k], d) - v);
                    if (err < best_err) {
                        best = k;
                        best_err = err;
                    }
                }
                idx[h] = best;
            }
            y[i].qs[j] = (uint8_t)(idx[0] | idx[1] << 4);
        }
    }
}

void mp_quant_act_q8_K_ref(const float *x, void *xq, int64_t n)
{
    mp_block_q8_K *y = xq;
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        float max = 0, amax = 0; /* first element of largest |x| gives the sign */
        for (int j = 0; j < 256; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) y[i].qs[j] = (int8_t)imin(127, mp_nearest_int(iscale * x[j]));
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[16 * j + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void mp_quant_act_q8_0_ref(const float *x, void *xq, int64_t n)
{
    mp_block_q8_0 *y = xq;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        for (int j = 0; j < 32; j++) {
            int v = mp_nearest_int(x[j] * id);
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
    }
}

/* ggml-cpu's x86 quantize_row_q8_1 (Q5_1's activations): Q8_0's d and
 * rounding, plus s = fp16(d * (float)sum(q)). */
void mp_quant_act_q8_1_ref(const float *x, void *xq, int64_t n)
{
    mp_block_q8_1 *y = xq;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            /* the int32 before the saturating pack goes into the sum, as in ggml */
            const int v = mp_nearest_int(x[j] * id);
            sum += v;
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
        y[i].s = mp_fp32_to_fp16(d * (float)sum);
    }
}

static void act_f32(const float *x, void *xq, int64_t n) { memcpy(xq, x, (size_t)n * 4); }

static void act_f16(const float *x, void *xq, int64_t n)
{
    uint16_t *h = xq;
    for (int64_t i = 0; i < n; i++) h[i] = mp_fp32_to_fp16(x[i]);
}

static void act_bf16(const float *x, void *xq, int64_t n)
{
    uint16_t *h = xq;
    for (int64_t i = 0; i < n; i++) h[i] = mp_fp32_to_bf16(x[i]);
}

int mp_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n)
{
    const mp_type_info *ti = mp_type_get(type);
    if (ti->blck_size == 0 || n < 0 || n % ti->blck_size) return MP_E_UNSUPPORTED;
    const int64_t nb = n / ti->blck_size;
    switch (type) {
    case MP_TYPE_F32: act_f32(src, dst, n); return MP_OK;
    case MP_TYPE_F16: act_f16(src, dst, n); return MP_OK;
    case MP_TYPE_BF16: act_bf16(src, dst, n); return MP_OK;
    case MP_TYPE_Q4_0: q_q4_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q8_0: q_q8_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q4_K: q_q4_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_K: q_q5_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q6_K: q_q6_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q8_K: mp_quant_act_q8_K_ref(src, dst, n); return MP_OK;
    case MP_TYPE_Q2_K: q_q2_K(src, dst, nb); return MP_OK;
    case MP_TYPE_Q3_K: q_q3_K(src, dst, nb); return MP_OK;
    case MP_TYPE_IQ4_NL: q_iq4_nl(src, dst, nb); return MP_OK;
    case MP_TYPE_IQ4_XS: q_iq4_xs(src, dst, nb); return MP_OK;
    case MP_TYPE_MXFP4: q_mxfp4(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_0: q_q5_0(src, dst, nb); return MP_OK;
    case MP_TYPE_Q5_1: q_q5_1(src, dst, nb); return MP_OK;
    default: return MP_E_UNSUPPORTED;
    }
}

/* ------------------------------------------------------- scalar dot products
 * Numerics as llama.cpp's: integer dot per block (or sub-block, times its
 * integer scale), then one float multiply-add per block in block order. */

static void dot_f32(int64_t n, float *s, const void *w, const void *xq)
{
    const float *a = w, *b = xq;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)a[i] * b[i];
    *s = (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)mp_fp16_to_fp32(a[i]) * mp_fp16_to_fp32(b[i]);
    *s = (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)mp_bf16_to_fp32(a[i]) * mp_bf16_to_fp32(b[i]);
    *s = (float)sum;
}

static void dot_q8_0(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q8_0 *a = w, *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += a[i].qs[j] * b[i].qs[j];
        sum += (float)sumi * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

static void dot_q4_0(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q4_0 *a = w;
    const mp_block_q8_0 *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        }
        sum += (float)sumi * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

/* ggml's ggml_vec_dot_q5_0_q8_0 order: sum += (x.d * y.d) * int per block */
static void dot_q5_0(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_0 *a = w;
    const mp_block_q8_0 *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += (q5_val(a[i].qs, a[i].qh, j) - 16) * b[i].qs[j];
        sum += (float)sumi * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

/* Q5_1 x Q8_1: sum += (x.d * y.d) * int + x.m * y.s per block (y.s = y.d * sum(y.q)) */
static void dot_q5_1(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_1 *a = w;
    const mp_block_q8_1 *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += q5_val(a[i].qs, a[i].qh, j) * b[i].qs[j];
        sum += (float)sumi * (h2f(a[i].d) * h2f(b[i].d)) + h2f(a[i].m) * h2f(b[i].s);
    }
    *s = sum;
}

/* Q4_K / Q5_K: sum = d * y.d * sum_j sc_j * dot(q_j, y_j) - dmin * y.d * sum_j m_j * ysum_j,
 * where ysum_j (32 elements) is the sum of two Q8_K bsums. */
/* One super-block of Q4_K or Q5_K (qh NULL for Q4_K) against a Q8_K block. */
static float dot_k4_block(uint16_t dh, uint16_t dminh, const uint8_t *scales, const uint8_t *qs, const uint8_t *qh,
                          const mp_block_q8_K *b)
{
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        mp_k4_scale_min(j, scales, &sc, &m);
        const uint8_t *q = qs + 32 * (j / 2);
        const int8_t *y = b->qs + 32 * j;
        const int shift = (j & 1) * 4;
        int dot = 0;
        for (int l = 0; l < 32; l++) dot += (((q[l] >> shift) & 0xF) | (qh ? ((qh[l] >> j) & 1) << 4 : 0)) * y[l];
        sumi += sc * dot;
        summ += m * (b->bsums[2 * j] + b->bsums[2 * j + 1]);
    }
    return b->d * h2f(dh) * (float)sumi - b->d * h2f(dminh) * (float)summ;
}

static void dot_q4_K(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q4_K *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) sum += dot_k4_block(a[i].d, a[i].dmin, a[i].scales, a[i].qs, NULL, &b[i]);
    *s = sum;
}

static void dot_q5_K(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_K *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) sum += dot_k4_block(a[i].d, a[i].dmin, a[i].scales, a[i].qs, a[i].qh, &b[i]);
    *s = sum;
}

static void dot_q6_K(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q6_K *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumi = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *sc = a[i].scales + 8 * h, *y = b[i].qs + 128 * h;
            for (int g = 0; g < 8; g++) { /* 16-element groups: quarter g/2, half g&1 */
                const int quarter = g / 2, l0 = 16 * (g & 1);
                int dot = 0;
                for (int l = l0; l < l0 + 16; l++) {
                    const int lo = quarter & 1 ? ql[l + 32] : ql[l];
                    const int q = ((quarter < 2 ? lo & 0xF : lo >> 4) | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
                    dot += q * y[32 * quarter + l];
                }
                sumi += sc[2 * quarter + (g & 1)] * dot;
            }
        }
        sum += b[i].d * h2f(a[i].d) * (float)sumi;
    }
    *s = sum;
}

/* Q2_K: d * y.d * sum_j sc_j * dot(q_j, y_j) - dmin * y.d * sum_j m_j * bsum_j
 * over the 16 sub-blocks of 16 (bsum_j: the Q8_K sum of sub-block j). */
static void dot_q2_K(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q2_K *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 16; j++) {
            const int base = 32 * (j / 8) + 16 * (j & 1), shift = 2 * ((j % 8) / 2);
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += ((a[i].qs[base + l] >> shift) & 3) * b[i].qs[16 * j + l];
            sumi += (a[i].scales[j] & 0xF) * dot;
            summ += (a[i].scales[j] >> 4) * b[i].bsums[j];
        }
        sum += b[i].d * h2f(a[i].d) * (float)sumi - b[i].d * h2f(a[i].dmin) * (float)summ;
    }
    *s = sum;
}

static void dot_q3_K(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q3_K *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += q3_K_q(&a[i], 16 * j + l) * b[i].qs[16 * j + l];
            sumi += q3_K_scale(a[i].scales, j) * dot;
        }
        sum += b[i].d * h2f(a[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_iq4_nl(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_iq4_nl *a = w;
    const mp_block_q8_0 *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += mp_kvalues_iq4nl[a[i].qs[j] & 0xF] * b[i].qs[j];
            sumi += mp_kvalues_iq4nl[a[i].qs[j] >> 4] * b[i].qs[j + 16];
        }
        sum += (float)sumi * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

/* ggml's ggml_vec_dot_mxfp4_q8_0 scalar loop: d = y.d * 2^(e-128), sum += d * int */
static void dot_mxfp4(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_mxfp4 *a = w;
    const mp_block_q8_0 *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += mp_kvalues_mxfp4[a[i].qs[j] & 0xF] * b[i].qs[j];
            sumi += mp_kvalues_mxfp4[a[i].qs[j] >> 4] * b[i].qs[j + 16];
        }
        sum += (h2f(b[i].d) * mp_e8m0_half(a[i].e)) * (float)sumi;
    }
    *s = sum;
}

static void dot_iq4_xs(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_iq4_xs *a = w;
    const mp_block_q8_K *b = xq;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumi = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = a[i].qs + 16 * ib;
            const int8_t *y = b[i].qs + 32 * ib;
            int dot = 0;
            for (int j = 0; j < 16; j++)
                dot += mp_kvalues_iq4nl[qs[j] & 0xF] * y[j] + mp_kvalues_iq4nl[qs[j] >> 4] * y[j + 16];
            sumi += iq4_xs_scale(&a[i], ib) * dot;
        }
        sum += h2f(a[i].d) * b[i].d * (float)sumi;
    }
    *s = sum;
}

void mp_kernels_fill_scalar(mp_kernel_table *t)
{
    t->vec_dot[MP_TYPE_Q2_K] = dot_q2_K;
    t->vec_dot[MP_TYPE_Q3_K] = dot_q3_K;
    t->vec_dot[MP_TYPE_IQ4_NL] = dot_iq4_nl;
    t->vec_dot[MP_TYPE_IQ4_XS] = dot_iq4_xs;
    t->vec_dot[MP_TYPE_MXFP4] = dot_mxfp4;
    t->vec_dot[MP_TYPE_Q5_0] = dot_q5_0;
    t->vec_dot[MP_TYPE_Q5_1] = dot_q5_1;
    t->vec_dot[MP_TYPE_F32] = dot_f32;
    t->vec_dot[MP_TYPE_F16] = dot_f16;
    t->vec_dot[MP_TYPE_BF16] = dot_bf16;
    t->vec_dot[MP_TYPE_Q8_0] = dot_q8_0;
    t->vec_dot[MP_TYPE_Q4_0] = dot_q4_0;
    t->vec_dot[MP_TYPE_Q4_K] = dot_q4_K;
    t->vec_dot[MP_TYPE_Q5_K] = dot_q5_K;
    t->vec_dot[MP_TYPE_Q6_K] = dot_q6_K;
    t->quant_act[MP_TYPE_F32] = act_f32;
    t->quant_act[MP_TYPE_F16] = act_f16;
    t->quant_act[MP_TYPE_BF16] = act_bf16;
    t->quant_act[MP_TYPE_Q8_0] = mp_quant_act_q8_0_ref;
    t->quant_act[MP_TYPE_Q8_K] = mp_quant_act_q8_K_ref;
    t->quant_act[MP_TYPE_Q8_1] = mp_quant_act_q8_1_ref;
}
