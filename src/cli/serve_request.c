/* moepager serve: OpenAI request bodies (jansson) and error replies. */
#include "serve_request.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *msg, size_t cap, const char **param, const char *p, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bad(char *msg, size_t cap, const char **param, const char *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap) vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    *param = p;
    return -1;
}

/* A string duplicate of a JSON string of length n (may hold NULs: they are
 * kept, the text is cut there by C string users, which is harmless). */
static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A message's content: a string, null, or an array of parts of which the
 * {"type":"text","text":...} ones are joined. NULL + *oom on OOM; NULL on a
 * bad shape. */
static char *content_text(json_t *c, bool *oom)
{
    *oom = false;
    if (!c || json_is_null(c)) {
        char *d = dup_n("", 0);
        *oom = !d;
        return d;
    }
    if (json_is_string(c)) {
        char *d = dup_n(json_string_value(c), json_string_length(c));
        *oom = !d;
        return d;
    }
    if (!json_is_array(c)) return NULL;
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type)) return NULL;
        if (strcmp(json_string_value(type), "text")) continue; /* images etc.: not for a text model */
        if (!json_is_string(text)) return NULL;
        total += json_string_length(text);
    }
    char *d = malloc(total + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    size_t off = 0;
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (strcmp(json_string_value(type), "text")) continue;
        memcpy(d + off, json_string_value(text), json_string_length(text));
        off += json_string_length(text);
    }
    d[off] = '\0';
    return d;
}

/* A number field: absent or null leaves *out; else it must be a finite
 * number within [lo, hi]. */
static int get_num(json_t *o, const char *key, double lo, double hi, double *out, char *msg, size_t cap,
                   const char **param)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return bad(msg, cap, param, key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) return bad(msg, cap, param, key, "'%s' must be in [%g, %g]", key, lo, hi);
    *out = d;
    return 0;
}

/* An integer field (a real with no fraction is accepted, as JavaScript
 * clients send 5.0 as 5 anyway). */
static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *present, char *msg,
                   size_t cap, const char **param)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) x = (int64_t)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15)
        x = (int64_t)json_real_value(v);
    else return bad(msg, cap, param, key, "'%s' must be an integer", key);
    if (x < lo || x > hi)
        return bad(msg, cap, param, key, "'%s' must be in [%lld, %lld]", key, (long long)lo, (long long)hi);
    *out = x;
    if (present) *present = true;
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, char *msg, size_t cap, const char **param)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bad(msg, cap, param, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

void srv_request_free(srv_request *r)
{
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

static int parse_messages(json_t *root, srv_request *r, char *msg, size_t cap, const char **param)
{
    json_t *m = json_object_get(root, "messages");
    if (!m) return bad(msg, cap, param, "messages", "'messages' is required");
    if (!json_is_array(m)) return bad(msg, cap, param, "messages", "'messages' must be an array");
    if (json_array_size(m) == 0) return bad(msg, cap, param, "messages", "'messages' must not be empty");
    if (!(r->msgs = calloc(json_array_size(m), sizeof *r->msgs)))
        return bad(msg, cap, param, NULL, "out of memory");
    size_t i;
    json_t *x;
    json_array_foreach(m, i, x) {
        if (!json_is_object(x)) return bad(msg, cap, param, "messages", "messages[%zu] must be an object", i);
        json_t *role = json_object_get(x, "role");
        if (!json_is_string(role))
            return bad(msg, cap, param, "messages", "messages[%zu].role must be a string", i);
        bool oom;
        char *content = content_text(json_object_get(x, "content"), &oom);
        if (!content)
            return bad(msg, cap, param, "messages",
                       oom ? "out of memory" : "messages[%zu].content must be a string or an array of text parts", i);
        r->msgs[r->n_msgs].content = content;
        if (!(r->msgs[r->n_msgs].role = dup_n(json_string_value(role), json_string_length(role)))) {
            r->n_msgs++;
            return bad(msg, cap, param, NULL, "out of memory");
        }
        r->n_msgs++;
    }
    return 0;
}

static int parse_prompt(json_t *root, srv_request *r, char *msg, size_t cap, const char **param)
{
    json_t *p = json_object_get(root, "prompt");
    if (!p) return bad(msg, cap, param, "prompt", "'prompt' is required");
    /* a one-string array is the same prompt (the batch form with one entry) */
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (!json_is_string(p)) return bad(msg, cap, param, "prompt", "'prompt' must be a string");
    if (!(r->prompt = dup_n(json_string_value(p), json_string_length(p))))
        return bad(msg, cap, param, NULL, "out of memory");
    return 0;
}

static int parse_stop(json_t *root, srv_request *r, char *msg, size_t cap, const char **param)
{
    json_t *s = json_object_get(root, "stop");
    if (!s || json_is_null(s)) return 0;
    if (json_is_string(s)) {
        if (json_string_length(s) == 0) return 0;
        if (!(r->stop[r->n_stop] = dup_n(json_string_value(s), json_string_length(s))))
            return bad(msg, cap, param, NULL, "out of memory");
        r->n_stop++;
        return 0;
    }
    if (!json_is_array(s)) return bad(msg, cap, param, "stop", "'stop' must be a string or an array of strings");
    if (json_array_size(s) > SRV_MAX_STOP)
        return bad(msg, cap, param, "stop", "'stop' holds at most %d strings", SRV_MAX_STOP);
    size_t i;
    json_t *x;
    json_array_foreach(s, i, x) {
        if (!json_is_string(x)) return bad(msg, cap, param, "stop", "stop[%zu] must be a string", i);
        if (json_string_length(x) == 0) continue;
        if (!(r->stop[r->n_stop] = dup_n(json_string_value(x), json_string_length(x))))
            return bad(msg, cap, param, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

static int parse_fields(json_t *root, bool chat, srv_request *r, char *msg, size_t cap, const char **param)
{
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model)) return bad(msg, cap, param, "model", "'model' must be a string");
        if (!(r->model = dup_n(json_string_value(model), json_string_length(model))))
            return bad(msg, cap, param, NULL, "out of memory");
    }
    if (chat ? parse_messages(root, r, msg, cap, param) : parse_prompt(root, r, msg, cap, param)) return -1;

    int64_t v = -1;
    if (get_int(root, "max_tokens", 1, 1 << 24, &v, NULL, msg, cap, param)) return -1;
    if (get_int(root, "max_completion_tokens", 1, 1 << 24, &v, NULL, msg, cap, param)) return -1;
    r->max_tokens = (int)v;
    if (get_int(root, "n", 1, 1, &v, NULL, msg, cap, param)) return -1; /* one choice only */

    double d = r->sp.temp;
    if (get_num(root, "temperature", 0, 100, &d, msg, cap, param)) return -1;
    r->sp.temp = (float)d;
    d = r->sp.top_p;
    if (get_num(root, "top_p", 0, 1, &d, msg, cap, param)) return -1;
    r->sp.top_p = (float)d;
    d = r->sp.min_p;
    if (get_num(root, "min_p", 0, 1, &d, msg, cap, param)) return -1;
    r->sp.min_p = (float)d;
    d = r->sp.repeat_penalty;
    if (get_num(root, "repeat_penalty", 0, 100, &d, msg, cap, param)) return -1;
    if (get_num(root, "repetition_penalty", 0, 100, &d, msg, cap, param)) return -1;
    r->sp.repeat_penalty = (float)d;
    v = r->sp.top_k;
    if (get_int(root, "top_k", 0, 1 << 24, &v, NULL, msg, cap, param)) return -1;
    r->sp.top_k = (int32_t)v;
    v = r->sp.repeat_last_n;
    if (get_int(root, "repeat_last_n", 0, 1 << 24, &v, NULL, msg, cap, param)) return -1;
    r->sp.repeat_last_n = (int32_t)v;
    /* any 64-bit seed: JSON integers are signed in jansson; a negative one is
     * taken modulo 2^64 */
    v = 0;
    if (get_int(root, "seed", INT64_MIN, INT64_MAX, &v, &r->has_seed, msg, cap, param)) return -1;
    r->sp.seed = (uint64_t)v;

    if (get_bool(root, "stream", &r->stream, msg, cap, param)) return -1;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return bad(msg, cap, param, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, msg, cap, param)) return -1;
    }
    return parse_stop(root, r, msg, cap, param);
}

int srv_request_parse(const char *body, size_t len, bool chat, const mp_sampler_params *defaults, srv_request *out,
                      char *msg, size_t cap, const char **param)
{
    memset(out, 0, sizeof *out);
    *param = NULL;
    if (cap) msg[0] = '\0';
    json_error_t je;
    /* JSON_REJECT_DUPLICATES: {"stream":false,"stream":true} means nothing sure */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return bad(msg, cap, param, NULL, "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc = -1;
    if (!json_is_object(root)) {
        bad(msg, cap, param, NULL, "the request body must be a JSON object");
        goto done;
    }
    out->chat = chat;
    out->sp = *defaults;
    if (parse_fields(root, chat, out, msg, cap, param)) goto done;
    rc = 0;
done:
    json_decref(root);
    if (rc) {
        const char *p = *param;
        srv_request_free(out);
        *param = p;
    }
    return rc;
}

char *srv_error_json(const char *message, const char *type, const char *param, const char *code)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", message, "type", type, "param", param,
                          "code", code);
    if (!e) {
        /* a message that is not valid UTF-8 (it quotes the request) */
        e = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", "invalid request", "type", type, "param",
                      param, "code", code);
        if (!e) return NULL;
    }
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return s;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the UTF-8 sequence starting with lead byte c (0: not a lead). */
static int utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Whether s[0..n) (n = utf8_len(s[0]), all present) is a valid sequence:
 * continuation bytes, no overlong forms, no surrogates, <= U+10FFFF. */
static bool utf8_valid(const unsigned char *s, int n)
{
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return false;
    if (n == 3) {
        if (s[0] == 0xE0 && s[1] < 0xA0) return false; /* overlong */
        if (s[0] == 0xED && s[1] >= 0xA0) return false; /* surrogate */
    } else if (n == 4) {
        if (s[0] == 0xF0 && s[1] < 0x90) return false;
        if (s[0] == 0xF4 && s[1] >= 0x90) return false;
    }
    return true;
}

size_t srv_utf8_incomplete_tail(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    /* look back at most 3 bytes for a lead byte whose sequence runs past n */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: keep looking */
        int len = utf8_len(c);
        if (len > (int)back) {
            /* still possibly valid: the bytes present must be continuations */
            for (size_t i = 1; i < back; i++)
                if ((s[n - back + i] & 0xC0) != 0x80) return 0;
            return back;
        }
        return 0;
    }
    return 0;
}

int srv_utf8_append_clean(char **dst, size_t *len, size_t *cap, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    /* worst case: every byte becomes U+FFFD (3 bytes) */
    if (n > (SIZE_MAX - *len - 1) / 3) return -1;
    size_t need = *len + 3 * n + 1;
    if (need > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < need) c *= 2;
        char *d = realloc(*dst, c);
        if (!d) return -1;
        *dst = d;
        *cap = c;
    }
    char *d = *dst + *len;
    for (size_t i = 0; i < n;) {
        int l = utf8_len(s[i]);
        if (l > 0 && i + (size_t)l <= n && s[i] != 0 && utf8_valid(s + i, l)) {
            memcpy(d, s + i, (size_t)l);
            d += l;
            i += (size_t)l;
        } else {
            /* an invalid byte (or a NUL, which C strings downstream would cut) */
            memcpy(d, "\xEF\xBF\xBD", 3);
            d += 3;
            i++;
        }
    }
    *d = '\0';
    *len = (size_t)(d - *dst);
    return 0;
}
