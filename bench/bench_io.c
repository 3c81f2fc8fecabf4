/* Random-read throughput of the I/O backends (src/io) on one file: blocks
 * of B MiB at random 4 KiB-aligned offsets, QD reads kept in flight, for
 * each backend and queue depth. Compare with
 *   fio --name=r --filename=F --direct=1 --ioengine=io_uring --rw=randread \
 *       --bs=9M --iodepth=8 --size=2G --runtime=10
 *
 * usage: bench_io FILE [-b MiB] [-t seconds] [-q 1,2,4,...] [-k io_uring,pread]
 *                      [--buffered] [--no-fixed] [--no-hugepages]
 * FILE should be much larger than the page cache would hold, or read with
 * O_DIRECT (the default), for the numbers to mean disk speed. */
#define _GNU_SOURCE
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x1234567;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int run(mp_io_kind kind, const char *path, uint64_t block, unsigned qd, double secs,
               bool buffered, bool fixed, bool huge)
{
    mp_io_opts o = { .depth = qd, .n_threads = qd, .buffered = buffered };
    mp_io *io = NULL;
    mp_err err;
    mp_err_clear(&err);
    char note[512];
    if (mp_io_open(kind, path, &o, &io, note, sizeof note, &err) < 0) {
        fprintf(stderr, "bench_io: %s\n", err.msg);
        return 1;
    }
    if (note[0]) fprintf(stderr, "bench_io: %s\n", note);
    size_t a = mp_io_align(io);
    uint64_t fsize = mp_io_file_size(io);
    if (fsize < block + a) {
        fprintf(stderr, "bench_io: %s is smaller than one block\n", path);
        mp_io_free(io);
        return 1;
    }
    char *slab = NULL;
    if (posix_memalign((void **)&slab, 2u << 20, (size_t)block * qd)) abort();
    /* like the expert cache's slab: 2 MiB pages mean far fewer DMA segments */
    if (huge) madvise(slab, (size_t)block * qd, MADV_HUGEPAGE);
    memset(slab, 0, (size_t)block * qd);
    bool reg = false;
    if (fixed && block <= (1u << 30)) {
        struct iovec *iov = malloc(qd * sizeof *iov);
        for (unsigned i = 0; i < qd; i++) iov[i] = (struct iovec){ slab + i * block, block };
        reg = mp_io_register_buffers(io, iov, qd, NULL) == MP_OK && mp_io_has_fixed_buffers(io);
        free(iov);
    }
    uint64_t span = (fsize - block) / a;
    mp_io_req r;
    for (unsigned i = 0; i < qd; i++) {
        r = (mp_io_req){ slab + i * block, (rnd() % span) * a, block, i, 0 };
        mp_io_submit(io, &r, 1, &err);
    }
    double t0 = now_s(), t;
    uint64_t bytes = 0, n = 0;
    int rc = 0;
    mp_io_done d[64];
    while ((t = now_s()) - t0 < secs) {
        int k = mp_io_reap(io, d, 64, true, &err);
        if (k <= 0) {
            fprintf(stderr, "bench_io: reap: %d %s\n", k, err.msg);
            rc = 1;
            break;
        }
        for (int j = 0; j < k; j++) {
            if (d[j].res < 0) {
                fprintf(stderr, "bench_io: read failed: %s\n", strerror((int)-d[j].res));
                rc = 1;
            }
            bytes += block;
            n++;
            r = (mp_io_req){ slab + d[j].user * block, (rnd() % span) * a, block, d[j].user, 0 };
            mp_io_submit(io, &r, 1, &err);
        }
    }
    double el = now_s() - t0;
    char what[64];
    snprintf(what, sizeof what, "%s %s%s%s", mp_io_name(io),
             mp_io_is_direct(io) ? "direct" : "buffered", reg ? "+fixed" : "", huge ? "+thp" : "");
    printf("%-24s QD %2u  %5.1f MiB blocks: %7.3f GB/s  %7.1f reads/s\n", what, qd,
           block / 1048576.0, bytes / el / 1e9, n / el);
    mp_io_free(io); /* drains the reads still in flight */
    free(slab);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *qds = "1,2,4,8,16,32", *kinds = "io_uring,pread";
    double mib = 9, secs = 3;
    bool buffered = false, fixed = true, huge = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) mib = atof(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "-q") && i + 1 < argc) qds = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) kinds = argv[++i];
        else if (!strcmp(argv[i], "--buffered")) buffered = true;
        else if (!strcmp(argv[i], "--no-fixed")) fixed = false;
        else if (!strcmp(argv[i], "--no-hugepages")) huge = false;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "usage: bench_io FILE [-b MiB] [-t seconds] [-q 1,2,4] "
                            "[-k io_uring,pread] [--buffered] [--no-fixed] [--no-hugepages]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "bench_io: no file given\n");
        return 2;
    }
    uint64_t block = ((uint64_t)(mib * 1048576.0) + 4095) & ~4095ull;
    int rc = 0;
    char kbuf[64];
    snprintf(kbuf, sizeof kbuf, "%s", kinds);
    for (char *sk = NULL, *k = strtok_r(kbuf, ",", &sk); k; k = strtok_r(NULL, ",", &sk)) {
        mp_io_kind kind;
        if (mp_io_kind_parse(k, &kind) < 0) {
            fprintf(stderr, "bench_io: unknown backend %s\n", k);
            return 2;
        }
        char qbuf[128];
        snprintf(qbuf, sizeof qbuf, "%s", qds);
        for (char *sq = NULL, *q = strtok_r(qbuf, ",", &sq); q; q = strtok_r(NULL, ",", &sq))
            rc |= run(kind, path, block, (unsigned)atoi(q), secs, buffered, fixed, huge);
    }
    return rc;
}
