/* A fixed pool of worker threads for data-parallel loops.
 *
 * Two kinds of job, both run by one caller thread at a time:
 *
 *   mp_pool_for(pool, n, chunk, fn, ctx)   shared work (the forward pass)
 *       Units [0, n) are taken from one counter, `chunk` at a time, by the
 *       caller and by every worker that is awake while units remain; each
 *       unit is handed to fn exactly once. A worker that is descheduled
 *       (another process, a kernel thread, more threads than cores) takes
 *       nothing, so it delays nobody: the others take its share.
 *
 *   mp_pool_run(pool, fn, ctx)             one call per thread
 *       fn(ctx, ith, nth) runs once for every ith in [0, nth) (the caller
 *       runs ith 0): for jobs whose threads own fixed shares. It waits for
 *       every worker, however late; prefer mp_pool_for.
 *
 * Both return when every call of fn for the job has returned, so fn's
 * writes are visible to the caller and ctx may live on the caller's stack.
 * A thread waiting (a worker for the next job, the caller for workers still
 * inside fn) spins for a few microseconds, yields the CPU for a while, then
 * sleeps on a futex: nothing spins without bound.
 *
 * Not reentrant: fn must not start a job on the same pool, and only one
 * thread may start jobs on a pool at a time (the pool is not a queue).
 * fn must not block on another participant of the same mp_pool_for job
 * (a worker may never arrive). */
#ifndef MP_THREADPOOL_H
#define MP_THREADPOOL_H

typedef struct mp_pool mp_pool;

/* mp_pool_run's job: ith in [0, nth), nth = the pool's thread count. */
typedef void (*mp_pool_fn)(void *ctx, int ith, int nth);

/* mp_pool_for's job: units [lo, hi), lo < hi, at most `chunk` of them
 * (all n at once in a pool of one). ith is the calling thread, in [0, nth):
 * 0 is the caller of mp_pool_for; two calls running at the same time never
 * share an ith, so ith may index per-thread scratch. One thread may be
 * called many times for one job. */
typedef void (*mp_pool_range_fn)(void *ctx, int ith, long lo, long hi);

/* n_threads >= 1 threads in all, the caller included (1: no worker
 * threads, jobs run inline). NULL when out of memory or threads. */
mp_pool *mp_pool_create(int n_threads);
void mp_pool_free(mp_pool *pool); /* NULL-safe; no job may be running; joins the workers */

/* Calls fn over [0, n) in pieces of at most chunk units (chunk >= 1; n <= 0
 * does nothing); returns when all n units are done. One piece (n <= chunk)
 * runs inline on the caller without waking anyone. */
void mp_pool_for(mp_pool *pool, long n, long chunk, mp_pool_range_fn fn, void *ctx);

/* Calls fn(ctx, ith, nth) once for each ith in [0, nth), ith 0 on the
 * caller; returns when all have returned. */
void mp_pool_run(mp_pool *pool, mp_pool_fn fn, void *ctx);

/* Splits [0, n) into nth near-equal contiguous parts; part ith is [*lo, *hi). */
static inline void mp_split_range(long n, int ith, int nth, long *lo, long *hi)
{
    long q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

#endif
