/* Interleaved (repacked) layout: conversion round trips, a known-answer test
 * pinning each group-block layout, and for every ISA this CPU and build have,
 * mp_matmul_rows_ex over the interleaved layout against the plain layout in
 * the same mode -- bit for bit, since the parity with llama.cpp rests on it --
 * and against the scalar reference over the interleaved layout
 * (mp_repack_matmul_ref) at a named tolerance. */
#include "kernels/kernels.h"
#include "moepager/status.h"
#include "helpers/test_util.h"
#include "mp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* relative to sum_i |w_i * x_i|: only the float accumulation order differs
 * between the scalar reference and the SIMD kernels */
#define TOL_REF 1e-5

static mp_test_rng rng = {0x5eed0123456789abull};
static const uint32_t k_rp_types[] = {MP_TYPE_Q4_0, MP_TYPE_Q8_0, MP_TYPE_Q4_K, MP_TYPE_Q5_K, MP_TYPE_Q6_K};

static void fill_weights(uint32_t wt, uint8_t *W, int64_t nrows, int64_t ncols)
{
    float *f = malloc(sizeof(float) * ncols);
    for (int64_t r = 0; r < nrows; r++) {
        /* a per-row scale spread so the rows' d differ */
        const float s = 0.1f + 2.f * mp_rng_unit(&rng);
        for (int64_t j = 0; j < ncols; j++) f[j] = s * mp_rng_gauss(&rng);
        CHECK(mp_quantize_row_ref(wt, f, W + r * mp_row_size(wt, ncols), ncols) == MP_OK);
    }
    free(f);
}

static void test_round_trip(void)
{
    for (size_t k = 0; k < sizeof k_rp_types / sizeof k_rp_types[0]; k++) {
        const uint32_t wt = k_rp_types[k];
        const int64_t ncols = 512, nrows = 10; /* two groups and a plain tail of 2 */
        const size_t bytes = mp_row_size(wt, ncols) * nrows;
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        for (size_t i = 0; i < bytes; i++) a[i] = (uint8_t)mp_rng_u32(&rng);
        memcpy(b, a, bytes);
        CHECK(mp_repack_rows(wt, b, nrows, ncols) == MP_OK);
        CHECKF(memcmp(a, b, bytes) != 0, "%s: repack changed nothing", mp_type_name(wt));
        /* the tail rows stay where they were */
        const size_t tail = 8 * mp_row_size(wt, ncols);
        CHECK(memcmp(a + tail, b + tail, bytes - tail) == 0);
        CHECK(mp_unrepack_rows(wt, b, nrows, ncols) == MP_OK);
        CHECKF(memcmp(a, b, bytes) == 0, "%s: round trip", mp_type_name(wt));
        free(a), free(b);
    }
    uint8_t x[64] = {0};
    CHECK(mp_repack_rows(MP_TYPE_Q3_K, x, 4, 256) == MP_E_UNSUPPORTED);
    CHECK(mp_repack_rows(MP_TYPE_Q4_0, x, 4, 48) == MP_E_UNSUPPORTED); /* not whole blocks */
}

/* Element k of row r of block 0, read through each layout's description. */
static void test_kat_layouts(void)
{
    const int64_t ncols = 256;
    {
        mp_block_q4_0 rows[4][8];
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 8; i++) {
                rows[r][i].d = (uint16_t)(0x3c00 + 16 * r + i);
                for (int j = 0; j < 16; j++) rows[r][i].qs[j] = (uint8_t)(mp_rng_u32(&rng));
            }
        mp_block_q4_0 orig[4][8];
        memcpy(orig, rows, sizeof rows);
        CHECK(mp_repack_rows(MP_TYPE_Q4_0, rows, 4, ncols) == MP_OK);
        const mp_block_q4_0x4 *g = (const mp_block_q4_0x4 *)rows;
        for (int i = 0; i < 8; i++)
            for (int r = 0; r < 4; r++) {
                CHECK(g[i].d[r] == orig[r][i].d);
                for (int k = 0; k < 32; k++) {
                    const int want = k < 16 ? orig[r][i].qs[k] & 0xF : orig[r][i].qs[k - 16] >> 4;
                    CHECK(((g[i].qs[32 * (r / 2) + k] >> 4 * (r % 2)) & 0xF) == want);
                }
            }
    }
    {
        mp_block_q4_K rows[4];
        for (int r = 0; r < 4; r++) {
            uint8_t *p = (uint8_t *)&rows[r];
            for (size_t j = 0; j < sizeof rows[r]; j++) p[j] = (uint8_t)mp_rng_u32(&rng);
        }
        mp_block_q4_K orig[4];
        memcpy(orig, rows, sizeof rows);
        CHECK(mp_repack_rows(MP_TYPE_Q4_K, rows, 4, 256) == MP_OK);
        const mp_block_q4_Kx4 *g = (const mp_block_q4_Kx4 *)rows;
        for (int r = 0; r < 4; r++) {
            CHECK(g->d[r] == orig[r].d && g->dmin[r] == orig[r].dmin);
            for (int k = 0; k < 12; k++) CHECK(((const uint8_t *)&g->w[k / 4][r])[k % 4] == orig[r].scales[k]);
            for (int j = 0; j < 128; j++) CHECK(g->qs[j / 32][r][j % 32] == orig[r].qs[j]);
        }
    }
    {
        mp_block_q6_K rows[4];
        for (int r = 0; r < 4; r++) {
            uint8_t *p = (uint8_t *)&rows[r];
            for (size_t j = 0; j < sizeof rows[r]; j++) p[j] = (uint8_t)mp_rng_u32(&rng);
        }
        mp_block_q6_K orig[4];
        memcpy(orig, rows, sizeof rows);
        CHECK(mp_repack_rows(MP_TYPE_Q6_K, rows, 4, 256) == MP_OK);
        const mp_block_q6_Kx4 *g = (const mp_block_q6_Kx4 *)rows;
        for (int r = 0; r < 4; r++) {
            CHECK(g->d[r] == orig[r].d);
            CHECK(memcmp(g->scales[r], orig[r].scales, 16) == 0);
            for (int j = 0; j < 128; j++) CHECK(g->p[r / 2].ql[j / 32][r % 2][j % 32] == orig[r].ql[j]);
            for (int j = 0; j < 64; j++) CHECK(g->p[r / 2].qh[j / 32][r % 2][j % 32] == orig[r].qh[j]);
        }
    }
    {
        mp_block_q5_K rows[4];
        for (int r = 0; r < 4; r++) {
            uint8_t *p = (uint8_t *)&rows[r];
            for (size_t j = 0; j < sizeof rows[r]; j++) p[j] = (uint8_t)mp_rng_u32(&rng);
        }
        mp_block_q5_K orig[4];
        memcpy(orig, rows, sizeof rows);
        CHECK(mp_repack_rows(MP_TYPE_Q5_K, rows, 4, 256) == MP_OK);
        const mp_block_q5_Kx4 *g = (const mp_block_q5_Kx4 *)rows;
        for (int r = 0; r < 4; r++) {
            CHECK(g->d[r] == orig[r].d && g->dmin[r] == orig[r].dmin);
            for (int k = 0; k < 12; k++) CHECK(((const uint8_t *)&g->w[k / 4][r])[k % 4] == orig[r].scales[k]);
            CHECK(memcmp(g->qh[r], orig[r].qh, 32) == 0);
            for (int j = 0; j < 128; j++) CHECK(g->qs[j / 32][r][j % 32] == orig[r].qs[j]);
        }
    }
    {
        mp_block_q8_0 rows[4];
        for (int r = 0; r < 4; r++) {
            rows[r].d = (uint16_t)(0x3c00 + r);
            for (int j = 0; j < 32; j++) rows[r].qs[j] = (int8_t)mp_rng_u32(&rng);
        }
        mp_block_q8_0 orig[4];
        memcpy(orig, rows, sizeof rows);
        CHECK(mp_repack_rows(MP_TYPE_Q8_0, rows, 4, 32) == MP_OK);
        const mp_block_q8_0x4 *g = (const mp_block_q8_0x4 *)rows;
        for (int r = 0; r < 4; r++) {
            CHECK(g->d[r] == orig[r].d);
            CHECK(memcmp(g->qs[r], orig[r].qs, 32) == 0);
        }
    }
}

/* Rows in 16-row pieces, as the forward pass hands them to threads. */
static void matmul_pieces(uint32_t wt, const void *W, int64_t ncols, int64_t nrows, const void *X, int64_t T, float *Y,
                          int mode)
{
    for (int64_t r0 = 0; r0 < nrows; r0 += 16)
        mp_matmul_rows_ex(wt, W, ncols, nrows, r0, r0 + 16 < nrows ? r0 + 16 : nrows, X, T, Y, nrows, mode);
}

static void test_matmul(void)
{
    /* {nrows, ncols}: 13 x 2816 has an odd block count (11) and a plain tail row */
    static const int64_t shapes[][2] = {{4, 256}, {37, 512}, {64, 2048}, {13, 2816}};
    static const int64_t Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int modes[] = {MP_MM_VEC_DOT, MP_MM_GEMM, MP_MM_ID};
    const mp_isa best = mp_kernels_isa();
    for (size_t k = 0; k < sizeof k_rp_types / sizeof k_rp_types[0]; k++) {
        const uint32_t wt = k_rp_types[k];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t nrows = shapes[s][0], ncols = shapes[s][1];
            const size_t wrow = mp_row_size(wt, ncols), xrow = mp_act_row_size(wt, ncols);
            uint8_t *W = malloc(wrow * nrows), *Wr = malloc(wrow * nrows), *X = malloc(xrow * 9);
            float *xf = malloc(sizeof(float) * ncols * 9), *wd = malloc(sizeof(float) * ncols * nrows);
            float *xd = malloc(sizeof(float) * ncols * 9);
            const size_t ny = (size_t)nrows * 9;
            float *Yp = malloc(sizeof(float) * ny), *Yr = malloc(sizeof(float) * ny), *Yref = malloc(sizeof(float) * ny);
            fill_weights(wt, W, nrows, ncols);
            memcpy(Wr, W, wrow * nrows);
            CHECK(mp_repack_rows(wt, Wr, nrows, ncols) == MP_OK);
            for (int64_t j = 0; j < ncols * 9; j++) xf[j] = mp_rng_gauss(&rng);
            for (int t = 0; t < 9; t++) mp_quantize_act(wt, xf + t * ncols, X + t * xrow, ncols);
            for (int64_t r = 0; r < nrows; r++) mp_dequantize_row(wt, W + r * wrow, wd + r * ncols, ncols);
            for (int t = 0; t < 9; t++) mp_dequantize_row(mp_act_type(wt), X + t * xrow, xd + t * ncols, ncols);
            mp_repack_matmul_ref(wt, Wr, ncols, nrows, X, 9, Yref, nrows);
            for (int isa = 0; isa <= MP_ISA_AVX512; isa++) {
                if (!mp_kernels_set_isa((mp_isa)isa)) continue;
                for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
                    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
                        const int64_t T = Ts[ti];
                        memset(Yp, 0xff, sizeof(float) * ny);
                        memset(Yr, 0x7f, sizeof(float) * ny);
                        matmul_pieces(wt, W, ncols, nrows, X, T, Yp, modes[mi]);
                        matmul_pieces(wt, Wr, ncols, nrows, X, T, Yr, modes[mi] | MP_MM_REPACKED);
                        CHECKF(memcmp(Yp, Yr, sizeof(float) * nrows * T) == 0, "%s %s %lldx%lld T=%lld mode %d: not bit-identical",
                               mp_type_name(wt), mp_isa_name((mp_isa)isa), (long long)nrows, (long long)ncols,
                               (long long)T, modes[mi]);
                        for (int64_t t = 0; t < T; t++)
                            for (int64_t r = 0; r < nrows; r++) {
                                double mag = 0;
                                for (int64_t j = 0; j < ncols; j++) mag += fabs((double)wd[r * ncols + j] * xd[t * ncols + j]);
                                const double e = fabs((double)Yr[t * nrows + r] - Yref[t * nrows + r]);
                                CHECKF(e <= TOL_REF * mag, "%s %s row %lld tok %lld: %g vs ref %g (mag %g)", mp_type_name(wt),
                                       mp_isa_name((mp_isa)isa), (long long)r, (long long)t, Yr[t * nrows + r],
                                       Yref[t * nrows + r], mag);
                            }
                    }
            }
            mp_kernels_set_isa(best);
            free(W), free(Wr), free(X), free(xf), free(wd), free(xd), free(Yp), free(Yr), free(Yref);
        }
    }
}

int main(void)
{
    mp_kernels_init();
    test_round_trip();
    test_kat_layouts();
    test_matmul();
    printf("repack: isa %s; interleaved kernels for", mp_isa_name(mp_kernels_isa()));
    for (size_t k = 0; k < sizeof k_rp_types / sizeof k_rp_types[0]; k++)
        printf(" %s %d", mp_type_name(k_rp_types[k]), mp_repack_supported(k_rp_types[k]));
    printf("\n");
    MP_TEST_DONE();
}
