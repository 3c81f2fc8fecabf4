/* I/O through the pread backend (src/io), with no io_uring needed, so it
 * runs where the kernel refuses io_uring: the right bytes at unaligned
 * ranges (checked against pread of the same file), zeros past the end of
 * the file, recovery from short reads, EAGAIN, EIO and delays; the failure
 * paths (a submit that fails part way or starts nothing, a stalled read:
 * bounded in time, the exact message, no write after mp_io_free);
 * the fallbacks (io_uring unavailable under auto, O_DIRECT refused, a
 * file on /dev/shm) and bad fault specs. The io_uring half is
 * test_io_uring.c; the cases are shared (helpers/io_cases.h). */
#include "helpers/io_cases.h"

int main(void)
{
    alarm(120); /* a hang fails the test instead of stalling ctest */
    char path[4096], shm[256];
    snprintf(path, sizeof path, "%s/test_io_pread.%d.bin", mp_test_build_dir(), (int)getpid());
    snprintf(shm, sizeof shm, "/dev/shm/mp_test_io_pread.%d.bin", (int)getpid());
    if (make_file(path, FILE_SIZE) < 0) MP_TEST_SKIP("cannot write %s", path);
    int ref_fd = open(path, O_RDONLY);
    CHECK(ref_fd >= 0);

    test_backend(MP_IO_PREAD, path, ref_fd);
    test_priority(MP_IO_PREAD, path);
    test_low_beside_high(MP_IO_PREAD, path);
    test_low_past_eof(MP_IO_PREAD, path);
    test_failures(MP_IO_PREAD, path, ref_fd);

    /* Fallback: io_uring unavailable -> pread with a note; asked for
     * io_uring explicitly -> MP_E_UNSUPPORTED. */
    char note[512];
    int64_t e;
    mp_err err;
    mp_io *io = open_io(MP_IO_AUTO, path, 4, "no_uring", note, sizeof note);
    CHECK(io && !strcmp(mp_io_name(io), "pread") && strstr(note, "io_uring unavailable"));
    CHECK(io && read_ranges(io, ref_fd, 8, 50000, &e) == 0);
    mp_io_free(io);
    io = NULL;
    mp_err_clear(&err);
    CHECK(mp_io_open(MP_IO_URING, path, &(mp_io_opts){ .fault_spec = "no_uring" }, &io, note,
                     sizeof note, &err) == MP_E_UNSUPPORTED && !io && err.msg[0]);
    /* ... and the failure modes still work through the fallback */
    test_submit_failure(MP_IO_AUTO, path, "no_uring,submit_fail", 1);

    /* Fallback: O_DIRECT refused -> buffered with a note, same contract. */
    io = open_io(MP_IO_PREAD, path, 4, "refuse_direct", note, sizeof note);
    CHECK(io && !mp_io_is_direct(io) && strstr(note, "O_DIRECT"));
    CHECK(io && read_ranges(io, ref_fd, 16, 50000, &e) == 0);
    mp_io_free(io);

    /* A file on tmpfs: O_DIRECT or, where refused, buffered. */
    if (make_file(shm, 1u << 20) == 0) {
        int shm_fd = open(shm, O_RDONLY);
        io = open_io(MP_IO_PREAD, shm, 4, NULL, note, sizeof note);
        if (io) {
            CHECK(mp_io_is_direct(io) || strstr(note, "O_DIRECT"));
            CHECK(read_ranges(io, shm_fd, 16, 100000, &e) == 0);
            mp_io_free(io);
        }
        close(shm_fd);
        unlink(shm);
    }

    /* Bad specs and a missing file are clear errors. */
    test_bad_specs(path);
    mp_err_clear(&err);
    CHECK(mp_io_open(MP_IO_PREAD, "/nonexistent/x", NULL, &io, NULL, 0, &err) == MP_E_IO &&
          strstr(err.msg, "/nonexistent/x"));

    close(ref_fd);
    unlink(path);
    MP_TEST_DONE();
}
