/* The thread pool: every unit of an mp_pool_for job runs exactly once, on
 * distinct ith at any moment, for many (n, chunk, threads) and thousands of
 * back-to-back jobs; mp_pool_run calls every ith once; more threads than
 * cores finish quickly; create/free with no job; a pool of one runs inline;
 * workers that fell asleep wake for the next job. */
#define _GNU_SOURCE
#include "common/threadpool.h"
#include "mp_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_N 5000
#define MAX_T 32

typedef struct {
    long n, chunk;
    int nth;
    _Atomic int count[MAX_N];    /* how often each unit ran */
    _Atomic int busy[MAX_T];     /* calls running now, per ith */
    _Atomic int bad_ith, bad_range, overlap;
    pthread_t caller;
    _Atomic int caller_ith0; /* calls on the caller thread with ith != 0, or off it with ith 0 */
    long spin;               /* busy work per unit, to let threads interleave */
} for_job;

static void for_fn(void *ctx, int ith, long lo, long hi)
{
    for_job *j = ctx;
    if (ith < 0 || ith >= j->nth) {
        atomic_fetch_add(&j->bad_ith, 1);
        return;
    }
    if (atomic_fetch_add(&j->busy[ith], 1) != 0) atomic_fetch_add(&j->overlap, 1);
    if ((ith == 0) != (pthread_equal(pthread_self(), j->caller) != 0)) atomic_fetch_add(&j->caller_ith0, 1);
    if (lo < 0 || hi > j->n || lo >= hi || (j->nth > 1 && hi - lo > j->chunk)) atomic_fetch_add(&j->bad_range, 1);
    for (long i = lo; i < hi && i >= 0 && i < j->n; i++) {
        volatile long x = 0;
        for (long k = 0; k < j->spin; k++) x += k;
        atomic_fetch_add_explicit(&j->count[i], 1, memory_order_relaxed);
    }
    atomic_fetch_sub(&j->busy[ith], 1);
}

/* Runs one job on pool (of nth threads) and checks it; returns failures. */
static int check_for(mp_pool *pool, int nth, long n, long chunk, long spin, for_job *j)
{
    memset(j, 0, sizeof *j);
    j->n = n;
    j->chunk = chunk;
    j->nth = nth;
    j->spin = spin;
    j->caller = pthread_self();
    mp_pool_for(pool, n, chunk, for_fn, j);
    int bad = 0;
    for (long i = 0; i < n; i++)
        if (atomic_load(&j->count[i]) != 1) {
            if (!bad)
                fprintf(stderr, "n %ld chunk %ld threads %d: unit %ld ran %d times\n", n, chunk, nth, i,
                        atomic_load(&j->count[i]));
            bad++;
        }
    if (j->bad_ith || j->bad_range || j->overlap || j->caller_ith0) {
        fprintf(stderr, "n %ld chunk %ld threads %d: bad ith %d, bad range %d, ith overlap %d, caller ith %d\n", n,
                chunk, nth, j->bad_ith, j->bad_range, j->overlap, j->caller_ith0);
        bad++;
    }
    return bad;
}

typedef struct {
    int nth;
    _Atomic int calls[MAX_T];
    _Atomic int bad;
} run_job;

static void run_fn(void *ctx, int ith, int nth)
{
    run_job *j = ctx;
    if (nth != j->nth || ith < 0 || ith >= nth) {
        atomic_fetch_add(&j->bad, 1);
        return;
    }
    atomic_fetch_add(&j->calls[ith], 1);
}

static int check_run(mp_pool *pool, int nth)
{
    run_job j;
    memset(&j, 0, sizeof j);
    j.nth = nth;
    mp_pool_run(pool, run_fn, &j);
    int bad = j.bad;
    for (int i = 0; i < nth; i++) bad += j.calls[i] != 1;
    if (bad) fprintf(stderr, "mp_pool_run with %d threads: %d bad calls\n", nth, bad);
    return bad;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static for_job job; /* large: static */

int main(void)
{
    /* create and free with no job, many times (threads must start and stop) */
    for (int nth = 1; nth <= 16; nth *= 2)
        for (int k = 0; k < 5; k++) {
            mp_pool *p = mp_pool_create(nth);
            CHECK(p != NULL);
            mp_pool_free(p);
        }
    mp_pool_free(NULL);

    /* a pool of one runs inline, in one call over the whole range */
    {
        mp_pool *p = mp_pool_create(1);
        CHECK(p != NULL);
        CHECK(check_for(p, 1, 1000, 7, 0, &job) == 0);
        CHECK(check_run(p, 1) == 0);
        mp_pool_for(p, 0, 1, for_fn, &job); /* nothing to do: fn not called */
        mp_pool_free(p);
    }

    /* many (threads, n, chunk) combinations, each job run back to back */
    const int threads[] = {2, 3, 4, 7, 16};
    const long ns[] = {1, 2, 3, 15, 16, 17, 100, 1023, MAX_N};
    const long chunks[] = {1, 2, 5, 64, 10000};
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
        const int nth = threads[ti];
        mp_pool *p = mp_pool_create(nth);
        CHECK(p != NULL);
        if (!p) continue;
        int bad = 0;
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++)
                for (int rep = 0; rep < 3; rep++) bad += check_for(p, nth, ns[ni], chunks[ci], rep == 2 ? 200 : 0, &job);
        /* mixing both kinds of job */
        for (int rep = 0; rep < 50; rep++) {
            bad += check_run(p, nth);
            bad += check_for(p, nth, 300, 3, 0, &job);
        }
        CHECKF(bad == 0, "%d threads: %d failures", nth, bad);
        mp_pool_free(p);
    }

    /* thousands of tiny back-to-back jobs (the forward pass's pattern), and
     * jobs after a pause long enough for every worker to fall asleep */
    {
        mp_pool *p = mp_pool_create(4);
        CHECK(p != NULL);
        int bad = 0;
        for (int rep = 0; rep < 20000 && p; rep++) bad += check_for(p, 4, 8 + rep % 50, 1 + rep % 4, 0, &job);
        for (int rep = 0; rep < 5 && p; rep++) {
            usleep(20000); /* 20 ms: well past the spin and yield phases */
            bad += check_for(p, 4, 1000, 10, 100, &job);
            bad += check_run(p, 4);
        }
        CHECKF(bad == 0, "back-to-back jobs: %d failures", bad);
        mp_pool_free(p);
    }

    /* 16 threads, far more than this machine's cores: 2000 jobs finish, each
     * unit once. The time is printed, not judged (tests never fail on
     * timing; bench/decode_repeat.sh with -t 16 measures the speed): the old
     * pool took about 17 s here, this one 0.01-0.13 s. */
    {
        cpu_set_t set;
        int ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
        mp_pool *p = mp_pool_create(16);
        CHECK(p != NULL);
        int bad = 0;
        double t0 = now_s();
        for (int rep = 0; rep < 2000 && p; rep++) bad += check_for(p, 16, 256, 4, 50, &job);
        double dt = now_s() - t0;
        CHECKF(bad == 0, "16 threads: %d failures", bad);
        fprintf(stderr, "16 threads on %d CPUs: 2000 jobs in %.3f s\n", ncpu, dt);
        mp_pool_free(p);
    }
    MP_TEST_DONE();
}
