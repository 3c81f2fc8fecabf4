/* Resident weights: everything every token uses (embeddings, attention,
 * norms, routers, output head) read into one RAM buffer at start -- read,
 * not mapped, so they count honestly against the memory budget -- and the
 * model's tensor views repointed at it. Routed-expert tensors are left
 * alone: they come through the expert cache. */
#ifndef MP_RESIDENT_H
#define MP_RESIDENT_H

#include "common/err.h"
#include "model/model.h"

#include <stdint.h>

/* Calls fn on every resident (non-expert) tensor view of m, tied output
 * excluded. Stops at and returns the first nonzero return. */
int mp_model_for_each_resident(mp_model *m, int (*fn)(void *ctx, mp_tensor *t), void *ctx);

/* Bytes the resident buffer needs (each tensor 64-byte aligned). */
uint64_t mp_resident_bytes(const mp_model *m);

/* Rewrites the resident matrices that the forward pass reads only whole
 * (attention, dense and shared-expert FFN, output head) into the interleaved
 * layout where the kernels have one for their type (kernels.h, MP_RP_ROWS),
 * in place, and marks them (mp_tensor.repacked). Same bytes: the memory plan
 * does not change. MP_REPACK=0 in the environment leaves them plain (the
 * results are the same either way). Called by mp_resident_load. */
int mp_resident_repack(mp_model *m, mp_err *err);

/* Reads every resident tensor of m (opened with no_mmap) from path into a
 * new buffer and points the views at it; the page cache copy is dropped
 * afterwards. On success *buf is the buffer (free() it after the model is
 * done with it). */
int mp_resident_load(mp_model *m, void **buf, mp_err *err);

#endif
