/* A real file with GGUF-like expert locations for cache tests: per layer
 * three tensors (gate, up, down) of n_experts odd-sized experts, 32-byte
 * aligned after a header, filled with a position-dependent byte pattern. */
#ifndef MP_CACHE_FIXTURE_H
#define MP_CACHE_FIXTURE_H

#include "cache/cache.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_fixture {
    uint32_t n_layers, n_experts;
    mp_expert_loc *locs; /* [n_layers * n_experts] */
    uint64_t file_size;
    char path[256];
} mp_fixture;

/* Writes the file under dir; returns 0 or -1. */
int mp_fixture_make(mp_fixture *f, const char *dir, const char *name, uint32_t n_layers, uint32_t n_experts);
void mp_fixture_free(mp_fixture *f); /* removes the file */
uint8_t mp_fixture_byte(uint64_t file_offset);
/* True if ptrs hold exactly the file's bytes of (layer, expert). */
bool mp_fixture_check(const mp_fixture *f, uint32_t layer, uint32_t expert, const mp_expert_ptrs *p);
/* A cache over the fixture with io depth `depth` and an optional fault spec;
 * NULL (and err filled) on failure. */
mp_cache *mp_fixture_cache(const mp_fixture *f, mp_io_kind kind, unsigned depth, uint32_t n_slots,
                           const mp_policy_ops *pol, const char *fault, mp_err *err);

#endif
