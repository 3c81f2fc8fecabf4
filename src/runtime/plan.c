#include "plan.h"

#include "common/defaults.h"
#include "common/parse.h"
#include "model/forward.h"
#include "runtime/resident.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 4096

int mp_expert_locs_gguf(const mp_model *m, mp_expert_loc **locs, mp_err *err)
{
    const uint32_t L = m->hp.n_layer, X = m->hp.n_expert ? m->hp.n_expert : 1;
    mp_expert_loc *v = calloc((size_t)L * X, sizeof *v);
    if (!v) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    for (uint32_t il = 0; il < L; il++) {
        const mp_layer *l = &m->layers[il];
        if (!mp_layer_is_moe(l)) continue;
        const mp_tensor *t[3] = {&l->ffn_gate_exps, &l->ffn_up_exps, &l->ffn_down_exps};
        for (uint32_t e = 0; e < X; e++) {
            mp_expert_loc *loc = &v[(size_t)il * X + e];
            loc->n_parts = 3;
            for (int p = 0; p < 3; p++) {
                loc->part[p].offset = t[p]->info->offset + (uint64_t)e * t[p]->expert_stride;
                loc->part[p].len = t[p]->expert_stride;
            }
        }
    }
    *locs = v;
    return MP_OK;
}

static uint64_t overhead_bytes(const mp_model *m)
{
    /* metadata is held twice: parsed GGUF keys and tokenizer tables */
    return MP_PLAN_OVERHEAD_BASE + 3 * mp_gguf_data_offset(m->gguf);
}

int mp_plan_make(const mp_model *m, const mp_expert_loc *locs, const mp_plan_opts *o, mp_plan *p, mp_err *err)
{
    memset(p, 0, sizeof *p);
    const mp_hparams *hp = &m->hp;
    mp_model_sizes sz;
    mp_model_sizes_get(m, &sz);
    const int n_ctx = mp_default_n_ctx(o->n_ctx, hp->n_ctx_train);
    const int n_batch = mp_default_n_batch(o->n_batch, n_ctx);
    const int n_threads = mp_default_threads(o->n_threads);
    p->kv = mp_ctx_kv_bytes(m, n_ctx);
    p->scratch = mp_ctx_scratch_bytes(m, n_ctx, n_batch, n_threads);
    p->overhead = overhead_bytes(m);
    p->expert_bytes = sz.expert_bytes;
    p->budget = o->mem;
    for (uint32_t il = 0; il < hp->n_layer; il++) p->n_moe_layers += mp_layer_is_moe(&m->layers[il]);
    p->n_experts_total = (uint64_t)p->n_moe_layers * hp->n_expert;
    /* a pack always streams: its blocks are checked (and decoded) in cache
     * slots, never used from a mapping */
    p->offload = (o->mem || o->cache_bytes || o->cache_experts || o->pack) && p->n_moe_layers > 0;
    if (!p->offload) {
        p->resident = sz.total_bytes;
        p->total = sz.total_bytes + p->kv + p->scratch + p->overhead;
        return MP_OK;
    }
    p->resident = mp_resident_bytes(m);
    p->slot_bytes = mp_cache_slot_bytes(locs, (uint64_t)hp->n_layer * hp->n_expert, PLAN_ALIGN);
    p->min_slots = hp->n_expert_used;
    const uint64_t fixed = p->resident + p->kv + p->scratch + p->overhead;
    uint64_t slots;
    if (o->cache_experts) slots = (uint64_t)o->cache_experts * p->n_moe_layers;
    else if (o->cache_bytes) slots = o->cache_bytes / p->slot_bytes;
    else if (o->mem) slots = o->mem > fixed ? (o->mem - fixed) / p->slot_bytes : 0;
    else slots = p->n_experts_total; /* a pack without a budget: every expert, read once */
    if (slots > p->n_experts_total) slots = p->n_experts_total;
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    if (slots < p->min_slots) {
        uint64_t need = fixed + (uint64_t)p->min_slots * p->slot_bytes;
        mp_format_size(need, a, sizeof a);
        mp_format_size(p->resident, b, sizeof b);
        mp_format_size(p->kv, c, sizeof c);
        mp_format_size(p->scratch, d, sizeof d);
        mp_format_size(p->overhead, e, sizeof e);
        mp_format_size(p->slot_bytes, f, sizeof f);
        mp_format_size(o->mem ? o->mem : o->cache_bytes, g, sizeof g);
        return mp_err_set(err, MP_E_BUDGET,
                          "%s: %s is too small: need at least %s: resident %s + KV %s (%d tokens) + scratch %s + "
                          "overhead %s + %u experts of %s (the experts one layer pins at once)",
                          m->path, g, a, b, c, n_ctx, d, e, p->min_slots, f);
    }
    p->slots = (uint32_t)slots;
    p->cache_bytes = slots * p->slot_bytes;
    p->total = fixed + p->cache_bytes;
    if (o->mem && p->total > o->mem) {
        mp_format_size(p->total, a, sizeof a);
        mp_format_size(o->mem, b, sizeof b);
        return mp_err_set(err, MP_E_BUDGET, "%s: the plan needs %s, more than --mem %s (lower --cache-size/--cache-experts)",
                          m->path, a, b);
    }
    return MP_OK;
}

void mp_plan_describe(const mp_plan *p, char *buf, size_t cap)
{
    char r[32], k[32], s[32], o[32], c[32], sl[32], t[32], b[32];
    mp_format_size(p->resident, r, sizeof r);
    mp_format_size(p->kv, k, sizeof k);
    mp_format_size(p->scratch, s, sizeof s);
    mp_format_size(p->overhead, o, sizeof o);
    mp_format_size(p->cache_bytes, c, sizeof c);
    mp_format_size(p->slot_bytes, sl, sizeof sl);
    mp_format_size(p->total, t, sizeof t);
    mp_format_size(p->budget, b, sizeof b);
    if (!p->offload) {
        snprintf(buf, cap, "memory plan: all weights mapped (%s) + KV %s + scratch %s + overhead %s = %s", r, k, s, o, t);
        return;
    }
    snprintf(buf, cap,
             "memory plan: resident %s + KV %s + scratch %s + overhead %s + expert cache %s (%u slots of %s, %.1f per "
             "layer, %.0f%% of expert bytes) = %s%s%s%s",
             r, k, s, o, c, p->slots, sl, p->n_moe_layers ? (double)p->slots / p->n_moe_layers : 0.0,
             p->expert_bytes ? 100.0 * (double)p->cache_bytes / (double)p->expert_bytes : 0.0, t,
             p->budget ? " (budget " : "", p->budget ? b : "", p->budget ? ")" : "");
}
