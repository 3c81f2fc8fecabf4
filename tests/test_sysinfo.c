/* sysinfo: RSS figures track a touched allocation, the clock moves
 * forward, the CPU count is sane, MemAvailable is read, and dropping a
 * file's cache works on a file and reports bad fds and missing paths. */
#include "mp_test.h"
#include "common/sysinfo.h"
#include "moepager/status.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    uint64_t rss0 = mp_rss_bytes(), peak0 = mp_peak_rss_bytes();
    if (rss0 == 0)
        MP_TEST_SKIP("/proc/self/status has no VmRSS");
    CHECK(peak0 >= rss0);

    /* touching 64 MiB raises RSS and the peak by about that much */
    const size_t big = 64u << 20;
    char *p = malloc(big);
    CHECK(p);
    if (p) {
        memset(p, 1, big);
        uint64_t rss1 = mp_rss_bytes(), peak1 = mp_peak_rss_bytes();
        CHECKF(rss1 >= rss0 + big / 2, "rss %llu -> %llu", (unsigned long long)rss0,
               (unsigned long long)rss1);
        CHECK(peak1 >= rss1 && peak1 >= peak0);
        free(p);
        /* the peak keeps the high level after the memory is returned
         * (not exactly: the kernel's RSS counters are per-CPU and
         * approximate, so peak1 itself may have been a little high) */
        uint64_t peak2 = mp_peak_rss_bytes();
        CHECKF(peak2 >= rss0 + big / 2, "peak %llu -> %llu -> %llu",
               (unsigned long long)peak0, (unsigned long long)peak1, (unsigned long long)peak2);
    }

    double t0 = mp_time_s();
    usleep(2000);
    double t1 = mp_time_s();
    CHECKF(t1 - t0 >= 0.001 && t1 - t0 < 60.0, "clock step %f", t1 - t0);

    int n = mp_n_cpus();
    long onl = sysconf(_SC_NPROCESSORS_ONLN);
    CHECKF(n >= 1 && (onl <= 0 || n <= onl), "n_cpus %d online %ld", n, onl);

    uint64_t avail = mp_mem_available_bytes();
    CHECKF(avail > (1u << 20), "MemAvailable %llu", (unsigned long long)avail);

    /* drop cache: a real file, a bad fd, a pipe, a missing path */
    char path[] = "/tmp/mp_test_sysinfo_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char buf[8192];
        memset(buf, 7, sizeof(buf));
        CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
        CHECK(mp_drop_file_cache(fd) == MP_OK);
        CHECK(mp_drop_path_cache(path) == MP_OK);
        close(fd);
        unlink(path);
        CHECK(mp_drop_path_cache(path) == MP_E_NOTFOUND);
    }
    CHECK(mp_drop_file_cache(-1) == MP_E_INVAL);
    int pfd[2];
    if (pipe(pfd) == 0) {
        CHECK(mp_drop_file_cache(pfd[0]) == MP_E_INVAL);
        close(pfd[0]);
        close(pfd[1]);
    }
    CHECK(mp_drop_path_cache(NULL) == MP_E_INVAL);
    MP_TEST_DONE();
}
