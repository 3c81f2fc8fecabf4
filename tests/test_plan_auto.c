/* The default budget (issue 9 item 7).
 *
 * 1. Parsers, fed text: /proc/meminfo fields, /proc/self/cgroup (v1, v2,
 *    hybrid, malformed), /proc/self/mountinfo (escapes, optional fields,
 *    several candidate mounts) and cgroup limit files ("max", v1's
 *    "unlimited" figure, garbage); random texts do not crash them.
 * 2. mp_mem_allowance_read on real files laid out in a temporary directory:
 *    a v1 tree where an ancestor's limit binds, a v2 tree where memory.high
 *    binds below memory.max and MemAvailable binds below both, a container
 *    view (mount root = our own cgroup), and an empty tree.
 * 3. mp_mem_allowance_read on this machine's /proc and /sys, checked
 *    against what the test reads itself.
 * 4. The planner's decision on generated models (mp-gen; exit 77 without
 *    it): the margin; fits -> mapped, no note; does not fit -> streamed
 *    with --mem = allowance less margin in whole MiB, the same plan as that
 *    explicit --mem, and a note naming the binding limit; too small for
 *    even the minimum cache -> mapped, with a note; no routed experts ->
 *    mapped, with a note; a budget option or no machine figure -> as before;
 *    a session refuses mmap together with a budget option. */
#include "mp_test.h"

#include "common/sysinfo.h"
#include "runtime/plan.h"
#include "runtime/session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* ---- 1. parsers ---------------------------------------------------------- */

static void test_parse_proc_kb(void)
{
    const char *mi = "MemTotal:       24684000 kB\n"
                     "MemFree:         4570000 kB\n"
                     "MemAvailable:   24089000 kB\n"
                     "Buffers:            1234 kB\n";
    CHECK(mp_parse_proc_kb(mi, "MemAvailable") == 24089000ull * 1024);
    CHECK(mp_parse_proc_kb(mi, "MemTotal") == 24684000ull * 1024);
    CHECK(mp_parse_proc_kb(mi, "Buffers") == 1234ull * 1024);
    CHECK(mp_parse_proc_kb(mi, "SwapTotal") == 0);
    CHECK(mp_parse_proc_kb(mi, "Mem") == 0);      /* a prefix of a key is not the key */
    CHECK(mp_parse_proc_kb(mi, "Available") == 0); /* nor is a suffix */
    CHECK(mp_parse_proc_kb("", "MemAvailable") == 0);
    CHECK(mp_parse_proc_kb("MemAvailable:\n", "MemAvailable") == 0);
    CHECK(mp_parse_proc_kb("MemAvailable: 12", "MemAvailable") == 12 * 1024); /* no newline at the end */
    CHECK(mp_parse_proc_kb("X: 1 kB\nMemAvailable:\t7 kB", "MemAvailable") == 7 * 1024);
    /* a number that would wrap saturates instead of reading as a small one */
    CHECK(mp_parse_proc_kb("MemAvailable: 99999999999999999999999 kB\n", "MemAvailable") == UINT64_MAX);
    CHECK(mp_parse_proc_kb("MemAvailable: 18014398509481983 kB\n", "MemAvailable") == 18014398509481983ull * 1024);
    CHECK(mp_parse_proc_kb("MemAvailable: 18014398509481984 kB\n", "MemAvailable") == UINT64_MAX);
}

static void test_parse_proc_cgroup(void)
{
    char v1[256], v2[256];
    /* this machine's kind: v1 with memory in its own hierarchy, plus an
     * unified tree without it */
    const char *hybrid = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ff22c01a\n3:cpuset:/\n"
                         "2:cpuacct:/\n1:cpu:/\n0::/\n";
    CHECK(mp_parse_proc_cgroup(hybrid, v1, sizeof v1, v2, sizeof v2) == MP_OK);
    CHECK(!strcmp(v1, "/process_api/ff22c01a"));
    CHECK(!strcmp(v2, "/"));
    /* controllers sharing a hierarchy; a name that only starts with memory */
    CHECK(mp_parse_proc_cgroup("5:blkio,memoryx:/no\n6:cpu,memory,blkio:/yes/x\n", v1, sizeof v1, v2, sizeof v2) ==
          MP_OK);
    CHECK(!strcmp(v1, "/yes/x") && v2[0] == '\0');
    /* pure v2; a path holding ':'; no newline at the end */
    CHECK(mp_parse_proc_cgroup("0::/user.slice/a:b.scope", v1, sizeof v1, v2, sizeof v2) == MP_OK);
    CHECK(v1[0] == '\0' && !strcmp(v2, "/user.slice/a:b.scope"));
    /* malformed lines are skipped, not misread */
    CHECK(mp_parse_proc_cgroup("garbage\n3:memory\n3:memory:\n:memory:/x\n3:memory:rel\n", v1, sizeof v1, v2,
                               sizeof v2) == MP_E_NOTFOUND);
    CHECK(v1[0] == '\0' && v2[0] == '\0');
    CHECK(mp_parse_proc_cgroup("", v1, sizeof v1, v2, sizeof v2) == MP_E_NOTFOUND);
    CHECK(mp_parse_proc_cgroup("12::/not-v2\n", v1, sizeof v1, v2, sizeof v2) == MP_E_NOTFOUND);
    /* a path that does not fit is unknown, not cut */
    char small[8];
    CHECK(mp_parse_proc_cgroup("4:memory:/a/very/long/path\n", small, sizeof small, v2, sizeof v2) == MP_E_NOTFOUND);
    CHECK(small[0] == '\0');
    /* the first memory line wins */
    CHECK(mp_parse_proc_cgroup("4:memory:/first\n7:memory:/second\n", v1, sizeof v1, v2, sizeof v2) == MP_OK);
    CHECK(!strcmp(v1, "/first"));
}

static void test_parse_mountinfo(void)
{
    char mnt[256], root[256];
    const char *mi =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 master:3 - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
    CHECK(mp_parse_mountinfo_cgroup(mi, false, "/a", mnt, sizeof mnt, root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/sys/fs/cgroup/memory") && !strcmp(root, "/"));
    CHECK(mp_parse_mountinfo_cgroup(mi, true, "/a", mnt, sizeof mnt, root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/sys/fs/cgroup/unified"));
    /* "memory" must be a v1 controller among the super options, not a word
     * inside another option, nor the mount options */
    const char *nomem = "32 31 0:29 / /c rw,memory - cgroup cgroup rw,memoryx\n"
                        "33 31 0:30 / /d rw - cgroup2 cgroup2 rw,memory_recursiveprot\n";
    CHECK(mp_parse_mountinfo_cgroup(nomem, false, "/a", mnt, sizeof mnt, root, sizeof root) == MP_E_NOTFOUND);
    /* escapes in the mount point */
    CHECK(mp_parse_mountinfo_cgroup("35 31 0:32 /x /mnt/my\\040cg\\134s rw - cgroup none rw,memory\n", false, "/x/y",
                                    mnt, sizeof mnt, root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/mnt/my cg\\s") && !strcmp(root, "/x"));
    /* two memory mounts: the one whose root is the longest whole-component
     * prefix of our path */
    const char *two = "1 0 0:1 /other /m1 rw - cgroup cgroup rw,memory\n"
                      "2 0 0:1 / /m2 rw - cgroup cgroup rw,memory\n"
                      "3 0 0:1 /docker/ab /m3 rw - cgroup cgroup rw,memory\n"
                      "4 0 0:1 /docker/abc /m4 rw - cgroup cgroup rw,memory\n";
    CHECK(mp_parse_mountinfo_cgroup(two, false, "/docker/abc/x", mnt, sizeof mnt, root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/m4") && !strcmp(root, "/docker/abc"));
    CHECK(mp_parse_mountinfo_cgroup(two, false, "/docker/abd", mnt, sizeof mnt, root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/m2")); /* "/docker/ab" is not a prefix of "/docker/abd" by components */
    /* none is a prefix: the first */
    CHECK(mp_parse_mountinfo_cgroup("1 0 0:1 /p /m1 rw - cgroup cgroup rw,memory\n", false, "/q", mnt, sizeof mnt,
                                    root, sizeof root) == MP_OK);
    CHECK(!strcmp(mnt, "/m1"));
    /* malformed: no separator, too few fields, empty */
    CHECK(mp_parse_mountinfo_cgroup("1 0 0:1 / /m rw cgroup cgroup rw,memory\n1 0 0:1 /\n", false, "/", mnt,
                                    sizeof mnt, root, sizeof root) == MP_E_NOTFOUND);
    CHECK(mp_parse_mountinfo_cgroup("", true, "/", mnt, sizeof mnt, root, sizeof root) == MP_E_NOTFOUND);
}

static void test_parse_limit(void)
{
    uint64_t v = 123;
    CHECK(mp_parse_cgroup_limit("8589934592\n", &v) == MP_OK && v == 8 * GiB);
    CHECK(mp_parse_cgroup_limit("67108864", &v) == MP_OK && v == 64 * MiB);
    CHECK(mp_parse_cgroup_limit("max\n", &v) == MP_OK && v == 0);
    v = 1;
    CHECK(mp_parse_cgroup_limit("9223372036854771712\n", &v) == MP_OK && v == 0); /* v1 "unlimited", 4 KiB pages */
    v = 1;
    CHECK(mp_parse_cgroup_limit("9223372036854710272\n", &v) == MP_OK && v == 0); /* 64 KiB pages */
    v = 1;
    CHECK(mp_parse_cgroup_limit("0\n", &v) == MP_OK && v == 0);
    CHECK(mp_parse_cgroup_limit("4611686018427387903\n", &v) == MP_OK && v == MP_CGROUP_UNLIMITED_MIN - 1);
    const char *bad[] = {"", "\n", "maxi", "-1", "12abc", " 5", "1e9", "99999999999999999999999", "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        CHECKF(mp_parse_cgroup_limit(bad[i], &v) == MP_E_INVAL && v == 77, "'%s'", bad[i]);
    }
}

/* Random texts built from the pieces these files are made of: no parser
 * reads outside its input or its output buffers (run under ASan), and
 * every output stays NUL-terminated within its capacity. */
static void test_parse_random(void)
{
    static const char *const pieces[] = {"0", "4", ":", "::", "memory", ",", "/", "/a", "\n", " ", " - ", "cgroup",
                                         "cgroup2", "rw,memory", "\\040", "\\", "max", "MemAvailable:", " kB",
                                         "99999999999999999999", "-", "x"};
    const int n_pieces = (int)(sizeof pieces / sizeof pieces[0]);
    uint64_t state = 0x9e3779b97f4a7c15ull;
    char text[512], a[16], b[16];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        int n = (int)(state % 40);
        for (int i = 0; i < n; i++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            const char *piece = pieces[state % (uint64_t)n_pieces];
            size_t pl = strlen(piece);
            if (len + pl >= sizeof text) break;
            memcpy(text + len, piece, pl);
            len += pl;
        }
        text[len] = '\0';
        (void)mp_parse_proc_kb(text, "MemAvailable");
        mp_parse_proc_cgroup(text, a, sizeof a, b, sizeof b);
        CHECK(strlen(a) < sizeof a && strlen(b) < sizeof b);
        int rc = mp_parse_mountinfo_cgroup(text, iter & 1, "/a/b", a, sizeof a, b, sizeof b);
        CHECK(rc != MP_OK || (strlen(a) < sizeof a && strlen(b) < sizeof b));
        uint64_t v;
        (void)mp_parse_cgroup_limit(text, &v);
    }
}

/* ---- 2. reading a fake tree of real files --------------------------------- */

static char tmp[256];

static void put(const char *rel, const char *text)
{
    char path[1024], dir[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    /* mkdir -p the parent */
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + strlen(tmp) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(dir, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CHECKF(f != NULL, "%s: %s", path, strerror(errno));
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void wipe(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    CHECK(mkdir(tmp, 0700) == 0);
}

static void test_read_tree(void)
{
    snprintf(tmp, sizeof tmp, "%s/plan-auto-tree.%d", mp_test_build_dir(), (int)getpid());
    wipe();
    mp_mem_allowance a;

    /* v1: our cgroup /a/b allows 4 GiB, its parent /a only 2 GiB */
    put("proc/meminfo", "MemTotal: 33554432 kB\nMemAvailable: 16777216 kB\n");
    put("proc/self/cgroup", "5:pids:/\n4:memory:/a/b\n0::/\n");
    put("proc/self/mountinfo", "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                               "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "2147483648\n");
    put("sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "4294967296\n");
    put("sys/fs/cgroup/unified/a/b/memory.max", "1048576\n"); /* not the memory hierarchy here: ignored */
    mp_mem_allowance_read(tmp, &a);
    CHECKF(a.mem_available == 16 * GiB, "%" PRIu64, a.mem_available);
    CHECKF(a.cgroup_limit == 2 * GiB, "%" PRIu64, a.cgroup_limit);
    CHECK(a.allowed == 2 * GiB);

    /* the same, our own limit the tighter one */
    put("sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "1073741824\n");
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.cgroup_limit == 1 * GiB && a.allowed == 1 * GiB);

    /* a container: mountinfo's root is our cgroup, mounted as the top */
    wipe();
    put("proc/meminfo", "MemAvailable: 16777216 kB\n");
    put("proc/self/cgroup", "4:memory:/docker/abc\n");
    put("proc/self/mountinfo", "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
    put("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n");
    mp_mem_allowance_read(tmp, &a);
    CHECKF(a.cgroup_limit == 512 * MiB && a.allowed == 512 * MiB, "%" PRIu64, a.cgroup_limit);

    /* a cgroup namespace we cannot see past: our path is not below the
     * mount's root; the top of the mount is what we have */
    put("proc/self/cgroup", "4:memory:/elsewhere\n");
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.cgroup_limit == 512 * MiB);

    /* v2: /u allows "max", /u/s 3 GiB with memory.high at 2 GiB; MemAvailable 1 GiB binds */
    wipe();
    put("proc/meminfo", "MemAvailable: 1048576 kB\n");
    put("proc/self/cgroup", "0::/u/s\n");
    put("proc/self/mountinfo", "24 23 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n");
    put("sys/fs/cgroup/u/memory.max", "max\n");
    put("sys/fs/cgroup/u/memory.high", "max\n");
    put("sys/fs/cgroup/u/s/memory.max", "3221225472\n");
    put("sys/fs/cgroup/u/s/memory.high", "2147483648\n");
    mp_mem_allowance_read(tmp, &a);
    CHECKF(a.cgroup_limit == 2 * GiB, "%" PRIu64, a.cgroup_limit);
    CHECK(a.mem_available == 1 * GiB && a.allowed == 1 * GiB);
    /* garbage in a limit file is no limit, not a crash */
    put("sys/fs/cgroup/u/s/memory.high", "lots\n");
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.cgroup_limit == 3 * GiB);

    /* no limit anywhere: MemAvailable alone */
    put("sys/fs/cgroup/u/s/memory.max", "max\n");
    put("sys/fs/cgroup/u/s/memory.high", "max\n");
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.cgroup_limit == 0 && a.allowed == 1 * GiB);

    /* an empty tree: nothing known */
    wipe();
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.mem_available == 0 && a.cgroup_limit == 0 && a.allowed == 0);
    /* a cgroup limit without MemAvailable (a /proc without it) */
    put("proc/self/cgroup", "0::/\n");
    put("proc/self/mountinfo", "24 23 0:22 / /cg rw - cgroup2 cgroup2 rw\n");
    put("cg/memory.max", "104857600\n");
    mp_mem_allowance_read(tmp, &a);
    CHECK(a.mem_available == 0 && a.cgroup_limit == 100 * MiB && a.allowed == 100 * MiB);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
}

/* ---- 3. this machine ------------------------------------------------------- */

/* Reads a /proc or cgroup file (their size reads as 0, so no fstat) into
 * buf[cap], NUL-terminated; false if it cannot be opened. */
static bool slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return true;
}

static void test_read_real(void)
{
    mp_mem_allowance a, b;
    mp_mem_allowance_read(NULL, &a);
    mp_mem_allowance_read("", &b);
    uint64_t avail = mp_mem_available_bytes();
    CHECKF(a.mem_available > 16 * MiB, "MemAvailable %" PRIu64, a.mem_available);
    /* MemAvailable moves while other processes run: within a quarter */
    CHECKF(a.mem_available / 4 * 3 <= avail && avail / 4 * 3 <= a.mem_available, "%" PRIu64 " vs %" PRIu64,
           a.mem_available, avail);
    CHECK(b.cgroup_limit == a.cgroup_limit);
    CHECK(a.allowed && a.allowed <= a.mem_available);
    if (a.cgroup_limit) CHECK(a.allowed <= a.cgroup_limit);
    /* our own reading of the limit at the usual mount points, where there
     * is one: the allowance's is no larger (an ancestor may be tighter) */
    char cg[4096], v1[1024], v2[1024], path[1400], text[64];
    if (slurp("/proc/self/cgroup", cg, sizeof cg) && mp_parse_proc_cgroup(cg, v1, sizeof v1, v2, sizeof v2) == MP_OK) {
        if (v1[0]) snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", v1);
        else snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", v2);
        uint64_t lim = 0;
        if (slurp(path, text, sizeof text)) {
            CHECKF(mp_parse_cgroup_limit(text, &lim) == MP_OK, "%s: '%s'", path, text);
            if (lim) CHECKF(a.cgroup_limit && a.cgroup_limit <= lim, "%" PRIu64 " vs %s", a.cgroup_limit, path);
            fprintf(stderr, "this machine: %s says %" PRIu64 " (0: no limit); ", path, lim);
        }
    }
    fprintf(stderr, "MemAvailable %" PRIu64 ", cgroup limit %" PRIu64 ", allowed %" PRIu64 "\n", a.mem_available,
            a.cgroup_limit, a.allowed);
}

/* ---- 4. the decision -------------------------------------------------------- */

static int gen(const char *out, const char *opts)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/mp-gen' %s --seed 7 -q -o '%s'", mp_test_build_dir(), opts, out);
    return system(cmd);
}

static void test_margin(void)
{
    CHECK(mp_plan_margin(0) == 0);
    CHECK(mp_plan_margin(64 * MiB) == 8 * MiB);      /* 1/8: 512 MiB would leave nothing */
    CHECK(mp_plan_margin(1 * GiB) == 128 * MiB);     /* 1/8 */
    CHECK(mp_plan_margin(4 * GiB) == 512 * MiB);     /* the 512 MiB floor */
    CHECK(mp_plan_margin(8 * GiB) == 512 * MiB);     /* the floor (= 1/16) */
    CHECK(mp_plan_margin(24 * GiB) == 1536 * MiB);   /* 1/16 */
    for (uint64_t a = 1; a < (1ull << 50); a = a * 3 + 1) CHECK(mp_plan_margin(a) < a || a < 8);
}

static uint64_t usable_of(uint64_t allowed) { return (allowed - mp_plan_margin(allowed)) & ~(MiB - 1); }

static void test_decision(const char *moe_path, const char *dense_path)
{
    mp_err err = {0};
    mp_model *m = NULL;
    mp_expert_loc *locs = NULL;
    if (mp_model_load(&m, moe_path, &err) || mp_expert_locs_gguf(m, &locs, &err)) {
        CHECKF(0, "%s", err.msg);
        mp_model_free(m);
        return;
    }
    mp_plan mapped, p;
    char note[512];
    mp_plan_opts o = {.n_ctx = 256, .n_batch = 64, .n_threads = 1};
    CHECK(mp_plan_make(m, locs, &o, &mapped, &err) == MP_OK);
    CHECK(!mapped.offload && mapped.auto_mode == MP_PLAN_AUTO_OFF && mapped.total == mapped.mapped_total);
    const uint64_t T = mapped.total;

    /* plenty: every weight read into RAM (a slot for every expert), and said */
    mp_mem_allowance big = {.mem_available = 64 * GiB, .allowed = 64 * GiB};
    o.machine = &big;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK);
    CHECK(p.offload && p.auto_mode == MP_PLAN_AUTO_FITS && p.slots == p.n_experts_total && p.budget == 0);
    CHECK(p.mapped_total == T && p.total >= p.resident + p.cache_bytes && p.cache_bytes >= p.expert_bytes);
    mp_plan_note(&p, note, sizeof note);
    CHECKF(strstr(note, "plan: the model fits") && strstr(note, "every weight read into RAM"), "%s", note);
    const uint64_t T_load = p.total;

    /* the boundary: the smallest whole-MiB allowance whose usable part holds T */
    uint64_t lo = T, hi = 4 * T + 64 * MiB;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (usable_of(mid) >= T) hi = mid;
        else lo = mid;
    }
    mp_mem_allowance edge = {.mem_available = hi, .allowed = hi};
    o.machine = &edge;
    /* fits mapped; read into RAM only if that plan (slot rounding) fits too, else mapped */
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && p.auto_mode == MP_PLAN_AUTO_FITS);
    CHECKF(T_load <= usable_of(hi) ? p.offload && p.total == T_load : !p.offload && p.total == T, "load %" PRIu64
           " usable %" PRIu64 " offload %d", T_load, usable_of(hi), (int)p.offload);
    mp_plan_note(&p, note, sizeof note);
    CHECK(p.offload ? note[0] != '\0' : note[0] == '\0');
    edge.mem_available = edge.allowed = hi - 1;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && p.auto_mode == MP_PLAN_AUTO_STREAM && p.offload);

    /* a cgroup limit between the smallest streaming plan and the mapped
     * total (MemAvailable larger): streamed, with exactly the plan of --mem
     * <usable>. The usable part of lim is about (T + smin) / 2: the margin
     * is 1/16 to 1/8 of lim. */
    mp_plan_opts mo = {.cache_experts = 2, .n_ctx = 256, .n_batch = 64, .n_threads = 1};
    CHECK(mp_plan_make(m, locs, &mo, &p, &err) == MP_OK);
    const uint64_t smin = p.stream_min;
    CHECKF(smin < p.total && smin < T / 2, "smallest stream %" PRIu64 " mapped %" PRIu64, smin, T);
    const uint64_t lim = (T + smin) / 2 / 8 * 9;
    mp_mem_allowance cg = {.mem_available = 64 * GiB, .cgroup_limit = lim, .allowed = lim};
    o.machine = &cg;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK);
    const uint64_t budget = usable_of(lim);
    CHECKF(p.offload && p.auto_mode == MP_PLAN_AUTO_STREAM, "mode %d", (int)p.auto_mode);
    CHECKF(p.budget == budget && budget % MiB == 0 && p.total <= budget, "budget %" PRIu64 " total %" PRIu64, p.budget,
           p.total);
    CHECK(p.margin == mp_plan_margin(lim) && p.mapped_total == T);
    mp_plan_opts eo = {.mem = budget, .n_ctx = 256, .n_batch = 64, .n_threads = 1, .machine = &cg};
    mp_plan ex;
    CHECK(mp_plan_make(m, locs, &eo, &ex, &err) == MP_OK);
    CHECK(ex.auto_mode == MP_PLAN_AUTO_OFF); /* a budget option: the machine is not asked */
    CHECK(ex.offload && ex.slots == p.slots && ex.total == p.total && ex.cache_bytes == p.cache_bytes &&
          ex.resident == p.resident);
    mp_plan_note(&p, note, sizeof note);
    char want[128];
    snprintf(want, sizeof want, "streaming experts with --mem %" PRIu64 "M (--mmap maps the whole file)", budget >> 20);
    CHECKF(strstr(note, want) && strstr(note, "cgroup limit") && !strncmp(note, "plan: the model needs ", 22), "%s",
           note);
    char line[512];
    mp_plan_describe(&p, line, sizeof line);
    CHECKF(strstr(line, "expert cache") && strstr(line, "from what this machine allows"), "%s", line);
    fprintf(stderr, "%s\n%s\n", line, note);

    /* MemAvailable the binding one: the note says so */
    mp_mem_allowance ma = {.mem_available = lim, .cgroup_limit = 2 * lim, .allowed = lim};
    o.machine = &ma;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && p.auto_mode == MP_PLAN_AUTO_STREAM && p.budget == budget);
    mp_plan_note(&p, note, sizeof note);
    CHECKF(strstr(note, "(MemAvailable ") && strstr(note, "; cgroup limit "), "%s", note);

    /* too small for even the minimum cache: mapped, and the note says what streaming would need */
    mp_mem_allowance tiny = {.mem_available = 8 * MiB, .allowed = 8 * MiB};
    o.machine = &tiny;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK);
    CHECK(!p.offload && p.auto_mode == MP_PLAN_AUTO_TOO_SMALL && p.total == T && p.stream_min > usable_of(8 * MiB));
    mp_plan_note(&p, note, sizeof note);
    CHECKF(strstr(note, "streaming experts needs at least") && strstr(note, "mapping the whole file anyway"), "%s",
           note);
    fprintf(stderr, "%s\n", note);

    /* nothing known of the machine, or no machine given: mapped as before */
    mp_mem_allowance none = {0};
    o.machine = &none;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && !p.offload && p.auto_mode == MP_PLAN_AUTO_OFF);
    o.machine = NULL;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && !p.offload && p.auto_mode == MP_PLAN_AUTO_OFF);
    /* --cache-experts with a tiny machine: the option rules */
    o.machine = &tiny;
    o.cache_experts = 2;
    CHECK(mp_plan_make(m, locs, &o, &p, &err) == MP_OK && p.offload && p.auto_mode == MP_PLAN_AUTO_OFF &&
          p.slots == 2 * p.n_moe_layers);
    free(locs);
    mp_model_free(m);

    /* a dense model that does not fit: no experts to stream, mapped */
    m = NULL;
    locs = NULL;
    if (mp_model_load(&m, dense_path, &err) || mp_expert_locs_gguf(m, &locs, &err)) {
        CHECKF(0, "%s", err.msg);
    } else {
        mp_plan_opts d = {.n_ctx = 256, .n_batch = 64, .n_threads = 1, .machine = &tiny};
        CHECK(mp_plan_make(m, locs, &d, &p, &err) == MP_OK);
        CHECK(!p.offload && p.auto_mode == MP_PLAN_AUTO_NO_EXPERTS);
        mp_plan_note(&p, note, sizeof note);
        CHECKF(strstr(note, "no routed experts to stream"), "%s", note);
        d.machine = &big;
        CHECK(mp_plan_make(m, locs, &d, &p, &err) == MP_OK && !p.offload && p.auto_mode == MP_PLAN_AUTO_FITS);
    }
    free(locs);
    mp_model_free(m);
}

static void test_session(const char *moe_path)
{
    mp_err err = {0};
    mp_session *s = NULL;
    /* mmap and a budget option exclude each other */
    mp_session_params sp = {.model_path = moe_path, .n_ctx = 64, .n_threads = 1, .mmap = true, .mem = 1 * GiB};
    CHECK(mp_session_open(&s, &sp, &err) == MP_E_INVAL && !s && strstr(err.msg, "--mmap"));
    mp_err_clear(&err);
    sp.mem = 0;
    sp.cache_experts = 2;
    CHECK(mp_session_open(&s, &sp, &err) == MP_E_INVAL && !s);
    mp_err_clear(&err);
    /* mmap alone: mapped, whatever the machine; no plan note */
    sp.cache_experts = 0;
    CHECK(mp_session_open(&s, &sp, &err) == MP_OK);
    if (s) {
        CHECK(!s->plan.offload && !s->cache && s->plan.auto_mode == MP_PLAN_AUTO_OFF && !strstr(s->note, "plan:"));
        mp_session_free(s);
        s = NULL;
    }
    /* no option: this machine holds the small model, so read into RAM, asked */
    sp.mmap = false;
    CHECK(mp_session_open(&s, &sp, &err) == MP_OK);
    if (s) {
        mp_mem_allowance a;
        mp_mem_allowance_read(NULL, &a);
        if (a.allowed > 4 * s->plan.mapped_total) /* else the machine is really that full */
            CHECKF(s->plan.offload && s->cache && s->plan.slots == s->plan.n_experts_total &&
                       s->plan.auto_mode == MP_PLAN_AUTO_FITS && strstr(s->note, "every weight read into RAM"),
                   "mode %d", (int)s->plan.auto_mode);
        mp_session_free(s);
    }
}

int main(void)
{
    test_parse_proc_kb();
    test_parse_proc_cgroup();
    test_parse_mountinfo();
    test_parse_limit();
    test_parse_random();
    test_read_tree();
    test_read_real();
    test_margin();

    char gen_path[1024];
    snprintf(gen_path, sizeof gen_path, "%s/mp-gen", mp_test_build_dir());
    if (access(gen_path, X_OK) != 0) {
        if (mp_test_failures) MP_TEST_DONE();
        MP_TEST_SKIP("%s not built: the planner's decision is not tested", gen_path);
    }
    char moe[1024], dense[1024];
    snprintf(moe, sizeof moe, "%s/plan-auto-moe.%d.gguf", mp_test_build_dir(), (int)getpid());
    snprintf(dense, sizeof dense, "%s/plan-auto-dense.%d.gguf", mp_test_build_dir(), (int)getpid());
    /* 4 x 16 experts of 816 KiB: 51 MiB of the 85 MiB mapped total */
    int g1 = gen(moe, "--arch llama-moe --type q8_0 --n-embd 256 --n-ff 1024 --n-layer 4 --n-expert 16 --n-expert-used 2");
    int g2 = gen(dense, "--arch llama --type q8_0 --n-embd 256 --n-ff 512 --n-layer 4");
    CHECK(g1 == 0 && g2 == 0);
    if (g1 == 0 && g2 == 0) {
        test_decision(moe, dense);
        test_session(moe);
    }
    unlink(moe);
    unlink(dense);
    MP_TEST_DONE();
}
