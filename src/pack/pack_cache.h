/* A pack read through the expert cache (src/cache/): one byte range per
 * expert (its block on disk, 4 KiB aligned) read by the cache's io
 * (io_uring, O_DIRECT, registered buffers, prefetch) into a slot, then
 * checked and decoded inside the slot by the verify hook below.
 *
 * Slot layout of one expert (S = the cache's slot size, a multiple of the io
 * alignment):
 *
 *   raw block:  [0, stored)            the block as read = the decoded block
 *   lz4 block:  read into [0, stored); after its xxh3 matches, the stored
 *               bytes move to [S - stored, S) and LZ4 decompresses them in
 *               place to [0, raw) (lz4's in-place rule: input at the end of
 *               a buffer of at least raw + raw/256 + 32 bytes, so the output
 *               never overtakes unread input)
 *
 * so an lz4 expert asks for a slot of LZ4_DECOMPRESS_INPLACE_BUFFER_SIZE(raw)
 * bytes (mp_expert_loc.min_slot_bytes), and the planner, which sizes slots
 * with mp_cache_slot_bytes over these locations, accounts for it. No bounce
 * buffer, no memory beyond the slots; the cost is one memmove of the stored
 * bytes per lz4 load.
 *
 * The decoded block starts at the slot's first byte or at the read's first
 * byte, both aligned to the io alignment (>= 4096); gate/up/down sit at
 * their 64-byte aligned offsets inside it (pack_format.h), at least the
 * alignment the kernels get from a GGUF (32). */
#ifndef MP_PACK_CACHE_H
#define MP_PACK_CACHE_H

#include "cache/cache.h"
#include "pack/pack.h"

/* The cache locations of every expert of the pack: locs[layer * n_expert +
 * expert] is one range (the stored block) with min_slot_bytes set for lz4
 * blocks; n_parts 0 for layers without experts. The caller frees *locs.
 * Returns MP_OK or MP_E_NOMEM. */
int mp_pack_expert_locs(const mp_pack *p, mp_expert_loc **locs, mp_err *err);

/* An mp_cache_verify_fn; ctx is the (const) mp_pack the locations came
 * from. Checks the block's xxh3-64, decodes an lz4 block in place (see the
 * top of this file) and sets ptrs to gate, up and down (n_parts 3) inside
 * the slot. Returns MP_OK; MP_E_CHECKSUM ("FILE: checksum mismatch in
 * expert block layer L expert E at offset N ...") or MP_E_CORRUPT (an lz4
 * block that does not decode to its raw size) naming the file, layer,
 * expert and offset, with the slot's bytes undefined; MP_E_RANGE when the
 * slot or the read does not match the block (a caller's bug). */
int mp_pack_verify_block(void *ctx, uint32_t layer, uint32_t expert, void *slot, uint64_t slot_bytes,
                         mp_expert_ptrs *ptrs, mp_err *err);

#endif
