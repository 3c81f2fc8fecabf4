/* Bad qwen2moe files (issue 12 item 2): a good mp-gen model rewritten with
 * one fault each (a missing shared-expert tensor or its gate, a shared width
 * that does not match the tensors, key and value head sizes that differ, no
 * experts) must be refused by mp_model_load with one line naming the file
 * and the key or tensor at fault, and nothing leaked (the ASan build
 * checks). The unmodified copy must load with qwen2moe's semantics, and so
 * must a copy with gating / renormalisation / scale keys, which llama.cpp
 * never reads for this architecture. Needs mp-gen from the build tree. */
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
    char dir[] = "/tmp/mp-q2moe-bad.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char base[256], cmd[1024], path[300];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch qwen2moe --n-embd 64 --n-head 2 --n-head-kv 1 --n-ff 128 --n-ff-exp 64 "
             "--n-ff-shexp 96 --n-layer 2 --n-expert 8 --n-expert-used 2 --n-vocab 300 -q -o '%s'",
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
        {"sigmoid gating key (not read)", NULL, "qwen2moe.expert_gating_func", 2, NULL, MP_OK, NULL, NULL, NULL},
        {"weights scale key (not read)", NULL, NULL, 0, "qwen2moe.expert_weights_scale", MP_OK, NULL, NULL, NULL},
        {"missing shared gate", "blk.1.ffn_gate_inp_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.1.ffn_gate_inp_shexp.weight", "missing", NULL},
        {"missing ffn_up_shexp", "blk.0.ffn_up_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ffn_up_shexp.weight",
         "missing", NULL},
        {"missing ffn_down_shexp", "blk.1.ffn_down_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.1.ffn_down_shexp.weight", "missing", NULL},
        {"missing ffn_gate_shexp", "blk.0.ffn_gate_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.0.ffn_gate_shexp.weight", "missing", NULL},
        {"shared width vs tensors", NULL, "qwen2moe.expert_shared_feed_forward_length", 64, NULL, MP_E_CORRUPT,
         "blk.0.ffn_gate_shexp.weight", "expected {64, 64}", NULL},
        {"value head != key head", NULL, "qwen2moe.attention.value_length", 16, NULL, MP_E_CORRUPT,
         "qwen2moe needs key = value head size", "32, 16", NULL},
        {"no experts", NULL, "qwen2moe.expert_count", 0, NULL, MP_E_CORRUPT, "qwen2moe model without",
         "qwen2moe.expert_count", NULL},
        {"missing router", "blk.0.ffn_gate_inp.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ffn_gate_inp.weight",
         "missing", NULL},
    };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        const mp_model_fault *f = &faults[i];
        snprintf(path, sizeof path, "%s/v%zu.gguf", dir, i);
        CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
        mp_model *m = NULL;
        char why[MP_ERR_MSG_MAX + 256];
        CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
        if (m) {
            const mp_hparams *hp = &m->hp;
            /* llama.cpp's qwen2moe: softmax over all experts, the k weights neither
             * renormalised nor scaled, whatever the file's keys say */
            CHECKF(hp->arch == MP_ARCH_QWEN2MOE && hp->gating == MP_GATING_SOFTMAX && !hp->norm_topk &&
                       hp->expert_weights_scale == 0.0f && hp->rope_kind == MP_ROPE_NEOX,
                   "%s: semantics", f->what);
            CHECK(hp->n_shared == 1 && hp->n_ff_shexp == 96 && hp->n_ff_exp == 64 && hp->head_dim == 32);
            for (int il = 0; il < 2; il++) {
                const mp_layer *l = &m->layers[il];
                CHECK(l->bq.info && l->bk.info && l->bv.info && l->ffn_gate_inp_shexp.info &&
                      l->ffn_gate_shexp.ne[1] == 96 && l->ffn_down_shexp.ne[0] == 96);
            }
        }
        mp_model_free(m);
        unlink(path);
    }
    mp_gguf_free(g);
    g = NULL;

    /* one fused attn_qkv with the separate q/k/v biases: loads with q/k/v as
     * row views of it; a missing bias or a fused tensor of the wrong width
     * is refused */
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch qwen2moe --n-embd 64 --n-head 2 --n-head-kv 1 --n-ff 128 --n-ff-exp 64 "
             "--n-ff-shexp 96 --n-layer 2 --n-expert 8 --n-expert-used 2 --n-vocab 300 --fused-qkv-split-bias -q -o '%s'",
             mp_test_build_dir(), base);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }
    CHECKF(mp_gguf_open(&g, base, NULL, &err) == MP_OK, "%s", err.msg);
    if (!g) return 1;
    static const mp_model_fault fused[] = {
        {"fused qkv", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"fused qkv, 2 of 3 biases", "blk.1.attn_k.bias", NULL, 0, NULL, MP_E_CORRUPT, "layer 1",
         "2 of the 3 separate q/k/v biases", NULL},
        {"fused qkv of the wrong width", NULL, NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_qkv.weight",
         "expected {64, 128}", "blk.0.attn_qkv.weight"},
    };
    for (size_t i = 0; i < sizeof fused / sizeof *fused; i++) {
        const mp_model_fault *f = &fused[i];
        snprintf(path, sizeof path, "%s/f%zu.gguf", dir, i);
        CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
        mp_model *m = NULL;
        char why[MP_ERR_MSG_MAX + 256];
        CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
        for (int il = 0; m && il < 2; il++) {
            /* q is 64 rows, k and v 32 each, of the 128 of attn_qkv */
            const mp_layer *l = &m->layers[il];
            const size_t row = l->wqkv.row_size;
            CHECK(l->wqkv.info && l->wqkv.ne[1] == 128 && l->wq.view && l->wq.ne[1] == 64 && l->wk.ne[1] == 32 &&
                  l->wv.ne[1] == 32 && l->wk.view_off == 64 * row && l->wv.view_off == 96 * row &&
                  (const char *)l->wv.data == (const char *)l->wqkv.data + 96 * row && l->bq.info && !l->bq.view);
        }
        mp_model_free(m);
        unlink(path);
    }
    mp_gguf_free(g);
    unlink(base);
    rmdir(dir);
    MP_TEST_DONE();
}
