#include "session.h"

#include "cache/policy.h"
#include "io/io.h"
#include "runtime/experts_cache.h"
#include "runtime/resident.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* When the cache holds every expert, read them all now, with every read
 * queued at once (full disk bandwidth), so decoding starts with no misses:
 * the streamed run then matches the all-in-RAM one from the first token. */
static int preload_all(mp_session *s, mp_err *err)
{
    const mp_hparams *hp = &s->model->hp;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        if (!mp_layer_is_moe(&s->model->layers[il])) continue;
        for (uint32_t e = 0; e < hp->n_expert; e++)
            if (mp_cache_request(s->cache, il, e, MP_CACHE_PREFETCH, err) != MP_OK) break;
    }
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        if (!mp_layer_is_moe(&s->model->layers[il])) continue;
        for (uint32_t e = 0; e < hp->n_expert; e++) {
            mp_expert_ptrs p;
            int rc = mp_cache_acquire(s->cache, il, e, &p, err);
            if (rc) return rc;
            mp_cache_release(s->cache, il, e);
        }
    }
    mp_cache_get_stats(s->cache, &s->preload_stats, NULL, true);
    s->preloaded = true;
    return MP_OK;
}

static int open_cache(mp_session *s, const mp_session_params *p, const mp_expert_loc *locs, mp_err *err)
{
    const mp_model *m = s->model;
    mp_io_kind kind = MP_IO_AUTO;
    if (p->io && mp_io_kind_parse(p->io, &kind) != MP_OK)
        return mp_err_set(err, MP_E_INVAL, "--io: unknown backend '%s' (auto, uring, pread)", p->io);
    const mp_policy_ops *pol = NULL;
    if (p->policy && !(pol = mp_policy_find(p->policy)))
        return mp_err_set(err, MP_E_INVAL, "--policy: unknown replacement policy '%s'", p->policy);
    mp_io_opts io_opts = {.depth = p->io_depth, .fault_spec = p->fault_spec, .timeout_ms = p->io_timeout_ms};
    mp_io *io = NULL;
    char note[512] = "";
    int rc = mp_io_open(kind, m->path, &io_opts, &io, note, sizeof note, err);
    if (rc) return rc;
    if (note[0]) mp_note_add(s->note, sizeof s->note, "%s", note);
    mp_cache_config cc = {
        .n_layers = m->hp.n_layer,
        .n_experts = m->hp.n_expert,
        .locs = locs,
        .n_slots = s->plan.slots,
        .min_slots = s->plan.min_slots,
        .io = io,
        .policy = pol,
        .file_name = m->path,
        .hugepages = !p->no_hugepages,
    };
    note[0] = '\0';
    rc = mp_cache_create(&cc, &s->cache, note, sizeof note, err);
    if (rc) {
        mp_io_free(io);
        return rc;
    }
    if (note[0]) mp_note_add(s->note, sizeof s->note, "%s", note);
    rc = mp_experts_cache_create(&s->experts, m, s->cache, err);
    if (!rc && !p->no_preload && s->plan.slots >= s->plan.n_experts_total) rc = preload_all(s, err);
    return rc;
}

static void trace_route(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k)
{
    mp_session *s = ud;
    if (mp_trace_writer_write(s->trace, 0, pos, (uint32_t)layer, experts, weights, (uint32_t)k, NULL) != MP_OK)
        s->trace_errors++;
}

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err)
{
    *out = NULL;
    mp_session *s = calloc(1, sizeof *s);
    if (!s) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    mp_expert_loc *locs = NULL;
    const bool budget = p->mem || p->cache_bytes || p->cache_experts;
    mp_model_load_opts lo = {.no_mmap = budget};
    int rc = mp_model_load_ex(&s->model, p->model_path, &lo, err);
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
    rc = mp_expert_locs_gguf(s->model, &locs, err);
    if (rc) goto fail;
    mp_plan_opts po = {p->mem, p->cache_bytes, p->cache_experts, p->n_ctx, p->n_batch, p->n_threads};
    rc = mp_plan_make(s->model, locs, &po, &s->plan, err);
    if (rc) goto fail;
    if (s->model->pack) {
        /* A pack: its resident tensors are in the mapped embedded GGUF and
         * its experts are read block by block, each verified before use. */
        if (s->plan.offload)
            mp_note_add(s->note, sizeof s->note,
                        "pack: experts are read with pread and checksummed on every use (the expert cache does not "
                        "read packs yet)");
        rc = mp_experts_pack_create(&s->experts, s->model, err);
    } else if (budget && !s->plan.offload) {
        /* a dense model: nothing to stream, but the file was not mapped */
        rc = mp_resident_load(s->model, &s->resident_buf, err);
        if (rc) goto fail;
        rc = mp_experts_mmap_create(&s->experts, s->model, err);
    } else if (s->plan.offload) {
        rc = mp_resident_load(s->model, &s->resident_buf, err);
        if (!rc) rc = open_cache(s, p, locs, err);
    } else {
        rc = mp_experts_mmap_create(&s->experts, s->model, err);
    }
    if (rc) goto fail;
    mp_ctx_params cp = {p->n_ctx, p->n_batch, p->n_threads};
    rc = mp_ctx_create(&s->ctx, s->model, s->experts, &cp, err);
    if (rc) goto fail;
    if (s->cache) {
        s->prefetch = p->prefetch;
        if (!p->prefetch_set) {
            s->prefetch.kind = MP_DEFAULT_PREFETCH;
            s->prefetch.lookahead = MP_DEFAULT_LOOKAHEAD;
            s->prefetch.min_prob = MP_DEFAULT_PREFETCH_MIN_PROB;
        }
        if (s->prefetch.lookahead < 1) s->prefetch.lookahead = MP_DEFAULT_LOOKAHEAD;
        if (s->prefetch.kind != MP_PREFETCH_NONE) {
            rc = mp_predictor_create(&s->pred, s->model, &s->prefetch, cp.n_batch, err);
            if (rc) goto fail;
            mp_ctx_set_predictor(s->ctx, s->pred, s->prefetch.lookahead);
        }
    }
    if (p->trace_out) {
        rc = mp_trace_writer_open(p->trace_out, mp_gguf_get_str(s->model->gguf, "general.name"), &s->trace, err);
        if (rc) goto fail;
        mp_ctx_set_route_cb(s->ctx, trace_route, s);
    }
    free(locs);
    *out = s;
    return MP_OK;
fail:
    free(locs);
    mp_session_free(s);
    return rc;
}

void mp_session_free(mp_session *s)
{
    if (!s) return;
    mp_ctx_free(s->ctx);
    mp_predictor_free(s->pred);
    if (s->trace) mp_trace_writer_close(s->trace, NULL);
    mp_experts_free(s->experts);
    mp_cache_free(s->cache);
    mp_tokenizer_free(s->tok);
    mp_model_free(s->model);
    free(s->resident_buf);
    free(s);
}
