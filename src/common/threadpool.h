/* A fixed pool of worker threads for data-parallel loops.
 *
 * mp_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in
 * [0, nth) -- the caller runs ith 0 -- and returns when all have finished.
 * Workers spin briefly between jobs (the forward pass issues hundreds of
 * small jobs per token) and then sleep on a condition variable. */
#ifndef MP_THREADPOOL_H
#define MP_THREADPOOL_H

typedef struct mp_pool mp_pool;
typedef void (*mp_pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1: no worker threads, run() calls fn inline). NULL on
 * failure. */
mp_pool *mp_pool_create(int n_threads);
void mp_pool_free(mp_pool *pool); /* NULL-safe; joins the workers */
int mp_pool_size(const mp_pool *pool);
/* Not reentrant: fn must not call mp_pool_run on the same pool. */
void mp_pool_run(mp_pool *pool, mp_pool_fn fn, void *ctx);

/* Splits [0, n) into nth near-equal contiguous parts; part ith is [*lo, *hi). */
static inline void mp_split_range(long n, int ith, int nth, long *lo, long *hi)
{
    long q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

#endif
