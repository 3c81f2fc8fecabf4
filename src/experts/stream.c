/* The streamer (experts.h): the streaming window over one layer's needed
 * experts, prefetch orchestration, and the emulation of asynchronous
 * delivery for synchronous providers. */
#include "experts/experts.h"

#include "experts/provider.h"

#include <stdlib.h>
#include <string.h>

struct mp_experts {
    mp_provider *prov;
    uint32_t n_layer, n_expert, n_used, n_embd;
    uint8_t *is_moe;       /* [n_layer] */
    mp_predictor *pred;    /* NULL: no prefetch */
    mp_prefetch_cfg prefetch;

    /* the layer in progress (layer < 0: none) */
    int layer;
    const mp_experts_view *view;
    int *needed;           /* [n_expert] */
    int n_needed, window;
    int requested, delivered, released;
    bool prefetched;
    /* synchronous providers: requested, not yet handed out, in order */
    int sync_head;
};

static int open_with(mp_experts **out, const mp_experts_shape *sh, mp_provider *prov, mp_err *err)
{
    *out = NULL;
    if (!prov) return err ? err->status : MP_E_NOMEM;
    mp_experts *x = calloc(1, sizeof *x);
    if (x) {
        x->is_moe = malloc(sh->n_layer ? sh->n_layer : 1);
        x->needed = malloc(sizeof(int) * (sh->n_expert ? sh->n_expert : 1));
    }
    if (!x || !x->is_moe || !x->needed) {
        if (x) {
            free(x->is_moe);
            free(x->needed);
        }
        free(x);
        prov->ops->destroy(prov);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    memcpy(x->is_moe, sh->is_moe, sh->n_layer);
    x->prov = prov;
    x->n_layer = sh->n_layer;
    x->n_expert = sh->n_expert;
    x->n_used = sh->n_expert_used;
    x->n_embd = sh->n_embd;
    x->layer = -1;
    *out = x;
    return MP_OK;
}

static int check_shape(const mp_experts_shape *sh, mp_err *err)
{
    if (sh->n_expert > MP_EXPERTS_MAX)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%u experts per layer (at most %d are supported)", sh->n_expert,
                          MP_EXPERTS_MAX);
    if (sh->n_expert_used > MP_EXPERTS_BATCH_MAX)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%u experts per token (at most %d are supported)",
                          sh->n_expert_used, MP_EXPERTS_BATCH_MAX);
    return MP_OK;
}

int mp_experts_open_mapped(mp_experts **out, const mp_experts_shape *sh, const mp_expert_w *views, mp_err *err)
{
    *out = NULL;
    mp_provider *p = NULL;
    int rc = check_shape(sh, err);
    if (!rc) rc = mp_provider_mmap_create(&p, sh, views, err);
    return rc ? rc : open_with(out, sh, p, err);
}

int mp_experts_open_cached(mp_experts **out, const mp_experts_shape *sh, struct mp_cache *cache, mp_err *err)
{
    *out = NULL;
    mp_provider *p = NULL;
    int rc = check_shape(sh, err);
    if (!rc) rc = mp_provider_cache_create(&p, cache, err);
    return rc ? rc : open_with(out, sh, p, err);
}

void mp_experts_free(mp_experts *x)
{
    if (!x) return;
    mp_predictor_free(x->pred);
    x->prov->ops->destroy(x->prov);
    free(x->is_moe);
    free(x->needed);
    free(x);
}

int mp_experts_set_prefetch(mp_experts *x, const mp_prefetch_cfg *cfg, mp_gate_fn gate, const void *gate_ud,
                            mp_err *err)
{
    mp_predictor_free(x->pred);
    x->pred = NULL;
    memset(&x->prefetch, 0, sizeof x->prefetch);
    if (!cfg || cfg->kind == MP_PREFETCH_NONE) return MP_OK;
    mp_experts_shape sh = {x->n_layer, x->n_expert, x->n_used, x->n_embd, x->is_moe};
    int rc = mp_predictor_create(&x->pred, &sh, cfg, gate, gate_ud, err);
    if (rc) return rc;
    x->prefetch = *cfg;
    if (x->prefetch.lookahead < 1) x->prefetch.lookahead = 1;
    return MP_OK;
}

mp_prefetch_cfg mp_experts_prefetch(const mp_experts *x) { return x->prefetch; }

mp_predict_stats mp_experts_predict_stats(const mp_experts *x) { return mp_predict_get_stats(x->pred); }

float mp_experts_prefetch_min_prob(const mp_experts *x) { return x->pred ? mp_predict_min_prob(x->pred) : 0.0f; }

static int window_for(const mp_experts *x, int n)
{
    /* Half the slots, so that predictions of later layers find room while
     * this layer's experts are pinned; at least k, so one token's experts
     * are requested together; at most what one call hands out. */
    const int max_pinned = x->prov->max_pinned;
    int w = max_pinned > 0 ? max_pinned / 2 : n;
    if (w < (int)x->n_used) w = (int)x->n_used;
    if (w > n) w = n;
    if (w > MP_EXPERTS_BATCH_MAX) w = MP_EXPERTS_BATCH_MAX;
    return w;
}

int mp_experts_begin_layer(mp_experts *x, int layer, const int *needed, int n, const mp_experts_view *view,
                           mp_err *err)
{
    if (x->layer >= 0)
        return mp_err_set(err, MP_E_INVAL, "layer %d begun while layer %d is still running", layer, x->layer);
    if (layer < 0 || (uint32_t)layer >= x->n_layer || !x->is_moe[layer])
        return mp_err_set(err, MP_E_INVAL, "layer %d has no routed experts", layer);
    if (n < 0 || (uint32_t)n > x->n_expert)
        return mp_err_set(err, MP_E_INVAL, "layer %d: %d experts needed (the layer has %u)", layer, n, x->n_expert);
    for (int i = 0; i < n; i++)
        if (needed[i] < 0 || (uint32_t)needed[i] >= x->n_expert)
            return mp_err_set(err, MP_E_INVAL, "layer %d: expert %d out of range [0, %u)", layer, needed[i],
                              x->n_expert);
    memcpy(x->needed, needed, sizeof(int) * (size_t)n);
    if (x->pred) mp_predict_begin_layer(x->pred, layer, view ? view->T : 0);
    if (x->pred && view && view->T == 1) mp_predict_observe(x->pred, layer, needed, n);
    if (x->pred && view && view->h && view->T >= 1)
        mp_predict_observe_h(x->pred, layer, view->h + (int64_t)(view->T - 1) * x->n_embd);
    x->layer = layer;
    x->view = view;
    x->n_needed = n;
    x->window = window_for(x, n);
    x->requested = x->delivered = x->released = 0;
    x->sync_head = 0;
    x->prefetched = false;
    return MP_OK;
}

/* Queues loads of the experts that layers L+1 .. L+d are predicted to pick
 * (for the oracle, past the last layer: the next token's first layers). */
static bool present_in(void *ctx, int layer, int expert)
{
    mp_provider *p = ctx;
    return p->ops->present(p, layer, expert);
}

static void issue_prefetch(mp_experts *x)
{
    if (!x->pred || !x->prov->ops->prefetch) return;
    const int il = x->layer, n_layer = (int)x->n_layer;
    const bool cross = mp_predict_crosses_tokens(x->pred);
    int32_t pred[MP_EXPERTS_MAX];
    int ids[MP_EXPERTS_MAX];
    for (int d = 1; d <= x->prefetch.lookahead; d++) {
        int target = il + d;
        mp_predict_in in = {il, x->view->pos0, x->view->T, x->view->h, NULL, NULL};
        if (x->prov->ops->present) {
            in.present = present_in;
            in.present_ctx = x->prov;
        }
        if (target >= n_layer) {
            if (!cross) break;
            target -= n_layer; /* the next token's layers (the oracle knows them; a net guesses
                                * them from the chunk's last token) */
            in.pos0 += x->view->T;
            in.h += (int64_t)(x->view->T - 1) * x->n_embd;
            in.T = 1;
            if (target >= il) break; /* not past this layer: its layer_done would expire them */
        }
        int n = mp_predict(x->pred, &in, target, pred, MP_EXPERTS_MAX);
        for (int i = 0; i < n; i++) ids[i] = pred[i];
        if (n > 0) x->prov->ops->prefetch(x->prov, target, ids, n);
    }
}

static void drop_layer(mp_experts *x)
{
    if (x->prov->ops->abandon) x->prov->ops->abandon(x->prov);
    x->requested = x->delivered = x->n_needed;
}

/* One ready expert: async providers deliver in landing order; synchronous
 * ones are acquired in request order. */
static int take_one(mp_experts *x, bool block, int *ex, mp_expert_w *w, mp_err *err)
{
    const mp_provider_ops *ops = x->prov->ops;
    if (ops->next_ready) return ops->next_ready(x->prov, block, ex, w, err);
    if (x->sync_head == x->requested) return 0;
    *ex = x->needed[x->sync_head];
    int rc = ops->acquire(x->prov, x->layer, *ex, w, err);
    if (rc) return rc;
    x->sync_head++;
    return 1;
}

int mp_experts_next(mp_experts *x, int *ex, mp_expert_w *w, int cap, mp_err *err)
{
    if (x->layer < 0) return mp_err_set(err, MP_E_INVAL, "no layer begun");
    if (x->delivered == x->n_needed) return 0;
    if (cap > MP_EXPERTS_BATCH_MAX) cap = MP_EXPERTS_BATCH_MAX;
    if (cap < 1) return mp_err_set(err, MP_E_INVAL, "layer %d: room for no expert", x->layer);
    /* top the window up */
    const int in_use = x->requested - x->released;
    if (x->requested < x->n_needed && in_use < x->window) {
        int n = x->window - in_use;
        if (n > x->n_needed - x->requested) n = x->n_needed - x->requested;
        if (x->prov->ops->request) {
            int rc = x->prov->ops->request(x->prov, x->layer, x->needed + x->requested, n, err);
            if (rc) {
                drop_layer(x);
                return rc;
            }
        }
        x->requested += n;
    }
    if (!x->prefetched && x->requested == x->n_needed) {
        /* every expert this layer still needs is pinned: predictions of
         * later layers may now take the free slots */
        issue_prefetch(x);
        x->prefetched = true;
    }
    /* wait for one, then take every other one that is ready too */
    int n = 0;
    int r = take_one(x, true, &ex[0], &w[0], err);
    if (r <= 0) {
        drop_layer(x);
        return r < 0 ? r : mp_err_set(err, MP_E_INVAL, "layer %d: expert requests were lost", x->layer);
    }
    n = 1;
    while (n < cap && x->delivered + n < x->requested) {
        r = take_one(x, false, &ex[n], &w[n], err);
        if (r == MP_E_AGAIN || r == 0) break;
        if (r < 0) {
            mp_experts_release(x, ex, n);
            drop_layer(x);
            return r;
        }
        n++;
    }
    x->delivered += n;
    return n;
}

void mp_experts_release(mp_experts *x, const int *ex, int n)
{
    for (int i = 0; i < n; i++) x->prov->ops->release(x->prov, x->layer, ex[i]);
    x->released += n;
}

void mp_experts_end_layer(mp_experts *x)
{
    if (x->layer < 0) return;
    if (x->prov->ops->layer_done) x->prov->ops->layer_done(x->prov, x->layer);
    x->layer = -1;
    x->view = NULL;
}

void mp_experts_poll(mp_experts *x)
{
    if (x->prov->ops->poll) x->prov->ops->poll(x->prov);
}
