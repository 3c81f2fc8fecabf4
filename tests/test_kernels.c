/* Kernel tests: known-answer tests that pin each block layout, quantise ->
 * dequantise error bounds, every ISA's vec_dot / quantize_act against the
 * scalar reference on random blocks, and mp_matmul_rows against a naive loop.
 * The SIMD comparisons run once per ISA this CPU and build have. */
#include "kernels/kernels.h"
#include "moepager/status.h"
#include "helpers/test_util.h"
#include "mp_test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Tolerances, relative to sum_i |w_i * x_i| of the dot being checked. */
#define TOL_INT_DOT 1e-5   /* integer block dots: only the float block accumulation order differs */
#define TOL_FLOAT_DOT 1e-5 /* F32/F16/BF16 dots: float vs double accumulation */

static mp_test_rng rng = {0x9e3779b97f4a7c15ull};
#define k_types mp_test_weight_types
#define N_TYPES MP_TEST_N_WEIGHT_TYPES


/* ------------------------------------------------------------ known answers */

static void test_kat_q4_0(void)
{
    mp_block_q4_0 b;
    b.d = 0x3800; /* 0.5 */
    memset(b.qs, 0x88, sizeof b.qs);
    b.qs[0] = 0x1F; /* low nibble 15 -> element 0, high nibble 1 -> element 16 */
    b.qs[5] = 0x80; /* low 0 -> element 5 */
    float y[32];
    CHECK(mp_dequantize_row(MP_TYPE_Q4_0, &b, y, 32) == MP_OK);
    CHECK(y[0] == 3.5f);
    CHECK(y[16] == -3.5f);
    CHECK(y[5] == -4.0f);
    CHECK(y[21] == 0.0f);
    CHECK(y[1] == 0.0f);

    /* quantise: the signed max (-16) sets d = max / -8 = 2; q = x/d + 8 */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    CHECK(mp_quantize_row_ref(MP_TYPE_Q4_0, x, &b, 32) == MP_OK);
    CHECK(b.d == 0x4000); /* 2.0 */
    CHECK((b.qs[0] & 0xF) == 0);        /* -16 / 2 + 8 */
    CHECK((b.qs[0] >> 4) == 8);         /* element 16: 0 */
    CHECK((b.qs[15] >> 4) == 15);       /* element 31: 15/2+8.5 = 16 -> clamped 15 */
}

static void test_kat_q8_0(void)
{
    mp_block_q8_0 b;
    b.d = 0x3C00; /* 1.0 */
    for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j * 7 - 100);
    float y[32];
    CHECK(mp_dequantize_row(MP_TYPE_Q8_0, &b, y, 32) == MP_OK);
    for (int j = 0; j < 32; j++) CHECK(y[j] == (float)(j * 7 - 100));
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 8) * 0.5f;
    CHECK(mp_quantize_row_ref(MP_TYPE_Q8_0, x, &b, 32) == MP_OK);
    CHECK(b.qs[31] == 127);
    CHECK(b.qs[8] == 0);
    CHECK(b.d == mp_fp32_to_fp16(11.5f / 127));
}

static void set_k4_scales(uint8_t s[12])
{
    memset(s, 0, 12);
    s[0] = 0xC1; /* scale0 = 1; top bits 3 -> bits 4..5 of scale4 */
    s[4] = 0x82; /* min0 = 2; top bits 2 -> bits 4..5 of min4 */
    s[8] = 0x5A; /* scale4 low = 0xA, min4 low = 5 -> scale4 = 58, min4 = 37 */
    s[1] = 0x02; /* scale1 = 2, min1 = 0 */
}

static void test_kat_q4_K(void)
{
    mp_block_q4_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    set_k4_scales(b.scales);
    b.qs[0] = 0x73;  /* element 0 (sub-block 0) = 3, element 32 (sub-block 1) = 7 */
    b.qs[64] = 0x05; /* element 128 (sub-block 4) = 5 */
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q4_K, &b, y, 256) == MP_OK);
    CHECK(y[0] == 1 * 3 - 0.5f * 2);
    CHECK(y[1] == -1.0f);
    CHECK(y[32] == 2 * 7);
    CHECK(y[128] == 58 * 5 - 0.5f * 37);
    CHECK(y[129] == -0.5f * 37);
    CHECK(y[160] == 0.0f);
}

static void test_kat_q5_K(void)
{
    mp_block_q5_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;
    b.dmin = 0x3800;
    set_k4_scales(b.scales);
    b.qs[0] = 0x73;
    b.qs[64] = 0x05;
    b.qs[1] = 0x40;
    b.qh[0] = 0x11; /* bit 0: element 0 += 16; bit 4: element 128 += 16 */
    b.qh[1] = 0x02; /* bit 1: element 33 += 16 */
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q5_K, &b, y, 256) == MP_OK);
    CHECK(y[0] == (3 + 16) - 0.5f * 2);
    CHECK(y[32] == 2 * 7);
    CHECK(y[33] == 2 * (4 + 16));
    CHECK(y[1] == -1.0f);
    CHECK(y[128] == 58 * (5 + 16) - 0.5f * 37);
}

static void test_kat_q6_K(void)
{
    mp_block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;
    for (int g = 0; g < 16; g++) b.scales[g] = (int8_t)(g + 1);
    b.scales[3] = -2;
    b.ql[0] = 0x21;  /* low 1 -> element 0, high 2 -> element 64 */
    b.qh[0] = 0xE4;  /* 2-bit fields: element 0: 0, element 32: 1, element 64: 2, element 96: 3 */
    b.ql[32] = 0x53; /* low 3 -> element 32, high 5 -> element 96 */
    b.ql[81] = 0x0F; /* second half, l = 17: element 145 */
    b.qh[49] = 0x03;
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q6_K, &b, y, 256) == MP_OK);
    CHECK(y[0] == 1 * (1 - 32));
    CHECK(y[64] == 5 * ((2 | 2 << 4) - 32));
    CHECK(y[32] == 3 * ((3 | 1 << 4) - 32));
    CHECK(y[96] == 7 * ((5 | 3 << 4) - 32));
    CHECK(y[145] == 10 * 31);
    CHECK(y[48] == -2 * -32);
    CHECK(y[16] == 2 * -32);
}

static void test_kat_q2_K(void)
{
    mp_block_q2_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    b.scales[0] = 0x21; /* sub-block 0: scale 1, min 2 */
    b.scales[5] = 0x13; /* sub-block 5: scale 3, min 1 */
    b.scales[9] = 0x04; /* sub-block 9: scale 4, min 0 */
    b.qs[0] = 0x03;  /* element 0: bits 0-1 of qs[0] = 3 */
    b.qs[16] = 0x20; /* element 80 = 64 + 16: bits 4-5 of qs[16] = 2 */
    b.qs[54] = 0x01; /* element 150 = 128 + 22: bits 0-1 of qs[32 + 22] = 1 */
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q2_K, &b, y, 256) == MP_OK);
    CHECK(y[0] == 1 * 3 - 0.5f * 2);
    CHECK(y[1] == -1.0f);
    CHECK(y[80] == 3 * 2 - 0.5f * 1);
    CHECK(y[81] == -0.5f);
    CHECK(y[150] == 4 * 1);
    CHECK(y[16] == 0.0f);
    /* the dot: q . y - min terms; y = 1 everywhere (Q8_K d 1, bsums 16) */
    static mp_block_q8_K x;
    x.d = 1.f;
    memset(x.qs, 1, 256);
    for (int j = 0; j < 16; j++) x.bsums[j] = 16;
    float s = 0, want = 0;
    for (int i = 0; i < 256; i++) want += y[i];
    mp_get_vec_dot_isa(MP_TYPE_Q2_K, MP_ISA_SCALAR)(256, &s, &b, &x);
    CHECK(s == want);
}

static void test_kat_q3_K(void)
{
    mp_block_q3_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;
    /* sub-block 0: stored 33 (scale +1): low nibble 1 in scales[0], top bits 2 at bits 0-1 of scales[8];
     * sub-block 9: stored 29 (-3): low nibble 13 in the high nibble of scales[1], top bits 1 at
     * bits 4-5 of scales[9]; every other sub-block stored 0 (-32) */
    b.scales[0] = 0x01;
    b.scales[8] = 0x02;
    b.scales[1] = 0xD0;
    b.scales[9] = 0x10;
    b.qs[0] = 0x03;     /* element 0: low bits 3 */
    b.hmask[0] = 0x01;  /* element 0: high bit set -> q = 3 */
    b.qs[54] = 0x02;    /* element 150: low bits 2 */
    b.hmask[22] = 0x10; /* element 150: bit 150/32 = 4 of hmask[150 % 32] -> q = 2 */
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q3_K, &b, y, 256) == MP_OK);
    CHECK(y[0] == 3.0f);
    CHECK(y[1] == -4.0f);     /* high bit clear: 0 - 4 */
    CHECK(y[16] == 128.0f);   /* sub-block 1: -32 * -4 */
    CHECK(y[150] == -6.0f);
    CHECK(y[151] == 12.0f);
    /* quantise -> dequantise keeps an exactly representable row */
    float x[256], z[256];
    for (int i = 0; i < 256; i++) x[i] = (float)((i * 5) % 8 - 4) * 0.25f;
    CHECK(mp_quantize_row_ref(MP_TYPE_Q3_K, x, &b, 256) == MP_OK);
    CHECK(mp_dequantize_row(MP_TYPE_Q3_K, &b, z, 256) == MP_OK);
    for (int i = 0; i < 256; i++) CHECKF(fabsf(z[i] - x[i]) < 1e-3f, "q3_K %d: %g vs %g", i, z[i], x[i]);
}

static void test_kat_iq4(void)
{
    mp_block_iq4_nl b;
    memset(&b, 0x88, sizeof b);
    b.d = 0x3800;   /* 0.5 */
    b.qs[0] = 0xF0; /* element 0: level 0 (-127), element 16: level 15 (113) */
    b.qs[3] = 0x98; /* element 3: level 8 (1), element 19: level 9 (13) */
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_IQ4_NL, &b, y, 32) == MP_OK);
    CHECK(y[0] == -63.5f && y[16] == 56.5f && y[3] == 0.5f && y[19] == 6.5f && y[1] == 0.5f);
    /* a row of the levels themselves quantises exactly (d = max / -127 = 1) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = mp_kvalues_iq4nl[(j * 7) % 16];
    CHECK(mp_quantize_row_ref(MP_TYPE_IQ4_NL, x, &b, 32) == MP_OK);
    CHECK(b.d == 0x3C00);
    CHECK(mp_dequantize_row(MP_TYPE_IQ4_NL, &b, y, 32) == MP_OK);
    for (int j = 0; j < 32; j++) CHECK(y[j] == x[j]);

    mp_block_iq4_xs c;
    memset(&c, 0x88, sizeof c);
    c.d = 0x3C00;
    /* sub-block 0: low nibble 15 (scales_l[0] low), top bits 2 (scales_h bits 0-1): 47 - 32 = 15;
     * sub-block 1: low 1 (scales_l[0] high), top 0: -31; sub-block 7: low 5, top 3: 21 */
    c.scales_l[0] = 0x1F;
    c.scales_l[1] = 0x00; /* sub-blocks 2, 3: stored 0 */
    c.scales_l[3] = 0x50;
    c.scales_h = (uint16_t)(0x2 | (3u << 14));
    c.qs[117] = 0x8F; /* sub-block 7, element 5: level 15 */
    c.qs[17] = 0x08;  /* sub-block 1, element 16 + 1: level 0 */
    CHECK(mp_dequantize_row(MP_TYPE_IQ4_XS, &c, y, 256) == MP_OK);
    CHECK(y[0] == 15.0f);
    CHECK(y[49] == -31.0f * -127);
    CHECK(y[229] == 21.0f * 113);
    CHECK(y[64] == -32.0f); /* sub-block 2: stored 0 -> -32, level 8 (1) */
}

static void test_kat_q5(void)
{
    /* Q5_0 {fp16 d; u8 qh[4]; u8 qs[16]}: element j < 16 is the low nibble of
     * qs[j], j >= 16 the high nibble of qs[j - 16]; its fifth bit is bit j of
     * the little-endian qh; value d * (q - 16) */
    uint8_t b0[22];
    memset(b0, 0, sizeof b0);
    b0[0] = 0x00, b0[1] = 0x38; /* d = 0.5 */
    b0[2] = 0x01;               /* qh bit 0: element 0 */
    b0[5] = 0x80;               /* qh bit 31: element 31 */
    b0[6] = 0x3F;               /* element 0: nibble 15 | 16 = 31; element 16: nibble 3, bit clear */
    b0[21] = 0xA0;              /* element 15: 0; element 31: 10 | 16 = 26 */
    float y[32];
    CHECK(mp_dequantize_row(MP_TYPE_Q5_0, b0, y, 32) == MP_OK);
    CHECK(y[0] == 7.5f && y[16] == -6.5f && y[15] == -8.0f && y[31] == 5.0f && y[1] == -8.0f);
    /* ggml's rounding: d = max / -16 from the signed extreme; -16 * d is the
     * extreme exactly; q = min(31, (int8_t)(x/d + 16.5)) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 9) - 4.f;
    x[5] = -8.f;
    CHECK(mp_quantize_row_ref(MP_TYPE_Q5_0, x, b0, 32) == MP_OK);
    CHECK(b0[0] == 0x00 && b0[1] == 0x38); /* -8 / -16 = 0.5 */
    CHECK(mp_dequantize_row(MP_TYPE_Q5_0, b0, y, 32) == MP_OK);
    for (int j = 0; j < 32; j++) CHECKF(y[j] == x[j], "q5_0 %d: %g vs %g", j, y[j], x[j]);

    /* Q5_1 {fp16 d, m; u8 qh[4]; u8 qs[16]}: value d * q + m, q in 0..31 */
    uint8_t b1[24];
    memset(b1, 0, sizeof b1);
    b1[0] = 0x00, b1[1] = 0x3C; /* d = 1 */
    b1[2] = 0x00, b1[3] = 0xC0; /* m = -2 */
    b1[6] = 0x01;               /* qh bit 16 (byte 2 of qh): element 16 */
    b1[8] = 0x5F;               /* element 0: 15; element 16: 5 | 16 = 21 */
    CHECK(mp_dequantize_row(MP_TYPE_Q5_1, b1, y, 32) == MP_OK);
    CHECK(y[0] == 13.f && y[16] == 19.f && y[1] == -2.f);
    for (int j = 0; j < 32; j++) x[j] = (float)((j * 7) % 32) * 0.25f - 1.f; /* min -1, max 6.75: d = 0.25 */
    CHECK(mp_quantize_row_ref(MP_TYPE_Q5_1, x, b1, 32) == MP_OK);
    CHECK(mp_dequantize_row(MP_TYPE_Q5_1, b1, y, 32) == MP_OK);
    for (int j = 0; j < 32; j++) CHECKF(y[j] == x[j], "q5_1 %d: %g vs %g", j, y[j], x[j]);

    /* Q8_1 {fp16 d, s; i8 qs[32]}: s = fp16(d * sum q) */
    CHECK(mp_act_type(MP_TYPE_Q5_0) == MP_TYPE_Q8_0 && mp_act_type(MP_TYPE_Q5_1) == MP_TYPE_Q8_1);
    CHECK(mp_row_size(MP_TYPE_Q5_0, 64) == 44 && mp_row_size(MP_TYPE_Q5_1, 64) == 48 &&
          mp_act_row_size(MP_TYPE_Q5_1, 64) == 72);
    for (int j = 0; j < 32; j++) x[j] = j < 31 ? 1.f : 127.f;
    mp_block_q8_1 q;
    mp_quantize_act(MP_TYPE_Q5_1, x, &q, 32);
    CHECK(q.qs[0] == 1 && q.qs[31] == 127 && q.d == mp_fp32_to_fp16(1.f) && q.s == mp_fp32_to_fp16(158.f));
}

static void test_kat_mxfp4(void)
{
    /* e first, then 16 bytes of E2M1 codes: low nibble element j, high j + 16 */
    uint8_t blk[17];
    memset(blk, 0, sizeof blk);
    blk[0] = 128;    /* 2^(128-128) = 1 times the doubled table: E2M1 value * 2 */
    blk[1] = 0x7F;   /* element 0: code 15 (-12), element 16: code 7 (12) */
    blk[4] = 0x19;   /* element 3: code 9 (-1), element 19: code 1 (1) */
    blk[16] = 0x5D;  /* element 15: code 13 (-6), element 31: code 5 (6) */
    float y[64];
    CHECK(mp_dequantize_row(MP_TYPE_MXFP4, blk, y, 32) == MP_OK);
    CHECK(y[0] == -12.f && y[16] == 12.f && y[3] == -1.f && y[19] == 1.f && y[15] == -6.f && y[31] == 6.f);
    CHECK(y[1] == 0.f && y[17] == 0.f);
    blk[0] = 127;    /* 2^-1: the true E2M1 values */
    CHECK(mp_dequantize_row(MP_TYPE_MXFP4, blk, y, 32) == MP_OK);
    CHECK(y[0] == -6.f && y[3] == -0.5f && y[31] == 3.f);
    /* the E8M0 extremes: 0 and 1 are the denormals 2^-128, 2^-127; 255 is 2^127 */
    CHECK(mp_e8m0_half(0) == 0x1p-128f && mp_e8m0_half(1) == 0x1p-127f && mp_e8m0_half(2) == 0x1p-126f);
    CHECK(mp_e8m0_half(255) == 0x1p127f && mp_e8m0_half(130) == 4.f);
    CHECK(mp_row_size(MP_TYPE_MXFP4, 64) == 34);

    /* quantise: amax 6 -> e = floor(log2 6) - 2 + 127 = 127 (scale 2^-1), so the
     * E2M1 values themselves are exact; 2.5 sits between 2 and 3 and takes the
     * first of equal errors (code 4 = 2) */
    float x[32];
    static const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int j = 0; j < 32; j++) x[j] = (j & 1 ? -1.f : 1.f) * e2m1[(j * 3) % 8];
    x[5] = 6.f;
    CHECK(mp_quantize_row_ref(MP_TYPE_MXFP4, x, blk, 32) == MP_OK);
    CHECK(blk[0] == 127);
    CHECK(mp_dequantize_row(MP_TYPE_MXFP4, blk, y, 32) == MP_OK);
    for (int j = 0; j < 32; j++) CHECKF(y[j] == x[j], "mxfp4 %d: %g vs %g", j, y[j], x[j]);
    x[2] = 2.5f;
    CHECK(mp_quantize_row_ref(MP_TYPE_MXFP4, x, blk, 32) == MP_OK);
    CHECK((blk[1 + 2] & 0xF) == 4);
    /* a scaled row: amax 100 -> e = 6 - 2 + 127 = 131 (step 2^3 on the doubled table) */
    for (int j = 0; j < 32; j++) x[j] = 0;
    x[0] = 100.f;
    x[20] = -17.f; /* nearest of -16, -24 (8 * {-2, -3}) is -16: code 10 */
    CHECK(mp_quantize_row_ref(MP_TYPE_MXFP4, x, blk, 32) == MP_OK);
    CHECK(blk[0] == 131 && (blk[1] & 0xF) == 7 && (blk[1 + 4] >> 4) == 10);

    /* the scalar dot: one block against Q8_0 (d = 0.5): sum_j w_j * q_j * d */
    mp_block_q8_0 a;
    a.d = 0x3800;
    for (int j = 0; j < 32; j++) a.qs[j] = (int8_t)(j - 16);
    CHECK(mp_dequantize_row(MP_TYPE_MXFP4, blk, y, 32) == MP_OK);
    double want = 0;
    for (int j = 0; j < 32; j++) want += (double)y[j] * (j - 16) * 0.5;
    for (int isa = MP_ISA_SCALAR; isa <= MP_ISA_AVX512; isa++) {
        const mp_vec_dot_fn dot = mp_get_vec_dot_isa(MP_TYPE_MXFP4, (mp_isa)isa);
        if (!dot) continue;
        float s = 0;
        dot(32, &s, blk, &a);
        CHECKF(s == (float)want, "mxfp4 %s dot %g vs %g", mp_isa_name((mp_isa)isa), s, want);
    }
}

static void test_kat_q8_K_and_float(void)
{
    static mp_block_q8_K b;
    b.d = 0.25f;
    for (int j = 0; j < 256; j++) b.qs[j] = (int8_t)(j - 128);
    float y[256];
    CHECK(mp_dequantize_row(MP_TYPE_Q8_K, &b, y, 256) == MP_OK);
    for (int j = 0; j < 256; j++) CHECK(y[j] == 0.25f * (j - 128));

    /* Q8_K quantise: iscale = -127 / max with max the signed largest; bsums are 16-sums */
    float x[256];
    for (int j = 0; j < 256; j++) x[j] = (float)(j % 17) - 8;
    x[3] = -20;
    x[9] = 20; /* tie in |x|: the first (negative) one decides the sign */
    CHECK(mp_quantize_row_ref(MP_TYPE_Q8_K, x, &b, 256) == MP_OK);
    CHECK(fabsf(b.d - 20.f / 127.f) < 1e-6f); /* iscale = -127 / -20 > 0 */
    CHECK(b.qs[3] == -127 && b.qs[9] == 127);
    int s = 0;
    for (int j = 16; j < 32; j++) s += b.qs[j];
    CHECK(b.bsums[1] == s);

    const uint16_t h[4] = {0x3C00, 0xC000, 0x3555, 0x0001};
    float f[4];
    CHECK(mp_dequantize_row(MP_TYPE_F16, h, f, 4) == MP_OK);
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.333251953125f && f[3] == 0x1p-24f);
    const uint16_t bf[2] = {0x3F80, 0xC040};
    CHECK(mp_dequantize_row(MP_TYPE_BF16, bf, f, 2) == MP_OK);
    CHECK(f[0] == 1.0f && f[1] == -3.0f);
    CHECK(mp_dequantize_row(MP_TYPE_Q4_1, h, f, 32) == MP_E_UNSUPPORTED);
    CHECK(mp_dequantize_row(MP_TYPE_Q4_0, h, f, 31) == MP_E_UNSUPPORTED);
}

/* ------------------------------------------------------ round-trip bounds */

static void test_roundtrip(void)
{
    static const struct { uint32_t type; double max_rel_rmse; } cases[] = {
        {MP_TYPE_F16, 4e-4},  {MP_TYPE_BF16, 3e-3}, {MP_TYPE_Q8_0, 8e-3}, {MP_TYPE_Q8_K, 0.012},
        {MP_TYPE_Q4_0, 0.11}, {MP_TYPE_Q4_K, 0.09}, {MP_TYPE_Q5_K, 0.05}, {MP_TYPE_Q6_K, 0.025},
        {MP_TYPE_Q2_K, 0.40}, {MP_TYPE_Q3_K, 0.20}, {MP_TYPE_IQ4_NL, 0.12}, {MP_TYPE_IQ4_XS, 0.10},
        {MP_TYPE_MXFP4, 0.20}, {MP_TYPE_Q5_0, 0.06}, {MP_TYPE_Q5_1, 0.05},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++) x[i] = mp_rng_gauss(&rng) * (i % 512 < 256 ? 1.0f : 0.01f);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(mp_quantize_row_ref(cases[c].type, x, q, N) == MP_OK);
        CHECK(mp_dequantize_row(cases[c].type, q, y, N) == MP_OK);
        /* error relative to the rms of each 256-element region (scales differ 100x) */
        double worst = 0;
        for (int r = 0; r < N; r += 256) {
            double e = 0, s = 0;
            for (int i = r; i < r + 256; i++) {
                e += (double)(x[i] - y[i]) * (x[i] - y[i]);
                s += (double)x[i] * x[i];
            }
            const double rel = sqrt(e / s);
            if (rel > worst) worst = rel;
        }
        if (getenv("MP_VERBOSE")) fprintf(stderr, "%s rel rmse %.4g\n", mp_type_name(cases[c].type), worst);
        CHECKF(worst <= cases[c].max_rel_rmse, "%s: relative rmse %.4g > %.4g", mp_type_name(cases[c].type), worst,
               cases[c].max_rel_rmse);
    }
    /* all-zero input stays zero */
    memset(x, 0, sizeof x);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(mp_quantize_row_ref(cases[c].type, x, q, 512) == MP_OK);
        CHECK(mp_dequantize_row(cases[c].type, q, y, 512) == MP_OK);
        for (int i = 0; i < 512; i++) CHECK(y[i] == 0.0f);
    }
}

/* ---------------------------------------------- SIMD vs reference, matmul */

/* A random weight row: quantised Gaussian data, or (odd seeds) random bytes
 * with sane fp16 scales so every bit pattern of the quants is exercised. */
static void make_weights(uint32_t type, int64_t n, void *w, bool raw_bytes)
{
    static float x[8192];
    for (int64_t i = 0; i < n; i++) x[i] = mp_rng_gauss(&rng);
    mp_quantize_row_ref(type, x, w, n);
    if (!raw_bytes || type == MP_TYPE_F32 || type == MP_TYPE_F16 || type == MP_TYPE_BF16) return;
    const mp_type_info *ti = mp_type_get(type);
    uint8_t *p = w;
    const size_t bytes = mp_row_size(type, n);
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)mp_rng_u32(&rng);
    for (int64_t b = 0; b < n / ti->blck_size; b++) {
        uint8_t *blk = p + b * ti->type_size;
        const uint16_t d = mp_fp32_to_fp16(0.001f + mp_rng_unit(&rng) * 0.01f);
        switch (type) {
        case MP_TYPE_Q4_K: case MP_TYPE_Q5_K: case MP_TYPE_Q5_1: /* d, then dmin / m */
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &d, 2);
            break;
        case MP_TYPE_Q6_K: memcpy(blk + 208, &d, 2); break;
        case MP_TYPE_Q2_K:
            memcpy(blk + 80, &d, 2);
            memcpy(blk + 82, &d, 2);
            break;
        case MP_TYPE_Q3_K: memcpy(blk + 108, &d, 2); break;
        case MP_TYPE_MXFP4: blk[0] = (uint8_t)(118 + mp_rng_u32(&rng) % 8); break; /* 2^-10 .. 2^-3 */
        default: memcpy(blk, &d, 2); break;
        }
    }
}

/* sum_i |w_i * x_i| from dequantised rows: the scale of a dot's rounding error. */
static double abs_dot(uint32_t wtype, int64_t n, const void *w, const void *xq)
{
    static float a[8192], b[8192];
    mp_dequantize_row(wtype, w, a, n);
    mp_dequantize_row(mp_act_type(wtype), xq, b, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

static bool is_float_type(uint32_t t) { return t == MP_TYPE_F32 || t == MP_TYPE_F16 || t == MP_TYPE_BF16; }

static void test_simd_vs_ref(mp_isa isa)
{
    static const int64_t sizes_q[] = {256, 512, 1024, 2816, 4096, 8192};
    static const int64_t sizes_small[] = {32, 64, 96, 160};
    static const int64_t sizes_f[] = {1, 7, 16, 33, 100, 255};
    static uint8_t w[8192 * 4], xq[8192 * 4], xq_ref[8192 * 4];
    static float x[8192];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const uint32_t wt = k_types[ti];
        const mp_vec_dot_fn ref = mp_get_vec_dot_isa(wt, MP_ISA_SCALAR), fn = mp_get_vec_dot_isa(wt, isa);
        CHECK(ref && fn);
        if (!ref || !fn) continue;
        int64_t sizes[16];
        int ns = 0;
        for (size_t i = 0; i < sizeof sizes_q / sizeof sizes_q[0]; i++) sizes[ns++] = sizes_q[i];
        if (mp_type_get(wt)->blck_size == 32 || is_float_type(wt))
            for (size_t i = 0; i < 4; i++) sizes[ns++] = sizes_small[i];
        if (is_float_type(wt))
            for (size_t i = 0; i < 6; i++) sizes[ns++] = sizes_f[i];
        for (int si = 0; si < ns; si++) {
            const int64_t n = sizes[si];
            for (int rep = 0; rep < 4; rep++) {
                make_weights(wt, n, w, rep & 1);
                const float amp = rep == 2 ? 1e-3f : rep == 3 ? 50.f : 1.f;
                for (int64_t i = 0; i < n; i++) x[i] = mp_rng_gauss(&rng) * amp;
                if (rep == 3 && n >= 32) { /* an all-zero block and a +-tie block */
                    for (int i = 0; i < 32; i++) x[i] = 0;
                    x[n - 1] = -100.f;
                    x[n - 2] = 100.f;
                }
                CHECK(mp_quantize_act_isa(wt, MP_ISA_SCALAR, x, xq_ref, n) == MP_OK);
                CHECK(mp_quantize_act_isa(wt, isa, x, xq, n) == MP_OK);
                const size_t ab = mp_act_row_size(wt, n);
                CHECKF(memcmp(xq, xq_ref, ab) == 0, "%s quantize_act %s n=%ld rep=%d differs", mp_isa_name(isa),
                       mp_type_name(mp_act_type(wt)), (long)n, rep);
                float s_ref = 0, s = 0;
                ref(n, &s_ref, w, xq_ref);
                fn(n, &s, w, xq_ref);
                const double scale = abs_dot(wt, n, w, xq_ref);
                const double tol = (is_float_type(wt) ? TOL_FLOAT_DOT : TOL_INT_DOT) * scale + 1e-30;
                CHECKF(fabs((double)s - s_ref) <= tol, "%s vec_dot %s n=%ld rep=%d: %.9g vs ref %.9g (tol %.3g)",
                       mp_isa_name(isa), mp_type_name(wt), (long)n, rep, s, s_ref, tol);
                /* the reference dot itself agrees with a double-precision dot of the dequantised rows */
                if (rep == 0 && isa == MP_ISA_SCALAR) {
                    static float a[8192], b[8192];
                    mp_dequantize_row(wt, w, a, n);
                    mp_dequantize_row(mp_act_type(wt), xq_ref, b, n);
                    double d = 0;
                    for (int64_t i = 0; i < n; i++) d += (double)a[i] * b[i];
                    if (wt == MP_TYPE_Q5_1) /* the min term uses y.s = fp16(y.d * sum q), not sum of y.d * q */
                        for (int64_t k = 0; k < n / 32; k++) {
                            const mp_block_q5_1 *wb = (const mp_block_q5_1 *)w + k;
                            const mp_block_q8_1 *yb = (const mp_block_q8_1 *)xq_ref + k;
                            int sq = 0;
                            for (int j = 0; j < 32; j++) sq += yb->qs[j];
                            d += (double)mp_fp16_to_fp32(wb->m) *
                                 ((double)mp_fp16_to_fp32(yb->s) - (double)mp_fp16_to_fp32(yb->d) * sq);
                        }
                    CHECKF(fabs(d - s_ref) <= 1e-5 * scale, "ref vec_dot %s n=%ld: %.9g vs dequantised %.9g",
                           mp_type_name(wt), (long)n, s_ref, d);
                }
            }
        }
    }
}

/* NC: 512, and 544 (17 blocks of 32: an odd last block) for the 32-element types */
static void test_matmul(mp_isa isa, const int NC)
{
    static const int64_t Ts[] = {1, 2, 3, 5, 8, 17};
    enum { NR = 13, MAXT = 17, MAXC = 544 };
    static uint8_t W[NR * MAXC * 4], X[MAXT * MAXC * 4];
    static float xf[MAXC], Y[MAXT * 16];
    CHECK(mp_kernels_set_isa(isa) && NC <= MAXC);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const uint32_t wt = k_types[ti];
        if (!mp_row_size(wt, NC)) continue;
        const size_t wrow = mp_row_size(wt, NC), xrow = mp_act_row_size(wt, NC);
        for (int r = 0; r < NR; r++) make_weights(wt, NC, W + r * wrow, r & 1);
        for (int t = 0; t < MAXT; t++) {
            for (int i = 0; i < NC; i++) xf[i] = mp_rng_gauss(&rng);
            mp_quantize_act(wt, xf, X + t * xrow, NC);
        }
        const mp_vec_dot_fn ref = mp_get_vec_dot_isa(wt, MP_ISA_SCALAR), same = mp_get_vec_dot_isa(wt, isa);
        for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
            const int64_t T = Ts[k], ldy = 16, r0 = k & 1 ? 1 : 0, r1 = k & 2 ? 12 : NR;
            for (int i = 0; i < MAXT * 16; i++) Y[i] = -12345.f;
            mp_matmul_rows(wt, W, NC, r0, r1, X, T, Y, ldy);
            for (int64_t t = 0; t < MAXT; t++) {
                for (int64_t r = 0; r < 16; r++) {
                    const float got = Y[t * ldy + r];
                    if (t >= T || r < r0 || r >= r1) {
                        CHECKF(got == -12345.f, "%s matmul %s wrote outside its block (t=%ld r=%ld)", mp_isa_name(isa),
                               mp_type_name(wt), (long)t, (long)r);
                        continue;
                    }
                    float want = 0;
                    ref(NC, &want, W + r * wrow, X + t * xrow);
                    const double tol = 1e-5 * abs_dot(wt, NC, W + r * wrow, X + t * xrow);
                    CHECKF(fabs((double)got - want) <= tol, "%s matmul %s T=%ld t=%ld r=%ld: %.9g vs %.9g",
                           mp_isa_name(isa), mp_type_name(wt), (long)T, (long)t, (long)r, got, want);
                    /* the register tiles keep this ISA's vec_dot order: the same bits */
                    float dot = 0;
                    same(NC, &dot, W + r * wrow, X + t * xrow);
                    CHECKF(got == dot, "%s matmul %s T=%ld t=%ld r=%ld: %.9g, its vec_dot %.9g", mp_isa_name(isa),
                           mp_type_name(wt), (long)T, (long)t, (long)r, got, dot);
                }
            }
        }
    }
}

int main(void)
{
    mp_kernels_init();
    test_kat_q4_0();
    test_kat_q8_0();
    test_kat_q4_K();
    test_kat_q5_K();
    test_kat_q6_K();
    test_kat_q2_K();
    test_kat_q3_K();
    test_kat_iq4();
    test_kat_q5();
    test_kat_mxfp4();
    test_kat_q8_K_and_float();
    test_roundtrip();
    CHECK(mp_act_type(MP_TYPE_Q4_0) == MP_TYPE_Q8_0 && mp_act_type(MP_TYPE_Q6_K) == MP_TYPE_Q8_K);
    CHECK(mp_act_type(MP_TYPE_Q4_1) == MP_TYPE_COUNT && !mp_type_supported(MP_TYPE_Q4_1));
    CHECK(mp_act_row_size(MP_TYPE_Q4_K, 512) == 2 * 292);
    CHECK(mp_act_type(MP_TYPE_Q2_K) == MP_TYPE_Q8_K && mp_act_type(MP_TYPE_Q3_K) == MP_TYPE_Q8_K);
    CHECK(mp_act_type(MP_TYPE_IQ4_XS) == MP_TYPE_Q8_K && mp_act_type(MP_TYPE_IQ4_NL) == MP_TYPE_Q8_0);
    CHECK(mp_act_type(MP_TYPE_MXFP4) == MP_TYPE_Q8_0 && mp_type_supported(MP_TYPE_MXFP4));
    CHECK(mp_row_size(MP_TYPE_Q2_K, 512) == 168 && mp_row_size(MP_TYPE_Q3_K, 256) == 110);
    CHECK(mp_row_size(MP_TYPE_IQ4_NL, 64) == 36 && mp_row_size(MP_TYPE_IQ4_XS, 256) == 136);
    CHECK(!mp_type_supported(MP_TYPE_IQ3_S) && !mp_type_supported(MP_TYPE_Q4_1) && mp_type_supported(MP_TYPE_Q5_0));

    const mp_isa start = mp_kernels_isa();
    int ran = 0;
    for (int isa = MP_ISA_SCALAR; isa <= MP_ISA_AVX512; isa++) {
        if (!mp_kernels_set_isa((mp_isa)isa)) {
            fprintf(stderr, "note: ISA %s not available, not tested\n", mp_isa_name((mp_isa)isa));
            continue;
        }
        fprintf(stderr, "testing ISA %s\n", mp_isa_name((mp_isa)isa));
        test_simd_vs_ref((mp_isa)isa);
        test_matmul((mp_isa)isa, 512);
        test_matmul((mp_isa)isa, 544);
        ran++;
    }
    CHECK(ran >= 1);
    CHECK(mp_kernels_set_isa(start));
    MP_TEST_DONE();
}
