/* The VRAM tier of a session: --vram and the device kind -> a plan (printed
 * as a note, refused with the minimum when impossible) -> a compute backend
 * (gpu/backend.h) handed to the forward pass. Cost constants are measured at
 * start on a CUDA device; the sim device uses fixed ones, so its decisions
 * (and the tests that check them) are the same on every machine. */
#include "runtime/session.h"

#include "common/sysinfo.h"
#include "gpu/backend.h"
#include "gpu/gpu.h"
#include "kernels/kernels.h"
#include "runtime/resident.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The sim device's constants: a PCIe 4 x16 link, a CPU streaming expert
 * weights at 20 GB/s in tiles of 4 tokens, an HBM GPU. */
static const mp_tier_costs sim_costs = {.pcie_Bps = 25e9, .cpu_Bps = 20e9, .cpu_tok_tile = 4, .gpu_Bps = 2e12,
                                        .gpu_launch_s = 10e-6};

typedef struct collect {
    mp_backend_range *r;
    size_t n, cap;
    uint64_t bytes;
    int64_t max_cols, max_rows;
    const mp_tensor *largest; /* the largest 2-D resident matrix (cost measurement) */
} collect;

static size_t tensor_bytes(const mp_tensor *t) { return t->row_size * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]); }

static int add_resident(void *ctx, mp_tensor *t)
{
    collect *c = ctx;
    if (c->n == c->cap) {
        const size_t cap = c->cap ? 2 * c->cap : 256;
        mp_backend_range *r = realloc(c->r, cap * sizeof *r);
        if (!r) return MP_E_NOMEM;
        c->r = r, c->cap = cap;
    }
    c->r[c->n++] = (mp_backend_range){t->data, tensor_bytes(t)};
    c->bytes += tensor_bytes(t);
    if (t->ne[0] > c->max_cols) c->max_cols = t->ne[0];
    if (t->ne[1] > c->max_rows) c->max_rows = t->ne[1];
    if (t->ne[1] > 1 && t->ne[2] <= 1 && (!c->largest || tensor_bytes(t) > tensor_bytes(c->largest))) c->largest = t;
    return MP_OK;
}

/* The device kernels read the GGUF row layout: a resident matrix repacked
 * at load (resident.c) goes back to it before its bytes are uploaded, and
 * its CPU runs then take the plain kernels too. */
static int unrepack(void *ctx, mp_tensor *t)
{
    (void)ctx;
    if (!t->repacked) return MP_OK;
    const int rc = mp_unrepack_rows(t->type, (void *)t->data, t->ne[1], t->ne[0]);
    if (rc) return rc;
    t->repacked = false;
    return MP_OK;
}

/* Measures the link, the CPU and the GPU on the model's largest resident
 * matrix w (its device copy dw). */
static int measure_costs(mp_backend *b, const mp_tensor *w, int n_threads, mp_tier_costs *c, mp_err *err)
{
    *c = sim_costs;
    enum { PROBE = 64 << 20 };
    void *h = malloc(PROBE), *d = NULL;
    int rc = h ? mp_gpu_alloc(&d, PROBE, err) : mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (!rc) {
        memset(h, 1, PROBE);
        double best = 1e9;
        for (int i = 0; i < 3 && !rc; i++) {
            const double t0 = mp_time_s();
            rc = mp_gpu_upload(d, h, PROBE, err);
            if (mp_time_s() - t0 < best) best = mp_time_s() - t0;
        }
        c->pcie_Bps = PROBE / best;
    }
    mp_gpu_free(d);
    free(h);
    if (rc || !w) return rc;
    /* CPU: one thread over up to 8 MiB of rows, one token, times the threads */
    const size_t rs = w->row_size;
    int64_t rows = (int64_t)((8u << 20) / rs);
    if (rows > w->ne[1]) rows = w->ne[1];
    if (rows < 1) rows = 1;
    uint8_t *xq = calloc(1, mp_act_row_size(w->type, w->ne[0]));
    float *x = calloc((size_t)w->ne[0], 4), *y = calloc((size_t)w->ne[1], 4), *dx = NULL, *dy = NULL;
    if (!xq || !x || !y) rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (!rc) {
        mp_quantize_act(w->type, x, xq, w->ne[0]);
        const double t0 = mp_time_s();
        mp_matmul_rows(w->type, w->data, w->ne[0], 0, rows, xq, 1, y, w->ne[1]);
        const double dt = mp_time_s() - t0;
        const double nt = n_threads > 0 ? n_threads : (double)sysconf(_SC_NPROCESSORS_ONLN);
        c->cpu_Bps = (double)rows * rs / (dt > 1e-7 ? dt : 1e-7) * (nt > 1 ? 0.7 * nt : 1);
    }
    /* GPU: the whole matrix, one token; launch: one row */
    const void *dw = mp_backend_weight(b, w->data);
    if (!rc) rc = mp_gpu_alloc((void **)&dx, (size_t)w->ne[0] * 4, err);
    if (!rc) rc = mp_gpu_alloc((void **)&dy, (size_t)w->ne[1] * 4, err);
    if (!rc) rc = mp_gpu_upload(dx, x, (size_t)w->ne[0] * 4, err);
    if (!rc && dw) {
        double full = 1e9, one = 1e9;
        for (int i = 0; i < 3 && !rc; i++) {
            double t0 = mp_time_s();
            rc = mp_gpu_matmul(w->type, dw, w->ne[0], w->ne[1], dx, w->ne[0], 1, dy, w->ne[1], err);
            if (!rc) rc = mp_gpu_sync(err);
            if (mp_time_s() - t0 < full) full = mp_time_s() - t0;
            t0 = mp_time_s();
            if (!rc) rc = mp_gpu_matmul(w->type, dw, w->ne[0], 1, dx, w->ne[0], 1, dy, 1, err);
            if (!rc) rc = mp_gpu_sync(err);
            if (mp_time_s() - t0 < one) one = mp_time_s() - t0;
        }
        c->gpu_launch_s = one;
        c->gpu_Bps = (double)tensor_bytes(w) / (full - one > 1e-7 ? full - one : 1e-7);
    }
    mp_gpu_free(dx);
    mp_gpu_free(dy);
    free(xq), free(x), free(y);
    return rc;
}

/* The device --gpu names (auto: CUDA when one is present, else none);
 * MP_E_INVAL for a name that is none of them. */
static int device_kind(const char *dev, mp_device_kind *kind)
{
    *kind = MP_DEVICE_NONE;
    if (!strcmp(dev, "sim") || !strcmp(dev, "sim-exec")) *kind = MP_DEVICE_SIM;
    else if (!strcmp(dev, "cuda")) *kind = MP_DEVICE_CUDA;
    else if (!strcmp(dev, "auto")) *kind = mp_gpu_device_count() > 0 ? MP_DEVICE_CUDA : MP_DEVICE_NONE;
    else if (strcmp(dev, "cpu")) return MP_E_INVAL;
    return MP_OK;
}

bool mp_session_wants_device(const mp_session_params *p)
{
    mp_device_kind kind;
    if (p->vram_given && p->vram == 0) return false;
    return device_kind(p->device ? p->device : "auto", &kind) == MP_OK && kind != MP_DEVICE_NONE;
}

int mp_session_open_vram(mp_session *s, const mp_session_params *p, mp_err *err)
{
    mp_device_kind kind;
    const char *dev = p->device ? p->device : "auto";
    const bool emulate = !strcmp(dev, "sim-exec");
    if (device_kind(dev, &kind) != MP_OK)
        return mp_err_set(err, MP_E_INVAL, "--gpu: unknown device '%s' (auto, cuda, sim, sim-exec, cpu)", dev);
    if (kind == MP_DEVICE_NONE && p->vram_given && p->vram > 0 && !strcmp(dev, "auto"))
        mp_note_add(s->note, sizeof s->note, "--vram: no CUDA device%s, running on the CPU",
                    mp_gpu_built() ? "" : " (this build has no CUDA)");
    if (kind == MP_DEVICE_NONE || (p->vram_given && p->vram == 0)) return MP_OK;
    if (kind == MP_DEVICE_CUDA && mp_gpu_device_count() < 1)
        return mp_err_set(err, MP_E_UNSUPPORTED, "--gpu cuda: %s",
                          mp_gpu_built() ? "no CUDA device (cudaGetDeviceCount)" : "this build has no CUDA");
    uint64_t budget = p->vram;
    if (!p->vram_given) {
        if (kind == MP_DEVICE_SIM) return mp_err_set(err, MP_E_INVAL, "--gpu %s needs --vram SIZE (its memory)", dev);
        uint64_t fr = 0;
        int rc = mp_gpu_init(NULL, 0, &fr, NULL, err);
        if (rc) return rc;
        const uint64_t keep = fr / 10 > (512u << 20) ? fr / 10 : (512u << 20); /* the driver, other users */
        budget = fr > keep ? fr - keep : 0;
    }
    const mp_model *m = s->model;
    const mp_hparams *hp = &m->hp;
    collect c = {0};
    int rc = mp_model_for_each_resident(s->model, unrepack, NULL);
    if (rc) return mp_err_set(err, rc, "%s: out of memory restoring a repacked matrix for the device", m->path);
    rc = mp_model_for_each_resident(s->model, add_resident, &c);
    if (rc) {
        free(c.r);
        return mp_err_set(err, rc, "out of memory");
    }
    uint64_t expert_bytes = 0;
    uint32_t n_moe = 0;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const mp_layer *l = &m->layers[il];
        if (!mp_layer_is_moe(l)) continue;
        n_moe++;
        const mp_tensor *t3[3] = {&l->ffn_gate_exps, &l->ffn_up_exps, &l->ffn_down_exps};
        uint64_t eb = 0;
        for (int i = 0; i < 3; i++) {
            eb += t3[i]->row_size * (uint64_t)t3[i]->ne[1];
            if (t3[i]->ne[0] > c.max_cols) c.max_cols = t3[i]->ne[0];
            if (t3[i]->ne[1] > c.max_rows) c.max_rows = t3[i]->ne[1];
        }
        if (eb > expert_bytes) expert_bytes = eb;
    }
    mp_backend_params bp = {.tier = {.kind = kind, .n_layer = hp->n_layer, .n_expert = hp->n_expert ? hp->n_expert : 1},
                            .resident = c.r,
                            .n_resident = c.n,
                            .max_cols = c.max_cols,
                            .max_rows = c.max_rows,
                            .emulate = emulate};
    const uint64_t scratch = mp_backend_scratch_bytes(c.max_cols, c.max_rows);
    rc = mp_vram_plan_make(&bp.tier.plan, budget, c.bytes, mp_ctx_kv_bytes(m, mp_ctx_n_ctx(s->ctx), mp_ctx_n_batch(s->ctx)) * (uint64_t)mp_ctx_n_seq(s->ctx),
                           scratch,
                           expert_bytes, n_moe * hp->n_expert, n_moe ? hp->n_expert_used : 0, err);
    bp.tier.costs = sim_costs;
    if (!rc) rc = mp_backend_create(&s->backend, &bp, err);
    if (!rc && kind == MP_DEVICE_CUDA) {
        mp_tier_costs mc;
        rc = measure_costs(s->backend, c.largest, p->n_threads, &mc, err);
        if (!rc) { /* the tier was made with placeholders: make it again with what was measured */
            mp_backend_free(s->backend);
            s->backend = NULL;
            bp.tier.costs = mc;
            rc = mp_backend_create(&s->backend, &bp, err);
        }
    }
    free(c.r);
    if (rc) return rc;
    char line[400];
    mp_vram_plan_describe(&bp.tier.plan, line, sizeof line);
    const mp_tier_costs *k = &bp.tier.costs;
    mp_note_add(s->note, sizeof s->note,
                "%s (%s device; cost model: link %.1f GB/s, CPU experts %.1f GB/s, GPU %.0f GB/s + %.0f us)", line,
                mp_backend_name(s->backend), k->pcie_Bps / 1e9, k->cpu_Bps / 1e9, k->gpu_Bps / 1e9,
                k->gpu_launch_s * 1e6);
    mp_ctx_set_backend(s->ctx, s->backend);
    return MP_OK;
}
