#include "experts_cache.h"

#include <stdbool.h>
#include <stdlib.h>

typedef struct cache_experts {
    mp_experts base;
    mp_cache *cache;
} cache_experts;

static void to_w(const mp_expert_ptrs *p, mp_expert_w *w)
{
    w->gate = p->part[0];
    w->up = p->part[1];
    w->down = p->part[2];
}

static int ce_acquire(mp_experts *x, int layer, int expert, mp_expert_w *out, mp_err *err)
{
    cache_experts *ce = (cache_experts *)x;
    mp_expert_ptrs p;
    int rc = mp_cache_acquire(ce->cache, (uint32_t)layer, (uint32_t)expert, &p, err);
    if (rc) return rc;
    to_w(&p, out);
    return MP_OK;
}

static void ce_release(mp_experts *x, int layer, int expert)
{
    mp_cache_release(((cache_experts *)x)->cache, (uint32_t)layer, (uint32_t)expert);
}

static int ce_request(mp_experts *x, int layer, const int *experts, int n, mp_err *err)
{
    uint32_t ids[64];
    for (int i = 0; i < n; i++) ids[i] = (uint32_t)experts[i];
    return mp_cache_request_layer(((cache_experts *)x)->cache, (uint32_t)layer, ids, (uint32_t)n, err);
}

static int ce_next_ready(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err)
{
    mp_cache_ready r;
    int rc = mp_cache_wait_any(((cache_experts *)x)->cache, &r, err);
    if (rc != 0) *expert = (int)r.expert;
    if (rc == 1) to_w(&r.ptrs, out);
    return rc;
}

static int ce_try_next_ready(mp_experts *x, int *expert, mp_expert_w *out, mp_err *err)
{
    mp_cache_ready r;
    int rc = mp_cache_poll(((cache_experts *)x)->cache, &r, err);
    if (rc == 1 || rc < 0) *expert = (int)r.expert;
    if (rc == 1) to_w(&r.ptrs, out);
    return rc;
}

static void ce_prefetch(mp_experts *x, int layer, const int *experts, int n)
{
    for (int i = 0; i < n; i++)
        if (mp_cache_request(((cache_experts *)x)->cache, (uint32_t)layer, (uint32_t)experts[i], MP_CACHE_PREFETCH,
                             NULL) != MP_OK)
            break; /* no room: the rest would be dropped too */
}

static void ce_abandon(mp_experts *x) { mp_cache_abandon(((cache_experts *)x)->cache); }

static void ce_poll(mp_experts *x) { mp_cache_reap(((cache_experts *)x)->cache); }

static void ce_layer_done(mp_experts *x, int layer)
{
    mp_cache_layer_done(((cache_experts *)x)->cache, (uint32_t)layer);
}

static void ce_destroy(mp_experts *x) { free(x); }

static const mp_experts_ops cache_ops = {
    .name = "cache",
    .acquire = ce_acquire,
    .release = ce_release,
    .hint = NULL,
    .destroy = ce_destroy,
    .request = ce_request,
    .next_ready = ce_next_ready,
    .try_next_ready = ce_try_next_ready,
    .prefetch = ce_prefetch,
    .abandon = ce_abandon,
    .poll = ce_poll,
    .layer_done = ce_layer_done,
};

int mp_experts_cache_create(mp_experts **out, const mp_model *m, mp_cache *cache, mp_err *err)
{
    cache_experts *ce = calloc(1, sizeof *ce);
    if (!ce) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    ce->base.ops = &cache_ops;
    ce->base.model = m;
    ce->cache = cache;
    ce->base.max_pinned = (int)mp_cache_n_slots(cache);
    *out = &ce->base;
    return MP_OK;
}
