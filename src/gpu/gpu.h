/* The CUDA device, as plain C: memory, copies and the kernels of the forward
 * pass. Built from src/gpu/gpu_cuda.cu when the build has CUDA (MP_HAVE_CUDA),
 * from src/gpu/gpu_none.c otherwise (every call then returns
 * MP_E_UNSUPPORTED and mp_gpu_device_count() returns 0), so callers need no
 * #ifdef.
 *
 * Pointers named d* are device pointers. Shapes follow the CPU kernels:
 * a weight W of type wtype has nrows rows of ncols (ggml ne0) elements,
 * row r at byte r * mp_row_size(wtype, ncols); activations are f32 rows.
 * Every kernel accumulates in f32. Kernels run on the device's one stream
 * in call order; mp_gpu_sync() waits for them. Functions return MP_OK or a
 * negative status and fill err (which names the CUDA error). */
#ifndef MP_GPU_H
#define MP_GPU_H

#include "common/err.h"

#include <stddef.h>
#include <stdint.h>

/* Devices usable now: 0 when built without CUDA, when there is no driver or
 * no device (cudaGetDeviceCount failing counts as 0). */
int mp_gpu_device_count(void);
/* True when this build compiled the CUDA code. */
int mp_gpu_built(void);
/* Selects device 0 and reports its name and memory. */
int mp_gpu_init(char *name, size_t name_cap, uint64_t *free_bytes, uint64_t *total_bytes, mp_err *err);

int mp_gpu_alloc(void **dptr, size_t bytes, mp_err *err);
void mp_gpu_free(void *dptr); /* NULL-safe */
int mp_gpu_upload(void *dst, const void *src, size_t bytes, mp_err *err);
int mp_gpu_download(void *dst, const void *src, size_t bytes, mp_err *err);
int mp_gpu_sync(mp_err *err);
/* Page-locked host memory (copies from and to it are asynchronous). */
int mp_gpu_host_alloc(void **ptr, size_t bytes, mp_err *err);
void mp_gpu_host_free(void *ptr); /* NULL-safe */
/* Queued on the stream behind the kernels; return at once when the host
 * side is page-locked. src / dst must stay valid until mp_gpu_sync. */
int mp_gpu_upload_async(void *dst, const void *src, size_t bytes, mp_err *err);
int mp_gpu_download_async(void *dst, const void *src, size_t bytes, mp_err *err);

/* Y[t * ldy + r] = sum_i W[r][i] * X[t * ldx + i], r < nrows, t < T.
 * Every weight type of kernels.h (F32, F16, BF16, Q4_0, Q8_0, Q2_K..Q6_K,
 * IQ4_NL, IQ4_XS, MXFP4), dequantised in the kernel (gpu_dequant.h). */
int mp_gpu_matmul(uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const float *dX, int64_t ldx,
                  int64_t T, float *dY, int64_t ldy, mp_err *err);
/* y = x / sqrt(mean(x^2) + eps) * w, rows of n (w may be NULL: no weight). */
int mp_gpu_rmsnorm(float *dy, const float *dx, const float *dw, int64_t n, int64_t rows, float eps, mp_err *err);
/* Rotates n_rot dims of each of n_head heads (head_dim apart) of T rows
 * (ld apart) by dcs (T, n_rot): cos, sin pairs per token, from the host (so
 * normal, NEOX and YaRN angles are the CPU's own). neox: split-half pairs. */
int mp_gpu_rope(float *dx, int64_t ld, int T, int n_head, int head_dim, int n_rot, const float *dcs, int neox,
                mp_err *err);
/* g = silu(g) * u over rows * n. */
int mp_gpu_swiglu(float *dg, const float *du, int64_t n, int64_t rows, mp_err *err);
/* Routing of T tokens over X experts: softmax (or sigmoid) of dlogits
 * (T, X), top k per token (ties: lower index), weights renormalised to sum
 * 1 when norm, then times scale. dsel, dw: (T, K). */
int mp_gpu_route(const float *dlogits, int T, int X, int K, int sigmoid, int norm, float scale, int32_t *dsel,
                 float *dw, mp_err *err);
/* Causal attention of T queries at positions pos0.. over an f16 cache of
 * n_kv >= pos0 + T keys: dq (T, n_head * D), dk (n_kv, n_head_kv * D),
 * dv (n_kv, n_head_kv * Dv), dout (T, n_head * Dv). Query t sees keys
 * [max(0, p - n_swa + 1) if n_swa > 0 else 0, p] with p = pos0 + t; scores
 * scaled by kq_scale; GQA: head h reads kv head h / (n_head / n_head_kv). */
int mp_gpu_attention(float *dout, const float *dq, const uint16_t *dk, const uint16_t *dv, int T, int pos0,
                     int n_head, int n_head_kv, int D, int Dv, float kq_scale, int n_swa, mp_err *err);
/* f32 -> f16 rows into the KV cache: n floats. */
int mp_gpu_f32_to_f16(uint16_t *dy, const float *dx, int64_t n, mp_err *err);

#endif
