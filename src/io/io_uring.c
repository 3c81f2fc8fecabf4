/* io_uring backend: one ring of `depth` entries, the file registered as
 * fixed file 0 (saves the fd lookup and refcount per read), the caller's
 * slab as fixed buffers (saves pinning pages per read), one
 * io_uring_submit per batch. */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <errno.h>
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
    unsigned inflight;
} uring_be;

static int uring_submit(mp_io_backend *b, const mp_io_raw *r, unsigned n, mp_err *err)
{
    uring_be *u = (uring_be *)b;
    for (unsigned k = 0; k < n; k++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) {
            /* Cannot happen while io.c keeps <= depth in flight; undo. */
            io_uring_submit(&u->ring);
            return mp_err_set(err, MP_E_IO, "io_uring: submission queue full");
        }
        int fd = u->fixed_file ? 0 : u->fd;
        if (r[k].buf_index >= 0)
            io_uring_prep_read_fixed(sqe, fd, r[k].buf, r[k].len, r[k].offset, r[k].buf_index);
        else
            io_uring_prep_read(sqe, fd, r[k].buf, r[k].len, r[k].offset);
        if (u->fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, r[k].tag);
    }
    unsigned left = n;
    while (left > 0) {
        int ret = io_uring_submit(&u->ring);
        if (ret == -EINTR || ret == -EAGAIN) continue;
        if (ret < 0) {
            /* The SQEs stay in the ring and would go out with the next
             * submit; there is no taking them back, so report the ring as
             * broken. */
            return mp_err_set(err, MP_E_IO, "io_uring_submit: %s", strerror(-ret));
        }
        if (ret == 0) break;
        left -= (unsigned)ret < left ? (unsigned)ret : left;
    }
    u->inflight += n;
    return MP_OK;
}

static int uring_reap(mp_io_backend *b, mp_io_raw_done *out, unsigned max, bool wait, mp_err *err)
{
    uring_be *u = (uring_be *)b;
    struct io_uring_cqe *cqe;
    if (wait && u->inflight > 0) {
        int ret;
        do ret = io_uring_wait_cqe(&u->ring, &cqe);
        while (ret == -EINTR || ret == -EAGAIN);
        if (ret < 0) return mp_err_set(err, MP_E_IO, "io_uring_wait_cqe: %s", strerror(-ret));
    }
    unsigned head, k = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        if (k == max) break;
        out[k].tag = (uint32_t)io_uring_cqe_get_data64(cqe);
        out[k].res = cqe->res;
        k++;
    }
    io_uring_cq_advance(&u->ring, k);
    u->inflight -= k;
    return (int)k;
}

static int uring_register(mp_io_backend *b, const struct iovec *iov, unsigned n)
{
    uring_be *u = (uring_be *)b;
    int ret = io_uring_register_buffers(&u->ring, iov, n);
    if (ret == 0) u->buffers = true;
    return ret;
}

static void uring_free(mp_io_backend *b)
{
    uring_be *u = (uring_be *)b;
    /* Reads still in flight write into caller buffers: drain them first. */
    while (u->inflight > 0) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&u->ring, &cqe);
        if (ret == -EINTR) continue;
        if (ret < 0) break;
        io_uring_cqe_seen(&u->ring, cqe);
        u->inflight--;
    }
    io_uring_queue_exit(&u->ring); /* also drops the registrations */
    free(u);
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
