/* The VRAM tier (tier.h): the plan, the cost model, the VRAM expert cache. */
#include "gpu/tier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }
static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

int mp_vram_plan_make(mp_vram_plan *p, uint64_t budget, uint64_t resident, uint64_t kv, uint64_t scratch,
                      uint64_t expert_bytes, uint32_t n_experts, uint32_t min_slots, mp_err *err)
{
    *p = (mp_vram_plan){.budget = budget, .resident = resident, .kv = kv, .scratch = scratch,
                        .expert_bytes = expert_bytes, .n_experts = n_experts, .min_slots = min_slots};
    if (min_slots > n_experts) p->min_slots = min_slots = n_experts;
    const uint64_t fixed = resident + kv + scratch, need = fixed + (uint64_t)min_slots * expert_bytes;
    if (budget < need)
        return mp_err_set(err, MP_E_BUDGET,
                          "--vram %.2f GiB is too small: need at least %.2f GiB = resident %.2f GiB (embeddings, "
                          "attention, norms, routers, shared experts, dense layers, output head) + KV cache %.2f GiB "
                          "+ scratch %.2f GiB + %u experts (one layer's top-k) x %.2f MiB; give more, use a "
                          "smaller -c, or --vram 0 (CPU only)",
                          gib(budget), gib(need), gib(resident), gib(kv), gib(scratch), min_slots, mib(expert_bytes));
    uint64_t slots = expert_bytes ? (budget - fixed) / expert_bytes : 0;
    if (slots > n_experts) slots = n_experts;
    p->slots = (uint32_t)slots;
    p->expert_cache = slots * expert_bytes;
    return MP_OK;
}

/* "1.25 GiB" from 1 GiB up, else "12.5 MiB" */
static const char *size_str(char *b, size_t cap, uint64_t n)
{
    if (n >= (1ull << 30)) snprintf(b, cap, "%.2f GiB", gib(n));
    else snprintf(b, cap, "%.1f MiB", mib(n));
    return b;
}

void mp_vram_plan_describe(const mp_vram_plan *p, char *buf, size_t cap)
{
    char a[32], r[32], k[32], s[32], c[32];
    snprintf(buf, cap, "vram %s: resident %s + KV %s + scratch %s + expert cache %u of %u experts x %.2f MiB (%s)%s",
             size_str(a, sizeof a, p->budget), size_str(r, sizeof r, p->resident), size_str(k, sizeof k, p->kv),
             size_str(s, sizeof s, p->scratch), p->slots, p->n_experts, mib(p->expert_bytes),
             size_str(c, sizeof c, p->expert_cache), p->slots == p->n_experts ? ": every expert fits" : "");
}

/* ---- cost model ---------------------------------------------------------- */

double mp_tier_cpu_s(const mp_tier_costs *c, uint64_t bytes, int T)
{
    const double tile = c->cpu_tok_tile > 1 ? c->cpu_tok_tile : 1;
    return (double)bytes / c->cpu_Bps * ceil((double)(T > 0 ? T : 1) / tile);
}

double mp_tier_gpu_s(const mp_tier_costs *c, uint64_t bytes, int T)
{
    (void)T; /* a GPU expert over a few hundred tokens is still bound by its weights */
    return (double)bytes / c->gpu_Bps + c->gpu_launch_s;
}

double mp_tier_copy_s(const mp_tier_costs *c, uint64_t bytes) { return (double)bytes / c->pcie_Bps; }

/* ---- the VRAM expert cache ----------------------------------------------- */

struct mp_tier {
    mp_tier_params p;
    int32_t *where;      /* [n_layer * n_expert] slot or -1 */
    float *count;        /* [n_layer * n_expert] decayed uses, as of stamp */
    uint64_t *stamp;     /* [n_layer * n_expert] token clock of count */
    int32_t *slot_key;   /* [slots] key or -1 */
    uint64_t *slot_used; /* [slots] layer epoch of the last use */
    uint64_t clock;      /* tokens seen */
    uint64_t epoch;      /* layers begun */
    int last_layer;      /* the layer begun last (-1: none yet) */
    mp_tier_stats_gpu st;
};

int mp_tier_create(mp_tier **out, const mp_tier_params *p, mp_err *err)
{
    *out = NULL;
    if (p->n_layer == 0 || p->n_expert == 0) return mp_err_set(err, MP_E_INVAL, "vram tier: no experts");
    if (!(p->costs.pcie_Bps > 0 && p->costs.cpu_Bps > 0 && p->costs.gpu_Bps > 0))
        return mp_err_set(err, MP_E_INVAL, "vram tier: cost constants must be positive");
    mp_tier *t = calloc(1, sizeof *t);
    const size_t nk = (size_t)p->n_layer * p->n_expert, ns = p->plan.slots ? p->plan.slots : 1;
    if (!t || !(t->where = malloc(nk * sizeof *t->where)) || !(t->count = calloc(nk, sizeof *t->count)) ||
        !(t->stamp = calloc(nk, sizeof *t->stamp)) || !(t->slot_key = malloc(ns * sizeof *t->slot_key)) ||
        !(t->slot_used = calloc(ns, sizeof *t->slot_used))) {
        mp_tier_free(t);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    t->p = *p;
    if (!(t->p.decay > 0 && t->p.decay <= 1)) t->p.decay = 0.95;
    t->last_layer = -1;
    for (size_t i = 0; i < nk; i++) t->where[i] = -1;
    for (size_t i = 0; i < ns; i++) t->slot_key[i] = -1;
    *out = t;
    return MP_OK;
}

void mp_tier_free(mp_tier *t)
{
    if (!t) return;
    free(t->where);
    free(t->count);
    free(t->stamp);
    free(t->slot_key);
    free(t->slot_used);
    free(t);
}

mp_device_kind mp_tier_device(const mp_tier *t) { return t->p.kind; }
const mp_vram_plan *mp_tier_plan(const mp_tier *t) { return &t->p.plan; }

static float count_now(const mp_tier *t, size_t key)
{
    const uint64_t age = t->clock - t->stamp[key];
    return t->count[key] * (float)pow(t->p.decay, (double)age);
}

void mp_tier_begin_layer(mp_tier *t, int layer, int tokens)
{
    t->epoch++;
    /* back at a first MoE layer (or the same one): a new chunk */
    if (layer <= t->last_layer) t->clock += (uint64_t)(tokens > 0 ? tokens : 1);
    t->last_layer = layer;
}

bool mp_tier_resident(const mp_tier *t, int layer, int expert)
{
    return t->where[(size_t)layer * t->p.n_expert + (size_t)expert] >= 0;
}

mp_run_where mp_tier_place(mp_tier *t, int layer, int expert, int T, int *slot)
{
    const size_t key = (size_t)layer * t->p.n_expert + (size_t)expert;
    const uint64_t eb = t->p.plan.expert_bytes;
    const float c = count_now(t, key) + 1.0f;
    t->count[key] = c;
    t->stamp[key] = t->clock;
    t->st.demands++;
    const double gpu_s = mp_tier_gpu_s(&t->p.costs, eb, T), cpu_s = mp_tier_cpu_s(&t->p.costs, eb, T);
    if (t->where[key] >= 0) {
        *slot = t->where[key];
        t->slot_used[*slot] = t->epoch;
        t->st.hits++;
        t->st.run_gpu++;
        t->st.est_gpu_s += gpu_s;
        return MP_RUN_GPU_HIT;
    }
    /* Promote when the copy is paid back by the uses this expert has seen
     * lately (its decayed count, this one included): copy <= uses * gain. */
    const double copy_s = mp_tier_copy_s(&t->p.costs, eb), gain = cpu_s - gpu_s;
    int victim = -1;
    if (t->p.plan.slots > 0 && gain > 0 && copy_s <= (double)c * gain) {
        float vc = INFINITY;
        for (uint32_t s = 0; s < t->p.plan.slots; s++) {
            if (t->slot_key[s] < 0) {
                victim = (int)s;
                vc = -1;
                break;
            }
            if (t->slot_used[s] == t->epoch) continue; /* in use by this layer */
            const float sc = count_now(t, (size_t)t->slot_key[s]);
            if (sc < vc) {
                vc = sc;
                victim = (int)s;
            }
        }
        if (victim >= 0 && vc >= c) victim = -1; /* never evict a hotter expert */
    }
    if (victim < 0) {
        *slot = -1;
        t->st.run_cpu++;
        t->st.est_cpu_s += cpu_s;
        return MP_RUN_CPU;
    }
    if (t->slot_key[victim] >= 0) {
        t->where[t->slot_key[victim]] = -1;
        t->st.evictions++;
    }
    t->slot_key[victim] = (int32_t)key;
    t->slot_used[victim] = t->epoch;
    t->where[key] = victim;
    *slot = victim;
    t->st.promotions++;
    t->st.bytes_up += eb;
    t->st.run_gpu++;
    t->st.est_gpu_s += gpu_s + copy_s;
    if (t->p.kind == MP_DEVICE_SIM) t->st.stall_s += copy_s; /* no copy stream to hide it behind */
    return MP_RUN_GPU_COPY;
}

void mp_tier_get_stats(const mp_tier *t, mp_tier_stats_gpu *out) { *out = t->st; }
void mp_tier_add_stall(mp_tier *t, double s) { t->st.stall_s += s; }
