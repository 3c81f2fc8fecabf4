/* Routing trace reading (a small strict JSON-lines parser) and writing. */
#include "trace/trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_MAX_DEPTH 64 /* nesting accepted inside ignored values */

/* ---- growable storage ---------------------------------------------------- */

typedef struct trace_build {
    mp_trace *t;
    size_t cap_recs, cap_experts, cap_probs, n_vals;
    /* problem_id interning: open addressing over raw value texts */
    char **pid_text;
    size_t *pid_len;
    uint32_t *pid_index;
    size_t pid_cap; /* power of two */
} trace_build;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem) return false;
        n *= 2;
    }
    void *q = realloc(*p, n * elem);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Returns the index of problem text s[0..n) (new ones numbered in order), or
 * -1 on OOM. */
static int64_t intern_problem(trace_build *b, const char *s, size_t n)
{
    if ((size_t)b->t->n_problems * 2 >= b->pid_cap) {
        size_t cap = b->pid_cap ? b->pid_cap * 2 : 256;
        char **text = calloc(cap, sizeof *text);
        size_t *len = calloc(cap, sizeof *len);
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!text || !len || !idx) {
            free(text), free(len), free(idx);
            return -1;
        }
        for (size_t i = 0; i < b->pid_cap; i++) {
            if (!b->pid_text[i]) continue;
            size_t j = fnv1a(b->pid_text[i], b->pid_len[i]) & (cap - 1);
            while (text[j]) j = (j + 1) & (cap - 1);
            text[j] = b->pid_text[i], len[j] = b->pid_len[i], idx[j] = b->pid_index[i];
        }
        free(b->pid_text), free(b->pid_len), free(b->pid_index);
        b->pid_text = text, b->pid_len = len, b->pid_index = idx, b->pid_cap = cap;
    }
    size_t j = fnv1a(s, n) & (b->pid_cap - 1);
    while (b->pid_text[j]) {
        if (b->pid_len[j] == n && memcmp(b->pid_text[j], s, n) == 0) return b->pid_index[j];
        j = (j + 1) & (b->pid_cap - 1);
    }
    char *copy = malloc(n + 1);
    if (!copy) return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    b->pid_text[j] = copy;
    b->pid_len[j] = n;
    b->pid_index[j] = b->t->n_problems;
    return b->t->n_problems++;
}

static void build_release(trace_build *b)
{
    for (size_t i = 0; i < b->pid_cap; i++) free(b->pid_text[i]);
    free(b->pid_text), free(b->pid_len), free(b->pid_index);
}

/* ---- JSON scanning -------------------------------------------------------- */

typedef struct scan {
    const char *p, *beg, *end;
    const char *why; /* first error, static text */
} scan;

static bool fail(scan *s, const char *why)
{
    if (!s->why) s->why = why;
    return false;
}

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) s->p++;
}

static bool expect(scan *s, char c, const char *why)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c) return fail(s, why);
    s->p++;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string at p (after whitespace); *raw, *n: its undecoded contents. */
static bool scan_string(scan *s, const char **raw, size_t *n)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"') return fail(s, "expected a string");
    const char *q = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *raw = q;
            *n = (size_t)(s->p - q);
            s->p++;
            return true;
        }
        if (c < 0x20) return fail(s, "control character in a string");
        if (c == '\\') {
            if (s->end - s->p < 2) break;
            char e = s->p[1];
            if (e == 'u') {
                if (s->end - s->p < 6) break;
                for (int i = 2; i < 6; i++)
                    if (hexval(s->p[i]) < 0) return fail(s, "bad \\u escape in a string");
                s->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') return fail(s, "bad escape in a string");
            s->p += 2;
            continue;
        }
        s->p++;
    }
    return fail(s, "unterminated string");
}

/* A JSON number; *is_int when it has no fraction or exponent. */
static bool scan_number(scan *s, const char **raw, size_t *n, bool *is_int)
{
    skip_ws(s);
    const char *q = s->p;
    *is_int = true;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail(s, "expected a number");
    if (*s->p == '0') s->p++;
    else
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    if (s->p < s->end && *s->p == '.') {
        *is_int = false;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *is_int = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    *raw = q;
    *n = (size_t)(s->p - q);
    return true;
}

static bool scan_int(scan *s, int64_t lo, int64_t hi, int64_t *v, const char *why)
{
    const char *raw;
    size_t n;
    bool is_int;
    if (!scan_number(s, &raw, &n, &is_int)) return false;
    if (!is_int) return fail(s, why);
    bool neg = raw[0] == '-';
    int64_t x = 0;
    for (size_t i = neg; i < n; i++) {
        if (x > (INT64_MAX - 9) / 10) return fail(s, why);
        x = x * 10 + (raw[i] - '0');
    }
    if (neg) x = -x;
    if (x < lo || x > hi) return fail(s, why);
    *v = x;
    return true;
}

static bool scan_float(scan *s, float *v)
{
    const char *raw;
    size_t n;
    bool is_int;
    if (!scan_number(s, &raw, &n, &is_int)) return false;
    char buf[64];
    if (n >= sizeof buf) return fail(s, "number too long");
    memcpy(buf, raw, n);
    buf[n] = '\0';
    char *endp;
    *v = strtof(buf, &endp);
    if (endp != buf + n) return fail(s, "bad number");
    return true;
}

static bool skip_value(scan *s, int depth)
{
    if (depth > TRACE_MAX_DEPTH) return fail(s, "values nested too deeply");
    skip_ws(s);
    if (s->p >= s->end) return fail(s, "expected a value");
    const char *raw;
    size_t n;
    bool is_int;
    char c = *s->p;
    if (c == '"') return scan_string(s, &raw, &n);
    if (c == '-' || (c >= '0' && c <= '9')) return scan_number(s, &raw, &n, &is_int);
    if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                if (!scan_string(s, &raw, &n) || !expect(s, ':', "expected ':'")) return false;
            }
            if (!skip_value(s, depth + 1)) return false;
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            return expect(s, close, c == '[' ? "expected ',' or ']'" : "expected ',' or '}'");
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t w = strlen(words[i]);
        if ((size_t)(s->end - s->p) >= w && memcmp(s->p, words[i], w) == 0) {
            s->p += w;
            return true;
        }
    }
    return fail(s, "expected a value");
}

/* ---- one record ----------------------------------------------------------- */

enum { K_PROBLEM = 1, K_TOKEN = 2, K_LAYER = 4, K_EXPERTS = 8, K_PROBS = 16 };

static bool key_is(const char *raw, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(raw, name, n) == 0;
}

static bool parse_line(scan *s, trace_build *b, size_t line, bool *oom)
{
    mp_trace *t = b->t;
    uint32_t experts[MP_TRACE_MAX_K];
    float probs[MP_TRACE_MAX_K];
    uint32_t k = 0, n_probs = 0;
    int64_t token = 0, layer = 0;
    const char *pid_raw = NULL;
    size_t pid_n = 0;
    unsigned seen = 0;

    if (!expect(s, '{', "expected '{' (one JSON object per line)")) return false;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') return fail(s, "empty object");
    for (;;) {
        const char *key;
        size_t kn;
        if (!scan_string(s, &key, &kn) || !expect(s, ':', "expected ':'")) return false;
        unsigned bit = key_is(key, kn, "problem_id")     ? K_PROBLEM
                       : key_is(key, kn, "token_idx")    ? K_TOKEN
                       : key_is(key, kn, "layer")        ? K_LAYER
                       : key_is(key, kn, "experts")      ? K_EXPERTS
                       : key_is(key, kn, "gating_probs") ? K_PROBS
                                                         : 0;
        if (bit & seen) return fail(s, "duplicate key");
        seen |= bit;
        skip_ws(s);
        if (bit == K_PROBLEM) {
            /* an integer or a string; interned by its raw text */
            const char *q = s->p;
            if (s->p < s->end && *s->p == '"') {
                const char *r;
                size_t rn;
                if (!scan_string(s, &r, &rn)) return false;
            } else if (s->p >= s->end || (*s->p != '-' && (*s->p < '0' || *s->p > '9'))) {
                return fail(s, "problem_id must be an integer or a string");
            } else {
                int64_t v;
                if (!scan_int(s, INT64_MIN + 1, INT64_MAX, &v, "problem_id must be an integer or a string"))
                    return false;
            }
            pid_raw = q;
            pid_n = (size_t)(s->p - q);
        } else if (bit == K_TOKEN) {
            if (!scan_int(s, 0, INT64_MAX, &token, "token_idx must be an integer >= 0")) return false;
        } else if (bit == K_LAYER) {
            if (!scan_int(s, 0, MP_TRACE_MAX_LAYER, &layer, "layer must be an integer in [0, 65535]"))
                return false;
        } else if (bit == K_EXPERTS || bit == K_PROBS) {
            uint32_t n = 0;
            if (!expect(s, '[', "expected '['")) return false;
            skip_ws(s);
            if (s->p < s->end && *s->p == ']') s->p++;
            else
                for (;;) {
                    if (n == MP_TRACE_MAX_K) return fail(s, "more than 256 experts in one record");
                    if (bit == K_EXPERTS) {
                        int64_t v;
                        if (!scan_int(s, 0, MP_TRACE_MAX_EXPERT, &v, "an expert must be an integer in [0, 1048575]"))
                            return false;
                        experts[n++] = (uint32_t)v;
                    } else {
                        if (!scan_float(s, &probs[n++])) return false;
                    }
                    skip_ws(s);
                    if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                    }
                    if (!expect(s, ']', "expected ',' or ']'")) return false;
                    break;
                }
            if (bit == K_EXPERTS) k = n;
            else n_probs = n;
        } else if (!skip_value(s, 0)) {
            return false;
        }
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (!expect(s, '}', "expected ',' or '}'")) return false;
        break;
    }
    skip_ws(s);
    if (s->p != s->end) return fail(s, "text after the object");
    if (!(seen & K_PROBLEM)) return fail(s, "missing key problem_id");
    if (!(seen & K_TOKEN)) return fail(s, "missing key token_idx");
    if (!(seen & K_LAYER)) return fail(s, "missing key layer");
    if (!(seen & K_EXPERTS)) return fail(s, "missing key experts");
    if (k == 0) return fail(s, "experts is empty");
    if ((seen & K_PROBS) && n_probs != k) return fail(s, "gating_probs and experts differ in length");
    for (uint32_t i = 0; i < k; i++)
        for (uint32_t j = 0; j < i; j++)
            if (experts[i] == experts[j]) return fail(s, "an expert appears twice in experts");

    int64_t problem = intern_problem(b, pid_raw, pid_n);
    if (problem < 0 || problem > UINT32_MAX - 1 ||
        !grow((void **)&t->recs, &b->cap_recs, t->n_recs + 1, sizeof *t->recs)) {
        *oom = true;
        return false;
    }
    if (!grow((void **)&t->experts, &b->cap_experts, b->n_vals + k, sizeof *t->experts) ||
        !grow((void **)&t->probs, &b->cap_probs, b->n_vals + k, sizeof *t->probs)) {
        *oom = true;
        return false;
    }
    mp_trace_rec *r = &t->recs[t->n_recs++];
    r->problem = (uint32_t)problem;
    r->layer = (uint32_t)layer;
    r->token_idx = token;
    r->k = k;
    r->line = line < UINT32_MAX ? (uint32_t)line : UINT32_MAX;
    r->off = b->n_vals;
    r->has_probs = (seen & K_PROBS) != 0;
    for (uint32_t i = 0; i < k; i++) {
        t->experts[b->n_vals + i] = experts[i];
        t->probs[b->n_vals + i] = (seen & K_PROBS) ? probs[i] : 0.0f;
        if (experts[i] + 1 > t->n_experts) t->n_experts = experts[i] + 1;
    }
    b->n_vals += k;
    if ((uint32_t)layer + 1 > t->n_layers) t->n_layers = (uint32_t)layer + 1;
    if (k > t->k_max) t->k_max = k;
    return true;
}

int mp_trace_parse(const char *name, const char *buf, size_t len, mp_trace **out, mp_err *err)
{
    *out = NULL;
    trace_build b = {0};
    int rc = MP_OK;
    b.t = calloc(1, sizeof *b.t);
    if (!b.t) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory reading the trace", name);
    size_t line = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        scan s = {.p = p, .beg = p, .end = le, .why = NULL};
        skip_ws(&s);
        if (s.p < s.end) {
            bool oom = false;
            if (!parse_line(&s, &b, line, &oom)) {
                if (oom) {
                    rc = mp_err_set(err, MP_E_NOMEM, "%s:%zu: out of memory reading the trace", name, line);
                } else {
                    rc = mp_err_set(err, MP_E_CORRUPT, "%s:%zu: %s (column %zu)", name, line,
                                    s.why ? s.why : "malformed record", (size_t)(s.p - s.beg) + 1);
                }
                goto done;
            }
        }
        p = nl ? nl + 1 : end;
    }
done:
    build_release(&b);
    if (rc != MP_OK) {
        mp_trace_free(b.t);
        return rc;
    }
    *out = b.t;
    return MP_OK;
}

int mp_trace_read(const char *path, mp_trace **out, mp_err *err)
{
    *out = NULL;
    int rc = MP_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mp_err_set(err, MP_E_IO, "%s: cannot open trace: %s", path, strerror(errno));
    for (;;) {
        if (!grow((void **)&buf, &cap, len + 65536, 1)) {
            rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory reading the trace (%zu bytes read)", path, len);
            goto done;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = mp_err_set(err, MP_E_IO, "%s: read error at byte %zu", path, len);
        goto done;
    }
    rc = mp_trace_parse(path, buf, len, out, err);
done:
    free(buf);
    fclose(f);
    return rc;
}

void mp_trace_free(mp_trace *t)
{
    if (!t) return;
    free(t->recs);
    free(t->experts);
    free(t->probs);
    free(t);
}

/* ---- writer --------------------------------------------------------------- */

struct mp_trace_writer {
    FILE *f;
    char *path;
    char *dataset; /* already escaped for JSON, or NULL */
};

static char *json_escape(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n * 6 + 1);
    if (!o) return NULL;
    char *q = o;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *q++ = '\\';
            *q++ = (char)c;
        } else if (c < 0x20) {
            q += sprintf(q, "\\u%04x", c);
        } else {
            *q++ = (char)c;
        }
    }
    *q = '\0';
    return o;
}

int mp_trace_writer_open(const char *path, const char *dataset, mp_trace_writer **out, mp_err *err)
{
    *out = NULL;
    mp_trace_writer *w = calloc(1, sizeof *w);
    if (!w) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory opening the trace", path);
    w->path = strdup(path);
    w->dataset = dataset ? json_escape(dataset) : NULL;
    if (!w->path || (dataset && !w->dataset)) {
        free(w->path), free(w->dataset), free(w);
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory opening the trace", path);
    }
    w->f = fopen(path, "w");
    if (!w->f) {
        int e = errno;
        free(w->path), free(w->dataset), free(w);
        return mp_err_set(err, MP_E_IO, "%s: cannot create trace: %s", path, strerror(e));
    }
    *out = w;
    return MP_OK;
}

int mp_trace_writer_write(mp_trace_writer *w, int64_t problem_id, int64_t token_idx, uint32_t layer,
                          const int32_t *experts, const float *probs, uint32_t k, mp_err *err)
{
    if (k == 0 || k > MP_TRACE_MAX_K || token_idx < 0 || layer > MP_TRACE_MAX_LAYER)
        return mp_err_set(err, MP_E_INVAL, "%s: bad trace record (k=%u token_idx=%lld layer=%u)", w->path, k,
                          (long long)token_idx, layer);
    for (uint32_t i = 0; i < k; i++)
        if (experts[i] < 0 || experts[i] > MP_TRACE_MAX_EXPERT)
            return mp_err_set(err, MP_E_INVAL, "%s: bad expert %d in a trace record (layer %u)", w->path,
                              experts[i], layer);
    FILE *f = w->f;
    if (w->dataset) fprintf(f, "{\"dataset\": \"%s\", ", w->dataset);
    else fputc('{', f);
    fprintf(f, "\"problem_id\": %lld, \"token_idx\": %lld, \"layer\": %u, \"experts\": [", (long long)problem_id,
            (long long)token_idx, layer);
    for (uint32_t i = 0; i < k; i++) fprintf(f, i ? ", %d" : "%d", experts[i]);
    fputc(']', f);
    if (probs) {
        fputs(", \"gating_probs\": [", f);
        for (uint32_t i = 0; i < k; i++) fprintf(f, i ? ", %.9g" : "%.9g", (double)probs[i]);
        fputc(']', f);
    }
    if (fputs("}\n", f) == EOF || ferror(f))
        return mp_err_set(err, MP_E_IO, "%s: write error: %s", w->path, strerror(errno));
    return MP_OK;
}

int mp_trace_writer_close(mp_trace_writer *w, mp_err *err)
{
    if (!w) return MP_OK;
    int rc = MP_OK;
    bool bad = ferror(w->f) != 0;
    if (fclose(w->f) != 0 || bad) rc = mp_err_set(err, MP_E_IO, "%s: error writing the trace", w->path);
    free(w->path);
    free(w->dataset);
    free(w);
    return rc;
}
