#include "session.h"

#include <stdlib.h>

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err)
{
    *out = NULL;
    mp_session *s = calloc(1, sizeof *s);
    if (!s) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    int rc = mp_model_load(&s->model, p->model_path, err);
    if (rc) goto fail;
    if (p->need_tokenizer || mp_gguf_get(s->model->gguf, "tokenizer.ggml.model")) {
        rc = mp_tokenizer_load(&s->tok, s->model->gguf, err);
        if (rc && !p->need_tokenizer) {
            mp_err_clear(err);
            s->tok = NULL;
            rc = MP_OK;
        }
        if (rc) goto fail;
    }
    rc = mp_experts_mmap_create(&s->experts, s->model, err);
    if (rc) goto fail;
    mp_ctx_params cp = {p->n_ctx, p->n_batch, p->n_threads};
    rc = mp_ctx_create(&s->ctx, s->model, s->experts, &cp, err);
    if (rc) goto fail;
    *out = s;
    return MP_OK;
fail:
    mp_session_free(s);
    return rc;
}

void mp_session_free(mp_session *s)
{
    if (!s) return;
    mp_ctx_free(s->ctx);
    mp_experts_free(s->experts);
    mp_tokenizer_free(s->tok);
    mp_model_free(s->model);
    free(s);
}
