#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "threadpool.h"

#include "common/sysinfo.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How long a waiting thread keeps the CPU before it sleeps. The forward pass
 * issues hundreds of jobs per token with a few microseconds of serial work
 * between them, so a worker that spins that long usually catches the next
 * job without the cost of a wake-up (a futex wake is a syscall for the
 * caller, and a sleeping thread needs the scheduler to run it again; the old
 * pool spun ~1 ms, 20000 pauses of ~50 ns here, before sleeping). Past the spin it
 * yields (another runnable thread on this CPU, maybe one of ours holding
 * work, runs first) and past the yield phase it sleeps, so a waiting thread
 * never holds a core a descheduled one needs for longer than this. */
#define MP_POOL_SPIN_NS 5000   /* pause loop */
#define MP_POOL_YIELD_NS 50000 /* then sched_yield loop, up to this much in all */
#define MP_POOL_MAX_THREADS 4096

/* The job handshake.
 *
 * state = job << 32 | CLOSED | joined. The caller writes the job's fields,
 * then publishes job number g by storing state = g << 32 (release), then
 * seq = g. A worker takes part in job g only by a CAS that adds 1 to joined
 * while state still holds g and CLOSED is clear; only then does it read the
 * job's fields (the CAS acquires the caller's release). For mp_pool_for the
 * caller, once the units have run out, sets CLOSED with a fetch_or whose
 * result says how many joined (J) and waits for done == J; a worker that
 * arrives later sees CLOSED and never touches that job. For mp_pool_run the
 * caller never closes and waits for done == nth - 1. Every worker that
 * joined adds 1 to done after its last call of fn; the caller resets done
 * only when starting the next job, after this one's J increments, so no
 * increment is ever counted for the wrong job.
 *
 * Sleeping without lost wake-ups (both sides are Dekker pairs, all seq_cst):
 *   worker:  sleepers += 1; if (seq == seen && !stop) futex_wait(&seq, seen);
 *            sleepers -= 1
 *   caller:  seq = g; if (sleepers > 0) futex_wake(&seq)
 * If the caller reads sleepers == 0, the worker's increment comes later in
 * the single total order, so its read of seq (and the kernel's compare in
 * futex_wait) sees g and it does not sleep. Otherwise the wake reaches it
 * either asleep or, if it is not yet asleep, futex_wait finds seq != seen
 * and returns at once. The same pattern covers the caller sleeping on done
 * (caller_waiting, then done re-read; a worker adds to done, then reads
 * caller_waiting and wakes). A wake meant for an older job or a spurious
 * return only makes a waiter re-check its condition. mp_pool_run and
 * mp_pool_free wake every sleeper; mp_pool_for wakes only enough to have
 * n_wake workers awake, and a worker left asleep simply misses that job,
 * which shared work allows. */
#define MP_POOL_CLOSED (UINT64_C(1) << 31)
#define MP_POOL_JOINED UINT64_C(0xffff)

struct mp_pool {
    int n;      /* threads, the caller included */
    int n_wake; /* workers an mp_pool_for job wants awake: the other CPUs we may run on */
    pthread_t *threads;
    uint32_t job; /* last job number published; the caller's alone */

    /* The job, written by the caller before it publishes the job, read by
     * workers only after they joined it. */
    bool all; /* mp_pool_run */
    mp_pool_fn fn;
    mp_pool_range_fn rfn;
    void *ctx;
    long n_units, chunk;

    _Alignas(64) _Atomic long next;     /* next unit of an mp_pool_for job */
    _Alignas(64) _Atomic uint64_t state;
    _Atomic uint32_t seq;               /* futex word: the job number workers wait on */
    _Atomic int sleepers;               /* workers asleep or about to be on seq */
    _Atomic int stop;
    _Alignas(64) _Atomic uint32_t done; /* futex word: workers that finished the job */
    _Atomic int caller_waiting;
};

typedef struct {
    mp_pool *pool;
    int ith;
} worker_arg;

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits while *w == v, for at most MP_POOL_YIELD_NS; true when *w changed. */
static bool wait_briefly(_Atomic uint32_t *w, uint32_t v)
{
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        if (atomic_load_explicit(w, memory_order_acquire) != v) return true;
        if (i % 16 != 15) {
            cpu_relax();
            continue;
        }
        const uint64_t t = mp_time_ns();
        if (!t0) t0 = t;
        if (t - t0 >= MP_POOL_YIELD_NS) return false;
        if (t - t0 >= MP_POOL_SPIN_NS) sched_yield();
    }
}

/* Takes units until none are left. */
static void take_units(mp_pool *pool, int ith)
{
    const long n = pool->n_units, chunk = pool->chunk;
    for (;;) {
        const long lo = atomic_fetch_add_explicit(&pool->next, chunk, memory_order_relaxed);
        if (lo >= n) return;
        pool->rfn(pool->ctx, ith, lo, n - lo < chunk ? n : lo + chunk);
    }
}

static void *worker_main(void *p)
{
    const worker_arg wa = *(worker_arg *)p;
    free(p);
    mp_pool *pool = wa.pool;
    uint32_t seen = 0;
    for (;;) {
        /* wait for a job number other than the last one seen */
        while (atomic_load(&pool->seq) == seen && !atomic_load(&pool->stop)) {
            if (wait_briefly(&pool->seq, seen)) break;
            atomic_fetch_add(&pool->sleepers, 1);
            if (atomic_load(&pool->seq) == seen && !atomic_load(&pool->stop)) futex_wait(&pool->seq, seen);
            atomic_fetch_sub(&pool->sleepers, 1);
        }
        if (atomic_load(&pool->stop)) return NULL;
        /* state holds job g or a later one (it is stored before seq): join
         * only g, so that `seen` never runs ahead of seq */
        const uint32_t g = atomic_load(&pool->seq);
        seen = g;
        uint64_t s = atomic_load_explicit(&pool->state, memory_order_acquire);
        bool joined = false;
        while ((uint32_t)(s >> 32) == g && !(s & MP_POOL_CLOSED))
            if (atomic_compare_exchange_weak_explicit(&pool->state, &s, s + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = true;
                break;
            }
        if (!joined) continue;
        if (pool->all) pool->fn(pool->ctx, wa.ith, pool->n);
        else take_units(pool, wa.ith);
        atomic_fetch_add(&pool->done, 1);
        if (atomic_load(&pool->caller_waiting)) futex_wake(&pool->done, 1);
    }
}

mp_pool *mp_pool_create(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MP_POOL_MAX_THREADS) n_threads = MP_POOL_MAX_THREADS;
    mp_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n = 1; /* the threads that exist, for mp_pool_free on failure */
    cpu_set_t set;
    int ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    pool->n_wake = ncpu > 1 ? ncpu - 1 : 1;
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
        if (!pool->threads) goto err;
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) goto err;
            wa->pool = pool;
            wa->ith = i;
            if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
                free(wa);
                goto err;
            }
            pool->n = i + 1;
        }
    }
    return pool;
err:
    mp_pool_free(pool);
    return NULL;
}

void mp_pool_free(mp_pool *pool)
{
    if (!pool) return;
    atomic_store(&pool->stop, 1);
    atomic_fetch_add(&pool->seq, 1); /* a sleeper's futex_wait returns even if it has not slept yet */
    futex_wake(&pool->seq, INT_MAX);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    free(pool);
}

/* Publishes the job whose fields are set and wakes sleepers until `awake`
 * workers are awake (INT_MAX: all). Those counted awake but about to sleep
 * see the new seq and stay up (the protocol above). */
static void publish(mp_pool *pool, int awake)
{
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    if (++pool->job == 0) pool->job = 1; /* 0 is what a new worker has "seen" */
    const uint32_t g = pool->job;
    atomic_store_explicit(&pool->state, (uint64_t)g << 32, memory_order_release);
    atomic_store(&pool->seq, g);
    const int sleepers = atomic_load(&pool->sleepers);
    if (sleepers <= 0) return;
    if (awake == INT_MAX) {
        futex_wake(&pool->seq, INT_MAX);
        return;
    }
    const int wake = awake - (pool->n - 1 - sleepers);
    if (wake > 0) futex_wake(&pool->seq, wake);
}

/* Waits until `want` workers have finished the job. */
static void wait_done(mp_pool *pool, uint32_t want)
{
    for (;;) {
        const uint32_t d = atomic_load_explicit(&pool->done, memory_order_acquire);
        if (d == want) return;
        if (wait_briefly(&pool->done, d)) continue;
        atomic_store(&pool->caller_waiting, 1);
        if (atomic_load(&pool->done) == d) futex_wait(&pool->done, d);
        atomic_store(&pool->caller_waiting, 0);
    }
}

void mp_pool_for(mp_pool *pool, long n, long chunk, mp_pool_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (pool->n == 1 || n <= chunk) {
        fn(ctx, 0, 0, n);
        return;
    }
    pool->all = false;
    pool->rfn = fn;
    pool->ctx = ctx;
    pool->n_units = n;
    pool->chunk = chunk;
    /* more workers awake than there are pieces, or than other CPUs, would
     * only take turns on the cores the rest need (a worker stays awake while
     * jobs come faster than its spin, so waking one more per job would soon
     * have every worker of an oversized pool spinning) */
    const long pieces = (n + chunk - 1) / chunk;
    publish(pool, pieces - 1 < pool->n_wake ? (int)(pieces - 1) : pool->n_wake);
    take_units(pool, 0);
    const uint64_t s = atomic_fetch_or(&pool->state, MP_POOL_CLOSED);
    wait_done(pool, (uint32_t)(s & MP_POOL_JOINED));
}

void mp_pool_run(mp_pool *pool, mp_pool_fn fn, void *ctx)
{
    if (pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->all = true;
    pool->fn = fn;
    pool->ctx = ctx;
    publish(pool, INT_MAX);
    fn(ctx, 0, pool->n);
    wait_done(pool, (uint32_t)pool->n - 1);
}
