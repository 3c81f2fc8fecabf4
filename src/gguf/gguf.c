/* GGUF v2/v3 reader: parse and validate the header, metadata and tensor
 * infos of a file (mapped read-only, or read into a buffer) or of an image
 * in memory.
 *
 * Layout (little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x   { str key, u32 vtype, value }
 *   n_tensors x { str name, u32 n_dims, i64 ne[n_dims], u32 type, u64 offset }
 *   zero padding up to `alignment`, then the data section; tensor offsets are
 *   relative to its start and multiples of `alignment`.
 * str = u64 length + bytes (no NUL). array value = u32 elem vtype, u64 n,
 * n elements (a nested array element is again vtype + n + elements).
 *
 * Hostile input: every count is bounded by the bytes left in the file before
 * anything is allocated (each element costs the file at least
 * mp_gguf_min_encoded_size bytes), so memory stays within a small multiple
 * of the file size. Everything the getters return is copied into an arena
 * owned by the mp_gguf, so nothing points into the header bytes after
 * parsing (the no_mmap path frees its header buffer). */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena: bump allocator for everything the parse produces ---------- */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
} arena_blk;

#define ARENA_HDR ((sizeof(arena_blk) + 15) & ~(size_t)15)
#define ARENA_BLOCK (256u * 1024u)

typedef struct arena {
    arena_blk *head;
    size_t next_cap; /* blocks grow 4 KiB, 8 KiB, ... up to ARENA_BLOCK */
} arena;

static void *arena_alloc(arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    arena_blk *b = a->head;
    if (b && b->cap - b->used >= size) {
        void *p = (char *)b + ARENA_HDR + b->used;
        b->used += size;
        return p;
    }
    if (a->next_cap < 4096) a->next_cap = 4096;
    bool one_off = size > a->next_cap / 4;
    size_t cap = one_off ? size : a->next_cap;
    if (cap > SIZE_MAX - ARENA_HDR) return NULL;
    arena_blk *nb = malloc(ARENA_HDR + cap);
    if (!nb) return NULL;
    nb->cap = cap;
    nb->used = size;
    if (b && one_off) { /* big one-off: keep the current block on top */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        a->head = nb;
        if (a->next_cap < ARENA_BLOCK) a->next_cap *= 2;
    }
    return (char *)nb + ARENA_HDR;
}

static void arena_free(arena *a)
{
    arena_blk *b = a->head;
    while (b) {
        arena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->next_cap = 0;
}

/* ---- hash index over names (keys, tensor names) ------------------------ */

typedef struct name_index {
    uint64_t *slots; /* entry index + 1; 0 = empty */
    uint64_t mask, count;
} name_index;

static uint64_t hash_bytes(const char *s, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void index_free(name_index *ix)
{
    free(ix->slots);
    *ix = (name_index){0};
}

/* ---- the handle --------------------------------------------------------- */

struct mp_gguf {
    char *name; /* path or the name given to open_mem */
    int fd;
    void *map;
    size_t map_size;
    const uint8_t *base; /* file bytes (mapping or memory image); NULL with no_mmap */
    uint64_t file_size;
    uint32_t version, alignment;
    uint64_t data_offset;
    uint64_t n_kv, n_tensors;
    /* kv and tensors grow as entries are parsed, so memory follows the bytes
     * actually present, not the counts the header claims. */
    mp_gguf_kv *kv;
    mp_gguf_tensor *tensors;
    uint64_t kv_cap, tensors_cap;
    name_index kv_index, tensor_index;
    arena arena;
};

static const char *entry_name(const mp_gguf *g, bool tensors, uint64_t i, uint64_t *len)
{
    if (tensors) {
        *len = strlen(g->tensors[i].name);
        return g->tensors[i].name;
    }
    *len = g->kv[i].key.len;
    return g->kv[i].key.ptr;
}

static int64_t index_find(const name_index *ix, const mp_gguf *g, bool tensors, const char *s, uint64_t n)
{
    if (!ix->slots) return -1;
    for (uint64_t h = hash_bytes(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint64_t e = ix->slots[h], len;
        if (e == 0) return -1;
        const char *name = entry_name(g, tensors, e - 1, &len);
        if (len == n && memcmp(name, s, n) == 0) return (int64_t)(e - 1);
    }
}

static void index_put(name_index *ix, const mp_gguf *g, bool tensors, uint64_t i)
{
    uint64_t len;
    const char *s = entry_name(g, tensors, i, &len);
    uint64_t h = hash_bytes(s, len) & ix->mask;
    while (ix->slots[h]) h = (h + 1) & ix->mask;
    ix->slots[h] = i + 1;
}

/* Inserts entry i (whose name is already stored), growing the table so it
 * stays at most half full. Returns the index of an existing entry with the
 * same name, -1 when inserted, -2 when out of memory. */
static int64_t index_insert(name_index *ix, const mp_gguf *g, bool tensors, uint64_t i)
{
    uint64_t len;
    const char *s = entry_name(g, tensors, i, &len);
    int64_t dup = index_find(ix, g, tensors, s, len);
    if (dup >= 0) return dup;
    if (!ix->slots || 2 * (ix->count + 1) > ix->mask + 1) {
        uint64_t cap = ix->slots ? 2 * (ix->mask + 1) : 64;
        name_index nx = {.slots = calloc((size_t)cap, sizeof(uint64_t)), .mask = cap - 1, .count = ix->count};
        if (!nx.slots) return -2;
        for (uint64_t h = 0; ix->slots && h <= ix->mask; h++)
            if (ix->slots[h]) index_put(&nx, g, tensors, ix->slots[h] - 1);
        free(ix->slots);
        *ix = nx;
    }
    index_put(ix, g, tensors, i);
    ix->count++;
    return -1;
}

/* Grows *arr (elements of `elem` bytes) so that index i fits. */
static bool grow_array(void **arr, uint64_t *cap, uint64_t i, size_t elem)
{
    if (i < *cap) return true;
    uint64_t nc = *cap ? 2 * *cap : 16;
    if (nc > SIZE_MAX / elem) return false;
    void *na = realloc(*arr, (size_t)nc * elem);
    if (!na) return false;
    *arr = na;
    *cap = nc;
    return true;
}

/* ---- parser ------------------------------------------------------------- */

enum { WHERE_HEADER, WHERE_KEY, WHERE_VALUE, WHERE_TENSOR_NAME, WHERE_TENSOR };

typedef struct parser {
    mp_gguf *g;
    const uint8_t *buf;
    uint64_t avail; /* bytes of buf that hold file data (< size only with no_mmap) */
    uint64_t size;  /* file size */
    uint64_t pos;
    uint64_t need;  /* with MP_E_AGAIN: buffer bytes wanted */
    int where;
    uint64_t where_idx;
    char shown[200]; /* the current key or tensor name, as messages show it */
    mp_err *err;
} parser;

/* Copies a name from the file for a message: at most 48 bytes, control
 * bytes escaped as \xNN so the message stays one line. */
static void show_name(char *out, size_t cap, const char *s)
{
    size_t o = 0, i = 0;
    for (; s[i] && i < 48 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (s[i] && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void set_where_name(struct parser *p, const char *name)
{
    show_name(p->shown, sizeof p->shown, name);
}

static int fail(parser *p, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *p, int status, const char *fmt, ...)
{
    char msg[MP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mp_err_set(p->err, status, "%s: %s", p->g->name, msg);
}

static int fail_nomem(parser *p)
{
    return fail(p, MP_E_NOMEM, "out of memory while parsing the header (at byte %" PRIu64 ")", p->pos);
}

static void describe_where(const parser *p, char *out, size_t cap)
{
    switch (p->where) {
    case WHERE_KEY:
        snprintf(out, cap, "the key of metadata entry %" PRIu64, p->where_idx);
        break;
    case WHERE_VALUE:
        snprintf(out, cap, "the value of key '%s'", p->shown);
        break;
    case WHERE_TENSOR_NAME:
        snprintf(out, cap, "the name of tensor info %" PRIu64, p->where_idx);
        break;
    case WHERE_TENSOR:
        snprintf(out, cap, "the info of tensor '%s'", p->shown);
        break;
    default:
        snprintf(out, cap, "the file header");
        break;
    }
}

/* Makes sure n bytes at pos are readable. MP_E_AGAIN (no message) when they
 * are in the file but not yet in the buffer. */
static int need(parser *p, uint64_t n)
{
    if (n > p->size - p->pos) {
        char where[300];
        describe_where(p, where, sizeof where);
        return fail(p, MP_E_CORRUPT,
                    "truncated: reading %s needs %" PRIu64 " bytes at byte %" PRIu64
                    " but the file ends at byte %" PRIu64,
                    where, n, p->pos, p->size);
    }
    if (n > p->avail - p->pos) {
        p->need = p->pos + n;
        return MP_E_AGAIN;
    }
    return MP_OK;
}

static int rd(parser *p, void *dst, uint64_t n)
{
    int rc = need(p, n);
    if (rc) return rc;
    memcpy(dst, p->buf + p->pos, (size_t)n);
    p->pos += n;
    return MP_OK;
}

static int rd_u32(parser *p, uint32_t *v) { return rd(p, v, 4); }
static int rd_u64(parser *p, uint64_t *v) { return rd(p, v, 8); }

/* Reads a string into the arena (NUL-terminated copy). what_fmt names it in
 * the message when its length exceeds the file. */
static int rd_str(parser *p, mp_gguf_str *s, const char *what)
{
    uint64_t at = p->pos, len;
    int rc = rd_u64(p, &len);
    if (rc) return rc;
    if (len > p->size - p->pos)
        return fail(p, MP_E_CORRUPT,
                    "%s: string length %" PRIu64 " at byte %" PRIu64 " exceeds the file (%" PRIu64
                    " bytes left)",
                    what, len, at, p->size - p->pos);
    if ((rc = need(p, len))) return rc;
    char *c = arena_alloc(&p->g->arena, (size_t)len + 1);
    if (!c) return fail_nomem(p);
    memcpy(c, p->buf + p->pos, (size_t)len);
    c[len] = '\0';
    p->pos += len;
    s->len = len;
    s->ptr = c;
    return MP_OK;
}

static const char *plural_name(uint32_t type)
{
    switch (type) {
    case MP_GGUF_STRING: return "strings";
    case MP_GGUF_ARRAY: return "arrays";
    default: return NULL;
    }
}

static int parse_value(parser *p, uint32_t type, int depth, mp_gguf_value *out);

/* Array body after its u32 element type has been read: u64 n, elements. */
static int parse_array(parser *p, uint64_t at, int depth, mp_gguf_value *out)
{
    const char *key = p->shown;
    uint32_t et;
    int rc = rd_u32(p, &et);
    if (rc) return rc;
    if (et >= MP_GGUF_VTYPE_COUNT)
        return fail(p, MP_E_CORRUPT, "key '%s': array at byte %" PRIu64 " has unknown element type %u",
                    key, at, et);
    if (et == MP_GGUF_ARRAY && depth + 1 >= MP_GGUF_MAX_NESTING)
        return fail(p, MP_E_CORRUPT, "key '%s': arrays nested more than %d deep at byte %" PRIu64, key,
                    MP_GGUF_MAX_NESTING, at);
    uint64_t n;
    if ((rc = rd_u64(p, &n))) return rc;
    uint64_t min = mp_gguf_min_encoded_size(et), left = p->size - p->pos;
    if (n > left / min) {
        if (plural_name(et))
            return fail(p, MP_E_CORRUPT,
                        "key '%s': array of %" PRIu64 " %s at byte %" PRIu64 " exceeds the file (%" PRIu64
                        " bytes left)",
                        key, n, plural_name(et), at, left);
        return fail(p, MP_E_CORRUPT,
                    "key '%s': array of %" PRIu64 " %s values at byte %" PRIu64 " exceeds the file (%" PRIu64
                    " bytes left)",
                    key, n, mp_gguf_vtype_name(et), at, left);
    }
    out->type = MP_GGUF_ARRAY;
    out->v.arr.type = et;
    out->v.arr.n = n;
    out->v.arr.data = NULL;
    if (n == 0) return MP_OK;

    if (et == MP_GGUF_STRING) {
        mp_gguf_str *s = arena_alloc(&p->g->arena, (size_t)n * sizeof *s);
        if (!s) return fail_nomem(p);
        char what[300];
        for (uint64_t i = 0; i < n; i++) {
            if (p->pos + 8 <= p->avail) { /* fast path: avoid formatting per element */
                uint64_t len;
                memcpy(&len, p->buf + p->pos, 8);
                if (len <= p->avail - p->pos - 8) {
                    char *c = arena_alloc(&p->g->arena, (size_t)len + 1);
                    if (!c) return fail_nomem(p);
                    memcpy(c, p->buf + p->pos + 8, (size_t)len);
                    c[len] = '\0';
                    s[i].len = len;
                    s[i].ptr = c;
                    p->pos += 8 + len;
                    continue;
                }
            }
            snprintf(what, sizeof what, "key '%s': element %" PRIu64, key, i);
            if ((rc = rd_str(p, &s[i], what))) return rc;
        }
        out->v.arr.data = s;
    } else if (et == MP_GGUF_ARRAY) {
        mp_gguf_value *v = arena_alloc(&p->g->arena, (size_t)n * sizeof *v);
        if (!v) return fail_nomem(p);
        memset(v, 0, (size_t)n * sizeof *v);
        for (uint64_t i = 0; i < n; i++)
            if ((rc = parse_value(p, MP_GGUF_ARRAY, depth + 1, &v[i]))) return rc;
        out->v.arr.data = v;
    } else {
        uint64_t bytes = n * min; /* cannot overflow: n * min <= left */
        if ((rc = need(p, bytes))) return rc;
        uint8_t *d = arena_alloc(&p->g->arena, (size_t)bytes);
        if (!d) return fail_nomem(p);
        memcpy(d, p->buf + p->pos, (size_t)bytes);
        if (et == MP_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++) d[i] = d[i] != 0;
        p->pos += bytes;
        out->v.arr.data = d;
    }
    return MP_OK;
}

static int parse_value(parser *p, uint32_t type, int depth, mp_gguf_value *out)
{
    uint64_t at = p->pos;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
    } x;
    int rc;
    out->type = type;
    switch (type) {
    case MP_GGUF_STRING: {
        char what[300];
        snprintf(what, sizeof what, "key '%s'", p->shown);
        return rd_str(p, &out->v.str, what);
    }
    case MP_GGUF_ARRAY:
        return parse_array(p, at, depth, out);
    default:
        break;
    }
    if ((rc = rd(p, &x, mp_gguf_vtype_size(type)))) return rc;
    switch (type) {
    case MP_GGUF_UINT8: out->v.u64 = x.u8; break;
    case MP_GGUF_INT8: out->v.i64 = x.i8; break;
    case MP_GGUF_UINT16: out->v.u64 = x.u16; break;
    case MP_GGUF_INT16: out->v.i64 = x.i16; break;
    case MP_GGUF_UINT32: out->v.u64 = x.u32; break;
    case MP_GGUF_INT32: out->v.i64 = x.i32; break;
    case MP_GGUF_FLOAT32: out->v.f64 = x.f32; break;
    case MP_GGUF_BOOL: out->v.u64 = x.u8 != 0; break;
    case MP_GGUF_UINT64: out->v.u64 = x.u64; break;
    case MP_GGUF_INT64: out->v.i64 = x.i64; break;
    case MP_GGUF_FLOAT64: out->v.f64 = x.f64; break;
    }
    return MP_OK;
}

/* Smallest encoding of one metadata entry (empty key, u8 value) and of one
 * tensor info (empty name, 1 dim): bounds for n_kv and n_tensors. */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u

static int parse_tensor_info(parser *p, uint64_t i)
{
    mp_gguf *g = p->g;
    if (!grow_array((void **)&g->tensors, &g->tensors_cap, i, sizeof *g->tensors)) return fail_nomem(p);
    mp_gguf_tensor *t = &g->tensors[i];
    memset(t, 0, sizeof *t);
    mp_gguf_str name;
    uint64_t at = p->pos;
    int rc;

    p->where = WHERE_TENSOR_NAME;
    p->where_idx = i;
    char what[64];
    snprintf(what, sizeof what, "tensor info %" PRIu64 " name", i);
    if ((rc = rd_str(p, &name, what))) return rc;
    if (memchr(name.ptr, '\0', (size_t)name.len))
        return fail(p, MP_E_CORRUPT, "tensor info %" PRIu64 " at byte %" PRIu64 ": name contains a NUL byte",
                    i, at);
    t->name = name.ptr;
    g->n_tensors = i + 1; /* the name is in place: the index may look at it */
    p->where = WHERE_TENSOR;
    set_where_name(p, name.ptr);
    int64_t dup = index_insert(&g->tensor_index, g, true, i);
    if (dup == -2) return fail_nomem(p);
    if (dup >= 0)
        return fail(p, MP_E_CORRUPT, "duplicate tensor name '%s' (tensor infos %" PRId64 " and %" PRIu64 ")",
                    p->shown, dup, i);

    if ((rc = rd_u32(p, &t->n_dims))) return rc;
    if (t->n_dims < 1 || t->n_dims > MP_GGUF_MAX_DIMS)
        return fail(p, MP_E_CORRUPT, "tensor '%s': n_dims %u at byte %" PRIu64 " is not in 1..%d", p->shown,
                    t->n_dims, p->pos - 4, MP_GGUF_MAX_DIMS);
    for (int d = 0; d < MP_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((rc = rd(p, &t->ne[d], 8))) return rc;
        if (t->ne[d] < 0)
            return fail(p, MP_E_CORRUPT, "tensor '%s': ne[%u] = %" PRId64 " at byte %" PRIu64 " is negative",
                        p->shown, d, t->ne[d], p->pos - 8);
    }
    int64_t nel = 1;
    for (int d = 0; d < MP_GGUF_MAX_DIMS; d++) {
        if (__builtin_mul_overflow(nel, t->ne[d], &nel))
            return fail(p, MP_E_CORRUPT,
                        "tensor '%s': shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                        "] has more than 2^63 elements",
                        p->shown, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    }
    if ((rc = rd_u32(p, &t->type))) return rc;
    const mp_type_info *ti = mp_type_get(t->type);
    if (ti->blck_size == 0)
        return fail(p, MP_E_UNSUPPORTED, "tensor '%s' has unknown type id %u (at byte %" PRIu64 ")", p->shown,
                    t->type, p->pos - 4);
    if (t->ne[0] % ti->blck_size != 0)
        return fail(p, MP_E_CORRUPT,
                    "tensor '%s': row length ne[0] = %" PRId64 " is not a multiple of the %s block size %u",
                    p->shown, t->ne[0], ti->name, ti->blck_size);
    uint64_t size = 0;
    if (nel > 0) {
        uint64_t rows = (uint64_t)(nel / t->ne[0]);
        uint64_t row = (uint64_t)(t->ne[0] / ti->blck_size) * ti->type_size; /* <= 2^63 / 1 * 292 / 32: fits */
        if (__builtin_mul_overflow(rows, row, &size))
            return fail(p, MP_E_CORRUPT, "tensor '%s': byte size overflows 64 bits", p->shown);
    }
    t->size = size;
    if ((rc = rd_u64(p, &t->offset))) return rc; /* relative for now */
    return MP_OK;
}

typedef struct span {
    uint64_t start, end, idx;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int place_tensors(parser *p)
{
    mp_gguf *g = p->g;
    const uint64_t n = g->n_tensors;
    char tn[200], an[200];
    for (uint64_t i = 0; i < n; i++) {
        mp_gguf_tensor *t = &g->tensors[i];
        uint64_t rel = t->offset, start = 0, end = 0;
        bool wrap_start = __builtin_add_overflow(g->data_offset, rel, &start);
        bool wrap_end = wrap_start || __builtin_add_overflow(start, t->size, &end);
        if (rel % g->alignment == 0 && !wrap_end && end <= g->file_size) {
            t->offset = start;
            continue;
        }
        show_name(tn, sizeof tn, t->name);
        if (rel % g->alignment != 0)
            return fail(p, MP_E_CORRUPT, "tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %u",
                        tn, rel, g->alignment);
        if (wrap_start)
            return fail(p, MP_E_CORRUPT,
                        "tensor '%s' starts past 2^64 (data offset %" PRIu64 "), past the end of the file (%" PRIu64
                        " bytes)",
                        tn, rel, g->file_size);
        if (wrap_end)
            return fail(p, MP_E_CORRUPT,
                        "tensor '%s' at byte %" PRIu64 " of %" PRIu64 " bytes ends past 2^64, past the end of "
                        "the file (%" PRIu64 " bytes)",
                        tn, start, t->size, g->file_size);
        return fail(p, MP_E_CORRUPT, "tensor '%s' ends at byte %" PRIu64 ", past the end of the file (%" PRIu64 " bytes)",
                    tn, end, g->file_size);
    }
    if (n < 2) return MP_OK;
    span *s = malloc((size_t)n * sizeof *s);
    if (!s) return fail_nomem(p);
    uint64_t m = 0;
    for (uint64_t i = 0; i < n; i++)
        if (g->tensors[i].size) s[m++] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].size, i};
    qsort(s, (size_t)m, sizeof *s, cmp_span);
    int rc = MP_OK;
    for (uint64_t i = 1; i < m; i++) {
        if (s[i].start < s[i - 1].end) {
            const mp_gguf_tensor *a = &g->tensors[s[i - 1].idx], *b = &g->tensors[s[i].idx];
            show_name(an, sizeof an, a->name);
            show_name(tn, sizeof tn, b->name);
            rc = fail(p, MP_E_CORRUPT,
                      "tensor '%s' (bytes %" PRIu64 "..%" PRIu64 ") overlaps tensor '%s' (bytes %" PRIu64 "..%" PRIu64 ")",
                      tn, b->offset, b->offset + b->size, an, a->offset, a->offset + a->size);
            break;
        }
    }
    free(s);
    return rc;
}

static void reset_parse(mp_gguf *g)
{
    arena_free(&g->arena);
    free(g->kv);
    free(g->tensors);
    g->kv = NULL;
    g->tensors = NULL;
    g->kv_cap = g->tensors_cap = 0;
    g->n_kv = g->n_tensors = 0;
    index_free(&g->kv_index);
    index_free(&g->tensor_index);
}

/* Parses the whole header from buf[0..avail) of a file of `size` bytes.
 * MP_E_AGAIN (no message) asks the caller to supply *need bytes. */
static int parse(mp_gguf *g, const uint8_t *buf, uint64_t avail, uint64_t size, uint64_t *need_out,
                 mp_err *err)
{
    parser p = {.g = g, .buf = buf, .avail = avail, .size = size, .err = err, .where = WHERE_HEADER};
    int rc;
    char magic[4];
    uint64_t n_tensors, n_kv;

    g->file_size = size;
    g->alignment = MP_GGUF_DEFAULT_ALIGNMENT;
    if (size < 4) return fail(&p, MP_E_CORRUPT, "not a GGUF file: only %" PRIu64 " bytes", size);
    if ((rc = rd(&p, magic, 4))) goto out;
    if (memcmp(magic, MP_GGUF_MAGIC, 4) != 0) {
        char shown[5];
        for (int i = 0; i < 4; i++) shown[i] = magic[i] >= 0x20 && magic[i] < 0x7f ? magic[i] : '?';
        shown[4] = '\0';
        rc = fail(&p, MP_E_CORRUPT, "not a GGUF file: magic is '%s' (%02x %02x %02x %02x), expected 'GGUF'",
                  shown, (uint8_t)magic[0], (uint8_t)magic[1], (uint8_t)magic[2], (uint8_t)magic[3]);
        goto out;
    }
    if ((rc = rd_u32(&p, &g->version))) goto out;
    if (g->version == 1) {
        rc = fail(&p, MP_E_UNSUPPORTED,
                  "GGUF version 1 is not supported (only 2 and 3); re-convert the model with a newer llama.cpp");
        goto out;
    }
    if (g->version != 2 && g->version != 3) {
        if (g->version != 0 && (g->version & 0xffff) == 0)
            rc = fail(&p, MP_E_UNSUPPORTED, "GGUF version field 0x%08x looks like a big-endian file, which is not supported",
                      g->version);
        else
            rc = fail(&p, g->version == 0 ? MP_E_CORRUPT : MP_E_UNSUPPORTED,
                      "GGUF version %u is not supported (only 2 and 3)", g->version);
        goto out;
    }
    if ((rc = rd_u64(&p, &n_tensors))) goto out;
    if ((rc = rd_u64(&p, &n_kv))) goto out;
    {
        uint64_t left = size - p.pos;
        if (n_tensors > left / MIN_TENSOR_INFO_BYTES) {
            rc = fail(&p, MP_E_CORRUPT,
                      "n_tensors = %" PRIu64 " at byte 8 cannot fit in the file (%" PRIu64 " bytes)", n_tensors,
                      size);
            goto out;
        }
        left -= n_tensors * MIN_TENSOR_INFO_BYTES;
        if (n_kv > left / MIN_KV_BYTES) {
            rc = fail(&p, MP_E_CORRUPT, "n_kv = %" PRIu64 " at byte 16 cannot fit in the file (%" PRIu64 " bytes)",
                      n_kv, size);
            goto out;
        }
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        if (!grow_array((void **)&g->kv, &g->kv_cap, i, sizeof *g->kv)) {
            rc = fail_nomem(&p);
            goto out;
        }
        mp_gguf_kv *kv = &g->kv[i];
        memset(kv, 0, sizeof *kv);
        uint64_t at = p.pos;
        uint32_t type;
        char what[64];
        p.where = WHERE_KEY;
        p.where_idx = i;
        snprintf(what, sizeof what, "metadata entry %" PRIu64 " key", i);
        if ((rc = rd_str(&p, &kv->key, what))) goto out;
        if (memchr(kv->key.ptr, '\0', (size_t)kv->key.len)) {
            rc = fail(&p, MP_E_CORRUPT, "metadata entry %" PRIu64 " at byte %" PRIu64 ": key contains a NUL byte", i,
                      at);
            goto out;
        }
        g->n_kv = i + 1; /* the key is in place: the index may look at it */
        set_where_name(&p, kv->key.ptr);
        int64_t dup = index_insert(&g->kv_index, g, false, i);
        if (dup == -2) {
            rc = fail_nomem(&p);
            goto out;
        }
        if (dup >= 0) {
            rc = fail(&p, MP_E_CORRUPT, "duplicate key '%s' (metadata entries %" PRId64 " and %" PRIu64 ", at byte %" PRIu64 ")",
                      p.shown, dup, i, at);
            goto out;
        }
        p.where = WHERE_VALUE;
        if ((rc = rd_u32(&p, &type))) goto out;
        if (type >= MP_GGUF_VTYPE_COUNT) {
            rc = fail(&p, MP_E_CORRUPT, "key '%s': unknown value type %u at byte %" PRIu64, p.shown, type,
                      p.pos - 4);
            goto out;
        }
        if ((rc = parse_value(&p, type, 0, &kv->value))) goto out;
        if (strcmp(kv->key.ptr, "general.alignment") == 0) {
            if (type != MP_GGUF_UINT32) {
                rc = fail(&p, MP_E_CORRUPT, "key 'general.alignment' has type %s, expected uint32",
                          mp_gguf_vtype_name(type));
                goto out;
            }
            if (!mp_gguf_is_pow2(kv->value.v.u64)) {
                rc = fail(&p, MP_E_CORRUPT, "key 'general.alignment' = %" PRIu64 " is not a power of two",
                          kv->value.v.u64);
                goto out;
            }
            g->alignment = (uint32_t)kv->value.v.u64;
        }
    }

    for (uint64_t i = 0; i < n_tensors; i++)
        if ((rc = parse_tensor_info(&p, i))) goto out;
    /* Like llama.cpp: a file without tensors has no padding after its header. */
    g->data_offset = n_tensors ? mp_gguf_align_up(p.pos, g->alignment) : p.pos;
    rc = place_tensors(&p);
out:
    if (rc == MP_E_AGAIN) *need_out = p.need;
    return rc;
}

/* ---- open / free -------------------------------------------------------- */

static mp_gguf *gguf_new(const char *name)
{
    mp_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->fd = -1;
    g->name = strdup(name ? name : "<memory>");
    if (!g->name) {
        free(g);
        return NULL;
    }
    return g;
}

void mp_gguf_free(mp_gguf *g)
{
    if (!g) return;
    if (g->map) munmap(g->map, g->map_size);
    if (g->fd >= 0) close(g->fd);
    reset_parse(g);
    free(g->name);
    free(g);
}

int mp_gguf_open_mem(mp_gguf **out, const void *buf, size_t size, const char *name, mp_err *err)
{
    *out = NULL;
    mp_gguf *g = gguf_new(name);
    if (!g) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", name ? name : "<memory>");
    uint64_t need = 0;
    int rc = parse(g, buf, size, size, &need, err);
    if (rc < 0) {
        mp_gguf_free(g);
        return rc;
    }
    g->base = buf;
    *out = g;
    return MP_OK;
}

/* Reads exactly n bytes at off; a short read is an error (the file shrank). */
static int pread_full(int fd, void *dst, size_t n, uint64_t off, const char *path, mp_err *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)dst + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return mp_err_set(err, MP_E_IO, "%s: read of %zu bytes at byte %" PRIu64 " failed: %s", path, n - done,
                              off + done, strerror(errno));
        }
        if (r == 0)
            return mp_err_set(err, MP_E_IO, "%s: file ended at byte %" PRIu64 " while reading (did it shrink?)", path,
                              off + done);
        done += (size_t)r;
    }
    return MP_OK;
}

#define NO_MMAP_FIRST_READ (1u << 20)

int mp_gguf_open(mp_gguf **out, const char *path, const mp_gguf_open_opts *opts, mp_err *err)
{
    *out = NULL;
    bool no_mmap = opts && opts->no_mmap;
    mp_gguf *g = gguf_new(path);
    uint8_t *hbuf = NULL;
    int rc;
    if (!g) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);

    g->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(g->fd, &st) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = mp_err_set(err, MP_E_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > SIZE_MAX) {
        rc = mp_err_set(err, MP_E_UNSUPPORTED, "%s: file of %" PRIu64 " bytes is too large to address", path, size);
        goto fail;
    }

    if (!no_mmap && size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, g->fd, 0);
        if (m == MAP_FAILED) {
            rc = mp_err_set(err, MP_E_IO, "%s: cannot map %" PRIu64 " bytes: %s", path, size, strerror(errno));
            goto fail;
        }
        g->map = m;
        g->map_size = (size_t)size;
        uint64_t need = 0;
        if ((rc = parse(g, m, size, size, &need, err)) < 0) goto fail;
        g->base = m;
    } else {
        /* Read a first chunk; if the header is longer, grow (at least double)
         * and parse again from the start. The header is a few MB at most for
         * real models, so re-parsing costs little. */
        uint64_t avail = size < NO_MMAP_FIRST_READ ? size : NO_MMAP_FIRST_READ;
        hbuf = malloc(avail ? (size_t)avail : 1);
        if (!hbuf) {
            rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        if ((rc = pread_full(g->fd, hbuf, (size_t)avail, 0, path, err))) goto fail;
        for (;;) {
            uint64_t need = 0;
            rc = parse(g, hbuf, avail, size, &need, err);
            if (rc != MP_E_AGAIN) break;
            reset_parse(g);
            uint64_t grow = avail * 2 > need ? avail * 2 : need;
            if (grow > size) grow = size;
            uint8_t *nb = realloc(hbuf, (size_t)grow);
            if (!nb) {
                rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory reading a %" PRIu64 "-byte header", path, grow);
                goto fail;
            }
            hbuf = nb;
            if ((rc = pread_full(g->fd, hbuf + avail, (size_t)(grow - avail), avail, path, err))) goto fail;
            avail = grow;
        }
        if (rc < 0) goto fail;
        free(hbuf);
        hbuf = NULL;
    }
    *out = g;
    return MP_OK;
fail:
    free(hbuf);
    mp_gguf_free(g);
    return rc;
}

/* ---- accessors ---------------------------------------------------------- */

const char *mp_gguf_path(const mp_gguf *g) { return g->name; }
int mp_gguf_fd(const mp_gguf *g) { return g->fd; }
uint64_t mp_gguf_file_size(const mp_gguf *g) { return g->file_size; }
uint32_t mp_gguf_version(const mp_gguf *g) { return g->version; }
uint32_t mp_gguf_alignment(const mp_gguf *g) { return g->alignment; }
uint64_t mp_gguf_data_offset(const mp_gguf *g) { return g->data_offset; }
uint64_t mp_gguf_n_kv(const mp_gguf *g) { return g->n_kv; }
uint64_t mp_gguf_n_tensors(const mp_gguf *g) { return g->n_tensors; }

const mp_gguf_kv *mp_gguf_kv_at(const mp_gguf *g, uint64_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }

const mp_gguf_value *mp_gguf_get(const mp_gguf *g, const char *key)
{
    int64_t i = index_find(&g->kv_index, g, false, key, strlen(key));
    return i < 0 ? NULL : &g->kv[i].value;
}

const mp_gguf_tensor *mp_gguf_tensor_at(const mp_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mp_gguf_tensor *mp_gguf_find_tensor(const mp_gguf *g, const char *name)
{
    int64_t i = index_find(&g->tensor_index, g, true, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}

const void *mp_gguf_tensor_data(const mp_gguf *g, const mp_gguf_tensor *t)
{
    return g->base ? g->base + t->offset : NULL;
}

int64_t mp_gguf_tensor_nelements(const mp_gguf_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

const char *mp_gguf_vtype_name(uint32_t type)
{
    static const char *const names[MP_GGUF_VTYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    return type < MP_GGUF_VTYPE_COUNT ? names[type] : "unknown";
}

size_t mp_gguf_vtype_size(uint32_t type)
{
    static const uint8_t sizes[MP_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < MP_GGUF_VTYPE_COUNT ? sizes[type] : 0;
}

/* ---- typed getters ------------------------------------------------------ */

static bool is_unsigned(uint32_t t)
{
    return t == MP_GGUF_UINT8 || t == MP_GGUF_UINT16 || t == MP_GGUF_UINT32 || t == MP_GGUF_UINT64;
}
static bool is_signed(uint32_t t)
{
    return t == MP_GGUF_INT8 || t == MP_GGUF_INT16 || t == MP_GGUF_INT32 || t == MP_GGUF_INT64;
}

/* Fetches an integer key and checks lo <= value <= hi (compared exactly,
 * whatever its stored signedness). */
static int get_int(const mp_gguf *g, const char *key, int64_t lo, uint64_t hi, const char *tname, bool *neg,
                   uint64_t *mag, mp_err *err)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    if (!v) return MP_E_NOTFOUND;
    if (is_unsigned(v->type)) {
        *neg = false;
        *mag = v->v.u64;
        if (v->v.u64 > hi) goto range;
    } else if (is_signed(v->type)) {
        int64_t x = v->v.i64;
        *neg = x < 0;
        *mag = (uint64_t)x;
        if (x < lo || (x >= 0 && (uint64_t)x > hi)) goto range;
    } else {
        return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' has type %s, expected an integer", g->name, key,
                          mp_gguf_vtype_name(v->type));
    }
    return MP_OK;
range:
    if (is_signed(v->type))
        return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' = %" PRId64 " does not fit in %s", g->name, key,
                          v->v.i64, tname);
    return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' = %" PRIu64 " does not fit in %s", g->name, key, v->v.u64,
                      tname);
}

int mp_gguf_get_u32(const mp_gguf *g, const char *key, uint32_t *out, mp_err *err)
{
    bool neg = false;
    uint64_t m = 0;
    int rc = get_int(g, key, 0, UINT32_MAX, "uint32", &neg, &m, err);
    if (rc == MP_OK) *out = (uint32_t)m;
    return rc;
}

int mp_gguf_get_i32(const mp_gguf *g, const char *key, int32_t *out, mp_err *err)
{
    bool neg = false;
    uint64_t m = 0;
    int rc = get_int(g, key, INT32_MIN, INT32_MAX, "int32", &neg, &m, err);
    if (rc == MP_OK) *out = (int32_t)(int64_t)m;
    return rc;
}

int mp_gguf_get_u64(const mp_gguf *g, const char *key, uint64_t *out, mp_err *err)
{
    bool neg = false;
    uint64_t m = 0;
    int rc = get_int(g, key, 0, UINT64_MAX, "uint64", &neg, &m, err);
    if (rc == MP_OK) *out = m;
    return rc;
}

int mp_gguf_get_f32(const mp_gguf *g, const char *key, float *out, mp_err *err)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    if (!v) return MP_E_NOTFOUND;
    if (v->type == MP_GGUF_FLOAT32 || v->type == MP_GGUF_FLOAT64)
        *out = (float)v->v.f64;
    else if (is_unsigned(v->type))
        *out = (float)v->v.u64;
    else if (is_signed(v->type))
        *out = (float)v->v.i64;
    else
        return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' has type %s, expected a number", g->name, key,
                          mp_gguf_vtype_name(v->type));
    return MP_OK;
}

int mp_gguf_get_bool(const mp_gguf *g, const char *key, bool *out, mp_err *err)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    if (!v) return MP_E_NOTFOUND;
    if (v->type != MP_GGUF_BOOL)
        return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' has type %s, expected bool", g->name, key,
                          mp_gguf_vtype_name(v->type));
    *out = v->v.u64 != 0;
    return MP_OK;
}

const char *mp_gguf_get_str(const mp_gguf *g, const char *key)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    return v && v->type == MP_GGUF_STRING ? v->v.str.ptr : NULL;
}

int mp_gguf_get_arr(const mp_gguf *g, const char *key, uint32_t *elem_type, uint64_t *n, const void **data,
                    mp_err *err)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    if (!v) return MP_E_NOTFOUND;
    if (v->type != MP_GGUF_ARRAY)
        return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s' has type %s, expected an array", g->name, key,
                          mp_gguf_vtype_name(v->type));
    *elem_type = v->v.arr.type;
    *n = v->v.arr.n;
    *data = v->v.arr.data;
    return MP_OK;
}
