/* Routing trace reading (JSON lines, parsed with jansson) and writing. */
#include "trace/trace.h"

#include <jansson.h>

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

/* ---- one record (jansson) ------------------------------------------------ */

/* Depth of nested arrays/objects in v (0 for a scalar). */
static int json_depth(const json_t *v)
{
    int d = 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) {
            int c = json_depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int c = json_depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

/* jansson's reason for a line it cannot parse, in this file's words where
 * they say more. */
static const char *load_error(const json_error_t *je)
{
    switch (json_error_code(je)) {
    case json_error_end_of_input_expected: return "text after the object";
    case json_error_duplicate_key: return "duplicate key";
    case json_error_numeric_overflow: return "number out of range";
    default: return je->text;
    }
}

static bool int_in(const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v)) return false;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return false;
    *out = (int64_t)x;
    return true;
}

/* Parses line[0..n) into a record of b. On failure returns false with *why
 * (static text, or text in whybuf) and *col (1-based), or *oom. */
static bool parse_line(const char *line_text, size_t n, trace_build *b, size_t line, bool *oom, const char **why,
                       size_t *col, char *whybuf, size_t whycap)
{
    mp_trace *t = b->t;
    uint32_t experts[MP_TRACE_MAX_K];
    float probs[MP_TRACE_MAX_K];
    uint32_t k = 0, n_probs = 0;
    int64_t token = 0, layer = 0;
    bool ok = false;
    *col = 1;
    const char *first = line_text;
    while (first < line_text + n && (*first == ' ' || *first == '\t')) first++;
    if (first < line_text + n && *first != '{') {
        *why = "expected '{' (one JSON object per line)";
        *col = (size_t)(first - line_text) + 1;
        return false;
    }
    json_error_t je;
    /* duplicates rejected: a record with two "layer"s means nothing sure */
    json_t *root = json_loadb(line_text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(whybuf, whycap, "%s", load_error(&je));
        *why = whybuf;
        *col = je.column > 0 ? (size_t)je.column : 1;
        return false;
    }
    json_t *pid = json_object_get(root, "problem_id"), *tok = json_object_get(root, "token_idx");
    json_t *lay = json_object_get(root, "layer"), *exps = json_object_get(root, "experts");
    json_t *gp = json_object_get(root, "gating_probs");
    char key[64];
    const char *pid_key = NULL;
    size_t pid_n = 0;
    if (!json_is_object(root)) *why = "expected '{' (one JSON object per line)";
    else if (json_object_size(root) == 0) *why = "empty object";
    else if (json_depth(root) > TRACE_MAX_DEPTH) *why = "values nested too deeply";
    else if (!pid) *why = "missing key problem_id";
    else if (!tok) *why = "missing key token_idx";
    else if (!lay) *why = "missing key layer";
    else if (!exps) *why = "missing key experts";
    else if (!json_is_integer(pid) && !json_is_string(pid)) *why = "problem_id must be an integer or a string";
    else if (!int_in(tok, 0, INT64_MAX, &token)) *why = "token_idx must be an integer >= 0";
    else if (!int_in(lay, 0, MP_TRACE_MAX_LAYER, &layer)) *why = "layer must be an integer in [0, 65535]";
    else if (!json_is_array(exps)) *why = "expected '[' (experts)";
    else if (json_array_size(exps) == 0) *why = "experts is empty";
    else if (json_array_size(exps) > MP_TRACE_MAX_K) *why = "more than 256 experts in one record";
    else if (gp && !json_is_array(gp)) *why = "expected '[' (gating_probs)";
    else if (gp && json_array_size(gp) > MP_TRACE_MAX_K) *why = "more than 256 experts in one record";
    else ok = true;
    if (ok) {
        k = (uint32_t)json_array_size(exps);
        for (uint32_t i = 0; i < k && ok; i++) {
            int64_t v;
            if (!int_in(json_array_get(exps, i), 0, MP_TRACE_MAX_EXPERT, &v)) {
                *why = "an expert must be an integer in [0, 1048575]";
                ok = false;
            } else {
                experts[i] = (uint32_t)v;
            }
        }
        if (gp) {
            n_probs = (uint32_t)json_array_size(gp);
            for (uint32_t i = 0; i < n_probs && ok; i++) {
                const json_t *x = json_array_get(gp, i);
                if (!json_is_number(x)) {
                    *why = "expected a number (gating_probs)";
                    ok = false;
                } else {
                    probs[i] = (float)json_number_value(x);
                }
            }
            if (ok && n_probs != k) *why = "gating_probs and experts differ in length", ok = false;
        }
        for (uint32_t i = 0; i < k && ok; i++)
            for (uint32_t j = 0; j < i; j++)
                if (experts[i] == experts[j]) {
                    *why = "an expert appears twice in experts";
                    ok = false;
                    break;
                }
    }
    if (ok) {
        /* problem ids: an integer and a string are different ids, even "1" and 1 */
        if (json_is_integer(pid)) {
            pid_n = (size_t)snprintf(key, sizeof key, "i%lld", (long long)json_integer_value(pid));
            pid_key = key;
        }
    }
    if (!ok) {
        json_decref(root);
        return false;
    }
    char *skey = NULL;
    if (!pid_key) {
        size_t sl = json_string_length(pid);
        if (!(skey = malloc(sl + 2))) {
            json_decref(root);
            *oom = true;
            return false;
        }
        skey[0] = 's';
        memcpy(skey + 1, json_string_value(pid), sl);
        skey[sl + 1] = '\0';
        pid_key = skey;
        pid_n = sl + 1;
    }
    int64_t problem = intern_problem(b, pid_key, pid_n);
    free(skey);
    json_decref(root);
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
    r->has_probs = gp != NULL;
    for (uint32_t i = 0; i < k; i++) {
        t->experts[b->n_vals + i] = experts[i];
        t->probs[b->n_vals + i] = gp ? probs[i] : 0.0f;
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
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < le) {
            bool oom = false;
            const char *why = NULL;
            char whybuf[160];
            size_t col = 1;
            if (!parse_line(p, (size_t)(le - p), &b, line, &oom, &why, &col, whybuf, sizeof whybuf)) {
                if (oom) {
                    rc = mp_err_set(err, MP_E_NOMEM, "%s:%zu: out of memory reading the trace", name, line);
                } else {
                    rc = mp_err_set(err, MP_E_CORRUPT, "%s:%zu: %s (column %zu)", name, line,
                                    why ? why : "malformed record", col);
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
