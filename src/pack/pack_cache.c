/* A pack read through the expert cache: locations and the verify hook (see
 * pack_cache.h for the slot layout). */
#include "pack_cache.h"

#include "common/types.h"

#include <inttypes.h>
#include <stdlib.h>

int mp_pack_expert_locs(const mp_pack *p, mp_expert_loc **locs, mp_err *err)
{
    const mp_pack_header *h = mp_pack_get_header(p);
    mp_expert_loc *v = calloc((size_t)h->n_layer * h->n_expert, sizeof *v);
    if (!v) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", mp_pack_path(p));
    for (uint32_t il = 0; il < h->n_layer; il++)
        for (uint32_t e = 0; e < h->n_expert; e++) {
            const mp_pack_block *b = mp_pack_block_get(p, il, e);
            if (!b) continue; /* a layer without experts */
            mp_expert_loc *l = &v[(size_t)il * h->n_expert + e];
            l->part[0] = (mp_byte_range){b->offset, b->stored_size};
            l->n_parts = 1;
            l->min_slot_bytes = mp_pack_block_in_place_bytes(b);
        }
    *locs = v;
    return MP_OK;
}

int mp_pack_verify_block(void *ctx, uint32_t layer, uint32_t expert, void *slot, uint64_t slot_bytes,
                         mp_expert_ptrs *ptrs, mp_err *err)
{
    const mp_pack *p = ctx;
    const mp_pack_block *b = mp_pack_block_get(p, layer, expert);
    const mp_pack_layer_desc *L = mp_pack_layer(p, layer);
    uint8_t *base = slot;
    const uint8_t *got = ptrs->n_parts == 1 ? ptrs->part[0] : NULL;
    if (!b || !L || !got || ptrs->len[0] != b->stored_size || got < base || (uint64_t)(got - base) > slot_bytes)
        return mp_err_set(err, MP_E_RANGE, "%s: layer %u expert %u: the cache read %u range(s), not the expert's block",
                          mp_pack_path(p), layer, expert, ptrs->n_parts);
    int rc = mp_pack_block_verify(p, b, got, err);
    if (rc) return rc;
    const uint64_t at = (uint64_t)(got - base);
    uint8_t *blk = base + at; /* a raw block is used where it landed */
    if (b->compression != MP_PACK_COMP_NONE) {
        if ((rc = mp_pack_block_decode_in_place(p, b, base, slot_bytes, at, err))) return rc;
        blk = base;
    }
    /* gate/up/down bytes: rows x row size, inside the raw block (checked at open) */
    const mp_pack_matrix_desc *md[3] = {&L->gate, &L->up, &L->down};
    const uint64_t off[3] = {L->gate_off, L->up_off, L->down_off};
    for (int i = 0; i < 3; i++) {
        ptrs->part[i] = blk + off[i];
        ptrs->len[i] = (uint64_t)mp_row_size(md[i]->type, md[i]->ne[0]) * (uint64_t)md[i]->ne[1];
    }
    ptrs->n_parts = 3;
    return MP_OK;
}
