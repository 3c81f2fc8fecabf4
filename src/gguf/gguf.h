/* GGUF v2/v3 reader and writer.
 *
 * The reader validates everything before anything is used: magic, version,
 * counts, string lengths, value types, nested arrays, dims, tensor type ids,
 * general.alignment, every tensor's offset + size inside the file, and that no
 * two tensors overlap. A file that passes mp_gguf_open() can be indexed by any
 * consumer without further bounds checks on the tensor data. Failures return a
 * negative mp_status and one line in err that names the file and the
 * key/tensor/byte offset, e.g.
 *   "model.gguf: tensor 'blk.3.ffn_up_exps.weight' ends at byte N, past the end of the file (M bytes)"
 *
 * Ownership: everything returned by getters points into the mp_gguf and stays
 * valid until mp_gguf_free(). */
#ifndef MP_GGUF_H
#define MP_GGUF_H

#include "common/err.h"
#include "common/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_GGUF_MAX_DIMS 4
#define MP_GGUF_DEFAULT_ALIGNMENT 32

typedef enum mp_gguf_vtype {
    MP_GGUF_UINT8 = 0,
    MP_GGUF_INT8 = 1,
    MP_GGUF_UINT16 = 2,
    MP_GGUF_INT16 = 3,
    MP_GGUF_UINT32 = 4,
    MP_GGUF_INT32 = 5,
    MP_GGUF_FLOAT32 = 6,
    MP_GGUF_BOOL = 7,
    MP_GGUF_STRING = 8,
    MP_GGUF_ARRAY = 9,
    MP_GGUF_UINT64 = 10,
    MP_GGUF_INT64 = 11,
    MP_GGUF_FLOAT64 = 12,
    MP_GGUF_VTYPE_COUNT = 13
} mp_gguf_vtype;

/* A string inside the file: not NUL-terminated in the file, but the reader
 * stores a NUL-terminated copy, so `ptr[len] == '\0'` always holds (a string
 * may still contain interior NULs; use len). */
typedef struct mp_gguf_str {
    uint64_t len;
    const char *ptr;
} mp_gguf_str;

typedef struct mp_gguf_value mp_gguf_value;

/* One metadata value. For arrays:
 *   arr.type = element type; arr.n = count;
 *   scalar elements: arr.data points to n contiguous elements of that type
 *                    (uint8_t for BOOL), naturally aligned in memory;
 *   STRING elements: arr.data points to n mp_gguf_str;
 *   ARRAY elements (nested): arr.data points to n mp_gguf_value. */
struct mp_gguf_value {
    uint32_t type; /* mp_gguf_vtype */
    union {
        uint64_t u64; /* UINT8/16/32/64, BOOL (0/1) */
        int64_t i64;  /* INT8/16/32/64 */
        double f64;   /* FLOAT32/64 */
        mp_gguf_str str;
        struct {
            uint32_t type;
            uint64_t n;
            const void *data;
        } arr;
    } v;
};

typedef struct mp_gguf_kv {
    mp_gguf_str key;
    mp_gguf_value value;
} mp_gguf_kv;

typedef struct mp_gguf_tensor {
    const char *name;           /* NUL-terminated */
    uint32_t type;              /* mp_type */
    uint32_t n_dims;            /* 1..4 */
    int64_t ne[MP_GGUF_MAX_DIMS]; /* ne[0] = row length; unused dims are 1 */
    uint64_t offset;            /* absolute byte offset of the data in the file */
    uint64_t size;              /* bytes of data */
} mp_gguf_tensor;

typedef struct mp_gguf mp_gguf;

typedef struct mp_gguf_open_opts {
    bool no_mmap;      /* do not map the file: mp_gguf_tensor_data() returns NULL */
    bool allow_no_tensor_data; /* (not used yet) */
} mp_gguf_open_opts;

/* Opens, parses and validates path. On success *out owns an open fd
 * (O_RDONLY; callers may pread it or open the path again with O_DIRECT) and,
 * unless opts->no_mmap, a PROT_READ/MAP_SHARED mapping of the whole file
 * (the header is parsed from it; a file truncated by someone else while
 * mapped raises SIGBUS on access, as with any mapping). With no_mmap the
 * header is read with pread into a buffer that is freed before returning.
 * opts may be NULL. On failure *out is NULL. Returns MP_OK, MP_E_IO
 * (open/read/stat/mmap failed, not a regular file), MP_E_CORRUPT
 * (malformed), MP_E_UNSUPPORTED (version 1 or > 3, big-endian, a tensor type
 * id this build does not know) or MP_E_NOMEM. Memory use is bounded by a
 * small multiple of the header bytes actually present, whatever the counts
 * in the file claim. */
int mp_gguf_open(mp_gguf **out, const char *path, const mp_gguf_open_opts *opts, mp_err *err);

/* Parses a GGUF image held in memory (for tests and fuzzing); buf must stay
 * valid while the mp_gguf lives (tensor data points into it). name is used
 * in messages. Same statuses as mp_gguf_open except MP_E_IO. */
int mp_gguf_open_mem(mp_gguf **out, const void *buf, size_t size, const char *name, mp_err *err);

void mp_gguf_free(mp_gguf *g); /* NULL-safe */

const char *mp_gguf_path(const mp_gguf *g);
int mp_gguf_fd(const mp_gguf *g);            /* -1 for an in-memory image */
uint64_t mp_gguf_file_size(const mp_gguf *g);
uint32_t mp_gguf_version(const mp_gguf *g);
uint32_t mp_gguf_alignment(const mp_gguf *g);
/* Start of the tensor data section: the header end rounded up to the
 * alignment, or the header end itself when the file has no tensors. */
uint64_t mp_gguf_data_offset(const mp_gguf *g);

/* Metadata. */
uint64_t mp_gguf_n_kv(const mp_gguf *g);
const mp_gguf_kv *mp_gguf_kv_at(const mp_gguf *g, uint64_t i);
const mp_gguf_value *mp_gguf_get(const mp_gguf *g, const char *key); /* NULL if absent */

/* Typed getters: MP_OK, MP_E_NOTFOUND (absent; *out untouched) or
 * MP_E_CORRUPT (present with an incompatible type or out of range; err says
 * which key). Integer getters accept any integer type whose value fits;
 * mp_gguf_get_f32 accepts FLOAT32/FLOAT64 and integers. */
int mp_gguf_get_u32(const mp_gguf *g, const char *key, uint32_t *out, mp_err *err);
int mp_gguf_get_i32(const mp_gguf *g, const char *key, int32_t *out, mp_err *err);
int mp_gguf_get_u64(const mp_gguf *g, const char *key, uint64_t *out, mp_err *err);
int mp_gguf_get_f32(const mp_gguf *g, const char *key, float *out, mp_err *err);
int mp_gguf_get_bool(const mp_gguf *g, const char *key, bool *out, mp_err *err);
/* Returns the NUL-terminated string or NULL if absent / not a string. */
const char *mp_gguf_get_str(const mp_gguf *g, const char *key);
/* Array getter: MP_OK with *elem_type, *n, *data as in mp_gguf_value.arr;
 * MP_E_NOTFOUND; MP_E_CORRUPT if the key is not an array. */
int mp_gguf_get_arr(const mp_gguf *g, const char *key, uint32_t *elem_type, uint64_t *n,
                    const void **data, mp_err *err);

/* Tensors. */
uint64_t mp_gguf_n_tensors(const mp_gguf *g);
const mp_gguf_tensor *mp_gguf_tensor_at(const mp_gguf *g, uint64_t i);
const mp_gguf_tensor *mp_gguf_find_tensor(const mp_gguf *g, const char *name); /* NULL if absent */
/* Pointer to the tensor's bytes in the mapping (or in the memory image);
 * NULL when the file was opened with no_mmap. */
const void *mp_gguf_tensor_data(const mp_gguf *g, const mp_gguf_tensor *t);
int64_t mp_gguf_tensor_nelements(const mp_gguf_tensor *t);

/* Human-readable name of a value type ("uint32", "array", ...); "unknown"
 * for an id >= MP_GGUF_VTYPE_COUNT. */
const char *mp_gguf_vtype_name(uint32_t type);

/* Bytes of one scalar of `type` in the file and in arr.data (BOOL: 1);
 * 0 for STRING, ARRAY and unknown ids. */
size_t mp_gguf_vtype_size(uint32_t type);

/* ---- Writer -------------------------------------------------------------
 * Collects metadata and tensor infos, then writes a GGUF v3 file. Tensor data
 * is either given up front (copied? no: the pointer must stay valid until
 * mp_gguf_writer_write returns) or produced on demand by a fill callback, so
 * files of tens of GB are written in bounded memory. Keys are written in the
 * order first set; setting a key again replaces its value in place. */
typedef struct mp_gguf_writer mp_gguf_writer;

/* Fills buf (size bytes) with the data of tensor index `idx` (order of
 * mp_gguf_writer_add_tensor calls). Returns MP_OK or a negative status. */
typedef int (*mp_gguf_fill_fn)(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err);

mp_gguf_writer *mp_gguf_writer_create(void); /* NULL on OOM */
void mp_gguf_writer_free(mp_gguf_writer *w);  /* NULL-safe */

int mp_gguf_writer_set_u32(mp_gguf_writer *w, const char *key, uint32_t v);
int mp_gguf_writer_set_i32(mp_gguf_writer *w, const char *key, int32_t v);
int mp_gguf_writer_set_u64(mp_gguf_writer *w, const char *key, uint64_t v);
int mp_gguf_writer_set_f32(mp_gguf_writer *w, const char *key, float v);
int mp_gguf_writer_set_bool(mp_gguf_writer *w, const char *key, bool v);
int mp_gguf_writer_set_str(mp_gguf_writer *w, const char *key, const char *v);
/* Array of scalars (elem_type not STRING/ARRAY); data holds n elements
 * (BOOL as uint8_t) and is copied. */
int mp_gguf_writer_set_arr(mp_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n,
                           const void *data);
/* Array of strings; copied. lens may be NULL (then strlen is used). */
int mp_gguf_writer_set_arr_str(mp_gguf_writer *w, const char *key, uint64_t n,
                               const char *const *strs, const uint64_t *lens);
/* Copies one value from a reader (any type, nested arrays included). */
int mp_gguf_writer_set_value(mp_gguf_writer *w, const char *key, const mp_gguf_value *v);

/* Adds a tensor info. data may be NULL when a fill callback is given to
 * write(). ne has n_dims entries. Returns MP_E_INVAL for a bad shape/type. */
int mp_gguf_writer_add_tensor(mp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const int64_t *ne, const void *data);

/* Writes the file (alignment from general.alignment if set, else 32).
 * Tensors without data are produced by fill (which may then not be NULL).
 * fill is called once per such tensor, in index order, with a buffer that
 * holds the whole tensor (size = its byte size): peak memory is one buffer
 * as large as the largest filled tensor (a 2 GiB expert tensor needs 2 GiB),
 * plus a 1 MiB write buffer. The file is written to "<path>.tmp.<pid>" and
 * renamed over path only when complete; on failure nothing is left behind.
 * Returns MP_OK, MP_E_INVAL (bad general.alignment, missing data and no
 * fill), MP_E_IO, MP_E_NOMEM, or the status fill returned. */
int mp_gguf_writer_write(mp_gguf_writer *w, const char *path, mp_gguf_fill_fn fill, void *fill_ctx,
                         mp_err *err);

/* Same as mp_gguf_writer_write, but into memory: on MP_OK *out is a
 * malloc'ed image of *out_size bytes that the caller frees with free().
 * For tests, fuzz seeds and small files. */
int mp_gguf_writer_write_mem(mp_gguf_writer *w, mp_gguf_fill_fn fill, void *fill_ctx, void **out,
                             size_t *out_size, mp_err *err);

#endif
