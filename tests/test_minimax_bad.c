/* Bad minimax-m2 files (issue 13 item 4): a good mp-gen model rewritten with
 * one fault each (a missing exp_probs_b, a q or k norm of the wrong size, an
 * unknown gating function or none, key and value head sizes that differ,
 * experts that do not match feed_forward_length, no experts) must be refused
 * by mp_model_load with one line naming the file and the key or tensor at
 * fault, and nothing leaked (the ASan build checks). The unmodified copy must
 * load with minimax-m2's semantics, and so must a copy with an
 * expert_weights_scale key, which llama.cpp never reads for it. Needs mp-gen
 * from the build tree. */
#include "gguf/gguf.h"
#include "model/model.h"
#include "helpers/model_fault.h"
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mp-gen's minimax-m2 model: q is 4 heads x 32 = 128 wide (n_embd 64), k 2 x 32 = 64 */
static int gen(const char *out, const char *extra)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch minimax-m2 --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 64 "
             "--n-layer 2 --n-expert 8 --n-expert-used 3 --n-vocab 300 -q %s -o '%s'",
             mp_test_build_dir(), extra, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }
    return 0;
}

static void run(const mp_gguf *g, const mp_model_fault *faults, size_t n, const char *dir, const char *tag)
{
    char path[300];
    mp_err err = {0};
    for (size_t i = 0; i < n; i++) {
        const mp_model_fault *f = &faults[i];
        snprintf(path, sizeof path, "%s/%s%zu.gguf", dir, tag, i);
        CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
        mp_model *m = NULL;
        char why[MP_ERR_MSG_MAX + 256];
        CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
        if (m) {
            const mp_hparams *hp = &m->hp;
            /* llama.cpp's minimax-m2: the file's gating (sigmoid here), exp_probs_b,
             * weights renormalised, no scale; whole-vector q/k norms, partial NEOX */
            CHECKF(hp->arch == MP_ARCH_MINIMAX_M2 && hp->gating == MP_GATING_SIGMOID && hp->norm_topk &&
                       hp->expert_weights_scale == 0.0f && hp->rope_kind == MP_ROPE_NEOX &&
                       hp->qk_norm == MP_QK_NORM_FULL,
                   "%s: semantics", f->what);
            CHECK(hp->head_dim == 32 && hp->n_rot == 16 && hp->n_ff_exp == 64 && hp->n_shared == 0);
            for (int il = 0; il < 2; il++) {
                const mp_layer *l = &m->layers[il];
                CHECK(l->exp_probs_b.info && l->q_norm.ne[0] == 128 && l->k_norm.ne[0] == 64 && !l->bq.info);
            }
        }
        mp_model_free(m);
        unlink(path);
    }
}

int main(void)
{
    char dir[] = "/tmp/mp-minimax-bad.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char base[256], nogate[256];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    snprintf(nogate, sizeof nogate, "%s/nogate.gguf", dir);
    if (gen(base, "") || gen(nogate, "--gating none")) return 1;

    mp_gguf *g = NULL;
    mp_err err = {0};
    CHECKF(mp_gguf_open(&g, base, NULL, &err) == MP_OK, "%s", err.msg);
    if (!g) return 1;
    static const mp_model_fault faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"weights scale key (not read)", NULL, NULL, 0, "minimax-m2.expert_weights_scale", MP_OK, NULL, NULL, NULL},
        {"missing exp_probs_b", "blk.1.exp_probs_b.bias", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.exp_probs_b.bias",
         "missing", NULL},
        {"q_norm of the wrong size", NULL, NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_q_norm.weight",
         "has shape {127}, expected {128}", "blk.0.attn_q_norm.weight"},
        {"k_norm of the wrong size", NULL, NULL, 0, NULL, MP_E_CORRUPT, "blk.1.attn_k_norm.weight",
         "has shape {63}, expected {64}", "blk.1.attn_k_norm.weight"},
        {"missing q_norm", "blk.1.attn_q_norm.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.attn_q_norm.weight",
         "missing", NULL},
        {"unknown gating function", NULL, "minimax-m2.expert_gating_func", 3, NULL, MP_E_UNSUPPORTED,
         "minimax-m2.expert_gating_func' = 3", "unknown expert gating function", NULL},
        {"value head != key head", NULL, "minimax-m2.attention.value_length", 16, NULL, MP_E_CORRUPT,
         "minimax-m2 needs key = value head size", "32, 16", NULL},
        {"experts != feed_forward_length", NULL, "minimax-m2.feed_forward_length", 32, NULL, MP_E_CORRUPT,
         "blk.0.ffn_gate_exps.weight", "expected {64, 32, 8}", NULL},
        {"no experts", NULL, "minimax-m2.expert_count", 0, NULL, MP_E_CORRUPT, "minimax-m2 model without",
         "minimax-m2.expert_count", NULL},
    };
    run(g, faults, sizeof faults / sizeof *faults, dir, "v");
    mp_gguf_free(g);
    g = NULL;

    /* llama.cpp aborts on a minimax-m2 file without expert_gating_func (its
     * build_moe_ffn has no default): refused here, by name */
    CHECKF(mp_gguf_open(&g, nogate, NULL, &err) == MP_OK, "%s", err.msg);
    if (!g) return 1;
    static const mp_model_fault nogate_faults[] = {
        {"no gating key", NULL, NULL, 0, NULL, MP_E_CORRUPT, "'minimax-m2.expert_gating_func' is missing", NULL,
         NULL},
    };
    run(g, nogate_faults, 1, dir, "n");
    mp_gguf_free(g);
    unlink(base);
    unlink(nogate);
    rmdir(dir);
    MP_TEST_DONE();
}
