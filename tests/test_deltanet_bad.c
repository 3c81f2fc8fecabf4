/* Bad qwen3next / qwen35moe files (issue 13): a good mp-gen model (layers
 * 0-2 Gated DeltaNet, layer 3 full attention) rewritten with one fault each
 * (a recurrent layer missing a tensor, a conv kernel that does not match
 * ssm.conv_kernel, a layer pattern that does not fit block_count or the
 * tensors, an impossible DeltaNet shape) must be refused by mp_model_load
 * with one line naming the file and the key or tensor at fault, nothing
 * leaked (the ASan build checks). The unmodified copies, and one with an
 * attention.recurrent_layers array of the right length, load with the
 * architectures' semantics. Needs mp-gen from the build tree. */
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "helpers/model_fault.h"
#include "moepager/moepager.h"
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_semantics(const mp_model *m, bool q35, const char *what)
{
    const mp_hparams *hp = &m->hp;
    CHECKF(hp->arch == (q35 ? MP_ARCH_QWEN35MOE : MP_ARCH_QWEN3NEXT) && hp->gating == MP_GATING_SOFTMAX &&
               hp->norm_topk && hp->expert_weights_scale == 0.0f && hp->rope_kind == MP_ROPE_NEOX && hp->attn_gate &&
               hp->ssm_kv_tiled == q35 && hp->qk_norm == MP_QK_NORM_HEAD,
           "%s: semantics", what);
    CHECKF(hp->n_layer_recr == 3 && hp->n_layer_kv == 1 && hp->ssm_d_conv == 4 && hp->ssm_d_state == 32 &&
               hp->ssm_n_k == 2 && hp->ssm_n_v == 4 && hp->n_shared == 1 && hp->n_ff_shexp == 96,
           "%s: shape", what);
    for (int il = 0; il < 4; il++) {
        const mp_layer *l = &m->layers[il];
        CHECKF(l->recurrent == (il != 3) && l->cache_idx == (uint32_t)(il == 3 ? 0 : il), "%s: layer %d", what, il);
        if (l->recurrent)
            CHECK(l->ssm_qkv.info && l->ssm_z.info && l->ssm_conv1d.ne[0] == 4 && l->ssm_conv1d.ne[1] == 256 &&
                  (q35 ? l->ssm_beta.info && l->ssm_alpha.info : l->ssm_ba.info != NULL) && !l->wq.info);
        else
            CHECK(l->wq.ne[1] == 2 * 2 * 32 && l->q_norm.info && l->k_norm.info && !l->ssm_qkv.info);
        CHECK(l->ffn_gate_inp_shexp.info && l->ffn_norm.info);
    }
    /* KV for one attention layer of 2 kv heads x 32 (k + v, f16) and the state of 3
     * layers: conv 3 x 256 + delta 4 x 32 x 32 floats */
    CHECKF(mp_ctx_state_bytes(m) == 3u * (3 * 256 + 4 * 32 * 32) * 4, "state %llu",
           (unsigned long long)mp_ctx_state_bytes(m));
    CHECK(mp_ctx_kv_bytes(m, 100, 32) == 1u * 100 * 2 * 64 * 2 + mp_ctx_state_bytes(m));
}

typedef struct fill_ctx {
    const mp_gguf *src;
} fill_ctx;

static int copy_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)err;
    const fill_ctx *c = ctx;
    memcpy(buf, mp_gguf_tensor_data(c->src, mp_gguf_tensor_at(c->src, idx)), size);
    return MP_OK;
}

/* src with '<arch>.attention.recurrent_layers' = n bool flags (every 4th
 * false, as the file's layers), written to path. */
static int write_with_pattern(const mp_gguf *src, uint32_t n, const char *path, mp_err *err)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    if (!w) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(src); i++)
        rc |= mp_gguf_writer_set_value(w, mp_gguf_kv_at(src, i)->key.ptr, &mp_gguf_kv_at(src, i)->value);
    uint8_t flags[16];
    for (uint32_t i = 0; i < n && i < 16; i++) flags[i] = (i + 1) % 4 != 0;
    rc |= mp_gguf_writer_set_arr(w, "qwen3next.attention.recurrent_layers", MP_GGUF_BOOL, n, flags);
    for (uint64_t i = 0; i < mp_gguf_n_tensors(src); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(src, i);
        rc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL);
    }
    fill_ctx ctx = {src};
    if (rc) rc = mp_err_set(err, MP_E_INVAL, "%s: the variant was refused", path);
    else rc = mp_gguf_writer_write(w, path, copy_fill, &ctx, err);
    mp_gguf_writer_free(w);
    return rc;
}

/* The recurrent state through the public API: truncating to an earlier
 * position is refused in one line (n_past kept), truncating to 0 and
 * evaluating again gives the same logits bit for bit; inspect's figures. */
static void check_engine(const char *path)
{
    mp_engine *e = NULL;
    mp_err err = {0};
    mp_params p = mp_params_default();
    p.n_ctx = 64;
    p.n_threads = 2;
    if (mp_engine_open(&e, path, &p, &err) != MP_OK) {
        CHECKF(false, "engine: %s", err.msg);
        return;
    }
    const int V = 300, n = 12;
    int32_t ids[12];
    for (int i = 0; i < n; i++) ids[i] = 1 + (i * 37) % 290;
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    CHECK(mp_engine_eval(e, ids, n, a, V, false, &err) == MP_OK && mp_engine_n_past(e) == n);
    err = (mp_err){0};
    CHECKF(mp_engine_truncate(e, 5, &err) == MP_E_UNSUPPORTED && strstr(err.msg, "recurrent") &&
               !strchr(err.msg, '\n') && mp_engine_n_past(e) == n,
           "truncate to 5: %s", err.msg);
    CHECK(mp_engine_truncate(e, n, &err) == MP_OK && mp_engine_n_past(e) == n);
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK && mp_engine_n_past(e) == 0);
    CHECK(mp_engine_eval(e, ids, n, b, V, false, &err) == MP_OK);
    CHECK(memcmp(a, b, sizeof(float) * V) == 0); /* the states were cleared: the same logits */
    CHECK(mp_engine_eval(e, ids, 1, b, V, false, &err) == MP_OK);
    CHECK(memcmp(a, b, sizeof(float) * V) != 0); /* and they do carry on */
    mp_model_info mi;
    CHECK(mp_model_inspect(path, &p, &mi, &err) == MP_OK && mi.n_layer_recurrent == 3 &&
          mi.state_bytes == 3u * (3 * 256 + 4 * 32 * 32) * 4 && mi.kv_bytes == 64u * 2 * 64 * 2 + mi.state_bytes);
    free(a);
    free(b);
    mp_engine_free(e);
}

int main(void)
{
    char dir[] = "/tmp/mp-gdn-bad.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char base[256], cmd[1024], path[300];
    static const mp_model_fault next_faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"missing ssm_a", "blk.1.ssm_a", NULL, 0, NULL, MP_E_CORRUPT, "'blk.1.ssm_a'", "missing", NULL},
        {"missing ssm_conv1d", "blk.0.ssm_conv1d.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ssm_conv1d.weight",
         "missing", NULL},
        {"missing attn_gate (z)", "blk.2.attn_gate.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.2.attn_gate.weight",
         "missing", NULL},
        {"missing ssm_ba", "blk.0.ssm_ba.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ssm_ba.weight", "missing", NULL},
        {"missing ssm_norm", "blk.2.ssm_norm.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.2.ssm_norm.weight", "missing",
         NULL},
        {"missing ssm_out", "blk.1.ssm_out.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.ssm_out.weight", "missing",
         NULL},
        {"conv_kernel key 3, taps 4", NULL, "qwen3next.ssm.conv_kernel", 3, NULL, MP_E_CORRUPT,
         "'blk.0.ssm_conv1d.weight' has a conv kernel of 4 taps", "'qwen3next.ssm.conv_kernel' is 3", NULL},
        {"conv taps 3, key 4", NULL, NULL, 0, NULL, MP_E_CORRUPT, "'blk.1.ssm_conv1d.weight' has a conv kernel of 3",
         "(layer 1)", "blk.1.ssm_conv1d.weight"},
        {"ssm_dt of the wrong size", NULL, NULL, 0, NULL, MP_E_CORRUPT, "blk.2.ssm_dt.bias", "expected {4}",
         "blk.2.ssm_dt.bias"},
        {"full_attention_interval 9 > 4 blocks", NULL, "qwen3next.full_attention_interval", 9, NULL, MP_E_CORRUPT,
         "full_attention_interval' = 9", "does not fit block_count 4", NULL},
        {"full_attention_interval 0", NULL, "qwen3next.full_attention_interval", 0, NULL, MP_E_CORRUPT,
         "full_attention_interval' = 0", "does not fit block_count 4", NULL},
        {"interval 2: layer 1 is attention", NULL, "qwen3next.full_attention_interval", 2, NULL, MP_E_CORRUPT,
         "layer 1 holds Gated DeltaNet tensors ('blk.1.ssm_conv1d.weight')", "makes it a full-attention layer", NULL},
        {"interval 3: layer 3 is DeltaNet", NULL, "qwen3next.full_attention_interval", 3, NULL, MP_E_CORRUPT,
         "layer 2 holds Gated DeltaNet tensors", "full_attention_interval", NULL},
        {"inner_size != v heads x state", NULL, "qwen3next.ssm.inner_size", 96, NULL, MP_E_CORRUPT,
         "impossible Gated DeltaNet shape", "inner_size 96", NULL},
        {"v heads not a multiple of k heads", NULL, "qwen3next.ssm.time_step_rank", 3, NULL, MP_E_CORRUPT,
         "impossible Gated DeltaNet shape", "time_step_rank 3", NULL},
        {"missing ssm key", NULL, "qwen3next.ssm.state_size", 0, NULL, MP_E_CORRUPT,
         "impossible Gated DeltaNet shape", "state_size 0", NULL},
        {"attention layer's q norm", "blk.3.attn_q_norm.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.3.attn_q_norm.weight", "missing", NULL},
    };
    static const mp_model_fault q35_faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"missing ssm_alpha", "blk.0.ssm_alpha.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ssm_alpha.weight",
         "missing", NULL},
        {"missing ssm_beta", "blk.2.ssm_beta.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.2.ssm_beta.weight", "missing",
         NULL},
        {"missing attn_qkv", "blk.1.attn_qkv.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.attn_qkv.weight", "missing",
         NULL},
    };
    for (int arch = 0; arch < 2; arch++) {
        const bool q35 = arch == 1;
        snprintf(base, sizeof base, "%s/base%d.gguf", dir, arch);
        snprintf(cmd, sizeof cmd,
                 "'%s/mp-gen' --arch %s --n-embd 64 --n-head 2 --n-head-kv 2 --head-dim 32 --n-ff 128 --n-ff-exp 64 "
                 "--n-ff-shexp 96 --n-layer 4 --n-expert 8 --n-expert-used 2 --n-vocab 300 -q -o '%s'",
                 mp_test_build_dir(), q35 ? "qwen35moe" : "qwen3next", base);
        if (system(cmd) != 0) {
            fprintf(stderr, "mp-gen failed: %s\n", cmd);
            return 1;
        }
        mp_gguf *g = NULL;
        mp_err err = {0};
        CHECKF(mp_gguf_open(&g, base, NULL, &err) == MP_OK, "%s", err.msg);
        if (!g) return 1;
        if (!q35) { /* the pattern as an array: 4 flags load, 3 are refused in one line */
            for (uint32_t n = 3; n <= 4; n++) {
                snprintf(path, sizeof path, "%s/arr%u.gguf", dir, n);
                CHECKF(write_with_pattern(g, n, path, &err) == MP_OK, "%s", err.msg);
                mp_model *m = NULL;
                err = (mp_err){0};
                const int rc = mp_model_load(&m, path, &err);
                if (n == 4) {
                    CHECKF(rc == MP_OK, "recurrent_layers of 4: %s", err.msg);
                    if (m) check_semantics(m, false, "recurrent_layers of 4 flags");
                } else {
                    CHECKF(rc == MP_E_CORRUPT && !m && strstr(err.msg, path) && !strchr(err.msg, '\n') &&
                               strstr(err.msg, "'qwen3next.attention.recurrent_layers' does not fit block_count 4"),
                           "recurrent_layers of 3: %d %s", rc, err.msg);
                    printf("%-36s %s\n", "recurrent_layers of 3 flags", err.msg);
                }
                mp_model_free(m);
                unlink(path);
            }
        }
        check_engine(base);
        const mp_model_fault *faults = q35 ? q35_faults : next_faults;
        const size_t n = q35 ? sizeof q35_faults / sizeof *q35_faults : sizeof next_faults / sizeof *next_faults;
        for (size_t i = 0; i < n; i++) {
            const mp_model_fault *f = &faults[i];
            snprintf(path, sizeof path, "%s/v%d-%zu.gguf", dir, arch, i);
            CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
            mp_model *m = NULL;
            char why[MP_ERR_MSG_MAX + 256];
            CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
            if (m) check_semantics(m, q35, f->what);
            mp_model_free(m);
            unlink(path);
        }
        mp_gguf_free(g);
        unlink(base);
    }
    rmdir(dir);
    MP_TEST_DONE();
}
