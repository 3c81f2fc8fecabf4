/* The moepager packed expert file (".moepack"), on-disk format version 1.
 *
 * A pack holds the same model as the GGUF it was made from, rearranged so
 * that each routed expert is one contiguous, aligned, checksummed block:
 * one read per expert instead of three, O_DIRECT-friendly, and every byte of
 * expert weight verified before it is used.
 *
 * Every integer is little-endian. Every section starts at a multiple of
 * `alignment` (4096), and the file length is a multiple of it too, so a
 * reader may round any block read out to the alignment without reading past
 * the end of the file.
 *
 *   offset 0            header            4096 bytes, mp_pack_header, rest zero
 *   gguf_offset         embedded GGUF     a complete GGUF v3 image: ALL metadata of
 *                                         the source (general.*, tokenizer.*, the
 *                                         architecture's keys) and every tensor that
 *                                         is not a routed expert (token_embd,
 *                                         attention, norms, routers, output, shared
 *                                         experts). Tensor offsets inside it are
 *                                         relative to gguf_offset, as in a file.
 *   index_offset        expert index      n_layer x mp_pack_layer_desc, then
 *                                         n_layer x n_expert x mp_pack_entry,
 *                                         layer-major (entry = layer * n_expert + expert)
 *   data_offset         expert blocks     one block per (layer, expert) of every
 *                                         layer that has experts, in index order,
 *                                         each starting at a multiple of alignment
 *                                         and followed by zero padding to the next
 *
 * A raw (decompressed) block is the expert's gate, up and down matrices in
 * the layer's tensor types, laid out as in the source tensors (gate/up:
 * ne1 rows of ne0; down: ne1 rows of ne0), at byte offsets gate_off, up_off
 * and down_off of the layer descriptor (each a multiple of 64, zero filled
 * between), raw_size bytes in all. A stored block is either the raw block
 * (compression NONE, stored_size == raw_size) or its LZ4 block-format
 * compression (LZ4_compress_default; compression LZ4), used only when it is
 * at least 8% smaller than the raw block.
 *
 * Integrity: header_hash is the xxh3-64 (seed 0) of the 4096 header bytes
 * with the header_hash field set to zero; gguf_hash is the xxh3-64 of the
 * embedded GGUF's gguf_size bytes; index_hash is the xxh3-64 of the index
 * section's index_size bytes; each entry's hash is the xxh3-64 of the
 * block's stored_size stored bytes. A reader verifies the header, the
 * embedded GGUF and the index at open, and a block's hash every time it
 * reads the block, before using it.
 *
 * The 3-D GGUF shapes of the expert tensors are recorded per layer so a
 * model can be bound without touching expert data: gate/up ne = {n_embd,
 * n_ff_exp, n_expert}, down ne = {n_ff_exp, n_embd, n_expert}; ne[2] is
 * always n_expert. */
#ifndef MOEPAGER_PACK_FORMAT_H
#define MOEPAGER_PACK_FORMAT_H

#include <stdint.h>

#define MP_PACK_MAGIC "MOEPACK" /* 8 bytes with the terminating NUL */
#define MP_PACK_VERSION 1u
#define MP_PACK_ALIGNMENT 4096u
#define MP_PACK_HEADER_SIZE 4096u
#define MP_PACK_MATRIX_ALIGN 64u   /* of gate_off / up_off / down_off inside a raw block */
#define MP_PACK_MIN_SAVING_PCT 8u  /* compress a block only when it saves at least this */

enum mp_pack_compression {
    MP_PACK_COMP_NONE = 0,
    MP_PACK_COMP_LZ4 = 1,
};

/* header flags */
#define MP_PACK_FLAG_COMPRESSED 1u /* at least one block is compressed */

typedef struct mp_pack_header {
    char magic[8];          /* "MOEPACK\0" */
    uint32_t version;       /* MP_PACK_VERSION */
    uint32_t flags;         /* MP_PACK_FLAG_* */
    uint32_t alignment;     /* MP_PACK_ALIGNMENT */
    uint32_t n_layer;
    uint32_t n_expert;      /* experts per MoE layer */
    uint32_t reserved0;     /* 0 */
    uint64_t file_size;     /* bytes of the whole file, a multiple of alignment */
    uint64_t gguf_offset;   /* MP_PACK_HEADER_SIZE */
    uint64_t gguf_size;     /* bytes of the GGUF image (unpadded) */
    uint64_t index_offset;
    uint64_t index_size;    /* n_layer * 144 + n_layer * n_expert * 48 */
    uint64_t data_offset;
    uint64_t data_size;     /* data_offset + data_size == file_size */
    uint64_t gguf_hash;     /* xxh3-64 of the gguf_size bytes of the embedded GGUF */
    uint64_t index_hash;    /* xxh3-64 of the index section */
    uint64_t header_hash;   /* xxh3-64 of the 4096 header bytes with this field zero */
} mp_pack_header;

/* One expert matrix type and shape (per layer). */
typedef struct mp_pack_matrix_desc {
    uint32_t type;          /* mp_type (GGML type id) */
    uint32_t n_dims;        /* 3 */
    int64_t ne[3];          /* GGUF ne of the whole 3-D tensor */
} mp_pack_matrix_desc;      /* 32 bytes */

typedef struct mp_pack_layer_desc {
    mp_pack_matrix_desc gate, up, down;
    uint32_t has_experts;   /* 0: dense layer, no blocks, all-zero entries */
    uint32_t reserved0;     /* 0 */
    uint64_t gate_off;      /* byte offsets inside a raw block */
    uint64_t up_off;
    uint64_t down_off;
    uint64_t raw_size;      /* bytes of one raw block */
    uint64_t reserved1;     /* 0 */
} mp_pack_layer_desc;       /* 144 bytes */

typedef struct mp_pack_entry {
    uint64_t offset;        /* absolute file offset of the block, a multiple of alignment */
    uint64_t stored_size;   /* bytes on disk (padding excluded) */
    uint64_t raw_size;      /* bytes once decoded == the layer's raw_size */
    uint64_t hash;          /* xxh3-64 of the stored bytes */
    uint32_t layer;         /* redundant, checked at open */
    uint32_t expert;        /* redundant, checked at open */
    uint32_t compression;   /* mp_pack_compression */
    uint32_t reserved0;     /* 0 */
} mp_pack_entry;            /* 48 bytes */

_Static_assert(sizeof(mp_pack_header) == 112, "mp_pack_header layout");
_Static_assert(sizeof(mp_pack_matrix_desc) == 32, "mp_pack_matrix_desc layout");
_Static_assert(sizeof(mp_pack_layer_desc) == 144, "mp_pack_layer_desc layout");
_Static_assert(sizeof(mp_pack_entry) == 48, "mp_pack_entry layout");

#endif
