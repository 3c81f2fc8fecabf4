/* Every CUDA kernel (src/gpu/gpu.h) against the CPU reference on random
 * data: matmul for each weight type (T = 1, 5, 19 tokens), RMSNorm, RoPE
 * (normal and NEOX, YaRN-style scaled tables), SwiGLU, routing (softmax and
 * sigmoid, renormalised or not), causal attention over an f16 cache (GQA,
 * sliding window), f32 -> f16. Tolerances are relative to the magnitude of
 * the sum (f32 accumulation in another order): 1e-4 for float weights and
 * quantised ones alike, since both sides use the same dequantised values and
 * f32 activations. Exits 77 without a device. */
#include "common/err.h"
#include "gpu/gpu.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "mp_test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

static mp_err err;
#define OK(call) CHECKF((call) == MP_OK, "%s: %s", #call, err.msg)

static void *dup_to_device(const void *src, size_t n)
{
    void *d = NULL;
    OK(mp_gpu_alloc(&d, n, &err));
    if (d) OK(mp_gpu_upload(d, src, n, &err));
    return d;
}

static void test_matmul(uint32_t t, int64_t ncols, int64_t nrows, int64_t T)
{
    const size_t rs = mp_row_size(t, ncols);
    uint8_t *W = malloc(rs * nrows);
    float *row = malloc(ncols * 4), *X = malloc(T * ncols * 4), *Y = malloc(T * nrows * 4);
    for (int64_t r = 0; r < nrows; r++) {
        for (int64_t i = 0; i < ncols; i++) row[i] = frand();
        mp_quantize_row_ref(t, row, W + r * rs, ncols);
    }
    for (int64_t i = 0; i < T * ncols; i++) X[i] = frand();
    void *dW = dup_to_device(W, rs * nrows);
    float *dX = dup_to_device(X, T * ncols * 4), *dY = NULL;
    OK(mp_gpu_alloc((void **)&dY, T * nrows * 4, &err));
    OK(mp_gpu_matmul(t, dW, ncols, nrows, dX, ncols, T, dY, nrows, &err));
    OK(mp_gpu_download(Y, dY, T * nrows * 4, &err));
    int bad = 0;
    for (int64_t r = 0; r < nrows; r++) {
        mp_dequantize_row(t, W + r * rs, row, ncols);
        for (int64_t tt = 0; tt < T; tt++) {
            double s = 0, mag = 0;
            for (int64_t i = 0; i < ncols; i++) {
                s += (double)row[i] * X[tt * ncols + i];
                mag += fabs((double)row[i] * X[tt * ncols + i]);
            }
            const double got = Y[tt * nrows + r];
            if (!(fabs(got - s) <= 1e-4 * mag + 1e-6) && bad++ < 3)
                fprintf(stderr, "matmul %s %lldx%lld T=%lld row %lld tok %lld: gpu %.8g cpu %.8g\n", mp_type_name(t),
                        (long long)nrows, (long long)ncols, (long long)T, (long long)r, (long long)tt, got, s);
        }
    }
    CHECKF(bad == 0, "matmul %s T=%lld: %d outputs off", mp_type_name(t), (long long)T, bad);
    mp_gpu_free(dW);
    mp_gpu_free(dX);
    mp_gpu_free(dY);
    free(W), free(row), free(X), free(Y);
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double mx = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) mag = fmax(mag, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, isnan(a[i]) ? INFINITY : fabs((double)a[i] - b[i]));
    return mx / mag;
}

static void test_rows(void)
{
    enum { N = 1536, R = 7 };
    static float x[N * R], w[N], y[N * R], ref[N * R], u[N * R];
    for (int i = 0; i < N * R; i++) x[i] = frand() * 3, u[i] = frand();
    for (int i = 0; i < N; i++) w[i] = frand();
    float *dx = dup_to_device(x, sizeof x), *dw = dup_to_device(w, sizeof w), *du = dup_to_device(u, sizeof u);
    float *dy = NULL;
    OK(mp_gpu_alloc((void **)&dy, sizeof y, &err));
    OK(mp_gpu_rmsnorm(dy, dx, dw, N, R, 1e-6f, &err));
    OK(mp_gpu_download(y, dy, sizeof y, &err));
    for (int r = 0; r < R; r++) mp_rmsnorm(ref + r * N, x + r * N, w, N, 1e-6f);
    CHECKF(max_rel(y, ref, N * R) < 1e-5, "rmsnorm: %g", max_rel(y, ref, N * R));

    OK(mp_gpu_swiglu(dx, du, N, R, &err));
    OK(mp_gpu_download(y, dx, sizeof y, &err));
    memcpy(ref, x, sizeof x);
    for (int r = 0; r < R; r++) mp_swiglu(ref + r * N, u + r * N, N);
    CHECKF(max_rel(y, ref, N * R) < 1e-5, "swiglu: %g", max_rel(y, ref, N * R));

    /* f32 -> f16: bit-exact with the CPU's round to nearest even */
    static uint16_t h[N], href[N];
    uint16_t *dh = NULL;
    OK(mp_gpu_alloc((void **)&dh, sizeof h, &err));
    OK(mp_gpu_upload(dx, x, sizeof x, &err));
    OK(mp_gpu_f32_to_f16(dh, dx, N, &err));
    OK(mp_gpu_download(h, dh, sizeof h, &err));
    mp_f32_to_f16_row(x, href, N);
    CHECKF(memcmp(h, href, sizeof h) == 0, "f32_to_f16 differs");
    mp_gpu_free(dx), mp_gpu_free(dw), mp_gpu_free(du), mp_gpu_free(dy), mp_gpu_free(dh);
}

/* RoPE: the CPU's mp_rope angles (theta_{i+1} = theta_i * base^(-2/n_rot))
 * as a table; a YaRN-like table scales the magnitudes too. */
static void test_rope(int neox, int n_rot, float mscale)
{
    enum { T = 5, H = 4, D = 64 };
    static float x[T * H * D], y[T * H * D], ref[T * H * D], cs[T * 64];
    for (int i = 0; i < T * H * D; i++) x[i] = frand();
    memcpy(ref, x, sizeof x);
    for (int t = 0; t < T; t++) {
        const float ts = powf(10000.0f, -2.0f / (float)n_rot);
        float th = (float)(t + 11);
        for (int k = 0; k < n_rot / 2; k++, th *= ts) {
            cs[t * n_rot + 2 * k] = cosf(th) * mscale;
            cs[t * n_rot + 2 * k + 1] = sinf(th) * mscale;
        }
        if (mscale == 1.0f) {
            mp_rope(ref + t * H * D, H, D, n_rot, t + 11, 10000.0f, 1.0f, neox);
        } else { /* scaled table: apply by hand */
            for (int hh = 0; hh < H; hh++)
                for (int k = 0; k < n_rot / 2; k++) {
                    float *v = ref + t * H * D + hh * D;
                    const int a = neox ? k : 2 * k, b = neox ? k + n_rot / 2 : 2 * k + 1;
                    const float c = cs[t * n_rot + 2 * k], s = cs[t * n_rot + 2 * k + 1], x0 = v[a], x1 = v[b];
                    v[a] = fmaf(x0, c, -(x1 * s));
                    v[b] = fmaf(x0, s, x1 * c);
                }
        }
    }
    float *dx = dup_to_device(x, sizeof x), *dcs = dup_to_device(cs, sizeof cs);
    OK(mp_gpu_rope(dx, H * D, T, H, D, n_rot, dcs, neox, &err));
    OK(mp_gpu_download(y, dx, sizeof y, &err));
    CHECKF(max_rel(y, ref, T * H * D) < 1e-5, "rope neox=%d n_rot=%d: %g", neox, n_rot, max_rel(y, ref, T * H * D));
    mp_gpu_free(dx), mp_gpu_free(dcs);
}

static void test_route(int sigmoid, int norm)
{
    enum { T = 9, X = 64, K = 6 };
    static float l[T * X], w[T * K];
    static int32_t sel[T * K];
    for (int i = 0; i < T * X; i++) l[i] = frand() * 4;
    float *dl = dup_to_device(l, sizeof l), *dw = NULL;
    int32_t *ds = NULL;
    OK(mp_gpu_alloc((void **)&dw, sizeof w, &err));
    OK(mp_gpu_alloc((void **)&ds, sizeof sel, &err));
    OK(mp_gpu_route(dl, T, X, K, sigmoid, norm, 2.5f, ds, dw, &err));
    OK(mp_gpu_download(w, dw, sizeof w, &err));
    OK(mp_gpu_download(sel, ds, sizeof sel, &err));
    for (int t = 0; t < T; t++) {
        double p[X], mx = -1e30, sum = 0, wsum = 0;
        for (int e = 0; e < X; e++) mx = fmax(mx, l[t * X + e]);
        for (int e = 0; e < X; e++) sum += exp(l[t * X + e] - mx);
        for (int e = 0; e < X; e++) p[e] = sigmoid ? 1 / (1 + exp(-l[t * X + e])) : exp(l[t * X + e] - mx) / sum;
        int used[X] = {0}, want[K];
        for (int s = 0; s < K; s++) {
            int b = -1;
            for (int e = 0; e < X; e++)
                if (!used[e] && (b < 0 || l[t * X + e] > l[t * X + b])) b = e;
            used[b] = 1, want[s] = b, wsum += p[b];
        }
        for (int s = 0; s < K; s++) {
            const double ww = (norm ? p[want[s]] / wsum : p[want[s]]) * 2.5;
            CHECKF(sel[t * K + s] == want[s], "route tok %d slot %d: %d vs %d", t, s, sel[t * K + s], want[s]);
            CHECKF(fabs(w[t * K + s] - ww) < 1e-5 * fabs(ww) + 1e-7, "route weight %g vs %g", w[t * K + s], ww);
        }
    }
    mp_gpu_free(dl), mp_gpu_free(dw), mp_gpu_free(ds);
}

static void test_attention(int T, int pos0, int n_swa)
{
    const int H = 8, HK = 2, D = 128, DV = 128, NKV = pos0 + T;
    float *q = malloc((size_t)T * H * D * 4), *out = malloc((size_t)T * H * DV * 4), *ref = malloc((size_t)T * H * DV * 4);
    uint16_t *k = malloc((size_t)NKV * HK * D * 2), *v = malloc((size_t)NKV * HK * DV * 2);
    for (int i = 0; i < T * H * D; i++) q[i] = frand();
    for (int i = 0; i < NKV * HK * D; i++) k[i] = mp_fp32_to_fp16(frand());
    for (int i = 0; i < NKV * HK * DV; i++) v[i] = mp_fp32_to_fp16(frand());
    const float scale = 1.0f / sqrtf((float)D);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const int p = pos0 + t, hk = h / (H / HK), lo = n_swa > 0 && p - n_swa + 1 > 0 ? p - n_swa + 1 : 0;
            double mx = -1e30, sum = 0, acc[128] = {0};
            double *s = malloc(sizeof(double) * (p + 1));
            for (int j = lo; j <= p; j++) {
                double d = 0;
                for (int i = 0; i < D; i++) d += (double)q[(t * H + h) * D + i] * mp_fp16_to_fp32(k[(j * HK + hk) * D + i]);
                s[j] = d * scale;
                mx = fmax(mx, s[j]);
            }
            for (int j = lo; j <= p; j++) {
                const double e = exp(s[j] - mx);
                sum += e;
                for (int i = 0; i < DV; i++) acc[i] += e * mp_fp16_to_fp32(v[(j * HK + hk) * DV + i]);
            }
            for (int i = 0; i < DV; i++) ref[(t * H + h) * DV + i] = (float)(acc[i] / sum);
            free(s);
        }
    float *dq = dup_to_device(q, (size_t)T * H * D * 4), *dout = NULL;
    uint16_t *dk = dup_to_device(k, (size_t)NKV * HK * D * 2), *dv = dup_to_device(v, (size_t)NKV * HK * DV * 2);
    OK(mp_gpu_alloc((void **)&dout, (size_t)T * H * DV * 4, &err));
    OK(mp_gpu_attention(dout, dq, dk, dv, T, pos0, H, HK, D, DV, scale, n_swa, &err));
    OK(mp_gpu_download(out, dout, (size_t)T * H * DV * 4, &err));
    double mx = 0;
    for (int i = 0; i < T * H * DV; i++) mx = fmax(mx, fabs((double)out[i] - ref[i]));
    CHECKF(mx < 1e-4, "attention T=%d pos0=%d swa=%d: max abs diff %g", T, pos0, n_swa, mx);
    mp_gpu_free(dq), mp_gpu_free(dout), mp_gpu_free(dk), mp_gpu_free(dv);
    free(q), free(out), free(ref), free(k), free(v);
}

int main(void)
{
    if (!mp_gpu_built()) MP_TEST_SKIP("this build has no CUDA (no nvcc at configure time, or -DMP_CUDA=OFF)");
    if (mp_gpu_device_count() < 1) MP_TEST_SKIP("no CUDA device (cudaGetDeviceCount failed or returned 0)");
    char name[256];
    uint64_t fr = 0, to = 0;
    OK(mp_gpu_init(name, sizeof name, &fr, &to, &err));
    printf("device: %s, %.1f of %.1f GiB free\n", name, fr / 1073741824.0, to / 1073741824.0);
    mp_kernels_init();
    const uint32_t types[] = {MP_TYPE_F32,  MP_TYPE_F16,  MP_TYPE_BF16, MP_TYPE_Q4_0,   MP_TYPE_Q8_0,
                              MP_TYPE_Q2_K, MP_TYPE_Q3_K, MP_TYPE_Q4_K, MP_TYPE_Q5_K,   MP_TYPE_Q6_K,
                              MP_TYPE_IQ4_NL, MP_TYPE_IQ4_XS, MP_TYPE_MXFP4};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        test_matmul(types[i], 512, 67, 1);
        test_matmul(types[i], 768, 130, 5);
        test_matmul(types[i], 256, 33, 19);
    }
    test_rows();
    test_rope(0, 64, 1.0f);
    test_rope(1, 64, 1.0f);
    test_rope(1, 32, 1.0f);
    test_rope(1, 64, 1.1386f); /* YaRN: the table carries the magnitude */
    test_route(0, 1);
    test_route(0, 0);
    test_route(1, 1);
    test_attention(1, 0, 0);
    test_attention(1, 300, 0);
    test_attention(37, 100, 0);
    test_attention(20, 200, 64);
    OK(mp_gpu_sync(&err));
    MP_TEST_DONE();
}
