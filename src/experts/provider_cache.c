/* Cache-backed provider: experts are read into the expert cache's slots
 * (src/cache/) and handed out as their reads land. */
#include "experts/provider.h"

#include "cache/cache.h"

#include <stdlib.h>

typedef struct cache_provider {
    mp_provider base;
    mp_cache *cache;
} cache_provider;

static mp_cache *cache_of(mp_provider *p) { return ((cache_provider *)p)->cache; }

static void to_w(const mp_expert_ptrs *p, mp_expert_w *w)
{
    w->gate = p->part[0];
    w->up = p->part[1];
    w->down = p->part[2];
    w->repacked = (uint8_t)(p->layout & 7);
}

static void cp_release(mp_provider *p, int layer, int expert)
{
    mp_cache_release(cache_of(p), (uint32_t)layer, (uint32_t)expert);
}

static int cp_request(mp_provider *p, int layer, const int *experts, int n, mp_err *err)
{
    uint32_t ids[MP_EXPERTS_BATCH_MAX];
    if (n < 0 || n > MP_EXPERTS_BATCH_MAX)
        return mp_err_set(err, MP_E_INVAL, "layer %d: %d experts requested at once (at most %d)", layer, n,
                          MP_EXPERTS_BATCH_MAX);
    for (int i = 0; i < n; i++) ids[i] = (uint32_t)experts[i];
    return mp_cache_request_layer(cache_of(p), (uint32_t)layer, ids, (uint32_t)n, err);
}

static int cp_next_ready(mp_provider *p, bool block, int *expert, mp_expert_w *out, mp_err *err)
{
    mp_cache_ready r;
    int rc = block ? mp_cache_wait_any(cache_of(p), &r, err) : mp_cache_poll(cache_of(p), &r, err);
    if (rc == 1 || rc < 0) *expert = (int)r.expert;
    if (rc == 1) to_w(&r.ptrs, out);
    return rc;
}

static void cp_prefetch(mp_provider *p, int layer, const int *experts, int n)
{
    mp_cache *c = cache_of(p);
    mp_cache_prediction_begin(c);
    /* the predicted experts that are present first: that guards them, so
     * that the loads of the others do not evict them */
    for (int i = 0; i < n; i++)
        if (mp_cache_present(c, (uint32_t)layer, (uint32_t)experts[i]))
            (void)mp_cache_request(c, (uint32_t)layer, (uint32_t)experts[i], MP_CACHE_PREFETCH, NULL);
    for (int i = 0; i < n; i++)
        if (!mp_cache_present(c, (uint32_t)layer, (uint32_t)experts[i]) &&
            mp_cache_request(c, (uint32_t)layer, (uint32_t)experts[i], MP_CACHE_PREFETCH, NULL) != MP_OK)
            break; /* no room: the rest would be dropped too */
}

static bool cp_present(mp_provider *p, int layer, int expert)
{
    return mp_cache_present(cache_of(p), (uint32_t)layer, (uint32_t)expert);
}

static void cp_abandon(mp_provider *p) { mp_cache_abandon(cache_of(p)); }
static void cp_poll(mp_provider *p) { mp_cache_reap(cache_of(p)); }
static void cp_layer_done(mp_provider *p, int layer) { mp_cache_layer_done(cache_of(p), (uint32_t)layer); }
static void cp_destroy(mp_provider *p) { free(p); }

static const mp_provider_ops cache_ops = {
    .name = "cache",
    .release = cp_release,
    .destroy = cp_destroy,
    .request = cp_request,
    .next_ready = cp_next_ready,
    .prefetch = cp_prefetch,
    .abandon = cp_abandon,
    .poll = cp_poll,
    .layer_done = cp_layer_done,
    .present = cp_present,
};

int mp_provider_cache_create(mp_provider **out, mp_cache *cache, mp_err *err)
{
    *out = NULL;
    cache_provider *cp = calloc(1, sizeof *cp);
    if (!cp) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    cp->base.ops = &cache_ops;
    cp->base.max_pinned = (int)mp_cache_n_slots(cache);
    cp->cache = cache;
    *out = &cp->base;
    return MP_OK;
}
