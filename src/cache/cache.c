/* The expert cache (see cache.h): slab, slot states, pins, the
 * (layer, expert) -> slot map, the delivery queue for asynchronous
 * demands, and statistics. I/O goes through mp_io; replacement through a
 * policy. Single-threaded by contract, so no locks. */
#define _GNU_SOURCE
#include "cache/cache.h"

#include "common/sysinfo.h"

#include <assert.h>
#include <math.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { SLOT_EMPTY = 0, SLOT_LOADING = 1, SLOT_READY = 2 };

/* Where an expert's ranges go in a slot: spans are the rounded-out file
 * ranges actually read (overlaps merged), parts are the caller's ranges. */
typedef struct cache_loc {
    uint64_t span_off[MP_EXPERT_MAX_PARTS];  /* file offset, aligned */
    uint64_t span_len[MP_EXPERT_MAX_PARTS];  /* aligned */
    uint64_t span_slot[MP_EXPERT_MAX_PARTS]; /* offset in the slot */
    uint64_t part_slot[MP_EXPERT_MAX_PARTS]; /* part i's first byte in the slot */
    uint64_t part_len[MP_EXPERT_MAX_PARTS];
    uint8_t n_spans, n_parts;
} cache_loc;

typedef struct cache_slot {
    uint32_t key;
    uint8_t state;
    uint8_t fill;       /* MP_FILL_DEMAND / MP_FILL_PREFETCH */
    uint8_t used;       /* a prefetch fill has been demanded since */
    uint8_t expired;    /* a prefetch fill whose layer ran without it */
    uint8_t guard;      /* predicted again while present: no prefetch evicts it until its layer runs */
    uint32_t pred;      /* the prediction (mp_cache_prediction_begin) that last named it; 0: none */
    uint8_t n_left;     /* spans still reading */
    uint32_t pins;      /* acquirers + undelivered and delivered demands */
    uint32_t waiting;   /* undelivered demands while LOADING */
    uint32_t gen;       /* bumped at every fill and failure */
    int32_t io_err;     /* first -errno among the spans */
    uint8_t err_span;
    int fail_status;    /* last failure, for acquire */
} cache_slot;

typedef struct ready_ent {
    uint32_t slot, key;
    int status;         /* failures: the message is ready_msg[] at the same index */
} ready_ent;

struct mp_cache {
    uint32_t n_layers, n_experts, n_keys;
    cache_loc *locs;           /* [n_keys] */
    int32_t *map;              /* [n_keys]: slot or -1 */
    cache_slot *slots;         /* [n_slots] */
    uint32_t n_slots;
    uint64_t slot_size;
    char *slab;
    size_t slab_map_len;
    void *slab_map;
    uint32_t *free_slots;      /* stack of EMPTY slots */
    uint32_t n_free;
    uint32_t pf_layer;         /* the layer a prefetch is finding room in */
    uint32_t pred_seq;         /* the prediction in progress (mp_cache_prediction_begin); 0: none begun */
    bool own_layer_first;      /* a prefetch finds room among its layer's experts first */
    uint32_t n_loading;
    uint32_t n_waiting;        /* sum of slots[].waiting */

    ready_ent *ready;          /* FIFO ring */
    char (*ready_msg)[MP_ERR_MSG_MAX]; /* [cap_ready], beside ready[] */
    uint32_t ready_head, n_ready, cap_ready;

    /* The acquire in progress: a failure of its slot writes its message
     * here (a completion must not allocate, so no copy is kept). */
    int32_t acq_slot;
    mp_err *acq_err;

    /* Set once the io failed (a stall, a submit the backend could not
     * take): reads of LOADING slots may still be in the kernel, so no slot
     * is reused; every later call returns this. */
    mp_err fail;
    uint32_t fail_key;         /* the expert it names (0 if none) */

    mp_io *io;
    mp_io_done *done;          /* reap buffer [done_cap] */
    unsigned done_cap;
    const mp_policy_ops *pol;
    void *pol_st;
    char *file;
    mp_cache_verify_fn verify;
    void *verify_ctx;
    mp_expert_ptrs *vptrs;     /* [n_slots] with a verify hook: what it left */

    uint32_t cur_layer;        /* the layer waits are charged to */
    mp_cache_stats *stats;     /* [n_layers] */
};

/* Lays out one expert; returns the slot bytes it needs (a multiple of
 * align), 0 when it has no parts. */
static uint64_t layout(const mp_expert_loc *l, size_t align, cache_loc *out)
{
    cache_loc c;
    memset(&c, 0, sizeof c);
    uint32_t n = l->n_parts < MP_EXPERT_MAX_PARTS ? l->n_parts : MP_EXPERT_MAX_PARTS;
    c.n_parts = (uint8_t)n;
    uint32_t order[MP_EXPERT_MAX_PARTS];
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    for (uint32_t i = 1; i < n; i++) /* insertion sort by offset */
        for (uint32_t j = i; j > 0 && l->part[order[j]].offset < l->part[order[j - 1]].offset; j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    uint64_t total = 0;
    int32_t span_of[MP_EXPERT_MAX_PARTS];
    for (uint32_t k = 0; k < n; k++) {
        const mp_byte_range *p = &l->part[order[k]];
        uint64_t s, len;
        mp_io_round_out(p->offset, p->len, align, &s, &len);
        int32_t j = c.n_spans - 1;
        if (j >= 0 && s <= c.span_off[j] + c.span_len[j]) {
            uint64_t end = s + len, cur = c.span_off[j] + c.span_len[j];
            if (end > cur) {
                total += end - cur;
                c.span_len[j] = end - c.span_off[j];
            }
        } else {
            j = c.n_spans++;
            c.span_off[j] = s;
            c.span_len[j] = len;
            c.span_slot[j] = total;
            total += len;
        }
        span_of[order[k]] = j;
    }
    if (n > 0 && l->min_slot_bytes > total) /* room to decode into */
        total = (l->min_slot_bytes + align - 1) / align * align;
    for (uint32_t i = 0; i < n; i++) {
        int32_t j = span_of[i];
        c.part_slot[i] = c.span_slot[j] + (l->part[i].offset - c.span_off[j]);
        c.part_len[i] = l->part[i].len;
    }
    if (out) *out = c;
    return total;
}

uint64_t mp_cache_slot_bytes(const mp_expert_loc *locs, uint64_t n, size_t align)
{
    uint64_t m = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t b = layout(&locs[i], align, NULL);
        if (b > m) m = b;
    }
    return m;
}

/* The ranges as read into the slot (what the verify hook is given). */
static void fill_ptrs_read(const mp_cache *c, uint32_t slot, mp_expert_ptrs *p)
{
    const cache_slot *s = &c->slots[slot];
    const cache_loc *l = &c->locs[s->key];
    const char *base = c->slab + (uint64_t)slot * c->slot_size;
    memset(p, 0, sizeof *p);
    for (uint32_t i = 0; i < l->n_parts; i++) {
        p->part[i] = base + l->part_slot[i];
        p->len[i] = l->part_len[i];
    }
    p->n_parts = l->n_parts;
    p->slot = slot;
}

/* What a READY slot hands out: the verify hook's pointers when there is
 * one, else the ranges as read. */
static void fill_ptrs(const mp_cache *c, uint32_t slot, mp_expert_ptrs *p)
{
    if (c->vptrs) {
        *p = c->vptrs[slot];
        p->slot = slot;
        return;
    }
    fill_ptrs_read(c, slot, p);
}

static mp_cache_stats *lstats(mp_cache *c, uint32_t key) { return &c->stats[key / c->n_experts]; }

/* Grows the delivery ring (doubling, unrolled to start at 0) until it holds
 * at least `need` entries. */
static int ready_grow(mp_cache *c, uint32_t need)
{
    while (c->cap_ready < need) {
        uint32_t cap = c->cap_ready ? c->cap_ready * 2 : 32;
        ready_ent *r = malloc(cap * sizeof *r);
        char(*m)[MP_ERR_MSG_MAX] = malloc(cap * sizeof *m);
        if (!r || !m) {
            free(r);
            free(m);
            return MP_E_NOMEM;
        }
        for (uint32_t k = 0; k < c->n_ready; k++) {
            uint32_t from = (c->ready_head + k) % c->cap_ready;
            r[k] = c->ready[from];
            if (r[k].status < 0) memcpy(m[k], c->ready_msg[from], sizeof m[k]);
        }
        free(c->ready);
        free(c->ready_msg);
        c->ready = r;
        c->ready_msg = m;
        c->ready_head = 0;
        c->cap_ready = cap;
    }
    return MP_OK;
}

/* Room was reserved when the demand was accepted (ready_reserve), so this
 * never allocates: it runs on the completion path. */
static void ready_push(mp_cache *c, uint32_t slot, uint32_t key, int status, const char *msg)
{
    assert(c->n_ready < c->cap_ready);
    uint32_t at = (c->ready_head + c->n_ready) % c->cap_ready;
    ready_ent *e = &c->ready[at];
    e->slot = slot;
    e->key = key;
    e->status = status;
    if (status < 0) snprintf(c->ready_msg[at], MP_ERR_MSG_MAX, "%s", msg ? msg : mp_strerror(status));
    c->n_ready++;
}

/* The delivery queue grows before a demand is accepted, so pushing from a
 * completion (which cannot report NOMEM to anyone) never allocates. */
static int ready_reserve(mp_cache *c, uint32_t extra)
{
    return ready_grow(c, c->n_ready + c->n_waiting + extra);
}

static void free_push(mp_cache *c, uint32_t slot) { c->free_slots[c->n_free++] = slot; }

/* A load failed (I/O or verify): the slot goes back to EMPTY, every pin
 * and pending demand on it is dropped, and each pending demand gets the
 * error delivered. */
static void fail_slot(mp_cache *c, uint32_t slot, int status, const char *msg)
{
    cache_slot *s = &c->slots[slot];
    uint32_t key = s->key;
    lstats(c, key)->errors++;
    c->pol->on_evict(c->pol_st, slot, key);
    c->map[key] = -1;
    for (uint32_t k = 0; k < s->waiting; k++) ready_push(c, slot, key, status, msg);
    c->n_waiting -= s->waiting;
    s->waiting = 0;
    s->pins = 0;
    s->state = SLOT_EMPTY;
    s->gen++;
    s->fail_status = status;
    if ((int32_t)slot == c->acq_slot) mp_err_set(c->acq_err, status, "%s", msg);
    free_push(c, slot);
}

static void finish_slot(mp_cache *c, uint32_t slot)
{
    cache_slot *s = &c->slots[slot];
    uint32_t key = s->key, layer = key / c->n_experts, expert = key % c->n_experts;
    c->n_loading--;
    if (s->io_err) {
        const cache_loc *l = &c->locs[key];
        char msg[MP_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s: layer %u expert %u: read of %llu bytes at offset %llu failed: %s",
                 c->file, layer, expert, (unsigned long long)l->span_len[s->err_span],
                 (unsigned long long)l->span_off[s->err_span], strerror(-s->io_err));
        fail_slot(c, slot, MP_E_IO, msg);
        return;
    }
    if (c->verify) {
        mp_expert_ptrs p;
        mp_err verr;
        mp_err_clear(&verr);
        fill_ptrs_read(c, slot, &p);
        const char *base = c->slab + (uint64_t)slot * c->slot_size;
        int rc = c->verify(c->verify_ctx, layer, expert, (void *)base, c->slot_size, &p, &verr);
        /* the hook's pointers must stay inside the slot: checked here, in
         * release builds too, rather than trusted by every kernel later */
        for (uint32_t i = 0; rc >= 0 && i < MP_EXPERT_MAX_PARTS; i++) {
            const char *q = p.part[i];
            bool inside = i >= p.n_parts ||
                          (q >= base && (uint64_t)(q - base) <= c->slot_size &&
                           p.len[i] <= c->slot_size - (uint64_t)(q - base));
            if (p.n_parts > MP_EXPERT_MAX_PARTS || !inside)
                rc = mp_err_set(&verr, MP_E_INVAL, "%s: layer %u expert %u: the verify hook left part %u "
                                "outside its slot", c->file, layer, expert, i);
        }
        if (rc < 0) {
            if (!verr.msg[0])
                snprintf(verr.msg, sizeof verr.msg, "%s: layer %u expert %u: %s", c->file, layer,
                         expert, mp_strerror(rc));
            fail_slot(c, slot, rc, verr.msg);
            return;
        }
        c->vptrs[slot] = p;
    }
    s->state = SLOT_READY;
    for (uint32_t k = 0; k < s->waiting; k++) ready_push(c, slot, key, MP_OK, NULL);
    c->n_waiting -= s->waiting;
    s->waiting = 0;
}

static void on_done(mp_cache *c, const mp_io_done *d)
{
    uint32_t slot = (uint32_t)(d->user >> 2), span = (uint32_t)(d->user & 3);
    assert(slot < c->n_slots);
    cache_slot *s = &c->slots[slot];
    assert(s->state == SLOT_LOADING && s->n_left > 0);
    if (d->res < 0) {
        if (!s->io_err) {
            s->io_err = (int32_t)d->res;
            s->err_span = (uint8_t)span;
        }
    } else {
        lstats(c, s->key)->bytes_read += (uint64_t)d->res;
    }
    if (--s->n_left == 0) finish_slot(c, slot);
}

/* Reaps completions; with wait, blocks until at least one (time charged
 * to the current layer). */
/* The io failed: the cache fails with a message naming the expert. Its
 * LOADING slots stay LOADING (never reused) until mp_cache_free. */
static int fail_cache(mp_cache *c, int status, mp_err *err)
{
    if (!c->fail.status) {
        mp_io_failure_info f;
        if (mp_io_failure(c->io, &f) == MP_OK) {
            /* not the io's failed state (e.g. out of memory): report as is */
            return status;
        }
        uint32_t slot = (uint32_t)(f.user >> 2);
        bool named = slot < c->n_slots && c->slots[slot].state == SLOT_LOADING;
        uint32_t key = named ? c->slots[slot].key : 0;
        c->fail_key = key;
        char where[64] = "";
        if (named)
            snprintf(where, sizeof where, "layer %u expert %u", key / c->n_experts, key % c->n_experts);
        if (f.timed_out)
            mp_err_reset(&c->fail, f.status, "%s: %s (%s%soffset %llu)", c->file, f.reason, where,
                         named ? ", " : "", (unsigned long long)f.offset);
        else
            mp_err_reset(&c->fail, f.status, "%s: %s%sread at offset %llu: %s", c->file, where,
                         named ? ": " : "", (unsigned long long)f.offset, f.reason);
    }
    return mp_err_reset(err, c->fail.status, "%s", c->fail.msg);
}

static int pump(mp_cache *c, bool wait, mp_err *err)
{
    uint64_t t0 = wait ? mp_time_ns() : 0;
    int n = mp_io_reap(c->io, c->done, c->done_cap, wait, err);
    if (wait) c->stats[c->cur_layer].wait_ns += mp_time_ns() - t0;
    if (n < 0) return fail_cache(c, n, err);
    if (n == 0 && wait && c->n_loading > 0 && mp_io_outstanding(c->io) == 0)
        return mp_err_set(err, MP_E_IO, "%s: %u expert loads have no reads outstanding",
                          c->file, c->n_loading); /* a bug, reported rather than a hang */
    for (int k = 0; k < n; k++) on_done(c, &c->done[k]);
    return n;
}

/* Ready and unpinned. */
static bool evictable(void *ctx, uint32_t slot)
{
    const mp_cache *c = ctx;
    return slot < c->n_slots && c->slots[slot].state == SLOT_READY && c->slots[slot].pins == 0;
}

/* Room for a prefetch: evictable, and not a prefetch still waiting for its
 * layer (a nearer prediction is worth more than a farther one: evicting it
 * would read it twice). */
static bool evictable_for_prefetch(void *ctx, uint32_t slot)
{
    const mp_cache *c = ctx;
    if (!evictable(ctx, slot)) return false;
    const cache_slot *s = &c->slots[slot];
    return !s->guard && !(s->fill == MP_FILL_PREFETCH && !s->used && !s->expired);
}

/* Room for a prefetch of layer pf_layer among that layer's own experts
 * (mp_cache_prefetch_own_layer_first). The layers run in a cycle, so when
 * the prediction is right and every cached expert is in some layer's working
 * set (a cache of about k per layer), the layer's other experts are the ones
 * needed furthest ahead (the layer's next run after this one), the expert
 * Belady would evict; a victim of another layer may be needed by a layer that
 * runs before the predicted one. On the trained demo model at 2 experts per
 * layer this made the oracle's decode 13-17% faster (fewer of its own
 * prefetches evicted each other). In a larger cache the policy's victim is a
 * cold expert, and the layer's own ones are its working set: there the rule
 * made the oracle read 3.2x the bytes per token (Qwen3-30B-A3B shape at
 * --mem 7600M) and 15% more (the bench model at 50%).
 * Within the layer, the prediction in progress supersedes earlier ones: a
 * layer is predicted from farther (lookahead d = 2) and then from nearer
 * (d = 1), and the nearer guess is the better one, so what an earlier
 * prediction fetched or guarded and this one does not name may go (not
 * what this one named, nor a read still in flight). */
static bool evictable_for_prefetch_same_layer(void *ctx, uint32_t slot)
{
    const mp_cache *c = ctx;
    const cache_slot *s = &c->slots[slot];
    if (s->key / c->n_experts != c->pf_layer) return false;
    if (c->pred_seq && s->pred != c->pred_seq && evictable(ctx, slot)) return true;
    return evictable_for_prefetch(ctx, slot);
}

/* Finds an EMPTY slot, evicting one that ok() accepts if needed. With
 * may_wait, waits for reads in flight while every slot is pinned or loading.
 * Returns MP_OK, MP_E_AGAIN (!may_wait, no room) or MP_E_BUDGET. */
static int get_slot(mp_cache *c, bool may_wait, mp_evictable_fn ok, uint32_t *out, mp_err *err)
{
    for (;;) {
        if (c->n_free > 0) {
            *out = c->free_slots[--c->n_free];
            return MP_OK;
        }
        int64_t v = c->pol->victim(c->pol_st, ok, c);
        if (v >= 0) {
            assert(ok(c, (uint32_t)v));
            cache_slot *s = &c->slots[v];
            c->pol->on_evict(c->pol_st, (uint32_t)v, s->key);
            mp_cache_stats *st = lstats(c, s->key);
            st->evictions++;
            if (s->fill == MP_FILL_PREFETCH && !s->used) {
                const cache_loc *l = &c->locs[s->key];
                st->prefetch_wasted++;
                for (uint32_t j = 0; j < l->n_spans; j++) st->wasted_bytes += l->span_len[j];
            }
            c->map[s->key] = -1;
            s->state = SLOT_EMPTY;
            *out = (uint32_t)v;
            return MP_OK;
        }
        if (!may_wait) return MP_E_AGAIN;
        if (c->n_loading == 0) return MP_E_BUDGET;
        int rc = pump(c, true, err);
        if (rc < 0) return rc;
    }
}

static int start_load(mp_cache *c, uint32_t slot, uint32_t key, mp_fill_kind kind, mp_err *err)
{
    cache_slot *s = &c->slots[slot];
    const cache_loc *l = &c->locs[key];
    s->key = key;
    s->state = SLOT_LOADING;
    s->fill = (uint8_t)kind;
    s->used = 0;
    s->expired = 0;
    s->guard = 0;
    s->pred = kind == MP_FILL_PREFETCH ? c->pred_seq : 0;
    s->pins = 0;
    s->waiting = 0;
    s->n_left = l->n_spans;
    s->io_err = 0;
    s->gen++;
    c->map[key] = (int32_t)slot;
    c->pol->on_fill(c->pol_st, slot, key, kind);
    mp_io_req req[MP_EXPERT_MAX_PARTS];
    char *base = c->slab + (uint64_t)slot * c->slot_size;
    for (uint32_t j = 0; j < l->n_spans; j++)
        req[j] = (mp_io_req){ .buf = base + l->span_slot[j], .offset = l->span_off[j],
                              .len = l->span_len[j], .user = ((uint64_t)slot << 2) | j,
                              .prio = kind == MP_FILL_PREFETCH ? MP_IO_PRIO_LOW : MP_IO_PRIO_HIGH };
    int rc = mp_io_submit(c->io, req, l->n_spans, err);
    if (rc < 0 && c->fail.status == MP_OK && mp_io_failure(c->io, &(mp_io_failure_info){ 0 }) < 0) {
        /* The io failed under this load: its reads may be in the kernel,
         * so the slot stays LOADING, never reused. */
        c->n_loading++;
        return fail_cache(c, rc, err);
    }
    if (rc < 0) {
        c->pol->on_evict(c->pol_st, slot, key);
        c->map[key] = -1;
        s->state = SLOT_EMPTY;
        free_push(c, slot);
        return rc;
    }
    c->n_loading++;
    mp_cache_stats *st = lstats(c, key);
    st->loads++;
    st->reads += l->n_spans;
    if (kind == MP_FILL_PREFETCH) st->prefetches++;
    return MP_OK;
}

static void check_key(const mp_cache *c, uint32_t layer, uint32_t expert)
{
    assert(layer < c->n_layers && expert < c->n_experts);
    assert(c->locs[layer * c->n_experts + expert].n_parts > 0);
    (void)c, (void)layer, (void)expert;
}

/* Demand side of acquire and request: pins (layer, expert), starting a
 * load if absent. */
static int pin_demand(mp_cache *c, uint32_t layer, uint32_t expert, uint32_t *slot_out, mp_err *err)
{
    uint32_t key = layer * c->n_experts + expert;
    mp_cache_stats *st = &c->stats[layer];
    c->cur_layer = layer;
    int32_t slot = c->map[key];
    if (slot >= 0) {
        cache_slot *s = &c->slots[slot];
        if (s->state == SLOT_READY) st->hits++;
        else st->late_hits++;
        if (s->fill == MP_FILL_PREFETCH && !s->used) {
            s->used = 1;
            st->prefetch_used++;
        }
        c->pol->on_hit(c->pol_st, (uint32_t)slot, key);
        if (s->state == SLOT_LOADING)
            for (uint32_t j = 0; j < c->locs[key].n_spans; j++)
                mp_io_promote(c->io, ((uint64_t)slot << 2) | j);
        s->pins++;
        *slot_out = (uint32_t)slot;
        return MP_OK;
    }
    uint32_t v;
    int rc = get_slot(c, true, evictable, &v, err);
    if (rc == MP_E_BUDGET)
        return mp_err_set(err, MP_E_BUDGET,
                          "%s: layer %u expert %u: all %u expert cache slots are pinned; the cache "
                          "needs at least one slot more than the experts in use at once",
                          c->file, layer, expert, c->n_slots);
    if (rc < 0) return rc;
    st->misses++;
    if ((rc = start_load(c, v, key, MP_FILL_DEMAND, err)) < 0) return rc;
    c->slots[v].pins = 1;
    *slot_out = v;
    return MP_OK;
}

int mp_cache_acquire(mp_cache *c, uint32_t layer, uint32_t expert, mp_expert_ptrs *out,
                     mp_err *err)
{
    check_key(c, layer, expert);
    if (c->fail.status) return mp_err_reset(err, c->fail.status, "%s", c->fail.msg);
    uint32_t slot;
    int rc = pin_demand(c, layer, expert, &slot, err);
    if (rc < 0) return rc;
    cache_slot *s = &c->slots[slot];
    uint32_t gen = s->gen;
    c->acq_slot = (int32_t)slot; /* fail_slot writes its message into err */
    c->acq_err = err;
    while (s->gen == gen && s->state == SLOT_LOADING) {
        if ((rc = pump(c, true, err)) < 0) break;
    }
    c->acq_slot = -1;
    c->acq_err = NULL;
    if (rc < 0) return rc;
    if (s->gen != gen) return s->fail_status;
    fill_ptrs(c, slot, out);
    return MP_OK;
}

void mp_cache_release(mp_cache *c, uint32_t layer, uint32_t expert)
{
    check_key(c, layer, expert);
    int32_t slot = c->map[layer * c->n_experts + expert];
    assert(slot >= 0 && c->slots[slot].pins > 0);
    if (slot >= 0 && c->slots[slot].pins > 0) c->slots[slot].pins--;
}

int mp_cache_request(mp_cache *c, uint32_t layer, uint32_t expert, mp_cache_prio prio,
                     mp_err *err)
{
    check_key(c, layer, expert);
    if (c->fail.status) return mp_err_reset(err, c->fail.status, "%s", c->fail.msg);
    uint32_t key = layer * c->n_experts + expert;
    if (prio == MP_CACHE_PREFETCH) {
        int32_t have = c->map[key];
        if (have >= 0) {
            cache_slot *s = &c->slots[have];
            s->guard = 1;
            s->pred = c->pred_seq;
            if (s->fill == MP_FILL_PREFETCH && !s->used && s->expired) {
                /* predicted again (the next token, the same layer): a fresh
                 * grace period instead of going first */
                s->expired = 0;
                c->pol->on_fill(c->pol_st, (uint32_t)have, key, MP_FILL_PREFETCH);
            }
            return MP_OK;
        }
        uint32_t v;
        /* room from the predicted layer's own experts first (predict.h's
         * picks replace what the layer held), then from any layer */
        c->pf_layer = layer;
        if ((!c->own_layer_first || get_slot(c, false, evictable_for_prefetch_same_layer, &v, NULL) < 0) &&
            get_slot(c, false, evictable_for_prefetch, &v, NULL) < 0) {
            c->stats[layer].prefetch_dropped++;
            return MP_E_AGAIN;
        }
        return start_load(c, v, key, MP_FILL_PREFETCH, err);
    }
    if (ready_reserve(c, 1) < 0) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    uint32_t slot;
    int rc = pin_demand(c, layer, expert, &slot, err);
    if (rc < 0) return rc;
    cache_slot *s = &c->slots[slot];
    if (s->state == SLOT_READY) {
        ready_push(c, slot, key, MP_OK, NULL);
    } else {
        s->waiting++;
        c->n_waiting++;
    }
    return MP_OK;
}

int mp_cache_request_layer(mp_cache *c, uint32_t layer, const uint32_t *experts, uint32_t n,
                           mp_err *err)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t j = 0; j < n; j++) {
            check_key(c, layer, experts[j]);
            bool present = c->map[layer * c->n_experts + experts[j]] >= 0;
            if (present != (pass == 0)) continue;
            int rc = mp_cache_request(c, layer, experts[j], MP_CACHE_DEMAND, err);
            if (rc < 0) return rc;
        }
    return MP_OK;
}

static int deliver(mp_cache *c, mp_cache_ready *out, mp_err *err)
{
    uint32_t at = c->ready_head;
    ready_ent e = c->ready[at];
    c->ready_head = (c->ready_head + 1) % c->cap_ready;
    c->n_ready--;
    out->layer = e.key / c->n_experts;
    out->expert = e.key % c->n_experts;
    if (e.status < 0) {
        memset(&out->ptrs, 0, sizeof out->ptrs);
        return mp_err_set(err, e.status, "%s", c->ready_msg[at]);
    }
    assert(c->slots[e.slot].state == SLOT_READY && c->slots[e.slot].key == e.key);
    fill_ptrs(c, e.slot, &out->ptrs);
    return 1;
}

/* A failure not tied to a delivered demand: out names the expert the io
 * failure names (or layer 0 expert 0), holding nothing. */
static int fail_out(mp_cache *c, mp_cache_ready *out, int rc)
{
    memset(out, 0, sizeof *out);
    out->layer = c->fail_key / c->n_experts;
    out->expert = c->fail_key % c->n_experts;
    return rc;
}

int mp_cache_wait_any(mp_cache *c, mp_cache_ready *out, mp_err *err)
{
    if (c->fail.status) return fail_out(c, out, mp_err_reset(err, c->fail.status, "%s", c->fail.msg));
    for (;;) {
        if (c->n_ready > 0) return deliver(c, out, err);
        if (c->n_waiting == 0) return 0;
        int rc = pump(c, true, err);
        if (rc < 0) return fail_out(c, out, rc);
    }
}

int mp_cache_poll(mp_cache *c, mp_cache_ready *out, mp_err *err)
{
    if (c->fail.status) return fail_out(c, out, mp_err_reset(err, c->fail.status, "%s", c->fail.msg));
    /* Reap whatever finished, prefetches included, so their slots become
     * READY and queued reads start even when no demand is outstanding. */
    if (c->n_ready == 0 && c->n_loading > 0) {
        int rc = pump(c, false, err);
        if (rc < 0) return fail_out(c, out, rc);
    }
    if (c->n_ready > 0) return deliver(c, out, err);
    return c->n_waiting ? MP_E_AGAIN : 0;
}

void mp_cache_reap(mp_cache *c)
{
    if (!c->fail.status && mp_io_outstanding(c->io) > 0) {
        mp_err err;
        mp_err_clear(&err);
        (void)pump(c, false, &err); /* a failed reap shows again at the next wait */
    }
}

void mp_cache_abandon(mp_cache *c)
{
    while (c->n_ready > 0) {
        ready_ent *e = &c->ready[c->ready_head];
        if (e->status == MP_OK && c->slots[e->slot].pins > 0) c->slots[e->slot].pins--;
        c->ready_head = (c->ready_head + 1) % c->cap_ready;
        c->n_ready--;
    }
    for (uint32_t i = 0; i < c->n_slots; i++) {
        cache_slot *s = &c->slots[i];
        assert(s->pins >= s->waiting);
        s->pins -= s->waiting;
        s->waiting = 0;
    }
    c->n_waiting = 0;
}

uint32_t mp_cache_outstanding(const mp_cache *c) { return c->n_ready + c->n_waiting; }
uint32_t mp_cache_n_slots(const mp_cache *c) { return c->n_slots; }
uint64_t mp_cache_slot_size(const mp_cache *c) { return c->slot_size; }
mp_io *mp_cache_io(mp_cache *c) { return c->io; }

void mp_cache_layer_done(mp_cache *c, uint32_t layer)
{
    assert(layer < c->n_layers);
    if (c->pol->on_group_done) c->pol->on_group_done(c->pol_st);
    for (uint32_t e = 0; e < c->n_experts; e++) {
        int32_t slot = c->map[layer * c->n_experts + e];
        if (slot < 0) continue;
        cache_slot *s = &c->slots[slot];
        s->guard = 0;
        if (s->fill != MP_FILL_PREFETCH || s->used || s->expired) continue;
        s->expired = 1;
        if (c->pol->on_expire) c->pol->on_expire(c->pol_st, (uint32_t)slot);
    }
}

void mp_cache_prefetch_own_layer_first(mp_cache *c, bool on) { c->own_layer_first = on; }

void mp_cache_prediction_begin(mp_cache *c)
{
    if (++c->pred_seq == 0) { /* wrapped: no slot may look named by the new one */
        for (uint32_t i = 0; i < c->n_slots; i++) c->slots[i].pred = 0;
        c->pred_seq = 1;
    }
}

bool mp_cache_present(const mp_cache *c, uint32_t layer, uint32_t expert)
{
    return layer < c->n_layers && expert < c->n_experts && c->map[layer * c->n_experts + expert] >= 0;
}

bool mp_cache_contains(const mp_cache *c, uint32_t layer, uint32_t expert)
{
    int32_t slot = c->map[layer * c->n_experts + expert];
    return slot >= 0 && c->slots[slot].state == SLOT_READY;
}

static_assert(sizeof(mp_cache_stats) % sizeof(uint64_t) == 0, "mp_cache_stats holds uint64_t counters only");

void mp_cache_stats_add(mp_cache_stats *a, const mp_cache_stats *b)
{
    uint64_t *x = (uint64_t *)a;
    const uint64_t *y = (const uint64_t *)b;
    for (size_t k = 0; k < sizeof *a / sizeof(uint64_t); k++) x[k] += y[k];
}

void mp_cache_stats_sub(mp_cache_stats *a, const mp_cache_stats *b)
{
    uint64_t *x = (uint64_t *)a;
    const uint64_t *y = (const uint64_t *)b;
    for (size_t k = 0; k < sizeof *a / sizeof(uint64_t); k++) x[k] -= y[k];
}

void mp_cache_prefetch_quality(const mp_cache_stats *st, double *precision, double *recall)
{
    const double dem = (double)(st->hits + st->late_hits + st->misses);
    /* prefetch_used counts late hits too: those were not in time */
    double in_time = (double)st->prefetch_used - (double)st->late_hits;
    if (in_time < 0) in_time = 0;
    /* capped: a prefetch issued at the end of one phase (the prompt) and used
     * in the next counts as issued in the first and used in the second */
    *precision = st->prefetches ? fmin(1.0, (double)st->prefetch_used / (double)st->prefetches) : NAN;
    *recall = dem > 0 ? in_time / dem : NAN;
}

void mp_cache_get_stats(mp_cache *c, mp_cache_stats *total, mp_cache_stats *per_layer, bool reset)
{
    if (total) {
        memset(total, 0, sizeof *total);
        for (uint32_t l = 0; l < c->n_layers; l++) mp_cache_stats_add(total, &c->stats[l]);
    }
    if (per_layer) memcpy(per_layer, c->stats, c->n_layers * sizeof *per_layer);
    if (reset) memset(c->stats, 0, c->n_layers * sizeof *c->stats);
}


int mp_cache_create(const mp_cache_config *cfg, mp_cache **out, char *note, size_t note_cap,
                    mp_err *err)
{
    int rc = MP_OK;
    *out = NULL;
    if (note && note_cap) note[0] = '\0';
    assert(cfg && cfg->io && cfg->locs && cfg->n_layers > 0 && cfg->n_experts > 0);
    mp_cache *c = calloc(1, sizeof *c);
    if (!c) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    c->n_layers = cfg->n_layers;
    c->n_experts = cfg->n_experts;
    c->n_keys = cfg->n_layers * cfg->n_experts;
    c->acq_slot = -1;
    c->file = strdup(cfg->file_name ? cfg->file_name : mp_io_path(cfg->io));
    c->verify = cfg->verify;
    c->verify_ctx = cfg->verify_ctx;
    c->pol = cfg->policy ? cfg->policy : mp_policy_default();
    c->locs = calloc(c->n_keys, sizeof *c->locs);
    c->map = malloc(c->n_keys * sizeof *c->map);
    c->stats = calloc(c->n_layers, sizeof *c->stats);
    if (!c->file || !c->locs || !c->map || !c->stats) goto nomem;

    size_t align = mp_io_align(cfg->io);
    uint64_t fsize = mp_io_file_size(cfg->io);
    for (uint32_t k = 0; k < c->n_keys; k++) {
        const mp_expert_loc *l = &cfg->locs[k];
        c->map[k] = -1;
        if (l->n_parts > MP_EXPERT_MAX_PARTS) {
            rc = mp_err_set(err, MP_E_INVAL, "%s: layer %u expert %u: %u byte ranges (max %d)",
                            c->file, k / c->n_experts, k % c->n_experts, l->n_parts,
                            MP_EXPERT_MAX_PARTS);
            goto fail;
        }
        for (uint32_t i = 0; i < l->n_parts; i++) {
            const mp_byte_range *p = &l->part[i];
            if (p->len == 0 || p->offset > fsize || p->len > fsize - p->offset) {
                rc = mp_err_set(err, MP_E_CORRUPT,
                                "%s: layer %u expert %u: range %u (%llu bytes at offset %llu) is "
                                "empty or runs past the end of the file (%llu bytes)",
                                c->file, k / c->n_experts, k % c->n_experts, i,
                                (unsigned long long)p->len, (unsigned long long)p->offset,
                                (unsigned long long)fsize);
                goto fail;
            }
        }
        uint64_t need = layout(l, align, &c->locs[k]);
        if (need > c->slot_size) c->slot_size = need;
    }
    if (c->slot_size == 0) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: no expert has any bytes to cache", c->file);
        goto fail;
    }
    uint32_t min_slots = cfg->min_slots ? cfg->min_slots : 1;
    uint64_t n_slots = cfg->n_slots ? cfg->n_slots : cfg->budget_bytes / c->slot_size;
    if (n_slots > c->n_keys) n_slots = c->n_keys; /* more slots than experts is waste */
    if (n_slots < min_slots) {
        rc = mp_err_set(err, MP_E_BUDGET,
                        "%s: an expert cache of %llu bytes holds %llu slots of %llu bytes; at least "
                        "%u slots (%llu bytes) are needed",
                        c->file, (unsigned long long)(cfg->n_slots ? cfg->n_slots * c->slot_size
                                                                   : cfg->budget_bytes),
                        (unsigned long long)n_slots, (unsigned long long)c->slot_size, min_slots,
                        (unsigned long long)min_slots * c->slot_size);
        goto fail;
    }
    c->n_slots = (uint32_t)n_slots;

    /* The slab: one mapping whose start is aligned to what the io needs
     * (mp_io_align: 4096, or the device's O_DIRECT alignment, which statx
     * may raise above a page), and to 2 MiB for huge pages. Slots are
     * multiples of that alignment, so every slot, and every span in it,
     * is aligned as mp_io_submit requires. */
    uint64_t bytes = (uint64_t)c->n_slots * c->slot_size;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t slab_align = align > page ? align : page;
    if (cfg->hugepages && slab_align < (2u << 20)) slab_align = 2u << 20;
    c->slab_map_len = bytes + (slab_align > page ? slab_align : 0);
    c->slab_map = mmap(NULL, c->slab_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (c->slab_map == MAP_FAILED) {
        c->slab_map = NULL;
        rc = mp_err_set(err, MP_E_NOMEM, "%s: cannot map an expert cache of %llu bytes: %s",
                        c->file, (unsigned long long)bytes, strerror(errno));
        goto fail;
    }
    c->slab = (char *)(((uintptr_t)c->slab_map + slab_align - 1) & ~(uintptr_t)(slab_align - 1));
    if (cfg->hugepages) {
        if (madvise(c->slab, bytes, MADV_HUGEPAGE) != 0)
            mp_note_add(note, note_cap, "expert cache: no transparent huge pages (%s)", strerror(errno));
    }

    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (c->verify && !(c->vptrs = calloc(c->n_slots, sizeof *c->vptrs))) goto nomem;
    c->free_slots = malloc(c->n_slots * sizeof *c->free_slots);
    c->done_cap = mp_io_depth(cfg->io) * 2 + MP_EXPERT_MAX_PARTS;
    c->done = malloc(c->done_cap * sizeof *c->done);
    if (!c->slots || !c->free_slots || !c->done) goto nomem;
    for (uint32_t i = c->n_slots; i-- > 0;) free_push(c, i);

    c->pol_st = c->pol->create(c->n_slots, c->n_keys, c->n_experts);
    if (!c->pol_st) goto nomem;

    if (!cfg->no_fixed_buffers && c->slot_size <= (1u << 30)) {
        uint64_t per = (1u << 30) / c->slot_size; /* whole slots per 1 GiB buffer */
        unsigned n_iov = (unsigned)((c->n_slots + per - 1) / per);
        struct iovec *iov = malloc(n_iov * sizeof *iov);
        if (!iov) goto nomem;
        for (unsigned k = 0; k < n_iov; k++) {
            uint64_t first = k * per, cnt = c->n_slots - first < per ? c->n_slots - first : per;
            iov[k].iov_base = c->slab + first * c->slot_size;
            iov[k].iov_len = cnt * c->slot_size;
        }
        mp_err rerr;
        mp_err_clear(&rerr);
        if (mp_io_register_buffers(cfg->io, iov, n_iov, &rerr) < 0)
            mp_note_add(note, note_cap, "%s; reading into unregistered buffers", rerr.msg);
        free(iov);
    }
    c->io = cfg->io;
    *out = c;
    return MP_OK;
nomem:
    rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
fail:
    mp_cache_free(c);
    return rc;
}

void mp_cache_free(mp_cache *c)
{
    if (!c) return;
    /* Drains (after a failure: cancels) reads that still write into the
     * slab. If one is stuck in the kernel past the io timeout the slab
     * stays mapped (leaked): unmapping it would let the address range be
     * reused by memory that read could then overwrite. */
    bool slab_free = mp_io_free(c->io);
    if (c->pol_st) c->pol->destroy(c->pol_st);
    if (c->slab_map && slab_free) munmap(c->slab_map, c->slab_map_len);
    free(c->ready);
    free(c->ready_msg);
    free(c->slots);
    free(c->vptrs);
    free(c->free_slots);
    free(c->done);
    free(c->stats);
    free(c->map);
    free(c->locs);
    free(c->file);
    free(c);
}
