/* The one narrow door through which the forward pass reaches routed-expert
 * weights: "give me expert e of layer L, pinned; I'm done with it".
 *
 * Today's provider returns views into the memory-mapped GGUF; the expert
 * cache (src/cache/) provides the same interface with slots filled from disk
 * by io_uring. The forward pass never touches ffn_*_exps data otherwise. */
#ifndef MP_EXPERTS_H
#define MP_EXPERTS_H

#include "common/err.h"
#include "model/model.h"

/* Weights of one expert: matrices in the layer's tensor types and shapes
 * (gate/up: n_ff_exp rows of n_embd; down: n_embd rows of n_ff_exp). */
typedef struct mp_expert_w {
    const void *gate;
    const void *up;
    const void *down;
} mp_expert_w;

typedef struct mp_experts mp_experts;

typedef struct mp_experts_ops {
    const char *name;
    /* Pins expert `expert` of layer `layer` and returns its weights, which
     * stay valid until the matching release. May block for I/O. Returns MP_OK
     * or a negative status with err naming the file, layer, expert and offset. */
    int (*acquire)(mp_experts *x, int layer, int expert, mp_expert_w *out, mp_err *err);
    void (*release)(mp_experts *x, int layer, int expert);
    /* Optional: pins n experts of one layer at once, so their reads can be
     * in flight together; out[i] belongs to experts[i]. On failure nothing
     * stays pinned. NULL: acquire is called n times. */
    int (*acquire_many)(mp_experts *x, int layer, const int *experts, int n, mp_expert_w *out, mp_err *err);
    /* Optional hint: these experts of `layer` will be acquired soon. */
    void (*hint)(mp_experts *x, int layer, const int *experts, int n);
    void (*destroy)(mp_experts *x);
} mp_experts_ops;

struct mp_experts {
    const mp_experts_ops *ops;
    const mp_model *model;
};

static inline int mp_experts_acquire(mp_experts *x, int layer, int expert, mp_expert_w *out, mp_err *err)
{
    return x->ops->acquire(x, layer, expert, out, err);
}
static inline void mp_experts_release(mp_experts *x, int layer, int expert) { x->ops->release(x, layer, expert); }
static inline int mp_experts_acquire_many(mp_experts *x, int layer, const int *experts, int n, mp_expert_w *out,
                                          mp_err *err)
{
    if (x->ops->acquire_many) return x->ops->acquire_many(x, layer, experts, n, out, err);
    for (int i = 0; i < n; i++) {
        int rc = x->ops->acquire(x, layer, experts[i], &out[i], err);
        if (rc) {
            while (i-- > 0) x->ops->release(x, layer, experts[i]);
            return rc;
        }
    }
    return MP_OK;
}
static inline void mp_experts_free(mp_experts *x)
{
    if (x) x->ops->destroy(x);
}

/* The mapped-file provider: views into the GGUF mapping; never fails. */
int mp_experts_mmap_create(mp_experts **out, const mp_model *m, mp_err *err);

/* The pack provider (src/pack/experts_pack.c), for a model loaded from a
 * .moepack (m->pack set): each acquire preads the expert's block, verifies
 * its xxh3-64 before use, decompresses it if needed, and returns views into
 * a buffer that stays valid until release. Errors (MP_E_CHECKSUM, MP_E_IO,
 * MP_E_CORRUPT) name the file, layer, expert and offset. Not thread-safe. */
int mp_experts_pack_create(mp_experts **out, const mp_model *m, mp_err *err);

#endif
