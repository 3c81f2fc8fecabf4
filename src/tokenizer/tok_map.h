/* A string -> int32 hash map for vocabularies and BPE merge ranks (open
 * addressing, xxh3). Keys are copied into the map's own arena. Internal to
 * src/tokenizer/. */
#ifndef MP_TOK_MAP_H
#define MP_TOK_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp_tok_map_slot {
    uint64_t hash;
    uint64_t key_off; /* into arena */
    uint32_t key_len;
    int32_t value;
    bool used;
} mp_tok_map_slot;

typedef struct mp_tok_map {
    mp_tok_map_slot *slots;
    size_t cap; /* power of two */
    size_t n;
    char *arena;
    size_t arena_len, arena_cap;
} mp_tok_map;

/* Sizes the map for about n_expected keys; returns 0 or -1 on OOM. */
int mp_tok_map_init(mp_tok_map *m, size_t n_expected);
void mp_tok_map_free(mp_tok_map *m);

/* Inserts key -> value. overwrite: replace an existing key's value (else
 * the first value stays). Returns 0 or -1 on OOM. */
int mp_tok_map_put(mp_tok_map *m, const char *key, size_t len, int32_t value, bool overwrite);

/* Value of key, or -1 if absent (values stored are never negative). */
int32_t mp_tok_map_get(const mp_tok_map *m, const char *key, size_t len);

#endif
