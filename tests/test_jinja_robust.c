/* The Jinja interpreter on hostile and broken templates: every real template of
 * tests/data/chat/templates/ cut short and with bytes flipped (seeded, 40 variants
 * each), and hand-made worst cases (runaway loops, deep nesting, unbounded macro
 * recursion, huge outputs). Each must either render or fail with one line that names
 * the template and a line number: no crash (run it under ASan), no hang, no leak. */
#include "mp_test.h"

#include "helpers/test_util.h"
#include "template/template.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const mp_tmpl_msg msgs[] = {
    {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"},
};

static int n_ok, n_refused;

/* Parses and renders src; checks the error's shape. Returns the status. */
static int try_one(const char *name, const char *src, bool want_fail, int want_status)
{
    mp_tmpl *t = NULL;
    mp_err err = {0};
    char *out = NULL;
    int rc = mp_tmpl_parse(&t, src, name, &err);
    if (!rc) {
        mp_tmpl_chat c = {.msgs = msgs, .n_msgs = 4, .add_generation_prompt = true, .bos_token = "<s>",
                          .eos_token = "</s>", .now = 1768478400};
        rc = mp_tmpl_render_chat(t, &c, &out, &err);
    }
    if (rc) {
        n_refused++;
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s:", name);
        CHECKF(out == NULL, "%s: output on failure", name);
        CHECKF(!strncmp(err.msg, prefix, strlen(prefix)) && strchr(err.msg + strlen(prefix), ':') &&
                   !strchr(err.msg, '\n') && err.status == rc,
               "%s: the message does not name the template and line: [%s]", name, err.msg);
    } else {
        n_ok++;
        CHECK(out != NULL);
    }
    if (want_fail) CHECKF(rc != MP_OK, "%s: rendered, a refusal was expected", name);
    if (want_status) CHECKF(rc == want_status, "%s: status %d, want %d (%s)", name, rc, want_status, err.msg);
    free(out);
    mp_tmpl_free(t);
    return rc;
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    /* worst cases */
    static const struct {
        const char *name, *src;
        int want;
    } worst[] = {
        {"loops", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", MP_E_RANGE},
        {"recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", MP_E_INVAL},
        {"growth", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
         MP_E_RANGE},
        {"listgrowth", "{% set l = [] %}{% for i in range(100000000) %}{% set _ = l.append(i) %}{% endfor %}", MP_E_RANGE},
        {"unclosed", "{% if true %}{% for x in messages %}", MP_E_CORRUPT},
        {"badexpr", "{{ (1 + }}", MP_E_CORRUPT},
        {"comment", "{# never closed", MP_E_CORRUPT},
        {"escape", "{{ '\\q' }}", MP_E_CORRUPT},
        {"badcall", "{{ messages() }}", MP_E_INVAL},
        {"undefcall", "{{ nothing.here() }}", MP_E_INVAL},
        {"divzero", "{{ 1 % 0 }}", MP_E_INVAL},
        {"slice0", "{{ messages[::0] }}", MP_E_INVAL},
    };
    for (size_t i = 0; i < sizeof worst / sizeof worst[0]; i++) {
        double t0 = (double)clock() / CLOCKS_PER_SEC;
        try_one(worst[i].name, worst[i].src, true, worst[i].want);
        double dt = (double)clock() / CLOCKS_PER_SEC - t0;
        CHECKF(dt < 60, "%s took %.1f s of CPU", worst[i].name, dt);
    }
    /* deep nesting, built at run time */
    size_t depth = 5000;
    char *deep = malloc(depth * 16 + 16), *w = deep;
    w += sprintf(w, "{{ ");
    for (size_t i = 0; i < depth; i++) *w++ = '(';
    *w++ = '1';
    for (size_t i = 0; i < depth; i++) *w++ = ')';
    strcpy(w, " }}");
    try_one("deep", deep, true, MP_E_CORRUPT);
    w = deep;
    for (size_t i = 0; i < depth; i++) w += sprintf(w, "{%% if true %%}");
    try_one("deepif", deep, true, MP_E_CORRUPT);
    free(deep);

    /* real templates, damaged */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/data/chat/templates", mp_test_src_dir());
    DIR *d = opendir(dir);
    if (!d) MP_TEST_SKIP("no %s", dir);
    mp_test_rng rng = {0x5eed};
    int n_files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l < 7 || strcmp(de->d_name + l - 6, ".jinja")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t size = 0;
        char *src = mp_test_read_file(path, &size);
        if (!src) continue;
        n_files++;
        char *buf = malloc(size + 1);
        for (int v = 0; v < 40; v++) {
            memcpy(buf, src, size);
            buf[size] = '\0';
            if (v < 10) { /* cut short */
                buf[mp_rng_u32(&rng) % (size + 1)] = '\0';
            } else { /* flip a few bytes to template punctuation or junk */
                static const char junk[] = "{}%#-()[]|.,:'\"~=!<>+*/ \nxa0\\";
                int k = 1 + (int)(mp_rng_u32(&rng) % 4);
                for (int i = 0; i < k && size; i++) {
                    char c = junk[mp_rng_u32(&rng) % (sizeof junk - 1)];
                    buf[mp_rng_u32(&rng) % size] = c ? c : 'x';
                }
            }
            try_one(de->d_name, buf, false, 0);
        }
        free(buf);
        free(src);
    }
    closedir(d);
    printf("%d templates x 40 variants + %zu worst cases: %d rendered, %d refused (each with name and line)\n", n_files,
           sizeof worst / sizeof worst[0] + 2, n_ok, n_refused);
    MP_TEST_DONE();
}
