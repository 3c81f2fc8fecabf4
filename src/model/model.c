#include "model.h"

#include "kernels/kernels.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const arch_names[MP_ARCH_COUNT] = {
    [MP_ARCH_LLAMA] = "llama",
    [MP_ARCH_QWEN3MOE] = "qwen3moe",
    [MP_ARCH_OLMOE] = "olmoe",
    [MP_ARCH_DEEPSEEK2] = "deepseek2",
    [MP_ARCH_GLM4MOE] = "glm4moe",
    [MP_ARCH_QWEN2MOE] = "qwen2moe",
    [MP_ARCH_GPTOSS] = "gpt-oss",
    [MP_ARCH_MINIMAX_M2] = "minimax-m2",
    [MP_ARCH_QWEN3NEXT] = "qwen3next",
    [MP_ARCH_QWEN35MOE] = "qwen35moe",
};


/* Reads "<arch>.<suffix>" as u32. required: absent -> error. */
static int get_arch_u32(const mp_model *m, const char *suffix, uint32_t *out, bool required,
                        mp_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    int rc = mp_gguf_get_u32(m->gguf, key, out, err);
    if (rc == MP_E_NOTFOUND) {
        if (!required) return MP_OK;
        return mp_err_set(err, MP_E_CORRUPT, "%s: required key '%s' is missing", m->path, key);
    }
    if (rc != MP_OK) {
        const mp_gguf_value *v = mp_gguf_get(m->gguf, key);
        if (v && v->type == MP_GGUF_ARRAY)
            return mp_err_reset(err, MP_E_UNSUPPORTED,
                                "%s: key '%s' is a per-layer array; per-layer values are not supported",
                                m->path, key);
    }
    return rc;
}

static int get_arch_f32(const mp_model *m, const char *suffix, float *out, mp_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    int rc = mp_gguf_get_f32(m->gguf, key, out, err);
    return rc == MP_E_NOTFOUND ? MP_OK : rc;
}

/* deepseek2's keys (llama.cpp src/models/deepseek2.cpp load_arch_hparams).
 * Runs after the generic keys: head_dim / head_dim_v / n_head_kv hold
 * attention.key_length / value_length / head_count_kv as the file gives
 * them, which the MLA layout decides. */
static int load_deepseek2(mp_model *m, mp_err *err)
{
    mp_hparams *hp = &m->hp;
    int rc;
    hp->rope_kind = MP_ROPE_NORM;
    hp->qk_norm = MP_QK_NORM_NONE;
    hp->norm_topk = false;
    hp->mla = true;
    if (hp->n_expert == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: deepseek2 model without 'deepseek2.expert_count'", m->path);
    if ((rc = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, true, err))) return rc;
    if ((rc = get_arch_u32(m, "expert_shared_count", &hp->n_shared, true, err))) return rc;
    if ((rc = get_arch_u32(m, "leading_dense_block_count", &hp->n_dense_lead, false, err))) return rc;
    if ((rc = get_arch_u32(m, "attention.kv_lora_rank", &hp->kv_lora, true, err))) return rc;
    /* llama.cpp takes a file of 26 or 27 layers (or 48 with a 128256 vocabulary)
     * for a "lite" model and ignores its q_lora_rank */
    uint32_t nv = 0;
    if ((rc = get_arch_u32(m, "vocab_size", &nv, false, err))) return rc;
    const bool lite = hp->n_layer == 27 || hp->n_layer == 26 || (hp->n_layer == 48 && nv == 128256);
    if (!lite && (rc = get_arch_u32(m, "attention.q_lora_rank", &hp->q_lora, true, err))) return rc;
    uint32_t dk_mla = 0, dv_mla = 0;
    if ((rc = get_arch_u32(m, "attention.key_length_mla", &dk_mla, false, err))) return rc;
    if ((rc = get_arch_u32(m, "attention.value_length_mla", &dv_mla, false, err))) return rc;
    hp->mla_absorbed = dk_mla && dv_mla;
    hp->mla_dk = hp->mla_absorbed ? dk_mla : hp->head_dim;
    hp->mla_dv = hp->mla_absorbed ? dv_mla : hp->head_dim_v;
    if ((rc = get_arch_u32(m, "expert_group_count", &hp->n_group, false, err))) return rc;
    if ((rc = get_arch_u32(m, "expert_group_used_count", &hp->n_group_used, false, err))) return rc;
    hp->gating = MP_GATING_SOFTMAX;
    if ((hp->n_layer == 47 || hp->n_layer == 48) && nv == 154880) hp->gating = MP_GATING_SIGMOID; /* GLM-4.7-Flash */
    float temp = 0.0f; /* Mistral-Large-3's query temperature: not implemented, so refused */
    if ((rc = get_arch_f32(m, "attention.temperature_scale", &temp, err))) return rc;
    if (temp != 0.0f)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: key 'deepseek2.attention.temperature_scale' (attention "
                          "temperature tuning) is not supported", m->path);

    if (hp->kv_lora == 0 || hp->kv_lora > 65536 || hp->q_lora > 65536 || hp->mla_dk <= hp->n_rot ||
        hp->mla_dk > 1024 || hp->mla_dv == 0 || hp->mla_dv > 1024 || hp->n_ff_exp == 0)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: inconsistent MLA ranks: kv_lora_rank %u, q_lora_rank %u, key length %u (must exceed "
                          "rope dims %u), value length %u, expert FFN %u",
                          m->path, hp->kv_lora, hp->q_lora, hp->mla_dk, hp->n_rot, hp->mla_dv, hp->n_ff_exp);
    if (hp->mla_absorbed) {
        /* the latent cache: key = [latent (kv_lora) | k_pe (n_rot)], value = latent */
        if (hp->n_head_kv != 1 || hp->head_dim != hp->kv_lora + hp->n_rot || hp->head_dim_v != hp->kv_lora)
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: inconsistent MLA ranks: head_count_kv %u, key_length %u, value_length %u; the "
                              "attn_k_b/attn_v_b layout needs 1, kv_lora_rank + rope dims = %u, kv_lora_rank = %u",
                              m->path, hp->n_head_kv, hp->head_dim, hp->head_dim_v, hp->kv_lora + hp->n_rot,
                              hp->kv_lora);
        hp->kv_in_k = true;
    } else if (hp->n_head_kv != hp->n_head) {
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: inconsistent MLA ranks: the attn_kv_b layout needs head_count_kv = head_count (%u), "
                          "not %u",
                          m->path, hp->n_head, hp->n_head_kv);
    }
    if (hp->n_dense_lead > hp->n_layer)
        return mp_err_set(err, MP_E_CORRUPT, "%s: leading_dense_block_count %u exceeds block_count %u", m->path,
                          hp->n_dense_lead, hp->n_layer);
    if (hp->n_dense_lead > 0 && hp->n_ff == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: dense layers without 'deepseek2.feed_forward_length'", m->path);
    if (hp->n_group > 1 &&
        (hp->n_expert % hp->n_group != 0 || hp->n_group_used == 0 || hp->n_group_used >= hp->n_group ||
         hp->n_expert / hp->n_group < 2 || hp->n_expert_used > hp->n_group_used * (hp->n_expert / hp->n_group)))
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: expert groups do not fit: %u experts in %u groups, %u groups used, %u experts used "
                          "(the groups must divide the experts, at least 2 each, and 0 < used groups < groups "
                          "hold the used experts)",
                          m->path, hp->n_expert, hp->n_group, hp->n_group_used, hp->n_expert_used);
    return MP_OK;
}

/* qwen3next / qwen35moe (llama.cpp src/models/qwen3next.cpp, qwen35moe.cpp
 * load_arch_hparams): the Gated DeltaNet shape, which layers are recurrent
 * (attention.recurrent_layers, one flag per block, else every
 * full_attention_interval-th layer is full attention), the gated attention
 * and the MoE with its sigmoid-gated shared expert. Sets
 * m->layers[il].recurrent (layers are allocated here). */
static int load_qwen3next(mp_model *m, mp_err *err)
{
    mp_hparams *hp = &m->hp;
    const char *an = hp->arch_name;
    int rc;
    hp->rope_kind = MP_ROPE_NEOX; /* qwen35moe: IMROPE, NEOX for text (checked below) */
    hp->qk_norm = MP_QK_NORM_HEAD;
    hp->norm_topk = true;
    hp->gating = MP_GATING_SOFTMAX;
    hp->expert_weights_scale = 0.0f; /* not read by llama.cpp for these */
    hp->attn_gate = true;
    hp->ssm_kv_tiled = hp->arch == MP_ARCH_QWEN35MOE;
    if (hp->n_expert == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: %s model without '%s.expert_count'", m->path, an, an);
    if (hp->n_ff_exp == 0) { /* llama.cpp: n_ff / n_expert_used */
        if (hp->n_ff == 0 || hp->n_ff % hp->n_expert_used != 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: no '%s.expert_feed_forward_length' and no feed_forward_length "
                              "that n_expert_used (%u) divides", m->path, an, hp->n_expert_used);
        hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
    }
    hp->n_shared = 1;
    hp->n_ff_shexp = hp->n_ff;
    if ((rc = get_arch_u32(m, "expert_shared_feed_forward_length", &hp->n_ff_shexp, false, err))) return rc;
    if (hp->n_ff_shexp == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: shared expert without a width ('%s.expert_shared_feed_forward_length' "
                          "or '%s.feed_forward_length')", m->path, an, an);
    if (hp->head_dim != hp->head_dim_v)
        return mp_err_set(err, MP_E_CORRUPT, "%s: %s needs key_length = value_length (have %u, %u)", m->path, an,
                          hp->head_dim, hp->head_dim_v);
    uint32_t inner = 0;
    if ((rc = get_arch_u32(m, "ssm.conv_kernel", &hp->ssm_d_conv, true, err))) return rc;
    if ((rc = get_arch_u32(m, "ssm.state_size", &hp->ssm_d_state, true, err))) return rc;
    if ((rc = get_arch_u32(m, "ssm.group_count", &hp->ssm_n_k, true, err))) return rc;
    if ((rc = get_arch_u32(m, "ssm.time_step_rank", &hp->ssm_n_v, true, err))) return rc;
    if ((rc = get_arch_u32(m, "ssm.inner_size", &inner, true, err))) return rc;
    if (hp->ssm_d_conv < 2 || hp->ssm_d_conv > 64 || hp->ssm_d_state == 0 || hp->ssm_d_state > 1024 ||
        hp->ssm_n_k == 0 || hp->ssm_n_v == 0 || hp->ssm_n_v > 4096 || hp->ssm_n_v % hp->ssm_n_k != 0 ||
        (uint64_t)inner != (uint64_t)hp->ssm_n_v * hp->ssm_d_state)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: impossible Gated DeltaNet shape: conv_kernel %u (2..64), state_size %u, group_count %u, "
                          "time_step_rank %u (a multiple of group_count), inner_size %u (must be time_step_rank x "
                          "state_size)", m->path, hp->ssm_d_conv, hp->ssm_d_state, hp->ssm_n_k, hp->ssm_n_v, inner);
    if (hp->arch == MP_ARCH_QWEN35MOE) {
        /* IMROPE: pair k takes section (k % 3) while k < 3 x that section's
         * size, else the 4th (position 0 for text). NEOX when every pair
         * of n_rot / 2 falls in the first three. */
        char key[128];
        snprintf(key, sizeof key, "%s.rope.dimension_sections", an);
        uint32_t et;
        uint64_t n;
        const void *d;
        if (mp_gguf_get_arr(m->gguf, key, &et, &n, &d, err) != MP_OK || (et != MP_GGUF_INT32 && et != MP_GGUF_UINT32) ||
            n < 3)
            return mp_err_reset(err, MP_E_CORRUPT, "%s: key '%s' (4 integers) is missing or not an integer array",
                                m->path, key);
        int32_t sec[3];
        memcpy(sec, d, sizeof sec);
        for (uint32_t k = 0; k < hp->n_rot / 2; k++)
            if (!((int64_t)k < 3 * (int64_t)sec[k % 3]))
                return mp_err_set(err, MP_E_UNSUPPORTED,
                                  "%s: '%s' = [%d, %d, %d, ...] leaves rope pair %u of %u to the 4th section (not "
                                  "supported: text rope only)", m->path, key, sec[0], sec[1], sec[2], k, hp->n_rot / 2);
    }

    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", m->path);
    char key[128];
    snprintf(key, sizeof key, "%s.attention.recurrent_layers", an);
    const uint32_t n_all = hp->n_layer + hp->n_layer_nextn;
    if (mp_gguf_get(m->gguf, key)) {
        uint32_t et;
        uint64_t n;
        const void *d;
        if (mp_gguf_get_arr(m->gguf, key, &et, &n, &d, err) != MP_OK ||
            (et != MP_GGUF_BOOL && et != MP_GGUF_UINT8 && et != MP_GGUF_INT8 && et != MP_GGUF_INT32 &&
             et != MP_GGUF_UINT32) || n != n_all)
            return mp_err_reset(err, MP_E_CORRUPT,
                                "%s: key '%s' does not fit block_count %u: it must be an array of %u flags", m->path,
                                key, n_all, n_all);
        for (uint32_t il = 0; il < hp->n_layer; il++) {
            int32_t v = 0;
            if (et == MP_GGUF_INT32 || et == MP_GGUF_UINT32) memcpy(&v, (const char *)d + 4 * il, 4);
            else v = ((const uint8_t *)d)[il];
            m->layers[il].recurrent = v != 0;
        }
    } else {
        uint32_t interval = 4;
        if ((rc = get_arch_u32(m, "full_attention_interval", &interval, false, err))) return rc;
        if (interval == 0 || interval > n_all)
            return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s.full_attention_interval' = %u does not fit block_count "
                              "%u (1..%u)", m->path, an, interval, n_all, n_all);
        for (uint32_t il = 0; il < hp->n_layer; il++) m->layers[il].recurrent = (il + 1) % interval != 0;
    }
    return MP_OK;
}

static int load_hparams(mp_model *m, mp_err *err)
{
    mp_hparams *hp = &m->hp;
    const char *arch = mp_gguf_get_str(m->gguf, "general.architecture");
    if (!arch)
        return mp_err_set(err, MP_E_CORRUPT, "%s: key 'general.architecture' is missing", m->path);
    if (strlen(arch) >= sizeof hp->arch_name)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: unknown architecture '%.40s...'", m->path, arch);
    strcpy(hp->arch_name, arch);
    int found = -1;
    for (int a = 0; a < MP_ARCH_COUNT; a++)
        if (!strcmp(arch, arch_names[a])) found = a;
    if (found < 0) {
        char list[256];
        int n = 0;
        for (int a = 0; a < MP_ARCH_COUNT && n < (int)sizeof list; a++)
            n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", a ? ", " : "", arch_names[a]);
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: unknown architecture '%s' (supported: %s)", m->path, arch, list);
    }
    hp->arch = (mp_arch)found;

    int rc;
    if ((rc = get_arch_u32(m, "embedding_length", &hp->n_embd, true, err))) return rc;
    if ((rc = get_arch_u32(m, "block_count", &hp->n_layer, true, err))) return rc;
    /* llama.cpp runs block_count - nextn_predict_layers layers; the NextN/MTP
     * blocks after them are skipped and never loaded */
    if ((rc = get_arch_u32(m, "nextn_predict_layers", &hp->n_layer_nextn, false, err))) return rc;
    if (hp->n_layer_nextn >= hp->n_layer)
        return mp_err_set(err, MP_E_CORRUPT, "%s: nextn_predict_layers %u leaves none of the %u blocks to run", m->path,
                          hp->n_layer_nextn, hp->n_layer);
    hp->n_layer -= hp->n_layer_nextn;
    if ((rc = get_arch_u32(m, "attention.head_count", &hp->n_head, true, err))) return rc;
    hp->n_head_kv = hp->n_head;
    if ((rc = get_arch_u32(m, "attention.head_count_kv", &hp->n_head_kv, false, err))) return rc;
    hp->n_ctx_train = 2048;
    if ((rc = get_arch_u32(m, "context_length", &hp->n_ctx_train, false, err))) return rc;
    if ((rc = get_arch_u32(m, "feed_forward_length", &hp->n_ff, false, err))) return rc;
    if ((rc = get_arch_u32(m, "expert_count", &hp->n_expert, false, err))) return rc;
    if ((rc = get_arch_u32(m, "expert_used_count", &hp->n_expert_used, false, err))) return rc;
    if ((rc = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, false, err))) return rc;
    if (hp->n_embd == 0 || hp->n_layer == 0 || hp->n_head == 0 || hp->n_head_kv == 0 ||
        hp->n_head % hp->n_head_kv != 0 || hp->n_embd > (1u << 20) || hp->n_layer > 4096 ||
        hp->n_head > 4096)
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: impossible shape: n_embd %u, n_layer %u, n_head %u, n_head_kv %u", m->path,
                          hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((rc = get_arch_u32(m, "attention.key_length", &hp->head_dim, false, err))) return rc;
    hp->head_dim_v = hp->head_dim;
    if ((rc = get_arch_u32(m, "attention.value_length", &hp->head_dim_v, false, err))) return rc;
    hp->n_rot = hp->head_dim;
    if ((rc = get_arch_u32(m, "rope.dimension_count", &hp->n_rot, false, err))) return rc;
    if (hp->head_dim == 0 || hp->head_dim > 1024 || hp->head_dim_v == 0 || hp->head_dim_v > 1024 ||
        hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: impossible head shape: head_dim %u, value %u, n_rot %u",
                          m->path, hp->head_dim, hp->head_dim_v, hp->n_rot);
    if (hp->n_expert > 0 &&
        (hp->n_expert_used == 0 || hp->n_expert_used > hp->n_expert || hp->n_expert > 4096 || hp->n_expert_used > 64))
        return mp_err_set(err, MP_E_CORRUPT, "%s: impossible expert counts: %u experts, %u used", m->path,
                          hp->n_expert, hp->n_expert_used);

    hp->rms_eps = 1e-5f;
    if ((rc = get_arch_f32(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err))) return rc;
    hp->rope_base = 10000.0f;
    if ((rc = get_arch_f32(m, "rope.freq_base", &hp->rope_base, err))) return rc;
    hp->rope_scale = 1.0f;
    hp->yarn_attn_factor = 1.0f;
    hp->n_ctx_orig = hp->n_ctx_train;
    {
        char key[128];
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        const char *st = mp_gguf_get_str(m->gguf, key);
        float factor = 0.0f;
        if ((rc = get_arch_f32(m, "rope.scaling.factor", &factor, err))) return rc;
        const bool yarn = st && !strcmp(st, "yarn") && (hp->arch == MP_ARCH_DEEPSEEK2 || hp->arch == MP_ARCH_GPTOSS);
        if (st && strcmp(st, "none") != 0 && strcmp(st, "linear") != 0 && !yarn)
            return mp_err_set(err, MP_E_UNSUPPORTED, "%s: rope scaling type '%s' is not supported", m->path, st);
        /* llama.cpp: freq_scale = 1 / factor unless the type is "none" (default "linear") */
        if ((!st || strcmp(st, "none") != 0) && factor > 0.0f) hp->rope_scale = 1.0f / factor;
        if ((rc = get_arch_u32(m, "rope.scaling.original_context_length", &hp->n_ctx_orig, false, err))) return rc;
        float log_mul = 0.0f, attn = 1.0f;
        if ((rc = get_arch_f32(m, "rope.scaling.yarn_log_multiplier", &log_mul, err))) return rc;
        if ((rc = get_arch_f32(m, "rope.scaling.attn_factor", &attn, err))) return rc;
        if (log_mul != 0.0f) log_mul /= 0.1f; /* stored as 0.1 * mscale_all_dim; the loader divides */
        float af = 1.0f;
        if (yarn) {
            /* llama.cpp's context setup (llama-context.cpp): the cos/sin
             * magnitude passed to ggml_rope_ext, pre-divided by the factor
             * ggml multiplies back in */
            hp->yarn_ext_factor = 1.0f;
            const float f = 1.0f / hp->rope_scale;
#define MSCALE(s_, m_) ((s_) <= 1.0f ? 1.0f : (0.1f * (m_) * logf(s_) + 1.0f))
            if (log_mul != 0.0f) {
                const float msc = log_mul != 1.0f ? log_mul : 1.0f; /* deepseek2's special case */
                af = MSCALE(f, msc) / MSCALE(f, log_mul);
            } else {
                af = MSCALE(f, 1.0f);
            }
#undef MSCALE
            af *= 1.0f / (1.0f + 0.1f * logf(f));
        }
        hp->yarn_attn_factor = af * attn;
        if (hp->arch == MP_ARCH_DEEPSEEK2) {
            /* deepseek2.cpp: undo the pre-division; kq_scale = mscale^2 / sqrt(mla_dk), finished below */
            const float org = hp->yarn_attn_factor * (1.0f + 0.1f * logf(1.0f / hp->rope_scale));
            hp->kq_scale = org * (1.0f + 0.1f * log_mul * logf(1.0f / hp->rope_scale));
        }
    }
    if ((rc = get_arch_f32(m, "expert_weights_scale", &hp->expert_weights_scale, err))) return rc;

    switch (hp->arch) {
    case MP_ARCH_LLAMA:
        hp->rope_kind = MP_ROPE_NORM;
        hp->qk_norm = MP_QK_NORM_NONE;
        hp->norm_topk = true;
        break;
    case MP_ARCH_QWEN3MOE:
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_HEAD;
        hp->norm_topk = true;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: qwen3moe model without '%s.expert_count'", m->path, arch);
        break;
    case MP_ARCH_OLMOE:
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_FULL;
        hp->norm_topk = false;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: olmoe model without '%s.expert_count'", m->path, arch);
        break;
    case MP_ARCH_GLM4MOE: {
        /* llama.cpp src/models/glm4-moe.cpp */
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_NONE; /* per-head norms when the file has them (bind_tensors) */
        hp->norm_topk = false;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: glm4moe model without 'glm4moe.expert_count'", m->path);
        if ((rc = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, true, err))) return rc;
        if ((rc = get_arch_u32(m, "expert_shared_count", &hp->n_shared, true, err))) return rc;
        if ((rc = get_arch_u32(m, "leading_dense_block_count", &hp->n_dense_lead, false, err))) return rc;
        if (hp->n_shared == 0)
            return mp_err_set(err, MP_E_UNSUPPORTED,
                              "%s: glm4moe with 0 shared experts is not supported (llama.cpp still adds silu(x))",
                              m->path);
        if (hp->n_dense_lead > hp->n_layer)
            return mp_err_set(err, MP_E_CORRUPT, "%s: leading_dense_block_count %u exceeds %u layers", m->path,
                              hp->n_dense_lead, hp->n_layer);
        if (hp->n_dense_lead > 0 && hp->n_ff == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: dense layers without 'glm4moe.feed_forward_length'", m->path);
        char key[128];
        snprintf(key, sizeof key, "%s.rope.dimension_sections", arch);
        if (mp_gguf_get(m->gguf, key))
            return mp_err_set(err, MP_E_UNSUPPORTED, "%s: multimodal rope ('%s') is not supported", m->path, key);
        break;
    }
    case MP_ARCH_QWEN2MOE:
        /* llama.cpp src/models/qwen2moe.cpp: softmax over all experts, the k
         * weights not renormalised and not scaled (expert_weights_scale,
         * _norm and gating_func are not read for it: see below), one shared
         * expert of expert_shared_feed_forward_length (default n_ff) */
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_NONE;
        hp->norm_topk = false;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: qwen2moe model without 'qwen2moe.expert_count'", m->path);
        if (hp->n_ff_exp == 0) { /* llama.cpp: n_ff / n_expert_used */
            if (hp->n_ff == 0 || hp->n_ff % hp->n_expert_used != 0)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: qwen2moe without 'qwen2moe.expert_feed_forward_length' needs a "
                                  "feed_forward_length that n_expert_used (%u) divides (have %u)",
                                  m->path, hp->n_expert_used, hp->n_ff);
            hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
        }
        hp->n_shared = 1;
        hp->n_ff_shexp = hp->n_ff;
        if ((rc = get_arch_u32(m, "expert_shared_feed_forward_length", &hp->n_ff_shexp, false, err))) return rc;
        if (hp->n_ff_shexp == 0)
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: qwen2moe shared expert without a width ('qwen2moe.expert_shared_feed_forward_length' "
                              "or 'qwen2moe.feed_forward_length')",
                              m->path);
        if (hp->head_dim != hp->head_dim_v || hp->n_rot != hp->head_dim) /* qwen2moe.cpp asserts both */
            return mp_err_set(err, MP_E_CORRUPT, "%s: qwen2moe needs key = value head size = rotated dims (have %u, %u, %u)",
                              m->path, hp->head_dim, hp->head_dim_v, hp->n_rot);
        break;
    case MP_ARCH_GPTOSS: {
        /* llama.cpp src/models/openai-moe.cpp */
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_NONE;
        hp->norm_topk = false;
        hp->sinks = hp->swiglu_oai = true;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: gpt-oss model without 'gpt-oss.expert_count'", m->path);
        if ((rc = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, true, err))) return rc;
        if ((rc = get_arch_u32(m, "attention.sliding_window", &hp->n_swa, true, err))) return rc;
        hp->swa_pattern = 2;
        if ((rc = get_arch_u32(m, "attention.sliding_window_pattern", &hp->swa_pattern, false, err))) return rc;
        hp->rope_base_swa = hp->rope_base;
        if ((rc = get_arch_f32(m, "rope.freq_base_swa", &hp->rope_base_swa, err))) return rc;
        if (hp->n_swa == 0 || hp->n_swa > hp->n_ctx_train)
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: key 'gpt-oss.attention.sliding_window' = %u: the window must be 1..%u (the "
                              "context length)", m->path, hp->n_swa, hp->n_ctx_train);
        if (hp->swa_pattern < 2 || hp->swa_pattern > hp->n_layer + 1)
            /* llama.cpp aborts at context creation when no layer is sliding */
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: key 'gpt-oss.attention.sliding_window_pattern' = %u leaves no sliding-window layer "
                              "among %u", m->path, hp->swa_pattern, hp->n_layer);
        if (hp->n_rot != hp->head_dim)
            return mp_err_set(err, MP_E_CORRUPT, "%s: gpt-oss needs rope.dimension_count (%u) = key_length (%u)",
                              m->path, hp->n_rot, hp->head_dim);
        break;
    }
    case MP_ARCH_MINIMAX_M2:
        /* llama.cpp src/models/minimax-m2.cpp: q/k RMS norms over the whole
         * projected vectors (n_head * head_dim, n_head_kv * head_dim), NEOX
         * rope over n_rot of head_dim (64 of 128 in MiniMax-M2), routing by
         * the file's gating function with exp_probs_b (required), weights
         * always renormalised, expert_weights_scale never read. The experts
         * are sized by feed_forward_length (its load_arch_tensors' n_ff),
         * expert_feed_forward_length is required but only read. */
        hp->rope_kind = MP_ROPE_NEOX;
        hp->qk_norm = MP_QK_NORM_FULL;
        if (hp->n_expert == 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: minimax-m2 model without 'minimax-m2.expert_count'", m->path);
        if ((rc = get_arch_u32(m, "expert_feed_forward_length", &hp->n_ff_exp, true, err))) return rc;
        if (hp->n_ff == 0)
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: minimax-m2 needs 'minimax-m2.feed_forward_length' (llama.cpp sizes its experts by it)",
                              m->path);
        hp->n_ff_exp = hp->n_ff;
        if (hp->head_dim != hp->head_dim_v) /* minimax-m2.cpp asserts it */
            return mp_err_set(err, MP_E_CORRUPT, "%s: minimax-m2 needs key = value head size (have %u, %u)", m->path,
                              hp->head_dim, hp->head_dim_v);
        break;
    case MP_ARCH_QWEN3NEXT:
    case MP_ARCH_QWEN35MOE:
        if ((rc = load_qwen3next(m, err))) return rc;
        break;
    case MP_ARCH_DEEPSEEK2: {
        if ((rc = load_deepseek2(m, err))) return rc;
        const float mscale = hp->kq_scale;
        hp->kq_scale = 1.0f * mscale * mscale / sqrtf((float)hp->mla_dk);
        break;
    }
    default:
        break;
    }
    {
        char key[128];
        bool b;
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        rc = mp_gguf_get_bool(m->gguf, key, &b, err);
        if (rc == MP_OK) hp->norm_topk = b;
        else if (rc != MP_E_NOTFOUND) return rc;
        snprintf(key, sizeof key, "%s.expert_gating_func", arch);
        uint32_t gf;
        rc = mp_gguf_get_u32(m->gguf, key, &gf, err);
        if (rc != MP_OK && rc != MP_E_NOTFOUND) return rc;
        if (hp->arch == MP_ARCH_GLM4MOE) hp->gating = MP_GATING_SIGMOID; /* llama.cpp's default for it */
        if (hp->arch == MP_ARCH_MINIMAX_M2) {
            /* no default: llama.cpp aborts on a file without the key */
            if (rc == MP_E_NOTFOUND)
                return mp_err_reset(err, MP_E_CORRUPT, "%s: required key '%s' is missing (minimax-m2 has no default)",
                                    m->path, key);
            if (gf != MP_GATING_SOFTMAX && gf != MP_GATING_SIGMOID)
                return mp_err_set(err, MP_E_UNSUPPORTED,
                                  "%s: key '%s' = %u: unknown expert gating function (supported: 1 softmax, 2 sigmoid)",
                                  m->path, key, gf);
            hp->gating = (mp_gating)gf;
            hp->norm_topk = true;            /* hard-coded in minimax-m2.cpp, the key not read */
            hp->expert_weights_scale = 0.0f; /* not loaded for it: none */
        } else if (hp->arch == MP_ARCH_QWEN2MOE || hp->arch == MP_ARCH_GPTOSS) {
            /* hard-coded, these keys never read: qwen2moe.cpp softmax over all
             * experts, openai-moe.cpp softmax over the k picks; neither
             * renormalises nor scales. A file that has the keys runs as
             * llama.cpp runs it. */
            hp->gating = hp->arch == MP_ARCH_GPTOSS ? MP_GATING_SOFTMAX_WEIGHT : MP_GATING_SOFTMAX;
            hp->norm_topk = false;
            hp->expert_weights_scale = 0.0f;
        } else if (hp->arch != MP_ARCH_DEEPSEEK2 && hp->arch != MP_ARCH_GLM4MOE) {
            hp->gating = MP_GATING_SOFTMAX;
            if (rc == MP_OK && gf != 1 /* softmax */)
                return mp_err_set(err, MP_E_UNSUPPORTED,
                                  "%s: expert gating function %u is not supported for %s (softmax only)", m->path, gf,
                                  arch);
        } else if (rc == MP_OK && gf != 0) {
            if (gf != MP_GATING_SOFTMAX && gf != MP_GATING_SIGMOID)
                return mp_err_set(err, MP_E_UNSUPPORTED,
                                  "%s: key '%s' = %u: unknown expert gating function (supported: 1 softmax, 2 sigmoid)",
                                  m->path, key, gf);
            hp->gating = (mp_gating)gf;
        }
    }
    mp_err_clear(err);
    return MP_OK;
}

/* Binds tensor `name`; checks its type and that ne matches want[0..nd) (and
 * is 1 beyond). */
static int bind(mp_model *m, mp_tensor *t, const char *name, bool required, bool matmul, int nd,
                const int64_t *want, mp_err *err)
{
    memset(t, 0, sizeof *t);
    const mp_gguf_tensor *info = mp_gguf_find_tensor(m->gguf, name);
    bool extra = false;
    for (size_t i = 0; !info && i < m->n_extra; i++)
        if (!strcmp(m->extra[i].name, name)) info = &m->extra[i], extra = true;
    if (!info) {
        if (required) return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' is missing", m->path, name);
        return MP_OK;
    }
    for (int d = 0; d < 4; d++) {
        int64_t w = d < nd ? want[d] : 1;
        int64_t have = d < (int)info->n_dims ? info->ne[d] : 1;
        if (have != w) {
            char ws[96], hs[96];
            int wl = 0, hl = 0;
            for (int e = 0; e < nd; e++) wl += snprintf(ws + wl, sizeof ws - wl, "%s%" PRId64, e ? ", " : "", want[e]);
            for (int e = 0; e < (int)info->n_dims; e++)
                hl += snprintf(hs + hl, sizeof hs - hl, "%s%" PRId64, e ? ", " : "", info->ne[e]);
            return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' has shape {%s}, expected {%s}", m->path, name,
                              hs, ws);
        }
    }
    if (matmul ? !mp_type_supported(info->type) : info->type != MP_TYPE_F32)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: tensor '%s' has type %s, which is not supported here%s",
                          m->path, name, mp_type_name(info->type),
                          matmul ? " (supported: f32, f16, bf16, q8_0, q4_0, q2_K, q3_K, q4_K, q5_K, q6_K, q5_0, q5_1, iq4_nl, iq4_xs, mxfp4)" : " (norms must be f32)");
    t->info = info;
    t->data = extra ? NULL : mp_gguf_tensor_data(m->gguf, info);
    t->type = info->type;
    for (int d = 0; d < 4; d++) t->ne[d] = d < (int)info->n_dims ? info->ne[d] : 1;
    t->row_size = mp_row_size(info->type, info->ne[0]);
    t->expert_stride = t->row_size * (size_t)t->ne[1];
    return MP_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIMS(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define BIND(t, req, mm, name, ...)                                                             \
    do {                                                                                        \
        int rc_ = bind(m, (t), (name), (req), (mm), NDIMS(__VA_ARGS__), SHAPE(__VA_ARGS__), err); \
        if (rc_) return rc_;                                                                    \
    } while (0)

/* deepseek2's attention tensors (deepseek2.cpp load_arch_tensors). */
static int bind_mla(mp_model *m, mp_layer *l, uint32_t il, mp_err *err)
{
    const mp_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, H = hp->n_head, R = hp->n_rot, L = hp->kv_lora;
    const int64_t nope = hp->mla_dk - hp->n_rot;
    char n[96];
#define TN(suffix) (snprintf(n, sizeof n, "blk.%u." suffix ".weight", il), n)
    if (hp->q_lora > 0) {
        BIND(&l->wq_a, true, true, TN("attn_q_a"), E, hp->q_lora);
        BIND(&l->q_a_norm, true, false, TN("attn_q_a_norm"), hp->q_lora);
        BIND(&l->wq_b, true, true, TN("attn_q_b"), hp->q_lora, H * hp->mla_dk);
    } else {
        BIND(&l->wq, true, true, TN("attn_q"), E, H * hp->mla_dk);
    }
    BIND(&l->wkv_a_mqa, true, true, TN("attn_kv_a_mqa"), E, L + R);
    BIND(&l->kv_a_norm, true, false, TN("attn_kv_a_norm"), L);
    if (hp->mla_absorbed) {
        BIND(&l->wk_b, true, true, TN("attn_k_b"), nope, L, H);
        BIND(&l->wv_b, true, true, TN("attn_v_b"), L, hp->mla_dv, H);
    } else {
        BIND(&l->wkv_b, true, true, TN("attn_kv_b"), L, H * (nope + hp->mla_dv));
    }
    BIND(&l->wo, true, true, TN("attn_output"), H * hp->mla_dv, E);
#undef TN
    return MP_OK;
}

void mp_layer_bind_qkv_views(mp_layer *l)
{
    if (!l->wqkv.info) return;
    mp_tensor *w[3] = {&l->wq, &l->wk, &l->wv}, *b[3] = {&l->bq, &l->bk, &l->bv};
    for (int i = 0; i < 3; i++) {
        w[i]->data = l->wqkv.data ? (const char *)l->wqkv.data + w[i]->view_off : NULL;
        if (l->bqkv.info) b[i]->data = l->bqkv.data ? (const char *)l->bqkv.data + b[i]->view_off : NULL;
    }
}

/* A fused attn_qkv {n_embd, Dq + Dk + Dv} (llama.cpp create_tensor_qkv /
 * build_qkv): one matmul whose rows [0, Dq) are q, then k, then v, with
 * either a fused attn_qkv.bias or the three separate biases (used only when
 * all three are there). Per row the same dot as three tensors, so wq, wk, wv
 * become row views and the forward pass is unchanged. */
static int bind_fused_qkv(mp_model *m, mp_layer *l, uint32_t il, int64_t Dq, int64_t Dk, int64_t Dv, mp_err *err)
{
    const int64_t E = m->hp.n_embd, rows[3] = {Dq, Dk, Dv};
    char n[96];
    snprintf(n, sizeof n, "blk.%u.attn_qkv.weight", il);
    BIND(&l->wqkv, true, true, n, E, Dq + Dk + Dv);
    snprintf(n, sizeof n, "blk.%u.attn_qkv.bias", il);
    BIND(&l->bqkv, false, false, n, Dq + Dk + Dv);
    mp_tensor *w[3] = {&l->wq, &l->wk, &l->wv}, *b[3] = {&l->bq, &l->bk, &l->bv};
    static const char *const part[3] = {"q", "k", "v"};
    int n_sep = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "blk.%u.attn_%s.weight", il, part[i]);
        if (mp_gguf_find_tensor(m->gguf, n))
            return mp_err_set(err, MP_E_CORRUPT, "%s: layer %u has both a fused 'blk.%u.attn_qkv.weight' and '%s'",
                              m->path, il, il, n);
        if (!l->bqkv.info) {
            snprintf(n, sizeof n, "blk.%u.attn_%s.bias", il, part[i]);
            BIND(b[i], false, false, n, rows[i]);
            n_sep += b[i]->info != NULL;
        }
    }
    if (n_sep != 0 && n_sep != 3)
        /* llama.cpp would silently drop them (it adds separate biases to a
         * fused projection only when all three exist) */
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: layer %u: fused 'blk.%u.attn_qkv.weight' with %d of the 3 separate q/k/v biases",
                          m->path, il, il, n_sep);
    size_t row0 = 0;
    for (int i = 0; i < 3; i++) {
        *w[i] = l->wqkv;
        w[i]->ne[1] = rows[i];
        w[i]->view = true;
        w[i]->view_off = row0 * l->wqkv.row_size;
        w[i]->expert_stride = w[i]->row_size * (size_t)rows[i];
        if (l->bqkv.info) {
            *b[i] = l->bqkv;
            b[i]->ne[0] = rows[i];
            b[i]->row_size = (size_t)rows[i] * sizeof(float);
            b[i]->view = true;
            b[i]->view_off = row0 * sizeof(float);
        }
        row0 += (size_t)rows[i];
    }
    mp_layer_bind_qkv_views(l);
    return MP_OK;
}

/* A Gated DeltaNet layer's tensors (qwen3next.cpp / qwen35moe.cpp
 * load_arch_tensors): attn_qkv + attn_gate, or qwen3next's legacy ssm_in
 * (q/k/v/z in one), ssm_ba (qwen3next) or ssm_beta + ssm_alpha (qwen35moe),
 * the conv taps {d_conv, conv_dim} and the 1-D f32 gate/norm vectors. */
static int bind_gdn(mp_model *m, mp_layer *l, uint32_t il, mp_err *err)
{
    const mp_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, S = hp->ssm_d_state, Hv = hp->ssm_n_v;
    const int64_t key_dim = S * hp->ssm_n_k, value_dim = S * Hv, conv_dim = 2 * key_dim + value_dim;
    char n[96];
#define TN(suffix) (snprintf(n, sizeof n, "blk.%u." suffix, il), n)
    const bool legacy = !mp_gguf_find_tensor(m->gguf, TN("attn_qkv.weight")) &&
                        mp_gguf_find_tensor(m->gguf, TN("ssm_in.weight"));
    if (legacy && hp->arch != MP_ARCH_QWEN3NEXT)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: tensor '%s' (the legacy fused q/k/v/z projection) is "
                          "qwen3next's, not %s's", m->path, n, hp->arch_name);
    const mp_gguf_tensor *cv = mp_gguf_find_tensor(m->gguf, TN("ssm_conv1d.weight"));
    if (cv && cv->n_dims >= 1 && cv->ne[0] != (int64_t)hp->ssm_d_conv)
        return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' has a conv kernel of %" PRId64 " taps, but "
                          "'%s.ssm.conv_kernel' is %u (layer %u)", m->path, n, cv->ne[0], hp->arch_name,
                          hp->ssm_d_conv, il);
    if (legacy) {
        BIND(&l->ssm_in, true, true, TN("ssm_in.weight"), E, conv_dim + value_dim);
        m->hp.ssm_in_legacy = true;
    } else {
        BIND(&l->ssm_qkv, true, true, TN("attn_qkv.weight"), E, conv_dim);
        BIND(&l->ssm_z, true, true, TN("attn_gate.weight"), E, value_dim);
    }
    if (hp->arch == MP_ARCH_QWEN35MOE) {
        BIND(&l->ssm_beta, true, true, TN("ssm_beta.weight"), E, Hv);
        BIND(&l->ssm_alpha, true, true, TN("ssm_alpha.weight"), E, Hv);
    } else {
        BIND(&l->ssm_ba, true, true, TN("ssm_ba.weight"), E, 2 * Hv);
    }
    BIND(&l->ssm_conv1d, true, false, TN("ssm_conv1d.weight"), (int64_t)hp->ssm_d_conv, conv_dim);
    BIND(&l->ssm_dt, true, false, TN("ssm_dt.bias"), Hv);
    BIND(&l->ssm_a, true, false, TN("ssm_a"), Hv);
    BIND(&l->ssm_norm, true, false, TN("ssm_norm.weight"), S);
    BIND(&l->ssm_out, true, true, TN("ssm_out.weight"), value_dim, E);
#undef TN
    return MP_OK;
}

static int bind_tensors(mp_model *m, mp_err *err)
{
    mp_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const mp_gguf_tensor *te = mp_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) return mp_err_set(err, MP_E_CORRUPT, "%s: tensor 'token_embd.weight' is missing", m->path);
    if (te->n_dims != 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24))
        return mp_err_set(err, MP_E_CORRUPT, "%s: tensor 'token_embd.weight' has an impossible shape", m->path);
    hp->n_vocab = (uint32_t)te->ne[1];
    uint32_t nv = 0;
    if (get_arch_u32(m, "vocab_size", &nv, false, err)) return err ? err->status : MP_E_CORRUPT;
    if (nv && nv != hp->n_vocab)
        return mp_err_set(err, MP_E_CORRUPT, "%s: %s.vocab_size is %u but token_embd.weight has %u rows", m->path,
                          hp->arch_name, nv, hp->n_vocab);
    const int64_t V = hp->n_vocab;
    if (mp_gguf_find_tensor(m->gguf, "rope_freqs.weight"))
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: tensor 'rope_freqs.weight' (rope frequency factors) is not supported",
                          m->path);

    BIND(&m->tok_embd, true, true, "token_embd.weight", E, V);
    BIND(&m->output_norm, true, false, "output_norm.weight", E);
    BIND(&m->output, false, true, "output.weight", E, V);
    if (!m->output.info) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    if (!m->layers) m->layers = calloc(hp->n_layer, sizeof *m->layers); /* qwen3next: allocated with the pattern */
    if (!m->layers) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", m->path);

    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t Do = (int64_t)hp->n_head * hp->head_dim_v;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        mp_layer *l = &m->layers[il];
        char n[96];
#define TN(suffix) (snprintf(n, sizeof n, "blk.%u." suffix ".weight", il), n)
        l->cache_idx = l->recurrent ? hp->n_layer_recr++ : hp->n_layer_kv++;
        if (hp->attn_gate) { /* a layer of the other kind than the pattern says */
            const bool has_attn = mp_gguf_find_tensor(m->gguf, TN("attn_q")) != NULL;
            const bool has_recr = mp_gguf_find_tensor(m->gguf, TN("ssm_conv1d")) != NULL;
            if (has_attn) TN("attn_q"); /* name the tensor found */
            if (has_recr != has_attn && has_recr != l->recurrent)
                return mp_err_set(err, MP_E_CORRUPT,
                                  "%s: layer %u holds %s tensors ('%s'), but the layer pattern ('%s.attention."
                                  "recurrent_layers' or every '%s.full_attention_interval'-th layer full "
                                  "attention) makes it a %s layer",
                                  m->path, il, has_recr ? "Gated DeltaNet" : "attention", n, hp->arch_name,
                                  hp->arch_name, l->recurrent ? "Gated DeltaNet" : "full-attention");
        }
        const bool fused_qkv = !l->recurrent && mp_gguf_find_tensor(m->gguf, TN("attn_qkv")) != NULL;
        if (fused_qkv && (hp->mla || hp->attn_gate))
            return mp_err_set(err, MP_E_UNSUPPORTED, "%s: fused tensor '%s' is not supported for %s", m->path, n,
                              hp->arch_name);
        BIND(&l->attn_norm, true, false, TN("attn_norm"), E);
        if (l->recurrent) {
            int rc = bind_gdn(m, l, il, err);
            if (rc) return rc;
        } else if (hp->mla) {
            int rc = bind_mla(m, l, il, err);
            if (rc) return rc;
        } else if (fused_qkv) {
            int rc = bind_fused_qkv(m, l, il, Dq, Dk, Dv, err);
            if (rc) return rc;
            BIND(&l->wo, true, true, TN("attn_output"), Do, E);
        } else {
            BIND(&l->wq, true, true, TN("attn_q"), E, hp->attn_gate ? 2 * Dq : Dq); /* [query | gate] per head */
            BIND(&l->wk, true, true, TN("attn_k"), E, Dk);
            BIND(&l->wv, true, true, TN("attn_v"), E, Dv);
            BIND(&l->wo, true, true, TN("attn_output"), Do, E);
        }
        if (!hp->mla) {
            if (!fused_qkv) {
                /* optional, each added when present (llama.cpp create_tensor_qkv,
                 * for every architecture here but deepseek2) */
                snprintf(n, sizeof n, "blk.%u.attn_q.bias", il);
                BIND(&l->bq, false, false, n, Dq);
                snprintf(n, sizeof n, "blk.%u.attn_k.bias", il);
                BIND(&l->bk, false, false, n, Dk);
                snprintf(n, sizeof n, "blk.%u.attn_v.bias", il);
                BIND(&l->bv, false, false, n, Dv);
            }
            if (il == 0 && hp->arch == MP_ARCH_GLM4MOE && mp_gguf_find_tensor(m->gguf, TN("attn_q_norm")))
                hp->qk_norm = MP_QK_NORM_HEAD;
            if (hp->arch == MP_ARCH_GPTOSS) {
                snprintf(n, sizeof n, "blk.%u.attn_output.bias", il);
                BIND(&l->bo, true, false, n, E);
                BIND(&l->attn_sinks, true, false, TN("attn_sinks"), (int64_t)hp->n_head);
            }
        }
        if (l->recurrent) {
        } else if (hp->qk_norm == MP_QK_NORM_HEAD) {
            BIND(&l->q_norm, true, false, TN("attn_q_norm"), hp->head_dim);
            BIND(&l->k_norm, true, false, TN("attn_k_norm"), hp->head_dim);
        } else if (hp->qk_norm == MP_QK_NORM_FULL) {
            BIND(&l->q_norm, true, false, TN("attn_q_norm"), Dq);
            BIND(&l->k_norm, true, false, TN("attn_k_norm"), Dk);
        }
        if (hp->arch == MP_ARCH_GLM4MOE || hp->arch == MP_ARCH_GPTOSS || hp->attn_gate)
            BIND(&l->ffn_norm, true, false, TN("post_attention_norm"), E);
        else BIND(&l->ffn_norm, true, false, TN("ffn_norm"), E);
        if (hp->n_expert > 0 && il >= hp->n_dense_lead) {
            const int64_t X = hp->n_expert;
            BIND(&l->ffn_gate_inp, true, true, TN("ffn_gate_inp"), E, X);
            const mp_gguf_tensor *g = mp_gguf_find_tensor(m->gguf, TN("ffn_gate_exps"));
            for (size_t i = 0; !g && i < m->n_extra; i++)
                if (!strcmp(m->extra[i].name, n)) g = &m->extra[i];
            const mp_gguf_tensor *gu = g ? NULL : mp_gguf_find_tensor(m->gguf, TN("ffn_gate_up_exps"));
            if (!g && !gu) {
                TN("ffn_gate_exps");
                return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' is missing", m->path, n);
            }
            if (!g) g = gu;
            if (g->n_dims != 3)
                return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' has %u dims, expected 3", m->path, g->name,
                                  g->n_dims);
            int64_t F = gu ? g->ne[1] / 2 : g->ne[1];
            if (hp->n_ff_exp == 0) hp->n_ff_exp = (uint32_t)F;
            F = hp->n_ff_exp;
            if (gu) {
                /* one mul_mat_id in llama.cpp, then the gate and up halves: the
                 * same vec_dot per row as two tensors; views keep the rest of
                 * the engine (and the expert byte ranges) unchanged */
                BIND(&l->ffn_gate_up_exps, true, true, TN("ffn_gate_up_exps"), E, 2 * F, X);
                l->ffn_gate_exps = l->ffn_up_exps = l->ffn_gate_up_exps;
                l->ffn_gate_exps.ne[1] = l->ffn_up_exps.ne[1] = F;
                l->ffn_up_exps.view_off = (size_t)F * l->ffn_gate_up_exps.row_size;
                if (l->ffn_up_exps.data) l->ffn_up_exps.data = (const char *)l->ffn_up_exps.data + l->ffn_up_exps.view_off;
            } else {
                BIND(&l->ffn_gate_exps, true, true, TN("ffn_gate_exps"), E, F, X);
                BIND(&l->ffn_up_exps, true, true, TN("ffn_up_exps"), E, F, X);
            }
            BIND(&l->ffn_down_exps, true, true, TN("ffn_down_exps"), F, E, X);
            if (hp->n_shared > 0) {
                const bool gated_shexp = hp->arch == MP_ARCH_QWEN2MOE || hp->attn_gate; /* own width, scalar gate */
                if (!gated_shexp) hp->n_ff_shexp = (uint32_t)(F * hp->n_shared);
                const int64_t S = hp->n_ff_shexp;
                BIND(&l->ffn_gate_shexp, true, true, TN("ffn_gate_shexp"), E, S);
                BIND(&l->ffn_up_shexp, true, true, TN("ffn_up_shexp"), E, S);
                BIND(&l->ffn_down_shexp, true, true, TN("ffn_down_shexp"), S, E);
                if (gated_shexp) /* a 1-D f32 gate, never quantised (converter, llama-quantize) */
                    BIND(&l->ffn_gate_inp_shexp, true, false, TN("ffn_gate_inp_shexp"), E);
            } else if (mp_gguf_find_tensor(m->gguf, TN("ffn_gate_shexp"))) {
                return mp_err_set(err, MP_E_UNSUPPORTED, "%s: shared experts ('%s') are not supported for %s", m->path,
                                  n, hp->arch_name);
            }
            snprintf(n, sizeof n, "blk.%u.exp_probs_b.bias", il);
            /* glm4moe and minimax-m2 require it */
            BIND(&l->exp_probs_b, hp->arch == MP_ARCH_GLM4MOE || hp->arch == MP_ARCH_MINIMAX_M2, false, n, X);
            if (hp->arch == MP_ARCH_GPTOSS) {
                if (gu)
                    return mp_err_set(err, MP_E_UNSUPPORTED, "%s: fused '%s' is not supported for gpt-oss", m->path,
                                      gu->name);
#define TB(suffix) (snprintf(n, sizeof n, "blk.%u." suffix ".bias", il), n)
                BIND(&l->ffn_gate_inp_b, true, false, TB("ffn_gate_inp"), X);
                BIND(&l->ffn_gate_exps_b, true, false, TB("ffn_gate_exps"), F, X);
                BIND(&l->ffn_up_exps_b, true, false, TB("ffn_up_exps"), F, X);
                BIND(&l->ffn_down_exps_b, true, false, TB("ffn_down_exps"), E, X);
#undef TB
            }
        } else {
            if (hp->n_ff == 0)
                return mp_err_set(err, MP_E_CORRUPT, "%s: key '%s.feed_forward_length' is missing", m->path,
                                  hp->arch_name);
            const int64_t F = hp->n_ff;
            BIND(&l->ffn_gate, true, true, TN("ffn_gate"), E, F);
            BIND(&l->ffn_up, true, true, TN("ffn_up"), E, F);
            BIND(&l->ffn_down, true, true, TN("ffn_down"), F, E);
        }
#undef TN
    }
    return MP_OK;
}

int mp_model_bind(mp_model **out, mp_gguf *g, bool own_g, const mp_gguf_tensor *extra, size_t n_extra, mp_err *err)
{
    *out = NULL;
    mp_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (own_g) mp_gguf_free(g);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    m->gguf = g;
    m->owns_gguf = own_g;
    m->extra = extra;
    m->n_extra = n_extra;
    m->path = strdup(mp_gguf_path(g) ? mp_gguf_path(g) : "(memory)");
    int rc = m->path ? MP_OK : mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (!rc) rc = load_hparams(m, err);
    if (!rc) rc = bind_tensors(m, err);
    if (rc) {
        mp_model_free(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}

int mp_model_from_gguf(mp_model **out, mp_gguf *g, mp_err *err) { return mp_model_bind(out, g, true, NULL, 0, err); }

int mp_model_load_ex(mp_model **out, const char *path, const mp_model_load_opts *o, mp_err *err)
{
    *out = NULL;
    mp_gguf *g = NULL;
    mp_gguf_open_opts go = {.no_mmap = o && o->no_mmap};
    int rc = mp_gguf_open(&g, path, &go, err);
    if (rc) return rc;
    return mp_model_from_gguf(out, g, err);
}

int mp_model_load(mp_model **out, const char *path, mp_err *err) { return mp_model_load_ex(out, path, NULL, err); }

void mp_model_free(mp_model *m)
{
    if (!m) return;
    free(m->layers);
    if (m->owns_gguf) mp_gguf_free(m->gguf);
    free(m->path);
    free(m);
}

bool mp_model_tensor_skipped(const mp_model *m, const char *name)
{
    return !strncmp(name, "blk.", 4) && strtoul(name + 4, NULL, 10) >= m->hp.n_layer;
}

static uint64_t tensor_bytes(const mp_tensor *t) { return t->info ? t->info->size : 0; }
static uint64_t tensor_params(const mp_tensor *t) { return t->info ? (uint64_t)mp_gguf_tensor_nelements(t->info) : 0; }

void mp_model_sizes_get(const mp_model *m, mp_model_sizes *s)
{
    memset(s, 0, sizeof *s);
    uint64_t all_params = 0;
    for (uint64_t i = 0; i < mp_gguf_n_tensors(m->gguf); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(m->gguf, i);
        if (mp_model_tensor_skipped(m, t->name)) continue; /* never loaded: not counted */
        s->total_bytes += t->size;
        all_params += (uint64_t)mp_gguf_tensor_nelements(t);
    }
    for (size_t i = 0; i < m->n_extra; i++) { /* a pack's expert tensors */
        s->total_bytes += m->extra[i].size;
        all_params += (uint64_t)mp_gguf_tensor_nelements(&m->extra[i]);
    }
    uint64_t active_expert_params = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const mp_layer *l = &m->layers[il];
        if (!mp_layer_is_moe(l)) continue;
        const bool fused = l->ffn_gate_up_exps.info != NULL; /* gate and up are views of one tensor */
        uint64_t b = tensor_bytes(&l->ffn_gate_exps) + (fused ? 0 : tensor_bytes(&l->ffn_up_exps)) +
                     tensor_bytes(&l->ffn_down_exps);
        uint64_t p = tensor_params(&l->ffn_gate_exps) + (fused ? 0 : tensor_params(&l->ffn_up_exps)) +
                     tensor_params(&l->ffn_down_exps);
        s->expert_bytes += b;
        s->expert_params += p;
        uint64_t one = mp_tensor_expert_bytes(&l->ffn_gate_exps) + mp_tensor_expert_bytes(&l->ffn_up_exps) +
                       mp_tensor_expert_bytes(&l->ffn_down_exps);
        if (one > s->one_expert_bytes) s->one_expert_bytes = one;
        active_expert_params += p / m->hp.n_expert * m->hp.n_expert_used;
    }
    s->resident_bytes = s->total_bytes - s->expert_bytes;
    s->total_params = all_params;
    /* Per token only one embedding row is read; count the table as resident
     * memory but not as active compute. */
    uint64_t embd_params = tensor_params(&m->tok_embd);
    s->active_params = all_params - s->expert_params + active_expert_params - (m->tied_output ? 0 : embd_params);
}
