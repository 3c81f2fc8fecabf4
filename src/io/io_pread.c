/* pread backend: n worker threads take raw reads from a FIFO, call
 * pread(2) once each and put the result on a completion FIFO. Both FIFOs
 * hold at most `depth` entries because io.c keeps no more in flight. */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct pread_be {
    mp_io_backend base;
    int fd;
    unsigned depth;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv, exit_cv; /* done_cv, exit_cv: CLOCK_MONOTONIC */
    mp_io_raw *work;          /* ring [depth] */
    unsigned work_head, n_work;
    mp_io_raw_done *done;     /* ring [depth] */
    unsigned done_head, n_done;
    unsigned inflight;        /* submitted, not reaped */
    bool stop;                /* workers exit once the queue is empty */
    bool drop;                /* ... and drop what is still queued (the io failed) */
    unsigned alive;           /* workers not yet exited */
    bool orphaned;            /* pread_free gave up waiting: the last worker out frees p */
    pthread_t *threads;
    unsigned n_threads;
} pread_be;

static void pread_destroy(pread_be *p);

static void *pread_worker(void *arg)
{
    pread_be *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n_work == 0 && !p->stop) pthread_cond_wait(&p->work_cv, &p->mu); /* idle */
        if (p->n_work == 0 || p->drop) break; /* stop, and the queue is drained or dropped */
        mp_io_raw r = p->work[p->work_head];
        p->work_head = (p->work_head + 1) % p->depth;
        p->n_work--;
        pthread_mutex_unlock(&p->mu);

        ssize_t got = pread(p->fd, r.buf, r.len, (off_t)r.offset);
        int32_t res = got < 0 ? -errno : (int32_t)got;

        pthread_mutex_lock(&p->mu);
        p->done[(p->done_head + p->n_done) % p->depth] = (mp_io_raw_done){ r.tag, res };
        p->n_done++;
        pthread_cond_signal(&p->done_cv);
    }
    p->alive--;
    bool last_orphan = p->orphaned && p->alive == 0;
    pthread_cond_signal(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    if (last_orphan) pread_destroy(p); /* no one else holds p any more */
    return NULL;
}

static int pread_submit(mp_io_backend *b, const mp_io_raw *r, unsigned n, int sim, mp_err *err)
{
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    if (p->inflight + n > p->depth) {
        pthread_mutex_unlock(&p->mu);
        return mp_err_set(err, MP_E_IO, "pread pool: more than %u reads in flight", p->depth);
    }
    /* the fault backend's failed submits: a part (or none) of the batch goes out */
    unsigned go = sim == MP_IO_SIM_SUBMIT_FAIL ? (n + 1) / 2 : sim == MP_IO_SIM_SUBMIT_ZERO ? 0 : n;
    for (unsigned k = 0; k < go; k++) p->work[(p->work_head + p->n_work + k) % p->depth] = r[k];
    p->n_work += go;
    p->inflight += go;
    if (go == 1) pthread_cond_signal(&p->work_cv);
    else if (go > 1) pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    if (sim == MP_IO_SIM_SUBMIT_FAIL)
        return mp_err_set(err, MP_E_IO, "pread pool: %s after %u of %u reads (injected)",
                          strerror(EIO), go, n);
    if (sim == MP_IO_SIM_SUBMIT_ZERO)
        return mp_err_set(err, MP_E_IO, "pread pool started 0 of %u reads (injected)", n);
    return MP_OK;
}

static struct timespec abs_mono(uint64_t ns)
{
    return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
}

static int pread_reap(mp_io_backend *b, mp_io_raw_done *out, unsigned max, uint64_t deadline_ns,
                      mp_err *err)
{
    (void)err;
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    if (deadline_ns) {
        struct timespec ts = abs_mono(deadline_ns);
        while (p->n_done == 0 && p->inflight > 0)
            if (pthread_cond_timedwait(&p->done_cv, &p->mu, &ts) == ETIMEDOUT) break;
    }
    unsigned k = 0;
    for (; k < max && p->n_done > 0; k++) {
        out[k] = p->done[p->done_head];
        p->done_head = (p->done_head + 1) % p->depth;
        p->n_done--;
    }
    p->inflight -= k;
    pthread_mutex_unlock(&p->mu);
    return (int)k;
}

static void pread_destroy(pread_be *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->exit_cv);
    free(p->threads);
    free(p->work);
    free(p->done);
    free(p);
}

static bool pread_free(mp_io_backend *b, bool cancel, uint64_t deadline_ns)
{
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    p->stop = true; /* workers finish the queued reads (or drop them), then exit */
    p->drop = cancel;
    pthread_cond_broadcast(&p->work_cv);
    struct timespec ts = abs_mono(deadline_ns);
    while (p->alive > 0)
        if (pthread_cond_timedwait(&p->exit_cv, &p->mu, &ts) == ETIMEDOUT) break;
    if (p->alive > 0) {
        /* A worker is stuck in pread(2) (a stalled device): it cannot be
         * interrupted safely, so the workers are detached; the stuck one
         * writes its buffer when the call returns (the caller is told to
         * keep the buffers), then exits, and the last worker out frees p. */
        for (unsigned t = 0; t < p->n_threads; t++) pthread_detach(p->threads[t]);
        p->orphaned = true;
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    pthread_mutex_unlock(&p->mu);
    for (unsigned t = 0; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
    pread_destroy(p);
    return true;
}

static const mp_io_ops pread_ops = {
    .name = "pread",
    .submit = pread_submit,
    .reap = pread_reap,
    .register_buffers = NULL,
    .free = pread_free,
};

int mp_io_pread_create(int fd, unsigned depth, unsigned n_threads, mp_io_backend **out,
                       mp_err *err)
{
    *out = NULL;
    pread_be *p = calloc(1, sizeof *p);
    if (!p) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    p->base.ops = &pread_ops;
    snprintf(p->base.name, sizeof p->base.name, "pread");
    p->fd = fd;
    p->depth = depth;
    p->work = malloc(depth * sizeof *p->work);
    p->done = malloc(depth * sizeof *p->done);
    p->threads = calloc(n_threads, sizeof *p->threads);
    if (!p->work || !p->done || !p->threads) {
        free(p->work);
        free(p->done);
        free(p->threads);
        free(p);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits immune to clock changes */
    pthread_cond_init(&p->done_cv, &ca);
    pthread_cond_init(&p->exit_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (unsigned t = 0; t < n_threads; t++) {
        pthread_mutex_lock(&p->mu);
        p->alive++;
        pthread_mutex_unlock(&p->mu);
        int e = pthread_create(&p->threads[t], NULL, pread_worker, p);
        if (e != 0) {
            pthread_mutex_lock(&p->mu);
            p->alive--;
            pthread_mutex_unlock(&p->mu);
            p->n_threads = t;
            pread_free(&p->base, true, UINT64_MAX);
            return mp_err_set(err, MP_E_NOMEM, "pread pool: cannot start thread %u: %s", t,
                              strerror(e));
        }
        p->n_threads = t + 1;
    }
    *out = &p->base;
    return MP_OK;
}
