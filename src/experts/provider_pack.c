/* Expert provider over a .moepack: every acquire reads the expert's block
 * with pread, checks its xxh3-64 before anything else looks at it, decodes
 * it into a slot buffer and returns views into the slot. No caching (the
 * expert cache in src/cache/ is the fast path); slots exist only so that
 * several experts can be pinned at once. Not thread-safe: one forward pass
 * drives it. */
#include "experts/provider.h"

#include "pack/pack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pack_slot {
    uint8_t *buf;    /* raw block, MP_PACK_ALIGNMENT-aligned, max_raw bytes */
    int layer, expert;
    int pins;        /* 0: free */
} pack_slot;

typedef struct pack_experts {
    mp_provider base;
    const mp_pack *pack;
    uint8_t *stage;  /* stored bytes of a compressed block */
    size_t raw_cap, stage_cap;
    pack_slot *slots;
    int n_slots, cap_slots;
} pack_experts;

static int read_full(const mp_pack *p, const mp_pack_block *b, void *dst, mp_err *err)
{
    int fd = mp_pack_fd(p);
    if (fd < 0) { /* in-memory pack (tests) */
        memcpy(dst, (const uint8_t *)mp_pack_image(p) + b->offset, (size_t)b->stored_size);
        return MP_OK;
    }
    size_t done = 0, n = (size_t)b->stored_size;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)dst + done, n - done, (off_t)(b->offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return mp_err_set(err, MP_E_IO,
                              "%s: reading expert block layer %u expert %u at offset %" PRIu64 " (%zu bytes) failed: %s",
                              mp_pack_path(p), b->layer, b->expert, b->offset + done, n - done,
                              r < 0 ? strerror(errno) : "the file ended early (did it shrink?)");
        done += (size_t)r;
    }
    return MP_OK;
}

static pack_slot *free_slot(pack_experts *px, mp_err *err)
{
    for (int i = 0; i < px->n_slots; i++)
        if (px->slots[i].pins == 0) return &px->slots[i];
    if (px->n_slots == px->cap_slots) {
        int nc = px->cap_slots ? px->cap_slots * 2 : 4;
        pack_slot *ns = realloc(px->slots, sizeof *ns * (size_t)nc);
        if (!ns) return mp_err_set(err, MP_E_NOMEM, "out of memory"), NULL;
        px->slots = ns;
        px->cap_slots = nc;
    }
    pack_slot *s = &px->slots[px->n_slots];
    memset(s, 0, sizeof *s);
    if (posix_memalign((void **)&s->buf, MP_PACK_ALIGNMENT, px->raw_cap) != 0) {
        s->buf = NULL;
        mp_err_set(err, MP_E_NOMEM, "%s: cannot allocate an expert buffer of %zu bytes", mp_pack_path(px->pack),
                   px->raw_cap);
        return NULL;
    }
    px->n_slots++;
    return s;
}

static int pack_acquire(mp_provider *x, int layer, int expert, mp_expert_w *out, mp_err *err)
{
    pack_experts *px = (pack_experts *)x;
    const mp_pack *p = px->pack;
    const mp_pack_block *b = mp_pack_block_get(p, (uint32_t)layer, (uint32_t)expert);
    if (!b)
        return mp_err_set(err, MP_E_CORRUPT, "%s: no expert block for layer %d expert %d", mp_pack_path(p), layer,
                          expert);
    pack_slot *s = free_slot(px, err);
    if (!s) return err ? err->status : MP_E_NOMEM;
    uint8_t *src = b->compression == MP_PACK_COMP_NONE ? s->buf : px->stage;
    int rc = read_full(p, b, src, err);
    if (!rc) rc = mp_pack_block_verify(p, b, src, err);
    if (!rc) rc = mp_pack_block_decode(p, b, src, s->buf, px->raw_cap, err);
    if (rc) return rc;
    const mp_pack_layer_desc *L = mp_pack_layer(p, (uint32_t)layer);
    s->layer = layer;
    s->expert = expert;
    s->pins = 1;
    out->gate = s->buf + L->gate_off;
    out->up = s->buf + L->up_off;
    out->down = s->buf + L->down_off;
    return MP_OK;
}

static void pack_release(mp_provider *x, int layer, int expert)
{
    pack_experts *px = (pack_experts *)x;
    for (int i = 0; i < px->n_slots; i++) {
        pack_slot *s = &px->slots[i];
        if (s->pins > 0 && s->layer == layer && s->expert == expert) {
            s->pins--;
            return;
        }
    }
}

static void pack_destroy(mp_provider *x)
{
    pack_experts *px = (pack_experts *)x;
    for (int i = 0; i < px->n_slots; i++) free(px->slots[i].buf);
    free(px->slots);
    free(px->stage);
    free(px);
}

static const mp_provider_ops pack_ops = {
    .name = "pack",
    .acquire = pack_acquire,
    .release = pack_release,
    .destroy = pack_destroy,
};

int mp_provider_pack_create(mp_provider **out, const mp_experts_shape *sh, const mp_pack *p, mp_err *err)
{
    *out = NULL;
    if (mp_pack_get_header(p)->n_layer != sh->n_layer || mp_pack_get_header(p)->n_expert != sh->n_expert)
        return mp_err_set(err, MP_E_CORRUPT, "%s: the expert index has %u layers x %u experts, the model %u x %u",
                          mp_pack_path(p), mp_pack_get_header(p)->n_layer, mp_pack_get_header(p)->n_expert,
                          sh->n_layer, sh->n_expert);
    pack_experts *px = calloc(1, sizeof *px);
    if (!px) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    px->base.ops = &pack_ops;
    px->pack = p;
    px->raw_cap = (size_t)mp_pack_max_raw_size(p);
    px->stage_cap = (size_t)mp_pack_max_stored_size(p);
    if (posix_memalign((void **)&px->stage, MP_PACK_ALIGNMENT, px->stage_cap ? px->stage_cap : 1) != 0) {
        free(px);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    *out = &px->base;
    return MP_OK;
}
