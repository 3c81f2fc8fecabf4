/* The backend seam (src/gpu/backend.h). On every machine, the sim device:
 * placement and statistics through mp_backend_expert, no device pointers
 * (so the forward pass computes on the CPU), mp_backend_weight NULL. The
 * device path emulated on the CPU (sim-exec), and on a CUDA device (else
 * that part exits 77): resident ranges copied up and found
 * by any pointer inside them; mp_backend_matmul over the CPU kernels'
 * quantised activations (every activation type) against mp_matmul_rows on
 * the same activations; an expert promoted into a VRAM slot then multiplied
 * from there; a hit on the next use. */
#include "common/err.h"
#include "gpu/backend.h"
#include "gpu/gpu.h"
#include "kernels/kernels.h"
#include "mp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x1234567887654321ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) % 2000001) / 1000000.0f - 1.0f;
}

static const mp_tier_costs costs = {.pcie_Bps = 25e9, .cpu_Bps = 20e9, .cpu_tok_tile = 4, .gpu_Bps = 2e12,
                                    .gpu_launch_s = 10e-6};

/* W (nrows x ncols of type t), random */
static uint8_t *make_w(uint32_t t, int64_t ncols, int64_t nrows)
{
    const size_t rs = mp_row_size(t, ncols);
    uint8_t *w = malloc(rs * nrows);
    float *row = malloc(ncols * 4);
    for (int64_t r = 0; r < nrows; r++) {
        for (int64_t i = 0; i < ncols; i++) row[i] = frand();
        mp_quantize_row_ref(t, row, w + r * rs, ncols);
    }
    free(row);
    return w;
}

static void test_sim(void)
{
    uint8_t *a = make_w(MP_TYPE_Q8_0, 256, 64);
    const mp_backend_range r[1] = {{a, mp_row_size(MP_TYPE_Q8_0, 256) * 64}};
    mp_backend_params bp = {.tier = {.kind = MP_DEVICE_SIM, .costs = costs, .n_layer = 2, .n_expert = 4},
                            .resident = r, .n_resident = 1, .max_cols = 256, .max_rows = 256};
    mp_err err = {0};
    CHECK(mp_vram_plan_make(&bp.tier.plan, 64 << 20, r[0].bytes, 0, 0, 1 << 20, 8, 2, &err) == MP_OK);
    mp_backend *b = NULL;
    CHECKF(mp_backend_create(&b, &bp, &err) == MP_OK, "%s", err.msg);
    if (!b) return;
    CHECK(!strcmp(mp_backend_name(b), "sim"));
    CHECK(mp_backend_weight(b, a) == NULL && mp_backend_weight(b, a + 100) == NULL);
    const void *host[3] = {a, a, a}, *dev[3] = {a, a, a};
    const size_t bytes[3] = {1000, 1000, 1000};
    mp_backend_begin_layer(b, 0, 16);
    const mp_run_where w = mp_backend_expert(b, 0, 3, 16, host, bytes, dev);
    CHECKF(w == MP_RUN_GPU_COPY, "16 tokens: a copy pays (%d)", w);
    CHECK(dev[0] == NULL && dev[1] == NULL && dev[2] == NULL);
    CHECK(mp_backend_expert(b, 0, 3, 16, host, bytes, dev) == MP_RUN_GPU_HIT);
    mp_tier_stats_gpu st;
    mp_tier_get_stats(mp_backend_tier(b), &st);
    CHECK(st.demands == 2 && st.hits == 1 && st.promotions == 1 && st.run_gpu == 2);
    CHECK(mp_backend_status(b, &err) == MP_OK);
    mp_backend_free(b);
    free(a);
}

/* The device path: on CUDA, or emulated on the CPU (sim-exec). */
static void test_device(mp_device_kind kind, bool emulate)
{
    const uint32_t types[] = {MP_TYPE_F32, MP_TYPE_F16, MP_TYPE_BF16, MP_TYPE_Q8_0, MP_TYPE_Q4_K, MP_TYPE_IQ4_XS};
    enum { NT = sizeof types / sizeof types[0], COLS = 512, ROWS = 96, T = 70 }; /* T > the 64-token staging pass */
    uint8_t *w[NT];
    mp_backend_range r[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = make_w(types[i], COLS, ROWS);
        r[i] = (mp_backend_range){w[i], mp_row_size(types[i], COLS) * ROWS};
    }
    const size_t eb = r[4].bytes; /* an expert: three Q4_K matrices of ROWS x COLS */
    mp_backend_params bp = {.tier = {.kind = kind, .costs = costs, .n_layer = 1, .n_expert = 4},
                            .resident = r, .n_resident = NT, .max_cols = COLS, .max_rows = ROWS, .emulate = emulate};
    mp_err err = {0};
    CHECK(mp_vram_plan_make(&bp.tier.plan, 256 << 20, 1 << 20, 0, 0, 3 * eb, 4, 1, &err) == MP_OK);
    mp_backend *b = NULL;
    if (mp_backend_create(&b, &bp, &err) != MP_OK) {
        CHECKF(0, "create: %s", err.msg);
        return;
    }
    float *x = malloc(T * COLS * 4), *yc = malloc(T * ROWS * 4), *yg = malloc(T * ROWS * 4);
    uint8_t *xq = malloc(T * mp_act_row_size(MP_TYPE_F32, COLS));
    for (int i = 0; i < T * COLS; i++) x[i] = frand();
    for (int i = 0; i < NT; i++) {
        const uint32_t t = types[i];
        const void *d = mp_backend_weight(b, w[i]);
        CHECKF(d != NULL, "%s: no device copy", mp_type_name(t));
        CHECK(mp_backend_weight(b, w[i] + 37) == (const uint8_t *)d + 37);
        const size_t arow = mp_act_row_size(t, COLS);
        for (int k = 0; k < T; k++) mp_quantize_act(t, x + k * COLS, xq + k * arow, COLS);
        mp_matmul_rows(t, w[i], COLS, 0, ROWS, xq, T, yc, ROWS);
        mp_backend_matmul(b, t, d, COLS, ROWS, xq, T, yg, ROWS);
        CHECKF(mp_backend_status(b, &err) == MP_OK, "%s", err.msg);
        double mx = 0, mag = 1e-9;
        for (int k = 0; k < T * ROWS; k++) mx = fmax(mx, fabs(yc[k] - yg[k])), mag = fmax(mag, fabs(yc[k]));
        CHECKF(mx <= 1e-4 * mag, "%s %s: max diff %g of %g", mp_backend_name(b), mp_type_name(t), mx, mag);
    }
    /* queued together, then one wait: 300 tokens each overflow the staging
     * (256 tokens of the widest matrix), so start waits on its own too */
    {
        enum { T2 = 300 };
        float *x2 = malloc((size_t)T2 * COLS * 4), *yc2[NT], *yg2[NT];
        uint8_t *xq2[NT];
        for (int i = 0; i < T2 * COLS; i++) x2[i] = frand();
        for (int i = 0; i < NT; i++) {
            const size_t arow = mp_act_row_size(types[i], COLS);
            xq2[i] = malloc((size_t)T2 * arow);
            yc2[i] = malloc((size_t)T2 * ROWS * 4);
            yg2[i] = malloc((size_t)T2 * ROWS * 4);
            for (int k = 0; k < T2; k++) mp_quantize_act(types[i], x2 + k * COLS, xq2[i] + k * arow, COLS);
            mp_matmul_rows(types[i], w[i], COLS, 0, ROWS, xq2[i], T2, yc2[i], ROWS);
            mp_backend_matmul_start(b, types[i], mp_backend_weight(b, w[i]), COLS, ROWS, xq2[i], T2, yg2[i], ROWS);
        }
        mp_backend_wait(b);
        CHECKF(mp_backend_status(b, &err) == MP_OK, "%s", err.msg);
        for (int i = 0; i < NT; i++) {
            double mx = 0, mag = 1e-9;
            for (int k = 0; k < T2 * ROWS; k++) mx = fmax(mx, fabs(yc2[i][k] - yg2[i][k])), mag = fmax(mag, fabs(yc2[i][k]));
            CHECKF(mx <= 1e-4 * mag, "queued %s: max diff %g of %g", mp_type_name(types[i]), mx, mag);
            free(xq2[i]), free(yc2[i]), free(yg2[i]);
        }
        free(x2);
    }
    /* an expert: promoted, its down matrix (the third) multiplied from its slot */
    uint8_t *ex = make_w(MP_TYPE_Q4_K, COLS, 3 * ROWS);
    const void *host[3] = {ex, ex + eb, ex + 2 * eb}, *dev[3];
    const size_t bytes[3] = {eb, eb, eb};
    mp_backend_begin_layer(b, 0, 64);
    const mp_run_where where = mp_backend_expert(b, 0, 2, 64, host, bytes, dev);
    CHECKF(where == MP_RUN_GPU_COPY && dev[2], "placed %d", where);
    if (dev[2]) {
        const size_t arow = mp_act_row_size(MP_TYPE_Q4_K, COLS);
        for (int k = 0; k < T; k++) mp_quantize_act(MP_TYPE_Q4_K, x + k * COLS, xq + k * arow, COLS);
        mp_matmul_rows(MP_TYPE_Q4_K, host[2], COLS, 0, ROWS, xq, T, yc, ROWS);
        mp_backend_matmul(b, MP_TYPE_Q4_K, dev[2], COLS, ROWS, xq, T, yg, ROWS);
        double mx = 0, mag = 1e-9;
        for (int k = 0; k < T * ROWS; k++) mx = fmax(mx, fabs(yc[k] - yg[k])), mag = fmax(mag, fabs(yc[k]));
        CHECKF(mx <= 1e-4 * mag, "expert down from its slot: max diff %g of %g", mx, mag);
    }
    CHECK(mp_backend_expert(b, 0, 2, 64, host, bytes, dev) == MP_RUN_GPU_HIT);
    CHECKF(mp_backend_status(b, &err) == MP_OK, "%s", err.msg);
    mp_backend_free(b);
    for (int i = 0; i < NT; i++) free(w[i]);
    free(ex), free(x), free(yc), free(yg), free(xq);
}

int main(void)
{
    mp_kernels_init();
    test_sim();
    test_device(MP_DEVICE_SIM, true);
    if (mp_test_failures) MP_TEST_DONE();
    if (!mp_gpu_built()) MP_TEST_SKIP("(sim and sim-exec passed) this build has no CUDA");
    if (mp_gpu_device_count() < 1)
        MP_TEST_SKIP("(sim and sim-exec passed) no CUDA device (cudaGetDeviceCount failed or returned 0)");
    test_device(MP_DEVICE_CUDA, false);
    MP_TEST_DONE();
}
