/* The expert cache over the pread backend: every shared case
 * (helpers/cache_cases.h) plus the fallbacks that end on pread (io_uring
 * unavailable under auto; O_DIRECT refused; tmpfs). Needs no io_uring, so
 * it runs where the kernel refuses it; test_cache_uring.c is the other
 * half. */
#include "helpers/cache_cases.h"

int main(void)
{
    alarm(300); /* a hang fails the test instead of stalling ctest */
    setup("test_cache_pread");
    test_slot_size();
    run_all(MP_IO_PREAD);
    /* auto without io_uring: pread, announced; failures still named */
    test_stress(MP_IO_AUTO, g_path, "no_uring,refuse_direct,short=0.3", 200);
    test_submit_failure(MP_IO_AUTO, "no_uring,submit_fail", false);
    test_stress(MP_IO_PREAD, g_path, "refuse_direct", 200);
    test_tmpfs(MP_IO_PREAD, "test_cache_pread");
    mp_fixture_free(&fx);
    MP_TEST_DONE();
}
