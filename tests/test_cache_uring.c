/* The expert cache over io_uring: every shared case
 * (helpers/cache_cases.h) with fixed buffers (the slab registered), plus
 * what only io_uring has: fixed buffers refused (RLIMIT_MEMLOCK), auto
 * picking io_uring, buffered io_uring reads, tmpfs. Exits 77 when the
 * kernel refuses io_uring (test_cache_pread.c covers the rest). */
#include "helpers/cache_cases.h"

int main(void)
{
    alarm(300); /* a hang fails the test instead of stalling ctest */
    setup("test_cache_uring");
    mp_io *probe = NULL;
    mp_err err;
    mp_err_clear(&err);
    if (mp_io_open(MP_IO_URING, g_path, NULL, &probe, NULL, 0, &err) != MP_OK) {
        mp_fixture_free(&fx);
        MP_TEST_SKIP("%s (test_cache_pread covers the pread backend)", err.msg);
    }
    mp_io_free(probe);

    test_slot_size();
    run_all(MP_IO_URING);
    test_stress(MP_IO_URING, g_path, "no_fixed", 100);
    CHECKF(strstr(g_note, "cannot register") && strstr(g_note, "unregistered"), "note: %s", g_note);
    test_submit_failure(MP_IO_URING, "no_fixed,submit_fail", false);
    test_stress(MP_IO_AUTO, g_path, "refuse_direct", 200);
    test_submit_failure(MP_IO_URING, "refuse_direct,submit_zero", false);
    test_tmpfs(MP_IO_AUTO, "test_cache_uring");
    mp_fixture_free(&fx);
    MP_TEST_DONE();
}
