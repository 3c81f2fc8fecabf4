/* Chat-template parity with llama.cpp: every template in tests/data/chat/templates/
 * (copied from llama.cpp's models/templates/) rendered by our interpreter
 * (src/template/) for every conversation of tests/data/chat/conversations.txt must
 * equal llama.cpp's rendering, committed as tests/data/chat/golden/NAME.CONV.txt
 * (made by tests/helpers/peer/peer_chat_template.cpp through libllama-common;
 * tests/test_chat_parity_peer.sh regenerates them against the peer). Same inputs as
 * the goldens: bos_token "<s>", eos_token "</s>", no BOS/EOS dropping, the clock
 * at 2026-01-15 12:00:00 UTC.
 *
 *   test_chat_parity [TEMPLATE_DIR GOLDEN_DIR [BUILTIN_GOLDEN_DIR|- [CONVERSATIONS]]]
 *
 * The default run also renders tests/data/chat/snippets/ (one construct each: filters,
 * tests, loops, scoping, macros, whitespace control, ...) on
 * tests/data/chat/snippet-conversations.txt against tests/data/chat/golden-snippets/.
 *   test_chat_parity --builtin-names                                the built-ins' names
 *
 * The built-in templates (mp_tmpl_builtin_name_at: "llama3", "mistral-v7", ...) are
 * checked the same way against llama.cpp's named formats (llama_chat_apply_template),
 * tests/data/chat/golden-builtin/NAME.CONV.txt, on the conversations without a
 * "developer" message (the Jinja path maps it to "system", the named formats do not).
 *
 * A template listed in tests/data/chat/unsupported.txt ("NAME<TAB>why") is not
 * claimed: it must be refused with an error or still differ (so the list stays
 * honest); every other template must render every conversation byte for byte. */
#include "mp_test.h"

#include "template/template.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONV 128
#define MAX_MSG 16

typedef struct conv {
    char name[64];
    mp_tmpl_msg msgs[MAX_MSG];
    size_t n;
} conv;

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return p;
}

static char *unescape(const char *s)
{
    char *o = malloc(strlen(s) + 1), *w = o;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *w++ = *s == 'n' ? '\n' : *s;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

static size_t load_convs(const char *path, conv *cv)
{
    char *text = read_all(path, NULL);
    if (!text) return 0;
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        if (!strncmp(line, "= ", 2)) {
            if (n == MAX_CONV) break;
            snprintf(cv[n].name, sizeof cv[n].name, "%s", line + 2);
            cv[n++].n = 0;
            continue;
        }
        char *tab = strchr(line, '\t');
        if (!tab || !n || cv[n - 1].n == MAX_MSG) continue;
        *tab = '\0';
        conv *c = &cv[n - 1];
        c->msgs[c->n].role = strdup(line);
        c->msgs[c->n].content = unescape(tab + 1);
        c->n++;
    }
    free(text);
    return n;
}

/* the reason a template is not claimed, or NULL */
static const char *unsupported_reason(const char *list, const char *name, char *buf, size_t cap)
{
    if (!list) return NULL;
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (p[0] != '#' && len > nl && !strncmp(p, name, nl) && p[nl] == '\t') {
            snprintf(buf, cap, "%.*s", (int)(len - nl - 1), p + nl + 1);
            return buf;
        }
        p += len + (e ? 1 : 0);
    }
    return NULL;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Renders every template of tdir (names[0..n_t)) for every conversation and compares with gdir. */
static void run_set(const char *tdir, const char *gdir, char **names, size_t n_t, const conv *cv, size_t n_conv,
                    const char *unsupported, int *claimed_out, int *ok_out)
{
    int claimed = 0, claimed_ok = 0;
    for (size_t ti = 0; ti < n_t; ti++) {
        char path[16384], why[512];
        snprintf(path, sizeof path, "%s/%s.jinja", tdir, names[ti]);
        char *text = read_all(path, NULL);
        char *fixed = text ? mp_tmpl_fixup(text) : NULL;
        const char *reason = unsupported_reason(unsupported, names[ti], why, sizeof why);
        mp_tmpl *t = NULL;
        mp_err err = {0};
        int equal = 0, compared = 0;
        char first_diff[600] = "";
        if (!fixed || mp_tmpl_parse(&t, fixed, names[ti], &err)) {
            /* refused at parse time: equal where llama.cpp refuses too */
            for (size_t ci = 0; ci < n_conv; ci++) {
                char gpath[16384];
                snprintf(gpath, sizeof gpath, "%.1023s/%.255s.%.63s.err", gdir, names[ti], cv[ci].name);
                FILE *gf = fopen(gpath, "rb");
                snprintf(gpath, sizeof gpath, "%.1023s/%.255s.%.63s.txt", gdir, names[ti], cv[ci].name);
                FILE *tf = fopen(gpath, "rb");
                compared += gf || tf;
                equal += gf != NULL;
                if (tf && !first_diff[0]) snprintf(first_diff, sizeof first_diff, "refused: %s", err.msg);
                if (gf) fclose(gf);
                if (tf) fclose(tf);
            }
        } else {
            for (size_t ci = 0; ci < n_conv; ci++) {
                char gpath[16384];
                snprintf(gpath, sizeof gpath, "%.1023s/%.255s.%.63s.txt", gdir, names[ti], cv[ci].name);
                size_t glen = 0;
                char *gold = read_all(gpath, &glen);
                bool peer_refused = false;
                if (!gold) { /* llama.cpp refused this one (NAME.CONV.err): we must refuse it too */
                    snprintf(gpath, sizeof gpath, "%.1023s/%.255s.%.63s.err", gdir, names[ti], cv[ci].name);
                    if (!(gold = read_all(gpath, &glen))) continue;
                    peer_refused = true;
                }
                compared++;
                size_t nl = strlen(cv[ci].name);
                mp_tmpl_chat c = {.msgs = cv[ci].msgs, .n_msgs = cv[ci].n, .bos_token = "<s>", .eos_token = "</s>",
                                  .add_generation_prompt = !(nl > 6 && !strcmp(cv[ci].name + nl - 6, "-nogen")),
                                  .now = 1768478400};
                char *out = NULL;
                mp_err e2 = {0};
                int rc = mp_tmpl_render_chat(t, &c, &out, &e2);
                if (peer_refused) {
                    if (rc) equal++;
                    else if (!first_diff[0])
                        snprintf(first_diff, sizeof first_diff, "%s: llama.cpp refuses it (%.200s), we render it",
                                 cv[ci].name, gold);
                } else if (rc) {
                    if (!first_diff[0]) snprintf(first_diff, sizeof first_diff, "%s: error: %s", cv[ci].name, e2.msg);
                } else if (strlen(out) == glen && !memcmp(out, gold, glen)) {
                    equal++;
                } else if (!first_diff[0]) {
                    size_t k = 0;
                    while (out[k] && k < glen && out[k] == gold[k]) k++;
                    size_t from = k > 30 ? k - 30 : 0;
                    snprintf(first_diff, sizeof first_diff, "%s: differs at byte %zu: ours [%.60s] llama.cpp [%.60s]",
                             cv[ci].name, k, out + from, gold + from);
                }
                free(out);
                free(gold);
            }
        }
        bool ok = compared > 0 && equal == compared;
        if (reason) {
            printf("%-48s not claimed (%s): %d/%d equal%s%s\n", names[ti], reason, equal, compared,
                   first_diff[0] ? "; " : "", first_diff);
            CHECKF(!ok, "%s renders equal on every conversation: take it off unsupported.txt", names[ti]);
        } else {
            claimed++;
            claimed_ok += ok;
            printf("%-48s %s %d/%d conversations equal%s%s\n", names[ti], ok ? "supported," : "FAILS,", equal, compared,
                   first_diff[0] ? "; first: " : "", first_diff);
            CHECKF(ok, "%s: %s", names[ti], first_diff);
        }
        mp_tmpl_free(t);
        free(fixed);
        free(text);
        free(names[ti]);
    }
    *claimed_out = claimed;
    *ok_out = claimed_ok;
}

/* The .jinja names of dir, sorted (malloc'd; the caller frees them). */
static size_t list_templates(const char *dir, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n_t = 0;
    for (struct dirent *de; (de = readdir(d)) && n_t < cap;) {
        size_t l = strlen(de->d_name);
        if (l > 6 && !strcmp(de->d_name + l - 6, ".jinja")) names[n_t++] = strndup(de->d_name, l - 6);
    }
    closedir(d);
    qsort(names, n_t, sizeof *names, cmp_names);
    return n_t;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--builtin-names")) { /* for tests/test_chat_parity_peer.sh */
        for (size_t i = 0; mp_tmpl_builtin_name_at(i); i++) printf("%s\n", mp_tmpl_builtin_name_at(i));
        return 0;
    }
    char tdir[1024], gdir[1024], cpath[1024], upath[1024];
    const char *src = mp_test_src_dir();
    snprintf(tdir, sizeof tdir, "%s", argc > 2 ? argv[1] : "");
    if (argc <= 2) snprintf(tdir, sizeof tdir, "%s/tests/data/chat/templates", src);
    if (argc > 2) snprintf(gdir, sizeof gdir, "%s", argv[2]);
    else snprintf(gdir, sizeof gdir, "%s/tests/data/chat/golden", src);
    snprintf(cpath, sizeof cpath, "%s/tests/data/chat/conversations.txt", src);
    if (argc > 4) snprintf(cpath, sizeof cpath, "%s", argv[4]);
    snprintf(upath, sizeof upath, "%s/tests/data/chat/unsupported.txt", src);
    setenv("TZ", "UTC", 1);
    tzset();
    static conv cv[MAX_CONV];
    size_t n_conv = load_convs(cpath, cv);
    if (!n_conv) MP_TEST_SKIP("no conversations in %s", cpath);
    char *names[256];
    size_t n_t = list_templates(tdir, names, 256);
    if (!n_t) MP_TEST_SKIP("no templates in %s", tdir);
    char *unsupported = read_all(upath, NULL);
    int claimed = 0, claimed_ok = 0;
    run_set(tdir, gdir, names, n_t, cv, n_conv, unsupported, &claimed, &claimed_ok);
    printf("%d templates claimed, %d equal on every conversation\n", claimed, claimed_ok);
    /* the snippets (one construct each) on their conversation, in the default run */
    if (argc <= 2) {
        char sdir[1024], sgdir[1024], scpath[1024];
        snprintf(sdir, sizeof sdir, "%s/tests/data/chat/snippets", src);
        snprintf(sgdir, sizeof sgdir, "%s/tests/data/chat/golden-snippets", src);
        snprintf(scpath, sizeof scpath, "%s/tests/data/chat/snippet-conversations.txt", src);
        static conv scv[MAX_CONV];
        size_t n_sconv = load_convs(scpath, scv);
        char *snames[256];
        size_t n_s = list_templates(sdir, snames, 256);
        CHECKF(n_s && n_sconv, "no snippets (%s, %s)", sdir, scpath);
        run_set(sdir, sgdir, snames, n_s, scv, n_sconv, unsupported, &claimed, &claimed_ok);
        printf("%d snippets claimed, %d equal\n", claimed, claimed_ok);
        for (size_t ci = 0; ci < n_sconv; ci++)
            for (size_t k = 0; k < scv[ci].n; k++) {
                free((char *)scv[ci].msgs[k].role);
                free((char *)scv[ci].msgs[k].content);
            }
    }
    /* the built-ins against llama_chat_apply_template */
    char bdir[1024];
    snprintf(bdir, sizeof bdir, "%s/tests/data/chat/golden-builtin", src);
    if (argc > 3) snprintf(bdir, sizeof bdir, "%s", argv[3]);
    int n_builtin = 0, builtin_ok = 0;
    bool skip_builtins = argc > 3 && !strcmp(argv[3], "-"); /* "-": no built-ins this run */
    for (size_t bi = 0; !skip_builtins && mp_tmpl_builtin_name_at(bi); bi++) {
        const char *name = mp_tmpl_builtin_name_at(bi);
        mp_tmpl *t = NULL;
        mp_err err = {0};
        CHECKF(mp_tmpl_parse(&t, mp_tmpl_builtin(name), name, &err) == MP_OK, "built-in %s: %s", name, err.msg);
        if (!t) continue;
        int equal = 0, compared = 0;
        char first_diff[600] = "";
        for (size_t ci = 0; ci < n_conv; ci++) {
            bool dev = false;
            for (size_t k = 0; k < cv[ci].n; k++) dev |= !strcmp(cv[ci].msgs[k].role, "developer");
            char gpath[16384];
            snprintf(gpath, sizeof gpath, "%.1023s/%.255s.%.63s.txt", bdir, name, cv[ci].name);
            size_t glen = 0;
            char *gold = dev ? NULL : read_all(gpath, &glen);
            if (!gold) continue;
            compared++;
            size_t nl = strlen(cv[ci].name);
            mp_tmpl_chat c = {.msgs = cv[ci].msgs, .n_msgs = cv[ci].n, .bos_token = "<s>", .eos_token = "</s>",
                              .add_generation_prompt = !(nl > 6 && !strcmp(cv[ci].name + nl - 6, "-nogen")),
                              .now = 1768478400};
            char *out = NULL;
            mp_err e2 = {0};
            if (mp_tmpl_render_chat(t, &c, &out, &e2)) {
                if (!first_diff[0]) snprintf(first_diff, sizeof first_diff, "%s: error: %s", cv[ci].name, e2.msg);
            } else if (strlen(out) == glen && !memcmp(out, gold, glen)) {
                equal++;
            } else if (!first_diff[0]) {
                size_t k = 0;
                while (out[k] && k < glen && out[k] == gold[k]) k++;
                size_t from = k > 30 ? k - 30 : 0;
                snprintf(first_diff, sizeof first_diff, "%s: differs at byte %zu: ours [%.60s] llama.cpp [%.60s]",
                         cv[ci].name, k, out + from, gold + from);
            }
            free(out);
            free(gold);
        }
        bool ok = compared > 0 && equal == compared;
        n_builtin++;
        builtin_ok += ok;
        printf("built-in %-39s %s %d/%d conversations equal to llama_chat_apply_template%s%s\n", name,
               ok ? "supported," : "FAILS,", equal, compared, first_diff[0] ? "; first: " : "", first_diff);
        CHECKF(ok, "built-in %s: %s", name, first_diff);
        mp_tmpl_free(t);
    }
    printf("%d built-in templates, %d equal on every conversation\n", n_builtin, builtin_ok);
    free(unsupported);
    for (size_t ci = 0; ci < n_conv; ci++)
        for (size_t k = 0; k < cv[ci].n; k++) {
            free((char *)cv[ci].msgs[k].role);
            free((char *)cv[ci].msgs[k].content);
        }
    MP_TEST_DONE();
}
