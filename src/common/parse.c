/* Strict value parsers: see parse.h. Item parsers take (s, len) so that
 * lists parse in place without copying items. */
#include "common/parse.h"

#include "moepager/status.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Case-insensitive: does s[0, len) equal the NUL-terminated word? */
static bool eq_nocase(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (wl != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (to_lower(s[i]) != word[i])
            return false;
    return true;
}

static int parse_i64_n(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == len)
        return MP_E_INVAL;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return MP_E_INVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (limit - d) / 10)
            return MP_E_INVAL;
        mag = mag * 10 + d;
    }
    /* -(2^63) has no positive int64 twin: negate in unsigned arithmetic */
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return MP_OK;
}

static const struct {
    const char *name;
    unsigned shift;
} size_units[] = {
    {"", 0},    {"b", 0},    {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},
    {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30}, {"gib", 30}, {"t", 40},
    {"tb", 40}, {"tib", 40},
};

static int parse_size_n(const char *s, size_t len, uint64_t *out)
{
    size_t i = 0;
    uint64_t ip = 0;
    if (i == len || !is_digit(s[i]))
        return MP_E_INVAL;
    for (; i < len && is_digit(s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (ip > (UINT64_MAX - d) / 10)
            return MP_E_INVAL;
        ip = ip * 10 + d;
    }
    /* fraction as frac / den; digits past the 19th are worth under
     * 1e-19 of a unit (< 1e-6 bytes even for T), so they are validated
     * and dropped */
    uint64_t frac = 0, den = 1;
    if (i < len && s[i] == '.') {
        i++;
        if (i == len || !is_digit(s[i]))
            return MP_E_INVAL;
        int kept = 0;
        for (; i < len && is_digit(s[i]); i++) {
            if (kept < 19) {
                frac = frac * 10 + (uint64_t)(s[i] - '0');
                den *= 10;
                kept++;
            }
        }
    }
    int unit = -1;
    for (size_t u = 0; u < sizeof(size_units) / sizeof(size_units[0]); u++) {
        if (eq_nocase(s + i, len - i, size_units[u].name)) {
            unit = (int)u;
            break;
        }
    }
    if (unit < 0)
        return MP_E_INVAL;
    const unsigned sh = size_units[unit].shift;
    const uint64_t mult = (uint64_t)1 << sh;
    uint64_t whole;
    if (__builtin_mul_overflow(ip, mult, &whole))
        return MP_E_INVAL;
    uint64_t part = (uint64_t)(((unsigned __int128)frac * mult) / den);
    uint64_t v;
    if (__builtin_add_overflow(whole, part, &v))
        return MP_E_INVAL;
    *out = v;
    return MP_OK;
}

int mp_parse_size(const char *s, uint64_t *out)
{
    if (!s || !out)
        return MP_E_INVAL;
    return parse_size_n(s, strlen(s), out);
}

int mp_parse_i64(const char *s, int64_t *out)
{
    if (!s || !out)
        return MP_E_INVAL;
    return parse_i64_n(s, strlen(s), out);
}

int mp_parse_f32(const char *s, float *out)
{
    if (!s || !out)
        return MP_E_INVAL;
    /* strtof would skip whitespace and accept nan/inf/hex: allow only
     * [sign] digits [. digits] [e [sign] digits] */
    size_t i = 0, nd = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    for (; is_digit(s[i]); i++)
        nd++;
    if (s[i] == '.') {
        i++;
        for (; is_digit(s[i]); i++)
            nd++;
    }
    if (nd == 0)
        return MP_E_INVAL;
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (!is_digit(s[i]))
            return MP_E_INVAL;
        while (is_digit(s[i]))
            i++;
    }
    if (s[i] != '\0')
        return MP_E_INVAL;
    errno = 0;
    char *end = NULL;
    float v = strtof(s, &end);
    if (end != s + i || errno == ERANGE || !isfinite(v))
        return MP_E_INVAL;
    *out = v;
    return MP_OK;
}

int mp_format_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (u < 6 && bytes >> (10 * (u + 1)) != 0)
        u++;
    int len;
    if (u == 0 || (bytes & (((uint64_t)1 << (10 * u)) - 1)) == 0) {
        len = snprintf(buf, cap, "%llu %s", (unsigned long long)(bytes >> (10 * u)), names[u]);
    } else {
        double v = (double)bytes / (double)((uint64_t)1 << (10 * u));
        if (v >= 1023.995 && u < 6) { /* would print as "1024.00" */
            u++;
            v /= 1024.0;
        }
        len = snprintf(buf, cap, "%.2f %s", v, names[u]);
    }
    if (len < 0 || (size_t)len >= cap)
        return MP_E_RANGE;
    return len;
}

/* Walks the comma-separated items of s, calling item(s, len, ctx, index)
 * for each; validates shape (non-empty string, no empty items, at most cap
 * items) before any output is written by the caller. */
typedef int (*item_fn)(const char *s, size_t len, void *ctx, int index);

static int for_each_item(const char *s, int cap, item_fn fn, void *ctx, int *n)
{
    if (!s || !n || cap < 0 || *s == '\0')
        return MP_E_INVAL;
    int count = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return MP_E_INVAL;
        if (count == cap)
            return MP_E_RANGE;
        int rc = fn(p, len, ctx, count);
        if (rc != MP_OK)
            return rc;
        count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = count;
    return MP_OK;
}

/* Items are parsed twice: once to validate all (so a failure leaves out[]
 * untouched), once to store. */
typedef struct {
    void *out; /* NULL: validate only */
} list_ctx;

static int i64_item(const char *s, size_t len, void *ctx, int index)
{
    list_ctx *c = ctx;
    int64_t v;
    int rc = parse_i64_n(s, len, &v);
    if (rc == MP_OK && c->out)
        ((int64_t *)c->out)[index] = v;
    return rc;
}

static int size_item(const char *s, size_t len, void *ctx, int index)
{
    list_ctx *c = ctx;
    uint64_t v;
    int rc = parse_size_n(s, len, &v);
    if (rc == MP_OK && c->out)
        ((uint64_t *)c->out)[index] = v;
    return rc;
}

int mp_parse_int_list(const char *s, int64_t *out, int cap, int *n)
{
    list_ctx c = {NULL};
    int cnt;
    int rc = for_each_item(s, cap, i64_item, &c, &cnt);
    if (rc != MP_OK)
        return rc;
    if (!out)
        return MP_E_INVAL;
    c.out = out;
    for_each_item(s, cap, i64_item, &c, n);
    return MP_OK;
}

int mp_parse_size_list(const char *s, uint64_t *out, int cap, int *n)
{
    list_ctx c = {NULL};
    int cnt;
    int rc = for_each_item(s, cap, size_item, &c, &cnt);
    if (rc != MP_OK)
        return rc;
    if (!out)
        return MP_E_INVAL;
    c.out = out;
    for_each_item(s, cap, size_item, &c, n);
    return MP_OK;
}

static int str_item(const char *s, size_t len, void *ctx, int index) { return MP_OK; }

int mp_parse_str_list(const char *s, char *buf, size_t buf_cap, const char **items, int cap,
                      int *n)
{
    int cnt;
    int rc = for_each_item(s, cap, str_item, NULL, &cnt);
    if (rc != MP_OK)
        return rc;
    if (!buf || !items)
        return MP_E_INVAL;
    size_t len = strlen(s);
    if (len + 1 > buf_cap)
        return MP_E_RANGE;
    memcpy(buf, s, len + 1);
    int k = 0;
    items[k++] = buf;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == ',') {
            buf[i] = '\0';
            items[k++] = buf + i + 1;
        }
    }
    *n = k;
    return MP_OK;
}
