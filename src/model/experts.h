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
static inline void mp_experts_free(mp_experts *x)
{
    if (x) x->ops->destroy(x);
}

/* The mapped-file provider: views into the GGUF mapping; never fails. */
int mp_experts_mmap_create(mp_experts **out, const mp_model *m, mp_err *err);

#endif
