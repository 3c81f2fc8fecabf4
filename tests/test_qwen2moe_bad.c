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
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const mp_gguf *src_g;

static int copy_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)err;
    const uint64_t *map = ctx; /* writer tensor index -> source tensor index */
    memcpy(buf, mp_gguf_tensor_data(src_g, mp_gguf_tensor_at(src_g, map[idx])), size);
    return MP_OK;
}

typedef struct fault {
    const char *what;
    const char *drop;    /* tensor left out, or NULL */
    const char *key;     /* u32 key set to val, or NULL */
    uint32_t val;
    const char *fkey;    /* f32 key set to 0.5, or NULL */
    int want_rc;
    const char *want1, *want2; /* substrings of the message */
} fault;

/* Writes src_g with f applied to path. */
static void write_variant(const fault *f, const char *path)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    CHECK(w != NULL);
    int rc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(src_g); i++)
        rc |= mp_gguf_writer_set_value(w, mp_gguf_kv_at(src_g, i)->key.ptr, &mp_gguf_kv_at(src_g, i)->value);
    if (f->key) rc |= mp_gguf_writer_set_u32(w, f->key, f->val);
    if (f->fkey) rc |= mp_gguf_writer_set_f32(w, f->fkey, 0.5f);
    uint64_t *map = calloc(mp_gguf_n_tensors(src_g), sizeof *map), n = 0;
    for (uint64_t i = 0; i < mp_gguf_n_tensors(src_g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(src_g, i);
        if (f->drop && !strcmp(t->name, f->drop)) continue;
        map[n++] = i;
        rc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL);
    }
    CHECK(rc == 0);
    mp_err err = {0};
    CHECKF(mp_gguf_writer_write(w, path, copy_fill, map, &err) == MP_OK, "%s", err.msg);
    free(map);
    mp_gguf_writer_free(w);
}

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
    src_g = g;

    static const fault faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL},
        {"sigmoid gating key (not read)", NULL, "qwen2moe.expert_gating_func", 2, NULL, MP_OK, NULL, NULL},
        {"weights scale key (not read)", NULL, NULL, 0, "qwen2moe.expert_weights_scale", MP_OK, NULL, NULL},
        {"missing shared gate", "blk.1.ffn_gate_inp_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.1.ffn_gate_inp_shexp.weight", "missing"},
        {"missing ffn_up_shexp", "blk.0.ffn_up_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ffn_up_shexp.weight",
         "missing"},
        {"missing ffn_down_shexp", "blk.1.ffn_down_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.1.ffn_down_shexp.weight", "missing"},
        {"missing ffn_gate_shexp", "blk.0.ffn_gate_shexp.weight", NULL, 0, NULL, MP_E_CORRUPT,
         "blk.0.ffn_gate_shexp.weight", "missing"},
        {"shared width vs tensors", NULL, "qwen2moe.expert_shared_feed_forward_length", 64, NULL, MP_E_CORRUPT,
         "blk.0.ffn_gate_shexp.weight", "expected {64, 64}"},
        {"value head != key head", NULL, "qwen2moe.attention.value_length", 16, NULL, MP_E_CORRUPT,
         "qwen2moe needs key = value head size", "32, 16"},
        {"no experts", NULL, "qwen2moe.expert_count", 0, NULL, MP_E_CORRUPT, "qwen2moe model without",
         "qwen2moe.expert_count"},
        {"missing router", "blk.0.ffn_gate_inp.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.ffn_gate_inp.weight",
         "missing"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        const fault *f = &faults[i];
        snprintf(path, sizeof path, "%s/v%zu.gguf", dir, i);
        write_variant(f, path);
        mp_model *m = NULL;
        mp_err e = {0};
        int rc = mp_model_load(&m, path, &e);
        CHECKF(rc == f->want_rc, "%s: rc %d (%s), want %d", f->what, rc, e.msg, f->want_rc);
        if (rc == MP_OK && m) {
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
        if (f->want_rc != MP_OK) {
            CHECKF(m == NULL, "%s: a model despite the error", f->what);
            CHECKF(strstr(e.msg, path) != NULL, "%s: message does not name the file: %s", f->what, e.msg);
            CHECKF(strchr(e.msg, '\n') == NULL, "%s: message is not one line: %s", f->what, e.msg);
            CHECKF(f->want1 == NULL || strstr(e.msg, f->want1), "%s: '%s' not in: %s", f->what, f->want1, e.msg);
            CHECKF(f->want2 == NULL || strstr(e.msg, f->want2), "%s: '%s' not in: %s", f->what, f->want2, e.msg);
            printf("%-36s %s\n", f->what, e.msg);
        }
        mp_model_free(m);
        unlink(path);
    }
    mp_gguf_free(g);
    unlink(base);
    rmdir(dir);
    MP_TEST_DONE();
}
