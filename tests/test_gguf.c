/* GGUF reader/writer: round trips of every value and tensor type, one case
 * per class of malformed input (status + the message names the
 * key/tensor/offset), truncation at every byte, the real vocab files, the
 * typed getters and the writer's argument checks. */
#include "gguf/gguf.h"
#include "helpers/test_util.h"
#include "mp_test.h"
#include "test_gguf_image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int verbose;

/* ---- helpers ---------------------------------------------------------------- */

/* Rewrites everything a reader holds (metadata in order, tensors with their
 * data) into a new image. */
static void *rewrite(const mp_gguf *g, size_t *size)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    void *img = NULL;
    int rc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        rc |= mp_gguf_writer_set_value(w, kv->key.ptr, &kv->value);
    }
    for (uint64_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        rc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, mp_gguf_tensor_data(g, t));
    }
    mp_err err = {0};
    if (rc == 0) rc = mp_gguf_writer_write_mem(w, NULL, NULL, &img, size, &err);
    CHECKF(rc == 0, "rewrite: %d %s", rc, err.msg);
    mp_gguf_writer_free(w);
    return img;
}

/* Opens a malformed image and checks the status, that nothing is returned,
 * and that the message is one line, starts with the name and contains the
 * given fragments. Frees the builder. */
static void expect_fail(const char *what, gb *b, int status, const char *s1, const char *s2)
{
    mp_err err = {0};
    mp_gguf *g = (mp_gguf *)&err; /* must be reset to NULL */
    int rc = mp_gguf_open_mem(&g, b->p, b->n, "bad.gguf", &err);
    CHECKF(rc == status, "%s: status %s, want %s (%s)", what, mp_status_name(rc), mp_status_name(status), err.msg);
    CHECKF(g == NULL, "%s: *out not NULL", what);
    CHECKF(err.status == rc, "%s: err.status %d", what, err.status);
    CHECKF(strncmp(err.msg, "bad.gguf: ", 10) == 0, "%s: message does not start with the name: %s", what, err.msg);
    CHECKF(!strchr(err.msg, '\n'), "%s: message has a newline", what);
    CHECKF(!s1 || strstr(err.msg, s1), "%s: message lacks \"%s\": %s", what, s1, err.msg);
    CHECKF(!s2 || strstr(err.msg, s2), "%s: message lacks \"%s\": %s", what, s2, err.msg);
    if (rc == MP_OK) mp_gguf_free(g);
    if (verbose) printf("  %-26s %s\n", what, err.msg);
    gb_free(b);
}

static void expect_ok(const char *what, gb *b)
{
    mp_err err = {0};
    mp_gguf *g = NULL;
    int rc = mp_gguf_open_mem(&g, b->p, b->n, "good.gguf", &err);
    CHECKF(rc == MP_OK && g, "%s: %s", what, err.msg);
    mp_gguf_free(g);
    gb_free(b);
}

/* ---- round trips ---------------------------------------------------------- */

static void check_sample(const mp_gguf *g, uint32_t align)
{
    CHECK(mp_gguf_version(g) == 3);
    CHECK(mp_gguf_alignment(g) == align);
    CHECK(mp_gguf_data_offset(g) % align == 0);
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f;
    bool b;
    mp_err err = {0};
    CHECK(mp_gguf_get_u32(g, "t.u8", &u32, &err) == MP_OK && u32 == 200);
    CHECK(mp_gguf_get_i32(g, "t.i8", &i32, &err) == MP_OK && i32 == -100);
    CHECK(mp_gguf_get_u32(g, "t.u16", &u32, &err) == MP_OK && u32 == 60000);
    CHECK(mp_gguf_get_i32(g, "t.i16", &i32, &err) == MP_OK && i32 == -30000);
    CHECK(mp_gguf_get_u32(g, "t.u32", &u32, &err) == MP_OK && u32 == 4000000000u);
    CHECK(mp_gguf_get_i32(g, "t.i32", &i32, &err) == MP_OK && i32 == -2000000000);
    CHECK(mp_gguf_get_f32(g, "t.f32", &f, &err) == MP_OK && f == 0.125f);
    CHECK(mp_gguf_get_bool(g, "t.bool", &b, &err) == MP_OK && b);
    CHECK(mp_gguf_get_u64(g, "t.u64", &u64, &err) == MP_OK && u64 == 0xfedcba9876543210ull);
    const mp_gguf_value *v = mp_gguf_get(g, "t.i64");
    CHECK(v && v->type == MP_GGUF_INT64 && v->v.i64 == INT64_MIN + 5);
    v = mp_gguf_get(g, "t.f64");
    CHECK(v && v->type == MP_GGUF_FLOAT64 && v->v.f64 == -1.0 / 3.0);
    v = mp_gguf_get(g, "t.str_nul");
    CHECK(v && v->type == MP_GGUF_STRING && v->v.str.len == 5 && memcmp(v->v.str.ptr, "a\0b\xff" "c", 6) == 0);
    CHECK(mp_gguf_get_str(g, "t.str_empty") && mp_gguf_get_str(g, "t.str_empty")[0] == '\0');
    CHECK(strcmp(mp_gguf_get_str(g, "general.architecture"), "llama") == 0);
    CHECK(err.status == MP_OK);

    uint32_t et;
    uint64_t n;
    const void *data;
    CHECK(mp_gguf_get_arr(g, "arr.int16", &et, &n, &data, &err) == MP_OK && et == MP_GGUF_INT16 && n == 32);
    CHECK(((const int16_t *)data)[1] == (int16_t)(1 | 1 << 8));
    CHECK(mp_gguf_get_arr(g, "arr.float64", &et, &n, &data, &err) == MP_OK && n == 8 && (uintptr_t)data % 8 == 0);
    CHECK(mp_gguf_get_arr(g, "arr.bool", &et, &n, &data, &err) == MP_OK && n == 5 &&
          memcmp(data, "\1\0\1\1\0", 5) == 0);
    CHECK(mp_gguf_get_arr(g, "arr.empty", &et, &n, &data, &err) == MP_OK && et == MP_GGUF_UINT32 && n == 0);
    CHECK(mp_gguf_get_arr(g, "arr.string", &et, &n, &data, &err) == MP_OK && et == MP_GGUF_STRING && n == 4);
    if (n == 4) {
        const mp_gguf_str *s = data;
        CHECK(s[0].len == 5 && strcmp(s[0].ptr, "<unk>") == 0);
        CHECK(s[1].len == 0 && s[1].ptr[0] == '\0');
        CHECK(s[3].len == 3 && memcmp(s[3].ptr, "x\0y", 4) == 0);
    }
    CHECK(mp_gguf_get_arr(g, "arr.nested", &et, &n, &data, &err) == MP_OK && et == MP_GGUF_ARRAY && n == 3);
    if (n == 3) {
        const mp_gguf_value *e = data;
        CHECK(e[0].type == MP_GGUF_ARRAY && e[0].v.arr.type == MP_GGUF_UINT32 && e[0].v.arr.n == 3 &&
              ((const uint32_t *)e[0].v.arr.data)[2] == 3);
        CHECK(e[1].v.arr.n == 0 && e[2].v.arr.n == 1 && ((const uint32_t *)e[2].v.arr.data)[0] == 7);
    }
    CHECK(mp_gguf_get_arr(g, "arr.nested3", &et, &n, &data, &err) == MP_OK && n == 2);
    if (n == 2) {
        const mp_gguf_value *l1 = data;
        const mp_gguf_value *l2 = l1[0].v.arr.data;
        CHECK(l1[0].v.arr.type == MP_GGUF_ARRAY && l1[0].v.arr.n == 1 && l2[0].v.arr.type == MP_GGUF_STRING &&
              l2[0].v.arr.n == 2 && strcmp(((const mp_gguf_str *)l2[0].v.arr.data)[1].ptr, "b") == 0);
    }

    /* Tensors: one per known type + 2; placement and bytes. */
    uint64_t n_known = 0;
    for (uint32_t t = 0; t < MP_TYPE_COUNT; t++) n_known += mp_type_known(t);
    CHECK(mp_gguf_n_tensors(g) == n_known + 2);
    uint64_t prev_end = mp_gguf_data_offset(g);
    for (uint64_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        CHECKF(t->offset % align == 0 && t->offset >= prev_end, "tensor %s offset %" PRIu64, t->name, t->offset);
        CHECK(t->size == mp_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]));
        CHECK(mp_gguf_find_tensor(g, t->name) == t);
        prev_end = t->offset + t->size;
        const uint8_t *d = mp_gguf_tensor_data(g, t);
        if (!d) continue;
        int bad = 0;
        for (uint64_t j = 0; j < t->size; j++) bad |= d[j] != sample_byte(i, j);
        CHECKF(!bad, "tensor %s data differs", t->name);
    }
    const mp_gguf_tensor *t = mp_gguf_find_tensor(g, "t.q4_K");
    CHECK(t && t->type == MP_TYPE_Q4_K && t->n_dims == 2 && t->ne[0] == 512 && t->ne[1] == 3 && t->ne[2] == 1 &&
          t->size == 2 * 144 * 3);
    t = mp_gguf_find_tensor(g, "blk.0.ffn_up_exps.weight");
    CHECK(t && t->n_dims == 4 && mp_gguf_tensor_nelements(t) == 24 && t->size == 96);
    t = mp_gguf_find_tensor(g, "empty");
    CHECK(t && t->size == 0 && mp_gguf_tensor_nelements(t) == 0 && t->ne[3] == 1);
    CHECK(mp_gguf_find_tensor(g, "t.q4") == NULL);
    CHECK(mp_gguf_get(g, "t.u3") == NULL);
}

static void test_roundtrip_mem(uint32_t align)
{
    size_t size = 0, size2 = 0;
    void *img = sample_image(1, 1, 0, align == 32 ? 0 : align, &size);
    CHECK(img != NULL);
    if (!img) return;
    mp_gguf *g = NULL;
    mp_err err = {0};
    CHECKF(mp_gguf_open_mem(&g, img, size, "sample.gguf", &err) == MP_OK, "%s", err.msg);
    if (g) {
        CHECK(mp_gguf_fd(g) == -1 && mp_gguf_file_size(g) == size);
        CHECK(strcmp(mp_gguf_path(g), "sample.gguf") == 0);
        check_sample(g, align);
        /* Writing back what was read reproduces the image byte for byte. */
        void *img2 = rewrite(g, &size2);
        CHECK(img2 && size2 == size && memcmp(img, img2, size) == 0);
        free(img2);
    }
    mp_gguf_free(g);
    free(img);
}

static int fail_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)ctx;
    if (idx == 3) return mp_err_set(err, MP_E_IO, "sample source: read failed for tensor %" PRIu64, idx);
    return sample_fill(NULL, idx, buf, size, err);
}

static void test_file_io(void)
{
    char path[512], tmp[560];
    snprintf(path, sizeof path, "%s/test_gguf_%ld.gguf", mp_test_build_dir(), (long)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    mp_gguf_writer *w = mp_gguf_writer_create();
    CHECK(sample_metadata(w) == 0 && sample_tensors(w, 1, 0) == 0);
    mp_err err = {0};

    /* A failing fill: its status comes back, its message wins, no file stays. */
    int rc = mp_gguf_writer_write(w, path, fail_fill, NULL, &err);
    CHECKF(rc == MP_E_IO && strstr(err.msg, "read failed for tensor 3"), "%d %s", rc, err.msg);
    CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
    mp_err_clear(&err);
    /* No data and no fill. */
    CHECK(mp_gguf_writer_write(w, path, NULL, NULL, &err) == MP_E_INVAL && strstr(err.msg, "no fill"));
    mp_err_clear(&err);

    rc = mp_gguf_writer_write(w, path, sample_fill, NULL, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    CHECK(access(tmp, F_OK) != 0);
    size_t size = 0, msize = 0;
    void *file = mp_test_read_file(path, &size);
    void *mem = NULL;
    CHECK(mp_gguf_writer_write_mem(w, sample_fill, NULL, &mem, &msize, &err) == MP_OK);
    CHECK(file && mem && size == msize && memcmp(file, mem, size) == 0);

    for (int no_mmap = 0; no_mmap <= 1; no_mmap++) {
        mp_gguf_open_opts opts = {.no_mmap = no_mmap};
        mp_gguf *g = NULL;
        rc = mp_gguf_open(&g, path, &opts, &err);
        CHECKF(rc == MP_OK, "no_mmap=%d: %s", no_mmap, err.msg);
        if (!g) continue;
        CHECK(mp_gguf_fd(g) >= 0 && mp_gguf_file_size(g) == size);
        CHECK((mp_gguf_tensor_data(g, mp_gguf_tensor_at(g, 0)) == NULL) == no_mmap);
        check_sample(g, 32);
        mp_gguf_free(g);
    }
    unlink(path);
    free(file);
    free(mem);
    mp_gguf_writer_free(w);

    /* Open failures name the path. */
    mp_gguf *g = (mp_gguf *)&err;
    mp_err_clear(&err);
    CHECK(mp_gguf_open(&g, "/nonexistent/x.gguf", NULL, &err) == MP_E_IO && g == NULL &&
          strstr(err.msg, "/nonexistent/x.gguf: cannot open"));
    mp_err_clear(&err);
    CHECK(mp_gguf_open(&g, mp_test_build_dir(), NULL, &err) == MP_E_IO && strstr(err.msg, "not a regular file"));
    /* An empty file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    for (int no_mmap = 0; no_mmap <= 1; no_mmap++) {
        mp_gguf_open_opts opts = {.no_mmap = no_mmap};
        mp_err_clear(&err);
        CHECK(mp_gguf_open(&g, path, &opts, &err) == MP_E_CORRUPT && strstr(err.msg, "only 0 bytes"));
    }
    unlink(path);
}

/* ---- getters and writer arguments ------------------------------------------ */

static void test_getters(void)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    mp_gguf_value v = {.type = MP_GGUF_INT8, .v.i64 = -1};
    mp_gguf_writer_set_value(w, "neg", &v);
    mp_gguf_writer_set_u64(w, "big", 1ull << 40);
    mp_gguf_writer_set_u32(w, "u", 7);
    mp_gguf_writer_set_u32(w, "u", 9); /* replaces in place */
    mp_gguf_writer_set_i32(w, "i", INT32_MIN);
    mp_gguf_writer_set_str(w, "s", "str");
    mp_gguf_writer_set_bool(w, "b", false);
    mp_gguf_writer_set_f32(w, "f", 1.5f);
    void *img = NULL;
    size_t size = 0;
    mp_err err = {0};
    CHECK(mp_gguf_writer_write_mem(w, NULL, NULL, &img, &size, &err) == MP_OK);
    mp_gguf_writer_free(w);
    mp_gguf *g = NULL;
    CHECK(mp_gguf_open_mem(&g, img, size, "get.gguf", &err) == MP_OK);
    if (!g) return;
    uint32_t u32 = 123;
    int32_t i32;
    uint64_t u64;
    float f;
    bool b = true;
    CHECK(mp_gguf_n_kv(g) == 7 && strcmp(mp_gguf_kv_at(g, 2)->key.ptr, "u") == 0);
    CHECK(mp_gguf_kv_at(g, 7) == NULL && mp_gguf_tensor_at(g, 0) == NULL);
    CHECK(mp_gguf_get_u32(g, "u", &u32, &err) == MP_OK && u32 == 9);
    CHECK(mp_gguf_get_u32(g, "absent", &u32, &err) == MP_E_NOTFOUND && u32 == 9 && err.status == MP_OK);
    CHECK(mp_gguf_get_u32(g, "neg", &u32, &err) == MP_E_CORRUPT && strstr(err.msg, "get.gguf: key 'neg' = -1"));
    mp_err_clear(&err);
    CHECK(mp_gguf_get_i32(g, "neg", &i32, &err) == MP_OK && i32 == -1);
    CHECK(mp_gguf_get_u32(g, "big", &u32, &err) == MP_E_CORRUPT && strstr(err.msg, "does not fit in uint32"));
    mp_err_clear(&err);
    CHECK(mp_gguf_get_i32(g, "big", &i32, &err) == MP_E_CORRUPT);
    mp_err_clear(&err);
    CHECK(mp_gguf_get_u64(g, "big", &u64, &err) == MP_OK && u64 == 1ull << 40);
    CHECK(mp_gguf_get_u64(g, "neg", &u64, &err) == MP_E_CORRUPT);
    mp_err_clear(&err);
    CHECK(mp_gguf_get_i32(g, "i", &i32, &err) == MP_OK && i32 == INT32_MIN);
    CHECK(mp_gguf_get_u32(g, "s", &u32, &err) == MP_E_CORRUPT && strstr(err.msg, "key 's' has type string"));
    mp_err_clear(&err);
    CHECK(mp_gguf_get_f32(g, "u", &f, &err) == MP_OK && f == 9.0f);
    CHECK(mp_gguf_get_f32(g, "f", &f, &err) == MP_OK && f == 1.5f);
    CHECK(mp_gguf_get_f32(g, "b", &f, &err) == MP_E_CORRUPT);
    mp_err_clear(&err);
    CHECK(mp_gguf_get_bool(g, "b", &b, &err) == MP_OK && !b);
    CHECK(mp_gguf_get_bool(g, "u", &b, &err) == MP_E_CORRUPT);
    mp_err_clear(&err);
    CHECK(mp_gguf_get_str(g, "u") == NULL && mp_gguf_get_str(g, "nope") == NULL);
    uint32_t et;
    const void *data;
    CHECK(mp_gguf_get_arr(g, "s", &et, &u64, &data, &err) == MP_E_CORRUPT);
    CHECK(mp_gguf_get_arr(g, "nope", &et, &u64, &data, &err) == MP_E_NOTFOUND);
    CHECK(strcmp(mp_gguf_vtype_name(MP_GGUF_ARRAY), "array") == 0 && strcmp(mp_gguf_vtype_name(99), "unknown") == 0);
    mp_gguf_free(g);
    free(img);
}

static void test_writer_args(void)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    static const int64_t ne[4] = {32, 2, 1, 1}, neg[2] = {32, -1}, odd[1] = {33}, huge[2] = {INT64_MAX, 2};
    CHECK(mp_gguf_writer_add_tensor(w, "a", MP_TYPE_Q8_0, 2, ne, NULL) == MP_OK);
    CHECK(mp_gguf_writer_add_tensor(w, "a", MP_TYPE_F32, 1, ne, NULL) == MP_E_INVAL); /* duplicate */
    CHECK(mp_gguf_writer_add_tensor(w, "b", MP_TYPE_F32, 0, ne, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", MP_TYPE_F32, 5, ne, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", MP_TYPE_F32, 2, neg, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", MP_TYPE_Q4_0, 1, odd, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", 4, 1, ne, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", 1000, 1, ne, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "b", MP_TYPE_F32, 2, huge, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_add_tensor(w, "a_name_that_is_sixty_four_bytes_long_which_llama_cpp_rejects__xy", MP_TYPE_F32,
                                    1, ne, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_set_arr(w, "k", MP_GGUF_STRING, 0, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_set_arr(w, "k", MP_GGUF_ARRAY, 0, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_set_arr(w, "k", 13, 0, NULL) == MP_E_INVAL);
    CHECK(mp_gguf_writer_set_str(w, "k", NULL) == MP_E_INVAL);
    mp_gguf_value bad = {.type = 42};
    CHECK(mp_gguf_writer_set_value(w, "k", &bad) == MP_E_INVAL);
    uint32_t one = 1;
    mp_gguf_value nested_bad = {.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 1, &one}};
    mp_gguf_value elem = {.type = MP_GGUF_UINT32, .v.u64 = 1};
    nested_bad.v.arr.data = &elem; /* a nested element must itself be an array */
    CHECK(mp_gguf_writer_set_value(w, "k", &nested_bad) == MP_E_INVAL);
    /* Nesting: 8 levels of arrays are written and read, 9 are refused like the reader does. */
    mp_gguf_value chain[9];
    chain[8] = (mp_gguf_value){.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_UINT32, 1, &one}};
    for (int i = 7; i >= 0; i--) chain[i] = (mp_gguf_value){.type = MP_GGUF_ARRAY, .v.arr = {MP_GGUF_ARRAY, 1, &chain[i + 1]}};
    CHECK(mp_gguf_writer_set_value(w, "deep", &chain[0]) == MP_E_INVAL);
    CHECK(mp_gguf_writer_set_value(w, "deep", &chain[1]) == MP_OK);
    mp_err err = {0};
    void *img = NULL;
    size_t size;
    CHECK(mp_gguf_writer_set_u32(w, "general.alignment", 48) == MP_OK);
    CHECK(mp_gguf_writer_write_mem(w, sample_fill, NULL, &img, &size, &err) == MP_E_INVAL &&
          strstr(err.msg, "general.alignment"));
    mp_err_clear(&err);
    CHECK(mp_gguf_writer_set_u32(w, "general.alignment", 4096) == MP_OK);
    CHECK(mp_gguf_writer_write_mem(w, sample_fill, NULL, &img, &size, &err) == MP_OK);
    mp_gguf *g = NULL;
    CHECK(img && mp_gguf_open_mem(&g, img, size, "a.gguf", &err) == MP_OK);
    if (g) {
        CHECKF(mp_gguf_alignment(g) == 4096 && mp_gguf_data_offset(g) == 4096 && size == 8192, "%u %" PRIu64 " %zu",
               mp_gguf_alignment(g), mp_gguf_data_offset(g), size);
        const mp_gguf_value *d = mp_gguf_get(g, "deep");
        for (int i = 0; d && i < 7; i++) d = d->v.arr.type == MP_GGUF_ARRAY ? d->v.arr.data : NULL;
        CHECK(d && d->v.arr.type == MP_GGUF_UINT32 && ((const uint32_t *)d->v.arr.data)[0] == 1);
        CHECKF(mp_gguf_n_tensors(g) == 1 && mp_gguf_n_kv(g) == 2, "%" PRIu64 " %" PRIu64, mp_gguf_n_tensors(g), mp_gguf_n_kv(g));
    }
    mp_gguf_free(g);
    free(img);
    mp_gguf_writer_free(w);
    mp_gguf_writer_free(NULL);
    mp_gguf_free(NULL);
}

/* ---- malformed input, one case per class ------------------------------------ */

static void test_malformed(void)
{
    gb b = {0};
    const int64_t ne16[1] = {16};

    /* Header. */
    gb_bytes(&b, "GG", 2);
    expect_fail("tiny file", &b, MP_E_CORRUPT, "only 2 bytes", NULL);
    gb_header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_fail("bad magic", &b, MP_E_CORRUPT, "magic is 'GGML'", NULL);
    gb_header(&b, 1, 0, 0);
    expect_fail("version 1", &b, MP_E_UNSUPPORTED, "version 1 is not supported", NULL);
    gb_header(&b, 4, 0, 0);
    expect_fail("version 4", &b, MP_E_UNSUPPORTED, "version 4", NULL);
    gb_header(&b, 0, 0, 0);
    expect_fail("version 0", &b, MP_E_CORRUPT, "version 0", NULL);
    gb_header(&b, 0x03000000u, 0, 0);
    expect_fail("big-endian", &b, MP_E_UNSUPPORTED, "big-endian", NULL);
    gb_bytes(&b, "GGUF\3\0\0\0\0\0", 10);
    expect_fail("truncated header", &b, MP_E_CORRUPT, "truncated", "the file header");
    gb_header(&b, 3, 1ull << 40, 0);
    expect_fail("n_tensors too large", &b, MP_E_CORRUPT, "n_tensors = 1099511627776", "cannot fit");
    gb_header(&b, 3, 0, UINT64_MAX);
    expect_fail("n_kv too large", &b, MP_E_CORRUPT, "n_kv = 18446744073709551615", NULL);

    /* Metadata. */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 1ull << 62);
    gb_bytes(&b, "abcdefgh", 8);
    expect_fail("key length", &b, MP_E_CORRUPT, "metadata entry 0 key: string length 4611686018427387904",
                "at byte 24");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.x");
    gb_u32(&b, 13);
    gb_u32(&b, 0);
    expect_fail("unknown value type", &b, MP_E_CORRUPT, "key 'k.x': unknown value type 13 at byte 35", NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "bad\nkey.with.a.very.long.name.that.the.message.shortens.to.48.bytes");
    gb_u32(&b, 99);
    expect_fail("control bytes in names", &b, MP_E_CORRUPT,
                "key 'bad\\x0akey.with.a.very.long.name.that.the.message.s...': unknown value type 99 at byte 99", NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.s");
    gb_u32(&b, MP_GGUF_STRING);
    gb_u64(&b, 100);
    gb_bytes(&b, "short", 5);
    expect_fail("string value length", &b, MP_E_CORRUPT, "key 'k.s': string length 100", "exceeds the file");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u32(&b, MP_GGUF_STRING);
    gb_u64(&b, 1ull << 32);
    gb_str(&b, "a");
    expect_fail("array of strings count", &b, MP_E_CORRUPT,
                "key 'tokenizer.ggml.tokens': array of 4294967296 strings at byte 57 exceeds the file", NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.a");
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u32(&b, MP_GGUF_UINT32);
    gb_u64(&b, 1000);
    gb_u64(&b, 0);
    expect_fail("array of scalars count", &b, MP_E_CORRUPT, "array of 1000 uint32 values", "(8 bytes left)");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.a");
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u32(&b, 99);
    gb_u64(&b, 0);
    expect_fail("array element type", &b, MP_E_CORRUPT, "key 'k.a': array at byte 39 has unknown element type 99",
                NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.a");
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u32(&b, MP_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "ab");
    gb_u64(&b, 1ull << 50);
    expect_fail("array string element", &b, MP_E_CORRUPT, "key 'k.a': element 1: string length 1125899906842624",
                NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.deep");
    gb_u32(&b, MP_GGUF_ARRAY);
    for (int i = 0; i < 20; i++) {
        gb_u32(&b, MP_GGUF_ARRAY);
        gb_u64(&b, 1);
    }
    expect_fail("nesting depth", &b, MP_E_CORRUPT, "key 'k.deep': arrays nested more than 8 deep", NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.deep");
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u32(&b, MP_GGUF_ARRAY);
    gb_u64(&b, 2);
    gb_u32(&b, MP_GGUF_UINT8);
    gb_u64(&b, 1);
    gb_u8(&b, 1);
    gb_u32(&b, MP_GGUF_UINT8);
    gb_u64(&b, 5);
    expect_fail("nested element count", &b, MP_E_CORRUPT, "key 'k.deep': array of 5 uint8 values at byte 67", NULL);
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "a.b", 1);
    gb_kv_u32(&b, "a.b", 2);
    expect_fail("duplicate key", &b, MP_E_CORRUPT, "duplicate key 'a.b' (metadata entries 0 and 1, at byte 43)", NULL);
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_u32(&b, MP_GGUF_UINT8);
    gb_u8(&b, 0);
    expect_fail("NUL in key", &b, MP_E_CORRUPT, "metadata entry 0 at byte 24: key contains a NUL byte", NULL);
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.alignment", "32");
    expect_fail("alignment type", &b, MP_E_CORRUPT, "'general.alignment' has type string, expected uint32", NULL);
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 0);
    expect_fail("alignment 0", &b, MP_E_CORRUPT, "'general.alignment' = 0 is not a power of two", NULL);
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 48);
    expect_fail("alignment 48", &b, MP_E_CORRUPT, "'general.alignment' = 48 is not a power of two", NULL);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k.f");
    gb_u32(&b, MP_GGUF_FLOAT64);
    gb_u32(&b, 0);
    expect_fail("truncated value", &b, MP_E_CORRUPT, "the value of key 'k.f'", "needs 8 bytes at byte 39");

    /* Tensor infos. */
    static const int64_t ne_neg[2] = {16, -3}, ne_q[1] = {33}, ne_big[2] = {1ll << 32, 1ll << 32},
                         ne_bytes[2] = {1ll << 31, 1ll << 31};
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.dims0", 0, ne16, MP_TYPE_F32, 0);
    gb_zeros(&b, 64);
    expect_fail("n_dims 0", &b, MP_E_CORRUPT, "tensor 't.dims0': n_dims 0 at byte", "1..4");
    gb_header(&b, 3, 1, 0);
    gb_str(&b, "t.dims5");
    gb_u32(&b, 5);
    gb_zeros(&b, 64);
    expect_fail("n_dims 5", &b, MP_E_CORRUPT, "tensor 't.dims5': n_dims 5", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.neg", 2, ne_neg, MP_TYPE_F32, 0);
    gb_zeros(&b, 64);
    expect_fail("negative ne", &b, MP_E_CORRUPT, "tensor 't.neg': ne[1] = -3 at byte", "negative");
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.q", 1, ne_q, MP_TYPE_Q4_0, 0);
    gb_zeros(&b, 64);
    expect_fail("row not whole blocks", &b, MP_E_CORRUPT,
                "tensor 't.q': row length ne[0] = 33 is not a multiple of the q4_0 block size 32", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.big", 2, ne_big, MP_TYPE_F32, 0);
    gb_zeros(&b, 64);
    expect_fail("element count overflow", &b, MP_E_CORRUPT, "tensor 't.big': shape [4294967296, 4294967296, 1, 1]",
                "2^63");
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.bytes", 2, ne_bytes, MP_TYPE_F64, 0);
    gb_zeros(&b, 64);
    expect_fail("byte size overflow", &b, MP_E_CORRUPT, "tensor 't.bytes': byte size overflows", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "blk.0.attn_q.weight", 1, ne16, 4, 0);
    gb_zeros(&b, 64);
    expect_fail("removed type id", &b, MP_E_UNSUPPORTED, "tensor 'blk.0.attn_q.weight' has unknown type id 4", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "blk.0.attn_k.weight", 1, ne16, 0x7fffffff, 0);
    gb_zeros(&b, 64);
    expect_fail("unknown type id", &b, MP_E_UNSUPPORTED, "unknown type id 2147483647", NULL);
    gb_header(&b, 3, 2, 0);
    gb_tinfo(&b, "t.same", 1, ne16, MP_TYPE_F32, 0);
    gb_tinfo(&b, "t.same", 1, ne16, MP_TYPE_F32, 64);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    expect_fail("duplicate tensor", &b, MP_E_CORRUPT, "duplicate tensor name 't.same' (tensor infos 0 and 1)", NULL);
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_zeros(&b, 64);
    expect_fail("NUL in tensor name", &b, MP_E_CORRUPT, "tensor info 0 at byte 24: name contains a NUL byte", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.unaligned", 1, ne16, MP_TYPE_F32, 16);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    expect_fail("unaligned offset", &b, MP_E_CORRUPT,
                "tensor 't.unaligned': data offset 16 is not a multiple of the alignment 32", NULL);
    gb_header(&b, 3, 1, 1);
    gb_kv_u32(&b, "general.alignment", 64);
    gb_tinfo(&b, "t.unaligned64", 1, ne16, MP_TYPE_F32, 32);
    gb_pad(&b, 64);
    gb_zeros(&b, 128);
    expect_fail("unaligned offset 64", &b, MP_E_CORRUPT, "not a multiple of the alignment 64", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "blk.3.ffn_up_exps.weight", 1, ne16, MP_TYPE_F32, 32);
    gb_pad(&b, 32); /* data section at 96: the tensor spans 128..192 */
    gb_zeros(&b, 80);
    expect_fail("past end of file", &b, MP_E_CORRUPT,
                "tensor 'blk.3.ffn_up_exps.weight' ends at byte 192, past the end of the file (176 bytes)", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.wrap", 1, ne16, MP_TYPE_F32, UINT64_MAX - 31);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail("offset wraps", &b, MP_E_CORRUPT, "tensor 't.wrap' starts past 2^64", "past the end of the file");
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "t.wrap2", 1, ne16, MP_TYPE_F32, UINT64_MAX - 127);
    gb_pad(&b, 32);
    expect_fail("end wraps", &b, MP_E_CORRUPT, "tensor 't.wrap2' at byte", "ends past 2^64");
    gb_header(&b, 3, 3, 0);
    gb_tinfo(&b, "t.a", 1, ne16, MP_TYPE_F32, 0);
    gb_tinfo(&b, "t.c", 1, ne16, MP_TYPE_F32, 128);
    gb_tinfo(&b, "t.b", 1, ne16, MP_TYPE_F32, 32); /* 32..96 overlaps t.a (0..64) */
    gb_pad(&b, 32);
    gb_zeros(&b, 256);
    expect_fail("overlap", &b, MP_E_CORRUPT, "tensor 't.b' (bytes", "overlaps tensor 't.a'");
    gb_header(&b, 3, 1, 0);
    gb_str(&b, "t.cut.long.name");
    gb_u32(&b, 2);
    gb_u64(&b, 16);
    gb_u32(&b, 0);
    expect_fail("truncated tensor info", &b, MP_E_CORRUPT, "the info of tensor 't.cut.long.name'",
                "needs 8 bytes at byte 59");
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 1ull << 60);
    gb_zeros(&b, 40);
    expect_fail("tensor name length", &b, MP_E_CORRUPT, "tensor info 0 name: string length 1152921504606846976",
                NULL);

    /* Valid corner cases. */
    gb_header(&b, 2, 2, 1); /* version 2 */
    gb_kv_str(&b, "general.architecture", "llama");
    gb_tinfo(&b, "t.a", 1, ne16, MP_TYPE_F32, 0);
    static const int64_t ne_empty[2] = {16, 0};
    gb_tinfo(&b, "t.empty", 2, ne_empty, MP_TYPE_F32, 32); /* zero bytes inside t.a: no overlap */
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_ok("v2 and an empty tensor", &b);
    gb_header(&b, 3, 1, 0); /* tensor ends exactly at the end of the file, no trailing padding */
    gb_tinfo(&b, "t.a", 1, ne16, MP_TYPE_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_ok("exact end", &b);
    gb_header(&b, 3, 0, 0);
    expect_ok("empty header", &b);
}

/* ---- truncation at every byte ------------------------------------------------ */

static void test_truncation(void)
{
    size_t size = 0;
    uint8_t *img = sample_image(1, 1, 0, 0, &size);
    CHECK(img != NULL);
    if (!img) return;
    mp_gguf *g = NULL;
    mp_err err = {0};
    CHECK(mp_gguf_open_mem(&g, img, size, "full.gguf", &err) == MP_OK);
    if (!g) return;
    uint64_t need = 0; /* the last tensor byte: shorter files cannot be valid */
    for (uint64_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        if (t->offset + t->size > need) need = t->offset + t->size;
    }
    mp_gguf_free(g);
    int bad = 0;
    for (size_t n = 0; n < size; n++) {
        /* A fresh copy of exactly n bytes so ASan sees any read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, img, n);
        mp_err_clear(&err);
        g = NULL;
        int rc = mp_gguf_open_mem(&g, cut, n, "cut.gguf", &err);
        if (n < need) {
            if (rc != MP_E_CORRUPT || g || !err.msg[0] || strstr(err.msg, "cut.gguf: ") != err.msg) {
                if (bad++ < 5) fprintf(stderr, "truncated at %zu: rc %d msg '%s'\n", n, rc, err.msg);
            }
        } else if (rc != MP_OK) {
            if (bad++ < 5) fprintf(stderr, "truncated padding at %zu: rc %d msg '%s'\n", n, rc, err.msg);
        }
        mp_gguf_free(g);
        free(cut);
    }
    CHECKF(bad == 0, "%d truncations misbehaved (image %zu bytes, data needed to %" PRIu64 ")", bad, size, need);
    free(img);
}

/* ---- the real vocab files ----------------------------------------------------- */

static void test_vocab(const char *file, const char *model, uint64_t n_tokens, const char *tok0, const char *tok1)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/vocab/%s", mp_test_src_dir(), file);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "missing %s\n", path);
        CHECK(0);
        return;
    }
    size_t fsize = 0;
    void *bytes = mp_test_read_file(path, &fsize);
    for (int no_mmap = 0; no_mmap <= 1; no_mmap++) {
        mp_gguf_open_opts opts = {.no_mmap = no_mmap};
        mp_gguf *g = NULL;
        mp_err err = {0};
        int rc = mp_gguf_open(&g, path, &opts, &err);
        CHECKF(rc == MP_OK, "%s", err.msg);
        if (!g) continue;
        CHECK(mp_gguf_version(g) == 3 && mp_gguf_n_tensors(g) == 0 && mp_gguf_file_size(g) == fsize);
        CHECK(strcmp(mp_gguf_get_str(g, "tokenizer.ggml.model"), model) == 0);
        uint32_t et = 0;
        uint64_t n = 0;
        const void *data = NULL;
        CHECK(mp_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data, &err) == MP_OK);
        CHECKF(et == MP_GGUF_STRING && n == n_tokens, "%s: %u %" PRIu64, file, et, n);
        if (et == MP_GGUF_STRING && n >= 2) {
            const mp_gguf_str *s = data;
            CHECKF(strcmp(s[0].ptr, tok0) == 0 && strcmp(s[1].ptr, tok1) == 0, "%s: '%s' '%s'", file, s[0].ptr,
                   s[1].ptr);
        }
        if (mp_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &data, &err) == MP_OK)
            CHECK(et == MP_GGUF_INT32 && n == n_tokens);
        /* A file llama.cpp wrote comes back byte for byte through our writer. */
        size_t size2 = 0;
        void *img2 = rewrite(g, &size2);
        CHECKF(bytes && img2 && size2 == fsize && memcmp(bytes, img2, fsize) == 0, "%s: rewrite differs", file);
        free(img2);
        mp_gguf_free(g);
    }
    /* Cut inside the token array (past the 1 MiB first read of no_mmap). */
    char cut[1100];
    snprintf(cut, sizeof cut, "%s/test_gguf_cut_%ld.gguf", mp_test_build_dir(), (long)getpid());
    FILE *f = fopen(cut, "wb");
    CHECK(f && bytes && fwrite(bytes, 1, fsize * 9 / 10, f) == fsize * 9 / 10);
    if (f) fclose(f);
    for (int no_mmap = 0; no_mmap <= 1; no_mmap++) {
        mp_gguf_open_opts opts = {.no_mmap = no_mmap};
        mp_gguf *g = NULL;
        mp_err err = {0};
        int rc = mp_gguf_open(&g, cut, &opts, &err);
        CHECKF(rc == MP_E_CORRUPT && !g && (strstr(err.msg, "exceeds the file") || strstr(err.msg, "truncated")),
               "%s cut, no_mmap=%d: %d %s", file, no_mmap, rc, err.msg);
        if (verbose) printf("  %s\n", err.msg);
    }
    unlink(cut);
    free(bytes);
}

int main(int argc, char **argv)
{
    verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    test_roundtrip_mem(32);
    test_roundtrip_mem(64);
    test_roundtrip_mem(1);
    test_file_io();
    test_getters();
    test_writer_args();
    test_malformed();
    test_truncation();
    test_vocab("ggml-vocab-llama-spm.gguf", "llama", 32000, "<unk>", "<s>");
    test_vocab("ggml-vocab-gpt-2.gguf", "gpt2", 50257, "!", "\"");
    MP_TEST_DONE();
}
