#include "ops.h"

#include "common/types.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

void mp_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void mp_rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float freq_base, float freq_scale,
             int neox)
{
    /* Angles computed as ggml does: theta_0 = pos, theta_{i+1} = theta_i * theta_scale. */
    float cs[1024];
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float t = freq_scale * theta;
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void mp_softmax(float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = expf(x[i] - max);
        sum += (double)e;
        x[i] = e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void mp_swiglu(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#if !defined(MP_FORCE_SCALAR) && defined(__x86_64__)
void mp_f16_to_f32_row_f16c(const uint16_t *x, float *y, int64_t n);
void mp_f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n);
#define MP_HAVE_F16C_ROWS 1
#endif

void mp_f16_to_f32_row(const uint16_t *x, float *y, int64_t n)
{
#ifdef MP_HAVE_F16C_ROWS
    if (mp_kernels_isa() >= MP_ISA_AVX2) {
        mp_f16_to_f32_row_f16c(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = mp_fp16_to_fp32(x[i]);
}

void mp_f32_to_f16_row(const float *x, uint16_t *y, int64_t n)
{
#ifdef MP_HAVE_F16C_ROWS
    if (mp_kernels_isa() >= MP_ISA_AVX2) {
        mp_f32_to_f16_row_f16c(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = mp_fp32_to_fp16(x[i]);
}

void mp_attend_f16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                   int64_t v_stride, int n_kv, int dk, int dv, float scale, float *scores, float *kbuf)
{
    const mp_vec_dot_fn dot = mp_get_vec_dot(MP_TYPE_F32);
    float max = -INFINITY;
    for (int j = 0; j < n_kv; j++) {
        mp_f16_to_f32_row(k + (int64_t)j * k_stride, kbuf, dk);
        float s;
        dot(dk, &s, kbuf, q);
        s *= scale;
        scores[j] = s;
        max = s > max ? s : max;
    }
    float sum = 0.0f;
    for (int j = 0; j < n_kv; j++) {
        scores[j] = expf(scores[j] - max);
        sum += scores[j];
    }
    memset(out, 0, (size_t)dv * sizeof(float));
    for (int j = 0; j < n_kv; j++) {
        mp_f16_to_f32_row(v + (int64_t)j * v_stride, kbuf, dv);
        const float p = scores[j];
        for (int d = 0; d < dv; d++) out[d] += p * kbuf[d];
    }
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int d = 0; d < dv; d++) out[d] *= inv;
}

void mp_attend_f16_acc16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int dk, int dv, float scale, float *qbuf, float *kbuf,
                         uint16_t *acc16)
{
    /* q in f16, and q.k with the F16 dot product, as ggml's one_chunk path */
    uint16_t *q16 = (uint16_t *)qbuf;
    mp_f32_to_f16_row(q, q16, dk);
    const mp_vec_dot_fn dot = mp_get_vec_dot(MP_TYPE_F16);
    float *acc = out; /* f32 view of the f16 accumulator, always f16-exact */
    memset(acc, 0, (size_t)dv * sizeof(float));
    float M = -INFINITY, S = 0.0f;
    for (int j = 0; j < n_kv; j++) {
        float s;
        dot(dk, &s, k + (int64_t)j * k_stride, q16);
        s *= scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            const float Mold = M;
            M = s;
            ms = expf(Mold - M);
            /* ggml_vec_scale_f16: the rescaled accumulator is rounded to f16 */
            for (int d = 0; d < dv; d++) acc[d] *= ms;
            mp_f32_to_f16_row(acc, acc16, dv);
            mp_f16_to_f32_row(acc16, acc, dv);
        } else {
            vs = expf(s - M);
        }
        mp_f16_to_f32_row(v + (int64_t)j * v_stride, kbuf, dv);
        for (int d = 0; d < dv; d++) acc[d] = fmaf(kbuf[d], vs, acc[d]);
        /* ggml_vec_mad_f16: rounded to f16 after the multiply-add */
        mp_f32_to_f16_row(acc, acc16, dv);
        mp_f16_to_f32_row(acc16, acc, dv);
        S = S * ms + vs;
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] = acc[d] * inv;
}
