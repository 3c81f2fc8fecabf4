/* io_uring backend: one ring of `depth` entries, the file registered as
 * fixed file 0 (saves the fd lookup and refcount per read), the caller's
 * slab as fixed buffers (saves pinning pages per read), one
 * io_uring_submit per batch. */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct uring_be {
    mp_io_backend base;
    struct io_uring ring;
    int fd;
    bool fixed_file;
    bool buffers;
    unsigned inflight; /* reads in the ring or the kernel whose CQE is not seen yet */
} uring_be;

/* user_data of the cancel request sent at teardown; read tags are 32-bit. */
#define CANCEL_TAG (UINT64_MAX - 1)

static bool is_read_cqe(const struct io_uring_cqe *cqe)
{
    uint64_t d = io_uring_cqe_get_data64(cqe);
    return d != CANCEL_TAG && d != LIBURING_UDATA_TIMEOUT;
}

/* Puts r[from..to) in the ring (not yet submitted). */
static void prep_reads(uring_be *u, const mp_io_raw *r, unsigned from, unsigned to)
{
    for (unsigned k = from; k < to; k++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        /* io.c keeps <= depth reads in flight and the ring has depth SQEs,
         * every one consumed by the previous submit */
        assert(sqe);
        int fd = u->fixed_file ? 0 : u->fd;
        if (r[k].buf_index >= 0)
            io_uring_prep_read_fixed(sqe, fd, r[k].buf, r[k].len, r[k].offset, r[k].buf_index);
        else
            io_uring_prep_read(sqe, fd, r[k].buf, r[k].len, r[k].offset);
        if (u->fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, r[k].tag);
    }
}

/* Submits what is in the ring until `want` SQEs went to the kernel.
 * Returns 0, or the negative errno / -EAGAIN (0 submitted) that stopped it. */
static int submit_all(uring_be *u, unsigned want)
{
    unsigned tries = 0;
    while (want > 0) {
        int ret = io_uring_submit(&u->ring);
        if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) {
            if (++tries > MP_IO_MAX_RETRIES) return ret;
            continue;
        }
        if (ret < 0) return ret;
        if (ret == 0) return -EAGAIN; /* nothing taken: the reads stay in the ring */
        want -= (unsigned)ret < want ? (unsigned)ret : want;
    }
    return 0;
}

static int uring_submit(mp_io_backend *b, const mp_io_raw *r, unsigned n, int sim, mp_err *err)
{
    uring_be *u = (uring_be *)b;
    /* From here on the SQEs are the kernel's to take at any later enter
     * (this one, a wait, the teardown's cancel): whatever happens, all n
     * count as in flight and their CQEs are waited for at teardown. */
    u->inflight += n;
    if (sim == MP_IO_SIM_SUBMIT_FAIL) {
        unsigned half = (n + 1) / 2;
        prep_reads(u, r, 0, half);
        int ret = submit_all(u, half);
        prep_reads(u, r, half, n);
        if (ret < 0) return mp_err_set(err, MP_E_IO, "io_uring_submit: %s", strerror(-ret));
        return mp_err_set(err, MP_E_IO, "io_uring_submit: %s after %u of %u reads (injected)",
                          strerror(EIO), half, n);
    }
    prep_reads(u, r, 0, n);
    if (sim == MP_IO_SIM_SUBMIT_ZERO)
        return mp_err_set(err, MP_E_IO, "io_uring_submit started 0 of %u reads (injected)", n);
    int ret = submit_all(u, n);
    if (ret == -EAGAIN)
        return mp_err_set(err, MP_E_IO, "io_uring_submit started 0 of the %u reads left", n);
    if (ret < 0) return mp_err_set(err, MP_E_IO, "io_uring_submit: %s", strerror(-ret));
    return MP_OK;
}

/* Copies up to max read CQEs out (skipping the cancel's and liburing's own). */
static unsigned take_cqes(uring_be *u, mp_io_raw_done *out, unsigned max)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0, k = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        if (k == max) break;
        seen++;
        if (!is_read_cqe(cqe)) continue;
        if (out) out[k] = (mp_io_raw_done){ (uint32_t)io_uring_cqe_get_data64(cqe), cqe->res };
        k++;
    }
    io_uring_cq_advance(&u->ring, seen);
    u->inflight -= k;
    return k;
}

/* Waits for a CQE until deadline_ns. Returns 0 (one is there), -ETIME or
 * another -errno. */
static int wait_cqe_until(uring_be *u, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = mp_time_ns();
        if (now >= deadline_ns) return -ETIME;
        uint64_t left = deadline_ns - now;
        struct __kernel_timespec ts = { .tv_sec = (long long)(left / 1000000000u),
                                        .tv_nsec = (long long)(left % 1000000000u) };
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
        if (ret == -EINTR || ret == -EAGAIN) continue;
        return ret;
    }
}

static int uring_reap(mp_io_backend *b, mp_io_raw_done *out, unsigned max, uint64_t deadline_ns,
                      mp_err *err)
{
    uring_be *u = (uring_be *)b;
    for (;;) {
        unsigned k = take_cqes(u, out, max);
        if (k > 0 || !deadline_ns || u->inflight == 0) return (int)k;
        int ret = wait_cqe_until(u, deadline_ns);
        if (ret == -ETIME) return 0;
        if (ret < 0) return mp_err_set(err, MP_E_IO, "io_uring_wait_cqe: %s", strerror(-ret));
    }
}

static int uring_register(mp_io_backend *b, const struct iovec *iov, unsigned n)
{
    uring_be *u = (uring_be *)b;
    int ret = io_uring_register_buffers(&u->ring, iov, n);
    if (ret == 0) u->buffers = true;
    return ret;
}

static bool uring_free(mp_io_backend *b, bool cancel, uint64_t deadline_ns)
{
    uring_be *u = (uring_be *)b;
    /* Reads still in flight write into caller buffers: cancel them (a
     * failed io: reads left in the ring go to the kernel with the cancel
     * and end at once), then drain, but not past the deadline. */
    if (u->inflight > 0 && cancel) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) { /* the ring is full of reads a failed submit left */
            io_uring_submit(&u->ring);
            sqe = io_uring_get_sqe(&u->ring);
        }
        if (sqe) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, CANCEL_TAG);
        }
        io_uring_submit(&u->ring);
    }
    while (u->inflight > 0) {
        if (take_cqes(u, NULL, UINT_MAX) > 0) continue;
        if (wait_cqe_until(u, deadline_ns) < 0) break;
    }
    /* Still in flight past the deadline: closing the ring makes the kernel
     * cancel them, but one stuck in the device finishes when it finishes,
     * into its buffer (pinned by the kernel for O_DIRECT and fixed
     * buffers). The caller must leave the buffers alone. */
    bool safe = u->inflight == 0;
    io_uring_queue_exit(&u->ring); /* also drops the registrations */
    free(u);
    return safe;
}

static const mp_io_ops uring_ops = {
    .name = "io_uring",
    .submit = uring_submit,
    .reap = uring_reap,
    .register_buffers = uring_register,
    .free = uring_free,
};

int mp_io_uring_create(int fd, unsigned depth, bool simulate_enosys, mp_io_backend **out,
                       int *sys_errno, mp_err *err)
{
    *out = NULL;
    if (simulate_enosys) {
        *sys_errno = ENOSYS;
        return mp_err_set(err, MP_E_UNSUPPORTED, "io_uring unavailable: %s (simulated)",
                          strerror(ENOSYS));
    }
    uring_be *u = calloc(1, sizeof *u);
    if (!u) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    u->base.ops = &uring_ops;
    snprintf(u->base.name, sizeof u->base.name, "io_uring");
    u->fd = fd;
    int ret = io_uring_queue_init(depth, &u->ring, 0);
    if (ret < 0) {
        free(u);
        *sys_errno = -ret;
        return mp_err_set(err, MP_E_UNSUPPORTED, "io_uring unavailable: io_uring_queue_init: %s",
                          strerror(-ret));
    }
    u->fixed_file = io_uring_register_files(&u->ring, &fd, 1) == 0;
    *out = &u->base;
    return MP_OK;
}
