#include "helpers/cache_fixture.h"

#include "io/io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint8_t mp_fixture_byte(uint64_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)((z >> 29) ^ (z >> 47) ^ i);
}

int mp_fixture_make(mp_fixture *f, const char *dir, const char *name, uint32_t n_layers, uint32_t n_experts)
{
    memset(f, 0, sizeof *f);
    f->n_layers = n_layers;
    f->n_experts = n_experts;
    f->locs = calloc((size_t)n_layers * n_experts, sizeof *f->locs);
    if (!f->locs) return -1;
    const uint64_t sz[3] = {9000 + 37, 9000 + 37, 7000 + 5};
    uint64_t off = 4096 + 1000;
    for (uint32_t l = 0; l < n_layers; l++)
        for (int p = 0; p < 3; p++) {
            off = (off + 31) & ~31ull;
            for (uint32_t e = 0; e < n_experts; e++) {
                mp_expert_loc *x = &f->locs[l * n_experts + e];
                x->part[p].offset = off + e * sz[p];
                x->part[p].len = sz[p];
                x->n_parts = 3;
            }
            off += n_experts * sz[p];
        }
    f->file_size = off + 100;
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    uint8_t *buf = malloc(f->file_size);
    int rc = -1;
    if (buf) {
        for (uint64_t i = 0; i < f->file_size; i++) buf[i] = mp_fixture_byte(i);
        rc = write(fd, buf, f->file_size) == (ssize_t)f->file_size ? 0 : -1;
    }
    free(buf);
    close(fd);
    return rc;
}

void mp_fixture_free(mp_fixture *f)
{
    if (f->path[0]) unlink(f->path);
    free(f->locs);
    memset(f, 0, sizeof *f);
}

bool mp_fixture_check(const mp_fixture *f, uint32_t layer, uint32_t expert, const mp_expert_ptrs *p)
{
    const mp_expert_loc *l = &f->locs[layer * f->n_experts + expert];
    if (p->n_parts != l->n_parts) return false;
    for (uint32_t i = 0; i < l->n_parts; i++) {
        if (p->len[i] != l->part[i].len) return false;
        const uint8_t *b = p->part[i];
        for (uint64_t k = 0; k < l->part[i].len; k++)
            if (b[k] != mp_fixture_byte(l->part[i].offset + k)) return false;
    }
    return true;
}

mp_cache *mp_fixture_cache(const mp_fixture *f, mp_io_kind kind, unsigned depth, uint32_t n_slots,
                           const mp_policy_ops *pol, const char *fault, mp_err *err)
{
    mp_io_opts o = {.depth = depth, .fault_spec = fault};
    mp_io *io = NULL;
    if (mp_io_open(kind, f->path, &o, &io, NULL, 0, err) != MP_OK) return NULL;
    mp_cache_config cfg = {.n_layers = f->n_layers, .n_experts = f->n_experts, .locs = f->locs, .n_slots = n_slots,
                           .io = io, .policy = pol};
    mp_cache *c = NULL;
    if (mp_cache_create(&cfg, &c, NULL, 0, err) != MP_OK) {
        mp_io_free(io);
        return NULL;
    }
    return c;
}
