/* A session wires the parts together: model + expert provider + context
 * (+ tokenizer). The memory planner and the expert cache plug in here. */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include "common/err.h"
#include "model/experts.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_session_params {
    const char *model_path;
    int n_ctx, n_batch, n_threads;
    bool need_tokenizer; /* fail if the file has no usable tokenizer */
} mp_session_params;

typedef struct mp_session {
    mp_model *model;
    mp_experts *experts;
    mp_ctx *ctx;
    mp_tokenizer *tok; /* NULL when the file has none and none was required */
} mp_session;

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err);
void mp_session_free(mp_session *s); /* NULL-safe */

#endif
