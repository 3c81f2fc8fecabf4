/* Bad deepseek2 files (issue 11): a good mp-gen model rewritten with one
 * fault each (a missing MLA tensor, inconsistent ranks, expert groups that
 * do not divide the experts, an unknown gating function) must be refused
 * by mp_model_load with one line naming the file and the key or tensor at
 * fault, and nothing leaked (the ASan build checks). The unmodified copy
 * must load. Needs mp-gen from the build tree. */
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "helpers/model_fault.h"
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/mp-ds2-bad.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char base[256], cmd[1024], path[300];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch deepseek2 --n-embd 64 --n-head 2 --n-ff 128 --n-ff-exp 64 --n-layer 2 "
             "--n-dense-lead 1 --n-expert 8 --n-expert-used 2 --kv-lora 32 --rope-dim 8 --nope-dim 16 --v-dim 16 "
             "--gating sigmoid --probs-bias --n-group 4 --n-group-used 2 --n-vocab 300 -q -o '%s'",
             mp_test_build_dir(), base);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }
    mp_gguf *g = NULL;
    mp_err err = {0};
    CHECKF(mp_gguf_open(&g, base, NULL, &err) == MP_OK, "%s", err.msg);
    if (!g) return 1;

    static const mp_model_fault faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"missing attn_k_b", "blk.1.attn_k_b.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.attn_k_b.weight", "missing", NULL},
        {"missing attn_kv_a_mqa", "blk.0.attn_kv_a_mqa.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_kv_a_mqa.weight",
         "missing", NULL},
        {"missing attn_v_b", "blk.0.attn_v_b.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_v_b.weight", "missing", NULL},
        {"kv_lora_rank vs key_length", NULL, "deepseek2.attention.kv_lora_rank", 24, NULL, MP_E_CORRUPT,
         "inconsistent MLA ranks", "key_length", NULL},
        {"two kv heads in the latent layout", NULL, "deepseek2.attention.head_count_kv", 2, NULL, MP_E_CORRUPT,
         "inconsistent MLA ranks", "head_count_kv 2", NULL},
        {"rope dims >= key length", NULL, "deepseek2.attention.key_length_mla", 8, NULL, MP_E_CORRUPT,
         "inconsistent MLA ranks", "rope dims", NULL},
        {"wrong q_lora_rank", NULL, "deepseek2.attention.q_lora_rank", 32, NULL, MP_E_CORRUPT, "attn_q_a.weight",
         "missing", NULL},
        {"3 groups over 8 experts", NULL, "deepseek2.expert_group_count", 3, NULL, MP_E_CORRUPT,
         "expert groups do not fit", "8 experts in 3 groups", NULL},
        {"all groups used", NULL, "deepseek2.expert_group_used_count", 4, NULL, MP_E_CORRUPT, "expert groups do not fit",
         "4 groups used", NULL},
        {"unknown gating", NULL, "deepseek2.expert_gating_func", 7, NULL, MP_E_UNSUPPORTED,
         "deepseek2.expert_gating_func", "unknown expert gating function", NULL},
        {"dense lead past the layers", NULL, "deepseek2.leading_dense_block_count", 3, NULL, MP_E_CORRUPT,
         "leading_dense_block_count 3", "block_count 2", NULL},
        {"attention temperature", NULL, NULL, 0, "deepseek2.attention.temperature_scale", MP_E_UNSUPPORTED,
         "deepseek2.attention.temperature_scale", "not supported", NULL},
    };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        const mp_model_fault *f = &faults[i];
        snprintf(path, sizeof path, "%s/v%zu.gguf", dir, i);
        CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
        mp_model *m = NULL;
        char why[MP_ERR_MSG_MAX + 256];
        CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
        if (m) {
            /* the planner's KV figure: the latent cache, one row of kv_lora (32) + rope dims (8)
             * per token and layer in f16, no separate value rows */
            CHECK(m->hp.kv_in_k && m->hp.n_head_kv == 1 && m->hp.head_dim == 40 && m->hp.head_dim_v == 32);
            CHECKF(mp_ctx_kv_bytes(m, 100, 32) == 2u * 100 * 40 * 2, "kv bytes %llu",
                   (unsigned long long)mp_ctx_kv_bytes(m, 100, 32));
            CHECK(m->layers[0].ffn_gate.info && !m->layers[0].ffn_gate_inp.info); /* dense lead */
            CHECK(m->layers[1].ffn_gate_inp.info && m->layers[1].ffn_gate_shexp.info && m->layers[1].exp_probs_b.info);
        }
        mp_model_free(m);
        unlink(path);
    }
    mp_gguf_free(g);
    unlink(base);
    rmdir(dir);
    MP_TEST_DONE();
}
