/* The expert-cache provider: mp_experts over an mp_cache (src/cache), so
 * the forward pass streams experts from disk inside the memory budget. */
#ifndef MP_EXPERTS_CACHE_H
#define MP_EXPERTS_CACHE_H

#include "cache/cache.h"
#include "model/experts.h"

/* Wraps cache (borrowed: it must outlive the provider). */
int mp_experts_cache_create(mp_experts **out, const mp_model *m, mp_cache *cache, mp_err *err);

#endif
