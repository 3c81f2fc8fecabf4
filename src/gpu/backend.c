/* The backend seam (backend.h): sim and cuda over gpu.h and tier.h. */
#include "gpu/backend.h"

#include "gpu/gpu.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct range {
    const uint8_t *host;
    size_t bytes;
    uint8_t *dev; /* NULL for sim */
} range;

struct mp_backend {
    mp_device_kind kind;
    mp_tier *tier;
    range *res; /* sorted by host */
    size_t n_res;
    uint8_t *dres;       /* one device block for every resident range */
    uint8_t *dslots;     /* plan.slots expert slots of plan.expert_bytes */
    uint64_t slot_bytes;
    float *dx, *dy;      /* staging: tok_cap rows of max_cols / max_rows floats */
    float *hx;           /* host widening buffer (tok_cap, max_cols) */
    int64_t max_cols, max_rows, tok_cap;
    int status;
    mp_err err;
};

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->host < y->host ? -1 : x->host > y->host;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define TOK_CAP 64 /* tokens per staging pass */

int mp_backend_create(mp_backend **out, const mp_backend_params *p, mp_err *err)
{
    *out = NULL;
    if (p->tier.kind != MP_DEVICE_SIM && p->tier.kind != MP_DEVICE_CUDA)
        return mp_err_set(err, MP_E_INVAL, "backend: kind must be sim or cuda");
    mp_backend *b = calloc(1, sizeof *b);
    if (!b) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    b->kind = p->tier.kind;
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
    b->max_cols = p->max_cols;
    b->max_rows = p->max_rows;
    b->tok_cap = TOK_CAP;
    b->slot_bytes = p->tier.plan.expert_bytes;
    if (b->kind == MP_DEVICE_CUDA) {
        if ((rc = mp_gpu_init(NULL, 0, NULL, NULL, err))) goto fail;
        if ((rc = mp_gpu_alloc((void **)&b->dres, total, err))) goto fail;
        uint64_t off = 0;
        for (size_t i = 0; i < b->n_res; i++) {
            b->res[i].dev = b->dres + off;
            if ((rc = mp_gpu_upload(b->res[i].dev, b->res[i].host, b->res[i].bytes, err))) goto fail;
            off += (b->res[i].bytes + 255) & ~(uint64_t)255;
        }
        if (p->tier.plan.slots &&
            (rc = mp_gpu_alloc((void **)&b->dslots, (size_t)p->tier.plan.slots * b->slot_bytes, err)))
            goto fail;
        if ((rc = mp_gpu_alloc((void **)&b->dx, (size_t)(TOK_CAP * b->max_cols) * 4, err))) goto fail;
        if ((rc = mp_gpu_alloc((void **)&b->dy, (size_t)(TOK_CAP * b->max_rows) * 4, err))) goto fail;
        if (!(b->hx = malloc((size_t)(TOK_CAP * b->max_cols) * 4))) {
            rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
            goto fail;
        }
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
    mp_gpu_free(b->dres);
    mp_gpu_free(b->dslots);
    mp_gpu_free(b->dx);
    mp_gpu_free(b->dy);
    free(b->hx);
    free(b->res);
    free(b);
}

mp_tier *mp_backend_tier(mp_backend *b) { return b->tier; }
const char *mp_backend_name(const mp_backend *b) { return b->kind == MP_DEVICE_CUDA ? "cuda" : "sim"; }

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
    if (w == MP_RUN_CPU || b->kind == MP_DEVICE_SIM) return w;
    uint8_t *d = b->dslots + (size_t)slot * b->slot_bytes;
    const size_t o[3] = {0, bytes[0], bytes[0] + bytes[1]};
    if (w == MP_RUN_GPU_COPY) {
        const double t0 = now_s();
        mp_err e = {0};
        for (int i = 0; i < 3; i++)
            if (mp_gpu_upload(d + o[i], host[i], bytes[i], &e)) {
                fail_sticky(b, &e);
                return MP_RUN_CPU;
            }
        mp_tier_add_stall(b->tier, now_s() - t0); /* synchronous copies: all of it stalls */
    }
    for (int i = 0; i < 3; i++) dev[i] = d + o[i];
    return w;
}

void mp_backend_matmul(mp_backend *b, uint32_t wtype, const void *dW, int64_t ncols, int64_t nrows, const void *Xq,
                       int64_t T, float *Y, int64_t ldy)
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
    for (int64_t t0 = 0; t0 < T; t0 += b->tok_cap) {
        const int64_t nt = T - t0 < b->tok_cap ? T - t0 : b->tok_cap;
        for (int64_t t = 0; t < nt; t++)
            mp_dequantize_row(at, (const uint8_t *)Xq + (size_t)(t0 + t) * arow, b->hx + t * ncols, ncols);
        int rc = mp_gpu_upload(b->dx, b->hx, (size_t)(nt * ncols) * 4, &e);
        if (!rc) rc = mp_gpu_matmul(wtype, dW, ncols, nrows, b->dx, ncols, nt, b->dy, nrows, &e);
        if (!rc && ldy == nrows) rc = mp_gpu_download(Y + t0 * ldy, b->dy, (size_t)(nt * nrows) * 4, &e);
        for (int64_t t = 0; !rc && ldy != nrows && t < nt; t++)
            rc = mp_gpu_download(Y + (t0 + t) * ldy, b->dy + t * nrows, (size_t)nrows * 4, &e);
        if (rc) {
            fail_sticky(b, &e);
            return;
        }
    }
}

int mp_backend_status(const mp_backend *b, mp_err *err)
{
    if (!b->status) return MP_OK;
    if (err) *err = b->err;
    return b->status;
}
