/* The part of mp_io common to every backend: opening the file (O_DIRECT or
 * buffered), choosing the backend, queueing beyond the depth with two
 * priorities, and turning the backends' single-shot reads into complete
 * requests (short reads, EAGAIN, end of file). */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { ENT_FREE = 0, ENT_QUEUED = 1, ENT_INFLIGHT = 2 };

typedef struct mp_io_entry {
    mp_io_req req;
    uint64_t pos;      /* bytes of req known good; aligned when direct */
    uint32_t rawlen;   /* length of the raw read in flight */
    uint32_t retries;  /* consecutive retries without progress */
    uint8_t low;       /* the raw read in flight is a LOW one */
    uint64_t started_ns; /* when the raw read in flight was handed to the backend */
    int32_t next;      /* queue or free-list link, -1 at the end */
    uint8_t state;
} mp_io_entry;

struct mp_io {
    mp_io_backend *be;
    int fd;
    char *path;
    bool direct;
    bool sim_no_fixed;     /* fault spec no_fixed */
    size_t align;
    uint64_t file_size;
    unsigned depth;
    uint32_t timeout_ms;
    unsigned inflight;     /* raw reads in the backend (after a failed submit: that may be) */
    unsigned inflight_low; /* of which LOW (prefetch) reads */
    unsigned outstanding;  /* requests submitted and not reaped */

    mp_io_entry *ent;
    uint32_t n_ent, cap_ent;
    int32_t free_head;
    int32_t qhead[2], qtail[2]; /* [MP_IO_PRIO_HIGH], [MP_IO_PRIO_LOW] */

    mp_io_done *done;      /* completed, not yet reaped (FIFO) */
    unsigned done_head, n_done, cap_done;

    struct iovec *reg;
    unsigned n_reg;

    mp_io_raw *batch;      /* [depth] */
    mp_io_raw_done *rdone; /* [depth] */
    mp_io_counters cnt;
    uint64_t busy_since;   /* when inflight last went 0 -> 1 (ns) */
    /* The failed state (see io.h): status != MP_OK from then on. */
    mp_io_failure_info fail;
    char fail_reason[MP_ERR_MSG_MAX / 2]; /* fail.reason */
    char fail_msg[MP_ERR_MSG_MAX];        /* what submit and reap report */
};

/* The most bytes of the file's path and of the reason in a failure message
 * (with the offset and words, under MP_ERR_MSG_MAX). */
#define MP_IO_MSG_PATH 280
#define MP_IO_MSG_REASON 160

/* Enters the failed state with the message for submit and reap; the
 * first failure is the one kept. */
static void fail_io(mp_io *io, bool timed_out, uint64_t user, uint64_t offset, const char *reason)
{
    if (io->fail.status) return;
    io->fail = (mp_io_failure_info){ .status = MP_E_IO, .timed_out = timed_out,
                                     .timeout_ms = io->timeout_ms, .user = user, .offset = offset,
                                     .reason = io->fail_reason };
    /* a long path or reason is cut so that the message keeps its offset */
    snprintf(io->fail_reason, sizeof io->fail_reason, "%.*s", (int)sizeof io->fail_reason - 1, reason);
    if (timed_out)
        snprintf(io->fail_msg, sizeof io->fail_msg, "%.*s: %.*s (offset %llu)", MP_IO_MSG_PATH, io->path,
                 MP_IO_MSG_REASON, reason, (unsigned long long)offset);
    else
        snprintf(io->fail_msg, sizeof io->fail_msg, "%.*s: read at offset %llu: %.*s", MP_IO_MSG_PATH, io->path,
                 (unsigned long long)offset, MP_IO_MSG_REASON, reason);
}

static int failed(const mp_io *io, mp_err *err)
{
    return mp_err_set(err, io->fail.status, "%s", io->fail_msg);
}

/* ---- queues ---------------------------------------------------------- */

static void q_push_back(mp_io *io, int q, int32_t i)
{
    io->ent[i].next = -1;
    if (io->qtail[q] >= 0) io->ent[io->qtail[q]].next = i;
    else io->qhead[q] = i;
    io->qtail[q] = i;
}

static void q_push_front(mp_io *io, int q, int32_t i)
{
    io->ent[i].next = io->qhead[q];
    io->qhead[q] = i;
    if (io->qtail[q] < 0) io->qtail[q] = i;
}

static int32_t q_pop(mp_io *io, int q)
{
    int32_t i = io->qhead[q];
    if (i < 0) return -1;
    io->qhead[q] = io->ent[i].next;
    if (io->qhead[q] < 0) io->qtail[q] = -1;
    io->ent[i].next = -1;
    return i;
}

/* Grows the entry table so that n more entries can be had. */
static int ent_reserve(mp_io *io, uint32_t n)
{
    if (io->cap_ent - io->n_ent >= n) return MP_OK;
    uint32_t cap = io->cap_ent ? io->cap_ent : 64;
    while (cap - io->n_ent < n) cap *= 2;
    mp_io_entry *e = realloc(io->ent, cap * sizeof *e);
    if (!e) return MP_E_NOMEM;
    io->ent = e;
    for (uint32_t i = cap; i-- > io->cap_ent;) {
        e[i].state = ENT_FREE;
        e[i].next = io->free_head;
        io->free_head = (int32_t)i;
    }
    io->cap_ent = cap;
    return MP_OK;
}

static int32_t ent_alloc(mp_io *io)
{
    int32_t i = io->free_head;
    assert(i >= 0);
    io->free_head = io->ent[i].next;
    io->n_ent++;
    return i;
}

static void ent_free(mp_io *io, int32_t i)
{
    io->ent[i].state = ENT_FREE;
    io->ent[i].next = io->free_head;
    io->free_head = i;
    io->n_ent--;
}

/* Makes room for `total` unreaped completions. */
static int done_reserve(mp_io *io, unsigned total)
{
    if (total <= io->cap_done) return MP_OK;
    unsigned cap = io->cap_done ? io->cap_done : 64;
    while (cap < total) cap *= 2;
    mp_io_done *d = malloc(cap * sizeof *d);
    if (!d) return MP_E_NOMEM;
    for (unsigned k = 0; k < io->n_done; k++) d[k] = io->done[(io->done_head + k) % io->cap_done];
    free(io->done);
    io->done = d;
    io->done_head = 0;
    io->cap_done = cap;
    return MP_OK;
}

/* Space for a completion of every entry is reserved at submit time, so
 * completing never allocates. */
static void complete(mp_io *io, int32_t i, int64_t res)
{
    mp_io_entry *e = &io->ent[i];
    assert(io->n_done < io->cap_done);
    mp_io_done *d = &io->done[(io->done_head + io->n_done) % io->cap_done];
    d->user = e->req.user;
    d->res = res < 0 ? res : (int64_t)e->req.len;
    io->n_done++;
    io->cnt.reqs++;
    if (res < 0) io->cnt.errors++;
    ent_free(io, i);
}

static void zero_tail(mp_io *io, int32_t i, uint64_t from)
{
    mp_io_entry *e = &io->ent[i];
    memset((char *)e->req.buf + from, 0, e->req.len - from);
    io->cnt.zero_filled += e->req.len - from;
    complete(io, i, 0);
}

static int find_buf_index(const mp_io *io, const void *p, uint64_t len)
{
    const char *c = p;
    for (unsigned k = 0; k < io->n_reg; k++) {
        const char *b = io->reg[k].iov_base;
        if (c >= b && c + len <= b + io->reg[k].iov_len) return (int)k;
    }
    return -1;
}

/* Bytes of HIGH reads in the backend or in the batch being built (whose
 * entries are already ENT_INFLIGHT). */
static uint64_t high_bytes_in_flight(const mp_io *io)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < io->cap_ent; i++)
        if (io->ent[i].state == ENT_INFLIGHT && !io->ent[i].low) b += io->ent[i].rawlen;
    return b;
}

/* Starts queued requests (HIGH first) while fewer than depth reads are in
 * flight; requests that start past the end of the file complete here. */
static void pump(mp_io *io)
{
    unsigned n = 0;
    unsigned n_low = 0;
    uint64_t now = 0;
    if (io->fail.status) return; /* a failed io starts nothing */
    while (io->inflight + n < io->depth) {
        /* A LOW read starts only while no HIGH read is queued, and no more
         * than MP_IO_LOW_BESIDE bytes of HIGH reads are in flight: large
         * reads share the disk's bandwidth, so a prefetch started next to a
         * demand read delays the read the compute is waiting on; reads that
         * small are bound by latency, not bandwidth, and a prefetch beside
         * them costs the demand little. */
        int32_t i = q_pop(io, MP_IO_PRIO_HIGH);
        bool low = false;
        if (i < 0) {
            if (io->inflight - io->inflight_low + (n - n_low) > 0 && high_bytes_in_flight(io) > MP_IO_LOW_BESIDE)
                break;
            if ((i = q_pop(io, MP_IO_PRIO_LOW)) < 0) break;
            low = true;
        }
        mp_io_entry *e = &io->ent[i];
        e->low = low;
        uint64_t foff = e->req.offset + e->pos;
        if (foff >= io->file_size) {
            zero_tail(io, i, e->pos);
            continue;
        }
        uint64_t rem = e->req.len - e->pos;
        uint64_t avail = (io->file_size - foff + io->align - 1) & ~(uint64_t)(io->align - 1);
        uint64_t len = rem < avail ? rem : avail;
        if (len > MP_IO_MAX_RAW) len = MP_IO_MAX_RAW;
        char *buf = (char *)e->req.buf + e->pos;
        e->rawlen = (uint32_t)len;
        e->state = ENT_INFLIGHT;
        if (!now) now = mp_time_ns();
        e->started_ns = now;
        if (low) n_low++; /* counted only once it is in the batch (not past EOF) */
        io->batch[n++] = (mp_io_raw){ .buf = buf, .offset = foff, .len = (uint32_t)len,
                                      .buf_index = find_buf_index(io, buf, len),
                                      .tag = (uint32_t)i };
    }
    if (!n) return;
    mp_err serr;
    mp_err_clear(&serr);
    int rc = io->be->ops->submit(io->be, io->batch, n, MP_IO_SIM_NONE, &serr);
    if (rc < 0) {
        /* Some of these reads may be in the kernel already (a partial
         * io_uring_submit), or go there with the ring's next enter: their
         * buffers stay ours, INFLIGHT, until mp_io_free has cancelled and
         * drained them. Completing them as failed here would let the
         * caller reuse memory the kernel may still write. */
        const mp_io_entry *e0 = &io->ent[io->batch[0].tag];
        char why[MP_ERR_MSG_MAX / 2];
        snprintf(why, sizeof why, "cannot start it: %.200s", serr.msg[0] ? serr.msg : mp_strerror(rc));
        fail_io(io, false, e0->req.user, io->batch[0].offset, why);
    }
    if (io->inflight == 0) io->busy_since = mp_time_ns();
    io->inflight += n;
    io->inflight_low += n_low;
    assert(io->inflight_low <= io->inflight);
    io->cnt.reads += n;
}

static void requeue(mp_io *io, int32_t i)
{
    io->ent[i].state = ENT_QUEUED;
    q_push_front(io, MP_IO_PRIO_HIGH, i); /* already started: finish it first */
}

static void on_raw_done(mp_io *io, const mp_io_raw_done *d)
{
    int32_t i = (int32_t)d->tag;
    assert(i >= 0 && (uint32_t)i < io->cap_ent && io->ent[i].state == ENT_INFLIGHT);
    mp_io_entry *e = &io->ent[i];
    if (e->low) io->inflight_low--;
    e->low = 0;
    if (--io->inflight == 0) io->cnt.busy_ns += mp_time_ns() - io->busy_since;
    int32_t r = d->res;
    if (r < 0) {
        if ((r == -EAGAIN || r == -EINTR) && e->retries < MP_IO_MAX_RETRIES) {
            e->retries++;
            io->cnt.retries++;
            requeue(io, i);
        } else {
            complete(io, i, r);
        }
        return;
    }
    if (r == 0) {
        /* pump never reads at or past file_size: the file shrank. */
        complete(io, i, -ENODATA);
        return;
    }
    io->cnt.bytes += (uint64_t)r;
    uint64_t got = e->pos + (uint64_t)r;
    if (got >= e->req.len) {
        complete(io, i, 0);
        return;
    }
    if (e->req.offset + got >= io->file_size) {
        zero_tail(io, i, got);
        return;
    }
    if ((uint32_t)r < e->rawlen) io->cnt.short_reads++;
    uint64_t np = io->direct ? got & ~(uint64_t)(io->align - 1) : got;
    if (np <= e->pos) {
        if (++e->retries > MP_IO_MAX_RETRIES) {
            complete(io, i, -EIO);
            return;
        }
        io->cnt.retries++;
    } else {
        e->pos = np;
        e->retries = 0;
    }
    requeue(io, i);
}

/* ---- public ---------------------------------------------------------- */

int mp_io_submit(mp_io *io, const mp_io_req *reqs, unsigned n, mp_err *err)
{
    if (io->fail.status) return failed(io, err);
    if (ent_reserve(io, n) < 0 || done_reserve(io, io->outstanding + n) < 0)
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory queueing %u reads", io->path, n);
    for (unsigned k = 0; k < n; k++) {
        const mp_io_req *r = &reqs[k];
        assert(r->len > 0);
        assert(((uintptr_t)r->buf & (io->align - 1)) == 0);
        assert((r->offset & (io->align - 1)) == 0 && (r->len & (io->align - 1)) == 0);
        int32_t i = ent_alloc(io);
        mp_io_entry *e = &io->ent[i];
        e->req = *r;
        e->pos = 0;
        e->retries = 0;
        e->state = ENT_QUEUED;
        q_push_back(io, r->prio == MP_IO_PRIO_LOW ? MP_IO_PRIO_LOW : MP_IO_PRIO_HIGH, i);
        io->outstanding++;
    }
    pump(io);
    return io->fail.status ? failed(io, err) : MP_OK;
}

bool mp_io_promote(mp_io *io, uint64_t user)
{
    int32_t prev = -1;
    for (int32_t i = io->qhead[MP_IO_PRIO_LOW]; i >= 0; prev = i, i = io->ent[i].next) {
        if (io->ent[i].req.user != user) continue;
        int32_t nx = io->ent[i].next;
        if (prev >= 0) io->ent[prev].next = nx;
        else io->qhead[MP_IO_PRIO_LOW] = nx;
        if (io->qtail[MP_IO_PRIO_LOW] == i) io->qtail[MP_IO_PRIO_LOW] = prev;
        io->ent[i].req.prio = MP_IO_PRIO_HIGH;
        q_push_back(io, MP_IO_PRIO_HIGH, i);
        return true;
    }
    /* already in flight: from now on it counts as HIGH, so no new LOW read
     * starts next to the read a demand now waits on */
    for (uint32_t i = 0; i < io->cap_ent; i++) {
        mp_io_entry *e = &io->ent[i];
        if (e->state != ENT_INFLIGHT || e->req.user != user) continue;
        e->req.prio = MP_IO_PRIO_HIGH;
        if (e->low) {
            e->low = 0;
            io->inflight_low--;
        }
        return false; /* found, but not queued */
    }
    return false;
}

/* The read in flight that started first: the one a stall is blamed on. */
static int32_t oldest_inflight(const mp_io *io)
{
    int32_t best = -1;
    for (uint32_t i = 0; i < io->cap_ent; i++)
        if (io->ent[i].state == ENT_INFLIGHT &&
            (best < 0 || io->ent[i].started_ns < io->ent[best].started_ns))
            best = (int32_t)i;
    return best;
}

int mp_io_reap(mp_io *io, mp_io_done *out, unsigned max, bool wait, mp_err *err)
{
    uint64_t deadline = 0; /* set at the first blocking wait; moved on by every completion */
    for (;;) {
        if (io->fail.status) return failed(io, err);
        pump(io);
        if (io->fail.status) return failed(io, err);
        if (io->n_done > 0 || max == 0) {
            unsigned k = 0;
            for (; k < max && io->n_done > 0; k++) {
                out[k] = io->done[io->done_head];
                io->done_head = (io->done_head + 1) % io->cap_done;
                io->n_done--;
            }
            io->outstanding -= k;
            return (int)k;
        }
        if (io->inflight == 0) {
            if (io->qhead[0] < 0 && io->qhead[1] < 0) return 0;
            continue; /* pump starts them */
        }
        if (wait && !deadline) deadline = mp_time_ns() + (uint64_t)io->timeout_ms * 1000000u;
        mp_err berr;
        mp_err_clear(&berr);
        int k = io->be->ops->reap(io->be, io->rdone, io->depth, wait ? deadline : 0, &berr);
        if (k < 0) {
            int32_t i = oldest_inflight(io);
            fail_io(io, false, i >= 0 ? io->ent[i].req.user : 0,
                    i >= 0 ? io->ent[i].req.offset + io->ent[i].pos : 0,
                    berr.msg[0] ? berr.msg : mp_strerror(k));
            return failed(io, err);
        }
        if (k == 0 && wait && mp_time_ns() >= deadline) {
            int32_t i = oldest_inflight(io);
            uint64_t user = i >= 0 ? io->ent[i].req.user : 0;
            uint64_t off = i >= 0 ? io->ent[i].req.offset + io->ent[i].pos : 0;
            char why[64];
            snprintf(why, sizeof why, "no read completed for %g s", io->timeout_ms / 1000.0);
            fail_io(io, true, user, off, why);
            return failed(io, err);
        }
        if (k > 0 && wait) deadline = mp_time_ns() + (uint64_t)io->timeout_ms * 1000000u;
        for (int j = 0; j < k; j++) on_raw_done(io, &io->rdone[j]);
        if (k == 0 && !wait) {
            pump(io);
            if (io->n_done == 0) return 0;
        }
    }
}

unsigned mp_io_outstanding(const mp_io *io) { return io->outstanding; }
const char *mp_io_name(const mp_io *io) { return io->be->name; }
const char *mp_io_path(const mp_io *io) { return io->path; }
size_t mp_io_align(const mp_io *io) { return io->align; }
bool mp_io_is_direct(const mp_io *io) { return io->direct; }
bool mp_io_has_fixed_buffers(const mp_io *io) { return io->n_reg > 0; }
uint64_t mp_io_file_size(const mp_io *io) { return io->file_size; }
unsigned mp_io_depth(const mp_io *io) { return io->depth; }
uint32_t mp_io_timeout_ms(const mp_io *io) { return io->timeout_ms; }

int mp_io_failure(const mp_io *io, mp_io_failure_info *out)
{
    *out = io->fail;
    out->timeout_ms = io->timeout_ms;
    return io->fail.status;
}

void mp_io_get_counters(mp_io *io, mp_io_counters *out, bool reset)
{
    uint64_t now = io->inflight ? mp_time_ns() : 0;
    if (out) {
        *out = io->cnt;
        if (io->inflight) out->busy_ns += now - io->busy_since;
    }
    if (reset) {
        memset(&io->cnt, 0, sizeof io->cnt);
        io->busy_since = now; /* an open interval counts from the reset on */
    }
}

int mp_io_register_buffers(mp_io *io, const struct iovec *iov, unsigned n, mp_err *err)
{
    assert(io->n_reg == 0 && n > 0);
    for (unsigned k = 0; k < n; k++)
        if (iov[k].iov_len > (1u << 30))
            return mp_err_set(err, MP_E_UNSUPPORTED,
                              "%s: buffer %u is %zu bytes; fixed buffers are at most 1 GiB",
                              io->path, k, iov[k].iov_len);
    if (!io->be->ops->register_buffers) return MP_OK;
    int rc = io->sim_no_fixed ? -ENOMEM : io->be->ops->register_buffers(io->be, iov, n);
    if (rc < 0)
        return mp_err_set(err, MP_E_UNSUPPORTED,
                          "%s: cannot register %u buffers with io_uring: %s%s", io->path, n,
                          strerror(-rc), rc == -ENOMEM ? " (raise RLIMIT_MEMLOCK, ulimit -l)" : "");
    io->reg = malloc(n * sizeof *iov);
    if (!io->reg) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    memcpy(io->reg, iov, n * sizeof *iov);
    io->n_reg = n;
    return MP_OK;
}

int mp_io_kind_parse(const char *s, mp_io_kind *out)
{
    if (!strcmp(s, "auto")) *out = MP_IO_AUTO;
    else if (!strcmp(s, "io_uring") || !strcmp(s, "uring")) *out = MP_IO_URING;
    else if (!strcmp(s, "pread")) *out = MP_IO_PREAD;
    else return MP_E_INVAL;
    return MP_OK;
}


/* Alignment for O_DIRECT: 4096, or what statx says the file needs if more. */
static size_t direct_align(int fd)
{
    size_t a = 4096;
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
        if (sx.stx_dio_offset_align > a) a = sx.stx_dio_offset_align;
        if (sx.stx_dio_mem_align > a) a = sx.stx_dio_mem_align;
    }
#else
    (void)fd;
#endif
    return a;
}

size_t mp_io_file_align(const char *path, const char *fault_spec)
{
    size_t a = 4096;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd >= 0) {
        a = direct_align(fd);
        close(fd);
    }
    mp_io_fault_spec fs;
    memset(&fs, 0, sizeof fs);
    mp_err e;
    mp_err_clear(&e);
    if (fault_spec && fault_spec[0] && mp_io_fault_parse(fault_spec, &fs, &e) >= 0 && fs.align > a) a = fs.align;
    return a;
}

int mp_io_open(mp_io_kind kind, const char *path, const mp_io_opts *opts, mp_io **out,
               char *note, size_t note_cap, mp_err *err)
{
    mp_io_opts o = opts ? *opts : (mp_io_opts){ 0 };
    mp_io_fault_spec fs;
    memset(&fs, 0, sizeof fs);
    int rc = MP_OK;
    mp_io *io = NULL;
    *out = NULL;
    if (note && note_cap) note[0] = '\0';
    if (o.depth == 0) o.depth = MP_IO_DEFAULT_DEPTH;
    if (o.depth > MP_IO_MAX_DEPTH)
        return mp_err_set(err, MP_E_INVAL, "I/O depth %u is above the maximum %d", o.depth,
                          MP_IO_MAX_DEPTH);
    if (o.n_threads == 0) o.n_threads = o.depth < 8 ? o.depth : 8;
    if (o.fault_spec && o.fault_spec[0] && (rc = mp_io_fault_parse(o.fault_spec, &fs, err)) < 0)
        return rc;

    io = calloc(1, sizeof *io);
    if (!io) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    io->fd = -1;
    io->free_head = io->qhead[0] = io->qhead[1] = io->qtail[0] = io->qtail[1] = -1;
    io->depth = o.depth;
    io->timeout_ms = o.timeout_ms ? o.timeout_ms : MP_IO_DEFAULT_TIMEOUT_MS;
    io->sim_no_fixed = fs.no_fixed;
    io->path = strdup(path);
    io->batch = malloc(o.depth * sizeof *io->batch);
    io->rdone = malloc(o.depth * sizeof *io->rdone);
    if (!io->path || !io->batch || !io->rdone) {
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
        goto fail;
    }

    if (!o.buffered) {
        if (fs.refuse_direct) {
            io->fd = -1;
            errno = EINVAL;
        } else {
            io->fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
        }
        if (io->fd >= 0) {
            io->direct = true;
        } else if (errno == EINVAL) {
            mp_note_add(note, note_cap,
                     "%s: the filesystem refuses O_DIRECT; reading buffered through the page cache",
                     path);
        } else {
            rc = mp_err_set(err, MP_E_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (io->fd < 0) {
        io->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (io->fd < 0) {
            rc = mp_err_set(err, MP_E_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
    }
    off_t end = lseek(io->fd, 0, SEEK_END);
    if (end < 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot get the size: %s", path, strerror(errno));
        goto fail;
    }
    io->file_size = (uint64_t)end;
    io->align = io->direct ? direct_align(io->fd) : 4096;
    if (fs.align > io->align) io->align = fs.align;

    if (kind == MP_IO_AUTO || kind == MP_IO_URING) {
        int sys = 0;
        mp_err uerr;
        mp_err_clear(&uerr);
        rc = mp_io_uring_create(io->fd, o.depth, fs.no_uring, &io->be, &sys, &uerr);
        if (rc == MP_E_UNSUPPORTED && kind == MP_IO_AUTO) {
            mp_note_add(note, note_cap, "io_uring unavailable (%s): using a pool of %u pread threads",
                     strerror(sys), o.n_threads);
        } else if (rc < 0) {
            mp_err_set(err, rc, "%s", uerr.msg);
            goto fail;
        }
    }
    if (!io->be && (rc = mp_io_pread_create(io->fd, o.depth, o.n_threads, &io->be, err)) < 0)
        goto fail;
    if (fs.any_read_fault &&
        (rc = mp_io_fault_create(io->be, &fs, io->direct ? io->align : 1, &io->be, err)) < 0) {
        io->be = NULL; /* the wrapper freed it */
        goto fail;
    }
    *out = io;
    return MP_OK;
fail:
    mp_io_free(io);
    return rc;
}

bool mp_io_free(mp_io *io)
{
    if (!io) return true;
    bool safe = true;
    if (io->be) {
        uint64_t deadline = mp_time_ns() + (uint64_t)io->timeout_ms * 1000000u;
        safe = io->be->ops->free(io->be, io->fail.status != MP_OK, deadline);
    }
    /* A read stuck in the kernel holds its own reference to the file. */
    if (io->fd >= 0) close(io->fd);
    free(io->ent);
    free(io->done);
    free(io->reg);
    free(io->batch);
    free(io->rdone);
    free(io->path);
    free(io);
    return safe;
}
