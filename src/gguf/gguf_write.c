/* GGUF v3 writer. Metadata values are deep-copied into the writer; tensor
 * data is taken from caller pointers or produced by a fill callback one
 * tensor at a time, so a file of any size is written with one buffer of the
 * largest filled tensor plus a 1 MiB write buffer. Layout matches what
 * llama.cpp and gguf-py write: header, metadata, tensor infos, zero padding
 * to the alignment, then each tensor's data padded with zeros to the
 * alignment (the last one included); a file without tensors ends right
 * after its header. Rewriting a llama.cpp-made file through the reader and
 * this writer reproduces it byte for byte (checked by test_gguf_rewrite). */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wkv {
    char *key; /* NUL-terminated, owned */
    mp_gguf_value v; /* owned (strings and array data malloc'ed) */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[MP_GGUF_MAX_DIMS];
    const void *data; /* caller's, or NULL: produced by fill */
    uint64_t size, offset; /* offset relative to the data section */
} wtensor;

struct mp_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* ---- owned values ------------------------------------------------------- */

static void value_free(mp_gguf_value *v)
{
    if (v->type == MP_GGUF_STRING) {
        free((char *)v->v.str.ptr);
    } else if (v->type == MP_GGUF_ARRAY) {
        if (v->v.arr.type == MP_GGUF_STRING) {
            mp_gguf_str *s = (mp_gguf_str *)v->v.arr.data;
            for (uint64_t i = 0; s && i < v->v.arr.n; i++) free((char *)s[i].ptr);
        } else if (v->v.arr.type == MP_GGUF_ARRAY) {
            mp_gguf_value *e = (mp_gguf_value *)v->v.arr.data;
            for (uint64_t i = 0; e && i < v->v.arr.n; i++) value_free(&e[i]);
        }
        free((void *)v->v.arr.data);
    }
    memset(v, 0, sizeof *v);
}

static char *dup_bytes(const char *s, uint64_t len)
{
    if (len >= SIZE_MAX) return NULL;
    char *c = malloc((size_t)len + 1);
    if (!c) return NULL;
    if (len) memcpy(c, s, (size_t)len);
    c[len] = '\0';
    return c;
}

/* Deep copy; MP_E_INVAL for an unknown type or a nested element that is not
 * an array, MP_E_NOMEM. On failure dst is left empty (nothing to free). */
static int value_dup(mp_gguf_value *dst, const mp_gguf_value *src, int depth)
{
    memset(dst, 0, sizeof *dst);
    if (src->type >= MP_GGUF_VTYPE_COUNT) return MP_E_INVAL;
    if (src->type == MP_GGUF_STRING) {
        if (!src->v.str.ptr && src->v.str.len) return MP_E_INVAL;
        char *c = dup_bytes(src->v.str.ptr, src->v.str.len);
        if (!c) return MP_E_NOMEM;
        dst->type = MP_GGUF_STRING;
        dst->v.str.len = src->v.str.len;
        dst->v.str.ptr = c;
        return MP_OK;
    }
    if (src->type != MP_GGUF_ARRAY) {
        *dst = *src;
        if (dst->type == MP_GGUF_BOOL) dst->v.u64 = dst->v.u64 != 0;
        return MP_OK;
    }
    uint32_t et = src->v.arr.type;
    uint64_t n = src->v.arr.n;
    /* The reader's nesting limit, so that everything written can be read. */
    if (et >= MP_GGUF_VTYPE_COUNT || (et == MP_GGUF_ARRAY && depth + 1 >= MP_GGUF_MAX_NESTING)) return MP_E_INVAL;
    if (n && !src->v.arr.data) return MP_E_INVAL;
    size_t esz = et == MP_GGUF_STRING ? sizeof(mp_gguf_str)
               : et == MP_GGUF_ARRAY  ? sizeof(mp_gguf_value)
                                      : mp_gguf_vtype_size(et);
    if (n > SIZE_MAX / esz) return MP_E_NOMEM;
    void *data = NULL;
    if (n) {
        data = calloc((size_t)n, esz);
        if (!data) return MP_E_NOMEM;
    }
    dst->type = MP_GGUF_ARRAY;
    dst->v.arr.type = et;
    dst->v.arr.n = n;
    dst->v.arr.data = data;
    if (!n) return MP_OK;
    if (et == MP_GGUF_STRING) {
        const mp_gguf_str *s = src->v.arr.data;
        mp_gguf_str *d = data;
        for (uint64_t i = 0; i < n; i++) {
            if (!s[i].ptr && s[i].len) goto bad;
            d[i].ptr = dup_bytes(s[i].ptr ? s[i].ptr : "", s[i].len);
            if (!d[i].ptr) goto nomem;
            d[i].len = s[i].len;
        }
    } else if (et == MP_GGUF_ARRAY) {
        const mp_gguf_value *s = src->v.arr.data;
        mp_gguf_value *d = data;
        for (uint64_t i = 0; i < n; i++) {
            if (s[i].type != MP_GGUF_ARRAY) goto bad;
            int rc = value_dup(&d[i], &s[i], depth + 1);
            if (rc == MP_E_NOMEM) goto nomem;
            if (rc) goto bad;
        }
    } else {
        memcpy(data, src->v.arr.data, (size_t)n * esz);
        if (et == MP_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++) ((uint8_t *)data)[i] = ((uint8_t *)data)[i] != 0;
    }
    return MP_OK;
bad:
    value_free(dst);
    return MP_E_INVAL;
nomem:
    value_free(dst);
    return MP_E_NOMEM;
}

/* ---- writer object ------------------------------------------------------ */

mp_gguf_writer *mp_gguf_writer_create(void) { return calloc(1, sizeof(mp_gguf_writer)); }

void mp_gguf_writer_free(mp_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        value_free(&w->kv[i].v);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Takes ownership of *v (already a deep copy) on MP_OK; frees it otherwise. */
static int set_owned(mp_gguf_writer *w, const char *key, mp_gguf_value *v)
{
    if (!w || !key) {
        value_free(v);
        return MP_E_INVAL;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            value_free(&w->kv[i].v);
            w->kv[i].v = *v;
            return MP_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *n = realloc(w->kv, nc * sizeof *n);
        if (!n) goto nomem;
        w->kv = n;
        w->cap_kv = nc;
    }
    char *k = strdup(key);
    if (!k) goto nomem;
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].v = *v;
    w->n_kv++;
    return MP_OK;
nomem:
    value_free(v);
    return MP_E_NOMEM;
}

static int set_scalar(mp_gguf_writer *w, const char *key, mp_gguf_value v) { return set_owned(w, key, &v); }

int mp_gguf_writer_set_u32(mp_gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, (mp_gguf_value){.type = MP_GGUF_UINT32, .v.u64 = v});
}

int mp_gguf_writer_set_i32(mp_gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, (mp_gguf_value){.type = MP_GGUF_INT32, .v.i64 = v});
}

int mp_gguf_writer_set_u64(mp_gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, (mp_gguf_value){.type = MP_GGUF_UINT64, .v.u64 = v});
}

int mp_gguf_writer_set_f32(mp_gguf_writer *w, const char *key, float v)
{
    return set_scalar(w, key, (mp_gguf_value){.type = MP_GGUF_FLOAT32, .v.f64 = v});
}

int mp_gguf_writer_set_bool(mp_gguf_writer *w, const char *key, bool v)
{
    return set_scalar(w, key, (mp_gguf_value){.type = MP_GGUF_BOOL, .v.u64 = v});
}

int mp_gguf_writer_set_str(mp_gguf_writer *w, const char *key, const char *v)
{
    if (!v) return MP_E_INVAL;
    mp_gguf_value src = {.type = MP_GGUF_STRING, .v.str = {strlen(v), v}}, dst;
    int rc = value_dup(&dst, &src, 0);
    return rc ? rc : set_owned(w, key, &dst);
}

int mp_gguf_writer_set_arr(mp_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, const void *data)
{
    if (elem_type >= MP_GGUF_VTYPE_COUNT || elem_type == MP_GGUF_STRING || elem_type == MP_GGUF_ARRAY)
        return MP_E_INVAL;
    mp_gguf_value src = {.type = MP_GGUF_ARRAY, .v.arr = {elem_type, n, data}}, dst;
    int rc = value_dup(&dst, &src, 0);
    return rc ? rc : set_owned(w, key, &dst);
}

int mp_gguf_writer_set_arr_str(mp_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                               const uint64_t *lens)
{
    if (n && !strs) return MP_E_INVAL;
    if (n > SIZE_MAX / sizeof(mp_gguf_str)) return MP_E_NOMEM;
    mp_gguf_str *tmp = n ? malloc((size_t)n * sizeof *tmp) : NULL;
    if (n && !tmp) return MP_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        tmp[i].ptr = strs[i];
        tmp[i].len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
    }
    mp_gguf_value src = {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_STRING, n, tmp}}, dst;
    int rc = value_dup(&dst, &src, 0);
    free(tmp);
    return rc ? rc : set_owned(w, key, &dst);
}

int mp_gguf_writer_set_value(mp_gguf_writer *w, const char *key, const mp_gguf_value *v)
{
    if (!v) return MP_E_INVAL;
    mp_gguf_value dst;
    int rc = value_dup(&dst, v, 0);
    return rc ? rc : set_owned(w, key, &dst);
}

int mp_gguf_writer_add_tensor(mp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const int64_t *ne, const void *data)
{
    if (!w || !name || !ne || n_dims < 1 || n_dims > MP_GGUF_MAX_DIMS) return MP_E_INVAL;
    if (strlen(name) >= MP_GGUF_MAX_TENSOR_NAME) return MP_E_INVAL;
    const mp_type_info *ti = mp_type_get(type);
    if (ti->blck_size == 0) return MP_E_INVAL;
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    int64_t nel = 1;
    for (int d = 0; d < MP_GGUF_MAX_DIMS; d++) {
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0 || __builtin_mul_overflow(nel, t.ne[d], &nel)) return MP_E_INVAL;
    }
    if (t.ne[0] % ti->blck_size != 0) return MP_E_INVAL;
    if (nel > 0) {
        uint64_t row = (uint64_t)(t.ne[0] / ti->blck_size) * ti->type_size;
        if (__builtin_mul_overflow(row, (uint64_t)(nel / t.ne[0]), &t.size)) return MP_E_INVAL;
        if (t.size > (uint64_t)SIZE_MAX / 2) return MP_E_INVAL;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return MP_E_INVAL;
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *n = realloc(w->t, nc * sizeof *n);
        if (!n) return MP_E_NOMEM;
        w->t = n;
        w->cap_t = nc;
    }
    t.name = strdup(name);
    if (!t.name) return MP_E_NOMEM;
    w->t[w->n_t++] = t;
    return MP_OK;
}

/* ---- output sink: a file (through a 1 MiB buffer) or a growing buffer --- */

#define SINK_BUF (1u << 20)

typedef struct sink {
    int fd;            /* -1: memory */
    const char *name;  /* for messages */
    uint8_t *buf;      /* file: staging buffer; memory: the image */
    size_t len, cap;
    uint64_t written;  /* bytes emitted so far (file offset) */
    mp_err *err;
} sink;

static int sink_flush(sink *s)
{
    size_t done = 0;
    while (s->fd >= 0 && done < s->len) {
        ssize_t r = write(s->fd, s->buf + done, s->len - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return mp_err_set(s->err, MP_E_IO, "%s: write at byte %" PRIu64 " failed: %s", s->name,
                              s->written - s->len + done, strerror(errno));
        }
        done += (size_t)r;
    }
    if (s->fd >= 0) s->len = 0;
    return MP_OK;
}

static int sink_reserve(sink *s, size_t n)
{
    if (s->fd >= 0) {
        if (s->cap - s->len >= n) return MP_OK;
        return sink_flush(s); /* caller writes large pieces directly */
    }
    if (s->cap - s->len >= n) return MP_OK;
    size_t nc = s->cap ? s->cap : 4096;
    while (nc - s->len < n) {
        if (nc > SIZE_MAX / 2) return mp_err_set(s->err, MP_E_NOMEM, "%s: image too large for memory", s->name);
        nc *= 2;
    }
    uint8_t *nb = realloc(s->buf, nc);
    if (!nb) return mp_err_set(s->err, MP_E_NOMEM, "%s: out of memory growing the image to %zu bytes", s->name, nc);
    s->buf = nb;
    s->cap = nc;
    return MP_OK;
}

static int sink_write(sink *s, const void *p, size_t n)
{
    int rc;
    if (s->fd >= 0 && n >= SINK_BUF) { /* big tensor: straight to the file */
        if ((rc = sink_flush(s))) return rc;
        size_t done = 0;
        while (done < n) {
            size_t chunk = n - done < (1u << 30) ? n - done : (1u << 30);
            ssize_t r = write(s->fd, (const uint8_t *)p + done, chunk);
            if (r < 0) {
                if (errno == EINTR) continue;
                return mp_err_set(s->err, MP_E_IO, "%s: write at byte %" PRIu64 " failed: %s", s->name,
                                  s->written + done, strerror(errno));
            }
            done += (size_t)r;
        }
        s->written += n;
        return MP_OK;
    }
    if ((rc = sink_reserve(s, n))) return rc;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->written += n;
    return MP_OK;
}

static int sink_zeros(sink *s, uint64_t n)
{
    static const uint8_t zeros[4096];
    while (n) {
        size_t c = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int rc = sink_write(s, zeros, c);
        if (rc) return rc;
        n -= c;
    }
    return MP_OK;
}

static int put_u32(sink *s, uint32_t v) { return sink_write(s, &v, 4); }
static int put_u64(sink *s, uint64_t v) { return sink_write(s, &v, 8); }
static int put_str(sink *s, const char *p, uint64_t len)
{
    int rc = put_u64(s, len);
    return rc ? rc : sink_write(s, p, (size_t)len);
}

/* Scalar in its file width; the value union holds it widened. */
static int put_scalar(sink *s, const mp_gguf_value *v)
{
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        float f32;
        double f64;
    } x;
    switch (v->type) {
    case MP_GGUF_UINT8: case MP_GGUF_INT8: case MP_GGUF_BOOL: x.u8 = (uint8_t)v->v.u64; break;
    case MP_GGUF_UINT16: case MP_GGUF_INT16: x.u16 = (uint16_t)v->v.u64; break;
    case MP_GGUF_UINT32: case MP_GGUF_INT32: x.u32 = (uint32_t)v->v.u64; break;
    case MP_GGUF_FLOAT32: x.f32 = (float)v->v.f64; break;
    case MP_GGUF_FLOAT64: x.f64 = v->v.f64; break;
    default: x.u64 = v->v.u64; break;
    }
    return sink_write(s, &x, mp_gguf_vtype_size(v->type));
}

/* Value body (without its type tag). */
static int put_value(sink *s, const mp_gguf_value *v)
{
    int rc;
    if (v->type == MP_GGUF_STRING) return put_str(s, v->v.str.ptr, v->v.str.len);
    if (v->type != MP_GGUF_ARRAY) return put_scalar(s, v);
    uint32_t et = v->v.arr.type;
    uint64_t n = v->v.arr.n;
    if ((rc = put_u32(s, et)) || (rc = put_u64(s, n))) return rc;
    if (et == MP_GGUF_STRING) {
        const mp_gguf_str *e = v->v.arr.data;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = put_str(s, e[i].ptr, e[i].len))) return rc;
    } else if (et == MP_GGUF_ARRAY) {
        const mp_gguf_value *e = v->v.arr.data;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = put_value(s, &e[i]))) return rc;
    } else if (n) {
        rc = sink_write(s, v->v.arr.data, (size_t)(n * mp_gguf_vtype_size(et)));
    }
    return rc;
}

static int write_all(mp_gguf_writer *w, sink *s, mp_gguf_fill_fn fill, void *fill_ctx)
{
    int rc;
    uint32_t align = MP_GGUF_DEFAULT_ALIGNMENT;
    uint8_t *tbuf = NULL;
    size_t tbuf_size = 0;

    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        const mp_gguf_value *v = &w->kv[i].v;
        if (v->type != MP_GGUF_UINT32 || !mp_gguf_is_pow2(v->v.u64))
            return mp_err_set(s->err, MP_E_INVAL, "%s: general.alignment must be a uint32 power of two", s->name);
        align = (uint32_t)v->v.u64;
    }
    uint64_t off = 0, max_fill = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        t->offset = off;
        off += mp_gguf_align_up(t->size, align);
        if (!t->data && t->size) {
            if (!fill)
                return mp_err_set(s->err, MP_E_INVAL, "%s: tensor '%s' has no data and no fill callback was given",
                                  s->name, t->name);
            if (t->size > max_fill) max_fill = t->size;
        }
    }

    if ((rc = sink_write(s, MP_GGUF_MAGIC, 4)) || (rc = put_u32(s, MP_GGUF_VERSION_WRITTEN)) ||
        (rc = put_u64(s, w->n_t)) || (rc = put_u64(s, w->n_kv)))
        return rc;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        if ((rc = put_str(s, kv->key, strlen(kv->key))) || (rc = put_u32(s, kv->v.type)) ||
            (rc = put_value(s, &kv->v)))
            return rc;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if ((rc = put_str(s, t->name, strlen(t->name))) || (rc = put_u32(s, t->n_dims))) return rc;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if ((rc = put_u64(s, (uint64_t)t->ne[d]))) return rc;
        if ((rc = put_u32(s, t->type)) || (rc = put_u64(s, t->offset))) return rc;
    }
    if (w->n_t && (rc = sink_zeros(s, mp_gguf_align_up(s->written, align) - s->written))) return rc;

    if (max_fill) {
        tbuf_size = (size_t)max_fill;
        tbuf = malloc(tbuf_size);
        if (!tbuf)
            return mp_err_set(s->err, MP_E_NOMEM, "%s: out of memory for a %" PRIu64 "-byte tensor buffer", s->name,
                              max_fill);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        const void *src = t->data;
        if (!src && t->size) {
            memset(tbuf, 0, (size_t)t->size);
            rc = fill(fill_ctx, i, tbuf, (size_t)t->size, s->err);
            if (rc < 0) {
                mp_err_set(s->err, rc, "%s: fill callback failed for tensor '%s'", s->name, t->name);
                goto out;
            }
            src = tbuf;
        }
        if (t->size && (rc = sink_write(s, src, (size_t)t->size))) goto out;
        if ((rc = sink_zeros(s, mp_gguf_align_up(t->size, align) - t->size))) goto out;
    }
    rc = sink_flush(s);
out:
    free(tbuf);
    return rc;
}

int mp_gguf_writer_write(mp_gguf_writer *w, const char *path, mp_gguf_fill_fn fill, void *fill_ctx, mp_err *err)
{
    char *tmp = NULL;
    sink s = {.fd = -1, .name = path, .err = err};
    int rc;
    size_t n = strlen(path) + 32;
    tmp = malloc(n);
    s.buf = malloc(SINK_BUF);
    if (!tmp || !s.buf) {
        rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    s.cap = SINK_BUF;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    s.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    rc = write_all(w, &s, fill, fill_ctx);
    if (close(s.fd) != 0 && rc == MP_OK)
        rc = mp_err_set(err, MP_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    s.fd = -1;
    if (rc == MP_OK && rename(tmp, path) != 0)
        rc = mp_err_set(err, MP_E_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc != MP_OK) unlink(tmp);
out:
    free(s.buf);
    free(tmp);
    return rc;
}

int mp_gguf_writer_write_mem(mp_gguf_writer *w, mp_gguf_fill_fn fill, void *fill_ctx, void **out, size_t *out_size,
                             mp_err *err)
{
    sink s = {.fd = -1, .name = "<memory>", .err = err};
    *out = NULL;
    *out_size = 0;
    int rc = write_all(w, &s, fill, fill_ctx);
    if (rc != MP_OK) {
        free(s.buf);
        return rc;
    }
    *out = s.buf ? (void *)s.buf : malloc(1);
    *out_size = s.len;
    return *out ? MP_OK : mp_err_set(err, MP_E_NOMEM, "<memory>: out of memory");
}
