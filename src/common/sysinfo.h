/* Process and machine facts for the memory planner, statistics and
 * benchmarks: resident set sizes, a monotonic clock, usable CPUs, free
 * memory, and dropping a file's pages from the page cache (for cold-cache
 * benchmarks). Linux only (reads /proc). */
#ifndef MP_SYSINFO_H
#define MP_SYSINFO_H

#include <stdint.h>

/* Peak resident set size of this process in bytes (VmHWM in
 * /proc/self/status); 0 if it cannot be read. */
uint64_t mp_peak_rss_bytes(void);

/* Current resident set size in bytes (VmRSS); 0 if it cannot be read. */
uint64_t mp_rss_bytes(void);

/* Seconds on CLOCK_MONOTONIC: only differences are meaningful; never goes
 * backwards. */
double mp_time_s(void);

/* CPUs this thread may run on (sched_getaffinity), which already honours
 * taskset/cgroup cpusets; falls back to the online count. Always >= 1. */
int mp_n_cpus(void);

/* Asks the kernel to drop the page-cache pages of the whole file behind fd
 * (posix_fadvise POSIX_FADV_DONTNEED, offset 0, length 0 = to the end).
 * No fdatasync is done first, so dirty pages stay cached: call it on files
 * that are not being written. Advisory: MP_OK does not guarantee every page
 * left. Returns MP_OK, MP_E_INVAL (bad fd, a pipe) or MP_E_IO. */
int mp_drop_file_cache(int fd);

/* mp_drop_file_cache on a path opened read-only for the call. Returns
 * MP_OK, MP_E_NOTFOUND (no such file), MP_E_INVAL or MP_E_IO. */
int mp_drop_path_cache(const char *path);

/* MemAvailable from /proc/meminfo in bytes (the kernel's estimate of memory
 * that can be allocated without swapping); 0 if it cannot be read. */
uint64_t mp_mem_available_bytes(void);

#endif
