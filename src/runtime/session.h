/* A session wires the parts together: model + memory plan + expert provider
 * (mapped file, or the expert cache streaming from disk) + context
 * (+ tokenizer). */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include "cache/cache.h"
#include "common/err.h"
#include "model/experts.h"
#include "model/forward.h"
#include "model/model.h"
#include "runtime/plan.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_session_params {
    const char *model_path;
    int n_ctx, n_batch, n_threads;
    bool need_tokenizer; /* fail if the file has no usable tokenizer */
    /* Memory budget: any of these streams experts through the cache. */
    uint64_t mem;           /* --mem: whole process */
    uint64_t cache_bytes;   /* --cache-size */
    uint32_t cache_experts; /* --cache-experts: slots per MoE layer */
    const char *io;         /* "auto" (NULL), "uring", "pread" */
    unsigned io_depth;      /* 0: default */
    const char *policy;     /* replacement policy name; NULL: default */
    const char *fault_spec; /* I/O fault injection (tests); NULL: none */
} mp_session_params;

typedef struct mp_session {
    mp_model *model;
    mp_experts *experts;
    mp_ctx *ctx;
    mp_tokenizer *tok; /* NULL when the file has none and none was required */
    mp_plan plan;
    mp_cache *cache;   /* NULL when experts are mapped */
    void *resident_buf;
    char note[1024];   /* announcements (fallbacks), "\n"-separated; "" if none */
} mp_session;

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err);
void mp_session_free(mp_session *s); /* NULL-safe */

#endif
