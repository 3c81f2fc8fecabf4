/* Runtime dispatch (CPUID once, capped by $MP_ISA) and the row-block matmul. */
#include "kernels/kernels_internal.h"

#include "moepager/status.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static mp_kernel_table g_tables[3];
static bool g_have[3];
static int g_isa; /* an mp_isa; written by init and mp_kernels_set_isa only */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if !defined(MP_FORCE_SCALAR)
static bool cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
#else
    return false;
#endif
}

static bool cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}
#endif

static void init_once(void)
{
    mp_kernels_fill_scalar(&g_tables[MP_ISA_SCALAR]);
    mp_ops_fill_scalar(&g_tables[MP_ISA_SCALAR]);
    g_have[MP_ISA_SCALAR] = true;
#if !defined(MP_FORCE_SCALAR) && (defined(__x86_64__) || defined(__i386__))
    if (cpu_has_avx2()) {
        g_tables[MP_ISA_AVX2] = g_tables[MP_ISA_SCALAR];
        mp_kernels_fill_avx2(&g_tables[MP_ISA_AVX2]);
        mp_ops_fill_avx2(&g_tables[MP_ISA_AVX2]);
        g_have[MP_ISA_AVX2] = true;
    }
    if (cpu_has_avx512()) {
        g_tables[MP_ISA_AVX512] = g_tables[MP_ISA_AVX2];
        mp_kernels_fill_avx512(&g_tables[MP_ISA_AVX512]);
        g_have[MP_ISA_AVX512] = true;
    }
#endif
    int best = g_have[MP_ISA_AVX512] ? MP_ISA_AVX512 : g_have[MP_ISA_AVX2] ? MP_ISA_AVX2 : MP_ISA_SCALAR;
    const char *cap = getenv("MP_ISA");
    if (cap) {
        int c = !strcmp(cap, "scalar") ? MP_ISA_SCALAR : !strcmp(cap, "avx2") ? MP_ISA_AVX2 : MP_ISA_AVX512;
        if (c < best) best = c;
    }
    __atomic_store_n(&g_isa, best, __ATOMIC_RELEASE);
}

void mp_kernels_init(void) { pthread_once(&g_once, init_once); }

static inline const mp_kernel_table *table(void)
{
    mp_kernels_init();
    return &g_tables[__atomic_load_n(&g_isa, __ATOMIC_ACQUIRE)];
}

const mp_kernel_table *mp_kernels_table(void) { return table(); }

mp_isa mp_kernels_isa(void)
{
    mp_kernels_init();
    return (mp_isa)__atomic_load_n(&g_isa, __ATOMIC_ACQUIRE);
}

const char *mp_isa_name(mp_isa isa)
{
    switch (isa) {
    case MP_ISA_SCALAR: return "scalar";
    case MP_ISA_AVX2: return "avx2";
    case MP_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

bool mp_kernels_set_isa(mp_isa isa)
{
    mp_kernels_init();
    if ((unsigned)isa > MP_ISA_AVX512 || !g_have[isa]) return false;
    __atomic_store_n(&g_isa, (int)isa, __ATOMIC_RELEASE);
    return true;
}

bool mp_type_supported(uint32_t wtype)
{
    switch (wtype) {
    case MP_TYPE_F32: case MP_TYPE_F16: case MP_TYPE_BF16: case MP_TYPE_Q8_0: case MP_TYPE_Q4_0:
    case MP_TYPE_Q2_K: case MP_TYPE_Q3_K: case MP_TYPE_Q4_K: case MP_TYPE_Q5_K: case MP_TYPE_Q6_K:
    case MP_TYPE_IQ4_NL: case MP_TYPE_IQ4_XS: case MP_TYPE_MXFP4: case MP_TYPE_Q5_0: case MP_TYPE_Q5_1:
        return true;
    default:
        return false;
    }
}

uint32_t mp_act_type(uint32_t wtype)
{
    switch (wtype) {
    case MP_TYPE_F32: case MP_TYPE_F16: case MP_TYPE_BF16: return wtype;
    case MP_TYPE_Q8_0: case MP_TYPE_Q4_0: case MP_TYPE_IQ4_NL: case MP_TYPE_MXFP4: case MP_TYPE_Q5_0: return MP_TYPE_Q8_0;
    case MP_TYPE_Q5_1: return MP_TYPE_Q8_1;
    case MP_TYPE_Q2_K: case MP_TYPE_Q3_K: case MP_TYPE_Q4_K: case MP_TYPE_Q5_K: case MP_TYPE_Q6_K:
    case MP_TYPE_IQ4_XS: return MP_TYPE_Q8_K;
    default: return MP_TYPE_COUNT;
    }
}

size_t mp_act_row_size(uint32_t wtype, int64_t ncols)
{
    const uint32_t at = mp_act_type(wtype);
    return at == MP_TYPE_COUNT ? 0 : mp_row_size(at, ncols);
}

void mp_quantize_act(uint32_t wtype, const float *x, void *xq, int64_t ncols)
{
    table()->quant_act[mp_act_type(wtype)](x, xq, ncols);
}

int mp_quantize_act_isa(uint32_t wtype, mp_isa isa, const float *x, void *xq, int64_t ncols)
{
    mp_kernels_init();
    const uint32_t at = mp_act_type(wtype);
    if ((unsigned)isa > MP_ISA_AVX512 || !g_have[isa] || at == MP_TYPE_COUNT) return MP_E_UNSUPPORTED;
    g_tables[isa].quant_act[at](x, xq, ncols);
    return MP_OK;
}

mp_vec_dot_fn mp_get_vec_dot(uint32_t wtype)
{
    return wtype < MP_TYPE_COUNT ? table()->vec_dot[wtype] : NULL;
}

mp_vec_dot_fn mp_get_vec_dot_isa(uint32_t wtype, mp_isa isa)
{
    mp_kernels_init();
    if ((unsigned)isa > MP_ISA_AVX512 || !g_have[isa] || wtype >= MP_TYPE_COUNT) return NULL;
    return g_tables[isa].vec_dot[wtype];
}

/* Rows per block for the vec_dot fallback: enough rows to fill ~16 KiB so the
 * block stays in L1 while all T activation rows pass over it. */
static int64_t rows_per_block(size_t row_bytes)
{
    int64_t rb = (int64_t)(16384 / (row_bytes ? row_bytes : 1));
    return rb < 1 ? 1 : rb > 64 ? 64 : rb;
}

/* How far ahead of the row being computed a one-token matmul in the plain row
 * layout requests its weights (whole rows). Streamed experts land in their
 * cache slot in this layout; the hardware prefetcher alone keeps too few lines
 * in flight for a row-by-row stream. Measured in RAM with MP_REPACK=0 on the
 * shared bench shape (bench_engine tg128, two threads, alternating rounds):
 * Q4_K +7.7% (10 of 10 rounds), Q8_0 +2%; prefetching the row itself (no
 * distance) was 3% slower than none (docs/measurements/session-2026-12-07.md). */
#define MP_ROW_STREAM_AHEAD 3072

void mp_matmul_rows(uint32_t wtype, const void *W, int64_t ncols, int64_t r0, int64_t r1,
                    const void *Xq, int64_t T, float *Y, int64_t ldy)
{
    const mp_kernel_table *tb = table();
    const mp_vec_dot_fn dot = tb->vec_dot[wtype];
    const size_t wrow = mp_row_size(wtype, ncols), xrow = mp_act_row_size(wtype, ncols);
    const uint8_t *w = W, *x = Xq;
    int64_t r = r0;

    if (tb->tile[wtype][0] && T > 1) {
        /* Register tiles: MP_TILE_R weight rows are read once per block of up to
         * MP_TILE_C tokens; the next token block finds them in L1/L2. Not for
         * T = 1 (decode): streaming one row at a time through vec_dot reaches
         * about 3x the DRAM bandwidth of the 4-row tile (19-20 vs 5-7 GB/s on
         * a 294 MB Q8_0 matrix, one thread), with the same result bits. */
        for (; r + MP_TILE_R <= r1; r += MP_TILE_R) {
            for (int64_t t = 0; t < T; t += MP_TILE_C) {
                const int64_t c = T - t < MP_TILE_C ? T - t : MP_TILE_C;
                tb->tile[wtype][c - 1](ncols, w + (size_t)r * wrow, wrow, x + (size_t)t * xrow, xrow,
                                       Y + t * ldy + r, ldy);
            }
        }
    }
    if (T == 1) {
        /* one token streams the rows once: each row's lines are requested
         * MP_ROW_STREAM_AHEAD bytes (whole rows) before its dot product */
        const int64_t ahead = (int64_t)((MP_ROW_STREAM_AHEAD + wrow - 1) / wrow);
        for (; r < r1; r++) {
            const uint8_t *pf = w + (size_t)(r + ahead) * wrow;
            for (size_t o = 0; o < wrow; o += 64) __builtin_prefetch(pf + o, 0, 3);
            dot(ncols, &Y[r], w + (size_t)r * wrow, x);
        }
        return;
    }
    /* Remaining rows (or every row for types without tiles): blocks of rows that
     * fit L1, each reused for all T tokens. */
    const int64_t rb = rows_per_block(wrow);
    for (; r < r1; r += rb) {
        const int64_t re = r + rb < r1 ? r + rb : r1;
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = r; i < re; i++)
                dot(ncols, &Y[t * ldy + i], w + (size_t)i * wrow, x + (size_t)t * xrow);
    }
}

void mp_matmul_rows_ex(uint32_t wtype, const void *W, int64_t ncols, int64_t nrows, int64_t r0, int64_t r1,
                       const void *Xq, int64_t T, float *Y, int64_t ldy, int mode)
{
    const mp_kernel_table *tb = table();
    if (mode & MP_MM_REPACKED) {
        /* whole groups through the interleaved kernels, the plain tail rows
         * (nrows % MP_RP_ROWS, stored as usual) through the plain path */
        mode &= ~MP_MM_REPACKED;
        const int64_t gend = nrows / MP_RP_ROWS * MP_RP_ROWS;
        if (r0 < gend) {
            assert(r0 % MP_RP_ROWS == 0);
            const int64_t re = r1 < gend ? r1 : gend;
            assert(re % MP_RP_ROWS == 0);
            mp_repack_matmul_groups(tb, wtype, W, ncols, r0 / MP_RP_ROWS, re / MP_RP_ROWS, Xq, T, Y, ldy);
            r0 = re;
        }
        if (r0 >= r1) return;
    }
    /* ggml's IQ panel GEMM serves both MUL_MAT and MUL_MAT_ID (per expert)
     * from MP_PANEL_MIN_T tokens when the rows come in panels of 8 */
    if (mode != MP_MM_VEC_DOT && tb->panel[wtype] && T >= MP_PANEL_MIN_T && nrows % 8 == 0 && ncols % MP_QK_K == 0) {
        const size_t wrow = mp_row_size(wtype, ncols);
        tb->panel[wtype](ncols, (const uint8_t *)W + (size_t)r0 * wrow, wrow, r1 - r0, Xq,
                         mp_act_row_size(wtype, ncols), T, Y + r0, ldy);
        return;
    }
    const int step = tb->gemm_step[wtype];
    /* tinyBLAS serves MUL_MAT for T >= 2 when ncols % step == 0 and (float
     * types) nrows % 4 == 0 */
    if (mode != MP_MM_GEMM || T < 2 || !tb->gemm1[wtype] || (nrows % 4 && !tb->gemm_any_rows[wtype]) ||
        ncols % step) {
        mp_matmul_rows(wtype, W, ncols, r0, r1, Xq, T, Y, ldy);
        return;
    }
    const size_t wrow = mp_row_size(wtype, ncols), xrow = mp_act_row_size(wtype, ncols);
    const uint8_t *w = W, *x = Xq;
    int64_t r = r0;
    /* Each output is one accumulator chain, so tiling changes speed, not bits. */
    for (; r + MP_TILE_R <= r1; r += MP_TILE_R)
        for (int64_t t = 0; t < T; t += MP_TILE_C) {
            const int64_t c = T - t < MP_TILE_C ? T - t : MP_TILE_C;
            tb->gemm[wtype][c - 1](ncols, w + (size_t)r * wrow, wrow, x + (size_t)t * xrow, xrow, Y + t * ldy + r, ldy);
        }
    for (; r < r1; r++)
        for (int64_t t = 0; t < T; t++)
            tb->gemm1[wtype](ncols, w + (size_t)r * wrow, wrow, x + (size_t)t * xrow, xrow, Y + t * ldy + r, ldy);
}
