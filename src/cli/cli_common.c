#include "cli.h"

#include "common/parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MP_DEMO_MODEL
#define MP_DEMO_MODEL ""
#endif

const char *const cli_model_opts_help =
    "  -m, --model FILE     model (GGUF); default: the demo model the build generated\n"
    "  -t, --threads N      threads (default: all cores)\n"
    "  -c, --ctx-size N     context length in tokens (default: min(model's, 4096))\n"
    "  -b, --batch-size N   tokens per prefill chunk (default: 512)\n";

bool cli_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (mp_parse_i64(s, &v) != MP_OK || v < lo || v > hi) {
        fprintf(stderr, "error: %s: '%s' is not an integer in [%lld, %lld]\n", opt, s, (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, float *out)
{
    if (mp_parse_f32(s, out) != MP_OK) {
        fprintf(stderr, "error: %s: '%s' is not a number\n", opt, s);
        return -1;
    }
    return 0;
}

int cli_take_model_opt(cli_model_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->model = v;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1024, &o->n_threads)) return -1;
        return 1;
    }
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1 << 24, &o->n_ctx)) return -1;
        return 1;
    }
    if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1 << 16, &o->n_batch)) return -1;
        return 1;
    }
    return 0;
}

int cli_resolve_model(cli_model_opts *o)
{
    if (o->model) return 0;
    if (MP_DEMO_MODEL[0] && access(MP_DEMO_MODEL, R_OK) == 0) {
        o->model = MP_DEMO_MODEL;
        fprintf(stderr, "moepager: no -m given, using the demo model %s\n", MP_DEMO_MODEL);
        return 0;
    }
    fprintf(stderr, "error: no model: give one with -m FILE.gguf\n");
    return -1;
}

int cli_fail(const mp_err *err)
{
    if (err && err->msg[0]) fprintf(stderr, "error: %s\n", err->msg);
    else fprintf(stderr, "error: %s\n", mp_strerror(err ? err->status : MP_E_INVAL));
    return 1;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "error: %s: %s\n", path, buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}
