/* Pack reader: validation of the header, sections, index and block
 * placement; the embedded GGUF; block checksum and decoding. */
#include "pack.h"

#include "common/types.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the pack reader reads little-endian structs in place"
#endif

/* Sanity caps: far above any real model, low enough that products of them
 * cannot overflow 64 bits. */
#define MAX_LAYERS 4096u
#define MAX_EXPERTS 4096u
#define MAX_DIM (INT64_C(1) << 31)
#define MAX_RAW_BLOCK (UINT64_C(1) << 36)

struct mp_pack {
    char *path;
    int fd;               /* -1 for a memory image */
    const uint8_t *base;  /* [0, data_offset): the mapping or the caller's image */
    void *map;            /* owned mapping (file only) */
    size_t map_size;
    uint64_t file_size;   /* actual size */
    mp_pack_header hdr;
    mp_pack_layer_desc *layers;  /* n_layer, aligned copy */
    mp_pack_block *blocks;       /* n_layer * n_expert */
    mp_gguf_tensor *infos;       /* 3 per layer with experts */
    size_t n_infos;
    char *names;                 /* storage for infos[].name */
    uint64_t max_raw;
    mp_gguf *gguf;
};

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint64_t mp_pack_header_hash(const void *hdr4096)
{
    uint8_t tmp[MP_PACK_HEADER_SIZE];
    memcpy(tmp, hdr4096, sizeof tmp);
    memset(tmp + offsetof(mp_pack_header, header_hash), 0, sizeof(uint64_t));
    return XXH3_64bits(tmp, sizeof tmp);
}

bool mp_is_pack(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char m[8];
    ssize_t r = pread(fd, m, sizeof m, 0);
    close(fd);
    return r == (ssize_t)sizeof m && memcmp(m, MP_PACK_MAGIC, sizeof m) == 0;
}

/* Header fields and section bounds against the actual file size. */
static int check_header(mp_pack *p, const uint8_t *raw, mp_err *err)
{
    const char *path = p->path;
    mp_pack_header *h = &p->hdr;
    memcpy(h, raw, sizeof *h);
    if (memcmp(h->magic, MP_PACK_MAGIC, sizeof h->magic) != 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: not a moepager pack (bad magic)", path);
    if (h->version != MP_PACK_VERSION)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: pack format version %u is not supported (this build reads %u)",
                          path, h->version, MP_PACK_VERSION);
    uint64_t hh = mp_pack_header_hash(raw);
    if (hh != h->header_hash)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: header checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                          "): the header is corrupt",
                          path, h->header_hash, hh);
    const uint64_t F = p->file_size;
    if (h->file_size > F && h->data_offset > F)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: truncated: the file is %" PRIu64 " bytes, its header says %" PRIu64
                          " (the embedded GGUF and index end at %" PRIu64 ")",
                          path, F, h->file_size, h->data_offset);
    if (h->alignment != MP_PACK_ALIGNMENT || h->reserved0 != 0 || (h->flags & ~MP_PACK_FLAG_COMPRESSED))
        return mp_err_set(err, MP_E_CORRUPT, "%s: bad header fields (alignment %u, flags %#x)", path, h->alignment,
                          h->flags);
    if (h->n_layer == 0 || h->n_layer > MAX_LAYERS || h->n_expert == 0 || h->n_expert > MAX_EXPERTS)
        return mp_err_set(err, MP_E_CORRUPT, "%s: impossible counts in the header: %u layers, %u experts", path,
                          h->n_layer, h->n_expert);
    const uint64_t A = MP_PACK_ALIGNMENT;
    const uint64_t want_index =
        (uint64_t)h->n_layer * sizeof(mp_pack_layer_desc) + (uint64_t)h->n_layer * h->n_expert * sizeof(mp_pack_entry);
    if (h->index_size != want_index)
        return mp_err_set(err, MP_E_CORRUPT, "%s: index size %" PRIu64 " bytes, expected %" PRIu64 " for %u layers x %u experts",
                          path, h->index_size, want_index, h->n_layer, h->n_expert);
    /* sections in order, each aligned, no overlap; sizes capped by the real
     * file size first so the sums below cannot overflow */
    if (h->gguf_offset != MP_PACK_HEADER_SIZE || h->gguf_size == 0 || h->gguf_size > F ||
        h->index_offset % A || h->index_offset > F || h->index_offset < h->gguf_offset + h->gguf_size ||
        h->data_offset % A || h->data_offset > F || h->data_offset < h->index_offset + h->index_size ||
        h->data_size > UINT64_MAX - h->data_offset || h->file_size % A)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: bad section layout: gguf %" PRIu64 "+%" PRIu64 ", index %" PRIu64 "+%" PRIu64
                          ", data %" PRIu64 "+%" PRIu64 " in a file of %" PRIu64 " bytes",
                          path, h->gguf_offset, h->gguf_size, h->index_offset, h->index_size, h->data_offset,
                          h->data_size, F);
    if (h->data_offset + h->data_size != h->file_size)
        return mp_err_set(err, MP_E_CORRUPT, "%s: data section %" PRIu64 "+%" PRIu64 " does not end at the file size %" PRIu64,
                          path, h->data_offset, h->data_size, h->file_size);
    return MP_OK;
}

static int check_matrix(const mp_pack *p, uint32_t il, const char *what, const mp_pack_matrix_desc *m,
                        uint64_t *bytes, mp_err *err)
{
    bool ok = m->n_dims == 3 && mp_type_known(m->type);
    for (int d = 0; ok && d < 3; d++) ok = m->ne[d] >= 1 && m->ne[d] <= MAX_DIM;
    ok = ok && m->ne[2] == (int64_t)p->hdr.n_expert;
    size_t rs = ok ? mp_row_size(m->type, m->ne[0]) : 0;
    if (!ok || rs == 0)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: layer %u: bad %s matrix description (type %u, dims %u, ne %" PRId64 " x %" PRId64 " x %" PRId64
                          ")",
                          p->path, il, what, m->type, m->n_dims, m->ne[0], m->ne[1], m->ne[2]);
    *bytes = (uint64_t)rs * (uint64_t)m->ne[1];
    return MP_OK;
}

static bool all_zero(const void *x, size_t n)
{
    const uint8_t *b = x;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static int check_layer(mp_pack *p, uint32_t il, mp_err *err)
{
    const mp_pack_layer_desc *L = &p->layers[il];
    if (L->has_experts == 0) {
        if (!all_zero(L, sizeof *L))
            return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u has no experts but a non-empty descriptor", p->path, il);
        return MP_OK;
    }
    if (L->has_experts != 1 || L->reserved0 || L->reserved1)
        return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u: bad descriptor flags", p->path, il);
    uint64_t gs, us, ds;
    int rc;
    if ((rc = check_matrix(p, il, "gate", &L->gate, &gs, err))) return rc;
    if ((rc = check_matrix(p, il, "up", &L->up, &us, err))) return rc;
    if ((rc = check_matrix(p, il, "down", &L->down, &ds, err))) return rc;
    if (L->up.ne[0] != L->gate.ne[0] || L->up.ne[1] != L->gate.ne[1] || L->down.ne[0] != L->gate.ne[1] ||
        L->down.ne[1] != L->gate.ne[0])
        return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u: gate, up and down shapes do not agree", p->path, il);
    const uint64_t MA = MP_PACK_MATRIX_ALIGN;
    if (L->raw_size == 0 || L->raw_size > MAX_RAW_BLOCK || L->gate_off % MA || L->up_off % MA || L->down_off % MA ||
        L->gate_off > L->raw_size || L->up_off > L->raw_size || L->down_off > L->raw_size ||
        gs > L->raw_size || us > L->raw_size || ds > L->raw_size)
        return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u: bad raw block layout (gate %" PRIu64 ", up %" PRIu64
                          ", down %" PRIu64 ", size %" PRIu64 ")",
                          p->path, il, L->gate_off, L->up_off, L->down_off, L->raw_size);
    /* the three ranges inside the block and pairwise disjoint */
    const uint64_t off[3] = {L->gate_off, L->up_off, L->down_off}, len[3] = {gs, us, ds};
    for (int a = 0; a < 3; a++) {
        if (off[a] + len[a] > L->raw_size)
            return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u: a matrix runs past the raw block (%" PRIu64 " bytes)",
                              p->path, il, L->raw_size);
        for (int b = a + 1; b < 3; b++)
            if (off[a] < off[b] + len[b] && off[b] < off[a] + len[a])
                return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u: matrices overlap inside the raw block", p->path, il);
    }
    return MP_OK;
}

/* Every entry: identity, sizes, compression, placement inside the file in
 * strictly increasing, non-overlapping order. */
static int check_entries(mp_pack *p, const mp_pack_entry *ents, mp_err *err)
{
    const mp_pack_header *h = &p->hdr;
    const uint64_t A = MP_PACK_ALIGNMENT, F = p->file_size, data_end = h->data_offset + h->data_size;
    uint64_t next = h->data_offset; /* lowest offset the next block may start at */
    bool any_comp = false;
    for (uint32_t il = 0; il < h->n_layer; il++) {
        const mp_pack_layer_desc *L = &p->layers[il];
        for (uint32_t ie = 0; ie < h->n_expert; ie++) {
            mp_pack_entry e;
            memcpy(&e, &ents[(size_t)il * h->n_expert + ie], sizeof e);
            mp_pack_block *b = &p->blocks[(size_t)il * h->n_expert + ie];
            if (!L->has_experts) {
                if (!all_zero(&e, sizeof e))
                    return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u has no experts but index entry %u is not empty",
                                      p->path, il, ie);
                continue;
            }
            if (e.layer != il || e.expert != ie || e.reserved0)
                return mp_err_set(err, MP_E_CORRUPT, "%s: index entry of layer %u expert %u is corrupt (says layer %u expert %u)",
                                  p->path, il, ie, e.layer, e.expert);
            bool ok;
            if (e.compression == MP_PACK_COMP_NONE)
                ok = e.stored_size == e.raw_size;
            else if (e.compression == MP_PACK_COMP_LZ4)
                ok = e.stored_size > 0 && e.stored_size < e.raw_size && e.raw_size <= LZ4_MAX_INPUT_SIZE;
            else
                ok = false;
            if (!ok || e.raw_size != L->raw_size)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: index entry of layer %u expert %u is corrupt (compression %u, %" PRIu64
                                  " bytes stored, %" PRIu64 " raw, layer block %" PRIu64 ")",
                                  p->path, il, ie, e.compression, e.stored_size, e.raw_size, L->raw_size);
            if (e.offset % A || e.offset < next)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: expert block layer %u expert %u at offset %" PRIu64
                                  " is misplaced (must be %" PRIu64 "-aligned, at or after %" PRIu64 ")",
                                  p->path, il, ie, e.offset, A, next);
            /* e.offset >= data_offset and stored_size <= raw_size <= 2^36:
             * no overflow below */
            if (e.offset > F || e.stored_size > F - e.offset)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: expert block layer %u expert %u at offset %" PRIu64 " (%" PRIu64
                                  " bytes) runs past the end of the file (%" PRIu64 " bytes)",
                                  p->path, il, ie, e.offset, e.stored_size, F);
            uint64_t end = align_up(e.offset + e.stored_size, A);
            if (end > data_end)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: expert block layer %u expert %u at offset %" PRIu64 " (%" PRIu64
                                  " bytes) runs past the data section (ends at %" PRIu64 ")",
                                  p->path, il, ie, e.offset, e.stored_size, data_end);
            next = end;
            any_comp |= e.compression == MP_PACK_COMP_LZ4;
            *b = (mp_pack_block){e.offset, e.stored_size, e.raw_size, e.hash, il, ie, e.compression};
            if (e.raw_size > p->max_raw) p->max_raw = e.raw_size;
        }
    }
    if (any_comp != !!(h->flags & MP_PACK_FLAG_COMPRESSED))
        return mp_err_set(err, MP_E_CORRUPT, "%s: header flags disagree with the index (compressed blocks: %s)", p->path,
                          any_comp ? "yes" : "no");
    if (next != data_end)
        return mp_err_set(err, MP_E_CORRUPT, "%s: the data section ends at %" PRIu64 " but the last block ends at %" PRIu64,
                          p->path, data_end, next);
    return MP_OK;
}

static int build_infos(mp_pack *p, mp_err *err)
{
    const mp_pack_header *h = &p->hdr;
    size_t n = 0;
    for (uint32_t il = 0; il < h->n_layer; il++) n += p->layers[il].has_experts ? 3 : 0;
    p->infos = calloc(n ? n : 1, sizeof *p->infos);
    p->names = calloc(n ? n : 1, 48);
    if (!p->infos || !p->names) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", p->path);
    static const char *const kind[3] = {"gate", "up", "down"};
    size_t k = 0;
    for (uint32_t il = 0; il < h->n_layer; il++) {
        const mp_pack_layer_desc *L = &p->layers[il];
        if (!L->has_experts) continue;
        const mp_pack_matrix_desc *md[3] = {&L->gate, &L->up, &L->down};
        for (int j = 0; j < 3; j++, k++) {
            char *name = p->names + k * 48;
            snprintf(name, 48, "blk.%u.ffn_%s_exps.weight", il, kind[j]);
            mp_gguf_tensor *t = &p->infos[k];
            t->name = name;
            t->type = md[j]->type;
            t->n_dims = 3;
            for (int d = 0; d < 3; d++) t->ne[d] = md[j]->ne[d];
            t->ne[3] = 1;
            t->offset = 0;
            t->size = (uint64_t)mp_row_size(t->type, t->ne[0]) * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
            if (mp_gguf_find_tensor(p->gguf, name))
                return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' is both in the embedded GGUF and in the expert index",
                                  p->path, name);
        }
    }
    p->n_infos = n;
    return MP_OK;
}

/* Everything after the header: needs p->base covering [0, data_offset). */
static int check_body(mp_pack *p, mp_err *err)
{
    const mp_pack_header *h = &p->hdr;
    uint64_t gh = XXH3_64bits(p->base + h->gguf_offset, (size_t)h->gguf_size);
    if (gh != h->gguf_hash)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: embedded GGUF checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                          "): the metadata or resident tensors at offset %" PRIu64 " (%" PRIu64 " bytes) are corrupt",
                          p->path, h->gguf_hash, gh, h->gguf_offset, h->gguf_size);
    const uint8_t *idx = p->base + h->index_offset;
    uint64_t ih = XXH3_64bits(idx, (size_t)h->index_size);
    if (ih != h->index_hash)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: expert index checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                          "): the index at offset %" PRIu64 " is corrupt",
                          p->path, h->index_hash, ih, h->index_offset);
    p->layers = malloc(sizeof *p->layers * h->n_layer);
    p->blocks = calloc((size_t)h->n_layer * h->n_expert, sizeof *p->blocks);
    if (!p->layers || !p->blocks) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", p->path);
    memcpy(p->layers, idx, sizeof *p->layers * h->n_layer);
    bool any = false;
    int rc;
    for (uint32_t il = 0; il < h->n_layer; il++) {
        if ((rc = check_layer(p, il, err))) return rc;
        any |= p->layers[il].has_experts != 0;
    }
    if (!any) return mp_err_set(err, MP_E_CORRUPT, "%s: no layer has experts", p->path);
    /* entries follow the layer table; copy-free reads use memcpy (the
     * mapping is page aligned and 144 * n_layer keeps 8-byte alignment,
     * but a memory image may not be) */
    if ((rc = check_entries(p, (const mp_pack_entry *)(idx + sizeof *p->layers * h->n_layer), err))) return rc;
    if (p->file_size != h->file_size)
        return mp_err_set(err, MP_E_CORRUPT, "%s: the file is %" PRIu64 " bytes but its header says %" PRIu64 "%s",
                          p->path, p->file_size, h->file_size,
                          p->file_size < h->file_size ? " (truncated)" : " (trailing data)");
    rc = mp_gguf_open_mem(&p->gguf, p->base + h->gguf_offset, (size_t)h->gguf_size, p->path, err);
    if (rc) {
        if (err) {
            char msg[MP_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            mp_err_reset(err, rc, "%s (in the embedded GGUF at byte %" PRIu64 ")", msg, h->gguf_offset);
        }
        return rc;
    }
    return build_infos(p, err);
}

static mp_pack *pack_new(const char *path)
{
    mp_pack *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->fd = -1;
    p->path = strdup(path ? path : "<memory>");
    if (!p->path) {
        free(p);
        return NULL;
    }
    return p;
}

int mp_pack_open(mp_pack **out, const char *path, mp_err *err)
{
    *out = NULL;
    mp_pack *p = pack_new(path);
    if (!p) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
    int rc = MP_OK;
    p->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (p->fd < 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(p->fd, &st) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    p->file_size = (uint64_t)st.st_size;
    if (p->file_size < MP_PACK_HEADER_SIZE) {
        rc = mp_err_set(err, MP_E_CORRUPT, "%s: the file is %" PRIu64 " bytes, too small for a pack header (%u bytes)",
                        path, p->file_size, MP_PACK_HEADER_SIZE);
        goto fail;
    }
    uint8_t hdr[MP_PACK_HEADER_SIZE];
    ssize_t r;
    do r = pread(p->fd, hdr, sizeof hdr, 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof hdr) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot read the header: %s", path, r < 0 ? strerror(errno) : "short read");
        goto fail;
    }
    if ((rc = check_header(p, hdr, err))) goto fail;
    p->map_size = (size_t)p->hdr.data_offset;
    p->map = mmap(NULL, p->map_size, PROT_READ, MAP_PRIVATE, p->fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        rc = mp_err_set(err, MP_E_IO, "%s: cannot map %zu bytes: %s", path, p->map_size, strerror(errno));
        goto fail;
    }
    p->base = p->map;
    /* the mapped header must be the one we checked (the file may change
     * under us; then the index checksum or the GGUF parse catches the rest) */
    if (memcmp(p->base, hdr, sizeof hdr) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: the file changed while it was being opened", path);
        goto fail;
    }
    if ((rc = check_body(p, err))) goto fail;
    *out = p;
    return MP_OK;
fail:
    mp_pack_close(p);
    return rc;
}

int mp_pack_open_mem(mp_pack **out, const void *buf, size_t size, const char *name, mp_err *err)
{
    *out = NULL;
    mp_pack *p = pack_new(name);
    if (!p) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    int rc;
    p->file_size = size;
    if (size < MP_PACK_HEADER_SIZE) {
        rc = mp_err_set(err, MP_E_CORRUPT, "%s: the file is %zu bytes, too small for a pack header (%u bytes)", p->path,
                        size, MP_PACK_HEADER_SIZE);
        goto fail;
    }
    if ((rc = check_header(p, buf, err))) goto fail;
    p->base = buf;
    if ((rc = check_body(p, err))) goto fail;
    *out = p;
    return MP_OK;
fail:
    mp_pack_close(p);
    return rc;
}

void mp_pack_close(mp_pack *p)
{
    if (!p) return;
    mp_gguf_free(p->gguf);
    if (p->map) munmap(p->map, p->map_size);
    if (p->fd >= 0) close(p->fd);
    free(p->layers);
    free(p->blocks);
    free(p->infos);
    free(p->names);
    free(p->path);
    free(p);
}

void mp_pack_drop_pages(mp_pack *p)
{
    if (!p->map) return;
    (void)madvise(p->map, p->map_size, MADV_DONTNEED);
    (void)posix_fadvise(p->fd, 0, (off_t)p->map_size, POSIX_FADV_DONTNEED);
}

const char *mp_pack_path(const mp_pack *p) { return p->path; }
const mp_pack_header *mp_pack_get_header(const mp_pack *p) { return &p->hdr; }
mp_gguf *mp_pack_gguf(const mp_pack *p) { return p->gguf; }
uint64_t mp_pack_max_raw_size(const mp_pack *p) { return p->max_raw; }

const mp_gguf_tensor *mp_pack_expert_infos(const mp_pack *p, size_t *n)
{
    *n = p->n_infos;
    return p->infos;
}

const mp_pack_layer_desc *mp_pack_layer(const mp_pack *p, uint32_t layer)
{
    return layer < p->hdr.n_layer ? &p->layers[layer] : NULL;
}

const mp_pack_block *mp_pack_block_get(const mp_pack *p, uint32_t layer, uint32_t expert)
{
    if (layer >= p->hdr.n_layer || expert >= p->hdr.n_expert || !p->layers[layer].has_experts) return NULL;
    return &p->blocks[(size_t)layer * p->hdr.n_expert + expert];
}

int mp_pack_block_verify(const mp_pack *p, const mp_pack_block *b, const void *bytes, mp_err *err)
{
    uint64_t got = XXH3_64bits(bytes, (size_t)b->stored_size);
    if (got != b->hash)
        return mp_err_set(err, MP_E_CHECKSUM,
                          "%s: checksum mismatch in expert block layer %u expert %u at offset %" PRIu64 " (%" PRIu64
                          " bytes): stored %016" PRIx64 ", computed %016" PRIx64 "; the data is corrupt",
                          p->path, b->layer, b->expert, b->offset, b->stored_size, b->hash, got);
    return MP_OK;
}

int mp_pack_block_decode(const mp_pack *p, const mp_pack_block *b, const void *src, void *dst, size_t dst_cap,
                         mp_err *err)
{
    if (dst_cap < b->raw_size)
        return mp_err_set(err, MP_E_RANGE, "%s: expert block layer %u expert %u needs %" PRIu64 " bytes, buffer has %zu",
                          p->path, b->layer, b->expert, b->raw_size, dst_cap);
    if (b->compression == MP_PACK_COMP_NONE) {
        if (src != dst) memcpy(dst, src, (size_t)b->raw_size);
        return MP_OK;
    }
    /* open() checked stored_size < raw_size <= LZ4_MAX_INPUT_SIZE < INT_MAX */
    int n = LZ4_decompress_safe(src, dst, (int)b->stored_size, (int)b->raw_size);
    if (n < 0 || (uint64_t)n != b->raw_size)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: expert block layer %u expert %u at offset %" PRIu64 " does not decompress to %" PRIu64
                          " bytes (lz4 returned %d)",
                          p->path, b->layer, b->expert, b->offset, b->raw_size, n);
    return MP_OK;
}

#ifndef LZ4_DECOMPRESS_INPLACE_BUFFER_SIZE /* lz4 < 1.9.2 */
#define LZ4_DECOMPRESS_INPLACE_BUFFER_SIZE(n) ((n) + ((n) >> 8) + 32)
#endif

uint64_t mp_pack_block_in_place_bytes(const mp_pack_block *b)
{
    return b->compression == MP_PACK_COMP_LZ4 ? LZ4_DECOMPRESS_INPLACE_BUFFER_SIZE(b->raw_size) : b->raw_size;
}

int mp_pack_block_decode_in_place(const mp_pack *p, const mp_pack_block *b, void *buf, uint64_t cap, uint64_t src_off,
                                  mp_err *err)
{
    uint8_t *base = buf;
    if (cap < mp_pack_block_in_place_bytes(b) || src_off > cap || b->stored_size > cap - src_off)
        return mp_err_set(err, MP_E_RANGE,
                          "%s: expert block layer %u expert %u needs %" PRIu64 " bytes to decode in place, the buffer "
                          "has %" PRIu64 " (stored bytes at %" PRIu64 ")",
                          p->path, b->layer, b->expert, mp_pack_block_in_place_bytes(b), cap, src_off);
    if (b->compression == MP_PACK_COMP_NONE) {
        if (src_off) memmove(base, base + src_off, (size_t)b->stored_size);
        return MP_OK;
    }
    /* input at the very end: the output [0, raw) then stays behind the
     * input cursor all the way (lz4.h, "In-place decompression") */
    uint8_t *src = base + cap - b->stored_size;
    if (src != base + src_off) memmove(src, base + src_off, (size_t)b->stored_size);
    return mp_pack_block_decode(p, b, src, base, (size_t)b->raw_size, err);
}
