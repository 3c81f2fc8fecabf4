/* The interleaved row layout (kernels.h, "repacked"): conversion both ways,
 * the scalar reference over it, and the row-group loop of the matmul. The
 * SIMD kernels are in x86_repack.h. */
#include "kernels/kernels_internal.h"

#include "moepager/status.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

_Static_assert(sizeof(mp_block_q4_0x4) == 4 * sizeof(mp_block_q4_0), "q4_0x4 layout");
_Static_assert(sizeof(mp_block_q8_0x4) == 4 * sizeof(mp_block_q8_0), "q8_0x4 layout");
_Static_assert(sizeof(mp_block_q4_Kx4) == 4 * sizeof(mp_block_q4_K), "q4_Kx4 layout");
_Static_assert(sizeof(mp_block_q5_Kx4) == 4 * sizeof(mp_block_q5_K), "q5_Kx4 layout");
_Static_assert(sizeof(mp_block_q6_Kx4) == 4 * sizeof(mp_block_q6_K), "q6_Kx4 layout");

/* Block i of the four rows at p (plain, 4 rows of row bytes) -> group block g.
 * Element k of a Q4_0 block is the low nibble of qs[k] (k < 16), else the
 * high nibble of qs[k - 16]; pair byte k holds row 2p's element k low and row
 * 2p+1's high. Branch-free byte loops: this runs over every byte at load. */
/* pair bytes o[0..32) from two rows' qs x, y (16 bytes each) and back */
static inline void q4_pair(const uint8_t *x, const uint8_t *y, uint8_t *o)
{
#if defined(__SSE2__)
    const __m128i vx = _mm_loadu_si128((const __m128i *)x), vy = _mm_loadu_si128((const __m128i *)y);
    const __m128i lo = _mm_set1_epi8(0x0F), hi = _mm_set1_epi8((char)0xF0);
    _mm_storeu_si128((__m128i *)o, _mm_or_si128(_mm_and_si128(vx, lo), _mm_and_si128(_mm_slli_epi16(vy, 4), hi)));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_or_si128(_mm_and_si128(_mm_srli_epi16(vx, 4), lo), _mm_and_si128(vy, hi)));
#else
    for (int k = 0; k < 16; k++) {
        o[k] = (uint8_t)((x[k] & 0x0F) | (y[k] << 4));
        o[k + 16] = (uint8_t)((x[k] >> 4) | (y[k] & 0xF0));
    }
#endif
}

static inline void q4_unpair(const uint8_t *o, uint8_t *x, uint8_t *y)
{
#if defined(__SSE2__)
    const __m128i a = _mm_loadu_si128((const __m128i *)o), b = _mm_loadu_si128((const __m128i *)(o + 16));
    const __m128i lo = _mm_set1_epi8(0x0F), hi = _mm_set1_epi8((char)0xF0);
    _mm_storeu_si128((__m128i *)x, _mm_or_si128(_mm_and_si128(a, lo), _mm_and_si128(_mm_slli_epi16(b, 4), hi)));
    _mm_storeu_si128((__m128i *)y, _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), lo), _mm_and_si128(b, hi)));
#else
    for (int k = 0; k < 16; k++) {
        x[k] = (uint8_t)((o[k] & 0x0F) | (o[k + 16] << 4));
        y[k] = (uint8_t)((o[k] >> 4) | (o[k + 16] & 0xF0));
    }
#endif
}

static void pack_q4_0(const uint8_t *p, size_t row, int64_t i, mp_block_q4_0x4 *g)
{
    for (int pr = 0; pr < 2; pr++) {
        const mp_block_q4_0 *x = (const mp_block_q4_0 *)(p + 2 * pr * row) + i;
        const mp_block_q4_0 *y = (const mp_block_q4_0 *)(p + (2 * pr + 1) * row) + i;
        g->d[2 * pr] = x->d;
        g->d[2 * pr + 1] = y->d;
        q4_pair(x->qs, y->qs, g->qs + 32 * pr);
    }
}

static void unpack_q4_0(const mp_block_q4_0x4 *g, uint8_t *p, size_t row, int64_t i)
{
    for (int pr = 0; pr < 2; pr++) {
        mp_block_q4_0 *x = (mp_block_q4_0 *)(p + 2 * pr * row) + i, *y = (mp_block_q4_0 *)(p + (2 * pr + 1) * row) + i;
        x->d = g->d[2 * pr];
        y->d = g->d[2 * pr + 1];
        q4_unpair(g->qs + 32 * pr, x->qs, y->qs);
    }
}

static void pack_q8_0(const uint8_t *p, size_t row, int64_t i, mp_block_q8_0x4 *g)
{
    for (int r = 0; r < 4; r++) {
        const mp_block_q8_0 *b = (const mp_block_q8_0 *)(p + r * row) + i;
        g->d[r] = b->d;
        memcpy(g->qs[r], b->qs, 32);
    }
}

static void unpack_q8_0(const mp_block_q8_0x4 *g, uint8_t *p, size_t row, int64_t i)
{
    for (int r = 0; r < 4; r++) {
        mp_block_q8_0 *b = (mp_block_q8_0 *)(p + r * row) + i;
        b->d = g->d[r];
        memcpy(b->qs, g->qs[r], 32);
    }
}

static void pack_q4_K(const uint8_t *p, size_t row, int64_t i, mp_block_q4_Kx4 *g)
{
    for (int r = 0; r < 4; r++) {
        const mp_block_q4_K *b = (const mp_block_q4_K *)(p + r * row) + i;
        g->d[r] = b->d;
        g->dmin[r] = b->dmin;
        for (int k = 0; k < 3; k++) memcpy(&g->w[k][r], b->scales + 4 * k, 4);
        for (int c = 0; c < 4; c++) memcpy(g->qs[c][r], b->qs + 32 * c, 32);
    }
}

static void unpack_q4_K(const mp_block_q4_Kx4 *g, uint8_t *p, size_t row, int64_t i)
{
    for (int r = 0; r < 4; r++) {
        mp_block_q4_K *b = (mp_block_q4_K *)(p + r * row) + i;
        b->d = g->d[r];
        b->dmin = g->dmin[r];
        for (int k = 0; k < 3; k++) memcpy(b->scales + 4 * k, &g->w[k][r], 4);
        for (int c = 0; c < 4; c++) memcpy(b->qs + 32 * c, g->qs[c][r], 32);
    }
}

static void pack_q5_K(const uint8_t *p, size_t row, int64_t i, mp_block_q5_Kx4 *g)
{
    for (int r = 0; r < 4; r++) {
        const mp_block_q5_K *b = (const mp_block_q5_K *)(p + r * row) + i;
        g->d[r] = b->d;
        g->dmin[r] = b->dmin;
        for (int k = 0; k < 3; k++) memcpy(&g->w[k][r], b->scales + 4 * k, 4);
        memcpy(g->qh[r], b->qh, 32);
        for (int c = 0; c < 4; c++) memcpy(g->qs[c][r], b->qs + 32 * c, 32);
    }
}

static void unpack_q5_K(const mp_block_q5_Kx4 *g, uint8_t *p, size_t row, int64_t i)
{
    for (int r = 0; r < 4; r++) {
        mp_block_q5_K *b = (mp_block_q5_K *)(p + r * row) + i;
        b->d = g->d[r];
        b->dmin = g->dmin[r];
        for (int k = 0; k < 3; k++) memcpy(b->scales + 4 * k, &g->w[k][r], 4);
        memcpy(b->qh, g->qh[r], 32);
        for (int c = 0; c < 4; c++) memcpy(b->qs + 32 * c, g->qs[c][r], 32);
    }
}

static void pack_q6_K(const uint8_t *p, size_t row, int64_t i, mp_block_q6_Kx4 *g)
{
    for (int r = 0; r < 4; r++) {
        const mp_block_q6_K *b = (const mp_block_q6_K *)(p + r * row) + i;
        mp_q6_K_pair *pr = &g->p[r / 2];
        g->d[r] = b->d;
        memcpy(g->scales[r], b->scales, 16);
        for (int c = 0; c < 4; c++) memcpy(pr->ql[c][r % 2], b->ql + 32 * c, 32);
        for (int h = 0; h < 2; h++) memcpy(pr->qh[h][r % 2], b->qh + 32 * h, 32);
    }
}

static void unpack_q6_K(const mp_block_q6_Kx4 *g, uint8_t *p, size_t row, int64_t i)
{
    for (int r = 0; r < 4; r++) {
        mp_block_q6_K *b = (mp_block_q6_K *)(p + r * row) + i;
        const mp_q6_K_pair *pr = &g->p[r / 2];
        b->d = g->d[r];
        memcpy(b->scales, g->scales[r], 16);
        for (int c = 0; c < 4; c++) memcpy(b->ql + 32 * c, pr->ql[c][r % 2], 32);
        for (int h = 0; h < 2; h++) memcpy(b->qh + 32 * h, pr->qh[h][r % 2], 32);
    }
}

/* Bytes of one group block (4 blocks) and elements per block; 0: no layout. */
static size_t group_block_bytes(uint32_t wtype, int *qk)
{
    switch (wtype) {
    case MP_TYPE_Q4_0: *qk = MP_QK4_0; return sizeof(mp_block_q4_0x4);
    case MP_TYPE_Q8_0: *qk = MP_QK8_0; return sizeof(mp_block_q8_0x4);
    case MP_TYPE_Q4_K: *qk = MP_QK_K; return sizeof(mp_block_q4_Kx4);
    case MP_TYPE_Q5_K: *qk = MP_QK_K; return sizeof(mp_block_q5_Kx4);
    case MP_TYPE_Q6_K: *qk = MP_QK_K; return sizeof(mp_block_q6_Kx4);
    default: *qk = 1; return 0;
    }
}

/* Group (4 plain rows at src) -> interleaved at dst, or back; src != dst. */
static void convert_group(uint32_t wtype, const uint8_t *src, uint8_t *dst, size_t row, int64_t nb, size_t gb,
                          bool to_x4)
{
    for (int64_t i = 0; i < nb; i++) {
        switch (wtype) {
        case MP_TYPE_Q4_0:
            if (to_x4) pack_q4_0(src, row, i, (mp_block_q4_0x4 *)(dst + i * gb));
            else unpack_q4_0((const mp_block_q4_0x4 *)(src + i * gb), dst, row, i);
            break;
        case MP_TYPE_Q8_0:
            if (to_x4) pack_q8_0(src, row, i, (mp_block_q8_0x4 *)(dst + i * gb));
            else unpack_q8_0((const mp_block_q8_0x4 *)(src + i * gb), dst, row, i);
            break;
        case MP_TYPE_Q4_K:
            if (to_x4) pack_q4_K(src, row, i, (mp_block_q4_Kx4 *)(dst + i * gb));
            else unpack_q4_K((const mp_block_q4_Kx4 *)(src + i * gb), dst, row, i);
            break;
        case MP_TYPE_Q5_K:
            if (to_x4) pack_q5_K(src, row, i, (mp_block_q5_Kx4 *)(dst + i * gb));
            else unpack_q5_K((const mp_block_q5_Kx4 *)(src + i * gb), dst, row, i);
            break;
        case MP_TYPE_Q6_K:
            if (to_x4) pack_q6_K(src, row, i, (mp_block_q6_Kx4 *)(dst + i * gb));
            else unpack_q6_K((const mp_block_q6_Kx4 *)(src + i * gb), dst, row, i);
            break;
        default: assert(0);
        }
    }
}

static int convert_rows(uint32_t wtype, void *data, int64_t nrows, int64_t ncols, bool to_x4)
{
    int qk;
    const size_t gb = group_block_bytes(wtype, &qk);
    if (!gb || ncols % qk) return MP_E_UNSUPPORTED;
    const size_t row = mp_row_size(wtype, ncols);
    const int64_t ng = nrows / MP_RP_ROWS;
    if (!ng) return MP_OK;
    uint8_t *tmp = malloc(MP_RP_ROWS * row);
    if (!tmp) return MP_E_NOMEM;
    for (int64_t g = 0; g < ng; g++) {
        uint8_t *p = (uint8_t *)data + (size_t)g * MP_RP_ROWS * row;
        memcpy(tmp, p, MP_RP_ROWS * row);
        convert_group(wtype, tmp, p, row, ncols / qk, gb, to_x4);
    }
    free(tmp);
    return MP_OK;
}

int mp_repack_rows(uint32_t wtype, void *data, int64_t nrows, int64_t ncols)
{
    return convert_rows(wtype, data, nrows, ncols, true);
}

int mp_unrepack_rows(uint32_t wtype, void *data, int64_t nrows, int64_t ncols)
{
    return convert_rows(wtype, data, nrows, ncols, false);
}

bool mp_repack_supported(uint32_t wtype)
{
    return wtype < MP_TYPE_COUNT && mp_kernels_table()->rp[wtype][0] != NULL;
}

bool mp_repack_pays_decode(uint32_t wtype)
{
    /* Every type with interleaved kernels: on AVX2 the 256-bit ones, on
     * AVX-512 the 512-bit K-quant ones (x86_repack512.h) and the VNNI Q4_0 /
     * Q8_0 ones beat the plain vec_dot at one token too. Measured (Zen 5,
     * bench_kernels --dram, one token from DRAM, 1 thread): Q4_K 24.9 -> 35.2
     * GB/s, Q5_K 23.7 -> 31.8, Q6_K 30.6 -> 33.6; the 256-bit K-quant kernels
     * had lost decode on AVX-512 (Q4_K_M tg128 139 vs 199 tok/s) for want of
     * the software prefetch they now have. */
    return mp_repack_supported(wtype);
}

/* Rows [4 g0, 4 g1) of W (interleaved groups) through the scalar reference:
 * each group converted back to plain rows in a scratch buffer. */
static void ref_groups(uint32_t wtype, mp_vec_dot_fn dot, const uint8_t *W, int64_t ncols, int64_t g0, int64_t g1,
                       const uint8_t *X, int64_t T, float *Y, int64_t ldy)
{
    int qk;
    const size_t gb = group_block_bytes(wtype, &qk), row = mp_row_size(wtype, ncols);
    const size_t xrow = mp_act_row_size(wtype, ncols);
    uint8_t *tmp = malloc(MP_RP_ROWS * row);
    if (!tmp) { /* no way to report from here: NaN outputs, which no caller mistakes for a result */
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = g0 * MP_RP_ROWS; r < g1 * MP_RP_ROWS; r++) Y[t * ldy + r] = NAN;
        return;
    }
    for (int64_t g = g0; g < g1; g++) {
        convert_group(wtype, W + (size_t)g * MP_RP_ROWS * row, tmp, row, ncols / qk, gb, false);
        for (int64_t t = 0; t < T; t++)
            for (int r = 0; r < MP_RP_ROWS; r++) dot(ncols, &Y[t * ldy + g * MP_RP_ROWS + r], tmp + r * row, X + t * xrow);
    }
    free(tmp);
}

void mp_repack_matmul_ref(uint32_t wtype, const void *W, int64_t ncols, int64_t nrows, const void *Xq, int64_t T,
                          float *Y, int64_t ldy)
{
    const mp_vec_dot_fn dot = mp_get_vec_dot_isa(wtype, MP_ISA_SCALAR);
    const int64_t ng = nrows / MP_RP_ROWS;
    ref_groups(wtype, dot, W, ncols, 0, ng, Xq, T, Y, ldy);
    const size_t row = mp_row_size(wtype, ncols), xrow = mp_act_row_size(wtype, ncols);
    for (int64_t r = ng * MP_RP_ROWS; r < nrows; r++)
        for (int64_t t = 0; t < T; t++)
            dot(ncols, &Y[t * ldy + r], (const uint8_t *)W + (size_t)r * row, (const uint8_t *)Xq + t * xrow);
}

void mp_repack_matmul_groups(const mp_kernel_table *tb, uint32_t wtype, const void *W, int64_t ncols, int64_t g0,
                             int64_t g1, const void *Xq, int64_t T, float *Y, int64_t ldy)
{
    const size_t gbytes = MP_RP_ROWS * mp_row_size(wtype, ncols), xrow = mp_act_row_size(wtype, ncols);
    const uint8_t *w = W, *x = Xq;
    if (!tb->rp[wtype][0]) { /* an ISA without the kernels (tests switch ISA after a load) */
        ref_groups(wtype, tb->vec_dot[wtype], w, ncols, g0, g1, x, T, Y, ldy);
        return;
    }
    /* Each group (4 rows, contiguous) is read once per MP_TILE_C tokens; for
     * T > MP_TILE_C the next token block finds it in L1. */
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < T; t += MP_TILE_C) {
            const int64_t c = T - t < MP_TILE_C ? T - t : MP_TILE_C;
            tb->rp[wtype][c - 1](ncols, w + (size_t)g * gbytes, 0, x + (size_t)t * xrow, xrow,
                                 Y + t * ldy + g * MP_RP_ROWS, ldy);
        }
}
