/* Fault-injecting backend: sits between io.c and a real backend and, per
 * raw read, decides from a seeded generator whether to fail it with EIO or
 * EAGAIN (without touching the disk), to cut it short (the real read of
 * fewer bytes, so the data that does arrive is real), or to hold its
 * completion back for a while. The decisions depend only on the seed and
 * the sequence of reads, so a failing test replays exactly.
 *
 * Failures of the io itself: a batch submit that fails part way or starts
 * nothing is simulated inside the real backend (MP_IO_SIM_*), so io_uring
 * really has reads in the kernel and in its ring when the submit reports
 * the failure; a stalled read is held here, not started (never, or
 * stall_ms late: then it really writes its buffer that late). */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct held_done {
    mp_io_raw_done d;
    uint64_t due_ns;
} held_done;

typedef struct delayed_tag {
    uint32_t tag;
    uint64_t due_ns;
} delayed_tag;

typedef struct stalled_read {
    mp_io_raw r;
    uint64_t due_ns; /* when it starts; UINT64_MAX: never */
} stalled_read;

typedef struct fault_be {
    mp_io_backend base;
    mp_io_backend *inner;
    mp_io_fault_spec spec;
    size_t short_align;
    uint64_t rng;
    uint64_t n_reads;
    uint64_t n_submits;
    unsigned inner_inflight;
    held_done *held;          /* completions not yet handed to io.c */
    unsigned n_held, cap_held;
    delayed_tag *delayed;     /* pass-through reads whose completion waits */
    unsigned n_delayed, cap_delayed;
    stalled_read *stalled;    /* reads held back, not yet given to inner */
    unsigned n_stalled, cap_stalled;
    mp_io_raw pass[MP_IO_MAX_DEPTH];
    mp_io_raw_done tmp[MP_IO_MAX_DEPTH];
} fault_be;

/* splitmix64: a good stream from any seed, 0 included. */
static double rnd01(fault_be *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int grow(void **p, unsigned *cap, unsigned need, size_t elem)
{
    if (need <= *cap) return 0;
    unsigned c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int hold(fault_be *f, uint32_t tag, int32_t res, uint64_t due)
{
    if (grow((void **)&f->held, &f->cap_held, f->n_held + 1, sizeof *f->held) < 0) return -1;
    f->held[f->n_held++] = (held_done){ { tag, res }, due };
    return 0;
}

static int fault_submit(mp_io_backend *b, const mp_io_raw *r, unsigned n, int sim, mp_err *err)
{
    fault_be *f = (fault_be *)b;
    const mp_io_fault_spec *s = &f->spec;
    if (grow((void **)&f->held, &f->cap_held, f->n_held + n, sizeof *f->held) < 0 ||
        grow((void **)&f->delayed, &f->cap_delayed, f->n_delayed + n, sizeof *f->delayed) < 0 ||
        grow((void **)&f->stalled, &f->cap_stalled, f->n_stalled + n, sizeof *f->stalled) < 0)
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    unsigned n_pass = 0, n_held0 = f->n_held, n_delayed0 = f->n_delayed;
    uint64_t now = mp_time_ns();
    uint64_t nth_submit = ++f->n_submits;
    if (sim == MP_IO_SIM_NONE) {
        if (s->submit_fail == nth_submit) sim = MP_IO_SIM_SUBMIT_FAIL;
        else if (s->submit_zero == nth_submit) sim = MP_IO_SIM_SUBMIT_ZERO;
    }
    for (unsigned k = 0; k < n; k++) {
        uint64_t nth = ++f->n_reads;
        /* Draw every variate for every read, so one kind of fault does not
         * shift the stream of another. */
        double u_eio = rnd01(f), u_again = rnd01(f), u_short = rnd01(f), u_delay = rnd01(f);
        uint64_t due = u_delay < s->p_delay ? now + s->delay_us * 1000u : 0;
        bool eio = u_eio < s->p_eio || (s->eio_nth && nth == s->eio_nth) ||
                   (s->eio_from && nth >= s->eio_from) ||
                   (s->has_eio_off && s->eio_off >= r[k].offset &&
                    s->eio_off < r[k].offset + r[k].len);
        if ((s->stall_nth && nth == s->stall_nth) || (s->stall_from && nth >= s->stall_from)) {
            uint64_t start = s->stall_ms ? now + s->stall_ms * 1000000u : UINT64_MAX;
            f->stalled[f->n_stalled++] = (stalled_read){ r[k], start };
            continue;
        }
        if (eio || u_again < s->p_eagain) {
            f->held[f->n_held++] = (held_done){ { r[k].tag, eio ? -EIO : -EAGAIN }, due };
            continue;
        }
        mp_io_raw x = r[k];
        if (u_short < s->p_short) {
            uint32_t cut = (uint32_t)((x.len / 2) & ~(uint64_t)(f->short_align - 1));
            if (cut > 0) x.len = cut;
        }
        if (due) f->delayed[f->n_delayed++] = (delayed_tag){ x.tag, due };
        f->pass[n_pass++] = x;
    }
    if (n_pass || sim != MP_IO_SIM_NONE) {
        int rc = f->inner->ops->submit(f->inner, f->pass, n_pass, sim, err);
        if (rc < 0) {
            /* the io fails: nothing of this batch is handed back any more */
            f->n_held = n_held0;
            f->n_delayed = n_delayed0;
            return rc;
        }
        f->inner_inflight += n_pass;
    }
    return MP_OK;
}

/* Gives the stalled reads whose time has come to the inner backend. */
static int start_due(fault_be *f, uint64_t now, mp_err *err)
{
    unsigned keep = 0, n = 0;
    for (unsigned j = 0; j < f->n_stalled; j++) {
        if (f->stalled[j].due_ns <= now) f->pass[n++] = f->stalled[j].r;
        else f->stalled[keep++] = f->stalled[j];
    }
    f->n_stalled = keep;
    if (!n) return MP_OK;
    int rc = f->inner->ops->submit(f->inner, f->pass, n, MP_IO_SIM_NONE, err);
    if (rc < 0) return rc;
    f->inner_inflight += n;
    return MP_OK;
}

static uint64_t take_delay(fault_be *f, uint32_t tag)
{
    for (unsigned k = 0; k < f->n_delayed; k++) {
        if (f->delayed[k].tag != tag) continue;
        uint64_t due = f->delayed[k].due_ns;
        f->delayed[k] = f->delayed[--f->n_delayed];
        return due;
    }
    return 0;
}

static int drain_inner(fault_be *f, uint64_t deadline_ns, mp_err *err)
{
    int k = f->inner->ops->reap(f->inner, f->tmp, MP_IO_MAX_DEPTH, deadline_ns, err);
    if (k < 0) return k;
    for (int j = 0; j < k; j++)
        if (hold(f, f->tmp[j].tag, f->tmp[j].res, take_delay(f, f->tmp[j].tag)) < 0)
            return mp_err_set(err, MP_E_NOMEM, "out of memory");
    f->inner_inflight -= (unsigned)k;
    return k;
}

static int fault_reap(mp_io_backend *b, mp_io_raw_done *out, unsigned max, uint64_t deadline_ns,
                      mp_err *err)
{
    fault_be *f = (fault_be *)b;
    for (;;) {
        uint64_t now = mp_time_ns();
        int rc = start_due(f, now, err);
        if (rc < 0) return rc;
        if (f->inner_inflight > 0 && (rc = drain_inner(f, 0, err)) < 0) return rc;
        uint64_t earliest = UINT64_MAX;
        unsigned k = 0, keep = 0;
        for (unsigned j = 0; j < f->n_held; j++) {
            if (k < max && f->held[j].due_ns <= now) {
                out[k++] = f->held[j].d;
            } else {
                if (f->held[j].due_ns < earliest) earliest = f->held[j].due_ns;
                f->held[keep++] = f->held[j];
            }
        }
        f->n_held = keep;
        for (unsigned j = 0; j < f->n_stalled; j++)
            if (f->stalled[j].due_ns < earliest) earliest = f->stalled[j].due_ns;
        if (k > 0 || !deadline_ns) return (int)k;
        if (f->n_held == 0 && f->n_stalled == 0 && f->inner_inflight == 0) return 0;
        now = mp_time_ns();
        if (now >= deadline_ns) return 0;
        if (earliest == UINT64_MAX && f->inner_inflight > 0) {
            /* only real reads can complete: block in the real backend */
            if ((rc = drain_inner(f, deadline_ns, err)) < 0) return rc;
            continue;
        }
        /* Sleep until the earliest held completion or stalled start, at
         * most 1 ms so real completions are not held up behind it. */
        uint64_t until = earliest < deadline_ns ? earliest : deadline_ns;
        uint64_t ns = until > now ? until - now : 0;
        if (ns > 1000000) ns = 1000000;
        struct timespec ts = { 0, (long)ns };
        nanosleep(&ts, NULL);
    }
}

static int fault_register(mp_io_backend *b, const struct iovec *iov, unsigned n)
{
    fault_be *f = (fault_be *)b;
    return f->inner->ops->register_buffers ? f->inner->ops->register_buffers(f->inner, iov, n) : 0;
}

static bool fault_free(mp_io_backend *b, bool cancel, uint64_t deadline_ns)
{
    fault_be *f = (fault_be *)b;
    /* Stalled reads never started: they write nothing; drop them. */
    bool safe = f->inner->ops->free(f->inner, cancel, deadline_ns);
    free(f->held);
    free(f->delayed);
    free(f->stalled);
    free(f);
    return safe;
}

static const mp_io_ops fault_ops = {
    .name = "fault",
    .submit = fault_submit,
    .reap = fault_reap,
    .register_buffers = fault_register,
    .free = fault_free,
};

int mp_io_fault_create(mp_io_backend *inner, const mp_io_fault_spec *spec, size_t short_align,
                       mp_io_backend **out, mp_err *err)
{
    fault_be *f = calloc(1, sizeof *f);
    if (!f) {
        inner->ops->free(inner, false, UINT64_MAX);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    f->base.ops = &fault_ops;
    snprintf(f->base.name, sizeof f->base.name, "fault(%.24s)", inner->name);
    f->inner = inner;
    f->spec = *spec;
    f->short_align = short_align ? short_align : 1;
    f->rng = spec->seed;
    *out = &f->base;
    return MP_OK;
}

static int parse_prob(const char *v, double *out)
{
    char *end;
    double p = strtod(v, &end);
    if (end == v || *end || !(p >= 0.0 && p <= 1.0)) return -1;
    *out = p;
    return 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    if (*v < '0' || *v > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (end == v || *end || errno) return -1;
    *out = x;
    return 0;
}

int mp_io_fault_parse(const char *spec, mp_io_fault_spec *out, mp_err *err)
{
    mp_io_fault_spec s;
    memset(&s, 0, sizeof s);
    s.seed = 1;
    bool delay_p_given = false;
    char *copy = strdup(spec), *save = NULL;
    if (!copy) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    int rc = MP_OK;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *v = strchr(item, '=');
        if (v) *v++ = '\0';
        int bad = 0;
        if (!strcmp(item, "refuse_direct") && !v) s.refuse_direct = true;
        else if (!strcmp(item, "submit_fail") && !v) s.submit_fail = 1;
        else if (!strcmp(item, "submit_zero") && !v) s.submit_zero = 1;
        else if (!strcmp(item, "stall") && !v) s.stall_nth = 1;
        else if (!strcmp(item, "no_uring") && !v) s.no_uring = true;
        else if (!strcmp(item, "no_fixed") && !v) s.no_fixed = true;
        else if (!v) bad = 1;
        else if (!strcmp(item, "eio")) bad = parse_prob(v, &s.p_eio);
        else if (!strcmp(item, "short")) bad = parse_prob(v, &s.p_short);
        else if (!strcmp(item, "eagain")) bad = parse_prob(v, &s.p_eagain);
        else if (!strcmp(item, "delay")) bad = parse_prob(v, &s.p_delay), delay_p_given = true;
        else if (!strcmp(item, "delay_us")) bad = parse_u64(v, &s.delay_us);
        else if (!strcmp(item, "eio_nth")) bad = parse_u64(v, &s.eio_nth);
        else if (!strcmp(item, "eio_from")) bad = parse_u64(v, &s.eio_from);
        else if (!strcmp(item, "eio_off")) bad = parse_u64(v, &s.eio_off), s.has_eio_off = true;
        else if (!strcmp(item, "seed")) bad = parse_u64(v, &s.seed);
        else if (!strcmp(item, "submit_fail")) bad = parse_u64(v, &s.submit_fail) || !s.submit_fail;
        else if (!strcmp(item, "submit_zero")) bad = parse_u64(v, &s.submit_zero) || !s.submit_zero;
        else if (!strcmp(item, "stall")) bad = parse_u64(v, &s.stall_nth) || !s.stall_nth;
        else if (!strcmp(item, "stall_from")) bad = parse_u64(v, &s.stall_from) || !s.stall_from;
        else if (!strcmp(item, "stall_ms")) bad = parse_u64(v, &s.stall_ms);
        else if (!strcmp(item, "align"))
            bad = parse_u64(v, &s.align) || s.align < 512 || (s.align & (s.align - 1)) ||
                  s.align > (1u << 24);
        else bad = 1;
        if (bad) {
            rc = mp_err_set(err, MP_E_INVAL, "bad I/O fault spec item '%s%s%s' in '%s'", item,
                            v ? "=" : "", v ? v : "", spec);
            break;
        }
    }
    free(copy);
    if (rc < 0) return rc;
    if (s.delay_us && !delay_p_given) s.p_delay = 1.0;
    s.any_read_fault = s.p_eio > 0 || s.p_short > 0 || s.p_eagain > 0 ||
                       (s.p_delay > 0 && s.delay_us > 0) || s.eio_nth || s.eio_from ||
                       s.has_eio_off || s.submit_fail || s.submit_zero || s.stall_nth ||
                       s.stall_from;
    *out = s;
    return MP_OK;
}
