/* Helpers for the GGUF tests and the fuzz harness: a byte builder for
 * hand-made (often malformed) images, a deep value comparison, and a small
 * valid sample image that exercises every value type, nested arrays and
 * every tensor type. Header-only (static) so each test program stands alone. */
#ifndef MP_TEST_GGUF_IMAGE_H
#define MP_TEST_GGUF_IMAGE_H

#include "gguf/gguf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte builder --------------------------------------------------------- */

typedef struct gb {
    uint8_t *p;
    size_t n, cap;
} gb;

static inline void gb_bytes(gb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n) nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p) abort();
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static inline void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static inline void gb_u32(gb *b, uint32_t v) { gb_bytes(b, &v, 4); }
static inline void gb_u64(gb *b, uint64_t v) { gb_bytes(b, &v, 8); }
static inline void gb_str(gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}
static inline void gb_zeros(gb *b, size_t n)
{
    while (n--) gb_u8(b, 0);
}
static inline void gb_pad(gb *b, size_t align)
{
    while (b->n % align) gb_u8(b, 0);
}
static inline void gb_free(gb *b)
{
    free(b->p);
    *b = (gb){0};
}
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
static inline void gb_kv_u32(gb *b, const char *key, uint32_t v)
{
    gb_str(b, key);
    gb_u32(b, MP_GGUF_UINT32);
    gb_u32(b, v);
}
static inline void gb_kv_str(gb *b, const char *key, const char *v)
{
    gb_str(b, key);
    gb_u32(b, MP_GGUF_STRING);
    gb_str(b, v);
}
/* A tensor info with n_dims entries of ne. */
static inline void gb_tinfo(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                            uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, (uint64_t)ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

/* ---- deep comparison of values ------------------------------------------ */

static inline int gguf_value_eq(const mp_gguf_value *a, const mp_gguf_value *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case MP_GGUF_STRING:
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len) == 0 &&
               a->v.str.ptr[a->v.str.len] == '\0';
    case MP_GGUF_FLOAT32:
    case MP_GGUF_FLOAT64:
        return memcmp(&a->v.f64, &b->v.f64, sizeof(double)) == 0;
    case MP_GGUF_ARRAY: {
        if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n) return 0;
        uint64_t n = a->v.arr.n;
        if (a->v.arr.type == MP_GGUF_STRING) {
            const mp_gguf_str *x = a->v.arr.data, *y = b->v.arr.data;
            for (uint64_t i = 0; i < n; i++)
                if (x[i].len != y[i].len || memcmp(x[i].ptr, y[i].ptr, x[i].len) != 0 || y[i].ptr[y[i].len] != '\0')
                    return 0;
            return 1;
        }
        if (a->v.arr.type == MP_GGUF_ARRAY) {
            const mp_gguf_value *x = a->v.arr.data, *y = b->v.arr.data;
            for (uint64_t i = 0; i < n; i++)
                if (!gguf_value_eq(&x[i], &y[i])) return 0;
            return 1;
        }
        return n == 0 || memcmp(a->v.arr.data, b->v.arr.data, n * mp_gguf_vtype_size(a->v.arr.type)) == 0;
    }
    default:
        return a->v.u64 == b->v.u64;
    }
}

/* ---- the sample image ----------------------------------------------------- */

/* Deterministic tensor bytes: byte j of tensor idx. */
static inline uint8_t sample_byte(uint64_t idx, uint64_t j) { return (uint8_t)(j * 31u + idx * 7u + (j >> 8)); }

static inline int sample_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)ctx;
    (void)err;
    for (size_t j = 0; j < size; j++) ((uint8_t *)buf)[j] = sample_byte(idx, j);
    return MP_OK;
}

/* Adds one metadata key of every type (scalars, arrays of every scalar type,
 * strings with an interior NUL and an empty one, nested arrays 3 deep). */
static inline int sample_metadata(mp_gguf_writer *w)
{
    int rc = 0;
    mp_gguf_value v;
    rc |= mp_gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= mp_gguf_writer_set_str(w, "general.name", "sample");
    v = (mp_gguf_value){.type = MP_GGUF_UINT8, .v.u64 = 200};
    rc |= mp_gguf_writer_set_value(w, "t.u8", &v);
    v = (mp_gguf_value){.type = MP_GGUF_INT8, .v.i64 = -100};
    rc |= mp_gguf_writer_set_value(w, "t.i8", &v);
    v = (mp_gguf_value){.type = MP_GGUF_UINT16, .v.u64 = 60000};
    rc |= mp_gguf_writer_set_value(w, "t.u16", &v);
    v = (mp_gguf_value){.type = MP_GGUF_INT16, .v.i64 = -30000};
    rc |= mp_gguf_writer_set_value(w, "t.i16", &v);
    rc |= mp_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    rc |= mp_gguf_writer_set_i32(w, "t.i32", -2000000000);
    rc |= mp_gguf_writer_set_f32(w, "t.f32", 0.125f);
    rc |= mp_gguf_writer_set_bool(w, "t.bool", true);
    rc |= mp_gguf_writer_set_u64(w, "t.u64", 0xfedcba9876543210ull);
    v = (mp_gguf_value){.type = MP_GGUF_INT64, .v.i64 = INT64_MIN + 5};
    rc |= mp_gguf_writer_set_value(w, "t.i64", &v);
    v = (mp_gguf_value){.type = MP_GGUF_FLOAT64, .v.f64 = -1.0 / 3.0};
    rc |= mp_gguf_writer_set_value(w, "t.f64", &v);
    v = (mp_gguf_value){.type = MP_GGUF_STRING, .v.str = {5, "a\0b\xff" "c"}};
    rc |= mp_gguf_writer_set_value(w, "t.str_nul", &v);
    rc |= mp_gguf_writer_set_str(w, "t.str_empty", "");

    static const uint8_t raw[64] = {1, 0, 1, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                    19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
                                    39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
                                    59, 60};
    static const uint8_t bools[5] = {1, 0, 1, 1, 0};
    char key[32];
    for (uint32_t t = 0; t < MP_GGUF_VTYPE_COUNT; t++) {
        if (t == MP_GGUF_STRING || t == MP_GGUF_ARRAY) continue;
        size_t es = mp_gguf_vtype_size(t);
        snprintf(key, sizeof key, "arr.%s", mp_gguf_vtype_name(t));
        rc |= mp_gguf_writer_set_arr(w, key, t, t == MP_GGUF_BOOL ? 5 : 64 / es, t == MP_GGUF_BOOL ? bools : raw);
    }
    rc |= mp_gguf_writer_set_arr(w, "arr.empty", MP_GGUF_UINT32, 0, NULL);
    static const char *const strs[] = {"<unk>", "", "\xe2\x96\x81the", "x\0y"};
    static const uint64_t lens[] = {5, 0, 6, 3};
    rc |= mp_gguf_writer_set_arr_str(w, "arr.string", 4, strs, lens);

    /* [[1,2,3],[],[7]] and [[["a","b"]],[["c"]]] */
    static const uint32_t a0[] = {1, 2, 3}, a2[] = {7};
    mp_gguf_value inner[3] = {
        {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_UINT32, 3, a0}},
        {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_UINT32, 0, NULL}},
        {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_UINT32, 1, a2}},
    };
    v = (mp_gguf_value){.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 3, inner}};
    rc |= mp_gguf_writer_set_value(w, "arr.nested", &v);
    static const mp_gguf_str sab[] = {{1, "a"}, {1, "b"}}, sc[] = {{1, "c"}};
    mp_gguf_value l2a = {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_STRING, 2, sab}};
    mp_gguf_value l2b = {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_STRING, 1, sc}};
    mp_gguf_value l1[2] = {{.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 1, &l2a}},
                           {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 1, &l2b}}};
    v = (mp_gguf_value){.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 2, l1}};
    rc |= mp_gguf_writer_set_value(w, "arr.nested3", &v);
    return rc ? -1 : 0;
}

/* One tensor of every known type ("t.<type>", {2 blocks, 3}; {1 block, 1}
 * when small), plus a 4-D f32 tensor and an empty one. with_types = 0 adds
 * only f32 and q8_0 of the per-type tensors. Data comes from sample_fill. */
static inline int sample_tensors(mp_gguf_writer *w, int with_types, int small)
{
    int rc = 0;
    char name[48];
    for (uint32_t t = 0; t < MP_TYPE_COUNT; t++) {
        if (!mp_type_known(t)) continue;
        if (!with_types && t != MP_TYPE_F32 && t != MP_TYPE_Q8_0) continue;
        int64_t ne[2] = {(small ? 1 : 2) * (int64_t)mp_type_get(t)->blck_size, small ? 1 : 3};
        snprintf(name, sizeof name, "t.%s", mp_type_name(t));
        rc |= mp_gguf_writer_add_tensor(w, name, t, 2, ne, NULL);
    }
    static const int64_t ne4[4] = {3, 2, 2, 2}, ne0[3] = {4, 0, 5};
    rc |= mp_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight", MP_TYPE_F32, 4, ne4, NULL);
    rc |= mp_gguf_writer_add_tensor(w, "empty", MP_TYPE_F16, 3, ne0, NULL);
    return rc ? -1 : 0;
}

/* A valid image (malloc'ed; caller frees): meta = every value type (else
 * only general.architecture), types/small as for sample_tensors, alignment
 * 0 = default. */
static inline void *sample_image(int meta, int types, int small, uint32_t alignment, size_t *size)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    void *img = NULL;
    if (!w) return NULL;
    if (alignment) mp_gguf_writer_set_u32(w, "general.alignment", alignment);
    if ((meta ? sample_metadata(w) : mp_gguf_writer_set_str(w, "general.architecture", "llama")) == 0 &&
        sample_tensors(w, types, small) == 0)
        mp_gguf_writer_write_mem(w, sample_fill, NULL, &img, size, NULL);
    mp_gguf_writer_free(w);
    return img;
}

/* ---- invariants of an accepted image (fuzzing) ---------------------------- */

static inline int gguf_walk_value(const mp_gguf_value *v, int depth)
{
    int bad = 0;
    if (depth > 64) return 1;
    switch (v->type) {
    case MP_GGUF_STRING:
        bad |= v->v.str.ptr == NULL || v->v.str.ptr[v->v.str.len] != '\0';
        break;
    case MP_GGUF_ARRAY:
        if (v->v.arr.type >= MP_GGUF_VTYPE_COUNT || (v->v.arr.n && !v->v.arr.data)) return 1;
        if (v->v.arr.type == MP_GGUF_STRING) {
            const mp_gguf_str *s = v->v.arr.data;
            for (uint64_t i = 0; i < v->v.arr.n; i++) bad |= s[i].ptr[s[i].len] != '\0';
        } else if (v->v.arr.type == MP_GGUF_ARRAY) {
            const mp_gguf_value *e = v->v.arr.data;
            for (uint64_t i = 0; i < v->v.arr.n; i++) bad |= e[i].type != MP_GGUF_ARRAY || gguf_walk_value(&e[i], depth + 1);
        } else if (v->v.arr.n) {
            const uint8_t *d = v->v.arr.data; /* touch both ends (ASan) */
            size_t es = mp_gguf_vtype_size(v->v.arr.type);
            volatile uint8_t x = d[0] ^ d[v->v.arr.n * es - 1];
            (void)x;
            bad |= ((uintptr_t)d % es) != 0;
            if (v->v.arr.type == MP_GGUF_BOOL)
                for (uint64_t i = 0; i < v->v.arr.n; i++) bad |= d[i] > 1;
        }
        break;
    case MP_GGUF_BOOL:
        bad |= v->v.u64 > 1;
        break;
    default:
        bad |= v->type >= MP_GGUF_VTYPE_COUNT;
    }
    return bad;
}

/* Opens buf[0..n) (which must be exactly n bytes of its allocation, so ASan
 * sees any over-read) and checks: a rejection has a negative status and one
 * line starting with the name; an acceptance has consistent metadata,
 * tensors inside the file, aligned and disjoint, and survives a rewrite
 * through the writer that parses back to the same content. Returns the
 * number of violations (printed to stderr). */
static inline int gguf_check_image(const uint8_t *buf, size_t n)
{
    mp_gguf *g = NULL;
    mp_err err = {0};
    int bad = 0;
    int rc = mp_gguf_open_mem(&g, buf, n, "fuzz.gguf", &err);
    if (rc != MP_OK) {
        if (rc >= 0 || g || err.status != rc || strncmp(err.msg, "fuzz.gguf: ", 11) != 0 || strchr(err.msg, '\n')) {
            fprintf(stderr, "bad rejection: rc %d g %p msg '%s'\n", rc, (void *)g, err.msg);
            return 1;
        }
        return 0;
    }
    uint32_t align = mp_gguf_alignment(g);
    bad |= align == 0 || (align & (align - 1)) != 0 || mp_gguf_file_size(g) != n;
    bad |= mp_gguf_version(g) != 2 && mp_gguf_version(g) != 3;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        bad |= kv->key.ptr[kv->key.len] != '\0' || gguf_walk_value(&kv->value, 0);
        bad |= mp_gguf_get(g, kv->key.ptr) != &kv->value; /* keys are unique */
    }
    const uint64_t nt = mp_gguf_n_tensors(g);
    for (uint64_t i = 0; i < nt; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        bad |= mp_gguf_find_tensor(g, t->name) != t;
        bad |= t->n_dims < 1 || t->n_dims > 4 || !mp_type_known(t->type);
        bad |= t->offset < mp_gguf_data_offset(g) || (t->offset - mp_gguf_data_offset(g)) % align != 0;
        bad |= t->offset > n || t->size > n - t->offset;
        uint64_t want = t->ne[0] ? mp_row_size(t->type, t->ne[0]) * (uint64_t)(mp_gguf_tensor_nelements(t) / t->ne[0]) : 0;
        bad |= t->size != want;
        if (t->size) {
            const volatile uint8_t *d = mp_gguf_tensor_data(g, t);
            uint8_t x = d[0] ^ d[t->size - 1];
            (void)x;
        }
        for (uint64_t j = 0; j < i && nt <= 256; j++) { /* disjoint */
            const mp_gguf_tensor *u = mp_gguf_tensor_at(g, j);
            if (t->size && u->size) bad |= t->offset < u->offset + u->size && u->offset < t->offset + t->size;
        }
    }
    if (bad) fprintf(stderr, "accepted image violates an invariant\n");

    /* Rewrite and re-read: same metadata and tensors. */
    mp_gguf_writer *w = mp_gguf_writer_create();
    int wrc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++)
        wrc |= mp_gguf_writer_set_value(w, mp_gguf_kv_at(g, i)->key.ptr, &mp_gguf_kv_at(g, i)->value);
    for (uint64_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        /* the writer enforces llama.cpp's name limit; the reader does not */
        if (strlen(t->name) >= 64) continue;
        wrc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, mp_gguf_tensor_data(g, t));
    }
    void *img = NULL;
    size_t size = 0;
    if (wrc == 0) wrc = mp_gguf_writer_write_mem(w, NULL, NULL, &img, &size, NULL);
    mp_gguf_writer_free(w);
    if (wrc != 0) {
        fprintf(stderr, "rewrite of an accepted image failed: %d\n", wrc);
        bad = 1;
    } else {
        mp_gguf *g2 = NULL;
        mp_err err2 = {0};
        if (mp_gguf_open_mem(&g2, img, size, "rewrite.gguf", &err2) != MP_OK) {
            fprintf(stderr, "rewritten image rejected: %s\n", err2.msg);
            bad = 1;
        } else {
            bad |= mp_gguf_n_kv(g2) != mp_gguf_n_kv(g) || mp_gguf_alignment(g2) != align;
            for (uint64_t i = 0; !bad && i < mp_gguf_n_kv(g); i++) {
                const mp_gguf_kv *a = mp_gguf_kv_at(g, i), *b = mp_gguf_kv_at(g2, i);
                bad |= a->key.len != b->key.len || memcmp(a->key.ptr, b->key.ptr, a->key.len) != 0 ||
                       !gguf_value_eq(&a->value, &b->value);
            }
            if (bad) fprintf(stderr, "rewritten image differs\n");
        }
        mp_gguf_free(g2);
    }
    free(img);
    mp_gguf_free(g);
    return bad;
}

#endif
