/* Pieces shared by the GGUF reader (gguf.c) and writer (gguf_write.c).
 * Not part of the API. */
#ifndef MP_GGUF_INTERNAL_H
#define MP_GGUF_INTERNAL_H

#include "gguf/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF code assumes a little-endian host (GGUF files are little-endian)"
#endif

#define MP_GGUF_MAGIC "GGUF"
#define MP_GGUF_VERSION_WRITTEN 3u

/* Nested arrays deeper than this are rejected: each level costs the file
 * only 12 bytes but the parser a stack frame. */
#define MP_GGUF_MAX_NESTING 8

/* llama.cpp's GGML_MAX_NAME: tensor names must be shorter than this for
 * llama.cpp to load the file. The writer enforces it; the reader does not. */
#define MP_GGUF_MAX_TENSOR_NAME 64

static inline uint64_t mp_gguf_align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

static inline bool mp_gguf_is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Bytes one element of `type` occupies at minimum in the file: the scalar
 * width, 8 for a string (its length), 12 for a nested array (type + count);
 * 0 for an unknown type. Used to bound counts by the bytes left. */
static inline uint64_t mp_gguf_min_encoded_size(uint32_t type)
{
    if (type == MP_GGUF_STRING) return 8;
    if (type == MP_GGUF_ARRAY) return 12;
    return mp_gguf_vtype_size(type);
}

#endif
