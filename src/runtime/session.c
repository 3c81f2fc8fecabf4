#include "session.h"

#include "cache/policy.h"
#include "gpu/backend.h"
#include "io/io.h"
#include "kernels/kernels.h"
#include "model/route.h"
#include "pack/pack_cache.h"
#include "runtime/model_open.h"
#include "runtime/resident.h"
#include "trace/hidden.h"
#include "trace/routing.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The model as the streamer sees it; is_moe: [n_layer] scratch. */
static mp_experts_shape experts_shape(const mp_model *m, uint8_t *is_moe)
{
    for (uint32_t il = 0; il < m->hp.n_layer; il++) is_moe[il] = mp_layer_is_moe(&m->layers[il]);
    return (mp_experts_shape){m->hp.n_layer, m->hp.n_expert, m->hp.n_expert_used, m->hp.n_embd, is_moe};
}

/* Every expert as a view into the mapped file. */
static int open_mapped(mp_session *s, const mp_experts_shape *sh, mp_err *err)
{
    const mp_model *m = s->model;
    const size_t X = m->hp.n_expert;
    mp_expert_w *views = calloc((size_t)m->hp.n_layer * (X ? X : 1), sizeof *views);
    if (!views) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const mp_layer *l = &m->layers[il];
        if (!mp_layer_is_moe(l)) continue;
        for (size_t e = 0; e < X; e++)
            views[il * X + e] = (mp_expert_w){
                (const char *)l->ffn_gate_exps.data + e * l->ffn_gate_exps.expert_stride,
                (const char *)l->ffn_up_exps.data + e * l->ffn_up_exps.expert_stride,
                (const char *)l->ffn_down_exps.data + e * l->ffn_down_exps.expert_stride,
                0, /* the mapping is never repacked */
            };
    }
    int rc = mp_experts_open_mapped(&s->experts, sh, views, err);
    free(views);
    return rc;
}

/* Whether experts are rewritten into the interleaved layout on the way into
 * their cache slot. Repacking costs about one more pass over the expert's
 * bytes per load (memory bandwidth, on the thread that reaps reads), which
 * pays when an expert stays for many tokens: by default only when the cache
 * holds every expert (each loaded once), and only the types whose one-token
 * kernel gains too (mp_repack_pays_decode). MP_REPACK_EXPERTS=1 repacks every
 * type with interleaved kernels, whatever the cache; 0 none; MP_REPACK=0 turns
 * all repacking off, MP_REPACK=1 takes every type with kernels (resident and
 * experts; tests). */
static bool repack_experts(const mp_session *s)
{
    const char *all = getenv("MP_REPACK"), *ex = getenv("MP_REPACK_EXPERTS");
    if (all && !strcmp(all, "0")) return false;
    if (s->device_tier) return false; /* the device reads the GGUF row layout */
    if (ex) return strcmp(ex, "0") != 0;
    return s->plan.slots >= s->plan.n_experts_total;
}

/* Whether an expert matrix of type wtype is repacked when experts are: the types whose
 * one-token kernel gains too, or every type with kernels (MP_REPACK_EXPERTS=1). */
static bool expert_type_repacks(const mp_session *s, uint32_t wtype)
{
    return s->repack_all_experts ? mp_repack_supported(wtype) : mp_repack_pays_decode(wtype);
}

/* The slot fill hook: a pack's check and decode first, then each of the
 * expert's matrices (gate, up, down) whose type has interleaved kernels is
 * repacked in place (same bytes) and flagged in ptrs->layout. */
static int fill_slot(void *ctx, uint32_t layer, uint32_t expert, void *slot, uint64_t slot_bytes, mp_expert_ptrs *ptrs,
                     mp_err *err)
{
    mp_session *s = ctx;
    int rc = s->pack ? mp_pack_verify_block(s->pack, layer, expert, slot, slot_bytes, ptrs, err) : MP_OK;
    if (rc) return rc;
    const mp_layer *l = &s->model->layers[layer];
    const mp_tensor *t[3] = {&l->ffn_gate_exps, &l->ffn_up_exps, &l->ffn_down_exps};
    ptrs->layout = 0;
    for (uint32_t i = 0; i < 3 && i < ptrs->n_parts; i++) {
        /* a view into a fused gate_up slab is not whole rows of its own */
        if (t[i]->view_off || !expert_type_repacks(s, t[i]->type)) continue;
        if (ptrs->len[i] != (uint64_t)t[i]->ne[1] * t[i]->row_size) continue;
        rc = mp_repack_rows(t[i]->type, (void *)ptrs->part[i], t[i]->ne[1], t[i]->ne[0]);
        if (rc == MP_E_UNSUPPORTED) continue;
        if (rc)
            return mp_err_set(err, rc, "%s: layer %u expert %u: tensor '%s': no memory to repack it", s->model->path, layer,
                              expert, t[i]->info ? t[i]->info->name : "?");
        ptrs->layout |= 1u << i;
    }
    return MP_OK;
}

static int open_cache(mp_session *s, const mp_session_params *p, const mp_expert_loc *locs,
                      const mp_experts_shape *sh, mp_err *err)
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
        /* a pack's blocks are checked (and lz4 decoded) in their slot on
         * every load, before anything uses them */
        .verify = repack_experts(s) ? fill_slot : s->pack ? mp_pack_verify_block : NULL,
        .verify_ctx = repack_experts(s) ? (void *)s : (void *)s->pack,
    };
    note[0] = '\0';
    rc = mp_cache_create(&cc, &s->cache, note, sizeof note, err);
    if (rc) {
        mp_io_free(io);
        return rc;
    }
    if (mp_cache_slot_size(s->cache) != s->plan.slot_bytes)
        return mp_err_set(err, MP_E_BUDGET, "%s: the cache's slots are %llu bytes, the plan counted %llu (io alignment %zu)",
                          m->path, (unsigned long long)mp_cache_slot_size(s->cache),
                          (unsigned long long)s->plan.slot_bytes, mp_io_align(io));
    if (note[0]) mp_note_add(s->note, sizeof s->note, "%s", note);
    /* a prefetch's room from its own layer first only where the cache holds
     * under 1.5 k experts per MoE layer (cache.h says why) */
    mp_cache_prefetch_own_layer_first(s->cache, 2u * (uint64_t)s->plan.slots <
                                                    3u * (uint64_t)sh->n_expert_used * s->plan.n_moe_layers);
    rc = mp_experts_open_cached(&s->experts, sh, s->cache, err);
    if (!rc && !p->no_preload && s->plan.slots >= s->plan.n_experts_total) rc = preload_all(s, err);
    return rc;
}

static int count_repacked(void *ctx, mp_tensor *t)
{
    uint64_t *n = ctx;
    if (t->repacked) n[0]++, n[1] += t->info->size;
    return 0;
}

/* Says how many resident matrices the load rewrote into the interleaved
 * layout (runtime/resident.c; same bytes, so the plan is unchanged). */
static void note_repacked(mp_session *s)
{
    uint64_t n[2] = {0, 0};
    mp_model_for_each_resident(s->model, count_repacked, n);
    /* experts: when the cache repacks, which of their types it takes (fill_slot's rule) */
    bool experts = false;
    for (uint32_t il = 0; s->cache && repack_experts(s) && il < s->model->hp.n_layer && !experts; il++) {
        const mp_layer *l = &s->model->layers[il];
        const mp_tensor *t[3] = {&l->ffn_gate_exps, &l->ffn_up_exps, &l->ffn_down_exps};
        for (int i = 0; i < 3; i++)
            if (t[i]->info && expert_type_repacks(s, t[i]->type)) experts = true;
    }
    if (n[0] || experts)
        mp_note_add(s->note, sizeof s->note, "repacked %llu resident matrices (%.1f MiB) into 4-row interleaved blocks%s",
                    (unsigned long long)n[0], n[1] / 1048576.0,
                    experts ? "; experts are repacked as they enter the cache" : "");
}

/* Trace layers are indices among the MoE layers (docs/TRACE_FORMAT.md). */
static void trace_route(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k,
                        const float *h)
{
    mp_session *s = ud;
    if (s->trace &&
        mp_trace_writer_write(s->trace, 0, pos, s->moe_index[layer], experts, weights, (uint32_t)k, NULL) != MP_OK)
        s->trace_errors++;
    if (s->hidden && mp_hidden_writer_write(s->hidden, s->moe_index[layer], (uint32_t)pos, experts, h) != MP_OK)
        s->trace_errors++;
}

static int missing_routing(const mp_session *s, int64_t pos, uint32_t moe_layer, mp_err *err)
{
    const mp_routing *r = s->routing;
    const int64_t n_pos = mp_routing_n_pos(r);
    if (pos >= n_pos)
        return mp_err_set(err, MP_E_RANGE,
                          "%s: no routing for position %lld: the trace maps positions 0..%lld (%u sequence%s)",
                          mp_routing_name(r), (long long)pos, (long long)n_pos - 1, mp_routing_n_seqs(r),
                          mp_routing_n_seqs(r) == 1 ? "" : "s, concatenated");
    uint32_t seq;
    int64_t tok;
    mp_routing_locate(r, pos, &seq, &tok);
    return mp_err_set(err, MP_E_RANGE, "%s: no routing for position %lld (sequence %u, token_idx %lld) at MoE layer %u",
                      mp_routing_name(r), (long long)pos, seq, (long long)tok, moe_layer);
}

/* mp_route_override_fn: the recorded experts and weights replace the
 * model's choice. */
static int replay_route(void *ud, int layer, int pos, int32_t *experts, float *weights, int k, mp_err *err)
{
    const mp_session *s = ud;
    const float *w;
    const int32_t *e = mp_routing_get(s->routing, pos, s->moe_index[layer], &w);
    if (!e) return missing_routing(s, pos, s->moe_index[layer], err);
    memcpy(experts, e, sizeof *experts * (size_t)k); /* k == the table's k: checked when it was built */
    memcpy(weights, w, sizeof *weights * (size_t)k);
    return MP_OK;
}

int mp_session_check_routing(const mp_session *s, int64_t pos0, int64_t n, mp_err *err)
{
    if (!s->routing) return MP_OK;
    const mp_hparams *hp = &s->model->hp;
    for (int64_t pos = pos0; pos < pos0 + n; pos++)
        for (uint32_t il = 0; il < hp->n_layer; il++)
            if (mp_layer_is_moe(&s->model->layers[il]) && !mp_routing_get(s->routing, pos, s->moe_index[il], NULL))
                return missing_routing(s, pos, s->moe_index[il], err);
    return MP_OK;
}

/* Reads p->routing_trace into s->routing for s's model. */
static int open_routing(mp_session *s, const mp_session_params *p, mp_err *err)
{
    const mp_hparams *hp = &s->model->hp;
    uint32_t n_moe = 0;
    for (uint32_t il = 0; il < hp->n_layer; il++) n_moe += mp_layer_is_moe(&s->model->layers[il]);
    if (n_moe == 0 || hp->n_expert == 0)
        return mp_err_set(err, MP_E_INVAL, "%s: --routing-trace: %s has no MoE layers to route", p->routing_trace,
                          s->model->path);
    const mp_routing_opts o = {.one_seq = p->routing_one_seq,
                               .seq = p->routing_seq,
                               .n_layers = n_moe,
                               .n_experts = hp->n_expert,
                               .k = hp->n_expert_used};
    return mp_routing_load(p->routing_trace, &o, &s->routing, err);
}

bool mp_session_find_predictor(const char *model_path, char *buf, size_t cap)
{
    size_t n = strlen(model_path);
    if (n >= 5 && !strcmp(model_path + n - 5, ".gguf")) n -= 5;
    if (n + sizeof ".predictor.gguf" > cap) return false;
    memcpy(buf, model_path, n);
    memcpy(buf + n, ".predictor.gguf", sizeof ".predictor.gguf");
    struct stat st;
    return stat(buf, &st) == 0 && S_ISREG(st.st_mode);
}

int mp_session_load_predictor(const mp_session_params *p, const mp_model *m, mp_pred_file *out, mp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!p->predictor) return MP_OK;
    uint8_t *is_moe = malloc(m->hp.n_layer + 1);
    if (!is_moe) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    const mp_experts_shape sh = experts_shape(m, is_moe);
    int rc = mp_pred_file_load(p->predictor, &sh, out, err);
    free(is_moe);
    return rc;
}

int mp_session_plan(const mp_session_params *p, const mp_model *m, bool pack, const mp_expert_loc *locs,
                    uint64_t extra_overhead, mp_plan *plan, mp_err *err)
{
    const bool budget = p->mem || p->cache_bytes || p->cache_experts;
    if (p->mmap && budget)
        return mp_err_set(err, MP_E_INVAL, "--mmap (or --mem 0) maps the whole file: it cannot go with --mem, "
                                           "--cache-size or --cache-experts");
    /* No budget option and no --mmap: the planner budgets from what the
     * machine allows (it reads every weight into RAM when the model fits). */
    mp_mem_allowance machine;
    const bool auto_budget = !budget && !p->mmap;
    if (auto_budget) mp_mem_allowance_read(NULL, &machine);
    mp_plan_opts po = {.mem = p->mem,
                       .cache_bytes = p->cache_bytes,
                       .cache_experts = p->cache_experts,
                       .n_ctx = p->n_ctx,
                       .n_seq = p->n_seq,
                       .n_ckpt = p->n_ckpt,
                       .n_batch = p->n_batch,
                       .n_threads = p->n_threads,
                       .pack = pack,
                       .align = mp_io_file_align(p->model_path, p->fault_spec),
                       .machine = auto_budget ? &machine : NULL,
                       .extra_overhead = extra_overhead};
    return mp_plan_make(m, locs, &po, plan, err);
}

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err)
{
    *out = NULL;
    mp_session *s = calloc(1, sizeof *s);
    if (!s) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    s->device_tier = mp_session_wants_device(p);
    {
        const char *ex = getenv("MP_REPACK_EXPERTS"), *all = getenv("MP_REPACK");
        /* every type, not only where decode gains */
        s->repack_all_experts = (ex && !strcmp(ex, "1")) || (all && !strcmp(all, "1"));
    }
    mp_expert_loc *locs = NULL;
    uint8_t *is_moe = NULL;
    int rc;
    const bool budget = p->mem || p->cache_bytes || p->cache_experts;
    rc = mp_model_open(p->model_path, budget, &s->model, &s->pack, err);
    if (rc) goto fail;
    rc = s->pack ? mp_pack_expert_locs(s->pack, &locs, err) : mp_expert_locs_gguf(s->model, &locs, err);
    if (rc) goto fail;
    rc = mp_session_load_predictor(p, s->model, &s->pred, err);
    if (rc) goto fail;
    if (s->pred.n_nets)
        mp_note_add(s->note, sizeof s->note, "predictor %s%s: %d trained nets (%.2f MiB) guess for lookahead",
                    p->predictor, p->predictor_found ? " (beside the model; --no-predictor: the routers only)" : "",
                    s->pred.n_nets, s->pred.bytes / 1048576.0);
    rc = mp_session_plan(p, s->model, s->pack != NULL, locs, s->pred.bytes, &s->plan, err);
    if (rc) goto fail;
    char plan_note[512];
    mp_plan_note(&s->plan, plan_note, sizeof plan_note);
    if (plan_note[0]) mp_note_add(s->note, sizeof s->note, "%s", plan_note);
    if ((s->plan.auto_mode == MP_PLAN_AUTO_STREAM || (s->plan.auto_mode == MP_PLAN_AUTO_FITS && s->plan.offload)) &&
        !s->pack) {
        /* Streaming after all, or every weight read into RAM: reopen without
         * the mapping, as --mem does (the expert offsets in locs and the plan stay valid: same file). */
        mp_model_close(s->model, NULL);
        s->model = NULL;
        rc = mp_model_open(p->model_path, true, &s->model, &s->pack, err);
        if (rc) goto fail;
    }
    if (p->need_tokenizer || mp_gguf_get(s->model->gguf, "tokenizer.ggml.model")) {
        rc = mp_tokenizer_load(&s->tok, s->model->gguf, err);
        if (rc && !p->need_tokenizer) {
            mp_err_clear(err);
            s->tok = NULL;
            rc = MP_OK;
        }
        if (rc) goto fail;
    }
    if (!(is_moe = malloc(s->model->hp.n_layer + 1))) {
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
        goto fail;
    }
    const mp_experts_shape shape = experts_shape(s->model, is_moe);
    if (!(s->moe_index = calloc(s->model->hp.n_layer + 1, sizeof *s->moe_index))) {
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t il = 0, n = 0; il < s->model->hp.n_layer; il++) s->moe_index[il] = is_moe[il] ? n++ : 0;
    if (p->routing_trace && (rc = open_routing(s, p, err))) goto fail;
    if (budget && !s->plan.offload) {
        /* a dense model: nothing to stream, but the file was not mapped */
        rc = mp_resident_load(s->model, &s->resident_buf, err);
        if (rc) goto fail;
        rc = open_mapped(s, &shape, err);
    } else if (s->plan.offload) {
        /* (a pack always: its blocks are verified in the cache, which holds
         * every expert when there is no budget) */
        rc = mp_resident_load(s->model, &s->resident_buf, err);
        /* the resident bytes are copied: the pack's mapping of them goes */
        if (!rc && s->pack) mp_pack_drop_pages(s->pack);
        if (!rc) rc = open_cache(s, p, locs, &shape, err);
    } else {
        rc = open_mapped(s, &shape, err);
    }
    if (rc) goto fail;
    if (s->resident_buf) note_repacked(s);
    mp_ctx_params cp = {p->n_ctx, p->n_batch, p->n_threads, p->n_seq, p->n_ckpt};
    rc = mp_ctx_create(&s->ctx, s->model, s->experts, &cp, err);
    if (rc) goto fail;
    if ((rc = mp_session_open_vram(s, p, err))) goto fail;
    if (s->cache) {
        mp_prefetch_cfg pf = p->prefetch;
        if (!p->prefetch_set) {
            pf.kind = MP_DEFAULT_PREFETCH;
            pf.lookahead = MP_DEFAULT_LOOKAHEAD;
            pf.min_prob = MP_DEFAULT_PREFETCH_MIN_PROB;
        }
        if (pf.lookahead < 1) pf.lookahead = MP_DEFAULT_LOOKAHEAD;
        pf.routing = s->routing; /* the oracle predicts the routing the run replays */
        pf.nets = s->pred.nets;
        pf.n_nets = s->pred.n_nets;
        if (pf.kind == MP_PREFETCH_LOOKAHEAD && (rc = mp_model_gate_copy_create(&s->gate, s->model, err))) goto fail;
        rc = s->gate ? mp_experts_set_prefetch(s->experts, &pf, mp_model_gate_probs_compact, s->gate, err)
                     : mp_experts_set_prefetch(s->experts, &pf, mp_model_gate_probs, s->model, err);
        if (rc) goto fail;
    }
    if (s->routing) mp_ctx_set_route_override(s->ctx, replay_route, s);
    if (p->trace_out) {
        rc = mp_trace_writer_open(p->trace_out, mp_gguf_get_str(s->model->gguf, "general.name"), &s->trace, err);
        if (rc) goto fail;
    }
    if (p->hidden_out) {
        rc = mp_hidden_writer_open(p->hidden_out, (uint32_t)s->model->hp.n_embd, s->model->hp.n_expert_used,
                                   s->plan.n_moe_layers, &s->hidden, err);
        if (rc) goto fail;
    }
    if (s->trace || s->hidden) mp_ctx_set_route_cb(s->ctx, trace_route, s);
    free(locs);
    free(is_moe);
    *out = s;
    return MP_OK;
fail:
    free(locs);
    free(is_moe);
    mp_session_free(s);
    return rc;
}

void mp_session_free(mp_session *s)
{
    if (!s) return;
    mp_ctx_free(s->ctx);
    mp_backend_free(s->backend); /* after the context that used it */
    if (s->trace) mp_trace_writer_close(s->trace, NULL);
    if (s->hidden) mp_hidden_writer_close(s->hidden, NULL);
    mp_experts_free(s->experts);
    mp_pred_file_free(&s->pred); /* after the streamer whose predictor borrowed the nets */
    mp_cache_free(s->cache);
    mp_routing_free(s->routing); /* after the predictor, which borrows it */
    mp_model_gate_copy_free(s->gate); /* the same */
    free(s->moe_index);
    mp_tokenizer_free(s->tok);
    mp_model_close(s->model, s->pack);
    free(s->resident_buf);
    free(s);
}
