#include "plan.h"

#include "common/defaults.h"
#include "common/parse.h"
#include "model/forward.h"
#include "model/route.h"
#include "runtime/resident.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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
                loc->part[p].offset = mp_tensor_expert_offset(t[p], e); /* a fused gate_up: two views */
                loc->part[p].len = mp_tensor_expert_bytes(t[p]);
            }
        }
    }
    *locs = v;
    return MP_OK;
}

static uint64_t overhead_bytes(const mp_model *m)
{
    /* metadata is held twice: parsed GGUF keys and tokenizer tables (whose
     * lookup tables take more per token); and the lookahead's compact copy of
     * the routers when experts stream */
    return MP_PLAN_OVERHEAD_BASE + 3 * mp_gguf_data_offset(m->gguf) + mp_model_gate_copy_bytes(m) +
           (uint64_t)m->hp.n_vocab * MP_PLAN_OVERHEAD_PER_TOKEN;
}

uint64_t mp_plan_margin(uint64_t allowed)
{
    uint64_t floor = allowed / MP_PLAN_MARGIN_MIN_DIV;
    if (floor > MP_PLAN_MARGIN_MIN) floor = MP_PLAN_MARGIN_MIN;
    const uint64_t share = allowed / MP_PLAN_MARGIN_DIV;
    return share > floor ? share : floor;
}

/* The default budget for an allowance: allowed less the margin, whole MiB. */
static uint64_t auto_budget(uint64_t allowed) { return (allowed - mp_plan_margin(allowed)) & ~(MP_PLAN_AUTO_ROUND - 1); }

/* Experts streamed through a cache sized by o's budget option (o->mem may be
 * the default budget); kv, scratch, overhead and the model counts are set. */
static int plan_offload(const mp_model *m, const mp_expert_loc *locs, const mp_plan_opts *o, int n_ctx, mp_plan *p,
                        mp_err *err)
{
    const mp_hparams *hp = &m->hp;
    p->offload = true;
    p->budget = o->mem;
    p->resident = mp_resident_bytes(m);
    /* the io's real alignment (statx can raise it past 4096): the slot the
     * cache will make, not a guess */
    p->slot_bytes = mp_cache_slot_bytes(locs, (uint64_t)hp->n_layer * hp->n_expert, o->align ? o->align : 4096);
    p->min_slots = hp->n_expert_used;
    const uint64_t fixed = p->resident + p->kv + p->scratch + p->overhead;
    p->stream_min = fixed + (uint64_t)p->min_slots * p->slot_bytes;
    uint64_t slots;
    if (o->cache_experts) slots = (uint64_t)o->cache_experts * p->n_moe_layers;
    else if (o->cache_bytes) slots = o->cache_bytes / p->slot_bytes;
    else if (o->mem) slots = o->mem > fixed ? (o->mem - fixed) / p->slot_bytes : 0;
    else slots = p->n_experts_total; /* a pack without a budget: every expert, read once */
    if (slots > p->n_experts_total) slots = p->n_experts_total;
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    if (slots < p->min_slots) {
        mp_format_size(p->stream_min, a, sizeof a);
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

int mp_plan_make(const mp_model *m, const mp_expert_loc *locs, const mp_plan_opts *o, mp_plan *p, mp_err *err)
{
    memset(p, 0, sizeof *p);
    const mp_hparams *hp = &m->hp;
    mp_model_sizes sz;
    mp_model_sizes_get(m, &sz);
    const int n_ctx = mp_default_n_ctx(o->n_ctx, hp->n_ctx_train);
    const int n_batch = mp_default_n_batch(o->n_batch, n_ctx);
    const int n_threads = mp_default_threads(o->n_threads);
    /* every sequence (server slot) has its own KV cache */
    p->kv = (mp_ctx_kv_bytes(m, n_ctx, n_batch) + mp_ctx_state_bytes(m) * (uint64_t)(o->n_ckpt > 0 ? o->n_ckpt : 0)) *
            (uint64_t)(o->n_seq > 0 ? o->n_seq : 1);
    p->scratch = mp_ctx_scratch_bytes(m, n_ctx, n_batch, n_threads);
    p->overhead = overhead_bytes(m) + o->extra_overhead;
    p->expert_bytes = sz.expert_bytes;
    for (uint32_t il = 0; il < hp->n_layer; il++) p->n_moe_layers += mp_layer_is_moe(&m->layers[il]);
    p->n_experts_total = (uint64_t)p->n_moe_layers * hp->n_expert;
    /* the whole file mapped: every tensor counts, experts included */
    p->mapped_total = sz.total_bytes + p->kv + p->scratch + p->overhead;
    const bool option = o->mem || o->cache_bytes || o->cache_experts;
    if (option && p->n_moe_layers > 0) return plan_offload(m, locs, o, n_ctx, p, err);
    /* a pack always streams: its blocks are checked (and decoded) in cache
     * slots, never used from a mapping; without a budget the cache holds
     * every expert, unless the machine allows less (below) */
    const bool known = o->machine && o->machine->allowed;
    if (o->pack && p->n_moe_layers > 0 && !known) return plan_offload(m, locs, o, n_ctx, p, err);
    p->budget = o->mem;
    p->resident = sz.total_bytes;
    p->total = p->mapped_total;
    if (option || !o->machine || !o->machine->allowed) return MP_OK;

    /* The default budget: map when the mapped total fits what the machine
     * allows less the margin, else stream with that as --mem. */
    p->machine = *o->machine;
    p->margin = mp_plan_margin(p->machine.allowed);
    const uint64_t usable = auto_budget(p->machine.allowed);
    if (p->mapped_total <= usable) {
        p->auto_mode = MP_PLAN_AUTO_FITS;
        if (p->n_moe_layers == 0) return MP_OK;
        /* It fits: read every weight into RAM rather than serve it from the
         * mapping -- the resident weights into their buffer, every expert
         * into a cache slot of the huge-page slab, both repacked for the
         * kernels (4 KiB pages of a mapping cost TLB misses on every
         * token) -- when that plan (slot rounding included) fits too; a
         * pack is always read so. Else mapped, as --mmap. */
        mp_plan lp = *p;
        mp_err e = {0};
        int rc = plan_offload(m, locs, o, n_ctx, &lp, o->pack ? err : &e);
        if (rc == MP_OK && (o->pack || lp.total <= usable)) {
            *p = lp;
            p->auto_mode = MP_PLAN_AUTO_FITS;
            return MP_OK;
        }
        return o->pack ? rc : MP_OK;
    }
    if (p->n_moe_layers == 0) {
        p->auto_mode = MP_PLAN_AUTO_NO_EXPERTS;
        return MP_OK;
    }
    mp_plan_opts ao = *o;
    ao.mem = usable;
    ao.machine = NULL;
    mp_plan sp = *p;
    mp_err e = {0};
    if (plan_offload(m, locs, &ao, n_ctx, &sp, &e) == MP_OK) {
        *p = sp;
        p->auto_mode = MP_PLAN_AUTO_STREAM;
        return MP_OK;
    }
    /* Even the smallest cache does not fit: mapping still runs, paging (a
     * pack cannot be mapped: say what it needs). */
    if (o->pack) return plan_offload(m, locs, &ao, n_ctx, p, err);
    p->stream_min = sp.stream_min;
    p->auto_mode = MP_PLAN_AUTO_TOO_SMALL;
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
             "layer, %.0f%% of expert bytes) = %s%s%s%s%s",
             r, k, s, o, c, p->slots, sl, p->n_moe_layers ? (double)p->slots / p->n_moe_layers : 0.0,
             p->expert_bytes ? 100.0 * (double)p->cache_bytes / (double)p->expert_bytes : 0.0, t,
             p->budget ? " (budget " : "", p->budget ? b : "",
             p->auto_mode == MP_PLAN_AUTO_STREAM ? ", from what this machine allows" : "", p->budget ? ")" : "");
}

void mp_plan_note(const mp_plan *p, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = '\0';
    if (p->auto_mode == MP_PLAN_AUTO_OFF || (p->auto_mode == MP_PLAN_AUTO_FITS && !p->offload)) return;
    if (p->auto_mode == MP_PLAN_AUTO_FITS) {
        char need[32], allow[32];
        mp_format_size(p->total, need, sizeof need);
        mp_format_size(auto_budget(p->machine.allowed), allow, sizeof allow);
        snprintf(buf, cap, "plan: the model fits (%s of the %s this machine allows): every weight read into RAM, "
                           "experts into the cache's slab (--mmap maps the file instead)", need, allow);
        return;
    }
    const mp_mem_allowance *a = &p->machine;
    char need[32], allow[32], lim[32], margin[32], other[32], min[32];
    mp_format_size(p->mapped_total, need, sizeof need);
    mp_format_size(auto_budget(a->allowed), allow, sizeof allow);
    mp_format_size(a->allowed, lim, sizeof lim);
    mp_format_size(p->margin, margin, sizeof margin);
    /* which figure binds, and the other one for the record */
    const bool by_cgroup = a->cgroup_limit && a->cgroup_limit == a->allowed;
    if (by_cgroup && a->mem_available) mp_format_size(a->mem_available, other, sizeof other);
    else if (!by_cgroup && a->cgroup_limit) mp_format_size(a->cgroup_limit, other, sizeof other);
    else snprintf(other, sizeof other, "%s", by_cgroup ? "unknown" : "none");
    int n = snprintf(buf, cap, "plan: the model needs %s mapped; this machine allows %s (%s %s less %s for the rest; %s %s)",
                     need, allow, by_cgroup ? "cgroup limit" : "MemAvailable", lim, margin,
                     by_cgroup ? "MemAvailable" : "cgroup limit", other);
    if (n < 0 || (size_t)n >= cap) return;
    switch (p->auto_mode) {
    case MP_PLAN_AUTO_STREAM:
        snprintf(buf + n, cap - (size_t)n, ": streaming experts with --mem %lluM (--mmap maps the whole file)",
                 (unsigned long long)(p->budget / MP_PLAN_AUTO_ROUND));
        break;
    case MP_PLAN_AUTO_TOO_SMALL:
        mp_format_size(p->stream_min, min, sizeof min);
        snprintf(buf + n, cap - (size_t)n,
                 ", and streaming experts needs at least %s: mapping the whole file anyway (expect paging; --mem sets "
                 "a budget)",
                 min);
        break;
    default:
        snprintf(buf + n, cap - (size_t)n,
                 ", and it has no routed experts to stream: mapping the whole file anyway (expect paging)");
        break;
    }
}
