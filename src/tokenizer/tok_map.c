#include "tokenizer/tok_map.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int mp_tok_map_init(mp_tok_map *m, size_t n_expected)
{
    memset(m, 0, sizeof(*m));
    size_t cap = 64;
    while (cap < n_expected * 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof(*m->slots));
    if (!m->slots)
        return -1;
    m->cap = cap;
    return 0;
}

void mp_tok_map_free(mp_tok_map *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

static size_t find_slot(const mp_tok_map *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const mp_tok_map_slot *s = &m->slots[i];
        if (!s->used)
            return i;
        if (s->hash == h && s->key_len == len && memcmp(m->arena + s->key_off, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static int grow(mp_tok_map *m)
{
    size_t ncap = m->cap * 2;
    mp_tok_map_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used)
            continue;
        size_t j = (size_t)m->slots[i].hash & (ncap - 1);
        while (ns[j].used)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int mp_tok_map_put(mp_tok_map *m, const char *key, size_t len, int32_t value, bool overwrite)
{
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    uint64_t h = XXH3_64bits(key, len);
    size_t i = find_slot(m, key, len, h);
    mp_tok_map_slot *s = &m->slots[i];
    if (s->used) {
        if (overwrite)
            s->value = value;
        return 0;
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t ncap = m->arena_cap ? m->arena_cap : 4096;
        while (ncap < m->arena_len + len)
            ncap *= 2;
        char *na = realloc(m->arena, ncap);
        if (!na)
            return -1;
        m->arena = na;
        m->arena_cap = ncap;
    }
    if (len)
        memcpy(m->arena + m->arena_len, key, len);
    s->used = true;
    s->hash = h;
    s->key_off = m->arena_len;
    s->key_len = (uint32_t)len;
    s->value = value;
    m->arena_len += len;
    m->n++;
    return 0;
}

int32_t mp_tok_map_get(const mp_tok_map *m, const char *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    const mp_tok_map_slot *s = &m->slots[find_slot(m, key, len, h)];
    return s->used ? s->value : -1;
}
