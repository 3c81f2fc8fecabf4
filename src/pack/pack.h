/* The packed expert file (.moepack): reader and writer.
 *
 * The on-disk format is documented in include/moepager/pack_format.h.
 *
 * mp_pack_open() validates everything that can be checked without reading
 * expert data: the header checksum, every section's bounds and alignment,
 * the index checksum, every layer descriptor against the embedded GGUF's
 * hyperparameters-free rules (types known, shapes positive, matrix offsets
 * inside the raw block and non-overlapping), and every block's offset, size
 * and alignment inside the file. A pack that passes can be indexed by any
 * consumer without further bounds checks; the only check left for a block is
 * its checksum, which the consumer must run (mp_pack_block_verify) on the
 * bytes it read, every time, before using them.
 *
 * Failures return a negative mp_status and one line in err naming the file
 * and what is wrong, e.g.
 *   "x.moepack: expert block layer 3 expert 5 at offset N (M bytes) runs past
 *    the end of the file (F bytes)"
 *
 * The reader maps only [0, data_offset) (header, embedded GGUF, index); expert
 * blocks are read by the expert cache's io (pack_cache.h: one byte range per
 * expert), so they never enter the process through the mapping. */
#ifndef MP_PACK_H
#define MP_PACK_H

#include "common/err.h"
#include "gguf/gguf.h"
#include "moepager/pack_format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp_pack mp_pack;

/* One expert block, as validated at open (a copy of the index entry). */
typedef struct mp_pack_block {
    uint64_t offset;       /* absolute file offset, multiple of MP_PACK_ALIGNMENT */
    uint64_t stored_size;  /* bytes to read */
    uint64_t raw_size;     /* bytes after decoding */
    uint64_t hash;         /* xxh3-64 of the stored bytes */
    uint32_t layer, expert;
    uint32_t compression;  /* MP_PACK_COMP_NONE or MP_PACK_COMP_LZ4 */
} mp_pack_block;

/* True when path starts with the pack magic (false for a GGUF, a short or
 * unreadable file). Reads 8 bytes; never fails. */
bool mp_is_pack(const char *path);

/* Opens and validates a pack (see the top of this file). On success *out
 * owns an open fd, a read-only mapping of [0, data_offset) and the embedded
 * mp_gguf. Returns MP_OK, MP_E_IO (open/stat/mmap/read failed), MP_E_CORRUPT
 * (malformed, truncated, checksum of the header or index wrong),
 * MP_E_UNSUPPORTED (another format version) or MP_E_NOMEM. */
int mp_pack_open(mp_pack **out, const char *path, mp_err *err);

/* Validates a pack image held in memory (for tests and fuzzing): the same
 * checks as mp_pack_open. buf must stay valid while the pack lives; name is
 * used in messages. */
int mp_pack_open_mem(mp_pack **out, const void *buf, size_t size, const char *name, mp_err *err);

void mp_pack_close(mp_pack *p); /* NULL-safe; frees the embedded mp_gguf too */

const char *mp_pack_path(const mp_pack *p);
const mp_pack_header *mp_pack_get_header(const mp_pack *p); /* validated copy */

/* Drops the pages of the mapping (header, embedded GGUF, index) from the
 * process and the page cache, e.g. once the resident tensors are copied
 * out: opening the pack hashed all of it, and a memory budget should not
 * pay for it twice. Later reads through the mapping fault the bytes back
 * from the file. Nothing for an in-memory pack. */
void mp_pack_drop_pages(mp_pack *p);

/* The embedded GGUF: all metadata and the resident (non-expert) tensors,
 * their data readable through mp_gguf_tensor_data(). Owned by the pack:
 * valid until mp_pack_close(), never to be freed by the caller. */
mp_gguf *mp_pack_gguf(const mp_pack *p);

/* Descriptions of the routed-expert tensors that the embedded GGUF lacks:
 * for every layer with experts, "blk.N.ffn_gate_exps.weight",
 * "blk.N.ffn_up_exps.weight" and "blk.N.ffn_down_exps.weight" with their
 * type, n_dims = 3, ne, size = bytes of the whole 3-D tensor, and offset = 0
 * (the data is not in one place). Returns the array (owned by the pack) and
 * sets *n; for binding a model with mp_model_bind. */
const mp_gguf_tensor *mp_pack_expert_infos(const mp_pack *p, size_t *n);

/* The layer descriptor (types, shapes, matrix offsets in a raw block);
 * layer < n_layer. */
const mp_pack_layer_desc *mp_pack_layer(const mp_pack *p, uint32_t layer);

/* The block of (layer, expert), or NULL when the layer has no experts or an
 * index is out of range. */
const mp_pack_block *mp_pack_block_get(const mp_pack *p, uint32_t layer, uint32_t expert);

/* Largest raw_size / stored_size over all blocks (to size buffers). */
uint64_t mp_pack_max_raw_size(const mp_pack *p);

/* Checks that bytes[0, b->stored_size) hash to b->hash. Returns MP_OK or
 * MP_E_CHECKSUM with err naming the file, layer, expert and offset:
 *   "x.moepack: checksum mismatch in expert block layer 3 expert 5 at offset N
 *    (M bytes): stored data is corrupt" */
int mp_pack_block_verify(const mp_pack *p, const mp_pack_block *b, const void *bytes, mp_err *err);

/* Decodes a verified stored block src[0, b->stored_size) into dst, which
 * must hold dst_cap >= b->raw_size bytes. LZ4: safe decompression that never
 * writes outside dst[0, dst_cap) and must produce exactly raw_size bytes.
 * NONE: copies, or does nothing when src == dst. Returns MP_OK, MP_E_RANGE
 * (dst_cap too small) or MP_E_CORRUPT (naming file, layer, expert, offset). */
int mp_pack_block_decode(const mp_pack *p, const mp_pack_block *b, const void *src, void *dst, size_t dst_cap,
                         mp_err *err);

/* Bytes a buffer needs to decode block b in place with
 * mp_pack_block_decode_in_place: raw_size for a raw block, lz4's in-place
 * buffer size (raw + raw/256 + 32) for an lz4 block. */
uint64_t mp_pack_block_in_place_bytes(const mp_pack_block *b);

/* Decodes a verified stored block in place: buf[0, cap) holds the stored
 * bytes at buf[src_off, src_off + b->stored_size); afterwards buf[0,
 * b->raw_size) holds the raw block. A raw block is moved to buf[0] (nothing
 * to do when src_off == 0). An lz4 block is moved to the end of the buffer,
 * buf[cap - stored_size, cap), and decompressed from there, which lz4
 * allows when cap >= mp_pack_block_in_place_bytes(b); it never reads or
 * writes outside buf[0, cap), even on hostile input. Returns MP_OK,
 * MP_E_RANGE (cap too small or the stored bytes not inside buf) or
 * MP_E_CORRUPT (does not decompress to raw_size; names file, layer, expert,
 * offset), the buffer's bytes then undefined. */
int mp_pack_block_decode_in_place(const mp_pack *p, const mp_pack_block *b, void *buf, uint64_t cap, uint64_t src_off,
                                  mp_err *err);

/* xxh3-64 of the MP_PACK_HEADER_SIZE header bytes at hdr with the
 * header_hash field taken as zero (the reader checks it, the writer sets it). */
uint64_t mp_pack_header_hash(const void *hdr);

#endif
