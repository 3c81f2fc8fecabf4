/* The compute backend seam of the forward pass. Without one (NULL) the
 * forward pass computes everything with the CPU kernels, as it always has.
 * With one, two things go through it:
 *
 *   resident matmuls   every weight registered at create (the resident,
 *                      non-expert tensors) has a device copy; a matmul
 *                      whose weight has one runs on the device
 *                      (mp_backend_weight, mp_backend_matmul);
 *   routed experts     mp_backend_expert decides with the VRAM tier
 *                      (gpu/tier.h) where each expert of a layer runs,
 *                      promoting it RAM -> VRAM when that pays, and hands
 *                      back its device copies (or NULL: the CPU runs it).
 *
 * Kinds: "cuda" (a device; weights copied up), "sim-exec" (sim emulating
 * the cuda path on the CPU, see mp_backend_params.emulate), and "sim": the CPU backend
 * posing as a device with its own VRAM budget and given cost constants. sim
 * makes the same placement decisions and keeps the same statistics but
 * hands back no device pointers, so the CPU computes everything and the
 * output is bit for bit the CPU's: the tier logic runs in CI on any machine.
 *
 * Errors on the device are sticky: the first one is kept and every later
 * call reports it (mp_backend_status), so the forward pass checks once per
 * chunk. Single-threaded: the forward pass's thread owns it. */
#ifndef MP_GPU_BACKEND_H
#define MP_GPU_BACKEND_H

#include "common/err.h"
#include "gpu/tier.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mp_backend mp_backend;

typedef struct mp_backend_range {
    const void *host; /* a resident tensor's bytes in RAM */
    size_t bytes;
} mp_backend_range;

typedef struct mp_backend_params {
    mp_tier_params tier;           /* kind, plan, costs, n_layer, n_expert */
    const mp_backend_range *resident; /* copied up at create (cuda); n_resident of them */
    size_t n_resident;
    int64_t max_cols, max_rows;    /* the widest matrix the staging buffers take at once */
    /* sim only: emulate the CUDA path on the CPU ("sim-exec"): device memory
     * is host memory, every device matmul computes what the CUDA kernel
     * computes (weights decoded by gpu_dequant.h, f32 activations, 32 lane
     * sums of FMAs reduced as the warp's shuffles), through the same
     * staging, queue and expert slots; so CI runs the device path of the
     * forward pass, and its logits are the CUDA run's reference. */
    bool emulate;
} mp_backend_params;

int mp_backend_create(mp_backend **out, const mp_backend_params *p, mp_err *err);
void mp_backend_free(mp_backend *b); /* NULL-safe */
mp_tier *mp_backend_tier(mp_backend *b);
const char *mp_backend_name(const mp_backend *b); /* "sim", "cuda" */

/* The device copy of host bytes inside a registered resident range (the
 * same offset), or NULL (sim; not registered). */
const void *mp_backend_weight(const mp_backend *b, const void *host);

/* Where expert `expert` of `layer` runs over T tokens. host[3] and bytes[3]:
 * its gate, up and down matrices in RAM. On MP_RUN_GPU_* dev[3] receives
 * their device copies (cuda; NULL for sim, which computes on the CPU);
 * MP_RUN_CPU sets them NULL. A failed copy is sticky and answers
 * MP_RUN_CPU. */
mp_run_where mp_backend_expert(mp_backend *b, int layer, int expert, int T, const void *const host[3],
                               const size_t bytes[3], const void *dev[3]);
void mp_backend_begin_layer(mp_backend *b, int layer, int tokens);

/* Y[t * ldy + r] = W_r . X_t on the device for a weight with a device copy
 * dW: Xq holds T activation rows (mp_act_row_size(wtype, ncols) bytes each,
 * the CPU kernels' activation type) that are widened to f32 into page-locked
 * staging, copied up, multiplied and copied back, all queued without
 * waiting: Xq may change as soon as start returns, Y is written by
 * mp_backend_wait (so the CPU computes its own share meanwhile). When the
 * staging is full, start waits for what is queued first. Errors are sticky
 * (no return value: the forward pass's job runner has none). */
void mp_backend_matmul_start(mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows,
                             const void *Xq, int64_t T, float *Y, int64_t ldy);
/* Waits for every started matmul and writes their Y. */
void mp_backend_wait(mp_backend *b);
/* start + wait */
void mp_backend_matmul(mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const void *Xq,
                       int64_t T, float *Y, int64_t ldy);
/* Device bytes of the staging for matrices up to max_cols x max_rows (the
 * plan's scratch). */
uint64_t mp_backend_scratch_bytes(int64_t max_cols, int64_t max_rows);

/* MP_OK, or the first device error (copied to err). */
int mp_backend_status(const mp_backend *b, mp_err *err);

#endif
