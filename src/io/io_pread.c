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
#include <unistd.h>

typedef struct pread_be {
    mp_io_backend base;
    int fd;
    unsigned depth;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    mp_io_raw *work;          /* ring [depth] */
    unsigned work_head, n_work;
    mp_io_raw_done *done;     /* ring [depth] */
    unsigned done_head, n_done;
    unsigned inflight;        /* submitted, not reaped */
    bool stop;
    pthread_t *threads;
    unsigned n_threads;
} pread_be;

static void *pread_worker(void *arg)
{
    pread_be *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n_work == 0 && !p->stop) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->n_work == 0) break; /* stop, and the queue is drained */
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
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int pread_submit(mp_io_backend *b, const mp_io_raw *r, unsigned n, mp_err *err)
{
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    if (p->inflight + n > p->depth) {
        pthread_mutex_unlock(&p->mu);
        return mp_err_set(err, MP_E_IO, "pread pool: more than %u reads in flight", p->depth);
    }
    for (unsigned k = 0; k < n; k++) p->work[(p->work_head + p->n_work + k) % p->depth] = r[k];
    p->n_work += n;
    p->inflight += n;
    if (n == 1) pthread_cond_signal(&p->work_cv);
    else pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return MP_OK;
}

static int pread_reap(mp_io_backend *b, mp_io_raw_done *out, unsigned max, bool wait, mp_err *err)
{
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    if (wait)
        while (p->n_done == 0 && p->inflight > 0) pthread_cond_wait(&p->done_cv, &p->mu);
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

static void pread_free(mp_io_backend *b)
{
    pread_be *p = (pread_be *)b;
    pthread_mutex_lock(&p->mu);
    p->stop = true; /* workers finish the queued reads, then exit */
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned t = 0; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p->work);
    free(p->done);
    free(p);
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
    pthread_cond_init(&p->done_cv, NULL);
    for (unsigned t = 0; t < n_threads; t++) {
        int e = pthread_create(&p->threads[t], NULL, pread_worker, p);
        if (e != 0) {
            p->n_threads = t;
            pread_free(&p->base);
            return mp_err_set(err, MP_E_NOMEM, "pread pool: cannot start thread %u: %s", t,
                              strerror(e));
        }
        p->n_threads = t + 1;
    }
    *out = &p->base;
    return MP_OK;
}
