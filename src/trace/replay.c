/* Trace replay through the policies and Belady's MIN (see replay.h). */
#include "trace/replay.h"

#include "cache/policy_sim.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NO_NEXT UINT32_MAX /* next use of a key that is never used again */

/* The groups actually replayed for a cache of `capacity` slots: a group larger
 * than the cache becomes one group per key (streamed, see replay.h). Checks
 * keys < n_keys and no repeats in a group. *eff_off gets n_eff + 1 offsets
 * into keys (caller frees). */
static int effective_groups(const uint32_t *keys, const size_t *group_off, size_t n_groups, uint32_t n_keys,
                            uint32_t capacity, size_t **eff_off, size_t *n_eff, mp_err *err)
{
    int rc = MP_OK;
    size_t n_keys_total = group_off[n_groups] - group_off[0];
    size_t *off = malloc((n_keys_total + 1) * sizeof *off);
    uint64_t *seen = calloc((size_t)n_keys + 1, sizeof *seen); /* group stamp per key */
    if (!off || !seen) {
        rc = mp_err_set(err, MP_E_NOMEM, "replay: out of memory for %zu accesses", n_keys_total);
        goto fail;
    }
    size_t n = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t a = group_off[g], b = group_off[g + 1];
        if (b < a) {
            rc = mp_err_set(err, MP_E_INVAL, "replay: group %zu has decreasing offsets", g);
            goto fail;
        }
        for (size_t i = a; i < b; i++) {
            if (keys[i] >= n_keys) {
                rc = mp_err_set(err, MP_E_INVAL, "replay: key %u of group %zu is not below %u", keys[i], g, n_keys);
                goto fail;
            }
            if (seen[keys[i]] == g + 1) {
                rc = mp_err_set(err, MP_E_INVAL, "replay: key %u repeats in group %zu", keys[i], g);
                goto fail;
            }
            seen[keys[i]] = g + 1;
        }
        if (b - a <= capacity) {
            if (b > a) off[n++] = a;
        } else {
            for (size_t i = a; i < b; i++) off[n++] = i;
        }
    }
    off[n] = group_off[n_groups];
    free(seen);
    *eff_off = off;
    *n_eff = n;
    return MP_OK;
fail:
    free(off);
    free(seen);
    return rc;
}

/* ---- a policy-driven cache ------------------------------------------------ */

/* mp_replay_groups with keys in layers of n_experts (the policy's create
 * argument, see policy.h). */
static int replay_groups(const mp_policy_ops *ops, const uint32_t *keys, const size_t *group_off, size_t n_groups,
                         uint32_t n_keys, uint32_t n_experts, uint32_t capacity, mp_replay_stats *st, mp_err *err)
{
    memset(st, 0, sizeof *st);
    if (capacity == 0) return mp_err_set(err, MP_E_INVAL, "replay: a cache needs at least one slot");
    size_t *off = NULL, n_eff = 0;
    int rc = effective_groups(keys, group_off, n_groups, n_keys, capacity, &off, &n_eff, err);
    if (rc != MP_OK) return rc;

    mp_policy_sim sim;
    if (!mp_policy_sim_init(&sim, ops, capacity, n_keys, n_experts)) {
        free(off);
        return mp_err_set(err, MP_E_NOMEM, "replay: out of memory for %u slots, %u keys (policy %s)", capacity,
                          n_keys, ops->name);
    }
    for (size_t g = 0; g < n_eff && rc == MP_OK; g++) {
        for (size_t i = off[g]; i < off[g + 1]; i++) mp_policy_sim_pin(&sim, keys[i]);
        for (size_t i = off[g]; i < off[g + 1] && rc == MP_OK; i++) {
            st->accesses++;
            int64_t v = -1;
            const int r = mp_policy_sim_access(&sim, keys[i], &v);
            if (r > 0) {
                st->hits++;
                continue;
            }
            st->misses++;
            if (r < 0)
                rc = mp_err_set(err, MP_E_INVAL,
                                "replay: policy %s gave victim %lld at access %llu (%u slots, group of %zu)",
                                ops->name, (long long)v, (unsigned long long)st->accesses, capacity,
                                off[g + 1] - off[g]);
        }
        if (rc == MP_OK) mp_policy_sim_end_group(&sim);
    }
    mp_policy_sim_free(&sim);
    free(off);
    return rc;
}

int mp_replay_groups(const mp_policy_ops *ops, const uint32_t *keys, const size_t *group_off, size_t n_groups,
                     uint32_t n_keys, uint32_t capacity, mp_replay_stats *st, mp_err *err)
{
    return replay_groups(ops, keys, group_off, n_groups, n_keys, n_keys, capacity, st, err);
}

/* ---- Belady's MIN ------------------------------------------------------------
 * Within a group the keys of the group have "next use" = now, the nearest
 * possible, so a max-heap on next use never offers them while a key outside
 * the group is resident, and there always is one when a group of at most
 * `capacity` keys misses in a full cache. Optimality: replaying group G as
 * G's keys twice in a row turns the pinned problem into plain paging with the
 * same optimal cost, where Belady's classic rule is optimal and makes exactly
 * these choices. The heap holds (next use, key) entries lazily: an entry is
 * live while the key is resident and its next use is unchanged. */

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] >= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] > h[c]) c++;
        if (h[c] <= v) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = v;
    return top;
}

int mp_replay_groups_belady(const uint32_t *keys, const size_t *group_off, size_t n_groups, uint32_t n_keys,
                            uint32_t capacity, mp_replay_stats *st, mp_err *err)
{
    memset(st, 0, sizeof *st);
    if (capacity == 0) return mp_err_set(err, MP_E_INVAL, "replay: a cache needs at least one slot");
    size_t *off = NULL, n_eff = 0;
    int rc = effective_groups(keys, group_off, n_groups, n_keys, capacity, &off, &n_eff, err);
    if (rc != MP_OK) return rc;
    if (n_eff >= NO_NEXT) {
        free(off);
        return mp_err_set(err, MP_E_INVAL, "replay: %zu groups is too many for Belady", n_eff);
    }

    size_t base = group_off[0], n = off[n_eff] - base;
    uint32_t *next = malloc((n + 1) * sizeof *next);      /* per access: next group using its key */
    uint32_t *cur = malloc(((size_t)n_keys + 1) * sizeof *cur); /* per key: next use / scratch */
    uint8_t *resident = calloc((size_t)n_keys + 1, 1);
    uint64_t *heap = malloc((n + 1) * sizeof *heap);
    if (!next || !cur || !resident || !heap) {
        rc = mp_err_set(err, MP_E_NOMEM, "replay: out of memory for Belady over %zu accesses", n);
        goto done;
    }
    for (uint32_t k = 0; k < n_keys; k++) cur[k] = NO_NEXT;
    for (size_t g = n_eff; g-- > 0;) {
        for (size_t i = off[g]; i < off[g + 1]; i++) next[i - base] = cur[keys[i]];
        for (size_t i = off[g]; i < off[g + 1]; i++) cur[keys[i]] = (uint32_t)g;
    }
    /* cur[key] now holds the key's first use; from here on it is the next use
     * of a resident key as of the current group. */
    size_t hn = 0;
    uint32_t used = 0;
    for (size_t g = 0; g < n_eff; g++) {
        for (size_t i = off[g]; i < off[g + 1]; i++) {
            uint32_t key = keys[i];
            st->accesses++;
            if (resident[key]) {
                st->hits++;
                continue;
            }
            st->misses++;
            if (used == capacity) {
                for (;;) {
                    if (hn == 0) {
                        rc = mp_err_set(err, MP_E_INVAL, "replay: Belady found no victim at group %zu", g);
                        goto done;
                    }
                    uint64_t e = heap_pop(heap, &hn);
                    uint32_t k = (uint32_t)e, nu = (uint32_t)(e >> 32);
                    if (!resident[k] || cur[k] != nu) continue; /* stale entry */
                    if (nu == g) {
                        rc = mp_err_set(err, MP_E_INVAL, "replay: Belady would evict pinned key %u", k);
                        goto done;
                    }
                    resident[k] = 0;
                    used--;
                    break;
                }
            }
            resident[key] = 1;
            used++;
        }
        for (size_t i = off[g]; i < off[g + 1]; i++) {
            uint32_t key = keys[i];
            cur[key] = next[i - base];
            heap_push(heap, &hn, (uint64_t)cur[key] << 32 | key);
        }
    }
done:
    free(next);
    free(cur);
    free(resident);
    free(heap);
    free(off);
    return rc;
}

/* ---- traces ------------------------------------------------------------------ */

static const mp_trace *sort_trace; /* qsort has no context argument */

static int rec_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const mp_trace_rec *x = &sort_trace->recs[i], *y = &sort_trace->recs[j];
    if (x->problem != y->problem) return x->problem < y->problem ? -1 : 1;
    if (x->token_idx != y->token_idx) return x->token_idx < y->token_idx ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (i > j) - (i < j);
}

static int trace_run(const mp_trace *t, const mp_policy_ops *ops, uint32_t capacity, mp_replay_mode mode,
                     mp_replay_stats *st, mp_err *err)
{
    memset(st, 0, sizeof *st);
    if (capacity == 0) return mp_err_set(err, MP_E_INVAL, "replay: a cache needs at least one slot");
    uint64_t n_keys64 = (uint64_t)t->n_layers * t->n_experts;
    uint64_t global_cap = (uint64_t)capacity * (t->n_layers ? t->n_layers : 1);
    if (n_keys64 >= UINT32_MAX || (mode == MP_REPLAY_GLOBAL && global_cap > UINT32_MAX))
        return mp_err_set(err, MP_E_INVAL, "replay: %u layers x %u experts x %u slots is too large", t->n_layers,
                          t->n_experts, capacity);
    uint32_t n_keys = (uint32_t)n_keys64;
    size_t n_vals = 0;
    for (size_t r = 0; r < t->n_recs; r++) n_vals += t->recs[r].k;

    int rc = MP_OK;
    size_t *order = malloc((t->n_recs + 1) * sizeof *order);
    uint32_t *keys = malloc((n_vals + 1) * sizeof *keys);
    size_t *goff = malloc((t->n_recs + 1) * sizeof *goff);
    if (!order || !keys || !goff) {
        rc = mp_err_set(err, MP_E_NOMEM, "replay: out of memory for %zu records", t->n_recs);
        goto done;
    }
    for (size_t r = 0; r < t->n_recs; r++) order[r] = r;
    sort_trace = t;
    qsort(order, t->n_recs, sizeof *order, rec_cmp);
    sort_trace = NULL;

    uint32_t n_parts = mode == MP_REPLAY_GLOBAL ? 1 : t->n_layers;
    for (uint32_t part = 0; part < n_parts; part++) {
        size_t ng = 0, nk = 0;
        goff[0] = 0;
        for (size_t o = 0; o < t->n_recs; o++) {
            const mp_trace_rec *r = &t->recs[order[o]];
            if (mode == MP_REPLAY_PER_LAYER && r->layer != part) continue;
            for (uint32_t i = 0; i < r->k; i++) keys[nk++] = r->layer * t->n_experts + t->experts[r->off + i];
            goff[++ng] = nk;
        }
        mp_replay_stats s;
        uint32_t cap = mode == MP_REPLAY_GLOBAL ? (uint32_t)global_cap : capacity;
        rc = ops ? replay_groups(ops, keys, goff, ng, n_keys, t->n_experts, cap, &s, err)
                 : mp_replay_groups_belady(keys, goff, ng, n_keys, cap, &s, err);
        if (rc != MP_OK) goto done;
        st->accesses += s.accesses;
        st->hits += s.hits;
        st->misses += s.misses;
    }
done:
    free(order);
    free(keys);
    free(goff);
    return rc;
}

int mp_trace_replay(const mp_trace *t, const mp_policy_ops *ops, uint32_t capacity, mp_replay_mode mode,
                    mp_replay_stats *st, mp_err *err)
{
    if (!ops) return mp_err_set(err, MP_E_INVAL, "replay: no policy");
    return trace_run(t, ops, capacity, mode, st, err);
}

int mp_trace_belady(const mp_trace *t, uint32_t capacity, mp_replay_mode mode, mp_replay_stats *st, mp_err *err)
{
    return trace_run(t, NULL, capacity, mode, st, err);
}
