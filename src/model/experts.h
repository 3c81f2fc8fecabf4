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
    /* Asynchronous use (optional; NULL: emulated with acquire, in request
     * order). request demands experts of one layer; next_ready blocks until
     * one of them is ready (hits first, misses as their reads land) and
     * returns 1 with it pinned, 0 when nothing is outstanding, or a
     * negative status (*expert names the failed one). */
    int (*request)(mp_experts *x, int layer, const int *experts, int n, mp_err *err);
    int (*next_ready)(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err);
    /* Like next_ready but never blocks: MP_E_AGAIN when none is ready yet. */
    int (*try_next_ready)(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err);
    /* Low-priority loads of predicted experts; never blocks or pins. */
    void (*prefetch)(mp_experts *x, int layer, const int *experts, int n);
    /* Drops undelivered demands (after an error). */
    void (*abandon)(mp_experts *x);
    /* Lets finished reads be reaped and queued ones start; never blocks and
     * hands nothing out. Called between compute tasks by the thread that
     * owns the provider. */
    void (*poll)(mp_experts *x);
    /* Optional: layer `layer` is done for this chunk; predictions of it
     * that were not used are wrong and may go first. */
    void (*layer_done)(mp_experts *x, int layer);
} mp_experts_ops;

#define MP_EXPERTS_MAX_PENDING 256

struct mp_experts {
    const mp_experts_ops *ops;
    const mp_model *model;
    int max_pinned; /* experts that may be pinned at once (cache slots); 0: unlimited */
    /* emulation of request/next_ready for providers without them */
    int pend_layer, pend_head, pend_n;
    int pend[MP_EXPERTS_MAX_PENDING];
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

static inline int mp_experts_request(mp_experts *x, int layer, const int *experts, int n, mp_err *err)
{
    if (x->ops->request) return x->ops->request(x, layer, experts, n, err);
    if (x->pend_n + n > MP_EXPERTS_MAX_PENDING) return mp_err_set(err, MP_E_INVAL, "too many pending expert requests");
    x->pend_layer = layer;
    for (int i = 0; i < n; i++) x->pend[(x->pend_head + x->pend_n++) % MP_EXPERTS_MAX_PENDING] = experts[i];
    return MP_OK;
}
static inline int mp_experts_next_ready(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err)
{
    if (x->ops->next_ready) return x->ops->next_ready(x, expert, out, err);
    if (x->pend_n == 0) return 0;
    *expert = x->pend[x->pend_head];
    x->pend_head = (x->pend_head + 1) % MP_EXPERTS_MAX_PENDING;
    x->pend_n--;
    int rc = x->ops->acquire(x, x->pend_layer, *expert, out, err);
    return rc ? rc : 1;
}
static inline int mp_experts_try_next_ready(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err)
{
    if (x->ops->try_next_ready) return x->ops->try_next_ready(x, expert, out, err);
    if (x->ops->next_ready) return MP_E_AGAIN; /* blocking-only provider */
    return mp_experts_next_ready(x, expert, out, err); /* emulated: always ready */
}
static inline void mp_experts_prefetch(mp_experts *x, int layer, const int *experts, int n)
{
    if (x->ops->prefetch && n > 0) x->ops->prefetch(x, layer, experts, n);
}
static inline void mp_experts_abandon(mp_experts *x)
{
    if (x->ops->abandon) x->ops->abandon(x);
    x->pend_n = 0;
}
static inline void mp_experts_poll(mp_experts *x)
{
    if (x->ops->poll) x->ops->poll(x);
}
static inline void mp_experts_layer_done(mp_experts *x, int layer)
{
    if (x->ops->layer_done) x->ops->layer_done(x, layer);
}

/* The mapped-file provider: views into the GGUF mapping; never fails. */
int mp_experts_mmap_create(mp_experts **out, const mp_model *m, mp_err *err);

#endif
