/* Process and machine facts: see sysinfo.h. */
#define _GNU_SOURCE
#include "common/sysinfo.h"

#include "moepager/status.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads the "<key>:   <n> kB" line of a /proc file and returns n * 1024;
 * 0 if the file or key is missing. The files are a few KiB; 16 KiB on the
 * stack holds them whole. */
static uint64_t proc_kb_field(const char *path, const char *key)
{
    char buf[16384];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';

    size_t kl = strlen(key);
    for (const char *line = buf; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            const char *p = line + kl + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            uint64_t v = 0;
            while (*p >= '0' && *p <= '9')
                v = v * 10 + (uint64_t)(*p++ - '0');
            return v * 1024; /* the kernel always reports these in kB */
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
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
