/* Process and machine facts for the memory planner, statistics and
 * benchmarks: resident set sizes, a monotonic clock, usable CPUs, free
 * memory and cgroup memory limits, and dropping a file's pages from the
 * page cache (for cold-cache benchmarks). Linux only (reads /proc, /sys). */
#ifndef MP_SYSINFO_H
#define MP_SYSINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Peak resident set size of this process in bytes (VmHWM in
 * /proc/self/status); 0 if it cannot be read. */
uint64_t mp_peak_rss_bytes(void);

/* Current resident set size in bytes (VmRSS); 0 if it cannot be read. */
uint64_t mp_rss_bytes(void);

/* Seconds on CLOCK_MONOTONIC: only differences are meaningful; never goes
 * backwards. */
double mp_time_s(void);
/* The same clock in nanoseconds. */
uint64_t mp_time_ns(void);

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

/* ---- What the machine lets this process use (the planner's default budget) ----
 *
 * The parsers below take a file's text (NUL-terminated) so that tests can
 * feed them any content; mp_mem_allowance_read does the reading. */

/* The value of the "<key>:   <n> kB" line of a /proc text (/proc/meminfo,
 * /proc/self/status) in bytes (n * 1024); 0 when the key is missing or has
 * no number, UINT64_MAX would overflow: saturates instead. */
uint64_t mp_parse_proc_kb(const char *text, const char *key);

/* Where this process's memory cgroup is, from /proc/self/cgroup
 * ("ID:controllers:path" lines). v1_path: the path of the v1 hierarchy whose
 * controller list holds "memory" ("" if none); v2_path: the path of the
 * unified hierarchy's "0::" line ("" if none). Paths longer than the
 * buffers are left empty (treated as unknown). Returns MP_OK when either
 * was found, MP_E_NOTFOUND otherwise. */
int mp_parse_proc_cgroup(const char *text, char *v1_path, size_t v1_cap, char *v2_path, size_t v2_cap);

/* Finds a cgroup mount in /proc/self/mountinfo: v2 false looks for a "cgroup"
 * (v1) mount with "memory" among its super options, v2 true for a "cgroup2"
 * mount. Of several, the one whose root (field 4) is the longest prefix of
 * cg_path, else the first. Octal escapes (\040 for a space) are decoded.
 * Writes the mount point and root; returns MP_OK or MP_E_NOTFOUND. */
int mp_parse_mountinfo_cgroup(const char *text, bool v2, const char *cg_path, char *mnt, size_t mnt_cap, char *root,
                              size_t root_cap);

/* A cgroup memory limit file (v1 memory.limit_in_bytes, v2 memory.max or
 * memory.high): "<bytes>\n" or "max\n". *limit = bytes, or 0 for no limit:
 * "max", 0, and values of MP_CGROUP_UNLIMITED_MIN or more (v1 writes
 * "unlimited" as the largest page multiple below 2^63). Returns MP_OK, or
 * MP_E_INVAL (leaving *limit alone) for anything else. */
#define MP_CGROUP_UNLIMITED_MIN (1ull << 62)
int mp_parse_cgroup_limit(const char *text, uint64_t *limit);

typedef struct mp_mem_allowance {
    uint64_t mem_available; /* MemAvailable of /proc/meminfo; 0: unknown */
    uint64_t cgroup_limit;  /* smallest memory limit of this process's cgroup and its ancestors
                             * (v1 memory.limit_in_bytes; v2 memory.max and memory.high, since
                             * above high the kernel throttles the cgroup into reclaim); 0: none */
    uint64_t allowed;       /* the smaller of the two that are known; 0: neither is */
} mp_mem_allowance;

/* Reads what this machine lets the process use. root prefixes every path
 * read ("" or NULL: the real /proc and /sys; tests pass a directory holding
 * proc/meminfo, proc/self/cgroup, proc/self/mountinfo and the cgroup files
 * under the mount points mountinfo names). The cgroup's limit, not its
 * usage: usage counts page cache the kernel reclaims for us, and this
 * process's own memory, both already inside the plan; other processes in
 * the cgroup are left to the planner's margin. Never fails: what cannot be
 * read is 0 (unknown). */
void mp_mem_allowance_read(const char *root, mp_mem_allowance *a);

#endif
