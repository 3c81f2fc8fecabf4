/* The backend seam (backend.h): sim and cuda over gpu.h and tier.h. */
#include "gpu/backend.h"

#include "common/sysinfo.h"
#include "gpu/gpu.h"
#include "gpu/gpu_dequant.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct range {
    const uint8_t *host;
    size_t bytes;
    uint8_t *dev; /* NULL for sim */
} range;

struct mp_backend {
    mp_device_kind kind;
    bool emu;        /* sim-exec: the cuda path with host memory and the kernel emulated */
    mp_tier *tier;
    range *res; /* sorted by host */
    size_t n_res;
    uint8_t *dres;       /* one device block for every resident range */
    uint8_t *dslots;     /* plan.slots expert slots of plan.expert_bytes */
    uint64_t slot_bytes;
    /* staging, the same floats on both sides: page-locked hx / hy, device
     * dx / dy; queued matmuls fill them from offset 0 up */
    float *dx, *dy, *hx, *hy;
    int64_t max_cols, max_rows, cap_x, cap_y, used_x, used_y;
    struct pending { float *Y; int64_t ldy, nrows, nt, oy; } *pend;
    int n_pend, cap_pend;
    int status;
    mp_err err;
};

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->host < y->host ? -1 : x->host > y->host;
}

/* ---- device memory and kernels, or their emulation (sim-exec) ------------ */

static int d_alloc(const mp_backend *b, void **p, size_t n, mp_err *err)
{
    if (!b->emu) return mp_gpu_alloc(p, n, err);
    return (*p = malloc(n ? n : 1)) ? MP_OK : mp_err_set(err, MP_E_NOMEM, "out of memory");
}
static void d_free(const mp_backend *b, void *p)
{
    if (b->emu) free(p);
    else mp_gpu_free(p);
}
static int h_alloc(const mp_backend *b, void **p, size_t n, mp_err *err)
{
    if (!b->emu) return mp_gpu_host_alloc(p, n, err);
    return (*p = malloc(n ? n : 1)) ? MP_OK : mp_err_set(err, MP_E_NOMEM, "out of memory");
}
static void h_free(const mp_backend *b, void *p)
{
    if (b->emu) free(p);
    else mp_gpu_host_free(p);
}
static int d_copy(const mp_backend *b, void *dst, const void *src, size_t n, bool up, bool async, mp_err *err)
{
    if (b->emu) {
        memcpy(dst, src, n);
        return MP_OK;
    }
    if (async) return up ? mp_gpu_upload_async(dst, src, n, err) : mp_gpu_download_async(dst, src, n, err);
    return up ? mp_gpu_upload(dst, src, n, err) : mp_gpu_download(dst, src, n, err);
}

/* k_matmul of gpu_cuda.cu on the CPU: per output, lane l of a warp sums
 * fma(w_i, x_i, acc) over i = l, l + 32, ...; the 32 sums are then added
 * pairwise as the xor shuffles add them (offsets 16, 8, 4, 2, 1). */
static void emu_matmul(uint32_t wtype, const uint8_t *W, int64_t ncols, int64_t nrows, const float *X, int64_t nt,
                       float *Y)
{
    const size_t rb = mp_row_size(wtype, ncols);
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t t = 0; t < nt; t++) {
            float lane[32] = {0}, tmp[32];
            for (int64_t i = 0; i < ncols; i++)
                lane[i % 32] = fmaf(mp_gd_elem(wtype, W + (size_t)r * rb, i), X[t * ncols + i], lane[i % 32]);
            for (int o = 16; o > 0; o >>= 1) {
                for (int l = 0; l < 32; l++) tmp[l] = lane[l] + lane[l ^ o];
                memcpy(lane, tmp, sizeof lane);
            }
            Y[t * nrows + r] = lane[0];
        }
}

static int d_matmul(const mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const float *dX,
                    int64_t nt, float *dY, mp_err *err)
{
    if (!b->emu) return mp_gpu_matmul(wtype, dW, ncols, nrows, dX, ncols, nt, dY, nrows, err);
    emu_matmul(wtype, dW, ncols, nrows, dX, nt, dY);
    return MP_OK;
}

/* Staging: X of 256 tokens of the widest matrix (a prefill job's experts
 * share it), Y of as much or 8 rows of the tallest (the output head). */
static void staging_caps(int64_t max_cols, int64_t max_rows, int64_t *cx, int64_t *cy)
{
    *cx = 256 * max_cols;
    *cy = 8 * max_rows > 256 * max_cols ? 8 * max_rows : 256 * max_cols;
}

uint64_t mp_backend_scratch_bytes(int64_t max_cols, int64_t max_rows)
{
    int64_t cx, cy;
    staging_caps(max_cols, max_rows, &cx, &cy);
    return (uint64_t)(cx + cy) * 4;
}

#define MAX_PENDING 256

int mp_backend_create(mp_backend **out, const mp_backend_params *p, mp_err *err)
{
    *out = NULL;
    if (p->tier.kind != MP_DEVICE_SIM && p->tier.kind != MP_DEVICE_CUDA)
        return mp_err_set(err, MP_E_INVAL, "backend: kind must be sim or cuda");
    mp_backend *b = calloc(1, sizeof *b);
    if (!b) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    b->kind = p->tier.kind;
    b->emu = p->tier.kind == MP_DEVICE_SIM && p->emulate;
    int rc = mp_tier_create(&b->tier, &p->tier, err);
    if (rc) goto fail;
    if (p->n_resident && !(b->res = calloc(p->n_resident, sizeof *b->res))) {
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
        goto fail;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < p->n_resident; i++) {
        b->res[i] = (range){p->resident[i].host, p->resident[i].bytes, NULL};
        total += (p->resident[i].bytes + 255) & ~(uint64_t)255;
    }
    b->n_res = p->n_resident;
    qsort(b->res, b->n_res, sizeof *b->res, cmp_range);
    b->max_cols = p->max_cols > 0 ? p->max_cols : 1;
    b->max_rows = p->max_rows > 0 ? p->max_rows : 1;
    staging_caps(b->max_cols, b->max_rows, &b->cap_x, &b->cap_y);
    b->slot_bytes = p->tier.plan.expert_bytes;
    if (b->kind == MP_DEVICE_CUDA || b->emu) {
        if (!b->emu && (rc = mp_gpu_init(NULL, 0, NULL, NULL, err))) goto fail;
        if ((rc = d_alloc(b, (void **)&b->dres, total, err))) goto fail;
        uint64_t off = 0;
        for (size_t i = 0; i < b->n_res; i++) {
            b->res[i].dev = b->dres + off;
            if ((rc = d_copy(b, b->res[i].dev, b->res[i].host, b->res[i].bytes, true, false, err))) goto fail;
            off += (b->res[i].bytes + 255) & ~(uint64_t)255;
        }
        if (p->tier.plan.slots &&
            (rc = d_alloc(b, (void **)&b->dslots, (size_t)p->tier.plan.slots * b->slot_bytes, err)))
            goto fail;
        if ((rc = d_alloc(b, (void **)&b->dx, (size_t)b->cap_x * 4, err))) goto fail;
        if ((rc = d_alloc(b, (void **)&b->dy, (size_t)b->cap_y * 4, err))) goto fail;
        if ((rc = h_alloc(b, (void **)&b->hx, (size_t)b->cap_x * 4, err))) goto fail;
        if ((rc = h_alloc(b, (void **)&b->hy, (size_t)b->cap_y * 4, err))) goto fail;
        if (!(b->pend = malloc(MAX_PENDING * sizeof *b->pend))) {
            rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
            goto fail;
        }
        b->cap_pend = MAX_PENDING;
    }
    *out = b;
    return MP_OK;
fail:
    mp_backend_free(b);
    return rc;
}

void mp_backend_free(mp_backend *b)
{
    if (!b) return;
    mp_tier_free(b->tier);
    d_free(b, b->dres);
    d_free(b, b->dslots);
    d_free(b, b->dx);
    d_free(b, b->dy);
    h_free(b, b->hx);
    h_free(b, b->hy);
    free(b->pend);
    free(b->res);
    free(b);
}

mp_tier *mp_backend_tier(mp_backend *b) { return b->tier; }
const char *mp_backend_name(const mp_backend *b)
{
    return b->kind == MP_DEVICE_CUDA ? "cuda" : b->emu ? "sim-exec" : "sim";
}

const void *mp_backend_weight(const mp_backend *b, const void *host)
{
    const uint8_t *h = host;
    size_t lo = 0, hi = b->n_res; /* last range with start <= h */
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (b->res[mid].host <= h) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    const range *r = &b->res[lo - 1];
    if (h >= r->host + r->bytes || !r->dev) return NULL;
    return r->dev + (h - r->host);
}

static void fail_sticky(mp_backend *b, const mp_err *e)
{
    if (b->status) return;
    b->status = e->status ? e->status : MP_E_IO;
    b->err = *e;
}

void mp_backend_begin_layer(mp_backend *b, int layer, int tokens) { mp_tier_begin_layer(b->tier, layer, tokens); }

mp_run_where mp_backend_expert(mp_backend *b, int layer, int expert, int T, const void *const host[3],
                               const size_t bytes[3], const void *dev[3])
{
    dev[0] = dev[1] = dev[2] = NULL;
    if (b->status) return MP_RUN_CPU;
    int slot;
    const mp_run_where w = mp_tier_place(b->tier, layer, expert, T, &slot);
    if (w == MP_RUN_CPU || (b->kind == MP_DEVICE_SIM && !b->emu)) return w;
    uint8_t *d = b->dslots + (size_t)slot * b->slot_bytes;
    const size_t o[3] = {0, bytes[0], bytes[0] + bytes[1]};
    if (w == MP_RUN_GPU_COPY) {
        const double t0 = mp_time_s();
        mp_err e = {0};
        for (int i = 0; i < 3; i++)
            if (d_copy(b, d + o[i], host[i], bytes[i], true, false, &e)) {
                fail_sticky(b, &e);
                return MP_RUN_CPU;
            }
        /* synchronous copies: all of it stalls (sim-exec: the tier counted the model's time) */
        if (!b->emu) mp_tier_add_stall(b->tier, mp_time_s() - t0);
    }
    for (int i = 0; i < 3; i++) dev[i] = d + o[i];
    return w;
}

void mp_backend_wait(mp_backend *b)
{
    if (b->n_pend == 0) return;
    mp_err e = {0};
    if (!b->status && !b->emu && mp_gpu_sync(&e)) fail_sticky(b, &e);
    for (int i = 0; !b->status && i < b->n_pend; i++) {
        const struct pending *q = &b->pend[i];
        for (int64_t t = 0; t < q->nt; t++)
            memcpy(q->Y + t * q->ldy, b->hy + q->oy + t * q->nrows, (size_t)q->nrows * 4);
    }
    b->n_pend = 0;
    b->used_x = b->used_y = 0;
}

void mp_backend_matmul_start(mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows,
                             const void *Xq, int64_t T, float *Y, int64_t ldy)
{
    if (b->status) return;
    mp_err e = {0};
    if (ncols > b->max_cols || nrows > b->max_rows) {
        mp_err_set(&e, MP_E_INVAL, "backend: a %lld x %lld matrix exceeds the staging buffers (%lld x %lld)",
                   (long long)nrows, (long long)ncols, (long long)b->max_rows, (long long)b->max_cols);
        fail_sticky(b, &e);
        return;
    }
    const uint32_t at = mp_act_type(wtype);
    const size_t arow = mp_act_row_size(wtype, ncols);
    for (int64_t t0 = 0; t0 < T;) {
        int64_t nt = T - t0, fx = (b->cap_x - b->used_x) / ncols, fy = (b->cap_y - b->used_y) / nrows;
        if (nt > fx) nt = fx;
        if (nt > fy) nt = fy;
        if (nt < 1 || b->n_pend == b->cap_pend) { /* full: let the queued ones finish first */
            mp_backend_wait(b);
            if (b->status) return;
            continue;
        }
        float *hx = b->hx + b->used_x, *dx = b->dx + b->used_x, *dy = b->dy + b->used_y;
        for (int64_t t = 0; t < nt; t++)
            mp_dequantize_row(at, (const uint8_t *)Xq + (size_t)(t0 + t) * arow, hx + t * ncols, ncols);
        int rc = d_copy(b, dx, hx, (size_t)(nt * ncols) * 4, true, true, &e);
        if (!rc) rc = d_matmul(b, wtype, dW, ncols, nrows, dx, nt, dy, &e);
        if (!rc) rc = d_copy(b, b->hy + b->used_y, dy, (size_t)(nt * nrows) * 4, false, true, &e);
        if (rc) {
            fail_sticky(b, &e);
            return;
        }
        b->pend[b->n_pend++] = (struct pending){Y + t0 * ldy, ldy, nrows, nt, b->used_y};
        b->used_x += nt * ncols;
        b->used_y += nt * nrows;
        t0 += nt;
    }
}

void mp_backend_matmul(mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const void *Xq,
                       int64_t T, float *Y, int64_t ldy)
{
    mp_backend_matmul_start(b, wtype, dW, ncols, nrows, Xq, T, Y, ldy);
    mp_backend_wait(b);
}

int mp_backend_status(const mp_backend *b, mp_err *err)
{
    if (!b->status) return MP_OK;
    if (err) *err = b->err;
    return b->status;
}
