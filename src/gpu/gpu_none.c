/* The device API of a build without CUDA: no device, every call refused.
 * (Excluded from the build when CMake compiles src/gpu/gpu_cuda.cu.) */
#include "gpu/gpu.h"

static int none(mp_err *err) { return mp_err_set(err, MP_E_UNSUPPORTED, "this build has no CUDA (configure with nvcc on PATH or -DMP_CUDA=ON)"); }

int mp_gpu_device_count(void) { return 0; }
int mp_gpu_built(void) { return 0; }
int mp_gpu_init(char *name, size_t name_cap, uint64_t *free_bytes, uint64_t *total_bytes, mp_err *err) { return none(err); }
int mp_gpu_alloc(void **dptr, size_t bytes, mp_err *err)
{
    *dptr = NULL;
    return none(err);
}
void mp_gpu_free(void *dptr) { (void)dptr; }
int mp_gpu_upload(void *dst, const void *src, size_t bytes, mp_err *err) { return none(err); }
int mp_gpu_download(void *dst, const void *src, size_t bytes, mp_err *err) { return none(err); }
int mp_gpu_sync(mp_err *err) { return none(err); }
int mp_gpu_host_alloc(void **ptr, size_t bytes, mp_err *err)
{
    *ptr = NULL;
    return none(err);
}
void mp_gpu_host_free(void *ptr) { (void)ptr; }
int mp_gpu_upload_async(void *dst, const void *src, size_t bytes, mp_err *err) { return none(err); }
int mp_gpu_download_async(void *dst, const void *src, size_t bytes, mp_err *err) { return none(err); }
int mp_gpu_matmul(uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const float *dX, int64_t ldx,
                  int64_t T, float *dY, int64_t ldy, mp_err *err)
{
    return none(err);
}
int mp_gpu_rmsnorm(float *dy, const float *dx, const float *dw, int64_t n, int64_t rows, float eps, mp_err *err)
{
    return none(err);
}
int mp_gpu_rope(float *dx, int64_t ld, int T, int n_head, int head_dim, int n_rot, const float *dcs, int neox,
                mp_err *err)
{
    return none(err);
}
int mp_gpu_swiglu(float *dg, const float *du, int64_t n, int64_t rows, mp_err *err) { return none(err); }
int mp_gpu_route(const float *dlogits, int T, int X, int K, int sigmoid, int norm, float scale, int32_t *dsel,
                 float *dw, mp_err *err)
{
    return none(err);
}
int mp_gpu_attention(float *dout, const float *dq, const uint16_t *dk, const uint16_t *dv, int T, int pos0,
                     int n_head, int n_head_kv, int D, int Dv, float kq_scale, int n_swa, mp_err *err)
{
    return none(err);
}
int mp_gpu_f32_to_f16(uint16_t *dy, const float *dx, int64_t n, mp_err *err) { return none(err); }
