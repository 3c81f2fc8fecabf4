#include "experts.h"

#include <stdlib.h>

static int mmap_acquire(mp_experts *x, int layer, int expert, mp_expert_w *out, mp_err *err)
{
    const mp_layer *l = &x->model->layers[layer];
    out->gate = (const char *)l->ffn_gate_exps.data + (size_t)expert * l->ffn_gate_exps.expert_stride;
    out->up = (const char *)l->ffn_up_exps.data + (size_t)expert * l->ffn_up_exps.expert_stride;
    out->down = (const char *)l->ffn_down_exps.data + (size_t)expert * l->ffn_down_exps.expert_stride;
    return MP_OK;
}

static void mmap_release(mp_experts *x, int layer, int expert) {}

static void mmap_destroy(mp_experts *x) { free(x); }

static const mp_experts_ops mmap_ops = {
    .name = "mmap",
    .acquire = mmap_acquire,
    .release = mmap_release,
    .hint = NULL,
    .destroy = mmap_destroy,
};

int mp_experts_mmap_create(mp_experts **out, const mp_model *m, mp_err *err)
{
    mp_experts *x = calloc(1, sizeof *x);
    if (!x) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    x->ops = &mmap_ops;
    x->model = m;
    *out = x;
    return MP_OK;
}
