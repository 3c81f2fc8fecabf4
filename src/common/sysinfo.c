/* Process and machine facts: see sysinfo.h. */
#define _GNU_SOURCE
#include "common/sysinfo.h"

#include "moepager/status.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t mp_parse_proc_kb(const char *text, const char *key)
{
    const size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            const char *p = line + kl + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            uint64_t v = 0;
            while (*p >= '0' && *p <= '9') {
                uint64_t d = (uint64_t)(*p++ - '0');
                if (v > (UINT64_MAX / 1024 - d) / 10)
                    return UINT64_MAX; /* saturate: a garbage line must not wrap to a small figure */
                v = v * 10 + d;
            }
            return v * 1024; /* the kernel always reports these in kB */
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

/* Reads a small text file whole into buf[cap] (NUL-terminated); returns the
 * length, or -1 if it cannot be opened. Longer files are cut at cap - 1. */
static ssize_t read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The "<key>: <n> kB" field of a /proc file in bytes; 0 if the file or key
 * is missing. The files are a few KiB; 16 KiB on the stack holds them. */
static uint64_t proc_kb_field(const char *path, const char *key)
{
    char buf[16384];
    if (read_text(path, buf, sizeof buf) < 0)
        return 0;
    return mp_parse_proc_kb(buf, key);
}

uint64_t mp_peak_rss_bytes(void) { return proc_kb_field("/proc/self/status", "VmHWM"); }

uint64_t mp_rss_bytes(void) { return proc_kb_field("/proc/self/status", "VmRSS"); }

uint64_t mp_mem_available_bytes(void) { return proc_kb_field("/proc/meminfo", "MemAvailable"); }

double mp_time_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t mp_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mp_n_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    /* more than CPU_SETSIZE CPUs, or no affinity support */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int status_from_errno(int e)
{
    switch (e) {
    case 0:
        return MP_OK;
    case EBADF:
    case EINVAL:
    case ESPIPE:
        return MP_E_INVAL;
    case ENOENT:
    case ENOTDIR:
        return MP_E_NOTFOUND;
    default:
        return MP_E_IO;
    }
}

int mp_drop_file_cache(int fd)
{
    /* posix_fadvise returns the error number itself and leaves errno */
    return status_from_errno(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
}

int mp_drop_path_cache(const char *path)
{
    if (!path)
        return MP_E_INVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return status_from_errno(errno);
    int rc = mp_drop_file_cache(fd);
    close(fd);
    return rc;
}

/* ---- cgroup memory limits -------------------------------------------------- */

/* Copies [s, s + n) into dst[cap]; false (dst "") when it does not fit. */
static bool copy_span(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        if (cap) dst[0] = '\0';
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* True when the comma-separated list [s, s + n) holds the item word. */
static bool list_has(const char *s, size_t n, const char *word)
{
    const size_t wl = strlen(word);
    const char *end = s + n;
    while (s < end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        size_t il = c ? (size_t)(c - s) : (size_t)(end - s);
        if (il == wl && memcmp(s, word, wl) == 0) return true;
        s += il + 1;
    }
    return false;
}

int mp_parse_proc_cgroup(const char *text, char *v1_path, size_t v1_cap, char *v2_path, size_t v2_cap)
{
    if (v1_cap) v1_path[0] = '\0';
    if (v2_cap) v2_path[0] = '\0';
    bool found = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        /* "ID:controllers:path"; the path is the rest of the line (it may hold ':') */
        const char *c1 = memchr(line, ':', (size_t)(end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
        if (c2 && c1 > line && c2 + 1 < end && c2[1] == '/') {
            const char *path = c2 + 1;
            const size_t plen = (size_t)(end - path);
            const bool v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
            if (v2 && v2_cap && !v2_path[0]) found |= copy_span(v2_path, v2_cap, path, plen);
            else if (!v2 && v1_cap && !v1_path[0] && list_has(c1 + 1, (size_t)(c2 - c1 - 1), "memory"))
                found |= copy_span(v1_path, v1_cap, path, plen);
        }
        line = nl ? nl + 1 : NULL;
    }
    return found ? MP_OK : MP_E_NOTFOUND;
}

/* Copies the next space-separated field of mountinfo starting at *s into
 * dst[cap], decoding the kernel's octal escapes (\040 space, \011 tab,
 * \012 newline, \134 backslash); advances *s past it. false when there is
 * no field or it does not fit. */
static bool mountinfo_field(const char **s, const char *end, char *dst, size_t cap)
{
    const char *p = *s;
    while (p < end && *p == ' ') p++;
    if (p >= end) return false;
    size_t n = 0;
    bool ok = true;
    while (p < end && *p != ' ') {
        char c = *p++;
        if (c == '\\' && end - p >= 3 && p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' &&
            p[2] <= '7') {
            c = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
            p += 3;
        }
        if (n + 1 < cap) dst[n++] = c;
        else ok = false;
    }
    if (cap) dst[n < cap ? n : cap - 1] = '\0';
    *s = p;
    return ok && cap > 0;
}

/* Length of root (trailing "/" dropped) when it is "/" or a whole-component
 * prefix of path; SIZE_MAX when it is not. */
static size_t root_prefix_len(const char *root, const char *path)
{
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/') rl--; /* "/" -> "", "/a/" -> "/a" */
    if (strncmp(root, path, rl) != 0) return SIZE_MAX;
    if (path[rl] != '\0' && path[rl] != '/') return SIZE_MAX;
    return rl;
}

int mp_parse_mountinfo_cgroup(const char *text, bool v2, const char *cg_path, char *mnt, size_t mnt_cap, char *root,
                              size_t root_cap)
{
    char f_root[4096], f_mnt[4096], fs[64], opts[1024], skip[4096];
    size_t best = 0;
    bool found = false, best_prefix = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS" */
        const char *p = line;
        bool ok = mountinfo_field(&p, end, skip, sizeof skip) && mountinfo_field(&p, end, skip, sizeof skip) &&
                  mountinfo_field(&p, end, skip, sizeof skip) && mountinfo_field(&p, end, f_root, sizeof f_root) &&
                  mountinfo_field(&p, end, f_mnt, sizeof f_mnt);
        while (ok && (ok = mountinfo_field(&p, end, skip, sizeof skip)) && strcmp(skip, "-") != 0) {}
        ok = ok && mountinfo_field(&p, end, fs, sizeof fs) && mountinfo_field(&p, end, skip, sizeof skip) &&
             mountinfo_field(&p, end, opts, sizeof opts);
        if (ok && (v2 ? strcmp(fs, "cgroup2") == 0 : strcmp(fs, "cgroup") == 0 && list_has(opts, strlen(opts), "memory"))) {
            size_t pl = cg_path ? root_prefix_len(f_root, cg_path) : SIZE_MAX;
            bool is_prefix = pl != SIZE_MAX;
            /* the first match; then any whose root is a longer prefix of our path */
            if (!found || (is_prefix && (!best_prefix || pl > best))) {
                if (copy_span(mnt, mnt_cap, f_mnt, strlen(f_mnt)) && copy_span(root, root_cap, f_root, strlen(f_root))) {
                    found = true;
                    best_prefix = is_prefix;
                    best = is_prefix ? pl : 0;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return found ? MP_OK : MP_E_NOTFOUND;
}

int mp_parse_cgroup_limit(const char *text, uint64_t *limit)
{
    const char *p = text;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (n == 3 && memcmp(p, "max", 3) == 0) {
        *limit = 0;
        return MP_OK;
    }
    if (n == 0 || n > 20) return MP_E_INVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return MP_E_INVAL;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return MP_E_INVAL;
        v = v * 10 + d;
    }
    *limit = v >= MP_CGROUP_UNLIMITED_MIN ? 0 : v;
    return MP_OK;
}

/* Smallest limit in the files named under dir and each of its parents up to
 * and including top (a prefix of dir); 0 when none sets one. A child's
 * usage counts in every ancestor, so the tightest ancestor binds. */
static uint64_t walk_limits(char *dir, size_t top_len, const char *const *files, int n_files)
{
    uint64_t best = 0;
    char path[4200], text[64];
    for (;;) {
        for (int i = 0; i < n_files; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            uint64_t v;
            if (read_text(path, text, sizeof text) > 0 && mp_parse_cgroup_limit(text, &v) == MP_OK && v &&
                (!best || v < best))
                best = v;
        }
        size_t len = strlen(dir);
        if (len <= top_len) break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < top_len) break;
        *slash = '\0';
    }
    return best;
}

/* Limit of this process's cgroup under one hierarchy (v1 memory or v2). */
static uint64_t cgroup_limit(const char *root, const char *mountinfo, bool v2, const char *cg_path)
{
    char mnt[4096], mroot[4096], dir[4096];
    if (mp_parse_mountinfo_cgroup(mountinfo, v2, cg_path, mnt, sizeof mnt, mroot, sizeof mroot) != MP_OK) return 0;
    /* The mount shows the hierarchy from mroot down (a container sees its
     * own cgroup as the mount's top): our directory is mnt + the part of
     * cg_path below mroot. Where cg_path is not below mroot (a cgroup
     * namespace we cannot see past), the mount's top is the best we have. */
    size_t pl = root_prefix_len(mroot, cg_path);
    int n = snprintf(dir, sizeof dir, "%s%s%s", root, mnt, pl == SIZE_MAX ? "" : cg_path + pl);
    if (n < 0 || (size_t)n >= sizeof dir) return 0;
    size_t top = strlen(root) + strlen(mnt);
    while (strlen(dir) > top && dir[strlen(dir) - 1] == '/') dir[strlen(dir) - 1] = '\0';
    if (access(dir, F_OK) != 0) dir[top] = '\0';
    static const char *const v1_files[] = {"memory.limit_in_bytes"};
    static const char *const v2_files[] = {"memory.max", "memory.high"};
    return v2 ? walk_limits(dir, top, v2_files, 2) : walk_limits(dir, top, v1_files, 1);
}

void mp_mem_allowance_read(const char *root, mp_mem_allowance *a)
{
    memset(a, 0, sizeof *a);
    if (!root) root = "";
    char path[4200];
    snprintf(path, sizeof path, "%s/proc/meminfo", root);
    a->mem_available = proc_kb_field(path, "MemAvailable");

    char cg[4096], v1[2048], v2[2048];
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    if (read_text(path, cg, sizeof cg) > 0 && mp_parse_proc_cgroup(cg, v1, sizeof v1, v2, sizeof v2) == MP_OK) {
        /* mountinfo grows with the mounts (a container can have hundreds of
         * lines of ~150 bytes); 256 KiB holds any sane one */
        const size_t cap = 256u << 10;
        char *mi = malloc(cap);
        snprintf(path, sizeof path, "%s/proc/self/mountinfo", root);
        if (mi && read_text(path, mi, cap) > 0) {
            /* The memory controller sits in one hierarchy: v1 when
             * /proc/self/cgroup names it there (hybrid setups mount an
             * unified tree too, without memory), else the unified one. */
            if (v1[0]) a->cgroup_limit = cgroup_limit(root, mi, false, v1);
            else if (v2[0]) a->cgroup_limit = cgroup_limit(root, mi, true, v2);
        }
        free(mi);
    }
    a->allowed = a->mem_available;
    if (a->cgroup_limit && (!a->allowed || a->cgroup_limit < a->allowed)) a->allowed = a->cgroup_limit;
}
