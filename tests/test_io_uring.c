/* I/O through the io_uring backend (src/io): the same cases as
 * test_io_pread.c (shared, helpers/io_cases.h) on io_uring, plus fixed
 * buffers. The failure cases matter most here: a partial submit leaves
 * reads really in the kernel and SQEs in the ring, and the teardown must
 * cancel and drain them before mp_io_free says the buffers are free (a
 * canary checks that nothing writes them afterwards). Exits 77 when the
 * kernel refuses io_uring. */
#include "helpers/io_cases.h"

static void test_fixed_buffers(const char *path, int ref_fd)
{
    char note[256];
    mp_io *io = open_io(MP_IO_URING, path, 8, NULL, note, sizeof note);
    if (!io) return;
    size_t a = mp_io_align(io), sz = 64 * a;
    uint8_t *slab;
    if (posix_memalign((void **)&slab, a, sz)) abort();
    struct iovec iov[2] = { { slab, sz / 2 }, { slab + sz / 2, sz / 2 } };
    mp_err err;
    mp_err_clear(&err);
    int rc = mp_io_register_buffers(io, iov, 2, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    CHECK(mp_io_has_fixed_buffers(io) == (rc == MP_OK));
    /* Reads inside each buffer, and one spanning both (a plain read). */
    mp_io_req req[3] = {
        { slab, 3 * a, 8 * a, 0, 0 },
        { slab + sz / 2 + 8 * a, 100 * a, 16 * a, 1, 0 },
        { slab + sz / 2 - 4 * a, 7 * a, 8 * a, 2, 0 },
    };
    CHECK(mp_io_submit(io, req, 3, &err) == MP_OK);
    int got = 0;
    while (got < 3) {
        mp_io_done d[3];
        int k = mp_io_reap(io, d, 3, true, &err);
        CHECK(k > 0);
        if (k <= 0) break;
        for (int j = 0; j < k; j++) CHECK(d[j].res == (int64_t)req[d[j].user].len);
        got += k;
    }
    uint8_t *ref = malloc(16 * a);
    for (int i = 0; i < 3; i++) {
        CHECK(pread(ref_fd, ref, req[i].len, (off_t)req[i].offset) == (ssize_t)req[i].len);
        CHECK(memcmp(req[i].buf, ref, req[i].len) == 0);
    }
    mp_io_free(io);
    free(ref);
    free(slab);
}

/* A partial submit into registered (fixed) buffers: the reads in the
 * kernel use read_fixed; the teardown still drains them. */
static void test_fixed_submit_fail(const char *path)
{
    mp_io *io = open_io_t(MP_IO_URING, path, 8, "submit_fail", 500);
    if (!io) return;
    enum { N = 4 };
    size_t a = mp_io_align(io);
    uint8_t *slab;
    if (posix_memalign((void **)&slab, a, (size_t)N * BIG)) abort();
    struct iovec iov = { slab, (size_t)N * BIG };
    mp_err err;
    mp_err_clear(&err);
    CHECKF(mp_io_register_buffers(io, &iov, 1, &err) == MP_OK, "%s", err.msg);
    mp_io_req req[N];
    for (int i = 0; i < N; i++) req[i] = (mp_io_req){ slab + (size_t)i * BIG, (uint64_t)i * BIG, BIG, i, 0 };
    CHECK(mp_io_submit(io, req, N, &err) == MP_E_IO);
    CHECK(mp_io_free(io));
    memset(slab, 0xC5, (size_t)N * BIG);
    struct timespec ts = { 0, 100 * 1000000 };
    nanosleep(&ts, NULL);
    uint64_t bad = 0;
    for (size_t k = 0; k < (size_t)N * BIG; k++) bad += slab[k] != 0xC5;
    CHECKF(bad == 0, "%llu bytes of fixed buffers written after mp_io_free", (unsigned long long)bad);
    free(slab);
}

int main(void)
{
    alarm(120); /* a hang fails the test instead of stalling ctest */
    char path[4096];
    snprintf(path, sizeof path, "%s/test_io_uring.%d.bin", mp_test_build_dir(), (int)getpid());
    if (make_file(path, FILE_SIZE) < 0) MP_TEST_SKIP("cannot write %s", path);
    int ref_fd = open(path, O_RDONLY);
    CHECK(ref_fd >= 0);

    char note[512];
    mp_io *io = NULL;
    mp_err err;
    mp_err_clear(&err);
    int urc = mp_io_open(MP_IO_URING, path, NULL, &io, note, sizeof note, &err);
    if (urc != MP_OK) {
        close(ref_fd);
        unlink(path);
        if (urc != MP_E_UNSUPPORTED) MP_TEST_SKIP("cannot open %s: %s", path, err.msg);
        MP_TEST_SKIP("%s (test_io_pread covers the pread backend)", err.msg);
    }
    CHECK(!strcmp(mp_io_name(io), "io_uring"));
    mp_io_free(io);

    test_backend(MP_IO_URING, path, ref_fd);
    test_priority(MP_IO_URING, path);
    test_low_beside_high(MP_IO_URING, path);
    test_low_past_eof(MP_IO_URING, path);
    test_fixed_buffers(path, ref_fd);
    test_failures(MP_IO_URING, path, ref_fd);
    test_fixed_submit_fail(path);

    /* auto picks io_uring here, with no note */
    io = open_io(MP_IO_AUTO, path, 4, NULL, note, sizeof note);
    CHECK(io && !strcmp(mp_io_name(io), "io_uring") && note[0] == '\0');
    mp_io_free(io);
    /* O_DIRECT refused: buffered io_uring reads, same contract */
    int64_t e;
    io = open_io(MP_IO_URING, path, 4, "refuse_direct", note, sizeof note);
    CHECK(io && !mp_io_is_direct(io) && strstr(note, "O_DIRECT"));
    CHECK(io && read_ranges(io, ref_fd, 16, 50000, &e) == 0);
    mp_io_free(io);
    test_submit_failure(MP_IO_URING, path, "refuse_direct,submit_fail", 1);
    test_bad_specs(path);

    close(ref_fd);
    unlink(path);
    MP_TEST_DONE();
}
