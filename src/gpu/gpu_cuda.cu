/* The CUDA side of gpu/gpu.h. Kept plain: one stream (the default one), one
 * kernel per op, f32 accumulation, weights dequantised element by element
 * with the same code the CPU tests check (gpu_dequant.h). Speed comes
 * later: this is the reference the faster kernels will be tested against.
 *
 * Built for one architecture plus its PTX (CMake: CMAKE_CUDA_ARCHITECTURES,
 * default 90), so newer devices JIT the PTX and the compile stays small. */
extern "C" {
#include "gpu/gpu.h"
}
#include "gpu/gpu_dequant.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

static int cuda_fail(mp_err *err, cudaError_t e, const char *what)
{
    return mp_err_set(err, MP_E_IO, "CUDA: %s: %s", what, cudaGetErrorString(e));
}

/* The status of the last launch (launch errors are reported at once; errors
 * inside a kernel surface at the next sync). */
static int launched(mp_err *err, const char *what)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, what);
}

extern "C" int mp_gpu_built(void) { return 1; }

extern "C" int mp_gpu_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

extern "C" int mp_gpu_init(char *name, size_t name_cap, uint64_t *free_bytes, uint64_t *total_bytes, mp_err *err)
{
    if (mp_gpu_device_count() < 1) return mp_err_set(err, MP_E_UNSUPPORTED, "CUDA: no device (cudaGetDeviceCount)");
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaSetDevice(0)");
    cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaGetDeviceProperties");
    if (name && name_cap) {
        strncpy(name, p.name, name_cap - 1);
        name[name_cap - 1] = 0;
    }
    size_t fr = 0, to = 0;
    e = cudaMemGetInfo(&fr, &to);
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaMemGetInfo");
    if (free_bytes) *free_bytes = fr;
    if (total_bytes) *total_bytes = to;
    return MP_OK;
}

extern "C" int mp_gpu_alloc(void **dptr, size_t bytes, mp_err *err)
{
    *dptr = NULL;
    cudaError_t e = cudaMalloc(dptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *dptr = NULL;
        cudaGetLastError();
        return mp_err_set(err, MP_E_NOMEM, "CUDA: cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
    }
    return MP_OK;
}

extern "C" void mp_gpu_free(void *dptr)
{
    if (dptr) cudaFree(dptr);
}

extern "C" int mp_gpu_upload(void *dst, const void *src, size_t bytes, mp_err *err)
{
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, "upload");
}

extern "C" int mp_gpu_download(void *dst, const void *src, size_t bytes, mp_err *err)
{
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, "download");
}

extern "C" int mp_gpu_host_alloc(void **ptr, size_t bytes, mp_err *err)
{
    *ptr = NULL;
    cudaError_t e = cudaHostAlloc(ptr, bytes ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        *ptr = NULL;
        cudaGetLastError();
        return mp_err_set(err, MP_E_NOMEM, "CUDA: cudaHostAlloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
    }
    return MP_OK;
}

extern "C" void mp_gpu_host_free(void *ptr)
{
    if (ptr) cudaFreeHost(ptr);
}

extern "C" int mp_gpu_upload_async(void *dst, const void *src, size_t bytes, mp_err *err)
{
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, 0);
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, "upload (async)");
}

extern "C" int mp_gpu_download_async(void *dst, const void *src, size_t bytes, mp_err *err)
{
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, 0);
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, "download (async)");
}

extern "C" int mp_gpu_sync(mp_err *err)
{
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? MP_OK : cuda_fail(err, e, "synchronize");
}

/* ---- matmul ---------------------------------------------------------------
 * One warp per weight row, up to MM_TT tokens per warp: the row is read once
 * per MM_TT tokens (decode: T = 1). Lanes take elements lane, lane + 32, ...
 * and the warp sums their partial dots with shuffles. */
#define MM_WARPS 4
#define MM_TT 8

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __global__ void k_matmul(uint32_t wtype, const uint8_t *W, size_t row_bytes, int64_t ncols, int64_t nrows,
                                const float *X, int64_t ldx, int64_t T, float *Y, int64_t ldy)
{
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int64_t t0 = (int64_t)blockIdx.y * MM_TT;
    if (r >= nrows) return;
    const int nt = T - t0 < MM_TT ? (int)(T - t0) : MM_TT;
    const uint8_t *row = W + (size_t)r * row_bytes;
    float acc[MM_TT];
    for (int j = 0; j < MM_TT; j++) acc[j] = 0.0f;
    for (int64_t i = lane; i < ncols; i += 32) {
        const float w = mp_gd_elem(wtype, row, i);
        for (int j = 0; j < MM_TT; j++)
            if (j < nt) acc[j] += w * X[(t0 + j) * ldx + i];
    }
    for (int j = 0; j < MM_TT; j++) {
        const float s = warp_sum(acc[j]);
        if (lane == 0 && j < nt) Y[(t0 + j) * ldy + r] = s;
    }
}

extern "C" int mp_gpu_matmul(uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const float *dX,
                             int64_t ldx, int64_t T, float *dY, int64_t ldy, mp_err *err)
{
    int bytes;
    const int bs = mp_gd_block(wtype, &bytes);
    if (bs == 0) return mp_err_set(err, MP_E_UNSUPPORTED, "CUDA matmul: weight type %u", wtype);
    if (ncols % bs) return mp_err_set(err, MP_E_INVAL, "CUDA matmul: %lld columns is not whole blocks of %d", (long long)ncols, bs);
    if (T <= 0 || nrows <= 0) return MP_OK;
    const size_t row_bytes = (size_t)(ncols / bs) * (size_t)bytes;
    dim3 grid((unsigned)((nrows + MM_WARPS - 1) / MM_WARPS), (unsigned)((T + MM_TT - 1) / MM_TT));
    k_matmul<<<grid, 32 * MM_WARPS>>>(wtype, (const uint8_t *)dW, row_bytes, ncols, nrows, dX, ldx, T, dY, ldy);
    return launched(err, "matmul");
}

/* ---- row ops -------------------------------------------------------------- */

static __device__ float block_sum(float v, float *sh)
{
    v = warp_sum(v);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

static __global__ void k_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, sh);
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * scale * (w ? w[i] : 1.0f);
}

extern "C" int mp_gpu_rmsnorm(float *dy, const float *dx, const float *dw, int64_t n, int64_t rows, float eps,
                              mp_err *err)
{
    if (rows <= 0) return MP_OK;
    k_rmsnorm<<<(unsigned)rows, 256>>>(dy, dx, dw, n, eps);
    return launched(err, "rmsnorm");
}

static __global__ void k_rope(float *x, int64_t ld, int n_head, int head_dim, int n_rot, const float *cs, int neox)
{
    const int t = blockIdx.x, half = n_rot / 2;
    for (int i = threadIdx.x; i < n_head * half; i += blockDim.x) {
        const int h = i / half, k = i % half;
        float *v = x + t * ld + (int64_t)h * head_dim;
        const float c = cs[(int64_t)t * n_rot + 2 * k], s = cs[(int64_t)t * n_rot + 2 * k + 1];
        const int a = neox ? k : 2 * k, b = neox ? k + half : 2 * k + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = fmaf(x0, c, -(x1 * s));
        v[b] = fmaf(x0, s, x1 * c);
    }
}

extern "C" int mp_gpu_rope(float *dx, int64_t ld, int T, int n_head, int head_dim, int n_rot, const float *dcs,
                           int neox, mp_err *err)
{
    if (T <= 0) return MP_OK;
    k_rope<<<T, 128>>>(dx, ld, n_head, head_dim, n_rot, dcs, neox);
    return launched(err, "rope");
}

static __global__ void k_swiglu(float *g, const float *u, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float x = g[i];
    g[i] = x / (1.0f + expf(-x)) * u[i];
}

extern "C" int mp_gpu_swiglu(float *dg, const float *du, int64_t n, int64_t rows, mp_err *err)
{
    const int64_t total = n * rows;
    if (total <= 0) return MP_OK;
    k_swiglu<<<(unsigned)((total + 255) / 256), 256>>>(dg, du, total);
    return launched(err, "swiglu");
}

/* one thread per token: X is a few hundred at most, K a few */
static __global__ void k_route(const float *logits, int T, int X, int K, int sigmoid, int norm, float scale,
                               int32_t *sel, float *w)
{
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float *l = logits + (int64_t)t * X;
    float mx = -INFINITY, sum = 0.0f;
    if (!sigmoid) {
        for (int e = 0; e < X; e++) mx = fmaxf(mx, l[e]);
        for (int e = 0; e < X; e++) sum += expf(l[e] - mx);
    }
    float wsum = 0.0f;
    for (int s = 0; s < K; s++) {
        int best = -1;
        float bv = -INFINITY;
        for (int e = 0; e < X; e++) {
            bool taken = false;
            for (int q = 0; q < s; q++) taken |= sel[t * K + q] == e;
            if (!taken && (best < 0 || l[e] > bv)) {
                best = e;
                bv = l[e];
            }
        }
        const float p = sigmoid ? 1.0f / (1.0f + expf(-bv)) : expf(bv - mx) / sum;
        sel[t * K + s] = best;
        w[t * K + s] = p;
        wsum += p;
    }
    for (int s = 0; s < K; s++) w[t * K + s] = (norm ? w[t * K + s] / wsum : w[t * K + s]) * scale;
}

extern "C" int mp_gpu_route(const float *dlogits, int T, int X, int K, int sigmoid, int norm, float scale,
                            int32_t *dsel, float *dw, mp_err *err)
{
    if (T <= 0) return MP_OK;
    k_route<<<(T + 63) / 64, 64>>>(dlogits, T, X, K, sigmoid, norm, scale, dsel, dw);
    return launched(err, "route");
}

/* ---- attention --------------------------------------------------------------
 * One block per (head, query); keys in tiles of blockDim with an online
 * softmax: each thread scores one key of the tile, then the threads add the
 * tile's weighted values into the head's f32 accumulator (one output dim
 * per thread, strided). Shared: scores (blockDim) + acc (Dv) floats. */
static __global__ void k_attention(float *out, const float *q, const uint16_t *k, const uint16_t *v, int pos0,
                                   int n_head, int n_head_kv, int D, int Dv, float kq_scale, int n_swa)
{
    extern __shared__ float sh[];
    float *sc = sh, *acc = sh + blockDim.x, *red = acc + Dv;
    const int h = blockIdx.x, t = blockIdx.y, hk = h / (n_head / n_head_kv);
    const int p = pos0 + t, lo = n_swa > 0 && p - n_swa + 1 > 0 ? p - n_swa + 1 : 0;
    const float *qh = q + ((int64_t)t * n_head + h) * D;
    for (int d = threadIdx.x; d < Dv; d += blockDim.x) acc[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int j0 = lo; j0 <= p; j0 += blockDim.x) {
        const int j = j0 + threadIdx.x;
        float s = -INFINITY;
        if (j <= p) {
            const uint16_t *kr = k + ((int64_t)j * n_head_kv + hk) * D;
            s = 0.0f;
            for (int d = 0; d < D; d++) s += qh[d] * mp_gd_h2f(kr[d]);
            s *= kq_scale;
        }
        sc[threadIdx.x] = s;
        /* tile max */
        float mx = s;
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
        __syncthreads();
        mx = -INFINITY;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
        const float mnew = fmaxf(m, mx), corr = expf(m - mnew);
        __syncthreads();
        const float e = j <= p ? expf(s - mnew) : 0.0f;
        sc[threadIdx.x] = e;
        __syncthreads();
        const int nj = p - j0 + 1 < (int)blockDim.x ? p - j0 + 1 : (int)blockDim.x;
        float ts = 0.0f;
        for (int jj = 0; jj < nj; jj++) ts += sc[jj];
        for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
            float a = acc[d] * corr;
            for (int jj = 0; jj < nj; jj++) a += sc[jj] * mp_gd_h2f(v[((int64_t)(j0 + jj) * n_head_kv + hk) * Dv + d]);
            acc[d] = a;
        }
        l = l * corr + ts;
        m = mnew;
        __syncthreads();
    }
    float *o = out + ((int64_t)t * n_head + h) * Dv;
    for (int d = threadIdx.x; d < Dv; d += blockDim.x) o[d] = acc[d] / l;
}

extern "C" int mp_gpu_attention(float *dout, const float *dq, const uint16_t *dk, const uint16_t *dv, int T,
                                int pos0, int n_head, int n_head_kv, int D, int Dv, float kq_scale, int n_swa,
                                mp_err *err)
{
    if (T <= 0) return MP_OK;
    if (n_head_kv <= 0 || n_head % n_head_kv)
        return mp_err_set(err, MP_E_INVAL, "CUDA attention: %d heads over %d kv heads", n_head, n_head_kv);
    const int threads = 128;
    const size_t shmem = (size_t)(threads + Dv + 32) * sizeof(float);
    dim3 grid((unsigned)n_head, (unsigned)T);
    k_attention<<<grid, threads, shmem>>>(dout, dq, dk, dv, pos0, n_head, n_head_kv, D, Dv, kq_scale, n_swa);
    return launched(err, "attention");
}

static __global__ void k_f32_to_f16(uint16_t *y, const float *x, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __half_as_ushort(__float2half_rn(x[i]));
}

extern "C" int mp_gpu_f32_to_f16(uint16_t *dy, const float *dx, int64_t n, mp_err *err)
{
    if (n <= 0) return MP_OK;
    k_f32_to_f16<<<(unsigned)((n + 255) / 256), 256>>>(dy, dx, n);
    return launched(err, "f32_to_f16");
}
